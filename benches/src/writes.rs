//! `writes`: committed changes per second through the core's write path on the embedded store (redb, every
//! commit durable), as a listener makes them: group membership changes (add, then remove, each its own write)
//! from 1 and from many concurrent tasks. Users are imported without passwords first (no argon2id). Every loop
//! is bounded by a count and a time limit; nothing is asserted.

use crate::{format_duration, BoxError};
use clap::Args;
use core_directory::crypto::MasterKey;
use core_directory::directory::BootstrapRequest;
use core_directory::store::{RedbStore, Store};
use core_directory::views::NewGroup;
use core_directory::{Actor, Directory, DirectoryConfig, Id};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct WritesArgs {
    /// Smoke run: fewer changes, 2 s runs.
    #[arg(long)]
    quick: bool,
    /// Concurrent tasks of the parallel rows (repeatable) [default: 16 and 64].
    #[arg(long = "tasks")]
    tasks: Vec<usize>,
}

const USERS: usize = 2_000;
const GROUPS: usize = 20;

pub async fn run(args: &WritesArgs) -> Result<(), BoxError> {
    let (count, limit) = if args.quick {
        (5_000u64, Duration::from_secs(2))
    } else {
        (200_000u64, Duration::from_secs(10))
    };
    let mut tasks = vec![1];
    tasks.extend(if args.tasks.is_empty() {
        vec![16, 64]
    } else {
        args.tasks.clone()
    });
    let tmp = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(&tmp.path().join("writes.redb"))?);
    let dir = Directory::open(store, MasterKey::ephemeral(), DirectoryConfig::default())?;
    dir.initialise(BootstrapRequest {
        org_name: "Stratus bench".into(),
        ..BootstrapRequest::default()
    })
    .await?;
    let actor = Actor::system();
    let mut csv = String::from("firstname,lastname,username,email,password\n");
    for i in 0..USERS {
        writeln!(csv, "Bench,Writes,w{i:05},w{i:05}@bench.example,")?;
    }
    let report = dir.import_users_csv(&actor, csv.as_bytes()).await?;
    if report.failed > 0 {
        return Err(format!("{} users failed to import", report.failed).into());
    }
    let snap = dir.snapshot();
    let users: Arc<Vec<Id>> = Arc::new(
        (0..USERS)
            .filter_map(|i| {
                snap.user_by_username(&format!("w{i:05}"))
                    .map(|u| u.id.clone())
            })
            .collect(),
    );
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let view = dir
            .create_group(
                &actor,
                NewGroup {
                    name: format!("writes-{g}"),
                    ..NewGroup::default()
                },
            )
            .await?;
        groups.push(view.group.id);
    }
    let groups = Arc::new(groups);
    dir.flush_events().await;
    println!(
        "stratus-bench writes{}: {USERS} users, {GROUPS} groups on redb (durable commits); each run at most {count} \
         changes and {:.0} s",
        if args.quick { " --quick" } else { "" },
        limit.as_secs_f64()
    );
    println!(
        "{:<34} {:>5} {:>9} {:>7} {:>10} {:>10}",
        "run", "tasks", "changes", "secs", "changes/s", "mean"
    );
    for t in tasks {
        let issued = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + limit;
        let mut set = tokio::task::JoinSet::new();
        for k in 0..t {
            let (dir, users, groups, issued) = (
                Arc::clone(&dir),
                Arc::clone(&users),
                Arc::clone(&groups),
                Arc::clone(&issued),
            );
            set.spawn(async move {
                let actor = Actor::system();
                let mut done = 0u64;
                // Each task works on its own users, so its add and remove never meet another task's.
                let mine: Vec<&Id> = users.iter().skip(k).step_by(t).collect();
                let mut i = 0usize;
                while Instant::now() < deadline && issued.fetch_add(2, Ordering::Relaxed) < count {
                    let (u, g) = (
                        mine[i % mine.len()],
                        &groups[(i / mine.len()) % groups.len()],
                    );
                    dir.add_member(&actor, g, u).await?;
                    dir.remove_member(&actor, g, u).await?;
                    done += 2;
                    i += 1;
                }
                Ok::<u64, BoxError>(done)
            });
        }
        let mut done = 0;
        while let Some(r) = set.join_next().await {
            done += r??;
        }
        let secs = start.elapsed().as_secs_f64();
        dir.flush_events().await;
        println!(
            "{:<34} {:>5} {:>9} {:>7.2} {:>10.0} {:>10}",
            "group membership add/remove",
            t,
            done,
            secs,
            done as f64 / secs,
            format_duration(Duration::from_secs_f64(
                secs * t as f64 / done.max(1) as f64
            )),
        );
    }
    Ok(())
}
