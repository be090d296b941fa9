//! Jira refuses `PUT /user {"active":false}` (400) for a project or component lead
//! (`errors.active`), for a System Administrator when the caller is a plain administrator, for
//! the caller itself, and for any user of a read-only directory (LDAP/AD in every connection
//! mode, Crowd) — `DefaultUserService.validateUpdateUser` (atlassian-calls-review.md J4; KB J6).
//!
//! Then: with `lead_successor`, hand the user's project leads (`PUT /project/{key}` `lead`) and
//! component leads (`PUT /component/{id}` `leadUserName`) over and deactivate again; otherwise,
//! or if Jira still refuses, remove the user from every group that grants application access:
//! the target's `license_groups` plus the `groups`/`defaultGroups` of every application role
//! (`GET /applicationrole`, atlassian-dc.md §2.4). Group membership in a read-only directory is
//! refused with 403 (Jira `GroupResource` maps `OperationNotPermittedException` to 403), which
//! ends as a dead letter naming the groups and the directory.

use serde_json::{json, Value};

use super::request::{self as rq, API};
use super::response as rs;
use crate::atlassian::classify::{error_summary, failure, Reply};
use crate::atlassian::client::{expect_success, Session};
use crate::atlassian::fallback::{self, Fallback, LeadMove, Removal};
use crate::atlassian::request::{encode, Request};
use crate::atlassian::{Effect, Failure, Product};

/// Why Jira refused a deactivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `errors.active`: the user leads a project or a component.
    Lead(String),
    /// Anything else Jira validated away: read-only directory, sysadmin rule, self.
    Other(String),
}

impl Refusal {
    fn text(&self) -> &str {
        match self {
            Refusal::Lead(t) | Refusal::Other(t) => t,
        }
    }
}

/// A 400 to `PUT /user {"active":false}` is Jira's validation refusing the change (the caller
/// already excluded "no value found to be changed").
pub(super) fn refusal(reply: &Reply) -> Option<Refusal> {
    if reply.status != 400 {
        return None;
    }
    let text = error_summary(&reply.body);
    let lead = reply.json().and_then(|v| v.pointer("/errors/active").and_then(Value::as_str).map(str::to_string));
    Some(match lead {
        Some(_) => Refusal::Lead(text),
        None => Refusal::Other(text),
    })
}

// ---- requests ----

/// `GET /project?expand=lead`: every project the caller can see, with its lead.
fn projects() -> Request {
    Request::get(format!("{API}/project")).query("expand", "lead")
}

/// `PUT /project/{key}` `{"lead": successor}` ("Only non null values sent in JSON will be updated").
fn set_project_lead(key: &str, lead: &str) -> Request {
    Request::put(format!("{API}/project/{}", encode(key))).json(json!({ "lead": lead }))
}

/// `GET /project/{key}/components`: the components with their leads.
fn components(key: &str) -> Request {
    Request::get(format!("{API}/project/{}/components", encode(key)))
}

/// `PUT /component/{id}` `{"leadUserName": successor}` ("if a field is not present, it is
/// silently ignored").
fn set_component_lead(id: &str, lead: &str) -> Request {
    Request::put(format!("{API}/component/{}", encode(id))).json(json!({ "leadUserName": lead }))
}

/// `GET /user?username=&expand=groups,applicationRoles`: after the removals, whether Jira still
/// gives the user an application (a nested group, a group granted outside the roles read).
fn user_with_roles(username: &str) -> Request {
    Request::get(format!("{API}/user")).query("username", username).query("expand", "groups,applicationRoles")
}

// ---- reading ----

/// Keys of `UserBean.applicationRoles.items`; `None` when Jira did not expand them.
fn held_roles(bean: &Value) -> Option<Vec<String>> {
    let items = bean.pointer("/applicationRoles/items")?.as_array()?;
    Some(items.iter().filter_map(|r| r.get("key").and_then(Value::as_str)).map(str::to_string).collect())
}

fn lead_name(bean: &Value) -> Option<&str> {
    bean.pointer("/lead/name").and_then(Value::as_str).or_else(|| bean.get("leadUserName").and_then(Value::as_str))
}

