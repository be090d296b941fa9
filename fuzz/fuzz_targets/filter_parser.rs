//! `parse_filter` on arbitrary UTF-8 (RFC 7644 §3.4.2.2). Must never panic; whatever parses must
//! print (`Display`) to a filter that parses back to the same tree and prints the same again, and
//! evaluating or validating it against the real User schema must not panic either. The same input
//! is also tried as a PATCH path (RFC 7644 §3.5.2), which embeds a filter in brackets.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scimbridge::scim::filter::parse_filter;
use scimbridge::scim::path::parse_patch_path;
use scimbridge::scim::resource::normalize;
use scimbridge::scim::schema::Registry;
use serde_json::{json, Map, Value};

struct Fixture {
    registry: Registry,
    user: Map<String, Value>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = Registry::load().expect("the committed schemas load");
        let body = json!({
            "userName": "bjensen@example.com",
            "externalId": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": true,
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                       {"value": "babs@jensen.org", "type": "home"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915"}
            }
        });
        let user = normalize(&body, &registry.user).expect("the sample user is valid").attrs;
        Fixture { registry, user }
    })
}

fuzz_target!(|input: &str| {
    let fx = fixture();
    let _ = parse_patch_path(input);
    let Ok(tree) = parse_filter(input) else { return };
    let printed = tree.to_string();
    let again = match parse_filter(&printed) {
        Ok(t) => t,
        Err(e) => panic!("{input:?} parses, but its print {printed:?} does not: {}", e.detail),
    };
    assert_eq!(again, tree, "{input:?} printed as {printed:?} parses to another tree");
    assert_eq!(again.to_string(), printed, "printing is not stable for {input:?}");
    let user = Value::Object(fx.user.clone());
    let _ = tree.validate(&fx.registry.user);
    let _ = tree.matches(&user, &fx.registry.user);
    let _ = tree.validate(&fx.registry.group);
});
