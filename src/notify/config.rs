//! `[notify]`, `[notify.smtp]` and `[[notify.webhook]]`: parsed from the file, validated with the
//! rest of the configuration, secrets read from the environment variables the file names.
//!
//! A channel whose variable is not set is left out and reported like a target's missing
//! credential: `serve` and `check-config` refuse to start, commands that send nothing run.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigIssue;
use crate::secret::{placeholder_reason, Secret};

pub const DEFAULT_TARGET_DOWN_SECS: u64 = 300;
pub const DEFAULT_DIGEST_AT: &str = "08:00";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyFile {
    /// `[notify.smtp]`: email to the admins (and §3's warnings to users).
    pub smtp: Option<SmtpFile>,
    /// `[[notify.webhook]]` blocks.
    pub webhook: Vec<WebhookFile>,
    /// A target unreachable this long is notified (`target_down`); default 300.
    pub target_down_secs: Option<u64>,
    /// UTC time (`HH:MM`) the daily digest of channels with `digest = "daily"` goes out.
    pub digest_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpFile {
    /// Variable holding `smtps://user:pass@host:465` or `smtp://host:25?tls=starttls`.
    pub url_env: String,
    pub from: String,
    pub admins: Vec<String>,
    pub events: Option<Vec<String>>,
    /// `daily` or `off` (the default).
    pub digest: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub url_env: String,
    /// `slack`, `teams` or `json`.
    pub format: String,
    /// For `json`: variable holding the HMAC-SHA256 key of `X-Scimbridge-Signature`.
    pub secret_env: Option<String>,
    pub events: Option<Vec<String>>,
    pub digest: Option<String>,
}

/// Validated `[notify]`.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub channels: Vec<Channel>,
    pub target_down: Duration,
    /// (hour, minute) UTC of the daily digest.
    pub digest_at: (u32, u32),
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            channels: Vec::new(),
            target_down: Duration::from_secs(DEFAULT_TARGET_DOWN_SECS),
            digest_at: (8, 0),
        }
    }
}

impl NotifyConfig {
    /// Every event some channel takes (what the store should keep); `user_warning` whenever
    /// email is configured.
    pub fn wanted_events(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.channels.iter().flat_map(|c| c.events.iter().cloned()).collect();
        if self.smtp().is_some() {
            out.insert(super::USER_WARNING.to_string());
        }
        out
    }

    /// What a process that does not send (a local CLI run) keeps for `serve`: as
    /// [`Self::wanted_events`], plus users' warnings when `[notify.smtp]` is written but its
    /// variable is not set here (`missing`: the configuration's missing credentials), so a
    /// warning recorded by such a run is still e-mailed once `serve` runs with it.
    pub fn kept_events(&self, missing: &[(String, ConfigIssue)]) -> BTreeSet<String> {
        let mut out = self.wanted_events();
        if missing.iter().any(|(_, i)| i.key == "notify.smtp.url_env") {
            out.insert(super::USER_WARNING.to_string());
        }
        out
    }

    pub fn smtp(&self) -> Option<&SmtpChannel> {
        self.channels.iter().find_map(|c| match &c.kind {
            ChannelKind::Smtp(s) => Some(s),
            ChannelKind::Webhook(_) => None,
        })
    }
}

/// One place notices go.
#[derive(Debug, Clone)]
pub struct Channel {
    /// `smtp` or `webhook:<url_env>`: how the store records progress (stable across restarts).
    pub name: String,
    pub kind: ChannelKind,
    pub events: BTreeSet<String>,
    /// Collect into the daily digest instead of one message per event.
    pub digest: bool,
}

#[derive(Debug, Clone)]
pub enum ChannelKind {
    Smtp(SmtpChannel),
    Webhook(WebhookChannel),
}

#[derive(Debug, Clone)]
pub struct SmtpChannel {
    pub server: SmtpUrl,
    pub from: lettre::message::Mailbox,
    pub admins: Vec<lettre::message::Mailbox>,
}

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte (port 465).
    Implicit,
    /// `smtp://` (the default, or `?tls=starttls`): STARTTLS is required; a server that does
    /// not offer it gets nothing.
    StartTls,
    /// `smtp://...?tls=none`: plain text, for a relay on the same host or network. Refused
    /// with credentials in the URL (they would cross the network in clear).
    None,
}

