//! Arbitrary bytes as a PATCH body (RFC 7644 §3.5.2): JSON → `parse_patch` → `apply_patch` on a
//! fixed sample User and Group with the real schemas from `Registry::load()`. Must never panic,
//! and a failed PATCH must leave the resource exactly as it was (§3.5.2: all or nothing).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scimbridge::scim::patch::{apply_patch, parse_patch};
use scimbridge::scim::resource::normalize;
use scimbridge::scim::schema::{Registry, ResourceSchema};
use serde_json::{json, Map, Value};

struct Fixture {
    registry: Registry,
    user: Map<String, Value>,
    group: Map<String, Value>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let registry = Registry::load().expect("the committed schemas load");
        let user = json!({
            "userName": "bjensen@example.com",
            "externalId": "bjensen",
            "name": {"formatted": "Ms. Barbara J Jensen III", "givenName": "Barbara", "familyName": "Jensen"},
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                       {"value": "babs@jensen.org", "type": "home"}],
            "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"}],
            "roles": [{"value": "admin"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984", "department": "Tour Operations", "manager": {"value": "26118915"}
            }
        });
        let group = json!({"displayName": "Tour Guides", "externalId": "tg"});
        let user = normalize(&user, &registry.user).expect("the sample user is valid").attrs;
        let group = normalize(&group, &registry.group).expect("the sample group is valid").attrs;
        Fixture { registry, user, group }
    })
}

fn check(sample: &Map<String, Value>, ops: &[scimbridge::scim::patch::PatchOperation], schema: &ResourceSchema) {
    let mut resource = sample.clone();
    if apply_patch(&mut resource, ops, schema).is_err() {
        assert_eq!(&resource, sample, "a failed PATCH changed the resource");
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(ops) = parse_patch(&body) else { return };
    check(&fx.user, &ops, &fx.registry.user);
    check(&fx.group, &ops, &fx.registry.group);
});
