//! Public value types of the Atlassian layer: products, targets, actions and outcomes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An Atlassian Data Center product that can be a provisioning target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    Jira,
    Confluence,
    Crowd,
    Bitbucket,
}

impl Product {
    pub const ALL: [Product; 4] = [Product::Jira, Product::Confluence, Product::Crowd, Product::Bitbucket];

    pub fn as_str(self) -> &'static str {
        match self {
            Product::Jira => "jira",
            Product::Confluence => "confluence",
            Product::Crowd => "crowd",
            Product::Bitbucket => "bitbucket",
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Product {
    type Err = TargetError;

    /// Parses the lowercase product name used in configuration (case-insensitive).
    ///
    /// # Errors
    /// [`TargetError::UnknownProduct`] for anything but jira, confluence, crowd, bitbucket.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Product::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| TargetError::UnknownProduct(s.to_string()))
    }
}

pub use crate::secret::Secret;

/// How the bridge authenticates. Jira and Confluence take a personal access token as Bearer
/// (atlassian-dc.md §1.1); Crowd takes Basic with the *application* name and password; Bitbucket
/// takes Basic only, since it refuses tokens on its admin endpoints (BSERV-10482).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

/// One configured target.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: String,
    pub product: Product,
    /// Base URL including the context path, e.g. `https://wiki.example.com/confluence`.
    pub url: String,
    pub auth: Auth,
    /// Whole-request timeout for one HTTP call.
    pub timeout: Duration,
}

/// Construction errors of a [`crate::atlassian::Connector`].
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("unknown product {0:?}; expected one of jira, confluence, crowd, bitbucket")]
    UnknownProduct(String),
    #[error("target {name:?}: url {url:?} is not an http(s) URL, e.g. https://jira.example.com/jira")]
    InvalidUrl { name: String, url: String },
    #[error("target {name:?}: url must not carry credentials, a query or a fragment")]
    UrlWithExtras { name: String },
    #[error(
        "target {name:?}: Crowd authenticates applications with Basic (application name and password), not Bearer"
    )]
    CrowdNeedsBasic { name: String },
    #[error(
        "target {name:?}: Bitbucket Data Center refuses personal and HTTP access tokens on its admin and user-management endpoints (BSERV-10482); use Basic (username and password_env) of an account with ADMIN global permission"
    )]
    BitbucketNeedsBasic { name: String },
    #[error("target {name:?}: timeout must be greater than zero")]
    ZeroTimeout { name: String },
    #[error("target {name:?}: could not build the HTTP client: {source}")]
    Client {
        name: String,
        #[source]
        source: reqwest::Error,
    },
}

/// What the bridge asks a target to do for one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    CreateUser {
        username: String,
        display_name: String,
        email: String,
    },
    Deactivate {
        username: String,
    },
    Reactivate {
        username: String,
    },
    Delete {
        username: String,
    },
    Anonymize {
        username: String,
    },
    /// Remove the user from the licence-granting groups: Bitbucket's stand-in for deactivation,
    /// and licence reclaim elsewhere.
    RemoveLicense {
        username: String,
        groups: Vec<String>,
    },
    AddToGroup {
        username: String,
        group: String,
    },
    RemoveFromGroup {
        username: String,
        group: String,
    },
    /// Create the group; "already exists" is [`Effect::AlreadyDone`], so the caller learns
    /// whether this call made it.
    CreateGroup {
        group: String,
    },
    /// Delete the group; a missing group is [`Effect::AlreadyDone`].
    DeleteGroup {
        group: String,
    },
    /// Set the user's display name and email (atlassian-dc.md §2.2, §3, §4, §5 "Update").
    UpdateProfile {
        username: String,
        display_name: String,
        email: String,
    },
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::CreateUser { .. } => ActionKind::CreateUser,
            Action::Deactivate { .. } => ActionKind::Deactivate,
            Action::Reactivate { .. } => ActionKind::Reactivate,
            Action::Delete { .. } => ActionKind::Delete,
            Action::Anonymize { .. } => ActionKind::Anonymize,
            Action::RemoveLicense { .. } => ActionKind::RemoveLicense,
            Action::AddToGroup { .. } => ActionKind::AddToGroup,
            Action::RemoveFromGroup { .. } => ActionKind::RemoveFromGroup,
            Action::CreateGroup { .. } => ActionKind::CreateGroup,
            Action::DeleteGroup { .. } => ActionKind::DeleteGroup,
            Action::UpdateProfile { .. } => ActionKind::UpdateProfile,
        }
    }

    /// The user the action is about; empty for the group-level actions.
    pub fn username(&self) -> &str {
        match self {
            Action::CreateUser { username, .. }
            | Action::Deactivate { username }
            | Action::Reactivate { username }
            | Action::Delete { username }
            | Action::Anonymize { username }
            | Action::RemoveLicense { username, .. }
            | Action::AddToGroup { username, .. }
            | Action::RemoveFromGroup { username, .. }
            | Action::UpdateProfile { username, .. } => username,
            Action::CreateGroup { .. } | Action::DeleteGroup { .. } => "",
        }
    }
}

/// Fieldless mirror of [`Action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    CreateUser,
    Deactivate,
    Reactivate,
    Delete,
    Anonymize,
    RemoveLicense,
    AddToGroup,
    RemoveFromGroup,
    CreateGroup,
    DeleteGroup,
    UpdateProfile,
}

