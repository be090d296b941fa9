//! The real estate around a user that makes products refuse offboarding (issue 9 items 3 and 6):
//! user directories per user ("Internal", "LDAP read-only", "LDAP read-only with local groups",
//! "Crowd"), groups that live in the external directory, Jira System Administrators and the
//! caller's own rights, Jira projects and components with their leads, and Confluence's
//! "can use" groups. Each refusal cites its source; where the vendor does not document the
//! answer, the stricter plausible one is modelled and marked so.
//!
//! The product handlers call the `*_refusal` functions before changing anything, and serve the
//! project, component, permission and membership routes defined here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::{Emulator, Params, Req, Resp, State, SERVICE_USER};
use scimbridge::atlassian::Product;

/// Where a user lives, as the products' "User directories" screens call the modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirMode {
    /// The product's internal directory: everything can be changed.
    Internal,
    /// LDAP/AD, "Read Only": neither the user nor any membership can be changed.
    LdapReadOnly,
    /// LDAP/AD, "Read Only, with Local Groups": the user cannot be changed; memberships of
    /// groups local to the product can, memberships of LDAP groups cannot.
    LdapReadOnlyLocalGroups,
    /// A Crowd (or Jira-as-Crowd) directory configured read-only in the application.
    Crowd,
}

impl DirMode {
    /// The directory name the emulator gives users of this mode (Bitbucket serves it as
    /// `directoryName`). The internal one ends in "Internal Directory", like every product's.
    pub fn directory_name(self) -> &'static str {
        match self {
            DirMode::Internal => "Internal Directory",
            DirMode::LdapReadOnly => "LDAP (read-only)",
            DirMode::LdapReadOnlyLocalGroups => "LDAP (read-only, local groups)",
            DirMode::Crowd => "Crowd (read-only)",
        }
    }

    fn can_update_user(self) -> bool {
        self == DirMode::Internal
    }

    fn can_change_membership(self, group_is_external: bool) -> bool {
        match self {
            DirMode::Internal => !group_is_external,
            DirMode::LdapReadOnlyLocalGroups => !group_is_external,
            DirMode::LdapReadOnly | DirMode::Crowd => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub name: String,
    pub lead: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub project: String,
    pub name: String,
    pub lead: Option<String>,
}

/// Everything of the estate the emulator holds.
#[derive(Debug, Default)]
pub(crate) struct Estate {
    /// Directory name → mode, for users not in the internal directory.
    pub modes: BTreeMap<String, DirMode>,
    /// Groups that come from the external directory (read-only for every user).
    pub external_groups: BTreeSet<String>,
    /// Jira: lower-case names of System Administrators.
    pub sysadmins: BTreeSet<String>,
    /// Jira: the bridge's account is only an Administrator (not a System Administrator).
    pub caller_plain_admin: bool,
    /// Jira projects by key.
    pub projects: BTreeMap<String, Project>,
    /// Jira components by id.
    pub components: BTreeMap<String, Component>,
    /// Confluence: groups with the global "can use" permission.
    pub can_use: BTreeSet<String>,
}

fn mode(s: &State, id: &str) -> DirMode {
    s.estate.modes.get(&s.users[id].directory).copied().unwrap_or(DirMode::Internal)
}

fn directory(s: &State, id: &str) -> String {
    s.users[id].directory.clone()
}

/// Whether `group` membership of user `id` may be changed, as the product's embedded Crowd
/// decides from the directory's allowed operations.
fn membership_locked(s: &State, id: &str, group: &str) -> bool {
    !mode(s, id).can_change_membership(s.estate.external_groups.contains(group))
}

/// Embedded Crowd's message for a directory without UPDATE_GROUP (Confluence KB 302812802,
/// CWD-4923: "Cannot update group '<g>' because directory '<d>' does not allow updates.").
fn group_locked_message(group: &str, dir: &str) -> String {
    format!(
        "com.atlassian.crowd.exception.OperationNotPermittedException: \
         com.atlassian.crowd.exception.ApplicationPermissionException: Cannot update group '{group}' because \
         directory '{dir}' does not allow updates."
    )
}

// ---- Jira ----

fn jira_error(status: u16, messages: &[&str], errors: Value) -> Resp {
    Resp::json(status, json!({"errorMessages": messages, "errors": errors}))
}

/// `PUT /user` validation, in the order of `DefaultUserService.validateUpdateUser` (public
/// source copy, atlassian-calls-review.md J4): read-only directory, sysadmin edited by a plain
/// admin, then for a deactivation: component lead and project lead as `errors.active` (the
/// project message replaces the component one: both are put under the same field), and the
/// currently logged-in user as an error message. The English texts are the emulator's wording
/// of the i18n keys named in the comments.
pub(crate) fn jira_update_refusal(s: &State, id: &str, body: &Value) -> Option<Resp> {
    let u = &s.users[id];
    // admin.errors.cannot.edit.user.directory.read.only
    if !mode(s, id).can_update_user() {
        return Some(jira_error(400, &["Cannot edit user, directory is read only."], json!({})));
    }
    // admin.errors.must.be.sysadmin.to.edit.sysadmin
    if s.estate.caller_plain_admin && s.estate.sysadmins.contains(&u.name.to_lowercase()) {
        return Some(jira_error(
            400,
            &["You must be a System Administrator to edit a user that is a System Administrator."],
            json!({}),
        ));
    }
    if body.get("active").and_then(Value::as_bool) != Some(false) {
        return None;
    }
    let mut errors = serde_json::Map::new();
    let leads = |f: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
        s.estate.components.values().filter(|c| c.lead.as_deref().is_some_and(f)).map(|c| c.project.clone()).collect()
    };
    let is_user = |l: &str| l.eq_ignore_ascii_case(&u.name);
    let component_projects = leads(&is_user);
    if !component_projects.is_empty() {
        // admin.errors.users.cannot.deactivate.due.to.component.lead
        let list = component_projects.into_iter().collect::<Vec<_>>().join(", ");
        errors.insert(
            "active".into(),
            json!(format!("Cannot deactivate user because they are a component lead in project(s): {list}")),
        );
    }
    let projects: Vec<String> =
        s.estate.projects.iter().filter(|(_, p)| is_user(&p.lead)).map(|(k, _)| k.clone()).collect();
    if !projects.is_empty() {
        // admin.errors.users.cannot.deactivate.due.to.project.lead
        errors.insert(
            "active".into(),
            json!(format!("Cannot deactivate user because they are the project lead of: {}", projects.join(", "))),
        );
    }
    let mut messages = Vec::new();
    // admin.errors.users.cannot.deactivate.currently.logged.in
    if u.name.eq_ignore_ascii_case(SERVICE_USER) {
        messages.push("You cannot deactivate the user you are currently logged in as.");
    }
    if errors.is_empty() && messages.is_empty() {
        return None;
    }
    Some(jira_error(400, &messages, Value::Object(errors)))
}

