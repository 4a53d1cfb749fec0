//! `scim`: the SCIM 2.0 service provider of the real `stratus` binary (`/scim/v2` on its HTTPS listener), with
//! a large directory behind it.
//!
//! The binary is started in a temporary data directory (HTTPS on an ephemeral loopback port, LDAP and RADIUS
//! off, the per-token SCIM rate limit lifted), `--users` users are imported through the admin API's CSV import
//! without passwords, and a SCIM token is created. Then `--concurrency` tasks measure, each run bounded by
//! `--count` requests and `--time-limit` seconds:
//!
//! 1. `GET /Users?filter=userName eq "<random user>"`, the look-up every IdP makes before it provisions a user,
//!    which Stratus answers from its username index;
//! 2. `GET /Users?filter=emails[type eq "work"].value eq "<random user's address>"`, the form Entra sends, answered
//!    from the e-mail index;
//! 3. `GET /Users?filter=userName ew "<random user>"`, which no index serves: every user is turned into SCIM JSON
//!    and matched (fewer tasks, `--scan-count` requests at most);
//! 4. `POST /Users` with a new user without a password, each one a committed write.
//!
//! The table gives answers per second, p50 and p99 of the checked answers, every answer that was not what the
//! operation must return, and the CPU time of the server and of the load generator.

pub(crate) mod load;

use crate::ldap::dataset::Dataset;
use crate::radius::stratus;
use crate::{format_duration, BoxError, Stop};
use clap::Args;
use load::{Outcome, Target, Work};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The per-token rate limit the server is started with, requests per second and burst: far above anything
/// one machine can send, so the limiter never answers 429 and the figures are the service provider's own.
const RATE: &str = "1e9";
/// Rows per `POST /api/v1/import/users`: rows without a password cost no argon2id, so a request can be large.
const IMPORT_CHUNK: usize = 5_000;
/// Resources per page of the unfiltered `GET /Users` timed after the runs.
const PAGE: u64 = 100;
/// Longest one SCIM request may take before it counts as an error; a scan over many users is slow.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Above this share of the machine's CPU time going to neither the server nor the load generator, a row is
/// flagged: something else ran. Loopback networking accounted as softirq shows up there too, below a tenth.
const OTHER_ALARM: f64 = 0.2;

const BY_NAME: &str = "GET userName eq (index)";
const CREATE: &str = "POST /Users";
const BY_EMAIL: &str = "GET emails[type eq work].value eq (index)";
const SCAN: &str = "GET userName ew (scan)";

#[derive(Args)]
pub struct ScimArgs {
    /// Smoke run: 10,000 users, 3 s runs.
    #[arg(long)]
    quick: bool,
    /// Users imported before measuring [default: 100000, or 10000 with --quick].
    #[arg(long)]
    users: Option<usize>,
    /// Concurrent load tasks of the userName and POST runs, each with one request at a time.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Most requests in the userName and POST runs [default: 1000000, or 100000 with --quick].
    #[arg(long)]
    count: Option<u64>,
    /// Wall-clock limit of each run, in seconds [default: 20, or 3 with --quick].
    #[arg(long)]
    time_limit: Option<f64>,
    /// Most requests in the userName ew (scan) run [default: 200, or 50 with --quick].
    #[arg(long)]
    scan_count: Option<u64>,
    /// Concurrent load tasks of the userName ew (scan) run.
    #[arg(long, default_value_t = 2)]
    scan_concurrency: usize,
    /// One HTTP/2 connection shared by every task, instead of one HTTP/1.1 keep-alive connection per task.
    #[arg(long)]
    http2: bool,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// The stratus binary [default: `stratus` next to this executable, else target/release/stratus].
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
    /// Stores to measure the server on, in this order: its embedded store and a throwaway PostgreSQL.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [StoreKind::Redb])]
    stores: Vec<StoreKind>,
}

/// Where the measured server keeps its directory.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Redb,
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Redb => "its embedded store (redb)",
            StoreKind::Postgres => "PostgreSQL",
        }
    }
}

/// The bounds of one `scim` invocation.
struct Plan {
    quick: bool,
    users: usize,
    tasks: usize,
    count: u64,
    scan_tasks: usize,
    scan_count: u64,
    limit: Duration,
    http2: bool,
}

