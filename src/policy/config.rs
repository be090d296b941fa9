//! The `[policy]` table and the `[[target]]` array of the TOML file (key names fixed by issue 3),
//! their defaults, and [`validate`]: a pure check that the file describes something the bridge
//! can carry out on every configured product (atlassian-dc.md §0, §5, §7). Unknown keys are
//! rejected by serde so a typo fails at start. Nothing here reads environment variables: the
//! caller resolves `token_env` / `password_env` after validation (see [`TargetConfig::credentials`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::atlassian::Product;

use super::product;

/// Whole-request timeout for one call to a target when `timeout_secs` is not set.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;
/// Longest accepted `timeout_secs`: a call held longer stalls that user's delivery lane.
pub const MAX_TIMEOUT_SECS: u64 = 300;

/// What to do in Atlassian when a user is disabled, deleted or loses access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffboardAction {
    #[default]
    Deactivate,
    Delete,
    Anonymize,
    None,
}

impl OffboardAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OffboardAction::Deactivate => "deactivate",
            OffboardAction::Delete => "delete",
            OffboardAction::Anonymize => "anonymize",
            OffboardAction::None => "none",
        }
    }
}

/// What to do when a user is enabled again or regains access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnableAction {
    #[default]
    Reactivate,
    None,
}

/// Which SCIM attribute becomes the Atlassian username.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UsernameFrom {
    /// `userName` as is.
    #[default]
    #[serde(rename = "userName")]
    UserName,
    /// The part of `userName` before the last `@` (all of it when there is none).
    #[serde(rename = "userName_localpart")]
    UserNameLocalpart,
    /// The primary (or first) email.
    #[serde(rename = "email")]
    Email,
    #[serde(rename = "externalId")]
    ExternalId,
}

/// How delivery looks for an existing Atlassian account before creating one (issue 9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkExisting {
    /// The mapped username only.
    Username,
    /// The mapped username, then the email.
    #[default]
    UsernameThenEmail,
    /// The email only.
    Email,
    /// Never look: create, and take an account of the same name as it is (the old behaviour).
    None,
}

impl LinkExisting {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkExisting::Username => "username",
            LinkExisting::UsernameThenEmail => "username_then_email",
            LinkExisting::Email => "email",
            LinkExisting::None => "none",
        }
    }
}

/// What an IdP rename does to the linked Atlassian account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RenameMode {
    /// The linked account keeps its username.
    #[default]
    Keep,
    /// Rename the account where the product can (Jira, Crowd); keep it elsewhere.
    Follow,
}

/// The `[policy]` table as written. Every key is optional; defaults are those of issue 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub on_disable: OffboardAction,
    pub on_delete: OffboardAction,
    pub on_access_lost: OffboardAction,
    pub on_enable: EnableAction,
    pub access_groups: Vec<String>,
    pub protected_users: Vec<String>,
    pub protected_groups: Vec<String>,
    pub create_users: bool,
    pub sync_groups: bool,
    pub dry_run: bool,
    pub username_from: UsernameFrom,
    pub link_existing: LinkExisting,
    pub rename: RenameMode,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            on_disable: OffboardAction::Deactivate,
            on_delete: OffboardAction::Deactivate,
            on_access_lost: OffboardAction::Deactivate,
            on_enable: EnableAction::Reactivate,
            access_groups: Vec::new(),
            protected_users: Vec::new(),
            protected_groups: Vec::new(),
            create_users: true,
            sync_groups: true,
            dry_run: false,
            username_from: UsernameFrom::UserName,
            link_existing: LinkExisting::UsernameThenEmail,
            rename: RenameMode::Keep,
        }
    }
}

/// One `[[target]]` block as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Unique name; appears in intents, the audit log and metric labels.
    pub name: String,
    pub product: Product,
    /// Base URL including any context path, e.g. `https://wiki.example.com/confluence`.
    pub url: String,
    /// Environment variable holding a personal access token, sent as Bearer.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Basic-auth user (for Crowd: the application name), used with `password_env`.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the Basic-auth password (for Crowd: the application password).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Whole-request timeout of one call, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Licence-granting groups. On Bitbucket, which has no deactivation, "deactivate" removes the
    /// user from these groups and "reactivate" re-adds them (atlassian-dc.md §5). Other products
    /// deactivate natively; there the list is only read by the licence jobs of `lifecycle/`.
    #[serde(default)]
    pub license_groups: Vec<String>,
    /// Jira only: the user who takes over the project and component leads of a leaver, so Jira
    /// lets the leaver be deactivated (it refuses for leads). Unset: a lead loses access by
    /// removal from the access groups instead (README "LDAP and Crowd directories").
    #[serde(default)]
    pub lead_successor: Option<String>,
    /// Jira only: the username that becomes the owner of the projects, components and filter
    /// subscriptions of a user the bridge anonymizes. Required when the policy can anonymize.
    #[serde(default)]
    pub anonymize_new_owner: Option<String>,
}

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// Where a target's credentials come from; the caller reads the named variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    Bearer { token_env: &'a str },
    Basic { username: &'a str, password_env: &'a str },
}

