//! The CLI's client of a running server's admin API: where to find it, whom to trust, and how
//! to read its answers.
//!
//! Where: `--server URL` (`SCIMBRIDGE_SERVER`) when given; otherwise the server that holds this
//! configuration's store, on `admin_listen` when set (the admin API is served only there), else
//! on `listen`, over https when `[tls]` is on. Trust: the public roots, the configured `[tls]`
//! certificate and `--ca FILE`; verification is never turned off. Answers: anything but the
//! expected JSON (an error status, HTML, a redirect, another JSON shape, no answer at all) is an
//! error naming the request and what came back, so a wrong address can never read as "0 found".

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::Method;
use serde_json::Value;

use crate::config::Config;

/// How long connecting may take; a run itself (a cleanup over many accounts) may take long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server's admin API.
pub struct RemoteApi {
    /// `…/admin`, no trailing slash.
    base: String,
    token: String,
    client: reqwest::Client,
    /// Which server this is and why it was asked, for error messages ("the server given by
    /// --server …", "the server holding the store in …").
    why: String,
}

/// True when `dir` holds a store (sled writes `conf` and `db` when it creates one).
pub fn store_exists(dir: &Path) -> bool {
    dir.join("db").is_file() && dir.join("conf").is_file()
}

/// The error for a command that needs a store where there is none. Nothing is created.
pub fn no_store(dir: &Path) -> anyhow::Error {
    anyhow!(
        "there is no scimbridge store in {} (data_dir). Point at the right one with --config FILE or \
         SCIMBRIDGE_DATA_DIR=DIR, or at a running server with --server URL; `scimbridge serve` creates the \
         store on its first start, `scimbridge restore FILE` from a backup",
        absolute(dir).display()
    )
}

