//! The `castiel-integrations` binary: parses the command line and calls the library.

/// mimalloc, not glibc's malloc: a delivery burst frees much memory on
/// another thread than the one that allocated it, which glibc's arenas
/// handle with locks; mimalloc's thread-local heaps do not. Built without
/// transparent huge pages (Cargo.toml) to keep idle memory low. The
/// in-process benchmarks declare the same allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context as _;
use castiel_integrations::config::Config;
use castiel_integrations::domain::tenancy::TenantId;
use castiel_integrations::drivers::functions::{self, handler};
use castiel_integrations::drivers::{http, serve};
use castiel_integrations::platform::auth;
use castiel_integrations::{app, telemetry};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret as _, SecretString};

#[derive(Debug, Parser)]
#[command(
    name = "castiel-integrations",
    version,
    about = "Castiel's integration hub"
)]
struct Cli {
    /// Optional TOML file with the same keys as the environment (lower case).
    #[arg(long, global = true, env = "CONFIG_FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the standalone service (embedded defaults in ./data).
    Serve,
    /// Print a signed access token for local use.
    Token {
        /// Tenant id (UUID).
        #[arg(long)]
        tenant: uuid::Uuid,
        /// User id (the `sub` claim).
        #[arg(long)]
        user: Option<String>,
        /// Make it a super-admin token.
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Create the database and containers on the configured store.
    Provision,
    /// Run as the Azure Functions custom handler (port from FUNCTIONS_CUSTOMHANDLER_PORT).
    Handler,
    /// Move every local secret onto a new primary key and retire the old
    /// ones (SECRETS=local; safe while the service runs).
    RotateKey {
        /// The new primary key (base64 of 32 bytes) instead of a generated
        /// one; `-` reads it from standard input (an argument is visible to
        /// other users of the machine).
        #[arg(long, value_name = "KEY|-", value_parser = secret_arg)]
        to: Option<SecretString>,
        /// Seconds to wait after retiring the old keys before the final
        /// verification scan (longer than any write of a secret takes).
        #[arg(long, default_value_t = 5)]
        settle_seconds: u64,
    },
}

/// Keeps a key given on the command line out of `Debug` output.
fn secret_arg(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s.to_owned()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = cli.config.as_deref();
    if matches!(cli.command, Command::Handler) {
        return handler_main(file).await;
    }
    let config = Config::load(file)?;
    match cli.command {
        Command::Openapi => {
            println!("{}", http::openapi().to_pretty_json()?);
        }
        Command::Token {
            tenant,
            user,
            admin,
            ttl,
        } => {
            let secret = auth::resolve_secret(&config.jwt, &config.data_dir)
                .context("reading the JWT secret")?;
            let keys = auth::TokenKeys::new(
                &secret,
                config.jwt.issuer.clone(),
                config.jwt.audience.clone(),
            );
            println!(
                "{}",
                keys.mint(TenantId(tenant), user.as_deref(), admin, ttl)
            );
        }
        Command::Provision => {
            telemetry::init(config.log_format, &config.log_filter);
            let store = app::wiring::open_store(
                &config,
                std::sync::Arc::new(castiel_integrations::clock::SystemClock),
            )
            .await?;
            store.provision().await.context("provisioning the store")?;
            println!("provisioned");
        }
        Command::Serve => {
            telemetry::init(config.log_format, &config.log_filter);
            let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
                .await
                .with_context(|| format!("binding port {}", config.port))?;
            let state = app::wiring::build(config).await?;
            serve::serve(state, listener).await?;
        }
        Command::RotateKey { to, settle_seconds } => {
            telemetry::init(config.log_format, &config.log_filter);
            let to = match to {
                Some(k) if k.expose_secret() == "-" => Some(read_key_from_stdin()?),
                other => other,
            };
            let settle = std::time::Duration::from_secs(settle_seconds);
            let report = app::rotate_key::rotate_key(&config, to.as_ref(), settle).await?;
            println!("{report}");
        }
        Command::Handler => handler_main(file).await?,
    }
    Ok(())
}

/// The first line of standard input (`rotate-key --to -`).
fn read_key_from_stdin() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the key from standard input")?;
    Ok(SecretString::from(line.trim().to_owned()))
}

/// `handler`: binds the host's port before anything slow (reference §5), then
/// builds the App in the background while `GET /` already answers.
async fn handler_main(config_file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let listener = handler::bind(handler::port_from_env()?).await?;
    let config = Config::load(config_file)?;
    telemetry::init_stdout(config.log_format, &config.log_filter);
    handler::run(listener, functions::production::production(), move || {
        let config = config.clone();
        async move { app::wiring::build(config).await }
    })
    .await
}
