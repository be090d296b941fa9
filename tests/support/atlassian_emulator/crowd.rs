//! Emulated Crowd usermanagement REST (`/rest/usermanagement/1`, below the `/crowd` context).
//! Status codes follow atlassian-dc.md §4 (partly from a third-party client: unverified).

use serde_json::{json, Value};

use super::directory;
use super::{body_or, limit_param, offset_param, Params, Req, Resp, Route, State, UserState};

const API: &str = "/rest/usermanagement/1";

pub(super) static ROUTES: &[Route] = &[
    Route {
        method: "GET",
        template: "/rest/admin/1.0/server-info",
        statuses: &[200],
        query: &[],
        body: &[],
        handler: server_info,
    },
    Route {
        method: "GET",
        template: "/rest/usermanagement/1/user",
        statuses: &[200, 401, 404],
        query: &["username", "expand"],
        body: &[],
        handler: get_user,
    },
    Route {
        method: "GET",
        template: "/rest/usermanagement/1/search",
        statuses: &[200, 400, 401],
        query: &["entity-type", "start-index", "max-results", "expand", "restriction"],
        body: &[],
        handler: search,
    },
    Route {
        method: "POST",
        template: "/rest/usermanagement/1/user/rename",
        statuses: &[200, 400, 401, 404],
        query: &["username"],
        body: &["new-name"],
        handler: rename_user,
    },
    Route {
        method: "GET",
        template: "/rest/usermanagement/1/user/attribute",
        statuses: &[200, 401, 404],
        query: &["username"],
        body: &[],
        handler: get_attributes,
    },
    Route {
        method: "GET",
        template: "/rest/usermanagement/1/group/user/direct",
        statuses: &[200, 401, 404],
        query: &["groupname", "start-index", "max-results"],
        body: &[],
        handler: group_members,
    },
    Route {
        method: "POST",
        template: "/rest/usermanagement/1/user",
        statuses: &[201, 400, 401],
        query: &[],
        body: &["name", "display-name", "email", "active", "password"],
        handler: create_user,
    },
    Route {
        method: "PUT",
        template: "/rest/usermanagement/1/user",
        statuses: &[204, 400, 401, 403, 404],
        query: &["username"],
        body: &["display-name", "email", "active"],
        handler: update_user,
    },
    Route {
        method: "DELETE",
        template: "/rest/usermanagement/1/user",
        statuses: &[204, 401, 404],
        query: &["username"],
        body: &[],
        handler: delete_user,
    },
    Route {
        method: "GET",
        template: "/rest/usermanagement/1/group",
        statuses: &[200, 401, 404],
        query: &["groupname"],
        body: &[],
        handler: get_group,
    },
    Route {
        method: "POST",
        template: "/rest/usermanagement/1/group",
        statuses: &[201, 400, 401],
        query: &[],
        body: &["name", "type", "description", "active"],
        handler: create_group,
    },
    Route {
        method: "DELETE",
        template: "/rest/usermanagement/1/group",
        statuses: &[204, 401, 404],
        query: &["groupname"],
        body: &[],
        handler: delete_group,
    },
    Route {
        method: "POST",
        template: "/rest/usermanagement/1/user/group/direct",
        statuses: &[201, 400, 401, 403, 404, 409],
        query: &["username"],
        body: &["name"],
        handler: add_member,
    },
    Route {
        method: "GET",
        template: "/rest/usermanagement/1/user/group/direct",
        statuses: &[200, 401, 404],
        query: &["username", "start-index", "max-results"],
        body: &[],
        handler: user_groups,
    },
    Route {
        method: "DELETE",
        template: "/rest/usermanagement/1/session",
        statuses: &[204, 401, 404],
        query: &["username", "exclude"],
        body: &[],
        handler: end_sessions,
    },
    Route {
        method: "DELETE",
        template: "/rest/usermanagement/1/user/group/direct",
        statuses: &[204, 401, 403, 404],
        query: &["username", "groupname"],
        body: &[],
        handler: remove_member,
    },
];

