//! Hostile requests: each gets the right 4xx with an RFC 7644 error body — never a 5xx, never a
//! hang — and leaves the store exactly as it was.

use std::io::{Read, Write};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::server::{assert_scim_error, test_config, TestServer, ADMIN_TOKEN, TOKEN};

/// Everything a client can see of the store: every user and group, in full.
async fn snapshot(s: &TestServer) -> (String, String) {
    (s.get("/Users?sortBy=userName").await.text, s.get("/Groups?sortBy=displayName").await.text)
}

async fn seeded() -> (TestServer, (String, String)) {
    let s = TestServer::start().await;
    let a = s.create_user("admin@example.com").await;
    s.create_group("jira-users", &[&a]).await;
    let snap = snapshot(&s).await;
    (s, snap)
}

#[tokio::test]
async fn bad_credentials_get_401_with_a_scim_body_and_change_nothing() {
    let (s, before) = seeded().await;
    let create = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mallory"}).to_string();
    let forged_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJtYWxsb3J5In0.";
    for auth in [
        None,
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic dGVzdDp0ZXN0"),
        Some("Bearer wrong-token-0123456789"),
        Some("bearer test-token-0123456789abcdeX"),
        Some(forged_none),
        Some(&format!("Bearer {forged_none}")),
        Some("Bearer eyJhbGciOiJub25lIn0.e30."),
    ] {
        let r = s
            .send_raw(
                Method::POST,
                "/Users",
                Some(create.clone().into_bytes()),
                &[("Content-Type", "application/scim+json")],
                auth,
            )
            .await;
        assert_scim_error(&r, 401, None);
        assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{auth:?}");
    }
    // The admin token is not an IdP token.
    let r = s.send_raw(Method::GET, "/Users", None, &[], Some(&format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_scim_error(&r, 401, None);
    assert_eq!(snapshot(&s).await, before);
}

#[tokio::test]
async fn malformed_bodies_get_400_invalid_syntax_and_change_nothing() {
    let (s, before) = seeded().await;
    let auth = format!("Bearer {TOKEN}");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_obj = format!("{{\"userName\":\"x\",\"a\":{}1{}}}", "{\"b\":".repeat(200), "}".repeat(200));
    let cases: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"userName\"".to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        b"{\"userName\":\"\xc3\x28\"}".to_vec(),
        deep.into_bytes(),
        deep_obj.into_bytes(),
    ];
    for body in cases {
        let r = s
            .send_raw(
                Method::POST,
                "/Users",
                Some(body.clone()),
                &[("Content-Type", "application/scim+json")],
                Some(&auth),
            )
            .await;
        assert!(r.status.is_client_error(), "{} for {:?}", r.status, String::from_utf8_lossy(&body));
        assert_scim_error(&r, r.status.as_u16(), None);
    }
    assert_eq!(snapshot(&s).await, before);
}

#[tokio::test]
async fn nul_bytes_invisible_characters_and_look_alike_names_are_refused() {
    let (s, before) = seeded().await;
    for name in [
        "ad\u{0}min@example.com",
        "ad\u{200B}min@example.com",
        "admin@example.com\u{202E}",
        "\u{FEFF}admin@example.com",
    ] {
        let r = s
            .post("/Users", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}))
            .await;
        assert_scim_error(&r, 400, Some("invalidValue"));
    }
    // Full-width and case variants fold onto the existing name: a uniqueness conflict.
    for name in ["ＡＤＭＩＮ@example.com", "ADMIN@EXAMPLE.COM"] {
        let r = s
            .post("/Users", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}))
            .await;
        assert_scim_error(&r, 409, Some("uniqueness"));
    }
    let r = s.post("/Users", &json!({"userName": "mallory", "externalId": "x\u{0}y"})).await;
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert_eq!(snapshot(&s).await, before);
    // A Cyrillic "а" is a different letter: a distinct, legitimate name.
    let r = s
        .post(
            "/Users",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "аdmin@example.com"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn overlong_filters_urls_and_headers_are_refused_with_the_right_status() {
    let (s, before) = seeded().await;
    let long_filter = format!("userName eq \"{}\"", "a".repeat(5000));
    let r = s.get(&format!("/Users?filter={}", crate::support::server::encode(&long_filter))).await;
    assert_scim_error(&r, 400, Some("invalidFilter"));
    let nested = format!("{}userName pr{}", "(".repeat(500), ")".repeat(500));
    let r = s.get(&format!("/Users?filter={}", crate::support::server::encode(&nested))).await;
    assert_scim_error(&r, 400, Some("invalidFilter"));
    let r = s.get(&format!("/Users?x={}", "a".repeat(9000))).await;
    assert_scim_error(&r, 414, None);
    let big = "b".repeat(17 * 1024);
    let r = s.send(Method::GET, "/Users", None, &[("X-Padding", big.as_str())]).await;
    assert_scim_error(&r, 431, None);
    assert_eq!(snapshot(&s).await, before);
}

#[tokio::test]
async fn huge_bodies_get_413_and_bulk_limits_hold() {
    let (s, before) = seeded().await;
    let huge = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "huge", "nickName": "x".repeat(2 * 1024 * 1024)});
    let r = s.post("/Users", &huge).await;
    assert_scim_error(&r, 413, None);
    let ops: Vec<Value> = (0..1001).map(|i| json!({"method": "POST", "bulkId": format!("b{i}"), "path": "/Users", "data": {"userName": format!("u{i}")}})).collect();
    let r = s
        .post("/Bulk", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}))
        .await;
    assert_scim_error(&r, 413, None);
    assert_eq!(snapshot(&s).await, before);
}

