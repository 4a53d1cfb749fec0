//! `memory`: the resident memory of the real `stratus` binary before and after the work that hashes passwords —
//! a CSV import of many users with passwords, then parallel LDAP binds as distinct users (each one argon2id
//! verification) — next to OpenLDAP slapd holding the same users and taking the same binds. Figures are read from
//! `/proc/<pid>/status` (`VmRSS`, and `VmHWM` for the peak); nothing is asserted.

use super::dataset::Dataset;
use super::load::{run_phase, Target, Work};
use super::{slapd, stratus};
use crate::BoxError;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct MemoryArgs {
    /// Users imported with a password (one argon2id hash each).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Parallel LDAP connections binding after the import.
    #[arg(long, default_value_t = 40)]
    connections: usize,
    /// Binds after the import, each as a different user (bounded by --users).
    #[arg(long, default_value_t = 400)]
    binds: usize,
    /// Wall-clock limit of the bind phase, in seconds.
    #[arg(long, default_value_t = 60.0)]
    time_limit: f64,
    /// Measure Stratus only.
    #[arg(long)]
    no_slapd: bool,
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
    #[arg(long)]
    slapd_script: Option<PathBuf>,
}

/// Resident and peak resident memory of a process, in MiB.
#[derive(Clone, Copy)]
pub(crate) struct Rss {
    pub now: f64,
    pub peak: f64,
}

pub(crate) fn rss(pid: u32) -> Result<Rss, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> Result<f64, BoxError> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| format!("/proc/{pid}/status has no {name}"))?;
        let kib: f64 = line
            .split_whitespace()
            .nth(1)
            .ok_or("malformed /proc status line")?
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok(Rss {
        now: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

struct Row {
    server: &'static str,
    phase: String,
    rss: Rss,
}

async fn binds(args: &MemoryArgs, target: Target) -> Result<String, BoxError> {
    let n = args.binds.min(args.users);
    let order: Arc<Vec<usize>> = Arc::new((0..n).collect());
    let outcome = run_phase(
        "binds",
        &Arc::new(target),
        args.connections,
        Work::BindOnce { order },
        n as u64,
        Duration::from_secs_f64(args.time_limit),
    )
    .await?;
    Ok(format!(
        "after {} binds by {} connections",
        outcome.run.done, args.connections
    ))
}

pub async fn run(args: &MemoryArgs) -> Result<(), BoxError> {
    if args.users == 0 || args.users > 1_000_000 {
        return Err("--users must be between 1 and 1,000,000".into());
    }
    if args.connections == 0 || args.connections > 1024 {
        return Err("--connections must be between 1 and 1024".into());
    }
    if !(args.time_limit.is_finite() && args.time_limit > 0.0 && args.time_limit <= 3600.0) {
        return Err("--time-limit must be between 0 and 3600 seconds".into());
    }
    let data = Dataset { users: args.users };
    let settle = Duration::from_secs(2);
    let mut rows = Vec::new();

    let bin = args
        .stratus_bin
        .clone()
        .unwrap_or_else(stratus::default_bin);
    let server = tokio::task::block_in_place(|| stratus::Stratus::start(&bin))?;
    let pid = server.pid();
    tokio::time::sleep(settle).await;
    rows.push(Row {
        server: "stratus",
        phase: "started, empty".into(),
        rss: rss(pid)?,
    });
    let target = server.populate(data).await?;
    tokio::time::sleep(settle).await;
    rows.push(Row {
        server: "stratus",
        phase: format!("after importing {} users with passwords", args.users),
        rss: rss(pid)?,
    });
    let phase = binds(args, target).await?;
    tokio::time::sleep(settle).await;
    rows.push(Row {
        server: "stratus",
        phase,
        rss: rss(pid)?,
    });
    drop(server);

    if !args.no_slapd {
        let script = args
            .slapd_script
            .clone()
            .unwrap_or_else(slapd::default_script);
        let version = tokio::task::block_in_place(|| slapd::install(&script))?;
        println!("{version}");
        let (server, target) = tokio::task::block_in_place(|| slapd::start(&script, data))?;
        let pid = server.pid()?;
        tokio::time::sleep(settle).await;
        rows.push(Row {
            server: "slapd",
            phase: format!("started with the same {} users (slapadd)", args.users),
            rss: rss(pid)?,
        });
        let phase = binds(args, target).await?;
        tokio::time::sleep(settle).await;
        rows.push(Row {
            server: "slapd",
            phase,
            rss: rss(pid)?,
        });
    }

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("\nresident memory ({cpus} CPUs; stratus hashes on one thread per CPU with the default argon2id, m=19456 KiB)");
    println!(
        "{:<8} {:<52} {:>10} {:>10}",
        "server", "phase", "RSS MiB", "peak MiB"
    );
    for r in &rows {
        println!(
            "{:<8} {:<52} {:>10.1} {:>10.1}",
            r.server, r.phase, r.rss.now, r.rss.peak
        );
    }
    let last = |s: &str| rows.iter().rev().find(|r| r.server == s).map(|r| r.rss.now);
    if let (Some(a), Some(b)) = (last("stratus"), last("slapd")) {
        println!("stratus/slapd RSS after the binds: {:.2}", a / b);
    }
    Ok(())
}
