//! The `links` commands (issue 9) under issue 10's operator rules, with the real binary: they
//! never create a store, need a target's credential only to call it, name an unknown target,
//! end quietly on a closed stdout; a link change through the admin API records the token and
//! the CLI user with a run id that `audit --run` finds; intents held for review are jobs
//! (`jobs list --state held_for_review`) whose release is audited under that run.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use crate::support::child::cli_in_async as cli_async;
use crate::support::server::{eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn jira_toml(jira: &Emulator, token_env: &str) -> String {
    format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"{token_env}\"\n\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\n",
        jira.base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_commands_never_create_a_store_need_credentials_only_to_call_a_target_and_name_unknown_targets() {
    let jira = Emulator::start(Product::Jira).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, jira_toml(&jira, "JIRA_TOKEN_NOT_IN_THIS_SHELL")).expect("write");
    let cfg = cfg.display().to_string();

    // No store: every links command says where it looked and creates nothing.
    let missing = tmp.path().join("not-a-store");
    let missing_s = missing.display().to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", missing_s.as_str())];
    let commands: [&[&str]; 5] = [
        &["links", "list"],
        &["links", "preview"],
        &["links", "set", "ann", "ann", "--target", "jira", "--new"],
        &["links", "set", "ann", "ann", "--target", "jira"],
        &["links", "clear", "ann"],
    ];
    for args in commands {
        let mut all = args.to_vec();
        all.extend(["--config", &cfg]);
        let (code, out, err) = cli_async(tmp.path(), &all, &env).await;
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(err.contains(&missing_s) && err.contains("SCIMBRIDGE_DATA_DIR"), "{args:?}: {err}");
        assert!(!missing.exists(), "{args:?} created {missing_s}");
    }

    // A stopped store: reading and clearing links call no target, so need no credential.
    let s = TestServer::start().await;
    s.create_user("ann").await;
    let dir = s.dir.display().to_string();
    let _keep = s.stop_keep_dir().await;
    let env = [("SCIMBRIDGE_DATA_DIR", dir.as_str()), ("USER", "alice")];
    let (code, out, err) = cli_async(tmp.path(), &["links", "list", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("target\tscim_user"), "{out}");
    assert!(err.contains("0 link(s)"), "{err}");

    // A mistyped target is named, with the configured ones, and never reads as "0 found".
    for args in [
        &["links", "list", "--target", "jirra"][..],
        &["links", "preview", "--target", "jirra"],
        &["links", "clear", "ann", "--target", "jirra"],
        &["links", "set", "ann", "ann", "--target", "jirra", "--new"],
        &["links", "set", "ann", "ann", "--target", "jirra"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--config", &cfg]);
        let (code, out, err) = cli_async(tmp.path(), &all, &env).await;
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(err.contains("'jirra'") && err.contains("jira"), "{args:?}: {err}");
    }

    // Calling Jira here needs its credential, and says which (exit 78, like a lifecycle run).
    for args in [&["links", "preview"][..], &["links", "set", "ann", "ann", "--target", "jira"]] {
        let mut all = args.to_vec();
        all.extend(["--config", &cfg]);
        let (code, _, err) = cli_async(tmp.path(), &all, &env).await;
        assert_eq!(code, 78, "{args:?}: {err}");
        assert!(err.contains("JIRA_TOKEN_NOT_IN_THIS_SHELL") && err.contains("target[0].token_env"), "{err}");
    }
    assert!(jira.received().is_empty(), "nothing called Jira");

    // `--new` links without calling Jira; the change names the local user and a run id.
    let (code, out, err) =
        cli_async(tmp.path(), &["links", "set", "ann", "ann.old", "--target", "jira", "--new", "--config", &cfg], &env)
            .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Linked ann to ann.old on jira"), "{out}");
    let (code, out, err) =
        cli_async(tmp.path(), &["audit", "--user", "ann.old", "--format", "jsonl", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    let set: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| r["type"] == "link")
        .unwrap_or_else(|| panic!("the link record is found by its Atlassian username: {out}"));
    assert_eq!(set["actor"], "cli:alice", "{set}");
    let run = set["run_id"].as_str().expect("a run id").to_string();
    let (code, out, err) = cli_async(tmp.path(), &["audit", "--run", &run, "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.contains("operator") && l.contains("link set")), "{out}");
    assert!(jira.received().is_empty(), "--new called nobody");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_list_and_preview_end_quietly_on_a_closed_stdout() {
    use std::os::unix::process::ExitStatusExt;
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user("ann");
    let s = TestServer::start().await;
    s.create_user("ann").await;
    let dir = s.dir.display().to_string();
    let _keep = s.stop_keep_dir().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, jira_toml(&jira, "ATL_TOKEN")).expect("write");
    for args in [&["links", "list"][..], &["links", "preview"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
            .args(args)
            .args(["--config", &cfg.display().to_string()])
            .env_clear()
            .env("SCIMBRIDGE_DATA_DIR", &dir)
            .env("ATL_TOKEN", ATL_TOKEN)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert!(out.status.code() == Some(0) || out.status.signal() == Some(13), "{args:?}: {:?} {err}", out.status);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_intents_are_jobs_and_a_links_set_through_the_server_is_audited_with_token_cli_user_and_run() {
    let jira = Emulator::start(Product::Jira).await;
    jira.add_user_with_email("dave", "dave@contoso.com");
    jira.add_user_with_email("dsmith", "dave@contoso.com");
    let toml = jira_toml(&jira, "ATL_TOKEN");
    let s = TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let body = s
        .create_user_from(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "dave@contoso.com",
            "emails": [{"value": "dave@contoso.com", "primary": true}],
            "active": true
        }))
        .await;
    let id = body["id"].as_str().expect("id").to_string();
    eventually("dave is held for review", WAIT, || s.store().held_count("jira", &id).unwrap_or(0) == 1).await;

    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, &toml).expect("write");
    let cfg = cfg.display().to_string();
    let (dir, listen) = (s.dir.display().to_string(), s.root.trim_start_matches("http://").to_string());
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
        ("ATL_TOKEN", ATL_TOKEN),
        ("USER", "alice"),
    ];

    // The held create is a job an operator sees, saying what it waits for.
    let (code, out, err) =
        cli_async(tmp.path(), &["jobs", "list", "--state", "held_for_review", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    let held: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(held.len(), 1, "{out}");
    assert!(held[0].contains("held_for_review") && held[0].contains("links set"), "{out}");
    let held_job = held[0].split('\t').next().expect("id").to_string();
    let (code, out, _) = cli_async(tmp.path(), &["jobs", "list", "--config", &cfg], &env).await;
    assert!(code == 0 && out.contains(&format!("{held_job}\theld_for_review")), "in the full list too: {out}");

    let (code, out, err) = cli_async(
        tmp.path(),
        &["links", "set", "dave@contoso.com", "dave", "--target", "jira", "--config", &cfg],
        &env,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 held delivery(ies) released"), "{out}");
    eventually("the released create is delivered", WAIT, || s.store().outbox_depth() == 0).await;
    assert!(jira.user("dave@contoso.com").is_none(), "linked, not duplicated");

    // The change names the admin token and the CLI user, with a run id that finds the release.
    let set = s
        .store()
        .audit_of(&id)
        .expect("audit")
        .into_iter()
        .find(|r| r["type"] == "link" && r["op"] == "set")
        .expect("a link set record");
    assert_eq!(set["actor"], "admin-config-1 (cli:alice)", "{set}");
    let run = set["run_id"].as_str().expect("run id").to_string();
    let (code, out, err) = cli_async(tmp.path(), &["audit", "--run", &run, "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.contains("link set")), "{out}");
    assert!(out.lines().any(|l| l.contains("job_release") && l.contains("released")), "{out}");
    let (code, out, err) = cli_async(tmp.path(), &["jobs", "show", &held_job, "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(shown["state"], "released", "{shown}");
    assert_eq!(shown["outcome"]["actor"], "admin-config-1 (cli:alice)", "{shown}");

    // The admin routes used are labelled by name in /metrics.
    let text = s
        .client
        .get(format!("{}/metrics", s.root))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(text.contains("route=\"/admin/links\""), "{text}");
    assert!(!text.contains("route=\"/admin/{id}\""), "{text}");
}