#[tokio::test]
async fn repeated_failed_logins_from_one_address_are_throttled_with_retry_after() {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = TestServer::start_with(test_config(tmp.path(), &[])).await;
    let mut statuses = Vec::new();
    for _ in 0..35 {
        let r = s.send_raw(Method::GET, "/Users", None, &[], Some("Bearer not-the-token-at-all-xx")).await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            assert_scim_error(&r, 429, None);
            assert!(r.header("retry-after").and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v >= 1));
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 30, "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn a_credential_over_its_request_rate_gets_429_with_retry_after() {
    let toml = "[limits]\nrequests_per_second = 1\nburst = 3\n";
    let s = TestServer::start_toml(toml, &[]).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(s.get("/Users").await);
    }
    let codes: Vec<u16> = statuses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(&codes[..3], &[200, 200, 200], "{codes:?}");
    assert_eq!(codes[3], 429, "{codes:?}");
    assert_scim_error(&statuses[3], 429, None);
    assert_eq!(statuses[3].header("retry-after"), Some("1"));
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_with_408() {
    let s = TestServer::start_toml("[limits]\nrequest_timeout_secs = 1\n", &[]).await;
    let addr = s.root.trim_start_matches("http://").to_string();
    let result = tokio::task::spawn_blocking(move || {
        let mut c = std::net::TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let head = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\""
        );
        c.write_all(head.as_bytes()).expect("write");
        let mut buf = String::new();
        let _ = c.read_to_string(&mut buf);
        buf
    })
    .await
    .expect("join");
    assert!(result.starts_with("HTTP/1.1 408"), "{result}");
    assert!(result.contains("urn:ietf:params:scim:api:messages:2.0:Error"), "{result}");
    assert_eq!(s.get("/Users?filter=userName pr").await.body["totalResults"], 0);
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_do_not_steer_location_urls() {
    let s = TestServer::start().await;
    let r = s
        .send(
            Method::POST,
            "/Users",
            Some(&json!({"userName": "fwd@example.com"})),
            &[
                ("X-Forwarded-Host", "evil.example"),
                ("X-Forwarded-Proto", "https"),
                ("Forwarded", "host=evil.example;proto=https"),
            ],
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.header("location").is_some_and(|l| l.starts_with(&s.root)), "{:?}", r.header("location"));
    assert!(!r.text.contains("evil.example"));
    // From a trusted proxy they are believed.
    let t = TestServer::start_toml("trusted_proxies = [\"127.0.0.1\"]\n", &[]).await;
    let r = t
        .send(
            Method::POST,
            "/Users",
            Some(&json!({"userName": "fwd@example.com"})),
            &[("X-Forwarded-Host", "scim.example.com"), ("X-Forwarded-Proto", "https")],
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(
        r.header("location").is_some_and(|l| l.starts_with("https://scim.example.com/scim/v2/Users/")),
        "{:?}",
        r.header("location")
    );
}

#[tokio::test]
async fn with_a_separate_admin_listener_each_listener_serves_only_its_half() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin_addr = probe.local_addr().expect("addr");
    drop(probe);
    let s = TestServer::start_toml(&format!("admin_listen = \"{admin_addr}\"\n"), &[]).await;
    let r = s.client.get(format!("{}/metrics", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("req");
    assert_eq!(r.status(), 404, "metrics are not on the SCIM listener");
    let r = s.client.get(format!("http://{admin_addr}/metrics")).bearer_auth(ADMIN_TOKEN).send().await.expect("req");
    assert_eq!(r.status(), 200);
    let r = s.client.get(format!("http://{admin_addr}/scim/v2/Users")).bearer_auth(TOKEN).send().await.expect("req");
    assert_eq!(r.status(), 404, "SCIM is not on the admin listener");
    assert_eq!(s.get("/Users").await.status, 200);
    let r = s.client.get(format!("http://{admin_addr}/healthz")).send().await.expect("req");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_forged_one_is_not_echoed_blindly() {
    let s = TestServer::start().await;
    let r = s.get("/Users").await;
    let id = r.header("x-request-id").expect("request id").to_string();
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
    let r = s.send(Method::GET, "/Users", None, &[("X-Request-Id", "abc-123")]).await;
    assert_eq!(r.header("x-request-id"), Some("abc-123"), "a caller's well-formed id is kept for tracing");
    let r = s.send(Method::GET, "/Users", None, &[("X-Request-Id", "evil\" injected=1")]).await;
    assert_ne!(r.header("x-request-id"), Some("evil\" injected=1"));
    let r = s.send_raw(Method::GET, "/nope", None, &[], None).await;
    assert!(r.header("x-request-id").is_some(), "errors carry it too");
}
