//! JWT bearer tokens over real HTTP: the server runs in-process, and a tiny IdP on 127.0.0.1:0
//! serves an OIDC discovery document and a JWK Set, counting every fetch. Tokens are minted with
//! the test-only keys in `tests/fixtures/jwt/` (see the README there).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::server::{assert_scim_error, Reply, TestServer, ADMIN_TOKEN, TOKEN};
use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const ENTRA_AUDIENCE: &str = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621";
const HS_SECRET: &str = "an-hs256-shared-secret-of-at-least-32-bytes";

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn jwk(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).expect("fixture JWK is JSON")
}

fn v1_issuer() -> String {
    format!("https://sts.windows.net/{TENANT}/")
}

fn v2_issuer() -> String {
    format!("https://login.microsoftonline.com/{TENANT}/v2.0")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a valid Entra v1 token for the SCIM app, valid for ten minutes.
fn entra_claims() -> Value {
    json!({
        "iss": v1_issuer(), "aud": ENTRA_AUDIENCE, "sub": "entra-provisioning-sp",
        "appid": "entra-app", "tid": TENANT, "iat": now() - 5, "nbf": now() - 5, "exp": now() + 600,
    })
}

/// `claims` with the given top-level fields replaced.
fn with(mut claims: Value, changes: Value) -> Value {
    if let (Some(c), Some(ch)) = (claims.as_object_mut(), changes.as_object()) {
        for (k, v) in ch {
            c.insert(k.clone(), v.clone());
        }
    }
    claims
}

fn header(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    h
}

fn rs256(kid: &str, pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(fixture(pem).as_bytes()).expect("RSA PEM");
    jsonwebtoken::encode(&header(Algorithm::RS256, kid), claims, &key).expect("sign")
}

fn rsa1(claims: &Value) -> String {
    rs256("test-rsa-1", "rsa-1.pem", claims)
}

fn es256(claims: &Value) -> String {
    let key = EncodingKey::from_ec_pem(fixture("ec-1.pem").as_bytes()).expect("EC PEM");
    jsonwebtoken::encode(&header(Algorithm::ES256, "test-ec-1"), claims, &key).expect("sign")
}

fn hs256(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret)).expect("sign")
}

