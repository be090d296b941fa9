//! A value of another JSON type than its schema declares (`"userName": 42`, `"title": true`,
//! `"displayName": {...}`) gets 400 `invalidValue` naming the attribute, through every write
//! path (POST, PUT, PATCH with and without `path`, Bulk), and changes nothing; it is never
//! coerced and stored. The IdP quirks that stay accepted: Entra's `"True"`/`"False"` booleans and
//! `manager` as a plain string (field guide §0.2, §0.10).

use serde_json::{json, Value};

use crate::support::server::{assert_scim_error, TestServer};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Values of a wrong JSON type for a string attribute.
fn not_strings() -> [Value; 4] {
    [json!(42), json!(true), json!({"value": "x"}), json!(1.5)]
}

fn assert_names(r: &crate::support::server::Reply, attribute: &str) {
    assert_scim_error(r, 400, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("'{attribute}'")), "the detail names {attribute}: {detail}");
}

#[tokio::test]
async fn post_and_put_refuse_a_user_name_that_is_not_a_string_and_store_nothing() {
    let s = TestServer::start().await;
    for bad in not_strings() {
        let r = s.post("/Users", &json!({"schemas": [CORE_USER], "userName": bad})).await;
        assert_names(&r, "userName");
    }
    assert!(s.ids_matching("/Users", r#"userName eq "42""#).await.is_empty(), "42 was not stored as \"42\"");
    assert!(s.list("/Users").await.is_empty(), "no user was created");

    let id = s.create_user("kept@x.com").await;
    let before = s.get(&format!("/Users/{id}")).await.body;
    for (attr, body) in [
        ("userName", json!({"schemas": [CORE_USER], "userName": 42})),
        ("title", json!({"schemas": [CORE_USER], "userName": "kept@x.com", "title": false})),
        ("name.givenName", json!({"schemas": [CORE_USER], "userName": "kept@x.com", "name": {"givenName": 7}})),
        (
            "employeeNumber",
            json!({"schemas": [CORE_USER], "userName": "kept@x.com", ENTERPRISE: {"employeeNumber": 1234}}),
        ),
        ("active", json!({"schemas": [CORE_USER], "userName": "kept@x.com", "active": "maybe"})),
    ] {
        let r = s.put(&format!("/Users/{id}"), &body).await;
        assert_names(&r, attr);
    }
    let after = s.get(&format!("/Users/{id}")).await.body;
    assert_eq!(after, before, "a refused PUT changes nothing");
}

#[tokio::test]
async fn patch_refuses_wrong_types_with_and_without_path_and_changes_nothing() {
    let s = TestServer::start().await;
    let id = s.create_user("pat@x.com").await;
    let before = s.get(&format!("/Users/{id}")).await.body;
    for (attr, ops) in [
        ("userName", json!([{"op": "replace", "path": "userName", "value": 42}])),
        ("userName", json!([{"op": "replace", "value": {"userName": 42}}])),
        ("displayName", json!([{"op": "add", "path": "displayName", "value": {"x": 1}}])),
        // The first operation is valid: the whole PATCH is refused, so it does not land either.
        (
            "title",
            json!([{"op": "replace", "path": "nickName", "value": "nick"}, {"op": "add", "path": "title", "value": true}]),
        ),
    ] {
        let r = s.patch(&format!("/Users/{id}"), &TestServer::patch_op(ops)).await;
        assert_names(&r, attr);
    }
    assert_eq!(s.get(&format!("/Users/{id}")).await.body, before, "a refused PATCH changes nothing");

    let gid = s.create_group("Team", &[]).await;
    let r = s
        .patch(
            &format!("/Groups/{gid}"),
            &TestServer::patch_op(json!([{"op": "replace", "path": "displayName", "value": 5}])),
        )
        .await;
    assert_names(&r, "displayName");
    let r = s.post("/Groups", &json!({"schemas": [CORE_GROUP], "displayName": false})).await;
    assert_names(&r, "displayName");
    let r = s
        .patch(
            &format!("/Groups/{gid}"),
            &TestServer::patch_op(json!([{"op": "add", "path": "members", "value": [{"value": 7}]}])),
        )
        .await;
    assert_names(&r, "members.value");
    assert_eq!(s.get(&format!("/Groups/{gid}")).await.body["displayName"], "Team");
}

#[tokio::test]
async fn bulk_answers_invalid_value_per_operation_and_runs_the_valid_ones() {
    let s = TestServer::start().await;
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"schemas": [CORE_USER], "userName": 42}},
            {"method": "POST", "path": "/Users", "bulkId": "good", "data": {"schemas": [CORE_USER], "userName": "fine@x.com"}}
        ]
    });
    let r = s.post("/Bulk", &body).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    let ops = r.body["Operations"].as_array().expect("Operations");
    assert_eq!(ops[0]["status"], "400", "{}", r.text);
    assert_eq!(ops[0]["response"]["scimType"], "invalidValue", "{}", r.text);
    assert!(ops[0]["response"]["detail"].as_str().is_some_and(|d| d.contains("'userName'")), "{}", r.text);
    assert_eq!(ops[1]["status"], "201", "{}", r.text);
    let names: Vec<Value> = s.list("/Users").await.iter().map(|u| u["userName"].clone()).collect();
    assert_eq!(names, [json!("fine@x.com")]);
}

#[tokio::test]
async fn the_documented_idp_quirks_still_work() {
    let s = TestServer::start().await;
    // Entra's default dialect: booleans as strings (also in the MS Postman collection).
    let u = s.create_user_from(json!({"schemas": [CORE_USER], "userName": "entra@x.com", "active": "True"})).await;
    assert_eq!(u["active"], true);
    let id = u["id"].as_str().expect("id");
    let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
    assert_eq!(s.patch(&format!("/Users/{id}"), &TestServer::patch_op(ops)).await.status.as_u16(), 200);
    assert_eq!(s.get(&format!("/Users/{id}")).await.body["active"], false);
    // `manager` as a plain id string.
    let ops = json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "boss-id"}]);
    let r = s.patch(&format!("/Users/{id}"), &TestServer::patch_op(ops)).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(s.get(&format!("/Users/{id}")).await.body[ENTERPRISE]["manager"]["value"], "boss-id");
}
