//! `scimbridge held …` (issue 12 §1): `list`, `approve [--all | ID…]`, `reject [--all | ID…]`. With
//! a server running they go through its admin API (`/admin/held…`), otherwise they open the
//! store and call the same functions (`admin_held.rs`), so both give one answer.

use anyhow::{anyhow, bail};
use serde_json::{json, Value};

use crate::admin_held::{self, Selection};
use crate::cli::Backend;
use crate::config::Config;
use crate::store::Operator;

/// `scimbridge held …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum HeldCmd {
    /// The deactivations, deletions, anonymizations and licence removals the mass-offboarding
    /// brake holds, oldest first, and the brake's figures.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deliver held intents (in their original order, not counted by the brake again), as one
    /// audited run.
    Approve(Pick),
    /// Drop held intents without delivering them; the accounts stay as they are (audited).
    Reject(Pick),
}

/// The held jobs to decide on.
#[derive(Debug, Clone, clap::Args)]
pub struct Pick {
    /// Job numbers from `held list`.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub ids: Vec<u64>,
    /// Every held intent.
    #[arg(long)]
    pub all: bool,
}

impl Pick {
    fn selection(&self) -> Selection {
        if self.all {
            Selection::All
        } else {
            Selection::Ids(self.ids.clone())
        }
    }

    fn body(&self) -> Value {
        if self.all {
            json!({"all": true})
        } else {
            json!({"ids": self.ids})
        }
    }
}

/// A refusal of the shared functions reads as the server's would, without its HTTP status.
fn local<T>(r: crate::store::StoreResult<T>) -> anyhow::Result<T> {
    r.map_err(|e| match e {
        crate::store::StoreError::Scim(e) => anyhow!(e.detail),
        other => anyhow::Error::new(other),
    })
}

async fn remote(backend: &Backend, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let Backend::Remote(api) = backend else { bail!("not a remote backend") };
    api.call(method, path, body.as_ref()).await
}

impl Backend {
    /// `held list`.
    ///
    /// # Errors
    /// A store error or the server's refusal.
    pub async fn held_list(&self) -> anyhow::Result<Value> {
        match self {
            Backend::Local(store) => local(admin_held::list(store)),
            Backend::Remote(_) => remote(self, reqwest::Method::GET, "/held", None).await,
        }
    }

    /// `held approve` / `held reject`.
    ///
    /// # Errors
    /// Unknown job numbers (naming them), a store error or the server's refusal.
    pub async fn held_decide(&self, pick: &Pick, approve: bool) -> anyhow::Result<Value> {
        match self {
            Backend::Local(store) => {
                let store = store.clone();
                let which = pick.selection();
                tokio::task::spawn_blocking(move || {
                    local(admin_held::decide(&store, &which, approve, &Operator::cli()))
                })
                .await?
            }
            Backend::Remote(_) => {
                let path = if approve { "/held/approve" } else { "/held/reject" };
                remote(self, reqwest::Method::POST, path, Some(pick.body())).await
            }
        }
    }
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Runs one `held` command and prints its answer.
///
/// # Errors
/// As the backend's, or an answer that is not what the admin API sends.
pub async fn run(config: &Config, cmd: &HeldCmd) -> anyhow::Result<()> {
    let backend = Backend::connect(config)?;
    match cmd {
        HeldCmd::List { json } => {
            let v = backend.held_list().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            let held = v.get("held").and_then(Value::as_array).ok_or_else(|| anyhow!("the answer has no held list"))?;
            let g = v.get("guard").ok_or_else(|| anyhow!("the answer has no guard figures"))?;
            println!("job\ttarget\tusername\taction\ttrigger\theld_since\tactor\trun_id");
            for h in held {
                let action = h.pointer("/intent/action/type").and_then(Value::as_str).unwrap_or_default();
                let intent = h.get("intent").cloned().unwrap_or(Value::Null);
                println!(
                    "{}\t{}\t{}\t{action}\t{}\t{}\t{}\t{}",
                    s(h, "seq"),
                    s(&intent, "target"),
                    s(&intent, "username"),
                    s(&intent, "trigger"),
                    s(h, "enqueued_at"),
                    s(h, "actor"),
                    s(h, "run_id"),
                );
            }
            let limit = g.get("limit").and_then(Value::as_u64).map_or("none (no brake)".to_string(), |l| l.to_string());
            println!(
                "{} held. Brake: {} destructive intents let through in the last {} s, limit {limit}.",
                held.len(),
                s(g, "used"),
                s(g, "window_secs"),
            );
            if !held.is_empty() {
                println!("Deliver them with `scimbridge held approve --all` (or job numbers); drop them with `scimbridge held reject --all`.");
            }
        }
        HeldCmd::Approve(pick) | HeldCmd::Reject(pick) => {
            let approve = matches!(cmd, HeldCmd::Approve(_));
            let v = backend.held_decide(pick, approve).await?;
            let approved = v.get("approved").and_then(Value::as_array);
            let rejected = v.get("rejected").and_then(Value::as_array);
            let (Some(approved), Some(rejected)) = (approved, rejected) else {
                bail!("the answer is not a decision on held intents: {v}");
            };
            for a in approved {
                println!("approved job {} as job {}", s(a, "job"), s(a, "as"));
            }
            for r in rejected {
                println!("rejected job {r}");
            }
            println!(
                "{} approved, {} rejected by {} (run {}); {} still held.",
                approved.len(),
                rejected.len(),
                s(&v, "actor"),
                s(&v, "run_id"),
                s(&v, "still_held")
            );
        }
    }
    Ok(())
}
