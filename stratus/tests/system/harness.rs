//! Starts the real `stratus` binary on an ephemeral loopback port in a temporary data directory and talks to it
//! over HTTPS, trusting the dev CA the server generated.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const API_KEY: &str = "stratus_test_bootstrap_key_0123456789";
pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "Bootstrap-Password-42";

/// A running server.
pub struct Server {
    child: Child,
    pub url: String,
    /// `127.0.0.1:port` of the plain LDAP listener.
    pub ldap: String,
    /// `127.0.0.1:port` of the LDAPS listener.
    pub ldaps: String,
    /// `127.0.0.1:port` of the RADIUS authentication and accounting sockets.
    pub radius: String,
    pub radius_accounting: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
    /// With `STRATUS_TEST_STORE=postgres`: the server's own PostgreSQL, stopped after the server.
    _pg: Option<crate::cluster::Postgres>,
}

/// The master key of servers started on PostgreSQL by [`Server::start_in`].
const PG_MASTER_KEY: &str = "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";

/// How to start.
#[derive(Default, Clone)]
pub struct Start {
    /// `faketime` offset such as `+2d`: the server runs with its clock moved.
    pub faketime: Option<String>,
    pub env: Vec<(String, String)>,
    /// Let the server generate the bootstrap admin's password and API key (and print them).
    pub generated_bootstrap: bool,
    /// Run the server with this soft and hard open-files limit (util-linux `prlimit`, which execs it).
    pub nofile: Option<u64>,
}

