//! Linking at delivery (DESIGN.md: "the connector looks the account up, the store records the
//! link; an ambiguous match is held for review, never guessed"). Before an intent is sent:
//!
//! - a user on the review list for the target gets nothing: the intent is held (taken out of the
//!   outbox, kept in order) until an operator runs `links set`, which releases it;
//! - a recorded link names the account every intent acts on, whatever username the intent was
//!   planned with (intents queued before the link was made included);
//! - a create without a link first takes back a deleted user's account with the same externalId
//!   (re-hire), else looks the account up as `[policy] link_existing` says and links an existing
//!   one (reactivating it when it is inactive) instead of creating a duplicate; ambiguity puts the
//!   user on the review list;
//! - any other IdP-caused intent of a user without a link (provisioned before linking existed, or
//!   `create_users = false`) looks the account up the same way, so a disable reaches the real
//!   account; jobs' intents (cleanup, licence, bulk, reconcile) name the account they read and are
//!   sent as they are;
//! - a rename (`rename = "follow"`) renames the linked account and moves the link with it.
//!
//! The link made at delivery is recorded only after the target's calls succeeded, in its own
//! audited transaction, before the intent leaves the outbox; a crash in between repeats the
//! attempt, which then finds the link and the account, and is done.

use serde_json::{json, Value};

use super::worker::Deliverer;
use crate::atlassian::{Action, Call, Connector, Effect, EmailSearch, Failure, Product};
use crate::policy::{self, Candidates, Intent, IntentAction, LinkExisting, Match, Trigger};
use crate::store::{Kind, Link, LinkSource, OutboxEntry, Review, StoreResult};

/// Who records links made at delivery (audit `actor`).
pub const DELIVERY_ACTOR: &str = "delivery";

/// One thing to do on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Act(Action),
    Rename { old: String, new: String },
}

/// What to do with one outbox entry.
pub(super) enum Plan {
    /// Run the steps; when all succeed, record `link` (if any). `note` goes into the audit record,
    /// `calls` are the look-up's, made before the steps.
    Deliver { steps: Vec<Step>, link: Option<Box<Link>>, note: Value, calls: Vec<Call> },
    /// The entry was held for review (written, audited); the attempt is over.
    Held,
    /// Not this user's account any more: closed unsent, recorded as `skipped` with the reason.
    Skip(String),
    /// A look-up failed; retried like any failed call.
    Failed(Failure, Vec<Call>),
}