impl ActionKind {
    pub const ALL: [ActionKind; 11] = [
        ActionKind::CreateUser,
        ActionKind::Deactivate,
        ActionKind::Reactivate,
        ActionKind::Delete,
        ActionKind::Anonymize,
        ActionKind::RemoveLicense,
        ActionKind::AddToGroup,
        ActionKind::RemoveFromGroup,
        ActionKind::CreateGroup,
        ActionKind::DeleteGroup,
        ActionKind::UpdateProfile,
    ];
}

/// Whether a product can carry out an action kind (atlassian-dc.md §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Supported,
    Unsupported {
        reason: &'static str,
    },
    /// The product cannot do this, but the listed action is the vendor-recommended equivalent.
    Substitute {
        kind: ActionKind,
        reason: &'static str,
    },
}

pub(crate) fn support(product: Product, kind: ActionKind) -> Support {
    use ActionKind as K;
    match (product, kind) {
        (Product::Bitbucket, K::Deactivate) => Support::Substitute {
            kind: K::RemoveLicense,
            reason: "Bitbucket DC has no deactivation API; remove the user from the licence-granting groups instead",
        },
        (Product::Bitbucket, K::Reactivate) => Support::Substitute {
            kind: K::AddToGroup,
            reason: "Bitbucket DC has no reactivation API; add the user back to the licence-granting groups instead",
        },
        (Product::Confluence, K::Anonymize) => Support::Unsupported {
            reason: "Confluence DC has no REST endpoint for GDPR user anonymization; delete instead",
        },
        (Product::Crowd, K::Anonymize) => {
            Support::Unsupported { reason: "Crowd has no anonymization; anonymize in the applications or delete" }
        }
        _ => Support::Supported,
    }
}

/// One HTTP call made while executing an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub method: String,
    /// Path relative to the target's base URL, with the query; secret query values are `***`.
    pub path: String,
    /// `None` when no answer arrived (connection error, dropped connection, timeout).
    pub status: Option<u16>,
    pub latency_ms: u64,
}

/// Why an action did not (yet) take effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again later; `retry_after` is the target's own hint when it gave one.
    Retryable { reason: String, retry_after: Option<Duration> },
    /// Trying again will not help; an operator must look.
    Permanent { reason: String },
}

impl Failure {
    pub fn reason(&self) -> &str {
        match self {
            Failure::Retryable { reason, .. } | Failure::Permanent { reason } => reason,
        }
    }

    pub(crate) fn retry(reason: impl Into<String>) -> Failure {
        Failure::Retryable { reason: reason.into(), retry_after: None }
    }

    pub(crate) fn permanent(reason: impl Into<String>) -> Failure {
        Failure::Permanent { reason: reason.into() }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Retryable { reason, retry_after: Some(after) } => {
                write!(f, "retryable after {}s: {reason}", after.as_secs())
            }
            Failure::Retryable { reason, .. } => write!(f, "retryable: {reason}"),
            Failure::Permanent { reason } => write!(f, "permanent: {reason}"),
        }
    }
}

/// A successful outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The target changed.
    Applied,
    /// The target was already in the wanted state (already inactive, already a member, user
    /// already gone…); nothing harmful was done.
    AlreadyDone,
    /// Deactivation, licence or group removal asked of an account the target does not have: the
    /// goal holds, but it may mean a wrong username mapping or link, so it is reported apart
    /// (issue 10), neither as a success nor as a dead letter.
    NoSuchAccount,
    /// The product refused to deactivate, and the user was taken out of every access group
    /// instead ([`Execution::fallback`] says why and which groups).
    AccessRemovedByGroups,
}

/// Every call made for one action, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub calls: Vec<Call>,
    pub result: Result<Effect, Failure>,
    /// What was done instead of (or before) a plain deactivation: a refusal and the groups
    /// removed, leads handed over. `None` for every ordinary action.
    pub fallback: Option<super::fallback::Fallback>,
    /// What the admin should know although the action succeeded, e.g. "sessions not ended: this
    /// release has no REST API for it". Recorded in the audit log with the outcome.
    pub notes: Vec<String>,
    /// Where a later attempt of the same action resumes (a Jira anonymization task id): the
    /// delivery worker stores it with the outbox entry and passes it to
    /// [`crate::atlassian::Connector::execute_resuming`].
    pub resume: Option<String>,
}

#[cfg(test)]
mod support_tests {
    use super::*;

    /// These reasons reach the admin (dead letters, audit): they name the vendor's behaviour,
    /// never a file of this repository the admin does not have.
    #[test]
    fn support_reasons_never_point_at_repository_files() {
        let kinds = [ActionKind::Deactivate, ActionKind::Reactivate, ActionKind::Anonymize];
        let products = [Product::Jira, Product::Confluence, Product::Crowd, Product::Bitbucket];
        let mut reasons = 0;
        for product in products {
            for kind in kinds {
                if let Support::Substitute { reason, .. } | Support::Unsupported { reason } = support(product, kind) {
                    reasons += 1;
                    assert!(!reason.contains(".md") && !reason.contains('§'), "{product:?} {kind:?}: {reason}");
                }
            }
        }
        assert_eq!(reasons, 4, "Bitbucket deactivate/reactivate, Confluence and Crowd anonymize");
    }
}
