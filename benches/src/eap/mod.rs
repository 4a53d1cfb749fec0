//! `eap`: complete PEAP-MSCHAPv2 logins per second, Stratus's RADIUS listener against FreeRADIUS, side by side
//! in one run, with the same users, the same server certificate and the same load.
//!
//! Both servers get the users of the `radius` benchmark (`bench0000000`…); the measured runs cycle through
//! `--active-users` of them, spread evenly over the data set, with `--concurrency` supplicants logging in one
//! after the other until `--count` logins were started or `--time-limit` has passed. Each login is a full PEAP
//! handshake (TLS 1.2, no resumption), the inner EAP-MSCHAPv2 exchange, the Result TLV, and the MS-MPPE keys of
//! the Access-Accept checked against the MSK the supplicant derives. Two loaders make the logins (see
//! [`load`]): the native supplicant of [`peap`], in this process, and eapol_test (one process per login).
//!
//! - Stratus: the real binary, as for `radius`, with the profile's `methods` set to `["peap_mschapv2"]`.
//!   MSCHAPv2 needs the user's NT hash, which Stratus keeps only when a password is set while the user is in a
//!   group bound to such a profile, and the CSV import cannot put users in a group; so the users are imported
//!   with the data set's password and made members, then every active user's password is set again through
//!   `POST /api/v1/users/{id}/password`, to [`EAP_PASSWORD`] (the default password policy refuses the current
//!   password again: it is in the history).
//! - FreeRADIUS: `benches/eap/freeradius-eap.sh` (the `eap` module with PEAP and an `inner-tunnel` with `mschap`
//!   and `files`), the users with a Cleartext-Password each, the same passwords as on Stratus, and Stratus's
//!   development certificate and key, so both present the same ECDSA P-256 certificate chain.

mod load;
mod peap;

use crate::ldap::dataset::{self, Dataset};
use crate::radius::{self, stratus};
use crate::{format_duration, BoxError, Stop};
use clap::{Args, ValueEnum};
use load::{Loader, Login, Outcome, Shape, Target};
use peap::Failure;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The active users' password on both servers (the others keep the data set's [`dataset::PASSWORD`]).
pub const EAP_PASSWORD: &str = "Bench-Eap-Password-1";
/// TLS data per EAP request on FreeRADIUS: Stratus's default `radius.eap_fragment_size`.
const FRAGMENT_SIZE: usize = 1000;
/// Failed logins above this share of the attempts make a run's figures suspect, and the output says so.
const FAILURE_ALARM: f64 = 0.02;
/// Longest a server may take to answer its first login after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Server {
    Stratus,
    Freeradius,
}

#[derive(Args)]
pub struct EapArgs {
    /// Smoke run: 1,000 users, 100 active, 3 s runs.
    #[arg(long)]
    quick: bool,
    /// Users in the data set, on both servers [default: 10000, or 1000 with --quick].
    #[arg(long)]
    users: Option<usize>,
    /// Users the runs cycle through, spread evenly over the data set; on Stratus each gets its password set
    /// again after joining the group [default: 1000, or 100 with --quick].
    #[arg(long)]
    active_users: Option<usize>,
    /// Most logins started in one run [default: 200000, or 20000 with --quick].
    #[arg(long)]
    count: Option<u64>,
    /// Wall-clock limit of one run, in seconds [default: 20, or 3 with --quick].
    #[arg(long)]
    time_limit: Option<f64>,
    /// Supplicants logging in at once (threads; with eapol_test, processes).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Loaders, each measured against every server, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Loader::Native, Loader::EapolTest])]
    loaders: Vec<Loader>,
    /// Seconds without a reply after which a login counts as lost (native; eapol_test gets it as `-t`, whole
    /// seconds, for the whole login). Nothing is retransmitted.
    #[arg(long, default_value_t = 5.0)]
    reply_timeout: f64,
    /// Servers to measure, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Server::Stratus, Server::Freeradius])]
    servers: Vec<Server>,
    /// The stratus binary [default: `stratus` next to this executable, else target/release/stratus].
    #[arg(long)]
    stratus_bin: Option<PathBuf>,
    /// The FreeRADIUS set-up script [default: benches/eap/freeradius-eap.sh of this source tree].
    #[arg(long)]
    freeradius_script: Option<PathBuf>,
    /// The eapol_test binary.
    #[arg(long, default_value = "eapol_test")]
    eapol_test: PathBuf,
}

/// The bounds of one `eap` invocation.
struct Plan {
    quick: bool,
    users: usize,
    active: usize,
    count: u64,
    limit: Duration,
    concurrency: usize,
    reply_timeout: Duration,
}

