//! One typed `Config`: built-in defaults, then the TOML file (`--config` or `SCIMBRIDGE_CONFIG`),
//! then `SCIMBRIDGE_*` environment variables. Validated purely into a value before anything is
//! opened; every problem is reported with its key and how to fix it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::Deserialize;

use crate::atlassian::{Auth, Connector, TargetError, TargetSpec};
use crate::policy::{Credentials, Policy, PolicyConfig, TargetConfig, TargetPolicy};
use crate::secret::{placeholder_reason, Secret};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Where cleanup, licence, bulk and reconcile runs write their CSV and JSON reports.
pub const DEFAULT_REPORTS_DIR: &str = "./reports";
/// Memory for the embedded store's caches (why this size: `store::DEFAULT_CACHE_BYTES`).
pub const DEFAULT_CACHE_MB: u64 = crate::store::DEFAULT_CACHE_BYTES >> 20;

/// Below this the store thrashes on its own index pages; above it is a typo (1 TiB).
const MIN_CACHE_MB: u64 = 8;
const MAX_CACHE_MB: u64 = 1 << 20;

/// Environment variables this program reads; any other `SCIMBRIDGE_*` name draws a warning.
pub const ENV_VARS: &[&str] = &[
    "SCIMBRIDGE_CONFIG",
    "SCIMBRIDGE_LISTEN",
    "SCIMBRIDGE_DATA_DIR",
    "SCIMBRIDGE_TOKEN",
    "SCIMBRIDGE_ADMIN_TOKEN",
    "SCIMBRIDGE_PUBLIC_URL",
    "SCIMBRIDGE_LOG_FORMAT",
    "SCIMBRIDGE_LOG",
    "SCIMBRIDGE_MAX_BODY_BYTES",
    "SCIMBRIDGE_CACHE_MB",
    "SCIMBRIDGE_REPORTS_DIR",
    // Read by the CLI's global flags (`--server`, `--ca`), not by the server.
    "SCIMBRIDGE_SERVER",
    "SCIMBRIDGE_CA",
    // The variable the documented `[notify.smtp] url_env` names (read only when named there).
    "SCIMBRIDGE_SMTP_URL",
];

/// The file as written. Unknown keys are errors, so a typo fails at start.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// Address to listen on, `host:port`.
    pub listen: Option<String>,
    /// Folder of the embedded store.
    pub data_dir: Option<PathBuf>,
    /// Memory for the embedded store's caches, MiB. Reads that miss them go to disk; raise it
    /// with the number of users when memory allows.
    pub cache_mb: Option<u64>,
    /// Folder for the CSV and JSON reports of cleanup, licence, bulk and reconcile runs (the
    /// CLI's `--out` wins); on a read-only root filesystem, a folder on the data volume.
    pub reports_dir: Option<PathBuf>,
    /// The URL IdPs reach this server at (for `Location` and `meta.location`), e.g.
    /// `https://scim.example.com`. Defaults to the request's scheme and Host.
    pub public_url: Option<String>,
    /// Name of an environment variable holding IdP bearer tokens (comma-separated).
    pub token_env: Option<String>,
    /// Name of an environment variable holding admin API tokens (comma-separated).
    pub admin_token_env: Option<String>,
    /// Serve the admin API and `/metrics` only on this separate address (e.g. `127.0.0.1:9090`),
    /// never on `listen`.
    pub admin_listen: Option<String>,
    /// Proxies whose `X-Forwarded-For`/`-Proto`/`-Host` are believed (addresses or networks);
    /// from anyone else those headers are ignored.
    pub trusted_proxies: Vec<String>,
    pub limits: LimitsFile,
    pub log: LogFile,
    /// `[tls]`: serve HTTPS directly (otherwise plain HTTP behind a TLS-terminating proxy).
    pub tls: Option<TlsFile>,
    /// Atlassian targets (`[[target]]` blocks); none = record and log only.
    pub target: Vec<TargetConfig>,
    pub policy: PolicyConfig,
    /// OAuth issuers whose JWT bearer tokens the SCIM API accepts (`[[jwt]]` blocks).
    pub jwt: Vec<crate::auth::JwtFile>,
    pub delivery: DeliveryFile,
    /// `[cleanup]`, `[license]`, `[reconcile]`, `[activity]`: the lifecycle jobs (issue 4).
    pub cleanup: crate::lifecycle::CleanupFile,
    pub license: crate::lifecycle::LicenseFile,
    pub reconcile: crate::lifecycle::JobFile,
    pub activity: crate::lifecycle::JobFile,
    /// `[groups]`: how IdP groups become Atlassian groups (issue 9).
    pub groups: crate::policy::GroupsFile,
    /// `[[group_map]]`: IdP group → Atlassian group name, per target.
    pub group_map: Vec<crate::policy::GroupMapFile>,
    /// `[notify]`, `[notify.smtp]`, `[[notify.webhook]]`: notifications (issue 12 §4).
    pub notify: crate::notify::NotifyFile,
    /// `[retention]`: days audit records and run reports are kept (issue 11).
    pub retention: crate::retention::RetentionFile,
    /// `[guard]`: the mass-offboarding brake (issue 12).
    pub guard: crate::guard::GuardFile,
}

