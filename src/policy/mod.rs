//! The policy: a pure table from one stored SCIM change (the user's facts before and after) to the
//! Atlassian intents it implies, per configured target. It owns the `[policy]` and `[[target]]`
//! configuration contract (issue 3), its validation, the username mapping, access and protection
//! rules, and the product-by-product translation of an action (atlassian-dc.md §0 and §7).
//!
//! It must not touch I/O: no sled, no HTTP, no environment variables, no clock. `scim/` or `http/`
//! turns a request into an [`Event`]; `store/` writes the returned [`Intent`]s to the outbox in the
//! same transaction as the change; `delivery/` turns each intent into an `atlassian::Action`. Dry
//! run is a flag carried by every intent, not a separate path (DESIGN.md, "Rules that hold
//! everywhere").
//!
//! Layout: `config.rs` (TOML shapes, defaults, `validate`), `product.rs` (what each product can do
//! for an action), `decide.rs` (access, protection, ordering, `decide`).

mod comeback;
mod config;
mod decide;
mod groups;
mod link_match;
mod product;

use serde::{Deserialize, Serialize};

pub use comeback::signal_reactivations;
pub use config::{
    validate, validated, Credentials, EnableAction, InvalidPolicy, Issue, LinkExisting, OffboardAction, Policy,
    PolicyConfig, RenameMode, TargetConfig, TargetPolicy, UsernameFrom,
};
pub use decide::{decide, has_access, username_for};
pub use groups::{
    decide_groups, validated_groups, GroupEvent, GroupMap, GroupMapFile, GroupSync, GroupsFile, OnGroupDelete,
};
pub use link_match::{match_account, Candidates, Match};

/// What the policy needs to know about one SCIM user at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    /// The SCIM `id`.
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    /// The primary email, or the first one when none is marked primary.
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    /// displayNames of the SCIM groups the user is a member of at that moment.
    pub groups: Vec<String>,
    /// The Atlassian username recorded when the user was first provisioned. It wins over
    /// `username_from`, so a rename in the IdP does not orphan the Atlassian account.
    pub mapped_username: Option<String>,
    /// Per target: why the account there was last deactivated, while that still holds
    /// (delivered, or queued and pending); read by `intake.rs`. Empty = none known.
    pub deactivated: Vec<Deactivated>,
}

/// Why a user's account on one target was last taken away (see [`UserFacts::deactivated`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deactivated {
    pub target: String,
    /// The reason word (`crate::reason`).
    pub reason: String,
    /// Taken away by removing the licence groups (`remove_license`) rather than deactivated:
    /// coming back restores them.
    pub by_license_groups: bool,
}

/// One stored SCIM change. Pairs are `(before, after)` facts of the same user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    UserCreated {
        after: UserFacts,
    },
    UserUpdated {
        before: UserFacts,
        after: UserFacts,
    },
    UserDeleted {
        before: UserFacts,
    },
    MembershipChanged {
        group: String,
        joined: Vec<(UserFacts, UserFacts)>,
        left: Vec<(UserFacts, UserFacts)>,
    },
    /// `members` may carry the group under either name; the policy derives both sides.
    GroupRenamed {
        from: String,
        to: String,
        members: Vec<UserFacts>,
    },
    GroupDeleted {
        group: String,
        members: Vec<(UserFacts, UserFacts)>,
    },
}

/// One thing to do in one target for one user; the unit the outbox stores and delivers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// The `[[target]]` name.
    pub target: String,
    /// The SCIM user id, for the audit trail and the per-user delivery lane (the SCIM group id
    /// for the group-level `CreateGroup`/`DeleteGroup`).
    pub user_id: String,
    /// The Atlassian username (see [`username_for`]); empty for group-level intents.
    pub username: String,
    pub action: IntentAction,
    pub trigger: Trigger,
    /// Recorded and reported, never sent.
    pub dry_run: bool,
}

