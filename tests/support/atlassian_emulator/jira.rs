//! Emulated Jira DC REST v2 (served below `{base}/rest`, spec paths `/api/2/…`), 10.3 by default;
//! [`super::Emulator::set_version`] emulates 8.x/9.x, whose missing resources answer 404.

use serde_json::{json, Value};

use std::time::Instant;

use super::directory;
use super::{
    body_or, limit_param, offset_param, Params, Req, Resp, Route, State, UserState, SERVICE_KEY, SERVICE_USER,
};

/// Jira's date format (`UserBean.lastLoginTime` example `"2023-08-30T16:37:01+1000"`).
const JIRA_TIME: &str = "%Y-%m-%dT%H:%M:%S%.3f%z";

pub(super) static ROUTES: &[Route] = &[
    Route {
        method: "GET",
        template: "/rest/api/2/serverInfo",
        statuses: &[200],
        query: &[],
        body: &[],
        handler: server_info,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/mypermissions",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: my_permissions,
    },
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
        body: &["name", "displayName", "emailAddress", "applicationKeys"],
        handler: create_user,
    },
    Route {
        method: "PUT",
        template: "/rest/api/2/user",
        statuses: &[200, 400, 401, 404],
        query: &["username", "key"],
        body: &["active", "displayName", "emailAddress", "name"],
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
        method: "DELETE",
        template: "/rest/api/2/group",
        statuses: &[200, 400, 401, 404],
        query: &["groupname"],
        body: &[],
        handler: delete_group,
    },
    Route {
        method: "POST",
        template: "/rest/api/2/group/user",
        statuses: &[201, 400, 401, 403, 404],
        query: &["groupname"],
        body: &["name"],
        handler: add_member,
    },
    Route {
        method: "DELETE",
        template: "/rest/api/2/group/user",
        statuses: &[200, 400, 401, 403, 404],
        query: &["groupname", "username"],
        body: &[],
        handler: remove_member,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/user/list",
        // 404 only when emulating a Jira before 10.3, which lacks the resource.
        statuses: &[200, 401, 404],
        query: &["cursor", "maxResults"],
        body: &[],
        handler: user_list,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/user/search",
        statuses: &[200, 400, 401],
        query: &["username", "startAt", "maxResults", "includeActive", "includeInactive"],
        body: &[],
        handler: user_search,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/group/member",
        statuses: &[200, 400, 401, 404],
        query: &["groupname", "includeInactiveUsers", "startAt", "maxResults"],
        body: &[],
        handler: group_members,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/applicationrole",
        statuses: &[200, 401],
        query: &[],
        body: &[],
        handler: application_roles,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/applicationrole/{key}",
        statuses: &[200, 401, 404],
        query: &[],
        body: &[],
        handler: application_role,
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
        statuses: &[202, 400, 401, 403, 409],
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
    // Leads and projects (issue 9 item 3; handlers in directory.rs).
    Route {
        method: "GET",
        template: "/rest/api/2/project",
        statuses: &[200, 401],
        query: &["expand"],
        body: &[],
        handler: directory::jira_projects,
    },
    Route {
        method: "PUT",
        template: "/rest/api/2/project/{projectIdOrKey}",
        statuses: &[200, 400, 401, 404],
        query: &[],
        body: &["lead"],
        handler: directory::jira_update_project,
    },
    Route {
        method: "GET",
        template: "/rest/api/2/project/{projectIdOrKey}/components",
        statuses: &[200, 401, 404],
        query: &[],
        body: &[],
        handler: directory::jira_project_components,
    },
    Route {
        method: "PUT",
        template: "/rest/api/2/component/{id}",
        statuses: &[200, 400, 401, 404],
        query: &[],
        body: &["leadUserName"],
        handler: directory::jira_update_component,
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
    if let Some(t) = u.last_active {
        v["lastLoginTime"] = json!(t.format(JIRA_TIME).to_string());
    }
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

/// Jira's `ErrorCollection` 404 for a missing user (atlassian-dc.md §1.3, S1). The bridge reads
/// only this shape as "no such account"; an unknown path answers Jersey's "null for uri" instead.
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
        Some(id) => {
            let mut v = bean(&s.users[&id], expand);
            if req.q("expand").is_some_and(|e| e.contains("applicationRoles")) {
                v["applicationRoles"] = directory::jira_application_roles(s, &id);
            }
            Resp::json(200, v)
        }
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
    // Without `applicationKeys` the user gets every application "selected by default" (its
    // default group), which takes a seat; `[]` gives none (review J7: pycontribs/jira #549; J8:
    // KB "How to create a user on Jira using REST API"). Unknown keys are refused.
    let keys: Vec<String> = match body.get("applicationKeys") {
        None | Some(Value::Null) => {
            s.roles.iter().filter(|(_, r)| r.selected_by_default).map(|(k, _)| k.clone()).collect()
        }
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(_) => return bad("applicationKeys must be a list of application keys"),
    };
    if let Some(unknown) = keys.iter().find(|k| !s.roles.contains_key(*k)) {
        return Resp::json(
            400,
            json!({"errorMessages": [], "errors": {"applicationKeys": format!("Application '{unknown}' does not exist.")}}),
        );
    }
    let default_groups: Vec<String> = keys.iter().filter_map(|k| s.roles[k].groups.iter().next().cloned()).collect();
    let id = s.new_user(name, display, email);
    s.user_mut(&id).groups.extend(default_groups);
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
    // Jira validates an edit as its user form does (`DefaultUserService.validateUpdateUser`,
    // atlassian-calls-review.md §8 J4): a blank full name or an address without '@' is a 400
    // naming the field.
    if body.get("displayName").and_then(Value::as_str).is_some_and(|d| d.trim().is_empty()) {
        return Resp::json(
            400,
            json!({"errorMessages": [], "errors": {"displayName": "You must specify a full name."}}),
        );
    }
    if body.get("emailAddress").and_then(Value::as_str).is_some_and(|e| !e.contains('@')) {
        return Resp::json(
            400,
            json!({"errorMessages": [], "errors": {"email": "You must specify a valid email address."}}),
        );
    }
    // Before 8.3 `active` is not part of UserWriteBean: Jira ignores it and, with nothing else to
    // change, answers this 400 (JRASERVER-36639/37294; pycontribs/jira #36; review finding 8).
    let other_fields = body.as_object().is_some_and(|o| o.keys().any(|k| k != "active"));
    if body.get("active").is_some() && !s.version_at_least(8, 3) && !other_fields {
        return bad("error.no.value.found.to.be.changed");
    }
    let old_jira = !s.version_at_least(8, 3);
    if let Some(refused) = directory::jira_update_refusal(s, &id, &body) {
        return refused;
    }
    // Rename: `UserWriteBean.name` (Jira 10.3 OpenAPI, PUT /api/2/user). A name another user
    // (live or deleted) holds is refused with 400, as the user service's uniqueness check does
    // (DefaultUserService.validateUpdateUser, atlassian-calls-review.md J4); the key never changes.
    if let Some(new_name) = body.get("name").and_then(Value::as_str) {
        if new_name.trim().is_empty() {
            return bad("The username must not be empty.");
        }
        if s.find(new_name, true).is_some_and(|other| other != id) {
            return Resp::json(
                400,
                json!({"errorMessages": [], "errors": {"username": "A user with that username already exists."}}),
            );
        }
        s.user_mut(&id).name = new_name.to_string();
    }
    let u = s.user_mut(&id);
    // "Fields skipped in request will not be changed."
    if let Some(active) = body.get("active").and_then(Value::as_bool).filter(|_| !old_jira) {
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

fn kill_sessions(s: &mut State, req: &Req, p: &Params) -> Resp {
    // The resource exists from 9.11 only (KB "Invalidating user sessions in Jira Data Center":
    // "Prior to Jira 9.11: N/A"); before that Jersey answers 404 for the unknown path.
    if !s.version_at_least(9, 11) {
        return error(404, &format!("null for uri: {}", req.path));
    }
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
        // Jira group names are case-insensitive (embedded Crowd), so "Devs" exists when "devs" does.
        Some(g) if s.groups.iter().any(|x| x.eq_ignore_ascii_case(g)) => {
            bad(&format!("A group or user with this name already exists: {g}"))
        }
        Some(g) => {
            s.groups.insert(g.to_string());
            Resp::json(201, json!({"name": g, "self": format!("/rest/api/2/group?groupname={g}")}))
        }
    }
}

/// `DELETE /group?groupname=` → 200; 404 for an unknown group (Jira 10.3 OpenAPI). Members lose
/// the membership with the group.
fn delete_group(s: &mut State, req: &Req, _: &Params) -> Resp {
    let Some(group) = req.q("groupname").filter(|g| !g.is_empty()).map(str::to_string) else {
        return bad("Group name is empty.");
    };
    if !s.groups.remove(&group) {
        return error(404, &format!("Specified group '{group}' does not exist."));
    }
    for u in s.users.values_mut() {
        u.groups.remove(&group);
    }
    Resp::empty(200)
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
    if !s.users[&id].groups.contains(&group) {
        if let Some(refused) = directory::jira_membership_refusal(s, &id, &group) {
            return refused;
        }
    }
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
    if s.users[&id].groups.contains(&group) {
        if let Some(refused) = directory::jira_membership_refusal(s, &id, &group) {
            return refused;
        }
    }
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
    // Validation failures are HTTP 400 with `errors` = operation → ErrorCollection (spec: "400 …
    // validation failed"; messages as observed on 8.13 by gldog/anonymize_jira_users, review J10).
    let refusal = |errors: Value| {
        Resp::json(
            400,
            json!({"errors": errors, "warnings": {}, "userKey": u.key, "userName": u.name, "success": false,
                "businessLogicValidationFailed": true, "operations": [], "deleted": u.deleted}),
        )
    };
    let collection = |m: &str| json!({"errorMessages": [m], "errors": {}});
    if u.key == SERVICE_KEY {
        return refusal(json!({"GENERAL": collection("You can't anonymize yourself.")}));
    }
    if u.directory != "Jira Internal Directory" {
        return refusal(json!({
            "USER_NAME_CHANGE": collection("We can't rename users from external directories. Delete this user from the external directory and then try again."),
            "USER_DISABLE": collection("We can't anonymize this user, because the directory that contains them is read-only."),
            "USER_EXTERNAL_ID_CHANGE": collection("We can't change the external ID of users from external directories."),
        }));
    }
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
    let (Some(key), Some(owner)) =
        (body.get("userKey").and_then(Value::as_str), body.get("newOwnerKey").and_then(Value::as_str))
    else {
        return bad("Parameters 'userKey' and 'newOwnerKey' are mandatory.");
    };
    // "Requires system admin permission" (10.3 spec, POST /user/anonymization).
    if !s.caller_sysadmin {
        return error(403, "You must be a Jira System Administrator to anonymize users.");
    }
    let now = Instant::now();
    if s.foreign_anonymization || s.tasks.values().any(|t| !t.done && (t.polls_left > 0 || now < t.busy_until)) {
        return error(409, "Another user anonymization process is already in progress.");
    }
    let Some(id) = s.find_by_key(key) else {
        return bad(&format!("User with key '{key}' does not exist."));
    };
    if s.find_by_key(owner).is_none() {
        return bad(&format!("The new owner with key '{owner}' does not exist."));
    }
    let task = s.new_task(id);
    if let Some(t) = s.tasks.get_mut(&task) {
        t.new_owner = Some(owner.to_string());
    }
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
    if task.polls_left > 0 || Instant::now() < task.busy_until {
        task.polls_left = task.polls_left.saturating_sub(1);
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
    // COMPLETED "may still carry errors" (review J10): a step failed although the task ended.
    let errors = if s.anonymization_step_errors {
        json!({"USER_TRANSFER_OWNERSHIP_PLUGIN_POINTS": {"errorMessages": ["Transferring ownership of filter subscriptions failed."], "errors": {}}})
    } else {
        json!({})
    };
    Resp::json(
        200,
        json!({"status": "COMPLETED", "currentProgress": 100, "errors": errors, "warnings": {},
        "operations": ["USER_DISABLE", "USER_NAME_CHANGE"], "isRerun": false}),
    )
}

/// `GET /serverInfo`: `version` and `versionNumbers` of the emulated release (no authentication
/// needed, see `public_route`).
fn server_info(s: &mut State, _: &Req, _: &Params) -> Resp {
    let numbers: Vec<u32> = s.version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    Resp::json(
        200,
        json!({"baseUrl": "http://jira.example.com", "version": s.version, "versionNumbers": numbers,
            "deploymentType": "Server", "buildNumber": 10_030_000, "buildDate": "2024-12-01T00:00:00.000+0000",
            "serverTitle": "Jira"}),
    )
}

/// `GET /mypermissions`: every permission with `havePermission` for the caller (spec
/// PermissionsJsonBean); the global keys the bridge checks are ADMINISTER and SYSTEM_ADMIN.
fn my_permissions(s: &mut State, _: &Req, _: &Params) -> Resp {
    let perm = |id: &str, key: &str, name: &str, have: bool| json!({"id": id, "key": key, "name": name, "type": "GLOBAL", "description": name, "havePermission": have});
    Resp::json(
        200,
        json!({"permissions": {
            "ADMINISTER": perm("0", "ADMINISTER", "Jira Administrators", s.caller_admin || s.caller_sysadmin),
            "SYSTEM_ADMIN": perm("44", "SYSTEM_ADMIN", "Jira System Administrators", s.caller_sysadmin),
            "USER_PICKER": perm("27", "USER_PICKER", "Browse Users", true),
        }}),
    )
}

fn listing_bean(u: &UserState) -> Value {
    bean(u, false)
}

/// `GET /user/list`: `StreamPageBean`; the cursor is the offset of the next page (an int64 in
/// the spec, opaque to clients). Deleted users are not listed.
fn user_list(s: &mut State, req: &Req, _: &Params) -> Resp {
    if !s.jira_user_list {
        return error(404, "null for uri: /rest/api/2/user/list");
    }
    let start = offset_param(req, "cursor");
    let max = limit_param(req, "maxResults", 2000, 2000);
    let (ids, more) = s.page("jira-user-list", start, max, |u| !u.deleted);
    let values: Vec<Value> = ids.iter().map(|id| listing_bean(&s.users[id])).collect();
    let mut page = json!({"self": "/rest/api/2/user/list", "maxResults": max, "isLast": !more, "values": values});
    if more {
        let next = start + ids.len();
        page["nextCursor"] = json!(next.to_string());
        page["nextPage"] = json!(format!("/rest/api/2/user/list?cursor={next}&maxResults={max}"));
    }
    Resp::json(200, page)
}

/// `GET /user/search`: `UserBean[]`; `username=.` lists everyone (the third-party trick of
/// atlassian-dc.md §2.2), otherwise a case-insensitive match on name, display name or email.
fn user_search(s: &mut State, req: &Req, _: &Params) -> Resp {
    let active = req.q("includeActive") != Some("false");
    let inactive = req.q("includeInactive") == Some("true");
    if !active && !inactive {
        return bad("At least one of 'includeActive' or 'includeInactive' parameters must be true");
    }
    let needle = req.q("username").unwrap_or("").to_lowercase();
    let start = offset_param(req, "startAt");
    let max = limit_param(req, "maxResults", 50, 1000);
    let listing = format!("jira-search:{needle}:{active}:{inactive}");
    let keep = |u: &UserState| {
        !u.deleted
            && ((u.active && active) || (!u.active && inactive))
            && (needle == "."
                || u.name.to_lowercase().contains(&needle)
                || u.email.to_lowercase().contains(&needle)
                || u.display_name.to_lowercase().contains(&needle))
    };
    let (ids, _) = s.page(&listing, start, max, keep);
    Resp::json(200, Value::Array(ids.iter().map(|id| listing_bean(&s.users[id])).collect()))
}

/// `GET /group/member`: `{self, maxResults, startAt, total, isLast, values}` (§2.3).
fn group_members(s: &mut State, req: &Req, _: &Params) -> Resp {
    let Some(group) = req.q("groupname").filter(|g| !g.is_empty()).map(str::to_string) else {
        return bad("Group name is empty.");
    };
    if !s.groups.contains(&group) {
        return error(404, &format!("Specified group '{group}' does not exist."));
    }
    let inactive = req.q("includeInactiveUsers") == Some("true");
    let start = offset_param(req, "startAt");
    let max = limit_param(req, "maxResults", 50, 1000);
    let keep = |u: &UserState| !u.deleted && (inactive || u.active) && u.groups.contains(&group);
    let total = s.users.values().filter(|u| keep(u)).count();
    let (ids, more) = s.page(&format!("jira-group:{group}:{inactive}"), start, max, keep);
    let values: Vec<Value> = ids
        .iter()
        .map(|id| {
            let u = &s.users[id];
            json!({"self": format!("/rest/api/2/user?username={}", u.name), "name": u.name, "key": u.key,
                "emailAddress": u.email, "displayName": u.display_name, "active": u.active, "timeZone": "UTC"})
        })
        .collect();
    Resp::json(
        200,
        json!({"self": format!("/rest/api/2/group/member?groupname={group}"), "maxResults": max, "startAt": start,
            "total": total, "isLast": !more, "values": values}),
    )
}

fn role_bean(s: &State, key: &str) -> Value {
    let role = &s.roles[key];
    let used = s.role_users(key);
    json!({
        "key": key, "name": role.name, "groups": role.groups, "defaultGroups": role.groups.iter().take(1).collect::<Vec<_>>(),
        "selectedByDefault": role.selected_by_default, "defined": true,
        "numberOfSeats": role.seats.map_or(-1, |n| n as i64),
        "remainingSeats": role.seats.map_or(-1, |n| n as i64 - used as i64),
        "userCount": used, "userCountDescription": format!("{used} users"),
        "hasUnlimitedSeats": role.seats.is_none(), "platform": key == "jira-core",
    })
}

fn application_roles(s: &mut State, _: &Req, _: &Params) -> Resp {
    let beans: Vec<Value> = s.roles.keys().map(|k| role_bean(s, k)).collect();
    Resp::json(200, Value::Array(beans))
}

fn application_role(s: &mut State, _: &Req, p: &Params) -> Resp {
    let key = &p["key"];
    if !s.roles.contains_key(key) {
        return error(404, &format!("The application role '{key}' does not exist."));
    }
    Resp::json(200, role_bean(s, key))
}