#[derive(Clone)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, Secret)>,
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password; the user name only as "set".
        f.debug_struct("SmtpUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

impl SmtpUrl {
    /// Parses `smtps://[user:pass@]host[:port]` or `smtp://[user:pass@]host[:port][?tls=starttls|none]`.
    ///
    /// # Errors
    /// A message naming what is wrong, never repeating the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<SmtpUrl, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| {
            format!("is not a URL ({e}); write smtps://user:pass@host:465 or smtp://host:25?tls=starttls")
        })?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("has no host")?.to_string();
        let mut tls_param = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "tls" => tls_param = Some(v.to_string()),
                other => return Err(format!("has an unknown parameter '{other}' (only tls=starttls|none)")),
            }
        }
        let tls = match (url.scheme(), tls_param.as_deref()) {
            ("smtps", None) => SmtpTls::Implicit,
            ("smtps", Some(_)) => return Err("smtps:// is TLS already; drop the tls parameter".into()),
            ("smtp", None | Some("starttls")) => SmtpTls::StartTls,
            ("smtp", Some("none")) => SmtpTls::None,
            ("smtp", Some(other)) => {
                return Err(format!("has tls={other}; use tls=starttls (the default) or tls=none"))
            }
            (other, _) => return Err(format!("has scheme '{other}'; use smtps:// or smtp://")),
        };
        let port = url.port().unwrap_or(match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::StartTls => 587,
            SmtpTls::None => 25,
        });
        let decode = |s: &str| percent_decode(s);
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(pass)) => Some((decode(user)?, Secret::new(decode(pass)?))),
            (_, None) => return Err("has a user but no password (user:pass@host)".into()),
        };
        if tls == SmtpTls::None && credentials.is_some() {
            return Err("sends a password with tls=none, in clear; use smtps:// or STARTTLS".into());
        }
        Ok(SmtpUrl { host, port, tls, credentials })
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "has a user or password that is not UTF-8".to_string())
}

/// The webhook body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Slack,
    Teams,
    Json,
}

#[derive(Clone)]
pub struct WebhookChannel {
    /// The URL (Slack's and Teams' carry their token in the path: never logged).
    pub url: Secret,
    pub format: Format,
    /// `json`: the HMAC key.
    pub secret: Option<Secret>,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel").field("format", &self.format).finish_non_exhaustive()
    }
}

fn events(key: &str, list: Option<&Vec<String>>, issue: &mut dyn FnMut(String, String)) -> BTreeSet<String> {
    let Some(list) = list else { return super::DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect() };
    if list.is_empty() {
        issue(format!("{key}.events"), "lists no events; leave it out for the default (all but offboarded)".into());
    }
    for e in list.iter().filter(|e| !super::EVENTS.contains(&e.as_str())) {
        issue(format!("{key}.events"), format!("'{e}' is not an event; use {}", super::EVENTS.join(", ")));
    }
    list.iter().filter(|e| super::EVENTS.contains(&e.as_str())).cloned().collect()
}

fn digest(key: &str, value: Option<&str>, issue: &mut dyn FnMut(String, String)) -> bool {
    match value {
        None | Some("off") => false,
        Some("daily") => true,
        Some(other) => {
            issue(format!("{key}.digest"), format!("'{other}' is not a digest option; use \"daily\" or \"off\""));
            false
        }
    }
}

