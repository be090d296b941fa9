//! Jira Data Center (REST API v2, `{base}/rest/api/2`): users, group membership, sessions and
//! the asynchronous GDPR anonymization. atlassian-dc.md §2 and §7; vendor reference:
//! <https://docs.atlassian.com/software/jira/docs/api/REST/latest> (users, groups,
//! user/anonymization) and the 10.3 OpenAPI in `shared/reference/atlassian/`.
//!
//! Quirks handled here: adding an existing member answers 400 (treated as already done);
//! `active` over REST needs 8.3 (before, Jira answers 400 "no value found to be changed": refused
//! with that explanation); sessions can be ended over REST from 9.11 only;
//! anonymization is keyed by the immutable user *key*, runs one task at a time (409), and is
//! polled by task id.

mod anonymize;
mod client;
mod fallback;
mod group;
mod profile;
pub(super) mod read;
mod request;
mod response;

pub(super) use client::{execute, health};