fn error(status: u16, reason: &str, message: &str) -> Resp {
    Resp::json(status, json!({"reason": reason, "message": message}))
}

fn bad(message: &str) -> Resp {
    error(400, "ILLEGAL_ARGUMENT", message)
}

fn no_user(name: &str) -> Resp {
    error(404, "USER_NOT_FOUND", &format!("User <{name}> does not exist"))
}

/// `lastAuthenticated` and `lastActive` as epoch-millis strings (atlassian-dc.md §4), or none.
fn attributes(u: &UserState) -> Value {
    let list: Vec<Value> = match u.last_active {
        Some(t) => {
            let ms = t.timestamp_millis().to_string();
            vec![json!({"name": "lastAuthenticated", "values": [ms]}), json!({"name": "lastActive", "values": [ms]})]
        }
        None => Vec::new(),
    };
    json!({"attributes": list, "link": {"href": format!("{API}/user/attribute?username={}", u.name), "rel": "self"}})
}

fn entity_expanded(u: &UserState, with_attributes: bool) -> Value {
    let mut v = entity(u);
    if with_attributes {
        v["attributes"] = attributes(u);
    }
    v
}

fn entity(u: &UserState) -> Value {
    let (first, last) = u.display_name.rsplit_once(' ').unwrap_or((&u.display_name, &u.display_name));
    json!({
        "created-date": u.created.map(|t| t.timestamp_millis()),
        "link": {"href": format!("{API}/user?username={}", u.name), "rel": "self"},
        "name": u.name, "first-name": first, "last-name": last,
        "display-name": u.display_name, "email": u.email, "active": u.active,
        "key": u.key,
        "attributes": {"link": {"href": format!("{API}/user/attribute?username={}", u.name), "rel": "self"}},
        "password": {"link": {"href": format!("{API}/user/password?username={}", u.name), "rel": "edit"}},
    })
}

fn get_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    let wants_json = req.headers.get("accept").is_some_and(|a| a.contains("json"));
    if !wants_json {
        // Crowd's default representation is XML: a client that forgets Accept gets this.
        let u = &s.users[&id];
        return super::Resp {
            status: 200,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: format!("<?xml version=\"1.0\"?><user name=\"{}\"><active>{}</active></user>", u.name, u.active),
        };
    }
    let expand = req.q("expand").is_some_and(|e| e.contains("attributes"));
    Resp::json(200, entity_expanded(&s.users[&id], expand))
}

fn create_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let name = text("name");
    if name.is_empty() {
        return error(400, "INVALID_USER", "User name must not be empty");
    }
    if s.find(&name, false).is_some() {
        return error(400, "INVALID_USER", &format!("User <{name}> already exists"));
    }
    if body.pointer("/password/value").and_then(Value::as_str).is_none() {
        return error(400, "INVALID_CREDENTIAL", "Password must be specified");
    }
    let id = s.new_user(&name, &text("display-name"), &text("email"));
    let active = body.get("active").and_then(Value::as_bool).unwrap_or(true);
    s.user_mut(&id).active = active;
    Resp::json(201, entity(&s.users[&id]))
}

fn update_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = req.q("username").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    if let Some(refused) = directory::crowd_update_refusal(s, &id) {
        return refused;
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let u = s.user_mut(&id);
    // The quirk (Crowd KB): PUT replaces the user; omitted names and email become empty.
    u.display_name = text("display-name");
    u.email = text("email");
    u.active = body.get("active").and_then(Value::as_bool).unwrap_or(false);
    Resp::empty(204)
}

fn group_entity(name: &str) -> Value {
    json!({"name": name, "type": "GROUP", "active": true, "description": "",
        "link": {"href": format!("{API}/group?groupname={name}"), "rel": "self"}})
}

/// `GET /group?groupname=` → the group, or 404 GROUP_NOT_FOUND (Crowd REST resources, S27).
fn get_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let group = req.q("groupname").unwrap_or("");
    if !s.groups.contains(group) {
        return error(404, "GROUP_NOT_FOUND", &format!("Group <{group}> does not exist"));
    }
    Resp::json(200, group_entity(group))
}

