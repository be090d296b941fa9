//! Sizing (issue 11): disk and memory per 100,000 users, and per audited PATCH, measured on the
//! RELEASE server binary in its own process (VmRSS/VmHWM from `/proc/<pid>/status`, the data
//! folder's bytes walked on disk, and the server's own `scimbridge_store_size_bytes`). Not a test:
//! it prints figures. `cargo bench --bench sizing`.
//!
//! Users are created as Entra ID creates them (core + enterprise extension, durable POSTs over
//! `SCIM_SIZING_CONNS` connections, default 16) up to each checkpoint of `SCIM_SIZING_USERS`
//! (default `100000,200000,500000,1000000`); at each one the figures are printed. Then
//! `SCIM_SIZING_PATCHES` (default 100,000) PATCHes change a title on the first 10,000 users, and
//! the growth per PATCH (the audit record, the rewritten user, sled's log) is printed. Every phase
//! is bounded by `SCIM_SIZING_PHASE_SECS` (default 3,600); a checkpoint not reached is said.
//! Before the PATCHes, `SCIM_SIZING_READS` (default 150,000) users are read by userName, which
//! fills the record cache to its bound as an IdP's reads do, and memory is printed again.
//! `SCIM_SIZING_CACHE_MB` passes `cache_mb` to the server (default: the server's own default).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const TOKEN: &str = "sizing-token-0123456789abcdef0123";
const ADMIN: &str = "sizing-admin-0123456789abcdef0123";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const MIB: f64 = 1024.0 * 1024.0;

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().replace('_', "").parse().ok()).collect::<Vec<usize>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .map_or(f64::NAN, |kb: f64| kb / 1024.0)
}

fn walk_size(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

struct Conn {
    tx: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx, host: addr.to_string() })
    }

    async fn send(&mut self, method: Method, path: &str, token: &str, body: Option<&Value>) -> Result<(u16, Bytes)> {
        self.tx.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/scim+json");
        }
        let req = req.body(Full::new(Bytes::from(body.map(Value::to_string).unwrap_or_default())))?;
        let exchange = async {
            let res = self.tx.send_request(req).await?;
            let status = res.status().as_u16();
            Ok::<_, anyhow::Error>((status, res.into_body().collect().await?.to_bytes()))
        };
        tokio::time::timeout(Duration::from_secs(60), exchange).await.map_err(|_| anyhow!("no answer within 60 s"))?
    }
}

fn user(i: usize) -> Value {
    let name = format!("user{i:07}@sizing.example.com");
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": format!("{:08x}-1b2c-4d5e-8f90-{:012x}", i, i * 7919),
        "userName": name,
        "active": true,
        "displayName": format!("Sizing User {i}"),
        "emails": [{"primary": true, "type": "work", "value": name}],
        "name": {"formatted": format!("Sizing User {i}"), "familyName": format!("User {i}"), "givenName": "Sizing"},
        "title": "Engineer",
        ENTERPRISE: {"department": format!("Department {}", i % 40), "employeeNumber": i.to_string()},
    })
}

/// Runs `work(i)` for every `i` in `range` over `conns` connections; returns how many succeeded.
async fn fan_out<F, Fut>(
    addr: SocketAddr,
    conns: usize,
    range: std::ops::Range<usize>,
    deadline: Instant,
    work: F,
) -> Result<usize>
where
    F: Fn(Conn, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Conn, Result<()>)> + Send,
{
    let next = Arc::new(AtomicUsize::new(range.start));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let mut c = Conn::open(addr).await?;
        let (next, done, work, end) = (next.clone(), done.clone(), work.clone(), range.end);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end || Instant::now() > deadline {
                    return Ok::<(), anyhow::Error>(());
                }
                let (back, r) = work(c, i).await;
                c = back;
                r?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed))
}

