//! Which release a target runs, read once per connector, and the release thresholds the call
//! sequences depend on. Each product tells its version through a different resource:
//! - Jira: `GET /rest/api/2/serverInfo` → `version` (10.3 OpenAPI `getServerInfo`).
//! - Confluence: `GET /rest/api/server-information` → `version` (REST v912+ reference,
//!   `ServerInformation` "Since 9.1.0"); before 9.1 the application-links manifest
//!   `GET /rest/applinks/1.0/manifest` → `version` (applinks `ManifestEntity`, every release with
//!   application links).
//! - Bitbucket: `GET /rest/api/1.0/application-properties` → `version` ("No authentication is
//!   required", 8.14 OpenAPI).
//! - Crowd: `GET /rest/admin/1.0/server-info` → `version` (Crowd REST reference "Server Info",
//!   "should always return server information"; extended in 4.1, CWD-5477). It belongs to the
//!   admin API, which authenticates users, not applications, so it is asked without credentials;
//!   any refusal means "unknown" rather than a failure. Nothing Crowd-side depends on the release
//!   (the session resource of CWD-2876 exists in every supported one).

use std::fmt;

use serde_json::Value;

use super::classify::failure;
use super::client::Session;
use super::request::Request;
use super::types::{Failure, Product};

/// `PUT /rest/api/2/user` honours `active` from Jira 8.3 (JRASERVER-37294; JiraPS #376 citing the
/// 8.3.0 REST docs). Before, Jira ignores it and answers "no value found to be changed".
pub(crate) const JIRA_ACTIVE_OVER_REST: (u32, u32) = (8, 3);
/// `DELETE /rest/api/2/user/session/{username}` exists from Jira 9.11 (KB "Invalidating user
/// sessions in Jira Data Center": "Prior to Jira 9.11: N/A").
pub(crate) const JIRA_SESSION_REST: (u32, u32) = (9, 11);
/// `GET /rest/api/2/user/list` exists from Jira 10.3 LTS (jira.js Data Center guide, S17); before,
/// the listing uses `/user/search`.
pub(crate) const JIRA_USER_LIST: (u32, u32) = (10, 3);
/// Confluence's admin user REST (create, disable, enable, delete) shipped in 8.4
/// (CONFSERVER-87290/87291/87292).
pub(crate) const CONFLUENCE_ADMIN_USER_REST: (u32, u32) = (8, 4);

/// A release number, `major.minor.patch` (missing parts are 0; suffixes such as `-m01` ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// Reads `10.3.4`, `9.12`, `8.20.0-m0001`. `None` when the first part is not a number.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split(['.', '-']).map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().and_then(Result::ok).unwrap_or(0);
        let patch = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(Version { major, minor, patch })
    }

    /// Whether this release is `major.minor` or later.
    pub fn at_least(&self, (major, minor): (u32, u32)) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Reads the target's version with the product's own resource (see the module header).
/// `Ok(None)` when the product does not tell (Crowd) or answers without a readable version.
///
/// # Errors
/// Retryable when the target did not answer or answered 5xx/429; permanent for 401/403.
pub(crate) async fn read(s: &mut Session<'_>, product: Product) -> Result<Option<Version>, Failure> {
    let requests: &[&str] = match product {
        Product::Jira => &["/rest/api/2/serverInfo"],
        Product::Confluence => &["/rest/api/server-information", "/rest/applinks/1.0/manifest"],
        Product::Bitbucket => &["/rest/api/1.0/application-properties"],
        Product::Crowd => &["/rest/admin/1.0/server-info"],
    };
    for path in requests {
        let req = match product {
            Product::Crowd => Request::get(*path).without_credentials(),
            _ => Request::get(*path),
        };
        let reply = s.send(&req).await?;
        if reply.status == 404 {
            // Not on this release: try the older resource.
            continue;
        }
        if product == Product::Crowd && !reply.is_success() && reply.status != 429 && reply.status < 500 {
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(failure(&reply, s.now()));
        }
        let version =
            reply.json().as_ref().and_then(|v| v.get("version")).and_then(Value::as_str).and_then(Version::parse);
        return Ok(version);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_missing_parts_and_suffixes() {
        assert_eq!(Version::parse("10.3.4"), Some(Version { major: 10, minor: 3, patch: 4 }));
        assert_eq!(Version::parse("9.12"), Some(Version { major: 9, minor: 12, patch: 0 }));
        assert_eq!(Version::parse("8.20.0-m0001"), Some(Version { major: 8, minor: 20, patch: 0 }));
        assert_eq!(Version::parse("vNext"), None);
        assert_eq!(Version::parse("9.12.3").map(|v| v.to_string()), Some("9.12.3".into()));
    }

    #[test]
    fn thresholds_compare_major_then_minor() {
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(!v("8.2.9").at_least(JIRA_ACTIVE_OVER_REST));
        assert!(v("8.3.0").at_least(JIRA_ACTIVE_OVER_REST));
        assert!(v("8.20.0").at_least(JIRA_ACTIVE_OVER_REST));
        assert!(!v("9.10.2").at_least(JIRA_SESSION_REST));
        assert!(v("9.12.0").at_least(JIRA_SESSION_REST));
        assert!(v("10.3.0").at_least(JIRA_SESSION_REST));
        assert!(!v("7.19.0").at_least(CONFLUENCE_ADMIN_USER_REST));
        assert!(v("8.5.0").at_least(CONFLUENCE_ADMIN_USER_REST));
    }
}
