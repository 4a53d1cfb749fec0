//! The load generator: `sockets` UDP sockets on 127.0.0.1, one OS thread each, together keeping `window`
//! PAP Access-Requests in flight (each socket up to 256, one per RADIUS identifier). Every request carries a
//! fresh random Request Authenticator and a Message-Authenticator; every reply is checked as a NAS checks it
//! (Response Authenticator and, when present, Message-Authenticator). Nothing is retransmitted: a request
//! without a reply within `reply_timeout` counts as lost, and its identifier rests for another `reply_timeout`
//! before it is used again, so a late reply cannot be taken for the answer to a newer request.

use super::dataset::{Dataset, PASSWORD};
use crate::{BoxError, Run, Stop};
use radius_server::crypt::hide_user_password;
use radius_server::packet::{attr, response_valid, Builder, Code, Packet};
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How long a receive waits before the loop looks at the clock again.
const POLL: Duration = Duration::from_millis(20);
/// How often the in-flight requests are checked for expiry.
const EXPIRY_SCAN: Duration = Duration::from_millis(50);

/// One RADIUS server under test, as the load generator sees it.
#[derive(Clone)]
pub struct Target {
    pub server: &'static str,
    pub addr: SocketAddr,
    pub secret: Arc<[u8]>,
}

/// The shape of the load: the same for every server.
#[derive(Clone, Copy)]
pub struct Shape {
    /// Requests in flight at once, over all sockets.
    pub window: usize,
    pub sockets: usize,
    /// A request without a reply after this long is lost.
    pub reply_timeout: Duration,
}

