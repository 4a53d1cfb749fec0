//! Stratus as the server under test: the real `stratus` binary in a temporary data directory, populated through
//! the admin API exactly as an administrator would, killed when dropped.

use super::dataset::{Dataset, SERVICE_PASSWORD, SERVICE_USER};
use super::load::Target;
use crate::BoxError;
use reqwest::Method;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN_EMAIL: &str = "bench-admin@bench.local";
const ADMIN_PASSWORD: &str = "Bench-Admin-Pass-1";
/// Rows per `POST /api/v1/import/users`: each row with a password costs one argon2id hash on the server.
const IMPORT_CHUNK: usize = 1_000;
/// Concurrent group requests while populating.
const MEMBER_WORKERS: usize = 8;
/// Longest the server may take to announce its listeners.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one admin API request may take (an import chunk hashes a thousand passwords).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// A running `stratus serve`.
pub struct Stratus {
    child: Child,
    log: PathBuf,
    api: String,
    ldap_url: String,
    key: String,
    http: reqwest::Client,
    /// What a restart runs again.
    bin: PathBuf,
    env: Vec<(String, String)>,
    dir: PathBuf,
    /// Removes `dir` when dropped, unless [`Stratus::keep`] took it.
    tmp: Option<tempfile::TempDir>,
}

impl Drop for Stratus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn random_key() -> Result<String, BoxError> {
    let mut bytes = [0u8; 13];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness for the API key")?;
    let mut key = String::from("stratus_bench_");
    for b in bytes {
        write!(key, "{b:02x}")?;
    }
    Ok(key)
}

/// Start `bin serve` on the data directory under `dir` (its log beside it) and wait until its HTTPS and LDAP
/// listeners are announced; returns the process, the HTTPS base URL and the LDAP URL.
fn launch(
    bin: &Path,
    dir: &Path,
    env: &[(String, String)],
    key: &str,
) -> Result<(Child, String, String), BoxError> {
    let data = dir.join("data");
    let log = dir.join("stratus.log");
    let mut cmd = Command::new(bin);
    // Nothing from the caller's environment may point the server at real data, keys or listeners.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STRATUS_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        // No ./stratus.toml is picked up from the temporary directory.
        .current_dir(dir)
        .env("STRATUS_HTTP_ADDR", "127.0.0.1:0")
        .env("STRATUS_LDAP_ADDR", "127.0.0.1:0")
        .env("STRATUS_LDAPS_ADDR", "")
        .env("STRATUS_BOOTSTRAP_API_KEY", key)
        .env("STRATUS_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("STRATUS_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("STRATUS_LOG_LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?,
        ));
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
    let (mut api, mut ldap) = (None, None);
    let deadline = Instant::now() + START_TIMEOUT;
    while api.is_none() || ldap.is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "stratus exited ({status}) before listening; its log:\n{}",
                log_tail(&log)
            )
            .into());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "stratus did not announce {} within {} s (is the LDAP listener wired into this \
                 binary?); its log:\n{}",
                if api.is_none() {
                    "its HTTP listener"
                } else {
                    "an LDAP listener"
                },
                START_TIMEOUT.as_secs(),
                log_tail(&log)
            )
            .into());
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((kind, addr)) if kind == "http" => api = Some(addr),
            Ok((kind, addr)) if kind == "ldap" => {
                ldap = Some(if addr.starts_with("ldap://") {
                    addr
                } else {
                    format!("ldap://{addr}")
                })
            }
            _ => {}
        }
    }
    Ok((child, api.unwrap_or_default(), ldap.unwrap_or_default()))
}

