//! Emulated Confluence DC 10.0.3 REST (paths as in the spec, below the `/confluence` context).

use serde_json::{json, Value};

use super::{body_or, Params, Req, Resp, Route, State, SERVICE_USER};

pub(super) static ROUTES: &[Route] = &[
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
        query: &["username"],
        body: &[],
        handler: get_user,
    },
    Route {
        method: "POST",
        template: "/rest/api/admin/user",
        statuses: &[201, 400, 401, 402, 409],
        query: &[],
        body: &["userName", "fullName", "email", "password", "notifyViaEmail"],
        handler: create_user,
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
        statuses: &[204, 401, 404],
        query: &[],
        body: &[],
        handler: add_member,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/user/{username}/group/{groupName}",
        statuses: &[204, 401, 404],
        query: &[],
        body: &[],
        handler: remove_member,
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

fn current(_: &mut State, _: &Req, _: &Params) -> Resp {
    Resp::json(200, json!({"type": "known", "username": SERVICE_USER, "userKey": "svc", "displayName": "SCIM bridge"}))
}

fn get_user(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    match s.find(name, false) {
        Some(id) => {
            let u = &s.users[&id];
            Resp::json(
                200,
                json!({"type": "known", "username": u.name, "userKey": u.key, "displayName": u.display_name}),
            )
        }
        None => no_user(name),
    }
}

fn create_user(s: &mut State, req: &Req, _: &Params) -> Resp {
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

fn set_active(s: &mut State, p: &Params, active: bool) -> Resp {
    let name = &p["username"];
    match s.find(name, false) {
        // Idempotent: 204 whatever the previous state.
        Some(id) => {
            s.user_mut(&id).active = active;
            Resp::empty(204)
        }
        None => no_user(name),
    }
}

fn disable(s: &mut State, _: &Req, p: &Params) -> Resp {
    set_active(s, p, false)
}

fn enable(s: &mut State, _: &Req, p: &Params) -> Resp {
    set_active(s, p, true)
}

fn delete_user(s: &mut State, _: &Req, p: &Params) -> Resp {
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
            s.user_mut(&id).groups.insert(group);
            Resp::empty(204)
        }
        Err(r) => r,
    }
}

fn remove_member(s: &mut State, _: &Req, p: &Params) -> Resp {
    match member_target(s, p) {
        Ok((id, group)) => {
            s.user_mut(&id).groups.remove(&group);
            Resp::empty(204)
        }
        Err(r) => r,
    }
}