impl TargetConfig {
    /// The URL without trailing slashes, ready for `{base}/rest/...`.
    pub fn base_url(&self) -> &str {
        self.url.trim().trim_end_matches('/')
    }

    /// The configured credential source, or `None` when the block names none or an incomplete or
    /// ambiguous one ([`validate`] reports which).
    pub fn credentials(&self) -> Option<Credentials<'_>> {
        match (self.token_env.as_deref(), self.username.as_deref(), self.password_env.as_deref()) {
            (Some(token_env), None, None) => Some(Credentials::Bearer { token_env }),
            (None, Some(username), Some(password_env)) => Some(Credentials::Basic { username, password_env }),
            _ => None,
        }
    }
}

/// The validated policy that [`super::decide`] reads. Names are trimmed and empty entries gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub on_disable: OffboardAction,
    pub on_delete: OffboardAction,
    pub on_access_lost: OffboardAction,
    pub on_enable: EnableAction,
    pub access_groups: Vec<String>,
    pub protected_users: Vec<String>,
    pub protected_groups: Vec<String>,
    pub create_users: bool,
    pub sync_groups: bool,
    pub dry_run: bool,
    pub username_from: UsernameFrom,
    /// `[groups]` and `[[group_map]]` (validated by `groups::validated_groups`; the caller sets
    /// them after [`validated`], since they are tables of their own in the file).
    pub groups: super::GroupSync,
    pub link_existing: LinkExisting,
    pub rename: RenameMode,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::from_config(&PolicyConfig::default())
    }
}

impl Policy {
    fn from_config(c: &PolicyConfig) -> Policy {
        Policy {
            on_disable: c.on_disable,
            on_delete: c.on_delete,
            on_access_lost: c.on_access_lost,
            on_enable: c.on_enable,
            access_groups: trimmed(&c.access_groups),
            protected_users: trimmed(&c.protected_users),
            protected_groups: trimmed(&c.protected_groups),
            create_users: c.create_users,
            sync_groups: c.sync_groups,
            dry_run: c.dry_run,
            username_from: c.username_from,
            groups: super::GroupSync::default(),
            link_existing: c.link_existing,
            rename: c.rename,
        }
    }

    /// The three offboarding keys with their TOML key, in file order.
    fn offboard_keys(&self) -> [(&'static str, OffboardAction); 3] {
        [
            ("policy.on_disable", self.on_disable),
            ("policy.on_delete", self.on_delete),
            ("policy.on_access_lost", self.on_access_lost),
        ]
    }
}

/// The part of a target the policy needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    pub name: String,
    pub product: Product,
    pub license_groups: Vec<String>,
}

impl TargetPolicy {
    fn from_config(c: &TargetConfig) -> TargetPolicy {
        TargetPolicy { name: c.name.trim().to_string(), product: c.product, license_groups: trimmed(&c.license_groups) }
    }
}

/// One configuration problem: the exact key (`policy.on_delete`, `target[1].url`; target indexes
/// count `[[target]]` blocks from 0) and what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Every problem [`validate`] found, for `check-config` and start-up to print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the [policy] and [[target]] configuration cannot be used:\n{}", render(.issues))]
pub struct InvalidPolicy {
    pub issues: Vec<Issue>,
}

fn render(issues: &[Issue]) -> String {
    issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n")
}

/// Validates and converts into the forms [`super::decide`] takes.
///
/// # Errors
/// [`InvalidPolicy`] listing every [`Issue`] of [`validate`], when there is at least one.
pub fn validated(
    policy: &PolicyConfig,
    targets: &[TargetConfig],
) -> Result<(Policy, Vec<TargetPolicy>), InvalidPolicy> {
    let issues = validate(policy, targets);
    if !issues.is_empty() {
        return Err(InvalidPolicy { issues });
    }
    Ok((Policy::from_config(policy), targets.iter().map(TargetPolicy::from_config).collect()))
}

