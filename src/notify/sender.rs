//! The sender: a task of its own that drains the notification lane, channel by channel, so a
//! slow mail server or webhook never holds up Atlassian delivery (a different task, queue and
//! client).
//!
//! Delivery is at-least-once, with the window for a repeat made as small as SMTP allows: each
//! channel's success is written and flushed to disk right after the server accepted the message
//! and before anything else is sent, so a restart resends only a message whose acceptance
//! (SMTP "250" after DATA, a webhook's 2xx) came in the instant before a crash. Exactly-once is
//! not possible over SMTP (the acceptance and our record of it cannot be one atomic step), so a
//! repeat carries the same Message-ID (email) or `X-Scimbridge-Delivery` and `id` (webhooks) for
//! a receiver to recognise; losing a notice was judged worse than a rare duplicate.
//!
//! Failures: a transient one (connection, timeout, 4xx SMTP, 5xx/408/429 HTTP) pauses that
//! channel with exponential backoff (1 s doubling to 10 min) and is retried; a permanent one
//! (5xx SMTP, other 4xx HTTP), or transient ones for longer than a day, ends that channel's
//! try with `failed`, logged as an error. Other channels go on either way.
//!
//! Digest: a channel with `digest = "daily"` gets, at `digest_at` (UTC), one message listing
//! every notice it would have had since the last one, except `held` (deliveries wait on an
//! operator) and users' warnings, which go at once. The digest's due time is derived from the
//! oldest waiting notice, so a restart neither loses nor repeats it.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use tokio::sync::watch;

use super::config::{Channel, ChannelKind, Format, NotifyConfig};
use super::render::{self, Facts};
use super::{email, webhook, Notice};
use crate::store::{ChannelLog, NoticeRecord, Store, StoreResult};

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying later.
    Transient(String),
    /// Retrying will not help.
    Permanent(String),
}

impl SendError {
    fn message(&self) -> &str {
        match self {
            SendError::Transient(m) | SendError::Permanent(m) => m,
        }
    }
}

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(600);
/// Transient failures for longer than this end a notice's try on a channel.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Longest sleep with nothing due (a wake-up also comes with every new notice).
const IDLE: Duration = Duration::from_secs(60);

/// The sender's state: configuration, clients, and each channel's backoff (in memory: after a
/// restart every channel is tried at once).
pub struct NotifySender {
    store: Store,
    cfg: NotifyConfig,
    http: reqwest::Client,
    smtp: Option<AsyncSmtpTransport<Tokio1Executor>>,
    /// Channel → (consecutive failures, not before).
    backoff: HashMap<String, (u32, DateTime<Utc>)>,
}

/// A running sender.
pub struct SenderHandle {
    stop: watch::Sender<bool>,
    join: tokio::task::JoinHandle<()>,
}

impl SenderHandle {
    /// Stops after the pass in progress, or aborts it after 10 s (a send cut short is not marked
    /// sent, so it goes out after the restart).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let abort = self.join.abort_handle();
        if tokio::time::timeout(Duration::from_secs(10), self.join).await.is_err() {
            abort.abort();
        }
    }
}

/// What `serve` starts: tells the store which events to keep and starts the sender; `None`
/// (and nothing kept) when no channel is configured.
pub fn start(store: &Store, cfg: &NotifyConfig) -> Option<SenderHandle> {
    store.want_notices(cfg.wanted_events());
    if cfg.channels.is_empty() {
        return None;
    }
    match NotifySender::new(store.clone(), cfg.clone()) {
        Ok(s) => {
            let names: Vec<&str> = cfg.channels.iter().map(|c| c.name.as_str()).collect();
            tracing::info!(channels = ?names, "Notifications on.");
            Some(s.spawn())
        }
        Err(e) => {
            // Not fatal: notices stay stored and go out after a restart that fixes it.
            tracing::error!(error = %e, "The notification sender could not start; notices are kept until it can.");
            None
        }
    }
}

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn at_of(r: &NoticeRecord) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(i64::try_from(r.at_ms).unwrap_or(i64::MAX)).single().unwrap_or_else(Utc::now)
}

impl NotifySender {
    /// A sender for `cfg`'s channels over `store`'s lane.
    ///
    /// # Errors
    /// When the HTTP client or the SMTP transport cannot be set up.
    pub fn new(store: Store, cfg: NotifyConfig) -> Result<NotifySender, String> {
        let http = webhook::client().map_err(|e| format!("webhook client: {e}"))?;
        let smtp = cfg.smtp().map(|s| email::transport(&s.server)).transpose().map_err(|e| e.message().to_string())?;
        Ok(NotifySender { store, cfg, http, smtp, backoff: HashMap::new() })
    }

