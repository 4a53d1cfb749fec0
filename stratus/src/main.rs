//! # stratus
//!
//! The Stratus binary: `stratus serve` reads the configuration, opens the store and starts every listener;
//! the other subcommands are an admin CLI that talks to a running server through the admin API only. This
//! crate wires; it owns no directory rule and no protocol.

mod certs;
mod cli;
mod config;
mod serve;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "stratus",
    version,
    about = "Stratus cloud directory: LDAP, RADIUS, SAML and SCIM over one core"
)]
struct Cli {
    #[command(flatten)]
    conn: cli::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the suite.
    Serve {
        /// Configuration file (default: ./stratus.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the config and STRATUS_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The store: a `postgres://…` URL shared by several nodes (overrides the config and STRATUS_STORE);
        /// without it, the embedded store in the data directory.
        #[arg(long)]
        store: Option<String>,
    },
    #[command(flatten)]
    Admin(cli::Admin),
}

fn init_logging(cfg: &config::Config) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_new(&cfg.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // The LDAP codec logs every malformed PDU at ERROR: noise any client can cause. The LDAP listener records
    // malformed input as events itself; a level naming `ldap3_proto` explicitly still gets its lines.
    if !cfg.log.level.contains("ldap3_proto") {
        if let Ok(quiet) = "ldap3_proto=off".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stratus: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            store,
        } => {
            let mut cfg = match config::Config::load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("stratus: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(d) = data_dir {
                cfg.data_dir = d;
            }
            if let Some(s) = store {
                cfg.store = s;
            }
            init_logging(&cfg);
            match runtime.block_on(serve::run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "stratus stopped");
                    eprintln!("stratus: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin(cmd) => match runtime.block_on(cli::run(&cli.conn, cmd)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stratus: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