/// `POST`/`DELETE /group/user` on a membership the directory does not let Jira change: Jira's
/// `GroupResource.doGroupUpdate` maps embedded Crowd's `OperationNotPermittedException` to 403
/// with the exception text (public source copy of `GroupResource`).
pub(crate) fn jira_membership_refusal(s: &State, id: &str, group: &str) -> Option<Resp> {
    membership_locked(s, id, group).then(|| {
        jira_error(403, &[&format!("An error occurred: {}", group_locked_message(group, &directory(s, id)))], json!({}))
    })
}

/// `UserBean.applicationRoles` (`SimpleListWrapperApplicationRoleBean`, 10.3 spec): the roles
/// whose groups the user is in.
pub(crate) fn jira_application_roles(s: &State, id: &str) -> Value {
    let u = &s.users[id];
    let items: Vec<Value> = s
        .roles
        .iter()
        .filter(|(_, r)| r.groups.iter().any(|g| u.groups.contains(g)))
        .map(|(k, r)| json!({"key": k, "name": r.name}))
        .collect();
    json!({"size": items.len(), "items": items})
}

fn jira_user_ref(s: &State, name: &str) -> Value {
    let key = s.find(name, true).map(|id| s.users[&id].key.clone()).unwrap_or_default();
    json!({"name": name, "key": key, "displayName": name, "active": true})
}

