//! Operator actions on account links (issue 9): `links list`, `links set`, `links clear`, shared
//! by the admin API (`/admin/links…`) and the CLI so both give one answer. Every change is
//! audited like any operator action, with the [`Operator`]'s actor and run id (the link record is
//! written in the link's own transaction, indexed under the user, the Atlassian username and the
//! run). Setting a link resolves the user's review and releases the intents held for it, in their
//! order; clearing one releases them too, so the next delivery looks the account up again. Each
//! released intent is audited (`job_release`) under the same run.

use serde_json::{json, Value};

use crate::delivery::link_audit;
use crate::scim::ScimError;
use crate::store::{Kind, Link, LinkSource, Operator, Store, StoreResult};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The configured target named `name` (case-insensitive), as configured.
///
/// # Errors
/// A 400 naming the configured targets.
pub fn target_name(targets: &[String], name: &str) -> StoreResult<String> {
    targets.iter().find(|t| t.eq_ignore_ascii_case(name.trim())).cloned().ok_or_else(|| {
        let configured = if targets.is_empty() {
            "none is configured (add a [[target]] block to the configuration)".to_string()
        } else {
            format!("configured: {}", targets.join(", "))
        };
        ScimError::invalid_value(format!("No [[target]] is named '{name}'; {configured}.")).into()
    })
}

/// The SCIM user named by id or userName (case-insensitive); a deleted one by its SCIM id while
/// it is on the review list or linked.
///
/// # Errors
/// A 404 when there is no such user.
pub fn scim_user(store: &Store, who: &str) -> StoreResult<(String, String)> {
    let id = match store.get(Kind::User, who)? {
        Some(_) => Some(who.to_string()),
        None => store.id_by_name(Kind::User, who)?,
    };
    let rec = match id {
        Some(id) => store.get(Kind::User, &id)?,
        None => None,
    };
    if let Some(rec) = rec {
        return Ok((rec.id.clone(), rec.str_attr("userName").unwrap_or_default().to_string()));
    }
    // A deleted user still on the review list or linked (its offboarding may be held): by SCIM id.
    if let Some(r) = store.reviews(None)?.into_iter().find(|r| r.user_id == who) {
        return Ok((r.user_id, r.user_name));
    }
    if store.links(None)?.iter().any(|l| l.user_id == who) {
        return Ok((who.to_string(), String::new()));
    }
    Err(ScimError::not_found(format!("No SCIM user '{who}' (give a userName or a SCIM id).")).into())
}

/// The audit record of an operator's link change: the link record with the run id.
fn audit(op_name: &str, link: &Link, previous: Option<&Link>, reason: &str, op: &Operator) -> Value {
    let mut v = link_audit(op_name, link, previous, reason);
    v["run_id"] = json!(op.run_id);
    v["reason"] = json!(crate::reason::OPERATOR);
    v
}

fn user_name(store: &Store, id: &str) -> Option<String> {
    store.get(Kind::User, id).ok().flatten().and_then(|r| r.str_attr("userName").map(str::to_string))
}

/// Checks that `username` is an account of the configured target `target` before `set` links to
/// it, so a typo cannot send a user's held deliveries to a name nobody has.
///
/// # Errors
/// A 400 when the target has no such account (naming the way to link a new one anyway), a 502
/// when the target cannot be asked.
pub async fn check_account(config: &crate::config::Config, target: &str, username: &str) -> StoreResult<()> {
    let Some(t) = config.targets.iter().find(|t| t.spec.name.eq_ignore_ascii_case(target.trim())) else {
        return Err(ScimError::invalid_value(format!("No [[target]] is named '{target}'.")).into());
    };
    let conn = crate::atlassian::Connector::new(t.spec.clone())
        .map_err(|e| ScimError::new(500, None, format!("The {target} target cannot be used: {e}.")))?;
    match conn.find_user(username.trim()).await.1 {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ScimError::invalid_value(format!(
            "The {} target has no account '{}'; check the name, or link it as a new account (--new, \"new\": true) to have the held create make it.",
            t.spec.name,
            username.trim()
        ))
        .into()),
        Err(f) => Err(ScimError::new(
            502,
            None,
            format!("Could not check the account on {}: {}; try again, or use --new to link without checking.", t.spec.name, f.reason()),
        )
        .into()),
    }
}