/// Every reason the configuration cannot be carried out, in file order; empty when it can.
/// Pure: environment variables are named here, read by the caller.
pub fn validate(policy: &PolicyConfig, targets: &[TargetConfig]) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut issue = |key: String, reason: String| issues.push(Issue { key, reason });

    for (list, key) in [
        (&policy.access_groups, "policy.access_groups"),
        (&policy.protected_users, "policy.protected_users"),
        (&policy.protected_groups, "policy.protected_groups"),
    ] {
        for (i, entry) in list.iter().enumerate() {
            if entry.trim().is_empty() {
                issue(format!("{key}[{i}]"), "is empty; remove it or write a name, e.g. [\"jira-users\"]".into());
            }
        }
    }

    let checked = Policy::from_config(policy);
    for (i, target) in targets.iter().enumerate() {
        let at = |field: &str| format!("target[{i}].{field}");
        let this = target_label(i, target);

        check_name(i, target, &targets[..i], &mut issue);
        if let Err(reason) = check_url(&target.url) {
            issue(at("url"), format!("{this}: {reason}"));
        }
        for (field, reason) in check_credentials(target) {
            issue(at(field), format!("{this}: {reason}"));
        }
        if target.timeout_secs == 0 || target.timeout_secs > MAX_TIMEOUT_SECS {
            issue(
                at("timeout_secs"),
                format!(
                    "{this}: must be between 1 and {MAX_TIMEOUT_SECS} seconds (default {DEFAULT_TIMEOUT_SECS}), \
                     e.g. timeout_secs = 10"
                ),
            );
        }
        for (g, group) in target.license_groups.iter().enumerate() {
            if group.trim().is_empty() {
                issue(at(&format!("license_groups[{g}]")), format!("{this}: is empty; remove it or name a group"));
            } else if super::contains_ci(&checked.protected_groups, group.trim()) {
                issue(
                    at(&format!("license_groups[{g}]")),
                    format!(
                        "{this}: {group:?} is also in policy.protected_groups, which are never changed, so \
                         removing a licence from it is impossible; drop it from one of the two lists"
                    ),
                );
            }
        }
        check_product_can(i, target, &checked, &mut issue);
        check_lead_successor(i, target, &mut issue);
        check_anonymize_owner(i, target, &checked, &mut issue);
    }
    issues
}

/// `lead_successor` is a non-empty username on a Jira target.
fn check_lead_successor(i: usize, target: &TargetConfig, issue: &mut impl FnMut(String, String)) {
    let Some(successor) = target.lead_successor.as_deref() else {
        return;
    };
    let this = target_label(i, target);
    let key = format!("target[{i}].lead_successor");
    if target.product != Product::Jira {
        issue(
            key,
            format!("{this}: only Jira has project and component leads; remove lead_successor from this target"),
        );
    } else if successor.trim().is_empty() {
        issue(
            key,
            format!("{this}: is empty; name the Jira user who takes over leads, e.g. lead_successor = \"jira-admin\""),
        );
    }
}

/// Jira transfers an anonymized user's projects, components and filter subscriptions to a new
/// owner (review J11); that owner must be named, never defaulted to the bridge's own account.
fn check_anonymize_owner(i: usize, target: &TargetConfig, policy: &Policy, issue: &mut impl FnMut(String, String)) {
    let this = target_label(i, target);
    let owner = target.anonymize_new_owner.as_deref().map(str::trim);
    let key = format!("target[{i}].anonymize_new_owner");
    if owner.is_some_and(str::is_empty) {
        issue(key, format!("{this}: is empty; name a Jira user, e.g. anonymize_new_owner = \"jira-admin\""));
        return;
    }
    match target.product {
        Product::Jira => {
            let anonymizing: Vec<&str> = policy
                .offboard_keys()
                .into_iter()
                .filter(|(_, a)| *a == OffboardAction::Anonymize)
                .map(|(k, _)| k)
                .collect();
            if owner.is_none() && !anonymizing.is_empty() {
                issue(
                    key,
                    format!(
                        "{this}: {} = \"anonymize\", and Jira hands the anonymized user's projects, components and \
                         filter subscriptions to a new owner; name that user, e.g. anonymize_new_owner = \"jira-admin\" \
                         (anonymization also needs the bridge's account to be a Jira System Administrator)",
                        anonymizing.join(", ")
                    ),
                );
            }
        }
        _ if owner.is_some() => issue(key, format!("{this}: only Jira targets take anonymize_new_owner; remove it")),
        _ => {}
    }
}

/// `target[1] ("wiki", confluence)`: the reason names the block as the admin wrote it.
fn target_label(i: usize, target: &TargetConfig) -> String {
    format!("target[{i}] ({:?}, {})", target.name, target.product.as_str())
}

fn check_name(i: usize, target: &TargetConfig, earlier: &[TargetConfig], issue: &mut impl FnMut(String, String)) {
    let name = target.name.trim();
    let key = format!("target[{i}].name");
    if name.is_empty() {
        issue(key, "is empty; give every target a short unique name, e.g. name = \"jira\"".into());
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        issue(
            key,
            format!(
                "{name:?} may use only ASCII letters, digits, '-', '_' and '.' (it keys the outbox and labels \
                 metrics), e.g. name = \"jira-prod\""
            ),
        );
    } else if let Some(first) = earlier.iter().position(|t| super::eq_ci(t.name.trim(), name)) {
        issue(
            key,
            format!("{name:?} is already the name of target[{first}]; target names must be unique (case-insensitive)"),
        );
    }
}

