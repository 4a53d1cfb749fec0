//! `ldap`: Stratus against OpenLDAP slapd, side by side in one run, over the same data set and the same load.
//!
//! For each data-set size, each server is set up from scratch in a temporary directory (slapd from an LDIF via
//! `slapadd`, Stratus through its admin API), checked (the search account finds the first and last user), then
//! measured in three phases over `--connections` persistent connections, each bounded by `--count` operations
//! and `--time-limit` seconds:
//!
//! 1. `search uid=`: every connection binds once as the search account, then searches
//!    `(uid=<random user>)`, scope sub, base `ou=Users,<suffix>`, for the attributes sssd asks for;
//! 2. `bind, first`: simple binds with the right password, each of `--bind-users` users (a fixed random
//!    sample) once: for Stratus a full argon2id verification each, for slapd a salted SHA-1;
//! 3. `bind, repeat`: simple binds as random users among those bound in phase 2, so Stratus answers from its
//!    credential cache.
//!
//! Every server is set up before the first phase and kept running; `--rounds` repeats the search and repeat-bind
//! phases, alternating which server goes first, and the table gives each phase's median round: throughput, p50
//! and p99, the server's CPU time per operation (from `/proc/<pid>/stat`), and the Stratus/slapd ratio.

pub(crate) mod dataset;
mod load;
pub(crate) mod memory;
pub(crate) mod scale;
mod slapd;
pub(crate) mod stratus;

use crate::{format_duration, BoxError, Run, Stop, XorShift64};
use clap::{Args, ValueEnum};
use dataset::Dataset;
use load::{Target, Work};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The data-set size `--large` adds.
const LARGE_USERS: usize = 100_000;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Server {
    Slapd,
    Stratus,
    /// Stratus on a throwaway PostgreSQL instead of its embedded store.
    StratusPostgres,
}

#[derive(Args)]
pub struct LdapArgs {
    /// Users in the data set (in groups of 100).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// After the --users run, run again with 100,000 users (the Stratus import alone takes about 20 minutes).
    #[arg(long)]
    large: bool,
    /// Persistent LDAP connections of the load generator.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Most operations in one measured phase.
    #[arg(long, default_value_t = 200_000)]
    count: u64,
    /// Wall-clock limit of one measured phase, in seconds.
    #[arg(long, default_value_t = 20.0)]
    time_limit: f64,
    /// Users bound once each in the first-bind phase, then re-bound at random in the repeat phase.
    #[arg(long, default_value_t = 1_000)]
    bind_users: usize,
    /// Servers to measure, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Server::Slapd, Server::Stratus])]
    servers: Vec<Server>,
    /// The stratus binary [default: `stratus` next to this executable, else target/release/stratus].
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
    /// The slapd set-up script [default: benches/ldap/slapd.sh of this source tree].
    #[arg(long)]
    slapd_script: Option<PathBuf>,
    /// Rounds: each measures every server in turn (first one way round, then the other), and the table gives
    /// each phase's median round. The first-bind phase runs in the first round only.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Tokio worker threads of the load generator (it shares the machine's CPUs with the server).
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
}

