//! `radius`: Stratus's RADIUS listener against FreeRADIUS, side by side in one run, over the same users and the
//! same load.
//!
//! Both servers get the same data set as the `ldap` benchmark (users `bench0000000`… with one password) and the
//! same load from [`load`]: `--window` PAP Access-Requests in flight over `--sockets` UDP sockets, each request
//! with a Message-Authenticator, cycling uniformly through `--active-users` users spread over the data set,
//! until `--count` requests were issued or `--time-limit` has passed. Three rows are measured:
//!
//! 1. Stratus with the credential cache on (its default), warm: after one priming login per active user, each
//!    of which costs an argon2id verification, every measured request is answered from the cache;
//! 2. Stratus with the credential cache off (the same data directory, restarted): every request costs argon2id;
//! 3. FreeRADIUS with the `files` and `pap` modules and the users' Cleartext-Password.
//!
//! The table gives accepted requests per second, p50 and p99 latency of accepts, every request that was not
//! accepted, and the Stratus/FreeRADIUS throughput ratios.

// Shared with the `eap` benchmark: the Stratus launcher, the FreeRADIUS launcher and the CPU clocks.
pub(crate) mod freeradius;
pub(crate) mod load;
pub(crate) mod stratus;

// The same synthetic users as the `ldap` benchmark.
use crate::ldap::dataset;

use crate::{format_duration, BoxError, Stop};
use clap::{Args, ValueEnum};
use dataset::Dataset;
use load::{Outcome, Shape, Target};
use radius_server::packet::{Code, Packet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Non-accepts above this share of the requests make a run's figures suspect, and the output says so.
const NON_ACCEPT_ALARM: f64 = 0.02;
/// Longest a server may take to answer its first request after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest priming may take, whatever the number of users.
const PRIME_LIMIT: Duration = Duration::from_secs(900);
/// Stratus's default credential cache lifetime: priming and the warm run must fit in it.
const CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Server {
    Freeradius,
    Stratus,
    /// Stratus on a throwaway PostgreSQL instead of its embedded store (cache on, warm run only).
    StratusPostgres,
}

#[derive(Args)]
pub struct RadiusArgs {
    /// Smoke run: 1,000 users, 200 active, 3 s runs.
    #[arg(long)]
    quick: bool,
    /// Users in the data set, on both servers [default: 10000, or 1000 with --quick].
    #[arg(long)]
    users: Option<usize>,
    /// Users the measured runs cycle through (spread evenly over the data set), primed once each before the
    /// warm run [default: 1000, or 200 with --quick].
    #[arg(long)]
    active_users: Option<usize>,
    /// Most requests issued in one measured run [default: 1000000, or 100000 with --quick].
    #[arg(long)]
    count: Option<u64>,
    /// Wall-clock limit of one measured run, in seconds [default: 20, or 3 with --quick].
    #[arg(long)]
    time_limit: Option<f64>,
    /// Requests in flight at once, over all sockets (Stratus drops requests beyond its 256 workers).
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// UDP sockets (and load threads) of the load generator; each holds at most 256 requests in flight.
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Seconds without a reply after which a request counts as lost (nothing is retransmitted).
    #[arg(long, default_value_t = 5.0)]
    reply_timeout: f64,
    /// Servers to measure, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Server::Freeradius, Server::Stratus])]
    servers: Vec<Server>,
    /// The stratus binary [default: `stratus` next to this executable, else target/release/stratus].
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
    /// The FreeRADIUS set-up script [default: benches/radius/freeradius.sh of this source tree].
    #[arg(long)]
    freeradius_script: Option<PathBuf>,
}

/// The bounds of one `radius` invocation.
struct Plan {
    quick: bool,
    users: usize,
    active: usize,
    count: u64,
    limit: Duration,
    shape: Shape,
}

impl Plan {
    fn new(args: &RadiusArgs) -> Result<Self, BoxError> {
        let quick = args.quick;
        let users = args.users.unwrap_or(if quick { 1_000 } else { 10_000 });
        if users == 0 || users > 10_000_000 {
            return Err("--users must be between 1 and 10,000,000".into());
        }
        let active = args
            .active_users
            .unwrap_or(if quick { 200 } else { 1_000 })
            .min(users);
        if active == 0 {
            return Err("--active-users must be at least 1".into());
        }
        let count = args
            .count
            .unwrap_or(if quick { 100_000 } else { 1_000_000 });
        if count == 0 || count > 100_000_000 {
            return Err("--count must be between 1 and 100,000,000".into());
        }
        let secs = args.time_limit.unwrap_or(if quick { 3.0 } else { 20.0 });
        if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
            return Err("--time-limit must be between 0 and 3600 seconds".into());
        }
        if args.sockets == 0 || args.sockets > 64 {
            return Err("--sockets must be between 1 and 64".into());
        }
        if args.window == 0 || args.window > 256 * args.sockets {
            return Err(format!(
                "--window must be between 1 and 256 x --sockets ({})",
                256 * args.sockets
            )
            .into());
        }
        let t = args.reply_timeout;
        if !(t.is_finite() && (0.1..=60.0).contains(&t)) {
            return Err("--reply-timeout must be between 0.1 and 60 seconds".into());
        }
        if args.servers.is_empty() {
            return Err("--servers names no server".into());
        }
        Ok(Plan {
            quick,
            users,
            active,
            count,
            limit: Duration::from_secs_f64(secs),
            shape: Shape {
                window: args.window,
                sockets: args.sockets.min(args.window),
                reply_timeout: Duration::from_secs_f64(t),
            },
        })
    }
}

