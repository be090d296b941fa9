//! Queries over real HTTP: the RFC 7644 §3.4.2.2 filter grammar (every operator, precedence,
//! grouping, value paths, sub-attributes, URN-qualified names, case rules, dateTime and boolean
//! comparison, `pr`), invalid filters, sorting, paging, `POST /.search`, and the projection
//! parameters `attributes`/`excludedAttributes` with the `returned` rules (RFC 7644 §3.4.2.5,
//! RFC 7643 §2.2) on reads and writes.

use crate::support::server::{assert_scim_error, encode, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The fixture: four users built so that every operator, and precedence, give distinct answers.
struct Fixture {
    s: TestServer,
    alice: String,
    bob: String,
    carol: String,
    dave: String,
    group: String,
}

async fn user(s: &TestServer, body: Value) -> String {
    let mut body = body;
    body["schemas"] = json!([CORE_USER, ENTERPRISE]);
    s.create_user_from(body).await["id"].as_str().expect("id").to_string()
}

async fn fixture() -> Fixture {
    let s = TestServer::start().await;
    let alice = user(
        &s,
        json!({
            "userName": "Alice@Example.com", "externalId": "EXT-a", "title": "Engineer", "active": true,
            "nickName": "al", "password": "Secret-Alice-1",
            "name": {"givenName": "Alice", "familyName": "Smith"},
            "emails": [{"type": "work", "value": "alice@x.com", "primary": true}, {"type": "home", "value": "alice@home.org"}],
            ENTERPRISE: {"employeeNumber": "100", "department": "R&D"}
        }),
    )
    .await;
    let bob = user(
        &s,
        json!({
            "userName": "bob@example.com", "externalId": "ext-b", "title": "Manager", "active": false,
            "name": {"givenName": "Bob", "familyName": "Jones"},
            "emails": [{"type": "work", "value": "bob@y.com"}, {"type": "home", "value": "bob@x.com"}],
            ENTERPRISE: {"employeeNumber": "200", "department": "Sales"}
        }),
    )
    .await;
    let carol = user(
        &s,
        json!({
            "userName": "carol@example.org", "externalId": "EXT-c", "active": true,
            "name": {"givenName": "Carol", "familyName": "Smith"},
            "emails": [{"type": "home", "value": "carol@x.com"}],
            ENTERPRISE: {"department": "Sales"}
        }),
    )
    .await;
    let dave = user(
        &s,
        json!({"userName": "dave@example.org", "title": "Engineer", "active": false,
               "name": {"givenName": "Dave", "familyName": "Brown"}}),
    )
    .await;
    let group = s.create_group("Admins", &[&alice, &carol]).await;
    s.create_group("Everyone", &[&alice, &bob, &carol, &dave]).await;
    Fixture { s, alice, bob, carol, dave, group }
}

impl Fixture {
    fn ids(&self, names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names
            .iter()
            .map(|n| match *n {
                "alice" => self.alice.clone(),
                "bob" => self.bob.clone(),
                "carol" => self.carol.clone(),
                "dave" => self.dave.clone(),
                other => panic!("no user {other}"),
            })
            .collect();
        v.sort();
        v
    }

    async fn users(&self, filter: &str) -> Vec<String> {
        self.s.ids_matching("/Users", filter).await
    }

    async fn assert_users(&self, filter: &str, expected: &[&str]) {
        assert_eq!(self.users(filter).await, self.ids(expected), "filter: {filter}");
    }
}

#[tokio::test]
async fn every_comparison_operator_on_a_string_attribute() {
    let f = fixture().await;
    let table: &[(&str, &[&str])] = &[
        (r#"userName eq "bob@example.com""#, &["bob"]),
        (r#"userName ne "bob@example.com""#, &["alice", "carol", "dave"]),
        (r#"userName co "example.org""#, &["carol", "dave"]),
        (r#"userName sw "ALICE""#, &["alice"]),
        (r#"userName ew ".ORG""#, &["carol", "dave"]),
        (r#"userName gt "bob@example.com""#, &["carol", "dave"]),
        (r#"userName ge "bob@example.com""#, &["bob", "carol", "dave"]),
        (r#"userName lt "carol@example.org""#, &["alice", "bob"]),
        (r#"userName le "carol@example.org""#, &["alice", "bob", "carol"]),
        (r#"title pr"#, &["alice", "bob", "dave"]),
        (r#"emails pr"#, &["alice", "bob", "carol"]),
        (r#"userName EQ "bob@example.com""#, &["bob"]),
    ];
    for (filter, expected) in table {
        f.assert_users(filter, expected).await;
    }
}

#[tokio::test]
async fn and_binds_tighter_than_or_and_parentheses_override_it() {
    let f = fixture().await;
    // a = title eq Engineer {alice, dave}; b = familyName Smith {alice, carol}; c = active {alice, carol}
    let a = r#"title eq "Engineer""#;
    let b = r#"name.familyName eq "Smith""#;
    let c = "active eq true";
    f.assert_users(&format!("{a} or {b} and {c}"), &["alice", "carol", "dave"]).await;
    f.assert_users(&format!("{a} or ({b} and {c})"), &["alice", "carol", "dave"]).await;
    f.assert_users(&format!("({a} or {b}) and {c}"), &["alice", "carol"]).await;
    f.assert_users(&format!("{b} and {c} or {a}"), &["alice", "carol", "dave"]).await;
}

#[tokio::test]
async fn not_binds_tighter_than_and_and_accepts_with_or_without_a_space() {
    let f = fixture().await;
    f.assert_users("not (active eq true)", &["bob", "dave"]).await;
    f.assert_users("not(active eq true)", &["bob", "dave"]).await;
    f.assert_users(r#"not (active eq true) and title eq "Engineer""#, &["dave"]).await;
    f.assert_users(r#"not (active eq true and title eq "Engineer")"#, &["bob", "carol", "dave"]).await;
    f.assert_users(r#"((userName eq "bob@example.com"))"#, &["bob"]).await;
}

#[tokio::test]
async fn value_paths_match_within_one_element_while_sub_attributes_match_any_element() {
    let f = fixture().await;
    // bob has a work email at @y and a home email at @x: the value path must not mix them.
    f.assert_users(r#"emails[type eq "work" and value co "@x"]"#, &["alice"]).await;
    f.assert_users(r#"emails.value co "@x""#, &["alice", "bob", "carol"]).await;
    f.assert_users(r#"emails[type eq "home"]"#, &["alice", "bob", "carol"]).await;
    f.assert_users(
        r#"emails[type eq "work" and value ew "y.com"] or userName eq "dave@example.org""#,
        &["bob", "dave"],
    )
    .await;
    f.assert_users(r#"emails[not (type eq "work")]"#, &["alice", "bob", "carol"]).await;
    f.assert_users(r#"name.familyName eq "Smith""#, &["alice", "carol"]).await;
    f.assert_users(r#"name.givenName sw "D""#, &["dave"]).await;
}

#[tokio::test]
async fn urn_qualified_enterprise_attributes_are_filterable() {
    let f = fixture().await;
    f.assert_users(&format!(r#"{ENTERPRISE}:employeeNumber eq "100""#), &["alice"]).await;
    f.assert_users(&format!(r#"{ENTERPRISE}:department eq "Sales""#), &["bob", "carol"]).await;
    f.assert_users(&format!(r#"{ENTERPRISE}:employeeNumber pr"#), &["alice", "bob"]).await;
    f.assert_users(&format!(r#"{ENTERPRISE}:employeeNumber gt "150""#), &["bob"]).await;
}

#[tokio::test]
async fn attribute_names_are_case_insensitive_and_values_follow_case_exact() {
    let f = fixture().await;
    f.assert_users(r#"USERNAME eq "bob@example.com""#, &["bob"]).await;
    f.assert_users(r#"Name.FamilyName eq "smith""#, &["alice", "carol"]).await;
    f.assert_users(r#"Emails[Type eq "WORK"].Value eq "ALICE@X.COM""#, &["alice"]).await;
    // userName: caseExact false.
    f.assert_users(r#"userName eq "ALICE@EXAMPLE.COM""#, &["alice"]).await;
    f.assert_users(r#"userName eq "alice@example.com""#, &["alice"]).await;
    // externalId: caseExact true.
    f.assert_users(r#"externalId eq "EXT-a""#, &["alice"]).await;
    f.assert_users(r#"externalId eq "ext-a""#, &[]).await;
    f.assert_users(r#"externalId sw "EXT""#, &["alice", "carol"]).await;
    f.assert_users(r#"id eq "nonexistent""#, &[]).await;
    f.assert_users(&format!(r#"id eq "{}""#, f.carol), &["carol"]).await;
}

#[tokio::test]
async fn date_times_compare_as_instants_not_as_strings() {
    let f = fixture().await;
    let alice = f.s.get(&format!("/Users/{}", f.alice)).await.body;
    let created = chrono::DateTime::parse_from_rfc3339(alice["meta"]["created"].as_str().expect("created"))
        .expect("meta.created is xsd:dateTime");
    f.assert_users(r#"meta.created gt "2000-01-01T00:00:00Z""#, &["alice", "bob", "carol", "dave"]).await;
    f.assert_users(r#"meta.created lt "2000-01-01T00:00:00Z""#, &[]).await;
    let exact = alice["meta"]["created"].as_str().expect("created");
    f.assert_users(&format!(r#"meta.created ge "{exact}""#), &["alice", "bob", "carol", "dave"]).await;
    // Half an hour later, written in a -01:00 offset: as a string it sorts *before* the stored
    // UTC value; as an instant every user was created before it.
    let later = (created + chrono::Duration::minutes(30))
        .with_timezone(&chrono::FixedOffset::west_opt(3600).expect("offset"))
        .to_rfc3339();
    f.assert_users(&format!(r#"meta.created lt "{later}""#), &["alice", "bob", "carol", "dave"]).await;
    f.assert_users(&format!(r#"meta.lastModified gt "{later}""#), &[]).await;
}

#[tokio::test]
async fn booleans_compare_as_booleans() {
    let f = fixture().await;
    f.assert_users("active eq true", &["alice", "carol"]).await;
    f.assert_users("active eq false", &["bob", "dave"]).await;
    f.assert_users("active ne true", &["bob", "dave"]).await;
    f.assert_users("ACTIVE eq TRUE", &["alice", "carol"]).await;
}

#[tokio::test]
async fn membership_is_filterable_from_both_sides() {
    let f = fixture().await;
    let admins = f.s.ids_matching("/Groups", &format!(r#"members.value eq "{}""#, f.carol)).await;
    assert_eq!(admins.len(), 2, "carol is in Admins and Everyone");
    assert!(admins.contains(&f.group));
    let only_everyone = f.s.ids_matching("/Groups", &format!(r#"members.value eq "{}""#, f.bob)).await;
    assert_eq!(only_everyone.len(), 1);
    assert!(!only_everyone.contains(&f.group));
    f.assert_users(&format!(r#"groups.value eq "{}""#, f.group), &["alice", "carol"]).await;
    f.assert_users(&format!(r#"groups.value eq "{}" and active eq true"#, f.group), &["alice", "carol"]).await;
    let by_name = f.s.ids_matching("/Groups", r#"displayName eq "admins""#).await;
    assert_eq!(by_name, vec![f.group.clone()], "displayName is caseExact false");
}

#[tokio::test]
async fn invalid_filters_are_400_invalid_filter_never_ignored() {
    let f = fixture().await;
    let table = [
        r#"userName eq"#,
        r#"userName zz "x""#,
        r#"(userName eq "a""#,
        r#"userName eq "a")"#,
        r#"userName eq "a" and"#,
        r#"userName eq "a" or or userName eq "b""#,
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"]]"#,
        r#"userName eq "unterminated"#,
        r#"active gt true"#,
        r#"userName pr "x""#,
        r#"and userName eq "a""#,
        r#"userName eq "a" userName eq "b""#,
        r#"eq "a""#,
        r#"emails[]"#,
        r#"userName eq "a" nand userName eq "b""#,
    ];
    for filter in table {
        let r = f.s.get(&format!("/Users?filter={}", encode(filter))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "filter {filter:?} must be refused: {}", r.text);
        assert_scim_error(&r, 400, Some("invalidFilter"));
    }
    // The same through POST /.search.
    let r = f.s.post("/Users/.search", &json!({"schemas": [SEARCH], "filter": "userName zz \"x\""})).await;
    assert_scim_error(&r, 400, Some("invalidFilter"));
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter().map(|u| u["userName"].as_str().expect("userName").to_lowercase()).collect()
}

#[tokio::test]
async fn sort_by_orders_ascending_and_descending_with_missing_values_last() {
    let f = fixture().await;
    let asc = f.s.list("/Users?sortBy=userName").await;
    assert_eq!(names(&asc), ["alice@example.com", "bob@example.com", "carol@example.org", "dave@example.org"]);
    let asc2 = f.s.list("/Users?sortBy=userName&sortOrder=ascending").await;
    assert_eq!(names(&asc2), names(&asc));
    let desc = f.s.list("/Users?sortBy=userName&sortOrder=descending").await;
    assert_eq!(names(&desc), ["dave@example.org", "carol@example.org", "bob@example.com", "alice@example.com"]);
    // employeeNumber: alice 100, bob 200, carol and dave have none.
    let by_num = f.s.list(&format!("/Users?sortBy={ENTERPRISE}:employeeNumber")).await;
    assert_eq!(names(&by_num)[..2], ["alice@example.com", "bob@example.com"]);
    let by_num_desc = f.s.list(&format!("/Users?sortBy={ENTERPRISE}:employeeNumber&sortOrder=descending")).await;
    assert_eq!(names(&by_num_desc)[..2], ["bob@example.com", "alice@example.com"]);
    // Sub-attribute sort, with a filter.
    let smiths =
        f.s.list(&format!(
            "/Users?filter={}&sortBy=name.givenName&sortOrder=descending",
            encode(r#"name.familyName eq "Smith""#)
        ))
        .await;
    assert_eq!(names(&smiths), ["carol@example.org", "alice@example.com"]);
    let r = f.s.get("/Users?sortBy=userName&sortOrder=sideways").await;
    assert_scim_error(&r, 400, None);
}

#[tokio::test]
async fn count_zero_returns_only_total_results() {
    let f = fixture().await;
    let r = f.s.get("/Users?count=0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], json!(4));
    assert!(r.body.get("Resources").is_none_or(|v| v == &json!([])), "{}", r.text);
    let r = f.s.get(&format!("/Users?count=0&filter={}", encode("active eq true"))).await;
    assert_eq!(r.body["totalResults"], json!(2));
}

#[tokio::test]
async fn start_index_pages_are_stable_and_cover_everything_once() {
    let f = fixture().await;
    for i in 0..6 {
        f.s.create_user(&format!("pager{i}@example.net")).await;
    }
    let all: Vec<String> = f.s.list("/Users").await.iter().map(|u| u["id"].as_str().expect("id").into()).collect();
    assert_eq!(all.len(), 10);
    let mut paged = Vec::new();
    for start in (1..=10).step_by(3) {
        let r = f.s.get(&format!("/Users?startIndex={start}&count=3")).await;
        assert_eq!(r.body["startIndex"], json!(start));
        assert_eq!(r.body["totalResults"], json!(10));
        paged.extend(
            r.body["Resources"].as_array().expect("page").iter().map(|u| u["id"].as_str().expect("id").to_string()),
        );
    }
    assert_eq!(paged, all);
    // startIndex below 1 is 1; a negative count is 0 (RFC 7644 §3.4.2.4).
    let r = f.s.get("/Users?startIndex=0&count=2").await;
    assert_eq!(r.body["startIndex"], json!(1));
    assert_eq!(r.body["Resources"][0]["id"], all[0].as_str());
    let r = f.s.get("/Users?count=-5").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], json!(10));
    assert!(r.body.get("Resources").is_none_or(|v| v == &json!([])), "{}", r.text);
    // Sorted paging is stable too.
    let sorted: Vec<String> =
        f.s.list("/Users?sortBy=userName").await.iter().map(|u| u["id"].as_str().expect("id").into()).collect();
    let mut sorted_paged = Vec::new();
    for start in [1, 5, 9] {
        let page = f.s.list(&format!("/Users?sortBy=userName&startIndex={start}&count=4")).await;
        sorted_paged.extend(page.iter().map(|u| u["id"].as_str().expect("id").to_string()));
    }
    assert_eq!(sorted_paged, sorted);
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn attributes_and_excluded_attributes_project_get_and_list() {
    let f = fixture().await;
    let r = f.s.get(&format!("/Users/{}?attributes=userName,name.givenName", f.alice)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["userName"], "Alice@Example.com");
    assert_eq!(r.body["name"], json!({"givenName": "Alice"}));
    assert_eq!(r.body["id"], f.alice.as_str(), "id is returned always");
    for absent in ["emails", "title", "active", "nickName", ENTERPRISE] {
        assert!(r.body.get(absent).is_none(), "{absent}: {}", r.text);
    }
    let r = f.s.get(&format!("/Users/{}?excludedAttributes=emails,name.familyName,id", f.alice)).await;
    assert!(r.body.get("emails").is_none(), "{}", r.text);
    assert_eq!(r.body["name"], json!({"givenName": "Alice"}));
    assert_eq!(r.body["id"], f.alice.as_str(), "id cannot be excluded");
    assert_eq!(r.body["title"], "Engineer");
    // URN-qualified names in attributes.
    let r = f.s.get(&format!("/Users/{}?attributes={ENTERPRISE}:department", f.alice)).await;
    assert_eq!(r.body[ENTERPRISE], json!({"department": "R&D"}), "{}", r.text);
    assert!(r.body.get("userName").is_none());
    // On a list.
    let list = f.s.list(&format!("/Users?attributes=userName&filter={}", encode("active eq true"))).await;
    assert_eq!(list.len(), 2);
    for u in &list {
        let ks = keys(u);
        assert!(ks.contains(&"userName".to_string()) && ks.contains(&"id".to_string()), "{u}");
        assert!(!ks.iter().any(|k| k == "emails" || k == "name" || k == "active"), "{u}");
    }
    let list = f.s.list("/Groups?excludedAttributes=members").await;
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|g| g.get("members").is_none() && g.get("displayName").is_some()));
}

#[tokio::test]
async fn search_by_post_at_the_root_and_per_type_filters_pages_and_projects() {
    let f = fixture().await;
    let body = json!({
        "schemas": [SEARCH],
        "filter": "name.familyName eq \"Smith\"",
        "attributes": ["userName"],
        "sortBy": "userName",
        "sortOrder": "descending",
        "startIndex": 1,
        "count": 10
    });
    let r = f.s.post("/Users/.search", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(r.body["totalResults"], json!(2));
    let got = r.body["Resources"].as_array().expect("Resources");
    assert_eq!(names(got), ["carol@example.org", "alice@example.com"]);
    assert!(got.iter().all(|u| u.get("name").is_none() && u.get("id").is_some()));
    // The root: users and groups together.
    let r =
        f.s.post(
            "/.search",
            &json!({"schemas": [SEARCH], "filter": "meta.created pr", "excludedAttributes": ["members", "emails"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["totalResults"], json!(6));
    let all = r.body["Resources"].as_array().expect("Resources");
    assert!(all.iter().all(|x| x.get("members").is_none() && x.get("emails").is_none()));
    assert_eq!(all.iter().filter(|x| x["meta"]["resourceType"] == "Group").count(), 2);
    let r = f.s.post("/.search", &json!({"schemas": [SEARCH], "filter": "userName sw \"a\""})).await;
    assert_eq!(r.body["totalResults"], json!(1), "only Alice; groups have no userName: {}", r.text);
    let r = f.s.post("/.search", &json!({"schemas": [SEARCH], "count": 0})).await;
    assert_eq!(r.body["totalResults"], json!(6));
    assert!(r.body.get("Resources").is_none());
    let r = f.s.post("/Groups/.search", &json!({"schemas": [SEARCH], "filter": "displayName eq \"Everyone\""})).await;
    assert_eq!(r.body["totalResults"], json!(1));
    assert_eq!(r.body["Resources"][0]["members"].as_array().map(Vec::len), Some(4));
    // GET on .search is not the search endpoint.
    let r = f.s.send(Method::GET, "/Users/.search", None, &[]).await;
    assert_scim_error(&r, 405, None);
}

#[tokio::test]
async fn attributes_apply_to_the_answers_of_writes_too() {
    let f = fixture().await;
    let r = f
        .s
        .post(
            "/Users?attributes=userName",
            &json!({"schemas": [CORE_USER], "userName": "writer@example.com", "title": "Scribe", "emails": [{"value": "w@x"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        keys(&r.body).iter().filter(|k| *k != "schemas" && *k != "meta").cloned().collect::<Vec<_>>(),
        ["id", "userName"]
    );
    let id = r.body["id"].as_str().expect("id").to_string();
    let r =
        f.s.put(
            &format!("/Users/{id}?excludedAttributes=title"),
            &json!({"schemas": [CORE_USER], "userName": "writer@example.com", "title": "Poet"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("title").is_none(), "{}", r.text);
    assert_eq!(r.body["userName"], "writer@example.com");
    let patch =
        crate::support::server::TestServer::patch_op(json!([{"op": "replace", "path": "nickName", "value": "w"}]));
    let r = f.s.patch(&format!("/Users/{id}?attributes=nickName"), &patch).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["nickName"], "w");
    assert!(r.body.get("userName").is_none() && r.body.get("title").is_none(), "{}", r.text);
    assert_eq!(f.s.get(&format!("/Users/{id}")).await.body["title"], "Poet", "projection never changes what is stored");
}

#[tokio::test]
async fn password_is_never_returned_even_when_asked_for_and_id_always_is() {
    let f = fixture().await;
    for path in [
        format!("/Users/{}", f.alice),
        format!("/Users/{}?attributes=password", f.alice),
        format!("/Users/{}?attributes=password,userName", f.alice),
    ] {
        let r = f.s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert!(!r.text.contains("Secret-Alice-1"), "{path}: {}", r.text);
        assert!(r.body.get("password").is_none(), "{path}: {}", r.text);
        assert_eq!(r.body["id"], f.alice.as_str(), "{path}");
    }
    let list = f.s.get("/Users?attributes=password").await;
    assert!(!list.text.contains("Secret-Alice-1"));
    assert!(list.body["Resources"].as_array().expect("list").iter().all(|u| u.get("id").is_some()));
    // A password is not a way to find users either: refused, or matches nobody.
    let r = f.s.get(&format!("/Users?filter={}", encode(r#"password eq "Secret-Alice-1""#))).await;
    if r.status == StatusCode::BAD_REQUEST {
        assert_scim_error(&r, 400, None);
    } else {
        assert_eq!(r.body["totalResults"], json!(0), "{}", r.text);
    }
}
