//! Group-aware delivery (issue 9, "Groups that exist"): before a group intent's calls, decide
//! whether scimbridge may touch the Atlassian group at all, and make it exist when it may.
//!
//! The rule (README "Groups"): scimbridge changes only the groups it manages in a target, namely
//! the ones a `[[group_map]]` entry names there and the ones it created itself, recorded in the
//! store's `managed_groups` tree. For an IdP group that does not exist in the target, it creates it
//! (`[groups] create_missing`) and records it before adding anyone. An unmapped IdP group whose
//! name is taken by an Atlassian group scimbridge did not create is an admin's local group: adding
//! to it becomes a dead letter that says how to map it, removing from it is skipped, deleting it
//! never happens.
//!
//! Creations of one group in one target are serialised (several users' lanes may join a new
//! group at once), so exactly one lane creates and the others find the record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::atlassian::{Action, Call, Connector, Effect, Failure};
use crate::policy::{GroupSync, Intent, IntentAction};
use crate::store::{GroupOrigin, ManagedGroup, Store, StoreResult};

/// What the gate decided for one intent.
#[derive(Debug)]
pub(super) enum Gate {
    /// Go on with the intent's actions; the calls made while deciding come first in the record.
    Proceed(Vec<Call>),
    /// Close the intent without its actions; recorded as `skipped` with the reason.
    Skip(Vec<Call>, String),
    /// Retry later or give up, as the failure says.
    Fail(Vec<Call>, Failure),
}

/// One async lock per (target, lower-cased group name).
type CreateLocks = Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>;

/// The gate, shared by every delivery attempt.
pub struct GroupGuard {
    store: Store,
    sync: GroupSync,
    /// One lock per (target, lower-cased group) while a create is decided.
    creating: CreateLocks,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn not_managed(target: &str, group: &str) -> String {
    format!(
        "the Atlassian group {group:?} already exists in target {target:?} and was not created by scimbridge, so it \
         is treated as an administrator's local group and left untouched; to sync this IdP group into it, add \
         [[group_map]] idp = \"<IdP group>\" atlassian = \"{group}\" targets = [\"{target}\"] and retry the job \
         (scimbridge jobs retry)"
    )
}

impl GroupGuard {
    /// The gate over `store`. The first start of this version adopts the groups an earlier
    /// version synced (`Store::adopt_previously_synced_groups`), so upgrading keeps them synced.
    pub fn new(store: Store, sync: GroupSync) -> GroupGuard {
        match store.adopt_previously_synced_groups(&now_text()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(groups = n, "Adopted the Atlassian groups an earlier version synced by name."),
            Err(e) => tracing::error!(error = %e, "Adopting previously synced groups failed; they count as unmanaged."),
        }
        GroupGuard { store, sync, creating: Mutex::new(HashMap::new()) }
    }

    fn lock_for(&self, target: &str, group: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((target.to_string(), group.to_lowercase())).or_default().clone()
    }

    /// Whether the recorded origin lets scimbridge change the group.
    fn recorded(&self, target: &str, group: &str) -> StoreResult<Option<ManagedGroup>> {
        self.store.managed_group(target, group)
    }

    fn record(&self, intent: &Intent, group: &str, origin: GroupOrigin) -> StoreResult<()> {
        self.store.managed_group_put(&ManagedGroup {
            target: intent.target.clone(),
            group: group.to_string(),
            origin,
            at: now_text(),
            cause: intent.user_id.clone(),
        })
    }

    /// Decides one intent; intents that are not about IdP-synced groups always proceed (licence
    /// groups are configured by the admin, `license_groups` and `[license]`).
    ///
    /// # Errors
    /// A store error (the attempt is repeated).
    pub(super) async fn gate(&self, conn: &Connector, intent: &Intent) -> StoreResult<Gate> {
        let target = intent.target.as_str();
        match &intent.action {
            IntentAction::AddToGroup { group } => self.ensure(conn, intent, group, false).await,
            IntentAction::CreateGroup { group } => self.ensure(conn, intent, group, true).await,
            IntentAction::RemoveFromGroup { group } => {
                let managed = self.sync.is_mapped_atlassian(target, group)
                    || self.recorded(target, group)?.is_some_and(|g| g.origin != GroupOrigin::Creating);
                Ok(if managed {
                    Gate::Proceed(Vec::new())
                } else {
                    Gate::Skip(
                        Vec::new(),
                        format!(
                            "the Atlassian group {group:?} in target {target:?} is not managed by scimbridge (neither \
                             created by it nor mapped in [[group_map]]); its members are left as they are"
                        ),
                    )
                })
            }
            IntentAction::DeleteGroup { group } => {
                let created = self.recorded(target, group)?.is_some_and(|g| g.origin == GroupOrigin::Created);
                Ok(if created && !self.sync.is_mapped_atlassian(target, group) {
                    Gate::Proceed(Vec::new())
                } else {
                    Gate::Skip(
                        Vec::new(),
                        format!(
                            "the Atlassian group {group:?} in target {target:?} was not created by scimbridge (or is \
                             mapped in [[group_map]]), so it is never deleted; on_group_delete = \"delete_group\" \
                             deletes only groups scimbridge created"
                        ),
                    )
                })
            }
            _ => Ok(Gate::Proceed(Vec::new())),
        }
    }

