//! Emulated Confluence DC REST (paths as in the 10.0.3 spec, below the `/confluence` context);
//! [`super::Emulator::set_version`] emulates older releases, whose missing resources answer 404:
//! the admin user REST arrived in 8.4 (CONFSERVER-87290/87291/87292), `/rest/api/server-information`
//! in 9.1 (`ServerInformation` javadoc "Since 9.1.0").

use serde_json::{json, Value};

use super::directory;
use super::{body_or, limit_param, offset_param, Params, Req, Resp, Route, State, UserState, SERVICE_USER};

pub(super) static ROUTES: &[Route] = &[
    Route {
        method: "GET",
        template: "/rest/api/server-information",
        statuses: &[200, 401, 404],
        query: &[],
        body: &[],
        handler: server_information,
    },
    Route {
        method: "GET",
        template: "/rest/applinks/1.0/manifest",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: applinks_manifest,
    },
    Route {
        method: "GET",
        template: "/rest/api/user/current",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: current,
    },
    Route {
        method: "GET",
        template: "/rest/api/user",
        statuses: &[200, 401, 404],
        query: &["username", "expand"],
        body: &[],
        handler: get_user,
    },
    Route {
        method: "GET",
        template: "/rest/api/admin/users/list/active",
        statuses: &[200, 401, 403],
        query: &["start", "limit", "expand"],
        body: &[],
        handler: list_active,
    },
    Route {
        method: "GET",
        template: "/rest/api/user/list",
        statuses: &[200, 401],
        query: &["start", "limit", "expand"],
        body: &[],
        handler: list_all,
    },
    Route {
        method: "GET",
        template: "/rest/api/group/{groupName}/member",
        statuses: &[200, 401, 404],
        query: &["start", "limit"],
        body: &[],
        handler: group_members,
    },
    Route {
        method: "GET",
        template: "/rest/license/1.0/license/userCount",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: license_user_count,
    },
    Route {
        method: "GET",
        template: "/rest/license/1.0/license/maxUsers",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: license_max_users,
    },
    Route {
        method: "GET",
        template: "/rest/license/1.0/license/remainingSeats",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: license_remaining,
    },
    Route {
        method: "POST",
        template: "/rest/api/admin/user",
        statuses: &[201, 400, 401, 402, 404, 409],
        query: &[],
        body: &["userName", "fullName", "email", "password", "notifyViaEmail"],
        handler: create_user,
    },
    Route {
        method: "PUT",
        template: "/rest/api/admin/user/{username}",
        statuses: &[204, 400, 401],
        query: &[],
        body: &["fullName", "email"],
        handler: update_user,
    },
    Route {
        method: "POST",
        template: "/rest/api/admin/group",
        statuses: &[200, 400, 401, 409],
        query: &[],
        body: &["name"],
        handler: create_group,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/admin/group/{groupName}",
        statuses: &[204, 401, 404],
        query: &[],
        body: &[],
        handler: delete_group,
    },
    Route {
        method: "PUT",
        template: "/rest/api/admin/user/{username}/disable",
        statuses: &[204, 401, 404],
        query: &[],
        body: &[],
        handler: disable,
    },
    Route {
        method: "PUT",
        template: "/rest/api/admin/user/{username}/enable",
        statuses: &[204, 401, 404],
        query: &[],
        body: &[],
        handler: enable,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/admin/user/{username}",
        statuses: &[202, 401, 404],
        query: &[],
        body: &[],
        handler: delete_user,
    },
    Route {
        method: "GET",
        template: "/rest/api/longtask/{id}",
        statuses: &[200, 401, 404],
        query: &[],
        body: &[],
        handler: long_task,
    },
    Route {
        method: "PUT",
        template: "/rest/api/user/{username}/group/{groupName}",
        statuses: &[204, 401, 404, 500],
        query: &[],
        body: &[],
        handler: add_member,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/user/{username}/group/{groupName}",
        statuses: &[204, 401, 404, 500],
        query: &[],
        body: &[],
        handler: remove_member,
    },
    // Access groups and memberships (issue 9 item 3; handlers in directory.rs).
    Route {
        method: "GET",
        template: "/rest/api/permissions",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: directory::confluence_permissions,
    },
    Route {
        method: "GET",
        template: "/rest/api/user/memberof",
        statuses: &[200, 401, 404],
        query: &["username", "start", "limit"],
        body: &[],
        handler: directory::confluence_member_of,
    },
];