impl Plan {
    fn new(args: &EapArgs) -> Result<Self, BoxError> {
        let quick = args.quick;
        let users = args.users.unwrap_or(if quick { 1_000 } else { 10_000 });
        if users == 0 || users > 10_000_000 {
            return Err("--users must be between 1 and 10,000,000".into());
        }
        let active = args
            .active_users
            .unwrap_or(if quick { 100 } else { 1_000 })
            .min(users);
        if active == 0 {
            return Err("--active-users must be at least 1".into());
        }
        let count = args.count.unwrap_or(if quick { 20_000 } else { 200_000 });
        if count == 0 || count > 100_000_000 {
            return Err("--count must be between 1 and 100,000,000".into());
        }
        let secs = args.time_limit.unwrap_or(if quick { 3.0 } else { 20.0 });
        if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
            return Err("--time-limit must be between 0 and 3600 seconds".into());
        }
        if args.concurrency == 0 || args.concurrency > 256 {
            return Err("--concurrency must be between 1 and 256".into());
        }
        let t = args.reply_timeout;
        if !(t.is_finite() && (0.1..=60.0).contains(&t)) {
            return Err("--reply-timeout must be between 0.1 and 60 seconds".into());
        }
        if args.servers.is_empty() {
            return Err("--servers names no server".into());
        }
        if args.loaders.is_empty() {
            return Err("--loaders names no loader".into());
        }
        Ok(Plan {
            quick,
            users,
            active,
            count,
            limit: Duration::from_secs_f64(secs),
            concurrency: args.concurrency,
            reply_timeout: Duration::from_secs_f64(t),
        })
    }
}

/// One row of the table: a measured run, or why there is none.
struct Row {
    server: Server,
    loader: Loader,
    outcome: Result<Outcome, String>,
}

fn server_name(s: Server) -> &'static str {
    match s {
        Server::Stratus => "stratus",
        Server::Freeradius => "freeradius",
    }
}

fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("eap/freeradius-eap.sh")
}

