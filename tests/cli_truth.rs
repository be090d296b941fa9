//! Issue 10, "the CLI says the truth or fails", with the real binary: it reaches the admin API
//! wherever the server serves it (admin_listen, TLS, `--server`) and treats any other answer as
//! an error; it never creates a store for a read; it needs a target's credentials only to call
//! it; a closed stdout ends it quietly; mistyped names and missing users are named; tokens from
//! the environment are listed and a revoke says when one keeps a value working.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::atlassian_emulator::{Emulator, BITBUCKET_PASSWORD, BITBUCKET_USER, TOKEN as ATL_TOKEN};
use crate::support::child::{cli_in, cli_in_async as cli};
use crate::support::server::{eventually, test_config, TestServer, ADMIN_TOKEN, TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

fn jira_target(jira: &Emulator, token_env: &str) -> String {
    format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"{token_env}\"\n",
        jira.base_url()
    )
}

/// A store made the way `serve` makes it, then closed.
async fn stopped_store_with(users: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let s = TestServer::start().await;
    for u in users {
        s.create_user(u).await;
    }
    let dir = s.dir.clone();
    let keep = s.stop_keep_dir().await.expect("temp dir");
    (keep, dir)
}

#[tokio::test]
async fn with_admin_listen_the_cli_reads_the_admin_port_and_any_other_answer_is_an_error() {
    let jira = Emulator::start(Product::Jira).await;
    jira.down_for(Duration::from_secs(3600));
    let admin_port = free_port();
    let toml = format!("admin_listen = \"127.0.0.1:{admin_port}\"\n{}", jira_target(&jira, "ATL_TOKEN"));
    let s = TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    for u in ["ann", "bob", "cy"] {
        s.create_user(u).await;
    }
    eventually("three creates waiting for Jira", WAIT, || s.store().outbox_depth() == 3).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write(tmp.path(), "scimbridge.toml", &toml);
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    // The operator's shell: the server's config and admin token, no Jira credential.
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];

    let (code, out, err) = cli(tmp.path(), &["jobs", "list", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "the header and three jobs: {out}");
    assert!(err.contains("3 job(s)"), "{err}");
    let (code, out, err) = cli(tmp.path(), &["jobs", "list", "--state", "pending", "--config", &cfg], &env).await;
    assert_eq!((code, out.lines().count()), (0, 4), "{out}{err}");

    let (code, out, err) =
        cli(tmp.path(), &["audit", "--user", "ann", "--format", "jsonl", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.contains("\"create\"")), "ann's history through admin_listen: {out}");
    let (code, _, err) = cli(tmp.path(), &["jobs", "show", "999999", "--config", &cfg], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("No job 999999"), "the server's own words: {err}");
    let seq = s.store().jobs().expect("jobs")[0].seq.to_string();
    let (code, out, err) = cli(tmp.path(), &["jobs", "show", &seq, "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"intent\""), "{out}");

    // The server's environment tokens are listed by name, never by value.
    let (code, out, err) = cli(tmp.path(), &["token", "list", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("env:SCIMBRIDGE_ADMIN_TOKEN#1\tadmin"), "{out}");
    assert!(out.contains("env:SCIMBRIDGE_TOKEN#1\tscim"), "{out}");
    assert!(!out.contains(ADMIN_TOKEN) && !out.contains(TOKEN), "{out}");

    // The main listener does not serve the admin API when admin_listen is set: an error, not "0".
    let main = format!("--server={}", s.root);
    let (code, out, err) = cli(tmp.path(), &["jobs", "list", &main], &env).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("/admin/jobs") && err.contains("404"), "{err}");
    assert!(!err.contains("0 job(s)") && out.is_empty(), "{out}{err}");
    let (code, out, err) = cli(tmp.path(), &["token", "list", &main], &env).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("/admin/tokens") && err.contains("404"), "{err}");
    let (code, _, err) = cli(tmp.path(), &["audit", "--user", "ann", &main], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("/admin/audit") && err.contains("404"), "{err}");
    // Not scimbridge at all (the Jira emulator), and nothing listening.
    let (code, _, err) = cli(tmp.path(), &["jobs", "list", "--server", jira.base_url()], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("/admin/jobs"), "{err}");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let (code, _, err) = cli(tmp.path(), &["jobs", "list", "--server", &closed], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("got no answer") && err.contains(&closed), "{err}");
    // The store is held, so a server is known to run; where the config says it listens, nothing does.
    let wrong = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", &closed[7..]),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let (code, _, err) = cli(tmp.path(), &["jobs", "list"], &wrong).await;
    assert_ne!(code, 0);
    assert!(err.contains("another process has it open") && err.contains("got no answer"), "{err}");
    // A wrong admin token is named as such.
    let bad = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", "not-the-admin-token-0123"),
    ];
    let (code, _, err) = cli(tmp.path(), &["jobs", "list", "--config", &cfg], &bad).await;
    assert_ne!(code, 0);
    assert!(err.contains("401") && err.contains("admin token"), "{err}");
}

