//! How `scimbridge audit` shows a history: one row per audit record with the columns an admin
//! asks about first — when, what kind of record, why (the trigger: IdP disable, access lost,
//! inactivity, licence, bulk, reconcile, operator…), who (the actor), and what it did where —
//! as aligned text with a header, or as RFC 4180 CSV (the `csv` crate) with a header row. A
//! record is never embedded as JSON in a cell: changed attributes are written as `name: before →
//! after`. (`--format jsonl` prints the records themselves.)

use serde_json::Value;

/// The columns, in order, of both the text and the CSV form.
pub const COLUMNS: [&str; 14] = [
    "at",
    "type",
    "trigger",
    "actor",
    "run_id",
    "target",
    "username",
    "action",
    "outcome",
    "job",
    "attempt",
    "status",
    "latency_ms",
    "detail",
];

/// The columns of the text form (the others are in `--format csv` and `jsonl`).
const TEXT_COLUMNS: [&str; 8] = ["at", "type", "trigger", "actor", "target", "action", "outcome", "detail"];

/// Widest a text column gets before it is cut (the last column, `detail`, is never cut).
const TEXT_WIDTH_CAP: usize = 40;

fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn field<'a>(r: &'a Value, key: &str) -> Option<&'a Value> {
    r.get(key).filter(|v| !v.is_null())
}

/// Why the record exists, in the admin's words.
pub fn trigger(r: &Value) -> String {
    let kind = field(r, "type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "scim" => scim_trigger(r).to_string(),
        "operator" => "operator".to_string(),
        // Made at delivery (found, created, re-hired, renamed) or by an operator (`links`).
        "link" if field(r, "actor").and_then(Value::as_str) == Some(crate::delivery::DELIVERY_ACTOR) => {
            "account link".to_string()
        }
        "link" => "operator".to_string(),
        _ if field(r, "outcome").and_then(Value::as_str) == Some("dropped") => "operator".to_string(),
        _ => match field(r, "trigger").and_then(Value::as_str) {
            Some(t) => intent_trigger(t).to_string(),
            None => String::new(),
        },
    }
}

/// An intent's trigger in the admin's words. Exhaustive over [`Trigger`], so a new trigger
/// cannot reach the column as its raw serde name; a name no version knows is shown as is.
fn intent_trigger(t: &str) -> &str {
    use crate::policy::Trigger as T;
    let Ok(known) = serde_json::from_value::<T>(Value::String(t.to_string())) else { return t };
    match known {
        T::Created => "IdP create",
        T::Disabled => "IdP disable",
        T::Enabled => "IdP enable",
        T::Deleted => "IdP delete",
        T::AccessLost => "access lost",
        T::AccessRegained => "access regained",
        T::GroupJoined => "IdP group join",
        T::GroupLeft => "IdP group leave",
        T::Cleanup => "inactivity",
        T::LicenseReclaim | T::LicenseGrant => "licence",
        T::Bulk => "bulk",
        T::Reconcile => "reconcile",
        T::GroupCreated => "IdP group create",
        T::GroupDeleted => "IdP group delete",
        T::ProfileUpdated => "IdP profile update",
        T::Renamed => "IdP rename",
        T::IdpSignal => "IdP signal after inactivity",
        T::Operator => "operator",
    }
}

fn scim_trigger(r: &Value) -> &'static str {
    let group = field(r, "kind").and_then(Value::as_str) == Some("Group");
    match (group, field(r, "op").and_then(Value::as_str)) {
        (true, _) => "IdP group change",
        (false, Some("create")) => "IdP create",
        (false, Some("delete")) => "IdP delete",
        _ => match r.pointer("/changed/active") {
            Some(Value::Array(pair)) if pair.get(1) == Some(&Value::Bool(false)) => "IdP disable",
            Some(Value::Array(pair)) if pair.get(1) == Some(&Value::Bool(true)) => "IdP enable",
            _ => "IdP update",
        },
    }
}

/// What was done: a delivery's or queued intent's action (with its group), a SCIM change's
/// operation and resource type, an operator action's name.
fn action(r: &Value) -> String {
    match field(r, "type").and_then(Value::as_str) {
        Some("scim") => format!("{} {}", text(field(r, "op")), text(field(r, "kind"))).trim().to_string(),
        Some("operator") => text(field(r, "action")),
        Some("link") => format!("link {}", text(field(r, "op"))),
        _ => match field(r, "action") {
            Some(Value::Object(a)) => {
                let name = text(a.get("type"));
                match a.get("group").or(a.get("groups")) {
                    Some(g) => format!("{name} {}", list(g)),
                    None => name,
                }
            }
            other => text(other),
        },
    }
}