/// `[delivery]`: how the outbox worker retries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryFile {
    /// How many users' intents are delivered at the same time.
    pub concurrency: Option<usize>,
    /// Attempts before an intent becomes a dead letter.
    pub max_attempts: Option<u32>,
    /// Age after which a still-failing intent becomes a dead letter.
    pub max_age_secs: Option<u64>,
    /// First retry delay; doubles per attempt, with jitter.
    pub backoff_initial_ms: Option<u64>,
    /// Longest retry delay.
    pub backoff_max_secs: Option<u64>,
    /// How long one attempt follows a long target task (Jira anonymization, Confluence user
    /// deletion) before freeing the user's lane; the next attempt resumes following it.
    pub long_task_wait_secs: Option<u64>,
    /// While a target is down, one health probe this often (issue 11).
    pub probe_interval_secs: Option<u64>,
    /// Failures in a row that mean the target is down (no answer, timeouts, 5xx).
    pub down_after_failures: Option<u32>,
}

/// Validated `[delivery]` settings.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub max_age: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub long_task_wait: Duration,
    pub probe_interval: Duration,
    pub down_after_failures: u32,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            concurrency: 16,
            max_attempts: 15,
            max_age: Duration::from_secs(3 * 24 * 3600),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(300),
            long_task_wait: crate::atlassian::PollPolicy::default().deadline,
            probe_interval: Duration::from_secs(5),
            down_after_failures: 3,
        }
    }
}

/// A target with its credentials read from the environment.
#[derive(Debug, Clone)]
pub struct Target {
    pub spec: TargetSpec,
    pub license_groups: Vec<String>,
    /// Jira `lead_successor` (validated: Jira only, non-empty).
    pub lead_successor: Option<String>,
    /// Jira: `anonymize_new_owner`, the username that takes over what an anonymized user owned.
    pub anonymize_new_owner: Option<String>,
}

impl Target {
    /// What the connector needs when a product refuses to deactivate (`atlassian/fallback.rs`).
    pub fn offboarding(&self, policy: &Policy) -> crate::atlassian::Offboarding {
        crate::atlassian::Offboarding {
            license_groups: self.license_groups.clone(),
            lead_successor: self.lead_successor.clone(),
            protected_groups: policy.protected_groups.clone(),
        }
    }

