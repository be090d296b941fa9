//! Emulated Bitbucket DC admin REST (`/rest/api/1.0`, below the `/bitbucket` context).
//! There is no deactivation: a user without licence-granting groups cannot log in.

use serde_json::{json, Value};

use super::{limit_param, offset_param, Params, Req, Resp, Route, State, UserState};

pub(super) static ROUTES: &[Route] = &[
    Route {
        method: "GET",
        template: "/rest/api/1.0/application-properties",
        statuses: &[200],
        query: &[],
        body: &[],
        handler: application_properties,
    },
    Route {
        method: "GET",
        template: "/rest/api/1.0/admin/permissions/users",
        statuses: &[200, 401],
        query: &["filter", "start", "limit"],
        body: &[],
        handler: users_with_permission,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/1.0/admin/permissions/users",
        statuses: &[204, 401, 404, 409],
        query: &["name"],
        body: &[],
        handler: revoke_user_permissions,
    },
    Route {
        method: "GET",
        template: "/rest/api/1.0/admin/users",
        statuses: &[200, 401],
        query: &["filter", "start", "limit"],
        body: &[],
        handler: list_users,
    },
    Route {
        method: "GET",
        template: "/rest/api/1.0/admin/groups/more-members",
        statuses: &[200, 401, 404],
        query: &["context", "start", "limit"],
        body: &[],
        handler: group_members,
    },
    Route {
        method: "GET",
        template: "/rest/api/1.0/admin/license",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: license,
    },
    Route {
        method: "POST",
        template: "/rest/api/1.0/admin/users",
        statuses: &[204, 400, 401, 403, 409],
        query: &["name", "displayName", "emailAddress", "password", "addToDefaultGroup", "notify"],
        body: &[],
        handler: create_user,
    },
    Route {
        method: "PUT",
        template: "/rest/api/1.0/admin/users",
        statuses: &[200, 400, 401, 404],
        query: &[],
        body: &["name", "displayName", "email"],
        handler: update_user,
    },
    Route {
        method: "POST",
        template: "/rest/api/1.0/admin/groups",
        statuses: &[200, 400, 401, 409],
        query: &["name"],
        body: &[],
        handler: create_group,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/1.0/admin/groups",
        statuses: &[200, 401, 404],
        query: &["name"],
        body: &[],
        handler: delete_group,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/1.0/admin/users",
        statuses: &[200, 401, 404],
        query: &["name"],
        body: &[],
        handler: delete_user,
    },
    Route {
        method: "GET",
        template: "/rest/api/1.0/admin/users/more-members",
        statuses: &[200, 401, 404],
        query: &["context", "filter"],
        body: &[],
        handler: more_members,
    },
    Route {
        method: "POST",
        template: "/rest/api/1.0/admin/users/add-groups",
        statuses: &[200, 401, 404],
        query: &[],
        body: &["user", "groups"],
        handler: add_groups,
    },
    Route {
        method: "POST",
        template: "/rest/api/1.0/admin/users/remove-group",
        statuses: &[200, 401, 403, 404],
        query: &[],
        body: &["context", "itemName"],
        handler: remove_group,
    },
    Route {
        method: "GET",
        template: "/rest/api/1.0/admin/users/erasure",
        statuses: &[204, 401, 404, 409],
        query: &["name"],
        body: &[],
        handler: erasure_check,
    },
    Route {
        method: "POST",
        template: "/rest/api/1.0/admin/users/erasure",
        statuses: &[200, 401, 404, 409],
        query: &["name"],
        body: &[],
        handler: erase,
    },
];

fn error(status: u16, message: &str) -> Resp {
    Resp::json(status, json!({"errors": [{"context": null, "message": message, "exceptionName": null}]}))
}

fn no_user(name: &str) -> Resp {
    error(404, &format!("No user exists with name {name}"))
}

fn detailed(u: &UserState) -> Value {
    let mut v = json!({"name": u.name, "emailAddress": u.email, "displayName": u.display_name, "active": u.active,
        "slug": u.name.to_lowercase(), "type": "NORMAL", "directoryName": u.directory,
        "deletable": true, "mutableDetails": super::directory::bitbucket_mutable(&u.directory),
        "mutableGroups": super::directory::bitbucket_mutable(&u.directory)});
    if let Some(t) = u.last_active {
        v["lastAuthenticationTimestamp"] = json!(t.timestamp_millis());
    }
    v
}