impl Plan {
    fn new(args: &ScimArgs) -> Result<Self, BoxError> {
        let quick = args.quick;
        let users = args.users.unwrap_or(if quick { 10_000 } else { 100_000 });
        if users == 0 || users > 10_000_000 {
            return Err("--users must be between 1 and 10,000,000".into());
        }
        if args.concurrency == 0 || args.concurrency > 1024 {
            return Err("--concurrency must be between 1 and 1024".into());
        }
        if args.scan_concurrency == 0 || args.scan_concurrency > 64 {
            return Err("--scan-concurrency must be between 1 and 64".into());
        }
        let count = args
            .count
            .unwrap_or(if quick { 100_000 } else { 1_000_000 });
        if count == 0 || count > 100_000_000 {
            return Err("--count must be between 1 and 100,000,000".into());
        }
        let scan_count = args.scan_count.unwrap_or(if quick { 50 } else { 200 });
        if scan_count == 0 || scan_count > 1_000_000 {
            return Err("--scan-count must be between 1 and 1,000,000".into());
        }
        let secs = args.time_limit.unwrap_or(if quick { 3.0 } else { 20.0 });
        if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
            return Err("--time-limit must be between 0 and 3600 seconds".into());
        }
        Ok(Plan {
            quick,
            users,
            tasks: args.concurrency,
            count,
            scan_tasks: args.scan_concurrency,
            scan_count,
            limit: Duration::from_secs_f64(secs),
            http2: args.http2,
        })
    }
}

/// What the set-up found, for the table's heading.
struct Setup {
    imported: Duration,
    version: String,
    /// How long one scan took before the clock (the check).
    first_scan: Duration,
    /// After the POST run: the users in the directory, and how long the first page of an unfiltered
    /// `GET /Users` took.
    page: Option<(u64, Duration)>,
}

pub async fn run(args: &ScimArgs) -> Result<(), BoxError> {
    let plan = Plan::new(args)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bin = args
        .stratus_bin
        .clone()
        .unwrap_or_else(stratus::default_bin);
    println!(
        "stratus-bench scim{}: {cpus} CPUs, {} client threads; {} users; {} tasks ({} for the scan); each run at \
         most {} requests ({} for the scan) and {} s; {}",
        if plan.quick { " --quick" } else { "" },
        args.client_threads.clamp(1, 64),
        plan.users,
        plan.tasks,
        plan.scan_tasks,
        plan.count,
        plan.scan_count,
        plan.limit.as_secs_f64(),
        if plan.http2 {
            "one HTTP/2 connection shared by all tasks"
        } else {
            "HTTP/1.1, one keep-alive connection per task"
        },
    );
    println!(
        "stratus: {}; STRATUS_SCIM_RATE_PER_SECOND={RATE} and STRATUS_SCIM_RATE_BURST={RATE}: the per-token rate \
         limit (by default 100/s, burst 200) is lifted so that it does not cap the figures",
        bin.display()
    );
    if args.stores.is_empty() {
        return Err("--stores names no store".into());
    }
    let mut measured = Vec::new();
    for &store in &args.stores {
        println!("\n== stratus on {} ==", store.name());
        let rows = measure_on(&bin, &plan, store).await?;
        measured.push((store, rows));
    }
    let rows_of = |kind| measured.iter().find(|(s, _)| *s == kind).map(|(_, r)| r);
    if let (Some(redb), Some(pg)) = (rows_of(StoreKind::Redb), rows_of(StoreKind::Postgres)) {
        println!("\nPostgreSQL / embedded store, answers per second:");
        for (a, b) in redb.iter().zip(pg) {
            let r = b.run.per_second() / a.run.per_second().max(f64::MIN_POSITIVE);
            println!("  {:<28} {r:.2}x", a.run.name);
        }
    }
    Ok(())
}

/// One server on one store: start, measure, print the table; the rows.
async fn measure_on(bin: &Path, plan: &Plan, store: StoreKind) -> Result<Vec<Outcome>, BoxError> {
    let data = stratus::Data::with_prefix("stratus-bench-scim")?;
    println!(
        "stratus: data directory {} ({})",
        data.certs_dir()
            .parent()
            .unwrap_or(Path::new("?"))
            .display(),
        filesystem(&data.certs_dir()).unwrap_or_else(|| "filesystem unknown".into())
    );
    let pg = match store {
        StoreKind::Postgres => Some(tokio::task::block_in_place(
            crate::postgres::Postgres::start,
        )?),
        StoreKind::Redb => None,
    };
    let url = pg.as_ref().map(crate::postgres::Postgres::url);
    let mut env = vec![
        ("STRATUS_SCIM_RATE_PER_SECOND", RATE),
        ("STRATUS_SCIM_RATE_BURST", RATE),
    ];
    if let Some(url) = &url {
        env.extend(crate::postgres::node_env(url));
    }
    let server = tokio::task::block_in_place(|| {
        stratus::Server::start_with(
            bin,
            &data,
            &stratus::Options {
                credential_cache: true,
                radius: false,
                env: &env,
                log_name: "stratus-scim.log",
            },
        )
    })?;
    let result = measure(&server, &data, plan).await;
    let result =
        result.map_err(|e| format!("{e}\nstratus log (last lines):\n{}", server.log_tail()));
    let log = server.log_path();
    tokio::task::block_in_place(|| drop(server));
    drop(pg);
    println!("stratus log: {}", stratus::warnings(&log));
    let (setup, rows) = result?;
    println!("{}", table(plan, &setup, &rows));
    Ok(rows)
}

