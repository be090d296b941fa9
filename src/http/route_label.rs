//! The `route` label of the request metrics: the path with every id-like segment replaced by
//! `{id}`, so the label set stays small whatever clients send (`/admin/jobs/{id}`, not one label
//! per job; issue 10). Paths outside the served prefixes share the label `other`, so requests
//! from scanners cannot grow the metrics either.

use std::borrow::Cow;

/// Segments that name a route rather than a resource, in their canonical spelling. Every other
/// segment is an id (a SCIM id, a job number, a token or user name, a schema URN…). A route
/// added with a new literal segment should add it here, or its label shows `{id}` there.
const WORDS: &[&str] = &[
    "scim",
    "v2",
    "Users",
    "Groups",
    "Schemas",
    "ResourceTypes",
    "ServiceProviderConfig",
    "Bulk",
    ".search",
    "Me",
    "admin",
    "jobs",
    "retry",
    "drop",
    "audit",
    "backup",
    "tokens",
    "activity",
    "refresh",
    "cleanup",
    "license",
    "report",
    "optimize",
    "grant",
    "deactivate",
    "reactivate",
    "reconcile",
    "undo",
    "held",
    "approve",
    "reject",
    "reports",
    "links",
    "preview",
    "healthz",
    "readyz",
    "metrics",
];

/// First segments of the paths the server serves.
const ROOTS: &[&str] = &["scim", "admin", "healthz", "readyz", "metrics"];

/// Longer paths than this are no route of ours.
const MAX_SEGMENTS: usize = 6;

fn word(segment: &str) -> Option<&'static str> {
    WORDS.iter().copied().find(|w| w.eq_ignore_ascii_case(segment))
}

/// The label of `path` (already normalised: no empty segments). Borrows when nothing changes.
pub fn route_label(path: &str) -> Cow<'_, str> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(first) = segments.first() else { return Cow::Borrowed("/") };
    if segments.len() > MAX_SEGMENTS || !ROOTS.iter().any(|r| r.eq_ignore_ascii_case(first)) {
        return Cow::Borrowed("other");
    }
    let labelled: Vec<&str> = segments.iter().map(|s| word(s).unwrap_or("{id}")).collect();
    if labelled == segments {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for s in labelled {
        out.push('/');
        out.push_str(s);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn ids_become_placeholders_and_routes_keep_their_names() {
        for (path, label) in [
            ("/admin/jobs/6", "/admin/jobs/{id}"),
            ("/admin/jobs/6/retry", "/admin/jobs/{id}/retry"),
            ("/admin/jobs/retry", "/admin/jobs/retry"),
            ("/admin/tokens/entra-prod", "/admin/tokens/{id}"),
            ("/admin/license/grant/alice", "/admin/license/grant/{id}"),
            ("/admin/reports/0190-abc", "/admin/reports/{id}"),
            ("/admin/links", "/admin/links"),
            ("/admin/links/preview", "/admin/links/preview"),
            ("/scim/v2/Users/0190-abc", "/scim/v2/Users/{id}"),
            ("/scim/v2/users/0190-abc", "/scim/v2/Users/{id}"),
            ("/scim/v2/Groups/g1", "/scim/v2/Groups/{id}"),
            ("/scim/v2/Users/.search", "/scim/v2/Users/.search"),
            ("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "/scim/v2/Schemas/{id}"),
            ("/scim/v2/Users", "/scim/v2/Users"),
            ("/metrics", "/metrics"),
            ("/", "/"),
        ] {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    /// Every literal segment of every route the server registers is a word here, so no route
    /// added later reads as `{id}` in its own label (`/admin/links` did).
    #[test]
    fn every_registered_route_keeps_its_literal_segments() {
        let routes = include_str!("mod.rs");
        let mut checked = 0;
        for call in [".route(\"", "web::scope(\""] {
            for rest in routes.split(call).skip(1) {
                let path = rest.split('"').next().unwrap_or_default();
                for seg in path.split('/').filter(|s| !s.is_empty() && !s.starts_with('{')) {
                    assert!(super::word(seg) == Some(seg), "route segment {seg:?} of {path:?} is missing from WORDS");
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "the route table was read ({checked} segments)");
    }

    #[test]
    fn unknown_and_overlong_paths_share_one_label() {
        assert_eq!(route_label("/wp-admin/setup.php"), "other");
        assert_eq!(route_label("/scim/v2/Users/a/b/c/d/e"), "other");
    }
}
