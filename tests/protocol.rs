//! The protocol around the resources, over real HTTP: uniqueness, ETags (RFC 7644 §3.14), `/Bulk`
//! (§3.7), errors (§3.12) for every failure class, media types, health and metrics, discovery
//! served exactly from `schemas/`, passwords, computed `User.groups`, and persistence across a
//! restart.

use std::path::Path;

use crate::support::server::{assert_scim_error, test_config, Reply, TestServer, ADMIN_TOKEN, TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const SCIM_JSON: &str = "application/scim+json";

fn assert_status(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
}

fn bulk(ops: Value) -> Value {
    json!({"schemas": [BULK_REQUEST], "Operations": ops})
}

fn bulk_user(bulk_id: &str, user_name: &str) -> Value {
    json!({"method": "POST", "path": "/Users", "bulkId": bulk_id,
           "data": {"schemas": [CORE_USER], "userName": user_name}})
}

fn id_from_location(op: &Value) -> String {
    op["location"].as_str().expect("location").rsplit('/').next().expect("id").to_string()
}

/// A server whose limits are set for the test; the temp dir lives as long as the server.
async fn server_with(
    limits: impl FnOnce(&mut scimbridge::config::Config),
    env: &[(&str, &str)],
) -> (TestServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut cfg = test_config(tmp.path(), env);
    limits(&mut cfg);
    (TestServer::start_with(cfg).await, tmp)
}

// ---------------------------------------------------------------------------------------------
// Uniqueness

#[tokio::test]
async fn user_name_is_unique_case_insensitively_on_create_put_and_patch() {
    let s = TestServer::start().await;
    let first = s.create_user("Unique.Person@Example.com").await;
    let r = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "unique.person@example.COM"})).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let other = s.create_user("someone.else@example.com").await;
    let r = s
        .put(&format!("/Users/{other}"), &json!({"schemas": [CORE_USER], "userName": "UNIQUE.PERSON@EXAMPLE.COM"}))
        .await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let rename =
        TestServer::patch_op(json!([{"op": "replace", "path": "userName", "value": "Unique.person@example.com"}]));
    assert_scim_error(&s.patch(&format!("/Users/{other}"), &rename).await, 409, Some("uniqueness"));
    // Changing the case of one's own userName is not a conflict.
    let own =
        TestServer::patch_op(json!([{"op": "replace", "path": "userName", "value": "UNIQUE.PERSON@example.com"}]));
    let r = s.patch(&format!("/Users/{first}"), &own).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["userName"], "UNIQUE.PERSON@example.com", "stored exactly as sent");
    assert_eq!(s.get(&format!("/Users/{other}")).await.body["userName"], "someone.else@example.com");
}

#[tokio::test]
async fn group_display_name_is_unique() {
    let s = TestServer::start().await;
    let g = s.create_group("Platform Team", &[]).await;
    let r = s.post("/Groups", &json!({"schemas": [CORE_GROUP], "displayName": "Platform Team"})).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let r = s.post("/Groups", &json!({"schemas": [CORE_GROUP], "displayName": "platform team"})).await;
    assert_scim_error(&r, 409, Some("uniqueness"));
    let other = s.create_group("Other Team", &[]).await;
    let rename = TestServer::patch_op(json!([{"op": "replace", "path": "displayName", "value": "Platform Team"}]));
    assert_scim_error(&s.patch(&format!("/Groups/{other}"), &rename).await, 409, Some("uniqueness"));
    // Freed by a delete.
    assert_status(&s.delete(&format!("/Groups/{g}")).await, StatusCode::NO_CONTENT);
    s.create_group("Platform Team", &[]).await;
}