/// A secret from the variable `var`: `Ok(None)` when unset (a missing credential), `Err` for a
/// placeholder or an empty value.
fn secret(var: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Secret>, String> {
    match lookup(var) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Err(format!("environment variable {var} is empty")),
        Some(v) => match placeholder_reason(&v) {
            Some(reason) => Err(format!("environment variable {var} holds a placeholder ({reason})")),
            None => Ok(Some(Secret::new(v.trim()))),
        },
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Validates `[notify]`; hard problems go to `issues`, unset variables to `missing` (see the
/// module header).
pub fn validate(
    file: &NotifyFile,
    lookup: &dyn Fn(&str) -> Option<String>,
    issues: &mut Vec<ConfigIssue>,
    missing: &mut Vec<ConfigIssue>,
) -> NotifyConfig {
    let mut found: Vec<ConfigIssue> = Vec::new();
    let mut issue = |key: String, reason: String| found.push(ConfigIssue { key, reason });
    let mut cfg = NotifyConfig::default();
    match file.target_down_secs {
        Some(0) => issue("notify.target_down_secs".into(), "must be at least 1 second (default 300)".into()),
        Some(s) => cfg.target_down = Duration::from_secs(s),
        None => {}
    }
    if let Some(at) = &file.digest_at {
        match chrono::NaiveTime::parse_from_str(at.trim(), "%H:%M") {
            Ok(t) => {
                use chrono::Timelike;
                cfg.digest_at = (t.hour(), t.minute());
            }
            Err(_) => {
                issue("notify.digest_at".into(), format!("'{at}' is not a time; write \"HH:MM\" (UTC), e.g. \"08:00\""))
            }
        }
    }
    let missing_var = |missing: &mut Vec<ConfigIssue>, key: &str, var: &str| {
        missing.push(ConfigIssue {
            key: key.to_string(),
            reason: format!("environment variable {var} is not set; notifications cannot be sent without it"),
        });
    };
    if let Some(smtp) = &file.smtp {
        let key = "notify.smtp";
        let events = events(key, smtp.events.as_ref(), &mut issue);
        let digest = digest(key, smtp.digest.as_deref(), &mut issue);
        let from = smtp.from.parse::<lettre::message::Mailbox>().map_err(|e| {
            issue(format!("{key}.from"), format!("'{}' is not an email address ({e})", smtp.from));
        });
        if smtp.admins.is_empty() {
            issue(
                format!("{key}.admins"),
                "lists nobody; name at least one address, e.g. admins = [\"atlassian-admins@example.com\"]".into(),
            );
        }
        let mut admins = Vec::new();
        for a in &smtp.admins {
            match a.parse::<lettre::message::Mailbox>() {
                Ok(m) => admins.push(m),
                Err(e) => issue(format!("{key}.admins"), format!("'{a}' is not an email address ({e})")),
            }
        }
        let server = match secret(&smtp.url_env, lookup) {
            Ok(None) => {
                missing_var(missing, &format!("{key}.url_env"), &smtp.url_env);
                None
            }
            Ok(Some(url)) => SmtpUrl::parse(url.expose())
                .map_err(|e| issue(format!("{key}.url_env"), format!("the URL in {} {e}", smtp.url_env)))
                .ok(),
            Err(e) => {
                issue(format!("{key}.url_env"), e);
                None
            }
        };
        if let (Ok(from), Some(server)) = (from, server) {
            cfg.channels.push(Channel {
                name: "smtp".into(),
                kind: ChannelKind::Smtp(SmtpChannel { server, from, admins }),
                events,
                digest,
            });
        }
    }
    let mut seen = BTreeSet::new();
    for (i, w) in file.webhook.iter().enumerate() {
        let key = format!("notify.webhook[{i}]");
        let events = events(&key, w.events.as_ref(), &mut issue);
        let digest = digest(&key, w.digest.as_deref(), &mut issue);
        if !seen.insert(w.url_env.clone()) {
            issue(format!("{key}.url_env"), format!("{} is already used by another [[notify.webhook]]", w.url_env));
        }
        let format = match w.format.as_str() {
            "slack" => Some(Format::Slack),
            "teams" => Some(Format::Teams),
            "json" => Some(Format::Json),
            other => {
                issue(format!("{key}.format"), format!("'{other}' is not a format; use slack, teams or json"));
                None
            }
        };
        let secret_value = match (format, &w.secret_env) {
            (Some(Format::Json), None) => {
                issue(format!("{key}.secret_env"), "format = \"json\" is signed: name the variable holding the HMAC key, e.g. secret_env = \"WEBHOOK_SECRET\"".into());
                None
            }
            (Some(Format::Slack | Format::Teams), Some(_)) => {
                issue(
                    format!("{key}.secret_env"),
                    format!("is only used by format = \"json\"; {} does not sign", w.format),
                );
                None
            }
            (_, Some(var)) => match secret(var, lookup) {
                Ok(None) => {
                    missing_var(missing, &format!("{key}.secret_env"), var);
                    None
                }
                Ok(Some(s)) if s.expose().len() < 16 => {
                    issue(
                        format!("{key}.secret_env"),
                        format!("the key in {var} is shorter than 16 characters; `openssl rand -hex 32` makes one"),
                    );
                    None
                }
                Ok(s) => s,
                Err(e) => {
                    issue(format!("{key}.secret_env"), e);
                    None
                }
            },
            _ => None,
        };
        let url = match secret(&w.url_env, lookup) {
            Ok(None) => {
                missing_var(missing, &format!("{key}.url_env"), &w.url_env);
                None
            }
            Ok(Some(u)) => match url::Url::parse(u.expose()) {
                Ok(p) if p.scheme() == "https" || (p.scheme() == "http" && p.host_str().is_some_and(is_loopback)) => {
                    Some(u)
                }
                Ok(_) => {
                    issue(
                        format!("{key}.url_env"),
                        format!("the URL in {} must be https:// (http:// only to this host)", w.url_env),
                    );
                    None
                }
                Err(e) => {
                    issue(format!("{key}.url_env"), format!("the value of {} is not a URL ({e})", w.url_env));
                    None
                }
            },
            Err(e) => {
                issue(format!("{key}.url_env"), e);
                None
            }
        };
        if let (Some(format), Some(url)) = (format, url) {
            if format != Format::Json || secret_value.is_some() {
                cfg.channels.push(Channel {
                    name: format!("webhook:{}", w.url_env),
                    kind: ChannelKind::Webhook(WebhookChannel { url, format, secret: secret_value }),
                    events,
                    digest,
                });
            }
        }
    }
    issues.extend(found);
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str, env: &[(&str, &str)]) -> (NotifyConfig, Vec<String>, Vec<String>) {
        #[derive(Deserialize)]
        struct F {
            notify: NotifyFile,
        }
        let f: F = toml::from_str(toml_text).expect("toml");
        let env: std::collections::BTreeMap<String, String> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (mut issues, mut missing) = (Vec::new(), Vec::new());
        let cfg = validate(&f.notify, &|v| env.get(v).cloned(), &mut issues, &mut missing);
        (cfg, issues.iter().map(ToString::to_string).collect(), missing.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn smtp_urls_default_to_required_starttls_and_never_send_a_password_in_clear() {
        let u = SmtpUrl::parse("smtp://mail.example.com").expect("url");
        assert_eq!((u.tls, u.port), (SmtpTls::StartTls, 587));
        let u = SmtpUrl::parse("smtps://bot%40corp:p%2Fss@mail.example.com").expect("url");
        assert_eq!((u.tls, u.port), (SmtpTls::Implicit, 465));
        let (user, pass) = u.credentials.expect("credentials");
        assert_eq!((user.as_str(), pass.expose()), ("bot@corp", "p/ss"));
        assert_eq!(SmtpUrl::parse("smtp://relay:25?tls=none").expect("url").tls, SmtpTls::None);
        assert!(SmtpUrl::parse("smtp://u:secretpw@relay:25?tls=none").is_err_and(|e| !e.contains("secretpw")));
        for bad in ["http://x", "smtps://x?tls=none", "smtp://x?tls=maybe", "smtp://x?foo=1", "smtp://u@x", "nonsense"]
        {
            assert!(SmtpUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{:?}", SmtpUrl::parse("smtps://u:hunter2hunter2@x").expect("url")).contains("hunter2"));
    }

    #[test]
    fn the_issues_example_validates_and_mistakes_are_named() {
        let example = r#"
[notify.smtp]
url_env = "SCIMBRIDGE_SMTP_URL"
from = "scimbridge@example.com"
admins = ["atlassian-admins@example.com"]
[[notify.webhook]]
url_env = "SLACK_WEBHOOK_URL"
format = "slack"
events = ["held", "dead_letter", "target_down", "run_finished", "offboarded"]
[[notify.webhook]]
url_env = "HOOK"
format = "json"
secret_env = "WEBHOOK_SECRET"
digest = "daily"
"#;
        let env = [
            ("SCIMBRIDGE_SMTP_URL", "smtp://mail.corp.test:25?tls=starttls"),
            ("SLACK_WEBHOOK_URL", "https://hooks.slack.test/services/T/B/abc"),
            ("HOOK", "https://hooks.corp.test/scim"),
            ("WEBHOOK_SECRET", "0123456789abcdef0123"),
        ];
        let (cfg, issues, missing) = check(example, &env);
        assert!(issues.is_empty() && missing.is_empty(), "{issues:?} {missing:?}");
        assert_eq!(
            cfg.channels.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["smtp", "webhook:SLACK_WEBHOOK_URL", "webhook:HOOK"]
        );
        assert!(!cfg.channels[0].events.contains("offboarded"), "offboarded is off by default");
        assert!(cfg.channels[1].events.contains("offboarded"));
        assert!(cfg.channels[2].digest);
        assert_eq!(cfg.target_down, Duration::from_secs(300));
        assert!(cfg.wanted_events().contains("user_warning"));

        let (_, issues, _) = check(
            "[[notify.webhook]]\nurl_env = \"HOOK\"\nformat = \"discord\"\n[[notify.webhook]]\nurl_env = \"H2\"\nformat = \"json\"\nevents = [\"nope\"]\n",
            &[("HOOK", "https://x.test"), ("H2", "https://y.test")],
        );
        let all = issues.join("\n");
        assert!(all.contains("'discord' is not a format"), "{all}");
        assert!(all.contains("notify.webhook[1].secret_env"), "{all}");
        assert!(all.contains("'nope' is not an event"), "{all}");

        let (_, issues, missing) = check("[[notify.webhook]]\nurl_env = \"UNSET_HOOK\"\nformat = \"slack\"\n", &[]);
        assert!(issues.is_empty());
        assert!(missing.join("").contains("UNSET_HOOK is not set"), "{missing:?}");

        let (_, issues, _) =
            check("[[notify.webhook]]\nurl_env = \"H\"\nformat = \"slack\"\n", &[("H", "http://hooks.corp.test/x")]);
        assert!(issues.join("").contains("must be https://"), "{issues:?}");
        let (_, issues, _) = check("[[notify.webhook]]\nurl_env = \"H\"\nformat = \"slack\"\n", &[("H", "not a url")]);
        assert!(issues.join("").contains("is not a URL"), "{issues:?}");
    }

    #[test]
    fn a_run_without_the_smtp_variable_keeps_users_warnings_for_serve() {
        #[derive(Deserialize)]
        struct F {
            notify: NotifyFile,
        }
        let smtp = "[notify.smtp]\nurl_env = \"UNSET_SMTP\"\nfrom = \"a@corp.test\"\nadmins = [\"b@corp.test\"]\n";
        let f: F = toml::from_str(smtp).expect("toml");
        let (mut issues, mut missing) = (Vec::new(), Vec::new());
        let cfg = validate(&f.notify, &|_| None, &mut issues, &mut missing);
        assert!(issues.is_empty(), "{issues:?}");
        assert!(!cfg.wanted_events().contains(crate::notify::USER_WARNING), "nothing can send here");
        let missing: Vec<(String, ConfigIssue)> = missing.into_iter().map(|i| ("[notify]".to_string(), i)).collect();
        assert!(cfg.kept_events(&missing).contains(crate::notify::USER_WARNING), "but serve will: {missing:?}");
        assert!(
            !NotifyConfig::default().kept_events(&[]).contains(crate::notify::USER_WARNING),
            "no [notify.smtp]: nothing to keep"
        );
    }
}
