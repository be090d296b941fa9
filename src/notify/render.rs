//! What a notice says: its facts (who, what, why, when, which run, what to do) and their
//! rendering as an email (plain text + HTML, from the templates in `templates/`), a Slack
//! message, a Teams Adaptive Card and our own JSON, one notice at a time or as a daily digest.

use minijinja::{context, Environment};
use serde::Serialize;
use serde_json::{json, Value};

use super::Notice;

/// One notice as people read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Facts {
    pub id: u64,
    pub event: &'static str,
    /// When the notice was raised (RFC 3339).
    pub at: String,
    pub title: String,
    pub summary: String,
    /// Labelled facts, in reading order.
    pub rows: Vec<(String, String)>,
    /// Commands or links that act on it.
    pub action: Option<String>,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn who(username: &str, user_id: &str) -> String {
    format!("{username} (SCIM id {user_id})")
}

/// Why: the reason word (`idp_disabled`...), or the trigger of a notice stored without one.
fn by(actor: Option<&String>, reason: &str, trigger: &str) -> String {
    let why = if reason.is_empty() { trigger } else { reason };
    match actor {
        Some(a) => format!("{why}, by {a}"),
        None => why.to_string(),
    }
}

fn duration(secs: u64) -> String {
    match secs {
        s if s % 3600 == 0 && s >= 3600 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// The facts of `notice`, stored as `id` at `at`.
pub fn facts(id: u64, at: &str, notice: &Notice) -> Facts {
    let (title, summary, rows, action): (String, String, Vec<(&str, String)>, Option<String>) = match notice {
        Notice::Held { held, limit, window_secs, source } => (
            format!("Offboarding brake engaged: {held} destructive actions held so far"),
            format!(
                "More than {limit} deactivations, deletions, anonymizations or licence removals were requested within {}; \
                 scimbridge holds the rest. Nothing held reaches Atlassian until an operator approves it; creates, \
                 group additions and reactivations keep flowing. This is the one notice for this engagement: a \
                 surge still arriving is held too, and `scimbridge held list` counts it.",
                duration(*window_secs)
            ),
            [("Held when it engaged", held.to_string()), ("Limit", format!("{limit} per {}", duration(*window_secs)))]
                .into_iter()
                .chain(source.iter().map(|s| ("Source", s.clone())))
                .collect(),
            Some(
                "Review:  scimbridge held list\nApprove: scimbridge held approve --all   (or held approve ID...)\nReject:  scimbridge held reject --all    (leaves the accounts as they are)"
                    .into(),
            ),
        ),
        Notice::DeadLetter { job, target, user_id, username, action, trigger, reason, error, actor, run_id } => (
            format!("Dead letter: {action} of {username} on {target}"),
            format!("Job {job} could not be delivered and will not be tried again until an operator acts."),
            [
                ("Who", who(username, user_id)),
                ("What", format!("{action} on {target}")),
                ("Why", by(actor.as_ref(), reason, trigger)),
                ("Error", error.clone()),
                ("Job", job.to_string()),
            ]
            .into_iter()
            .chain(run_id.iter().map(|r| ("Run", r.clone())))
            .collect(),
            Some(format!("Inspect: scimbridge jobs show {job}\nRetry:   scimbridge jobs retry {job}")),
        ),
        Notice::TargetDown { target, since, down_secs, error } => (
            format!("Target {target} unreachable for {}", duration(*down_secs)),
            format!(
                "scimbridge cannot reach {target}. Its intents wait in the outbox and are delivered when it answers \
                 again; nothing is lost, but offboardings there are late."
            ),
            vec![("Target", target.clone()), ("Down since", since.clone()), ("Last error", error.clone())],
            Some("Check: scimbridge check-config, and /readyz or /metrics".into()),
        ),
        Notice::RunFinished {
            kind,
            run_id,
            report_id,
            mode,
            started_at,
            finished_at,
            enqueued,
            affected,
            errors,
            report,
        } => (
            format!("Scheduled {kind} run finished: {affected} accounts, {enqueued} actions queued"),
            if errors.is_empty() {
                format!("The scheduled {kind} run ({mode}) finished.")
            } else {
                format!("The scheduled {kind} run ({mode}) finished with errors on {} target(s).", errors.len())
            },
            [
                ("Run", run_id.clone()),
                ("Mode", mode.clone()),
                ("Started", started_at.clone()),
                ("Finished", finished_at.clone()),
                ("Accounts affected", affected.to_string()),
                ("Actions queued", enqueued.to_string()),
                ("Report", format!("{report} (report {report_id})")),
            ]
            .into_iter()
            .chain(errors.iter().map(|e| ("Error", e.clone())))
            .collect(),
            Some(format!("Report: {report}\nUndo:   scimbridge undo {run_id} --dry-run")),
        ),
        Notice::Offboarded { job, target, user_id, username, action, trigger, reason, actor, run_id } => (
            format!("{username} offboarded on {target} ({action})"),
            format!("scimbridge delivered {action} of {username} to {target}."),
            [
                ("Who", who(username, user_id)),
                ("What", format!("{action} on {target}")),
                ("Why", by(actor.as_ref(), reason, trigger)),
                ("Job", job.to_string()),
            ]
            .into_iter()
            .chain(run_id.iter().map(|r| ("Run", r.clone())))
            .collect(),
            None,
        ),
        Notice::UserWarning { to, username, target, action, reason, due_at, run_id, .. } => (
            format!("Warning sent to {username}: {action} on {target} due {due_at}"),
            format!("{username} was warned by email that their account will be {} unless they log in.", past(action)),
            vec![
                ("Who", format!("{username} <{to}>")),
                ("What", format!("{action} on {target}")),
                ("Why", reason.clone()),
                ("When", due_at.clone()),
                ("Run", run_id.clone()),
            ],
            None,
        ),
    };
    Facts {
        id,
        event: notice.event(),
        at: at.to_string(),
        title,
        summary,
        rows: rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        action,
    }
}

/// "deactivated", "have its licence removed"... for the user's email.
fn past(action: &str) -> String {
    match action {
        "deactivate" => "deactivated".into(),
        "remove_license" => "removed from the licensed users (you lose access until it is given back)".into(),
        "delete" => "deleted".into(),
        "anonymize" => "anonymized".into(),
        other => other.replace('_', " "),
    }
}

fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    // Names ending in .html are auto-escaped: a username cannot inject markup into an email.
    env.add_template("admin.txt", include_str!("templates/admin.txt"))?;
    env.add_template("admin.html", include_str!("templates/admin.html"))?;
    env.add_template("digest.txt", include_str!("templates/digest.txt"))?;
    env.add_template("digest.html", include_str!("templates/digest.html"))?;
    env.add_template("warning.txt", include_str!("templates/warning.txt"))?;
    env.add_template("warning.html", include_str!("templates/warning.html"))?;
    Ok(env)
}

/// The admins' email for one notice.
///
/// # Errors
/// A template error (a bug: the templates are compiled in, and a unit test renders each).
pub fn admin_email(f: &Facts) -> Result<Email, minijinja::Error> {
    let env = templates()?;
    let ctx = context! { id => f.id, event => f.event, at => &f.at, title => &f.title, summary => &f.summary, rows => &f.rows, action => &f.action };
    Ok(Email {
        subject: format!("[scimbridge] {}", f.title),
        text: env.get_template("admin.txt")?.render(&ctx)?,
        html: env.get_template("admin.html")?.render(&ctx)?,
    })
}

/// The admins' daily digest of `items` (oldest first), sent at `at`.
///
/// # Errors
/// As [`admin_email`].
pub fn digest_email(items: &[Facts], at: &str) -> Result<Email, minijinja::Error> {
    let env = templates()?;
    let since = items.first().map(|f| f.at.clone()).unwrap_or_default();
    let ctx = context! { items => minijinja::value::Serde(items), since => since, at => at };
    Ok(Email {
        subject: format!(
            "[scimbridge] Daily digest: {} notice{}",
            items.len(),
            if items.len() == 1 { "" } else { "s" }
        ),
        text: env.get_template("digest.txt")?.render(&ctx)?,
        html: env.get_template("digest.html")?.render(&ctx)?,
    })
}

/// §3's warning email to the user a [`Notice::UserWarning`] names; `None` for other notices.
///
/// # Errors
/// As [`admin_email`].
pub fn user_email(notice: &Notice) -> Result<Option<Email>, minijinja::Error> {
    let Notice::UserWarning {
        username,
        display_name,
        target,
        product,
        action,
        reason,
        last_active,
        due_at,
        run_id,
        ..
    } = notice
    else {
        return Ok(None);
    };
    let env = templates()?;
    let product = product.clone().unwrap_or_else(|| target.clone());
    let why = match reason.as_str() {
        "inactive" => "unused accounts are deactivated to keep access tidy".to_string(),
        "license_reclaimed" => "unused licences are given to colleagues who need them".to_string(),
        other => other.replace('_', " "),
    };
    let ctx = context! {
        name => display_name.clone().unwrap_or_else(|| username.clone()),
        username => username, product => &product, what => past(action), due => due_at,
        why => why, last_active => last_active, run_id => run_id,
    };
    Ok(Some(Email {
        subject: format!("Action needed: log in to {product} by {due_at} to keep your account"),
        text: env.get_template("warning.txt")?.render(&ctx)?,
        html: env.get_template("warning.html")?.render(&ctx)?,
    }))
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn slack_blocks(f: &Facts) -> Vec<Value> {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&f.title, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&f.summary)}}),
    ];
    // A section holds at most 10 fields.
    for chunk in f.rows.chunks(10) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{}*\n{}", slack_escape(k), slack_escape(v))}))
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    if let Some(a) = &f.action {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{}```", slack_escape(a))}}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("scimbridge · {} · {}", f.event, f.at)}]}));
    blocks
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A Slack incoming-webhook message: `text` (the notification and fallback) and Block Kit
/// `blocks` (api.slack.com/messaging/webhooks).
pub fn slack(f: &Facts) -> Value {
    json!({"text": slack_escape(&format!("{}: {}", f.title, f.summary)), "blocks": slack_blocks(f)})
}

/// A Slack digest: one message, a header and each notice's blocks (Slack allows 50 blocks; the
/// rest are counted, not shown, and the email or JSON digest has them all).
pub fn slack_digest(items: &[Facts], at: &str) -> Value {
    let title = format!("scimbridge daily digest: {} notices", items.len());
    let mut blocks = vec![json!({"type": "header", "text": {"type": "plain_text", "text": title}})];
    let mut shown = 0;
    for f in items {
        let b = slack_blocks(f);
        if blocks.len() + b.len() + 1 > 50 {
            break;
        }
        blocks.push(json!({"type": "divider"}));
        blocks.extend(b);
        shown += 1;
    }
    if shown < items.len() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("… and {} more", items.len() - shown)}]}));
    }
    json!({"text": format!("{title} ({at})"), "blocks": blocks})
}

fn card_body(f: &Facts) -> Vec<Value> {
    let mut body = vec![
        json!({"type": "TextBlock", "text": f.title, "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "TextBlock", "text": f.summary, "wrap": true}),
        json!({"type": "FactSet", "facts": f.rows.iter().map(|(k, v)| json!({"title": k, "value": v})).collect::<Vec<_>>()}),
    ];
    if let Some(a) = &f.action {
        body.push(json!({"type": "TextBlock", "text": a, "fontType": "Monospace", "wrap": true}));
    }
    body.push(json!({"type": "TextBlock", "text": format!("scimbridge · {} · {}", f.event, f.at), "isSubtle": true, "size": "Small", "wrap": true}));
    body
}

/// A Teams message carrying an Adaptive Card (1.4), the form Teams' Workflows webhooks ("Post to
/// a channel when a webhook request is received") take; Office 365 connectors and their
/// MessageCard are retired.
fn teams_message(body: Vec<Value>) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

pub fn teams(f: &Facts) -> Value {
    teams_message(card_body(f))
}

pub fn teams_digest(items: &[Facts], at: &str) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": format!("scimbridge daily digest: {} notices ({at})", items.len()), "weight": "Bolder", "size": "Large", "wrap": true}),
    ];
    for f in items {
        let mut b = card_body(f);
        if let Some(first) = b.first_mut() {
            first["separator"] = json!(true);
        }
        body.extend(b);
    }
    teams_message(body)
}

/// Our own event JSON: `{"id", "event", "at", "title", "data": <the notice>}`. `id` is the
/// notice's id: the same on every retry, so a receiver can drop a repeat.
pub fn json_event(f: &Facts, notice: &Notice) -> Value {
    json!({"id": f.id, "event": f.event, "at": f.at, "title": f.title, "data": notice})
}

/// `{"event": "digest", "at", "notices": [<event JSON>...]}`.
pub fn json_digest(items: &[(Facts, Notice)], at: &str) -> Value {
    let ids: Vec<String> = items.iter().map(|(f, _)| f.id.to_string()).collect();
    json!({
        "id": format!("digest-{}", ids.join("-")),
        "event": "digest",
        "at": at,
        "notices": items.iter().map(|(f, n)| json_event(f, n)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead() -> Notice {
        Notice::DeadLetter {
            job: 42,
            target: "jira".into(),
            user_id: "u-1".into(),
            username: "<b>erin</b>".into(),
            action: "deactivate".into(),
            trigger: "disabled".into(),
            reason: "idp_disabled".into(),
            error: "403 Forbidden".into(),
            actor: Some("entra".into()),
            run_id: Some("run-7".into()),
        }
    }

    #[test]
    fn an_admin_email_gives_the_facts_in_text_and_escaped_html() {
        let f = facts(9, "2026-12-05T10:00:00Z", &dead());
        let e = admin_email(&f).expect("render");
        assert_eq!(e.subject, "[scimbridge] Dead letter: deactivate of <b>erin</b> on jira");
        for want in [
            "Who: <b>erin</b> (SCIM id u-1)",
            "Why: idp_disabled, by entra",
            "Error: 403 Forbidden",
            "Run: run-7",
            "scimbridge jobs retry 42",
            "notice 9 (dead_letter) at 2026-12-05T10:00:00Z",
        ] {
            assert!(e.text.contains(want), "{want} in {}", e.text);
        }
        assert!(
            e.html.contains("&lt;b&gt;erin&lt;&#x2f;b&gt;") || e.html.contains("&lt;b&gt;erin&lt;/b&gt;"),
            "{}",
            e.html
        );
        assert!(!e.html.contains("<b>erin"), "HTML is escaped");
    }

    #[test]
    fn the_brake_notice_names_the_held_count_and_the_approve_command() {
        let n = Notice::Held { held: 4950, limit: 50, window_secs: 3600, source: None };
        let e = admin_email(&facts(1, "t", &n)).expect("render");
        assert!(e.subject.contains("4950 destructive actions held"));
        assert!(e.text.contains("scimbridge held approve --all") && e.text.contains("50 per 1 h"), "{}", e.text);
    }

    #[test]
    fn the_user_warning_says_what_when_and_that_logging_in_keeps_the_account() {
        let n = Notice::UserWarning {
            to: "dana@example.com".into(),
            username: "dana".into(),
            display_name: Some("Dana Scully".into()),
            target: "jira".into(),
            product: Some("Jira".into()),
            action: "deactivate".into(),
            reason: "inactive".into(),
            last_active: Some("2026-06-01".into()),
            due_at: "2026-12-12T02:00:00Z".into(),
            run_id: "run-1".into(),
        };
        let e = user_email(&n).expect("render").expect("a user email");
        assert!(e.subject.contains("log in to Jira by 2026-12-12T02:00:00Z"), "{}", e.subject);
        for want in [
            "Hello Dana Scully",
            "since 2026-06-01",
            "deactivated on 2026-12-12T02:00:00Z",
            "Logging in to Jira before then keeps your account",
        ] {
            assert!(e.text.contains(want), "{want} in {}", e.text);
        }
        assert!(e.html.contains("keeps your account"));
        assert_eq!(user_email(&dead()).expect("render"), None);
    }

    #[test]
    fn slack_teams_and_json_bodies_have_their_documented_shapes() {
        let n = dead();
        let f = facts(9, "2026-12-05T10:00:00Z", &n);
        let s = slack(&f);
        assert!(s["text"].as_str().is_some_and(|t| t.contains("&lt;b&gt;erin")));
        assert_eq!(s["blocks"][0]["type"], "header");
        let t = teams(&f);
        assert_eq!(t["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(t["attachments"][0]["content"]["type"], "AdaptiveCard");
        assert_eq!(t["attachments"][0]["content"]["body"][2]["facts"][0]["title"], "Who");
        let j = json_event(&f, &n);
        assert_eq!((&j["id"], &j["event"], &j["data"]["job"]), (&json!(9), &json!("dead_letter"), &json!(42)));
        let items = vec![f.clone(), facts(10, "2026-12-05T11:00:00Z", &n)];
        let d = digest_email(&items, "2026-12-06T08:00:00Z").expect("digest");
        assert!(
            d.subject.contains("2 notices") && d.text.contains("1. Dead letter") && d.text.contains("2. Dead letter")
        );
        assert_eq!(
            slack_digest(&items, "x")["blocks"].as_array().map(|b| b.iter().filter(|b| b["type"] == "header").count()),
            Some(3)
        );
    }
}
