//! A webhook receiver for tests: an HTTP server on loopback (actix-web) that keeps every
//! request's headers and body, and answers 503 to the first `fail_next(n)` requests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status this receiver answered.
    pub status: u16,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

#[derive(Default)]
struct State {
    hits: Mutex<Vec<Hit>>,
    failures: AtomicU32,
}

pub struct WebhookReceiver {
    pub addr: std::net::SocketAddr,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let h = self.handle.clone();
        drop(tokio::spawn(async move { h.stop(false).await }));
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<State>>) -> HttpResponse {
    let fail = state.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok();
    let status = if fail { 503 } else { 200 };
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    state.hits.lock().expect("lock").push(Hit { headers, body: body.to_vec(), status });
    if fail {
        HttpResponse::ServiceUnavailable().body("try later")
    } else {
        HttpResponse::Ok().body("ok")
    }
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let state = Arc::new(State::default());
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
            .workers(1)
            .bind("127.0.0.1:0")
            .expect("bind webhook");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        WebhookReceiver { addr, state, handle }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request, in order (also the ones answered 503).
    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().expect("lock").clone()
    }

    /// The requests answered 200.
    pub fn accepted(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.status == 200).collect()
    }

    pub fn fail_next(&self, n: u32) {
        self.state.failures.store(n, Ordering::SeqCst);
    }
}