fn tls_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_the_cli_uses_https_and_trusts_only_the_configured_certificate_or_ca() {
    let tmp = tempfile::tempdir().expect("tmp");
    let toml =
        format!("[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n", tls_fixture("cert-a.pem"), tls_fixture("key-a.pem"));
    let cfg = write(tmp.path(), "scimbridge.toml", &toml);
    let data = tmp.path().join("data");
    let served = crate::support::child::serve(&data, Some(Path::new(&cfg)), &[]).await;
    let addr = served.base.trim_start_matches("http://").trim_end_matches("/scim/v2").to_string();
    let dir = data.display().to_string();
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", addr.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let (code, out, err) = cli(tmp.path(), &["jobs", "list", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("id\tstate") && err.contains("0 job(s)"), "{out}{err}");
    let (code, out, err) = cli(tmp.path(), &["token", "list", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("env:SCIMBRIDGE_ADMIN_TOKEN#1"), "{out}");

    // An operator who may read the certificate but not the server's private key.
    let no_key = toml.replace(&tls_fixture("key-a.pem"), "/nonexistent/key.pem");
    let operator_cfg = write(tmp.path(), "operator.toml", &no_key);
    let (code, out, err) = cli(tmp.path(), &["jobs", "list", "--config", &operator_cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("id\tstate"), "{out}");
    let (code, _, err) = cli(tmp.path(), &["check-config", "--config", &operator_cfg], &env).await;
    assert_eq!(code, 78, "serving needs the key: {err}");
    assert!(err.contains("tls.cert_file"), "{err}");

    // --server without the certificate configured: verification is never skipped.
    let port = addr.rsplit(':').next().expect("port");
    let url = format!("https://localhost:{port}");
    let token_only = [("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)];
    let (code, _, err) = cli(tmp.path(), &["jobs", "list", "--server", &url], &token_only).await;
    assert_ne!(code, 0);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    let (code, out, err) =
        cli(tmp.path(), &["jobs", "list", "--server", &url, "--ca", &tls_fixture("cert-a.pem")], &token_only).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("id\tstate"), "{out}");
    // Plain http to the TLS port says so.
    let plain = format!("http://127.0.0.1:{port}");
    let (code, _, err) = cli(tmp.path(), &["jobs", "list", "--server", &plain], &token_only).await;
    assert_ne!(code, 0);
    assert!(err.contains("https"), "{err}");
    drop(served);
}

#[test]
fn read_only_commands_never_create_a_store_and_name_the_one_missing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("not-a-store");
    let dir_s = dir.display().to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", dir_s.as_str()), ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)];
    let backup = tmp.path().join("b.jsonl").display().to_string();
    let commands: [&[&str]; 10] = [
        &["jobs", "list"],
        &["jobs", "show", "1"],
        &["audit", "--user", "ann"],
        &["token", "list"],
        &["token", "new", "--name", "ops", "--admin"],
        &["license", "report"],
        &["cleanup", "--dry-run"],
        &["deactivate", "--target", "jira", "--group", "g", "--dry-run"],
        &["reconcile"],
        &["backup", &backup],
    ];
    for args in commands {
        let (code, out, err) = cli_in(tmp.path(), args, &env);
        assert_ne!(code, 0, "{args:?}: {out}");
        assert!(err.contains(&dir_s), "{args:?} names the path: {err}");
        assert!(err.contains("--config") && err.contains("SCIMBRIDGE_DATA_DIR"), "{args:?}: {err}");
        assert!(!dir.exists(), "{args:?} created {dir_s}");
        assert!(!tmp.path().join("reports").exists(), "{args:?} wrote reports");
    }
}

#[tokio::test]
async fn jobs_and_audit_need_no_target_credentials_and_a_local_run_names_the_one_it_needs() {
    let (_keep, data) = stopped_store_with(&["ann"]).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let jira = Emulator::start(Product::Jira).await;
    let cfg = write(tmp.path(), "c.toml", &jira_target(&jira, "JIRA_TOKEN_NOT_IN_THIS_SHELL"));
    let dir = data.display().to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", dir.as_str())];
    let (code, out, err) = cli(tmp.path(), &["jobs", "list", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("id\tstate"), "{out}");
    let (code, out, err) = cli(tmp.path(), &["audit", "--user", "ann", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(!out.is_empty() && !err.contains("JIRA_TOKEN_NOT_IN_THIS_SHELL"), "{out}{err}");
    // A run here calls Jira itself: it needs the credential and says which.
    let (code, _, err) = cli(tmp.path(), &["cleanup", "--dry-run", "--config", &cfg], &env).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("JIRA_TOKEN_NOT_IN_THIS_SHELL") && err.contains("target[0].token_env"), "{err}");
    let (code, _, err) = cli(tmp.path(), &["check-config", "--config", &cfg], &env).await;
    assert_eq!(code, 78, "{err}");
    assert!(err.contains("JIRA_TOKEN_NOT_IN_THIS_SHELL"), "{err}");
    assert!(jira.received().is_empty(), "nothing called Jira");
}

#[cfg(unix)]
#[tokio::test]
async fn a_closed_stdout_ends_every_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (_keep, data) = stopped_store_with(&["kim"]).await;
    let dir = data.display().to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let cases: [&[&str]; 5] = [
        &["audit", "--user", "kim", "--format", "csv"],
        &["audit", "--user", "kim"],
        &["jobs", "list"],
        &["token", "list"],
        &["check-config"],
    ];
    for args in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
            .args(args)
            .env_clear()
            .env("SCIMBRIDGE_DATA_DIR", &dir)
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // The reader goes away before the command prints anything (as `| head -0` would).
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        let quiet = out.status.code() == Some(0) || out.status.signal() == Some(libc_sigpipe());
        assert!(quiet, "{args:?}: {:?} {err}", out.status);
    }
}

/// SIGPIPE's number on Linux and the BSDs.
#[cfg(unix)]
fn libc_sigpipe() -> i32 {
    13
}

#[tokio::test]
async fn revoking_a_token_whose_value_is_also_in_the_servers_environment_says_so_and_fails() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let (code, ops, err) = cli(tmp.path(), &["token", "new", "--name", "ops", "--admin"], &env).await;
    assert_eq!(code, 0, "{err}");
    let ops = ops.trim().to_string();
    // As README says: the admin token also goes into the server's environment.
    let data = s.dir.clone();
    let keep = s.stop_keep_dir().await;
    let admin_env = format!("{ADMIN_TOKEN},{ops}");
    let s = TestServer::start_with(test_config(&data, &[("SCIMBRIDGE_ADMIN_TOKEN", admin_env.as_str())])).await;
    let listen = s.root.trim_start_matches("http://").to_string();
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let (code, out, err) = cli(tmp.path(), &["token", "list"], &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ops\tadmin") && out.contains("env:SCIMBRIDGE_ADMIN_TOKEN#2\tadmin"), "{out}");
    assert!(!out.contains(&ops), "{out}");
    let (code, out, err) = cli(tmp.path(), &["token", "revoke", "ops"], &env).await;
    assert_ne!(code, 0, "the value still works, so the revoke did not do what was asked: {out}");
    assert!(err.contains("env:SCIMBRIDGE_ADMIN_TOKEN#2") && err.contains("still accepted"), "{err}");
    assert!(!out.contains("Revoked 'ops'."), "{out}");
    // Indeed it still works (from the environment), and the stored one is gone.
    let r = s.client.get(format!("{}/admin/jobs", s.root)).bearer_auth(&ops).send().await.expect("req");
    assert_eq!(r.status(), 200);
    let (code, out, _) = cli(tmp.path(), &["token", "list"], &env).await;
    assert_eq!(code, 0);
    assert!(!out.contains("ops\tadmin"), "{out}");
    // An environment token cannot be revoked here, and says where it lives.
    let (code, _, err) = cli(tmp.path(), &["token", "revoke", "env:SCIMBRIDGE_ADMIN_TOKEN#1"], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("SCIMBRIDGE_ADMIN_TOKEN") && err.contains("environment"), "{err}");
    let (code, _, err) = cli(tmp.path(), &["token", "revoke", "nobody"], &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("nobody"), "{err}");
    s.stop().await;
    drop(keep);
}

#[tokio::test]
async fn a_mistyped_group_or_target_is_an_error_and_csv_users_not_found_are_named() {
    let jira = Emulator::start(Product::Jira).await;
    jira.seed_users(["c1", "c2"].iter().map(|n| (n.to_string(), None, true)));
    for n in ["c1", "c2"] {
        jira.add_member(n, "contractors");
    }
    let toml = jira_target(&jira, "ATL_TOKEN");
    let s = TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    // The IdP knows the group too (its name is what close matches come from).
    s.create_group("contractors", &[]).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = write(tmp.path(), "c.toml", &toml);
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN),
    ];
    let out_dir = tmp.path().join("reports").display().to_string();
    let run = |args: &[&str]| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--config".to_string(), cfg.clone(), "--out".to_string(), out_dir.clone()]);
        a
    };
    let args = run(&["deactivate", "--target", "jira", "--group", "contractrs", "--dry-run"]);
    let (code, out, err) = cli(tmp.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("\"contractrs\"") && err.contains("did you mean: contractors"), "{err}");
    assert!(!out.contains("0 account(s)"), "{out}");
    let args = run(&["deactivate", "--target", "jria", "--group", "contractors", "--dry-run"]);
    let (code, _, err) = cli(tmp.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    assert_ne!(code, 0);
    assert!(err.contains("\"jria\"") && err.contains("did you mean: jira"), "{err}");

    let csv = write(tmp.path(), "leavers.csv", "username\nc1\nnobody\nc2\nghost\n");
    let args = run(&["deactivate", "--target", "jira", "--from-csv", &csv, "--dry-run"]);
    let (code, out, err) = cli(tmp.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &env).await;
    assert_ne!(code, 0, "a list with unknown users does not end as a success: {out}");
    assert!(out.contains("NOT FOUND (2): ghost, nobody"), "{out}");
    assert!(err.contains("ghost") && err.contains("nobody"), "{err}");
    assert!(out.contains("deactivate (dry-run): 2 account(s) affected"), "{out}");
    let report_csv = std::fs::read_dir(tmp.path().join("reports"))
        .expect("reports")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .expect("a CSV report");
    let text = std::fs::read_to_string(report_csv).expect("csv");
    for who in ["nobody", "ghost"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("jira,{who},")) && l.contains("not_found")), "{text}");
    }
    assert!(jira.user("c1").is_some_and(|u| u.active), "a dry run changes nothing");
    s.stop().await;
}

