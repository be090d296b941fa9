//! Bitbucket Data Center (`{base}/rest/api/1.0`, ≡ `/rest/api/latest`): user create and
//! delete, group membership, GDPR erasure. atlassian-dc.md §5 and §7; vendor reference:
//! <https://developer.atlassian.com/server/bitbucket/rest/> (admin users, admin groups) and
//! <https://community.developer.atlassian.com/t/rest-api-call-to-disable-user/58375>.
//!
//! Bitbucket has **no deactivation**: the stand-in is removing the user from the
//! licence-granting groups ([`crate::atlassian::Action::RemoveLicense`]). Membership calls are
//! made idempotent by reading the user's groups first (`more-members`), because the behaviour of
//! `add-groups` for an existing member is undocumented (§10.5). Erasure works only on deleted
//! users, so anonymization deletes first.

mod client;
mod fallback;
mod group;
mod profile;
pub(super) mod read;
mod request;
mod response;

pub(super) use client::{execute, health};
