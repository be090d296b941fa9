//! Emulated Jira DC 10.3 REST v2 (served below `{base}/rest`, spec paths `/api/2/…`).

use serde_json::{json, Value};

use super::{body_or, Params, Req, Resp, Route, State, UserState, SERVICE_USER};

pub(super) static ROUTES: &[Route] = &[
    Route {
        method: "GET",
        template: "/rest/api/2/myself",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: myself,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/user",
        statuses: &[200, 401, 404],
        query: &["username", "key", "includeDeleted", "expand"],
        body: &[],
        handler: get_user,
    },
    Route {
        method: "POST",
        template: "/rest/api/2/user",
        statuses: &[201, 400, 401],
        query: &[],
        body: &["name", "displayName", "emailAddress"],
        handler: create_user,
    },
    Route {
        method: "PUT",
        template: "/rest/api/2/user",
        statuses: &[200, 400, 401, 404],
        query: &["username", "key"],
        body: &["active", "displayName", "emailAddress"],
        handler: update_user,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/2/user",
        statuses: &[204, 400, 401, 404],
        query: &["username", "key"],
        body: &[],
        handler: delete_user,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/2/user/session/{username}",
        statuses: &[200, 401, 404],
        query: &[],
        body: &[],
        handler: kill_sessions,
    },
    Route {
        method: "POST",
        template: "/rest/api/2/group",
        statuses: &[201, 400, 401],
        query: &[],
        body: &["name"],
        handler: create_group,
    },
    Route {
        method: "POST",
        template: "/rest/api/2/group/user",
        statuses: &[201, 400, 401, 404],
        query: &["groupname"],
        body: &["name"],
        handler: add_member,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/2/group/user",
        statuses: &[200, 400, 401, 404],
        query: &["groupname", "username"],
        body: &[],
        handler: remove_member,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/user/anonymization",
        statuses: &[200, 400, 401],
        query: &["userKey", "expand"],
        body: &[],
        handler: validate_anonymization,
    },
    Route {
        method: "POST",
        template: "/rest/api/2/user/anonymization",
        statuses: &[202, 400, 401, 409],
        query: &[],
        body: &["userKey", "newOwnerKey"],
        handler: schedule_anonymization,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/user/anonymization/progress",
        statuses: &[200, 401, 404],
        query: &["taskId"],
        body: &[],
        handler: anonymization_progress,
    },
];

fn error(status: u16, message: &str) -> Resp {
    Resp::json(status, json!({"errorMessages": [message], "errors": {}}))
}

fn bad(message: &str) -> Resp {
    error(400, message)
}

fn bean(u: &UserState, expand_groups: bool) -> Value {
    let mut v = json!({
        "self": format!("/rest/api/2/user?username={}", u.name),
        "key": u.key,
        "name": u.name,
        "emailAddress": u.email,
        "displayName": u.display_name,
        "active": u.active,
        "deleted": u.deleted,
        "timeZone": "UTC",
        "locale": "en_US",
        "expand": "groups,applicationRoles",
    });
    if expand_groups {
        let items: Vec<Value> = u.groups.iter().map(|g| json!({"name": g})).collect();
        v["groups"] = json!({"size": items.len(), "items": items});
    }
    v
}

/// The `users` id named by `?username=` or `?key=`.
fn target(s: &State, req: &Req, include_deleted: bool) -> Option<String> {
    if let Some(name) = req.q("username") {
        s.find(name, include_deleted)
    } else {
        req.q("key").and_then(|k| s.find_by_key(k)).filter(|id| include_deleted || !s.users[id].deleted)
    }
}

fn not_found(req: &Req) -> Resp {
    let who = req.q("username").or(req.q("key")).unwrap_or("");
    error(404, &format!("The user named '{who}' does not exist"))
}

fn myself(s: &mut State, _: &Req, _: &Params) -> Resp {
    let id = s.find(SERVICE_USER, false).expect("service user is seeded");
    Resp::json(200, bean(&s.users[&id], false))
}

fn get_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let include_deleted = req.q("includeDeleted") == Some("true");
    let expand = req.q("expand").is_some_and(|e| e.contains("groups"));
    match target(s, req, include_deleted) {
        Some(id) => Resp::json(200, bean(&s.users[&id], expand)),
        None => not_found(req),
    }
}

fn create_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = body.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
        return Resp::json(400, json!({"errorMessages": [], "errors": {"username": "You must specify a username."}}));
    };
    if s.find(name, true).is_some() {
        return Resp::json(
            400,
            json!({"errorMessages": [], "errors": {"username": "A user with that username already exists."}}),
        );
    }
    let display = body.get("displayName").and_then(Value::as_str).unwrap_or(name);
    let email = body.get("emailAddress").and_then(Value::as_str).unwrap_or("");
    let id = s.new_user(name, display, email);
    Resp::json(201, bean(&s.users[&id], false))
}

fn update_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(id) = target(s, req, false) else {
        return not_found(req);
    };
    let u = s.user_mut(&id);
    // "Fields skipped in request will not be changed."
    if let Some(active) = body.get("active").and_then(Value::as_bool) {
        u.active = active;
    }
    if let Some(d) = body.get("displayName").and_then(Value::as_str) {
        u.display_name = d.into();
    }
    if let Some(e) = body.get("emailAddress").and_then(Value::as_str) {
        u.email = e.into();
    }
    let v = bean(u, false);
    Resp::json(200, v)
}