fn project_bean(s: &State, key: &str, p: &Project, expand_lead: bool) -> Value {
    let mut v = json!({"key": key, "id": key, "name": p.name, "self": format!("/rest/api/2/project/{key}")});
    if expand_lead {
        v["lead"] = jira_user_ref(s, &p.lead);
    }
    v
}

fn component_bean(s: &State, id: &str, c: &Component) -> Value {
    let mut v = json!({"id": id, "name": c.name, "project": c.project, "self": format!("/rest/api/2/component/{id}")});
    if let Some(lead) = &c.lead {
        v["lead"] = jira_user_ref(s, lead);
        v["leadUserName"] = json!(lead);
    }
    v
}

/// A lead must be an existing active user (Jira: "The user … does not exist" / inactive users
/// cannot lead; the emulator's wording).
fn valid_lead(s: &State, name: &str) -> bool {
    s.find(name, false).is_some_and(|id| s.users[&id].active)
}

/// `GET /project?expand=lead`: every project (the bridge's account sees all of them).
pub(crate) fn jira_projects(s: &mut State, req: &Req, _: &Params) -> Resp {
    let expand = req.q("expand").is_some_and(|e| e.contains("lead"));
    let list: Vec<Value> = s.estate.projects.iter().map(|(k, p)| project_bean(s, k, p, expand)).collect();
    Resp::json(200, Value::Array(list))
}

/// `PUT /project/{projectIdOrKey}`: only `lead` is modelled; "only non null values … updated".
pub(crate) fn jira_update_project(s: &mut State, req: &Req, p: &Params) -> Resp {
    let key = p["projectIdOrKey"].clone();
    if !s.estate.projects.contains_key(&key) {
        return jira_error(404, &[&format!("No project could be found with key '{key}'.")], json!({}));
    }
    let body = req.json().unwrap_or(Value::Null);
    if let Some(lead) = body.get("lead").and_then(Value::as_str) {
        if !valid_lead(s, lead) {
            return jira_error(
                400,
                &[],
                json!({"projectLead": "The user you have specified as project lead does not exist."}),
            );
        }
        if let Some(project) = s.estate.projects.get_mut(&key) {
            project.lead = lead.to_string();
        }
    }
    let project = s.estate.projects[&key].clone();
    Resp::json(200, project_bean(s, &key, &project, true))
}

/// `GET /project/{projectIdOrKey}/components`.
pub(crate) fn jira_project_components(s: &mut State, _: &Req, p: &Params) -> Resp {
    let key = &p["projectIdOrKey"];
    if !s.estate.projects.contains_key(key) {
        return jira_error(404, &[&format!("No project could be found with key '{key}'.")], json!({}));
    }
    let list: Vec<Value> =
        s.estate.components.iter().filter(|(_, c)| &c.project == key).map(|(id, c)| component_bean(s, id, c)).collect();
    Resp::json(200, Value::Array(list))
}

/// `PUT /component/{id}` with `leadUserName` ("if a field is not present, it is silently ignored").
pub(crate) fn jira_update_component(s: &mut State, req: &Req, p: &Params) -> Resp {
    let id = p["id"].clone();
    if !s.estate.components.contains_key(&id) {
        return jira_error(404, &[&format!("The component with id {id} does not exist.")], json!({}));
    }
    let body = req.json().unwrap_or(Value::Null);
    if let Some(lead) = body.get("leadUserName").and_then(Value::as_str) {
        if !valid_lead(s, lead) {
            return jira_error(400, &[], json!({"leadUserName": "The user does not exist."}));
        }
        if let Some(c) = s.estate.components.get_mut(&id) {
            c.lead = Some(lead.to_string());
        }
    }
    let c = s.estate.components[&id].clone();
    Resp::json(200, component_bean(s, &id, &c))
}

// ---- Confluence ----

