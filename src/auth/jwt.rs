//! JWT bearer tokens from OAuth issuers (Entra ID, Okta, any OIDC issuer), for the SCIM API only.
//!
//! A token is accepted when, in this order: it is at most 16 KiB; it is a JWS compact
//! serialization (RFC 7515 §7.1); its unverified `iss` names a configured issuer (that only picks
//! the issuer, nothing is trusted yet); its header `alg` is in that issuer's list; the key is the
//! issuer's HS256 shared secret for `HS256` and otherwise the JWKS key named by `kid` whose type
//! fits `alg` (so a public key is never used as an HMAC secret, the "algorithm confusion" attack);
//! the signature verifies; `exp`, `nbf` (with the issuer's leeway), `iss` and `aud` hold (RFC 7519
//! §4.1); and the required scopes and roles are present. `none` never parses as an algorithm.
//!
//! The principal is `<issuer name>:<subject>`, the subject being `sub`, else `appid` (Entra v1),
//! `azp` (Entra v2), `cid` (Okta) or `client_id` (RFC 9068). Its scope is always `Scope::Scim`:
//! a JWT never reaches the admin API.

use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::jwks::{CacheTiming, KeyCache};
use super::jwt_config::JwtIssuer;
use super::{Principal, Scope};

/// Longest bearer value treated as a JWT; Entra tokens are a few KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
const MAX_KID_CHARS: usize = 256;
const MAX_SUBJECT_CHARS: usize = 256;
/// Claims that name the caller, in order of preference.
const SUBJECT_CLAIMS: [&str; 5] = ["sub", "appid", "azp", "cid", "client_id"];
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a JWT was refused. Logged; the client only learns that the token is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("JWTs are accepted on the SCIM API only")]
    WrongScope,
    #[error("no configured issuer has the token's iss")]
    UnknownIssuer,
    #[error("the token's alg is not accepted for this issuer")]
    Algorithm,
    #[error("the token has no kid")]
    MissingKid,
    #[error("no signing key has the token's kid")]
    UnknownKey,
    #[error("the signing key does not fit the token's alg")]
    KeyMismatch,
    #[error("the signature is not valid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's aud is not accepted")]
    Audience,
    #[error("the token's iss is not accepted")]
    Issuer,
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    #[error("the token lacks a required scope")]
    Scope,
    #[error("the token lacks a required role")]
    Role,
    #[error("the token names no subject (sub, appid, azp, cid or client_id)")]
    NoSubject,
}

/// A refused JWT: the configured issuer it was checked against (if one matched) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRejection {
    pub issuer: Option<String>,
    pub reason: Rejection,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("cannot build the HTTP client for JWT signing keys: {0}")]
    Client(#[from] reqwest::Error),
}

struct IssuerCheck {
    cfg: JwtIssuer,
    keys: Option<KeyCache>,
    hs256: Option<DecodingKey>,
}

/// Validates JWT bearer tokens against the configured issuers.
pub struct JwtValidator {
    issuers: Vec<IssuerCheck>,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.issuers.iter().map(|i| i.cfg.name.as_str()).collect();
        f.debug_struct("JwtValidator").field("issuers", &names).finish()
    }
}

fn b64_json(segment: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The three segments and decoded header and claims of a compact JWS, unverified.
fn split(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    let base64url = |x: &str| x.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if parts.next().is_some() || h.is_empty() || p.is_empty() || !base64url(h) || !base64url(p) || !base64url(s) {
        return None;
    }
    let header = b64_json(h).filter(|v| v.get("alg").is_some_and(Value::is_string))?;
    Some((header, b64_json(p)?))
}

/// Whether a bearer value is shaped like a JWT: three base64url segments (the last may be empty,
/// as in an unsigned token, which is then refused as a JWT) and a JSON header with an `alg`.
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_BYTES && token.bytes().filter(|b| *b == b'.').count() == 2 && {
        let header = token.split('.').next().unwrap_or_default();
        b64_json(header).is_some_and(|h| h.get("alg").is_some_and(Value::is_string))
    }
}

