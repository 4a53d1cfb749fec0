//! # stratus-benches
//!
//! Load generators and benchmarks for Stratus, run by hand (`cargo run --release -p stratus-benches -- auth`).
//! They are never run as tests: `cargo test` builds this crate but runs nothing, and nothing here asserts a figure.
//!
//! This crate owns only what it measures with: temporary data directories, synthetic users and the load loops.
//! It must not touch a real data directory, a real master key or any listener's configuration, must not reach
//! into core internals (only the public [`core_directory`] API, as a listener would), and every load loop must
//! be bounded by both a count and a time limit so a run can never hang a machine.
//!
//! `auth` measures, in one run and against a fresh temporary directory with the default argon2id parameters:
//! the authentication function with the credential cache off (cold) and on (warm), with 1 and 2 concurrent
//! tasks, and snapshot look-ups by username over a large population of users.
//!
//! `ldap` measures the real `stratus` binary's LDAP listener against OpenLDAP slapd on the same machine, with the
//! same users and the same load (see [`ldap`]).
//!
//! `radius` measures the real `stratus` binary's RADIUS listener (credential cache on and off) against
//! FreeRADIUS on the same machine, with the same users and the same UDP load (see [`radius`]).
//!
//! `eap` measures complete PEAP-MSCHAPv2 logins per second against the real `stratus` binary and FreeRADIUS on
//! the same machine, with the same users and certificate, driven by a native supplicant and by eapol_test (see
//! [`eap`]).
//!
//! `scim` measures the real `stratus` binary's SCIM 2.0 service provider with a large directory behind it:
//! `GET /Users` filtered by `userName eq` (indexed) and by `emails.value eq` (a scan), and `POST /Users` (see
//! [`scim`]).
//!
//! `console` measures the admin console's pages (users list searched and unfiltered, a user's page, the
//! dashboard) over a large directory: latency and the server's CPU per page (see [`console`]).
//!
//! `memory` reads the resident memory of the real `stratus` binary before and after importing users with
//! passwords and after parallel binds, beside slapd with the same users (see [`ldap::memory`]).
//!
//! `scale` holds a million users in the real `stratus` binary (made with a fast, test-only hash cost) and reads
//! its resident memory, its start-up time on that store and its LDAP search latency (see [`ldap::scale`]).
//!
//! `saml` measures the SAML IdP: the raw RSA-2048 signing rate of the machine (the ceiling), assertion signings
//! in process, and complete SP-initiated logins over HTTPS against the real `stratus` binary, with and without
//! an existing IdP session (see [`saml`]).

mod cluster;
mod console;
mod eap;
mod ldap;
mod postgres;
mod radius;
mod saml;
mod scim;
mod writes;

use clap::{Args, Parser, Subcommand};
use core_directory::crypto::MasterKey;
use core_directory::directory::BootstrapRequest;
use core_directory::model::Resource;
use core_directory::password::HashParams;
use core_directory::store::{RedbStore, Store};
use core_directory::views::NewGroup;
use core_directory::{Actor, AuthOutcome, AuthRequest, Directory, DirectoryConfig, Service};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(
    name = "stratus-bench",
    about = "Stratus load generators and benchmarks (temporary data only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Authentication (cold and warm credential cache) and snapshot look-ups by username.
    Auth(AuthArgs),
    /// LDAP searches and binds: the stratus binary against OpenLDAP slapd, side by side.
    Ldap(ldap::LdapArgs),
    /// RADIUS PAP authentications: the stratus binary (credential cache on and off) against FreeRADIUS.
    Radius(radius::RadiusArgs),
    /// PEAP-MSCHAPv2 logins (EAP over RADIUS): the stratus binary against FreeRADIUS.
    Eap(eap::EapArgs),
    /// SCIM 2.0: GET /Users by userName (indexed) and by e-mail (a scan), and POST /Users, over many users.
    Scim(scim::ScimArgs),
    /// SAML: raw RSA signing rate, assertion signings, and SP-initiated logins with and without an IdP session.
    Saml(saml::SamlArgs),
    /// Admin console pages (users list, user page, dashboard) over many users: latency and server CPU per page.
    Console(console::ConsoleArgs),
    /// Resident memory of the stratus binary before and after a password import and parallel binds, beside slapd.
    Memory(ldap::memory::MemoryArgs),
    /// A million users (fast test-only hash cost): resident memory, start-up time and LDAP search latency.
    Scale(ldap::scale::ScaleArgs),
    /// Two nodes on one PostgreSQL: propagation delay of a write, and write throughput against the embedded store.
    Cluster(cluster::ClusterArgs),
    /// Committed changes per second through the core's write path (group membership changes), 1 and many tasks.
    Writes(writes::WritesArgs),
}