fn absolute(dir: &Path) -> std::path::PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// The PEM certificates in `path`.
fn pem_certs(path: &Path, what: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let pem = std::fs::read(path).with_context(|| format!("while reading {what} {}", path.display()))?;
    let certs: Vec<Vec<u8>> =
        rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok).map(|c| c.to_vec()).collect();
    if certs.is_empty() {
        bail!("{what} {} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn admin_token(config: &Config, why: &str) -> anyhow::Result<String> {
    config.admin_tokens.first().map(|t| t.expose().to_string()).ok_or_else(|| {
        anyhow!(
            "this command needs the admin API of {why}, and no admin token is set: set \
             SCIMBRIDGE_ADMIN_TOKEN (or admin_token_env) to one of the server's admin tokens. None yet? \
             Stop the server, run `scimbridge token new --name ops --admin` and start it again, then \
             export SCIMBRIDGE_ADMIN_TOKEN=<the token it printed>"
        )
    })
}

/// The name to verify the served certificate against when connecting to `addr`: the first of
/// the public URL's host, `localhost` and the address itself that the certificate is valid for.
fn tls_name(leaf: &[u8], public_url: Option<&str>, addr: SocketAddr) -> String {
    use rustls::pki_types::{CertificateDer, ServerName};
    let der = CertificateDer::from(leaf);
    let valid = |name: &str| {
        let Ok(server_name) = ServerName::try_from(name) else { return false };
        webpki::EndEntityCert::try_from(&der).is_ok_and(|c| c.verify_is_valid_for_subject_name(&server_name).is_ok())
    };
    let public_host =
        public_url.and_then(|u| reqwest::Url::parse(u).ok()).and_then(|u| u.host_str().map(str::to_string));
    let ip = addr.ip().to_string();
    let candidates = public_host.into_iter().chain(["localhost".to_string(), ip.clone()]);
    candidates.into_iter().find(|n| valid(n)).unwrap_or(ip)
}

impl RemoteApi {
    fn client(config: &Config, pin: Option<(&str, SocketAddr)>) -> anyhow::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect is an answer the CLI did not expect (and would turn a POST into a GET).
            .redirect(reqwest::redirect::Policy::none());
        let mut roots: Vec<Vec<u8>> = Vec::new();
        if let Some((cert, _)) = &config.tls {
            roots.extend(pem_certs(cert, "the [tls] certificate")?);
        }
        if let Some(ca) = &config.ca_file {
            roots.extend(pem_certs(ca, "--ca")?);
        }
        for der in roots {
            let c = reqwest::Certificate::from_der(&der).context("while reading a trusted certificate")?;
            b = b.add_root_certificate(c);
        }
        if let Some((name, addr)) = pin {
            b = b.resolve(name, addr);
        }
        b.build().context("while building the HTTP client")
    }

    /// The server named by `--server URL` (or `SCIMBRIDGE_SERVER`).
    ///
    /// # Errors
    /// A URL that is not http(s), an unreadable `--ca`, or no admin token.
    pub fn explicit(url: &str, config: &Config) -> anyhow::Result<RemoteApi> {
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
            anyhow!("--server {url:?} is not a URL ({e}); for example --server https://scim.example.com:9090")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            bail!("--server {url:?} must be an http:// or https:// URL, for example --server https://scim.example.com:9090");
        }
        let root = parsed.as_str().trim_end_matches('/');
        let root = root.strip_suffix("/admin").unwrap_or(root);
        let why = format!("the server given by --server {root}");
        Ok(RemoteApi {
            base: format!("{root}/admin"),
            token: admin_token(config, &why)?,
            client: Self::client(config, None)?,
            why,
        })
    }

    /// The server that holds this configuration's store (another process has it open).
    ///
    /// # Errors
    /// No admin token, or an unreadable certificate.
    pub fn discovered(config: &Config) -> anyhow::Result<RemoteApi> {
        let (addr, key) = match config.admin_listen {
            Some(a) => (loopback(a), "admin_listen"),
            None => (loopback(config.listen), "listen"),
        };
        let why = format!(
            "the server holding the store in {} (another process has it open: a running `scimbridge serve`?), on \
             {key} {addr}",
            absolute(&config.data_dir).display()
        );
        let token = admin_token(config, &why)?;
        let (base, client) = match &config.tls {
            Some((cert, _)) => {
                let leaf = pem_certs(cert, "the [tls] certificate")?.into_iter().next().unwrap_or_default();
                let name = tls_name(&leaf, config.public_url.as_deref(), addr);
                let host = if name.parse::<std::net::IpAddr>().is_ok() {
                    addr.to_string()
                } else {
                    format!("{name}:{}", addr.port())
                };
                let pin = (name.parse::<std::net::IpAddr>().is_err()).then_some((name.as_str(), addr));
                (format!("https://{host}/admin"), Self::client(config, pin)?)
            }
            None => (format!("http://{addr}/admin"), Self::client(config, None)?),
        };
        Ok(RemoteApi { base, token, client, why })
    }

    /// `…/admin` of the server.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut rb = crate::cli::forward_operator(self.client.request(method.clone(), &url).bearer_auth(&self.token));
        if let Some(b) = body {
            rb = rb.header("Content-Type", "application/json").body(b.to_string());
        }
        // On a runtime worker: a server closing the connection mid-write is then an error here.
        crate::cli_signals::off_main_thread(rb.send()).await?.map_err(|e| {
            let chain = error_chain(&e);
            let hint = if chain.contains("invalid HTTP version") || chain.contains("InvalidContentType") {
                " (the server seems to speak HTTPS: use an https:// URL)"
            } else if chain.contains("certificate") || chain.contains("Certificate") {
                " (the server's certificate is not trusted for this name: trust its CA with --ca FILE, or use the name \
                 the certificate is for in --server)"
            } else {
                ""
            };
            anyhow!("{method} {url} got no answer: {chain}{hint}; asked {}", self.why)
        })
    }

    /// Calls the admin API and returns its JSON answer.
    ///
    /// # Errors
    /// No answer, a status other than 2xx (with the server's `detail`), or a body that is not JSON.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let what = format!("{method} {}{path}", self.base);
        let res = self.send(method, path, body).await?;
        let status = res.status();
        let ctype = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = res.text().await.with_context(|| format!("while reading the answer to {what}"))?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let detail = json.as_ref().and_then(|v| v.get("detail")).and_then(Value::as_str).map(str::to_string);
            let mut msg = format!("{what} answered {status}");
            match (&detail, &location) {
                (Some(d), _) => msg.push_str(&format!(": {d}")),
                (None, Some(l)) => msg.push_str(&format!(" (a redirect to {l})")),
                (None, None) => msg.push_str(&format!(" {}", describe_body(&ctype, &text))),
            }
            let scim_error = json.as_ref().is_some_and(|v| v.get("schemas").is_some()) && detail.is_some();
            let no_endpoint = detail.as_deref().is_none_or(|d| d.starts_with("No endpoint"));
            let unauthorized = status == reqwest::StatusCode::UNAUTHORIZED;
            if unauthorized {
                msg.push_str(
                    " (the server refused the admin token: set SCIMBRIDGE_ADMIN_TOKEN to one of its admin tokens)",
                );
            } else if status == reqwest::StatusCode::NOT_FOUND && no_endpoint {
                msg.push_str(
                    " (no scimbridge admin API at this address; with admin_listen set it is served only there)",
                );
            }
            // The admin API's own refusal ("No job 7.") needs no word on how the server was found.
            if scim_error && !no_endpoint && !unauthorized {
                bail!("{msg}");
            }
            bail!("{msg}; asked {}", self.why);
        }
        let is_json = ctype.starts_with("application/json") || ctype.starts_with("application/scim+json");
        match json {
            Some(v) if is_json => Ok(v),
            _ => bail!(
                "{what} answered {status} {}, not the admin API's JSON; asked {}",
                describe_body(&ctype, &text),
                self.why
            ),
        }
    }

    /// Calls the admin API and returns the answer's `field` array.
    ///
    /// # Errors
    /// As [`RemoteApi::call`], or when the answer has no such array.
    pub async fn list(&self, method: Method, path: &str, field: &str) -> anyhow::Result<Vec<Value>> {
        let v = self.call(method.clone(), path, None).await?;
        match v.get(field).and_then(Value::as_array) {
            Some(a) => Ok(a.clone()),
            None => Err(unexpected(&method, &format!("{}{path}", self.base), &format!("a \"{field}\" list"), &v)),
        }
    }

    /// A streamed answer (the backup), after checking its status and content type.
    ///
    /// # Errors
    /// No answer or an answer other than 2xx with `expected_type`.
    pub async fn stream(&self, path: &str, expected_type: &str) -> anyhow::Result<reqwest::Response> {
        let what = format!("GET {}{path}", self.base);
        let res = self.send(Method::GET, path, None).await?;
        let ctype = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if !res.status().is_success() || !ctype.starts_with(expected_type) {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("detail").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| describe_body(&ctype, &text));
            bail!("{what} answered {status} {detail}; asked {}", self.why);
        }
        Ok(res)
    }
}