    /// The connector for this target with every per-target option applied.
    ///
    /// # Errors
    /// As [`Connector::new`].
    pub fn connector(&self) -> Result<Connector, TargetError> {
        Ok(Connector::new(self.spec.clone())?.with_anonymize_new_owner(self.anonymize_new_owner.clone()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsFile {
    pub max_body_bytes: Option<usize>,
    pub max_results: Option<usize>,
    pub bulk_max_operations: Option<usize>,
    pub bulk_max_payload_bytes: Option<usize>,
    pub max_filter_length: Option<usize>,
    /// Per-credential request rate; 0 (the default) is off, because Entra ID quarantines an app
    /// that throttles it. Set it when the endpoint faces untrusted networks.
    pub requests_per_second: Option<f64>,
    /// Requests a credential may make at once above the rate.
    pub burst: Option<f64>,
    /// Failed authentications allowed per client address per minute, then 429.
    pub auth_failures_per_minute: Option<f64>,
    /// Longest request target (path and query), in bytes; longer is 414.
    pub max_url_bytes: Option<usize>,
    /// Largest total of request header bytes; larger is 431.
    pub max_header_bytes: Option<usize>,
    /// Longest time a client may take to send a request body.
    pub request_timeout_secs: Option<u64>,
}

/// `[tls]`: PEM files, re-read on SIGHUP without dropping connections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// Certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogFile {
    /// `pretty` or `json`.
    pub format: Option<String>,
    /// Replace usernames in log lines with a short hash (the audit log keeps them).
    pub redact_personal_data: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Request and protocol limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_results: usize,
    pub bulk_max_operations: usize,
    pub bulk_max_payload_bytes: usize,
    pub max_filter_length: usize,
    pub requests_per_second: f64,
    pub burst: f64,
    pub auth_failures_per_minute: f64,
    pub max_url_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_results: 1000,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1024 * 1024,
            max_filter_length: 4096,
            requests_per_second: 0.0,
            burst: 0.0,
            auth_failures_per_minute: 30.0,
            max_url_bytes: 8192,
            max_header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Memory for the store's caches in bytes (sled's page cache and the record cache).
    pub cache_bytes: u64,
    /// Where lifecycle runs write their reports unless `--out` says otherwise.
    pub reports_dir: PathBuf,
    pub public_url: Option<String>,
    pub admin_listen: Option<SocketAddr>,
    pub trusted_proxies: Vec<crate::http::Cidr>,
    /// Certificate and key files when serving TLS directly.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// IdP bearer tokens given in configuration (in addition to the ones stored hashed).
    pub tokens: Vec<Secret>,
    pub admin_tokens: Vec<Secret>,
    pub limits: Limits,
    pub log_format: LogFormat,
    pub redact_personal_data: bool,
    pub policy: Policy,
    pub target_policies: Vec<TargetPolicy>,
    pub targets: Vec<Target>,
    /// Validated `[[jwt]]` issuers.
    pub jwt: Vec<crate::auth::JwtIssuer>,
    pub delivery: Delivery,
    pub lifecycle: crate::lifecycle::LifecycleConfig,
    /// Validated `[notify]`: the channels whose variables are set (the others are in
    /// `missing_credentials` under `[notify]`).
    pub notify: crate::notify::NotifyConfig,
    /// `[retention]`: days audit records and run reports are kept (0 = forever).
    pub retention: crate::retention::Retention,
    /// `[guard]`: the mass-offboarding brake.
    pub guard: crate::guard::Guard,
    /// Tokens given in the environment (`SCIMBRIDGE_TOKEN`, `SCIMBRIDGE_ADMIN_TOKEN`, `token_env`,
    /// `admin_token_env`), named `env:VAR#n`, so `token list` can show them and `token revoke`
    /// can say when a value also comes from there.
    pub env_tokens: Vec<EnvToken>,
    /// Targets left out of `targets` because their credential variable is not set, and an
    /// unusable `[tls]` key (as `"[tls]"`). Only what uses them needs them (`serve`,
    /// `check-config`, local lifecycle runs): see [`Config::require_credentials`].
    pub missing_credentials: Vec<(String, ConfigIssue)>,
    /// The CLI's `--server URL` / `SCIMBRIDGE_SERVER` (set by `main`, never by the file).
    pub server: Option<String>,
    /// The CLI's `--ca FILE` / `SCIMBRIDGE_CA`: more certificates to trust for `server`.
    pub ca_file: Option<PathBuf>,
}

/// A token from an environment variable.
#[derive(Debug, Clone)]
pub struct EnvToken {
    /// `env:VAR#n`: the variable and the token's place in its comma-separated list.
    pub name: String,
    pub scope: crate::auth::Scope,
    pub secret: Secret,
}

impl Config {
    /// Fails unless every target's credential is set, or only `target`'s when one is named.
    ///
    /// # Errors
    /// `ConfigError::Invalid` naming each missing variable.
    pub fn require_credentials(&self, target: Option<&str>) -> Result<(), ConfigError> {
        let missing: Vec<ConfigIssue> = self
            .missing_credentials
            .iter()
            .filter(|(name, _)| target.is_none_or(|t| t.eq_ignore_ascii_case(name)))
            .map(|(_, i)| i.clone())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(missing))
        }
    }

    /// Every configured target's name, in file order, also those whose credential is not in
    /// this environment (they are left out of `targets`): commands that never call a target
    /// (`links list`, `links clear`, `jobs retry --target`) still know them.
    pub fn target_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.targets.iter().map(|t| t.spec.name.clone()).collect();
        let mut missing: Vec<(usize, String)> = self
            .missing_credentials
            .iter()
            .filter_map(|(name, i)| {
                let index = i.key.strip_prefix("target[")?.split(']').next()?.parse::<usize>().ok()?;
                Some((index, name.clone()))
            })
            .collect();
        missing.sort();
        missing.dedup();
        // Inserted in ascending file index, each lands at its own place.
        for (index, name) in missing {
            names.insert(index.min(names.len()), name);
        }
        names
    }
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML for scimbridge: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration:\n{}", .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigIssue>),
}

/// Where settings come from, so tests can pass their own environment.
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: &'a BTreeMap<String, String>,
}

/// The process environment's `SCIMBRIDGE_*` variables.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars().filter(|(k, _)| k.starts_with("SCIMBRIDGE_")).collect()
}

/// `SCIMBRIDGE_*` variables this build does not know (likely typos).
pub fn unknown_env_vars(env: &BTreeMap<String, String>) -> Vec<String> {
    env.keys().filter(|k| k.starts_with("SCIMBRIDGE_") && !ENV_VARS.contains(&k.as_str())).cloned().collect()
}

