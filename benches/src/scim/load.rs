//! The SCIM load generator: `tasks` tokio tasks, each sending one request at a time over its own HTTP client
//! (HTTP/1.1: one keep-alive connection per task) or over one shared client (HTTP/2: one connection, a stream
//! per task), until `max` requests were issued over all tasks or `limit` has passed. Every answer is checked:
//! a request counts as done only when its status and its body are what the operation must return.

use crate::ldap::dataset::Dataset;
use crate::radius::load::{cpu_time, machine_busy};
use crate::{BoxError, Run, Stop, XorShift64};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The SCIM media type (RFC 7644 §3.1).
pub const SCIM_JSON: &str = "application/scim+json";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The service provider under test.
pub struct Target {
    /// `https://127.0.0.1:<port>/scim/v2`
    pub base: String,
    /// `Bearer <SCIM token>`
    pub authorization: String,
    /// The imported users `bench0000000`… the look-ups pick from.
    pub users: usize,
}

/// What one request does.
#[derive(Clone, Copy)]
pub enum Work {
    /// `GET /Users?filter=userName eq "<random imported user>"`: one user, found through the username index.
    ByUserName,
    /// `GET /Users?filter=emails[type eq "work"].value eq "<random imported user's address>"` (the form Entra
    /// sends): one user, found through the e-mail index.
    ByEmail,
    /// `GET /Users?filter=userName ew "<random imported user>"`: one user, found by a scan (no index serves
    /// `ew`).
    Scan,
    /// `POST /Users` with a new user `bench-<tag>-<n>`, without a password.
    Create { tag: &'static str },
}

/// How each request (or, for the SAML benchmark, each login) ended: every one issued is exactly one of ok, unexpected status, wrong body or no
/// answer.
#[derive(Default)]
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    /// Answers with a status other than the one expected, by status.
    pub statuses: BTreeMap<u16, u64>,
    /// Answers with the expected status but not the expected body.
    pub wrong: u64,
    /// Requests without an answer: connection errors and timeouts.
    pub transport: u64,
    /// The first failure, described.
    pub first_error: Option<String>,
}

impl Tally {
    pub(crate) fn add(&mut self, o: Tally) {
        self.sent += o.sent;
        self.ok += o.ok;
        for (s, n) in o.statuses {
            *self.statuses.entry(s).or_default() += n;
        }
        self.wrong += o.wrong;
        self.transport += o.transport;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
    }

    pub fn errors(&self) -> u64 {
        self.sent - self.ok
    }

    /// The errors column of a results table: `0`, or the count with its share of those sent.
    pub fn errors_cell(&self) -> String {
        if self.errors() == 0 {
            "0".to_string()
        } else {
            format!(
                "{} ({:.1}%)",
                self.errors(),
                100.0 * self.errors() as f64 / self.sent.max(1) as f64
            )
        }
    }