fn text(bean: &Value, field: &str) -> String {
    match bean.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The groups behind every application role: `groups` and `defaultGroups`.
fn role_groups(body: &Value) -> Vec<String> {
    let beans = match body {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    };
    beans
        .iter()
        .flat_map(|b| {
            ["groups", "defaultGroups"].map(|f| b.get(f).and_then(Value::as_array).cloned().unwrap_or_default())
        })
        .flatten()
        .filter_map(|g| g.as_str().map(str::to_string))
        .collect()
}

// ---- sequences ----

/// Called by `set_active` when Jira refused `{"active":false}`.
pub(super) async fn after_refusal(s: &mut Session<'_>, username: &str, first: Refusal) -> Result<Effect, Failure> {
    let me = s.send(&rq::myself()).await?;
    let me = me.json().as_ref().and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string));
    if me.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(username)) {
        // Removing its own groups would cut the bridge off every target action.
        return Err(Failure::permanent(format!(
            "Jira refused to deactivate {username}: {}. {username} is the account scimbridge itself uses for \
             this target; scimbridge will not remove its own access. Deactivate {username} by hand with another \
             administrator (Jira administration → User management) after giving scimbridge a different account, \
             or add {username} to policy.protected_users",
            first.text()
        )));
    }
    let mut report = Fallback { refusal: first.text().to_string(), ..Fallback::default() };
    let mut refusal = first;
    if let (Refusal::Lead(_), Some(successor)) = (&refusal, s.offboarding().lead_successor.clone()) {
        report.leads_moved = move_leads(s, username, &successor).await?;
        if report.leads_moved.is_empty() {
            report.refusal = format!("{} (no lead could be handed to {successor})", report.refusal);
            let result = remove_access_groups(s, username, &mut report, None).await;
            s.fallback = Some(report);
            return result;
        }
        let again = s.send(&rq::set_active(username, false)).await?;
        if again.is_success() {
            tracing::info!(username = %crate::redact::Pii(username), moved = report.leads_moved.len(), "Jira leads handed over; user deactivated.");
            report.refusal.clear();
            s.fallback = Some(report);
            return Ok(Effect::Applied);
        }
        match self::refusal(&again) {
            Some(r) => {
                report.refusal = format!("{} (after handing leads to {successor}: {})", report.refusal, r.text());
                refusal = r;
            }
            None => return Err(failure(&again, s.now())),
        }
    }
    // admin.errors.must.be.sysadmin.to.edit.sysadmin: the English wording is not published, so
    // this recognises it by the words any translation into English must use (UNVERIFIED).
    let text = refusal.text().to_ascii_lowercase();
    let sysadmin = (text.contains("system administrator") || text.contains("sysadmin")).then(|| {
        format!(
            "{username} is a Jira System Administrator and scimbridge's account is not: only a System \
             Administrator can deactivate them. By hand: a System Administrator deactivates {username} \
             (Jira administration → User management → {username} → Edit → Active) and removes them from the \
             system administrator groups; or give scimbridge's account the System Administrators permission"
        )
    });
    let result = remove_access_groups(s, username, &mut report, sysadmin).await;
    s.fallback = Some(report);
    result
}

/// Hands every project and component `username` leads to `successor`.
async fn move_leads(s: &mut Session<'_>, username: &str, successor: &str) -> Result<Vec<LeadMove>, Failure> {
    let reply = s.send(&projects()).await?;
    if matches!(reply.status, 429 | 500..=599) {
        return Err(failure(&reply, s.now()));
    }
    if !reply.is_success() {
        // Leads cannot be moved; the group fallback still removes access.
        tracing::warn!(status = reply.status, error = %error_summary(&reply.body), "Jira would not list projects; leads stay.");
        return Ok(Vec::new());
    }
    let list = reply.json().and_then(|v| v.as_array().cloned()).unwrap_or_default();
    let mut moved = Vec::new();
    for project in &list {
        let key = text(project, "key");
        if key.is_empty() {
            continue;
        }
        if lead_name(project).is_some_and(|l| l.eq_ignore_ascii_case(username)) {
            let r = s.send(&set_project_lead(&key, successor)).await?;
            if r.is_success() {
                moved.push(LeadMove {
                    kind: "project",
                    id: key.clone(),
                    name: text(project, "name"),
                    to: successor.into(),
                });
            } else {
                tracing::warn!(project = %key, error = %error_summary(&r.body), "Jira refused the new project lead.");
            }
        }
        let comps = s.send(&components(&key)).await?;
        if !comps.is_success() {
            continue;
        }
        for c in comps.json().and_then(|v| v.as_array().cloned()).unwrap_or_default() {
            let id = text(&c, "id");
            if id.is_empty() || !lead_name(&c).is_some_and(|l| l.eq_ignore_ascii_case(username)) {
                continue;
            }
            let r = s.send(&set_component_lead(&id, successor)).await?;
            if r.is_success() {
                let name = format!("{key}/{}", text(&c, "name"));
                moved.push(LeadMove { kind: "component", id, name, to: successor.into() });
            } else {
                tracing::warn!(component = %id, error = %error_summary(&r.body), "Jira refused the new component lead.");
            }
        }
    }
    Ok(moved)
}

