//! `scale`: the real `stratus` binary holding a million users (by default) on its embedded store.
//!
//! The server starts once on an empty data directory (which makes the organisation, the master key and the dev
//! certificates) and is stopped; the benchmark then opens that store through the core, as the server would, and
//! fills it: groups of 100 with a Linux group each, bound to LDAP, then users imported by CSV with a password and
//! their group, and a search account. It does so with a FAST TEST-ONLY argon2id cost (m = 8 KiB, t = 1, far
//! below the floor the server itself accepts) so that a million password hashes take minutes instead of hours.
//! The hashes keep that cost in the store; nothing measured here hashes (searches, one bind per connection).
//!
//! Measured: `--restarts` times, the time from starting `stratus serve` on the populated store to its listeners
//! being ready (open the store, build the snapshot, bind the listeners) and the resident memory of the fresh
//! process; then `uid=` searches over `--connections` connections (the same load as `ldap`), with p50, p99 and
//! the server's CPU per search.

use super::dataset::{Dataset, SERVICE_PASSWORD, SERVICE_USER};
use super::load::{self, Target, Work};
use super::memory::rss;
use super::stratus::{default_bin, Stratus};
use crate::{format_duration, BoxError};
use clap::Args;
use core_directory::crypto::MasterKey;
use core_directory::model::Resource;
use core_directory::password::HashParams;
use core_directory::store::{RedbStore, Store};
use core_directory::views::{LinuxGroupInput, NewGroup, NewUser};
use core_directory::{Actor, Directory, DirectoryConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The test-only hash cost of the users made here.
const FAST_HASH: HashParams = HashParams {
    memory_kib: 8,
    iterations: 1,
    parallelism: 1,
};
/// Rows per CSV import call.
const IMPORT_CHUNK: usize = 10_000;

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
    /// Leave the populated data directory in place (its path is printed), to start a server on it by hand.
    #[arg(long)]
    keep: bool,
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
        "stratus-bench scale: {} users in {} groups, {cpus} CPUs; the users get a FAST TEST-ONLY argon2id cost \
         (m={} KiB, t={}) so that making them takes minutes: never use that cost outside a benchmark",
        data.users,
        data.groups(),
        FAST_HASH.memory_kib,
        FAST_HASH.iterations
    );
    let bin = args.stratus_bin.clone().unwrap_or_else(default_bin);
    let mut server = tokio::task::block_in_place(|| Stratus::start(&bin))?;
    tokio::task::block_in_place(|| server.stop())?;
    if args.keep {
        println!(
            "stratus: the data directory stays in {}",
            server.keep().display()
        );
    }
    let data_dir = server.data_dir();
    let t0 = Instant::now();
    // Its own runtime: when it is dropped, every task of the core stops and the store is closed before the
    // server opens it again.
    let suffix = tokio::task::block_in_place(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let out = rt.block_on(populate(&data_dir, data));
        drop(rt);
        out
    })?;
    let populated = t0.elapsed();
    let store_size = std::fs::metadata(data_dir.join("stratus.redb"))?.len();
    println!(
        "stratus: populated through the core in {:.0} s; store {:.0} MiB",
        populated.as_secs_f64(),
        store_size as f64 / (1024.0 * 1024.0)
    );

    let mut starts = Vec::new();
    let mut fresh = Vec::new();
    for k in 0..args.restarts {
        let ready = tokio::task::block_in_place(|| server.restart())
            .map_err(|e| format!("{e}\nstratus log (last lines):\n{}", server.log_tail()))?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let r = rss(server.pid())?;
        println!(
            "stratus: start {}: listeners ready after {:.2} s; RSS {:.1} MiB",
            k + 1,
            ready.as_secs_f64(),
            r.now
        );
        starts.push(ready);
        fresh.push(r.now);
    }
    starts.sort();
    fresh.sort_by(f64::total_cmp);

    let base = format!("ou=Users,{suffix}");
    let target = Arc::new(Target {
        server: "stratus",
        url: server.ldap_url().to_string(),
        search_dn: format!("uid={SERVICE_USER},{base}"),
        base,
        search_password: SERVICE_PASSWORD.into(),
        pid: Some(server.pid()),
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

    println!(
        "\nscale, {} users, {} groups, {cpus} CPUs (server and load generator on the same machine)",
        data.users,
        data.groups()
    );
    let rows = [
        (
            format!("start-up to listeners ready (median of {})", starts.len()),
            format!("{:.2} s", starts[(starts.len() - 1) / 2].as_secs_f64()),
        ),
        (
            "RSS of the started process".to_string(),
            format!("{:.1} MiB", fresh[(fresh.len() - 1) / 2]),
        ),
        (
            format!(
                "search uid=, {} connections ({} searches)",
                args.connections, r.done
            ),
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
        println!("{k:<48} {v:>20}");
    }
    Ok(())
}

/// Fill the stopped server's store through the core; returns the LDAP suffix.
async fn populate(data_dir: &Path, data: Dataset) -> Result<String, BoxError> {
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&data_dir.join("stratus.redb"))?);
    let key = MasterKey::load_or_create(None, data_dir)?;
    let config = DirectoryConfig {
        hash_params: FAST_HASH,
        ..DirectoryConfig::default()
    };
    let dir = Directory::open(store, key, config)?;
    let suffix = dir
        .org()
        .map(|o| o.ldap_suffix.clone())
        .ok_or("the server's first start made no organisation")?;
    let actor = Actor::system();
    let t0 = Instant::now();
    let mut first_group = None;
    for j in 0..data.groups() {
        let name = Dataset::group_name(j);
        let group = dir
            .create_group(
                &actor,
                NewGroup {
                    name: name.clone(),
                    linux_group: Some(LinuxGroupInput {
                        name,
                        gid: Some(Dataset::group_gid(j)),
                    }),
                    ..NewGroup::default()
                },
            )
            .await?;
        dir.bind_group(&actor, &group.group.id, Resource::Ldap)
            .await?;
        first_group.get_or_insert(group.group.id);
    }
    println!(
        "stratus: {} groups bound to LDAP in {:.1} s",
        data.groups(),
        t0.elapsed().as_secs_f64()
    );
    let t1 = Instant::now();
    let report_every = (data.users / 10).max(IMPORT_CHUNK);
    for start in (0..data.users).step_by(IMPORT_CHUNK) {
        let end = (start + IMPORT_CHUNK).min(data.users);
        let csv = Dataset::import_csv(start..end);
        let report = dir.import_users_csv(&actor, csv.as_bytes()).await?;
        crate::all_imported(&report)?;
        if end == data.users || end % report_every < IMPORT_CHUNK {
            println!(
                "stratus: {end}/{} users imported, {:.0} s",
                data.users,
                t1.elapsed().as_secs_f64()
            );
        }
    }
    let svc = dir
        .create_user(
            &actor,
            NewUser {
                username: SERVICE_USER.into(),
                email: "svc@bench.local".into(),
                firstname: "Bench".into(),
                lastname: "Service".into(),
                password: Some(SERVICE_PASSWORD.into()),
                ldap_bind_dn: true,
                ..NewUser::default()
            },
        )
        .await?;
    let group = first_group.ok_or("the data set has no group")?;
    dir.add_member(&actor, &group, &svc.id).await?;
    dir.flush_events().await;
    Ok(suffix)
}
