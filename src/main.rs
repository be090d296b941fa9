//! The `scimbridge` command line. Each subcommand is a plain function returning a Result;
//! every command loads configuration the same way.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use scimbridge::admin::JobFilter;
use scimbridge::auth::Scope;
use scimbridge::cli::Backend;
use scimbridge::cli_lifecycle as lc;
use scimbridge::config::{self, Config, ConfigError, LogFormat};

/// Exit code for configuration errors (sysexits EX_CONFIG), so scripts can tell them apart.
const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(name = "scimbridge", version, about = "SCIM 2.0 bridge from Entra ID and Okta to Atlassian Data Center")]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "SCIMBRIDGE_CONFIG")]
    config: Option<PathBuf>,
    /// The running server to use, e.g. https://scim.example.com:9090 (its admin API; default: the
    /// server holding this configuration's store, on admin_listen or listen).
    #[arg(long, global = true, env = "SCIMBRIDGE_SERVER", value_name = "URL")]
    server: Option<String>,
    /// PEM certificates to trust for the server's HTTPS, besides the public roots and [tls] cert_file.
    #[arg(long, global = true, env = "SCIMBRIDGE_CA", value_name = "FILE")]
    ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server.
    Serve,
    /// Validate the configuration and print every problem with its key.
    CheckConfig {
        /// Also call each target with a read-only request (credentials, URL, reachability).
        #[arg(long)]
        live: bool,
    },
    /// Manage the bearer tokens IdPs (and admins) use.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Pending Atlassian deliveries and dead letters.
    Jobs {
        #[command(subcommand)]
        action: JobsAction,
    },
    /// Write a consistent copy of the whole store to FILE (online: works while serving).
    Backup { file: PathBuf },
    /// Import a backup into an empty data dir.
    Restore { file: PathBuf },
    /// The last-activity snapshot of every target (`activity refresh`).
    Activity {
        #[command(subcommand)]
        action: lc::ActivityCmd,
    },
    /// Inactive-user cleanup ([cleanup]): --dry-run (default) reports who and why, --apply does it.
    Cleanup(lc::CleanupArgs),
    /// The licence optimizer: `license report`, `license optimize`, `license grant USER`.
    License {
        #[command(subcommand)]
        action: lc::LicenseCmd,
    },
    /// Bulk deactivation of one target's accounts (--group, --directory, --inactive-days or --from-csv).
    Deactivate(lc::BulkArgs),
    /// Bulk reactivation, with the same selectors.
    Reactivate(lc::BulkArgs),
    /// Drift reconciliation: compare every target with the IdP's desired state; --apply repairs.
    Reconcile(lc::RunArgs),
    /// Undo a run: reactivate what it deactivated and put back the groups it removed (--apply).
    Undo(lc::UndoArgs),
    /// Links between SCIM users and existing Atlassian accounts: preview, list, set, clear.
    Links {
        #[command(subcommand)]
        action: scimbridge::cli_links::LinksCmd,
    },
    /// Intents held by the mass-offboarding brake ([guard]): list, approve, reject.
    Held {
        #[command(subcommand)]
        action: scimbridge::cli_held::HeldCmd,
    },
    /// A person's whole history, from IdP event to Atlassian effect, with who caused each step and why.
    // One of --user and --run: as a group, so a bare `audit` names both rather than only --user.
    #[command(group(clap::ArgGroup::new("whose").required(true).args(["user", "run"])))]
    Audit {
        /// SCIM userName (case-insensitive, also of deleted users), SCIM id, Atlassian username, or
        /// `token:NAME` for a token's changes.
        #[arg(long)]
        user: Option<String>,
        /// Everything one run did instead: the `run_id` of a report, a retry or a token change.
        #[arg(long)]
        run: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
        format: AuditFormat,
    },
}