/// The error for a 2xx answer of the wrong shape.
pub fn unexpected(method: &Method, url: &str, expected: &str, got: &Value) -> anyhow::Error {
    let mut shown = got.to_string();
    if shown.len() > 200 {
        shown.truncate(200);
        shown.push('…');
    }
    anyhow!("{method} {url} answered JSON without {expected}: {shown}")
}

/// "with text/html: <html>…" — what came back, short.
fn describe_body(ctype: &str, text: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        return format!("with an empty body{}", if ctype.is_empty() { String::new() } else { format!(" ({ctype})") });
    }
    let mut snippet: String = t.chars().take(120).collect();
    if t.chars().count() > 120 {
        snippet.push('…');
    }
    format!("with {}: {snippet}", if ctype.is_empty() { "no content type" } else { ctype })
}

/// An error and its causes on one line ("error sending request: …: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_reached_on_loopback() {
        assert_eq!(loopback("0.0.0.0:8080".parse().expect("addr")).to_string(), "127.0.0.1:8080");
        assert_eq!(loopback("[::]:8080".parse().expect("addr")).to_string(), "[::1]:8080");
        assert_eq!(loopback("10.0.0.1:8080".parse().expect("addr")).to_string(), "10.0.0.1:8080");
    }

    #[test]
    fn bodies_are_described_briefly() {
        assert_eq!(describe_body("", ""), "with an empty body");
        let html = format!("<html>{}</html>", "x".repeat(300));
        let d = describe_body("text/html", &html);
        assert!(d.starts_with("with text/html: <html>xx") && d.ends_with('…') && d.len() < 150, "{d}");
    }

    #[test]
    fn the_certificate_name_is_the_first_it_is_valid_for() {
        let pem = include_bytes!("../tests/fixtures/tls/cert-a.pem");
        let leaf = rustls_pemfile::certs(&mut pem.as_slice()).next().expect("cert").expect("pem").to_vec();
        let addr: SocketAddr = "127.0.0.1:9443".parse().expect("addr");
        // The fixture is for localhost and 127.0.0.1, not for the public name.
        assert_eq!(tls_name(&leaf, Some("https://scim.example.com"), addr), "localhost");
        assert_eq!(tls_name(&leaf, None, "10.1.1.1:1".parse().expect("addr")), "localhost");
    }
}