/// A Bitbucket page `{size, limit, isLastPage, start, nextPageStart?, values}`.
fn paged(
    s: &mut State,
    req: &Req,
    listing: &str,
    keep: impl Fn(&UserState) -> bool,
    show: fn(&UserState) -> Value,
) -> Resp {
    let start = offset_param(req, "start");
    let limit = limit_param(req, "limit", 25, 1000);
    let (ids, more) = s.page(listing, start, limit, keep);
    let values: Vec<Value> = ids.iter().map(|id| show(&s.users[id])).collect();
    let mut page = json!({"size": values.len(), "limit": limit, "isLastPage": !more, "start": start, "values": values});
    if more {
        page["nextPageStart"] = json!(start + ids.len());
    }
    Resp::json(200, page)
}

fn list_users(s: &mut State, req: &Req, _: &Params) -> Resp {
    let filter = req.q("filter").unwrap_or("").to_lowercase();
    let keep = |u: &UserState| {
        !u.deleted
            && (u.name.to_lowercase().contains(&filter)
                || u.display_name.to_lowercase().contains(&filter)
                || u.email.to_lowercase().contains(&filter))
    };
    paged(s, req, &format!("bb-users:{filter}"), keep, detailed)
}

fn group_members(s: &mut State, req: &Req, _: &Params) -> Resp {
    let group = req.q("context").unwrap_or("").to_string();
    if !s.groups.contains(&group) {
        return error(404, &format!("The group {group} does not exist"));
    }
    let show = |u: &UserState| json!({"name": u.name, "displayName": u.display_name, "emailAddress": u.email, "active": u.active, "slug": u.name.to_lowercase(), "type": "NORMAL"});
    paged(s, req, &format!("bb-group:{group}"), |u| !u.deleted && u.groups.contains(&group), show)
}

/// `GET /application-properties` (no authentication): version, build, display name.
fn application_properties(s: &mut State, _: &Req, _: &Params) -> Resp {
    Resp::json(
        200,
        json!({"version": s.version, "buildNumber": "8019000", "buildDate": "1700000000000", "displayName": "Bitbucket"}),
    )
}

/// ADMIN or higher is needed for `/admin/license` and `/admin/permissions/*`; Bitbucket answers
/// 401 "The currently authenticated user is not an administrator" (8.14 OpenAPI).
fn not_admin() -> Resp {
    error(401, "You are not permitted to access this resource")
}

/// `GET /admin/permissions/users?filter=`: a page of users holding a global permission directly
/// (`{permission, user}`); `filter` matches user names containing it.
fn users_with_permission(s: &mut State, req: &Req, _: &Params) -> Resp {
    if !s.caller_admin {
        return not_admin();
    }
    let filter = req.q("filter").unwrap_or("").to_lowercase();
    let values: Vec<Value> = s
        .user_permissions
        .iter()
        .filter_map(|(id, perm)| s.users.get(id).filter(|u| !u.deleted).map(|u| (u, perm)))
        .filter(|(u, _)| u.name.to_lowercase().contains(&filter))
        .map(|(u, perm)| {
            json!({"permission": perm, "user": {"name": u.name, "displayName": u.display_name,
                "emailAddress": u.email, "active": u.active, "slug": u.name.to_lowercase(), "type": "NORMAL"}})
        })
        .collect();
    Resp::json(200, json!({"size": values.len(), "limit": 25, "isLastPage": true, "start": 0, "values": values}))
}

/// `DELETE /admin/permissions/users?name=`: "Revoke all global permissions for a user" → 204.
fn revoke_user_permissions(s: &mut State, req: &Req, _: &Params) -> Resp {
    if !s.caller_admin {
        return not_admin();
    }
    let name = req.q("name").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    s.user_permissions.remove(&id);
    Resp::empty(204)
}

fn license(s: &mut State, _: &Req, _: &Params) -> Resp {
    if !s.caller_admin {
        return not_admin();
    }
    Resp::json(
        200,
        json!({"maximumNumberOfUsers": s.seat_limit.map_or(-1, |n| n as i64), "unlimitedNumberOfUsers": s.seat_limit.is_none(),
            "status": {"currentNumberOfUsers": s.licensed_users()}, "expiryDate": 4102444800000_i64}),
    )
}

fn create_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let (Some(name), Some(display), Some(email)) = (req.q("name"), req.q("displayName"), req.q("emailAddress")) else {
        return error(400, "name, displayName and emailAddress are required");
    };
    if req.q("password").is_none() && req.q("notify") != Some("true") {
        return error(400, "A password is required unless the user is notified");
    }
    if s.find(name, false).is_some() {
        return error(409, &format!("A user with the name {name} already exists"));
    }
    let default_group = req.q("addToDefaultGroup") == Some("true");
    if default_group && s.seat_limit.is_some_and(|max| s.licensed_users() >= max) {
        return error(403, "Adding the user to the default group would exceed the server's license limit");
    }
    let (name, display, email) = (name.to_string(), display.to_string(), email.to_string());
    let id = s.new_user(&name, &display, &email);
    if req.q("addToDefaultGroup") == Some("true") {
        s.groups.insert("stash-users".into());
        s.user_mut(&id).groups.insert("stash-users".into());
    }
    Resp::empty(204)
}

