//! The `[[jwt]]` blocks of the config file: which OAuth issuers may call the SCIM API with a JWT
//! bearer token, validated purely (no network) into `JwtIssuer` values. `config.rs` owns the file
//! as a whole and calls `validate_jwt`; `jwt.rs` turns the validated values into a validator.
//!
//! Provider defaults:
//! - Entra ID: issuer `https://sts.windows.net/<tenant>/` (v1 tokens) and
//!   `https://login.microsoftonline.com/<tenant>/v2.0` (v2 tokens), keys at
//!   `https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys`, and the audience Entra uses for
//!   non-gallery SCIM apps, `8adf8e6e-67b2-4cf2-a259-e3dc5476c621` (see the shared reference
//!   `idp-scim.md` §1.6 and Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint").
//! - Okta: a custom authorization server, issuer `https://<org>.okta.com/oauth2/<id>`. Tokens of the
//!   org authorization server (issuer without `/oauth2/`) are meant for Okta alone and cannot be
//!   validated by others (Okta, "Validate access tokens").
//! - Any OIDC issuer: keys from `jwks_uri` of `{issuer}/.well-known/openid-configuration`
//!   (OpenID Connect Discovery 1.0 §4).

use std::collections::BTreeMap;
use std::str::FromStr;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::config::ConfigIssue;
use crate::secret::Secret;

/// The audience Entra ID puts in tokens for non-gallery (custom) SCIM apps.
pub const ENTRA_SCIM_AUDIENCE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
pub const MAX_LEEWAY_SECS: u64 = 300;
/// HMAC keys shorter than the hash output weaken HS256 (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
const ALGORITHM_NAMES: &str = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256";

/// One `[[jwt]]` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFile {
    /// Names the issuer in the audit log (`<name>:<subject>`); unique.
    pub name: Option<String>,
    /// `entra`, `okta` or `oidc` (default).
    pub provider: Option<String>,
    /// Entra ID tenant id (a GUID or a verified domain).
    pub tenant: Option<String>,
    /// The exact `iss` of accepted tokens.
    pub issuer: Option<String>,
    /// Accepted `aud` values (one string or a list).
    pub audience: Option<OneOrMany>,
    /// Where the signing keys are; default from the issuer's discovery document.
    pub jwks_url: Option<String>,
    /// Accepted `alg` header values.
    pub algorithms: Option<Vec<String>>,
    /// Environment variable holding the HS256 shared secret.
    pub hs256_secret_env: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: Option<u64>,
    /// Scopes (`scp` or `scope`) a token must all carry.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Roles (`roles`, e.g. an Entra app role) a token must all carry.
    #[serde(default)]
    pub required_roles: Vec<String>,
}

/// `audience = "x"` or `audience = ["x", "y"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Entra,
    Okta,
    Oidc,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Entra => "entra",
            Provider::Okta => "okta",
            Provider::Oidc => "oidc",
        }
    }
}

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document at this URL.
    Url(String),
    /// The `jwks_uri` of this discovery document, whose `issuer` must equal `issuer`.
    Discovery { url: String, issuer: String },
}

/// A validated `[[jwt]]` block.
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    pub name: String,
    pub provider: Provider,
    /// Accepted `iss` values (Entra: the v1 and the v2 issuer of the tenant).
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    /// `None` when only HS256 is accepted (no public keys to fetch).
    pub jwks: Option<JwksSource>,
    pub algorithms: Vec<Algorithm>,
    pub hs256_secret: Option<Secret>,
    pub leeway_secs: u64,
    pub required_scopes: Vec<String>,
    pub required_roles: Vec<String>,
}

/// Whether a URL may be used to fetch keys: https, or http to this machine (tests, a local proxy).
fn fetchable(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => match u.scheme() {
            "https" => u.host_str().is_some(),
            "http" => matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
            _ => false,
        },
        Err(_) => false,
    }
}

fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("'none' means an unsigned token and is never accepted".into());
    }
    match Algorithm::from_str(name) {
        Ok(Algorithm::HS384 | Algorithm::HS512) => {
            Err(format!("'{name}' is not supported; the only shared-secret algorithm is HS256"))
        }
        Ok(a) => Ok(a),
        Err(_) => Err(format!("'{name}' is not one of: {ALGORITHM_NAMES}")),
    }
}

fn is_symmetric(a: Algorithm) -> bool {
    matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Validates the `[[jwt]]` blocks. `lookup` reads an environment variable (the HS256 secret).
/// Every problem becomes a `ConfigIssue` keyed `jwt[<index>].<key>`; only valid blocks are returned.
pub fn validate_jwt(
    files: &[JwtFile],
    lookup: &dyn Fn(&str) -> Option<String>,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<JwtIssuer> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let before = issues.len();
        let mut issue = |key: &str, reason: String| issues.push(ConfigIssue { key: format!("jwt[{i}].{key}"), reason });

        let name = f.name.as_deref().map(str::trim).unwrap_or_default().to_string();
        if name.is_empty() {
            issue("name", "is required; it names the issuer in the audit log, for example name = \"entra\"".into());
        } else if name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            issue(
                "name",
                format!(
                    "'{name}' must be at most 64 letters, digits, '-', '_' or '.', for example name = \"entra-prod\""
                ),
            );
        } else if let Some(j) = seen.get(&name) {
            issue("name", format!("'{name}' is already used by jwt[{j}]; every [[jwt]] block needs its own name"));
        } else {
            seen.insert(name.clone(), i);
        }

        let provider = match f.provider.as_deref() {
            None | Some("oidc") => Provider::Oidc,
            Some("entra") => Provider::Entra,
            Some("okta") => Provider::Okta,
            Some(other) => {
                issue("provider", format!("'{other}' is not one of: entra, okta, oidc"));
                Provider::Oidc
            }
        };

        let tenant = f.tenant.as_deref().map(str::trim).filter(|t| !t.is_empty());
        match (provider, tenant) {
            (Provider::Entra, None) => issue(
                "tenant",
                "is required for provider = \"entra\": the Directory (tenant) ID from the Entra admin center, for example tenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"".into(),
            ),
            (Provider::Entra, Some(t)) if ["common", "organizations", "consumers"].contains(&t.to_ascii_lowercase().as_str()) => issue(
                "tenant",
                format!("'{t}' is a multi-tenant endpoint; give your own tenant id so only your tenant's tokens are accepted"),
            ),
            (Provider::Entra, Some(t)) if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') => {
                issue("tenant", format!("'{t}' is not a tenant id (a GUID) or domain name"))
            }
            (Provider::Okta | Provider::Oidc, Some(_)) => {
                issue("tenant", "only applies to provider = \"entra\"; use issuer for Okta and other OIDC issuers".into())
            }
            _ => {}
        }

        let issuer = f.issuer.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let issuers: Vec<String> = match (provider, &issuer, tenant) {
            (_, Some(iss), _) => {
                if !fetchable(iss) {
                    issue("issuer", format!("'{iss}' must be an https:// URL, exactly the `iss` of the tokens, for example issuer = \"https://example.okta.com/oauth2/default\""));
                } else if provider == Provider::Okta && !iss.contains("/oauth2/") {
                    issue("issuer", format!("'{iss}' is Okta's org authorization server, whose tokens only Okta can validate; create a custom authorization server and use its issuer, for example issuer = \"https://example.okta.com/oauth2/default\""));
                }
                vec![iss.clone()]
            }
            (Provider::Entra, None, Some(t)) => {
                vec![format!("https://sts.windows.net/{t}/"), format!("https://login.microsoftonline.com/{t}/v2.0")]
            }
            (Provider::Entra, None, None) => Vec::new(),
            (_, None, _) => {
                issue("issuer", format!("is required for provider = \"{}\": the exact `iss` of the tokens, for example issuer = \"https://example.okta.com/oauth2/default\"", provider.as_str()));
                Vec::new()
            }
        };

        let audiences: Vec<String> = match f.audience.clone().map(OneOrMany::into_vec) {
            Some(a) => a.into_iter().map(|s| s.trim().to_string()).collect(),
            None if provider == Provider::Entra => vec![ENTRA_SCIM_AUDIENCE.to_string()],
            None => Vec::new(),
        };
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            issue("audience", format!("needs at least one non-empty value: the `aud` your authorization server puts in tokens for scimbridge, for example audience = [\"api://scimbridge\"]{}", if provider == Provider::Entra { "" } else { " (Okta: the authorization server's Audience)" }));
        }

        let mut algorithms = Vec::new();
        match &f.algorithms {
            None => algorithms.extend([Algorithm::RS256, Algorithm::ES256]),
            Some(names) if names.is_empty() => {
                issue("algorithms", "must not be empty; leave it out for the default [\"RS256\", \"ES256\"]".into())
            }
            Some(names) => {
                for n in names {
                    match parse_algorithm(n.trim()) {
                        Ok(a) if !algorithms.contains(&a) => algorithms.push(a),
                        Ok(_) => {}
                        Err(reason) => issue("algorithms", reason),
                    }
                }
            }
        }
        let wants_hs256 = algorithms.contains(&Algorithm::HS256);
        let hs256_secret = match (&f.hs256_secret_env, wants_hs256) {
            (None, true) => {
                issue("algorithms", "HS256 needs a shared secret: add hs256_secret_env = \"NAME_OF_VARIABLE\" holding at least 32 bytes".into());
                None
            }
            (Some(_), false) => {
                issue(
                    "hs256_secret_env",
                    "is only used with HS256; add \"HS256\" to algorithms or remove hs256_secret_env".into(),
                );
                None
            }
            (Some(var), true) => match lookup(var) {
                Some(v) if v.len() >= MIN_HS256_SECRET_BYTES => Some(Secret::new(v)),
                Some(_) => {
                    issue("hs256_secret_env", format!("the secret in {var} must be at least {MIN_HS256_SECRET_BYTES} bytes; `openssl rand -base64 48` makes one"));
                    None
                }
                None => {
                    issue("hs256_secret_env", format!("environment variable {var} is not set"));
                    None
                }
            },
            (None, false) => None,
        };

        let needs_keys = algorithms.iter().any(|a| !is_symmetric(*a));
        let jwks_url = f.jwks_url.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if let Some(u) = jwks_url {
            if !fetchable(u) {
                issue("jwks_url", format!("'{u}' must be an https:// URL, for example jwks_url = \"https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys\""));
            }
        }
        let jwks = match (needs_keys, jwks_url, provider, tenant, &issuer) {
            (false, _, _, _, _) => None,
            (true, Some(u), _, _, _) => Some(JwksSource::Url(u.to_string())),
            (true, None, Provider::Entra, Some(t), _) => {
                Some(JwksSource::Url(format!("https://login.microsoftonline.com/{t}/discovery/v2.0/keys")))
            }
            (true, None, _, _, Some(iss)) => Some(JwksSource::Discovery {
                url: format!("{}{DISCOVERY_PATH}", iss.trim_end_matches('/')),
                issuer: iss.clone(),
            }),
            // The missing tenant or issuer has been reported above.
            (true, None, _, _, None) => None,
        };

        let leeway_secs = f.leeway_secs.unwrap_or(DEFAULT_LEEWAY_SECS);
        if leeway_secs > MAX_LEEWAY_SECS {
            issue("leeway_secs", format!("{leeway_secs} is more than the maximum of {MAX_LEEWAY_SECS}; clocks synced by NTP need far less, for example leeway_secs = 60"));
        }
        for (key, list) in [("required_scopes", &f.required_scopes), ("required_roles", &f.required_roles)] {
            if list.iter().any(|s| s.trim().is_empty()) {
                issue(key, "must not contain empty values".into());
            }
        }

        if issues.len() == before {
            out.push(JwtIssuer {
                name,
                provider,
                issuers,
                audiences,
                jwks,
                algorithms,
                hs256_secret,
                leeway_secs,
                required_scopes: f.required_scopes.iter().map(|s| s.trim().to_string()).collect(),
                required_roles: f.required_roles.iter().map(|s| s.trim().to_string()).collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Blocks {
        jwt: Vec<JwtFile>,
    }

    fn run(toml_text: &str, env: &[(&str, &str)]) -> (Vec<JwtIssuer>, Vec<ConfigIssue>) {
        let blocks: Blocks = toml::from_str(toml_text).expect("toml");
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut issues = Vec::new();
        let out = validate_jwt(&blocks.jwt, &|v| env.get(v).cloned(), &mut issues);
        (out, issues)
    }

    fn keys(issues: &[ConfigIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.key.as_str()).collect()
    }

    #[test]
    fn entra_derives_both_issuers_the_keys_and_the_scim_audience_from_the_tenant() {
        let (out, issues) = run("[[jwt]]\nname = \"entra\"\nprovider = \"entra\"\ntenant = \"t-1\"", &[]);
        assert!(issues.is_empty(), "{issues:?}");
        let j = &out[0];
        assert_eq!(j.issuers, ["https://sts.windows.net/t-1/", "https://login.microsoftonline.com/t-1/v2.0"]);
        assert_eq!(j.audiences, [ENTRA_SCIM_AUDIENCE]);
        assert_eq!(j.jwks, Some(JwksSource::Url("https://login.microsoftonline.com/t-1/discovery/v2.0/keys".into())));
        assert_eq!(j.algorithms, [Algorithm::RS256, Algorithm::ES256]);
        assert_eq!(j.leeway_secs, 60);
    }

    #[test]
    fn okta_keys_come_from_discovery_of_the_issuer() {
        let (out, issues) = run(
            "[[jwt]]\nname = \"okta\"\nprovider = \"okta\"\nissuer = \"https://acme.okta.com/oauth2/aus1\"\naudience = \"api://scim\"",
            &[],
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            out[0].jwks,
            Some(JwksSource::Discovery {
                url: "https://acme.okta.com/oauth2/aus1/.well-known/openid-configuration".into(),
                issuer: "https://acme.okta.com/oauth2/aus1".into()
            })
        );
        assert_eq!(out[0].audiences, ["api://scim"]);
    }

    #[test]
    fn a_block_without_name_issuer_or_audience_is_reported_key_by_key() {
        let (out, issues) = run("[[jwt]]\nprovider = \"oidc\"", &[]);
        assert!(out.is_empty());
        assert_eq!(keys(&issues), ["jwt[0].name", "jwt[0].issuer", "jwt[0].audience"]);
        assert!(issues[1].reason.contains("for example issuer ="), "{}", issues[1].reason);
    }

    #[test]
    fn names_must_be_unique() {
        let t = "[[jwt]]\nname = \"e\"\nprovider = \"entra\"\ntenant = \"a\"\n[[jwt]]\nname = \"e\"\nprovider = \"entra\"\ntenant = \"b\"";
        let (out, issues) = run(t, &[]);
        assert_eq!(out.len(), 1);
        assert_eq!(keys(&issues), ["jwt[1].name"]);
        assert!(issues[0].reason.contains("already used by jwt[0]"));
    }

    #[test]
    fn entra_needs_a_tenant_of_its_own() {
        let (_, issues) = run("[[jwt]]\nname = \"e\"\nprovider = \"entra\"", &[]);
        assert_eq!(keys(&issues), ["jwt[0].tenant"]);
        let (_, issues) = run("[[jwt]]\nname = \"e\"\nprovider = \"entra\"\ntenant = \"common\"", &[]);
        assert!(issues[0].reason.contains("multi-tenant"), "{issues:?}");
        let (_, issues) = run("[[jwt]]\nname = \"o\"\ntenant = \"x\"\nissuer = \"https://i\"\naudience = [\"a\"]", &[]);
        assert_eq!(keys(&issues), ["jwt[0].tenant"]);
    }

    #[test]
    fn none_unknown_and_other_hmac_algorithms_are_refused() {
        let (_, issues) = run(
            "[[jwt]]\nname = \"x\"\nissuer = \"https://i\"\naudience = [\"a\"]\nalgorithms = [\"none\", \"XS1\", \"HS512\"]",
            &[],
        );
        assert_eq!(keys(&issues), ["jwt[0].algorithms"; 3]);
        assert!(issues[0].reason.contains("never accepted"));
        assert!(issues[1].reason.contains("is not one of"));
        assert!(issues[2].reason.contains("only shared-secret algorithm is HS256"));
    }

    #[test]
    fn hs256_needs_a_long_enough_secret_from_the_environment() {
        let base = "[[jwt]]\nname = \"x\"\nissuer = \"https://i\"\naudience = [\"a\"]\nalgorithms = [\"HS256\"]";
        let (_, issues) = run(base, &[]);
        assert_eq!(keys(&issues), ["jwt[0].algorithms"]);
        assert!(issues[0].reason.contains("hs256_secret_env"));
        let with_env = format!("{base}\nhs256_secret_env = \"JWT_SECRET\"");
        let (_, issues) = run(&with_env, &[]);
        assert_eq!(issues[0].reason, "environment variable JWT_SECRET is not set");
        let (_, issues) = run(&with_env, &[("JWT_SECRET", "short")]);
        assert!(issues[0].reason.contains("at least 32 bytes"), "{issues:?}");
        let (out, issues) = run(&with_env, &[("JWT_SECRET", &"s".repeat(32))]);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(out[0].jwks, None, "an HS256-only issuer fetches no keys");
        let (_, issues) =
            run("[[jwt]]\nname = \"x\"\nissuer = \"https://i\"\naudience = \"a\"\nhs256_secret_env = \"S\"", &[]);
        assert_eq!(keys(&issues), ["jwt[0].hs256_secret_env"]);
    }

    #[test]
    fn urls_must_be_https_except_to_this_machine() {
        let (_, issues) = run(
            "[[jwt]]\nname = \"x\"\nissuer = \"http://idp.example.com\"\naudience = [\"a\"]\njwks_url = \"ftp://k\"",
            &[],
        );
        assert_eq!(keys(&issues), ["jwt[0].issuer", "jwt[0].jwks_url"]);
        let (_, issues) =
            run("[[jwt]]\nname = \"x\"\nissuer = \"http://127.0.0.1:9/\"\naudience = [\"a\"]\njwks_url = \"http://localhost:9/k\"", &[]);
        assert!(issues.is_empty(), "{issues:?}");
    }

    #[test]
    fn okta_org_authorization_server_is_refused_with_the_fix() {
        let (_, issues) = run(
            "[[jwt]]\nname = \"o\"\nprovider = \"okta\"\nissuer = \"https://acme.okta.com\"\naudience = \"a\"",
            &[],
        );
        assert_eq!(keys(&issues), ["jwt[0].issuer"]);
        assert!(issues[0].reason.contains("custom authorization server"));
    }

    #[test]
    fn leeway_is_capped_and_unknown_providers_named() {
        let (_, issues) = run(
            "[[jwt]]\nname = \"x\"\nprovider = \"azure\"\nissuer = \"https://i\"\naudience = [\"a\"]\nleeway_secs = 301",
            &[],
        );
        assert_eq!(keys(&issues), ["jwt[0].provider", "jwt[0].leeway_secs"]);
        assert_eq!(issues[0].reason, "'azure' is not one of: entra, okta, oidc");
    }
}