#[tokio::test]
async fn the_licence_report_skips_deactivated_holders_and_a_grant_outside_the_access_group_is_refused() {
    const LICENSE: &str = "jira-software-users";
    const ACCESS: &str = "jira-eligible";
    let jira = Emulator::start(Product::Jira).await;
    jira.set_role("jira-software", &[LICENSE], Some(5));
    let ago = |d: i64| Some(chrono::Utc::now() - chrono::Duration::days(d));
    jira.seed_users([
        ("gone".to_string(), ago(90), false),
        ("idle".to_string(), ago(90), true),
        ("busy".to_string(), ago(1), true),
        ("outsider".to_string(), ago(1), true),
    ]);
    for n in ["gone", "idle", "busy"] {
        jira.add_member(n, LICENSE);
        jira.add_member(n, ACCESS);
    }
    let toml = format!(
        "{}[license]\nenabled = true\naccess_group = \"{ACCESS}\"\nlicense_group = \"{LICENSE}\"\ninactive_days = 30\n",
        jira_target(&jira, "ATL_TOKEN")
    );
    let s = TestServer::start_toml(&toml, &[("ATL_TOKEN", ATL_TOKEN)]).await;
    let admin =
        |m: reqwest::Method, p: &str| s.client.request(m, format!("{}{p}", s.root)).bearer_auth(ADMIN_TOKEN).send();
    let r = admin(reqwest::Method::GET, "/admin/license/report").await.expect("req");
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.expect("json");
    assert_eq!(report["details"]["inactive_holders"], 1, "{report:#}");
    assert_eq!(report["details"]["seats_would_be_freed"], 1, "{report:#}");
    let who: Vec<&str> =
        report["findings"].as_array().expect("findings").iter().filter_map(|f| f["username"].as_str()).collect();
    assert_eq!(who, ["idle"], "{report:#}");
    assert_eq!(report["targets"][0]["skipped"]["deactivated (holds no seat)"], 1, "{report:#}");

    let r = admin(reqwest::Method::POST, "/admin/license/grant/outsider").await.expect("req");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("outsider") && detail.contains(ACCESS), "{body}");
    assert!(jira.user("outsider").is_some_and(|u| !u.groups.contains(LICENSE)));
    s.stop().await;
}

