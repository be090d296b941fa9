//! Oversized request lines and headers get 414/431 with a SCIM error body, also beyond what
//! actix-http can buffer (128 KiB heads, 64 KiB URLs, 96 header fields), where it used to answer
//! by itself with an empty body. The connection's head guard must not disturb ordinary traffic:
//! keep-alive, `Content-Length` and chunked bodies pass as they came.

use std::path::Path;

use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::child::serve;
use crate::support::server::{assert_scim_error, TestServer, ADMIN_TOKEN, TOKEN};

#[tokio::test]
async fn urls_and_headers_far_beyond_the_limits_get_scim_errors_and_the_server_carries_on() {
    let s = TestServer::start().await;
    let addr = s.root.trim_start_matches("http://").to_string();
    // The issue's case: a 200 KB filter (actix-http alone answered 431 with an empty body), and
    // 70 KB, which actix-http's URI parser refused with an empty 400. Sent raw: HTTP clients
    // refuse to build URLs of 64 KiB and more.
    let filter = crate::support::server::encode(&format!("userName eq \"{}\"", "a".repeat(200_000)));
    for url in [format!("/scim/v2/Users?filter={filter}"), format!("/scim/v2/Users?x={}", "a".repeat(70_000))] {
        let request = format!("GET {url} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
        let (status, body) = raw(&addr, request.into_bytes()).await;
        assert_eq!(status, 414, "{body}");
        assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{body}");
        assert_eq!(body["status"], "414");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("8192 bytes")), "{body}");
    }
    // Just over the limit, as before.
    assert_scim_error(&s.get(&format!("/Users?x={}", "a".repeat(8_200))).await, 414, None);

    let huge = "h".repeat(200_000);
    let r = s.send(Method::GET, "/Users", None, &[("X-Padding", huge.as_str())]).await;
    assert_scim_error(&r, 431, None);
    assert!(r.body["detail"].as_str().is_some_and(|d| d.contains("16384 bytes")), "{}", r.text);

    let names: Vec<String> = (0..100).map(|i| format!("x-field-{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let r = s.send(Method::GET, "/Users", None, &headers).await;
    assert_scim_error(&r, 431, None);
    assert!(r.body["detail"].as_str().is_some_and(|d| d.contains("96 header fields")), "{}", r.text);

    // Still serving, and the refusals are counted like any request.
    assert_eq!(s.get("/Users").await.status.as_u16(), 200);
    let metrics = s
        .client
        .get(format!("{}/metrics", s.root))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for status in ["414", "431"] {
        assert!(
            metrics.contains(&format!("route=\"(oversized request head)\",status=\"{status}\"")),
            "{status}: {metrics}"
        );
    }
}

/// Sends `request` on a new connection (while reading, so a server that answers before it has
/// read everything is no problem) and reads the response.
async fn raw(addr: &str, request: Vec<u8>) -> (u16, Value) {
    let conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = conn.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        write
    });
    let mut whole = Vec::new();
    let _ = read.read_to_end(&mut whole).await;
    drop(writer.await);
    let text = String::from_utf8_lossy(&whole);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Reads one HTTP/1.1 response with a `Content-Length` body from `conn`.
async fn response(conn: &mut tokio::net::TcpStream) -> (u16, Value) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            conn.read(&mut byte).await.expect("read"),
            1,
            "connection closed: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().expect("length")))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn keep_alive_with_length_and_chunked_bodies_passes_the_guard_unchanged() {
    let s = TestServer::start().await;
    let addr = s.root.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"kept@x.com"}"#;
    let chunked = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"chunked@x.com"}"#;
    let (a, b) = chunked.split_at(20);
    // Three requests in one write, then one more: a body that looks like a head must not
    // confuse the guard, and the chunked body's framing is followed to the next head.
    let requests = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{user}\
         POST /scim/v2/Users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nX-Trailer: 1\r\n\r\n",
        user.len(),
        a.len(),
        b.len()
    );
    conn.write_all(requests.as_bytes()).await.expect("write");
    assert_eq!(response(&mut conn).await.0, 201);
    assert_eq!(response(&mut conn).await.0, 201);
    let get = format!("GET /scim/v2/Users?filter=userName%20eq%20%22chunked@x.com%22 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    conn.write_all(get.as_bytes()).await.expect("write");
    let (status, body) = response(&mut conn).await;
    assert_eq!((status, body["totalResults"].as_u64()), (200, Some(1)), "{body}");
    // An oversized head later on the same connection is still caught.
    conn.write_all(format!("GET /scim/v2/Users?x={} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(150_000)).as_bytes())
        .await
        .expect("write");
    let (status, body) = response(&mut conn).await;
    assert_eq!(status, 414, "{body}");
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_oversized_headers_get_the_scim_error_too() {
    let fixture = |n: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(n);
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("scimbridge.toml");
    let (cert, key) = (fixture("cert-a.pem"), fixture("key-a.pem"));
    std::fs::write(&cfg, format!("[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n", cert.display(), key.display()))
        .expect("config");
    let served = serve(&tmp.path().join("data"), Some(&cfg), &[]).await;
    let base = served.base.replacen("http://", "https://", 1).replacen("127.0.0.1", "localhost", 1);
    let pem = std::fs::read(&cert).expect("cert");
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .build()
        .expect("client");
    let ok = client.get(format!("{base}/Users")).bearer_auth(TOKEN).send().await.expect("https");
    assert_eq!(ok.status(), 200);
    // 200 KB of headers: more than actix-http buffers, which answered an empty 431 by itself.
    let r = client
        .get(format!("{base}/Users"))
        .bearer_auth(TOKEN)
        .header("X-Padding", "p".repeat(200_000))
        .send()
        .await
        .expect("https");
    assert_eq!(r.status(), 431);
    assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/scim+json"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], "431");
    assert_eq!(client.get(format!("{base}/Users")).bearer_auth(TOKEN).send().await.expect("https").status(), 200);
}

/// A client that writes a large head slowly gets the SCIM error after it has finished writing,
/// never a reset: the server reads the refused head to its end before it answers and closes
/// (answering earlier closes on unread input, which resets the connection mid-write).
#[tokio::test]
async fn a_slowly_written_oversized_head_is_read_to_its_end_before_the_answer() {
    let s = TestServer::start().await;
    let addr = s.root.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let start = format!("GET /scim/v2/Users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nX-Padding: ");
    conn.write_all(start.as_bytes()).await.expect("write");
    // 120 KB of padding in pieces, well past the 16 KiB header limit after the second one.
    let piece = "p".repeat(8 * 1024);
    for i in 0..15 {
        conn.write_all(piece.as_bytes()).await.unwrap_or_else(|e| panic!("piece {i}: {e}"));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The head is refused but not finished: no answer yet.
    let mut early = [0u8; 64];
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), conn.read(&mut early)).await;
    assert!(waited.is_err(), "answered before the head ended: {waited:?} {:?}", String::from_utf8_lossy(&early));
    conn.write_all(format!("{piece}\r\nX-After: 1\r\n\r\n").as_bytes()).await.expect("the rest of the head");
    let (status, body) = response(&mut conn).await;
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("16384 bytes")), "{body}");
    // Then the server closes cleanly (Connection: close), without a reset.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.expect("a clean close");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert_eq!(s.get("/Users").await.status.as_u16(), 200);
}