/// Confluence's `RestError`.
fn error(status: u16, reason: &str, message: &str) -> Resp {
    Resp::json(
        status,
        json!({
            "statusCode": status,
            "data": {"authorized": status != 403, "valid": false, "errors": [], "successful": false},
            "message": message,
            "reason": reason,
        }),
    )
}

fn bad(message: &str) -> Resp {
    error(400, "Bad Request", message)
}

fn no_user(name: &str) -> Resp {
    error(404, "Not Found", &format!("No user found with username: {name}"))
}

/// Jersey's answer for a resource this release does not have.
fn no_resource(req: &Req) -> Resp {
    error(404, "Not Found", &format!("null for uri: {}", req.path))
}

/// The admin user REST (create, disable, enable, delete) exists from 8.4 (CONFSERVER-87292).
fn before_admin_user_rest(s: &State, req: &Req) -> Option<Resp> {
    (!s.version_at_least(8, 4)).then(|| no_resource(req))
}

/// `GET /rest/api/server-information` (9.1+): `{baseUrl, version, buildNumber, …}`.
fn server_information(s: &mut State, req: &Req, _: &Params) -> Resp {
    if !s.version_at_least(9, 1) {
        return no_resource(req);
    }
    Resp::json(
        200,
        json!({"baseUrl": "http://wiki.example.com/confluence", "version": s.version, "buildNumber": 9_020_000,
            "marketplaceBuildNumber": 9_020_000, "buildDate": "2024-12-01"}),
    )
}

/// `GET /rest/applinks/1.0/manifest` (every release with application links): the applinks
/// `ManifestEntity` as JSON (`id`, `name`, `typeId`, `version`, `buildNumber`, …). The shape is
/// from the applinks source (SRC), not an Atlassian reference page.
fn applinks_manifest(s: &mut State, _: &Req, _: &Params) -> Resp {
    Resp::json(
        200,
        json!({"id": "00000000-0000-0000-0000-000000000001", "name": "Confluence", "typeId": "confluence",
            "version": s.version, "buildNumber": 9_020_000, "applinksVersion": "9.0.0",
            "url": "http://wiki.example.com/confluence", "publicSignup": false}),
    )
}

fn current(_: &mut State, _: &Req, _: &Params) -> Resp {
    Resp::json(200, json!({"type": "known", "username": SERVICE_USER, "userKey": "svc", "displayName": "SCIM bridge"}))
}

fn get_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    match s.find(name, false) {
        Some(id) => {
            let u = &s.users[&id];
            let mut v = json!({"type": "known", "username": u.name, "userKey": u.key, "displayName": u.display_name});
            if req.q("expand").is_some_and(|e| e.contains("status")) {
                v["status"] = json!(status(u));
            }
            // `details.personal` carries the email (Atlassian community answer "How to get user
            // information from Confluence REST API": `expand=details.personal`); without the
            // expansion a Person has no email at all, as the spec's empty schema suggests.
            if req.q("expand").is_some_and(|e| e.split(',').any(|x| x.trim() == "details.personal")) {
                v["details"] = json!({"personal": {"email": u.email}});
            }
            Resp::json(200, v)
        }
        None => no_user(name),
    }
}

fn create_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    if let Some(r) = before_admin_user_rest(s, req) {
        return r;
    }
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (name, full, email) = (text("userName"), text("fullName"), text("email"));
    if name.is_empty() || email.is_empty() || (body.get("password").is_none() && body.get("notifyViaEmail").is_none()) {
        return bad("userName, email and either password or notifyViaEmail are required");
    }
    if name != name.to_lowercase() || name.chars().any(char::is_whitespace) || name == "anonymous" {
        return bad("Username must be lower-case, without whitespace, and not 'anonymous'");
    }
    if s.find(&name, true).is_some() {
        return error(409, "Conflict", &format!("A user with username {name} already exists"));
    }
    if s.seat_limit.is_some_and(|max| s.licensed_users() >= max) {
        return error(402, "Payment Required", "No more licenses available");
    }
    let id = s.new_user(&name, &full, &email);
    Resp::json(201, json!({"userKey": s.users[&id].key}))
}

