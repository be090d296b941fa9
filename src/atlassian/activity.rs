//! The read side the lifecycle jobs (issue 4) consume: who has an account on a target, when they
//! were last active, which groups hold them, how many licence seats are used. Value types and the
//! pure date parsing of every product live here; the paged, rate-limit-aware reading is in
//! `read.rs` and the per-product sequences in `<product>/read.rs`.
//!
//! Where each product keeps last activity (atlassian-dc.md §0, §2.7, §3, §4, §5, §7):
//! - Jira: `UserBean.lastLoginTime` (10.x spec; e.g. `"2023-08-30T16:37:01+1000"`), on the
//!   listing beans of `GET /user/list` (cursor paging) and on `GET /user`.
//! - Confluence: `lastLogin` on `GET /rest/api/admin/users/list/active?expand=lastLogin`
//!   (licensed users only; epoch millis or an ISO date, both accepted).
//! - Crowd: the user attributes `lastAuthenticated` / `lastActive` (epoch-millis strings).
//! - Bitbucket: `lastAuthenticationTimestamp` (epoch millis) on `GET /admin/users`.
//!
//! `last_active == None` means "never" only when `activity_reported` is true; a product that does
//! not report activity for an account (Confluence's deactivated users) sets it false.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::types::Product;

/// One account of a target as the read side reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountActivity {
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// False for deactivated (Jira, Confluence, Crowd) or inactive-directory (Bitbucket) users.
    pub active: bool,
    /// Last login / authentication. `None` = never, when `activity_reported` is true.
    pub last_active: Option<DateTime<Utc>>,
    /// Whether the product reported an activity figure for this account at all. False means
    /// `last_active` is unknown, not "never" (e.g. Confluence lists last login for licensed users
    /// only); cleanup must not treat such an account as never-logged-in.
    pub activity_reported: bool,
    /// Account creation, where the product exposes it (Crowd `created-date`); the fallback for
    /// never-logged-in users. `None` on Jira, Confluence and Bitbucket, whose REST APIs lack it.
    pub created: Option<DateTime<Utc>>,
    /// User directory, where the listing gives it (Bitbucket `directoryName`).
    pub directory: Option<String>,
    /// Group names when the call gave them cheaply (Jira `GET /user?expand=groups`), else `None`.
    pub groups: Option<Vec<String>>,
}

/// Licence seats of one application role (Jira) or licence (Confluence, Bitbucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seats {
    /// `None` = unlimited.
    pub total: Option<u64>,
    pub used: u64,
    /// The application role key (`jira-software`) or the product name for single-licence products.
    pub detail: String,
}

impl Seats {
    /// Seats still free; `None` when unlimited.
    pub fn free(&self) -> Option<u64> {
        self.total.map(|t| t.saturating_sub(self.used))
    }
}

/// What one listing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub accounts: u64,
    pub inactive: u64,
    /// Accounts whose product reported activity and had none (never logged in).
    pub never_active: u64,
    /// Accounts for which the product reported an activity figure (a time or "never").
    pub activity_reported: u64,
    /// HTTP requests answered (pages plus per-user look-ups).
    pub requests: u64,
    /// Waits taken for 429/503/5xx or a dropped connection before a request succeeded.
    pub waits: u64,
    /// The callback asked to stop before the end of the listing.
    pub stopped_early: bool,
}

/// How listings page and wait. Reads are idempotent, so a retryable answer (429, 503, other 5xx,
/// no answer) is waited out and the same page asked again, at most `max_waits` times per call to
/// [`crate::atlassian::Connector::for_each_account`] and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPolicy {
    /// Accounts asked per page (each product's documented cap still applies: Jira search and
    /// Bitbucket 1000).
    pub page_size: u32,
    /// Waits allowed in one listing before the retryable failure is returned.
    pub max_waits: u32,
    /// Longest single wait; a longer `Retry-After` is cut to this.
    pub max_wait: Duration,
    /// Wait when the target gave no hint.
    pub default_wait: Duration,
    /// Fail a complete listing of at least one account in which no account has a last-activity
    /// time: that is a product (or version) that does not expose last login, and treating
    /// everyone as never-logged-in would make cleanup deactivate the whole directory.
    pub require_activity: bool,
}