/// Reads and validates the configuration.
///
/// # Errors
/// An unreadable or unparsable file, or every invalid setting with its key and reason.
pub fn load(src: &Sources<'_>) -> Result<Config, ConfigError> {
    let file_path = src.file.map(Path::to_path_buf).or_else(|| src.env.get("SCIMBRIDGE_CONFIG").map(PathBuf::from));
    let file = match &file_path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read { path: p.clone(), source: e })?;
            parse_file(&text).map_err(|message| ConfigError::Parse { path: p.clone(), message })?
        }
        None => FileConfig::default(),
    };
    validate(file, src.env)
}

/// Parses TOML text.
///
/// # Errors
/// The TOML error message, which names the line and the unknown or mistyped key.
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// A variable from the given environment map, else from the process environment (target
/// credentials use arbitrary variable names, not only `SCIMBRIDGE_*`).
fn lookup(env: &BTreeMap<String, String>, var: &str) -> Option<String> {
    env.get(var).cloned().or_else(|| std::env::var(var).ok())
}

fn split_tokens(s: &str) -> Vec<Secret> {
    s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(Secret::new).collect()
}

/// Turns the file plus environment into a `Config`, collecting every issue.
///
/// # Errors
/// `ConfigError::Invalid` listing each problem.
pub fn validate(file: FileConfig, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
    let mut issues = Vec::new();
    let mut issue = |key: &str, reason: String| issues.push(ConfigIssue { key: key.to_string(), reason });

    let (listen_key, listen_text) = match env.get("SCIMBRIDGE_LISTEN") {
        Some(v) => ("SCIMBRIDGE_LISTEN", v.clone()),
        None => ("listen", file.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.to_string())),
    };
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            issue(
                listen_key,
                format!("'{listen_text}' is not host:port with an IP address, for example listen = \"0.0.0.0:8080\""),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };
    let data_dir = env
        .get("SCIMBRIDGE_DATA_DIR")
        .map(PathBuf::from)
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if data_dir.as_os_str().is_empty() {
        issue("data_dir", "must not be empty, for example data_dir = \"/var/lib/scimbridge\"".into());
    }
    let reports_dir = env
        .get("SCIMBRIDGE_REPORTS_DIR")
        .map(PathBuf::from)
        .or(file.reports_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_REPORTS_DIR));
    if reports_dir.as_os_str().is_empty() {
        issue("reports_dir", "must not be empty, for example reports_dir = \"/var/lib/scimbridge/reports\"".into());
    }
    let cache_mb = whole_number(env, "SCIMBRIDGE_CACHE_MB", "MiB", file.cache_mb, DEFAULT_CACHE_MB, &mut issue);
    if !(MIN_CACHE_MB..=MAX_CACHE_MB).contains(&cache_mb) {
        issue(
            "cache_mb",
            format!("{cache_mb} is outside {MIN_CACHE_MB}..={MAX_CACHE_MB} MiB; the default is {DEFAULT_CACHE_MB}"),
        );
    }
    let admin_listen = match &file.admin_listen {
        None => None,
        Some(a) => match a.parse::<SocketAddr>() {
            Ok(addr) if addr == listen => {
                issue("admin_listen", "must differ from listen; leave it out to serve the admin API on listen".into());
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                issue(
                    "admin_listen",
                    format!("'{a}' is not host:port with an IP address, for example admin_listen = \"127.0.0.1:9090\""),
                );
                None
            }
        },
    };
    let tls = file.tls.as_ref().map(|t| (t.cert_file.clone(), t.key_file.clone()));
    // Like a target's credential, the private key is needed only to serve: an operator who may
    // read the certificate but not the key still runs `jobs`, `audit`… against the server.
    let mut missing_credentials: Vec<(String, ConfigIssue)> = Vec::new();
    if let Some((cert, key)) = &tls {
        if let Err(e) = crate::http::tls::load_certified_key(cert, key) {
            let reason =
                format!("{e}; cert_file and key_file must be readable PEM files of one certificate and its key");
            missing_credentials.push(("[tls]".into(), ConfigIssue { key: "tls.cert_file".into(), reason }));
        }
    }
    let mut trusted_proxies = Vec::new();
    for (i, p) in file.trusted_proxies.iter().enumerate() {
        match p.parse::<crate::http::Cidr>() {
            Ok(c) => trusted_proxies.push(c),
            Err(e) => issue(&format!("trusted_proxies[{i}]"), e),
        }
    }
    let public_url =
        env.get("SCIMBRIDGE_PUBLIC_URL").cloned().or(file.public_url).map(|u| u.trim_end_matches('/').to_string());
    if let Some(u) = &public_url {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            issue("public_url", format!("'{u}' must start with https:// (or http:// behind a proxy), for example public_url = \"https://scim.example.com\""));
        }
    }
    let mut env_tokens: Vec<EnvToken> = Vec::new();
    let mut from_var = |var: &str, value: &str, scope: crate::auth::Scope| {
        let list = split_tokens(value);
        for (i, t) in list.iter().enumerate() {
            env_tokens.push(EnvToken { name: format!("env:{var}#{}", i + 1), scope, secret: t.clone() });
        }
        list
    };
    let mut tokens = env
        .get("SCIMBRIDGE_TOKEN")
        .map(|s| from_var("SCIMBRIDGE_TOKEN", s, crate::auth::Scope::Scim))
        .unwrap_or_default();
    if let Some(var) = &file.token_env {
        match lookup(env, var) {
            Some(v) => tokens.extend(from_var(var, &v, crate::auth::Scope::Scim)),
            None => issue("token_env", format!("environment variable {var} is not set")),
        }
    }
    let mut admin_tokens = env
        .get("SCIMBRIDGE_ADMIN_TOKEN")
        .map(|s| from_var("SCIMBRIDGE_ADMIN_TOKEN", s, crate::auth::Scope::Admin))
        .unwrap_or_default();
    if let Some(var) = &file.admin_token_env {
        match lookup(env, var) {
            Some(v) => admin_tokens.extend(from_var(var, &v, crate::auth::Scope::Admin)),
            None => issue("admin_token_env", format!("environment variable {var} is not set")),
        }
    }
    // Values shipped as placeholders (deploy/k8s/secret.yaml) would deploy publicly known tokens.
    let token_sources = [
        ("SCIMBRIDGE_TOKEN", Some("SCIMBRIDGE_TOKEN")),
        ("token_env", file.token_env.as_deref()),
        ("SCIMBRIDGE_ADMIN_TOKEN", Some("SCIMBRIDGE_ADMIN_TOKEN")),
        ("admin_token_env", file.admin_token_env.as_deref()),
    ];
    for (key, var) in token_sources {
        let Some(var) = var else { continue };
        let value = if var.starts_with("SCIMBRIDGE_") { env.get(var).cloned() } else { lookup(env, var) };
        if let Some(reason) =
            split_tokens(value.as_deref().unwrap_or("")).iter().find_map(|t| placeholder_reason(t.expose()))
        {
            issue(key, placeholder_message(var, &reason));
        }
    }
    for t in tokens.iter().chain(&admin_tokens) {
        if t.expose().len() < 16 {
            issue(
                "SCIMBRIDGE_TOKEN",
                "a token must be at least 16 characters; `scimbridge token new` makes a strong one".into(),
            );
            break;
        }
    }
    if tokens.iter().any(|t| admin_tokens.contains(t)) {
        issue("SCIMBRIDGE_ADMIN_TOKEN", "the admin token must differ from every IdP token".into());
    }

    let d = Limits::default();
    let max_body_bytes = whole_number(
        env,
        "SCIMBRIDGE_MAX_BODY_BYTES",
        "bytes",
        file.limits.max_body_bytes,
        d.max_body_bytes,
        &mut issue,
    );
    let limits = Limits {
        max_body_bytes,
        max_results: file.limits.max_results.unwrap_or(d.max_results),
        bulk_max_operations: file.limits.bulk_max_operations.unwrap_or(d.bulk_max_operations),
        bulk_max_payload_bytes: file.limits.bulk_max_payload_bytes.unwrap_or(d.bulk_max_payload_bytes),
        max_filter_length: file.limits.max_filter_length.unwrap_or(d.max_filter_length),
        requests_per_second: file.limits.requests_per_second.unwrap_or(d.requests_per_second),
        burst: file.limits.burst.or(file.limits.requests_per_second.map(|r| r * 2.0)).unwrap_or(d.burst),
        auth_failures_per_minute: file.limits.auth_failures_per_minute.unwrap_or(d.auth_failures_per_minute),
        max_url_bytes: file.limits.max_url_bytes.unwrap_or(d.max_url_bytes),
        max_header_bytes: file.limits.max_header_bytes.unwrap_or(d.max_header_bytes),
        request_timeout: file.limits.request_timeout_secs.map(Duration::from_secs).unwrap_or(d.request_timeout),
    };
    if limits.requests_per_second < 0.0 || limits.burst < 0.0 || limits.auth_failures_per_minute <= 0.0 {
        issue("limits.requests_per_second", "rates must not be negative (0 turns the per-credential limit off; auth_failures_per_minute must be above 0)".into());
    }
    if limits.max_url_bytes < 256 || limits.max_header_bytes < 1024 || limits.request_timeout.is_zero() {
        issue(
            "limits.max_url_bytes",
            "max_url_bytes must be at least 256, max_header_bytes at least 1024, request_timeout_secs above 0".into(),
        );
    }
    for (key, v) in [
        ("limits.max_body_bytes", limits.max_body_bytes),
        ("limits.max_results", limits.max_results),
        ("limits.bulk_max_operations", limits.bulk_max_operations),
        ("limits.bulk_max_payload_bytes", limits.bulk_max_payload_bytes),
        ("limits.max_filter_length", limits.max_filter_length),
    ] {
        if v == 0 {
            issue(key, "must be greater than 0".into());
        }
    }
    let log_format = match env.get("SCIMBRIDGE_LOG_FORMAT").cloned().or(file.log.format).as_deref() {
        None | Some("pretty") => LogFormat::Pretty,
        Some("json") => LogFormat::Json,
        Some(other) => {
            issue("log.format", format!("'{other}' is not one of: pretty, json"));
            LogFormat::Pretty
        }
    };
    let (mut policy, target_policies) = match crate::policy::validated(&file.policy, &file.target) {
        Ok(p) => p,
        Err(invalid) => {
            for i in invalid.issues {
                issue(&i.key, i.reason);
            }
            (Policy::default(), Vec::new())
        }
    };
    match crate::policy::validated_groups(&file.groups, &file.group_map, &file.target, &policy.protected_groups) {
        Ok(groups) => policy.groups = groups,
        Err(found) => found.into_iter().for_each(|i| issue(&i.key, i.reason)),
    }
    let mut targets = Vec::new();
    for (i, t) in file.target.iter().enumerate() {
        // A missing credential is not an issue of the file: commands that never call the target
        // (`jobs`, `audit`, `token`…) run without it; the ones that do call `require_credentials`.
        let mut missing = |key: &str, reason: String| {
            missing_credentials.push((t.name.trim().to_string(), ConfigIssue { key: key.to_string(), reason }));
        };
        let secret = |var: &str, key: &str, issue: &mut dyn FnMut(&str, String)| match lookup(env, var) {
            Some(v) if !v.is_empty() => match placeholder_reason(&v) {
                Some(reason) => {
                    issue(&format!("target[{i}].{key}"), placeholder_message(var, &reason));
                    None
                }
                None => Some(Secret::new(v)),
            },
            _ => {
                issue(
                    &format!("target[{i}].{key}"),
                    format!(
                        "environment variable {var} is not set (it must hold the credential for target '{}')",
                        t.name
                    ),
                );
                None
            }
        };
        let auth = match t.credentials() {
            Some(Credentials::Bearer { token_env }) => secret(token_env, "token_env", &mut missing).map(Auth::Bearer),
            Some(Credentials::Basic { username, password_env }) => secret(password_env, "password_env", &mut missing)
                .map(|password| Auth::Basic { username: username.to_string(), password }),
            None => None,
        };
        if let Some(auth) = auth {
            targets.push(Target {
                spec: TargetSpec {
                    name: t.name.trim().to_string(),
                    product: t.product,
                    url: t.base_url().to_string(),
                    auth,
                    timeout: Duration::from_secs(t.timeout_secs),
                },
                license_groups: t.license_groups.clone(),
                lead_successor: t.lead_successor.as_deref().map(str::trim).map(str::to_string),
                anonymize_new_owner: t.anonymize_new_owner.clone(),
            });
        }
    }
    let dd = Delivery::default();
    let delivery = Delivery {
        concurrency: file.delivery.concurrency.unwrap_or(dd.concurrency),
        max_attempts: file.delivery.max_attempts.unwrap_or(dd.max_attempts),
        max_age: file.delivery.max_age_secs.map(Duration::from_secs).unwrap_or(dd.max_age),
        backoff_initial: file.delivery.backoff_initial_ms.map(Duration::from_millis).unwrap_or(dd.backoff_initial),
        backoff_max: file.delivery.backoff_max_secs.map(Duration::from_secs).unwrap_or(dd.backoff_max),
        long_task_wait: file.delivery.long_task_wait_secs.map(Duration::from_secs).unwrap_or(dd.long_task_wait),
        probe_interval: file.delivery.probe_interval_secs.map(Duration::from_secs).unwrap_or(dd.probe_interval),
        down_after_failures: file.delivery.down_after_failures.unwrap_or(dd.down_after_failures),
    };
    if delivery.probe_interval.is_zero() || delivery.probe_interval > Duration::from_secs(300) {
        issue(
            "delivery.probe_interval_secs",
            "must be between 1 and 300 seconds (default 5), for example probe_interval_secs = 5".into(),
        );
    }
    if delivery.down_after_failures == 0 {
        issue("delivery.down_after_failures", "must be at least 1, for example down_after_failures = 3".into());
    }
    if delivery.long_task_wait.is_zero() || delivery.long_task_wait > Duration::from_secs(3600) {
        issue(
            "delivery.long_task_wait_secs",
            "must be between 1 and 3600 seconds (default 60), for example long_task_wait_secs = 60".into(),
        );
    }
    if delivery.concurrency == 0 {
        issue("delivery.concurrency", "must be at least 1, for example concurrency = 16".into());
    }
    if delivery.max_attempts == 0 {
        issue("delivery.max_attempts", "must be at least 1, for example max_attempts = 15".into());
    }
    if delivery.backoff_initial.is_zero() || delivery.backoff_initial > delivery.backoff_max {
        issue("delivery.backoff_initial_ms", "must be greater than 0 and at most backoff_max_secs".into());
    }
    let sections = crate::lifecycle::Sections {
        cleanup: &file.cleanup,
        license: &file.license,
        reconcile: &file.reconcile,
        activity: &file.activity,
    };
    let lifecycle = crate::lifecycle::validate(&sections, &target_policies).unwrap_or_else(|found| {
        issues.extend(found.into_iter().map(|i| ConfigIssue { key: i.key, reason: i.reason }));
        crate::lifecycle::LifecycleConfig::default()
    });
    let guard = crate::guard::validate(&file.guard, &mut issues);
    let jwt = crate::auth::jwt_config::validate_jwt(&file.jwt, &|var| lookup(env, var), &mut issues);
    let mut notify_missing = Vec::new();
    let notify =
        crate::notify::config::validate(&file.notify, &|var| lookup(env, var), &mut issues, &mut notify_missing);
    missing_credentials.extend(notify_missing.into_iter().map(|i| ("[notify]".to_string(), i)));
    let silent = crate::lifecycle::warnings_need_email(&lifecycle, file.notify.smtp.is_some());
    issues.extend(silent.into_iter().map(|i| ConfigIssue { key: i.key, reason: i.reason }));
    let retention = crate::retention::validate(&file.retention).unwrap_or_else(|found| {
        issues.extend(found.into_iter().map(|(key, reason)| ConfigIssue { key, reason }));
        crate::retention::Retention::default()
    });
    if !issues.is_empty() {
        // Shown together, so one `check-config` lists every problem.
        issues.extend(missing_credentials.into_iter().map(|(_, i)| i));
        return Err(ConfigError::Invalid(issues));
    }
    Ok(Config {
        listen,
        data_dir,
        cache_bytes: cache_mb << 20,
        reports_dir,
        public_url,
        admin_listen,
        trusted_proxies,
        tls,
        tokens,
        admin_tokens,
        limits,
        log_format,
        redact_personal_data: file.log.redact_personal_data.unwrap_or(false),
        policy,
        target_policies,
        targets,
        jwt,
        delivery,
        lifecycle,
        notify,
        retention,
        guard,
        env_tokens,
        missing_credentials,
        server: None,
        ca_file: None,
    })
}

