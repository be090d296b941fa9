//! The real `scimbridge` binary as a child process: `serve` for tests that kill it with SIGKILL or
//! signal it, and one-shot CLI commands (`cli`).
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::server::{ADMIN_TOKEN, TOKEN};

/// A `scimbridge serve` child process and the address it reported.
pub struct Served {
    pub child: Child,
    pub base: String,
    /// Every JSON log line the child wrote so far.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Served {
    /// The `message` of every log line so far.
    pub fn messages(&self) -> Vec<String> {
        let logs = self.logs.lock().map(|l| l.clone()).unwrap_or_default();
        logs.iter().filter_map(|v| v["fields"]["message"].as_str().map(str::to_string)).collect()
    }
}

/// Starts the binary on `dir`, listening on a port the OS picks, and waits for its
/// "Serving SCIM 2.0." log line to learn the address (no fixed port, no polling).
pub async fn serve(dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .arg("serve")
        .env("SCIMBRIDGE_DATA_DIR", dir)
        .env("SCIMBRIDGE_TOKEN", TOKEN)
        .env("SCIMBRIDGE_ADMIN_TOKEN", ADMIN_TOKEN)
        .envs(env.iter().copied())
        .env("SCIMBRIDGE_LISTEN", "127.0.0.1:0")
        .env("SCIMBRIDGE_LOG_FORMAT", "json")
        .env("SCIMBRIDGE_LOG", "info")
        .env_remove("SCIMBRIDGE_CONFIG")
        .args(config.map(|c| vec!["--config".to_string(), c.display().to_string()]).unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the scimbridge binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = logs.clone();
    // Keep draining stderr for the child's whole life: a full pipe would stall its logging.
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if let Ok(mut l) = kept.lock() {
                l.push(v.clone());
            }
            if v["fields"]["message"] == "Serving SCIM 2.0." {
                if let (Some(tx), Some(addr)) = (tx.take(), v["fields"]["addr"].as_str()) {
                    let _ = tx.send(addr.to_string());
                }
            }
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .expect("the server reports its address within a minute")
        .expect("the server started (see its stderr)");
    Served { child, base: format!("http://{addr}/scim/v2"), logs }
}

/// Runs one CLI command of the real binary to completion (no `SCIMBRIDGE_CONFIG` from the
/// environment): its exit code (-1 when killed by a signal), stdout and stderr.
pub fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("SCIMBRIDGE_CONFIG")
        .output()
        .expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs one CLI command of the real binary in `cwd` with only `env` (nothing inherited, so no
/// `SCIMBRIDGE_*` of the test's own environment) and stdin closed: exit code (-1 when killed by a
/// signal), stdout and stderr.
pub fn cli_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scimbridge"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`cli_in`] off the async runtime, which the server and emulator under test run on.
pub async fn cli_in_async(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let cwd = cwd.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        cli_in(&cwd, &args, &env)
    })
    .await
    .expect("join")
}