fn segment(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The IdP side: a JWK Set that tests can swap, a discovery document naming it, and counters.
#[derive(Clone)]
struct Idp {
    base: String,
    keys: Arc<Mutex<Value>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl Idp {
    async fn start(keys: &[&str]) -> Idp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let idp = Idp {
            base,
            keys: Arc::new(Mutex::new(json!({"keys": []}))),
            jwks_fetches: Arc::new(AtomicUsize::new(0)),
            discovery_fetches: Arc::new(AtomicUsize::new(0)),
            failing: Arc::new(AtomicBool::new(false)),
        };
        idp.serve_keys(keys);
        let data = web::Data::new(idp.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/keys", web::get().to(jwks))
                .route("/.well-known/openid-configuration", web::get().to(discovery))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        idp
    }

    /// Serves these fixture JWKs from now on.
    fn serve_keys(&self, names: &[&str]) {
        let keys: Vec<Value> = names.iter().map(|n| jwk(n)).collect();
        *self.keys.lock().expect("lock") = json!({"keys": keys});
    }

    fn jwks_url(&self) -> String {
        format!("{}/keys", self.base)
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

async fn jwks(idp: web::Data<Idp>) -> HttpResponse {
    idp.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if idp.failing.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().body("down");
    }
    let body = idp.keys.lock().expect("lock").clone();
    HttpResponse::Ok().json(body)
}

async fn discovery(idp: web::Data<Idp>) -> HttpResponse {
    idp.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().json(
        json!({"issuer": idp.base, "jwks_uri": idp.jwks_url(), "id_token_signing_alg_values_supported": ["RS256"]}),
    )
}

/// An Entra block whose keys come from the test IdP, plus `extra` TOML lines.
fn entra_toml(idp: &Idp, extra: &str) -> String {
    format!(
        "[[jwt]]\nname = \"entra\"\nprovider = \"entra\"\ntenant = \"{TENANT}\"\njwks_url = \"{}\"\n{extra}\n",
        idp.jwks_url()
    )
}

/// A server accepting Entra tokens whose keys the test IdP serves.
async fn entra_server(idp: &Idp, extra: &str) -> TestServer {
    TestServer::start_toml(&many_failures_allowed(&entra_toml(idp, extra)), &[]).await
}

async fn get_as(s: &TestServer, path: &str, token: &str) -> Reply {
    s.send_raw(Method::GET, path, None, &[], Some(&format!("Bearer {token}"))).await
}

/// Asserts a 401 with a SCIM error body that tells the client the JWT is invalid.
fn assert_invalid_token(r: &Reply) {
    assert_scim_error(r, 401, None);
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(www.starts_with("Bearer") && www.contains("error=\"invalid_token\""), "{www}");
}

#[tokio::test]
async fn rs256_and_es256_tokens_from_both_entra_issuers_are_accepted() {
    let idp = Idp::start(&["rsa-1.jwk.json", "ec-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    let r = get_as(&s, "/Users", &rsa1(&entra_claims())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v2 = with(entra_claims(), json!({"iss": v2_issuer(), "azp": "entra-app", "ver": "2.0"}));
    let r = get_as(&s, "/Users", &es256(&v2)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(idp.fetches(), 1, "one load serves both tokens");
}

#[tokio::test]
async fn an_oidc_issuer_s_keys_are_found_through_discovery() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let toml = format!("[[jwt]]\nname = \"okta\"\nissuer = \"{}\"\naudience = [\"api://scimbridge\"]\n", idp.base);
    let s = TestServer::start_toml(&many_failures_allowed(&toml), &[]).await;
    let claims = json!({"iss": idp.base, "aud": "api://scimbridge", "cid": "0oa-okta-client", "scp": ["scim"], "exp": now() + 600});
    let r = get_as(&s, "/Users", &rsa1(&claims)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(idp.discovery_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test]
async fn hs256_is_accepted_only_for_the_issuer_with_a_shared_secret() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let toml = format!(
        "{}[[jwt]]\nname = \"internal\"\nissuer = \"https://issuer.internal.example\"\naudience = [\"scimbridge\"]\nalgorithms = [\"HS256\"]\nhs256_secret_env = \"TEST_JWT_HS_SECRET\"\n",
        entra_toml(&idp, "")
    );
    let s = TestServer::start_toml(&many_failures_allowed(&toml), &[("TEST_JWT_HS_SECRET", HS_SECRET)]).await;
    let internal =
        json!({"iss": "https://issuer.internal.example", "aud": "scimbridge", "sub": "job", "exp": now() + 600});
    let r = get_as(&s, "/Users", &hs256(HS_SECRET.as_bytes(), None, &internal)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_invalid_token(
        &get_as(&s, "/Users", &hs256(b"another-secret-that-is-32-bytes-long!", None, &internal)).await,
    );
    // The Entra block allows RS256 and ES256 only: the same secret does not work for its issuer.
    assert_invalid_token(&get_as(&s, "/Users", &hs256(HS_SECRET.as_bytes(), None, &entra_claims())).await);
}

#[tokio::test]
async fn unsigned_tokens_with_alg_none_are_refused() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = format!("{}.{}.", segment(&json!({"alg": alg, "typ": "JWT"})), segment(&entra_claims()));
        assert_invalid_token(&get_as(&s, "/Users", &token).await);
    }
    // A valid token with its signature stripped is no better.
    let valid = rsa1(&entra_claims());
    let stripped = &valid[..valid.rfind('.').expect("dot") + 1];
    assert_invalid_token(&get_as(&s, "/Users", stripped).await);
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let public_pem = fixture("rsa-1.pub.pem");
    let jwk_n = jwk("rsa-1.jwk.json")["n"].as_str().expect("n").to_string();
    // Default algorithms: HS256 is not even considered.
    let s = entra_server(&idp, "").await;
    for secret in [public_pem.as_bytes(), jwk_n.as_bytes()] {
        assert_invalid_token(&get_as(&s, "/Users", &hs256(secret, Some("test-rsa-1"), &entra_claims())).await);
    }
    s.stop().await;
    // Even where HS256 is allowed, it only ever verifies with the configured secret.
    let s = TestServer::start_toml(
        &entra_toml(&idp, "algorithms = [\"RS256\", \"HS256\"]\nhs256_secret_env = \"TEST_JWT_HS_SECRET\""),
        &[("TEST_JWT_HS_SECRET", HS_SECRET)],
    )
    .await;
    assert_invalid_token(
        &get_as(&s, "/Users", &hs256(public_pem.as_bytes(), Some("test-rsa-1"), &entra_claims())).await,
    );
    let r = get_as(&s, "/Users", &rsa1(&entra_claims())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn wrong_audience_wrong_issuer_and_a_foreign_key_are_refused() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    let cases = [
        with(entra_claims(), json!({"aud": "api://some-other-app"})),
        with(entra_claims(), json!({"aud": ["api://a", "api://b"]})),
        with(entra_claims(), json!({"iss": "https://sts.windows.net/99999999-0000-0000-0000-000000000000/"})),
        with(entra_claims(), json!({"iss": "https://login.microsoftonline.com/common/v2.0"})),
        with(entra_claims(), json!({"aud": null})),
    ];
    for claims in &cases {
        assert_invalid_token(&get_as(&s, "/Users", &rsa1(claims)).await);
    }
    // Signed by a key the IdP does not publish, under a kid it does.
    assert_invalid_token(&get_as(&s, "/Users", &rs256("test-rsa-1", "rsa-2.pem", &entra_claims())).await);
    let r = get_as(&s, "/Users", &rsa1(&with(entra_claims(), json!({"aud": ["api://a", ENTRA_AUDIENCE]})))).await;
    assert_eq!(r.status, StatusCode::OK, "an aud list containing ours is accepted: {}", r.text);
}

#[tokio::test]
async fn exp_and_nbf_are_checked_with_the_configured_leeway() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "leeway_secs = 60").await;
    let t = now();
    let r = get_as(&s, "/Users", &rsa1(&with(entra_claims(), json!({"exp": t - 30})))).await;
    assert_eq!(r.status, StatusCode::OK, "expired 30 s ago is inside the leeway: {}", r.text);
    let r = get_as(&s, "/Users", &rsa1(&with(entra_claims(), json!({"nbf": t + 30})))).await;
    assert_eq!(r.status, StatusCode::OK, "valid in 30 s is inside the leeway: {}", r.text);
    for changes in [json!({"exp": t - 120}), json!({"nbf": t + 120}), json!({"exp": null})] {
        assert_invalid_token(&get_as(&s, "/Users", &rsa1(&with(entra_claims(), changes))).await);
    }
}

#[tokio::test]
async fn an_unknown_kid_triggers_one_refresh_that_picks_up_a_rotated_key() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    let r = get_as(&s, "/Users", &rsa1(&entra_claims())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(idp.fetches(), 1);
    // The IdP rotates: key 2 in, key 1 retired.
    idp.serve_keys(&["rsa-2.jwk.json"]);
    let rotated = rs256("test-rsa-2", "rsa-2.pem", &entra_claims());
    let r = get_as(&s, "/Users", &rotated).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(idp.fetches(), 2, "exactly one refresh for the new kid");
    let r = get_as(&s, "/Users", &rotated).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(idp.fetches(), 2, "the new key is cached");
    assert_invalid_token(&get_as(&s, "/Users", &rsa1(&entra_claims())).await);
    assert_eq!(idp.fetches(), 2, "the retired key is gone, and the floor holds");
}

#[tokio::test]
async fn spraying_random_kids_refreshes_at_most_once_per_floor() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    let r = get_as(&s, "/Users", &rsa1(&entra_claims())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let tokens: Vec<String> =
        (0..40).map(|i| rs256(&format!("spray-{i}-{}", uuid::Uuid::new_v4()), "rsa-1.pem", &entra_claims())).collect();
    let replies = futures_util::future::join_all(tokens.iter().map(|t| get_as(&s, "/Users", t))).await;
    for r in &replies {
        assert_invalid_token(r);
    }
    assert_eq!(idp.fetches(), 2, "40 unknown kids: one refresh (plus the first load)");
    let r = get_as(&s, "/Users", &rsa1(&entra_claims())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn when_the_key_endpoint_fails_the_cached_keys_keep_working() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    assert_eq!(get_as(&s, "/Users", &rsa1(&entra_claims())).await.status, StatusCode::OK);
    idp.failing.store(true, Ordering::SeqCst);
    assert_invalid_token(&get_as(&s, "/Users", &rs256("test-rsa-2", "rsa-2.pem", &entra_claims())).await);
    assert_eq!(idp.fetches(), 2, "the refresh was tried");
    let r = get_as(&s, "/Users", &rsa1(&entra_claims())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn jwts_are_never_accepted_on_the_admin_api_or_metrics() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    let token = rsa1(&entra_claims());
    for path in ["/admin/jobs", "/admin/audit", "/metrics"] {
        let r = get_as(&s, &format!("{}{path}", s.root), &token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
    }
    let r = get_as(&s, &format!("{}/metrics", s.root), ADMIN_TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "the admin token still works: {}", r.text);
    let r = get_as(&s, "/Users", TOKEN).await;
    assert_eq!(r.status, StatusCode::OK, "static IdP tokens still work next to JWT issuers: {}", r.text);
}

#[tokio::test]
async fn the_audit_actor_is_the_issuer_name_and_the_subject() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "").await;
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "jwt.user@example.com", "active": true});
    let r = s
        .send_raw(
            Method::POST,
            "/Users",
            Some(body.to_string().into_bytes()),
            &[("Content-Type", "application/scim+json")],
            Some(&format!("Bearer {}", rsa1(&entra_claims()))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().expect("id");
    let audit = s.store().audit_of(id).expect("audit");
    assert_eq!(audit[0]["actor"], "entra:entra-provisioning-sp", "{audit:?}");
    // Without `sub`, Entra's client id names the caller.
    let no_sub = with(entra_claims(), json!({"sub": null}));
    let r = get_as(&s, "/Users", &rsa1(&no_sub)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn required_roles_and_scopes_must_all_be_present() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    let s = entra_server(&idp, "required_roles = [\"SCIM.Provision\"]\nrequired_scopes = [\"scim.write\"]").await;
    assert_invalid_token(&get_as(&s, "/Users", &rsa1(&entra_claims())).await);
    let roles_only = with(entra_claims(), json!({"roles": ["SCIM.Provision"]}));
    assert_invalid_token(&get_as(&s, "/Users", &rsa1(&roles_only)).await);
    let both = with(entra_claims(), json!({"roles": ["Other", "SCIM.Provision"], "scp": "openid scim.write"}));
    let r = get_as(&s, "/Users", &rsa1(&both)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn oversized_and_garbled_jwts_get_a_401_with_a_scim_body() {
    let idp = Idp::start(&["rsa-1.jwk.json"]).await;
    // Headers are capped at 16 KiB by default (431); raise that so the JWT's own size check runs.
    let s = TestServer::start_toml(
        &format!("{}max_header_bytes = 65536\n", many_failures_allowed(&entra_toml(&idp, ""))),
        &[],
    )
    .await;
    let huge = with(entra_claims(), json!({"pad": "x".repeat(17 * 1024)}));
    let r = get_as(&s, "/Users", &rsa1(&huge)).await;
    assert_scim_error(&r, 401, None);
    let garbled = format!("{}.not-json.c2ln", segment(&json!({"alg": "RS256", "kid": "test-rsa-1"})));
    assert_invalid_token(&get_as(&s, "/Users", &garbled).await);
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &entra_claims(),
        &EncodingKey::from_rsa_pem(fixture("rsa-1.pem").as_bytes()).expect("pem"),
    )
    .expect("sign");
    assert_invalid_token(&get_as(&s, "/Users", &no_kid).await);
}

#[test]
fn a_bad_jwt_block_fails_the_config_with_its_key() {
    let file = scimbridge::config::parse_file(
        "[[jwt]]\nname = \"entra\"\nprovider = \"entra\"\naudience = []\nleeway_secs = 900",
    )
    .expect("toml");
    match scimbridge::config::validate(file, &Default::default()) {
        Err(scimbridge::config::ConfigError::Invalid(issues)) => {
            let keys: Vec<&str> = issues.iter().map(|i| i.key.as_str()).collect();
            assert_eq!(keys, ["jwt[0].tenant", "jwt[0].audience", "jwt[0].leeway_secs"], "{issues:?}");
        }
        other => panic!("expected issues, got {other:?}"),
    }
    let err = scimbridge::config::parse_file("[[jwt]]\nname = \"x\"\naudiance = [\"a\"]").expect_err("typo");
    assert!(err.contains("audiance"), "{err}");
}

/// These tests send many bad tokens from one address on purpose; lift the per-address
/// failed-authentication limit (tested in hostile.rs) so they see the 401s they assert on.
fn many_failures_allowed(toml: &str) -> String {
    format!("{toml}\n[limits]\nauth_failures_per_minute = 100000\n")
}