/// One row of the table: a measured run, or why there is none.
struct Row {
    label: &'static str,
    outcome: Result<Outcome, String>,
}

const WARM: &str = "stratus, cache on (warm)";
const COLD: &str = "stratus, cache off (cold)";
const FREERADIUS: &str = "freeradius";
const PG_WARM: &str = "stratus/pg, cache on (warm)";

pub async fn run(args: &RadiusArgs) -> Result<(), BoxError> {
    let plan = Plan::new(args)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let script = args
        .freeradius_script
        .clone()
        .unwrap_or_else(freeradius::default_script);
    let stratus_bin = args
        .stratus_bin
        .clone()
        .unwrap_or_else(stratus::default_bin);
    let version = if args.servers.contains(&Server::Freeradius) {
        Some(tokio::task::block_in_place(|| {
            freeradius::install(&script)
        })?)
    } else {
        None
    };
    println!(
        "stratus-bench radius{}: {cpus} CPUs; {} users, {} active; window {} over {} sockets; each run at most {} \
         requests and {:.0} s; a request without a reply in {:.1} s is lost",
        if plan.quick { " --quick" } else { "" },
        plan.users,
        plan.active,
        plan.shape.window,
        plan.shape.sockets,
        plan.count,
        plan.limit.as_secs_f64(),
        plan.shape.reply_timeout.as_secs_f64(),
    );
    if let Some(v) = &version {
        println!("freeradius: {v}");
    }
    if args.servers.contains(&Server::Stratus) {
        println!("stratus: {}", stratus_bin.display());
        if plan.shape.window > 256 {
            println!(
                "stratus: note: a window of {} is above the listener's 256 workers (radius.max_in_flight); \
                 requests beyond it are dropped and show up as lost",
                plan.shape.window
            );
        }
    }
    let secret = random_secret()?;
    let secret_bytes: Arc<[u8]> = secret.as_bytes().into();
    let data = Dataset { users: plan.users };
    let names = Arc::new(load::sample(plan.users, plan.active));

    let mut rows = Vec::new();
    for &server in &args.servers {
        match server {
            Server::Freeradius => {
                let outcome =
                    measure_freeradius(&script, data, &plan, &secret, &secret_bytes, &names)
                        .await
                        .map_err(|e| e.to_string());
                if let Err(e) = &outcome {
                    eprintln!("freeradius: not measured: {e}");
                }
                rows.push(Row {
                    label: FREERADIUS,
                    outcome,
                });
            }
            Server::Stratus => {
                let (warm, cold) =
                    measure_stratus(&stratus_bin, data, &plan, &secret, &secret_bytes, &names)
                        .await;
                for (label, outcome) in [(WARM, warm), (COLD, cold)] {
                    if let Err(e) = &outcome {
                        eprintln!("{label}: not measured: {e}");
                    }
                    rows.push(Row { label, outcome });
                }
            }
            Server::StratusPostgres => {
                let outcome = measure_stratus_on_postgres(
                    &stratus_bin,
                    data,
                    &plan,
                    &secret,
                    &secret_bytes,
                    &names,
                )
                .await
                .map_err(|e| e.to_string());
                if let Err(e) = &outcome {
                    eprintln!("{PG_WARM}: not measured: {e}");
                }
                rows.push(Row {
                    label: PG_WARM,
                    outcome,
                });
            }
        }
    }
    let order = |r: &Row| {
        [WARM, PG_WARM, COLD, FREERADIUS]
            .iter()
            .position(|l| *l == r.label)
    };
    rows.sort_by_key(order);
    println!("{}", table(&plan, &rows));
    Ok(())
}