/// What came back, per request: every request ends as exactly one of accepts, rejects, challenges, invalid,
/// lost or send errors.
#[derive(Default, Clone)]
pub struct Tally {
    pub sent: u64,
    pub accepts: u64,
    pub rejects: u64,
    pub challenges: u64,
    /// Replies that do not verify with the shared secret, or of an unexpected code.
    pub invalid: u64,
    pub lost: u64,
    pub send_errors: u64,
    /// Replies to no request in flight (after their request was counted lost).
    pub late: u64,
    /// Receive errors (ICMP port unreachable: nothing listens).
    pub recv_errors: u64,
    /// Valid replies without a Message-Authenticator, and with one that is not the first attribute.
    pub without_message_authenticator: u64,
    pub message_authenticator_not_first: u64,
    /// The first Reply-Message of a reject, if any.
    pub reject_message: Option<String>,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.sent += o.sent;
        self.accepts += o.accepts;
        self.rejects += o.rejects;
        self.challenges += o.challenges;
        self.invalid += o.invalid;
        self.lost += o.lost;
        self.send_errors += o.send_errors;
        self.late += o.late;
        self.recv_errors += o.recv_errors;
        self.without_message_authenticator += o.without_message_authenticator;
        self.message_authenticator_not_first += o.message_authenticator_not_first;
        if self.reject_message.is_none() {
            self.reject_message.clone_from(&o.reject_message);
        }
    }

    pub fn non_accepts(&self) -> u64 {
        self.sent - self.accepts
    }

    /// `12 lost, 3 rejected, …`, or `none`.
    pub fn describe_non_accepts(&self) -> String {
        let parts: Vec<String> = [
            (self.rejects, "rejected"),
            (self.challenges, "challenged"),
            (self.invalid, "invalid replies"),
            (self.lost, "lost (no reply in time)"),
            (self.send_errors, "not sent"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A measured run: the throughput run (`done` = accepts, latencies of accepts only) and the tally.
pub struct Outcome {
    pub run: Run,
    pub tally: Tally,
    /// CPU time of this process (the load generator) and of the server process during the run.
    pub loader_cpu: Option<Duration>,
    pub server_cpu: Option<Duration>,
    /// CPU time the whole machine spent busy during the run (all processes, all CPUs).
    pub machine_cpu: Option<Duration>,
}

impl Outcome {
    /// Busy CPU time of everything but the server and the load generator: anything else running disturbed
    /// the run.
    pub fn other_cpu(&self) -> Option<Duration> {
        let (m, s, l) = (self.machine_cpu?, self.server_cpu?, self.loader_cpu?);
        Some(m.saturating_sub(s + l))
    }
}

/// One request, ready to send.
fn access_request(secret: &[u8], id: u8, username: &str) -> Result<(Vec<u8>, [u8; 16]), BoxError> {
    let mut authenticator = [0u8; 16];
    aws_lc_rs::rand::fill(&mut authenticator).map_err(|_| "no randomness for an authenticator")?;
    let mut b = Builder::new(Code::AccessRequest, id, true);
    b.add(attr::USER_NAME, username.as_bytes())?;
    b.add(
        attr::USER_PASSWORD,
        &hide_user_password(secret, &authenticator, PASSWORD.as_bytes()),
    )?;
    b.add(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1])?;
    b.add(attr::NAS_IDENTIFIER, b"stratus-bench")?;
    Ok((b.access_request(secret, &authenticator), authenticator))
}

/// The reply to one request, classified into `tally`; true for an Access-Accept.
fn classify(reply: &[u8], secret: &[u8], authenticator: &[u8; 16], tally: &mut Tally) -> bool {
    if !response_valid(reply, secret, authenticator) {
        tally.invalid += 1;
        return false;
    }
    match Packet::decode(reply) {
        Ok(p) if !p.has_message_authenticator() => tally.without_message_authenticator += 1,
        Ok(_) if reply.get(20) != Some(&attr::MESSAGE_AUTHENTICATOR) => {
            tally.message_authenticator_not_first += 1
        }
        _ => {}
    }
    match Code::from_u8(reply[0]) {
        Code::AccessAccept => {
            tally.accepts += 1;
            true
        }
        Code::AccessReject => {
            tally.rejects += 1;
            if tally.reject_message.is_none() {
                tally.reject_message = Packet::decode(reply)
                    .ok()
                    .and_then(|p| p.text(attr::REPLY_MESSAGE));
            }
            false
        }
        Code::AccessChallenge => {
            tally.challenges += 1;
            false
        }
        _ => {
            tally.invalid += 1;
            false
        }
    }
}

/// Authenticate `username` once, waiting up to `timeout` for the answer: the code of a valid reply, or an error.
pub fn one_request(
    target: &Target,
    username: &str,
    timeout: Duration,
) -> Result<(Code, Packet), BoxError> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(target.addr)?;
    let id = 1u8;
    let (packet, authenticator) = access_request(&target.secret, id, username)?;
    sock.send(&packet)?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 4097];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{}: no reply for {username} within {:.0} s",
                target.server,
                timeout.as_secs_f64()
            )
            .into());
        }
        sock.set_read_timeout(Some(left.min(POLL * 5)))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(format!("{}: receive: {e}", target.server).into()),
        };
        let reply = &buf[..n];
        if reply.len() < 20 || reply[1] != id {
            continue;
        }
        if !response_valid(reply, &target.secret, &authenticator) {
            return Err(format!(
                "{}: the reply for {username} does not verify with the shared secret",
                target.server
            )
            .into());
        }
        let p = Packet::decode(reply)?;
        return Ok((p.code, p));
    }
}

/// Like [`one_request`] but with another password (the check that the server really checks passwords).
pub fn one_wrong_password(
    target: &Target,
    username: &str,
    timeout: Duration,
) -> Result<Code, BoxError> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(target.addr)?;
    let mut authenticator = [0u8; 16];
    aws_lc_rs::rand::fill(&mut authenticator).map_err(|_| "no randomness for an authenticator")?;
    let mut b = Builder::new(Code::AccessRequest, 2, true);
    b.add(attr::USER_NAME, username.as_bytes())?;
    b.add(
        attr::USER_PASSWORD,
        &hide_user_password(&target.secret, &authenticator, b"Not-The-Password-1"),
    )?;
    b.add(attr::NAS_IDENTIFIER, b"stratus-bench")?;
    sock.send(&b.access_request(&target.secret, &authenticator))?;
    sock.set_read_timeout(Some(timeout))?;
    let mut buf = vec![0u8; 4097];
    let n = sock.recv(&mut buf).map_err(|e| {
        format!(
            "{}: no answer to a wrong password for {username}: {e}",
            target.server
        )
    })?;
    if !response_valid(&buf[..n], &target.secret, &authenticator) {
        return Err(format!(
            "{}: the reply to a wrong password does not verify",
            target.server
        )
        .into());
    }
    Ok(Code::from_u8(buf[0]))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// A request in flight on one socket.
