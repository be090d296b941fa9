//! Commands that read or change the store (`jobs`, `audit`, `token`, `backup`): with a server
//! running they go through its admin API (sled admits one process; the client is `cli_remote.rs`),
//! otherwise they open the store directly. Both paths call the same functions in `admin.rs`, so
//! the answer is the same. No command here creates a store.

use anyhow::{anyhow, bail, Context};
use reqwest::Method;
use serde_json::Value;

use crate::admin::{self, JobFilter};
use crate::cli_remote::{store_exists, RemoteApi};
use crate::config::Config;
use crate::store::{Operator, Store, OPERATOR_HEADER};

/// Where a command's data comes from.
pub enum Backend {
    Local(Store),
    /// A running server's admin API (see `cli_remote.rs`): answers are checked strictly.
    Remote(RemoteApi),
}

impl Backend {
    /// The admin API of `--server URL` when given; else the store, or, when a running server
    /// holds it, that server's admin API. Never creates a store: where there is none, the error
    /// names the path and how to point at the right one.
    ///
    /// # Errors
    /// No store at `data_dir`, or a store held by another process and no way to its admin API.
    pub fn connect(config: &Config) -> anyhow::Result<Backend> {
        if let Some(url) = &config.server {
            return Ok(Backend::Remote(RemoteApi::explicit(url, config)?));
        }
        if !store_exists(&config.data_dir) {
            return Err(crate::cli_remote::no_store(&config.data_dir));
        }
        match Store::open_with_cache(&config.data_dir, config.cache_bytes) {
            Ok(store) => {
                // Notices a local run raises (a user's warning...) are kept for `serve` to send.
                store.want_notices(config.notify.kept_events(&config.missing_credentials));
                store.set_guard(config.guard);
                Ok(Backend::Local(store))
            }
            Err(e) if e.is_locked() => Ok(Backend::Remote(RemoteApi::discovered(config)?)),
            Err(e) => Err(anyhow!("cannot open the store in {}: {e}", config.data_dir.display())),
        }
    }

    /// The admin API's JSON answer to `method path` (`Some` always: any answer other than a
    /// 2xx with JSON is an error naming the request and what came back).
    async fn call(&self, method: Method, path: &str) -> anyhow::Result<Option<Value>> {
        let Backend::Remote(api) = self else { bail!("not a remote backend") };
        Ok(Some(api.call(method, path, None).await?))
    }

    /// `call`, then the answer's `field` as an unsigned number.
    async fn call_u64(&self, method: Method, path: &str, field: &str) -> anyhow::Result<u64> {
        let Backend::Remote(api) = self else { bail!("not a remote backend") };
        let v = api.call(method.clone(), path, None).await?;
        v.get(field).and_then(Value::as_u64).ok_or_else(|| {
            crate::cli_remote::unexpected(
                &method,
                &format!("{}{path}", api.base()),
                &format!("a \"{field}\" number"),
                &v,
            )
        })
    }

    pub async fn jobs(&self, filter: JobFilter, state: &str) -> anyhow::Result<Vec<Value>> {
        match self {
            Backend::Local(s) => Ok(admin::list_jobs(s, filter)?),
            Backend::Remote(api) => api.list(Method::GET, &format!("/jobs?state={}", url_encode(state)), "jobs").await,
        }
    }

    pub async fn job(&self, id: u64) -> anyhow::Result<Option<Value>> {
        match self {
            Backend::Local(s) => Ok(admin::show_job(s, id)?),
            Backend::Remote { .. } => self.call(Method::GET, &format!("/jobs/{id}")).await,
        }
    }

    pub async fn retry(&self, id: u64, force: bool) -> anyhow::Result<admin::Retry> {
        match self {
            Backend::Local(s) => Ok(admin::retry_job(s, id, force, &Operator::cli())?),
            // A superseded job is a 409 whose detail says by which job: `call` reports it.
            Backend::Remote { .. } => Ok(self
                .call(reqwest::Method::POST, &format!("/jobs/{id}/retry?force={force}"))
                .await?
                .and_then(|b| b.get("job").and_then(Value::as_u64))
                .map_or(admin::Retry::NotFound, admin::Retry::Queued)),
        }
    }