/// 32 random hex digits behind a prefix: a valid secret for both servers (FreeRADIUS's script accepts
/// letters, digits, `-`, `_` and `.` only).
pub(crate) fn random_secret() -> Result<String, BoxError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness for the shared secret")?;
    let mut s = String::from("bench-radius-");
    for b in bytes {
        write!(s, "{b:02x}")?;
    }
    Ok(s)
}

/// Before measuring: the first and last users are accepted and a wrong password is rejected. The first request
/// is retried (a new request each second) until the server answers or [`READY_TIMEOUT`] has passed. Returns a
/// description of an Access-Accept.
fn check(
    target: &Target,
    data: Dataset,
    alive: &mut dyn FnMut() -> Option<String>,
) -> Result<String, BoxError> {
    let first = Dataset::username(0);
    let last = Dataset::username(data.users - 1);
    let deadline = Instant::now() + READY_TIMEOUT;
    let accept = loop {
        if let Some(status) = alive() {
            return Err(format!("{} exited ({status}) before answering", target.server).into());
        }
        match load::one_request(target, &first, Duration::from_secs(1)) {
            Ok(r) => break r,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {}
        }
    };
    let expect_accept = |(code, p): (Code, Packet), user: &str| -> Result<Packet, BoxError> {
        if code == Code::AccessAccept {
            return Ok(p);
        }
        Err(format!(
            "{}: {user} with the right password: {code:?}{}",
            target.server,
            p.text(radius_server::packet::attr::REPLY_MESSAGE)
                .map_or(String::new(), |m| format!(" ({m})"))
        )
        .into())
    };
    let p = expect_accept(accept, &first)?;
    expect_accept(
        load::one_request(target, &last, Duration::from_secs(10))?,
        &last,
    )?;
    let wrong = load::one_wrong_password(target, &last, Duration::from_secs(10))?;
    if wrong != Code::AccessReject {
        return Err(format!(
            "{}: a wrong password for {last} got {wrong:?}",
            target.server
        )
        .into());
    }
    // The wrong password counted towards the user's lockout on Stratus; a right one clears the count.
    expect_accept(
        load::one_request(target, &last, Duration::from_secs(10))?,
        &last,
    )?;
    Ok(describe_reply(&p))
}

/// `Access-Accept, 38 octets: Message-Authenticator (first), Class`.
fn describe_reply(p: &Packet) -> String {
    let dict = radius_server::dictionary::Dictionary::standard();
    let names: Vec<String> = p
        .attributes
        .iter()
        .map(|a| {
            dict.by_number(0, a.typ)
                .map_or_else(|| format!("attribute {}", a.typ), |d| d.name.clone())
        })
        .collect();
    let octets: usize = 20
        + p.attributes
            .iter()
            .map(|a| a.value.len() + 2)
            .sum::<usize>();
    format!(
        "{:?}, {octets} octets: {}",
        p.code,
        if names.is_empty() {
            "no attributes".into()
        } else {
            names.join(", ")
        }
    )
}

async fn measure_freeradius(
    script: &Path,
    data: Dataset,
    plan: &Plan,
    secret: &str,
    secret_bytes: &Arc<[u8]>,
    names: &Arc<Vec<String>>,
) -> Result<Outcome, BoxError> {
    tokio::task::block_in_place(|| {
        let mut server = freeradius::FreeRadius::start(script, data, secret)?;
        let target = server.target(secret_bytes);
        let result = (|| {
            let accept = check(&target, data, &mut || server.exited())?;
            println!("freeradius: {} answers {}", target.addr, accept);
            load::run(
                FREERADIUS,
                &target,
                plan.shape,
                names,
                plan.count,
                plan.limit,
                Some(server.pid()),
            )
        })();
        result
            .map_err(|e| format!("{e}\nfreeradius log (last lines):\n{}", server.log_tail()).into())
    })
}