/// Import, token, check, then the three runs; the rows in table order.
async fn measure(
    server: &stratus::Server,
    data: &stratus::Data,
    plan: &Plan,
) -> Result<(Setup, Vec<Outcome>), BoxError> {
    let set = Dataset { users: plan.users };
    println!(
        "stratus: importing {} users by CSV without passwords ({IMPORT_CHUNK} rows per request; staged users, \
         no argon2id)",
        plan.users
    );
    let t0 = Instant::now();
    server.import(set, t0, None, IMPORT_CHUNK).await?;
    let imported = t0.elapsed();
    println!(
        "stratus: {} users imported in {:.1} s ({:.0} users/s)",
        plan.users,
        imported.as_secs_f64(),
        plan.users as f64 / imported.as_secs_f64().max(f64::EPSILON)
    );

    let token = server
        .call(Method::POST, "/scim-tokens", Some(json!({"name": "bench"})))
        .await?;
    let token = token
        .get("token")
        .and_then(Value::as_str)
        .ok_or("POST /scim-tokens answered without a token")?;
    let target = Arc::new(Target {
        base: format!("{}/scim/v2", server.api_url()),
        authorization: format!("Bearer {token}"),
        users: plan.users,
    });
    let clients = clients(data, plan)?;
    let (version, first_scan) = check(&clients, &target).await?;

    let pid = server.pid();
    println!("scim: measuring {BY_NAME}");
    let by_name = load::run(
        BY_NAME,
        &target,
        &clients,
        Work::ByUserName,
        plan.tasks,
        plan.count,
        plan.limit,
        pid,
    )
    .await?;
    println!("scim: measuring {BY_EMAIL}");
    let by_email = load::run(
        BY_EMAIL,
        &target,
        &clients,
        Work::ByEmail,
        plan.tasks,
        plan.count,
        plan.limit,
        pid,
    )
    .await?;
    // Before the POST run, so that it scans exactly the imported users.
    println!("scim: measuring {SCAN}");
    let scan = load::run(
        SCAN,
        &target,
        &clients,
        Work::Scan,
        plan.scan_tasks,
        plan.scan_count,
        plan.limit,
        pid,
    )
    .await?;
    println!("scim: measuring {CREATE}");
    let create = load::run(
        CREATE,
        &target,
        &clients,
        Work::Create { tag: "post" },
        plan.tasks,
        plan.count,
        plan.limit,
        pid,
    )
    .await?;
    let page = first_page(&clients[0], &target).await;
    Ok((
        Setup {
            imported,
            version,
            first_scan,
            page,
        },
        vec![by_name, by_email, create, scan],
    ))
}

/// The load generator's HTTP clients, trusting only the data directory's development CA: one per task with
/// HTTP/1.1 (so one keep-alive connection each), or one with HTTP/2.
fn clients(data: &stratus::Data, plan: &Plan) -> Result<Vec<reqwest::Client>, BoxError> {
    let ca_path = data.certs_dir().join("ca.pem");
    let ca = std::fs::read(&ca_path).map_err(|e| format!("dev CA {}: {e}", ca_path.display()))?;
    let ca = reqwest::Certificate::from_pem(&ca)?;
    let build = || -> Result<reqwest::Client, BoxError> {
        let b = reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .timeout(REQUEST_TIMEOUT);
        let b = if plan.http2 { b } else { b.http1_only() };
        Ok(b.build()?)
    };
    let n = if plan.http2 {
        1
    } else {
        plan.tasks.max(plan.scan_tasks)
    };
    (0..n).map(|_| build()).collect()
}