    /// `3 × 429, 1 wrong body, 2 without an answer`, or `none`.
    pub fn describe_errors(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{n} x {s}"))
            .collect();
        if self.wrong > 0 {
            parts.push(format!("{} with a wrong body", self.wrong));
        }
        if self.transport > 0 {
            parts.push(format!("{} without an answer", self.transport));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    pub(crate) fn fail(&mut self, f: Failure) {
        match &f {
            Failure::Status(s, _) => *self.statuses.entry(*s).or_default() += 1,
            Failure::Wrong(_) => self.wrong += 1,
            Failure::Transport(_) => self.transport += 1,
        }
        if self.first_error.is_none() {
            self.first_error = Some(f.to_string());
        }
    }
}

/// Why one request did not count.
pub enum Failure {
    Status(u16, String),
    Wrong(String),
    Transport(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(s, body) => write!(f, "status {s}: {body}"),
            Failure::Wrong(why) => write!(f, "wrong body: {why}"),
            Failure::Transport(why) => write!(f, "no answer: {why}"),
        }
    }
}

/// A measured run: `run.done` counts the requests that were ok, and `run.latencies` are theirs.
pub struct Outcome {
    pub run: Run,
    pub tally: Tally,
    /// CPU time of the server process, of this process (the load generator) and of the whole machine during
    /// the run.
    pub server_cpu: Option<Duration>,
    pub loader_cpu: Option<Duration>,
    pub machine_cpu: Option<Duration>,
}

impl Outcome {
    /// Busy CPU time of everything but the server and the load generator.
    pub fn other_cpu(&self) -> Option<Duration> {
        let (m, s, l) = (self.machine_cpu?, self.server_cpu?, self.loader_cpu?);
        Some(m.saturating_sub(s + l))
    }
}

/// Percent-encoding for a query value: everything but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `GET /Users` with `filter`, percent-encoded.
pub fn filter_url(target: &Target, filter: &str) -> String {
    format!("{}/Users?filter={}", target.base, encode(filter))
}

/// An answer: its status, HTTP version and body.
pub struct Answer {
    pub status: StatusCode,
    pub version: reqwest::Version,
    pub body: String,
}

/// Send one request; `None` for the body of a GET.
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    url: &str,
    post: Option<&Value>,
) -> Result<Answer, Failure> {
    let req = match post {
        None => client.get(url),
        Some(body) => client
            .post(url)
            .header(CONTENT_TYPE, SCIM_JSON)
            .body(body.to_string()),
    };
    let resp = req
        .header(AUTHORIZATION, &target.authorization)
        .send()
        .await
        .map_err(|e| Failure::Transport(error_chain(&e)))?;
    let (status, version) = (resp.status(), resp.version());
    let body = resp
        .text()
        .await
        .map_err(|e| Failure::Transport(error_chain(&e)))?;
    Ok(Answer {
        status,
        version,
        body,
    })
}

/// An error with its sources, which say what actually went wrong (reqwest's own message rarely does).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

fn excerpt(body: &str) -> String {
    let one_line: String = body.chars().take(200).collect();
    one_line.replace('\n', " ")
}

/// The body of an answer with `expected` status, as JSON; anything else is a failure.
pub fn expect(answer: Answer, expected: StatusCode) -> Result<Value, Failure> {
    if answer.status != expected {
        return Err(Failure::Status(
            answer.status.as_u16(),
            excerpt(&answer.body),
        ));
    }
    serde_json::from_str(&answer.body)
        .map_err(|e| Failure::Wrong(format!("not JSON ({e}): {}", excerpt(&answer.body))))
}

/// The single resource of a ListResponse, which must say `totalResults: 1` and hold a user named `user_name`
/// (and, when given, with the first address `mail`).
pub fn only_user<'a>(
    list: &'a Value,
    user_name: &str,
    mail: Option<&str>,
) -> Result<&'a Value, Failure> {
    let total = list.get("totalResults").and_then(Value::as_u64);
    if total != Some(1) {
        return Err(Failure::Wrong(format!(
            "totalResults {total:?} for userName {user_name}, not 1"
        )));
    }
    let user = list
        .get("Resources")
        .and_then(|r| r.get(0))
        .ok_or_else(|| Failure::Wrong("no Resources[0]".into()))?;
    let got = user.get("userName").and_then(Value::as_str);
    if got != Some(user_name) {
        return Err(Failure::Wrong(format!(
            "userName {got:?}, expected {user_name}"
        )));
    }
    if let Some(mail) = mail {
        let got = user
            .pointer("/emails/0/value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !got.eq_ignore_ascii_case(mail) {
            return Err(Failure::Wrong(format!(
                "emails[0].value {got:?}, expected {mail}"
            )));
        }
    }
    Ok(user)
}

/// The SCIM document of a new user `name`, with a work address at example.com and no password.
pub fn new_user(name: &str, n: u64) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": name,
        "name": {"givenName": "B", "familyName": n.to_string()},
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
        "active": true,
    })
}

