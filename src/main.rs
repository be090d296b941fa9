//! The `scimbridge` command line. Each subcommand is a plain function returning a Result;
//! every command loads configuration the same way.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use scimbridge::auth::{Scope, TokenAuth};
use scimbridge::config::{self, Config, ConfigError, LogFormat};
use scimbridge::store::Store;

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
    CheckConfig,
    /// Manage the bearer tokens IdPs (and admins) use.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

fn main() -> ExitCode {
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
        Command::CheckConfig => {
            println!("Configuration is valid: listening on {}, data in {}.", config.listen, config.data_dir.display());
            Ok(())
        }
        Command::Token { action } => token(config, action),
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
    let public = config.public_url.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("while starting the runtime")?;
    rt.block_on(async move {
        let running = scimbridge::server::start(config).await.context("while starting the server")?;
        let tenant = match public {
            Some(u) => format!("{u}/scim/v2"),
            None => format!("http://{}/scim/v2", running.addr),
        };
        if let Some(token) = &running.first_token {
            println!("No IdP token was configured, so one was created. It is shown only this once:\n");
            println!("  Tenant URL:   {tenant}");
            println!("  Secret Token: {}\n", token.expose());
            println!("Paste both into the Entra ID or Okta app. Make more with `scimbridge token new`.");
        }
        tracing::info!(addr = %running.addr, tenant_url = %tenant, "Serving SCIM 2.0.");
        tokio::signal::ctrl_c().await.context("while waiting for a shutdown signal")?;
        tracing::info!("Shutting down: finishing in-flight requests.");
        running.stop().await;
        Ok(())
    })
}

fn token(config: Config, action: &TokenAction) -> anyhow::Result<()> {
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("while opening the store in {} (stop the server first)", config.data_dir.display()))?;
    match action {
        TokenAction::New { name, admin } => {
            let auth = TokenAuth::new(store.clone(), &[], &[]);
            if store.tokens()?.iter().any(|t| &t.name == name) {
                anyhow::bail!("a token named '{name}' exists; revoke it first or pick another --name");
            }
            let scope = if *admin { Scope::Admin } else { Scope::Scim };
            let t = auth.issue(name, scope, &scimbridge::http::now())?;
            println!("{}", t.expose());
            eprintln!("Created {} token '{name}'. It is shown only this once.", scope.as_str());
        }
        TokenAction::List => {
            for t in store.tokens()? {
                println!("{}\t{}\t{}", t.name, t.scope, t.created);
            }
        }
        TokenAction::Revoke { name } => {
            if !store.revoke_token(name)? {
                anyhow::bail!("no token named '{name}'");
            }
            println!("Revoked '{name}'.");
        }
    }
    Ok(())
}