/// The primary email of a stored user, else the first.
fn email_of(rec: &crate::store::Record) -> Option<String> {
    let emails = rec.attrs.get("emails")?.as_array()?;
    let primary = emails.iter().find(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
    primary.or(emails.first())?.get("value")?.as_str().map(str::to_string)
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn new_link(intent: &Intent, username: &str, source: LinkSource, external_id: Option<String>) -> Link {
    Link {
        target: intent.target.clone(),
        user_id: intent.user_id.clone(),
        username: username.to_string(),
        source,
        at: now_text(),
        actor: DELIVERY_ACTOR.into(),
        external_id,
    }
}

/// The audit record of a link change (`type: link`), with a plain `actor`; `detail` says why in
/// words (the reason word, `crate::reason`, is set by an operator's change: `admin_links.rs`).
pub fn link_audit(op: &str, link: &Link, previous: Option<&Link>, detail: &str) -> Value {
    json!({
        "type": "link", "at": link.at, "op": op, "actor": link.actor, "target": link.target,
        "user_id": link.user_id, "username": link.username, "source": link.source,
        "previous": previous.map(|p| p.username.clone()), "detail": detail,
    })
}

/// Reactivation is a connector action everywhere but Bitbucket, whose "reactivation" is the
/// licence groups the policy re-adds itself.
fn reactivate(product: Product, username: &str, active: bool) -> Option<Step> {
    (!active && product != Product::Bitbucket).then(|| Step::Act(Action::Reactivate { username: username.into() }))
}

impl Deliverer {
    /// Plans entry `seq`; rewrites `intent.username` to the linked account.
    ///
    /// # Errors
    /// Storage errors (the attempt is repeated).
    pub(super) async fn plan(
        &self,
        conn: &Connector,
        seq: u64,
        entry: &OutboxEntry,
        intent: &mut Intent,
    ) -> StoreResult<Plan> {
        let (target, user) = (intent.target.clone(), intent.user_id.clone());
        if let Some(review) = self.store.review(&target, &user)? {
            // Not held when an operator resolved the review a moment ago: the link is read below.
            if self.hold(seq, entry, intent, None, &format!("waiting for review: {}", review.reason))? {
                return Ok(Plan::Held);
            }
        }
        // Jobs (cleanup, licence, bulk, reconcile) name the account they read from the target;
        // only what the IdP caused is addressed through the link.
        let from_idp = !matches!(
            intent.trigger,
            Trigger::Cleanup | Trigger::LicenseReclaim | Trigger::LicenseGrant | Trigger::Bulk | Trigger::Reconcile
        );
        let creates = matches!(intent.action, IntentAction::CreateUser { .. });
        let link = if from_idp || creates { self.store.link(&user, &target)? } else { None };
        if let Some(l) = &link {
            intent.username = l.username.clone();
        }
        if from_idp && link.is_none() && !creates {
            if let Some(reason) = self.belongs_to_another(intent)? {
                return Ok(Plan::Skip(reason));
            }
        }
        match &intent.action {
            IntentAction::RenameUser { new_username } => {
                let new = new_username.clone();
                if !Connector::can_rename(conn.product()) {
                    return Ok(Plan::Deliver {
                        steps: Vec::new(),
                        link: None,
                        note: json!({"kept": format!("{} cannot rename accounts; the account keeps its name", conn.product())}),
                        calls: Vec::new(),
                    });
                }
                let external_id = link.as_ref().and_then(|l| l.external_id.clone()).or_else(|| self.external_id(&user));
                let renamed = new_link(intent, &new, LinkSource::Renamed, external_id);
                Ok(Plan::Deliver {
                    steps: vec![Step::Rename { old: intent.username.clone(), new }],
                    link: Some(Box::new(renamed)),
                    note: json!({"renamed_from": intent.username}),
                    calls: Vec::new(),
                })
            }
            IntentAction::CreateUser { email, .. } => {
                let email = email.clone();
                match link {
                    Some(l) => Ok(Plan::Deliver {
                        steps: self.create_linked(conn, intent, l.source.pre_existing()),
                        link: None,
                        note: json!({"linked": l.username, "source": l.source}),
                        calls: Vec::new(),
                    }),
                    None => self.plan_create(conn, seq, entry, intent, &email).await,
                }
            }
            _ if from_idp && link.is_none() && self.link_existing != LinkExisting::None => {
                self.plan_resolve(conn, seq, entry, intent).await
            }
            _ => Ok(Plan::Deliver { steps: self.as_steps(intent), link: None, note: Value::Null, calls: Vec::new() }),
        }
    }

    /// Why an unlinked user's intent must not be sent: the account it names is linked to another
    /// SCIM user that exists. That happens to a deleted user's queued or dead-lettered intents
    /// once a re-hire took the account back (the re-hire's link retired this user's), and to an
    /// unlinked user's planned name when no look-up runs (`link_existing = "none"`); sending them
    /// would deactivate a colleague. A user that still exists with a look-up is left to
    /// `plan_resolve`, which finds its own account or puts it on the review list.
    fn belongs_to_another(&self, intent: &Intent) -> StoreResult<Option<String>> {
        if intent.username.is_empty() {
            return Ok(None);
        }
        let Some(owner) = self.store.linked_user(&intent.target, &intent.username)? else { return Ok(None) };
        if owner == intent.user_id || self.store.get(Kind::User, &owner)?.is_none() {
            return Ok(None);
        }
        let deleted = self.store.get(Kind::User, &intent.user_id)?.is_none();
        if !deleted && self.link_existing != LinkExisting::None {
            return Ok(None);
        }
        let whose = if deleted { "deleted SCIM user" } else { "SCIM user" };
        Ok(Some(format!(
            "the {} account '{}' is now linked to SCIM user {owner} (a re-hire or an operator's link), not to {whose} \
             {}; this intent was decided for its earlier owner and is not sent",
            intent.target, intent.username, intent.user_id
        )))
    }

    /// A create for an already linked account: create it if it was removed, and bring a
    /// pre-existing account back to active (re-hire, operator link).
    fn create_linked(&self, conn: &Connector, intent: &Intent, pre_existing: bool) -> Vec<Step> {
        let mut steps: Vec<Step> = super::actions::for_intent(intent).into_iter().map(Step::Act).collect();
        if pre_existing {
            steps.extend(reactivate(conn.product(), &intent.username, false));
        }
        steps
    }

    fn external_id(&self, user: &str) -> Option<String> {
        self.store.get(Kind::User, user).ok().flatten().and_then(|r| r.external_id().map(str::to_string))
    }

    async fn plan_create(
        &self,
        conn: &Connector,
        seq: u64,
        entry: &OutboxEntry,
        intent: &mut Intent,
        email: &str,
    ) -> StoreResult<Plan> {
        let external_id = self.external_id(&intent.user_id);
        // Re-hire: a deleted SCIM user with this externalId left its account behind.
        if let Some(ext) = &external_id {
            let retired = self.store.retired_links(&intent.target, ext)?;
            match retired.as_slice() {
                [] => {}
                [old] => {
                    let link = new_link(intent, &old.username, LinkSource::Rehire, external_id.clone());
                    let reason = format!("re-hire: externalId {ext} was linked to deleted SCIM user {}", old.user_id);
                    self.store.link_take_over(old, &link, &link_audit("rehire", &link, Some(old), &reason))?;
                    intent.username = old.username.clone();
                    return Ok(Plan::Deliver {
                        steps: self.create_linked(conn, intent, true),
                        link: None,
                        note: json!({"linked": old.username, "source": "rehire"}),
                        calls: Vec::new(),
                    });
                }
                many => {
                    let reason =
                        format!("re-hire: externalId {ext} was linked to {} accounts of deleted users", many.len());
                    let candidates = many.iter().map(|l| l.username.clone()).collect();
                    return self.put_on_review(seq, entry, intent, email, "ambiguous", reason, candidates);
                }
            }
        }
        let wanted = intent.username.clone();
        if self.link_existing == LinkExisting::None {
            // No look-up, but an account of this name linked to another SCIM user is never taken
            // (recording the link would be refused, and the lane would repeat forever).
            if let Some(owner) = self.store.linked_user(&intent.target, &wanted)? {
                if owner != intent.user_id && self.store.get(Kind::User, &owner)?.is_some() {
                    let reason = format!("the account {wanted:?} is already linked to another SCIM user ({owner})");
                    return self.put_on_review(seq, entry, intent, email, "conflict", reason, vec![wanted]);
                }
            }
            return Ok(Plan::Deliver {
                steps: self.as_steps(intent),
                link: Some(Box::new(new_link(intent, &wanted, LinkSource::Created, external_id))),
                note: Value::Null,
                calls: Vec::new(),
            });
        }
        let mut calls = Vec::new();
        let found = match self.find(conn, intent, email, false, &mut calls).await {
            Ok(m) => m,
            Err(f) => return Ok(Plan::Failed(f, calls)),
        };
        match found {
            Match::Existing { username, active, by_email, note } => {
                let source = if by_email { LinkSource::Email } else { LinkSource::Username };
                intent.username = username.clone();
                Ok(Plan::Deliver {
                    steps: reactivate(conn.product(), &username, active).into_iter().collect(),
                    link: Some(Box::new(new_link(intent, &username, source, external_id))),
                    note: json!({"linked": username, "source": source, "was_active": active, "note": note}),
                    calls,
                })
            }
            Match::New => Ok(Plan::Deliver {
                steps: self.as_steps(intent),
                link: Some(Box::new(new_link(intent, &wanted, LinkSource::Created, external_id))),
                note: Value::Null,
                calls,
            }),
            Match::Ambiguous { candidates, reason } => {
                self.put_on_review(seq, entry, intent, email, "ambiguous", reason, candidates)
            }
            Match::Conflict { candidates, reason } => {
                self.put_on_review(seq, entry, intent, email, "conflict", reason, candidates)
            }
        }
    }

    /// Any other IdP-caused intent of a user without a link (one provisioned before linking
    /// existed, or never created here: `create_users = false`): the account is looked up the same
    /// way, so offboarding reaches the real account; an unmatched user keeps the planned name.
    async fn plan_resolve(
        &self,
        conn: &Connector,
        seq: u64,
        entry: &OutboxEntry,
        intent: &mut Intent,
    ) -> StoreResult<Plan> {
        let Some(rec) = self.store.get(Kind::User, &intent.user_id)? else {
            // A deleted user without a link: nothing to look the account up by but the name.
            return Ok(Plan::Deliver {
                steps: self.as_steps(intent),
                link: None,
                note: Value::Null,
                calls: Vec::new(),
            });
        };
        let email = email_of(&rec).unwrap_or_default();
        let mut calls = Vec::new();
        let found = match self.find(conn, intent, &email, true, &mut calls).await {
            Ok(m) => m,
            Err(f) => return Ok(Plan::Failed(f, calls)),
        };
        match found {
            Match::Existing { username, by_email, note, .. } => {
                let source = if by_email { LinkSource::Email } else { LinkSource::Username };
                intent.username = username.clone();
                let link = new_link(intent, &username, source, rec.external_id().map(str::to_string));
                Ok(Plan::Deliver {
                    steps: self.as_steps(intent),
                    link: Some(Box::new(link)),
                    note: json!({"linked": username, "source": source, "note": note}),
                    calls,
                })
            }
            Match::New => {
                Ok(Plan::Deliver { steps: self.as_steps(intent), link: None, note: Value::Null, calls: Vec::new() })
            }
            Match::Ambiguous { candidates, reason } => {
                self.put_on_review(seq, entry, intent, &email, "ambiguous", reason, candidates)
            }
            Match::Conflict { candidates, reason } => {
                self.put_on_review(seq, entry, intent, &email, "conflict", reason, candidates)
            }
        }
    }

    fn as_steps(&self, intent: &Intent) -> Vec<Step> {
        super::actions::for_intent(intent).into_iter().map(Step::Act).collect()
    }

    /// Looks the account of `intent`'s user up on the target as `link_existing` says, and
    /// decides the match (`policy::match_account`). With `name_wins` (a user already provisioned
    /// under that name before links were recorded) an account of the planned name is the one, as
    /// it always was, whatever its email; the email only finds one when the name does not.
    async fn find(
        &self,
        conn: &Connector,
        intent: &Intent,
        email: &str,
        name_wins: bool,
        calls: &mut Vec<Call>,
    ) -> Result<Match, Failure> {
        let (made, by_name) = conn.find_user(&intent.username).await;
        calls.extend(made);
        let by_name = by_name?;
        let wants_email = matches!(self.link_existing, LinkExisting::UsernameThenEmail | LinkExisting::Email)
            && !email.trim().is_empty()
            && (self.link_existing == LinkExisting::Email || by_name.is_none());
        let by_email = if wants_email {
            let (made, found) = conn.find_by_email(email).await;
            calls.extend(made);
            match found? {
                EmailSearch::Found(list) => Some(list),
                EmailSearch::NotSearchable(_) => None,
            }
        } else {
            None
        };
        let refs: Option<Vec<&crate::atlassian::AccountActivity>> = by_email.as_ref().map(|l| l.iter().collect());
        let found = Candidates { by_name: by_name.as_ref(), by_email: refs.as_deref() };
        let store = &self.store;
        let (target, me) = (intent.target.as_str(), intent.user_id.as_str());
        // Linked to another SCIM user that still exists (a deleted user's account is free again).
        let elsewhere = |u: &str| {
            store
                .linked_user(target, u)
                .ok()
                .flatten()
                .is_some_and(|owner| owner != me && store.get(Kind::User, &owner).ok().flatten().is_some())
        };
        if let Some(a) = by_name.as_ref().filter(|a| name_wins && !elsewhere(&a.username)) {
            let differs = a.email.as_deref().is_some_and(|e| !crate::atlassian::same_email(e, email));
            return Ok(Match::Existing {
                username: a.username.clone(),
                active: a.active,
                by_email: false,
                note: differs
                    .then(|| "provisioned under this name before links were recorded; its email differs".into()),
            });
        }
        let email_opt = (!email.trim().is_empty()).then_some(email);
        Ok(policy::match_account(self.link_existing, email_opt, &found, &elsewhere))
    }

    #[allow(clippy::too_many_arguments)]
    fn put_on_review(
        &self,
        seq: u64,
        entry: &OutboxEntry,
        intent: &Intent,
        email: &str,
        kind: &str,
        reason: String,
        candidates: Vec<String>,
    ) -> StoreResult<Plan> {
        let review = self.review(intent, email, kind, reason, candidates);
        self.hold(seq, entry, intent, Some(&review), &review.reason)?;
        tracing::error!(job = seq, target = %intent.target, user_id = %intent.user_id, kind, "A user cannot be linked to an Atlassian account without a decision; held for review (scimbridge links list, links set).");
        Ok(Plan::Held)
    }

    fn review(&self, intent: &Intent, email: &str, kind: &str, reason: String, candidates: Vec<String>) -> Review {
        let user_name = self
            .store
            .get(Kind::User, &intent.user_id)
            .ok()
            .flatten()
            .and_then(|r| r.str_attr("userName").map(str::to_string))
            .unwrap_or_default();
        Review {
            target: intent.target.clone(),
            user_id: intent.user_id.clone(),
            user_name,
            wanted: intent.username.clone(),
            email: (!email.is_empty()).then(|| email.to_string()),
            kind: kind.to_string(),
            reason,
            candidates,
            at: now_text(),
        }
    }

    /// Holds the entry (see `Store::hold_for_review`); `false` when it was not held.
    fn hold(
        &self,
        seq: u64,
        entry: &OutboxEntry,
        intent: &Intent,
        review: Option<&Review>,
        reason: &str,
    ) -> StoreResult<bool> {
        // Like every delivery record: with the actor and run id of the run that queued it.
        let extra =
            json!({"detail": reason, "review": review.map(|r| json!({"kind": r.kind, "candidates": r.candidates}))});
        let audit = super::worker::delivery_record(intent, seq, entry, "held_for_review", &[], extra);
        let held = self.store.hold_for_review(review, &intent.target, &intent.user_id, seq, entry, &audit)?;
        if held {
            self.metrics.record_delivery_for(&intent.target, "held_for_review", &entry.reason());
        }
        Ok(held)
    }

    /// Records the link made by a delivered plan; a create that found the name taken (no
    /// look-up: `link_existing = "none"`) is recorded as such.
    pub(super) fn record_link(&self, mut link: Link, effects: &[Effect]) -> StoreResult<()> {
        if link.source == LinkSource::Created && effects.first() == Some(&Effect::AlreadyDone) {
            link.source = LinkSource::SameName;
        }
        let previous = self.store.link(&link.user_id, &link.target)?;
        let op = if link.source == LinkSource::Renamed { "rename" } else { "link" };
        let reason = match link.source {
            LinkSource::Username => "an existing account has the mapped username",
            LinkSource::Email => "the only existing account with the user's email",
            LinkSource::Created => "no existing account; created",
            LinkSource::SameName => "an account of that name existed (link_existing = \"none\")",
            LinkSource::Renamed => "rename = \"follow\": the account was renamed",
            LinkSource::Rehire | LinkSource::Admin => "",
        };
        let audit = link_audit(op, &link, previous.as_ref(), reason);
        // A look-up or create was planned for a user with no link; a link to another account that
        // exists by now was set by an operator while the calls were in flight, and it stands.
        if matches!(link.source, LinkSource::Renamed | LinkSource::Rehire | LinkSource::Admin) {
            return self.store.link_put(&link, &audit);
        }
        if !self.store.link_put_unless_linked_elsewhere(&link, &audit)? {
            tracing::warn!(
                target = %link.target, user = %link.user_id, delivered = %link.username,
                "an operator linked the user while its delivery was in flight; the operator's link is kept"
            );
        }
        Ok(())
    }
}
