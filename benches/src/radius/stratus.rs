//! Stratus as the RADIUS server under test: the real `stratus` binary in a temporary data directory, populated
//! through the admin API as an administrator would, then restarted on the same data directory with the
//! credential cache off.

use super::dataset::{Dataset, PASSWORD};
use super::load::Target;
use crate::BoxError;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_EMAIL: &str = "bench-admin@bench.local";
const ADMIN_PASSWORD: &str = "Bench-Admin-Pass-1";
/// Rows per `POST /api/v1/import/users`: each row with a password costs one argon2id hash on the server.
const IMPORT_CHUNK: usize = 1_000;
/// Concurrent admin API requests (memberships, password sets) while populating.
const MEMBER_WORKERS: usize = 8;
/// Longest the server may take to announce its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a graceful stop may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest one admin API request may take (an import chunk hashes a thousand passwords).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The data directory and credentials that outlive one server process.
pub struct Data {
    tmp: tempfile::TempDir,
    key: String,
}

impl Data {
    pub fn new() -> Result<Self, BoxError> {
        Self::with_prefix("stratus-bench-radius")
    }

    /// [`Data::new`] in a temporary directory whose name starts with `prefix`.
    pub fn with_prefix(prefix: &str) -> Result<Self, BoxError> {
        let tmp = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let mut bytes = [0u8; 13];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness for the API key")?;
        let mut key = String::from("stratus_bench_");
        for b in bytes {
            write!(key, "{b:02x}")?;
        }
        Ok(Data { tmp, key })
    }

    /// The development certificates Stratus generates on its first start: `ca.pem`, `server.pem` (the server
    /// certificate and the CA) and `server-key.pem` (ECDSA P-256).
    pub fn certs_dir(&self) -> PathBuf {
        self.tmp.path().join("data/certs")
    }
}

/// What [`Server::populate_with`] created.
pub struct Populated {
    /// The user ids, in data-set order.
    pub user_ids: Vec<String>,
}

/// How [`Server::start_with`] starts the server.
pub struct Options<'a> {
    pub credential_cache: bool,
    /// RADIUS authentication and accounting on ephemeral loopback ports; both off when false.
    pub radius: bool,
    /// More environment variables for the server (after every caller's `STRATUS_*` one was removed).
    pub env: &'a [(&'a str, &'a str)],
    /// The server's log (its stderr), in the temporary directory.
    pub log_name: &'a str,
}

/// A running `stratus serve`; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    log: PathBuf,
    api: String,
    /// The RADIUS authentication listener; 127.0.0.1:0 when started with RADIUS off.
    pub radius: SocketAddr,
    key: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child, STOP_TIMEOUT);
    }
}

/// Ask a child to stop with SIGTERM (by `kill`, the only portable way without libc), kill it if it has not
/// exited within `grace`, and reap it.
pub fn stop(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `stratus` next to this executable (both are built into the same target directory), else
/// `target/release/stratus`.
pub fn default_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("stratus")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("target/release/stratus"))
}

/// `no warnings`, or how many lines of the server's log (level warn and up) there are and the first one: a
/// dropped datagram (overload, bad authenticator) is logged as a warning.
pub fn warnings(path: &Path) -> String {
    let text = strip_ansi(&std::fs::read_to_string(path).unwrap_or_default());
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.first() {
        None => "no warnings".into(),
        Some(first) => {
            let first: String = first.chars().take(300).collect();
            format!("{} lines; first: {first}", lines.len())
        }
    }
}

