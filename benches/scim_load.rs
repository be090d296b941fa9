//! The load benchmark behind issue 2's "Speed" targets. Not a test: it prints figures, each with
//! its target and PASS/MISS. Run it with `bench/run.sh` (which also installs `wrk` and keeps the
//! output in `bench/results.txt`) or `cargo bench --bench scim_load`.
//!
//! What runs where (all on 127.0.0.1, every loop bounded in count and time):
//! - the server is the RELEASE binary `scimbridge serve` in its own process, with a temp data dir,
//!   so its resident memory can be read from `/proc/<pid>/status` and it shares no runtime with
//!   the load generator;
//! - initial sync, seeding and PATCH load come from this process: a single-threaded tokio runtime
//!   with one hyper HTTP/1.1 keep-alive connection per concurrent worker, every latency kept and
//!   percentiles computed exactly (nearest rank over the sorted samples);
//! - the GET load comes from `wrk` (C, two threads by default) with a Lua script, against the server
//!   and then against a bare actix-web handler returning a fixed body (this binary re-run with
//!   `--bare-actix`, same actix-web, same default worker count, same body bytes), interleaved.
//!
//! The load generator competes with the server for the machine's cores; every phase prints how
//! the CPU time was split between the server, the load generator and everything else on the
//! machine, so a noisy neighbour is visible in the figures.
//!
//! Sizes and durations come from `SCIM_BENCH_*` environment variables (see `Settings`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const TOKEN: &str = "bench-token-0123456789abcdef0123";
const DOMAIN: &str = "bench.example.com";
/// A request unanswered this long fails the phase instead of hanging the benchmark.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Everything that sizes the run; defaults are the issue's figures.
struct Settings {
    /// Users created by the Entra-style initial sync (test 1); tests 2 and 4 run at this size.
    users: usize,
    sync_conns: usize,
    get_conns: usize,
    wrk_threads: usize,
    wrk_secs: u64,
    wrk_rounds: usize,
    /// Members the big group has before the measured PATCHes (test 3).
    group_members: usize,
    /// Measured PATCHes, each adding `patch_size` new members.
    patches: usize,
    patch_size: usize,
    /// No phase runs longer than this.
    phase_limit: Duration,
    wrk: String,
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

impl Settings {
    fn from_env() -> Settings {
        let quick = std::env::var("SCIM_BENCH_QUICK").is_ok_and(|v| v == "1");
        let d = |full: usize, small: usize| if quick { small } else { full };
        Settings {
            users: env_num("SCIM_BENCH_USERS", d(100_000, 3_000)),
            sync_conns: env_num("SCIM_BENCH_SYNC_CONNS", 32),
            get_conns: env_num("SCIM_BENCH_GET_CONNS", 64),
            wrk_threads: env_num("SCIM_BENCH_WRK_THREADS", 2),
            wrk_secs: env_num("SCIM_BENCH_WRK_SECS", d(15, 3)) as u64,
            wrk_rounds: env_num("SCIM_BENCH_WRK_ROUNDS", d(2, 1)).max(1),
            group_members: env_num("SCIM_BENCH_GROUP_MEMBERS", d(200_000, 4_000)),
            patches: env_num("SCIM_BENCH_PATCHES", d(50, 5)).max(1),
            patch_size: env_num("SCIM_BENCH_PATCH_SIZE", 1000).max(1),
            phase_limit: Duration::from_secs(env_num("SCIM_BENCH_PHASE_SECS", 900) as u64),
            wrk: std::env::var("SCIM_BENCH_WRK").unwrap_or_else(|_| "wrk".to_string()),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bare-actix") {
        let (Some(addr), Some(body)) = (args.get(2), args.get(3)) else {
            eprintln!("usage: scim_load --bare-actix ADDR BODY_FILE");
            std::process::exit(2);
        };
        if let Err(e) = bare_actix(addr, Path::new(body)) {
            eprintln!("bare actix server failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    let settings = Settings::from_env();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let tmp = tempfile::Builder::new().prefix("scim-bench-").tempdir().expect("a temp dir");
    if let Err(e) = rt.block_on(run(settings, &tmp)) {
        eprintln!("benchmark failed: {e:#}");
        // The server's own account of a failure is in its log, which goes with the temp dir.
        let log = std::fs::read_to_string(tmp.path().join("server.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("server log, last {} lines:", tail.len());
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
        std::process::exit(1);
    }
}

/// The reference point for test 2: actix-web with its default workers, one handler answering
/// every request with the same bytes the real server answered a `userName eq` query with.
fn bare_actix(addr: &str, body_file: &Path) -> std::io::Result<()> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let body = web::Bytes::from(std::fs::read(body_file)?);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let body = body.clone();
            App::new().default_service(web::to(move || {
                let body = body.clone();
                async move { HttpResponse::Ok().content_type("application/scim+json").body(body) }
            }))
        })
        .bind(addr)?
        .run()
        .await
    })
}

// ---------------------------------------------------------------------------------------------
// Processes and what they cost

/// A child process killed (and reaped) when dropped, so no server outlives the benchmark.
struct Proc {
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (VmRSS, VmHWM) in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let f = |k| status_kb(pid, k).map_or(f64::NAN, |kb| kb as f64 / 1024.0);
    (f("VmRSS:"), f("VmHWM:"))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime (+ cutime + cstime when `children`) of a process, in ticks.
fn proc_ticks(pid: &str, children: bool) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // Fields after the parenthesised command name; utime is field 14 overall, i.e. index 11 here.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    let own = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    if children {
        own + f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0)
    } else {
        own
    }
}

