//! PATCH (RFC 7644 §3.5.2) at its edges over real HTTP: atomicity, the error types (`noTarget`,
//! `invalidPath`, `invalidSyntax`), replace-that-adds, idempotent member adds, mixed member
//! operations, the 200/204 answers of users and groups, and a large membership change.

use crate::support::server::{assert_scim_error, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn ops(v: Value) -> Value {
    TestServer::patch_op(v)
}

async fn rich_user(s: &TestServer, name: &str) -> String {
    s.create_user_from(json!({
        "schemas": [CORE_USER],
        "userName": name,
        "displayName": "Original",
        "name": {"givenName": "Ori", "familyName": "Ginal"},
        "emails": [{"type": "work", "value": "w@x.com", "primary": true}, {"type": "home", "value": "h@x.com"}],
        "active": true
    }))
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn member_count(s: &TestServer, gid: &str) -> usize {
    let g = s.get(&format!("/Groups/{gid}")).await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    g.body["members"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_failing_second_operation_leaves_the_resource_unchanged() {
    let s = TestServer::start().await;
    let id = rich_user(&s, "atomic@x.com").await;
    let before = s.get(&format!("/Users/{id}")).await.body;
    let cases = [
        // second op: a path that does not parse
        json!([{"op": "replace", "path": "displayName", "value": "Changed"}, {"op": "replace", "path": "emails[type eq", "value": "x"}]),
        // second op: path-less remove
        json!([{"op": "add", "path": "nickName", "value": "nick"}, {"op": "remove"}]),
        // second op: unknown op
        json!([{"op": "replace", "path": "active", "value": false}, {"op": "frobnicate", "path": "title", "value": "x"}]),
        // second op: a readOnly attribute
        json!([{"op": "replace", "path": "title", "value": "t"}, {"op": "replace", "path": "id", "value": "new-id"}]),
        // second op: a wrong type for a boolean
        json!([{"op": "replace", "path": "title", "value": "t"}, {"op": "replace", "path": "active", "value": "maybe"}]),
    ];
    for case in cases {
        let r = s.patch(&format!("/Users/{id}"), &ops(case.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{case}: {}", r.text);
        assert_scim_error(&r, 400, None);
        let after = s.get(&format!("/Users/{id}")).await.body;
        assert_eq!(after, before, "{case} must leave the user as it was");
    }
}

#[tokio::test]
async fn a_failing_member_operation_leaves_group_membership_unchanged() {
    let s = TestServer::start().await;
    let (a, b) = (s.create_user("ga@x.com").await, s.create_user("gb@x.com").await);
    let gid = s.create_group("Atomic", &[&a]).await;
    let body = ops(json!([
        {"op": "add", "path": "members", "value": [{"value": b}]},
        {"op": "remove", "path": "members[value eq \"x\""}
    ]));
    let r = s.patch(&format!("/Groups/{gid}"), &body).await;
    assert_scim_error(&r, 400, None);
    assert_eq!(member_count(&s, &gid).await, 1);
    assert!(s.get(&format!("/Users/{b}")).await.body.get("groups").is_none());
}

#[tokio::test]
async fn path_less_remove_is_no_target() {
    let s = TestServer::start().await;
    let id = rich_user(&s, "notarget@x.com").await;
    let r = s.patch(&format!("/Users/{id}"), &ops(json!([{"op": "remove"}]))).await;
    assert_scim_error(&r, 400, Some("noTarget"));
}

#[tokio::test]
async fn a_path_that_does_not_parse_is_invalid_path() {
    let s = TestServer::start().await;
    let id = rich_user(&s, "badpath@x.com").await;
    for path in ["emails[type eq \"work\"", "name..givenName", "emails[type eq \"work\"].value.extra", "\"quoted\""] {
        let r = s.patch(&format!("/Users/{id}"), &ops(json!([{"op": "replace", "path": path, "value": "x"}]))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        let t = r.body["scimType"].as_str().unwrap_or("");
        assert!(t == "invalidPath" || t == "invalidFilter", "{path}: {}", r.text);
    }
    let r = s
        .patch(&format!("/Users/{id}"), &ops(json!([{"op": "replace", "path": "name..givenName", "value": "x"}])))
        .await;
    assert_scim_error(&r, 400, Some("invalidPath"));
}

#[tokio::test]
async fn body_errors_are_invalid_syntax() {
    let s = TestServer::start().await;
    let id = rich_user(&s, "syntax@x.com").await;
    for body in [
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
        json!([{"op": "add", "path": "title", "value": "x"}]),
        ops(json!([{"op": "add", "path": "title"}])),
    ] {
        let r = s.patch(&format!("/Users/{id}"), &body).await;
        assert_scim_error(&r, 400, Some("invalidSyntax"));
    }
}

#[tokio::test]
async fn replace_of_a_missing_attribute_adds_it_and_remove_deletes_it() {
    let s = TestServer::start().await;
    let id = rich_user(&s, "adds@x.com").await;
    let r = s
        .patch(
            &format!("/Users/{id}"),
            &ops(json!([
                {"op": "replace", "path": "title", "value": "Boss"},
                {"op": "replace", "path": "name.middleName", "value": "M"},
                {"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"}
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["title"], "Boss");
    assert_eq!(r.body["name"]["middleName"], "M");
    assert_eq!(r.body["name"]["givenName"], "Ori");
    assert_eq!(r.body["phoneNumbers"], json!([{"type": "mobile", "value": "+1 555"}]));
    let r = s
        .patch(
            &format!("/Users/{id}"),
            &ops(json!([{"op": "remove", "path": "title"}, {"op": "remove", "path": "emails[type eq \"home\"]"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("title").is_none());
    assert_eq!(r.body["emails"].as_array().map(Vec::len), Some(1), "{}", r.text);
    assert_eq!(r.body["emails"][0]["type"], "work");
    // Removing what is not there is not an error (RFC 7644 §3.5.2.2 only requires a target path).
    let r = s.patch(&format!("/Users/{id}"), &ops(json!([{"op": "remove", "path": "nickName"}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn add_to_a_multi_valued_attribute_appends_and_primary_stays_unique() {
    let s = TestServer::start().await;
    let id = rich_user(&s, "append@x.com").await;
    let r = s
        .patch(
            &format!("/Users/{id}"),
            &ops(json!([{"op": "add", "path": "emails", "value": [{"type": "other", "value": "o@x.com", "primary": true}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let emails = r.body["emails"].as_array().expect("emails");
    assert_eq!(emails.len(), 3, "{}", r.text);
    let primaries: Vec<&Value> = emails.iter().filter(|e| e["primary"] == true).collect();
    assert_eq!(primaries.len(), 1, "at most one primary (RFC 7643 §2.4): {}", r.text);
    assert_eq!(primaries[0]["value"], "o@x.com");
}

#[tokio::test]
async fn user_patch_answers_200_with_the_resource_and_group_patch_204_unless_attributes_are_asked() {
    let s = TestServer::start().await;
    let id = rich_user(&s, "answers@x.com").await;
    let r = s.patch(&format!("/Users/{id}"), &ops(json!([{"op": "replace", "path": "nickName", "value": "n"}]))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["nickName"], "n");
    assert_eq!(r.body["userName"], "answers@x.com");

    let gid = s.create_group("Answers", &[]).await;
    let rename = ops(json!([{"op": "replace", "path": "displayName", "value": "Answers 2"}]));
    let r = s.patch(&format!("/Groups/{gid}"), &rename).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(r.text.is_empty());
    assert!(r.header("etag").is_some(), "a 204 still carries the new version");

    let add = ops(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
    let r = s.patch(&format!("/Groups/{gid}?attributes=displayName"), &add).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["displayName"], "Answers 2");
    assert_eq!(r.body["id"], gid.as_str());
    assert!(r.body.get("members").is_none(), "{}", r.text);
    let r = s
        .patch(
            &format!("/Groups/{gid}?attributes=members"),
            &ops(json!([{"op": "replace", "path": "displayName", "value": "A3"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["members"][0]["value"], id.as_str(), "{}", r.text);
}

#[tokio::test]
async fn adding_an_existing_member_is_a_no_op_success() {
    let s = TestServer::start().await;
    let a = s.create_user("dup@x.com").await;
    let gid = s.create_group("Dups", &[&a]).await;
    let add = ops(json!([{"op": "add", "path": "members", "value": [{"value": a}, {"value": a}]}]));
    for _ in 0..2 {
        let r = s.patch(&format!("/Groups/{gid}"), &add).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    assert_eq!(member_count(&s, &gid).await, 1);
    assert_eq!(s.get(&format!("/Users/{a}")).await.body["groups"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn add_and_remove_mixed_in_one_request_apply_in_order() {
    let s = TestServer::start().await;
    let (a, b, c) = (s.create_user("ma@x.com").await, s.create_user("mb@x.com").await, s.create_user("mc@x.com").await);
    let gid = s.create_group("Mixed", &[&a, &b]).await;
    let body = ops(json!([
        {"op": "remove", "path": format!("members[value eq \"{a}\"]")},
        {"op": "add", "path": "members", "value": [{"value": c}]},
        {"op": "Remove", "path": "members", "value": [{"value": b}]},
        {"op": "add", "path": "members", "value": [{"value": a}]},
        {"op": "remove", "path": format!("members[value eq \"{c}\"]")}
    ]));
    let r = s.patch(&format!("/Groups/{gid}"), &body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let g = s.get(&format!("/Groups/{gid}")).await.body;
    let ids: Vec<&str> = g["members"].as_array().expect("members").iter().filter_map(|m| m["value"].as_str()).collect();
    assert_eq!(ids, [a.as_str()], "{g}");
}

#[tokio::test]
async fn remove_of_members_without_a_filter_or_value_clears_the_group() {
    let s = TestServer::start().await;
    let (a, b) = (s.create_user("ca@x.com").await, s.create_user("cb@x.com").await);
    let gid = s.create_group("Clear", &[&a, &b]).await;
    let r = s.patch(&format!("/Groups/{gid}"), &ops(json!([{"op": "remove", "path": "members"}]))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(member_count(&s, &gid).await, 0);
}

#[tokio::test]
async fn members_that_do_not_exist_are_refused() {
    let s = TestServer::start().await;
    let gid = s.create_group("Ghosts", &[]).await;
    let r = s
        .patch(
            &format!("/Groups/{gid}"),
            &ops(json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}])),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert_scim_error(&r, r.status.as_u16(), None);
    assert_eq!(member_count(&s, &gid).await, 0);
}

#[tokio::test]
async fn patch_of_an_unknown_resource_is_404() {
    let s = TestServer::start().await;
    let body = ops(json!([{"op": "replace", "path": "displayName", "value": "x"}]));
    assert_scim_error(&s.patch("/Users/does-not-exist", &body).await, 404, None);
    assert_scim_error(&s.patch("/Groups/does-not-exist", &body).await, 404, None);
}

#[tokio::test]
async fn a_thousand_members_added_in_one_patch_then_ten_removed_leaves_990() {
    let s = TestServer::start().await;
    let ids: Vec<String> = {
        // Create the users through /Bulk, 1,000 in one request, to keep the test fast.
        let operations: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"),
                       "data": {"schemas": [CORE_USER], "userName": format!("bulk{i:04}@x.com")}})
            })
            .collect();
        let r = s
            .post(
                "/Bulk",
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", &r.text[..r.text.len().min(500)]);
        r.body["Operations"]
            .as_array()
            .expect("Operations")
            .iter()
            .map(|o| {
                assert_eq!(o["status"], "201", "{o}");
                o["location"].as_str().expect("location").rsplit('/').next().expect("id").to_string()
            })
            .collect()
    };
    assert_eq!(ids.len(), 1000);
    let gid = s.create_group("Big", &[]).await;
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let r = s.patch(&format!("/Groups/{gid}"), &ops(json!([{"op": "add", "path": "members", "value": members}]))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(member_count(&s, &gid).await, 1000);
    let removals: Vec<Value> =
        ids[..10].iter().map(|id| json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})).collect();
    let r = s.patch(&format!("/Groups/{gid}"), &ops(Value::Array(removals))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let g = s.get(&format!("/Groups/{gid}")).await.body;
    let left: std::collections::HashSet<&str> =
        g["members"].as_array().expect("members").iter().filter_map(|m| m["value"].as_str()).collect();
    assert_eq!(left.len(), 990);
    assert!(ids[..10].iter().all(|id| !left.contains(id.as_str())));
    assert!(ids[10..].iter().all(|id| left.contains(id.as_str())));
    let excluded = s.get(&format!("/Groups/{gid}?excludedAttributes=members")).await;
    assert!(excluded.body.get("members").is_none());
}
