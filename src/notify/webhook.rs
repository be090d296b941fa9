//! Webhook POSTs: Slack and Teams bodies as they are, `json` signed (`sign.rs`). The URL is a
//! secret (Slack's and Teams' carry their token): errors are reported without it.

use std::time::Duration;

use serde_json::Value;

use super::config::{Format, WebhookChannel};
use super::sender::SendError;
use super::sign;

const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// The client webhooks are sent with: bounded time, no redirects (a redirect would carry the
/// signed body somewhere the admin did not configure).
///
/// # Errors
/// When the TLS backend cannot start.
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("scimbridge/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// POSTs `body`; `id` and `event` go in `X-Scimbridge-Delivery` / `X-Scimbridge-Event`.
///
/// # Errors
/// `Transient` for connection errors, timeouts, 408, 429 and 5xx; `Permanent` for other 4xx
/// (a removed webhook, a malformed body) and 3xx.
pub async fn send(
    client: &reqwest::Client,
    hook: &WebhookChannel,
    id: &str,
    event: &str,
    body: &Value,
) -> Result<(), SendError> {
    let bytes =
        serde_json::to_vec(body).map_err(|e| SendError::Permanent(format!("could not encode the body: {e}")))?;
    let mut req = client
        .post(hook.url.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Scimbridge-Event", event)
        .header("X-Scimbridge-Delivery", id);
    if let (Format::Json, Some(secret)) = (hook.format, &hook.secret) {
        req = req.header(sign::HEADER, sign::signature(secret.expose().as_bytes(), unix_now(), &bytes));
    }
    let res =
        req.body(bytes).send().await.map_err(|e| SendError::Transient(format!("webhook: {}", e.without_url())))?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    let text: String = res.text().await.unwrap_or_default().chars().take(200).collect();
    let msg = format!("webhook answered {status}: {}", text.trim());
    if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
        Err(SendError::Transient(msg))
    } else {
        Err(SendError::Permanent(msg))
    }
}
