//! A new admin's first steps, with the real binary, where the messages must tell them what to do:
//! the first CLI command against a running server before any admin token exists, and `links`
//! refusals when the CLI opens the store itself (the server's words, without HTTP codes).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::child::{cli_in, cli_in_async as cli};
use crate::support::server::TestServer;

#[tokio::test]
async fn without_an_admin_token_the_cli_says_how_to_make_the_first_one() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", dir.as_str()), ("SCIMBRIDGE_LISTEN", listen.as_str())];
    for args in [&["jobs", "list"][..], &["token", "list"][..], &["token", "new", "--name", "ops", "--admin"][..]] {
        let (code, out, err) = cli(tmp.path(), args, &env).await;
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("SCIMBRIDGE_ADMIN_TOKEN"), "{args:?}: {err}");
        assert!(err.contains("scimbridge token new --name ops --admin"), "{args:?} says how to make one: {err}");
    }
    s.stop().await;
}

#[tokio::test]
async fn links_refusals_without_a_server_read_as_sentences_and_name_the_missing_targets() {
    let s = TestServer::start().await;
    s.create_user("ann@example.com").await;
    let dir = s.dir.clone();
    let _keep = s.stop_keep_dir().await.expect("temp dir");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = dir.display().to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", dir.as_str())];

    let (code, out, err) = cli(tmp.path(), &["links", "clear", "nobody@example.com"], &env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("No SCIM user 'nobody@example.com'"), "{err}");
    assert!(!err.contains("404") && !err.contains(" -:"), "no HTTP status from a local run: {err}");

    // No target is configured at all: say so, rather than "configured: ."
    let (code, out, err) = cli(tmp.path(), &["links", "set", "ann@example.com", "ann", "--target", "jira"], &env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("No [[target]] is named 'jira'"), "{err}");
    assert!(err.contains("none is configured") && !err.contains("configured: ."), "{err}");
    assert!(!err.contains("400") && !err.contains("invalidValue"), "{err}");
}

/// Runs `serve` expecting it to fail at start; kills it (and fails the test) if it serves instead.
fn failing_serve(cwd: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .arg("serve")
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started although it should have failed");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_first_start_that_cannot_listen_keeps_no_token_it_never_showed() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("addr").to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data").display().to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", data.as_str()), ("SCIMBRIDGE_LISTEN", listen.as_str())];
    let (code, out, err) = failing_serve(tmp.path(), &env);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("cannot listen on {listen}")), "{err}");
    assert_eq!(err.matches("(os error 98)").count(), 1, "the cause once, not repeated: {err}");
    assert!(!out.contains("Secret Token"), "{out}");
    // Had a token been stored, the next start would show none and the admin could never read it.
    let (code, out, err) = cli_in(tmp.path(), &["token", "list"], &env[..1]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("initial"), "a token nobody saw was stored: {out}");
    assert!(err.contains("0 token(s)"), "{err}");
}

#[tokio::test]
async fn a_second_serve_on_the_same_store_says_the_store_is_in_use() {
    let s = TestServer::start().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let data = s.dir.display().to_string();
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = free.local_addr().expect("addr").to_string();
    drop(free);
    let env = [("SCIMBRIDGE_DATA_DIR", data.as_str()), ("SCIMBRIDGE_LISTEN", listen.as_str())];
    let (cwd, env_owned): (std::path::PathBuf, Vec<(String, String)>) =
        (tmp.path().to_path_buf(), env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect());
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env_owned.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        failing_serve(&cwd, &env)
    })
    .await
    .expect("join");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("the store in {data} is in use by another process")), "{err}");
    assert!(!err.contains("Os {") && !err.contains("WouldBlock"), "no debug dump of the lock error: {err}");
    s.stop().await;
}

