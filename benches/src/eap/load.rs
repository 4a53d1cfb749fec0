//! The load: `concurrency` supplicants, one OS thread each, each doing complete PEAP-MSCHAPv2 logins one after
//! the other until `max` logins were started (over all of them) or `limit` has passed. The n-th login of a run
//! is for the (n mod A)-th of the A active users, so users are cycled through uniformly.
//!
//! Two loaders do the logins:
//! - `native` ([`super::peap`]): a supplicant in this process, one UDP socket per thread;
//! - `eapol-test`: one `eapol_test -r 0` process per login (wpa_supplicant's EAP peer with a RADIUS client),
//!   the real thing; each process is one login, with its start-up and its debug output (eapol_test has no quiet
//!   mode) in the loader CPU column. `-r N` is not used: eapol_test waits a fixed 100 ms before each of its
//!   re-authentications (each a full handshake), which would make each process idle most of the time.

use super::peap::{Failure, Peer};
use crate::radius::load::{cpu_time, cpu_time_with_children, machine_busy};
use crate::{BoxError, Run, Stop};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Who does the logins.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Loader {
    /// The supplicant of this crate (`benches/src/eap/peap.rs`), in-process.
    Native,
    /// One eapol_test process per login.
    EapolTest,
}

impl Loader {
    pub fn label(self) -> &'static str {
        match self {
            Loader::Native => "native",
            Loader::EapolTest => "eapol_test",
        }
    }
}

/// One server under test, as the loaders see it.
#[derive(Clone)]
pub struct Target {
    pub server: &'static str,
    pub addr: SocketAddr,
    pub secret: String,
    /// The CA the server's certificate must chain to.
    pub ca: PathBuf,
}

/// A user the run logs in as.
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: &'static str,
}

/// How each login is made.
#[derive(Clone)]
pub struct Shape {
    pub concurrency: usize,
    pub reply_timeout: Duration,
    pub tls: Arc<rustls::ClientConfig>,
    pub eapol_test: PathBuf,
}

/// A measured run.
pub struct Outcome {
    /// `done` = successful logins; latencies of the successful ones, sorted.
    pub run: Run,
    pub attempts: u64,
    /// Failed logins by kind, with the first message of each kind.
    pub failures: BTreeMap<&'static str, (u64, String)>,
    /// What the successful logins negotiated (TLS version, cipher suite, round trips), with how many did.
    pub negotiated: BTreeMap<String, u64>,
    /// CPU time of the load generator (this process, and the eapol_test processes that exited during the run),
    /// of the server process, and of the whole machine during the run.
    pub loader_cpu: Option<Duration>,
    pub server_cpu: Option<Duration>,
    pub machine_cpu: Option<Duration>,
}

impl Outcome {
    pub fn failed(&self) -> u64 {
        self.failures.values().map(|(n, _)| n).sum()
    }

    /// Busy CPU time of everything but the server and the load generator.
    pub fn other_cpu(&self) -> Option<Duration> {
        let (m, s, l) = (self.machine_cpu?, self.server_cpu?, self.loader_cpu?);
        Some(m.saturating_sub(s + l))
    }

