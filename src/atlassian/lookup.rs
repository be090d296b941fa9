//! Finding an existing account before a create (issue 9, "Linking existing accounts"), and
//! renaming an account (`rename = "follow"`). Both run at delivery, so every call is recorded
//! for the audit log and a retryable answer (429, 503, no answer) is returned at once for
//! delivery's retry schedule to handle, rather than waited out here.
//!
//! Per product (all documented calls):
//! - Jira: by username `GET /rest/api/2/user?username=` (the `UserBean` has `emailAddress`); by
//!   email `GET /rest/api/2/user/search?username=<email>&includeActive=true&includeInactive=true`
//!   ("A query string used to search username, name or e-mail address", Jira 10.3 OpenAPI), kept
//!   only where `emailAddress` equals the email. Rename: `PUT /rest/api/2/user?username=<old>`
//!   `{"name": <new>}` (`UserWriteBean.name`, same spec).
//! - Confluence: by username `GET /rest/api/user?username=&expand=status,details.personal`
//!   (`details.personal.email`, Atlassian community answer; the 10.0.3 spec leaves the Person
//!   shape empty). Confluence DC has no REST search by email: email matching is not possible there
//!   and `check-config` says so. No rename API.
//! - Crowd: by username `GET /rest/usermanagement/1/user?username=`; by email
//!   `GET /rest/usermanagement/1/search?entity-type=user&restriction=email="…"&expand=user`
//!   (Crowd REST "Search by CQL"). Rename: `POST /rest/usermanagement/1/user/rename?username=<old>`
//!   `{"new-name": <new>}` (Crowd REST, Users resource).
//! - Bitbucket: `GET /rest/api/1.0/admin/users?filter=` (matches "username, display name or email
//!   address", 8.14 OpenAPI), paged, kept only on an exact name or email. No rename API for users.

use serde_json::{json, Value};

use super::activity::{text, AccountActivity};
use super::classify::failure;
use super::client::{expect_success, Connector, Session};
use super::request::Request;
use super::types::{Call, Effect, Failure, Product};

/// Most results asked per look-up page.
const PAGE: u32 = 1000;

/// The answer of an email search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailSearch {
    /// Every account whose email equals the one asked (case-insensitive), and those the search
    /// found without showing an email; may be several.
    Found(Vec<AccountActivity>),
    /// The product cannot be searched by email over REST.
    NotSearchable(&'static str),
}

/// Why Confluence cannot be searched by email (shown by `check-config` and in review reasons).
pub const CONFLUENCE_NO_EMAIL_SEARCH: &str =
    "Confluence Data Center has no REST search by email; only the username can be matched there";

fn account(
    username: Option<String>,
    email: Option<String>,
    active: bool,
    display: Option<String>,
) -> Option<AccountActivity> {
    Some(AccountActivity {
        username: username?,
        display_name: display,
        email,
        active,
        last_active: None,
        activity_reported: false,
        created: None,
        directory: None,
        groups: None,
    })
}

fn active_of(v: &Value) -> bool {
    v.get("active").and_then(Value::as_bool).unwrap_or(true)
}

fn jira_bean(v: &Value) -> Option<AccountActivity> {
    if v.get("deleted").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    account(text(v, "name"), text(v, "emailAddress"), active_of(v), text(v, "displayName"))
}

fn crowd_entity(v: &Value) -> Option<AccountActivity> {
    account(text(v, "name"), text(v, "email"), active_of(v), text(v, "display-name"))
}

fn bitbucket_user(v: &Value) -> Option<AccountActivity> {
    account(text(v, "name"), text(v, "emailAddress"), active_of(v), text(v, "displayName"))
}