/// The `n`-th request of a run, checked.
async fn one(
    client: &reqwest::Client,
    target: &Target,
    work: Work,
    n: u64,
    rng: &mut XorShift64,
) -> Result<(), Failure> {
    match work {
        Work::ByUserName => {
            let name = Dataset::username((rng.next() % target.users as u64) as usize);
            let url = filter_url(target, &format!("userName eq \"{name}\""));
            let list = expect(send(client, target, &url, None).await?, StatusCode::OK)?;
            only_user(&list, &name, None).map(|_| ())
        }
        Work::ByEmail => {
            let i = (rng.next() % target.users as u64) as usize;
            let (name, mail) = (Dataset::username(i), Dataset::email(i));
            let url = filter_url(
                target,
                &format!("emails[type eq \"work\"].value eq \"{mail}\""),
            );
            let list = expect(send(client, target, &url, None).await?, StatusCode::OK)?;
            only_user(&list, &name, Some(&mail)).map(|_| ())
        }
        Work::Scan => {
            let name = Dataset::username((rng.next() % target.users as u64) as usize);
            let url = filter_url(target, &format!("userName ew \"{name}\""));
            let list = expect(send(client, target, &url, None).await?, StatusCode::OK)?;
            only_user(&list, &name, None).map(|_| ())
        }
        Work::Create { tag } => {
            let name = format!("bench-{tag}-{n:08}");
            let url = format!("{}/Users", target.base);
            let body = new_user(&name, n);
            let user = expect(
                send(client, target, &url, Some(&body)).await?,
                StatusCode::CREATED,
            )?;
            match user.get("userName").and_then(Value::as_str) {
                Some(got) if got == name => Ok(()),
                got => Err(Failure::Wrong(format!(
                    "created userName {got:?}, expected {name}"
                ))),
            }
        }
    }
}

/// What one task saw.
struct Part {
    tally: Tally,
    latencies: Vec<Duration>,
    last: Option<Instant>,
    hit_count: bool,
}

/// `tasks` tasks doing `work` until `max` requests were issued over all of them or `limit` has passed (each
/// then finishes the request it is in, within the clients' timeout). Task `t` uses `clients[t % len]`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    name: &'static str,
    target: &Arc<Target>,
    clients: &[reqwest::Client],
    work: Work,
    tasks: usize,
    max: u64,
    limit: Duration,
    server_pid: u32,
) -> Result<Outcome, BoxError> {
    if clients.is_empty() {
        return Err("no HTTP client".into());
    }
    let issued = Arc::new(AtomicU64::new(0));
    let (cpu0, srv0, busy0) = (cpu_time(None), cpu_time(Some(server_pid)), machine_busy());
    let start = Instant::now();
    let deadline = start + limit;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (target, issued) = (Arc::clone(target), Arc::clone(&issued));
        let client = clients[t % clients.len()].clone();
        set.spawn(async move {
            // A different, fixed sequence of users per task.
            let mut rng = XorShift64(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) << 32));
            let mut part = Part {
                tally: Tally::default(),
                latencies: Vec::new(),
                last: None,
                hit_count: false,
            };
            while Instant::now() < deadline {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= max {
                    part.hit_count = true;
                    break;
                }
                part.tally.sent += 1;
                let t0 = Instant::now();
                let r = one(&client, &target, work, n, &mut rng).await;
                let t1 = Instant::now();
                part.last = Some(t1);
                match r {
                    Ok(()) => {
                        part.tally.ok += 1;
                        part.latencies.push(t1 - t0);
                    }
                    Err(f) => part.tally.fail(f),
                }
            }
            part
        });
    }
    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let mut end = start;
    let mut hit_count = false;
    while let Some(joined) = set.join_next().await {
        let part = joined.map_err(|e| format!("{name}: a load task failed: {e}"))?;
        latencies.extend(part.latencies);
        end = end.max(part.last.unwrap_or(start));
        hit_count |= part.hit_count;
        tally.add(part.tally);
    }
    let (cpu1, srv1, busy1) = (cpu_time(None), cpu_time(Some(server_pid)), machine_busy());
    latencies.sort_unstable();
    Ok(Outcome {
        run: Run {
            name,
            tasks,
            done: tally.ok,
            elapsed: end - start,
            stop: if hit_count { Stop::Count } else { Stop::Time },
            latencies,
        },
        tally,
        server_cpu: srv0.zip(srv1).map(|(a, b)| b.saturating_sub(a)),
        loader_cpu: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        machine_cpu: busy0.zip(busy1).map(|(a, b)| b.saturating_sub(a)),
    })
}