/// Accepts `http(s)://host[:port][/context/path][/]`; a trailing slash is harmless because
/// clients join paths onto [`TargetConfig::base_url`].
fn check_url(raw: &str) -> Result<(), String> {
    const EXAMPLE: &str = "e.g. url = \"https://jira.example.com\" or \"https://wiki.example.com/confluence\"";
    let url = raw.trim();
    if url != raw || url.chars().any(char::is_whitespace) {
        return Err(format!("{raw:?} contains whitespace; {EXAMPLE}"));
    }
    let Some(rest) = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")) else {
        return Err(format!("{raw:?} must start with https:// or http://; {EXAMPLE}"));
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    if authority.contains('@') {
        return Err(format!(
            "{raw:?} carries credentials; put them in token_env or username + password_env instead; {EXAMPLE}"
        ));
    }
    if url.contains('?') || url.contains('#') {
        return Err(format!("{raw:?} has a query or fragment; give only the base URL; {EXAMPLE}"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, tail)) if tail.starts_with(':') => (host, Some(&tail[1..])),
            _ => return Err(format!("{raw:?} has a malformed IPv6 host; {EXAMPLE}")),
        },
        None => authority.split_once(':').map_or((authority, None), |(host, port)| (host, Some(port))),
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{raw:?} has an invalid port {port:?}; {EXAMPLE}"));
        }
    }
    if host.is_empty() {
        return Err(format!("{raw:?} has no host; {EXAMPLE}"));
    }
    let path = path.trim_end_matches('/');
    if path.split('/').any(str::is_empty) && !path.is_empty() {
        return Err(format!("{raw:?} has an empty path segment (\"//\"); {EXAMPLE}"));
    }
    if path.split('/').any(|segment| segment.eq_ignore_ascii_case("rest")) {
        return Err(format!(
            "{raw:?} points into the REST API; give the base URL (with any context path) without /rest/..., \
             the bridge adds the API path itself; {EXAMPLE}"
        ));
    }
    Ok(())
}

/// Exactly one credential source, complete, named by a plausible environment variable; Crowd
/// only accepts Basic with the application name and password (atlassian-dc.md §4).
fn check_credentials(t: &TargetConfig) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    let bearer_example = "e.g. token_env = \"JIRA_TOKEN\" (a personal access token)";
    let basic_example = "e.g. username = \"scimbridge\" and password_env = \"CROWD_APP_PASSWORD\"";
    let blank = |v: &Option<String>| v.as_deref().is_some_and(|s| s.trim().is_empty());
    for (field, value) in [("token_env", &t.token_env), ("username", &t.username), ("password_env", &t.password_env)] {
        if blank(value) {
            found.push((field, "is empty; remove it or give a value".to_string()));
        }
    }
    if !found.is_empty() {
        return found;
    }
    for (field, value) in [("token_env", &t.token_env), ("password_env", &t.password_env)] {
        if let Some(name) = value.as_deref() {
            if !is_env_var_name(name) {
                found.push((
                    field,
                    format!(
                        "{name:?} is not an environment variable name; this key holds the NAME of the variable \
                         that holds the secret, never the secret itself, e.g. {field} = \"JIRA_TOKEN\""
                    ),
                ));
            }
        }
    }
    match (&t.token_env, &t.username, &t.password_env) {
        (Some(_), None, None) if t.product == Product::Crowd => found.push((
            "token_env",
            format!(
                "Crowd authenticates applications with Basic (application name and password), not a token; \
                 remove token_env and set {basic_example}"
            ),
        )),
        (Some(_), None, None) if t.product == Product::Bitbucket => found.push((
            "token_env",
            "Bitbucket Data Center does not accept personal or HTTP access tokens on its admin and \
                 user-management endpoints (Atlassian KB \"How-to use OAuth2 tokens for administrative endpoints \
                 of Bitbucket Data Center\", BSERV-10482): every user creation, group change and licence removal \
                 would be refused; remove token_env and use Basic for an account with ADMIN global permission, \
                 e.g. username = \"svc-scimbridge\" and password_env = \"BITBUCKET_PASSWORD\""
                .to_string(),
        )),
        (Some(_), None, None) | (None, Some(_), Some(_)) => {}
        (Some(_), _, _) => found.push((
            "token_env",
            "both token_env and username/password_env are set; keep one: token_env for a Bearer token, or \
             username + password_env for Basic"
                .to_string(),
        )),
        (None, Some(_), None) => {
            found.push(("password_env", format!("username is set without password_env; {basic_example}")))
        }
        (None, None, Some(_)) => {
            found.push(("username", format!("password_env is set without username; {basic_example}")))
        }
        (None, None, None) => {
            let how = if t.product == Product::Crowd {
                format!("set username (the Crowd application name) and password_env, {basic_example}")
            } else {
                format!("set token_env, {bearer_example}, or username + password_env for Basic")
            };
            found.push(("token_env", format!("no credentials; {how}")));
        }
    }
    found
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Rejects a configured action the target's product cannot carry out (atlassian-dc.md §7).
fn check_product_can(i: usize, target: &TargetConfig, policy: &Policy, issue: &mut impl FnMut(String, String)) {
    let this = target_label(i, target);
    for (key, action) in policy.offboard_keys() {
        if action != OffboardAction::Anonymize {
            continue;
        }
        if let Some(why) = product::cannot_anonymize(target.product) {
            issue(
                key.to_string(),
                format!(
                    "\"anonymize\" cannot be carried out on {this}: {why}; set {key} = \"deactivate\" or \
                     \"delete\", or remove that target"
                ),
            );
        }
    }
    let deactivating = policy.offboard_keys().into_iter().filter(|(_, a)| *a == OffboardAction::Deactivate);
    let keys: Vec<&str> = deactivating.map(|(key, _)| key).collect();
    if product::deactivates_by_license_groups(target.product)
        && !keys.is_empty()
        && target.license_groups.iter().all(|g| g.trim().is_empty())
    {
        issue(
            format!("target[{i}].license_groups"),
            format!(
                "{this}: Bitbucket Data Center has no deactivation; {} = \"deactivate\" \
                 removes the user from the licence-granting groups listed here, and none are listed; set e.g. \
                 license_groups = [\"stash-users\"], or choose \"delete\" or \"none\"",
                keys.join(", ")
            ),
        );
    }
}