/// A Confluence `Person` with `expand=status,details.personal`. A status that cannot be read is
/// taken as enabled (the shape of `ReferenceUserStatus` is not documented).
fn confluence_person(v: &Value) -> Option<AccountActivity> {
    let enabled = match v.get("status") {
        Some(Value::String(s)) => !s.to_ascii_lowercase().contains("deactiv") && !s.eq_ignore_ascii_case("disabled"),
        Some(s @ Value::Object(_)) => s
            .get("value")
            .and_then(Value::as_str)
            .is_none_or(|w| !w.to_ascii_lowercase().contains("deactiv") && !w.eq_ignore_ascii_case("disabled")),
        _ => true,
    };
    let email = v.pointer("/details/personal/email").and_then(Value::as_str).filter(|e| !e.is_empty());
    account(text(v, "username"), email.map(str::to_string), enabled, text(v, "displayName"))
}

/// Case-insensitive email equality (Atlassian products compare emails case-insensitively).
pub fn same_email(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// A Crowd Query Language string literal: double quotes, with `"` and `\` escaped.
fn cql_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(crate) mod requests {
    //! The pure requests of the look-ups and the rename, unit-tested as values.
    use super::*;

    pub fn jira_search(query: &str, start: u64) -> Request {
        Request::get("/rest/api/2/user/search")
            .query("username", query)
            .query("includeActive", "true")
            .query("includeInactive", "true")
            .query("startAt", start.to_string())
            .query("maxResults", PAGE.to_string())
    }

    pub fn jira_rename(old: &str, new: &str) -> Request {
        Request::put("/rest/api/2/user").query("username", old).json(json!({ "name": new }))
    }

    pub fn jira_user(username: &str) -> Request {
        Request::get("/rest/api/2/user").query("username", username)
    }

    pub fn confluence_user(username: &str) -> Request {
        Request::get("/rest/api/user").query("username", username).query("expand", "status,details.personal")
    }

    pub fn crowd_user(username: &str) -> Request {
        Request::get("/rest/usermanagement/1/user").query("username", username)
    }

    pub fn crowd_by_email(email: &str, start: u64) -> Request {
        Request::get("/rest/usermanagement/1/search")
            .query("entity-type", "user")
            .query("restriction", format!("email = {}", cql_string(email)))
            .query("expand", "user")
            .query("start-index", start.to_string())
            .query("max-results", PAGE.to_string())
    }

    pub fn crowd_rename(old: &str, new: &str) -> Request {
        Request::post("/rest/usermanagement/1/user/rename").query("username", old).json(json!({ "new-name": new }))
    }

    pub fn bitbucket_filter(filter: &str, start: u64) -> Request {
        Request::get("/rest/api/1.0/admin/users")
            .query("filter", filter)
            .query("start", start.to_string())
            .query("limit", PAGE.to_string())
    }
}

use requests as rq;

impl Connector {
    /// Whether the product can rename an account over REST (`rename = "follow"`).
    pub fn can_rename(product: Product) -> bool {
        matches!(product, Product::Jira | Product::Crowd)
    }

    /// Whether accounts of the product can be found by email over REST.
    pub fn email_searchable(product: Product) -> bool {
        !matches!(product, Product::Confluence)
    }

    /// The account named `username` (case-insensitive), with its email where the product gives
    /// it, or `None`; with every call made. One attempt per call: a retryable answer is returned
    /// as it is, so delivery's own retry schedule (audited, counted) applies.
    pub async fn find_user(&self, username: &str) -> (Vec<Call>, Result<Option<AccountActivity>, Failure>) {
        let mut s = Session::new(self);
        let result = find_user(&mut s, self.product(), username).await;
        (s.calls, result)
    }

    /// Every account whose email is `email` (case-insensitive); with every call made.
    pub async fn find_by_email(&self, email: &str) -> (Vec<Call>, Result<EmailSearch, Failure>) {
        let mut s = Session::new(self);
        let result = find_by_email(&mut s, self.product(), email).await;
        (s.calls, result)
    }

    /// Renames the account `old` to `new` (Jira, Crowd). Idempotent: when `old` is gone and
    /// `new` exists, the rename already happened.
    pub async fn rename_user(&self, old: &str, new: &str) -> (Vec<Call>, Result<Effect, Failure>) {
        let mut s = Session::new(self);
        let result = rename(&mut s, self.product(), old, new).await;
        (s.calls, result)
    }
}

/// A 2xx JSON body, `None` on 404, else the classified failure.
async fn get_json(s: &mut Session<'_>, req: &Request) -> Result<Option<Value>, Failure> {
    let reply = s.send(req).await?;
    if reply.status == 404 {
        return Ok(None);
    }
    if !reply.is_success() {
        return Err(failure(&reply, s.now()));
    }
    reply.json().map(Some).ok_or_else(|| {
        Failure::permanent(format!(
            "{} {} answered {} with a body that is not JSON",
            req.method,
            req.log_path(),
            reply.status
        ))
    })
}

/// A 2xx JSON body; a 404 here is a failure (the search resource itself is missing).
async fn search_json(s: &mut Session<'_>, req: &Request) -> Result<Value, Failure> {
    get_json(s, req).await?.ok_or_else(|| {
        Failure::permanent(format!("{} {} answered 404: this version has no such search", req.method, req.log_path()))
    })
}

async fn find_user(s: &mut Session<'_>, product: Product, username: &str) -> Result<Option<AccountActivity>, Failure> {
    let (req, parse): (Request, fn(&Value) -> Option<AccountActivity>) = match product {
        Product::Jira => (rq::jira_user(username), jira_bean),
        Product::Confluence => (rq::confluence_user(username), confluence_person),
        Product::Crowd => (rq::crowd_user(username), crowd_entity),
        Product::Bitbucket => {
            return Ok(bitbucket_find(s, username, |a| a.username.eq_ignore_ascii_case(username)).await?.pop())
        }
    };
    Ok(get_json(s, &req).await?.as_ref().and_then(parse).filter(|a| a.username.eq_ignore_ascii_case(username)))
}

async fn find_by_email(s: &mut Session<'_>, product: Product, email: &str) -> Result<EmailSearch, Failure> {
    // An account the search found but whose email the product does not show (Jira's "user email
    // visibility", for one) is kept: it may be this user, and only the match rule may decide.
    let same = |a: &AccountActivity| a.email.as_deref().is_none_or(|e| same_email(e, email));
    match product {
        Product::Confluence => Ok(EmailSearch::NotSearchable(CONFLUENCE_NO_EMAIL_SEARCH)),
        Product::Bitbucket => Ok(EmailSearch::Found(bitbucket_find(s, email, same).await?)),
        Product::Jira => {
            let mut found = Vec::new();
            let mut start = 0u64;
            loop {
                let body = search_json(s, &rq::jira_search(email, start)).await?;
                let beans = body.as_array().cloned().unwrap_or_default();
                found.extend(beans.iter().filter_map(jira_bean).filter(|a| same(a)));
                if beans.len() < PAGE as usize {
                    return Ok(EmailSearch::Found(found));
                }
                start += beans.len() as u64;
            }
        }
        Product::Crowd => {
            let mut found = Vec::new();
            let mut start = 0u64;
            loop {
                let body = search_json(s, &rq::crowd_by_email(email, start)).await?;
                let users = body.get("users").and_then(Value::as_array).cloned().unwrap_or_default();
                found.extend(users.iter().filter_map(crowd_entity).filter(|a| same(a)));
                if users.len() < PAGE as usize {
                    return Ok(EmailSearch::Found(found));
                }
                start += users.len() as u64;
            }
        }
    }
}

/// Bitbucket `admin/users?filter=` pages, keeping the accounts `keep` accepts.
async fn bitbucket_find(
    s: &mut Session<'_>,
    filter: &str,
    keep: impl Fn(&AccountActivity) -> bool,
) -> Result<Vec<AccountActivity>, Failure> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let body = search_json(s, &rq::bitbucket_filter(filter, start)).await?;
        let values = body.get("values").and_then(Value::as_array).cloned().unwrap_or_default();
        out.extend(values.iter().filter_map(bitbucket_user).filter(|a| keep(a)));
        let last = body.get("isLastPage").and_then(Value::as_bool).unwrap_or(true);
        match body.get("nextPageStart").and_then(Value::as_u64) {
            Some(next) if !last && next > start => start = next,
            _ => return Ok(out),
        }
    }
}