#[derive(Clone, Copy)]
struct InFlight {
    sent: Instant,
    authenticator: [u8; 16],
}

/// What one socket's thread brings back.
struct Part {
    tally: Tally,
    latencies: Vec<Duration>,
    /// When this socket stopped issuing, and its last reply.
    stopped: Option<Instant>,
    last_reply: Option<Instant>,
    hit_count: bool,
}

/// The n-th request of a run is for `names[n % names.len()]`: every user in turn, uniformly.
pub fn run(
    name: &'static str,
    target: &Target,
    shape: Shape,
    names: &Arc<Vec<String>>,
    max: u64,
    limit: Duration,
    server_pid: Option<u32>,
) -> Result<Outcome, BoxError> {
    if names.is_empty() {
        return Err("no users to authenticate".into());
    }
    let sockets = shape.sockets.clamp(1, shape.window.max(1));
    let issued = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(sockets + 1));
    let mut socks = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.connect(target.addr)?;
        s.set_read_timeout(Some(POLL))?;
        socks.push(s);
    }
    let start_slot: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    let mut handles = Vec::with_capacity(sockets);
    for (k, sock) in socks.into_iter().enumerate() {
        // The window split as evenly as it goes; no socket holds more than its 256 identifiers.
        let window = (shape.window / sockets + usize::from(k < shape.window % sockets)).min(256);
        let (target, names, issued, barrier, start_slot) = (
            target.clone(),
            Arc::clone(names),
            Arc::clone(&issued),
            Arc::clone(&barrier),
            Arc::clone(&start_slot),
        );
        let timeout = shape.reply_timeout;
        handles.push(std::thread::spawn(move || {
            barrier.wait();
            let start = *start_slot.wait();
            drive(
                &sock, &target, &names, &issued, window, max, start, limit, timeout,
            )
        }));
    }
    let (cpu0, srv0) = (cpu_time(None), server_pid.and_then(|p| cpu_time(Some(p))));
    let busy0 = machine_busy();
    let start = Instant::now();
    let _ = start_slot.set(start);
    barrier.wait();
    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let mut end = start;
    let mut hit_count = false;
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(p)) => {
                tally.add(&p.tally);
                latencies.extend(p.latencies);
                for t in [p.stopped, p.last_reply].into_iter().flatten() {
                    end = end.max(t);
                }
                hit_count |= p.hit_count;
            }
            Ok(Err(e)) => failure = Some(e.to_string()),
            Err(_) => failure = Some("a load thread panicked".into()),
        }
    }
    if let Some(e) = failure {
        return Err(format!("{}: {name}: {e}", target.server).into());
    }
    let (cpu1, srv1) = (cpu_time(None), server_pid.and_then(|p| cpu_time(Some(p))));
    let busy1 = machine_busy();
    latencies.sort_unstable();
    Ok(Outcome {
        run: Run {
            name,
            tasks: shape.window,
            done: tally.accepts,
            elapsed: end - start,
            stop: if hit_count { Stop::Count } else { Stop::Time },
            latencies,
        },
        tally,
        loader_cpu: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        server_cpu: srv0.zip(srv1).map(|(a, b)| b.saturating_sub(a)),
        machine_cpu: busy0.zip(busy1).map(|(a, b)| b.saturating_sub(a)),
    })
}