#[tokio::test]
async fn external_id_is_not_forced_unique() {
    let s = TestServer::start().await;
    for name in ["one@x.com", "two@x.com"] {
        let r = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": name, "externalId": "shared"})).await;
        assert_status(&r, StatusCode::CREATED);
    }
    assert_eq!(s.ids_matching("/Users", r#"externalId eq "shared""#).await.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// ETags

#[tokio::test]
async fn etag_header_equals_meta_version_on_every_resource_answer_and_changes_on_write() {
    let s = TestServer::start().await;
    let c = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "etag@x.com"})).await;
    assert_status(&c, StatusCode::CREATED);
    let id = c.body["id"].as_str().expect("id").to_string();
    let mut versions = Vec::new();
    let check = |r: &Reply| {
        let etag = r.header("etag").expect("ETag header").to_string();
        assert_eq!(Some(etag.as_str()), r.body["meta"]["version"].as_str(), "{}", r.text);
        assert!(etag.starts_with("W/\""), "a weak ETag: {etag}");
        etag
    };
    versions.push(check(&c));
    versions.push(check(&s.get(&format!("/Users/{id}")).await));
    let put =
        s.put(&format!("/Users/{id}"), &json!({"schemas": [CORE_USER], "userName": "etag@x.com", "title": "t"})).await;
    versions.push(check(&put));
    let patch = s
        .patch(&format!("/Users/{id}"), &TestServer::patch_op(json!([{"op": "add", "path": "nickName", "value": "e"}])))
        .await;
    versions.push(check(&patch));
    assert_eq!(versions[0], versions[1], "a read does not change the version");
    assert_ne!(versions[1], versions[2]);
    assert_ne!(versions[2], versions[3]);
    let g = s.post("/Groups", &json!({"schemas": [CORE_GROUP], "displayName": "ETags"})).await;
    let v0 = check(&g);
    let gid = g.body["id"].as_str().expect("id");
    let r = s
        .patch(
            &format!("/Groups/{gid}"),
            &TestServer::patch_op(json!([{"op": "add", "path": "members", "value": [{"value": id}]}])),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let v1 = r.header("etag").expect("ETag on 204").to_string();
    assert_ne!(v0, v1, "a membership change is a new version of the group");
    assert_eq!(check(&s.get(&format!("/Groups/{gid}")).await), v1);
}

#[tokio::test]
async fn if_match_mismatch_is_412_and_nothing_changes() {
    let s = TestServer::start().await;
    let id = s.create_user("ifmatch@x.com").await;
    let current = s.get(&format!("/Users/{id}")).await;
    let etag = current.header("etag").expect("etag").to_string();
    let stale = [("If-Match", "W/\"999\"")];
    let patch = TestServer::patch_op(json!([{"op": "replace", "path": "title", "value": "x"}]));
    let put = json!({"schemas": [CORE_USER], "userName": "ifmatch@x.com", "title": "x"});
    for (m, body) in [(Method::PATCH, Some(&patch)), (Method::PUT, Some(&put)), (Method::DELETE, None)] {
        let r = s.send(m.clone(), &format!("/Users/{id}"), body, &stale).await;
        assert_scim_error(&r, 412, None);
        assert_eq!(
            s.get(&format!("/Users/{id}")).await.body,
            current.body,
            "{m} with a stale If-Match changed the user"
        );
    }
    let r = s.send(Method::PATCH, &format!("/Users/{id}"), Some(&patch), &[("If-Match", &etag)]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["title"], "x");
    let r = s.send(Method::PATCH, &format!("/Users/{id}"), Some(&patch), &[("If-Match", "*")]).await;
    assert_status(&r, StatusCode::OK);
    // The old version no longer matches.
    let r = s.send(Method::DELETE, &format!("/Users/{id}"), None, &[("If-Match", &etag)]).await;
    assert_scim_error(&r, 412, None);
}

#[tokio::test]
async fn if_none_match_with_the_current_version_is_304() {
    let s = TestServer::start().await;
    let id = s.create_user("ifnone@x.com").await;
    let etag = s.get(&format!("/Users/{id}")).await.header("etag").expect("etag").to_string();
    let r = s.send(Method::GET, &format!("/Users/{id}"), None, &[("If-None-Match", &etag)]).await;
    assert_status(&r, StatusCode::NOT_MODIFIED);
    assert!(r.text.is_empty());
    let r = s.send(Method::GET, &format!("/Users/{id}"), None, &[("If-None-Match", "W/\"12345\"")]).await;
    assert_status(&r, StatusCode::OK);
    s.patch(&format!("/Users/{id}"), &TestServer::patch_op(json!([{"op": "add", "path": "title", "value": "new"}])))
        .await;
    let r = s.send(Method::GET, &format!("/Users/{id}"), None, &[("If-None-Match", &etag)]).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body["title"], "new");
}

// ---------------------------------------------------------------------------------------------
// Bulk

