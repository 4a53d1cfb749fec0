//! The load generator: `connections` persistent LDAP connections (the `ldap3` client on tokio, plain LDAP on
//! loopback), each issuing one operation at a time, until the phase's count or time limit is reached.

use super::dataset::{Dataset, PASSWORD};
use crate::radius::load::cpu_time;
use crate::{BoxError, Run, Stop, XorShift64};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// Longest a single operation may take before the phase is abandoned.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest opening a connection (and its service bind) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The attributes sssd asks for when it looks a user up (`ldap_schema = rfc2307bis`).
pub const USER_ATTRS: &[&str] = &[
    "objectClass",
    "uid",
    "userPassword",
    "uidNumber",
    "gidNumber",
    "gecos",
    "homeDirectory",
    "loginShell",
    "cn",
    "sn",
    "givenName",
    "mail",
    "memberOf",
    "modifyTimestamp",
    "shadowLastChange",
    "shadowMin",
    "shadowMax",
    "shadowWarning",
    "shadowInactive",
    "shadowExpire",
    "entryUUID",
];

/// One server under test, as the load generator sees it.
pub struct Target {
    pub server: &'static str,
    pub url: String,
    /// `ou=Users,<suffix>`: the search base, and the parent of every user DN.
    pub base: String,
    /// The account the search phase binds as once per connection.
    pub search_dn: String,
    pub search_password: String,
    /// The server's process, whose CPU time each phase reports per operation.
    pub pid: Option<u32>,
}

impl Target {
    pub fn user_dn(&self, i: usize) -> String {
        format!("uid={},{}", Dataset::username(i), self.base)
    }
}

/// What each operation of a phase does.
#[derive(Clone)]
pub enum Work {
    /// Bind as the search account once per connection, then `(uid=<random user>)` searches over `users` users.
    Search { users: usize },
    /// Simple binds with the right password, the n-th operation binding user `order[n]`: each user once.
    BindOnce { order: Arc<Vec<usize>> },
    /// Simple binds with the right password as uniformly random users of `pool`.
    BindRandom { pool: Arc<Vec<usize>> },
}

/// A phase's results: the run, the server's CPU time during it, and for [`Work::BindOnce`] the users that did
/// bind.
pub struct Outcome {
    pub run: Run,
    pub server_cpu: Option<Duration>,
    pub bound: Vec<usize>,
}

async fn connect(target: &Target, bind_search_account: bool) -> Result<Ldap, BoxError> {
    let settings = LdapConnSettings::new().set_conn_timeout(CONNECT_TIMEOUT);
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &target.url)
        .await
        .map_err(|e| format!("{}: connect to {}: {e}", target.server, target.url))?;
    ldap3::drive!(conn);
    if bind_search_account {
        tokio::time::timeout(
            CONNECT_TIMEOUT,
            ldap.simple_bind(&target.search_dn, &target.search_password),
        )
        .await
        .map_err(|_| format!("{}: bind as {} timed out", target.server, target.search_dn))??
        .success()
        .map_err(|e| format!("{}: bind as {}: {e}", target.server, target.search_dn))?;
    }
    Ok(ldap)
}

/// Search for one user by uid; anything but exactly one entry is an error.
async fn search_user(ldap: &mut Ldap, target: &Target, i: usize) -> Result<SearchEntry, BoxError> {
    let filter = format!("(uid={})", Dataset::username(i));
    let (mut entries, _) = tokio::time::timeout(
        OP_TIMEOUT,
        ldap.search(&target.base, Scope::Subtree, &filter, USER_ATTRS),
    )
    .await
    .map_err(|_| format!("{}: search {filter} timed out", target.server))??
    .success()
    .map_err(|e| format!("{}: search {filter}: {e}", target.server))?;
    match entries.len() {
        1 => Ok(SearchEntry::construct(entries.remove(0))),
        n => Err(format!(
            "{}: search {filter} under {} returned {n} entries, expected 1",
            target.server, target.base
        )
        .into()),
    }
}

