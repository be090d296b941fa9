//! Arbitrary bytes as a POST/PUT body (RFC 7643 §4, RFC 7644 §3.3): JSON → `normalize` for User
//! and Group with the real schemas. Must never panic, and what it accepts is already in the stored
//! shape: normalizing the result again changes nothing.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scimbridge::scim::resource::normalize;
use scimbridge::scim::schema::{Registry, ResourceSchema};
use serde_json::Value;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::load().expect("the committed schemas load"))
}

fn check(body: &Value, schema: &ResourceSchema) {
    let Ok(first) = normalize(body, schema) else { return };
    let again = match normalize(&Value::Object(first.attrs.clone()), schema) {
        Ok(a) => a,
        Err(e) => panic!("normalized {} is rejected when normalized again: {}", schema.name, e.detail),
    };
    assert_eq!(again.attrs, first.attrs, "normalize is not idempotent for {}", schema.name);
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let registry = registry();
    check(&body, &registry.user);
    check(&body, &registry.group);
});
