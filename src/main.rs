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
    /// Links between SCIM users and existing Atlassian accounts: preview, list, set, clear.
    Links {
        #[command(subcommand)]
        action: scimbridge::cli_links::LinksCmd,
    },
    /// A person's whole history, from IdP event to Atlassian effect.
    Audit {
        /// SCIM userName (case-insensitive) or SCIM id.
        #[arg(long)]
        user: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
        format: AuditFormat,
    },
}

#[derive(Subcommand)]
enum JobsAction {
    /// List jobs, oldest first.
    List {
        /// Only `pending` or `dead` jobs.
        #[arg(long, default_value = "all")]
        state: String,
    },
    /// Show one job in full (JSON).
    Show { id: u64 },
    /// Put a dead letter back in the outbox.
    Retry { id: u64 },
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
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match &cli.command {
        Command::Serve => serve(config),
        Command::CheckConfig { live } => with_runtime(check_config(config, *live)),
        Command::Token { action } => with_runtime(token(config, action)),
        Command::Jobs { action } => with_runtime(jobs(config, action)),
        Command::Backup { file } => with_runtime(backup(config, file.clone())),
        Command::Restore { file } => restore(config, file),
        Command::Audit { user, format } => with_runtime(audit(config, user.clone(), *format)),
        Command::Activity { action: lc::ActivityCmd::Refresh { target, out } } => {
            with_runtime(lc::run(&config, lc::LifecycleOp::Refresh { target: target.clone() }, out))
        }
        Command::Cleanup(a) => with_runtime(lc::run(
            &config,
            lc::LifecycleOp::Cleanup { mode: a.run.mode(), target: a.target.clone(), orphans: a.orphans },
            &a.run.out,
        )),
        Command::License { action } => match action {
            lc::LicenseCmd::Report { out } => with_runtime(lc::run(&config, lc::LifecycleOp::LicenseReport, out)),
            lc::LicenseCmd::Optimize(r) => {
                with_runtime(lc::run(&config, lc::LifecycleOp::LicenseOptimize { mode: r.mode() }, &r.out))
            }
            lc::LicenseCmd::Grant { user, out } => {
                with_runtime(lc::run(&config, lc::LifecycleOp::LicenseGrant { user: user.clone() }, out))
            }
        },
        Command::Deactivate(a) => a
            .request(scimbridge::lifecycle::BulkKind::Deactivate)
            .and_then(|op| with_runtime(lc::run(&config, op, &a.run.out))),
        Command::Reactivate(a) => a
            .request(scimbridge::lifecycle::BulkKind::Reactivate)
            .and_then(|op| with_runtime(lc::run(&config, op, &a.run.out))),
        Command::Reconcile(r) => with_runtime(lc::run(&config, lc::LifecycleOp::Reconcile { mode: r.mode() }, &r.out)),
        Command::Links { action } => with_runtime(scimbridge::cli_links::run(&config, action)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    scimbridge::redact::set_enabled(config.redact_personal_data);
    let public = config.public_url.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("while starting the runtime")?;
    rt.block_on(async move {
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
        if let Some(cert) = running.tls.clone() {
            // SIGHUP re-reads the certificate and key; connections in progress are untouched.
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("while installing the SIGHUP handler")?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match cert.reload() {
                        Ok(()) => tracing::info!("Reloaded the TLS certificate."),
                        Err(e) => tracing::error!(error = %e, "Reloading the TLS certificate failed; still serving the previous one."),
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
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while starting the runtime")?
        .block_on(f)
}

async fn check_config(config: Config, live: bool) -> anyhow::Result<()> {
    println!("Configuration is valid: listening on {}, data in {}.", config.listen, config.data_dir.display());
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
    for t in &config.targets {
        let c = scimbridge::atlassian::Connector::new(t.spec.clone())?;
        match c.health().await {
            Ok(()) => println!("  {}: reachable, credentials accepted.", t.spec.name),
            Err(e) => {
                failed += 1;
                println!("  {}: NOT usable: {e}", t.spec.name);
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} target(s) failed the live check");
    }
    Ok(())
}

async fn jobs(config: Config, action: &JobsAction) -> anyhow::Result<()> {
    let backend = Backend::connect(&config)?;
    match action {
        JobsAction::List { state } => {
            let filter =
                JobFilter::parse(Some(state)).ok_or_else(|| anyhow::anyhow!("--state must be pending, dead or all"))?;
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
        JobsAction::Retry { id } => match backend.retry(*id).await? {
            Some(new_id) => println!("Dead letter {id} is queued again as job {new_id}."),
            None => anyhow::bail!("no dead letter {id} (only dead letters can be retried)"),
        },
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
        .with_context(|| format!("while restoring into {}", config.data_dir.display()))?;
    println!("Restored {} entries in {} trees into {}.", stats.entries, stats.trees, config.data_dir.display());
    Ok(())
}

async fn audit(config: Config, user: String, format: AuditFormat) -> anyhow::Result<()> {
    let backend = Backend::connect(&config)?;
    let Some(records) = backend.audit(&user).await? else { anyhow::bail!("no history for '{user}'") };
    match format {
        AuditFormat::Jsonl => {
            for r in &records {
                println!("{r}");
            }
        }
        AuditFormat::Csv => {
            println!("{}", scimbridge::admin::AUDIT_CSV_COLUMNS.join(","));
            for r in &records {
                println!("{}", scimbridge::admin::audit_csv_row(r));
            }
        }
        AuditFormat::Text => {
            for r in &records {
                println!("{}", scimbridge::admin::audit_csv_row(r).replace(',', "  "));
            }
        }
    }
    Ok(())
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
            for (name, scope, created) in backend.token_list().await? {
                println!("{name}\t{scope}\t{created}");
            }
        }
        TokenAction::Revoke { name } => {
            if !backend.token_revoke(name).await? {
                anyhow::bail!("no token named '{name}'");
            }
            println!("Revoked '{name}'.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
