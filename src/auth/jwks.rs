//! One issuer's signing keys (RFC 7517 JWK Set), fetched with reqwest and cached by `kid`.
//!
//! Refreshes are rationed because the `kid` in a token is attacker-chosen: a token with an unknown
//! `kid` may trigger a refetch, but at most one per `refresh_floor`, and concurrent misses share
//! one fetch. The first successful load does not start the floor, so an IdP that rotated just after
//! we started is picked up at the first miss. A set older than `max_age` keeps serving while a
//! background task refreshes it. A failed fetch is logged (naming the issuer, never a token) and the
//! keys already loaded stay in use; an empty or unusable set counts as a failure.
//!
//! Only asymmetric keys are taken from a set: a `kty: oct` key in a JWKS would let anyone who can
//! read the set forge HS256 tokens, so HS256 verifies only against the configured shared secret.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::jwt_config::JwksSource;

/// Largest discovery document or key set we read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// How often keys may be refetched.
#[derive(Debug, Clone, Copy)]
pub struct CacheTiming {
    /// At most one refetch per this interval (unknown `kid`s, failures, age).
    pub refresh_floor: Duration,
    /// A set older than this is refreshed in the background on next use.
    pub max_age: Duration,
}

impl Default for CacheTiming {
    fn default() -> Self {
        CacheTiming { refresh_floor: Duration::from_secs(30), max_age: Duration::from_secs(3600) }
    }
}

/// A public key and what it may verify.
pub(crate) struct VerifyKey {
    pub(crate) key: DecodingKey,
    kind: KeyKind,
    /// The JWK's own `alg`, when it names one.
    alg: Option<Algorithm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec(EllipticCurve),
    Ed25519,
}

impl VerifyKey {
    /// Whether this key may verify a token signed with `alg`: the key type and curve must match,
    /// and so must the JWK's `alg` when it has one.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        use Algorithm::*;
        let kind_fits = match &self.kind {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::Ec(EllipticCurve::P256) => alg == ES256,
            KeyKind::Ec(EllipticCurve::P384) => alg == ES384,
            KeyKind::Ec(_) => false,
            KeyKind::Ed25519 => alg == EdDSA,
        };
        kind_fits && self.alg.is_none_or(|a| a == alg)
    }
}

type KeyMap = HashMap<String, Arc<VerifyKey>>;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} did not send JSON: {source}")]
    Json { url: String, source: serde_json::Error },
    #[error("discovery document {url}: {reason}")]
    Discovery { url: String, reason: String },
    #[error("{url} holds no usable signing key (RSA, EC P-256/P-384 or Ed25519 with a kid)")]
    NoKeys { url: String },
}

#[derive(Default)]
struct State {
    keys: Arc<KeyMap>,
    loaded_at: Option<Instant>,
    /// Start of the last fetch that counts against the floor.
    last_counted: Option<Instant>,
    /// The `jwks_uri` a discovery document named, reused until a fetch fails.
    discovered: Option<String>,
}