    pub async fn retry_all(&self, target: Option<&str>) -> anyhow::Result<admin::RetryAll> {
        match self {
            Backend::Local(s) => Ok(admin::retry_all(s, target, &Operator::cli())?),
            Backend::Remote { .. } => {
                let query = target.map(|t| format!("?target={}", url_encode(t))).unwrap_or_default();
                let body = self
                    .call(reqwest::Method::POST, &format!("/jobs/retry{query}"))
                    .await?
                    .ok_or_else(|| anyhow!("the server has no /admin/jobs/retry (an older version?)"))?;
                let pairs = |key: &str, other: &str| -> anyhow::Result<Vec<(u64, u64)>> {
                    body.get(key)
                        .and_then(Value::as_array)
                        .ok_or_else(|| anyhow!("unexpected answer from the server: no '{key}' list"))?
                        .iter()
                        .map(|p| match (p["job"].as_u64(), p[other].as_u64()) {
                            (Some(a), Some(b)) => Ok((a, b)),
                            _ => Err(anyhow!("unexpected answer from the server: {p}")),
                        })
                        .collect()
                };
                Ok(admin::RetryAll {
                    retried: pairs("retried", "as")?,
                    superseded: pairs("superseded", "superseded_by")?,
                })
            }
        }
    }

    pub async fn drop_job(&self, id: u64) -> anyhow::Result<bool> {
        match self {
            Backend::Local(s) => Ok(admin::drop_job(s, id, &Operator::cli())?),
            Backend::Remote { .. } => {
                self.call_u64(Method::POST, &format!("/jobs/{id}/drop"), "dropped").await?;
                Ok(true)
            }
        }
    }

    /// Everything one run did (see `admin::audit_for_run`).
    pub async fn audit_run(&self, run_id: &str) -> anyhow::Result<Option<Vec<Value>>> {
        match self {
            Backend::Local(s) => Ok(admin::audit_for_run(s, run_id)?),
            Backend::Remote { .. } => Ok(self
                .call(reqwest::Method::GET, &format!("/audit?run={}", url_encode(run_id)))
                .await?
                .and_then(|b| b.get("records").and_then(Value::as_array).cloned())),
        }
    }

    pub async fn audit(&self, user: &str) -> anyhow::Result<Option<Vec<Value>>> {
        match self {
            Backend::Local(s) => Ok(admin::audit_for_user(s, user)?),
            Backend::Remote(api) => {
                Ok(Some(api.list(Method::GET, &format!("/audit?user={}", url_encode(user)), "records").await?))
            }
        }
    }
}

impl Backend {
    /// Writes a consistent backup of the whole store to `path` (through a temporary file, so a
    /// failed backup never leaves a partial file under the final name).
    pub async fn backup(&self, path: &std::path::Path) -> anyhow::Result<crate::store::BackupStats> {
        let tmp = path.with_extension("partial");
        let result = async {
            match self {
                Backend::Local(s) => {
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
                    Ok(s.backup(&mut f, &crate::http::now())?)
                }
                Backend::Remote(api) => {
                    use tokio::io::AsyncWriteExt;
                    let mut res = api.stream("/backup", "application/x-ndjson").await?;
                    let mut f = tokio::fs::File::create(&tmp).await?;
                    while let Some(chunk) = res.chunk().await? {
                        f.write_all(&chunk).await?;
                    }
                    f.flush().await?;
                    let text = std::fs::read_to_string(&tmp)?;
                    let last: Value =
                        text.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null);
                    if last["end"] != true {
                        bail!("the backup stream ended early");
                    }
                    let entries = last["entries"].as_u64().unwrap_or(0);
                    Ok(crate::store::BackupStats { trees: 0, entries })
                }
            }
        }
        .await;
        match result {
            Ok(stats) => {
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("while moving the backup to {}", path.display()))?;
                Ok(stats)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e.context(format!("the backup to {} failed", path.display())))
            }
        }
    }
}

impl Backend {
    /// Issues a token; returns it (shown once).
    pub async fn token_new(&self, name: &str, scope: crate::auth::Scope) -> anyhow::Result<String> {
        match self {
            Backend::Local(store) => {
                if name.starts_with("env:") {
                    bail!("token names starting with env: are reserved for tokens from the environment");
                }
                if store.tokens()?.iter().any(|t| t.name == name) {
                    bail!("a token named '{name}' exists; revoke it first or pick another --name");
                }
                let auth = crate::auth::TokenAuth::new(store.clone(), &[], &[]);
                let token = auth.issue(name, scope, &crate::http::now())?.expose().to_string();
                let details = serde_json::json!({"token": name, "scope": scope.as_str()});
                admin::record_action(store, &Operator::cli(), &admin::token_subject(name), "token_new", details)?;
                Ok(token)
            }
            Backend::Remote(api) => {
                let path = format!("/tokens?name={}&scope={}", url_encode(name), scope.as_str());
                let body = api.call(Method::POST, &path, None).await?;
                body.get("token").and_then(Value::as_str).map(str::to_string).ok_or_else(|| {
                    crate::cli_remote::unexpected(&Method::POST, &format!("{}{path}", api.base()), "a \"token\"", &body)
                })
            }
        }
    }