/// The issue for a credential variable that still holds a placeholder; names the variable, never
/// the value.
fn placeholder_message(var: &str, reason: &str) -> String {
    format!(
        "environment variable {var} holds a placeholder ({reason}); set it to the real secret \
         (deploy/k8s/secret.yaml ships placeholders only; `openssl rand -base64 32` makes a token)"
    )
}

/// A whole-number setting: the environment variable `var` wins over the file's value; an
/// unparsable variable is an issue (and the default stands in so validation can go on).
fn whole_number<T: std::str::FromStr>(
    env: &BTreeMap<String, String>,
    var: &str,
    unit: &str,
    file: Option<T>,
    default: T,
    issue: &mut impl FnMut(&str, String),
) -> T {
    match env.get(var) {
        Some(v) => v.parse().unwrap_or_else(|_| {
            issue(var, format!("'{v}' is not a whole number of {unit}"));
            default
        }),
        None => file.unwrap_or(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_apply_with_no_file_and_no_env() {
        let c = validate(FileConfig::default(), &env(&[])).expect("valid");
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(c.tokens.is_empty());
        assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
        assert_eq!(c.cache_bytes, 90 << 20);
    }

    #[test]
    fn store_cache_size_comes_from_the_file_or_the_environment_and_is_bounded() {
        let file = || parse_file("cache_mb = 256").expect("toml");
        assert_eq!(validate(file(), &env(&[])).expect("valid").cache_bytes, 256 << 20);
        let c = validate(file(), &env(&[("SCIMBRIDGE_CACHE_MB", "512")])).expect("valid");
        assert_eq!(c.cache_bytes, 512 << 20);
        for (bad, key) in [("4", "cache_mb"), ("lots", "SCIMBRIDGE_CACHE_MB")] {
            match validate(file(), &env(&[("SCIMBRIDGE_CACHE_MB", bad)])) {
                Err(ConfigError::Invalid(issues)) => assert_eq!(issues[0].key, key, "{bad}: {issues:?}"),
                other => panic!("{bad}: expected an issue, got {other:?}"),
            }
        }
    }

    #[test]
    fn reports_dir_defaults_to_reports_and_comes_from_the_file_or_the_environment() {
        assert_eq!(validate(FileConfig::default(), &env(&[])).expect("valid").reports_dir, PathBuf::from("./reports"));
        let file = || parse_file("reports_dir = \"/var/lib/scimbridge/reports\"").expect("toml");
        assert_eq!(
            validate(file(), &env(&[])).expect("valid").reports_dir,
            PathBuf::from("/var/lib/scimbridge/reports")
        );
        let c = validate(file(), &env(&[("SCIMBRIDGE_REPORTS_DIR", "/srv/reports")])).expect("valid");
        assert_eq!(c.reports_dir, PathBuf::from("/srv/reports"));
        assert!(unknown_env_vars(&env(&[("SCIMBRIDGE_REPORTS_DIR", "/x")])).is_empty());
        assert!(validate(parse_file("reports_dir = \"\"").expect("toml"), &env(&[])).is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = parse_file("listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/a\"").expect("toml");
        let c = validate(
            file,
            &env(&[
                ("SCIMBRIDGE_LISTEN", "0.0.0.0:7000"),
                ("SCIMBRIDGE_TOKEN", "idp-token-0123456789abcdef, idp-token-fedcba9876543210"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.to_string(), "0.0.0.0:7000");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/a"));
        assert_eq!(c.tokens.len(), 2);
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected_with_their_name() {
        let err = parse_file("lisen = \"x\"").expect_err("typo");
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn every_invalid_setting_is_reported_with_its_key() {
        let file =
            parse_file("listen = \"nowhere\"\n[log]\nformat = \"xml\"\n[limits]\nmax_results = 0").expect("toml");
        match validate(file, &env(&[("SCIMBRIDGE_TOKEN", "short")])) {
            Err(ConfigError::Invalid(issues)) => {
                let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
                assert_eq!(keys, ["listen", "SCIMBRIDGE_TOKEN", "limits.max_results", "log.format"]);
            }
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_target_credential_is_required_only_by_what_calls_the_target() {
        let file = || {
            parse_file(
                "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"https://jira.example.com\"\ntoken_env = \"NO_SUCH_VAR_FOR_THIS_TEST\"\n",
            )
            .expect("toml")
        };
        let c = validate(file(), &env(&[])).expect("valid without the credential");
        assert!(c.targets.is_empty());
        assert!(c.require_credentials(Some("other")).is_ok());
        match c.require_credentials(None) {
            Err(ConfigError::Invalid(issues)) => {
                assert_eq!(issues[0].key, "target[0].token_env");
                assert!(issues[0].reason.contains("NO_SUCH_VAR_FOR_THIS_TEST"), "{issues:?}");
            }
            other => panic!("expected the missing variable, got {other:?}"),
        }
        assert!(c.require_credentials(Some("JIRA")).is_err());
        // Alongside another problem, both are listed at once.
        let mut f = file();
        f.listen = Some("nowhere".into());
        match validate(f, &env(&[])) {
            Err(ConfigError::Invalid(issues)) => assert_eq!(issues.len(), 2, "{issues:?}"),
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn targets_without_their_credential_are_still_known_by_name_in_file_order() {
        let t = |name: &str, var: &str| {
            format!("[[target]]\nname = \"{name}\"\nproduct = \"jira\"\nurl = \"https://{name}.example.com\"\ntoken_env = \"{var}\"\n")
        };
        let toml = [t("a", "VAR_A"), t("b", "NO_SUCH_VAR_FOR_THIS_TEST"), t("c", "VAR_C")].concat();
        let c = validate(parse_file(&toml).expect("toml"), &env(&[("VAR_A", "x"), ("VAR_C", "y")])).expect("valid");
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.target_names(), ["a", "b", "c"]);
    }

    #[test]
    fn environment_tokens_are_named_by_variable_and_place() {
        let c = validate(
            FileConfig::default(),
            &env(&[
                ("SCIMBRIDGE_TOKEN", "idp-token-7Qm2Lx9Vt4Kp"),
                ("SCIMBRIDGE_ADMIN_TOKEN", "admin-token-3Hn8Rw5Zc1Jd, admin-token-6Fy0Ps2Mb9Wg"),
            ]),
        )
        .expect("valid");
        let names: Vec<&str> = c.env_tokens.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["env:SCIMBRIDGE_TOKEN#1", "env:SCIMBRIDGE_ADMIN_TOKEN#1", "env:SCIMBRIDGE_ADMIN_TOKEN#2"]);
        assert_eq!(c.env_tokens[2].secret.expose(), "admin-token-6Fy0Ps2Mb9Wg");
    }

    #[test]
    fn unknown_scimbridge_variables_are_named() {
        let e = env(&[("SCIMBRIDGE_TOKNE", "x"), ("SCIMBRIDGE_TOKEN", "y")]);
        assert_eq!(unknown_env_vars(&e), vec!["SCIMBRIDGE_TOKNE".to_string()]);
    }
}
