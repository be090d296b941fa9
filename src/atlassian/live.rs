//! `check-config --live`: per target, read-only calls proving more than a login: the URL and
//! credential work, which release runs, and that the credential holds the rights the configured
//! actions need (review §7 fix 10). Nothing is written.
//!
//! - Jira: `GET /myself`, the release, `GET /mypermissions` → `ADMINISTER` (user management) and
//!   `SYSTEM_ADMIN` (anonymization "Requires system admin permission", 10.3 spec; deactivating a
//!   System Administrator needs one too, review J4).
//! - Confluence: `GET /user/current`, the release, the admin-only `GET
//!   /rest/api/admin/users/list/active?limit=1`.
//! - Bitbucket: `GET /admin/users?limit=1`, the release, the ADMIN-only `GET /admin/license`.
//! - Crowd: the health probe (application name, password and IP allow-list) and the release
//!   where `server-info` answers; Crowd does not tell an application its directory permissions.

use serde_json::Value;

use super::client::{Connector, Session};
use super::request::Request;
use super::types::Product;
use super::version::{Version, CONFLUENCE_ADMIN_USER_REST, JIRA_ACTIVE_OVER_REST, JIRA_SESSION_REST};

/// What the configured actions need from a target's credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Some policy or job anonymizes users (Jira: System Administrator).
    pub anonymize: bool,
}

/// The outcome of [`Connector::live_check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveCheck {
    pub version: Option<Version>,
    /// What was proven or is worth knowing ("Jira 9.10.1", "administrator: yes").
    pub facts: Vec<String>,
    /// Why the target cannot do what the configuration asks; empty when it can.
    pub problems: Vec<String>,
}

impl Connector {
    /// Read-only checks of the target against what the configuration needs (see module header).
    pub async fn live_check(&self, needs: Needs) -> LiveCheck {
        let mut out = LiveCheck::default();
        if let Err(e) = self.health().await {
            out.problems.push(e);
            return out;
        }
        match self.server_version().await {
            Ok(Some(v)) => {
                out.version = Some(v);
                out.facts.push(format!("{} {v}", product_name(self.product())));
            }
            Ok(None) => out.facts.push(format!("{} does not tell its version", product_name(self.product()))),
            Err(e) => out.problems.push(format!("could not read the version: {e}")),
        }
        let mut s = Session::new(self);
        match self.product() {
            Product::Jira => jira(&mut s, needs, &mut out).await,
            Product::Confluence => confluence(&mut s, &mut out).await,
            Product::Bitbucket => bitbucket(&mut s, &mut out).await,
            Product::Crowd => out.facts.push(
                "application credentials accepted (Crowd does not expose the directory permissions of an application)"
                    .into(),
            ),
        }
        out
    }
}

impl Connector {
    /// `check-config --live` for the accounts the configuration names on this target (Jira
    /// `lead_successor`, `anonymize_new_owner`; `key` is the config key): each must exist and be
    /// active, or the action that hands things to it fails at the worst moment, on a leaver.
    /// Adds a fact or a problem per account to `out`; read-only.
    pub async fn live_check_accounts(&self, accounts: &[(&str, &str)], out: &mut LiveCheck) {
        let problems = &mut out.problems;
        for (key, username) in accounts {
            let (_, found) = self.find_user(username).await;
            match found {
                Ok(Some(a)) if a.active => out.facts.push(format!("{key} {username}: active")),
                Ok(Some(_)) => problems.push(format!(
                    "{key} = \"{username}\" names a deactivated account; Jira will not hand leads or owned \
                     items to it: reactivate it or name another user"
                )),
                Ok(None) => problems.push(format!(
                    "{key} = \"{username}\" names no account of this {}; name an existing, active user",
                    product_name(self.product())
                )),
                Err(f) => problems.push(format!("could not look up {key} = \"{username}\": {}", f.reason())),
            }
        }
    }
}

