//! The HTTP surface: SCIM 2.0 under `/scim/v2`, discovery, `/Bulk`, `/.search`, health and
//! metrics, on actix-web. Each request passes auth → size limit → request id → handler;
//! handlers are thin: extract, call `scim/` and `store/`, map errors once (`error.rs`).
//!
//! The server takes an already bound listener, so tests bind port 0.

mod admin;
mod admin_held;
mod admin_links;
mod body;
mod bulk;
mod discovery;
mod error;
mod head_guard;
mod health;
mod lifecycle;
mod limits;
mod listen;
mod middleware;
mod operator;
mod ops;
mod query;
mod render;
mod resources;
mod route_label;
pub mod tls;

use std::sync::Arc;

use actix_web::{web, App};

use crate::auth::TokenAuth;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::scim::schema::Registry;
use crate::store::{ChangeHook, Store};

pub use error::{ApiError, SCIM_JSON};
pub use limits::{Cidr, RateLimiter};
pub use ops::now;

/// Everything a request handler may use.
pub struct AppState {
    pub store: Store,
    pub registry: Registry,
    pub config: Config,
    pub auth: TokenAuth,
    pub hook: Arc<dyn ChangeHook>,
    pub metrics: Arc<Metrics>,
    pub limiters: Limiters,
    /// Each target's last health probe: `None` = reachable, `Some(error)` = not.
    pub target_health: TargetHealth,
    /// Each target's delivery circuit (up, down since, half-open), for `/readyz` and `/metrics`.
    pub delivery_health: Arc<crate::delivery::Health>,
    /// Now for the lifecycle runs the admin API starts (chosen by server assembly, never by a request).
    pub clock: crate::clock::SharedClock,
}

pub type TargetHealth = Arc<std::sync::Mutex<std::collections::BTreeMap<String, Option<String>>>>;

/// Rate limiters shared by every worker.
pub struct Limiters {
    /// Per authenticated credential; `None` when `limits.requests_per_second` is 0.
    pub per_credential: Option<RateLimiter>,
    /// Failed authentications per client address.
    pub auth_failures: RateLimiter,
}

impl Limiters {
    pub fn from_config(limits: &crate::config::Limits) -> Limiters {
        Limiters {
            per_credential: (limits.requests_per_second > 0.0)
                .then(|| RateLimiter::new(limits.requests_per_second, limits.burst.max(1.0))),
            auth_failures: RateLimiter::new(limits.auth_failures_per_minute / 60.0, limits.auth_failures_per_minute),
        }
    }
}

/// Which listener a request came in on: with `admin_listen` set, the admin API and metrics are
/// served only on the admin listener, and SCIM only on the main one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Main,
    Admin,
}

/// Starts serving on `listener`. The returned server runs until stopped through its handle
/// (graceful: in-flight requests finish).
///
/// # Errors
/// When actix cannot take the listener.
pub fn serve(
    state: Arc<AppState>,
    listener: std::net::TcpListener,
    role: Listener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let head_limits =
        head_guard::HeadLimits::new(state.config.limits.max_url_bytes, state.config.limits.max_header_bytes);
    let data = web::Data::from(state);
    let app = move || {
        App::new()
            .app_data(data.clone())
            .app_data(role)
            .wrap(actix_web::middleware::from_fn(middleware::authenticate))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(health::metrics))
            .service(
                web::scope("/admin")
                    .route("/jobs", web::get().to(admin::jobs))
                    .route("/jobs/retry", web::post().to(admin::retry_all))
                    .route("/jobs/{id}", web::get().to(admin::job))
                    .route("/jobs/{id}", web::delete().to(admin::drop))
                    .route("/jobs/{id}/retry", web::post().to(admin::retry))
                    .route("/jobs/{id}/drop", web::post().to(admin::drop))
                    .route("/audit", web::get().to(admin::audit))
                    .route("/links", web::get().to(admin_links::list))
                    .route("/links", web::post().to(admin_links::set))
                    .route("/links", web::delete().to(admin_links::clear))
                    .route("/links/preview", web::get().to(admin_links::preview))
                    .route("/held", web::get().to(admin_held::list))
                    .route("/held/approve", web::post().to(admin_held::approve))
                    .route("/held/reject", web::post().to(admin_held::reject))
                    .route("/backup", web::get().to(admin::backup))
                    .route("/tokens", web::get().to(admin::tokens))
                    .route("/tokens", web::post().to(admin::token_new))
                    .route("/tokens/{name}", web::delete().to(admin::token_revoke))
                    .route("/activity/refresh", web::post().to(lifecycle::refresh))
                    .route("/cleanup", web::post().to(lifecycle::cleanup))
                    .route("/license/report", web::get().to(lifecycle::license_report))
                    .route("/license/optimize", web::post().to(lifecycle::license_optimize))
                    .route("/license/grant/{user}", web::post().to(lifecycle::license_grant))
                    .route("/deactivate", web::post().to(lifecycle::deactivate))
                    .route("/reactivate", web::post().to(lifecycle::reactivate))
                    .route("/reconcile", web::post().to(lifecycle::reconcile))
                    .route("/undo/{run_id}", web::post().to(lifecycle::undo))
                    .route("/reports", web::get().to(lifecycle::reports))
                    .route("/reports/{id}", web::get().to(lifecycle::report)),
            )
            .service(
                web::scope("/scim/v2")
                    .route("", web::route().to(resources::root))
                    .route("/Users", web::route().to(resources::users))
                    .route("/Groups", web::route().to(resources::groups))
                    .route("/{collection}", web::route().to(resources::collection))
                    .route("/{collection}/{id}", web::route().to(resources::item)),
            )
            .default_service(web::route().to(resources::not_found))
    };
    // HTTP/1 with the request-head limits applied before actix-http parses (head_guard.rs).
    listen::serve(app, listener, tls, head_limits)
}