#[tokio::test]
async fn a_mistyped_directory_is_an_error_naming_the_directories_there_are() {
    let bb = Emulator::start(Product::Bitbucket).await;
    bb.seed_users(
        ["l1", "l2"].iter().map(|n| (n.to_string(), Some(chrono::Utc::now() - chrono::Duration::days(1)), true)),
    );
    bb.set_directory("l1", "Corporate LDAP");
    let toml = format!(
        "[[target]]\nname = \"bitbucket\"\nproduct = \"bitbucket\"\nurl = \"{}\"\nusername = \"{BITBUCKET_USER}\"\npassword_env = \"BB_PASSWORD\"\nlicense_groups = [\"stash-users\"]\n",
        bb.base_url()
    );
    let s = TestServer::start_toml(&toml, &[("BB_PASSWORD", BITBUCKET_PASSWORD)]).await;
    for (path, mode) in [("/admin/deactivate", "apply"), ("/admin/reactivate", "dry_run")] {
        let body = serde_json::json!({"target": "bitbucket", "directory": "Corporate LDPA", "mode": mode});
        let r = s
            .client
            .post(format!("{}{path}", s.root))
            .bearer_auth(ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("req");
        let status = r.status();
        let v: Value = r.json().await.expect("json");
        assert_eq!(status, 400, "{path}: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("\"Corporate LDPA\"") && detail.contains("did you mean: Corporate LDAP"),
            "{path}: {v}"
        );
    }
    assert_eq!(s.store().outbox_depth(), 0, "nothing was queued");
    s.stop().await;
}