/// `PUT /admin/user/{username}` `{fullName, email}` → 204. The 10.0.3 spec's requirements: full
/// name not blank, without `<`/`>`, not "anonymous"; email not blank and valid. It declares no
/// 404, so an unknown user is the catch-all 400 ("any error occurs while updating the user").
fn update_user(s: &mut State, req: &Req, p: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = &p["username"];
    let Some(id) = s.find(name, false) else {
        return bad(&format!("No user found with username: {name}"));
    };
    let full = body.get("fullName").and_then(Value::as_str).map(str::trim);
    let email = body.get("email").and_then(Value::as_str).map(str::trim);
    if let Some(f) = full {
        if f.is_empty() || f.contains(['<', '>']) || f.eq_ignore_ascii_case("anonymous") {
            return bad("The full name must not be blank, contain < or >, or be anonymous");
        }
    }
    if let Some(e) = email {
        let valid = e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
        if !valid {
            return bad("The email must be a valid email address");
        }
    }
    let u = s.user_mut(&id);
    if let Some(f) = full {
        u.display_name = f.to_string();
    }
    if let Some(e) = email {
        u.email = e.to_string();
    }
    Resp::empty(204)
}

/// `POST /admin/group` `{"name"}` → **200** with the group; 400 without a name; 409 when a group of
/// that name exists (names compare case-insensitively).
fn create_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = body.get("name").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty()) else {
        return bad("A group name is required");
    };
    if s.groups.iter().any(|g| g.eq_ignore_ascii_case(name)) {
        return error(409, "Conflict", &format!("Group with name {name} already exists"));
    }
    s.groups.insert(name.to_string());
    Resp::json(200, json!({"type": "group", "name": name}))
}

/// `DELETE /admin/group/{groupName}` → 204; 404 when there is no such group.
fn delete_group(s: &mut State, _: &Req, p: &Params) -> Resp {
    let group = &p["groupName"];
    if !s.groups.remove(group) {
        return error(404, "Not Found", &format!("No group found with name: {group}"));
    }
    for u in s.users.values_mut() {
        u.groups.remove(group);
    }
    Resp::empty(204)
}

fn set_active(s: &mut State, p: &Params, active: bool) -> Resp {
    let name = &p["username"];
    match s.find(name, false) {
        // Idempotent: 204 whatever the previous state.
        Some(id) => {
            if directory::confluence_status_change_is_ignored(s, &id) {
                return Resp::empty(204);
            }
            s.user_mut(&id).active = active;
            Resp::empty(204)
        }
        None => no_user(name),
    }
}

fn disable(s: &mut State, req: &Req, p: &Params) -> Resp {
    if let Some(r) = before_admin_user_rest(s, req) {
        return r;
    }
    set_active(s, p, false)
}

fn enable(s: &mut State, req: &Req, p: &Params) -> Resp {
    if let Some(r) = before_admin_user_rest(s, req) {
        return r;
    }
    set_active(s, p, true)
}

fn delete_user(s: &mut State, req: &Req, p: &Params) -> Resp {
    if let Some(r) = before_admin_user_rest(s, req) {
        return r;
    }
    let name = &p["username"];
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    // The user disappears when the long task completes (polled), like the real thing.
    let task = s.new_task(id);
    Resp::json(
        202,
        json!({
            "id": task,
            "links": {
                "status": format!("/confluence/rest/api/longtask/{task}"),
                "result": format!("/confluence/rest/api/longtask/{task}/result"),
            },
        }),
    )
}

fn long_task(s: &mut State, _: &Req, p: &Params) -> Resp {
    let id = &p["id"];
    let Some(task) = s.tasks.get_mut(id) else {
        return error(404, "Not Found", &format!("No long task found with id {id}"));
    };
    if task.polls_left > 0 {
        task.polls_left -= 1;
        return Resp::json(
            200,
            json!({"id": id, "name": {"key": "delete.user"}, "elapsedTime": 10,
            "percentageComplete": 50, "successful": true, "messages": []}),
        );
    }
    if !task.done {
        task.done = true;
        let user = task.user.clone();
        let u = s.user_mut(&user);
        u.deleted = true;
        u.active = false;
        u.groups.clear();
    }
    Resp::json(
        200,
        json!({"id": id, "name": {"key": "delete.user"}, "elapsedTime": 20,
        "percentageComplete": 100, "successful": true, "messages": []}),
    )
}

fn member_target(s: &State, p: &Params) -> Result<(String, String), Resp> {
    let (name, group) = (&p["username"], &p["groupName"]);
    let Some(id) = s.find(name, false) else {
        return Err(no_user(name));
    };
    if !s.groups.contains(group) {
        return Err(error(404, "Not Found", &format!("No group found with name: {group}")));
    }
    Ok((id, group.clone()))
}