impl LdapArgs {
    fn validate(&self) -> Result<(), BoxError> {
        if self.users == 0 || self.users > 10_000_000 {
            return Err("--users must be between 1 and 10,000,000".into());
        }
        if self.connections == 0 || self.connections > 1024 {
            return Err("--connections must be between 1 and 1024".into());
        }
        if self.count == 0 || self.count > 100_000_000 {
            return Err("--count must be between 1 and 100,000,000".into());
        }
        if !(self.time_limit.is_finite() && self.time_limit > 0.0 && self.time_limit <= 3600.0) {
            return Err("--time-limit must be between 0 and 3600 seconds".into());
        }
        if self.bind_users == 0 {
            return Err("--bind-users must be at least 1".into());
        }
        if self.client_threads == 0 || self.client_threads > 64 {
            return Err("--client-threads must be between 1 and 64".into());
        }
        if self.rounds == 0 || self.rounds > 99 {
            return Err("--rounds must be between 1 and 99".into());
        }
        if self.servers.is_empty() {
            return Err("--servers names no server".into());
        }
        Ok(())
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A server set up for one data set, kept running across the rounds (stopped when dropped; a PostgreSQL cluster
/// after the server that uses it, by field order).
#[derive(Default)]
struct Running {
    stratus: Option<stratus::Stratus>,
    _slapd: Option<slapd::Slapd>,
    _postgres: Option<crate::postgres::Postgres>,
}

impl Running {
    fn log_tail(&self) -> String {
        self.stratus.as_ref().map_or_else(String::new, |s| {
            format!("\nstratus log (last lines):\n{}", s.log_tail())
        })
    }
}

/// One measured phase of one round.
struct Phase {
    run: Run,
    server_cpu: Option<Duration>,
}

impl Phase {
    fn cpu_per_op(&self) -> Option<Duration> {
        let cpu = self.server_cpu?;
        (self.run.done > 0).then(|| cpu / u32::try_from(self.run.done).unwrap_or(u32::MAX))
    }
}

/// One server's phases for one data set (every round's), or why it has none.
struct Measured {
    server: Server,
    phases: Result<Vec<Phase>, String>,
}

pub async fn run(args: &LdapArgs) -> Result<(), BoxError> {
    args.validate()?;
    let mut sizes = vec![args.users];
    if args.large && args.users != LARGE_USERS {
        sizes.push(LARGE_USERS);
    }
    let limit = Duration::from_secs_f64(args.time_limit);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let script = args
        .slapd_script
        .clone()
        .unwrap_or_else(slapd::default_script);
    let stratus_bin = args
        .stratus_bin
        .clone()
        .unwrap_or_else(stratus::default_bin);
    let slapd_version = if args.servers.contains(&Server::Slapd) {
        Some(tokio::task::block_in_place(|| slapd::install(&script))?)
    } else {
        None
    };
    println!(
        "stratus-bench ldap: {cpus} CPUs, {} client threads, {} connections, {} round(s) alternating the servers, \
         each phase at most {} ops and {:.0} s",
        args.client_threads,
        args.connections,
        args.rounds,
        args.count,
        limit.as_secs_f64()
    );
    if let Some(v) = &slapd_version {
        println!("slapd: {v}");
    }
    if args.servers.contains(&Server::Stratus) || args.servers.contains(&Server::StratusPostgres) {
        println!("stratus: {}", stratus_bin.display());
    }

    let mut reports = Vec::new();
    for &users in &sizes {
        let data = Dataset { users };
        println!("\n== {users} users, {} groups ==", data.groups());
        // Every server is set up first and kept running, so the rounds can alternate between them.
        let mut servers = Vec::new();
        for &server in &args.servers {
            let started = match server {
                Server::Slapd => {
                    tokio::task::block_in_place(|| slapd::start(&script, data)).map(|(s, t)| {
                        let running = Running {
                            _slapd: Some(s),
                            ..Running::default()
                        };
                        (running, t)
                    })
                }
                Server::Stratus => start_stratus(&stratus_bin, data, false).await,
                Server::StratusPostgres => start_stratus(&stratus_bin, data, true).await,
            };
            let started = match started {
                Ok((running, target)) => {
                    let target = Arc::new(target);
                    match check(&target, data).await {
                        Ok(()) => Ok((running, target)),
                        Err(e) => Err(format!("{e}{}", running.log_tail())),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = &started {
                eprintln!("{}: not measured: {e}", name(server));
            }
            servers.push((server, started, Vec::new()));
        }
        for round in 0..args.rounds {
            // Alternate who goes first, so neither always meets a machine the other has just warmed or heated.
            let mut order: Vec<usize> = (0..servers.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for k in order {
                let (server, started, phases) = &mut servers[k];
                let Ok((running, target)) = started else {
                    continue;
                };
                match round_phases(target, data, args, limit, round == 0).await {
                    Ok(mut p) => phases.append(&mut p),
                    Err(e) => {
                        let e = format!("{e}{}", running.log_tail());
                        eprintln!("{}: round {}: {e}", name(*server), round + 1);
                        *started = Err(e);
                    }
                }
            }
        }
        let measured: Vec<Measured> = servers
            .into_iter()
            .map(|(server, started, phases)| Measured {
                server,
                phases: started.map(|_| phases),
            })
            .collect();
        let report = table(users, args, &measured);
        println!("{report}");
        reports.push(report);
        // The servers of this data set stop here, before the next one is set up.
        tokio::task::block_in_place(|| drop(measured));
    }
    if reports.len() > 1 {
        println!("\n== summary ==");
        for r in &reports {
            println!("{r}");
        }
    }
    Ok(())
}

fn name(server: Server) -> &'static str {
    match server {
        Server::Slapd => "slapd",
        Server::Stratus => "stratus",
        Server::StratusPostgres => "stratus/pg",
    }
}

async fn start_stratus(
    bin: &std::path::Path,
    data: Dataset,
    on_postgres: bool,
) -> Result<(Running, Target), BoxError> {
    let pg = if on_postgres {
        Some(tokio::task::block_in_place(
            crate::postgres::Postgres::start,
        )?)
    } else {
        None
    };
    let url = pg.as_ref().map(crate::postgres::Postgres::url);
    let env = url.as_deref().map(crate::postgres::node_env);
    let server = tokio::task::block_in_place(|| {
        stratus::Stratus::start_with(bin, env.as_ref().map_or(&[][..], |e| &e[..]), None)
    })?;
    match server.populate(data).await {
        Ok(target) => Ok((
            Running {
                stratus: Some(server),
                _postgres: pg,
                ..Running::default()
            },
            target,
        )),
        Err(e) => Err(format!("{e}\nstratus log (last lines):\n{}", server.log_tail()).into()),
    }
}

/// Before measuring: the search account finds the first and last users; print what the server returns.
async fn check(target: &Arc<Target>, data: Dataset) -> Result<(), BoxError> {
    let entry = load::check(target, data.users).await?;
    let mut attrs: Vec<&str> = entry.attrs.keys().map(String::as_str).collect();
    attrs.sort_unstable();
    println!(
        "{}: {} serves {} with {}",
        target.server,
        target.url,
        entry.dn,
        attrs.join(" ")
    );
    Ok(())
}

/// One round: searches, then (first round only) each sampled user's first bind, then repeat binds among the
/// users that bound. Later rounds re-bind the same sample, so the repeat phase meets a warm cache every time.
async fn round_phases(
    target: &Arc<Target>,
    data: Dataset,
    args: &LdapArgs,
    limit: Duration,
    first_round: bool,
) -> Result<Vec<Phase>, BoxError> {
    let conns = args.connections;
    let mut phases = Vec::new();
    let search = load::run_phase(
        "search uid=",
        target,
        conns,
        Work::Search { users: data.users },
        args.count,
        limit,
    )
    .await?;
    phases.push(Phase {
        run: search.run,
        server_cpu: search.server_cpu,
    });

    // The same sample of users on every server: a seeded Fisher-Yates shuffle.
    let mut order: Vec<usize> = (0..data.users).collect();
    let mut rng = XorShift64(0x5EED_B1ED_5EED_B1ED);
    for k in (1..order.len()).rev() {
        order.swap(k, (rng.next() % (k as u64 + 1)) as usize);
    }
    order.truncate(args.bind_users.min(data.users));
    let pool = if first_round {
        let first = load::run_phase(
            "bind, first",
            target,
            conns,
            Work::BindOnce {
                order: Arc::new(order),
            },
            args.count,
            limit,
        )
        .await?;
        phases.push(Phase {
            run: first.run,
            server_cpu: first.server_cpu,
        });
        if first.bound.is_empty() {
            return Err(format!("{}: no user bound in the first-bind phase", target.server).into());
        }
        first.bound
    } else {
        order
    };
    let repeat = load::run_phase(
        "bind, repeat",
        target,
        conns,
        Work::BindRandom {
            pool: Arc::new(pool),
        },
        args.count,
        limit,
    )
    .await?;
    phases.push(Phase {
        run: repeat.run,
        server_cpu: repeat.server_cpu,
    });
    Ok(phases)
}

/// A throughput ratio with about three significant digits, down to the 1/1000s that first binds reach.
fn ratio(x: f64) -> String {
    if x >= 0.1 {
        format!("{x:.2}x")
    } else if x >= 0.01 {
        format!("{x:.3}x")
    } else {
        format!("{x:.4}x")
    }
}

/// The round with the median throughput of one phase (the lower middle one for an even count).
fn median<'a>(phases: &'a [Phase], phase: &str) -> Option<(&'a Phase, usize)> {
    let mut of: Vec<&Phase> = phases.iter().filter(|p| p.run.name == phase).collect();
    of.sort_by(|a, b| a.run.per_second().total_cmp(&b.run.per_second()));
    let n = of.len();
    (n > 0).then(|| (of[(n - 1) / 2], n))
}

fn table(users: usize, args: &LdapArgs, measured: &[Measured]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nldap, {users} users, {} connections (bind users: {}); median of the rounds, CPU = the server's user + \
         system time per operation",
        args.connections,
        args.bind_users.min(users)
    );
    let _ = writeln!(
        out,
        "{:<14} {:<10} {:>6} {:>8} {:>7} {:>10} {:>10} {:>10} {:>9}  {:<5} {:>9} {:>9}",
        "phase",
        "server",
        "rounds",
        "count",
        "secs",
        "ops/s",
        "p50",
        "p99",
        "CPU/op",
        "stop",
        "vs slapd",
        "vs redb"
    );
    let median_of = |server, phase: &str| {
        measured
            .iter()
            .find(|m| m.server == server)
            .and_then(|m| m.phases.as_ref().ok())
            .and_then(|p| median(p, phase))
            .map(|(p, _)| p.run.per_second())
            .filter(|&v| v > 0.0)
    };
    let phase_names = ["search uid=", "bind, first", "bind, repeat"];
    for phase in phase_names {
        for m in measured {
            let server = name(m.server);
            let Ok(phases) = &m.phases else {
                let _ = writeln!(out, "{phase:<14} {server:<10} {:>6}  not measured", "-");
                continue;
            };
            let Some((p, rounds)) = median(phases, phase) else {
                continue;
            };
            let r = &p.run;
            let pct = |q| r.percentile(q).map_or("-".into(), format_duration);
            let against =
                |base| median_of(base, phase).map_or("-".into(), |v| ratio(r.per_second() / v));
            let vs = match m.server {
                Server::Slapd => String::new(),
                _ => against(Server::Slapd),
            };
            let vs_redb = match m.server {
                Server::StratusPostgres => against(Server::Stratus),
                _ => String::new(),
            };
            let line = format!(
                "{phase:<14} {server:<10} {rounds:>6} {:>8} {:>7.2} {:>10.1} {:>10} {:>10} {:>9}  {:<5} {vs:>9} {vs_redb:>9}",
                r.done,
                r.elapsed.as_secs_f64(),
                r.per_second(),
                pct(50.0),
                pct(99.0),
                p.cpu_per_op().map_or("-".into(), format_duration),
                match r.stop {
                    Stop::Count => "count",
                    Stop::Time => "time",
                },
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    for m in measured {
        if let Err(e) = &m.phases {
            let first_line = e.lines().next().unwrap_or_default();
            let _ = writeln!(out, "{}: {first_line}", name(m.server));
        }
    }
    out
}