async fn exists(s: &mut Session<'_>, req: &Request) -> Result<bool, Failure> {
    let reply = s.send(req).await?;
    match reply.status {
        404 => Ok(false),
        _ if reply.is_success() => Ok(true),
        _ => Err(failure(&reply, s.now())),
    }
}

async fn rename(s: &mut Session<'_>, product: Product, old: &str, new: &str) -> Result<Effect, Failure> {
    let (lookup_old, lookup_new, write) = match product {
        Product::Jira => (rq::jira_user(old), rq::jira_user(new), rq::jira_rename(old, new)),
        Product::Crowd => (rq::crowd_user(old), rq::crowd_user(new), rq::crowd_rename(old, new)),
        Product::Confluence | Product::Bitbucket => {
            return Err(Failure::permanent(format!(
                "{product} has no REST API to rename a user; the account keeps its name"
            )))
        }
    };
    if old.eq_ignore_ascii_case(new) {
        return Ok(Effect::AlreadyDone);
    }
    if !exists(s, &lookup_old).await? {
        if exists(s, &lookup_new).await? {
            return Ok(Effect::AlreadyDone);
        }
        return Err(Failure::permanent(format!("{product} has neither {old:?} nor {new:?}; nothing to rename")));
    }
    if exists(s, &lookup_new).await? {
        return Err(Failure::permanent(format!(
            "{product} already has an account named {new:?}; {old:?} keeps its name (resolve by hand, then `links set`)"
        )));
    }
    expect_success(s, &write).await.map(|_| Effect::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_up_requests_use_the_documented_parameters() {
        assert_eq!(
            rq::jira_search("dave@contoso.com", 0).target(),
            "/rest/api/2/user/search?username=dave%40contoso.com&includeActive=true&includeInactive=true&startAt=0&maxResults=1000"
        );
        assert_eq!(
            rq::crowd_by_email("a\"b@x.com", 0).target(),
            "/rest/usermanagement/1/search?entity-type=user&restriction=email%20%3D%20%22a%5C%22b%40x.com%22&expand=user&start-index=0&max-results=1000"
        );
        assert_eq!(
            rq::bitbucket_filter("d@x", 1000).target(),
            "/rest/api/1.0/admin/users?filter=d%40x&start=1000&limit=1000"
        );
        assert_eq!(
            rq::confluence_user("dave").target(),
            "/rest/api/user?username=dave&expand=status%2Cdetails.personal"
        );
    }

    #[test]
    fn renames_name_the_old_account_and_send_the_new_name() {
        let j = rq::jira_rename("dave", "dave.smith");
        assert_eq!((j.method.as_str(), j.target().as_str()), ("PUT", "/rest/api/2/user?username=dave"));
        assert_eq!(j.body, Some(json!({"name": "dave.smith"})));
        let c = rq::crowd_rename("dave", "dave.smith");
        assert_eq!(c.target(), "/rest/usermanagement/1/user/rename?username=dave");
        assert_eq!(c.body, Some(json!({"new-name": "dave.smith"})));
    }

    #[test]
    fn beans_are_read_per_product_and_deleted_jira_users_are_skipped() {
        let j = jira_bean(&json!({"name": "dave", "emailAddress": "Dave@Contoso.com", "active": false})).expect("bean");
        assert_eq!((j.username.as_str(), j.email.as_deref(), j.active), ("dave", Some("Dave@Contoso.com"), false));
        assert!(jira_bean(&json!({"name": "gone", "deleted": true})).is_none());
        let c = confluence_person(&json!({"username": "dave", "status": "DEACTIVATED",
            "details": {"personal": {"email": "d@x"}}}))
        .expect("person");
        assert_eq!((c.email.as_deref(), c.active), (Some("d@x"), false));
        assert!(same_email(" DAVE@contoso.com", "dave@CONTOSO.com"));
    }
}
