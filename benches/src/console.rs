//! `console`: server CPU and latency of the admin console's pages with a large directory behind them.
//!
//! The real `stratus` binary is started in a temporary data directory (RADIUS off), `--users` users are
//! imported by CSV without passwords, the bench signs in to the console as the bootstrap admin (a browser's
//! form post and cookie), and then `--concurrency` tasks each fetch one page at a time, every run bounded by
//! `--count` pages and `--time-limit` seconds:
//!
//! 1. `GET /console/users?q=<random user name>`: the users list searched, every user filtered;
//! 2. `GET /console/users`: the first page of the unfiltered list (every user sorted);
//! 3. `GET /console/users/<id>` of random users: the user page with its groups and recent events;
//! 4. `GET /console`: the dashboard (counts over every user, listeners, activity charts).
//!
//! Each answer must be `200` with the page's heading, or it counts as an error. The table gives pages per
//! second, p50 and p99, and the server's CPU time per page (from `/proc/<pid>/stat`), which is what a console
//! view costs the machine whatever the client. There is no reference server: the figures stand alone.

use crate::ldap::dataset::Dataset;
use crate::radius::load::cpu_time;
use crate::radius::stratus;
use crate::{BoxError, XorShift64};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_EMAIL: &str = "bench-admin@bench.local";
const ADMIN_PASSWORD: &str = "Bench-Admin-Pass-1";
const IMPORT_CHUNK: usize = 5_000;
/// Users whose page is fetched in the user-page run.
const DETAIL_USERS: usize = 200;

#[derive(Args)]
pub struct ConsoleArgs {
    /// Users imported before measuring.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Concurrent tasks, each with one request at a time.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Most pages per run.
    #[arg(long, default_value_t = 2_000)]
    count: u64,
    /// Wall-clock limit of each run, in seconds.
    #[arg(long, default_value_t = 15.0)]
    time_limit: f64,
    /// The stratus binary [default: `stratus` next to this executable, else target/release/stratus].
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
}

#[derive(Clone, Copy)]
enum Page {
    Search,
    Unfiltered,
    User,
    Dashboard,
}

impl Page {
    fn name(self) -> &'static str {
        match self {
            Page::Search => "users list, searched",
            Page::Unfiltered => "users list, first page",
            Page::User => "user page",
            Page::Dashboard => "dashboard",
        }
    }
}

struct Row {
    page: Page,
    done: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    latencies: Vec<Duration>,
    server_cpu: Option<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub async fn run(args: &ConsoleArgs) -> Result<(), BoxError> {
    if args.users == 0 || args.users > 10_000_000 {
        return Err("--users must be between 1 and 10,000,000".into());
    }
    if args.concurrency == 0 || args.concurrency > 256 {
        return Err("--concurrency must be between 1 and 256".into());
    }
    if args.count == 0 || args.count > 10_000_000 {
        return Err("--count must be between 1 and 10,000,000".into());
    }
    if !(args.time_limit.is_finite() && args.time_limit > 0.0 && args.time_limit <= 3600.0) {
        return Err("--time-limit must be between 0 and 3600 seconds".into());
    }
    let bin = args
        .stratus_bin
        .clone()
        .unwrap_or_else(stratus::default_bin);
    let data = stratus::Data::with_prefix("stratus-bench-console")?;
    let server = tokio::task::block_in_place(|| {
        stratus::Server::start_with(
            &bin,
            &data,
            &stratus::Options {
                credential_cache: true,
                radius: false,
                env: &[],
                log_name: "stratus-console.log",
            },
        )
    })?;
    let result = measure(&server, &data, args).await;
    let result =
        result.map_err(|e| format!("{e}\nstratus log (last lines):\n{}", server.log_tail()));
    tokio::task::block_in_place(|| drop(server));
    let rows = result?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\nconsole pages, {} users, {} tasks, {cpus} CPUs (server and load generator on the same machine)",
        args.users, args.concurrency
    );
    println!(
        "{:<24} {:>8} {:>8} {:>9} {:>9} {:>9} {:>13} {:>7}",
        "page", "count", "secs", "pages/s", "p50 ms", "p99 ms", "server ms/pg", "errors"
    );
    for r in &rows {
        let secs = r.elapsed.as_secs_f64().max(f64::EPSILON);
        println!(
            "{:<24} {:>8} {:>8.1} {:>9.1} {:>9.2} {:>9.2} {:>13} {:>7}",
            r.page.name(),
            r.done,
            secs,
            r.done as f64 / secs,
            percentile(&r.latencies, 50.0).as_secs_f64() * 1e3,
            percentile(&r.latencies, 99.0).as_secs_f64() * 1e3,
            r.server_cpu.map_or("?".into(), |c| format!(
                "{:.2}",
                c.as_secs_f64() * 1e3 / r.done.max(1) as f64
            )),
            r.errors
        );
        if let Some(e) = &r.first_error {
            println!("  first error: {e}");
        }
    }
    Ok(())
}