/// A server that answers every request with `status`, `content_type` and `body` (a proxy's login
/// page, another service), on a thread; returns its URL.
fn fake_server(status: &'static str, content_type: &'static str, body: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    url
}

#[test]
fn a_2xx_answer_that_is_not_the_admin_apis_json_is_an_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let env = [("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)];
    let html = fake_server("200 OK", "text/html", "<html><body>Sign in to the proxy</body></html>");
    let shape = fake_server("200 OK", "application/json", "{\"items\": []}");
    let moved = fake_server("302 Found\r\nLocation: https://login.example.com/", "text/plain", "");
    for (url, expect) in [(&html, "text/html"), (&shape, "\"jobs\""), (&moved, "login.example.com")] {
        let (code, out, err) = cli_in(tmp.path(), &["jobs", "list", "--server", url], &env);
        assert_ne!(code, 0, "{url}: {out}");
        assert!(err.contains(expect) && err.contains("/admin/jobs"), "{url}: {err}");
        assert!(!err.contains("0 job(s)"), "{err}");
    }
    let (code, _, err) = cli_in(tmp.path(), &["token", "list", "--server", &shape], &env);
    assert_ne!(code, 0);
    assert!(err.contains("\"tokens\""), "{err}");
    let (code, _, err) = cli_in(tmp.path(), &["cleanup", "--server", &shape, "--out", "r"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("not a run's report"), "{err}");
    assert!(!tmp.path().join("r").exists(), "no report from a wrong answer");
}

/// A server that reads the start of each request and hangs up (unread data makes that a reset).
fn hang_up_server() -> String {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
        }
    });
    url
}

#[test]
fn a_server_hanging_up_mid_request_is_a_reported_error_never_a_silent_exit() {
    let tmp = tempfile::tempdir().expect("tmp");
    // A body of some megabytes, so the CLI is still writing when the connection is reset.
    let mut csv = String::from("username\n");
    for i in 0..400_000 {
        csv.push_str(&format!("user{i:07}\n"));
    }
    let file = write(tmp.path(), "big.csv", &csv);
    let url = hang_up_server();
    let env = [("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)];
    // Before the fix, about one run in five ended by SIGPIPE with nothing said.
    for _ in 0..10 {
        let args = ["deactivate", "--target", "jira", "--from-csv", &file, "--dry-run", "--server", &url, "--out", "r"];
        let (code, out, err) = cli_in(tmp.path(), &args, &env);
        assert_eq!(code, 1, "killed by a signal (-1) or worse: {out}{err}");
        assert!(err.contains("/admin/deactivate") && err.contains("got no answer"), "{err}");
    }
}
