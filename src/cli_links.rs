//! `scimbridge links …` (issue 9): `preview`, `list`, `set`, `clear`. With a server running they
//! go through its admin API (`/admin/links…`, sled admits one process), otherwise they open the
//! store and call the same functions (`admin_links.rs`, `lifecycle::Jobs::links_preview`), so both
//! give one answer.

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use crate::cli::{url_encode, Backend};
use crate::config::Config;
use crate::lifecycle::{Jobs, Preview};

/// `scimbridge links …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LinksCmd {
    /// For every SCIM user, how each target would match (linked, existing, new, ambiguous,
    /// conflict), and the orphans (accounts linked to no SCIM user) with their last activity.
    /// Changes nothing.
    Preview {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Print the whole preview as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Recorded links and the users waiting for review.
    List {
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Link SCIM_USER (userName or SCIM id) to the existing account ATLASSIAN_USERNAME on one
    /// target (checked there first); resolves a review and releases the held deliveries (audited).
    Set {
        scim_user: String,
        atlassian_username: String,
        /// The [[target]] name.
        #[arg(long)]
        target: String,
        /// ATLASSIAN_USERNAME is not an account yet: link it anyway, the held create makes it
        /// (without this flag the account must exist on the target).
        #[arg(long)]
        new: bool,
    },
    /// Remove SCIM_USER's links (on one target, or all); the next delivery looks the account up
    /// again (audited).
    Clear {
        scim_user: String,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
}

/// What `check-config` says about linking and renaming on the configured targets: which
/// cannot be searched by email and which cannot rename (they keep the account's name).
pub fn config_notes(config: &Config) -> Vec<String> {
    use crate::atlassian::Connector;
    use crate::policy::{LinkExisting, RenameMode};
    let p = &config.policy;
    let mut notes = vec![format!(
        "policy.link_existing = \"{}\"; policy.rename = \"{}\".",
        p.link_existing.as_str(),
        if p.rename == RenameMode::Follow { "follow" } else { "keep" }
    )];
    for t in &config.targets {
        let product = t.spec.product;
        if matches!(p.link_existing, LinkExisting::UsernameThenEmail | LinkExisting::Email)
            && !Connector::email_searchable(product)
        {
            notes.push(format!("Target '{}': {}.", t.spec.name, crate::atlassian::CONFLUENCE_NO_EMAIL_SEARCH));
        }
        if p.rename == RenameMode::Follow && !Connector::can_rename(product) {
            notes.push(format!(
                "Target '{}': {product} has no REST API to rename a user; with rename = \"follow\" its accounts keep their names (only Jira and Crowd follow).",
                t.spec.name
            ));
        }
    }
    notes
}

/// Every configured target, also one whose credential is not in this shell: only the commands
/// that call a target need it (`Config::require_credentials`).
fn target_names(config: &Config) -> Vec<String> {
    config.target_names()
}

/// A result of the shared link functions, for the CLI that ran them itself: a refusal reads as
/// the server's would ("No SCIM user 'x' …"), without the HTTP status and scimType it carries.
fn local<T>(r: crate::store::StoreResult<T>) -> anyhow::Result<T> {
    r.map_err(|e| match e {
        crate::store::StoreError::Scim(e) => anyhow!(e.detail),
        other => anyhow::Error::new(other),
    })
}

fn query(target: &Option<String>) -> String {
    target.as_ref().map(|t| format!("?target={}", url_encode(t))).unwrap_or_default()
}

/// Sends one admin API request through the CLI's strict transport (`cli_remote.rs`): any answer
/// but the admin API's JSON is an error naming the request and what came back.
async fn remote(backend: &Backend, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let Backend::Remote(api) = backend else { bail!("not a remote backend") };
    api.call(method, path, body.as_ref()).await
}

impl Backend {
    /// `links preview`.
    ///
    /// # Errors
    /// An unknown target, a store error, or the server's refusal.
    pub async fn links_preview(&self, config: &Config, target: &Option<String>) -> anyhow::Result<Preview> {
        match self {
            Backend::Local(store) => {
                // Run here, the preview reads the targets itself: it needs their credentials
                // (through a server, the server has them). Unknown target names fail first.
                if let Some(t) = target {
                    crate::admin_links::target_name(&target_names(config), t)?;
                }
                config.require_credentials(target.as_deref())?;
                let jobs = Jobs::new(store.clone(), config.clone())?;
                let only = target.clone();
                // The target calls run on a runtime worker (see cli_signals.rs).
                Ok(crate::cli_signals::off_main_thread(async move { jobs.links_preview(only.as_deref()).await })
                    .await??)
            }
            Backend::Remote { .. } => {
                let v = remote(self, reqwest::Method::GET, &format!("/links/preview{}", query(target)), None).await?;
                serde_json::from_value(v).context("while reading the preview the server sent")
            }
        }
    }

    /// `links list`.
    ///
    /// # Errors
    /// As [`Backend::links_preview`].
    pub async fn links_list(&self, config: &Config, target: &Option<String>) -> anyhow::Result<Value> {
        match self {
            Backend::Local(store) => local(crate::admin_links::list(store, &target_names(config), target.as_deref())),
            Backend::Remote { .. } => {
                remote(self, reqwest::Method::GET, &format!("/links{}", query(target)), None).await
            }
        }
    }

    /// `links set`.
    ///
    /// # Errors
    /// Unknown user or target, an account linked to someone else, a store error.
    pub async fn links_set(
        &self,
        config: &Config,
        user: &str,
        username: &str,
        target: &str,
        new: bool,
    ) -> anyhow::Result<Value> {
        match self {
            Backend::Local(store) => {
                let name = local(crate::admin_links::target_name(&target_names(config), target))?;
                if !new {
                    // Checking the account calls the target: its credential is needed here.
                    config.require_credentials(Some(&name))?;
                    let (config, username) = (config.clone(), username.to_string());
                    local(
                        crate::cli_signals::off_main_thread(async move {
                            crate::admin_links::check_account(&config, &name, &username).await
                        })
                        .await?,
                    )?;
                }
                local(crate::admin_links::set(
                    store,
                    &target_names(config),
                    user,
                    username,
                    target,
                    &crate::store::Operator::cli(),
                ))
            }
            Backend::Remote { .. } => {
                let body = json!({"user": user, "username": username, "target": target, "new": new});
                remote(self, reqwest::Method::POST, "/links", Some(body)).await
            }
        }
    }

    /// `links clear`.
    ///
    /// # Errors
    /// Unknown user or target, nothing to clear, a store error.
    pub async fn links_clear(&self, config: &Config, user: &str, target: &Option<String>) -> anyhow::Result<Value> {
        match self {
            Backend::Local(store) => local(crate::admin_links::clear(
                store,
                &target_names(config),
                user,
                target.as_deref(),
                &crate::store::Operator::cli(),
            )),
            Backend::Remote { .. } => {
                let t = target.as_ref().map(|t| format!("&target={}", url_encode(t))).unwrap_or_default();
                remote(self, reqwest::Method::DELETE, &format!("/links?user={}{t}", url_encode(user)), None).await
            }
        }
    }
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Prints a preview as a table: one line per user and target, then the orphans, then counts.
pub fn print_preview(p: &Preview) {
    println!("target\tstatus\tscim_user\tatlassian_username\tdetail");
    for t in &p.targets {
        for r in &t.users {
            let mut detail = r.detail.clone();
            if !r.candidates.is_empty() {
                detail = format!("{detail} (candidates: {})", r.candidates.join(", "));
            }
            println!(
                "{}\t{}\t{}\t{}\t{}",
                t.target,
                r.status,
                r.user_name,
                r.username.as_deref().unwrap_or(""),
                detail
            );
        }
        for o in &t.orphans {
            let last = match (&o.last_active, o.activity_reported) {
                (Some(at), _) => format!("last activity {at}"),
                (None, true) => "never logged in".to_string(),
                (None, false) => "last activity not reported".to_string(),
            };
            let state = if o.active { "active" } else { "inactive" };
            let former =
                o.former_user.as_ref().map(|u| format!("; was linked to deleted SCIM user {u}")).unwrap_or_default();
            println!("{}\torphan\t\t{}\t{last}; {state}{former}", t.target, o.username);
        }
    }
    println!("link_existing = {:?}; {} SCIM users.", p.link_existing, p.users);
    for t in &p.targets {
        if let Some(e) = &t.error {
            println!("{} ({}): NOT READ: {e}", t.target, t.product);
            continue;
        }
        let counts: Vec<String> = t.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{} ({}, {} accounts): {}", t.target, t.product, t.accounts, counts.join(", "));
        for n in &t.notes {
            println!("  note: {n}");
        }
    }
}

/// Runs one `links` command.
///
/// # Errors
/// See each command; a preview in which a target could not be read is an error too.
pub async fn run(config: &Config, cmd: &LinksCmd) -> anyhow::Result<()> {
    let backend = Backend::connect(config)?;
    match cmd {
        LinksCmd::Preview { target, json } => {
            let p = backend.links_preview(config, target).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print_preview(&p);
            }
            let unread: Vec<&str> = p.targets.iter().filter(|t| t.error.is_some()).map(|t| t.target.as_str()).collect();
            if !unread.is_empty() {
                bail!("could not read {}", unread.join(", "));
            }
        }
        LinksCmd::List { target, json } => {
            let v = backend.links_list(config, target).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let links = v.get("links").and_then(Value::as_array).ok_or_else(|| anyhow!("the answer has no links"))?;
            let review =
                v.get("review").and_then(Value::as_array).ok_or_else(|| anyhow!("the answer has no review list"))?;
            println!("target\tscim_user\tatlassian_username\tsource\tat\tactor");
            for l in links {
                let user = if l["scim_user_exists"] == true {
                    s(l, "user_name")
                } else {
                    format!("(deleted {})", s(l, "user_id"))
                };
                println!(
                    "{}\t{user}\t{}\t{}\t{}\t{}",
                    s(l, "target"),
                    s(l, "username"),
                    s(l, "source"),
                    s(l, "at"),
                    s(l, "actor")
                );
            }
            for r in review {
                println!(
                    "{}\t{}\tREVIEW ({}): {} [candidates: {}; {} held]",
                    s(r, "target"),
                    s(r, "user_name"),
                    s(r, "kind"),
                    s(r, "reason"),
                    r["candidates"]
                        .as_array()
                        .map(|c| c.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                    s(r, "held")
                );
            }
            eprintln!("{} link(s), {} waiting for review", links.len(), review.len());
        }
        LinksCmd::Set { scim_user, atlassian_username, target, new } => {
            let v = backend.links_set(config, scim_user, atlassian_username, target, *new).await?;
            let previous = v.get("previous").and_then(Value::as_str).map(|p| format!(" (was {p})")).unwrap_or_default();
            println!(
                "Linked {} to {} on {}{previous}; {} held delivery(ies) released.",
                s(&v, "user_name"),
                s(&v, "username"),
                s(&v, "target"),
                s(&v, "released")
            );
        }
        LinksCmd::Clear { scim_user, target } => {
            let v = backend.links_clear(config, scim_user, target).await?;
            let cleared =
                v.get("cleared").and_then(Value::as_array).ok_or_else(|| anyhow!("the answer has no cleared list"))?;
            for c in cleared {
                println!(
                    "Cleared {} on {} ({}).",
                    s(&v, "user_name"),
                    s(c, "target"),
                    if c["username"].is_null() { "review".to_string() } else { s(c, "username") }
                );
            }
        }
    }
    Ok(())
}
