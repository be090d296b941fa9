//! Notifications (issue 12 §4) against real receivers: an SMTP server speaking SMTP over TCP
//! (`support/smtp.rs`) and an HTTP webhook receiver (`support/webhook.rs`), both on loopback.
//! Dead letters and offboardings come from the real server and the Jira emulator; the digest
//! and the TLS default drive the sender with a clock the test sets.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::atlassian_emulator::{Emulator, Fault, TOKEN as ATL_TOKEN};
use crate::support::server::{config_with_toml, eventually, TestServer};
use crate::support::smtp::SmtpReceiver;
use crate::support::webhook::WebhookReceiver;
use scimbridge::atlassian::Product;
use scimbridge::notify::{sign, Notice, NotifySender};
use scimbridge::store::Store;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "k3y-for-the-json-webhook-0123456789";

fn disable() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "active", "value": false}]})
}

fn jira_toml(jira: &Emulator) -> String {
    format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n[policy]\ncreate_users = false\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 3\n",
        jira.base_url()
    )
}

const SMTP_TOML: &str =
    "[notify.smtp]\nurl_env = \"SMTP_URL\"\nfrom = \"scimbridge@example.com\"\nadmins = [\"atlassian-admins@example.com\", \"oncall@example.com\"]\n";

fn json_hook(extra: &str) -> String {
    format!("[[notify.webhook]]\nurl_env = \"HOOK_URL\"\nformat = \"json\"\nsecret_env = \"HOOK_SECRET\"\n{extra}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[tokio::test]
async fn a_dead_letter_is_emailed_over_real_smtp_and_posted_signed_to_a_json_webhook() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("hank");
    let (smtp, hook) = (SmtpReceiver::start().await, WebhookReceiver::start().await);
    let toml = format!("{}{SMTP_TOML}{}", jira_toml(&jira), json_hook(""));
    let env = [("ATL_TOKEN", ATL_TOKEN), ("SMTP_URL", &smtp.url()), ("HOOK_URL", &hook.url()), ("HOOK_SECRET", SECRET)];
    let s = TestServer::start_toml(&toml, &env).await;
    let id = s.create_user("hank").await;
    // The GET that starts the deactivation answers 403: permanent, straight to a dead letter.
    jira.fail_next(1, Fault::status(403));
    assert_eq!(s.patch(&format!("/Users/{id}"), &disable()).await.status, 200);
    eventually("a dead letter", WAIT, || s.store().dead_letter_count() == 1).await;
    eventually("one email and one webhook", WAIT, || smtp.messages().len() == 1 && hook.accepted().len() == 1).await;

    let mail = &smtp.messages()[0];
    assert_eq!(mail.from, "scimbridge@example.com");
    assert_eq!(mail.to, vec!["atlassian-admins@example.com".to_string(), "oncall@example.com".to_string()]);
    let text = mail.readable();
    assert!(text.contains("Subject: [scimbridge] Dead letter: deactivate of hank on jira"), "{text}");
    assert!(
        text.contains("multipart/alternative") && text.contains("text/plain") && text.contains("text/html"),
        "{text}"
    );
    for fact in ["Who: hank (SCIM id", "What: deactivate on jira", "Why: idp_disabled", "403", "scimbridge jobs retry"]
    {
        assert!(text.contains(fact), "{fact} in {text}");
    }
    // Each channel's outcome is recorded right after its receiver answered.
    eventually("the notice recorded as sent", WAIT, || s.store().sent_notices().is_ok_and(|n| n.len() == 1)).await;
    let sent = s.store().sent_notices().expect("sent");
    let notice_id = sent[0].id;
    assert_eq!(mail.header("Message-ID"), Some(format!("<scimbridge-notice-{notice_id}@example.com>")));
    assert_eq!(sent[0].channels["smtp"].outcome.as_deref(), Some("sent"));
    assert_eq!(sent[0].channels["webhook:HOOK_URL"].outcome.as_deref(), Some("sent"));

    let hit = &hook.accepted()[0];
    let signature = hit.header(sign::HEADER).expect("signed");
    assert!(signature.starts_with("t=") && signature.contains(",sha256="), "{signature}");
    assert!(sign::verify(SECRET.as_bytes(), signature, &hit.body, unix_now(), 300));
    assert!(!sign::verify(b"another-secret-entirely", signature, &hit.body, unix_now(), 300));
    assert!(!sign::verify(SECRET.as_bytes(), signature, &hit.body, unix_now() + 3600, 300), "a replay an hour later");
    let body = hit.json();
    assert_eq!((&body["event"], &body["id"]), (&json!("dead_letter"), &json!(notice_id)), "{body}");
    assert_eq!((&body["data"]["username"], &body["data"]["target"]), (&json!("hank"), &json!("jira")));
    assert_eq!((&body["data"]["trigger"], &body["data"]["reason"]), (&json!("disabled"), &json!("idp_disabled")));
    assert!(
        body["data"]["job"].as_u64().is_some() && body["data"]["error"].as_str().is_some_and(|e| e.contains("403"))
    );
    assert_eq!(hit.header("X-Scimbridge-Event"), Some("dead_letter"));
    assert_eq!(hit.header("X-Scimbridge-Delivery"), Some(notice_id.to_string().as_str()));
    s.stop().await;
}

#[tokio::test]
async fn offboardings_go_only_to_channels_that_list_them_and_each_format_has_its_shape() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("ivy");
    jira.add_user("jon");
    let (slack, teams) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    let toml = format!(
        "{}[[notify.webhook]]\nurl_env = \"SLACK_URL\"\nformat = \"slack\"\nevents = [\"offboarded\"]\n[[notify.webhook]]\nurl_env = \"TEAMS_URL\"\nformat = \"teams\"\n",
        jira_toml(&jira)
    );
    let env = [("ATL_TOKEN", ATL_TOKEN), ("SLACK_URL", &slack.url()), ("TEAMS_URL", &teams.url())];
    let s = TestServer::start_toml(&toml, &env).await;
    let ivy = s.create_user("ivy").await;
    assert_eq!(s.patch(&format!("/Users/{ivy}"), &disable()).await.status, 200);
    eventually("ivy deactivated", WAIT, || jira.user("ivy").is_some_and(|u| !u.active)).await;
    eventually("slack told", WAIT, || slack.accepted().len() == 1).await;
    let msg = slack.accepted()[0].json();
    assert!(msg["text"].as_str().is_some_and(|t| t.contains("ivy offboarded on jira (deactivate)")), "{msg}");
    assert_eq!(msg["blocks"][0]["type"], "header");
    assert!(msg["blocks"].to_string().contains("*Who*\\nivy (SCIM id"), "{msg}");
    assert!(msg["blocks"].to_string().contains("*Why*\\nidp_disabled"), "the reason word: {msg}");

    let jon = s.create_user("jon").await;
    jira.fail_next(1, Fault::status(403));
    assert_eq!(s.patch(&format!("/Users/{jon}"), &disable()).await.status, 200);
    eventually("teams told of the dead letter", WAIT, || teams.accepted().len() == 1).await;
    let card = teams.accepted()[0].json();
    assert_eq!(card["type"], "message");
    assert_eq!(card["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    let content = &card["attachments"][0]["content"];
    assert_eq!((&content["type"], &content["version"]), (&json!("AdaptiveCard"), &json!("1.4")));
    assert!(
        content["body"][0]["text"].as_str().is_some_and(|t| t.contains("Dead letter: deactivate of jon")),
        "{card}"
    );
    assert_eq!(content["body"][2]["type"], "FactSet");
    // Teams does not list offboarded (the default leaves it out); Slack lists nothing else.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(teams.hits().len(), 1, "no offboarded notice to teams");
    assert_eq!(slack.hits().len(), 1, "no dead letter to slack");
    assert!(teams.accepted()[0].header(sign::HEADER).is_none(), "only json is signed");
    s.stop().await;
}

#[tokio::test]
async fn failing_receivers_are_retried_with_backoff_and_each_gets_the_notice_once() {
    let (smtp, hook) = (SmtpReceiver::start().await, WebhookReceiver::start().await);
    smtp.fail_next(1);
    hook.fail_next(2);
    let toml = format!("{SMTP_TOML}{}", json_hook(""));
    let env = [("SMTP_URL", smtp.url()), ("HOOK_URL", hook.url()), ("HOOK_SECRET", SECRET.to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = TestServer::start_toml(&toml, &env).await;
    // What the brake will enqueue when it engages (one line for the lead to wire).
    let notice = Notice::Held { held: 4950, limit: 50, window_secs: 3600, source: Some("entra".into()) };
    let id = s.store().enqueue_notice(&notice).expect("enqueue").expect("wanted");
    eventually("delivered after the failures", WAIT, || smtp.messages().len() == 1 && hook.accepted().len() == 1).await;
    assert_eq!(smtp.attempts.load(std::sync::atomic::Ordering::SeqCst), 2, "one 451, then accepted");
    assert_eq!(hook.hits().iter().map(|h| h.status).collect::<Vec<_>>(), vec![503, 503, 200]);
    let text = smtp.messages()[0].readable();
    assert!(text.contains("4950 destructive actions held") && text.contains("scimbridge held approve --all"), "{text}");
    eventually("the notice recorded as sent", WAIT, || s.store().sent_notices().is_ok_and(|n| n.len() == 1)).await;
    let sent = s.store().sent_notices().expect("sent");
    assert_eq!(sent.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(sent[0].channels["smtp"].attempts, 2);
    assert_eq!(sent[0].channels["webhook:HOOK_URL"].attempts, 3);
    assert!(s.store().pending_notices().expect("pending").is_empty());

    // A permanent refusal ends that channel's try; the other channel is not held up by it.
    smtp.refuse_next(1);
    s.store().enqueue_notice(&notice).expect("enqueue");
    eventually("the webhook still gets the second", WAIT, || hook.accepted().len() == 2).await;
    eventually("the refused email is given up", WAIT, || s.store().sent_notices().expect("sent").len() == 2).await;
    let second = &s.store().sent_notices().expect("sent")[1];
    assert_eq!(second.channels["smtp"].outcome.as_deref(), Some("failed"));
    assert!(second.channels["smtp"].last_error.as_deref().is_some_and(|e| e.contains("550")), "{second:?}");
    assert_eq!(smtp.messages().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_notice_stored_before_a_restart_is_sent_once_and_a_sent_one_is_not_sent_again() {
    let (smtp, hook) = (SmtpReceiver::start().await, WebhookReceiver::start().await);
    let tmp = tempfile::tempdir().expect("dir");
    // Stored by a process that stopped before sending (the sender was not running).
    {
        let store = Store::open(tmp.path()).expect("open");
        store.want_notices(["target_down".to_string()]);
        let down = Notice::TargetDown {
            target: "jira".into(),
            since: "2026-12-05T10:00:00Z".into(),
            down_secs: 360,
            error: "connection refused".into(),
        };
        store.enqueue_notice(&down).expect("enqueue").expect("wanted");
        store.flush_blocking().expect("flush");
    }
    let toml = format!("{SMTP_TOML}{}", json_hook(""));
    let env = [("SMTP_URL", smtp.url()), ("HOOK_URL", hook.url()), ("HOOK_SECRET", SECRET.to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = TestServer::start_with(config_with_toml(tmp.path(), &toml, &env)).await;
    eventually("sent after the restart", WAIT, || smtp.messages().len() == 1 && hook.accepted().len() == 1).await;
    eventually("recorded as sent", WAIT, || s.store().pending_notices().is_ok_and(|p| p.is_empty())).await;
    assert!(smtp.messages()[0].readable().contains("Target jira unreachable for 6 min"));
    s.stop().await;

    let s = TestServer::start_with(config_with_toml(tmp.path(), &toml, &env)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.messages().len(), 1, "not sent again after a restart");
    assert_eq!(hook.hits().len(), 1);
    assert_eq!(s.store().sent_notices().expect("sent").len(), 1);
    s.stop().await;
}

fn sender_for(store: &Store, toml: &str, env: &[(&str, &str)], dir: &std::path::Path) -> NotifySender {
    let config = config_with_toml(dir, toml, env);
    store.want_notices(config.notify.wanted_events());
    NotifySender::new(store.clone(), config.notify).expect("sender")
}

fn dead_letter(job: u64, username: &str) -> Notice {
    Notice::DeadLetter {
        job,
        target: "jira".into(),
        user_id: format!("u-{job}"),
        username: username.into(),
        action: "deactivate".into(),
        trigger: "disabled".into(),
        reason: "idp_disabled".into(),
        error: "403 Forbidden".into(),
        actor: None,
        run_id: None,
    }
}

#[tokio::test]
async fn the_daily_digest_sends_one_message_per_channel_at_digest_at_and_never_holds_back_the_brake() {
    let (smtp, hook) = (SmtpReceiver::start().await, WebhookReceiver::start().await);
    let tmp = tempfile::tempdir().expect("dir");
    let store = Store::open(tmp.path()).expect("open");
    let toml = format!(
        "[notify]\ndigest_at = \"08:00\"\n{SMTP_TOML}digest = \"daily\"\n{}",
        json_hook("digest = \"daily\"\n")
    );
    let (smtp_url, hook_url) = (smtp.url(), hook.url());
    let env = [("SMTP_URL", smtp_url.as_str()), ("HOOK_URL", hook_url.as_str()), ("HOOK_SECRET", SECRET)];
    let mut sender = sender_for(&store, &toml, &env, tmp.path());
    for (job, name) in [(1, "ann"), (2, "bob"), (3, "cy")] {
        store.enqueue_notice(&dead_letter(job, name)).expect("enqueue");
    }
    store.enqueue_notice(&Notice::Held { held: 10, limit: 50, window_secs: 3600, source: None }).expect("enqueue");
    let stored = chrono::Utc::now();

    let next = sender.tick(stored).await.expect("tick");
    assert_eq!(smtp.messages().len(), 1, "the brake goes at once");
    assert!(smtp.messages()[0].readable().contains("Offboarding brake engaged"));
    assert_eq!(hook.accepted().len(), 1);
    assert_eq!(hook.accepted()[0].json()["event"], "held");
    let due = next.expect("a digest is due later");
    assert!(due > stored && due <= stored + chrono::Duration::days(1), "{due}");
    assert_eq!(chrono::Timelike::hour(&due), 8);

    // Before digest_at: nothing more.
    sender.tick(due - chrono::Duration::minutes(1)).await.expect("tick");
    assert_eq!((smtp.messages().len(), hook.hits().len()), (1, 1));

    sender.tick(due).await.expect("tick");
    assert_eq!(smtp.messages().len(), 2, "one digest email");
    let digest = smtp.messages()[1].readable();
    assert!(digest.contains("Subject: [scimbridge] Daily digest: 3 notices"), "{digest}");
    for name in ["deactivate of ann", "deactivate of bob", "deactivate of cy"] {
        assert!(digest.contains(name), "{name} in {digest}");
    }
    assert_eq!(hook.accepted().len(), 2, "one digest webhook");
    let hit = &hook.accepted()[1];
    assert!(sign::verify(SECRET.as_bytes(), hit.header(sign::HEADER).expect("signed"), &hit.body, unix_now(), 300));
    let body = hit.json();
    assert_eq!(body["event"], "digest");
    let users: Vec<&str> =
        body["notices"].as_array().expect("notices").iter().filter_map(|n| n["data"]["username"].as_str()).collect();
    assert_eq!(users, ["ann", "bob", "cy"]);
    assert!(store.pending_notices().expect("pending").is_empty());
    let sent = store.sent_notices().expect("sent");
    assert_eq!(
        sent.iter().filter(|r| r.channels.get("smtp").and_then(|c| c.outcome.as_deref()) == Some("digest")).count(),
        3
    );

    // Sent once: the next day's tick has nothing to add.
    sender.tick(due + chrono::Duration::days(1)).await.expect("tick");
    assert_eq!((smtp.messages().len(), hook.hits().len()), (2, 2));
}

#[tokio::test]
async fn smtp_without_tls_none_requires_starttls_and_sends_nothing_to_a_relay_that_lacks_it() {
    let smtp = SmtpReceiver::start().await;
    let tmp = tempfile::tempdir().expect("dir");
    let store = Store::open(tmp.path()).expect("open");
    // The same relay, without `?tls=none`: STARTTLS is required by default.
    let url = format!("smtp://{}", smtp.addr);
    let mut sender = sender_for(&store, SMTP_TOML, &[("SMTP_URL", &url)], tmp.path());
    store.enqueue_notice(&dead_letter(7, "dee")).expect("enqueue");
    sender.tick(chrono::Utc::now()).await.expect("tick");
    assert!(smtp.messages().is_empty());
    assert_eq!(smtp.attempts.load(std::sync::atomic::Ordering::SeqCst), 0, "no MAIL FROM over plain text");
    let pending = store.pending_notices().expect("pending");
    assert_eq!(pending.len(), 1, "kept for a retry");
    assert_eq!(pending[0].channels["smtp"].attempts, 1);
    assert!(pending[0].channels["smtp"].outcome.is_none());
}

#[tokio::test]
async fn serve_refuses_to_start_when_a_notification_variable_is_not_set() {
    let tmp = tempfile::tempdir().expect("dir");
    let config = config_with_toml(tmp.path(), &json_hook(""), &[("HOOK_SECRET", SECRET)]);
    let err = scimbridge::server::start(config).await.err().expect("refused");
    let text = err.to_string();
    assert!(text.contains("notify.webhook[0].url_env") && text.contains("HOOK_URL is not set"), "{text}");
}

#[tokio::test]
async fn a_mail_server_that_is_down_keeps_the_notice_pending_and_visible_in_metrics() {
    // A port with nothing listening: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let url = format!("smtp://{closed}?tls=none");
    let s = TestServer::start_toml(SMTP_TOML, &[("SMTP_URL", &url)]).await;
    s.store().enqueue_notice(&dead_letter(9, "eve")).expect("enqueue").expect("wanted");
    eventually("an attempt recorded", WAIT, || {
        s.store()
            .pending_notices()
            .is_ok_and(|p| p.first().is_some_and(|r| r.channels.get("smtp").is_some_and(|c| c.attempts >= 1)))
    })
    .await;
    let pending = s.store().pending_notices().expect("pending");
    assert!(pending[0].channels["smtp"].last_error.as_deref().is_some_and(|e| e.contains("SMTP")), "{pending:?}");
    let r = s
        .client
        .get(format!("{}/metrics", s.root))
        .bearer_auth(crate::support::server::ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics");
    let text = r.text().await.expect("text");
    assert!(text.contains("scimbridge_notifications_pending 1"), "{text}");
    // SCIM is not held up by it.
    assert!(!s.create_user("frank").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn a_users_warning_is_emailed_to_that_user_only_with_replies_to_the_admins() {
    let (smtp, hook) = (SmtpReceiver::start().await, WebhookReceiver::start().await);
    let toml = format!("{SMTP_TOML}{}", json_hook(""));
    let env = [("SMTP_URL", smtp.url()), ("HOOK_URL", hook.url()), ("HOOK_SECRET", SECRET.to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = TestServer::start_toml(&toml, &env).await;
    let warning = Notice::UserWarning {
        to: "dana@example.com".into(),
        username: "dana".into(),
        display_name: Some("Dana Scully".into()),
        target: "jira".into(),
        product: Some("Jira".into()),
        action: "deactivate".into(),
        reason: "inactive".into(),
        last_active: Some("2026-06-01".into()),
        due_at: "2026-12-12T02:00:00Z".into(),
        run_id: "run-42".into(),
    };
    s.store().enqueue_notice(&warning).expect("enqueue").expect("wanted while email is configured");
    eventually("the warning email", WAIT, || smtp.messages().len() == 1).await;
    let mail = &smtp.messages()[0];
    assert_eq!(mail.to, vec!["dana@example.com".to_string()], "to the user only, not the admins");
    let text = mail.readable();
    assert!(text.contains("Reply-To: atlassian-admins@example.com, oncall@example.com"), "{text}");
    for fact in [
        "Hello Dana Scully",
        "since 2026-06-01",
        "deactivated on 2026-12-12T02:00:00Z",
        "Logging in to Jira before then keeps your account",
    ] {
        assert!(text.contains(fact), "{fact} in {text}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.hits().is_empty(), "a user's warning never goes to a webhook");
    assert!(s.store().pending_notices().expect("pending").is_empty());
    s.stop().await;
}