/// `PUT /admin/users` `{name, displayName, email}` → 200 with the user; 404 unknown user; 400 for
/// a body without a name (8.14 OpenAPI `UserUpdate`).
fn update_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let Some(body) = req.json() else {
        return error(400, "The request body is not valid JSON");
    };
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return error(400, "name is required");
    };
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    let u = s.user_mut(&id);
    if let Some(d) = body.get("displayName").and_then(Value::as_str) {
        u.display_name = d.to_string();
    }
    if let Some(e) = body.get("email").and_then(Value::as_str) {
        u.email = e.to_string();
    }
    let v = detailed(u);
    Resp::json(200, v)
}

/// `POST /admin/groups?name=` → 200 with the group; 409 when it exists (case-insensitive).
fn create_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let Some(name) = req.q("name").map(str::trim).filter(|n| !n.is_empty()).map(str::to_string) else {
        return error(400, "name is required");
    };
    if s.groups.iter().any(|g| g.eq_ignore_ascii_case(&name)) {
        return error(409, &format!("A group named {name} already exists"));
    }
    s.groups.insert(name.clone());
    Resp::json(200, json!({"name": name, "deletable": true}))
}

/// `DELETE /admin/groups?name=` → 200 with the deleted group; 404 when there is no such group.
fn delete_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("name").unwrap_or("").to_string();
    if !s.groups.remove(&name) {
        return error(404, &format!("The group {name} does not exist"));
    }
    for u in s.users.values_mut() {
        u.groups.remove(&name);
    }
    Resp::json(200, json!({"name": name, "deletable": true}))
}

fn delete_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("name").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    // "also removes any permissions" (8.14 OpenAPI, DELETE /admin/users).
    s.user_permissions.remove(&id);
    let u = s.user_mut(&id);
    u.deleted = true;
    u.active = false;
    u.groups.clear();
    let v = detailed(u);
    Resp::json(200, v)
}

fn more_members(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("context").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    let filter = req.q("filter").unwrap_or("").to_lowercase();
    let values: Vec<Value> = s.users[&id]
        .groups
        .iter()
        .filter(|g| g.to_lowercase().contains(&filter))
        .map(|g| json!({"name": g, "deletable": true}))
        .collect();
    Resp::json(200, json!({"size": values.len(), "limit": 500, "isLastPage": true, "start": 0, "values": values}))
}

fn add_groups(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = req.json().unwrap_or(Value::Null);
    let name = body.get("user").and_then(Value::as_str).unwrap_or("");
    let groups: Vec<String> = body
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    if let Some(missing) = groups.iter().find(|g| !s.groups.contains(*g)) {
        return error(404, &format!("The group {missing} does not exist"));
    }
    s.user_mut(&id).groups.extend(groups);
    Resp::empty(200)
}

fn remove_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = req.json().unwrap_or(Value::Null);
    let name = body.get("context").and_then(Value::as_str).unwrap_or("");
    let group = body.get("itemName").and_then(Value::as_str).unwrap_or("").to_string();
    let Some(id) = s.find(name, false) else {
        return no_user(name);
    };
    if !s.groups.contains(&group) {
        return error(404, &format!("The group {group} does not exist"));
    }
    if let Some(refused) = super::directory::bitbucket_membership_refusal(s, &id, &group) {
        return refused;
    }
    s.user_mut(&id).groups.remove(&group);
    Resp::empty(200)
}

/// `Ok(id)` of a deleted, not yet erased user; 409 while the user still exists; 404 otherwise.
fn erasable(s: &State, name: &str) -> Result<String, Resp> {
    if s.find(name, false).is_some() {
        return Err(error(409, &format!("The user {name} must be deleted before it can be erased")));
    }
    s.users
        .iter()
        .find(|(_, u)| u.deleted && !u.anonymized && u.name.eq_ignore_ascii_case(name))
        .map(|(k, _)| k.clone())
        .ok_or_else(|| no_user(name))
}

fn erasure_check(s: &mut State, req: &Req, _: &Params) -> Resp {
    match erasable(s, req.q("name").unwrap_or("")) {
        Ok(_) => Resp::empty(204),
        Err(r) => r,
    }
}

fn erase(s: &mut State, req: &Req, _: &Params) -> Resp {
    match erasable(s, req.q("name").unwrap_or("")) {
        Ok(id) => {
            let u = s.user_mut(&id);
            u.name = format!("user-{}", &u.key[u.key.len() - 8..]);
            u.display_name = u.name.clone();
            u.email = String::new();
            u.anonymized = true;
            Resp::json(200, json!({"name": u.name}))
        }
        Err(r) => r,
    }
}