#[tokio::test]
async fn bulk_resolves_bulk_id_references_across_operations_in_any_order() {
    let s = TestServer::start().await;
    // The group comes first and names users created later in the same request.
    let ops = json!([
        {"method": "POST", "path": "/Groups", "bulkId": "g1",
         "data": {"schemas": [CORE_GROUP], "displayName": "Bulk Group",
                  "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
        bulk_user("u1", "bulk1@x.com"),
        bulk_user("u2", "bulk2@x.com"),
        {"method": "PATCH", "path": "/Users/bulkId:u1",
         "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                  "Operations": [{"op": "add", "path": "title", "value": "Bulk"}]}},
        {"method": "PUT", "path": "/Users/bulkId:u2",
         "data": {"schemas": [CORE_USER], "userName": "bulk2@x.com", "nickName": "two"}}
    ]);
    let r = s.post("/Bulk", &bulk(ops)).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some(SCIM_JSON));
    assert_eq!(r.body["schemas"], json!([BULK_RESPONSE]));
    let results = r.body["Operations"].as_array().expect("Operations");
    assert_eq!(results.len(), 5, "{}", r.text);
    let by_bulk_id = |b: &str| results.iter().find(|o| o["bulkId"] == b).unwrap_or_else(|| panic!("{b}: {}", r.text));
    for b in ["g1", "u1", "u2"] {
        assert_eq!(by_bulk_id(b)["status"], "201", "{}", r.text);
    }
    assert!(results.iter().all(|o| o["status"] == "201" || o["status"] == "200"), "{}", r.text);
    let (gid, u1, u2) =
        (id_from_location(by_bulk_id("g1")), id_from_location(by_bulk_id("u1")), id_from_location(by_bulk_id("u2")));
    let group = s.get(&format!("/Groups/{gid}")).await.body;
    let mut members: Vec<&str> =
        group["members"].as_array().expect("members").iter().filter_map(|m| m["value"].as_str()).collect();
    members.sort();
    let mut expected = [u1.as_str(), u2.as_str()];
    expected.sort();
    assert_eq!(members, expected, "no member is the literal 'bulkId:…'");
    assert_eq!(s.get(&format!("/Users/{u1}")).await.body["title"], "Bulk");
    assert_eq!(s.get(&format!("/Users/{u2}")).await.body["nickName"], "two");
    assert_eq!(s.get(&format!("/Users/{u1}")).await.body["groups"][0]["value"], gid.as_str());
}

#[tokio::test]
async fn bulk_reports_each_failure_and_fail_on_errors_stops_the_rest() {
    let s = TestServer::start().await;
    s.create_user("taken@x.com").await;
    let ops = json!([
        bulk_user("a", "taken@x.com"),
        bulk_user("b", "free1@x.com"),
        bulk_user("c", "taken@x.com"),
        bulk_user("d", "free2@x.com")
    ]);
    // Without failOnErrors every operation runs.
    let r = s.post("/Bulk", &bulk(ops.clone())).await;
    assert_status(&r, StatusCode::OK);
    let statuses: Vec<&str> =
        r.body["Operations"].as_array().expect("ops").iter().map(|o| o["status"].as_str().expect("status")).collect();
    assert_eq!(statuses, ["409", "201", "409", "201"], "{}", r.text);
    let err = &r.body["Operations"][0]["response"];
    assert_eq!(err["scimType"], "uniqueness");
    assert_eq!(err["status"], "409");
    // With failOnErrors: 1 the server stops after the first error.
    let ops2 = json!([bulk_user("a", "taken@x.com"), bulk_user("b", "free3@x.com"), bulk_user("c", "free4@x.com")]);
    let mut body = bulk(ops2);
    body["failOnErrors"] = json!(1);
    let r = s.post("/Bulk", &body).await;
    assert_status(&r, StatusCode::OK);
    let done = r.body["Operations"].as_array().expect("ops");
    assert_eq!(done.len(), 1, "{}", r.text);
    assert_eq!(done[0]["status"], "409");
    assert_eq!(s.ids_matching("/Users", r#"userName eq "free3@x.com""#).await.len(), 0, "nothing after the limit ran");
    // failOnErrors: 2 lets the first error pass.
    let mut body = bulk(json!([
        bulk_user("a", "taken@x.com"),
        bulk_user("b", "free5@x.com"),
        bulk_user("c", "taken@x.com"),
        bulk_user("d", "free6@x.com")
    ]));
    body["failOnErrors"] = json!(2);
    let r = s.post("/Bulk", &body).await;
    let statuses: Vec<&str> =
        r.body["Operations"].as_array().expect("ops").iter().map(|o| o["status"].as_str().expect("status")).collect();
    assert_eq!(statuses, ["409", "201", "409"], "{}", r.text);
}

#[tokio::test]
async fn bulk_with_an_unresolvable_bulk_id_fails_that_operation_only() {
    let s = TestServer::start().await;
    let ops = json!([
        {"method": "PATCH", "path": "/Users/bulkId:nope",
         "data": {"Operations": [{"op": "add", "path": "title", "value": "x"}]}},
        bulk_user("ok", "resolvable@x.com")
    ]);
    let r = s.post("/Bulk", &bulk(ops)).await;
    assert_status(&r, StatusCode::OK);
    let results = r.body["Operations"].as_array().expect("ops");
    assert_eq!(results[0]["status"], "409", "{}", r.text);
    assert_eq!(results[1]["status"], "201", "{}", r.text);
}

#[tokio::test]
async fn bulk_over_max_operations_or_max_payload_size_is_413_and_advertised() {
    let (s, _tmp) = server_with(
        |c| {
            c.limits.bulk_max_operations = 3;
            c.limits.bulk_max_payload_bytes = 4096;
        },
        &[],
    )
    .await;
    let spc = s.get("/ServiceProviderConfig").await.body;
    assert_eq!(spc["bulk"]["maxOperations"], json!(3));
    assert_eq!(spc["bulk"]["maxPayloadSize"], json!(4096));
    let four: Vec<Value> = (0..4).map(|i| bulk_user(&format!("b{i}"), &format!("max{i}@x.com"))).collect();
    let r = s.post("/Bulk", &bulk(Value::Array(four))).await;
    assert_scim_error(&r, 413, None);
    assert_eq!(s.get("/Users?count=0").await.body["totalResults"], json!(0), "nothing of a refused bulk runs");
    let big = json!([{"method": "POST", "path": "/Users", "bulkId": "big",
                      "data": {"schemas": [CORE_USER], "userName": "big@x.com", "title": "x".repeat(5000)}}]);
    let r = s.post("/Bulk", &bulk(big)).await;
    assert_scim_error(&r, 413, None);
    let three: Vec<Value> = (0..3).map(|i| bulk_user(&format!("b{i}"), &format!("ok{i}@x.com"))).collect();
    assert_status(&s.post("/Bulk", &bulk(Value::Array(three))).await, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Errors, media types, health, metrics

#[tokio::test]
async fn missing_or_wrong_token_is_401_with_www_authenticate_and_a_scim_body() {
    let s = TestServer::start().await;
    for auth in [None, Some("Bearer wrong-token-0000000000"), Some("Basic dXNlcjpwYXNz"), Some(TOKEN)] {
        for path in ["/Users", "/Groups/x", "/ServiceProviderConfig", "/Nope"] {
            let r = s.send_raw(Method::GET, path, None, &[], auth).await;
            assert_scim_error(&r, 401, None);
            assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{auth:?} {path}");
        }
    }
    let r = s
        .send_raw(
            Method::POST,
            "/Users",
            Some(br#"{"userName":"sneaky"}"#.to_vec()),
            &[("Content-Type", SCIM_JSON)],
            None,
        )
        .await;
    assert_scim_error(&r, 401, None);
    assert_eq!(s.get("/Users?count=0").await.body["totalResults"], json!(0), "nothing was written");
    // The admin token is not an IdP token.
    let r = s.send_raw(Method::GET, "/Users", None, &[], Some(&format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_scim_error(&r, 401, None);
}

#[tokio::test]
async fn unknown_routes_are_404_with_a_scim_body() {
    let s = TestServer::start().await;
    for path in [
        "/Nope",
        "/Users/does-not-exist",
        "/Groups/does-not-exist",
        "/Schemas/urn:nope",
        "/ResourceTypes/Nope",
        "/4f1c2c1e-7c6e-4a5e-9f2b-0a5d1c3e7b11",
    ] {
        assert_scim_error(&s.get(path).await, 404, None);
    }
    let r = s.get(&format!("{}/not-scim", s.root)).await;
    assert_scim_error(&r, 404, None);
    assert_scim_error(&s.delete("/Users/does-not-exist").await, 404, None);
    let put = json!({"schemas": [CORE_USER], "userName": "ghost@x.com"});
    assert_scim_error(&s.put("/Users/does-not-exist", &put).await, 404, None);
}

#[tokio::test]
async fn repeated_and_trailing_slashes_reach_the_same_endpoint_with_the_query_kept() {
    let s = TestServer::start().await;
    let u = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "slash@x.com"})).await;
    assert_status(&u, StatusCode::CREATED);
    let id = u.body["id"].as_str().expect("id");
    let base = &s.root;
    for path in [
        format!("{base}/scim/v2/Users/?filter=userName%20eq%20%22slash@x.com%22"),
        format!("{base}//scim//v2/Users?filter=userName%20eq%20%22slash@x.com%22"),
    ] {
        let r = s.get(&path).await;
        assert_status(&r, StatusCode::OK);
        assert_eq!(r.body["totalResults"], 1, "{path}: the filter survived normalization");
    }
    assert_eq!(s.get(&format!("{base}/scim/v2/Users/{id}/")).await.body["id"], id);
    assert_eq!(s.get(&format!("{base}/healthz/")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn discovery_endpoints_refuse_writes_with_405() {
    let s = TestServer::start().await;
    let body = json!({});
    for path in [
        "/ServiceProviderConfig",
        "/Schemas",
        "/ResourceTypes",
        &format!("/Schemas/{CORE_USER}"),
        "/ResourceTypes/User",
    ] {
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let r = s.send(m.clone(), path, Some(&body), &[]).await;
            assert_scim_error(&r, 405, None);
        }
    }
    assert_scim_error(&s.send(Method::DELETE, "/Users", None, &[]).await, 405, None);
    assert_scim_error(&s.send(Method::POST, "/Users/some-id", Some(&body), &[]).await, 405, None);
}

#[tokio::test]
async fn bodies_over_the_configured_limit_are_413() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let s = TestServer::start_with(test_config(tmp.path(), &[("SCIMBRIDGE_MAX_BODY_BYTES", "2048")])).await;
    let big = json!({"schemas": [CORE_USER], "userName": "big@x.com", "title": "x".repeat(3000)});
    assert_scim_error(&s.post("/Users", &big).await, 413, None);
    let small = json!({"schemas": [CORE_USER], "userName": "small@x.com", "title": "x".repeat(1000)});
    assert_status(&s.post("/Users", &small).await, StatusCode::CREATED);
    let id = s.ids_matching("/Users", r#"userName eq "small@x.com""#).await.remove(0);
    assert_scim_error(&s.put(&format!("/Users/{id}"), &big).await, 413, None);
    let big_patch = TestServer::patch_op(json!([{"op": "replace", "path": "title", "value": "y".repeat(3000)}]));
    assert_scim_error(&s.patch(&format!("/Users/{id}"), &big_patch).await, 413, None);
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["title"], "x".repeat(1000));
    // Without a Content-Length (chunked), the cap still holds.
    let status = chunked_post(&s, "/scim/v2/Users", &[&[b' '; 1000][..], &[b' '; 1000], &[b' '; 1000]]).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
}

/// POSTs a body in HTTP/1.1 chunks (no Content-Length) over a raw socket; returns the status line.
async fn chunked_post(s: &TestServer, path: &str, chunks: &[&[u8]]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.root.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: {SCIM_JSON}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    for chunk in chunks {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            break; // the server may answer and close before the whole body is sent
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn non_json_media_types_are_415_and_both_json_types_are_accepted() {
    let s = TestServer::start().await;
    let body = br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"media@x.com"}"#.to_vec();
    let auth = format!("Bearer {TOKEN}");
    for ct in ["text/plain", "application/xml", "application/x-www-form-urlencoded"] {
        let r = s.send_raw(Method::POST, "/Users", Some(body.clone()), &[("Content-Type", ct)], Some(&auth)).await;
        assert_scim_error(&r, 415, None);
    }
    for (i, ct) in
        ["application/json", "application/scim+json", "application/scim+json; charset=utf-8"].iter().enumerate()
    {
        let b = String::from_utf8(body.clone()).expect("utf8").replace("media@", &format!("media{i}@"));
        let r = s.send_raw(Method::POST, "/Users", Some(b.into_bytes()), &[("Content-Type", ct)], Some(&auth)).await;
        assert_status(&r, StatusCode::CREATED);
        assert_eq!(r.header("content-type"), Some(SCIM_JSON));
    }
}

#[tokio::test]
async fn invalid_json_is_400_invalid_syntax() {
    let s = TestServer::start().await;
    let auth = format!("Bearer {TOKEN}");
    let id = s.create_user("json@x.com").await;
    for body in [&b"{not json"[..], b"", b"{\"userName\": }", b"\xff\xfe", b"[1,2"] {
        for (m, path) in [
            (Method::POST, "/Users".to_string()),
            (Method::PATCH, format!("/Users/{id}")),
            (Method::POST, "/Bulk".into()),
        ] {
            let r = s.send_raw(m, &path, Some(body.to_vec()), &[("Content-Type", SCIM_JSON)], Some(&auth)).await;
            assert_scim_error(&r, 400, Some("invalidSyntax"));
        }
    }
}

#[tokio::test]
async fn me_is_501() {
    let s = TestServer::start().await;
    assert_scim_error(&s.get("/Me").await, 501, None);
}

#[tokio::test]
async fn every_scim_answer_is_application_scim_json() {
    let s = TestServer::start().await;
    let id = s.create_user("ct@x.com").await;
    let replies = vec![
        s.get("/Users").await,
        s.get(&format!("/Users/{id}")).await,
        s.get("/Groups").await,
        s.get("/Schemas").await,
        s.get("/ResourceTypes").await,
        s.get("/ServiceProviderConfig").await,
        s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "ct2@x.com"})).await,
        s.patch(&format!("/Users/{id}"), &TestServer::patch_op(json!([{"op": "add", "path": "title", "value": "t"}])))
            .await,
        s.put(&format!("/Users/{id}"), &json!({"schemas": [CORE_USER], "userName": "ct@x.com"})).await,
        s.post("/Users/.search", &json!({})).await,
        s.post("/Bulk", &bulk(json!([]))).await,
        s.get("/Users?filter=bad%20filter").await,
        s.get("/Nope").await,
        s.send_raw(Method::GET, "/Users", None, &[], None).await,
    ];
    for r in replies {
        assert_eq!(r.header("content-type"), Some(SCIM_JSON), "{} {}", r.status, r.text);
    }
}

#[tokio::test]
async fn healthz_needs_no_token_and_metrics_needs_the_admin_token() {
    let s = TestServer::start().await;
    let r = s.send_raw(Method::GET, &format!("{}/healthz", s.root), None, &[], None).await;
    assert_status(&r, StatusCode::OK);
    let metrics = format!("{}/metrics", s.root);
    let r = s.send_raw(Method::GET, &metrics, None, &[], None).await;
    assert_scim_error(&r, 401, None);
    let r = s.send_raw(Method::GET, &metrics, None, &[], Some(&format!("Bearer {TOKEN}"))).await;
    assert_scim_error(&r, 401, None);
    let r = s.send_raw(Method::GET, &metrics, None, &[], Some(&format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_status(&r, StatusCode::OK);
    assert!(r.text.contains("scimbridge_users"), "{}", r.text);
    assert!(!r.text.contains(TOKEN) && !r.text.contains(ADMIN_TOKEN));
}

// ---------------------------------------------------------------------------------------------
// Discovery

fn schema_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("schema JSON")
}

/// The served document without `meta.location`, and the committed one likewise.
fn without_location(mut v: Value) -> Value {
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("location");
    }
    v
}

#[tokio::test]
async fn schemas_and_resource_types_are_served_exactly_as_committed() {
    let s = TestServer::start().await;
    let files = ["User.json", "EnterpriseUser.json", "Group.json"];
    let list = s.get("/Schemas").await;
    assert_status(&list, StatusCode::OK);
    assert_eq!(list.body["totalResults"], json!(files.len()));
    let served = list.body["Resources"].as_array().expect("Resources");
    for file in files {
        let committed = schema_file(file);
        let id = committed["id"].as_str().expect("id").to_string();
        let in_list = served.iter().find(|d| d["id"] == id.as_str()).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(without_location(in_list.clone()), without_location(committed.clone()), "{file} in the list");
        let by_id = s.get(&format!("/Schemas/{id}")).await;
        assert_status(&by_id, StatusCode::OK);
        assert_eq!(without_location(by_id.body.clone()), without_location(committed), "{file} by id");
        let location = by_id.body["meta"]["location"].as_str().expect("location");
        assert_eq!(location, format!("{}/Schemas/{id}", s.base), "an absolute location");
    }
    let types = s.get("/ResourceTypes").await;
    assert_eq!(types.body["totalResults"], json!(2));
    for (file, id) in [("ResourceType-User.json", "User"), ("ResourceType-Group.json", "Group")] {
        let r = s.get(&format!("/ResourceTypes/{id}")).await;
        assert_status(&r, StatusCode::OK);
        assert_eq!(without_location(r.body), without_location(schema_file(file)), "{file}");
    }
    let spc = s.get("/ServiceProviderConfig").await;
    assert_status(&spc, StatusCode::OK);
    assert_eq!(without_location(spc.body.clone()), without_location(schema_file("ServiceProviderConfig.json")));
    for feature in ["patch", "bulk", "filter", "sort", "etag"] {
        assert_eq!(spc.body[feature]["supported"], true, "{feature}");
    }
    assert_scim_error(&s.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Nope").await, 404, None);
    assert_scim_error(&s.get("/ResourceTypes/Printer").await, 404, None);
}

// ---------------------------------------------------------------------------------------------
// Passwords, computed groups, persistence

#[tokio::test]
async fn a_password_is_accepted_on_every_write_and_never_returned() {
    let s = TestServer::start().await;
    let secret = "Pa55word-That-Must-Not-Leak";
    let r = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "pw@x.com", "password": secret})).await;
    assert_status(&r, StatusCode::CREATED);
    assert!(!r.text.contains(secret) && r.body.get("password").is_none());
    let id = r.body["id"].as_str().expect("id").to_string();
    let r = s
        .put(&format!("/Users/{id}"), &json!({"schemas": [CORE_USER], "userName": "pw@x.com", "password": "x-2"}))
        .await;
    assert_status(&r, StatusCode::OK);
    assert!(r.body.get("password").is_none());
    let r = s
        .patch(
            &format!("/Users/{id}"),
            &TestServer::patch_op(json!([{"op": "replace", "path": "password", "value": "x-3"}])),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert!(r.body.get("password").is_none());
    let r = s
        .patch(&format!("/Users/{id}"), &TestServer::patch_op(json!([{"op": "replace", "value": {"password": "x-4"}}])))
        .await;
    assert_status(&r, StatusCode::OK);
    for r in [s.get(&format!("/Users/{id}")).await, s.get("/Users").await, s.post("/.search", &json!({})).await] {
        for leaked in [secret, "x-2", "x-3", "x-4"] {
            assert!(!r.text.contains(leaked), "{}", r.text);
        }
    }
}

#[tokio::test]
async fn user_groups_are_computed_from_membership_and_read_only() {
    let s = TestServer::start().await;
    let u = s.create_user("member@x.com").await;
    assert!(s.get(&format!("/Users/{u}")).await.body.get("groups").is_none());
    let g1 = s.create_group("Alpha", &[&u]).await;
    let g2 = s.create_group("Beta", &[]).await;
    s.patch(
        &format!("/Groups/{g2}"),
        &TestServer::patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u}]}])),
    )
    .await;
    let groups = s.get(&format!("/Users/{u}")).await.body["groups"].clone();
    let mut got: Vec<(String, String)> = groups
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| (g["value"].as_str().expect("value").to_string(), g["display"].as_str().expect("display").to_string()))
        .collect();
    got.sort();
    let mut expected = vec![(g1.clone(), "Alpha".to_string()), (g2.clone(), "Beta".to_string())];
    expected.sort();
    assert_eq!(got, expected);
    // Renaming a group shows in display; deleting it removes it from the user.
    s.patch(
        &format!("/Groups/{g1}"),
        &TestServer::patch_op(json!([{"op": "replace", "path": "displayName", "value": "Alpha 2"}])),
    )
    .await;
    assert_status(&s.delete(&format!("/Groups/{g2}")).await, StatusCode::NO_CONTENT);
    let groups = s.get(&format!("/Users/{u}")).await.body["groups"].clone();
    assert_eq!(groups.as_array().map(Vec::len), Some(1), "{groups}");
    assert_eq!(groups[0]["value"], g1.as_str());
    assert_eq!(groups[0]["display"], "Alpha 2");
    // groups is readOnly: writing it through the user changes nothing.
    let r = s
        .patch(
            &format!("/Users/{u}"),
            &TestServer::patch_op(json!([{"op": "add", "value": {"groups": [{"value": g2}]}}])),
        )
        .await;
    assert!(r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST, "{}", r.text);
    let r =
        s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "sneaky@x.com", "groups": [{"value": g1}]})).await;
    assert_status(&r, StatusCode::CREATED);
    assert!(r.body.get("groups").is_none(), "{}", r.text);
    let members = s.get(&format!("/Groups/{g1}")).await.body["members"].clone();
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");
    // Deleting the user removes it from its groups.
    assert_status(&s.delete(&format!("/Users/{u}")).await, StatusCode::NO_CONTENT);
    assert!(s.get(&format!("/Groups/{g1}")).await.body.get("members").is_none());
}

