//! Stratus as the server under test: the real `stratus` binary in a temporary data directory, populated through
//! the admin API exactly as an administrator would, killed when dropped.

use super::dataset::{Dataset, PASSWORD, SERVICE_PASSWORD, SERVICE_USER};
use super::load::Target;
use crate::BoxError;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
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
/// Concurrent membership requests while populating.
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
    _tmp: tempfile::TempDir,
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

impl Stratus {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        let data = tmp.path().join("data");
        let log = tmp.path().join("stratus.log");
        let key = match api_key {
            Some(k) => k.to_string(),
            None => random_key()?,
        };
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
            .current_dir(tmp.path())
            .env("STRATUS_HTTP_ADDR", "127.0.0.1:0")
            .env("STRATUS_LDAP_ADDR", "127.0.0.1:0")
            .env("STRATUS_LDAPS_ADDR", "")
            .env("STRATUS_BOOTSTRAP_API_KEY", &key)
            .env("STRATUS_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("STRATUS_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("STRATUS_LOG_LEVEL", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log)?));
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
                    if api.is_none() { "its HTTP listener" } else { "an LDAP listener" },
                    START_TIMEOUT.as_secs(),
                    log_tail(&log)
                )
                .into());
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
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
        let (api, ldap_url) = (api.unwrap_or_default(), ldap.unwrap_or_default());
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
            _tmp: tmp,
        })
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

    /// Populate the data set and return the LDAP target: users imported by CSV with their password, groups of
    /// 100 with a Linux group each, all bound to `ldap`, and a service account that may search.
    pub async fn populate(&self, data: Dataset) -> Result<Target, BoxError> {
        let suffix = self
            .call(Method::GET, "/settings/org", None)
            .await?
            .get("ldap_suffix")
            .and_then(Value::as_str)
            .ok_or("GET /settings/org has no ldap_suffix")?
            .to_string();

        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "stratus: importing {} users with passwords (one argon2id each: expect about {:.0} s on {cpus} CPUs)",
            data.users,
            data.users as f64 * 0.018 / cpus as f64
        );
        let t0 = Instant::now();
        let mut ids: Vec<String> = Vec::with_capacity(data.users);
        for start in (0..data.users).step_by(IMPORT_CHUNK) {
            let end = (start + IMPORT_CHUNK).min(data.users);
            let mut csv = String::from("firstname,lastname,username,email,password\n");
            for i in start..end {
                writeln!(
                    csv,
                    "{},{},{},{},{PASSWORD}",
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
        let imported = t0.elapsed();

        let t1 = Instant::now();
        let mut memberships = Vec::with_capacity(data.users + 1);
        let mut first_group = String::new();
        for j in 0..data.groups() {
            let name = Dataset::group_name(j);
            let group = self
                .call(
                    Method::POST,
                    "/groups",
                    Some(json!({
                        "name": name,
                        "linux_group": {"name": name, "gid": Dataset::group_gid(j)},
                    })),
                )
                .await?;
            let gid = group
                .get("id")
                .and_then(Value::as_str)
                .ok_or("POST /groups answered without an id")?
                .to_string();
            self.call(Method::PUT, &format!("/groups/{gid}/bindings/ldap"), None)
                .await?;
            for i in data.group_members(j) {
                memberships.push((gid.clone(), ids[i].clone()));
            }
            if j == 0 {
                first_group = gid;
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
        memberships.push((first_group, svc_id.to_string()));
        self.add_members(memberships).await?;
        println!(
            "stratus: {} groups, {} memberships and bindings in {:.1} s (after {:.1} s of import)",
            data.groups(),
            data.users + 1,
            t1.elapsed().as_secs_f64(),
            imported.as_secs_f64()
        );

        Ok(Target {
            server: "stratus",
            url: self.ldap_url.clone(),
            base: format!("ou=Users,{suffix}"),
            search_dn: format!("uid={SERVICE_USER},ou=Users,{suffix}"),
            search_password: SERVICE_PASSWORD.into(),
        })
    }

    /// `PUT /groups/{id}/members/{user_id}` for every pair, from a few concurrent workers.
    async fn add_members(&self, pairs: Vec<(String, String)>) -> Result<(), BoxError> {
        let pairs = Arc::new(pairs);
        let next = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..MEMBER_WORKERS {
            let (pairs, next, http, api, key) = (
                Arc::clone(&pairs),
                Arc::clone(&next),
                self.http.clone(),
                self.api.clone(),
                self.key.clone(),
            );
            set.spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some((group, user)) = pairs.get(n) else {
                        return Ok::<_, BoxError>(());
                    };
                    let path = format!("/groups/{group}/members/{user}");
                    let req = http.put(format!("{api}/api/v1{path}")).bearer_auth(&key);
                    answer(req, &Method::PUT, &path).await?;
                }
            });
        }
        while let Some(joined) = set.join_next().await {
            joined??;
        }
        Ok(())
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