fn add_member(s: &mut State, _: &Req, p: &Params) -> Resp {
    match member_target(s, p) {
        Ok((id, group)) => {
            if !s.users[&id].groups.contains(&group) {
                if let Some(refused) = directory::confluence_membership_refusal(s, &id, &group) {
                    return refused;
                }
            }
            s.user_mut(&id).groups.insert(group);
            Resp::empty(204)
        }
        Err(r) => r,
    }
}

fn remove_member(s: &mut State, _: &Req, p: &Params) -> Resp {
    match member_target(s, p) {
        Ok((id, group)) => {
            if s.users[&id].groups.contains(&group) {
                if let Some(refused) = directory::confluence_membership_refusal(s, &id, &group) {
                    return refused;
                }
            }
            s.user_mut(&id).groups.remove(&group);
            Resp::empty(204)
        }
        Err(r) => r,
    }
}

/// How the emulator answers `expand=status` (the real shape is unverified: atlassian-dc.md §10).
fn status(u: &UserState) -> &'static str {
    if u.active {
        "ACTIVE"
    } else {
        "DEACTIVATED"
    }
}

fn person(u: &UserState, expand: &str) -> Value {
    let mut v = json!({"type": "known", "username": u.name, "userKey": u.key, "displayName": u.display_name,
        "email": u.email, "_links": {"self": format!("/confluence/rest/api/user?key={}", u.key)}});
    if expand.contains("lastLogin") {
        if let Some(t) = u.last_active {
            v["lastLogin"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
    }
    if expand.contains("status") {
        v["status"] = json!(status(u));
    }
    v
}

/// A `{results, start, limit, size, _links}` page of the users `keep` selects.
fn users_page(s: &mut State, req: &Req, listing: &str, path: &str, keep: impl Fn(&UserState) -> bool) -> Resp {
    let start = offset_param(req, "start");
    let limit = limit_param(req, "limit", 100, 1000);
    let expand = req.q("expand").unwrap_or("").to_string();
    let (ids, more) = s.page(listing, start, limit, keep);
    let results: Vec<Value> = ids.iter().map(|id| person(&s.users[id], &expand)).collect();
    let mut links = json!({"base": "http://localhost/confluence", "context": "/confluence",
        "self": format!("/confluence{path}?start={start}&limit={limit}")});
    if more {
        links["next"] = json!(format!("/confluence{path}?start={}&limit={limit}", start + ids.len()));
    }
    Resp::json(200, json!({"results": results, "start": start, "limit": limit, "size": ids.len(), "_links": links}))
}

/// Licensed users only: enabled and not deleted (the emulator licenses every enabled user).
fn list_active(s: &mut State, req: &Req, _: &Params) -> Resp {
    // Admin only: a plain user's credential is refused (stricter plausible answer: 403 RestError).
    if !s.caller_admin {
        return error(403, "Forbidden", "You do not have permission to list users");
    }
    users_page(s, req, "conf-active", "/rest/api/admin/users/list/active", |u| u.active && !u.deleted)
}

fn list_all(s: &mut State, req: &Req, _: &Params) -> Resp {
    users_page(s, req, "conf-all", "/rest/api/user/list", |u| !u.deleted)
}

fn group_members(s: &mut State, req: &Req, p: &Params) -> Resp {
    let group = p["groupName"].clone();
    if !s.groups.contains(&group) {
        return error(404, "Not Found", &format!("No group found with name: {group}"));
    }
    let path = format!("/rest/api/group/{group}/member");
    users_page(s, req, &format!("conf-group:{group}"), &path, |u| !u.deleted && u.groups.contains(&group))
}

fn license_user_count(s: &mut State, _: &Req, _: &Params) -> Resp {
    Resp::json(200, json!({"count": s.licensed_users()}))
}

/// `-1` for an unlimited licence (how Confluence says it is unverified).
fn license_max_users(s: &mut State, _: &Req, _: &Params) -> Resp {
    Resp::json(200, json!({"count": s.seat_limit.map_or(-1, |n| n as i64)}))
}

fn license_remaining(s: &mut State, _: &Req, _: &Params) -> Resp {
    let used = s.licensed_users() as i64;
    Resp::json(200, json!({"count": s.seat_limit.map_or(-1, |n| n as i64 - used)}))
}