/// `freeradius-eap.sh install [--eapol-test]`: the version lines it prints.
fn install(script: &Path, eapol_test: bool) -> Result<Vec<String>, BoxError> {
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg("install");
    if eapol_test {
        cmd.arg("--eapol-test");
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if !out.status.success() {
        return Err(format!("{} install failed ({})", script.display(), out.status).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

pub async fn run(args: &EapArgs) -> Result<(), BoxError> {
    let plan = Plan::new(args)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let script = args
        .freeradius_script
        .clone()
        .unwrap_or_else(default_script);
    let stratus_bin = args
        .stratus_bin
        .clone()
        .unwrap_or_else(stratus::default_bin);
    let with_eapol = args.loaders.contains(&Loader::EapolTest);
    let versions = if args.servers.contains(&Server::Freeradius) || with_eapol {
        tokio::task::block_in_place(|| install(&script, with_eapol))?
    } else {
        Vec::new()
    };
    println!(
        "stratus-bench eap{}: {cpus} CPUs; {} users, {} active; {} supplicants at once; loaders {}; each run at \
         most {} logins and {:.0} s; PEAP-MSCHAPv2, TLS 1.2, no resumption",
        if plan.quick { " --quick" } else { "" },
        plan.users,
        plan.active,
        plan.concurrency,
        args.loaders
            .iter()
            .map(|l| l.label())
            .collect::<Vec<_>>()
            .join(", "),
        plan.count,
        plan.limit.as_secs_f64(),
    );
    for v in &versions {
        println!("{v}");
    }
    println!("stratus: {}", stratus_bin.display());

    let secret = radius::random_secret()?;
    let data = Dataset { users: plan.users };
    let active = radius::load::sample_indices(plan.users, plan.active);
    let logins: Arc<Vec<Login>> = Arc::new(
        active
            .iter()
            .map(|&i| Login {
                user: Dataset::username(i),
                password: EAP_PASSWORD,
            })
            .collect(),
    );

    // Stratus first: its data directory holds the development certificate FreeRADIUS presents too.
    let store = stratus::Data::new()?;
    let mut rows = Vec::new();
    let measure_stratus = args.servers.contains(&Server::Stratus);
    let stratus_rows = stratus_runs(
        &stratus_bin,
        &store,
        data,
        &active,
        &plan,
        args,
        &secret,
        &logins,
        measure_stratus,
    )
    .await;
    match stratus_rows {
        Ok(r) => rows.extend(r),
        Err(e) => {
            eprintln!("stratus: not measured: {e}");
            if !store.certs_dir().join("ca.pem").is_file() {
                return Err(format!("no certificate for the servers: {e}").into());
            }
            if measure_stratus {
                for &loader in &args.loaders {
                    rows.push(Row {
                        server: Server::Stratus,
                        loader,
                        outcome: Err(e.to_string()),
                    });
                }
            }
        }
    }
    if args.servers.contains(&Server::Freeradius) {
        let active_set: HashSet<usize> = active.iter().copied().collect();
        let r = tokio::task::block_in_place(|| {
            freeradius_runs(
                &script,
                &store,
                data,
                &active_set,
                &plan,
                args,
                &secret,
                &logins,
            )
        });
        match r {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("freeradius: not measured: {e}");
                for &loader in &args.loaders {
                    rows.push(Row {
                        server: Server::Freeradius,
                        loader,
                        outcome: Err(e.to_string()),
                    });
                }
            }
        }
    }
    let order = |r: &Row| {
        (
            args.loaders.iter().position(|l| *l == r.loader),
            args.servers.iter().position(|s| *s == r.server),
        )
    };
    rows.sort_by_key(order);
    println!("{}", table(&plan, &rows));
    Ok(())
}

fn shape(plan: &Plan, args: &EapArgs, ca: &Path) -> Result<Shape, BoxError> {
    Ok(Shape {
        concurrency: plan.concurrency,
        reply_timeout: plan.reply_timeout,
        tls: peap::tls_config(ca, &[&rustls::version::TLS12])?,
        eapol_test: args.eapol_test.clone(),
    })
}

/// Start Stratus (which creates its development certificate); when `measure`, populate it, check it and run
/// every loader against it.
#[allow(clippy::too_many_arguments)]
async fn stratus_runs(
    bin: &Path,
    store: &stratus::Data,
    data: Dataset,
    active: &[usize],
    plan: &Plan,
    args: &EapArgs,
    secret: &str,
    logins: &Arc<Vec<Login>>,
    measure: bool,
) -> Result<Vec<Row>, BoxError> {
    let server = tokio::task::block_in_place(|| stratus::Server::start(bin, store, true))?;
    if !measure {
        tokio::task::block_in_place(|| drop(server));
        println!(
            "stratus: started once for its development certificate ({}), not measured",
            store.certs_dir().display()
        );
        return Ok(Vec::new());
    }
    let r = async {
        let populated = server
            .populate_with(data, secret, Some(&["peap_mschapv2"]))
            .await?;
        let ids: Vec<String> = active
            .iter()
            .map(|&i| populated.user_ids[i].clone())
            .collect();
        let t0 = Instant::now();
        server.set_passwords(&ids, EAP_PASSWORD).await?;
        println!(
            "stratus: passwords of the {} active users set again, as members of the group bound to the PEAP \
             profile (so their NT hashes are kept), in {:.1} s",
            ids.len(),
            t0.elapsed().as_secs_f64()
        );
        let target = Target {
            server: "stratus",
            addr: server.radius,
            secret: secret.to_string(),
            ca: store.certs_dir().join("ca.pem"),
        };
        let shape = shape(plan, args, &target.ca)?;
        tokio::task::block_in_place(|| {
            check(&target, &shape, logins, &args.loaders, &mut || None)?;
            Ok::<_, BoxError>(measure_loaders(
                Server::Stratus,
                &target,
                &shape,
                logins,
                plan,
                &args.loaders,
                server.pid(),
            ))
        })
    }
    .await;
    let r = r.map_err(|e| -> BoxError {
        format!("{e}\nstratus log (last lines):\n{}", server.log_tail()).into()
    });
    let log = server.log_path();
    tokio::task::block_in_place(|| drop(server));
    println!("stratus log: {}", stratus::warnings(&log));
    r
}

#[allow(clippy::too_many_arguments)]
fn freeradius_runs(
    script: &Path,
    store: &stratus::Data,
    data: Dataset,
    active: &HashSet<usize>,
    plan: &Plan,
    args: &EapArgs,
    secret: &str,
    logins: &Arc<Vec<Login>>,
) -> Result<Vec<Row>, BoxError> {
    let certs = store.certs_dir();
    let (cert, key, ca) = (
        certs.join("server.pem"),
        certs.join("server-key.pem"),
        certs.join("ca.pem"),
    );
    let fragment = FRAGMENT_SIZE.to_string();
    let password = |i: usize| {
        if active.contains(&i) {
            EAP_PASSWORD
        } else {
            dataset::PASSWORD
        }
    };
    let mut server = radius::freeradius::FreeRadius::start_with(
        script,
        data,
        &password,
        secret,
        &[
            cert.as_os_str(),
            key.as_os_str(),
            ca.as_os_str(),
            OsStr::new(&fragment),
        ],
    )?;
    let target = Target {
        server: "freeradius",
        addr: server.addr,
        secret: secret.to_string(),
        ca,
    };
    let r = (|| {
        let shape = shape(plan, args, &target.ca)?;
        check(&target, &shape, logins, &args.loaders, &mut || {
            server.exited()
        })?;
        Ok::<_, BoxError>(measure_loaders(
            Server::Freeradius,
            &target,
            &shape,
            logins,
            plan,
            &args.loaders,
            server.pid(),
        ))
    })();
    r.map_err(|e| -> BoxError {
        format!("{e}\nfreeradius log (last lines):\n{}", server.log_tail()).into()
    })
}

fn measure_loaders(
    server: Server,
    target: &Target,
    shape: &Shape,
    logins: &Arc<Vec<Login>>,
    plan: &Plan,
    loaders: &[Loader],
    pid: u32,
) -> Vec<Row> {
    loaders
        .iter()
        .map(|&loader| {
            let outcome = load::run(
                loader,
                target,
                shape,
                logins,
                plan.count,
                plan.limit,
                Some(pid),
            )
            .map_err(|e| e.to_string());
            match &outcome {
                Ok(o) => println!(
                    "{}, {}: {} logins in {:.1} s, {} failed",
                    target.server,
                    loader.label(),
                    o.run.done,
                    o.run.elapsed.as_secs_f64(),
                    o.failed()
                ),
                Err(e) => eprintln!("{}, {}: not measured: {e}", target.server, loader.label()),
            }
            Row {
                server,
                loader,
                outcome,
            }
        })
        .collect()
}

/// Before measuring: the first active user logs in (retried, a new login each time, until the server answers
/// or [`READY_TIMEOUT`] has passed), a wrong password for the last one is rejected, the last one then logs in
/// (which clears the failed-login count on Stratus), and with eapol_test among the loaders, eapol_test logs the
/// first one in. What each negotiated is printed.
fn check(
    target: &Target,
    shape: &Shape,
    logins: &[Login],
    loaders: &[Loader],
    alive: &mut dyn FnMut() -> Option<String>,
) -> Result<(), BoxError> {
    let (first, last) = (&logins[0], &logins[logins.len() - 1]);
    let quick = Shape {
        reply_timeout: Duration::from_secs(1),
        ..shape.clone()
    };
    let deadline = Instant::now() + READY_TIMEOUT;
    let native = loop {
        if let Some(status) = alive() {
            return Err(format!("{} exited ({status}) before answering", target.server).into());
        }
        match load::one(Loader::Native, target, &quick, first) {
            Ok(n) => break n,
            // Not listening yet: a port unreachable (connection refused) or no answer.
            Err(Failure::Lost | Failure::Io(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => {
                return Err(format!(
                    "{}: {} with the right password: {e}",
                    target.server, first.user
                )
                .into())
            }
        }
    };
    let wrong = Login {
        user: last.user.clone(),
        password: "Not-The-Password-1",
    };
    match load::one(Loader::Native, target, shape, &wrong) {
        Err(Failure::Rejected(_)) => {}
        Ok(_) => {
            return Err(format!(
                "{}: a wrong password for {} was accepted",
                target.server, last.user
            )
            .into())
        }
        Err(e) => {
            return Err(format!(
                "{}: a wrong password for {}: {e} (expected an Access-Reject)",
                target.server, last.user
            )
            .into())
        }
    }
    load::one(Loader::Native, target, shape, last).map_err(|e| {
        format!(
            "{}: {} with the right password: {e}",
            target.server, last.user
        )
    })?;
    println!(
        "{}: {} answers; native login: {native}; a wrong password is rejected",
        target.server, target.addr
    );
    if loaders.contains(&Loader::EapolTest) {
        let e = load::one(Loader::EapolTest, target, shape, first)
            .map_err(|e| format!("{}: eapol_test login of {}: {e}", target.server, first.user))?;
        println!("{}: eapol_test login: {e}", target.server);
    }
    Ok(())
}

/// A throughput ratio with three significant digits.
fn ratio(x: f64) -> String {
    if x >= 0.1 {
        format!("{x:.2}x")
    } else {
        format!("{x:.3}x")
    }
}

fn cpu(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// CPU time per successful login, in milliseconds.
fn per_login(d: Option<Duration>, logins: u64) -> String {
    match d {
        Some(d) if logins > 0 => format!("{:.2} ms", d.as_secs_f64() * 1e3 / logins as f64),
        _ => "-".into(),
    }
}

fn label(r: &Row) -> String {
    format!("{}, {}", server_name(r.server), r.loader.label())
}

fn table(plan: &Plan, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\neap, PEAP-MSCHAPv2, {} users, {} active, {} supplicants at once",
        plan.users, plan.active, plan.concurrency
    );
    let _ = writeln!(
        out,
        "{:<22} {:>7} {:>6} {:>8} {:>9} {:>9} {:>12}  {:<5} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "run",
        "logins",
        "secs",
        "logins/s",
        "p50",
        "p99",
        "failures",
        "stop",
        "server cpu",
        "per login",
        "loader cpu",
        "per login",
        "other cpu"
    );
    for row in rows {
        let Ok(o) = &row.outcome else {
            let _ = writeln!(out, "{:<22} {:>7}  not measured", label(row), "-");
            continue;
        };
        let r = &o.run;
        let pct = |p| r.percentile(p).map_or("-".into(), format_duration);
        let failed = o.failed();
        let failures = if failed == 0 {
            "0".to_string()
        } else {
            format!(
                "{failed} ({:.1}%)",
                100.0 * failed as f64 / o.attempts.max(1) as f64
            )
        };
        let _ = writeln!(
            out,
            "{:<22} {:>7} {:>6.2} {:>8.1} {:>9} {:>9} {:>12}  {:<5} {:>10} {:>10} {:>10} {:>10} {:>10}",
            label(row),
            r.done,
            r.elapsed.as_secs_f64(),
            r.per_second(),
            pct(50.0),
            pct(99.0),
            failures,
            match r.stop {
                Stop::Count => "count",
                Stop::Time => "time",
            },
            cpu(o.server_cpu),
            per_login(o.server_cpu, r.done),
            cpu(o.loader_cpu),
            per_login(o.loader_cpu, r.done),
            cpu(o.other_cpu()),
        );
    }
    let outcome = |server, loader| {
        rows.iter()
            .find(|r| r.server == server && r.loader == loader)
            .and_then(|r| r.outcome.as_ref().ok())
    };
    let rate = |server, loader| {
        outcome(server, loader)
            .map(|o| o.run.per_second())
            .filter(|&v| v > 0.0)
    };
    // Successful logins per second of the server's CPU: what the server costs, whoever else shares the machine.
    let efficiency = |server, loader| {
        outcome(server, loader)
            .and_then(|o| Some(o.run.done as f64 / o.server_cpu?.as_secs_f64()))
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let mut loaders: Vec<Loader> = Vec::new();
    for r in rows {
        if !loaders.contains(&r.loader) {
            loaders.push(r.loader);
        }
    }
    for loader in loaders {
        if let (Some(s), Some(f)) = (
            rate(Server::Stratus, loader),
            rate(Server::Freeradius, loader),
        ) {
            let _ = writeln!(
                out,
                "stratus / freeradius, {}: {}",
                loader.label(),
                ratio(s / f)
            );
        }
        if let (Some(s), Some(f)) = (
            efficiency(Server::Stratus, loader),
            efficiency(Server::Freeradius, loader),
        ) {
            let _ = writeln!(
                out,
                "stratus / freeradius, {}, logins per second of server CPU: {} ({:.0} / {:.0})",
                loader.label(),
                ratio(s / f),
                s,
                f
            );
        }
    }
    for row in rows {
        match &row.outcome {
            Err(e) => {
                let first_line = e.lines().next().unwrap_or_default();
                let _ = writeln!(out, "{}: {first_line}", label(row));
            }
            Ok(o) => {
                let negotiated: Vec<String> = o
                    .negotiated
                    .iter()
                    .map(|(what, n)| format!("{n} x {what}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "{}: {}",
                    label(row),
                    if negotiated.is_empty() {
                        "no login succeeded".into()
                    } else {
                        negotiated.join("; ")
                    }
                );
                if o.failed() > 0 {
                    let _ = writeln!(out, "{}: failed: {}", label(row), o.describe_failures());
                }
                let share = o.failed() as f64 / o.attempts.max(1) as f64;
                if share > FAILURE_ALARM {
                    let _ = writeln!(
                        out,
                        "!!! {}: {:.1}% of {} logins FAILED: its figures do not measure successful logins",
                        label(row),
                        100.0 * share,
                        o.attempts
                    );
                }
            }
        }
    }
    out
}