/// `PUT /admin/user/{u}/disable` (and `/enable`) for a user whose directory lacks UPDATE_USER:
/// a public decompiled copy of `CrowdDisabledUserManager.disableUser`/`enableUser` catches the
/// `OperationNotPermittedException` (CWD-4923) and only logs "Could not disable user", so the
/// answer is 204 and the user is unchanged. The REST status is not documented; this silent
/// no-op is the strictest plausible answer.
pub(crate) fn confluence_status_change_is_ignored(s: &State, id: &str) -> bool {
    !mode(s, id).can_update_user()
}

/// `PUT`/`DELETE /user/{u}/group/{g}` on a read-only membership: embedded Crowd refuses with
/// `OperationNotPermittedException` (Confluence KB 302812802); the REST status is not
/// documented (the spec lists only 204), so the emulator answers the stricter plausible 500
/// with the exception text, which a client would otherwise retry.
pub(crate) fn confluence_membership_refusal(s: &State, id: &str, group: &str) -> Option<Resp> {
    membership_locked(s, id, group).then(|| {
        Resp::json(
            500,
            json!({"statusCode": 500, "message": group_locked_message(group, &directory(s, id)), "reason": "Internal Server Error"}),
        )
    })
}

/// `GET /rest/api/permissions`: `[{operation:{targetType, operationKey}, subject:{type, displayName}}]`
/// (Confluence DC REST v9.2+/10.0 "Global Permissions"; the subject's `type` values are not
/// documented: "group" is the emulator's choice).
pub(crate) fn confluence_permissions(s: &mut State, _: &Req, _: &Params) -> Resp {
    let mut list: Vec<Value> = s
        .estate
        .can_use
        .iter()
        .map(|g| json!({"operation": {"targetType": "application", "operationKey": "use"}, "subject": {"type": "group", "displayName": g}}))
        .collect();
    list.push(json!({"operation": {"targetType": "system", "operationKey": "administer"},
        "subject": {"type": "group", "displayName": "confluence-administrators"}}));
    Resp::json(200, Value::Array(list))
}

/// `GET /rest/api/user/memberof?username=&start=&limit=`: the user's groups.
pub(crate) fn confluence_member_of(s: &mut State, req: &Req, _: &Params) -> Resp {
    let name = req.q("username").unwrap_or("");
    let Some(id) = s.find(name, false) else {
        return Resp::json(
            404,
            json!({"statusCode": 404, "message": format!("No user found with username: {name}"), "reason": "Not Found"}),
        );
    };
    let start = super::offset_param(req, "start");
    let limit = super::limit_param(req, "limit", 200, 1000);
    let groups: Vec<Value> =
        s.users[&id].groups.iter().skip(start).take(limit).map(|g| json!({"type": "group", "name": g})).collect();
    Resp::json(200, json!({"results": groups, "start": start, "limit": limit, "size": groups.len()}))
}

// ---- Crowd ----

fn crowd_denied(message: String) -> Resp {
    Resp::json(403, json!({"reason": "APPLICATION_PERMISSION_DENIED", "message": message}))
}

/// `PUT /user` for a user of a read-only directory: `ApplicationService.updateUser` throws
/// `ApplicationPermissionException` (decompiled copy, atlassian-calls-review.md R3) → 403.
pub(crate) fn crowd_update_refusal(s: &State, id: &str) -> Option<Resp> {
    (!mode(s, id).can_update_user()).then(|| {
        crowd_denied(format!(
            "Cannot update user '{}' because directory '{}' does not allow updates.",
            s.users[id].name,
            directory(s, id)
        ))
    })
}

/// `POST`/`DELETE /user/group/direct` on a read-only membership: `addUserToGroup` and
/// `removeUserFromGroup` throw `ApplicationPermissionException` (R3) → 403.
pub(crate) fn crowd_membership_refusal(s: &State, id: &str, group: &str) -> Option<Resp> {
    membership_locked(s, id, group).then(|| {
        crowd_denied(format!(
            "Cannot update group '{group}' because directory '{}' does not allow updates.",
            directory(s, id)
        ))
    })
}

// ---- Bitbucket ----

