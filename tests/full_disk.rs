//! A full disk under the data dir (issue 11): the store on a small tmpfs, filled with a ballast
//! file. Writes answer 503 with `Retry-After` and a detail that says the store is out of space,
//! nothing answered 5xx is stored, `/readyz` fails, the delivery worker makes no Atlassian call
//! while it cannot record outcomes; once the ballast is gone everything resumes without a
//! restart.
//!
//! As root the tmpfs is mounted directly (and unmounted at the end); otherwise it is mounted in a private mount namespace (`unshare --user --map-root-user --mount`,
//! which needs no privilege where unprivileged user namespaces are allowed) held open by a
//! `sleep`; this process reaches it through `/proc/<pid>/root`, so the in-process server's data
//! dir is on it. Where that is impossible the test fails and says why: it never passes without
//! a full disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::atlassian_emulator::{Emulator, TARGET_ENV};
use crate::support::server::{config_with_toml, eventually, TestServer, ADMIN_TOKEN};
use scimbridge::atlassian::Product;

const WAIT: Duration = Duration::from_secs(30);

/// A tmpfs of a fixed size, mounted in a mount namespace of its own.
struct Tmpfs {
    /// The process holding the private mount namespace (none when mounted directly as root).
    holder: Option<Child>,
    /// The mount point as this process reaches it.
    path: PathBuf,
    _mount_point: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let mount_point = tempfile::tempdir().expect("temp dir");
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(mount_point.path())
                .status()
                .is_ok_and(|s| s.success());
            if mounted {
                let path = mount_point.path().to_path_buf();
                return Tmpfs { holder: None, path, _mount_point: mount_point };
            }
        }
        let mut holder = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
            .arg(format!("mount -t tmpfs -o size={size} tmpfs \"$0\" && echo mounted && exec sleep infinity"))
            .arg(mount_point.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("this test needs `unshare` (util-linux) to mount a small tmpfs for the data dir: {e}")
            });
        let mut line = String::new();
        let stdout = holder.stdout.take().expect("piped stdout");
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let out = holder.wait_with_output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
            panic!(
                "cannot mount a tmpfs for the full-disk test: `unshare --user --map-root-user --mount` then \
                 `mount -t tmpfs` failed ({}). Run it as root, or where unprivileged user namespaces are \
                 allowed (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0).",
                out.unwrap_or_default().trim()
            );
        }
        let path = PathBuf::from(format!("/proc/{}/root{}", holder.id(), mount_point.path().display()));
        Tmpfs { holder: Some(holder), path, _mount_point: mount_point }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match &mut self.holder {
            Some(holder) => {
                let _ = holder.kill();
                let _ = holder.wait();
            }
            None => {
                let _ = Command::new("umount").arg("-l").arg(&self.path).status();
            }
        }
    }
}

/// Fills the file system of `dir` with a ballast file until it refuses even 4 KiB; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("ballast");
    let mut f = std::fs::File::create(&path).expect("ballast file");
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![1u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    let _ = f.sync_all();
    let probe = std::fs::write(dir.join("probe"), vec![0u8; 8192]);
    assert!(probe.is_err(), "the tmpfs is full");
    path
}

fn user(name: &str) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true,
           "name": {"givenName": "A", "familyName": "B"}, "emails": [{"value": format!("{name}@example.com"), "primary": true}]})
}

