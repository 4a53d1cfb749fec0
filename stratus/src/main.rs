//! # stratus
//!
//! The Stratus binary: `stratus serve` reads the configuration, opens the store and starts every listener;
//! `stratus restore` and `stratus store copy` work on stores directly (the server stopped, for the embedded
//! store); the other subcommands are an admin CLI that talks to a running server through the admin API only.
//! This crate wires; it owns no directory rule and no protocol.

mod certs;
mod cli;
mod config;
mod https;
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
    /// Bring back a backup (server stopped): into the data directory's embedded store, or into an empty
    /// PostgreSQL database with --store. The master key is not in the backup: keep data/master.key or
    /// STRATUS_MASTER_KEY.
    Restore {
        /// The backup file (`stratus backup`).
        file: PathBuf,
        /// Data directory to restore into (default: the config's).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Restore into this empty PostgreSQL database instead.
        #[arg(long)]
        store: Option<String>,
        /// Replace an existing embedded store (it is kept beside as `stratus.redb.before-restore`).
        #[arg(long)]
        force: bool,
    },
    /// Move a directory between stores.
    #[command(subcommand)]
    Store(StoreCommand),
    /// The master key that seals the directory's secrets.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    #[command(flatten)]
    Admin(cli::Admin),
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Re-seal every secret (TOTP seeds, NT hashes, RADIUS secrets, IdP keys, SCIM tokens) under a new key in one
    /// transaction. Stop every server of the directory first.
    Rotate {
        /// Configuration file (default: ./stratus.toml when present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the config and STRATUS_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The store, a `postgres://…` URL (overrides the config and STRATUS_STORE).
        #[arg(long)]
        store: Option<String>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy every record and event from one store into an empty one, checked by counts and a checksum. A store
    /// is a `postgres://…` URL or the path of a redb file (such as data/stratus.redb, with its server stopped).
    Copy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
}

async fn open_store(
    spec: &str,
) -> Result<std::sync::Arc<dyn core_directory::store::Store>, String> {
    use core_directory::store::{PgStore, RedbStore};
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        Ok(PgStore::connect(spec).await.map_err(|e| e.to_string())?)
    } else {
        Ok(std::sync::Arc::new(
            RedbStore::open(std::path::Path::new(spec)).map_err(|e| format!("{spec}: {e}"))?,
        ))
    }
}

fn print_report(r: &core_directory::store::copy::CopyReport) {
    for (kind, n) in &r.records {
        println!("{kind:>18} {n}");
    }
    println!("{:>18} {}", "events", r.events);
    println!("{:>18} {}", "checksum", r.checksum);
}

async fn copy_stores(
    from: &str,
    to: &str,
) -> Result<core_directory::store::copy::CopyReport, String> {
    if !(from.starts_with("postgres") || std::path::Path::new(from).exists()) {
        return Err(format!("{from}: no such store"));
    }
    let source = open_store(from).await?;
    let target = open_store(to).await?;
    tokio::task::spawn_blocking(move || {
        core_directory::store::copy::copy(source.as_ref(), target.as_ref())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

async fn restore(
    file: PathBuf,
    data_dir: PathBuf,
    store: Option<String>,
    force: bool,
) -> Result<core_directory::store::copy::CopyReport, String> {
    if !file.exists() {
        return Err(format!("{}: no such backup", file.display()));
    }
    let target = match store {
        Some(url) => url,
        None => {
            std::fs::create_dir_all(&data_dir)
                .map_err(|e| format!("{}: {e}", data_dir.display()))?;
            let path = data_dir.join("stratus.redb");
            if path.exists() {
                if !force {
                    return Err(format!(
                        "{} exists; stop the server and pass --force to replace it",
                        path.display()
                    ));
                }
                let kept = data_dir.join("stratus.redb.before-restore");
                std::fs::rename(&path, &kept).map_err(|e| format!("{}: {e}", path.display()))?;
                println!("the previous store is kept as {}", kept.display());
            }
            path.display().to_string()
        }
    };
    copy_stores(&file.display().to_string(), &target).await
}

fn init_logging(cfg: &config::Config) {
    use tracing_subscriber::EnvFilter;
    let mut filter = EnvFilter::try_new(&cfg.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Two libraries log what a peer sent, unbounded: the LDAP codec dumps every malformed PDU at ERROR, and the
    // TLS library names an illegal SNI hostname at WARN. The listeners record bad input as events themselves,
    // bounded; these lines are kept out whatever the configured level.
    for quiet in ["ldap3_proto=off", "rustls=error"] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    // Colour only on a terminal (and not with NO_COLOR): a log file or journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The configuration file (or defaults) with the environment and the command line's data dir and store on top;
/// a configuration error is printed and becomes exit code 2.
fn load_config(
    file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
) -> Result<config::Config, ExitCode> {
    let mut cfg = config::Config::load(file.as_deref()).map_err(|e| {
        eprintln!("stratus: {e}");
        ExitCode::from(2)
    })?;
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    if let Some(s) = store {
        cfg.store = s;
    }
    Ok(cfg)
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
            let cfg = match load_config(config, data_dir, store) {
                Ok(c) => c,
                Err(code) => return code,
            };
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
        Command::Restore {
            file,
            data_dir,
            store,
            force,
        } => {
            let data_dir = data_dir.unwrap_or_else(|| {
                config::Config::load(None).map_or_else(|_| PathBuf::from("data"), |c| c.data_dir)
            });
            match runtime.block_on(restore(file, data_dir, store, force)) {
                Ok(r) => {
                    print_report(&r);
                    println!("restored");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("stratus: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::MasterKey(MasterKeyCommand::Rotate {
            config,
            data_dir,
            store,
        }) => {
            let cfg = match load_config(config, data_dir, store) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match runtime.block_on(serve::rotate_master_key(&cfg)) {
                Ok(said) => {
                    println!("stratus: {said}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("stratus: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Store(StoreCommand::Copy { from, to }) => {
            match runtime.block_on(copy_stores(&from, &to)) {
                Ok(r) => {
                    print_report(&r);
                    println!("copied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
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