async fn store_size_metric(addr: SocketAddr) -> Result<f64> {
    let mut c = Conn::open(addr).await?;
    let (status, body) = c.send(Method::GET, "/metrics", ADMIN, None).await?;
    if status != 200 {
        bail!("/metrics answered {status}");
    }
    let text = String::from_utf8_lossy(&body).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("scimbridge_store_size_bytes ").and_then(|v| v.parse().ok()))
        .ok_or_else(|| anyhow!("no scimbridge_store_size_bytes in /metrics"))
}

struct Point {
    users: usize,
    dir_bytes: u64,
    rss: f64,
    hwm: f64,
}

async fn run() -> Result<()> {
    let checkpoints = env_list("SCIM_SIZING_USERS", &[100_000, 200_000, 500_000, 1_000_000]);
    let patches = env_num("SCIM_SIZING_PATCHES", 100_000);
    let conns = env_num("SCIM_SIZING_CONNS", 16).max(1);
    let phase = Duration::from_secs(env_num("SCIM_SIZING_PHASE_SECS", 3600) as u64);
    let bin = std::env::var_os("SCIM_BENCH_SERVER")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_scimbridge")), PathBuf::from);
    let tmp = tempfile::Builder::new().prefix("scim-sizing-").tempdir()?;
    let data = tmp.path().join("data");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .env_remove("SCIMBRIDGE_CONFIG")
        .env("SCIMBRIDGE_DATA_DIR", &data)
        .env("SCIMBRIDGE_LISTEN", addr.to_string())
        .env("SCIMBRIDGE_TOKEN", TOKEN)
        .env("SCIMBRIDGE_ADMIN_TOKEN", ADMIN)
        .env("SCIMBRIDGE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("server.log"))?);
    if let Ok(mb) = std::env::var("SCIM_SIZING_CACHE_MB") {
        cmd.env("SCIMBRIDGE_CACHE_MB", mb);
    }
    let server = Server(cmd.spawn().with_context(|| format!("starting {}", bin.display()))?);
    let pid = server.0.id();
    let ready_by = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = Conn::open(addr).await {
            if matches!(c.send(Method::GET, "/healthz", TOKEN, None).await, Ok((200, _))) {
                break;
            }
        }
        if Instant::now() > ready_by {
            bail!("the server did not become healthy within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // `cargo bench` runs the release binary; `cargo test --bench sizing` the debug one (sizes on
    // disk are the same; memory and rates are not).
    let build = if bin.components().any(|c| c.as_os_str() == "release") { "release" } else { "NOT release" };
    println!(
        "scimbridge sizing benchmark (benches/sizing.rs): server {} ({build}), {cores} cores, load average {}",
        bin.display(),
        load.trim()
    );
    println!("cache_mb: {}", std::env::var("SCIM_SIZING_CACHE_MB").unwrap_or_else(|_| "server default".into()));
    println!(
        "VmRSS at start {:.1} MiB; data folder {:.1} MiB",
        status_kb(pid, "VmRSS:"),
        walk_size(&data) as f64 / MIB
    );
    println!(
        "\n{:>10} {:>12} {:>14} {:>12} {:>12} {:>10}",
        "users", "folder MiB", "sled size MiB", "VmRSS MiB", "VmHWM MiB", "users/s"
    );
    let mut points: Vec<Point> = Vec::new();
    let mut made = 0usize;
    for &target in &checkpoints {
        let started = Instant::now();
        let n = fan_out(addr, conns, made..target, started + phase, |mut c: Conn, i| async move {
            let r = match c.send(Method::POST, "/scim/v2/Users", TOKEN, Some(&user(i))).await {
                Ok((201, _)) => Ok(()),
                Ok((s, b)) => Err(anyhow!("POST user {i}: {s} {}", String::from_utf8_lossy(&b))),
                Err(e) => Err(e),
            };
            (c, r)
        })
        .await?;
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
        made += n;
        let p = Point {
            users: made,
            dir_bytes: walk_size(&data),
            rss: status_kb(pid, "VmRSS:"),
            hwm: status_kb(pid, "VmHWM:"),
        };
        let sled = store_size_metric(addr).await.unwrap_or(f64::NAN);
        println!(
            "{:>10} {:>12.1} {:>14.1} {:>12.1} {:>12.1} {:>10.0}",
            p.users,
            p.dir_bytes as f64 / MIB,
            sled / MIB,
            p.rss,
            p.hwm,
            rate
        );
        points.push(p);
        if made < target {
            println!("  (checkpoint {target} not reached within {} s: stopped here)", phase.as_secs());
            break;
        }
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        if last.users > first.users {
            let du = (last.users - first.users) as f64;
            println!(
                "\nper 100,000 users between {} and {}: folder +{:.1} MiB, VmRSS +{:.1} MiB, VmHWM +{:.1} MiB",
                first.users,
                last.users,
                (last.dir_bytes - first.dir_bytes.min(last.dir_bytes)) as f64 / MIB / du * 1e5,
                (last.rss - first.rss) / du * 1e5,
                (last.hwm - first.hwm) / du * 1e5
            );
        }
        println!(
            "at {} users: {:.0} bytes of folder per user; VmRSS {:.1} MiB, peak {:.1} MiB",
            last.users,
            last.dir_bytes as f64 / last.users.max(1) as f64,
            last.rss,
            last.hwm
        );
    }
    // IdPs read users at random, which fills the record cache to its bound: read enough users
    // (the default cache holds about 115,000) that memory is what a serving instance holds.
    let reads = env_num("SCIM_SIZING_READS", 150_000).min(made);
    if reads > 0 {
        let started = Instant::now();
        let n = fan_out(addr, conns, 0..reads, started + phase, |mut c: Conn, i| async move {
            let path = format!("/scim/v2/Users?filter=userName%20eq%20%22user{i:07}%40sizing.example.com%22");
            let r = match c.send(Method::GET, &path, TOKEN, None).await {
                Ok((200, _)) => Ok(()),
                Ok((s, _)) => Err(anyhow!("GET user {i}: {s}")),
                Err(e) => Err(e),
            };
            (c, r)
        })
        .await?;
        println!(
            "\nafter reading {n} users by userName (fills the record cache): VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            status_kb(pid, "VmRSS:"),
            status_kb(pid, "VmHWM:")
        );
    }
    if patches > 0 && made > 0 {
        let before = walk_size(&data);
        let span = made.min(10_000);
        let started = Instant::now();
        let n = fan_out(addr, conns, 0..patches, started + phase, move |mut c: Conn, i| async move {
            // As Entra ID does before a PATCH: the user's id looked up by userName.
            let u = i % span;
            let path =
                format!("/scim/v2/Users?filter=userName%20eq%20%22user{u:07}%40sizing.example.com%22&attributes=id");
            let r = async {
                let (s, b) = c.send(Method::GET, &path, TOKEN, None).await?;
                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                let id =
                    v["Resources"][0]["id"].as_str().ok_or_else(|| anyhow!("user {u} not found ({s})"))?.to_string();
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                  "Operations": [{"op": "replace", "path": "title", "value": format!("Title {i}")}]});
                match c.send(Method::PATCH, &format!("/scim/v2/Users/{id}"), TOKEN, Some(&body)).await? {
                    (200 | 204, _) => Ok(()),
                    (s, b) => Err(anyhow!("PATCH user {u}: {s} {}", String::from_utf8_lossy(&b))),
                }
            }
            .await;
            (c, r)
        })
        .await?;
        let after = walk_size(&data);
        println!(
            "\n{n} PATCHes (title replaced) over {span} users in {:.0} s: folder +{:.1} MiB, {:.0} bytes per PATCH (audit record, rewritten user, sled log); VmRSS {:.1} MiB, peak {:.1} MiB",
            started.elapsed().as_secs_f64(),
            (after.saturating_sub(before)) as f64 / MIB,
            after.saturating_sub(before) as f64 / n.max(1) as f64,
            status_kb(pid, "VmRSS:"),
            status_kb(pid, "VmHWM:")
        );
    }
    drop(server);
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    if let Err(e) = rt.block_on(run()) {
        eprintln!("sizing benchmark failed: {e:#}");
        std::process::exit(1);
    }
}