impl Stratus {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop the server as an administrator would (SIGTERM, then wait for it to close its store), killing it
    /// only if it has not exited within a minute.
    pub fn stop(&mut self) -> Result<(), BoxError> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err("stratus did not stop within 60 s of SIGTERM".into())
    }

    /// Leave the server's directory (data and log) in place when this is dropped; returns it.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(t) = self.tmp.take() {
            let _ = t.keep();
        }
        self.dir.clone()
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The LDAP listener's URL.
    pub fn ldap_url(&self) -> &str {
        &self.ldap_url
    }

    /// Start `bin serve` on ephemeral loopback ports, LDAPS off, and wait for its HTTPS and LDAP listeners.
    pub fn start(bin: &Path) -> Result<Self, BoxError> {
        Self::start_with(bin, &[], None)
    }

    /// The HTTPS base URL, the API key and a client that trusts the server's dev CA.
    pub fn api(&self) -> (&str, &str, &reqwest::Client) {
        (&self.api, &self.key, &self.http)
    }

    /// [`Stratus::start`] with extra `STRATUS_*` settings (such as a shared store) and, optionally, the API
    /// key another node of the same directory bootstrapped.
    pub fn start_with(
        bin: &Path,
        env: &[(&str, &str)],
        api_key: Option<&str>,
    ) -> Result<Self, BoxError> {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p stratus`, or pass --stratus-bin",
                bin.display()
            )
            .into());
        }
        let tmp = tempfile::Builder::new()
            .prefix("stratus-bench-stratus")
            .tempdir()?;
        let key = match api_key {
            Some(k) => k.to_string(),
            None => random_key()?,
        };
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let log = tmp.path().join("stratus.log");
        let (child, api, ldap_url) = launch(bin, tmp.path(), &env, &key)?;
        let data = tmp.path().join("data");
        let ca = std::fs::read(data.join("certs/ca.pem"))
            .map_err(|e| format!("dev CA {}: {e}", data.join("certs/ca.pem").display()))?;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Stratus {
            child,
            log,
            api,
            ldap_url,
            key,
            http,
            bin: bin.to_path_buf(),
            env,
            dir: tmp.path().to_path_buf(),
            tmp: Some(tmp),
        })
    }

    /// Stop the server and start it again on the same data directory (new ports); returns the time from the
    /// start of the process to its HTTPS and LDAP listeners being announced, which comes after the store was
    /// opened and the snapshot built.
    pub fn restart(&mut self) -> Result<Duration, BoxError> {
        self.stop()?;
        let t0 = Instant::now();
        let (child, api, ldap_url) = launch(&self.bin, &self.dir, &self.env, &self.key)?;
        let ready = t0.elapsed();
        (self.child, self.api, self.ldap_url) = (child, api, ldap_url);
        Ok(ready)
    }

    async fn call(
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

    /// Populate the data set and return the LDAP target: groups of 100 with a Linux group each, all bound to
    /// `ldap`; users imported by CSV with their password and their group (the import's `groups` column); and a
    /// service account that may search.
    pub async fn populate(&self, data: Dataset) -> Result<Target, BoxError> {
        let suffix = self
            .call(Method::GET, "/settings/org", None)
            .await?
            .get("ldap_suffix")
            .and_then(Value::as_str)
            .ok_or("GET /settings/org has no ldap_suffix")?
            .to_string();

        let t0 = Instant::now();
        let first_group = self.make_groups(data).await?;
        println!(
            "stratus: {} groups with their LDAP bindings in {:.1} s",
            data.groups(),
            t0.elapsed().as_secs_f64()
        );

        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "stratus: importing {} users with passwords and groups (one argon2id each: expect about {:.0} s on {cpus} \
             CPUs at the default cost)",
            data.users,
            data.users as f64 * 0.018 / cpus as f64
        );
        let t1 = Instant::now();
        // About ten progress lines, whatever the size.
        let report_every = (data.users / 10).max(IMPORT_CHUNK);
        for start in (0..data.users).step_by(IMPORT_CHUNK) {
            let end = (start + IMPORT_CHUNK).min(data.users);
            let csv = Dataset::import_csv(start..end);
            let req = self
                .http
                .post(format!("{}/api/v1/import/users", self.api))
                .bearer_auth(&self.key)
                .header(reqwest::header::CONTENT_TYPE, "text/csv")
                .body(csv);
            let report = answer(req, &Method::POST, "/import/users").await?;
            let rows = report
                .get("rows")
                .and_then(Value::as_array)
                .ok_or("the import report has no rows")?;
            if rows.len() != end - start {
                return Err(format!(
                    "the import report has {} rows for {} users",
                    rows.len(),
                    end - start
                )
                .into());
            }
            if let Some(bad) = rows
                .iter()
                .find(|r| r.get("status").and_then(Value::as_str) != Some("imported"))
            {
                return Err(format!("importing a user failed: {bad}").into());
            }
            if end == data.users || end % report_every < IMPORT_CHUNK {
                println!(
                    "stratus: {end}/{} users imported, {:.0} s",
                    data.users,
                    t1.elapsed().as_secs_f64()
                );
            }
        }

        let svc = self
            .call(
                Method::POST,
                "/users",
                Some(json!({
                    "username": SERVICE_USER,
                    "email": "svc@bench.local",
                    "firstname": "Bench",
                    "lastname": "Service",
                    "password": SERVICE_PASSWORD,
                    "ldap_bind_dn": true,
                })),
            )
            .await?;
        let svc_id = svc
            .get("id")
            .and_then(Value::as_str)
            .ok_or("POST /users answered without an id")?;
        let path = format!("/groups/{first_group}/members/{svc_id}");
        self.call(Method::PUT, &path, None).await?;

        Ok(Target {
            server: "stratus",
            url: self.ldap_url.clone(),
            base: format!("ou=Users,{suffix}"),
            search_dn: format!("uid={SERVICE_USER},ou=Users,{suffix}"),
            search_password: SERVICE_PASSWORD.into(),
            pid: Some(self.pid()),
        })
    }

    /// The data set's groups, each with its Linux group and bound to `ldap`, from a few concurrent workers;
    /// returns the first group's id.
    async fn make_groups(&self, data: Dataset) -> Result<String, BoxError> {
        let next = Arc::new(AtomicUsize::new(0));
        let groups = data.groups();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..MEMBER_WORKERS {
            let (next, http, api, key) = (
                Arc::clone(&next),
                self.http.clone(),
                self.api.clone(),
                self.key.clone(),
            );
            set.spawn(async move {
                let mut first = None;
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= groups {
                        return Ok::<_, BoxError>(first);
                    }
                    let name = Dataset::group_name(j);
                    let req = http
                        .post(format!("{api}/api/v1/groups"))
                        .bearer_auth(&key)
                        .json(&json!({
                            "name": name,
                            "linux_group": {"name": name, "gid": Dataset::group_gid(j)},
                        }));
                    let group = answer(req, &Method::POST, "/groups").await?;
                    let gid = group
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or("POST /groups answered without an id")?
                        .to_string();
                    let path = format!("/groups/{gid}/bindings/ldap");
                    let req = http.put(format!("{api}/api/v1{path}")).bearer_auth(&key);
                    answer(req, &Method::PUT, &path).await?;
                    if j == 0 {
                        first = Some(gid);
                    }
                }
            });
        }
        let mut first = None;
        while let Some(joined) = set.join_next().await {
            if let Some(g) = joined?? {
                first = Some(g);
            }
        }
        first.ok_or_else(|| "the data set has no group".into())
    }

    /// The server's log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
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
