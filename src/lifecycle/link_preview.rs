//! `links preview` (issue 9): for every SCIM user, how each target would match them — `linked`
//! (a link is recorded), `existing`, `new`, `ambiguous` or `conflict` — with the same rule
//! delivery applies (`policy::match_account`), and the orphans: accounts linked to no SCIM user,
//! with their last activity. Changes nothing.
//!
//! One listing per target (the paged read side), indexed in memory by username and email, so the
//! run costs one pass over the accounts and one over the users, not a call per user: 100,000 of
//! each is the benchmarked size (`cargo bench --bench links_preview`). Products that cannot be
//! searched by email (Confluence) match by username only, as delivery does.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Jobs, LifecycleError};
use crate::atlassian::{AccountActivity, Connector, ReadPolicy};
use crate::policy::{self, Candidates, LinkExisting, Match, UserFacts};
use crate::store::{Link, Record};

/// How one SCIM user matches on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRow {
    pub user_id: String,
    pub user_name: String,
    /// `linked`, `existing`, `new`, `ambiguous` or `conflict`.
    pub status: String,
    /// The account it is or would be linked to (the username a create would use for `new`).
    pub username: Option<String>,
    pub candidates: Vec<String>,
    pub detail: String,
}

/// An account linked to no SCIM user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    pub username: String,
    pub email: Option<String>,
    pub active: bool,
    /// RFC 3339; `None` with `activity_reported` means never.
    pub last_active: Option<String>,
    pub activity_reported: bool,
    /// The deleted SCIM user it was linked to, if any.
    pub former_user: Option<String>,
}

/// One target's preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetPreview {
    pub target: String,
    pub product: String,
    pub accounts: u64,
    pub counts: BTreeMap<String, u64>,
    pub users: Vec<PreviewRow>,
    pub orphans: Vec<Orphan>,
    /// Why the target could not be read (its rows are then missing).
    pub error: Option<String>,
    /// What this target cannot do (e.g. no email search).
    pub notes: Vec<String>,
}

/// The whole preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    pub link_existing: String,
    pub users: u64,
    pub targets: Vec<TargetPreview>,
}

/// The facts of a SCIM user the match needs.
struct User {
    facts: UserFacts,
    user_name: String,
}

