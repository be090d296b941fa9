//! `reports_dir` (env `SCIMBRIDGE_REPORTS_DIR`): where the CLI's lifecycle runs write their CSV
//! and JSON reports when `--out` is not given. In the Kubernetes pod the root filesystem is
//! read-only, so `./reports` must not be where a run writes unless asked.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::Utc;

use crate::support::atlassian_emulator::{Emulator, TOKEN as ATL_TOKEN};
use scimbridge::atlassian::Product;

/// Runs `scimbridge cleanup --dry-run` (with `extra` arguments and environment) from `cwd`.
async fn cleanup(config: &Path, data: &Path, cwd: &Path, extra: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scimbridge"));
    cmd.args(["--config", config.to_str().expect("utf8"), "cleanup", "--dry-run"])
        .args(extra)
        .current_dir(cwd)
        .env("SCIMBRIDGE_DATA_DIR", data)
        .env("ATL_TOKEN", ATL_TOKEN)
        .env_remove("SCIMBRIDGE_CONFIG")
        .env_remove("SCIMBRIDGE_REPORTS_DIR")
        .envs(env.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run the binary")).await.expect("join");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn csv_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "csv")).collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn cli_runs_write_their_reports_into_reports_dir_unless_out_says_otherwise() {
    let jira = Emulator::start(Product::Jira).await;
    let stale = Utc::now() - chrono::Duration::days(200);
    jira.seed_users([("stale".to_string(), Some(stale), true)]);
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    drop(scimbridge::store::Store::open(&data).expect("a store exists, as on a deployed server"));
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).expect("cwd");
    let volume = tmp.path().join("volume/reports");
    let config = tmp.path().join("scimbridge.toml");
    std::fs::write(
        &config,
        format!(
            "reports_dir = \"{}\"\n[[target]]\nname = \"jira\"\nproduct = \"jira\"\nurl = \"{}\"\ntoken_env = \"ATL_TOKEN\"\n",
            volume.display(),
            jira.base_url()
        ),
    )
    .expect("write config");

    let (code, out) = cleanup(&config, &data, &cwd, &[], &[]).await;
    assert_eq!(code, 0, "{out}");
    let written = csv_files(&volume);
    assert_eq!(written.len(), 1, "the report is in reports_dir: {out}");
    assert!(std::fs::read_to_string(&written[0]).expect("csv").contains("jira,stale,"));
    assert!(!cwd.join("reports").exists(), "nothing is written under the working directory");

    let from_env = tmp.path().join("env-reports");
    let (code, out) =
        cleanup(&config, &data, &cwd, &[], &[("SCIMBRIDGE_REPORTS_DIR", from_env.to_str().expect("utf8"))]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(csv_files(&from_env).len(), 1, "SCIMBRIDGE_REPORTS_DIR wins over the file: {out}");

    let explicit = tmp.path().join("explicit");
    let (code, out) = cleanup(&config, &data, &cwd, &["--out", explicit.to_str().expect("utf8")], &[]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(csv_files(&explicit).len(), 1, "--out wins: {out}");
    assert_eq!(csv_files(&volume).len(), 1, "and reports_dir got nothing more");
    assert!(jira.user("stale").is_some_and(|u| u.active), "a dry run changes nothing");
}