/// The product-level action. Already translated for the target's product: Bitbucket never gets
/// `Deactivate`/`Reactivate` (it has none, atlassian-dc.md §5), only the licence-group forms.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IntentAction {
    CreateUser {
        display_name: String,
        email: String,
    },
    Deactivate,
    Reactivate,
    Delete,
    Anonymize,
    /// Remove the user from these licence-granting groups (Bitbucket's deactivation).
    RemoveLicense {
        groups: Vec<String>,
    },
    /// Put the user back in these licence-granting groups (Bitbucket's reactivation).
    RestoreLicense {
        groups: Vec<String>,
    },
    AddToGroup {
        group: String,
    },
    RemoveFromGroup {
        group: String,
    },
    /// Create this Atlassian group (group-level intent: `user_id` is the SCIM group id and
    /// `username` is empty). Delivery records it as managed by scimbridge.
    CreateGroup {
        group: String,
    },
    /// Delete this Atlassian group, only if scimbridge created it (group-level intent).
    DeleteGroup {
        group: String,
    },
    /// The IdP changed the user's display name or email: set both in the target.
    UpdateProfile {
        display_name: String,
        email: String,
    },
    /// Rename the linked account to `new_username` (`rename = "follow"`, Jira and Crowd only);
    /// carried out by `delivery/link.rs`, which also moves the recorded link.
    RenameUser {
        new_username: String,
    },
}

/// Why an intent exists: the IdP-side change that caused it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Created,
    /// `active` went to false.
    Disabled,
    /// `active` went to true.
    Enabled,
    Deleted,
    /// Still active, but no longer in any of `access_groups`.
    AccessLost,
    /// Active and back in one of `access_groups`.
    AccessRegained,
    GroupJoined,
    GroupLeft,
    /// Inactive-user cleanup (`lifecycle/cleanup.rs`), not an IdP change.
    Cleanup,
    /// The licence optimizer took a seat back from an inactive holder.
    LicenseReclaim,
    /// The licence optimizer (or `license grant`, or an IdP signal) gave a seat back.
    LicenseGrant,
    /// An operator's bulk deactivation or reactivation.
    Bulk,
    /// Drift reconciliation repairing what a target reports against the desired state.
    Reconcile,
    /// The IdP created a group (or renamed one to this name).
    GroupCreated,
    /// The IdP deleted a group (or renamed one away from this name).
    GroupDeleted,
    /// The IdP changed the user's display name or email.
    ProfileUpdated,
    /// The IdP renamed the user and `rename = "follow"` renames the linked account.
    Renamed,
    /// Any IdP signal for an active user whose account on the target was deactivated for
    /// inactivity: it comes back (`comeback.rs`).
    IdpSignal,
    /// An operator's own decision outside any selection rule: `scimbridge undo` of a run.
    Operator,
}

impl Trigger {
    /// The intent's reason word (`crate::reason`).
    pub fn reason(self) -> &'static str {
        let name = serde_json::to_value(self).ok();
        crate::reason::for_trigger(name.as_ref().and_then(serde_json::Value::as_str).unwrap_or_default())
    }
}

/// The product translation of an offboarding `action` (see `product.rs`), for jobs that are not
/// triggered by a SCIM change (`lifecycle/`), so they cannot drift from the policy's own table.
pub fn offboard_intents(
    product: crate::atlassian::Product,
    action: OffboardAction,
    license_groups: &[String],
) -> Vec<IntentAction> {
    product::offboard(product, action, license_groups)
}

/// The product translation of a reactivation (see `product.rs`), for `lifecycle/`.
pub fn reactivate_intents(product: crate::atlassian::Product, license_groups: &[String]) -> Vec<IntentAction> {
    product::reactivate(product, license_groups)
}

/// Case-insensitive comparison of user and group names, Unicode-aware (not only ASCII), without
/// allocating. Atlassian DC compares usernames and group names case-insensitively.
pub(crate) fn eq_ci(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// Whether `name` is in `list`, case-insensitively.
pub(crate) fn contains_ci<S: AsRef<str>>(list: &[S], name: &str) -> bool {
    list.iter().any(|item| eq_ci(item.as_ref(), name))
}