#[derive(Args)]
struct AuthArgs {
    /// Shrink every count (10,000 users, short runs) for a smoke run.
    #[arg(long)]
    quick: bool,
    /// Users imported for the look-up run [default: 100000, or 10000 with --quick].
    #[arg(long)]
    lookup_users: Option<usize>,
    /// Wall-clock limit of each measured run, in seconds [default: 10, or 2 with --quick].
    #[arg(long)]
    time_limit: Option<f64>,
}

/// The bounds of one `auth` invocation.
struct Plan {
    quick: bool,
    /// Users with a password, cycled through by the authentication runs.
    auth_users: usize,
    cold_count: u64,
    warm_count: u64,
    lookup_users: usize,
    lookup_count: u64,
    /// Rows per `import_users_csv` call while populating.
    import_chunk: usize,
    time_limit: Duration,
}

impl Plan {
    fn new(args: &AuthArgs) -> Result<Self, BoxError> {
        let quick = args.quick;
        let secs = args.time_limit.unwrap_or(if quick { 2.0 } else { 10.0 });
        if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
            return Err("--time-limit must be between 0 and 3600 seconds".into());
        }
        let lookup_users = args
            .lookup_users
            .unwrap_or(if quick { 10_000 } else { 100_000 });
        if lookup_users == 0 || lookup_users > 10_000_000 {
            return Err("--lookup-users must be between 1 and 10,000,000".into());
        }
        Ok(Plan {
            quick,
            auth_users: if quick { 4 } else { 16 },
            cold_count: if quick { 20 } else { 200 },
            warm_count: if quick { 20_000 } else { 200_000 },
            lookup_users,
            lookup_count: if quick { 500_000 } else { 5_000_000 },
            import_chunk: 5_000,
            time_limit: Duration::from_secs_f64(secs),
        })
    }
}

/// A username and its password.
struct Credential {
    username: String,
    password: String,
}

/// Why a run stopped.
#[derive(Clone, Copy)]
enum Stop {
    Count,
    Time,
}