    /// Makes sure scimbridge may add members to `group`, creating it when it is missing.
    async fn ensure(&self, conn: &Connector, intent: &Intent, group: &str, create_intent: bool) -> StoreResult<Gate> {
        let target = intent.target.as_str();
        let usable = |g: &Option<ManagedGroup>| g.as_ref().is_some_and(|g| g.origin != GroupOrigin::Creating);
        if usable(&self.recorded(target, group)?) {
            return Ok(Gate::Proceed(Vec::new()));
        }
        let mapped = self.sync.is_mapped_atlassian(target, group);
        if !self.sync.create_missing {
            // A mapped group is the admin's: it must exist; without a mapping nothing is managed.
            return Ok(match (mapped, create_intent) {
                (true, _) => Gate::Proceed(Vec::new()),
                (false, true) => Gate::Skip(Vec::new(), "[groups] create_missing = false".into()),
                (false, false) => Gate::Fail(
                    Vec::new(),
                    Failure::Permanent {
                        reason: format!(
                            "the Atlassian group {group:?} in target {target:?} is not mapped in [[group_map]] and \
                             [groups] create_missing = false, so scimbridge does not manage it; map it or set \
                             create_missing = true"
                        ),
                    },
                ),
            });
        }
        let lock = self.lock_for(target, group);
        let _one_creator = lock.lock().await;
        let before = self.recorded(target, group)?;
        if usable(&before) {
            return Ok(Gate::Proceed(Vec::new()));
        }
        // A `creating` record left by an earlier attempt means that attempt may have created the
        // group before it was interrupted: finding the group now counts as ours.
        let interrupted = before.is_some();
        if !interrupted {
            self.record(intent, group, GroupOrigin::Creating)?;
            self.store.flush().await?;
        }
        let exec = conn.execute(&Action::CreateGroup { group: group.to_string() }).await;
        let calls = exec.calls;
        let origin = match exec.result {
            // A group create never falls back and never names an account.
            Ok(Effect::Applied | Effect::AccessRemovedByGroups | Effect::NoSuchAccount) => GroupOrigin::Created,
            Ok(Effect::AlreadyDone) if mapped => GroupOrigin::Mapped,
            Ok(Effect::AlreadyDone) if interrupted => GroupOrigin::Created,
            Ok(Effect::AlreadyDone) => {
                self.store.managed_group_remove(target, group)?;
                let why = not_managed(target, group);
                tracing::warn!(target_name = %target, group = %group, "An IdP group collides with an Atlassian group scimbridge did not create; left untouched.");
                return Ok(if create_intent {
                    Gate::Skip(calls, why)
                } else {
                    Gate::Fail(calls, Failure::Permanent { reason: why })
                });
            }
            Err(failure) => {
                // A refusal means nothing was created; a lost answer may have created it.
                if matches!(failure, Failure::Permanent { .. }) {
                    self.store.managed_group_remove(target, group)?;
                }
                return Ok(Gate::Fail(calls, failure));
            }
        };
        self.record(intent, group, origin)?;
        if origin == GroupOrigin::Created {
            tracing::info!(target_name = %target, group = %group, "Created an Atlassian group for an IdP group.");
        }
        Ok(Gate::Proceed(calls))
    }

    /// After an addition failed: when the group is one scimbridge manages but the target no longer
    /// has it (deleted by hand), create it again, as for any group a target lacks
    /// (`create_missing`), and return the calls so the caller tries the addition once more.
    /// `None` when the group exists (the failure was something else) or may not be created.
    ///
    /// # Errors
    /// A store error.
    pub(super) async fn recreate_if_missing(
        &self,
        conn: &Connector,
        intent: &Intent,
    ) -> StoreResult<Option<Vec<Call>>> {
        let IntentAction::AddToGroup { group } = &intent.action else { return Ok(None) };
        let target = intent.target.as_str();
        let managed = self.recorded(target, group)?.filter(|g| g.origin != GroupOrigin::Creating);
        if !self.sync.create_missing || (managed.is_none() && !self.sync.is_mapped_atlassian(target, group)) {
            return Ok(None);
        }
        let lock = self.lock_for(target, group);
        let _one_creator = lock.lock().await;
        let exec = conn.execute(&Action::CreateGroup { group: group.to_string() }).await;
        if exec.result != Ok(Effect::Applied) {
            return Ok(None);
        }
        tracing::warn!(target_name = %target, group = %group, "A group scimbridge manages was missing in the target; created it again.");
        let origin =
            if self.sync.is_mapped_atlassian(target, group) { GroupOrigin::Mapped } else { GroupOrigin::Created };
        self.record(intent, group, origin)?;
        Ok(Some(exec.calls))
    }

    /// Bookkeeping after an intent was delivered: a deleted group is no longer managed.
    ///
    /// # Errors
    /// A store error.
    pub(super) fn delivered(&self, intent: &Intent) -> StoreResult<()> {
        if let IntentAction::DeleteGroup { group } = &intent.action {
            self.store.managed_group_remove(&intent.target, group)?;
        }
        Ok(())
    }
}