/// One socket: keep `window` requests in flight until `max` requests were issued (over all sockets) or `limit`
/// has passed since `start`, then wait for the last replies (at most `timeout` more).
#[allow(clippy::too_many_arguments)]
fn drive(
    sock: &UdpSocket,
    target: &Target,
    names: &[String],
    issued: &AtomicU64,
    window: usize,
    max: u64,
    start: Instant,
    limit: Duration,
    timeout: Duration,
) -> Result<Part, BoxError> {
    let deadline = start + limit;
    let secret: &[u8] = &target.secret;
    let mut free: VecDeque<u8> = (0..=255u8).collect();
    let mut resting: VecDeque<(Instant, u8)> = VecDeque::new();
    let mut slots: Vec<Option<InFlight>> = vec![None; 256];
    let mut in_flight = 0usize;
    let mut part = Part {
        tally: Tally::default(),
        latencies: Vec::new(),
        stopped: None,
        last_reply: None,
        hit_count: false,
    };
    let mut buf = vec![0u8; 4097];
    let mut next_scan = start + EXPIRY_SCAN;
    let mut issuing = true;
    loop {
        let now = Instant::now();
        while resting.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, id)) = resting.pop_front() {
                free.push_back(id);
            }
        }
        if issuing && now >= deadline {
            issuing = false;
            part.stopped = Some(now);
        }
        while issuing && in_flight < window {
            let Some(id) = free.pop_front() else { break };
            let n = issued.fetch_add(1, Ordering::Relaxed);
            if n >= max {
                free.push_front(id);
                issuing = false;
                part.hit_count = true;
                part.stopped = Some(Instant::now());
                break;
            }
            let username = &names[(n % names.len() as u64) as usize];
            let (packet, authenticator) = access_request(secret, id, username)?;
            part.tally.sent += 1;
            let sent = Instant::now();
            match sock.send(&packet) {
                Ok(_) => {
                    slots[usize::from(id)] = Some(InFlight {
                        sent,
                        authenticator,
                    });
                    in_flight += 1;
                }
                Err(_) => {
                    part.tally.send_errors += 1;
                    free.push_back(id);
                }
            }
        }
        if now >= next_scan {
            next_scan = now + EXPIRY_SCAN;
            for (id, slot) in slots.iter_mut().enumerate() {
                if slot.is_some_and(|f| now.duration_since(f.sent) >= timeout) {
                    *slot = None;
                    in_flight -= 1;
                    part.tally.lost += 1;
                    resting.push_back((now + timeout, id as u8));
                }
            }
        }
        if !issuing && in_flight == 0 {
            return Ok(part);
        }
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => {
                // ICMP port unreachable on a connected socket: nothing listens. Requests expire as lost.
                part.tally.recv_errors += 1;
                std::thread::sleep(POLL);
                continue;
            }
        };
        let at = Instant::now();
        let reply = &buf[..n];
        if reply.len() < 20 {
            part.tally.late += 1;
            continue;
        }
        let id = reply[1];
        let Some(f) = slots[usize::from(id)].take() else {
            part.tally.late += 1;
            continue;
        };
        in_flight -= 1;
        free.push_back(id);
        part.last_reply = Some(at);
        if classify(reply, secret, &f.authenticator, &mut part.tally) {
            part.latencies.push(at - f.sent);
        }
    }
}

/// User + system CPU time of a process (this one when `None`), from `/proc/<pid>/stat` (Linux; clock ticks of
/// 10 ms, USER_HZ being 100 on every Linux architecture the benchmark runs on).
pub fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let [utime, stime, _, _] = stat_times(pid)?;
    Some(utime + stime)
}

/// User + system CPU time of this process and of its children that have exited and been waited for
/// (`cutime`, `cstime`): the load generator's own CPU when it runs other programs.
pub fn cpu_time_with_children() -> Option<Duration> {
    Some(stat_times(None)?.iter().sum())
}

/// utime, stime, cutime and cstime of a process (this one when `None`).
fn stat_times(pid: Option<u32>) -> Option<[Duration; 4]> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses; the fields after the last ')' start at field 3.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let mut out = [Duration::ZERO; 4];
    for slot in &mut out {
        let ticks: u64 = fields.next()?.parse().ok()?;
        *slot = Duration::from_millis(ticks * 10);
    }
    Some(out)
}

/// Busy CPU time of the whole machine since boot, from the first line of `/proc/stat` (user, nice, system,
/// irq, softirq and steal; idle and iowait are not busy), in the same 10 ms ticks.
pub fn machine_busy() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    Some(Duration::from_millis(busy * 10))
}

/// The usernames a run cycles through: `count` users spread evenly over the data set.
pub fn sample(users: usize, count: usize) -> Vec<String> {
    sample_indices(users, count)
        .into_iter()
        .map(Dataset::username)
        .collect()
}

/// The data-set indices of [`sample`]'s users.
pub fn sample_indices(users: usize, count: usize) -> Vec<usize> {
    let count = count.clamp(1, users);
    (0..count).map(|j| j * users / count).collect()
}