#[tokio::test]
async fn everything_survives_a_restart_with_the_same_versions() {
    let s = TestServer::start().await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(s.create_user(&format!("persist{i}@x.com")).await);
    }
    s.patch(
        &format!("/Users/{}", users[0]),
        &TestServer::patch_op(json!([{"op": "replace", "path": "active", "value": false}])),
    )
    .await;
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let gid = s.create_group("Persisted", &refs[..3]).await;
    let before_users: Vec<Value> = {
        let mut v = Vec::new();
        for u in &users {
            v.push(s.get(&format!("/Users/{u}")).await.body);
        }
        v
    };
    let before_group = s.get(&format!("/Groups/{gid}")).await.body;
    let strip_location = |mut v: Value| {
        v["meta"].as_object_mut().expect("meta").remove("location");
        for k in ["groups", "members"] {
            if let Some(list) = v.get_mut(k).and_then(Value::as_array_mut) {
                for item in list.iter_mut() {
                    item.as_object_mut().expect("link").remove("$ref");
                }
                list.sort_by(|a, b| a["value"].as_str().cmp(&b["value"].as_str()));
            }
        }
        v
    };
    let s = s.restart().await;
    for (u, before) in users.iter().zip(before_users) {
        let after = s.get(&format!("/Users/{u}")).await;
        assert_status(&after, StatusCode::OK);
        assert_eq!(strip_location(after.body), strip_location(before), "user {u}");
    }
    let after_group = s.get(&format!("/Groups/{gid}")).await;
    assert_eq!(strip_location(after_group.body), strip_location(before_group));
    // Indexes survive too: uniqueness and filters.
    assert_eq!(s.ids_matching("/Users", r#"userName eq "PERSIST3@x.com""#).await, vec![users[3].clone()]);
    assert_eq!(s.ids_matching("/Groups", &format!(r#"members.value eq "{}""#, users[1])).await, vec![gid.clone()]);
    let dup = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": "persist2@x.com"})).await;
    assert_scim_error(&dup, 409, Some("uniqueness"));
    assert_eq!(s.get("/Users?count=0").await.body["totalResults"], json!(5));
    // New writes continue with fresh, distinct versions.
    let etag_before = s.get(&format!("/Users/{}", users[4])).await.header("etag").expect("etag").to_string();
    let r = s
        .patch(
            &format!("/Users/{}", users[4]),
            &TestServer::patch_op(json!([{"op": "add", "path": "title", "value": "after"}])),
        )
        .await;
    assert_ne!(r.header("etag").expect("etag"), etag_before);
}

/// Reads are served from a cache of records in front of the store (src/store/record_cache.rs):
/// every kind of write must be visible to the very next read of a record that was just read.
#[tokio::test]
async fn every_write_is_visible_to_the_next_read_of_a_record_read_before_it() {
    let s = TestServer::start().await;
    let uid = s.create_user("cached@example.com").await;
    let user = format!("/Users/{uid}");
    let by_name = "/Users?filter=userName%20eq%20%22cached%40example.com%22";
    let read = |path: String| {
        let s = &s;
        async move {
            let r = s.get(&path).await;
            assert_status(&r, StatusCode::OK);
            r.body
        }
    };
    let version = |v: &Value| v["meta"]["version"].as_str().expect("version").to_string();
    let cached = || async {
        let url = format!("{}/metrics", s.root);
        let r = s.send_raw(Method::GET, &url, None, &[], Some(&format!("Bearer {ADMIN_TOKEN}"))).await;
        let line = r.text.lines().find(|l| l.starts_with("scimbridge_record_cache_records ")).map(str::to_owned);
        line.expect("the record cache gauge").rsplit(' ').next().expect("value").parse::<f64>().expect("number")
    };

    let v0 = read(user.clone()).await;
    assert_eq!(read(by_name.into()).await["Resources"][0]["id"], uid.as_str());
    let patch = TestServer::patch_op(json!([{"op": "replace", "path": "displayName", "value": "After Patch"}]));
    assert_status(&s.patch(&user, &patch).await, StatusCode::OK);
    let v1 = read(user.clone()).await;
    assert_eq!(v1["displayName"], "After Patch");
    assert_ne!(version(&v0), version(&v1));
    assert_eq!(read(by_name.into()).await["Resources"][0]["displayName"], "After Patch");

    let put = json!({"schemas": [CORE_USER], "userName": "cached@example.com", "displayName": "After Put"});
    assert_status(&s.put(&user, &put).await, StatusCode::OK);
    assert_eq!(read(user.clone()).await["displayName"], "After Put");
    assert_eq!(read(by_name.into()).await["Resources"][0]["displayName"], "After Put");

    let op = json!([{"method": "PATCH", "path": user, "data": TestServer::patch_op(
        json!([{"op": "replace", "path": "displayName", "value": "After Bulk"}]))}]);
    assert_status(&s.post("/Bulk", &bulk(op)).await, StatusCode::OK);
    assert_eq!(read(user.clone()).await["displayName"], "After Bulk");

    let gid = s.create_group("cached-group", &[]).await;
    let group = format!("/Groups/{gid}");
    let g0 = read(group.clone()).await;
    let add = TestServer::patch_op(json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]));
    assert_status(&s.patch(&group, &add).await, StatusCode::NO_CONTENT);
    let g1 = read(group.clone()).await;
    assert_eq!(g1["members"][0]["value"], uid.as_str());
    assert_ne!(version(&g0), version(&g1));
    assert_eq!(read(user.clone()).await["groups"][0]["value"], gid.as_str());
    assert_eq!(cached().await, 2.0, "the user and the group, each once");

    assert_status(&s.delete(&user).await, StatusCode::NO_CONTENT);
    assert_status(&s.get(&user).await, StatusCode::NOT_FOUND);
    assert_eq!(read(by_name.into()).await["totalResults"], 0);
    assert_eq!(read(group.clone()).await.get("members").and_then(Value::as_array).map_or(0, Vec::len), 0);
    assert_status(&s.delete(&group).await, StatusCode::NO_CONTENT);
    assert_status(&s.get(&group).await, StatusCode::NOT_FOUND);
    assert_eq!(cached().await, 0.0, "deleted records leave the cache");
}