/// Before the clock: every client's connection is opened (`GET /ServiceProviderConfig`), a request without
/// the token is refused, the first and last users are found by userName, an unknown one is not, the last one
/// is found by address (the index) and by a filter no index serves (one scan, timed), and one user is created and found. Returns the HTTP version the
/// server answered with and the duration of the scan.
async fn check(
    clients: &[reqwest::Client],
    target: &Target,
) -> Result<(String, Duration), BoxError> {
    let fail = |what: &str, f: load::Failure| -> BoxError { format!("scim: {what}: {f}").into() };
    let mut versions = BTreeSet::new();
    for c in clients {
        let url = format!("{}/ServiceProviderConfig", target.base);
        let a = load::send(c, target, &url, None)
            .await
            .map_err(|f| fail("GET /ServiceProviderConfig", f))?;
        versions.insert(format!("{:?}", a.version));
        load::expect(a, StatusCode::OK).map_err(|f| fail("GET /ServiceProviderConfig", f))?;
    }
    let client = &clients[0];
    let unauthenticated = client
        .get(format!("{}/Users?count=1", target.base))
        .send()
        .await?
        .status();
    if unauthenticated != StatusCode::UNAUTHORIZED {
        return Err(format!("scim: GET /Users without a token answered {unauthenticated}").into());
    }

    let by_name = |name: &str| load::filter_url(target, &format!("userName eq \"{name}\""));
    let get = |url: String| async move {
        load::expect(
            load::send(client, target, &url, None).await?,
            StatusCode::OK,
        )
    };
    let first = Dataset::username(0);
    let list = get(by_name(&first))
        .await
        .map_err(|f| fail(&format!("userName eq {first}"), f))?;
    let user = load::only_user(&list, &first, None)
        .map_err(|f| fail(&format!("userName eq {first}"), f))?;
    let keys: Vec<&str> = user
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    println!(
        "scim: {} answers {:?} on {} connection{}; userName eq {first}: 1 user, {} octets, attributes {}",
        target.base,
        versions,
        clients.len(),
        if clients.len() == 1 { "" } else { "s" },
        list.to_string().len(),
        keys.join(", ")
    );
    let last = Dataset::username(target.users - 1);
    let list = get(by_name(&last))
        .await
        .map_err(|f| fail(&format!("userName eq {last}"), f))?;
    load::only_user(&list, &last, None).map_err(|f| fail(&format!("userName eq {last}"), f))?;
    let list = get(by_name("bench-nobody"))
        .await
        .map_err(|f| fail("userName eq bench-nobody", f))?;
    if list.get("totalResults").and_then(Value::as_u64) != Some(0) {
        return Err(format!("scim: userName eq bench-nobody found something: {list}").into());
    }

    let mail = Dataset::email(target.users - 1);
    let list = get(load::filter_url(
        target,
        &format!("emails.value eq \"{mail}\""),
    ))
    .await
    .map_err(|f| fail(&format!("emails.value eq {mail}"), f))?;
    load::only_user(&list, &last, Some(&mail))
        .map_err(|f| fail(&format!("emails.value eq {mail}"), f))?;
    let t0 = Instant::now();
    let list = get(load::filter_url(target, &format!("userName ew \"{last}\"")))
        .await
        .map_err(|f| fail(&format!("userName ew {last}"), f))?;
    let first_scan = t0.elapsed();
    load::only_user(&list, &last, None).map_err(|f| fail(&format!("userName ew {last}"), f))?;

    let name = "bench-check-00000000";
    let body = load::new_user(name, 0);
    let a = load::send(
        client,
        target,
        &format!("{}/Users", target.base),
        Some(&body),
    )
    .await
    .map_err(|f| fail("POST /Users", f))?;
    let created = load::expect(a, StatusCode::CREATED).map_err(|f| fail("POST /Users", f))?;
    let list = get(by_name(name))
        .await
        .map_err(|f| fail(&format!("userName eq {name}"), f))?;
    load::only_user(&list, name, None).map_err(|f| fail(&format!("userName eq {name}"), f))?;
    println!(
        "scim: userName eq {last} found; an unknown userName finds nothing; emails.value eq {mail} found; \
         userName ew {last} (a scan) found in {}; POST /Users created {name} (active: {}) and it is found",
        format_duration(first_scan),
        created.get("active").unwrap_or(&Value::Null)
    );
    let version = versions.into_iter().collect::<Vec<_>>().join(", ");
    Ok((version, first_scan))
}

/// The first page of an unfiltered `GET /Users?startIndex=1&count=100`, as a full synchronisation reads them:
/// `totalResults` (every user in the directory) and how long the page took; `None` unless it is a full page.
async fn first_page(client: &reqwest::Client, target: &Target) -> Option<(u64, Duration)> {
    let url = format!("{}/Users?startIndex=1&count={PAGE}", target.base);
    let t0 = Instant::now();
    let a = load::send(client, target, &url, None).await.ok()?;
    let took = t0.elapsed();
    let list = load::expect(a, StatusCode::OK).ok()?;
    let total = list.get("totalResults")?.as_u64()?;
    let items = list.get("Resources")?.as_array()?.len() as u64;
    (items == total.min(PAGE)).then_some((total, took))
}

