//! Assembles a running server from a validated `Config`: opens the store, makes sure an IdP
//! token exists, binds the listener and starts HTTP. `main.rs` and the integration tests both
//! start the server through here.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth::{Scope, TokenAuth};
use crate::config::Config;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::scim::schema::Registry;
use crate::secret::Secret;
use crate::store::{NoHook, Store};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store in {dir}: {source} (is another scimbridge running on it?)")]
    Store { dir: String, source: crate::store::StoreError },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the schema documents are broken: {0}")]
    Schemas(crate::scim::ScimError),
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub server: actix_web::dev::ServerHandle,
    pub join: tokio::task::JoinHandle<std::io::Result<()>>,
    /// A token created because none existed; shown once to the operator, never stored in clear.
    pub first_token: Option<Secret>,
    pub store: Store,
}

impl Running {
    /// Stops gracefully: in-flight requests finish.
    pub async fn stop(self) {
        self.server.stop(true).await;
        let _ = self.join.await;
    }
}

/// Opens the store and starts serving.
///
/// # Errors
/// When the store cannot be opened, the address cannot be bound, or schemas are broken.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let store = Store::open(&config.data_dir)
        .map_err(|e| StartError::Store { dir: config.data_dir.display().to_string(), source: e })?;
    let registry = Registry::load().map_err(StartError::Schemas)?;
    let auth = TokenAuth::new(store.clone(), &config.tokens, &config.admin_tokens);
    let first_token = if auth.has_scim_tokens() {
        None
    } else {
        let now = crate::http::now();
        Some(
            auth.issue("initial", Scope::Scim, &now)
                .map_err(|e| StartError::Store { dir: config.data_dir.display().to_string(), source: e })?,
        )
    };
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|e| StartError::Bind { addr: config.listen, source: e })?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind { addr: config.listen, source: e })?;
    let state = Arc::new(AppState {
        store: store.clone(),
        registry,
        config,
        auth,
        hook: Arc::new(NoHook),
        metrics: Arc::new(Metrics::default()),
    });
    let server = http::serve(state, listener).map_err(|e| StartError::Bind { addr, source: e })?;
    let handle = server.handle();
    let join = tokio::spawn(server);
    Ok(Running { addr, server: handle, join, first_token, store })
}