/// `POST /group` `{name, type, …}` → 201. `ApplicationService.addGroup` throws
/// `InvalidGroupException` for an existing (case-insensitive) name → 400 INVALID_GROUP; a type
/// other than GROUP is refused the same way (S30, S31: unverified shapes, the stricter answer).
fn create_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = body.get("name").and_then(Value::as_str).unwrap_or("").trim().to_string();
    if name.is_empty() || body.get("type").and_then(Value::as_str) != Some("GROUP") {
        return error(400, "INVALID_GROUP", "A group needs a name and type GROUP");
    }
    if s.groups.iter().any(|g| g.eq_ignore_ascii_case(&name)) {
        return error(400, "INVALID_GROUP", &format!("Group <{name}> already exists"));
    }
    s.groups.insert(name.clone());
    Resp::json(201, group_entity(&name))
}

/// `DELETE /group?groupname=` → 204; 404 GROUP_NOT_FOUND.
fn delete_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let group = req.q("groupname").unwrap_or("").to_string();
    if !s.groups.remove(&group) {
        return error(404, "GROUP_NOT_FOUND", &format!("Group <{group}> does not exist"));
    }
    for u in s.users.values_mut() {
        u.groups.remove(&group);
    }
    Resp::empty(204)
}

fn delete_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    let u = s.user_mut(&id);
    u.deleted = true;
    u.active = false;
    u.groups.clear();
    Resp::empty(204)
}

/// `DELETE /session?username=` ends every SSO session of the user (CWD-2876, CWD-3057) → 204.
/// An unknown user is refused with 404 (undocumented; the stricter plausible answer).
fn end_sessions(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    s.user_mut(&id).sessions = 0;
    Resp::empty(204)
}

/// `GET /rest/admin/1.0/server-info` (Crowd REST reference "Server Info"; fields as of 4.1,
/// CWD-5598): served to anyone, see `public_route`.
fn server_info(s: &mut State, _: &Req, _: &Params) -> Resp {
    let versions: Vec<String> = s.version.split('.').map(str::to_string).collect();
    Resp::json(
        200,
        json!({"version": s.version, "deploymentTitle": "Crowd", "buildNumber": 1_935, "buildDate": "2024-06-01",
            "baseUrl": "http://crowd.example.com/crowd", "versions": versions, "deploymentType": "DataCenter",
            "serverTime": "2024-06-01T00:00:00.000+0000"}),
    )
}

fn add_member(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    let group = req.json().and_then(|b| b.get("name").and_then(Value::as_str).map(str::to_string)).unwrap_or_default();
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    if !s.groups.contains(&group) {
        return error(400, "GROUP_NOT_FOUND", &format!("Group <{group}> does not exist"));
    }
    if !s.users[&id].groups.contains(&group) {
        if let Some(refused) = directory::crowd_membership_refusal(s, &id, &group) {
            return refused;
        }
    }
    if !s.user_mut(&id).groups.insert(group.clone()) {
        return error(
            409,
            "MEMBERSHIP_ALREADY_EXISTS",
            &format!("User <{name}> is already a direct member of <{group}>"),
        );
    }
    Resp::empty(201)
}

fn remove_member(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    let group = req.q("groupname").unwrap_or("").to_string();
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    if !s.groups.contains(&group) {
        return error(404, "GROUP_NOT_FOUND", &format!("Group <{group}> does not exist"));
    }
    if s.users[&id].groups.contains(&group) {
        if let Some(refused) = directory::crowd_membership_refusal(s, &id, &group) {
            return refused;
        }
    }
    if !s.user_mut(&id).groups.remove(&group) {
        return error(404, "MEMBERSHIP_NOT_FOUND", &format!("<{name}> is not a direct member of <{group}>"));
    }
    Resp::empty(204)
}