    /// Token names, scopes and creation times: the stored ones, then the environment's
    /// (`env:VAR#n`; locally this shell's, through a server the server's).
    pub async fn token_list(&self, config: &Config) -> anyhow::Result<Vec<(String, String, String)>> {
        let rows = match self {
            Backend::Local(store) => crate::admin_tokens::list(store, &config.env_tokens)?,
            Backend::Remote(api) => api.list(Method::GET, "/tokens", "tokens").await?,
        };
        rows.iter()
            .map(|t| {
                let f = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
                match (f("name"), f("scope"), f("created")) {
                    (Some(n), Some(s), Some(c)) => Ok((n, s, c)),
                    _ => Err(anyhow!("a token in the answer lacks name, scope or created: {t}")),
                }
            })
            .collect()
    }

    /// Revokes a stored token. Says (as an error) when there is none by that name, when the
    /// name is an environment token's, and when the same value stays accepted from the
    /// environment.
    pub async fn token_revoke(&self, config: &Config, name: &str) -> anyhow::Result<()> {
        use crate::admin_tokens::{revoke, still_in_environment, Revoke};
        let (outcome, whose) = match self {
            Backend::Local(store) => {
                let outcome = revoke(store, &config.env_tokens, name)?;
                if matches!(outcome, Revoke::Revoked { .. }) {
                    let details = serde_json::json!({"token": name});
                    admin::record_action(
                        store,
                        &Operator::cli(),
                        &admin::token_subject(name),
                        "token_revoke",
                        details,
                    )?;
                }
                (outcome, "this shell's")
            }
            Backend::Remote(api) => {
                let v = api.call(Method::DELETE, &format!("/tokens/{}", url_encode(name)), None).await?;
                let also = v.get("also_in_environment").and_then(Value::as_array).ok_or_else(|| {
                    let url = format!("{}/tokens/{}", api.base(), url_encode(name));
                    crate::cli_remote::unexpected(&Method::DELETE, &url, "\"also_in_environment\"", &v)
                })?;
                let names = also.iter().filter_map(Value::as_str).map(str::to_string).collect();
                (Revoke::Revoked { also_in_environment: names }, "the server's")
            }
        };
        match outcome {
            Revoke::Revoked { also_in_environment } if also_in_environment.is_empty() => Ok(()),
            Revoke::Revoked { also_in_environment } => bail!(still_in_environment(name, &also_in_environment, whose)),
            Revoke::NotFound => bail!("no stored token named '{name}' (`scimbridge token list` shows them)"),
            Revoke::FromEnvironment { variable } => bail!(
                "'{name}' comes from the environment variable {variable}, which cannot be revoked here: remove it \
                 from {variable} where the server runs and restart it"
            ),
        }
    }
}

/// Names the local user (`$USER`, else `$LOGNAME`) in the operator header of an admin API
/// request, so the server records the person as well as the token. A name the server would
/// refuse is left out rather than failing the command.
pub(crate) fn forward_operator(rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match crate::store::local_user().filter(|u| Operator::from_admin("", Some(u)).is_ok()) {
        Some(user) => rb.header(OPERATOR_HEADER, user),
        None => rb,
    }
}

/// Percent-encodes a query or path value (RFC 3986 unreserved characters pass through).
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One line per job for `jobs list`.
pub fn job_line(j: &Value) -> String {
    let i = &j["intent"];
    format!(
        // Under the header's `attempts` column: the bare number, so the TSV sorts and filters.
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        j["seq"],
        j["state"].as_str().unwrap_or(""),
        i["target"].as_str().unwrap_or(""),
        i["username"].as_str().unwrap_or(""),
        i["action"]["type"].as_str().unwrap_or(""),
        i["trigger"].as_str().unwrap_or(""),
        j["attempts"],
        match (j["superseded_by"].as_u64(), j["state"].as_str()) {
            (Some(by), _) => format!("superseded by job {by}"),
            (None, Some(crate::store::HELD_STATE)) => {
                "waiting for a link review (`scimbridge links list`, then `links set` or `links clear`)".to_string()
            }
            (None, _) => j["last_error"].as_str().unwrap_or("").to_string(),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(url_encode("a b@x.com"), "a%20b%40x.com");
    }

    #[test]
    fn a_job_line_has_one_bare_value_under_each_header_column() {
        let job = serde_json::json!({
            "seq": 7, "state": "dead", "attempts": 15, "last_error": "503",
            "intent": {"target": "jira", "username": "ann", "action": {"type": "deactivate"}, "trigger": "disabled"},
        });
        let cols: Vec<String> = job_line(&job).split('\t').map(str::to_string).collect();
        assert_eq!(cols, ["7", "dead", "jira", "ann", "deactivate", "disabled", "15", "503"]);
    }
}