#[tokio::test]
async fn runs_that_read_targets_fail_when_none_is_configured_rather_than_report_nobody() {
    // Through the admin API of a server without [[target]] (README's first `serve`)...
    let s = TestServer::start().await;
    s.create_user("ann@example.com").await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = s.dir.display().to_string();
    let listen = s.root.trim_start_matches("http://").to_string();
    let env = [
        ("SCIMBRIDGE_DATA_DIR", dir.as_str()),
        ("SCIMBRIDGE_LISTEN", listen.as_str()),
        ("SCIMBRIDGE_ADMIN_TOKEN", crate::support::server::ADMIN_TOKEN),
    ];
    let runs: [&[&str]; 4] = [&["cleanup"], &["activity", "refresh"], &["reconcile"], &["links", "preview"]];
    for args in runs {
        let (code, out, err) = cli(tmp.path(), args, &env).await;
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("no [[target]] is configured"), "{args:?}: {err}");
        assert!(!out.contains("0 account(s)") && !err.contains("0 account(s)"), "{args:?}: {out}{err}");
    }
    let (code, out, err) = cli(tmp.path(), &["license", "report"], &env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("reads seats from a Jira, Confluence or Bitbucket [[target]]"), "{err}");
    assert!(!tmp.path().join("reports").exists(), "no report of a run that read nothing");
    let dir = s.dir.clone();
    let _keep = s.stop_keep_dir().await.expect("temp dir");
    // ...and with the CLI on the stopped store.
    let dir = dir.display().to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", dir.as_str())];
    for args in runs {
        let (code, out, err) = cli(tmp.path(), args, &env).await;
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("no [[target]] is configured"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn backup_and_restore_failures_name_the_file_and_the_reason() {
    let s = TestServer::start().await;
    s.create_user("ann@example.com").await;
    let dir = s.dir.clone();
    let _keep = s.stop_keep_dir().await.expect("temp dir");
    let tmp = tempfile::tempdir().expect("tmp");
    let data = dir.display().to_string();
    let env = [("SCIMBRIDGE_DATA_DIR", data.as_str())];

    let nowhere = tmp.path().join("no-such-folder").join("b.jsonl").display().to_string();
    let (code, out, err) = cli(tmp.path(), &["backup", &nowhere], &env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&nowhere) && err.contains("No such file"), "names the file: {err}");

    let good = tmp.path().join("b.jsonl").display().to_string();
    let (code, _, err) = cli(tmp.path(), &["backup", &good], &env).await;
    assert_eq!(code, 0, "{err}");
    // Into a data dir that is not empty: said as that, not as an unreadable stored record.
    let (code, out, err) = cli(tmp.path(), &["restore", &good], &env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("cannot restore {good} into {data}")) && err.contains("not empty"), "{err}");
    assert!(!err.contains("stored record is unreadable"), "{err}");
    // A truncated file is refused and leaves nothing behind.
    let text = std::fs::read_to_string(&good).expect("read");
    let cut = tmp.path().join("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() / 2]).expect("write");
    let fresh = tmp.path().join("fresh").display().to_string();
    let cut = cut.display().to_string();
    let (code, out, err) = cli(tmp.path(), &["restore", &cut], &[("SCIMBRIDGE_DATA_DIR", fresh.as_str())]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("cannot restore {cut}")) && !err.contains("stored record is unreadable"), "{err}");
    assert!(!Path::new(&fresh).exists(), "nothing half-restored");
}

#[tokio::test]
async fn a_licence_report_whose_seats_could_not_be_read_fails() {
    use crate::support::atlassian_emulator::{Emulator, Fault, TOKEN as ATL_TOKEN};
    let jira = Emulator::start(scimbridge::atlassian::Product::Jira).await;
    let s = TestServer::start().await;
    let dir = s.dir.clone();
    let _keep = s.stop_keep_dir().await.expect("temp dir");
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("c.toml");
    let toml = format!(
        "[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"JIRA_TOKEN\"\n",
        jira.base_url()
    );
    std::fs::write(&cfg, toml).expect("write");
    let (cfg, data) = (cfg.display().to_string(), dir.display().to_string());
    let env = [("SCIMBRIDGE_DATA_DIR", data.as_str()), ("JIRA_TOKEN", ATL_TOKEN)];

    let (code, out, err) = cli(tmp.path(), &["license", "report", "--config", &cfg], &env).await;
    assert_eq!(code, 0, "Jira answers: {out}{err}");
    assert!(out.contains("\"total\""), "{out}");

    // Jira refuses the application roles: the seat count is unknown, which is not a report.
    jira.fail_next(50, Fault::status(403));
    let (code, out, err) = cli(tmp.path(), &["license", "report", "--config", &cfg], &env).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("jira: NOT PROCESSED: seats not read"), "{out}");
    assert!(err.contains("some targets could not be processed"), "{err}");
}

#[test]
fn a_bare_audit_names_both_ways_to_ask() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (code, out, err) = cli_in(tmp.path(), &["audit"], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--user") && err.contains("--run"), "{err}");
    let (code, out, err) = cli_in(tmp.path(), &["audit", "--user", "a", "--run", "b"], &[]);
    assert_eq!(code, 2, "one or the other: {out}{err}");
}