/// `GET /search?entity-type=user`: `{"expand":"user","users":[…]}`, full entities with
/// `expand=user`, attributes too with `attributes`; names and links otherwise.
fn search(s: &mut State, req: &Req, _: &Params) -> Resp {
    if req.q("entity-type") != Some("user") {
        return bad("The emulator searches users only (entity-type=user)");
    }
    let start = offset_param(req, "start-index");
    let max = limit_param(req, "max-results", 1000, 10_000);
    let expand = req.q("expand").unwrap_or("").to_string();
    // Crowd Query Language restriction (REST "Search by CQL"): only the one form the bridge sends,
    // `email = "<address>"` (exact, case-insensitive); any other restriction is refused with 400,
    // stricter than Crowd, which accepts the whole language.
    let email = match req.q("restriction") {
        None => None,
        Some(r) => match cql_email(r) {
            Some(e) => Some(e),
            None => return bad(&format!("Unsupported restriction: {r}")),
        },
    };
    let listing = format!("crowd-search:{}", email.clone().unwrap_or_default());
    let (ids, _) = s.page(&listing, start, max, |u| {
        !u.deleted && email.as_ref().is_none_or(|e| u.email.to_lowercase() == e.to_lowercase())
    });
    let users: Vec<Value> = ids
        .iter()
        .map(|id| {
            let u = &s.users[id];
            if expand.contains("user") {
                entity_expanded(u, expand.contains("attributes"))
            } else {
                json!({"name": u.name, "link": {"href": format!("{API}/user?username={}", u.name), "rel": "self"}})
            }
        })
        .collect();
    Resp::json(200, json!({"expand": "user", "users": users}))
}

fn get_attributes(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    match s.find(name, false) {
        Some(id) => Resp::json(200, attributes(&s.users[&id])),
        None => no_user(name),
    }
}

fn group_members(s: &mut State, req: &Req, _: &Params) -> Resp {
    let group = req.q("groupname").unwrap_or("").to_string();
    if !s.groups.contains(&group) {
        return error(404, "GROUP_NOT_FOUND", &format!("Group <{group}> does not exist"));
    }
    let start = offset_param(req, "start-index");
    let max = limit_param(req, "max-results", 1000, 10_000);
    let (ids, _) = s.page(&format!("crowd-group:{group}"), start, max, |u| !u.deleted && u.groups.contains(&group));
    let users: Vec<Value> = ids
        .iter()
        .map(|id| {
            let n = &s.users[id].name;
            json!({"name": n, "link": {"href": format!("{API}/user?username={n}"), "rel": "self"}})
        })
        .collect();
    Resp::json(200, json!({"expand": "user", "users": users}))
}

/// `GET /user/group/direct?username=`: the user's direct groups, `{"expand":"group","groups":[{"name","link"}]}`,
/// offset-paged by `start-index`/`max-results` (Crowd REST usermanagement resources, S31); an
/// unknown user is 404 `USER_NOT_FOUND`, as for every `?username=` resource.
fn user_groups(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    let start = offset_param(req, "start-index");
    let max = limit_param(req, "max-results", 1000, 10_000);
    let groups: Vec<Value> = s.users[&id]
        .groups
        .iter()
        .skip(start)
        .take(max)
        .map(|g| json!({"name": g, "link": {"href": format!("{API}/group?groupname={g}"), "rel": "self"}}))
        .collect();
    Resp::json(200, json!({"expand": "group", "groups": groups}))
}

/// The address of a CQL `email = "…"` restriction (`\"` and `\\` unescaped).
fn cql_email(restriction: &str) -> Option<String> {
    let rest = restriction.trim().strip_prefix("email")?.trim_start().strip_prefix('=')?.trim();
    let inner = rest.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// `POST /user/rename?username=<old>` `{"new-name": <new>}` → 200 with the renamed user (Crowd
/// REST, Users "Rename user"); 400 when the new name is taken, 404 for an unknown user.
fn rename_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = req.q("username").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    let Some(new_name) = body.get("new-name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()) else {
        return error(400, "INVALID_USER", "new-name must be given");
    };
    if s.find(new_name, true).is_some_and(|other| other != id) {
        return error(400, "INVALID_USER", &format!("User <{new_name}> already exists"));
    }
    s.user_mut(&id).name = new_name.to_string();
    Resp::json(200, entity(&s.users[&id]))
}