/// Every link and every user waiting for review, optionally of one target.
///
/// # Errors
/// An unknown target (400); storage errors.
pub fn list(store: &Store, targets: &[String], target: Option<&str>) -> StoreResult<Value> {
    let target = target.map(|t| target_name(targets, t)).transpose()?;
    let links: Vec<Value> = store
        .links(target.as_deref())?
        .into_iter()
        .map(|l| {
            let name = user_name(store, &l.user_id);
            json!({"target": l.target, "user_id": l.user_id, "user_name": name, "username": l.username,
                "source": l.source, "at": l.at, "actor": l.actor, "scim_user_exists": name.is_some()})
        })
        .collect();
    let mut review = Vec::new();
    for r in store.reviews(target.as_deref())? {
        let held = store.held_count(&r.target, &r.user_id)?;
        let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
        v["held"] = json!(held);
        review.push(v);
    }
    Ok(json!({"links": links, "review": review}))
}

/// Links SCIM user `who` to `username` on `target`; resolves any review and releases the held
/// intents.
///
/// # Errors
/// Unknown target or user, a blank username, or an account linked to another user (409).
pub fn set(
    store: &Store,
    targets: &[String],
    who: &str,
    username: &str,
    target: &str,
    op: &Operator,
) -> StoreResult<Value> {
    let target = target_name(targets, target)?;
    let username = username.trim();
    if username.is_empty() || username.contains(char::is_control) {
        return Err(ScimError::invalid_value("ATLASSIAN_USERNAME must be a non-empty username.").into());
    }
    let (user_id, user_name) = scim_user(store, who)?;
    let previous = store.link(&user_id, &target)?;
    let external_id = store.get(Kind::User, &user_id)?.and_then(|r| r.external_id().map(str::to_string));
    let link = Link {
        target: target.clone(),
        user_id: user_id.clone(),
        username: username.to_string(),
        source: LinkSource::Admin,
        at: now(),
        actor: op.actor.clone(),
        external_id,
    };
    let review = store.review(&target, &user_id)?;
    let reason = match &review {
        Some(r) => format!("operator resolved the review ({}: {})", r.kind, r.reason),
        None => "set by an operator".to_string(),
    };
    store.link_put(&link, &audit("set", &link, previous.as_ref(), &reason, op))?;
    let released = store.release_held(&target, &user_id, op, &now())?.len();
    tracing::info!(target_name = %target, user_id = %user_id, actor = %op.actor, run_id = %op.run_id, released, "Account link set by an operator.");
    Ok(json!({"target": target, "user_id": user_id, "user_name": user_name, "username": username,
        "previous": previous.map(|p| p.username), "released": released, "actor": op.actor, "run_id": op.run_id}))
}

/// Removes the links of `who` (on `target`, or on every target), with any review; held intents
/// are released, so the next delivery looks the account up again.
///
/// # Errors
/// Unknown target or user; 404 when there was nothing to clear.
pub fn clear(store: &Store, targets: &[String], who: &str, target: Option<&str>, op: &Operator) -> StoreResult<Value> {
    let only = target.map(|t| target_name(targets, t)).transpose()?;
    let (user_id, user_name) = scim_user(store, who)?;
    let mut cleared = Vec::new();
    let mut released = 0;
    for t in targets.iter().filter(|t| only.as_ref().is_none_or(|o| o == *t)) {
        let Some(link) = store.link(&user_id, t)? else {
            if store.review(t, &user_id)?.is_some() {
                let marker = Link {
                    target: t.clone(),
                    user_id: user_id.clone(),
                    username: String::new(),
                    source: LinkSource::Admin,
                    at: now(),
                    actor: op.actor.clone(),
                    external_id: None,
                };
                store.link_clear(
                    &user_id,
                    t,
                    &audit("clear_review", &marker, None, "review cleared by an operator", op),
                )?;
                released += store.release_held(t, &user_id, op, &now())?.len();
                cleared.push(json!({"target": t, "username": Value::Null, "review": true}));
            }
            continue;
        };
        let audit_link = Link { at: now(), actor: op.actor.clone(), ..link.clone() };
        store.link_clear(&user_id, t, &audit("clear", &audit_link, Some(&link), "cleared by an operator", op))?;
        released += store.release_held(t, &user_id, op, &now())?.len();
        cleared.push(json!({"target": t, "username": link.username}));
    }
    if cleared.is_empty() {
        return Err(ScimError::not_found(format!("SCIM user '{who}' has no link to clear.")).into());
    }
    tracing::info!(user_id = %user_id, actor = %op.actor, run_id = %op.run_id, cleared = cleared.len(), "Account links cleared by an operator.");
    Ok(json!({"user_id": user_id, "user_name": user_name, "cleared": cleared, "released": released,
        "actor": op.actor, "run_id": op.run_id}))
}