/// One measured run.
struct Run {
    name: &'static str,
    tasks: usize,
    done: u64,
    elapsed: Duration,
    stop: Stop,
    /// Per-operation latencies, sorted; empty when not measured per operation.
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }

    /// Nearest-rank percentile of the per-operation latencies.
    fn percentile(&self, p: f64) -> Option<Duration> {
        let n = self.latencies.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Some(self.latencies[rank.clamp(1, n) - 1])
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Auth(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(auth_bench(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench auth: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ldap(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.client_threads.clamp(1, 64))
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(ldap::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench ldap: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Radius(args) => {
            // The load threads are plain OS threads; the runtime only drives the admin API calls.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(radius::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench radius: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Eap(args) => {
            // The supplicants are plain OS threads (or eapol_test processes); the runtime only drives the admin
            // API calls.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(eap::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench eap: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Scim(args) => {
            // The load tasks run on this runtime, next to the server on the same CPUs.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.client_threads.clamp(1, 64))
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(scim::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench scim: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Console(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(console::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench console: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Writes(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(writes::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench writes: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Cluster(args) => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("stratus-bench: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(cluster::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench cluster: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Memory(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(ldap::memory::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench memory: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Scale(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(ldap::scale::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench scale: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Saml(args) => {
            // The browsers run on this runtime, next to the server on the same CPUs; the signing rows on plain
            // OS threads before the server starts.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.client_threads.clamp(1, 64))
                .enable_all()
                .build()
                .expect("build the tokio multi-thread runtime");
            match runtime.block_on(saml::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("stratus-bench saml: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn auth_bench(args: &AuthArgs) -> Result<(), BoxError> {
    let plan = Plan::new(args)?;
    let params = HashParams::default();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "stratus-bench auth{}: argon2id m={} KiB, t={}, p={}; {cpus} CPUs; time limit {:.1} s per run",
        if plan.quick { " --quick" } else { "" },
        params.memory_kib,
        params.iterations,
        params.parallelism,
        plan.time_limit.as_secs_f64(),
    );
    let tmp = tempfile::tempdir()?;
    let credentials: Arc<Vec<Credential>> = Arc::new(
        (0..plan.auth_users)
            .map(|i| Credential {
                username: format!("authuser{i:03}"),
                password: format!("Bench-Passw0rd-{i:03}"),
            })
            .collect(),
    );

    let setup = Instant::now();
    let cold = fixture(&tmp.path().join("cold.redb"), false, &credentials).await?;
    let warm = fixture(&tmp.path().join("warm.redb"), true, &credentials).await?;
    println!(
        "setup: 2 directories with {} password users each in {:.1} s",
        plan.auth_users,
        setup.elapsed().as_secs_f64()
    );

    let mut runs = Vec::new();
    for tasks in [1, 2] {
        runs.push(
            auth_run(
                COLD,
                &cold,
                &credentials,
                tasks,
                plan.cold_count,
                plan.time_limit,
            )
            .await?,
        );
    }

    // One priming login per user, so every warm verification hits the credential cache.
    for c in credentials.iter() {
        authenticate_once(&warm, c).await?;
    }
    warm.flush_events().await;
    for tasks in [1, 2] {
        runs.push(
            auth_run(
                WARM,
                &warm,
                &credentials,
                tasks,
                plan.warm_count,
                plan.time_limit,
            )
            .await?,
        );
    }

    // Conditional access: 100 policies that cover LDAP and match nobody here (each is walked, its group condition
    // met, its source condition not), evaluated alone and then inside the same warm login.
    let user = warm
        .snapshot()
        .user_by_username(&credentials[0].username)
        .cloned()
        .ok_or("the first bench user is missing")?;
    add_policies(&warm, POLICIES).await?;
    runs.push(policy_run(
        &warm,
        &user,
        plan.lookup_count,
        plan.time_limit,
    )?);
    for tasks in [1, 2] {
        runs.push(
            auth_run(
                WARM_POLICIES,
                &warm,
                &credentials,
                tasks,
                plan.warm_count,
                plan.time_limit,
            )
            .await?,
        );
    }

    let (names, population) = populate(&warm, plan.lookup_users, plan.import_chunk).await?;
    warm.flush_events().await;
    runs.push(lookup_run(
        &warm,
        &names,
        plan.lookup_count,
        plan.time_limit,
    )?);

    println!("{}", table(&runs));
    println!(
        "population: {} users imported via CSV (no passwords) in {:.2} s ({:.0} users/s)",
        names.len(),
        population.as_secs_f64(),
        names.len() as f64 / population.as_secs_f64().max(f64::EPSILON),
    );
    for tasks in [1, 2] {
        let rate = |name: &str| {
            runs.iter()
                .find(|r| r.tasks == tasks && r.name == name)
                .map_or(0.0, Run::per_second)
        };
        let (c, w, p) = (rate(COLD), rate(WARM), rate(WARM_POLICIES));
        if c > 0.0 {
            println!(
                "warm/cold ratio, {tasks} task{}: {:.0}x",
                if tasks == 1 { "" } else { "s" },
                w / c
            );
        }
        if p > 0.0 {
            println!(
                "warm with {POLICIES} policies / warm without, {tasks} task{}: {:.2}",
                if tasks == 1 { "" } else { "s" },
                p / w
            );
        }
    }
    let mean = |name: &str| {
        runs.iter()
            .find(|r| r.name == name && r.tasks == 1)
            .map(|r| r.elapsed.as_secs_f64() / r.done.max(1) as f64)
    };
    if let (Some(eval), Some(warm)) = (mean(POLICY_EVAL), mean(WARM)) {
        println!(
            "{POLICIES} policies evaluated: {} per login, {:.1}% of a cached login ({})",
            format_duration(Duration::from_secs_f64(eval)),
            100.0 * eval / warm,
            format_duration(Duration::from_secs_f64(warm)),
        );
    }
    Ok(())
}

const COLD: &str = "auth, cold (no cache)";
const WARM: &str = "auth, warm (cached)";
const WARM_POLICIES: &str = "auth, warm, 100 policies";
const POLICY_EVAL: &str = "100 policies evaluated";
const POLICIES: usize = 100;

/// `count` enforced deny policies on LDAP for the bench group, each naming an IP list of ten documentation
/// networks none of the bench logins comes from.
async fn add_policies(dir: &Directory, count: usize) -> Result<(), BoxError> {
    use core_directory::conditional::PolicyAction;
    use core_directory::directory::{AccessPolicyInput, IpListInput};
    let actor = Actor::system();
    let list = dir
        .put_ip_list(
            &actor,
            None,
            IpListInput {
                name: "bench networks".into(),
                description: None,
                networks: (0..10).map(|i| format!("198.51.{i}.0/24")).collect(),
            },
        )
        .await?;
    let group = dir
        .snapshot()
        .groups
        .values()
        .find(|g| g.name == "bench-ldap")
        .map(|g| g.id.clone())
        .ok_or("the bench group is missing")?;
    for i in 0..count {
        dir.put_access_policy(
            &actor,
            None,
            AccessPolicyInput {
                name: format!("bench policy {i:03}"),
                description: None,
                enabled: true,
                report_only: false,
                priority: None,
                target: "ldap".into(),
                groups: vec![group.clone()],
                excluded_groups: Vec::new(),
                source_in: vec![list.list.id.clone()],
                source_not_in: Vec::new(),
                time: None,
                mfa_enrolled: None,
                action: PolicyAction::Deny,
            },
        )
        .await?;
    }
    dir.flush_events().await;
    Ok(())
}

/// `conditional::evaluate` alone, as the login path calls it (no trace), until `max` evaluations or `limit` has passed. Every evaluation must come back with no policy matched.
fn policy_run(
    dir: &Directory,
    user: &core_directory::model::User,
    max: u64,
    limit: Duration,
) -> Result<Run, BoxError> {
    use core_directory::conditional::{evaluate, Attempt};
    let resource = Resource::Ldap;
    let source: std::net::IpAddr = std::net::Ipv4Addr::new(10, 0, 0, 1).into();
    // The login path has its snapshot and its time already: only the evaluation is measured.
    let snap = dir.snapshot();
    let at = chrono::Utc::now();
    let mut done = 0u64;
    let start = Instant::now();
    while done < max {
        let v = evaluate(
            black_box(&snap),
            black_box(user),
            Attempt {
                resource: Some(&resource),
                source: Some(black_box(source)),
                at,
            },
            None,
        );
        if black_box(v).decided.is_some() {
            return Err("a bench policy matched".into());
        }
        done += 1;
        if done.is_multiple_of(256) && start.elapsed() >= limit {
            break;
        }
    }
    Ok(Run {
        name: POLICY_EVAL,
        tasks: 1,
        done,
        elapsed: start.elapsed(),
        stop: if done >= max { Stop::Count } else { Stop::Time },
        latencies: Vec::new(),
    })
}

/// A fresh directory at `path`: initialised, one group bound to LDAP, and the given users with passwords as
/// members of it.
async fn fixture(
    path: &Path,
    credential_cache: bool,
    credentials: &[Credential],
) -> Result<Arc<Directory>, BoxError> {
    let store: Arc<dyn Store> = Arc::new(RedbStore::open(path)?);
    let config = DirectoryConfig {
        credential_cache,
        ..DirectoryConfig::default()
    };
    let dir = Directory::open(store, MasterKey::ephemeral(), config)?;
    dir.initialise(BootstrapRequest {
        org_name: "Stratus bench".into(),
        ..BootstrapRequest::default()
    })
    .await?;
    let actor = Actor::system();
    let group = dir
        .create_group(
            &actor,
            NewGroup {
                name: "bench-ldap".into(),
                ..NewGroup::default()
            },
        )
        .await?;
    let group_id = group.group.id.clone();
    dir.bind_group(&actor, &group_id, Resource::Ldap).await?;

    let mut csv = String::from("firstname,lastname,username,email,password\n");
    for c in credentials {
        writeln!(
            csv,
            "Bench,Auth,{},{}@bench.example,{}",
            c.username, c.username, c.password
        )?;
    }
    let report = dir.import_users_csv(&actor, csv.as_bytes()).await?;
    all_imported(&report)?;
    for c in credentials {
        let user = dir
            .snapshot()
            .user_by_username(&c.username)
            .map(|u| u.id.clone())
            .ok_or_else(|| format!("imported user {} is missing", c.username))?;
        dir.add_member(&actor, &group_id, &user).await?;
    }
    dir.flush_events().await;
    Ok(dir)
}

/// An error naming the first row that failed, when a benchmark's own import did not import every row.
fn all_imported(report: &core_directory::import::ImportReport) -> Result<(), BoxError> {
    if report.failed == 0 {
        return Ok(());
    }
    let why = report
        .rows
        .iter()
        .find(|r| r.status != "imported")
        .map_or("unknown", |r| r.message.as_str());
    Err(format!("{} users failed to import: {why}", report.failed).into())
}

fn ldap_request(c: &Credential) -> AuthRequest {
    AuthRequest {
        username: c.username.clone(),
        credential: core_directory::Credential::Password(c.password.clone()),
        otp: None,
        service: Service::Ldap,
        resource: Some(Resource::Ldap),
        client_ip: None,
        session: None,
        station: None,
    }
}

/// Authenticate once; anything but Allow means the fixture is wrong and the figures would be meaningless.
async fn authenticate_once(dir: &Directory, c: &Credential) -> Result<(), BoxError> {
    match dir.authenticate(ldap_request(c)).await? {
        AuthOutcome::Allow(_) => Ok(()),
        AuthOutcome::NeedMfa(_) => Err(format!("{} unexpectedly needs MFA", c.username).into()),
        AuthOutcome::Deny(reason) => {
            Err(format!("{} was denied: {}", c.username, reason.describe()).into())
        }
    }
}

/// `tasks` concurrent tasks authenticating round-robin over `credentials` until `max` attempts were issued or
/// `limit` has passed, whichever comes first.
async fn auth_run(
    name: &'static str,
    dir: &Arc<Directory>,
    credentials: &Arc<Vec<Credential>>,
    tasks: usize,
    max: u64,
    limit: Duration,
) -> Result<Run, BoxError> {
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (dir, credentials, issued) = (
            Arc::clone(dir),
            Arc::clone(credentials),
            Arc::clone(&issued),
        );
        set.spawn(async move {
            let mut latencies = Vec::new();
            let mut next = t;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                let c = &credentials[next % credentials.len()];
                next += tasks;
                let t0 = Instant::now();
                authenticate_once(&dir, c).await?;
                latencies.push(t0.elapsed());
            }
            Ok::<_, BoxError>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = set.join_next().await {
        latencies.extend(joined??);
    }
    let elapsed = start.elapsed();
    // Let the background event writer drain before the next run, outside the measurement.
    dir.flush_events().await;
    latencies.sort_unstable();
    let done = latencies.len() as u64;
    Ok(Run {
        name,
        tasks,
        done,
        elapsed,
        stop: if done >= max { Stop::Count } else { Stop::Time },
        latencies,
    })
}

/// Import `count` users without passwords (cheap: no argon2id) in chunks; returns their usernames and the time
/// the import took.
async fn populate(
    dir: &Arc<Directory>,
    count: usize,
    chunk: usize,
) -> Result<(Vec<String>, Duration), BoxError> {
    let names: Vec<String> = (0..count).map(|i| format!("lookup{i:07}")).collect();
    let actor = Actor::system();
    let start = Instant::now();
    for part in names.chunks(chunk.max(1)) {
        let mut csv = String::from("firstname,lastname,username,email,password\n");
        for name in part {
            writeln!(csv, "Bench,Lookup,{name},{name}@bench.example,")?;
        }
        let report = dir.import_users_csv(&actor, csv.as_bytes()).await?;
        if report.failed > 0 || report.imported != part.len() {
            return Err(format!(
                "population import: {} of {} rows failed",
                report.failed,
                part.len()
            )
            .into());
        }
    }
    Ok((names, start.elapsed()))
}

/// Single-threaded look-ups by random username, each on a freshly loaded snapshot as a listener request would,
/// until `max` look-ups or `limit` has passed.
fn lookup_run(
    dir: &Directory,
    names: &[String],
    max: u64,
    limit: Duration,
) -> Result<Run, BoxError> {
    let mut rng = XorShift64(0x9E37_79B9_7F4A_7C15);
    let len = names.len() as u64;
    let (mut done, mut hits) = (0u64, 0u64);
    let start = Instant::now();
    while done < max {
        let name = &names[(rng.next() % len) as usize];
        let snap = dir.snapshot();
        if black_box(snap.user_by_username(black_box(name))).is_some() {
            hits += 1;
        }
        done += 1;
        // Reading the clock costs about as much as a look-up; check it every 1,024 look-ups.
        if done % 1024 == 0 && start.elapsed() >= limit {
            break;
        }
    }
    let elapsed = start.elapsed();
    if hits != done {
        return Err(format!("{} of {done} look-ups missed", done - hits).into());
    }
    Ok(Run {
        name: "snapshot look-up by username",
        tasks: 1,
        done,
        elapsed,
        stop: if done >= max { Stop::Count } else { Stop::Time },
        latencies: Vec::new(),
    })
}

/// A small deterministic PRNG, so every run looks up the same sequence of users.
struct XorShift64(u64);

impl XorShift64 {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn table(runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<30} {:>5} {:>9} {:>8} {:>12} {:>10} {:>10} {:>10}  stop",
        "run", "tasks", "count", "secs", "ops/s", "mean", "p50", "p99"
    );
    for r in runs {
        let mean = if r.done > 0 {
            format_duration(r.elapsed.mul_f64(r.tasks as f64 / r.done as f64))
        } else {
            "-".into()
        };
        let pct = |p| r.percentile(p).map_or("-".into(), format_duration);
        let _ = writeln!(
            out,
            "{:<30} {:>5} {:>9} {:>8.2} {:>12.1} {:>10} {:>10} {:>10}  {}",
            r.name,
            r.tasks,
            r.done,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            mean,
            pct(50.0),
            pct(99.0),
            match r.stop {
                Stop::Count => "count",
                Stop::Time => "time",
            }
        );
    }
    out
}