    pub fn describe_failures(&self) -> String {
        self.failures
            .iter()
            .map(|(kind, (n, first))| format!("{n} {kind} (first: {first})"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn kind(f: &Failure) -> &'static str {
    match f {
        Failure::Rejected(_) => "rejected",
        Failure::Lost => "lost",
        Failure::Invalid => "invalid replies",
        Failure::Protocol(_) => "protocol errors",
        Failure::Keys(_) => "MPPE key errors",
        Failure::Io(_) => "socket errors",
    }
}

/// One loader's way of making a login.
enum Worker {
    Native(Peer),
    Eapol(Eapol),
}

impl Worker {
    fn new(
        loader: Loader,
        target: &Target,
        shape: &Shape,
        k: usize,
        confs: &Path,
    ) -> Result<Self, BoxError> {
        Ok(match loader {
            Loader::Native => Worker::Native(Peer::new(
                target.addr,
                target.secret.as_bytes().into(),
                Arc::clone(&shape.tls),
                k as u32 + 1,
                shape.reply_timeout,
            )?),
            Loader::EapolTest => Worker::Eapol(Eapol {
                bin: shape.eapol_test.clone(),
                target: target.clone(),
                confs: confs.to_path_buf(),
                station: k as u32 + 1,
                timeout: shape.reply_timeout,
            }),
        })
    }

    /// One login of the `n`-th user of the run; a description of what it negotiated.
    fn login(&mut self, n: usize, login: &Login) -> Result<String, Failure> {
        match self {
            Worker::Native(peer) => peer.authenticate(&login.user, login.password).map(|x| {
                format!(
                    "{}, {}, key exchange {}, {} round trips",
                    x.version, x.cipher, x.group, x.round_trips
                )
            }),
            Worker::Eapol(e) => e.login(n),
        }
    }
}

/// Login once with `loader` (the checks before a run).
pub fn one(
    loader: Loader,
    target: &Target,
    shape: &Shape,
    login: &Login,
) -> Result<String, Failure> {
    let confs = tempfile::Builder::new()
        .prefix("stratus-bench-eapol")
        .tempdir()
        .map_err(|e| Failure::Io(e.to_string()))?;
    write_confs(confs.path(), target, std::slice::from_ref(login))
        .map_err(|e| Failure::Io(e.to_string()))?;
    let mut w = Worker::new(loader, target, shape, 0, confs.path())
        .map_err(|e| Failure::Io(e.to_string()))?;
    w.login(0, login)
}

/// The eapol_test network block of each login, `peap-<n>.conf` in `dir`: PEAP with MSCHAPv2 inside, the outer
/// identity `anonymous`, the server certificate checked against the CA, no fast re-authentication.
fn write_confs(dir: &Path, target: &Target, logins: &[Login]) -> std::io::Result<()> {
    for (n, l) in logins.iter().enumerate() {
        std::fs::write(
            dir.join(format!("peap-{n}.conf")),
            format!(
                "fast_reauth=0\nnetwork={{\n  key_mgmt=WPA-EAP\n  eap=PEAP\n  identity=\"{}\"\n  \
                 anonymous_identity=\"anonymous\"\n  password=\"{}\"\n  ca_cert=\"{}\"\n  \
                 phase2=\"auth=MSCHAPV2\"\n}}\n",
                l.user,
                l.password,
                target.ca.display()
            ),
        )?;
    }
    Ok(())
}

/// Run `eapol_test` for one login.
struct Eapol {
    bin: PathBuf,
    target: Target,
    confs: PathBuf,
    station: u32,
    /// eapol_test's own limit on the whole login (`-t`, whole seconds).
    timeout: Duration,
}

impl Eapol {
    fn login(&mut self, n: usize) -> Result<String, Failure> {
        let m = self.station.to_be_bytes();
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(self.confs.join(format!("peap-{n}.conf")))
            .arg("-a")
            .arg(self.target.addr.ip().to_string())
            .arg("-p")
            .arg(self.target.addr.port().to_string())
            .arg("-s")
            .arg(&self.target.secret)
            .args(["-r", "0", "-t"])
            .arg(self.timeout.as_secs().max(1).to_string())
            .arg("-M")
            .arg(format!(
                "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3]
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| Failure::Io(format!("cannot run {}: {e}", self.bin.display())))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        judge_eapol(out.status.success(), &text)
    }
}

/// Success (eapol_test exits 0, its last line is `SUCCESS`, and it found the MPPE keys of the Access-Accept
/// equal to its own: `MPPE keys OK: 1  mismatch: 0`), described by the last TLS version and the cipher suite it
/// reports; or why not.
pub fn judge_eapol(exited_ok: bool, text: &str) -> Result<String, Failure> {
    let ok = exited_ok
        && text.trim_end().ends_with("SUCCESS")
        && text.contains("MPPE keys OK: 1  mismatch: 0");
    if !ok {
        return Err(if text.contains("(Access-Reject)") {
            Failure::Rejected(None)
        } else if text.contains("EAPOL test timed out") {
            Failure::Lost
        } else if text.contains("MPPE keys OK: 0") {
            Failure::Keys("eapol_test found them different from its own".into())
        } else {
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            Failure::Protocol(format!("eapol_test failed: {}", last.trim()))
        });
    }
    let version = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("SSL: Using TLS version "))
        .unwrap_or("?")
        .trim();
    let cipher = text
        .lines()
        .find_map(|l| l.strip_prefix("OpenSSL: Server selected cipher suite 0x"))
        .and_then(|hex| u16::from_str_radix(hex.trim(), 16).ok())
        .map_or_else(
            || "?".into(),
            |v| format!("{:?}", rustls::CipherSuite::from(v)),
        );
    let round_trips = text.matches("(Access-Request)").count();
    Ok(format!("{version}, {cipher}, {round_trips} round trips"))
}

/// What one thread brings back.
struct Part {
    attempts: u64,
    latencies: Vec<Duration>,
    failures: BTreeMap<&'static str, (u64, String)>,
    negotiated: BTreeMap<String, u64>,
    last: Option<Instant>,
}

/// Measure: `shape.concurrency` threads log in until `max` logins were started or `limit` has passed; each
/// thread then finishes the login it is in (bounded by the reply timeout per round trip, or eapol_test's `-t`).
pub fn run(
    loader: Loader,
    target: &Target,
    shape: &Shape,
    logins: &Arc<Vec<Login>>,
    max: u64,
    limit: Duration,
    server_pid: Option<u32>,
) -> Result<Outcome, BoxError> {
    if logins.is_empty() {
        return Err("no users to log in".into());
    }
    let confs = tempfile::Builder::new()
        .prefix("stratus-bench-eapol")
        .tempdir()?;
    if loader == Loader::EapolTest {
        write_confs(confs.path(), target, logins)?;
    }
    let threads = shape.concurrency.max(1);
    let issued = Arc::new(AtomicU64::new(0));
    let hit_count = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let start_slot: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    // Every worker exists before any thread starts, so a failure here leaves no thread waiting at the barrier.
    let workers = (0..threads)
        .map(|k| Worker::new(loader, target, shape, k, confs.path()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut handles = Vec::with_capacity(threads);
    for mut worker in workers {
        let (logins, issued, hit_count, barrier, start_slot) = (
            Arc::clone(logins),
            Arc::clone(&issued),
            Arc::clone(&hit_count),
            Arc::clone(&barrier),
            Arc::clone(&start_slot),
        );
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            let deadline = *start_slot.wait() + limit;
            let mut part = Part {
                attempts: 0,
                latencies: Vec::new(),
                failures: BTreeMap::new(),
                negotiated: BTreeMap::new(),
                last: None,
            };
            while Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    hit_count.store(true, Ordering::Relaxed);
                    break;
                }
                let i = (n % logins.len() as u64) as usize;
                let t0 = Instant::now();
                let result = worker.login(i, &logins[i]);
                let t1 = Instant::now();
                part.attempts += 1;
                part.last = Some(t1);
                match result {
                    Ok(what) => {
                        part.latencies.push(t1 - t0);
                        *part.negotiated.entry(what).or_default() += 1;
                    }
                    Err(f) => {
                        let e = part
                            .failures
                            .entry(kind(&f))
                            .or_insert_with(|| (0, format!("{}: {f}", logins[i].user)));
                        e.0 += 1;
                    }
                }
            }
            part
        }));
    }
    let cpu0 = cpu_time_with_children();
    let srv0 = server_pid.and_then(|p| cpu_time(Some(p)));
    let busy0 = machine_busy();
    let start = Instant::now();
    let _ = start_slot.set(start);
    barrier.wait();
    let mut parts = Vec::with_capacity(threads);
    for h in handles {
        parts.push(h.join().map_err(|_| "a load thread panicked")?);
    }
    let cpu1 = cpu_time_with_children();
    let srv1 = server_pid.and_then(|p| cpu_time(Some(p)));
    let busy1 = machine_busy();
    let mut latencies = Vec::new();
    let mut failures: BTreeMap<&'static str, (u64, String)> = BTreeMap::new();
    let mut negotiated: BTreeMap<String, u64> = BTreeMap::new();
    let (mut attempts, mut end) = (0, start);
    for p in parts {
        attempts += p.attempts;
        latencies.extend(p.latencies);
        for (k, (n, first)) in p.failures {
            failures.entry(k).or_insert((0, first)).0 += n;
        }
        for (k, n) in p.negotiated {
            *negotiated.entry(k).or_default() += n;
        }
        if let Some(t) = p.last {
            end = end.max(t);
        }
    }
    latencies.sort_unstable();
    Ok(Outcome {
        run: Run {
            name: loader.label(),
            tasks: threads,
            done: latencies.len() as u64,
            elapsed: end - start,
            stop: if hit_count.load(Ordering::Relaxed) {
                Stop::Count
            } else {
                Stop::Time
            },
            latencies,
        },
        attempts,
        failures,
        negotiated,
        loader_cpu: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        server_cpu: srv0.zip(srv1).map(|(a, b)| b.saturating_sub(a)),
        machine_cpu: busy0.zip(busy1).map(|(a, b)| b.saturating_sub(a)),
    })
}
