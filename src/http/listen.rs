//! Serving an actix-web `App` over HTTP/1 (plain or rustls) with [`HeadGuard`] between the
//! socket (or the TLS stream) and actix-http's parser. This is what `HttpServer::listen` and
//! `listen_rustls_0_23` assemble, with the same settings, plus the guard: `HttpServer` offers no
//! way to wrap a connection's stream, and actix-http answers an oversized head itself with an
//! empty body (see `head_guard.rs`).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, KeepAlive, Request, Response};
use actix_server::{GracefulShutdownSignal, Server};
use actix_service::{fn_service, map_config, IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::dev::AppConfig;
use tokio::net::TcpStream;

use super::head_guard::{HeadGuard, HeadLimits};

/// Time allowed for the request head; the body has `limits.request_timeout_secs`.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// In-flight requests get this long to finish on a graceful stop.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// `HttpServer`'s default.
const CLIENT_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Starts serving `factory`'s app on `listener` (TLS when `tls` is given).
///
/// # Errors
/// When actix cannot take the listener.
pub(super) fn serve<F, I, S, B>(
    factory: F,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
    limits: HeadLimits,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let builder = Server::build().shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    let shutdown = builder.graceful_shutdown_signal();
    let name = format!("scimbridge-{addr}");
    let builder = match tls {
        None => builder.listen(name, listener, move || {
            let http = h1::<TcpStream, _, _, _, _>(factory.clone(), addr, false, shutdown.clone());
            fn_service(move |io: TcpStream| {
                // No TCP_NODELAY: HttpServer leaves it unset too (each response is one write).
                let peer = io.peer_addr().ok();
                std::future::ready(Ok::<_, actix_http::error::DispatchError>((HeadGuard::new(io, limits), peer)))
            })
            .and_then(http)
        })?,
        Some(mut config) => {
            // As actix-web does: HTTP/1.1 is offered over ALPN (HTTP/2 is not built in).
            let mut alpn = vec![b"http/1.1".to_vec()];
            alpn.extend(config.alpn_protocols.drain(..).filter(|p| p.as_slice() != b"http/1.1"));
            config.alpn_protocols = alpn;
            builder.listen(name, listener, move || {
                let http = h1::<TlsStream<TcpStream>, _, _, _, _>(factory.clone(), addr, true, shutdown.clone());
                Acceptor::new(config.clone())
                    .map_init_err(|_| ())
                    .map_err(|e| tracing::debug!(error = ?e, "TLS handshake failed."))
                    .and_then(fn_service(move |io: TlsStream<TcpStream>| {
                        let peer = io.get_ref().0.peer_addr().ok();
                        std::future::ready(Ok::<_, ()>((HeadGuard::new(io, limits), peer)))
                    }))
                    .and_then(http.map_err(|e| tracing::debug!(error = ?e, "HTTP/1 dispatch ended with an error.")))
            })?
        }
    };
    Ok(builder.run())
}

/// The HTTP/1 service over a guarded stream of type `T`, configured as `HttpServer` would.
fn h1<T, F, I, S, B>(
    factory: F,
    addr: SocketAddr,
    secure: bool,
    shutdown: GracefulShutdownSignal,
) -> impl ServiceFactory<
    (HeadGuard<T>, Option<SocketAddr>),
    Config = (),
    Response = (),
    Error = actix_http::error::DispatchError,
    InitError = (),
>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    F: Fn() -> I,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let app = factory().into_factory().map_err(|err| err.into().error_response());
    let mut svc = HttpService::<HeadGuard<T>, _, _>::build()
        .graceful_shutdown_signal(move || {
            let signal = shutdown.clone();
            async move { signal.notified().await }
        })
        .keep_alive(KeepAlive::default())
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .local_addr(addr);
    if secure {
        svc = svc.secure();
    }
    // `AppConfig::__priv_test_new` is the only public constructor (semver-exempt; actix-test
    // uses it); it carries what HttpServer would set: https or not, and the local address as the
    // host fallback of `ConnectionInfo` for requests without a Host header.
    svc.h1(map_config(app, move |_| AppConfig::__priv_test_new(secure, addr.to_string(), addr)))
}