/// `ext4 on /dev/vda`: the filesystem holding `path` (which need not exist yet), from `/proc/mounts` (the
/// longest mount point that is a prefix of it); what a commit's fsync costs depends on it.
fn filesystem(path: &Path) -> Option<String> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let path = std::fs::canonicalize(existing).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, *f.get(1)?, *f.get(2)?))
        })
        .filter(|(_, point, _)| path.starts_with(point))
        .max_by_key(|(_, point, _)| point.len())
        .map(|(dev, _, fs)| format!("{fs} on {dev}"))
}

fn cpu(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn table(plan: &Plan, setup: &Setup, rows: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nscim, {} users imported without passwords, {}, SCIM rate limit lifted ({RATE}/s)",
        plan.users, setup.version
    );
    let _ = writeln!(
        out,
        "{:<27} {:>5} {:>8} {:>6} {:>9} {:>10} {:>10} {:>14}  {:<5} {:>10} {:>9} {:>10} {:>9}",
        "run",
        "tasks",
        "requests",
        "secs",
        "req/s",
        "p50",
        "p99",
        "errors",
        "stop",
        "server cpu",
        "cpu/req",
        "loader cpu",
        "other cpu"
    );
    for o in rows {
        let r = &o.run;
        let t = &o.tally;
        let pct = |p| r.percentile(p).map_or("-".into(), format_duration);
        let errors = t.errors_cell();
        let per_request = o.server_cpu.filter(|_| r.done > 0).map_or("-".into(), |c| {
            format_duration(Duration::from_secs_f64(c.as_secs_f64() / r.done as f64))
        });
        let _ = writeln!(
            out,
            "{:<27} {:>5} {:>8} {:>6.2} {:>9.1} {:>10} {:>10} {:>14}  {:<5} {:>10} {:>9} {:>10} {:>9}",
            r.name,
            r.tasks,
            t.sent,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            pct(50.0),
            pct(99.0),
            errors,
            match r.stop {
                Stop::Count => "count",
                Stop::Time => "time",
            },
            cpu(o.server_cpu),
            per_request,
            cpu(o.loader_cpu),
            cpu(o.other_cpu()),
        );
    }
    let _ = writeln!(
        out,
        "population: {} users imported via CSV (no passwords) in {:.1} s ({:.0} users/s); one scan before the \
         clock took {}",
        plan.users,
        setup.imported.as_secs_f64(),
        plan.users as f64 / setup.imported.as_secs_f64().max(f64::EPSILON),
        format_duration(setup.first_scan)
    );
    match setup.page {
        Some((n, took)) => {
            let _ = writeln!(
                out,
                "after the POST run: {n} users in the directory (the GET rows ran over {}); the first page of an \
                 unfiltered GET /Users (count={PAGE}) took {}",
                plan.users + 1,
                format_duration(took)
            );
        }
        None => {
            let _ = writeln!(
                out,
                "!!! after the POST run: GET /Users?startIndex=1&count={PAGE} did not answer a full page"
            );
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for o in rows {
        let t = &o.tally;
        let capacity = o.run.elapsed.as_secs_f64() * cpus as f64;
        if let Some(other) = o
            .other_cpu()
            .filter(|c| c.as_secs_f64() > OTHER_ALARM * capacity)
        {
            let _ = writeln!(
                out,
                "!!! {}: {:.1} s of CPU ({:.0}% of the machine) went to other processes during the run (a cargo \
                 build?): its figures are disturbed",
                o.run.name,
                other.as_secs_f64(),
                100.0 * other.as_secs_f64() / capacity
            );
        }
        if t.errors() == 0 {
            let _ = writeln!(
                out,
                "{}: all {} answers checked and as expected",
                o.run.name, t.sent
            );
        } else {
            let _ = writeln!(
                out,
                "!!! {}: {} of {} requests FAILED ({}); first: {}",
                o.run.name,
                t.errors(),
                t.sent,
                t.describe_errors(),
                t.first_error.as_deref().unwrap_or("?")
            );
            if t.statuses.contains_key(&429) {
                let _ = writeln!(
                    out,
                    "!!! {}: 429 means the SCIM rate limit was hit: the server did not take \
                     STRATUS_SCIM_RATE_PER_SECOND / STRATUS_SCIM_RATE_BURST",
                    o.run.name
                );
            }
        }
    }
    out
}