    /// Starts the sending loop.
    pub fn spawn(mut self) -> SenderHandle {
        let (stop, mut stopped) = watch::channel(false);
        let join = tokio::spawn(async move {
            loop {
                let wake = match self.tick(Utc::now()).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::error!(error = %e, "Reading or recording notifications failed; trying again shortly.");
                        Some(Utc::now() + chrono::Duration::seconds(5))
                    }
                };
                let wait = wake.and_then(|w| (w - Utc::now()).to_std().ok()).unwrap_or(IDLE).min(IDLE);
                let store = self.store.clone();
                tokio::select! {
                    _ = store.notice_signal().notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        SenderHandle { stop, join }
    }

    /// The channels `notice` goes to: the ones listing its event; a user's warning goes to the
    /// SMTP channel (to the user) only.
    fn channels_for(&self, notice: &Notice) -> Vec<Channel> {
        self.cfg
            .channels
            .iter()
            .filter(|c| match notice {
                Notice::UserWarning { .. } => matches!(c.kind, ChannelKind::Smtp(_)),
                n => c.events.contains(n.event()),
            })
            .cloned()
            .collect()
    }

    fn paused(&self, channel: &str, now: DateTime<Utc>) -> bool {
        self.backoff.get(channel).is_some_and(|(_, until)| *until > now)
    }

    fn failed(&mut self, channel: &str, now: DateTime<Utc>) {
        let (n, _) = self.backoff.get(channel).copied().unwrap_or((0, now));
        let wait = BACKOFF_FIRST.saturating_mul(1 << n.min(16)).min(BACKOFF_MAX);
        self.backoff.insert(
            channel.to_string(),
            (n + 1, now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero())),
        );
    }

    /// One pass at `now`: sends every notice due on every channel not paused, then every digest
    /// due. Returns when something will next be due (a paused channel, a digest).
    ///
    /// # Errors
    /// When the store cannot be read or written; what was recorded so far stays.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        for mut record in self.store.pending_notices()? {
            let notice: Notice = match serde_json::from_value(record.notice.clone()) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(notice = record.id, error = %e, "An unreadable notice was set aside (notify_sent, outcome failed).");
                    let log = ChannelLog {
                        outcome: Some("failed".into()),
                        last_error: Some(format!("unreadable: {e}")),
                        done_at: Some(text(now)),
                        ..Default::default()
                    };
                    record.channels.insert("*".into(), log);
                    self.store.update_notices(&[(record, true)])?;
                    continue;
                }
            };
            let channels = self.channels_for(&notice);
            for ch in &channels {
                let immediate = !ch.digest || !notice.may_wait_for_digest();
                if record.is_done(&ch.name) || !immediate || self.paused(&ch.name, now) {
                    continue;
                }
                let result = self.send_one(ch, &record, &notice).await;
                self.record(&mut record, &ch.name, result, now);
                let finished = channels.iter().all(|c| record.is_done(&c.name));
                self.store.update_notices(&[(record.clone(), finished)])?;
                // Marked sent on disk before anything else goes out (see the module header).
                self.store.flush().await?;
            }
            if channels.is_empty() || channels.iter().all(|c| record.is_done(&c.name)) {
                // Nothing (left) wants it: e.g. the configuration changed since it was stored.
                self.store.update_notices(&[(record, true)])?;
            }
        }
        let mut next: Option<DateTime<Utc>> = None;
        for ch in self.cfg.channels.clone().iter().filter(|c| c.digest) {
            if let Some(due) = self.digest(ch, now).await? {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        for (_, until) in self.backoff.values() {
            next = Some(next.map_or(*until, |n| n.min(*until)));
        }
        Ok(next)
    }

    /// Applies one send's result to `record`'s log for `channel`.
    fn record(&mut self, record: &mut NoticeRecord, channel: &str, result: Result<(), SendError>, now: DateTime<Utc>) {
        let age = (now - at_of(record)).to_std().unwrap_or_default();
        let (id, event) = (record.id, record.event().to_string());
        let log = record.channels.entry(channel.to_string()).or_default();
        log.attempts += 1;
        match result {
            Ok(()) => {
                log.outcome = Some("sent".into());
                log.done_at = Some(text(now));
                self.backoff.remove(channel);
                tracing::info!(notice = id, channel, event = %event, "Notification sent.");
            }
            Err(SendError::Transient(e)) if age < GIVE_UP_AFTER => {
                tracing::warn!(notice = id, channel, event = %event, attempt = log.attempts, error = %e, "Sending a notification failed; will retry.");
                log.last_error = Some(e);
                self.failed(channel, now);
            }
            Err(e) => {
                tracing::error!(notice = id, channel, event = %event, error = %e.message(), "A notification could not be sent and is given up (see notify_sent).");
                log.last_error = Some(e.message().to_string());
                log.outcome = Some("failed".into());
                log.done_at = Some(text(now));
                if matches!(e, SendError::Transient(_)) {
                    self.failed(channel, now);
                }
            }
        }
    }

    async fn send_one(&self, ch: &Channel, record: &NoticeRecord, notice: &Notice) -> Result<(), SendError> {
        let facts = render::facts(record.id, &record.at, notice);
        let key = format!("notice-{}", record.id);
        match &ch.kind {
            ChannelKind::Smtp(s) => {
                let smtp = self.smtp.as_ref().ok_or_else(|| SendError::Permanent("no SMTP transport".into()))?;
                let render_err = |e: minijinja::Error| SendError::Permanent(format!("template: {e}"));
                if let Notice::UserWarning { to, .. } = notice {
                    let to: Mailbox =
                        to.parse().map_err(|e| SendError::Permanent(format!("'{to}' is not an email address: {e}")))?;
                    let mail = render::user_email(notice)
                        .map_err(render_err)?
                        .ok_or_else(|| SendError::Permanent("no user email".into()))?;
                    return email::send(smtp, &s.from, &[to], &s.admins, &key, &mail).await;
                }
                let mail = render::admin_email(&facts).map_err(render_err)?;
                email::send(smtp, &s.from, &s.admins, &[], &key, &mail).await
            }
            ChannelKind::Webhook(w) => {
                let body = match w.format {
                    Format::Slack => render::slack(&facts),
                    Format::Teams => render::teams(&facts),
                    Format::Json => render::json_event(&facts, notice),
                };
                webhook::send(&self.http, w, &record.id.to_string(), notice.event(), &body).await
            }
        }
    }

    /// When a notice stored at `at` is due in a daily digest: the first `digest_at` after it.
    fn digest_due(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let (h, m) = self.cfg.digest_at;
        let today = at.date_naive().and_hms_opt(h, m, 0).map(|t| t.and_utc());
        match today {
            Some(t) if t > at => t,
            Some(t) => t + chrono::Duration::days(1),
            None => at + chrono::Duration::days(1),
        }
    }

    /// Sends `ch`'s digest if due at `now`; returns when the next one is due, if anything waits.
    async fn digest(&mut self, ch: &Channel, now: DateTime<Utc>) -> StoreResult<Option<DateTime<Utc>>> {
        let mut items: Vec<(NoticeRecord, Notice)> = Vec::new();
        for r in self.store.pending_notices()? {
            if r.is_done(&ch.name) {
                continue;
            }
            if let Ok(n) = serde_json::from_value::<Notice>(r.notice.clone()) {
                if n.may_wait_for_digest() && ch.events.contains(n.event()) {
                    items.push((r, n));
                }
            }
        }
        let Some(oldest) = items.first().map(|(r, _)| at_of(r)) else { return Ok(None) };
        let due = self.digest_due(oldest);
        if due > now {
            return Ok(Some(due));
        }
        if self.paused(&ch.name, now) {
            return Ok(self.backoff.get(&ch.name).map(|b| b.1));
        }
        let facts: Vec<Facts> = items.iter().map(|(r, n)| render::facts(r.id, &r.at, n)).collect();
        let key = format!("digest-{}-{}", items[0].0.id, items[items.len() - 1].0.id);
        let at = text(now);
        let result = match &ch.kind {
            ChannelKind::Smtp(s) => match (&self.smtp, render::digest_email(&facts, &at)) {
                (Some(smtp), Ok(mail)) => email::send(smtp, &s.from, &s.admins, &[], &key, &mail).await,
                (None, _) => Err(SendError::Permanent("no SMTP transport".into())),
                (_, Err(e)) => Err(SendError::Permanent(format!("template: {e}"))),
            },
            ChannelKind::Webhook(w) => {
                let body = match w.format {
                    Format::Slack => render::slack_digest(&facts, &at),
                    Format::Teams => render::teams_digest(&facts, &at),
                    Format::Json => {
                        let pairs: Vec<(Facts, Notice)> =
                            facts.iter().cloned().zip(items.iter().map(|(_, n)| n.clone())).collect();
                        render::json_digest(&pairs, &at)
                    }
                };
                webhook::send(&self.http, w, &key, "digest", &body).await
            }
        };
        match &result {
            Ok(()) => {
                self.backoff.remove(&ch.name);
                tracing::info!(channel = %ch.name, notices = items.len(), "Daily digest sent.");
            }
            Err(e) => {
                tracing::warn!(channel = %ch.name, notices = items.len(), error = %e.message(), "Sending the daily digest failed; will retry.");
                self.failed(&ch.name, now);
            }
        }
        let mut updates = Vec::with_capacity(items.len());
        for (mut r, n) in items {
            let age = (now - at_of(&r)).to_std().unwrap_or_default();
            let log = r.channels.entry(ch.name.clone()).or_default();
            log.attempts += 1;
            match &result {
                Ok(()) => {
                    log.outcome = Some("digest".into());
                    log.done_at = Some(at.clone());
                }
                Err(SendError::Transient(e)) if age < GIVE_UP_AFTER => log.last_error = Some(e.clone()),
                Err(e) => {
                    tracing::error!(notice = r.id, channel = %ch.name, error = %e.message(), "A notification could not be sent in the digest and is given up.");
                    log.last_error = Some(e.message().to_string());
                    log.outcome = Some("failed".into());
                    log.done_at = Some(at.clone());
                }
            }
            let finished = self.channels_for(&n).iter().all(|c| r.is_done(&c.name));
            updates.push((r, finished));
        }
        self.store.update_notices(&updates)?;
        self.store.flush().await?;
        Ok(self.backoff.get(&ch.name).map(|b| b.1))
    }
}