/// Busy ticks of the whole machine, all cores.
fn machine_busy_ticks() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else { return 0 };
    let Some(line) = s.lines().next() else { return 0 };
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    total.saturating_sub(idle)
}

/// CPU time split over one phase: server, load generator (this process and its waited-for
/// children, i.e. wrk), everyone else.
struct CpuWatch {
    server: u32,
    extra: Option<u32>,
    t0: (u64, u64, u64, u64),
    wall: Instant,
}

impl CpuWatch {
    fn start(server: u32, extra: Option<u32>) -> CpuWatch {
        CpuWatch { server, extra, t0: Self::sample(server, extra), wall: Instant::now() }
    }
    fn sample(server: u32, extra: Option<u32>) -> (u64, u64, u64, u64) {
        (
            proc_ticks(&server.to_string(), false),
            extra.map_or(0, |p| proc_ticks(&p.to_string(), false)),
            proc_ticks("self", true),
            machine_busy_ticks(),
        )
    }
    /// "server 150%, load generator 40%, other 5% of 200%".
    fn report(&self, hz: f64, cores: usize) -> String {
        let t1 = Self::sample(self.server, self.extra);
        let secs = self.wall.elapsed().as_secs_f64().max(1e-9);
        let pct = |ticks: u64| ticks as f64 / hz / secs * 100.0;
        let server = pct(t1.0.saturating_sub(self.t0.0) + t1.1.saturating_sub(self.t0.1));
        let client = pct(t1.2.saturating_sub(self.t0.2));
        let all = pct(t1.3.saturating_sub(self.t0.3));
        let other = (all - server - client).max(0.0);
        format!(
            "CPU: server {server:.0}%, load generator {client:.0}%, rest of the machine {other:.0}% (of {}%)",
            cores * 100
        )
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP client: one keep-alive HTTP/1.1 connection per worker

struct Conn {
    tx: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx, host: addr.to_string() })
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<(u16, Bytes)> {
        self.tx.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::ACCEPT, "application/scim+json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/scim+json");
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let exchange = async {
            let res = self.tx.send_request(req).await?;
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, bytes))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!("no answer within {} s (is the server stuck?)", REQUEST_TIMEOUT.as_secs())),
        }
    }

    async fn json(&mut self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let (status, bytes) = self.send(method, path, body.map(|b| b.to_string().into_bytes())).await?;
        let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Ok((status, v))
    }
}