fn email_of(rec: &Record) -> Option<String> {
    let emails = rec.attrs.get("emails")?.as_array()?;
    let primary = emails.iter().find(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
    primary.or(emails.first())?.get("value")?.as_str().map(str::to_string)
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

impl Jobs {
    /// Lower-cased usernames of the accounts on `target` linked to a SCIM user that exists: what
    /// `--orphans` leaves out besides the accounts provisioned under their derived name.
    ///
    /// # Errors
    /// A store error.
    pub(crate) fn linked_accounts(&self, target: &str) -> Result<std::collections::HashSet<String>, LifecycleError> {
        let mut out = std::collections::HashSet::new();
        for l in self.store.links(Some(target))? {
            if self.store.get(crate::store::Kind::User, &l.user_id)?.is_some() {
                out.insert(lower(&l.username));
            }
        }
        Ok(out)
    }

    /// The preview of every target, or only `only`.
    ///
    /// # Errors
    /// An unknown target or a store error; a target that cannot be read is reported in its entry.
    pub async fn links_preview(&self, only: Option<&str>) -> Result<Preview, LifecycleError> {
        let policy = &self.config.policy;
        let mut users = Vec::new();
        for rec in self.store.users_iter() {
            let rec = rec?;
            let facts = UserFacts {
                id: rec.id.clone(),
                user_name: rec.str_attr("userName").unwrap_or_default().to_string(),
                external_id: rec.external_id().map(str::to_string),
                email: email_of(&rec),
                display_name: None,
                active: rec.attrs.get("active").and_then(Value::as_bool).unwrap_or(true),
                groups: Vec::new(),
                mapped_username: rec.link.clone(),
                deactivated: Vec::new(),
            };
            users.push(User { user_name: facts.user_name.clone(), facts });
        }
        let mut preview = Preview {
            link_existing: policy.link_existing.as_str().to_string(),
            users: users.len() as u64,
            targets: Vec::new(),
        };
        for t in self.targets(only)? {
            let conn = self.connector(&t.spec.name)?;
            // Last activity is shown when the product gives it; its absence is no reason to refuse.
            let reader =
                conn.clone().with_read_policy(ReadPolicy { require_activity: false, ..conn.read_policy().clone() });
            let mut accounts: Vec<AccountActivity> = Vec::new();
            let listed = reader
                .for_each_account(|page| {
                    accounts.extend(page);
                    std::ops::ControlFlow::Continue(())
                })
                .await;
            let mut tp = TargetPreview {
                target: t.spec.name.clone(),
                product: t.spec.product.to_string(),
                accounts: accounts.len() as u64,
                ..TargetPreview::default()
            };
            if let Err(f) = listed {
                tp.error = Some(f.reason().to_string());
                preview.targets.push(tp);
                continue;
            }
            let links = self.store.links(Some(&t.spec.name))?;
            self.preview_target(&mut tp, conn, &users, accounts, links);
            preview.targets.push(tp);
        }
        Ok(preview)
    }

    fn preview_target(
        &self,
        tp: &mut TargetPreview,
        conn: &Connector,
        users: &[User],
        accounts: Vec<AccountActivity>,
        links: Vec<Link>,
    ) {
        let policy = &self.config.policy;
        let email_search = Connector::email_searchable(conn.product());
        if !email_search {
            tp.notes.push(crate::atlassian::CONFLUENCE_NO_EMAIL_SEARCH.to_string());
        }
        let mut by_name: HashMap<String, usize> = HashMap::with_capacity(accounts.len());
        let mut by_email: HashMap<String, Vec<usize>> = HashMap::with_capacity(accounts.len());
        for (i, a) in accounts.iter().enumerate() {
            by_name.insert(lower(&a.username), i);
            if let Some(e) = a.email.as_deref().filter(|e| !e.trim().is_empty()) {
                by_email.entry(lower(e)).or_default().push(i);
            }
        }
        let live: std::collections::HashSet<&str> = users.iter().map(|u| u.facts.id.as_str()).collect();
        let link_of: HashMap<&str, &Link> = links.iter().map(|l| (l.user_id.as_str(), l)).collect();
        // Account → SCIM user id of its link; re-hire candidates: retired links by externalId.
        let owner: HashMap<String, &str> = links.iter().map(|l| (lower(&l.username), l.user_id.as_str())).collect();
        let mut retired: HashMap<&str, Vec<&Link>> = HashMap::new();
        for l in links.iter().filter(|l| !live.contains(l.user_id.as_str())) {
            if let Some(x) = &l.external_id {
                retired.entry(x.as_str()).or_default().push(l);
            }
        }
        let mut matched = vec![false; accounts.len()];
        let mut rows = Vec::with_capacity(users.len());
        for u in users {
            let row = |status: &str, username: Option<String>, candidates: Vec<String>, detail: String| PreviewRow {
                user_id: u.facts.id.clone(),
                user_name: u.user_name.clone(),
                status: status.to_string(),
                username,
                candidates,
                detail,
            };
            if let Some(l) = link_of.get(u.facts.id.as_str()) {
                let detail = match by_name.get(&lower(&l.username)) {
                    Some(&i) => {
                        matched[i] = true;
                        format!("linked ({:?})", l.source).to_lowercase()
                    }
                    None => "linked, but the target has no such account".to_string(),
                };
                rows.push(row("linked", Some(l.username.clone()), Vec::new(), detail));
                continue;
            }
            if let Some((ext, old)) = u.facts.external_id.as_deref().and_then(|x| retired.get(x).map(|r| (x, r))) {
                if let [one] = old.as_slice() {
                    if let Some(&i) = by_name.get(&lower(&one.username)) {
                        matched[i] = true;
                    }
                    let detail = format!("re-hire: takes back the account of deleted SCIM user {}", one.user_id);
                    rows.push(row("existing", Some(one.username.clone()), Vec::new(), detail));
                } else {
                    // As delivery decides (`delivery/link.rs`): several retired links are a review.
                    let candidates = old.iter().map(|l| l.username.clone()).collect();
                    let detail =
                        format!("re-hire: externalId {ext} was linked to {} accounts of deleted users", old.len());
                    rows.push(row("ambiguous", None, candidates, detail));
                }
                continue;
            }
            let Some(wanted) = policy::username_for(&u.facts, policy.username_from) else {
                rows.push(row("new", None, Vec::new(), "no username can be derived; nothing would be created".into()));
                continue;
            };
            let email = u.facts.email.as_deref().filter(|e| !e.trim().is_empty());
            let name_hit = by_name.get(&lower(&wanted)).map(|&i| &accounts[i]);
            let email_hits: Option<Vec<&AccountActivity>> = match (email_search, email) {
                (true, Some(e)) => Some(
                    by_email.get(&lower(e)).map(|ix| ix.iter().map(|&i| &accounts[i]).collect()).unwrap_or_default(),
                ),
                _ => None,
            };
            let me = u.facts.id.as_str();
            let elsewhere = |name: &str| owner.get(&lower(name)).is_some_and(|o| *o != me && live.contains(o));
            let found = Candidates { by_name: name_hit, by_email: email_hits.as_deref() };
            // `none` looks nothing up, but delivery's create then takes an account of that name as
            // it is (or holds the user when another SCIM user has it): say so, as delivery does.
            let decided = match (policy.link_existing, name_hit) {
                (LinkExisting::None, Some(a)) if elsewhere(&a.username) => Match::Conflict {
                    candidates: vec![a.username.clone()],
                    reason: format!("the account {:?} is already linked to another SCIM user", a.username),
                },
                (LinkExisting::None, Some(a)) => Match::Existing {
                    username: a.username.clone(),
                    // Taken as it is: delivery does not reactivate it (the note says so).
                    active: true,
                    by_email: false,
                    note: Some(format!(
                        "link_existing = \"none\": the create finds the name taken and takes the account as it is{}",
                        if a.active { "" } else { " (inactive, stays inactive)" }
                    )),
                },
                _ => policy::match_account(policy.link_existing, email, &found, &elsewhere),
            };
            match decided {
                Match::Existing { username, active, by_email, note } => {
                    if let Some(&i) = by_name.get(&lower(&username)) {
                        matched[i] = true;
                    }
                    let how = if by_email { "by email" } else { "by username" };
                    let state = if active { "" } else { "; inactive, would be reactivated" };
                    let detail = format!("{how}{state}{}", note.map(|n| format!("; {n}")).unwrap_or_default());
                    rows.push(row("existing", Some(username), Vec::new(), detail));
                }
                Match::New => rows.push(row("new", Some(wanted), Vec::new(), "would be created".into())),
                Match::Ambiguous { candidates, reason } => rows.push(row("ambiguous", None, candidates, reason)),
                Match::Conflict { candidates, reason } => rows.push(row("conflict", None, candidates, reason)),
            }
        }
        for r in &rows {
            *tp.counts.entry(r.status.clone()).or_default() += 1;
        }
        tp.users = rows;
        for (i, a) in accounts.into_iter().enumerate() {
            let linked_to = owner.get(&lower(&a.username)).copied();
            if matched[i] || linked_to.is_some_and(|o| live.contains(o)) {
                continue;
            }
            tp.orphans.push(Orphan {
                username: a.username,
                email: a.email,
                active: a.active,
                last_active: a.last_active.map(super::report::rfc3339),
                activity_reported: a.activity_reported,
                former_user: linked_to.map(str::to_string),
            });
        }
        tp.counts.insert("orphan".into(), tp.orphans.len() as u64);
    }
}
