//! Confluence Data Center (`{base}/rest/api`, admin user API from 8.4): create, disable,
//! enable, asynchronous delete (202 + long task), idempotent group membership.
//! atlassian-dc.md §3 and §7; vendor reference:
//! <https://developer.atlassian.com/server/confluence/rest/v1020/api-group-admin-users/> and the
//! 10.0.3 OpenAPI in `shared/reference/atlassian/`.
//!
//! Confluence has no anonymization REST endpoint. Its disable/enable and membership calls are
//! idempotent and answer 204 either way, so a repeat reports `Applied` (nothing tells us it was
//! a no-op) and changes nothing.

mod client;
mod fallback;
mod group;
mod profile;
pub(super) mod read;
mod request;
mod response;

pub(super) use client::{execute, health};