async fn wait_ready(addr: SocketAddr, child: &mut Proc, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(st) = child.child.try_wait()? {
            bail!("{what} exited during start-up ({st})");
        }
        if let Ok(mut c) = Conn::open(addr).await {
            if let Ok((200, _)) = c.send(Method::GET, "/healthz", None).await {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{what} did not answer /healthz on {addr} within 60 s")
}

// ---------------------------------------------------------------------------------------------
// Figures

fn user_name(i: usize) -> String {
    format!("user{i:06}@{DOMAIN}")
}

/// What Entra ID POSTs for a user (core + enterprise extension, as in the field guide).
fn entra_user(i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": format!("{:08x}-1b2c-4d5e-8f90-{:012x}", i, i * 7919),
        "userName": user_name(i),
        "active": true,
        "displayName": format!("Bench User {i}"),
        "emails": [{"primary": true, "type": "work", "value": user_name(i)}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": format!("Bench User {i}"), "familyName": format!("User {i}"), "givenName": "Bench"},
        "title": "Engineer",
        ENTERPRISE: {"department": format!("Department {}", i % 40), "employeeNumber": i.to_string()},
    })
}

fn filter_path(i: usize) -> String {
    // userName eq "userNNNNNN@bench.example.com", percent-encoded as Entra ID sends it.
    format!("/scim/v2/Users?filter=userName%20eq%20%22user{i:06}%40{DOMAIN}%22")
}

/// Exact percentile (nearest rank) of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn latency_line(lat: &mut [Duration]) -> String {
    lat.sort_unstable();
    format!(
        "latency p50 {}, p90 {}, p99 {}, max {} (n = {}, exact)",
        ms(pct(lat, 50.0)),
        ms(pct(lat, 90.0)),
        ms(pct(lat, 99.0)),
        ms(lat.last().copied().unwrap_or_default()),
        lat.len()
    )
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (k, ch) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{sign}{out}")
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

/// The summary lines, printed again at the end.
#[derive(Default)]
struct Summary(Vec<String>);

impl Summary {
    fn add(&mut self, line: String) {
        println!("  => {line}");
        self.0.push(line);
    }
}

fn say(s: &str) {
    println!("{s}");
    let _ = std::io::stdout().flush();
}

// ---------------------------------------------------------------------------------------------
// Load phases

struct Created {
    done: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    /// (user number, id) of each created user.
    ids: Vec<(usize, String)>,
}

/// Creates users `range` over `conns` connections; with `entra_get`, each user is first looked
/// up by `userName eq` (Entra ID's first cycle), and the latency is that of the pair.
async fn create_users(
    addr: SocketAddr,
    conns: usize,
    range: std::ops::Range<usize>,
    entra_get: bool,
    limit: Duration,
) -> Result<Created> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let end = range.end;
    let started = Instant::now();
    let deadline = started + limit;
    let errors = Arc::new(Mutex::new((0usize, None::<String>)));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let mut c = Conn::open(addr).await?;
        let (next, errors) = (next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut ids = Vec::new();
            let fail = |msg: String| {
                let mut e = errors.lock().expect("errors lock");
                e.0 += 1;
                e.1.get_or_insert(msg);
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end || Instant::now() > deadline {
                    break;
                }
                let t0 = Instant::now();
                if entra_get {
                    match c.send(Method::GET, &filter_path(i), None).await {
                        Ok((200, b)) if b.windows(16).any(|w| w == b"\"totalResults\":0") => {}
                        Ok((s, b)) => {
                            fail(format!("GET user {i}: {s} {}", String::from_utf8_lossy(&b)));
                            continue;
                        }
                        Err(e) => {
                            fail(format!("GET user {i}: {e}"));
                            break;
                        }
                    }
                }
                match c.json(Method::POST, "/scim/v2/Users", Some(&entra_user(i))).await {
                    Ok((201, v)) => {
                        lat.push(t0.elapsed());
                        ids.push((i, v["id"].as_str().unwrap_or_default().to_string()));
                    }
                    Ok((s, v)) => fail(format!("POST user {i}: {s} {v}")),
                    Err(e) => {
                        fail(format!("POST user {i}: {e}"));
                        break;
                    }
                }
            }
            (lat, ids)
        }));
    }
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    for t in tasks {
        let (l, i) = t.await?;
        latencies.extend(l);
        ids.extend(i);
    }
    let elapsed = started.elapsed();
    let (errors, first_error) = std::mem::take(&mut *errors.lock().expect("errors lock"));
    Ok(Created { done: ids.len(), elapsed, latencies, errors, first_error, ids })
}

struct WrkResult {
    rps: f64,
    p50: f64,
    p99: f64,
    max: f64,
    errors: u64,
}