async fn bind_user(ldap: &mut Ldap, target: &Target, i: usize) -> Result<(), BoxError> {
    let dn = target.user_dn(i);
    tokio::time::timeout(OP_TIMEOUT, ldap.simple_bind(&dn, PASSWORD))
        .await
        .map_err(|_| format!("{}: bind as {dn} timed out", target.server))??
        .success()
        .map_err(|e| format!("{}: bind as {dn}: {e}", target.server))?;
    Ok(())
}

/// Before measuring: the search account binds and finds the first and last users. Returns the first user's
/// entry, to show which attributes the server returns.
pub async fn check(target: &Target, users: usize) -> Result<SearchEntry, BoxError> {
    let mut ldap = connect(target, true).await?;
    let first = search_user(&mut ldap, target, 0).await?;
    search_user(&mut ldap, target, users - 1).await?;
    let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
    Ok(first)
}

/// Run one phase: open `connections` connections (not timed), then issue operations from all of them until `max`
/// were issued or `limit` has passed, whichever comes first.
pub async fn run_phase(
    name: &'static str,
    target: &Arc<Target>,
    connections: usize,
    work: Work,
    max: u64,
    limit: Duration,
) -> Result<Outcome, BoxError> {
    let max = match &work {
        Work::BindOnce { order } => max.min(order.len() as u64),
        _ => max,
    };
    let issued = Arc::new(AtomicU64::new(0));
    // Everyone meets twice: once connected, once to start together after the clock has started.
    let barrier = Arc::new(Barrier::new(connections + 1));
    let mut set = tokio::task::JoinSet::new();
    for t in 0..connections {
        let (target, work, issued, barrier) = (
            Arc::clone(target),
            work.clone(),
            Arc::clone(&issued),
            Arc::clone(&barrier),
        );
        set.spawn(async move {
            let ready = connect(&target, matches!(work, Work::Search { .. })).await;
            barrier.wait().await;
            barrier.wait().await;
            let mut ldap = ready?;
            let deadline = Instant::now() + limit;
            let mut rng =
                XorShift64(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x2545_F491_4F6C_DD1D));
            let mut latencies = Vec::new();
            let mut bound = Vec::new();
            while Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    break;
                }
                let t0 = Instant::now();
                match &work {
                    Work::Search { users } => {
                        let i = (rng.next() % *users as u64) as usize;
                        search_user(&mut ldap, &target, i).await?;
                    }
                    Work::BindOnce { order } => {
                        let i = order[n as usize];
                        bind_user(&mut ldap, &target, i).await?;
                        bound.push(i);
                    }
                    Work::BindRandom { pool } => {
                        let i = pool[(rng.next() % pool.len() as u64) as usize];
                        bind_user(&mut ldap, &target, i).await?;
                    }
                }
                latencies.push(t0.elapsed());
            }
            Ok::<_, BoxError>((latencies, bound, ldap))
        });
    }
    let met = tokio::time::timeout(CONNECT_TIMEOUT * 2, barrier.wait()).await;
    if met.is_err() {
        set.abort_all();
        return Err(format!("{}: {name}: connections not ready in time", target.server).into());
    }
    let cpu0 = cpu_time(target.pid);
    let start = Instant::now();
    barrier.wait().await;
    let mut latencies = Vec::new();
    let mut bound = Vec::new();
    let mut handles = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok((l, b, ldap))) => {
                latencies.extend(l);
                bound.extend(b);
                handles.push(ldap);
            }
            Ok(Err(e)) => {
                set.abort_all();
                return Err(format!("{name}: {e}").into());
            }
            Err(e) => {
                set.abort_all();
                return Err(format!("{}: {name}: load task failed: {e}", target.server).into());
            }
        }
    }
    let elapsed = start.elapsed();
    let server_cpu = match (cpu0, cpu_time(target.pid)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    for mut ldap in handles {
        let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
    }
    latencies.sort_unstable();
    let done = latencies.len() as u64;
    Ok(Outcome {
        run: Run {
            name,
            tasks: connections,
            done,
            elapsed,
            stop: if done >= max { Stop::Count } else { Stop::Time },
            latencies,
        },
        server_cpu,
        bound,
    })
}