fn delete_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let Some(id) = target(s, req, false) else {
        return not_found(req);
    };
    if let Some(msg) = s.delete_blockers.get(&id) {
        return bad(msg);
    }
    let u = s.user_mut(&id);
    u.deleted = true;
    u.active = false;
    u.groups.clear();
    u.sessions = 0;
    Resp::empty(204)
}

fn kill_sessions(s: &mut State, _: &Req, p: &Params) -> Resp {
    let name = &p["username"];
    match s.find(name, false) {
        Some(id) => {
            s.user_mut(&id).sessions = 0;
            Resp::empty(200)
        }
        None => error(404, &format!("The user named '{name}' does not exist")),
    }
}

fn create_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = match body_or(req, bad) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match body.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
        None => bad("You must specify a valid group name."),
        Some(g) if s.groups.contains(g) => bad(&format!("A group or user with this name already exists: {g}")),
        Some(g) => {
            s.groups.insert(g.to_string());
            Resp::json(201, json!({"name": g, "self": format!("/rest/api/2/group?groupname={g}")}))
        }
    }
}

/// Member target: (group, users id) or the 400/404 Jira gives.
fn membership(s: &State, req: &Req, username: Option<&str>) -> Result<(String, String), Resp> {
    let Some(group) = req.q("groupname").filter(|g| !g.is_empty()) else {
        return Err(bad("Group name is empty."));
    };
    if !s.groups.contains(group) {
        return Err(error(404, &format!("Specified group '{group}' does not exist.")));
    }
    let Some(name) = username else {
        return Err(bad("User name is empty."));
    };
    match s.find(name, false) {
        Some(id) => Ok((group.to_string(), id)),
        None => Err(error(404, &format!("The user named '{name}' does not exist"))),
    }
}

fn add_member(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = req.json().unwrap_or(Value::Null);
    let name = body.get("name").and_then(Value::as_str);
    let (group, id) = match membership(s, req, name) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let u = s.user_mut(&id);
    if !u.groups.insert(group.clone()) {
        // The quirk: not idempotent (atlassian-dc.md §2.3).
        return bad(&format!("Cannot add user. '{}' is already a member of '{group}'", u.name));
    }
    Resp::json(201, json!({"name": group}))
}

fn remove_member(s: &mut State, req: &Req, _: &Params) -> Resp {
    let (group, id) = match membership(s, req, req.q("username")) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let u = s.user_mut(&id);
    if !u.groups.remove(&group) {
        return bad(&format!("Cannot remove user. '{}' is not a member of '{group}'", u.name));
    }
    Resp::empty(200)
}

fn validate_anonymization(s: &mut State, req: &Req, _: &Params) -> Resp {
    let Some(key) = req.q("userKey") else {
        return bad("Parameter 'userKey' is mandatory.");
    };
    let Some(id) = s.find_by_key(key) else {
        return Resp::json(
            400,
            json!({"errors": {"GENERAL": {"errorMessages": [format!("User with key '{key}' does not exist.")], "errors": {}}}, "success": false}),
        );
    };
    let u = &s.users[&id];
    Resp::json(
        200,
        json!({
            "errors": {}, "warnings": {}, "expand": "affectedEntities",
            "userKey": u.key, "userName": u.name, "displayName": u.display_name,
            "deleted": u.deleted, "email": u.email, "success": true,
            "operations": ["USER_DISABLE", "USER_NAME_CHANGE", "USER_KEY_CHANGE", "USER_EXTERNAL_ID_CHANGE"],
            "affectedEntities": {"ANONYMIZE": []}, "businessLogicValidationFailed": false,
        }),
    )
}

fn schedule_anonymization(s: &mut State, req: &Req, _: &Params) -> Resp {
    let body = req.json().unwrap_or(Value::Null);
    let (Some(key), Some(_owner)) =
        (body.get("userKey").and_then(Value::as_str), body.get("newOwnerKey").and_then(Value::as_str))
    else {
        return bad("Parameters 'userKey' and 'newOwnerKey' are mandatory.");
    };
    if s.foreign_anonymization || s.tasks.values().any(|t| !t.done) {
        return error(409, "Another user anonymization process is already in progress.");
    }
    let Some(id) = s.find_by_key(key) else {
        return bad(&format!("User with key '{key}' does not exist."));
    };
    let task = s.new_task(id);
    Resp::json(
        202,
        json!({
            "progressUrl": format!("/rest/api/2/user/anonymization/progress?taskId={task}"),
            "submittedTime": "2024-01-01T00:00:00.000+0000",
        }),
    )
}

fn anonymization_progress(s: &mut State, req: &Req, _: &Params) -> Resp {
    let Some(task) = req.q("taskId").and_then(|id| s.tasks.get_mut(id)) else {
        return error(404, "No user anonymization task found.");
    };
    if task.polls_left > 0 {
        task.polls_left -= 1;
        return Resp::json(200, json!({"status": "IN_PROGRESS", "currentProgress": 50, "errors": {}, "warnings": {}}));
    }
    let first_completion = !task.done;
    task.done = true;
    let id = task.user.clone();
    if first_completion {
        let u = s.user_mut(&id);
        let digits: String = u.key.chars().filter(char::is_ascii_digit).collect();
        u.name = format!("jirauser{digits}");
        u.display_name = format!("user-{digits}");
        u.email = format!("{}@jira.invalid", u.name);
        u.active = false;
        u.anonymized = true;
        u.sessions = 0;
    }
    Resp::json(
        200,
        json!({"status": "COMPLETED", "currentProgress": 100, "errors": {}, "warnings": {},
        "operations": ["USER_DISABLE", "USER_NAME_CHANGE"], "isRerun": false}),
    )
}