const WRK_SCRIPT: &str = r#"-- Generated by benches/scim_load.rs: GET /Users?filter=userName eq "..." over random users.
wrk.headers["Authorization"] = "Bearer __TOKEN__"
wrk.headers["Accept"] = "application/scim+json"
local users = __USERS__
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
local reqs = {}
local idx = 0
function init(args)
  math.randomseed(20240611 + (tid or 0) * 7919)
  local order = {}
  for i = 1, users do order[i] = i - 1 end
  for i = users, 2, -1 do
    local j = math.random(i)
    order[i], order[j] = order[j], order[i]
  end
  for i = 1, users do
    reqs[i] = wrk.format("GET", string.format("/scim/v2/Users?filter=userName%%20eq%%20%%22user%06d%%40__DOMAIN__%%22", order[i]))
  end
end
function request()
  idx = idx % users + 1
  return reqs[idx]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%.0f duration_us=%.0f errors=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

fn run_wrk(s: &Settings, script: &Path, addr: SocketAddr, secs: u64) -> Result<WrkResult> {
    let out = Command::new(&s.wrk)
        .args(["-t", &s.wrk_threads.to_string(), "-c", &s.get_conns.to_string(), "-d", &format!("{secs}s")])
        .args(["--timeout", "5s", "-s"])
        .arg(script)
        .arg(format!("http://{addr}"))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", s.wrk))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("WRK "))
        .ok_or_else(|| anyhow!("wrk printed no summary: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
    let get = |k: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let duration = get("duration_us") / 1e6;
    Ok(WrkResult {
        rps: get("requests") / duration,
        p50: get("p50_us") / 1000.0,
        p99: get("p99_us") / 1000.0,
        max: get("max_us") / 1000.0,
        errors: get("errors") as u64,
    })
}

fn wrk_line(r: &WrkResult) -> String {
    format!(
        "{} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors/non-2xx {}",
        thousands(r.rps),
        r.p50,
        r.p99,
        r.max,
        r.errors
    )
}

fn patch_body(ids: &[String]) -> Value {
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": members}],
    })
}

/// Sequential PATCHes adding `chunks` to the group; the latency of each.
async fn add_members(c: &mut Conn, gid: &str, chunks: &[&[String]], deadline: Instant) -> Result<Vec<Duration>> {
    let path = format!("/scim/v2/Groups/{gid}");
    let mut lat = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        if Instant::now() > deadline {
            say("  (phase time limit reached; stopping early)");
            break;
        }
        let body = patch_body(chunk).to_string().into_bytes();
        let t0 = Instant::now();
        let (status, b) = c.send(Method::PATCH, &path, Some(body)).await?;
        lat.push(t0.elapsed());
        if status != 204 {
            bail!("PATCH of the group answered {status}: {}", String::from_utf8_lossy(&b));
        }
    }
    Ok(lat)
}

// ---------------------------------------------------------------------------------------------