/// The text without terminal colour sequences (`ESC [ … letter`), which the server's log carries.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn log_tail(path: &Path) -> String {
    let text = strip_ansi(&std::fs::read_to_string(path).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

impl Server {
    /// Start `bin serve` on the data directory of `data`: HTTP and RADIUS (authentication and accounting) on
    /// ephemeral loopback ports, LDAP and LDAPS off, and wait for the HTTPS and RADIUS listeners.
    pub fn start(bin: &Path, data: &Data, credential_cache: bool) -> Result<Self, BoxError> {
        Self::start_with(
            bin,
            data,
            &Options {
                credential_cache,
                radius: true,
                env: &[],
                log_name: if credential_cache {
                    "stratus-cache-on.log"
                } else {
                    "stratus-cache-off.log"
                },
            },
        )
    }

    /// [`Server::start`] with RADIUS optional and more environment variables; waits for the HTTPS listener and,
    /// when RADIUS is on, its listener.
    pub fn start_with(bin: &Path, data: &Data, opts: &Options<'_>) -> Result<Self, BoxError> {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p stratus`, or pass --stratus-bin",
                bin.display()
            )
            .into());
        }
        let dir = data.tmp.path();
        let log = dir.join(opts.log_name);
        let radius_addr = if opts.radius { "127.0.0.1:0" } else { "" };
        let mut cmd = Command::new(bin);
        // Nothing from the caller's environment may point the server at real data, keys or listeners.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("STRATUS_") {
                cmd.env_remove(name);
            }
        }
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.join("data"))
            // No ./stratus.toml is picked up from the temporary directory.
            .current_dir(dir)
            .env("STRATUS_HTTP_ADDR", "127.0.0.1:0")
            .env("STRATUS_LDAP_ADDR", "")
            .env("STRATUS_LDAPS_ADDR", "")
            .env("STRATUS_RADIUS_ADDR", radius_addr)
            .env("STRATUS_RADIUS_ACCOUNTING_ADDR", radius_addr)
            .env(
                "STRATUS_CREDENTIAL_CACHE",
                opts.credential_cache.to_string(),
            )
            .env("STRATUS_BOOTSTRAP_API_KEY", &data.key)
            .env("STRATUS_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("STRATUS_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("STRATUS_LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log)?));
        for (name, value) in opts.env {
            cmd.env(name, value);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining stdout for the server's whole life, so it never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("stratus: listening ") {
                    if let Some((kind, addr)) = rest.trim().split_once('=') {
                        let _ = tx.send((kind.to_string(), addr.to_string()));
                    }
                }
            }
        });
        let (mut api, mut radius) = (None, None);
        if !opts.radius {
            radius = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while api.is_none() || radius.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "stratus exited ({status}) before listening; its log:\n{}",
                    log_tail(&log)
                )
                .into());
            }
            if Instant::now() >= deadline {
                stop(&mut child, Duration::from_secs(1));
                return Err(format!(
                    "stratus did not announce {} within {} s; its log:\n{}",
                    if api.is_none() {
                        "its HTTP listener"
                    } else {
                        "a RADIUS listener (is it wired into this binary?)"
                    },
                    START_TIMEOUT.as_secs(),
                    log_tail(&log)
                )
                .into());
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok((kind, addr)) if kind == "http" => api = Some(addr),
                Ok((kind, addr)) if kind == "radius" => {
                    radius = Some(
                        addr.parse::<SocketAddr>()
                            .map_err(|e| format!("stratus announced radius={addr}: {e}"))?,
                    )
                }
                _ => {}
            }
        }
        let (api, radius) = (api.unwrap_or_default(), radius.ok_or("no RADIUS address")?);
        let ca_path = dir.join("data/certs/ca.pem");
        let ca =
            std::fs::read(&ca_path).map_err(|e| format!("dev CA {}: {e}", ca_path.display()))?;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Server {
            child,
            log,
            api,
            radius,
            key: data.key.clone(),
            http,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// `https://127.0.0.1:<port>`, the HTTPS listener.
    pub fn api_url(&self) -> &str {
        &self.api
    }

    /// One admin API call (path under `/api/v1`) with the bootstrap API key; a non-2xx answer is an error.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BoxError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}/api/v1{path}", self.api))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req, &method, path).await
    }

    /// Populate the data set: a RADIUS server profile `bench` for 127.0.0.1/32 with `secret`, a group
    /// `bench-radius` bound to it, and every user imported by CSV with its password and made a member.
    pub async fn populate(&self, data: Dataset, secret: &str) -> Result<(), BoxError> {
        self.populate_with(data, secret, None).await.map(|_| ())
    }

    /// [`Server::populate`] with the profile's `methods` set when given (the profile's default, PAP, when
    /// not); returns the user ids.
    pub async fn populate_with(
        &self,
        data: Dataset,
        secret: &str,
        methods: Option<&[&str]>,
    ) -> Result<Populated, BoxError> {
        let mut body = json!({
            "name": "bench",
            "networks": ["127.0.0.1/32"],
            "secret": secret,
            // Says why on a reject, so an unexpected one is explained in the output.
            "reject_reply_message": true,
        });
        if let Some(m) = methods {
            body["methods"] = json!(m);
        }
        let profile = self
            .call(Method::POST, "/radius-servers", Some(body))
            .await?;
        let profile_id = profile
            .get("id")
            .and_then(Value::as_str)
            .ok_or("POST /radius-servers answered without an id")?
            .to_string();
        let group = self
            .call(
                Method::POST,
                "/groups",
                Some(json!({"name": "bench-radius"})),
            )
            .await?;
        let group_id = group
            .get("id")
            .and_then(Value::as_str)
            .ok_or("POST /groups answered without an id")?
            .to_string();
        self.call(
            Method::PUT,
            &format!("/groups/{group_id}/bindings/radius:{profile_id}"),
            None,
        )
        .await?;

        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "stratus: importing {} users with passwords (one argon2id each: expect about {:.0} s on {cpus} CPUs)",
            data.users,
            data.users as f64 * 0.022 / cpus as f64
        );
        let t0 = Instant::now();
        let ids = self.import(data, t0, Some(PASSWORD), IMPORT_CHUNK).await?;
        let imported = t0.elapsed();
        let t1 = Instant::now();
        let calls = ids
            .iter()
            .map(|u| (Method::PUT, format!("/groups/{group_id}/members/{u}"), None))
            .collect();
        self.concurrently(calls).await?;
        println!(
            "stratus: {} users imported in {:.1} s, made members of one group bound to radius:{profile_id} in \
             {:.1} s",
            data.users,
            imported.as_secs_f64(),
            t1.elapsed().as_secs_f64()
        );
        Ok(Populated { user_ids: ids })
    }

    /// `POST /users/{id}/password` with `password` for every id, from a few concurrent workers (each costs the
    /// server two argon2id: the history check against the current hash, and the new hash).
    pub async fn set_passwords(&self, ids: &[String], password: &str) -> Result<(), BoxError> {
        let calls = ids
            .iter()
            .map(|id| {
                (
                    Method::POST,
                    format!("/users/{id}/password"),
                    Some(json!({ "password": password })),
                )
            })
            .collect();
        self.concurrently(calls).await
    }

    /// `POST /import/users` with CSV rows carrying `password` (none: staged users, no argon2id), `chunk` rows
    /// per request; returns the user ids in data-set order.
    pub(crate) async fn import(
        &self,
        data: Dataset,
        t0: Instant,
        password: Option<&str>,
        chunk: usize,
    ) -> Result<Vec<String>, BoxError> {
        let chunk = chunk.max(1);
        let password = password.unwrap_or_default();
        let mut ids: Vec<String> = Vec::with_capacity(data.users);
        for start in (0..data.users).step_by(chunk) {
            let end = (start + chunk).min(data.users);
            let mut csv = String::from("firstname,lastname,username,email,password\n");
            for i in start..end {
                writeln!(
                    csv,
                    "{},{},{},{},{password}",
                    Dataset::FIRST_NAME,
                    Dataset::last_name(i),
                    Dataset::username(i),
                    Dataset::email(i)
                )?;
            }
            let req = self
                .http
                .post(format!("{}/api/v1/import/users", self.api))
                .bearer_auth(&self.key)
                .header(reqwest::header::CONTENT_TYPE, "text/csv")
                .body(csv);
            let report = answer(req, &Method::POST, "/import/users").await?;
            let by_name: HashMap<&str, &Value> = report
                .get("rows")
                .and_then(Value::as_array)
                .map(|rows| {
                    rows.iter()
                        .filter_map(|r| Some((r.get("username")?.as_str()?, r)))
                        .collect()
                })
                .unwrap_or_default();
            for i in start..end {
                let name = Dataset::username(i);
                let row = by_name
                    .get(name.as_str())
                    .ok_or_else(|| format!("import report has no row for {name}"))?;
                match row.get("user_id").and_then(Value::as_str) {
                    Some(id) if row.get("status").and_then(Value::as_str) == Some("imported") => {
                        ids.push(id.to_string())
                    }
                    _ => {
                        return Err(format!(
                            "importing {name} failed: {}",
                            row.get("message").and_then(Value::as_str).unwrap_or("?")
                        )
                        .into())
                    }
                }
            }
            println!(
                "stratus: {end}/{} users imported, {:.0} s",
                data.users,
                t0.elapsed().as_secs_f64()
            );
        }
        Ok(ids)
    }

    /// Every admin API call of `calls` (method, path under `/api/v1`, JSON body), from [`MEMBER_WORKERS`]
    /// concurrent workers; the first failure is the error.
    async fn concurrently(
        &self,
        calls: Vec<(Method, String, Option<Value>)>,
    ) -> Result<(), BoxError> {
        let calls = Arc::new(calls);
        let next = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..MEMBER_WORKERS {
            let (calls, next, http, api, key) = (
                Arc::clone(&calls),
                Arc::clone(&next),
                self.http.clone(),
                self.api.clone(),
                self.key.clone(),
            );
            set.spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some((method, path, body)) = calls.get(n) else {
                        return Ok::<_, BoxError>(());
                    };
                    let mut req = http
                        .request(method.clone(), format!("{api}/api/v1{path}"))
                        .bearer_auth(&key);
                    if let Some(b) = body {
                        req = req.json(b);
                    }
                    answer(req, method, path).await?;
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            joined??;
        }
        Ok(())
    }

    pub fn target(&self, secret: &Arc<[u8]>) -> Target {
        Target {
            server: "stratus",
            addr: self.radius,
            secret: Arc::clone(secret),
        }
    }
}

/// Send `req`; a non-2xx answer is an error carrying the body.
async fn answer(
    req: reqwest::RequestBuilder,
    method: &Method,
    path: &str,
) -> Result<Value, BoxError> {
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        return Err(format!("{method} {path}: {status}: {text}").into());
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&text).map_err(|e| format!("{method} {path}: bad JSON: {e}"))?)
}