async fn measure(
    server: &stratus::Server,
    data: &stratus::Data,
    args: &ConsoleArgs,
) -> Result<Vec<Row>, BoxError> {
    let t0 = Instant::now();
    println!("stratus: importing {} users without passwords", args.users);
    let ids = server
        .import(Dataset { users: args.users }, t0, None, IMPORT_CHUNK)
        .await?;
    println!("stratus: imported in {:.1} s", t0.elapsed().as_secs_f64());
    let ca = std::fs::read(data.certs_dir().join("ca.pem"))?;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?;
    let base = server.api_url().to_string();
    // Sign in as a browser does: a form post, then the session cookie.
    let login = http
        .post(format!("{base}/console/login"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!(
            "email={}&password={}&next=%2Fconsole",
            ADMIN_EMAIL.replace('@', "%40"),
            ADMIN_PASSWORD
        ))
        .send()
        .await?;
    let cookie = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-stratus_console="))
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| {
            format!(
                "console sign-in set no session cookie (HTTP {})",
                login.status()
            )
        })?
        .to_string();
    let mut rng = XorShift64(0x5EED_C0DE);
    let detail: Vec<String> = (0..DETAIL_USERS.min(ids.len()))
        .map(|_| ids[(rng.next() % ids.len() as u64) as usize].clone())
        .collect();
    let ctx = Arc::new((http, base, cookie, detail, args.users));
    let mut rows = Vec::new();
    for page in [Page::Search, Page::Unfiltered, Page::User, Page::Dashboard] {
        println!("console: measuring {}", page.name());
        rows.push(run_page(&ctx, page, args, server.pid()).await?);
    }
    Ok(rows)
}

type Ctx = (reqwest::Client, String, String, Vec<String>, usize);

async fn run_page(
    ctx: &Arc<Ctx>,
    page: Page,
    args: &ConsoleArgs,
    pid: u32,
) -> Result<Row, BoxError> {
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(args.time_limit);
    let cpu0 = cpu_time(Some(pid));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..args.concurrency {
        let (ctx, issued, max) = (Arc::clone(ctx), Arc::clone(&issued), args.count);
        set.spawn(async move {
            let (http, base, cookie, detail, users) = &*ctx;
            let mut rng = XorShift64(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) << 32));
            let (mut lat, mut errors, mut first_error) = (Vec::new(), 0u64, None);
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                let (path, heading) = match page {
                    Page::Search => (
                        format!(
                            "/console/users?q={}",
                            Dataset::username((rng.next() % *users as u64) as usize)
                        ),
                        "<h1>Users</h1>",
                    ),
                    Page::Unfiltered => ("/console/users".to_string(), "<h1>Users</h1>"),
                    Page::User => (
                        format!(
                            "/console/users/{}",
                            detail[(rng.next() % detail.len().max(1) as u64) as usize]
                        ),
                        "<h2>Groups</h2>",
                    ),
                    Page::Dashboard => ("/console".to_string(), "<h1>Dashboard</h1>"),
                };
                let t0 = Instant::now();
                let r = http
                    .get(format!("{base}{path}"))
                    .header("cookie", cookie.as_str())
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(body) if body.contains(heading) => Ok(()),
                        Ok(_) => Err(format!("{path}: the page lacks {heading}")),
                        Err(e) => Err(format!("{path}: {e}")),
                    },
                    Ok(r) => Err(format!("{path}: HTTP {}", r.status())),
                    Err(e) => Err(format!("{path}: {e}")),
                };
                match ok {
                    Ok(()) => lat.push(t0.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (lat, errors, first_error)
        });
    }
    let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
    while let Some(j) = set.join_next().await {
        let (l, e, f) = j.map_err(|e| format!("a load task failed: {e}"))?;
        latencies.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let elapsed = start.elapsed();
    let server_cpu = match (cpu0, cpu_time(Some(pid))) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    latencies.sort();
    Ok(Row {
        page,
        done: latencies.len() as u64,
        errors,
        first_error,
        elapsed,
        latencies,
        server_cpu,
    })
}