async fn run(s: Settings, tmp: &tempfile::TempDir) -> Result<()> {
    let hz = clock_ticks();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SCIM_BENCH_SERVER runs another build of the server (e.g. to compare a change).
    let server_bin = std::env::var_os("SCIM_BENCH_SERVER")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_scimbridge")), PathBuf::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    say("scimbridge load benchmark (benches/scim_load.rs)");
    say(&format!("machine: {cores} cores (nproc), CPU: {cpu}, load average at start: {}", load.trim()));
    say(&format!("server: {} (release), SCIMBRIDGE_LOG=warn, data dir in a temp dir", server_bin.display()));
    if std::env::var_os("SCIM_BENCH_SERVER").is_some() {
        say("  (the server binary comes from SCIM_BENCH_SERVER, not from this tree's build)");
    }
    say(&format!(
        "load generators share these {cores} cores with the server: sync/seed/PATCH from one tokio thread \
         (hyper, keep-alive), GET from wrk with {} threads",
        s.wrk_threads
    ));
    let mut sum = Summary::default();

    let addr = free_addr()?;
    let mut server = Proc {
        child: Command::new(&server_bin)
            .arg("serve")
            .env_remove("SCIMBRIDGE_CONFIG")
            .env("SCIMBRIDGE_DATA_DIR", tmp.path().join("data"))
            .env("SCIMBRIDGE_LISTEN", addr.to_string())
            .env("SCIMBRIDGE_TOKEN", TOKEN)
            .env("SCIMBRIDGE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("server.log"))?)
            .spawn()
            .with_context(|| format!("starting {}", server_bin.display()))?,
    };
    wait_ready(addr, &mut server, "scimbridge").await?;
    let pid = server.pid();
    let (rss0, _) = memory_mib(pid);
    say(&format!("server pid {pid} on {addr}; VmRSS at start {rss0:.1} MiB"));

    // 1. Initial sync, Entra ID style.
    say(&format!(
        "\n[1] initial sync: {} users, each GET /Users?filter=userName eq \"…\" (expect 0 results) then POST /Users, {} connections",
        thousands(s.users as f64),
        s.sync_conns
    ));
    let watch = CpuWatch::start(pid, None);
    let mut sync = create_users(addr, s.sync_conns, 0..s.users, true, s.phase_limit).await?;
    let rate = sync.done as f64 / sync.elapsed.as_secs_f64();
    say(&format!(
        "  {} users in {:.1} s, {} errors{}",
        thousands(sync.done as f64),
        sync.elapsed.as_secs_f64(),
        sync.errors,
        sync.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default()
    ));
    say(&format!("  per user (GET + durable POST): {}", latency_line(&mut sync.latencies)));
    say(&format!("  {}", watch.report(hz, cores)));
    let complete = sync.done == s.users && sync.errors == 0;
    sum.add(format!(
        "[1] initial sync at {} connections: {} durable users/s  (target >= 3,000)  {}{}",
        s.sync_conns,
        thousands(rate),
        verdict(rate >= 3000.0 && complete),
        if complete { "" } else { "  [INCOMPLETE: errors or time limit]" }
    ));
    let mut ids: Vec<Option<String>> = vec![None; s.users];
    for (i, id) in sync.ids.drain(..) {
        ids[i] = Some(id);
    }
    let (rss, hwm) = memory_mib(pid);
    say(&format!("  server memory after the sync: VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB"));

    // 2. GET by userName at full size, against the server and a bare actix handler.
    say(&format!(
        "\n[2] GET /Users?filter=userName eq \"…\" (random users of {}), wrk -t{} -c{}, {} s per run, {} round(s) \
         interleaved with a bare actix-web handler",
        thousands(sync.done as f64),
        s.wrk_threads,
        s.get_conns,
        s.wrk_secs,
        s.wrk_rounds
    ));
    let wrk_ok = Command::new(&s.wrk).arg("--version").output().is_ok();
    if !wrk_ok {
        say(&format!("  {} not found: install it (`apt-get install wrk`, done by bench/run.sh)", s.wrk));
        sum.add("[2] GET by userName: NOT RUN (no wrk)".into());
    } else if sync.done == 0 {
        sum.add("[2] GET by userName: NOT RUN (no users)".into());
    } else {
        // Every query must find its user; check a sample and keep one answer for the bare handler.
        let mut c = Conn::open(addr).await?;
        let mut sample_body = Bytes::new();
        for k in 0..5 {
            let i = (k * 7919 + 13) % s.users;
            let (status, body) = c.send(Method::GET, &filter_path(i), None).await?;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if status != 200 || v["totalResults"] != 1 || v["Resources"][0]["userName"] != user_name(i) {
                bail!("GET by userName of user {i} did not find it: {status} {v}");
            }
            sample_body = body;
        }
        say(&format!("  checked: sample queries find their user; response body {} bytes", sample_body.len()));
        let body_file = tmp.path().join("bare-body.json");
        std::fs::write(&body_file, &sample_body)?;
        let bare_addr = free_addr()?;
        let mut bare = Proc {
            child: Command::new(std::env::current_exe()?)
                .arg("--bare-actix")
                .arg(bare_addr.to_string())
                .arg(&body_file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()?,
        };
        wait_ready(bare_addr, &mut bare, "bare actix server").await?;
        let script = tmp.path().join("get.lua");
        std::fs::write(
            &script,
            WRK_SCRIPT
                .replace("__TOKEN__", TOKEN)
                .replace("__USERS__", &sync.done.min(s.users).to_string())
                .replace("__DOMAIN__", DOMAIN),
        )?;
        // Warm-up, not measured.
        run_wrk(&s, &script, addr, 3)?;
        run_wrk(&s, &script, bare_addr, 3)?;
        let (mut scim, mut bares) = (Vec::new(), Vec::new());
        for round in 1..=s.wrk_rounds {
            let w = CpuWatch::start(pid, None);
            let r = run_wrk(&s, &script, addr, s.wrk_secs)?;
            say(&format!("  round {round} scimbridge: {}", wrk_line(&r)));
            say(&format!("    {}", w.report(hz, cores)));
            scim.push(r);
            let w = CpuWatch::start(bare.pid(), None);
            let r = run_wrk(&s, &script, bare_addr, s.wrk_secs)?;
            say(&format!("  round {round} bare actix: {}", wrk_line(&r)));
            say(&format!("    {} (\"server\" = the bare actix process)", w.report(hz, cores)));
            bares.push(r);
        }
        drop(bare);
        let mean = |v: &[WrkResult], f: fn(&WrkResult) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
        let scim_rps = mean(&scim, |r| r.rps);
        let bare_rps = mean(&bares, |r| r.rps);
        let p99 = scim.iter().map(|r| r.p99).fold(0.0, f64::max);
        let errors: u64 = scim.iter().map(|r| r.errors).sum();
        let ratio = scim_rps / bare_rps;
        let err_note = if errors > 0 { format!("  [{errors} errors/non-2xx]") } else { String::new() };
        sum.add(format!(
            "[2] GET by userName eq at {} users, {} connections: {} req/s  (target >= 30,000)  {}{err_note}",
            thousands(sync.done as f64),
            s.get_conns,
            thousands(scim_rps),
            verdict(scim_rps >= 30_000.0 && errors == 0)
        ));
        sum.add(format!("[2] GET p99 (worst round): {p99:.2} ms  (target < 10 ms)  {}", verdict(p99 < 10.0)));
        sum.add(format!(
            "[2] vs bare actix-web fixed body ({} req/s): ratio {ratio:.3}  (target >= 0.5)  {}",
            thousands(bare_rps),
            verdict(ratio >= 0.5)
        ));
    }

    // 4. Memory at 100,000 users (after the sync and the read load).
    let (rss, hwm) = memory_mib(pid);
    sum.add(format!(
        "[4] server resident memory at {} users: VmRSS {rss:.1} MiB  (target < 200 MB)  {}",
        thousands(sync.done as f64),
        verdict(rss * 1.048_576 < 200.0)
    ));
    sum.add(format!(
        "[4] server peak resident memory so far (VmHWM, includes the sync): {hwm:.1} MiB  (target < 200 MB)  {}",
        verdict(hwm * 1.048_576 < 200.0)
    ));

    if std::env::var("SCIM_BENCH_SKIP_PATCH").is_ok_and(|v| v == "1") {
        sum.add("[3] PATCH to a large group: NOT RUN (SCIM_BENCH_SKIP_PATCH=1)".into());
        return finish(server, tmp, sum, cores);
    }

    // 3. PATCH adding members to a group that already has `group_members`.
    let total = s.group_members + s.patches * s.patch_size;
    say(&format!(
        "\n[3] PATCH adding {} members to a group of {}: seeding to {} users, filling the group, then {} measured PATCHes",
        thousands(s.patch_size as f64),
        thousands(s.group_members as f64),
        thousands(total as f64),
        s.patches
    ));
    if total > ids.len() {
        let w = CpuWatch::start(pid, None);
        let extra = create_users(addr, s.sync_conns, ids.len()..total, false, s.phase_limit).await?;
        say(&format!(
            "  seeded {} more users with plain POSTs at {} connections: {} users/s, {} errors{}",
            thousands(extra.done as f64),
            s.sync_conns,
            thousands(extra.done as f64 / extra.elapsed.as_secs_f64()),
            extra.errors,
            extra.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default()
        ));
        say(&format!("  {}", w.report(hz, cores)));
        let base = ids.len();
        ids.resize(total, None);
        for (i, id) in extra.ids {
            if i >= base {
                ids[i] = Some(id);
            }
        }
    }
    let ids: Vec<String> = ids.into_iter().flatten().collect();
    if ids.len() < total {
        say(&format!("  only {} users exist (errors or time limit); running test 3 with what there is", ids.len()));
    }
    let fill_n = s.group_members.min(ids.len());
    let (fill_ids, rest) = ids.split_at(fill_n);
    let mut c = Conn::open(addr).await?;
    let (status, g) = c
        .json(Method::POST, "/scim/v2/Groups", Some(&json!({"displayName": "bench-big-group", "members": []})))
        .await?;
    let gid =
        g["id"].as_str().filter(|_| status == 201).ok_or_else(|| anyhow!("group create: {status} {g}"))?.to_string();
    let deadline = Instant::now() + s.phase_limit;
    let w = CpuWatch::start(pid, None);
    let chunks: Vec<&[String]> = fill_ids.chunks(s.patch_size).collect();
    let t0 = Instant::now();
    let mut fill = add_members(&mut c, &gid, &chunks, deadline).await?;
    let filled = (fill.len() * s.patch_size).min(fill_n);
    say(&format!(
        "  filled the group to {} members with {} PATCHes in {:.1} s: {} members/s",
        thousands(filled as f64),
        fill.len(),
        t0.elapsed().as_secs_f64(),
        thousands(filled as f64 / t0.elapsed().as_secs_f64())
    ));
    say(&format!("  fill PATCHes (group growing from 0): {}", latency_line(&mut fill)));
    say(&format!("  {}", w.report(hz, cores)));
    let chunks: Vec<&[String]> =
        rest.chunks(s.patch_size).filter(|c| c.len() == s.patch_size).take(s.patches).collect();
    let w = CpuWatch::start(pid, None);
    let deadline = Instant::now() + s.phase_limit;
    let mut lat = add_members(&mut c, &gid, &chunks, deadline).await?;
    say(&format!(
        "  measured PATCHes (+{} each, one connection, sequential): {}",
        s.patch_size,
        latency_line(&mut lat)
    ));
    say(&format!("  {}", w.report(hz, cores)));
    // The members really landed: a few of them list the group in `groups`.
    for id in [fill_ids.first(), rest.get(chunks.len().saturating_sub(1) * s.patch_size)].into_iter().flatten() {
        let (status, u) = c.json(Method::GET, &format!("/scim/v2/Users/{id}"), None).await?;
        let has = u["groups"].as_array().is_some_and(|g| g.iter().any(|g| g["value"] == gid.as_str()));
        if status != 200 || !has {
            bail!("user {id} should be a member of the group: {status} {u}");
        }
    }
    say("  checked: sample members list the group in their `groups`");
    let p99 = pct(&lat, 99.0);
    sum.add(format!(
        "[3] PATCH +{} members to a group of {}+: p99 {} over {} PATCHes  (target < 50 ms)  {}",
        thousands(s.patch_size as f64),
        thousands(filled as f64),
        ms(p99),
        lat.len(),
        verdict(p99 < Duration::from_millis(50) && filled >= s.group_members && lat.len() == s.patches)
    ));
    let (rss, hwm) = memory_mib(pid);
    say(&format!(
        "  server memory at the end ({} users, one group of {}): VmRSS {rss:.1} MiB, VmHWM {hwm:.1} MiB",
        thousands(ids.len() as f64),
        thousands((filled + lat.len() * s.patch_size) as f64)
    ));
    let store_bytes: u64 = walk_size(&tmp.path().join("data"));
    say(&format!("  data dir on disk: {:.0} MiB", store_bytes as f64 / 1048576.0));
    finish(server, tmp, sum, cores)
}

/// Stops the server and prints the summary; with SCIM_BENCH_KEEP_DATA=DIR the data dir is kept
/// there (for profiling a server on the same data).
fn finish(server: Proc, tmp: &tempfile::TempDir, sum: Summary, cores: usize) -> Result<()> {
    let _ = Command::new("kill").args(["-INT", &server.pid().to_string()]).status();
    let stop_by = Instant::now() + Duration::from_secs(20);
    let mut server = server;
    while Instant::now() < stop_by && server.child.try_wait()?.is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    if let Some(keep) = std::env::var_os("SCIM_BENCH_KEEP_DATA") {
        let status = Command::new("cp").arg("-a").arg(tmp.path().join("data")).arg(&keep).status()?;
        say(&format!("data dir copied to {} ({status})", PathBuf::from(keep).display()));
    }
    say("\nSummary");
    for l in &sum.0 {
        say(&format!("  {l}"));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    say(&format!(
        "  load average at the end: {} (a shared {cores}-core machine: figures are noisier than on an idle one)",
        load.trim()
    ));
    Ok(())
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
