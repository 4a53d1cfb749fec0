//! `scale`: the real `stratus` binary holding a million users (by default) on its embedded store.
//!
//! The directory is made through the admin API as for the `ldap` benchmark (groups of 100 bound to LDAP, users
//! imported by CSV with a password and their group), but with a FAST TEST-ONLY argon2id cost (m = 8 KiB,
//! t = 1) so that a million password hashes take minutes instead of hours. That setting is for this benchmark
//! only: it makes stolen hashes cheap to attack, and nothing else here changes with it (LDAP searches and
//! cached binds never hash).
//!
//! Measured: the resident memory after the import; then, `--restarts` times, the time from starting the
//! process on the populated store to its listeners being ready (open the store, build the snapshot, bind the
//! listeners) and the resident memory of the fresh process; then `uid=` searches over `--connections`
//! connections (the same load as `ldap`), with p50, p99 and the server's CPU per search.

use super::dataset::Dataset;
use super::load::{self, Work};
use super::memory::rss;
use super::stratus::{default_bin, Stratus};
use crate::{format_duration, BoxError};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The test-only hash cost, passed to the server through its environment.
const FAST_HASH: [(&str, &str); 3] = [
    ("STRATUS_ARGON2_MEMORY_KIB", "8"),
    ("STRATUS_ARGON2_ITERATIONS", "1"),
    ("STRATUS_ARGON2_PARALLELISM", "1"),
];

#[derive(Args)]
pub struct ScaleArgs {
    /// Users in the directory.
    #[arg(long, default_value_t = 1_000_000)]
    users: usize,
    /// Persistent LDAP connections of the search load.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Most searches in the measured phase.
    #[arg(long, default_value_t = 200_000)]
    count: u64,
    /// Wall-clock limit of the measured phase, in seconds.
    #[arg(long, default_value_t = 20.0)]
    time_limit: f64,
    /// Restarts on the populated store, each timed; the table gives the median.
    #[arg(long, default_value_t = 3)]
    restarts: usize,
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
}

pub async fn run(args: &ScaleArgs) -> Result<(), BoxError> {
    if args.users == 0 || args.users > 10_000_000 {
        return Err("--users must be between 1 and 10,000,000".into());
    }
    if args.connections == 0 || args.connections > 1024 {
        return Err("--connections must be between 1 and 1024".into());
    }
    if args.count == 0 || args.count > 100_000_000 {
        return Err("--count must be between 1 and 100,000,000".into());
    }
    if !(args.time_limit.is_finite() && args.time_limit > 0.0 && args.time_limit <= 3600.0) {
        return Err("--time-limit must be between 0 and 3600 seconds".into());
    }
    if args.restarts == 0 || args.restarts > 20 {
        return Err("--restarts must be between 1 and 20".into());
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let data = Dataset { users: args.users };
    println!(
        "stratus-bench scale: {} users in {} groups, {cpus} CPUs; FAST TEST-ONLY argon2id (m=8 KiB, t=1) so the \
         import takes minutes: never use that cost outside a benchmark",
        data.users,
        data.groups()
    );
    let bin = args.stratus_bin.clone().unwrap_or_else(default_bin);
    let mut server = tokio::task::block_in_place(|| Stratus::start_with(&bin, &FAST_HASH, None))?;
    let t0 = Instant::now();
    let target = match server.populate(data).await {
        Ok(t) => t,
        Err(e) => {
            return Err(format!("{e}\nstratus log (last lines):\n{}", server.log_tail()).into())
        }
    };
    let populated = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_import = rss(server.pid())?;
    println!(
        "stratus: populated in {:.0} s; RSS {:.1} MiB (peak {:.1} MiB)",
        populated.as_secs_f64(),
        after_import.now,
        after_import.peak
    );

    let mut starts = Vec::new();
    let mut fresh = Vec::new();
    for k in 0..args.restarts {
        let ready = tokio::task::block_in_place(|| server.restart())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let r = rss(server.pid())?;
        println!(
            "stratus: restart {}: listeners ready after {:.2} s; RSS {:.1} MiB",
            k + 1,
            ready.as_secs_f64(),
            r.now
        );
        starts.push(ready);
        fresh.push(r.now);
    }
    starts.sort();
    fresh.sort_by(f64::total_cmp);

    // The restarted server listens on new ports.
    let target = Arc::new(load::Target {
        url: server.ldap_url().to_string(),
        pid: Some(server.pid()),
        ..target
    });
    load::check(&target, data.users).await?;
    let search = load::run_phase(
        "search uid=",
        &target,
        args.connections,
        Work::Search { users: data.users },
        args.count,
        Duration::from_secs_f64(args.time_limit),
    )
    .await?;
    let r = &search.run;
    let cpu = search
        .server_cpu
        .filter(|_| r.done > 0)
        .map(|c| c / u32::try_from(r.done).unwrap_or(u32::MAX));
    let after_load = rss(server.pid())?;

    let median = |v: &[Duration]| v[(v.len() - 1) / 2];
    println!(
        "\nscale, {} users, {} groups, {cpus} CPUs (server and load generator on the same machine)",
        data.users,
        data.groups()
    );
    println!("{:<44} {:>14}", "measure", "value");
    let rows = [
        (
            "RSS after the import".to_string(),
            format!("{:.1} MiB", after_import.now),
        ),
        (
            format!("start-up to listeners ready (median of {})", starts.len()),
            format!("{:.2} s", median(&starts).as_secs_f64()),
        ),
        (
            "RSS of the restarted process".to_string(),
            format!("{:.1} MiB", fresh[(fresh.len() - 1) / 2]),
        ),
        (
            format!("search uid=, {} connections", args.connections),
            format!("{:.1}/s", r.per_second()),
        ),
        (
            "search p50".to_string(),
            r.percentile(50.0).map_or("-".into(), format_duration),
        ),
        (
            "search p99".to_string(),
            r.percentile(99.0).map_or("-".into(), format_duration),
        ),
        (
            "server CPU per search".to_string(),
            cpu.map_or("-".into(), format_duration),
        ),
        (
            "RSS after the searches".to_string(),
            format!("{:.1} MiB (peak {:.1})", after_load.now, after_load.peak),
        ),
    ];
    for (k, v) in rows {
        println!("{k:<44} {v:>14}");
    }
    Ok(())
}