#[derive(Subcommand)]
enum JobsAction {
    /// List jobs, oldest first.
    List {
        /// Only `pending`, `dead`, `superseded` or `held_for_review` (waiting for `links set`) jobs.
        #[arg(long, default_value = "all")]
        state: String,
    },
    /// Show one job in full (JSON).
    Show { id: u64 },
    /// Put a dead letter back in the outbox, unless a newer intent for the same user and target
    /// supersedes it; `--all` retries every dead letter still current.
    Retry {
        /// The dead letter's job id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<u64>,
        /// Retry even a superseded job (audited).
        #[arg(long, conflicts_with = "all")]
        force: bool,
        /// Every dead letter that is still current, oldest first.
        #[arg(long)]
        all: bool,
        /// With --all: only this target's dead letters.
        #[arg(long, requires = "all")]
        target: Option<String>,
    },
    /// Remove a job without delivering it (audited).
    Drop { id: u64 },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AuditFormat {
    Text,
    Jsonl,
    Csv,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it once.
    New {
        /// A name for the token, shown in audit records (e.g. "entra-prod").
        #[arg(long, default_value = "token")]
        name: String,
        /// Make an admin API token instead of an IdP token.
        #[arg(long)]
        admin: bool,
    },
    /// List token names (never the tokens).
    List,
    /// Revoke a token by name; takes effect at once, also in a running server.
    Revoke { name: String },
}

fn load_config(cli: &Cli) -> Result<Config, ConfigError> {
    let env = config::process_env();
    for name in config::unknown_env_vars(&env) {
        eprintln!("warning: {name} is not a scimbridge setting (known: {})", config::ENV_VARS.join(", "));
    }
    config::load(&config::Sources { file: cli.config.as_deref(), env: &env })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald, files and log shippers get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands freed memory back to the OS at once instead of after mimalloc's default delay (1 s) and
/// keeps no spare full pages: when GETs follow a large sync, sled's cache churns between page
/// sizes and the delayed memory showed up as ~30 MiB of extra peak RSS.
fn tune_allocator() {
    // Option numbers of mimalloc's `mi_option_t` (v3 header vendored by libmimalloc-sys 0.1.49).
    const PURGE_DELAY: i32 = 15;
    const ARENA_PURGE_MULT: i32 = 24;
    const PAGE_FULL_RETAIN: i32 = 36;
    for option in [PURGE_DELAY, ARENA_PURGE_MULT, PAGE_FULL_RETAIN] {
        // SAFETY: mi_option_set only stores an integer in mimalloc's option table; unknown
        // numbers are ignored by it.
        unsafe { libmimalloc_sys::mi_option_set(option, 0) };
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve) {
        scimbridge::cli_signals::quiet_on_closed_pipe();
    }
    let mut config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    config.server = cli.server.clone();
    config.ca_file = cli.ca.clone();
    // What calls every target needs every credential; other commands need none (a lifecycle run
    // checks the ones it calls when it runs here rather than through a server).
    if matches!(cli.command, Command::Serve | Command::CheckConfig { .. }) {
        if let Err(e) = config.require_credentials(None) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let result = match &cli.command {
        Command::Serve => serve(config),
        Command::CheckConfig { live } => with_runtime(check_config(config, *live)),
        Command::Token { action } => with_runtime(token(config, action)),
        Command::Jobs { action } => with_runtime(jobs(config, action)),
        Command::Backup { file } => with_runtime(backup(config, file.clone())),
        Command::Restore { file } => restore(config, file),
        Command::Audit { user, run, format } => with_runtime(audit(config, user.clone(), run.clone(), *format)),
        Command::Activity { action: lc::ActivityCmd::Refresh { target, out } } => {
            with_runtime(lc::run(&config, lc::LifecycleOp::Refresh { target: target.clone() }, out))
        }
        Command::Cleanup(a) => with_runtime(lc::run_over_guard(
            &config,
            lc::LifecycleOp::Cleanup { mode: a.run.mode(), target: a.target.clone(), orphans: a.orphans },
            a.run.allow_over_guard,
            &a.run.out,
        )),
        Command::License { action } => match action {
            lc::LicenseCmd::Report { out } => with_runtime(lc::run(&config, lc::LifecycleOp::LicenseReport, out)),
            lc::LicenseCmd::Optimize(r) => {
                let op = lc::LifecycleOp::LicenseOptimize { mode: r.mode() };
                with_runtime(lc::run_over_guard(&config, op, r.allow_over_guard, &r.out))
            }
            lc::LicenseCmd::Grant { user, out } => {
                with_runtime(lc::run(&config, lc::LifecycleOp::LicenseGrant { user: user.clone() }, out))
            }
        },
        Command::Deactivate(a) => a
            .request(scimbridge::lifecycle::BulkKind::Deactivate)
            .and_then(|op| with_runtime(lc::run_over_guard(&config, op, a.run.allow_over_guard, &a.run.out))),
        Command::Reactivate(a) => a
            .request(scimbridge::lifecycle::BulkKind::Reactivate)
            .and_then(|op| with_runtime(lc::run_over_guard(&config, op, a.run.allow_over_guard, &a.run.out))),
        Command::Reconcile(r) if r.allow_over_guard => Err(anyhow::anyhow!(
            "--allow-over-guard applies to cleanup, license optimize and deactivate; reconcile's deactivations pass the mass-offboarding brake like the IdP's (see `scimbridge held list`)"
        )),
        Command::Reconcile(r) => with_runtime(lc::run(&config, lc::LifecycleOp::Reconcile { mode: r.mode() }, &r.out)),
        Command::Links { action } => with_runtime(scimbridge::cli_links::run(&config, action)),
        Command::Undo(u) => with_runtime(lc::run(
            &config,
            lc::LifecycleOp::Undo { run_id: u.run_id.clone(), mode: u.run.mode() },
            &u.run.out,
        )),
        Command::Held { action } => with_runtime(scimbridge::cli_held::run(&config, action)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    scimbridge::redact::set_enabled(config.redact_personal_data);
    let public = config.public_url.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("while starting the runtime")?;
    rt.block_on(async move {
        // Installed before anything else: SIGHUP's default action ends the process, and
        // `systemctl reload` sends it (issue 10). It never stops the server.
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("while installing the SIGHUP handler")?;
        let running = scimbridge::server::start(config).await.context("while starting the server")?;
        let scheme = if running.tls.is_some() { "https" } else { "http" };
        let tenant = match public {
            Some(u) => format!("{u}/scim/v2"),
            None => format!("{scheme}://{}/scim/v2", running.addr),
        };
        if let Some(token) = &running.first_token {
            println!("No IdP token was configured, so one was created. It is shown only this once:\n");
            println!("  Tenant URL:   {tenant}");
            println!("  Secret Token: {}\n", token.expose());
            println!("Paste both into the Entra ID or Okta app. Make more with `scimbridge token new`.");
        }
        tracing::info!(addr = %running.addr, tenant_url = %tenant, "Serving SCIM 2.0.");
        #[cfg(unix)]
        {
            // Connections in progress are untouched; a failed reload keeps what was loaded.
            let reloader = running.reloader();
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match reloader.reload() {
                        (what, true) => tracing::info!("Reloaded on SIGHUP: {what}."),
                        (what, false) => tracing::error!("Reload on SIGHUP failed in part: {what}."),
                    }
                }
            });
        }
        shutdown_signal().await.context("while waiting for a shutdown signal")?;
        tracing::info!("Shutting down: finishing in-flight requests.");
        running.stop().await;
        Ok(())
    })
}

fn with_runtime<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    // Network calls run on its worker, prints here (see cli_signals.rs).
    scimbridge::cli_signals::runtime().context("while starting the runtime")?.block_on(f)
}

async fn check_config(config: Config, live: bool) -> anyhow::Result<()> {
    println!("Configuration is valid: listening on {}, data in {}.", config.listen, config.data_dir.display());
    if !scimbridge::cli_remote::store_exists(&config.data_dir) {
        println!(
            "There is no store in {} yet: `scimbridge serve` creates it on its first start.",
            config.data_dir.display()
        );
    }
    if config.targets.is_empty() {
        println!("No [[target]]: SCIM changes are recorded and logged only.");
    }
    for t in &config.targets {
        println!("Target '{}': {} at {}.", t.spec.name, t.spec.product, t.spec.url);
    }
    if config.policy.dry_run {
        println!("policy.dry_run is on: intents are recorded and reported, never sent.");
    }
    for note in scimbridge::cli_links::config_notes(&config) {
        println!("{note}");
    }
    if !live {
        return Ok(());
    }
    let mut failed = 0;
    let needs = scimbridge::atlassian::Needs { anonymize: config_anonymizes(&config) };
    for t in &config.targets {
        let c = t.connector()?;
        // The accounts the target's keys name must exist and be active (issue 9 item 3 and 4).
        let named: Vec<(&'static str, String)> =
            [("lead_successor", &t.lead_successor), ("anonymize_new_owner", &t.anonymize_new_owner)]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|u| (k, u.trim().to_string())))
                .collect();
        // Off the main thread, like every CLI network call (see cli_signals.rs).
        let check = scimbridge::cli_signals::off_main_thread(async move {
            let mut check = c.live_check(needs).await;
            if check.problems.is_empty() {
                let named: Vec<(&str, &str)> = named.iter().map(|(k, u)| (*k, u.as_str())).collect();
                c.live_check_accounts(&named, &mut check).await;
            }
            check
        })
        .await?;
        if check.problems.is_empty() {
            println!("  {}: reachable, credentials accepted; {}.", t.spec.name, check.facts.join("; "));
        } else {
            failed += 1;
            println!("  {}: NOT usable: {}", t.spec.name, check.problems.join("; "));
            if !check.facts.is_empty() {
                println!("  {}: seen: {}.", t.spec.name, check.facts.join("; "));
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} target(s) failed the live check");
    }
    Ok(())
}

/// Whether any policy key or the cleanup job can anonymize (then Jira needs a System Administrator).
fn config_anonymizes(config: &Config) -> bool {
    use scimbridge::policy::OffboardAction::Anonymize;
    let p = &config.policy;
    [p.on_disable, p.on_delete, p.on_access_lost].contains(&Anonymize)
        || config.lifecycle.cleanup.action == scimbridge::lifecycle::CleanupAction::Anonymize
}

async fn jobs(config: Config, action: &JobsAction) -> anyhow::Result<()> {
    let backend = Backend::connect(&config)?;
    match action {
        JobsAction::List { state } => {
            let filter = JobFilter::parse(Some(state))
                .ok_or_else(|| anyhow::anyhow!("--state must be pending, dead, superseded, held_for_review or all"))?;
            let jobs = backend.jobs(filter, state).await?;
            println!("id\tstate\ttarget\tusername\taction\ttrigger\tattempts\tlast error");
            for j in &jobs {
                println!("{}", scimbridge::cli::job_line(j));
            }
            eprintln!("{} job(s)", jobs.len());
        }
        JobsAction::Show { id } => match backend.job(*id).await? {
            Some(j) => println!("{}", serde_json::to_string_pretty(&j)?),
            None => anyhow::bail!("no job {id}"),
        },
        JobsAction::Retry { all: true, target, .. } => {
            // Without a configuration (a store opened directly) there is no list to check against.
            let names = config.target_names();
            let unknown = |t: &&str| !names.is_empty() && !names.iter().any(|c| c == t);
            if let Some(t) = target.as_deref().filter(unknown) {
                anyhow::bail!("no target named '{t}' in the configuration");
            }
            let done = backend.retry_all(target.as_deref()).await?;
            for (job, by) in &done.superseded {
                println!("Job {job} is superseded by job {by}; left alone.");
            }
            for (job, new_id) in &done.retried {
                println!("Dead letter {job} is queued again as job {new_id}.");
            }
            println!("{} retried, {} superseded.", done.retried.len(), done.superseded.len());
        }
        JobsAction::Retry { id: Some(id), force, .. } => match backend.retry(*id, *force).await? {
            scimbridge::admin::Retry::Queued(new_id) => println!("Job {id} is queued again as job {new_id}."),
            scimbridge::admin::Retry::Superseded { by } => {
                anyhow::bail!("{}", scimbridge::admin::Retry::refusal(*id, by))
            }
            scimbridge::admin::Retry::NotFound => {
                anyhow::bail!(
                    "no dead letter {id} (only dead letters, and with --force superseded jobs, can be retried)"
                )
            }
        },
        JobsAction::Retry { id: None, .. } => anyhow::bail!("name a job id or --all"),
        JobsAction::Drop { id } => {
            if !backend.drop_job(*id).await? {
                anyhow::bail!("no job {id}");
            }
            println!("Dropped job {id}.");
        }
    }
    Ok(())
}

async fn backup(config: Config, file: PathBuf) -> anyhow::Result<()> {
    let backend = Backend::connect(&config)?;
    let stats = backend.backup(&file).await?;
    println!("Wrote {} entries to {}.", stats.entries, file.display());
    Ok(())
}

fn restore(config: Config, file: &std::path::Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(file).with_context(|| format!("while opening {}", file.display()))?;
    let stats = scimbridge::store::restore(&config.data_dir, &mut std::io::BufReader::new(f))
        // A refused file or a non-empty data dir, not a "stored record" that is unreadable.
        .map_err(|e| match e {
            scimbridge::store::StoreError::Corrupt(why) => anyhow::anyhow!(why),
            other => anyhow::Error::new(other),
        })
        .with_context(|| format!("cannot restore {} into {}", file.display(), config.data_dir.display()))?;
    println!("Restored {} entries in {} trees into {}.", stats.entries, stats.trees, config.data_dir.display());
    Ok(())
}

async fn audit(config: Config, user: Option<String>, run: Option<String>, format: AuditFormat) -> anyhow::Result<()> {
    let backend = Backend::connect(&config)?;
    let records = match (user, run) {
        (_, Some(run)) => backend.audit_run(&run).await?.ok_or_else(|| anyhow::anyhow!("no record of run '{run}'"))?,
        (Some(user), None) => backend.audit(&user).await?.ok_or_else(|| anyhow::anyhow!("no history for '{user}'"))?,
        (None, None) => anyhow::bail!("give --user NAME or --run RUN_ID"),
    };
    match format {
        AuditFormat::Jsonl => quiet_on_closed_pipe((|| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for r in &records {
                writeln!(out, "{r}")?;
            }
            out.flush()
        })())?,
        AuditFormat::Csv => {
            quiet_on_closed_pipe(scimbridge::audit_view::write_csv(&records, std::io::stdout().lock()))?
        }
        AuditFormat::Text => {
            quiet_on_closed_pipe(scimbridge::audit_view::write_text(&records, std::io::stdout().lock()))?
        }
    }
    Ok(())
}