fn trimmed(list: &[String]) -> Vec<String> {
    list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jira() -> TargetConfig {
        TargetConfig {
            name: "jira".into(),
            product: Product::Jira,
            url: "https://jira.example.com".into(),
            token_env: Some("JIRA_TOKEN".into()),
            username: None,
            password_env: None,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            license_groups: vec![],
            lead_successor: None,
            anonymize_new_owner: None,
        }
    }

    fn target(name: &str, product: Product) -> TargetConfig {
        match product {
            Product::Crowd | Product::Bitbucket => TargetConfig {
                token_env: None,
                username: Some("scimbridge".into()),
                password_env: Some("CROWD_APP_PASSWORD".into()),
                ..target_bearer(name, product)
            },
            _ => target_bearer(name, product),
        }
    }

    fn target_bearer(name: &str, product: Product) -> TargetConfig {
        TargetConfig { name: name.into(), product, url: format!("https://{name}.example.com"), ..jira() }
    }

    /// The single issue of a configuration, or a panic listing what was found instead.
    fn only_issue(policy: &PolicyConfig, targets: &[TargetConfig]) -> Issue {
        let issues = validate(policy, targets);
        assert_eq!(issues.len(), 1, "expected one issue, got {issues:#?}");
        issues.into_iter().next().expect("one issue")
    }

    fn assert_issue(issue: &Issue, key: &str, fragments: &[&str]) {
        assert_eq!(issue.key, key, "{issue}");
        for fragment in fragments {
            assert!(issue.reason.contains(fragment), "{:?} does not mention {fragment:?}", issue.reason);
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        policy: PolicyConfig,
        #[serde(default)]
        target: Vec<TargetConfig>,
    }

    #[test]
    fn an_empty_policy_table_takes_the_defaults_of_the_issue() {
        let file: File = toml::from_str("[policy]\n").expect("empty table parses");
        let p = file.policy;
        assert_eq!(
            (p.on_disable, p.on_delete, p.on_access_lost),
            (OffboardAction::Deactivate, OffboardAction::Deactivate, OffboardAction::Deactivate)
        );
        assert_eq!(p.on_enable, EnableAction::Reactivate);
        assert!(p.access_groups.is_empty() && p.protected_users.is_empty() && p.protected_groups.is_empty());
        assert!(p.create_users && p.sync_groups && !p.dry_run);
        assert_eq!(p.username_from, UsernameFrom::UserName);
        assert_eq!(Policy::default(), Policy::from_config(&p));
    }

    #[test]
    fn the_example_of_the_issue_parses_and_validates() {
        let file: File = toml::from_str(
            r#"
            [[target]]
            name = "jira"
            product = "jira"
            url = "https://jira.example.com"
            token_env = "JIRA_TOKEN"

            [[target]]
            name = "crowd"
            product = "crowd"
            url = "https://crowd.example.com/crowd/"
            username = "scimbridge"
            password_env = "CROWD_PASSWORD"
            timeout_secs = 5

            [[target]]
            name = "bitbucket"
            product = "bitbucket"
            url = "https://git.example.com"
            username = "svc-scimbridge"
            password_env = "BB_PASSWORD"
            license_groups = ["stash-users"]

            [policy]
            on_disable = "deactivate"
            on_delete = "delete"
            on_access_lost = "none"
            on_enable = "none"
            access_groups = ["Atlassian Users"]
            protected_users = ["admin"]
            protected_groups = ["jira-administrators"]
            create_users = false
            sync_groups = false
            dry_run = true
            username_from = "userName_localpart"
            "#,
        )
        .expect("the issue's keys parse");
        assert_eq!(file.policy.on_delete, OffboardAction::Delete);
        assert_eq!(file.policy.username_from, UsernameFrom::UserNameLocalpart);
        assert_eq!(file.target[1].timeout_secs, 5);
        assert_eq!(file.target[0].timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(file.target[1].base_url(), "https://crowd.example.com/crowd");
        assert_eq!(
            file.target[1].credentials(),
            Some(Credentials::Basic { username: "scimbridge", password_env: "CROWD_PASSWORD" })
        );
        let (policy, targets) = validated(&file.policy, &file.target).expect("valid");
        assert!(policy.dry_run);
        assert_eq!(
            targets[2],
            TargetPolicy {
                name: "bitbucket".into(),
                product: Product::Bitbucket,
                license_groups: vec!["stash-users".into()]
            }
        );
    }

    #[test]
    fn unknown_keys_and_values_fail_to_parse() {
        for (toml, fragment) in [
            ("[policy]\non_disabled = \"delete\"\n", "on_disabled"),
            ("[policy]\non_disable = \"remove\"\n", "remove"),
            ("[policy]\non_enable = \"deactivate\"\n", "deactivate"),
            ("[policy]\nusername_from = \"username\"\n", "username"),
            ("[[target]]\nname = \"j\"\nproduct = \"jira\"\nurl = \"https://j\"\ntoken = \"x\"\n", "token"),
            ("[[target]]\nname = \"j\"\nproduct = \"bamboo\"\nurl = \"https://j\"\n", "bamboo"),
        ] {
            let error = toml::from_str::<File>(toml).err().unwrap_or_else(|| panic!("{toml:?} parsed"));
            assert!(error.to_string().contains(fragment), "{toml:?}: {error}");
        }
    }

    #[test]
    fn duplicate_target_names_are_rejected_case_insensitively() {
        let issue = only_issue(
            &PolicyConfig::default(),
            &[jira(), target("wiki", Product::Confluence), TargetConfig { name: "JIRA".into(), ..jira() }],
        );
        assert_issue(&issue, "target[2].name", &["\"JIRA\"", "target[0]", "unique"]);
    }

    #[test]
    fn target_names_must_be_short_identifiers() {
        let issue = only_issue(&PolicyConfig::default(), &[TargetConfig { name: "".into(), ..jira() }]);
        assert_issue(&issue, "target[0].name", &["empty", "name = \"jira\""]);
        let issue = only_issue(&PolicyConfig::default(), &[TargetConfig { name: "jira prod".into(), ..jira() }]);
        assert_issue(&issue, "target[0].name", &["ASCII letters", "jira-prod"]);
    }

    #[test]
    fn urls_must_be_http_base_urls() {
        for (url, fragment) in [
            ("jira.example.com", "must start with https:// or http://"),
            ("ftp://jira.example.com", "must start with https:// or http://"),
            ("https://", "no host"),
            ("https:///jira", "no host"),
            (" https://jira.example.com", "whitespace"),
            ("https://jira.example.com/my jira", "whitespace"),
            ("https://admin:secret@jira.example.com", "carries credentials"),
            ("https://jira.example.com/?os_authType=basic", "query or fragment"),
            ("https://jira.example.com:99999", "invalid port"),
            ("https://jira.example.com:", "invalid port"),
            ("https://[::1", "malformed IPv6"),
            ("https://jira.example.com//jira", "empty path segment"),
            ("https://jira.example.com/rest/api/2", "without /rest/"),
            ("https://wiki.example.com/confluence/rest/api", "without /rest/"),
        ] {
            let issue = only_issue(&PolicyConfig::default(), &[TargetConfig { url: url.into(), ..jira() }]);
            assert_issue(&issue, "target[0].url", &[fragment, "target[0] (\"jira\", jira)", "e.g. url = "]);
        }
    }

    #[test]
    fn base_urls_with_context_path_port_or_trailing_slash_are_accepted() {
        for url in [
            "https://jira.example.com",
            "https://jira.example.com/",
            "http://localhost:8080/jira/",
            "https://wiki.example.com/confluence",
            "http://[::1]:7990",
            "https://restful.example.com/restricted",
        ] {
            let t = TargetConfig { url: url.into(), ..jira() };
            assert_eq!(validate(&PolicyConfig::default(), std::slice::from_ref(&t)), vec![], "{url}");
            assert!(!t.base_url().ends_with('/'), "{url}");
        }
    }

    #[test]
    fn a_target_without_credentials_is_told_how_to_add_them() {
        let bare = TargetConfig { token_env: None, ..jira() };
        assert_issue(
            &only_issue(&PolicyConfig::default(), &[bare]),
            "target[0].token_env",
            &["no credentials", "token_env = \"JIRA_TOKEN\""],
        );
        let crowd = TargetConfig { username: None, password_env: None, ..target("crowd", Product::Crowd) };
        assert_issue(
            &only_issue(&PolicyConfig::default(), &[crowd]),
            "target[0].token_env",
            &["no credentials", "Crowd application name", "password_env"],
        );
    }

    #[test]
    fn incomplete_or_ambiguous_credentials_are_rejected() {
        let p = PolicyConfig::default();
        let half = TargetConfig { token_env: None, username: Some("svc".into()), ..jira() };
        assert_issue(&only_issue(&p, &[half]), "target[0].password_env", &["without password_env"]);
        let other_half = TargetConfig { token_env: None, password_env: Some("PW".into()), ..jira() };
        assert_issue(&only_issue(&p, &[other_half]), "target[0].username", &["without username"]);
        let both = TargetConfig { username: Some("svc".into()), password_env: Some("PW".into()), ..jira() };
        assert_issue(&only_issue(&p, &[both]), "target[0].token_env", &["both", "keep one"]);
        let blank = TargetConfig { token_env: Some(" ".into()), ..jira() };
        assert_issue(&only_issue(&p, &[blank]), "target[0].token_env", &["is empty"]);
    }

    #[test]
    fn a_secret_pasted_where_a_variable_name_belongs_is_caught() {
        let pasted = TargetConfig { token_env: Some("NjM4OTk2Mzg0Njc2OkRd+Ub/3x".into()), ..jira() };
        assert_issue(
            &only_issue(&PolicyConfig::default(), &[pasted]),
            "target[0].token_env",
            &["NAME of the variable", "never the secret"],
        );
    }

    #[test]
    fn crowd_refuses_a_bearer_token() {
        let crowd = TargetConfig {
            token_env: Some("CROWD_TOKEN".into()),
            username: None,
            password_env: None,
            ..target("crowd", Product::Crowd)
        };
        assert_issue(
            &only_issue(&PolicyConfig::default(), &[crowd]),
            "target[0].token_env",
            &["Crowd authenticates applications with Basic"],
        );
    }

    #[test]
    fn timeouts_must_be_positive_and_bounded() {
        for secs in [0, MAX_TIMEOUT_SECS + 1] {
            let t = TargetConfig { timeout_secs: secs, ..jira() };
            assert_issue(&only_issue(&PolicyConfig::default(), &[t]), "target[0].timeout_secs", &["between 1 and 300"]);
        }
    }

    /// The admin reading check-config has no copy of the developers' reference notes: a reason
    /// names the vendor's behaviour, never a file of this repository.
    #[test]
    fn reasons_never_point_at_files_the_admin_does_not_have() {
        let policy = PolicyConfig {
            on_disable: OffboardAction::Anonymize,
            on_delete: OffboardAction::Deactivate,
            ..PolicyConfig::default()
        };
        let targets =
            [target("wiki", Product::Confluence), target("crowd", Product::Crowd), target("bb", Product::Bitbucket)];
        let issues = validate(&policy, &targets);
        assert!(issues.len() >= 3, "expected the Confluence, Crowd and Bitbucket issues, got {issues:#?}");
        for issue in &issues {
            assert!(!issue.reason.contains(".md") && !issue.reason.contains('§'), "{issue}");
        }
    }

    #[test]
    fn anonymize_with_a_confluence_target_is_rejected_with_the_reason() {
        let policy = PolicyConfig { on_delete: OffboardAction::Anonymize, ..PolicyConfig::default() };
        let owned = TargetConfig { anonymize_new_owner: Some("jira-admin".into()), ..jira() };
        let issue = only_issue(&policy, &[owned, target("wiki", Product::Confluence)]);
        assert_issue(
            &issue,
            "policy.on_delete",
            &[
                "target[1] (\"wiki\", confluence)",
                "no REST API for user anonymization",
                "policy.on_delete = \"deactivate\"",
            ],
        );
    }

    #[test]
    fn anonymize_with_a_crowd_target_is_rejected_for_each_key_that_asks_for_it() {
        let policy = PolicyConfig {
            on_disable: OffboardAction::Anonymize,
            on_access_lost: OffboardAction::Anonymize,
            ..PolicyConfig::default()
        };
        let issues = validate(&policy, &[target("crowd", Product::Crowd)]);
        let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["policy.on_disable", "policy.on_access_lost"]);
        assert!(issues.iter().all(|i| i.reason.contains("Crowd has no user anonymization")), "{issues:#?}");
    }

    #[test]
    fn anonymize_is_accepted_on_jira_and_bitbucket() {
        let policy = PolicyConfig {
            on_disable: OffboardAction::Anonymize,
            on_delete: OffboardAction::Anonymize,
            on_access_lost: OffboardAction::Anonymize,
            ..PolicyConfig::default()
        };
        let owned = TargetConfig { anonymize_new_owner: Some("jira-admin".into()), ..jira() };
        assert_eq!(validate(&policy, &[owned, target("git", Product::Bitbucket)]), vec![]);
        // Without a new owner the Jira target is refused, naming the key and why.
        let issue = only_issue(&policy, &[jira()]);
        assert_issue(&issue, "target[0].anonymize_new_owner", &["new owner", "System Administrator"]);
        let misplaced = TargetConfig { anonymize_new_owner: Some("x".into()), ..target("git", Product::Bitbucket) };
        assert_issue(&only_issue(&policy, &[misplaced]), "target[0].anonymize_new_owner", &["only Jira"]);
    }

    #[test]
    fn bitbucket_refuses_a_token_naming_the_atlassian_limitation() {
        let bb = TargetConfig {
            token_env: Some("BB_TOKEN".into()),
            username: None,
            password_env: None,
            license_groups: vec!["stash-users".into()],
            ..target("git", Product::Bitbucket)
        };
        assert_issue(
            &only_issue(&PolicyConfig::default(), &[bb]),
            "target[0].token_env",
            &["BSERV-10482", "Basic", "ADMIN"],
        );
    }

    #[test]
    fn bitbucket_needs_license_groups_when_an_action_deactivates() {
        let policy = PolicyConfig { on_delete: OffboardAction::Delete, ..PolicyConfig::default() };
        let issue = only_issue(&policy, &[target("git", Product::Bitbucket)]);
        assert_issue(
            &issue,
            "target[0].license_groups",
            &["no deactivation", "policy.on_disable, policy.on_access_lost", "license_groups = [\"stash-users\"]"],
        );

        let no_deactivation = PolicyConfig {
            on_disable: OffboardAction::Delete,
            on_delete: OffboardAction::Delete,
            on_access_lost: OffboardAction::None,
            ..PolicyConfig::default()
        };
        assert_eq!(validate(&no_deactivation, &[target("git", Product::Bitbucket)]), vec![]);
        let licensed = TargetConfig { license_groups: vec!["stash-users".into()], ..target("git", Product::Bitbucket) };
        assert_eq!(validate(&PolicyConfig::default(), &[licensed]), vec![]);
    }

    #[test]
    fn a_license_group_that_is_protected_is_a_contradiction() {
        let policy = PolicyConfig { protected_groups: vec!["Stash-Users".into()], ..PolicyConfig::default() };
        let licensed = TargetConfig { license_groups: vec!["stash-users".into()], ..target("git", Product::Bitbucket) };
        assert_issue(
            &only_issue(&policy, &[licensed]),
            "target[0].license_groups[0]",
            &["protected_groups", "never changed"],
        );
    }

    #[test]
    fn lead_successor_is_a_jira_setting_and_must_name_someone() {
        let ok = TargetConfig { lead_successor: Some("jira-admin".into()), ..jira() };
        assert_eq!(validate(&PolicyConfig::default(), &[ok]), vec![]);
        let blank = TargetConfig { lead_successor: Some(" ".into()), ..jira() };
        assert_issue(&only_issue(&PolicyConfig::default(), &[blank]), "target[0].lead_successor", &["is empty"]);
        let wiki = TargetConfig { lead_successor: Some("al".into()), ..target("wiki", Product::Confluence) };
        assert_issue(&only_issue(&PolicyConfig::default(), &[wiki]), "target[0].lead_successor", &["only Jira"]);
    }

    #[test]
    fn blank_names_in_policy_lists_are_rejected() {
        let policy = PolicyConfig { access_groups: vec!["jira-users".into(), " ".into()], ..PolicyConfig::default() };
        assert_issue(&only_issue(&policy, &[jira()]), "policy.access_groups[1]", &["is empty"]);
    }

    #[test]
    fn validated_lists_every_issue_in_its_error() {
        let policy = PolicyConfig { on_disable: OffboardAction::Anonymize, ..PolicyConfig::default() };
        let targets = [
            target("wiki", Product::Confluence),
            TargetConfig {
                url: "wiki".into(),
                anonymize_new_owner: Some("jira-admin".into()),
                ..target("wiki", Product::Jira)
            },
        ];
        let error = validated(&policy, &targets).expect_err("invalid");
        let keys: Vec<&str> = error.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["policy.on_disable", "target[1].name", "target[1].url"]);
        let text = error.to_string();
        assert!(
            text.starts_with("the [policy] and [[target]] configuration cannot be used:\n  - policy.on_disable: "),
            "{text}"
        );
    }

    #[test]
    fn validated_trims_names() {
        let policy = PolicyConfig { protected_users: vec![" admin ".into()], ..PolicyConfig::default() };
        let (policy, targets) = validated(&policy, &[TargetConfig { name: " jira ".into(), ..jira() }]).expect("valid");
        assert_eq!(policy.protected_users, vec!["admin"]);
        assert_eq!(targets[0].name, "jira");
    }
}