impl Server {
    pub async fn start() -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("data");
        let mut s = Self::start_in(&dir, Start::default()).await;
        s._tmp = Some(tmp);
        s
    }

    /// Start on an existing (or new) data dir.
    /// A server in a temporary directory with extra environment variables.
    pub async fn start_with_env(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let opts = Start {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let mut s = Self::start_in(&tmp.path().join("data"), opts).await;
        s._tmp = Some(tmp);
        s
    }

    /// With `STRATUS_TEST_STORE=postgres` in the test's environment (scripts/test runs chosen tests so), a server
    /// given no store of its own runs on a PostgreSQL of its own instead of the embedded store.
    pub async fn start_in(dir: &Path, mut opts: Start) -> Server {
        let bin = env!("CARGO_BIN_EXE_stratus");
        let pg = (std::env::var("STRATUS_TEST_STORE").as_deref() == Ok("postgres")
            && !opts.env.iter().any(|(k, _)| k == "STRATUS_STORE"))
        .then(crate::cluster::Postgres::start);
        if let Some(pg) = &pg {
            opts.env.push(("STRATUS_STORE".into(), pg.url()));
            opts.env
                .push(("STRATUS_MASTER_KEY".into(), PG_MASTER_KEY.into()));
        }
        // The clock is moved by preloading libfaketime into the server itself (not through the `faketime`
        // wrapper, which would leave the server a grandchild that a test cannot kill).
        let mut cmd = match opts.nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin);
                c
            }
            None => Command::new(bin),
        };
        if let Some(offset) = &opts.faketime {
            cmd.env("LD_PRELOAD", libfaketime())
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.with_extension("log"))
            .expect("log file");
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .env("STRATUS_HTTP_ADDR", "127.0.0.1:0")
            .env("STRATUS_LDAP_ADDR", "127.0.0.1:0")
            .env("STRATUS_LDAPS_ADDR", "127.0.0.1:0")
            .env("STRATUS_RADIUS_ADDR", "127.0.0.1:0")
            .env("STRATUS_RADIUS_ACCOUNTING_ADDR", "127.0.0.1:0")
            .env("STRATUS_BOOTSTRAP_API_KEY", API_KEY)
            .env("STRATUS_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("STRATUS_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("STRATUS_LOG_LEVEL", "info")
            .env_remove("STRATUS_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if opts.generated_bootstrap {
            cmd.env_remove("STRATUS_BOOTSTRAP_API_KEY")
                .env_remove("STRATUS_BOOTSTRAP_ADMIN_PASSWORD");
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("stratus: listening http=") {
                        let _ = tx.send(url.to_string());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let Ok(url) = rx.recv_timeout(Duration::from_secs(60)) else {
            // Never leave a half-started server behind a failed test.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server did not announce its address; log: {}",
                dir.with_extension("log").display()
            );
        };
        let announced = |name: &str| {
            let prefix = format!("stratus: listening {name}=");
            lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
                .unwrap_or_default()
        };
        let (ldap, ldaps) = (announced("ldap"), announced("ldaps"));
        let (radius, radius_accounting) = (announced("radius"), announced("radius_accounting"));
        let ca = std::fs::read(dir.join("certs/ca.pem")).expect("dev CA written");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA parses")])
            .build()
            .expect("client");
        assert!(
            pg.is_none() || !dir.join("stratus.redb").exists(),
            "a server given PostgreSQL made an embedded store"
        );
        Server {
            child,
            url,
            ldap,
            ldaps,
            radius,
            radius_accounting,
            dir: dir.to_path_buf(),
            _tmp: None,
            _pg: pg,
            stdout: lines,
            http,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop the process and keep the data dir (returned with its temp guard).
    pub fn kill9(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.dir.clone(), self._tmp.take())
    }

    /// SIGTERM and wait for a clean exit; returns the exit status success.
    pub async fn terminate(mut self) -> (bool, PathBuf, Option<tempfile::TempDir>) {
        // Close our pooled keep-alive connections first, as a departing client would.
        self.http = reqwest::Client::new();
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ok = false;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                ok = status.success();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (ok, self.dir.clone(), self._tmp.take())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(API_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &format!("/api/v1{path}"), None)
            .await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, &format!("/api/v1{path}"), Some(body))
            .await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, &format!("/api/v1{path}"), Some(body))
            .await
    }
    pub async fn put(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::PUT, &format!("/api/v1{path}"), body)
            .await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, &format!("/api/v1{path}"), None)
            .await
    }

    /// Change the password policy with `edit`; the change must be accepted. Returns the stored policy.
    pub async fn update_policy(&self, edit: impl FnOnce(&mut Value)) -> Value {
        let (_, mut policy) = self.get("/settings/password-policy").await;
        edit(&mut policy);
        let (st, stored) = self
            .call(
                Method::PUT,
                "/api/v1/settings/password-policy",
                Some(policy),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{stored}");
        stored
    }

    /// Lock accounts after `failures` failures for `minutes` (0 = until an admin unlocks).
    pub async fn lockout(&self, failures: u32, minutes: u32) {
        self.update_policy(|p| {
            p["lockout"] = serde_json::json!({"enabled": true, "max_failures": failures, "lock_minutes": minutes})
        })
        .await;
    }

    /// Portal login; returns status and body.
    pub async fn portal_login(
        &self,
        username: &str,
        password: &str,
        otp: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut body = serde_json::json!({"username": username, "password": password});
        if let Some(o) = otp {
            body["otp"] = Value::String(o.to_string());
        }
        let resp = self
            .http
            .post(format!("{}/portal/api/login", self.url))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Create a user and return its id.
    pub async fn user(&self, username: &str, password: Option<&str>) -> String {
        let (st, v) = self
            .post(
                "/users",
                serde_json::json!({"username": username, "email": format!("{username}@example.com"),
                                   "firstname": "Test", "lastname": username, "password": password}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("id").to_string()
    }

    /// Enrol a user in TOTP and confirm it with the previous step's code, so the current one is still unused.
    /// Returns the base32 secret.
    pub async fn enrol_totp(&self, id: &str) -> String {
        let (st, t) = self
            .post(&format!("/users/{id}/mfa/totp"), serde_json::json!(null))
            .await;
        assert_eq!(st, StatusCode::OK, "{t}");
        let secret = t["secret"].as_str().expect("secret").to_string();
        let (st, u) = self
            .post(
                &format!("/users/{id}/mfa/totp/confirm"),
                serde_json::json!({"code": oathtool(&secret, -30)}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{u}");
        secret
    }

    /// Events of a type for a user, newest first.
    pub async fn events(&self, event_type: &str, user: &str) -> Vec<Value> {
        let (st, v) = self
            .get(&format!("/events?type={event_type}&user={user}&limit=1000"))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v["events"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// libfaketime from Debian's libfaketime package (installed with faketime by scripts/test).
pub fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists());
    found.expect("libfaketime is installed (scripts/test installs faketime)")
}

/// The current TOTP code for a base32 secret, computed by oathtool (an independent implementation).
pub fn oathtool(secret: &str, offset_seconds: i64) -> String {
    let now = chrono::Utc::now() + chrono::Duration::seconds(offset_seconds);
    let out = Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            "--now",
            &now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            secret,
        ])
        .output()
        .expect("oathtool is installed (scripts/test installs it)");
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An `application/x-www-form-urlencoded` body.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let enc = |v: &str| {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Run a headless-Chromium script (`node SCRIPT ARGS…`, playwright-core, installed by scripts/test) off the async
/// runtime; the last JSON line it printed.
pub async fn browser_script(args: Vec<String>) -> Value {
    let what = args.first().cloned().unwrap_or_default();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(args)
            .output()
            .expect("node runs (scripts/test installs playwright-core)")
    })
    .await
    .expect("the browser script's thread");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON from {what}: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}