/// Bitbucket cannot change users or groups of read-only external directories ("impossible to
/// configure external directories as read/write", TechTime 3P B4): `mutableDetails` and
/// `mutableGroups` are false for users of the read-only modes. A directory name set with
/// `set_directory` alone is only a label (internal behaviour).
pub(crate) fn bitbucket_mutable(directory: &str) -> bool {
    directory != DirMode::LdapReadOnly.directory_name() && directory != DirMode::Crowd.directory_name()
}

/// `POST /admin/users/remove-group` for such a user: the answer is not documented; the
/// emulator refuses with 403 and a message (stricter than the silent 200 a kinder emulator
/// would give).
pub(crate) fn bitbucket_membership_refusal(s: &State, id: &str, group: &str) -> Option<Resp> {
    (!bitbucket_mutable(&s.users[id].directory)).then(|| {
        Resp::json(
            403,
            json!({"errors": [{"context": null, "message": format!("Cannot remove {} from {group}: directory '{}' is read-only.", s.users[id].name, s.users[id].directory), "exceptionName": "com.atlassian.bitbucket.user.ReadOnlyGroupMembershipException"}]}),
        )
    })
}

// ---- test controls ----

impl Emulator {
    /// Moves `user` into a directory of `mode` (named [`DirMode::directory_name`]).
    ///
    /// # Panics
    /// If the user does not exist.
    pub fn put_in_directory(&self, user: &str, mode: DirMode) {
        let mut s = self.lock();
        let id = s.find(user, true).expect("put_in_directory: unknown user");
        let name = match (mode, s.product) {
            (DirMode::Internal, Product::Jira) => "Jira Internal Directory",
            (DirMode::Internal, Product::Confluence) => "Confluence Internal Directory",
            (DirMode::Internal, Product::Crowd) => "Crowd Internal Directory",
            (DirMode::Internal, Product::Bitbucket) => "Bitbucket Internal Directory",
            (m, _) => m.directory_name(),
        };
        s.user_mut(&id).directory = name.to_string();
        if mode != DirMode::Internal {
            s.estate.modes.insert(name.to_string(), mode);
        }
    }

    /// Marks `group` as a group of the external directory (read-only); creates it.
    pub fn make_external_group(&self, group: &str) {
        let mut s = self.lock();
        s.groups.insert(group.to_string());
        s.estate.external_groups.insert(group.to_string());
    }

    /// Jira: `user` is a System Administrator.
    pub fn make_sysadmin(&self, user: &str) {
        self.lock().estate.sysadmins.insert(user.to_lowercase());
    }

    /// Jira: the bridge's account is only an Administrator (true) or a System Administrator.
    pub fn set_caller_plain_admin(&self, plain: bool) {
        self.lock().estate.caller_plain_admin = plain;
    }

    /// Jira: a project `key` led by `lead`.
    pub fn add_project(&self, key: &str, lead: &str) {
        let project = Project { name: format!("Project {key}"), lead: lead.to_string() };
        self.lock().estate.projects.insert(key.to_string(), project);
    }

    /// Jira: a component of `project` led by `lead`; returns its id.
    pub fn add_component(&self, project: &str, name: &str, lead: Option<&str>) -> String {
        let mut s = self.lock();
        s.next_id += 1;
        let id = (10_000 + s.next_id).to_string();
        let c = Component { project: project.to_string(), name: name.to_string(), lead: lead.map(str::to_string) };
        s.estate.components.insert(id.clone(), c);
        id
    }

    pub fn project_lead(&self, key: &str) -> Option<String> {
        self.lock().estate.projects.get(key).map(|p| p.lead.clone())
    }

    pub fn component_lead(&self, id: &str) -> Option<String> {
        self.lock().estate.components.get(id).and_then(|c| c.lead.clone())
    }

    /// Confluence: these groups hold the global "can use" permission (created).
    pub fn set_can_use(&self, groups: &[&str]) {
        let mut s = self.lock();
        for g in groups {
            s.groups.insert(g.to_string());
            s.estate.can_use.insert(g.to_string());
        }
    }
}