fn product_name(p: Product) -> &'static str {
    match p {
        Product::Jira => "Jira",
        Product::Confluence => "Confluence",
        Product::Crowd => "Crowd",
        Product::Bitbucket => "Bitbucket",
    }
}

async fn jira(s: &mut Session<'_>, needs: Needs, out: &mut LiveCheck) {
    if let Some(v) = out.version {
        if !v.at_least(JIRA_ACTIVE_OVER_REST) {
            out.problems
                .push(format!("Jira {v} cannot deactivate users over REST (from 8.3, JRASERVER-37294); upgrade Jira"));
        } else if !v.at_least(JIRA_SESSION_REST) {
            out.facts.push("sessions cannot be ended over REST on this release (from 9.11)".into());
        }
    }
    let reply = match s.send(&Request::get("/rest/api/2/mypermissions")).await {
        Ok(r) if r.is_success() => r,
        Ok(r) => {
            out.problems.push(format!("GET /rest/api/2/mypermissions answered {}", r.status));
            return;
        }
        Err(f) => {
            out.problems.push(f.reason().to_string());
            return;
        }
    };
    let body = reply.json().unwrap_or(Value::Null);
    let has = |key: &str| body.pointer(&format!("/permissions/{key}/havePermission")).and_then(Value::as_bool);
    let (admin, sysadmin) = (has("ADMINISTER"), has("SYSTEM_ADMIN"));
    match (admin, sysadmin) {
        (Some(a), Some(sa)) => {
            out.facts.push(format!("administrator: {}; system administrator: {}", yes(a || sa), yes(sa)));
            if !a && !sa {
                out.problems.push(
                    "the credential's account is not a Jira administrator (ADMINISTER): creating, deactivating users \
                     and changing groups will be refused (403)"
                        .into(),
                );
            }
            if needs.anonymize && !sa {
                out.problems.push(
                    "the policy anonymizes, which needs a Jira System Administrator (SYSTEM_ADMIN); give the \
                     account that global permission or choose another action"
                        .into(),
                );
            }
        }
        _ => out.problems.push("GET /rest/api/2/mypermissions did not list ADMINISTER and SYSTEM_ADMIN".into()),
    }
}

async fn confluence(s: &mut Session<'_>, out: &mut LiveCheck) {
    if let Some(v) = out.version.filter(|v| !v.at_least(CONFLUENCE_ADMIN_USER_REST)) {
        out.problems.push(format!(
            "Confluence {v} has no REST API to create or disable users (from 8.4, CONFSERVER-87292); upgrade Confluence"
        ));
        return;
    }
    let probe = Request::get("/rest/api/admin/users/list/active").query("limit", "1");
    match s.send(&probe).await {
        Ok(r) if r.is_success() => out.facts.push("administrator: yes".into()),
        Ok(r) if r.status == 401 || r.status == 403 => out.problems.push(
            "the credential's account is not a Confluence administrator: the admin user REST will refuse it".into(),
        ),
        Ok(r) if r.status == 404 => {
            out.facts.push("administrator rights not provable on this release (no admin user listing)".into())
        }
        Ok(r) => out.problems.push(format!("GET /rest/api/admin/users/list/active answered {}", r.status)),
        Err(f) => out.problems.push(f.reason().to_string()),
    }
}

async fn bitbucket(s: &mut Session<'_>, out: &mut LiveCheck) {
    match s.send(&Request::get("/rest/api/1.0/admin/license")).await {
        Ok(r) if r.is_success() => out.facts.push("ADMIN: yes".into()),
        // Bitbucket answers 401 to a caller below ADMIN (8.14 OpenAPI).
        Ok(r) if r.status == 401 || r.status == 403 => out.problems.push(
            "the credential's account lacks the ADMIN global permission: user creation and licence changes will \
             be refused"
                .into(),
        ),
        Ok(r) => out.problems.push(format!("GET /rest/api/1.0/admin/license answered {}", r.status)),
        Err(f) => out.problems.push(f.reason().to_string()),
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