/// The warm run (cache on, after priming) and the cold run (cache off, same data directory).
async fn measure_stratus(
    bin: &Path,
    data: Dataset,
    plan: &Plan,
    secret: &str,
    secret_bytes: &Arc<[u8]>,
    names: &Arc<Vec<String>>,
) -> (Result<Outcome, String>, Result<Outcome, String>) {
    let store = match stratus::Data::new() {
        Ok(s) => s,
        Err(e) => return (Err(e.to_string()), Err(e.to_string())),
    };
    let warm = match tokio::task::block_in_place(|| stratus::Server::start(bin, &store, true)) {
        Ok(server) => {
            let r = async {
                server.populate(data, secret).await?;
                tokio::task::block_in_place(|| warm_run(&server, data, plan, secret_bytes, names))
            }
            .await;
            let r = r.map_err(|e| format!("{e}\nstratus log (last lines):\n{}", server.log_tail()));
            let log = server.log_path();
            tokio::task::block_in_place(|| drop(server));
            println!("stratus (cache on) log: {}", stratus::warnings(&log));
            r
        }
        Err(e) => Err(e.to_string()),
    };
    if warm.is_err() {
        let why = "not run: the cache-on run failed".to_string();
        return (warm, Err(why));
    }
    let cold = tokio::task::block_in_place(|| {
        let server = stratus::Server::start(bin, &store, false)?;
        let target = server.target(secret_bytes);
        let r = (|| {
            let mut alive = || None;
            let accept = check(&target, data, &mut alive)?;
            println!(
                "stratus: restarted with STRATUS_CREDENTIAL_CACHE=false; {} answers {accept}",
                target.addr
            );
            load::run(
                COLD,
                &target,
                plan.shape,
                names,
                plan.count,
                plan.limit,
                Some(server.pid()),
            )
        })();
        let r = r.map_err(|e| -> BoxError {
            format!("{e}\nstratus log (last lines):\n{}", server.log_tail()).into()
        });
        let log = server.log_path();
        drop(server);
        println!("stratus (cache off) log: {}", stratus::warnings(&log));
        r
    });
    (warm, cold.map_err(|e| e.to_string()))
}

/// The warm run on a node whose store is a throwaway PostgreSQL (the same data, the same checks).
async fn measure_stratus_on_postgres(
    bin: &Path,
    data: Dataset,
    plan: &Plan,
    secret: &str,
    secret_bytes: &Arc<[u8]>,
    names: &Arc<Vec<String>>,
) -> Result<Outcome, BoxError> {
    let pg = tokio::task::block_in_place(crate::postgres::Postgres::start)?;
    let url = pg.url();
    let env = crate::postgres::node_env(&url);
    let store = stratus::Data::with_prefix("stratus-bench-radius-pg")?;
    let server = tokio::task::block_in_place(|| {
        stratus::Server::start_with(
            bin,
            &store,
            &stratus::Options {
                credential_cache: true,
                radius: true,
                env: &env,
                log_name: "stratus-postgres.log",
            },
        )
    })?;
    let r = async {
        server.populate(data, secret).await?;
        tokio::task::block_in_place(|| warm_run(&server, data, plan, secret_bytes, names))
    }
    .await;
    let r = r.map_err(|e| -> BoxError {
        format!("{e}\nstratus log (last lines):\n{}", server.log_tail()).into()
    });
    let log = server.log_path();
    tokio::task::block_in_place(|| drop(server));
    println!("stratus (PostgreSQL) log: {}", stratus::warnings(&log));
    drop(pg);
    r
}

/// Check, prime every active user once (each a first verification: argon2id), then measure.
fn warm_run(
    server: &stratus::Server,
    data: Dataset,
    plan: &Plan,
    secret_bytes: &Arc<[u8]>,
    names: &Arc<Vec<String>>,
) -> Result<Outcome, BoxError> {
    let target = server.target(secret_bytes);
    let accept = check(&target, data, &mut || None)?;
    println!("stratus: {} answers {accept}", target.addr);
    let prime = load::run(
        "prime",
        &target,
        plan.shape,
        names,
        names.len() as u64,
        PRIME_LIMIT,
        Some(server.pid()),
    )?;
    let took = prime.run.elapsed;
    println!(
        "stratus: primed {} of {} active users in {:.1} s ({:.1}/s: one argon2id verification each, with the \
         cache on){}",
        prime.tally.accepts,
        names.len(),
        took.as_secs_f64(),
        prime.run.per_second(),
        if prime.tally.non_accepts() > 0 {
            format!("; NOT primed: {}", prime.tally.describe_non_accepts())
        } else {
            String::new()
        }
    );
    if prime.tally.non_accepts() > 0 {
        println!(
            "stratus: WARNING: {} active users are not in the credential cache; the warm run mixes cold \
             verifications in",
            prime.tally.non_accepts()
        );
    }
    if took + plan.limit >= CACHE_TTL {
        println!(
            "stratus: WARNING: priming plus the run ({:.0} s) exceed the credential cache lifetime ({} s); \
             the first primed users expire during the warm run",
            (took + plan.limit).as_secs_f64(),
            CACHE_TTL.as_secs()
        );
    }
    load::run(
        WARM,
        &target,
        plan.shape,
        names,
        plan.count,
        plan.limit,
        Some(server.pid()),
    )
}