fn disable() -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "active", "value": false}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_writes_with_503_stores_nothing_pauses_delivery_and_recovers_without_restart() {
    let fs = Tmpfs::mount("48m");
    let data = fs.path.join("data");
    std::fs::create_dir(&data).expect("data dir on the tmpfs");
    let jira = Emulator::start(Product::Jira).await;
    let toml = format!(
        "{}\n[delivery]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\n",
        jira.target_toml("jira")
    );
    let s = TestServer::start_with(config_with_toml(&data, &toml, &TARGET_ENV)).await;

    // Users that exist in Jira, then disabled while Jira is down: their deactivations are pending
    // when the disk fills.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.create_user(&format!("pending{i}")).await);
    }
    eventually("the users exist in Jira", WAIT, || (0..5).all(|i| jira.user(&format!("pending{i}")).is_some())).await;
    jira.down_for(Duration::from_secs(3600));
    for id in &ids {
        let r = s.patch(&format!("/Users/{id}"), &disable()).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    eventually("the deactivations are pending", WAIT, || s.store().outbox_depth() >= 5).await;

    let ballast = fill(&fs.path);
    // Jira is back; what the worker delivers now it cannot record.
    jira.down_for(Duration::ZERO);

    // IdP writes while the disk is full: each is answered either 201 (it fitted and is durable)
    // or 503 with Retry-After and the reason; at least one must have met the full disk.
    let mut refused = Vec::new();
    let mut accepted = Vec::new();
    for i in 0..20 {
        let name = format!("lost{i}");
        let r = s.post("/Users", &user(&name)).await;
        match r.status.as_u16() {
            201 => accepted.push(name),
            503 => {
                assert!(r.header("Retry-After").is_some(), "503 carries Retry-After: {:?}", r.headers);
                let detail = r.body["detail"].as_str().unwrap_or_default();
                assert!(detail.contains("out of space"), "the detail says why: {}", r.text);
                assert_eq!(r.body["status"], "503", "{}", r.text);
                refused.push(name);
            }
            other => panic!("a write on a full disk answered {other}: {}", r.text),
        }
    }
    assert!(!refused.is_empty(), "no write met the full disk (accepted: {accepted:?})");
    let patch = s
        .patch(
            &format!("/Users/{}", ids[0]),
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "Renamed While Full"}]}),
        )
        .await;
    assert_eq!(patch.status, 503, "{}", patch.text);

    // Readiness fails and says why; liveness stays; the gauge says 0.
    let ready = s.client.get(format!("{}/readyz", s.root)).send().await.expect("readyz");
    assert_eq!(ready.status(), 503);
    let ready_body = ready.text().await.unwrap_or_default();
    assert!(ready_body.contains("out of space"), "{ready_body}");
    let live = s.client.get(format!("{}/healthz", s.root)).send().await.expect("healthz");
    assert_eq!(live.status(), 200);
    let metrics = s.client.get(format!("{}/metrics", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("metrics");
    let metrics = metrics.text().await.unwrap_or_default();
    assert!(metrics.contains("scimbridge_store_writable 0"), "{metrics}");

    // Delivery is paused: no call to Jira while the disk stays full (the attempts in flight when
    // the store failed are the only ones allowed, and they ended before readiness failed).
    let calls_before = jira.received().len();
    let quiet = Duration::from_secs(4);
    tokio::time::sleep(quiet).await;
    let calls_while_full = jira.received().len() - calls_before;
    println!("Jira calls in {quiet:?} with the disk full: {calls_while_full}");
    assert!(calls_while_full <= 4, "at most the probe rate (1/s) while full, got {calls_while_full}");

    // Space is back: no restart.
    std::fs::remove_file(&ballast).expect("free the ballast");
    let started = Instant::now();
    let root = s.root.clone();
    let client = s.client.clone();
    let mut ready_again = false;
    while started.elapsed() < WAIT {
        let r = client.get(format!("{root}/readyz")).send().await.expect("readyz");
        if r.status() == 200 {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready_again, "/readyz is 200 again once space is free");
    println!("ready again {:?} after the ballast was removed", started.elapsed());

    // Nothing answered 503 is stored; the IdP's retry creates it (201, not 409).
    for name in &refused {
        let found = s.ids_matching("/Users", &format!("userName eq \"{name}\"")).await;
        assert!(found.is_empty(), "{name} was answered 503 but is stored");
    }
    for name in &accepted {
        let found = s.ids_matching("/Users", &format!("userName eq \"{name}\"")).await;
        assert_eq!(found.len(), 1, "{name} was answered 201 and must be stored");
    }
    let renamed = s.get(&format!("/Users/{}", ids[0])).await;
    assert_ne!(renamed.body["displayName"], "Renamed While Full", "{}", renamed.text);
    let retry = s.post("/Users", &user(&refused[0])).await;
    assert_eq!(retry.status, 201, "the IdP's retry after space is free: {}", retry.text);

    // The pending deactivations flow.
    eventually("every pending deactivation reached Jira", WAIT, || {
        (0..5).all(|i| jira.user(&format!("pending{i}")).is_some_and(|u| !u.active))
    })
    .await;
    eventually("the outbox drains", WAIT, || s.store().outbox_depth() == 0).await;
    let metrics = s.client.get(format!("{}/metrics", s.root)).bearer_auth(ADMIN_TOKEN).send().await.expect("metrics");
    assert!(metrics.text().await.unwrap_or_default().contains("scimbridge_store_writable 1"));
    s.stop().await;
}