fn map_error(e: &jsonwebtoken::errors::Error) -> Rejection {
    match e.kind() {
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidAudience => Rejection::Audience,
        ErrorKind::InvalidIssuer => Rejection::Issuer,
        ErrorKind::MissingRequiredClaim(c) => Rejection::MissingClaim(c.clone()),
        ErrorKind::InvalidSignature | ErrorKind::Crypto(_) => Rejection::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::MissingAlgorithm => {
            Rejection::Algorithm
        }
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            Rejection::KeyMismatch
        }
        _ => Rejection::Malformed,
    }
}

/// Scope values from `scp` (Entra: space-separated; Okta: a list) and `scope` (RFC 8693 §4.2).
fn scopes(claims: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for name in ["scp", "scope"] {
        match claims.get(name) {
            Some(Value::String(s)) => out.extend(s.split_whitespace()),
            Some(Value::Array(a)) => out.extend(a.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    out
}

fn roles(claims: &Value) -> Vec<&str> {
    match claims.get("roles") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

fn subject(claims: &Value) -> Option<&str> {
    SUBJECT_CLAIMS
        .iter()
        .filter_map(|c| claims.get(*c).and_then(Value::as_str))
        .find(|s| !s.is_empty())
        .filter(|s| s.chars().count() <= MAX_SUBJECT_CHARS && !s.chars().any(char::is_control))
}

impl IssuerCheck {
    async fn verify(&self, token: &str, header: &Value) -> Result<Principal, Rejection> {
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or_default();
        let alg = Algorithm::from_str(alg_name).map_err(|_| Rejection::Algorithm)?;
        if !self.cfg.algorithms.contains(&alg) {
            return Err(Rejection::Algorithm);
        }
        let key = if alg == Algorithm::HS256 {
            self.hs256.clone().ok_or(Rejection::Algorithm)?
        } else {
            let kid = header.get("kid").and_then(Value::as_str).ok_or(Rejection::MissingKid)?;
            if kid.is_empty() || kid.chars().count() > MAX_KID_CHARS {
                return Err(Rejection::UnknownKey);
            }
            let cache = self.keys.as_ref().ok_or(Rejection::Algorithm)?;
            let k = cache.key(kid).await.ok_or(Rejection::UnknownKey)?;
            if !k.fits(alg) {
                return Err(Rejection::KeyMismatch);
            }
            k.key.clone()
        };
        let mut v = Validation::new(alg);
        v.leeway = self.cfg.leeway_secs;
        v.validate_nbf = true;
        v.set_issuer(&self.cfg.issuers);
        v.set_audience(&self.cfg.audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| map_error(&e))?;
        let claims = &data.claims;
        let have = scopes(claims);
        if !self.cfg.required_scopes.iter().all(|s| have.contains(&s.as_str())) {
            return Err(Rejection::Scope);
        }
        let have = roles(claims);
        if !self.cfg.required_roles.iter().all(|r| have.contains(&r.as_str())) {
            return Err(Rejection::Role);
        }
        let sub = subject(claims).ok_or(Rejection::NoSubject)?;
        Ok(Principal { name: format!("{}:{sub}", self.cfg.name), scope: Scope::Scim })
    }
}

impl JwtValidator {
    /// A validator for these issuers with the default key-cache timing (refetch at most every
    /// 30 s, refresh sets older than 1 h).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(issuers: &[JwtIssuer]) -> Result<JwtValidator, JwtSetupError> {
        Self::with_timing(issuers, CacheTiming::default())
    }

    /// As `new`, with the key-cache timing given.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn with_timing(issuers: &[JwtIssuer], timing: CacheTiming) -> Result<JwtValidator, JwtSetupError> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("scimbridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let issuers = issuers
            .iter()
            .map(|cfg| IssuerCheck {
                keys: cfg.jwks.clone().map(|src| KeyCache::new(&cfg.name, src, client.clone(), timing)),
                hs256: cfg.hs256_secret.as_ref().map(|s| DecodingKey::from_secret(s.expose().as_bytes())),
                cfg: cfg.clone(),
            })
            .collect();
        Ok(JwtValidator { issuers })
    }

    /// Starts loading every issuer's keys in the background. Needs a Tokio runtime.
    pub fn warm_up(&self) {
        for keys in self.issuers.iter().filter_map(|i| i.keys.as_ref()) {
            keys.warm_up();
        }
    }

    /// The principal a JWT stands for, if it is valid for `scope`.
    ///
    /// # Errors
    /// A `JwtRejection` naming the matched issuer (if any) and the first check that failed.
    pub async fn check(&self, token: &str, scope: Scope) -> Result<Principal, JwtRejection> {
        let reject = |reason| JwtRejection { issuer: None, reason };
        if scope != Scope::Scim {
            return Err(reject(Rejection::WrongScope));
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(reject(Rejection::TooLarge));
        }
        let (header, claims) = split(token).ok_or(reject(Rejection::Malformed))?;
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        let mut last = reject(Rejection::UnknownIssuer);
        // Several blocks may share an issuer (different audiences or roles): any may accept.
        for check in self.issuers.iter().filter(|c| c.cfg.issuers.iter().any(|i| i == iss)) {
            match check.verify(token, &header).await {
                Ok(p) => return Ok(p),
                Err(reason) => last = JwtRejection { issuer: Some(check.cfg.name.clone()), reason },
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seg(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn jwt_shape_is_three_base64url_segments_with_an_alg_header() {
        let h = seg(&json!({"alg": "RS256", "kid": "k"}));
        let p = seg(&json!({"sub": "x"}));
        assert!(looks_like_jwt(&format!("{h}.{p}.c2ln")));
        assert!(looks_like_jwt(&format!("{}.{p}.", seg(&json!({"alg": "none"})))));
        assert!(!looks_like_jwt("scb_0123456789abcdef"));
        assert!(!looks_like_jwt(&format!("{h}.{p}")));
        assert!(!looks_like_jwt(&format!("{}.{p}.x", seg(&json!({"typ": "JWT"})))));
        assert!(!looks_like_jwt("a.b.c"));
    }

    #[test]
    fn scopes_come_from_scp_strings_and_lists_and_scope() {
        let c = json!({"scp": "a b", "scope": ["c"]});
        assert_eq!(scopes(&c), ["a", "b", "c"]);
        assert_eq!(roles(&json!({"roles": ["SCIM.Provision"]})), ["SCIM.Provision"]);
    }

    #[test]
    fn the_subject_prefers_sub_then_client_ids() {
        assert_eq!(subject(&json!({"sub": "s", "appid": "a"})), Some("s"));
        assert_eq!(subject(&json!({"appid": "a", "azp": "z"})), Some("a"));
        assert_eq!(subject(&json!({"sub": "", "azp": "z"})), Some("z"));
        assert_eq!(subject(&json!({"sub": "a\nb"})), None);
        assert_eq!(subject(&json!({})), None);
    }

    #[tokio::test]
    async fn jwts_are_refused_outside_the_scim_api_and_when_oversized() {
        let v = JwtValidator::new(&[]).expect("client");
        let e = v.check("a.b.c", Scope::Admin).await.expect_err("admin");
        assert_eq!(e.reason, Rejection::WrongScope);
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(v.check(&big, Scope::Scim).await.expect_err("big").reason, Rejection::TooLarge);
        let h = seg(&json!({"alg": "RS256"}));
        let p = seg(&json!({"iss": "https://nobody"}));
        assert_eq!(
            v.check(&format!("{h}.{p}.x"), Scope::Scim).await.expect_err("iss").reason,
            Rejection::UnknownIssuer
        );
    }
}