/// A throughput ratio with about three significant digits, down to the 1/1000s that cold runs reach.
fn ratio(x: f64) -> String {
    if x >= 0.1 {
        format!("{x:.2}x")
    } else if x >= 0.01 {
        format!("{x:.3}x")
    } else {
        format!("{x:.4}x")
    }
}

fn cpu(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn table(plan: &Plan, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nradius, {} users, {} active, window {} over {} sockets, PAP with Message-Authenticator",
        plan.users, plan.active, plan.shape.window, plan.shape.sockets
    );
    let _ = writeln!(
        out,
        "{:<26} {:>8} {:>6} {:>10} {:>10} {:>10} {:>14}  {:<5} {:>10} {:>10} {:>10}",
        "run",
        "sent",
        "secs",
        "accepts/s",
        "p50",
        "p99",
        "non-accepts",
        "stop",
        "server cpu",
        "loader cpu",
        "other cpu"
    );
    for row in rows {
        let Ok(o) = &row.outcome else {
            let _ = writeln!(out, "{:<26} {:>8}  not measured", row.label, "-");
            continue;
        };
        let r = &o.run;
        let pct = |p| r.percentile(p).map_or("-".into(), format_duration);
        let t = &o.tally;
        let non = if t.non_accepts() == 0 {
            "0".to_string()
        } else {
            format!(
                "{} ({:.1}%)",
                t.non_accepts(),
                100.0 * t.non_accepts() as f64 / t.sent.max(1) as f64
            )
        };
        let _ = writeln!(
            out,
            "{:<26} {:>8} {:>6.2} {:>10.1} {:>10} {:>10} {:>14}  {:<5} {:>10} {:>10} {:>10}",
            row.label,
            t.sent,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            pct(50.0),
            pct(99.0),
            non,
            match r.stop {
                Stop::Count => "count",
                Stop::Time => "time",
            },
            cpu(o.server_cpu),
            cpu(o.loader_cpu),
            cpu(o.other_cpu()),
        );
    }
    let rate = |label| {
        rows.iter()
            .find(|r| r.label == label)
            .and_then(|r| r.outcome.as_ref().ok())
            .map(|o| o.run.per_second())
            .filter(|&v| v > 0.0)
    };
    if let (Some(pg), Some(redb)) = (rate(PG_WARM), rate(WARM)) {
        let _ = writeln!(out, "{PG_WARM} / {WARM}: {}", ratio(pg / redb));
    }
    if let Some(fr) = rate(FREERADIUS) {
        for label in [WARM, PG_WARM, COLD] {
            if let Some(s) = rate(label) {
                let _ = writeln!(out, "{label} / freeradius: {}", ratio(s / fr));
            }
        }
    }
    for row in rows {
        match &row.outcome {
            Err(e) => {
                let first_line = e.lines().next().unwrap_or_default();
                let _ = writeln!(out, "{}: {first_line}", row.label);
            }
            Ok(o) => {
                let t = &o.tally;
                let mut notes = Vec::new();
                if t.non_accepts() > 0 {
                    notes.push(format!("not accepted: {}", t.describe_non_accepts()));
                }
                if let Some(m) = &t.reject_message {
                    notes.push(format!("a reject said {m:?}"));
                }
                if t.late > 0 {
                    notes.push(format!(
                        "{} replies after their request was counted lost",
                        t.late
                    ));
                }
                if t.recv_errors > 0 {
                    notes.push(format!(
                        "{} receive errors (nothing listening?)",
                        t.recv_errors
                    ));
                }
                let replies = t.accepts + t.rejects + t.challenges;
                if t.without_message_authenticator > 0 {
                    notes.push(format!(
                        "{} of {replies} replies without Message-Authenticator",
                        t.without_message_authenticator
                    ));
                } else if t.message_authenticator_not_first > 0 {
                    notes.push(format!(
                        "{} of {replies} replies with Message-Authenticator not first",
                        t.message_authenticator_not_first
                    ));
                } else if replies > 0 {
                    notes.push("every reply had Message-Authenticator first".into());
                }
                let _ = writeln!(out, "{}: {}", row.label, notes.join("; "));
                let share = t.non_accepts() as f64 / t.sent.max(1) as f64;
                if share > NON_ACCEPT_ALARM {
                    let _ = writeln!(
                        out,
                        "!!! {}: {:.1}% of {} requests were NOT accepted ({}): its figures do not measure \
                         successful authentications",
                        row.label,
                        100.0 * share,
                        t.sent,
                        t.describe_non_accepts()
                    );
                }
            }
        }
    }
    out
}
