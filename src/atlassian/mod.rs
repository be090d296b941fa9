//! Atlassian Data Center connectors: the only code that talks to Jira, Confluence, Crowd and
//! Bitbucket. It turns one [`Action`] into the exact REST calls of the product, executes them
//! idempotently, and reports every call made plus a classified outcome ([`Execution`]).
//!
//! This layer knows nothing of SCIM, of the outbox or of retry scheduling: it answers "done",
//! "already done", "retry (maybe after N seconds)" or "give up", and `delivery/` decides what to
//! do next. Credentials live in [`Secret`] and never reach logs, `Debug` output or [`Call::path`].
//!
//! When a product refuses to deactivate (read-only directory, Jira leads, sysadmin rule), the
//! connector removes the user's access groups instead (`fallback.rs`, issue 9 item 3) and says so
//! in [`Execution::fallback`] and [`Effect::AccessRemovedByGroups`].
//!
//! Read side (issue 4, lifecycle jobs): [`Connector::for_each_account`] streams every account
//! with its last activity page by page, [`Connector::group_members`], [`Connector::account`],
//! [`Connector::seats`] and [`Connector::admin_groups`]; value types in `activity.rs`, the paged
//! and rate-limit-aware reader in `read.rs`, the product sequences in `<product>/read.rs`.
//!
//! Layout: shared types in `types.rs`, pure request values and URL encoding in `request.rs`, pure
//! status/header classification in `classify.rs`, the reqwest client and call recording in
//! `client.rs`, and one folder per product (`request.rs` pure builders, `response.rs` pure body
//! interpretation, `client.rs` the call sequence).
//!
//! The field guide is `shared/reference/atlassian-dc.md` (§7 is the action matrix). Vendor pages:
//! - Jira DC REST 10.3: <https://docs.atlassian.com/software/jira/docs/api/REST/latest>
//! - Confluence DC REST: <https://developer.atlassian.com/server/confluence/rest/v1020/api-group-admin-users/>
//! - Crowd REST: <https://developer.atlassian.com/server/crowd/crowd-rest-resources/>
//! - Bitbucket DC REST: <https://developer.atlassian.com/server/bitbucket/rest/>
//! - Rate limiting headers: <https://confluence.atlassian.com/doc/_ratelimiting_httpheaders-992678779.html>

mod activity;
mod bitbucket;
mod classify;
mod client;
mod confluence;
mod crowd;
mod fallback;
mod group_calls;
mod jira;
mod live;
mod lookup;
mod read;
mod request;
mod types;
mod user_groups;
mod version;

pub use activity::{admin_groups, AccountActivity, ReadPolicy, ReadStats, Seats};
pub use client::{Connector, PollPolicy};
pub use fallback::{Fallback, GroupRefused, LeadMove, Offboarding};
pub use live::{LiveCheck, Needs};
pub use lookup::{same_email, EmailSearch, CONFLUENCE_NO_EMAIL_SEARCH};
pub use types::{
    Action, ActionKind, Auth, Call, Effect, Execution, Failure, Product, Secret, Support, TargetError, TargetSpec,
};
pub use version::Version;