fn list(v: &Value) -> String {
    match v {
        Value::Array(items) => items.iter().map(|i| text(Some(i))).collect::<Vec<_>>().join(";"),
        other => text(Some(other)),
    }
}

fn outcome(r: &Value) -> String {
    match field(r, "type").and_then(Value::as_str) {
        Some("queued") => "queued".to_string(),
        Some("scim") => format!("{} intent(s)", text(field(r, "intents")).parse::<u64>().unwrap_or(0)),
        Some("operator") | Some("link") => field(r, "outcome").map_or("done".to_string(), |o| text(Some(o))),
        _ => text(field(r, "outcome")),
    }
}

/// A scalar as the admin would type it; objects and arrays only by size.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{} value(s)]", a.len()),
        Value::Object(_) => "{…}".to_string(),
        other => other.to_string(),
    }
}

fn changes(r: &Value) -> String {
    let Some(Value::Object(changed)) = field(r, "changed") else { return String::new() };
    changed
        .iter()
        .filter(|(k, _)| k.as_str() != "meta")
        .map(|(k, pair)| match pair {
            Value::Array(p) if p.len() == 2 => format!("{k}: {} → {}", plain(&p[0]), plain(&p[1])),
            other => format!("{k}: {}", plain(other)),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn detail(r: &Value) -> String {
    match field(r, "type").and_then(Value::as_str) {
        Some("scim") => {
            let name = text(field(r, "name"));
            let op = field(r, "op").and_then(Value::as_str).unwrap_or_default();
            let members = |k: &str| field(r, k).and_then(Value::as_u64).unwrap_or(0);
            let mut parts = Vec::new();
            match op {
                "create" | "delete" => parts.push(name),
                _ => {
                    parts.push(name);
                    let c = changes(r);
                    if !c.is_empty() {
                        parts.push(c);
                    }
                }
            }
            if members("members_added") + members("members_removed") > 0 {
                parts.push(format!("members +{} -{}", members("members_added"), members("members_removed")));
            }
            parts.retain(|p| !p.is_empty());
            parts.join("; ")
        }
        Some("operator") => {
            let mut parts = Vec::new();
            for key in ["token", "scope", "job", "new_job", "link", "superseded_by", "detail"] {
                if let Some(v) = field(r, key) {
                    parts.push(format!("{key} {}", text(Some(v))));
                }
            }
            if let Some(a) = field(r, "intent").and_then(|a| a.get("type")) {
                parts.push(format!("intent {}", text(Some(a))));
            }
            parts.join("; ")
        }
        Some("link") => {
            let mut parts = Vec::new();
            if let Some(u) = field(r, "username").and_then(Value::as_str).filter(|u| !u.is_empty()) {
                parts.push(format!("account {u}"));
            }
            if let Some(p) = field(r, "previous") {
                parts.push(format!("was {}", text(Some(p))));
            }
            parts.extend(["source", "detail"].iter().filter_map(|k| field(r, k).map(|v| text(Some(v)))));
            parts.join("; ")
        }
        // `reason` is the reason word now (the trigger column says it in words); text is `detail`.
        _ => ["error", "effect", "detail", "superseded_by"]
            .iter()
            .filter_map(|k| field(r, k).map(|v| text(Some(v))))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// One record as the values of [`COLUMNS`].
pub fn row(r: &Value) -> Vec<String> {
    let status = r.get("calls").and_then(Value::as_array).and_then(|c| c.last()).and_then(|c| c.get("status"));
    vec![
        text(field(r, "at")),
        text(field(r, "type")),
        trigger(r),
        text(field(r, "actor").or(field(r, "by"))),
        text(field(r, "run_id")),
        text(field(r, "target")),
        text(field(r, "username").or(field(r, "name"))),
        action(r),
        outcome(r),
        text(field(r, "job")),
        text(field(r, "attempt")),
        text(status),
        text(field(r, "latency_ms")),
        detail(r),
    ]
}

/// Writes the records as CSV with a header row, one row per record.
///
/// # Errors
/// When `out` fails (a closed pipe is the caller's to treat as the end).
pub fn write_csv<W: std::io::Write>(records: &[Value], out: W) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    for r in records {
        w.write_record(row(r))?;
    }
    w.flush()
}

/// Writes the records as aligned text under a header (`TEXT_COLUMNS`).
///
/// # Errors
/// When `out` fails.
pub fn write_text<W: std::io::Write>(records: &[Value], mut out: W) -> std::io::Result<()> {
    let picks: Vec<usize> = TEXT_COLUMNS.iter().filter_map(|c| COLUMNS.iter().position(|k| k == c)).collect();
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let full = row(r);
            picks.iter().map(|&i| full[i].replace(['\n', '\r', '\t'], " ")).collect()
        })
        .collect();
    let last = TEXT_COLUMNS.len() - 1;
    let widths: Vec<usize> = (0..TEXT_COLUMNS.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([TEXT_COLUMNS[c].len()])
                .max()
                .unwrap_or(0)
                .min(TEXT_WIDTH_CAP)
        })
        .collect();
    let line = |cells: Vec<String>| -> String {
        let mut s = String::new();
        for (c, cell) in cells.into_iter().enumerate() {
            if c == last {
                s.push_str(&cell);
            } else {
                let cut: String = if cell.chars().count() > widths[c] {
                    cell.chars().take(widths[c].saturating_sub(1)).chain(['…']).collect()
                } else {
                    cell
                };
                s.push_str(&format!("{cut:<w$}  ", w = widths[c]));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(TEXT_COLUMNS.iter().map(|c| c.to_uppercase()).collect()))?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn delivery(trigger: &str) -> Value {
        json!({"type": "delivery", "at": "t", "trigger": trigger, "outcome": "delivered", "action": {"type": "deactivate"},
               "target": "jira", "username": "hank", "actor": "admin-ops (cli:al)", "run_id": "r1",
               "calls": [{"status": 204}]})
    }

    #[test]
    fn every_trigger_reads_as_the_admin_says_it() {
        for (t, want) in [
            ("disabled", "IdP disable"),
            ("access_lost", "access lost"),
            ("cleanup", "inactivity"),
            ("license_reclaim", "licence"),
            ("bulk", "bulk"),
            ("reconcile", "reconcile"),
            ("group_created", "IdP group create"),
            ("group_deleted", "IdP group delete"),
            ("profile_updated", "IdP profile update"),
            ("renamed", "IdP rename"),
        ] {
            assert_eq!(trigger(&delivery(t)), want);
        }
        assert_eq!(trigger(&delivery("from_a_newer_version")), "from_a_newer_version");
        let link =
            |actor: &str| json!({"type": "link", "op": "set", "actor": actor, "username": "dave", "previous": null});
        assert_eq!((trigger(&link("admin-ops")), action(&link("admin-ops"))), ("operator".into(), "link set".into()));
        assert_eq!(trigger(&link("delivery")), "account link");
        assert_eq!(outcome(&link("admin-ops")), "done");
        assert_eq!(outcome(&json!({"type": "operator", "action": "job_release", "outcome": "released"})), "released");
        assert_eq!(trigger(&json!({"type": "operator", "action": "job_retry"})), "operator");
        assert_eq!(trigger(&json!({"type": "delivery", "outcome": "dropped", "trigger": "disabled"})), "operator");
        let disable = json!({"type": "scim", "kind": "User", "op": "patch", "changed": {"active": [true, false]}});
        assert_eq!(trigger(&disable), "IdP disable");
        assert_eq!(trigger(&json!({"type": "scim", "kind": "Group", "op": "patch"})), "IdP group change");
    }

    #[test]
    fn csv_is_one_row_per_record_with_a_header_and_no_json_in_cells() {
        let scim = json!({"type": "scim", "at": "t0", "kind": "User", "op": "patch", "name": "ann, \"A\"", "actor": "entra",
                          "changed": {"active": [true, false], "emails": [null, [{"value": "a@x"}]]}, "intents": 1});
        let mut out = Vec::new();
        write_csv(&[scim, delivery("cleanup")], &mut out).expect("csv");
        let text = String::from_utf8(out).expect("utf8");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().expect("header").iter().collect::<Vec<_>>(), COLUMNS);
        let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(&rows[0][2], "IdP disable");
        assert_eq!(&rows[0][13], "ann, \"A\"; active: true → false; emails: (none) → [1 value(s)]");
        assert_eq!((&rows[1][2], &rows[1][3], &rows[1][4]), ("inactivity", "admin-ops (cli:al)", "r1"));
        assert_eq!((&rows[1][7], &rows[1][11]), ("deactivate", "204"));
        assert!(!text.contains("\"\"value\"\""), "no JSON inside a cell: {text}");
    }

    #[test]
    fn text_has_a_header_and_aligned_columns() {
        let mut out = Vec::new();
        write_text(&[delivery("disabled"), delivery("bulk")], &mut out).expect("text");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("AT") && lines[0].contains("TRIGGER") && lines[0].contains("ACTOR"), "{text}");
        assert!(lines[1].contains("IdP disable") && lines[2].contains("bulk"), "{text}");
        let col = |l: &str| l.find("admin-ops");
        assert_eq!(col(lines[1]), col(lines[2]), "{text}");
    }
}