struct Inner {
    issuer_name: String,
    source: JwksSource,
    client: reqwest::Client,
    timing: CacheTiming,
    // A std Mutex: held only to copy or swap the snapshot, never across an await.
    state: Mutex<State>,
    // Held for the whole fetch, so concurrent misses wait for one fetch instead of each making one.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

/// The cached key set of one issuer; clones share the cache.
#[derive(Clone)]
pub(crate) struct KeyCache {
    inner: Arc<Inner>,
}

/// Whether a fetch counted against the floor may start at `now`.
fn may_fetch(last_counted: Option<Instant>, now: Instant, floor: Duration) -> bool {
    last_counted.is_none_or(|t| now.saturating_duration_since(t) >= floor)
}

impl KeyCache {
    pub(crate) fn new(issuer_name: &str, source: JwksSource, client: reqwest::Client, timing: CacheTiming) -> Self {
        KeyCache {
            inner: Arc::new(Inner {
                issuer_name: issuer_name.to_string(),
                source,
                client,
                timing,
                state: Mutex::new(State::default()),
                fetching: Arc::new(tokio::sync::Mutex::new(())),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key with this `kid`, fetching the set when it is not known and the floor allows.
    /// `None` when no such key is (or, within the floor, can be made) known.
    pub(crate) async fn key(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        let (hit, stale) = {
            let st = self.state();
            let stale = st.loaded_at.is_some_and(|t| t.elapsed() >= self.inner.timing.max_age);
            (st.keys.get(kid).cloned(), stale)
        };
        if let Some(k) = hit {
            if stale {
                self.refresh_in_background();
            }
            return Some(k);
        }
        let _fetching = self.inner.fetching.lock().await;
        // Someone else's fetch, which we just waited for, may have brought the key.
        if let Some(k) = self.state().keys.get(kid).cloned() {
            return Some(k);
        }
        if !may_fetch(self.state().last_counted, Instant::now(), self.inner.timing.refresh_floor) {
            return None;
        }
        self.fetch_and_store().await;
        self.state().keys.get(kid).cloned()
    }

    /// Loads the set once, in the background (at start, so the first request does not wait).
    pub(crate) fn warm_up(&self) {
        let Ok(guard) = self.inner.fetching.clone().try_lock_owned() else { return };
        let this = self.clone();
        tokio::spawn(async move {
            let _fetching = guard;
            if this.state().loaded_at.is_none() {
                this.fetch_and_store().await;
            }
        });
    }

    fn refresh_in_background(&self) {
        if !may_fetch(self.state().last_counted, Instant::now(), self.inner.timing.refresh_floor) {
            return;
        }
        // Already fetching: that fetch is the refresh.
        let Ok(guard) = self.inner.fetching.clone().try_lock_owned() else { return };
        let this = self.clone();
        tokio::spawn(async move {
            let _fetching = guard;
            this.fetch_and_store().await;
        });
    }

    /// Fetches the set and swaps it in; on failure keeps the old set. Call with `fetching` held.
    async fn fetch_and_store(&self) {
        let started = Instant::now();
        let (cold, discovered) = {
            let st = self.state();
            (st.loaded_at.is_none(), st.discovered.clone())
        };
        let result = self.fetch(discovered).await;
        let mut st = self.state();
        match result {
            Ok((url, keys)) => {
                tracing::info!(issuer = %self.inner.issuer_name, keys = keys.len(), "Loaded the JWT signing keys.");
                st.keys = Arc::new(keys);
                st.loaded_at = Some(Instant::now());
                if matches!(self.inner.source, JwksSource::Discovery { .. }) {
                    st.discovered = Some(url);
                }
                if !cold {
                    st.last_counted = Some(started);
                }
            }
            Err(e) => {
                tracing::warn!(issuer = %self.inner.issuer_name, error = %e, cached_keys = st.keys.len(), "Could not fetch the JWT signing keys; the keys already loaded stay in use.");
                st.last_counted = Some(started);
                st.discovered = None;
            }
        }
    }

    async fn fetch(&self, discovered: Option<String>) -> Result<(String, KeyMap), FetchError> {
        let url = match (&self.inner.source, discovered) {
            (JwksSource::Url(u), _) => u.clone(),
            (JwksSource::Discovery { .. }, Some(u)) => u,
            (JwksSource::Discovery { url, issuer }, None) => self.discover(url, issuer).await?,
        };
        let doc = get_json(&self.inner.client, &url).await?;
        let keys = parse_jwks(&doc);
        if keys.is_empty() {
            return Err(FetchError::NoKeys { url });
        }
        Ok((url, keys))
    }

    /// The `jwks_uri` of a discovery document whose `issuer` is ours (OpenID Connect Discovery
    /// 1.0 §4.3: it must be identical, or the document is someone else's).
    async fn discover(&self, url: &str, issuer: &str) -> Result<String, FetchError> {
        let doc = get_json(&self.inner.client, url).await?;
        let fail = |reason: String| FetchError::Discovery { url: url.to_string(), reason };
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(fail(format!("its issuer is not {issuer}")));
        }
        let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or_else(|| fail("it has no jwks_uri".into()))?;
        match reqwest::Url::parse(jwks_uri) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => Ok(jwks_uri.to_string()),
            _ => Err(fail(format!("its jwks_uri {jwks_uri} is not an https URL"))),
        }
    }
}

fn is_loopback(u: &reqwest::Url) -> bool {
    matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

/// GETs a JSON document, reading at most `MAX_DOCUMENT_BYTES`.
async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, FetchError> {
    let http = |source| FetchError::Http { url: url.to_string(), source };
    let mut res = client.get(url).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(http)?;
    if !res.status().is_success() {
        return Err(FetchError::Status { url: url.to_string(), status: res.status().as_u16() });
    }
    if res.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(FetchError::TooLarge { url: url.to_string() });
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(http)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchError::TooLarge { url: url.to_string() });
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|source| FetchError::Json { url: url.to_string(), source })
}

/// The usable signing keys of a JWK Set, by `kid`. Keys we cannot use (no `kid`, `use` other than
/// `sig`, an encryption `alg`, symmetric, unknown type) are skipped rather than failing the set:
/// Entra and Okta sets carry fields and keys beyond what we need.
fn parse_jwks(doc: &Value) -> KeyMap {
    let mut out = KeyMap::new();
    for raw in doc.get("keys").and_then(Value::as_array).into_iter().flatten() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if jwk.common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature) {
            continue;
        }
        let alg = match jwk.common.key_algorithm {
            Some(ka) => match Algorithm::from_str(&ka.to_string()) {
                Ok(a) => Some(a),
                Err(_) => continue,
            },
            None => None,
        };
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyKind::Rsa,
            AlgorithmParameters::EllipticCurve(p) => KeyKind::Ec(p.curve.clone()),
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => KeyKind::Ed25519,
            AlgorithmParameters::OctetKeyPair(_) | AlgorithmParameters::OctetKey(_) => continue,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        out.entry(kid).or_insert_with(|| Arc::new(VerifyKey { key, kind, alg }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RSA_N: &str = "u1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0_IzW7yWR7QkrmBL7jTKEn5u-qKhbwKfBstIs-bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW_VDL5AaWTg0nLVkjRo9z-40RQzuVaE8AkAFmxZzow3x-VJYKdjykkJ0iT9wCS0DRTXu269V264Vf_3jvredZiKRkgwlL9xNAwxXFg0x_XFw005UWVRIkdgcKWTjpBP2dPwVZ4WWC-9aGVd-Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbcmw";

    fn rsa(kid: &str, extra: Value) -> Value {
        let mut k = json!({"kty": "RSA", "kid": kid, "n": RSA_N, "e": "AQAB"});
        if let (Some(k), Some(e)) = (k.as_object_mut(), extra.as_object()) {
            k.extend(e.clone());
        }
        k
    }

    #[test]
    fn the_floor_allows_one_fetch_per_interval() {
        let t0 = Instant::now();
        let floor = Duration::from_secs(30);
        assert!(may_fetch(None, t0, floor));
        assert!(!may_fetch(Some(t0), t0 + Duration::from_secs(29), floor));
        assert!(may_fetch(Some(t0), t0 + floor, floor));
    }

    #[test]
    fn keys_without_kid_or_for_encryption_or_symmetric_are_skipped() {
        let doc = json!({"keys": [
            rsa("sig", json!({"use": "sig", "x5t": "abc", "issuer": "https://login.microsoftonline.com/t/v2.0"})),
            rsa("enc", json!({"use": "enc"})),
            rsa("oaep", json!({"alg": "RSA-OAEP"})),
            {"kty": "RSA", "n": RSA_N, "e": "AQAB"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "odd"}
        ]});
        let keys = parse_jwks(&doc);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["sig"]);
    }

    #[test]
    fn a_key_verifies_only_its_own_family_and_alg() {
        let doc = json!({"keys": [rsa("any", json!({})), rsa("rs256", json!({"alg": "RS256"}))]});
        let keys = parse_jwks(&doc);
        assert!(keys["any"].fits(Algorithm::RS256) && keys["any"].fits(Algorithm::PS256));
        assert!(!keys["any"].fits(Algorithm::HS256) && !keys["any"].fits(Algorithm::ES256));
        assert!(keys["rs256"].fits(Algorithm::RS256) && !keys["rs256"].fits(Algorithm::RS512));
    }
}
