//! Several nodes on PostgreSQL: how long a write on one node takes to be served by another (propagation delay),
//! and write throughput on the embedded store against PostgreSQL. A throwaway PostgreSQL 15 cluster from the
//! machine's packages (initdb into a temporary directory, as the `postgres` user when run as root) on a loopback
//! port; every loop bounded in count and time.

use crate::ldap::stratus::{default_bin, Stratus};
use crate::postgres::{Postgres, MASTER_KEY};
use crate::BoxError;
use clap::Args;
use reqwest::StatusCode;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct ClusterArgs {
    /// Fewer writes, for a smoke run.
    #[arg(long)]
    quick: bool,
    /// The stratus binary [default: beside this one, else target/release/stratus].
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
}

async fn create(node: &Stratus, name: &str) -> Result<(), BoxError> {
    let (api, key, http) = node.api();
    let r = http
        .post(format!("{api}/api/v1/users"))
        .bearer_auth(key)
        .json(&json!({"username": name, "email": format!("{name}@example.com")}))
        .send()
        .await?;
    if r.status() != StatusCode::CREATED {
        return Err(format!("creating {name}: {}", r.status()).into());
    }
    Ok(())
}

async fn visible(node: &Stratus, name: &str) -> Result<bool, BoxError> {
    let (api, key, http) = node.api();
    let v: serde_json::Value = http
        .get(format!("{api}/api/v1/users?search={name}&limit=1"))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?;
    Ok(v["total"].as_u64() == Some(1))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Creations per second by `tasks` concurrent clients, at most `count` or `limit`.
async fn write_rate(
    node: &Stratus,
    prefix: &str,
    count: usize,
    limit: Duration,
) -> Result<f64, BoxError> {
    let tasks = 8;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for t in 0..tasks {
        let (api, key, http) = node.api();
        let (api, key, http) = (api.to_string(), key.to_string(), http.clone());
        let (done, prefix) = (std::sync::Arc::clone(&done), prefix.to_string());
        set.spawn(async move {
            let mut i = t;
            while i < count && start.elapsed() < limit {
                let name = format!("{prefix}{i}");
                let r = http
                    .post(format!("{api}/api/v1/users"))
                    .bearer_auth(&key)
                    .json(&json!({"username": name, "email": format!("{name}@example.com")}))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == StatusCode::CREATED) {
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                i += tasks;
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(done.load(std::sync::atomic::Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

pub async fn run(args: &ClusterArgs) -> Result<(), BoxError> {
    let bin = args.stratus_bin.clone().unwrap_or_else(default_bin);
    let writes = if args.quick { 20 } else { 200 };
    let pg = Postgres::start()?;
    let url = pg.url();
    let env = [
        ("STRATUS_STORE", url.as_str()),
        ("STRATUS_MASTER_KEY", MASTER_KEY),
        // Two nodes on one machine: RADIUS on ephemeral ports too.
        ("STRATUS_RADIUS_ADDR", "127.0.0.1:0"),
        ("STRATUS_RADIUS_ACCOUNTING_ADDR", "127.0.0.1:0"),
    ];
    let a = Stratus::start_with(&bin, &env, None)?;
    let key = a.api().1.to_string();
    let b = Stratus::start_with(&bin, &env, Some(&key))?;

    // Propagation: a write answered by A, then B polled every millisecond until it serves it (at most 5 s).
    let mut delays = Vec::with_capacity(writes);
    for i in 0..writes {
        let name = format!("prop{i}");
        create(&a, &name).await?;
        let t0 = Instant::now();
        while !visible(&b, &name).await? {
            if t0.elapsed() > Duration::from_secs(5) {
                return Err(format!("{name} did not reach node B within 5 s").into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        delays.push(t0.elapsed());
    }
    delays.sort();
    println!(
        "propagation A → B over {writes} writes: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        percentile(&delays, 50.0).as_secs_f64() * 1e3,
        percentile(&delays, 95.0).as_secs_f64() * 1e3,
        delays.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );

    // Write throughput: the same creations on a node of the PostgreSQL cluster and on an embedded store.
    let (count, limit) = if args.quick {
        (200, Duration::from_secs(3))
    } else {
        (2_000, Duration::from_secs(10))
    };
    let on_pg = write_rate(&a, "wpg", count, limit).await?;
    drop(b);
    let solo = Stratus::start(&bin)?;
    let on_redb = write_rate(&solo, "wredb", count, limit).await?;
    println!(
        "user creations/s, 8 clients: PostgreSQL node {on_pg:.0}, embedded store {on_redb:.0} (PostgreSQL / redb = {:.2})",
        on_pg / on_redb.max(f64::MIN_POSITIVE)
    );
    Ok(())
}