impl Default for ReadPolicy {
    fn default() -> Self {
        ReadPolicy {
            page_size: 500,
            max_waits: 10,
            max_wait: Duration::from_secs(120),
            default_wait: Duration::from_secs(5),
            require_activity: true,
        }
    }
}

/// Groups whose members cleanup and the licence optimizer never touch: the product's built-in
/// administrator groups (issue 4 "never touches admins"). Bitbucket has no built-in admin group
/// (administration is a global permission); `stash-sys-admin` is the conventional name.
pub fn admin_groups(product: Product) -> &'static [&'static str] {
    match product {
        Product::Jira => &["jira-administrators", "jira-system-administrators"],
        Product::Confluence => &["confluence-administrators"],
        Product::Crowd => &["crowd-administrators"],
        Product::Bitbucket => &["stash-sys-admin"],
    }
}

/// Epoch milliseconds; zero or negative (never set) is `None`.
pub(crate) fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    if ms <= 0 {
        return None;
    }
    DateTime::from_timestamp_millis(ms)
}

/// A date as any of the products writes it: RFC 3339 (`2024-05-01T10:00:00.000Z`), Jira's
/// offset without a colon (`2023-08-30T16:37:01+1000`, with or without millis), a bare local
/// `2024-05-01T10:00:00` (taken as UTC), or epoch millis in a string (Crowd attributes).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return t.parse::<i64>().ok().and_then(from_millis);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(t, format) {
            return Some(d.with_timezone(&Utc));
        }
    }
    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

/// A JSON date field: a number is epoch millis, a string goes through [`parse_time`], null or
/// absent is `None`.
pub(crate) fn json_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    match v? {
        Value::Number(n) => n.as_i64().and_then(from_millis),
        Value::String(s) => parse_time(s),
        _ => None,
    }
}

/// A non-empty string field.
pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn jira_offset_without_colon_is_read_as_the_spec_example() {
        assert_eq!(parse_time("2023-08-30T16:37:01+1000"), Some(utc(2023, 8, 30, 6, 37, 1)));
        assert_eq!(
            parse_time("2023-08-30T16:37:01.250+0000").map(|d| d.timestamp_millis()),
            Some(utc(2023, 8, 30, 16, 37, 1).timestamp_millis() + 250)
        );
    }

    #[test]
    fn iso_dates_with_zulu_or_colon_offsets_are_read() {
        assert_eq!(parse_time("2024-05-01T10:00:00Z"), Some(utc(2024, 5, 1, 10, 0, 0)));
        assert_eq!(parse_time("2024-05-01T12:00:00.000+02:00"), Some(utc(2024, 5, 1, 10, 0, 0)));
        assert_eq!(parse_time("2024-05-01T10:00:00"), Some(utc(2024, 5, 1, 10, 0, 0)));
    }

    #[test]
    fn epoch_millis_as_number_or_string_are_read_and_zero_means_never() {
        let ms = utc(2024, 1, 2, 3, 4, 5).timestamp_millis();
        assert_eq!(json_time(Some(&json!(ms))), Some(utc(2024, 1, 2, 3, 4, 5)));
        assert_eq!(parse_time(&ms.to_string()), Some(utc(2024, 1, 2, 3, 4, 5)));
        assert_eq!(json_time(Some(&json!(0))), None);
        assert_eq!(parse_time("0"), None);
    }

    #[test]
    fn garbage_empty_and_null_dates_are_none() {
        for bad in ["", "  ", "yesterday", "2024-13-45T99:00:00Z"] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
        assert_eq!(json_time(Some(&Value::Null)), None);
        assert_eq!(json_time(None), None);
        assert_eq!(json_time(Some(&json!(true))), None);
    }

    #[test]
    fn admin_groups_name_each_products_built_in_administrators() {
        assert!(admin_groups(Product::Jira).contains(&"jira-system-administrators"));
        assert_eq!(admin_groups(Product::Confluence), &["confluence-administrators"]);
        assert_eq!(admin_groups(Product::Crowd), &["crowd-administrators"]);
        assert!(!admin_groups(Product::Bitbucket).is_empty());
    }

    #[test]
    fn free_seats_saturate_and_unlimited_has_none() {
        let s = Seats { total: Some(10), used: 12, detail: "x".into() };
        assert_eq!(s.free(), Some(0));
        assert_eq!(Seats { total: None, used: 3, detail: "x".into() }.free(), None);
    }
}