/// Removes `username` from every access group it is a member of, then concludes.
async fn remove_access_groups(
    s: &mut Session<'_>,
    username: &str,
    report: &mut Fallback,
    still_privileged: Option<String>,
) -> Result<Effect, Failure> {
    let configured = s.offboarding().license_groups.clone();
    let roles = s.send(&rq::application_roles(None)).await?;
    let from_roles = if roles.is_success() { role_groups(&roles.json().unwrap_or(Value::Null)) } else { Vec::new() };
    report.access_groups = fallback::union(&[&configured, &from_roles]);
    report.access_groups_from = if roles.is_success() {
        "license_groups + the groups of every Jira application role (GET /applicationrole)".into()
    } else {
        format!("license_groups only: GET /applicationrole answered {}", roles.status)
    };
    let reply = expect_success(s, &rq::get_user(username, false)).await?;
    let user = reply
        .json()
        .as_ref()
        .and_then(rs::user)
        .ok_or_else(|| Failure::permanent("GET /user answered 2xx without a user"))?;
    let mut removals: Vec<Removal> = Vec::new();
    for group in report.access_groups.clone() {
        if !user.groups.iter().any(|g| g.eq_ignore_ascii_case(&group)) {
            continue;
        }
        if fallback::is_protected(s.offboarding(), &group) {
            removals.push((group, Err(fallback::PROTECTED.into())));
            continue;
        }
        let r = s.send(&rq::remove_from_group(username, &group)).await?;
        let outcome = if r.is_success() {
            Ok(true)
        } else if rs::is_not_member(&r) {
            Ok(false)
        } else if matches!(r.status, 429 | 503 | 500..=599) {
            return Err(failure(&r, s.now()));
        } else {
            Err(format!("{} {}", r.status, error_summary(&r.body)))
        };
        removals.push((group, outcome));
    }
    let still_privileged = match still_privileged {
        Some(why) => Some(why),
        None if removals.iter().all(|(_, r)| r.is_ok()) => still_holds_roles(s, username).await?,
        None => None,
    };
    fallback::conclude(Product::Jira, username, report, removals, still_privileged)
}

/// After every removal went through: the application roles Jira still grants the user, as a
/// reason for the admin, or `None` when it grants none (or does not say).
async fn still_holds_roles(s: &mut Session<'_>, username: &str) -> Result<Option<String>, Failure> {
    let reply = expect_success(s, &user_with_roles(username)).await?;
    let roles = reply.json().as_ref().and_then(held_roles).unwrap_or_default();
    Ok((!roles.is_empty()).then(|| {
        format!(
            "Jira still gives {username} the application(s) {} through a group scimbridge did not remove \
             (a nested group, or one missing from license_groups). By hand: Jira administration → User \
             management → {username} → Groups, remove the groups that grant {}; add them to license_groups \
             for next time",
            roles.join(", "),
            roles.join(", ")
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: Value) -> Reply {
        Reply { status, headers: vec![], body: body.to_string() }
    }

    #[test]
    fn lead_refusals_are_told_from_other_refusals() {
        let lead =
            reply(400, json!({"errorMessages": [], "errors": {"active": "Cannot deactivate: project lead of ABC"}}));
        assert!(matches!(refusal(&lead), Some(Refusal::Lead(t)) if t.contains("ABC")));
        let ro = reply(400, json!({"errorMessages": ["Cannot edit user, directory is read only."], "errors": {}}));
        assert!(matches!(refusal(&ro), Some(Refusal::Other(t)) if t.contains("read only")));
        assert_eq!(refusal(&reply(403, json!({}))), None);
    }

    #[test]
    fn lead_requests_match_the_spec() {
        assert_eq!(projects().target(), "/rest/api/2/project?expand=lead");
        let p = set_project_lead("AB C", "bob");
        assert_eq!((p.target(), p.body), ("/rest/api/2/project/AB%20C".into(), Some(json!({"lead": "bob"}))));
        assert_eq!(components("ABC").target(), "/rest/api/2/project/ABC/components");
        let c = set_component_lead("10000", "bob");
        assert_eq!((c.target(), c.body), ("/rest/api/2/component/10000".into(), Some(json!({"leadUserName": "bob"}))));
    }

    #[test]
    fn role_groups_read_groups_and_default_groups() {
        let body = json!([{"key": "jira-software", "groups": ["jira-software-users", "devs"], "defaultGroups": ["jira-software-users"]},
                          {"key": "jira-core", "groups": ["jira-core-users"]}]);
        assert_eq!(role_groups(&body), vec!["jira-software-users", "devs", "jira-software-users", "jira-core-users"]);
        assert_eq!(lead_name(&json!({"lead": {"name": "al"}})), Some("al"));
        assert_eq!(lead_name(&json!({"leadUserName": "al"})), Some("al"));
        let bean = json!({"applicationRoles": {"size": 1, "items": [{"key": "jira-software"}]}});
        assert_eq!(held_roles(&bean), Some(vec!["jira-software".to_string()]));
        assert_eq!(held_roles(&json!({"name": "al"})), None);
        assert_eq!(user_with_roles("al").target(), "/rest/api/2/user?username=al&expand=groups%2CapplicationRoles");
    }
}
