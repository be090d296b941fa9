//! Commands that read or change the store (`jobs`, `audit`): with a server running they go
//! through its admin API (sled admits one process), otherwise they open the store directly.
//! Both paths call the same functions in `admin.rs`, so the answer is the same.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use crate::admin::{self, JobFilter};
use crate::config::Config;
use crate::store::{Operator, Store, OPERATOR_HEADER};

/// Where a command's data comes from.
pub enum Backend {
    Local(Store),
    Remote { base: String, token: String, client: reqwest::Client },
}

fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

impl Backend {
    /// Opens the store, or, when a running server holds it, connects to that server's admin API.
    ///
    /// # Errors
    /// When neither works: the store is locked and no admin token is configured, for example.
    pub fn connect(config: &Config) -> anyhow::Result<Backend> {
        match Store::open_with_cache(&config.data_dir, config.cache_bytes) {
            Ok(store) => Ok(Backend::Local(store)),
            Err(open_err) => {
                let token = config.admin_tokens.first().ok_or_else(|| {
                    anyhow!(
                        "cannot open the store in {} ({open_err}); if scimbridge is running, set SCIMBRIDGE_ADMIN_TOKEN so this command can use its admin API",
                        config.data_dir.display()
                    )
                })?;
                Ok(Backend::Remote {
                    base: format!("http://{}/admin", loopback(config.listen)),
                    token: token.expose().to_string(),
                    client: reqwest::Client::new(),
                })
            }
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Option<Value>> {
        let Backend::Remote { base, token, client } = self else { bail!("not a remote backend") };
        let res = forward_operator(client.request(method, format!("{base}{path}")).bearer_auth(token))
            .send()
            .await
            .with_context(|| format!("while calling the running server at {base}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            bail!("the server answered {status}: {}", body.get("detail").and_then(Value::as_str).unwrap_or(""));
        }
        Ok(Some(body))
    }

    pub async fn jobs(&self, filter: JobFilter, state: &str) -> anyhow::Result<Vec<Value>> {
        match self {
            Backend::Local(s) => Ok(admin::list_jobs(s, filter)?),
            Backend::Remote { .. } => Ok(self
                .call(reqwest::Method::GET, &format!("/jobs?state={state}"))
                .await?
                .and_then(|b| b.get("jobs").and_then(Value::as_array).cloned())
                .unwrap_or_default()),
        }
    }

    pub async fn job(&self, id: u64) -> anyhow::Result<Option<Value>> {
        match self {
            Backend::Local(s) => Ok(admin::show_job(s, id)?),
            Backend::Remote { .. } => self.call(reqwest::Method::GET, &format!("/jobs/{id}")).await,
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
                Ok(self.call(reqwest::Method::POST, &format!("/jobs/{id}/drop")).await?.is_some())
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
            Backend::Remote { .. } => {
                let q: String = url_encode(user);
                Ok(self
                    .call(reqwest::Method::GET, &format!("/audit?user={q}"))
                    .await?
                    .and_then(|b| b.get("records").and_then(Value::as_array).cloned()))
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
                Backend::Remote { base, token, client } => {
                    use tokio::io::AsyncWriteExt;
                    let mut res = client.get(format!("{base}/backup")).bearer_auth(token).send().await?;
                    if !res.status().is_success() {
                        bail!("the server answered {}", res.status());
                    }
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
                Err(e)
            }
        }
    }
}

impl Backend {
    /// Issues a token; returns it (shown once).
    pub async fn token_new(&self, name: &str, scope: crate::auth::Scope) -> anyhow::Result<String> {
        match self {
            Backend::Local(store) => {
                if store.tokens()?.iter().any(|t| t.name == name) {
                    bail!("a token named '{name}' exists; revoke it first or pick another --name");
                }
                let auth = crate::auth::TokenAuth::new(store.clone(), &[], &[]);
                let token = auth.issue(name, scope, &crate::http::now())?.expose().to_string();
                let details = serde_json::json!({"token": name, "scope": scope.as_str()});
                admin::record_action(store, &Operator::cli(), &admin::token_subject(name), "token_new", details)?;
                Ok(token)
            }
            Backend::Remote { .. } => {
                let path = format!("/tokens?name={}&scope={}", url_encode(name), scope.as_str());
                let body = self
                    .call(reqwest::Method::POST, &path)
                    .await?
                    .ok_or_else(|| anyhow!("the server has no token API"))?;
                body.get("token")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("no token in the answer"))
            }
        }
    }

    /// Token names, scopes and creation times.
    pub async fn token_list(&self) -> anyhow::Result<Vec<(String, String, String)>> {
        let rows = match self {
            Backend::Local(store) => store.tokens()?.into_iter().map(|t| (t.name, t.scope, t.created)).collect(),
            Backend::Remote { .. } => self
                .call(reqwest::Method::GET, "/tokens")
                .await?
                .and_then(|b| b.get("tokens").and_then(Value::as_array).cloned())
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    let f = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    (f("name"), f("scope"), f("created"))
                })
                .collect(),
        };
        Ok(rows)
    }

    /// Revokes a token; false if there was none by that name.
    pub async fn token_revoke(&self, name: &str) -> anyhow::Result<bool> {
        match self {
            Backend::Local(store) => {
                let revoked = store.revoke_token(name)?;
                if revoked {
                    let details = serde_json::json!({"token": name});
                    admin::record_action(
                        store,
                        &Operator::cli(),
                        &admin::token_subject(name),
                        "token_revoke",
                        details,
                    )?;
                }
                Ok(revoked)
            }
            Backend::Remote { .. } => {
                Ok(self.call(reqwest::Method::DELETE, &format!("/tokens/{}", url_encode(name))).await?.is_some())
            }
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
        "{}\t{}\t{}\t{}\t{}\t{}\tattempts={}\t{}",
        j["seq"],
        j["state"].as_str().unwrap_or(""),
        i["target"].as_str().unwrap_or(""),
        i["username"].as_str().unwrap_or(""),
        i["action"]["type"].as_str().unwrap_or(""),
        i["trigger"].as_str().unwrap_or(""),
        j["attempts"],
        match j["superseded_by"].as_u64() {
            Some(by) => format!("superseded by job {by}"),
            None => j["last_error"].as_str().unwrap_or("").to_string(),
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
    fn an_unspecified_listen_address_is_reached_on_loopback() {
        assert_eq!(loopback("0.0.0.0:8080".parse().expect("addr")).to_string(), "127.0.0.1:8080");
    }
}