/// A reader that closed the pipe (`| head`) has all it wanted: not an error.
fn quiet_on_closed_pipe(r: std::io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("while writing the audit")?),
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what systemd, Docker and Kubernetes send).
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

async fn token(config: Config, action: &TokenAction) -> anyhow::Result<()> {
    // With a server running, this goes through its admin API, so a revoke takes effect at once.
    let backend = Backend::connect(&config)?;
    match action {
        TokenAction::New { name, admin } => {
            let scope = if *admin { Scope::Admin } else { Scope::Scim };
            let t = backend.token_new(name, scope).await?;
            println!("{t}");
            eprintln!("Created {} token '{name}'. It is shown only this once.", scope.as_str());
        }
        TokenAction::List => {
            let rows = backend.token_list(&config).await?;
            println!("name\tscope\tcreated");
            for (name, scope, created) in &rows {
                println!("{name}\t{scope}\t{created}");
            }
            eprintln!("{} token(s); env:VAR#n come from the environment and are revoked only there", rows.len());
        }
        TokenAction::Revoke { name } => {
            backend.token_revoke(&config, name).await?;
            println!("Revoked '{name}'.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every `--flag` a dry run's hint names is a flag of the command the hint names.
    #[test]
    fn hints_name_only_flags_the_named_command_accepts() {
        let cli = super::Cli::command();
        for kind in scimbridge::lifecycle::KINDS {
            let Some(hint) = scimbridge::lifecycle::apply_hint(kind) else { continue };
            let words: Vec<&str> = hint.split_whitespace().map(|w| w.trim_matches(|c| c == '(' || c == ')')).collect();
            assert_eq!(words[0], "scimbridge", "{hint}");
            let mut cmd = &cli;
            for w in words[1..].iter().take_while(|w| !w.starts_with("--")) {
                match cmd.find_subcommand(w) {
                    Some(sub) => cmd = sub,
                    None => break,
                }
            }
            assert_ne!(cmd.get_name(), "scimbridge", "{kind}: {hint} names no command");
            for flag in words.iter().filter_map(|w| w.strip_prefix("--")) {
                let known = cmd.get_arguments().any(|a| a.get_long() == Some(flag))
                    || cli.get_arguments().any(|a| a.is_global_set() && a.get_long() == Some(flag));
                assert!(known, "{kind}: `{hint}` names --{flag}, which `{}` rejects", cmd.get_name());
            }
        }
        // The hint that used to be wrong: `license report` has no --apply.
        let report = cli.find_subcommand("license").and_then(|l| l.find_subcommand("report")).expect("license report");
        assert!(!report.get_arguments().any(|a| a.get_long() == Some("apply")));
        assert!(scimbridge::lifecycle::apply_hint("license-report").is_some_and(|h| h.contains("optimize --apply")));
    }

    #[test]
    fn mimalloc_option_numbers_name_the_options_we_mean() {
        // Their documented defaults (unless the environment overrides them): a libmimalloc-sys
        // update that renumbers the options fails here instead of tuning something else.
        let get = |o: i32| unsafe { libmimalloc_sys::mi_option_get(o) };
        if std::env::vars().any(|(k, _)| k.starts_with("MIMALLOC_")) {
            return;
        }
        assert_eq!(get(15), 1000, "purge_delay");
        assert_eq!(get(24), 1, "arena_purge_mult");
        assert_eq!(get(36), 2, "page_full_retain");
    }
}
