//! Several Stratus nodes on one PostgreSQL: a real PostgreSQL 15 from the machine's packages (initdb into a
//! temporary directory, run as the unprivileged `postgres` user on an ephemeral loopback port), two real
//! `stratus` processes on it, and real clients (ldapwhoami, radclient, the admin API) on each.

use crate::harness::{form_body, Server, Start};
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const MASTER_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A PostgreSQL server for one test, stopped (and its files removed) when dropped.
pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// Run a PostgreSQL tool as the unprivileged `postgres` user when the tests run as root (initdb refuses root).
fn pg_command(tool: &str) -> Command {
    let path = format!("{PG_BIN}/{tool}");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("stratus-pg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let data = dir.path().join("data");
        // The postgres user must own the cluster directory.
        let _ = Command::new("chown")
            .args(["postgres:postgres", dir.path().to_str().unwrap()])
            .status();
        let out = pg_command("initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ])
            .output()
            .expect("initdb runs (PostgreSQL 15 server binaries)");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut pg = Postgres {
            child: Command::new("true").spawn().expect("a placeholder process"),
            dir,
            port,
        };
        pg.run();
        let out = pg_command("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "stratus",
            ])
            .output()
            .expect("createdb");
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    /// Start the server on the cluster and wait until it answers.
    fn run(&mut self) {
        let _ = self.child.wait();
        let data = self.dir.path().join("data");
        self.child = pg_command("postgres")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-h",
                "127.0.0.1",
            ])
            .args(["-k", self.dir.path().to_str().unwrap(), "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = pg_command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stop the server (fast shutdown: open connections are cut), keeping the cluster.
    pub fn stop(&mut self) {
        // `pg_ctl` signals the postmaster itself: the child we hold may be the `runuser` around it.
        let data = self.dir.path().join("data");
        let _ = pg_command("pg_ctl")
            .args([
                "stop",
                "-D",
                data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// Start the stopped server again on the same port.
    pub fn restart(&mut self) {
        self.run();
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/stratus?sslmode=disable",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Stratus node on the shared database, with its own data directory (certificates, logs).
async fn node(pg: &Postgres, dir: &Path) -> Server {
    node_with(pg, dir, &[]).await
}

/// A node with more settings (`STRATUS_*` variables).
async fn node_with(pg: &Postgres, dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut all = vec![
        ("STRATUS_STORE".to_string(), pg.url()),
        ("STRATUS_MASTER_KEY".to_string(), MASTER_KEY.to_string()),
    ];
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Server::start_in(
        dir,
        Start {
            env: all,
            ..Default::default()
        },
    )
    .await
}

/// Poll `check` until it holds or `limit` passes; returns how long it took.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn data_dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    (tmp, a, b)
}

#[tokio::test]
async fn a_user_created_on_one_node_signs_in_on_the_other() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    // Node B joined the directory node A initialised.
    let (_, org_a) = a.get("/settings/org").await;
    let (_, org_b) = b.get("/settings/org").await;
    assert_eq!(org_a["ldap_suffix"], org_b["ldap_suffix"]);
    let suffix = org_a["ldap_suffix"].as_str().unwrap().to_string();

    // Everything is set up through node A only.
    let (st, p) = a
        .post(
            "/radius-servers",
            json!({"name": "ap", "networks": ["127.0.0.1/32"], "secret": crate::radius::SECRET}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let profile = p["id"].as_str().unwrap().to_string();
    let user = a.user("nora", Some("Node-Password-1")).await;
    let group = crate::radius::group(
        &a,
        json!({"name": "staff"}),
        &[&user],
        Some(&format!("radius:{profile}")),
    )
    .await;
    assert_eq!(
        a.put(&format!("/groups/{group}/bindings/ldap"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );

    // Node B's LDAP and RADIUS accept her within a second.
    let ldap = || crate::identity::whoami(&b, &suffix, "nora", "Node-Password-1").0 == Some(0);
    let took = within(Duration::from_secs(1), ldap).await;
    assert!(
        took.is_some(),
        "node B's LDAP did not see the user within 1 s"
    );
    let (ok, out) = crate::radius::radclient(
        &b.radius,
        "auth",
        crate::radius::SECRET,
        "User-Name=nora,User-Password=\"Node-Password-1\",Message-Authenticator=0x00",
    );
    assert!(ok && out.contains("Access-Accept"), "{out}");

    // Wrong passwords spread over both nodes add up to one lockout.
    a.lockout(4, 30).await;
    let olga = a.user("olga", Some("Node-Password-2")).await;
    assert_eq!(
        a.put(&format!("/groups/{group}/members/{olga}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let olga_in = |s: &Server| crate::identity::whoami(s, &suffix, "olga", "Node-Password-2").0;
    assert!(within(Duration::from_secs(1), || olga_in(&b) == Some(0))
        .await
        .is_some());
    for s in [&a, &b, &a, &b] {
        assert_eq!(
            crate::identity::whoami(s, &suffix, "olga", "Wrong-Password-2").0,
            Some(49)
        );
    }
    assert_eq!(
        olga_in(&a),
        Some(49),
        "locked after four failures on two nodes"
    );
    assert!(within(Duration::from_secs(1), || olga_in(&b) == Some(49))
        .await
        .is_some());

    // A change on B reaches A just the same: suspended on B, refused on A.
    let (st, _) = b
        .patch(&format!("/users/{user}"), json!({"state": "suspended"}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let refused = || crate::identity::whoami(&a, &suffix, "nora", "Node-Password-1").0 == Some(49);
    assert!(
        within(Duration::from_secs(1), refused).await.is_some(),
        "node A still lets her in"
    );
    // Events from both nodes are in the one log.
    let ev = a.events("user_update", "nora").await;
    assert!(!ev.is_empty(), "{ev:?}");
    // A deletion on B: the user is gone from A, and her name is free again on both.
    let (st, _) = b.delete(&format!("/users/{olga}")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let mut gone = false;
    for _ in 0..50 {
        if a.get(&format!("/users/{olga}")).await.0 == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "node A still has the user deleted on B");
    assert_eq!(olga_in(&a), Some(49));
    a.user("olga", None).await;
}

#[tokio::test]
async fn concurrent_writers_on_two_nodes_break_no_uniqueness_and_lose_nothing() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    let (st, g) = a.post("/groups", json!({"name": "all"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let group = g["id"].as_str().unwrap().to_string();
    // Both nodes create users at once: the same 20 names on each (each name must be created exactly once), and
    // each adds what it created to one group (memberships are deltas: none may be lost).
    let rounds = 20;
    let run = |s: &Server, tag: &'static str| {
        let (http, url, group) = (s.http.clone(), s.url.clone(), group.clone());
        async move {
            let mut created = Vec::new();
            for i in 0..rounds {
                let body = json!({"username": format!("u{i}"), "email": format!("u{i}.{tag}@example.com")});
                let r = http
                    .post(format!("{url}/api/v1/users"))
                    .bearer_auth(crate::harness::API_KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let v: serde_json::Value = r.json().await.unwrap();
                match status {
                    StatusCode::CREATED => {
                        let id = v["id"].as_str().unwrap().to_string();
                        let r = http
                            .put(format!("{url}/api/v1/groups/{group}/members/{id}"))
                            .bearer_auth(crate::harness::API_KEY)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), StatusCode::NO_CONTENT);
                        created.push(id);
                    }
                    StatusCode::CONFLICT => {}
                    other => panic!("{tag}: {other} {v}"),
                }
            }
            created
        }
    };
    let (from_a, from_b) = tokio::join!(run(&a, "a"), run(&b, "b"));
    assert_eq!(
        from_a.len() + from_b.len(),
        rounds,
        "each name created exactly once"
    );
    for s in [&a, &b] {
        // Each node has caught up within a second: every user, each with its own uidNumber.
        let deadline = Instant::now() + Duration::from_secs(1);
        let users = loop {
            let (_, page) = s.get("/users?limit=1000").await;
            let users = page["users"].as_array().cloned().unwrap_or_default();
            if users.len() == rounds || Instant::now() > deadline {
                break users;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(users.len(), rounds);
        let uids: std::collections::HashSet<u64> = users
            .iter()
            .filter_map(|u| u["uid_number"].as_u64())
            .collect();
        assert_eq!(uids.len(), users.len(), "no uidNumber handed out twice");
    }
    let (_, g) = b.get(&format!("/groups/{group}")).await;
    assert_eq!(g["member_count"].as_u64(), Some(rounds as u64), "{g}");
}

/// Portal sign-in over a node's own client; returns the status and the session cookie.
async fn portal_login(s: &Server, user: &str, pw: &str, otp: &str) -> (StatusCode, Option<String>) {
    let r = s
        .http
        .post(format!("{}/portal/api/login", s.url))
        .json(&json!({"username": user, "password": pw, "otp": otp}))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (r.status(), cookie)
}

async fn portal_me(s: &Server, cookie: &str) -> StatusCode {
    s.http
        .get(format!("{}/portal/api/me", s.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn sessions_and_used_codes_are_the_same_on_every_node() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    let id = a.user("tess", Some("Node-Password-3")).await;
    let secret = a.enrol_totp(&id).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (_, u) = b.get(&format!("/users/{id}")).await;
        if u["mfa"]["totp"] == "active" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node B did not see the enrolment: {u}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let code = crate::harness::oathtool(&secret, 0);
    let (st, cookie) = portal_login(&a, "tess", "Node-Password-3", &code).await;
    assert_eq!(st, StatusCode::OK);
    let cookie = cookie.expect("a session cookie");
    // The code used on A is refused on B.
    let (st, _) = portal_login(&b, "tess", "Node-Password-3", &code).await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "a code is accepted once in the whole cluster"
    );
    // The session begun on A goes on on B, and a logout on B ends it on A.
    assert_eq!(portal_me(&b, &cookie).await, StatusCode::OK);
    let r = b
        .http
        .post(format!("{}/portal/api/logout", b.url))
        .header("cookie", &cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(portal_me(&a, &cookie).await, StatusCode::UNAUTHORIZED);
    // A revocation on one node ends a session on the other: a new session on A, the user suspended on B.
    let code = crate::harness::oathtool(&secret, 30);
    let (st, cookie) = portal_login(&a, "tess", "Node-Password-3", &code).await;
    assert_eq!(st, StatusCode::OK);
    let cookie = cookie.unwrap();
    assert_eq!(
        b.patch(&format!("/users/{id}"), json!({"state": "suspended"}))
            .await
            .0,
        StatusCode::OK
    );
    let deadline = Instant::now() + Duration::from_secs(1);
    while portal_me(&a, &cookie).await == StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the suspension did not end the session on A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stratus(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run stratus");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn checksum_of(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("checksum "))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test]
async fn online_backup_under_writes_restore_and_copies_between_redb_and_postgresql() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start_in(&data, Start::default()).await;
    let user = s.user("bea", Some("Backup-Password-1")).await;
    crate::radius::group(&s, json!({"name": "staff"}), &[&user], Some("ldap")).await;

    // Writes go on (a bounded loop) while the backup is made.
    let (http, url) = (s.http.clone(), s.url.clone());
    let writer = tokio::spawn(async move {
        let mut made = 0;
        for i in 0..60 {
            let r = http
                .post(format!("{url}/api/v1/users"))
                .bearer_auth(crate::harness::API_KEY)
                .json(&json!({"username": format!("w{i}"), "email": format!("w{i}@example.com")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
            made += 1;
        }
        made
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let backup = tmp.path().join("backup.redb");
    let env = [
        ("STRATUS_URL", s.url.as_str()),
        ("STRATUS_API_KEY", crate::harness::API_KEY),
    ];
    let ca = s.dir.join("certs/ca.pem");
    let mut env = env.to_vec();
    env.push(("STRATUS_CA_CERT", ca.to_str().unwrap()));
    let (ok, printed) = stratus(&["backup", backup.to_str().unwrap()], &env);
    assert!(ok, "{printed}");
    assert_eq!(
        writer.await.unwrap(),
        60,
        "every write during the backup was answered"
    );
    let (_, page) = s.get("/users?limit=1").await;
    let total_after = page["total"].as_u64().unwrap();
    let master_key = std::fs::read_to_string(data.join("master.key")).unwrap();
    let (clean, _, _) = s.terminate().await;
    assert!(clean);

    // Restore into a fresh data directory: the users the backup saw, and bea signs in with her password.
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::write(restored.join("master.key"), &master_key).unwrap();
    let (ok, printed) = stratus(
        &[
            "restore",
            backup.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{printed}");
    let backup_sum = checksum_of(&printed);
    assert_eq!(backup_sum.len(), 64, "{printed}");
    // Restoring over an existing store needs --force.
    let (ok, printed) = stratus(
        &[
            "restore",
            backup.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!ok && printed.contains("--force"), "{printed}");
    let r = Server::start_in(&restored, Start::default()).await;
    let (_, page) = r.get("/users?limit=1").await;
    let restored_total = page["total"].as_u64().unwrap();
    assert!(
        (2..=total_after).contains(&restored_total),
        "{restored_total} of {total_after}"
    );
    let (_, org) = r.get("/settings/org").await;
    let suffix = org["ldap_suffix"].as_str().unwrap().to_string();
    assert_eq!(
        crate::identity::whoami(&r, &suffix, "bea", "Backup-Password-1").0,
        Some(0)
    );
    let (clean, _, _) = r.terminate().await;
    assert!(clean);

    // redb → PostgreSQL → redb: the same records, the same checksum, and a node on PostgreSQL serves them.
    let pg = Postgres::start();
    let redb = restored.join("stratus.redb");
    let (ok, to_pg) = stratus(
        &[
            "store",
            "copy",
            "--from",
            redb.to_str().unwrap(),
            "--to",
            &pg.url(),
        ],
        &[],
    );
    assert!(ok, "{to_pg}");
    assert_eq!(checksum_of(&to_pg), backup_sum);
    let back = tmp.path().join("back.redb");
    let (ok, to_redb) = stratus(
        &[
            "store",
            "copy",
            "--from",
            &pg.url(),
            "--to",
            back.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{to_redb}");
    assert_eq!(checksum_of(&to_redb), backup_sum);
    // Copying into a store that holds a directory is refused.
    let (ok, printed) = stratus(
        &[
            "store",
            "copy",
            "--from",
            redb.to_str().unwrap(),
            "--to",
            &pg.url(),
        ],
        &[],
    );
    assert!(!ok && printed.contains("empty"), "{printed}");
    let node_dir = tmp.path().join("pg-node");
    let n = Server::start_in(
        &node_dir,
        Start {
            env: vec![
                ("STRATUS_STORE".into(), pg.url()),
                ("STRATUS_MASTER_KEY".into(), master_key.trim().to_string()),
            ],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        crate::identity::whoami(&n, &suffix, "bea", "Backup-Password-1").0,
        Some(0)
    );
    let (_, page) = n.get("/users?limit=1").await;
    assert_eq!(page["total"].as_u64(), Some(restored_total));
}

async fn ready(s: &Server) -> StatusCode {
    s.http
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::BAD_GATEWAY)
}

/// Poll an async condition until it holds or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn nodes_ride_out_a_database_outage_and_a_killed_node_loses_no_answered_write() {
    let mut pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    let user = a.user("ola", Some("Node-Password-4")).await;
    crate::radius::group(&a, json!({"name": "staff"}), &[&user], Some("ldap")).await;
    let (_, org) = a.get("/settings/org").await;
    let suffix = org["ldap_suffix"].as_str().unwrap().to_string();
    let bind = |s: &Server| crate::identity::whoami(s, &suffix, "ola", "Node-Password-4").0;
    assert!(within(Duration::from_secs(1), || bind(&b) == Some(0))
        .await
        .is_some());

    // The database goes away: reads go on from each node's snapshot, writes are refused with a clear error.
    pg.stop();
    assert_eq!(bind(&a), Some(0));
    assert_eq!(bind(&b), Some(0));
    let (st, e) = a
        .post(
            "/users",
            json!({"username": "during", "email": "during@example.com"}),
        )
        .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("store_unavailable")),
        "{e}"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            ready(&a).await == StatusCode::SERVICE_UNAVAILABLE
        })
        .await
    );

    // It returns: writes work again and reach the other node; both are ready.
    pg.restart();
    assert!(
        eventually(Duration::from_secs(10), || async {
            a.post(
                "/users",
                json!({"username": "after", "email": "after@example.com"}),
            )
            .await
            .0 == StatusCode::CREATED
        })
        .await,
        "writes did not resume"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            b.get("/users?search=after").await.1["total"] == 1
        })
        .await
    );
    for s in [&a, &b] {
        assert!(
            eventually(Duration::from_secs(5), || async {
                ready(s).await == StatusCode::OK
            })
            .await
        );
    }

    // kill -9 node A in the middle of writes: every write A answered is on B.
    let (http, url) = (a.http.clone(), a.url.clone());
    let writer = tokio::spawn(async move {
        let mut answered = Vec::new();
        for i in 0..200 {
            let r = http
                .post(format!("{url}/api/v1/users"))
                .bearer_auth(crate::harness::API_KEY)
                .json(&json!({"username": format!("k{i}"), "email": format!("k{i}@example.com")}))
                .send()
                .await;
            match r {
                Ok(r) if r.status() == StatusCode::CREATED => answered.push(format!("k{i}")),
                _ => break,
            }
        }
        answered
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.kill9();
    let answered = writer.await.unwrap();
    assert!(
        !answered.is_empty() && answered.len() < 200,
        "the kill came during the writes: {}",
        answered.len()
    );
    let expected = answered.len() as u64;
    assert!(
        eventually(Duration::from_secs(3), || async {
            b.get("/users?search=k&limit=1000").await.1["users"]
                .as_array()
                .map_or(0, |u| {
                    u.iter()
                        .filter(|u| answered.iter().any(|n| u["username"] == n.as_str()))
                        .count()
                }) as u64
                == expected
        })
        .await,
        "an answered write is missing on node B"
    );
    // B keeps serving and writing.
    assert_eq!(bind(&b), Some(0));
    assert_eq!(
        b.post(
            "/users",
            json!({"username": "still", "email": "still@example.com"})
        )
        .await
        .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_radius_challenge_is_answered_on_the_other_node() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    let (st, p) = a
        .post(
            "/radius-servers",
            json!({"name": "vpn", "networks": ["127.0.0.1/32"], "secret": crate::radius::SECRET, "mfa": "require_all"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let profile = p["id"].as_str().unwrap().to_string();
    let id = a.user("ulla", Some("Node-Password-5")).await;
    let secret = a.enrol_totp(&id).await;
    crate::radius::group(
        &a,
        json!({"name": "vpn-users"}),
        &[&id],
        Some(&format!("radius:{profile}")),
    )
    .await;
    let ask = |s: &Server, attrs: &str| {
        crate::radius::radclient(
            &s.radius,
            "auth",
            crate::radius::SECRET,
            &format!("{attrs},Message-Authenticator=0x00"),
        )
        .1
    };
    // Node B has everything (TOTP included) before the test goes on.
    assert!(
        eventually(Duration::from_secs(2), || async {
            ask(&b, "User-Name=ulla,User-Password=\"Node-Password-5\"").contains("Access-Challenge")
        })
        .await
    );
    let first = ask(&a, "User-Name=ulla,User-Password=\"Node-Password-5\"");
    assert!(first.contains("Access-Challenge"), "{first}");
    let state = first
        .lines()
        .find_map(|l| l.trim().strip_prefix("State = 0x"))
        .expect("a State in the challenge")
        .trim()
        .to_string();
    let code = crate::harness::oathtool(&secret, 0);
    let answer = format!("User-Name=ulla,User-Password=\"{code}\",State=0x{state}");
    let second = ask(&b, &answer);
    assert!(
        second.contains("Access-Accept"),
        "node B finishes the login node A began: {second}"
    );
    // A State is taken once in the whole cluster.
    let again = ask(&a, &answer);
    assert!(again.contains("Access-Reject"), "{again}");
}

/// The SAML IdP behind a load balancer without affinity, driven by python3-saml: the AuthnRequest reaches
/// node A, the password form is posted to B and the TOTP form to A, the assertion verifies against A's metadata;
/// the same request replayed to B is refused; the session is seen by both portals; a signed single logout sent
/// to B by another client ends the session on A.
#[tokio::test]
async fn an_sso_login_moves_between_nodes_and_a_logout_on_one_ends_it_on_all() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    // One public URL for the cluster (the load balancer's): here node A's; one TLS certificate for both.
    std::fs::create_dir_all(b_dir.join("certs")).unwrap();
    for f in std::fs::read_dir(a.dir.join("certs")).unwrap().flatten() {
        std::fs::copy(f.path(), b_dir.join("certs").join(f.file_name())).unwrap();
    }
    let b = node_with(&pg, &b_dir, &[("STRATUS_PUBLIC_BASE_URL", &a.url)]).await;
    let keys = crate::saml::sp(&a, "keys", json!({}));
    let (key, cert) = (
        keys["key"].as_str().unwrap(),
        keys["cert"].as_str().unwrap(),
    );
    let user = a.user("sam", Some("Cluster-Sso-Pass-4")).await;
    let secret = a.enrol_totp(&user).await;
    let (st, g) = a.post("/groups", json!({"name": "sso"})).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let g = g["id"].as_str().unwrap().to_string();
    a.put(&format!("/groups/{g}/members/{user}"), None).await;
    let (st, app) = a
        .post(
            "/apps",
            json!({"name": "Cluster SP", "sp_entity_id": "https://sp.test/metadata",
                   "acs_urls": ["https://sp.test/acs"], "sp_slo_url": "https://sp.test/sls",
                   "sp_certificate": cert, "sign": "both"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    let app = app["id"].as_str().unwrap().to_string();
    let (st, _) = a
        .put(&format!("/groups/{g}/bindings/app:{app}"), None)
        .await;
    assert!(st.is_success());
    // B has the binding before the browser arrives.
    let mut bound = false;
    for _ in 0..50 {
        let (_, v) = b.get(&format!("/groups/{g}")).await;
        if v.to_string().contains(&app) {
            bound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(bound, "node B did not see the binding within 1 s");
    let args = json!({"app": app, "username": "sam", "password": "Cluster-Sso-Pass-4",
                      "totp_secret": secret, "other": b.url, "sign_requests": true,
                      "sp_key": key, "sp_cert": cert, "want_response_signed": true});
    let out = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/saml/sp.py"
        ))
        .arg(&a.url)
        .arg(a.dir.join("certs/ca.pem"))
        .arg("cluster")
        .arg(args.to_string())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let out: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "sp.py printed no JSON: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(out["trail"], json!(["password@B", "totp@A"]), "{out}");
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["authenticated"], true, "{out}");
    assert_eq!(out["nameid"], "sam@example.com", "{out}");
    assert_eq!(out["replay_status"], 400, "{out}");
    assert_eq!(out["replay_said"], true, "{out}");
    assert_eq!(
        (out["portal_a"].as_u64(), out["portal_b"].as_u64()),
        (Some(200), Some(200)),
        "{out}"
    );
    assert_eq!(out["slo_status"], 303, "{out}");
    assert_eq!(out["slo_location"], "https://sp.test/sls", "{out}");
    assert_eq!(
        out["portal_a_after"], 303,
        "the logout on B ended the session on A: {out}"
    );
    let logouts = b.get("/events?type=sso_logout&limit=10").await.1;
    assert!(
        logouts.to_string().contains("1 IdP session(s) ended"),
        "{logouts}"
    );
}

/// An admin's console sign-in: the password on node A, the TOTP code on node B; the waiting sign-in is taken
/// once in the whole cluster.
#[tokio::test]
async fn a_console_sign_in_gives_its_code_to_the_other_node() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    let (st, t) = a.post("/me/mfa/totp", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let secret = t["secret"].as_str().unwrap().to_string();
    let code = crate::harness::oathtool(&secret, -30);
    let (st, v) = a.post("/me/mfa/totp/confirm", json!({"code": code})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let no_redirects = |s: &Server| {
        let ca = std::fs::read(s.dir.join("certs/ca.pem")).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let (ha, hb) = (no_redirects(&a), no_redirects(&b));
    let page = ha
        .post(format!("{}/console/login", a.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("email", crate::harness::ADMIN_EMAIL),
            ("password", crate::harness::ADMIN_PASSWORD),
            ("next", "/console"),
        ]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let nonce = page
        .split("name=\"nonce\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("a code form: {page}"))
        .to_string();
    let code = crate::harness::oathtool(&secret, 0);
    let r = hb
        .post(format!("{}/console/login/totp", b.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("nonce", nonce.as_str()),
            ("code", code.as_str()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert!(r.headers().get("set-cookie").is_some());
    // The same waiting sign-in cannot be finished again, on either node.
    for (h, s) in [(&ha, &a), (&hb, &b)] {
        let r = h
            .post(format!("{}/console/login/totp", s.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("nonce", nonce.as_str()),
                ("code", code.as_str()),
            ]))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), StatusCode::SEE_OTHER);
        assert!(r.headers().get("set-cookie").is_none());
    }
}

/// A SCIM token's rate limit is the cluster's, not each node's: four requests on each node pass each node's
/// own bucket of five, but not a shared one.
#[tokio::test]
async fn a_scim_token_rate_limit_counts_requests_on_every_node() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    // Five requests, then (practically) none: the window is long enough that no test straddles two.
    let env = [
        ("STRATUS_SCIM_RATE_PER_SECOND", "0.01"),
        ("STRATUS_SCIM_RATE_BURST", "5"),
    ];
    let a = node_with(&pg, &a_dir, &env).await;
    let b = node_with(&pg, &b_dir, &env).await;
    let (st, t) = a.post("/scim-tokens", json!({"name": "hr"})).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap().to_string();
    // The second node learns of the token through the store's change feed, a moment later.
    let known = eventually(Duration::from_secs(10), || async {
        let (_, list) = b.get("/scim-tokens").await;
        list.as_array()
            .is_some_and(|l| l.iter().any(|t| t["name"] == "hr"))
    })
    .await;
    assert!(known, "the other node knows the new token");
    let mut statuses = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { &a } else { &b };
        let r = s
            .http
            .get(format!("{}/scim/v2/Users", s.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().get("retry-after").is_some());
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429, 429, 429],
        "the limit is counted across the nodes"
    );
}

/// Outbound SCIM from two nodes: every outbox item is delivered by exactly one of them (a lease per item and
/// attempt in the store), users created on either node all arrive once, and no delivery is made twice.
#[tokio::test]
async fn each_outbound_scim_delivery_is_made_by_exactly_one_node() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    let port = crate::scim::free_port();
    let (st, app) = a
        .post("/apps", json!({"name": "vault", "sp_entity_id": "https://vault.example", "acs_urls": ["https://vault.example/acs"]}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    let app = app["id"].as_str().unwrap().to_string();
    let (st, c) = a
        .put(
            &format!("/apps/{app}/scim-connector"),
            Some(
                json!({"base_url": format!("http://127.0.0.1:{port}"), "token": "app-token-1",
                        "group_push": false, "allow_insecure_http": true}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    let (st, g) = a.post("/groups", json!({"name": "vault-users"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let g = g["id"].as_str().unwrap().to_string();
    a.put(&format!("/groups/{g}/bindings/app:{app}"), None)
        .await;
    // At first the app answers slowly and with an error (a second per request, then 503): a delivery is in
    // flight on one node while the other node's poller finds the same item due, which is when a second
    // delivery of it would happen without the lease.
    let slow = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let slow_app = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = slow.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                tokio::time::sleep(Duration::from_millis(1000)).await;
                let _ = conn
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    let users = 4;
    for i in 0..users {
        let s = if i % 2 == 0 { &a } else { &b };
        let id = s.user(&format!("vault{i:02}"), None).await;
        let (st, _) = s.put(&format!("/groups/{g}/members/{id}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
    let mut failed = false;
    for _ in 0..120 {
        let (_, c) = a.get(&format!("/apps/{app}/scim-connector")).await;
        if c["outbox"]
            .as_array()
            .is_some_and(|o| o.len() == users && o.iter().all(|i| i["last_error"].is_string()))
        {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(failed, "every item failed once while the app was failing");
    slow_app.abort();
    let _ = slow_app.await;
    let _target = crate::scim::Target::start(port);
    crate::scim::eventually(port, "/Users", |v| v["totalResults"] == users).await;
    let mut outbox_empty = false;
    for _ in 0..120 {
        let (_, c) = b.get(&format!("/apps/{app}/scim-connector")).await;
        if c["outbox"].as_array().is_some_and(Vec::is_empty) {
            outbox_empty = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(outbox_empty);
    let (_, ev) = a.get("/events?type=scim_push&limit=1000").await;
    let ev = ev["events"].as_array().cloned().unwrap_or_default();
    let delivered: Vec<String> = ev
        .iter()
        .filter(|e| e["success"] == true)
        .map(|e| {
            e["details"]["item"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let distinct: std::collections::BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(
        delivered.len(),
        users,
        "one successful delivery per user: {ev:?}"
    );
    assert_eq!(distinct.len(), delivered.len(), "no item delivered twice");
    // No attempt was made twice either: (item, attempt) is unique among all pushes, failed or not.
    let attempts: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            (
                e["details"]["item"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["details"]["attempt"].to_string(),
            )
        })
        .collect();
    let distinct: std::collections::BTreeSet<&(String, String)> = attempts.iter().collect();
    assert_eq!(
        distinct.len(),
        attempts.len(),
        "an attempt made by two nodes: {attempts:?}"
    );
}

#[tokio::test]
async fn a_source_guessing_on_several_nodes_has_one_budget() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    // Refusal after four failures in a day-long window (no test straddles two).
    let env = [
        ("STRATUS_THROTTLE_DELAY_AFTER", "3"),
        ("STRATUS_THROTTLE_REFUSE_AFTER", "4"),
        ("STRATUS_THROTTLE_WINDOW_SECONDS", "86400"),
    ];
    let a = node_with(&pg, &a_dir, &env).await;
    let b = node_with(&pg, &b_dir, &env).await;
    a.user("guarded", Some("Kept-Secret-77")).await;
    let visible = eventually(Duration::from_secs(5), || async {
        b.get("/users?search=guarded").await.1["users"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
    })
    .await;
    assert!(visible, "the user reached node B");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(a_dir.join("certs/ca.pem")).unwrap())
        .unwrap();
    let cb = reqwest::Certificate::from_pem(&std::fs::read(b_dir.join("certs/ca.pem")).unwrap())
        .unwrap();
    let attacker = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 11]))
        .tls_certs_only([ca, cb])
        .build()
        .unwrap();
    let login = |s: &Server, pw: &str| {
        let req = attacker
            .post(format!("{}/portal/api/login", s.url))
            .json(&json!({"username": "guarded", "password": pw}));
        async move { req.send().await.unwrap().status() }
    };
    // Three wrong passwords on each node: fewer than four on either, six in all.
    for i in 0..6 {
        let s = if i % 2 == 0 { &a } else { &b };
        let st = login(s, "Wrong-Guess-1").await;
        assert!(
            st == StatusCode::UNAUTHORIZED || st == StatusCode::TOO_MANY_REQUESTS,
            "{st}"
        );
    }
    for (name, s) in [("A", &a), ("B", &b)] {
        assert_eq!(
            login(s, "Kept-Secret-77").await,
            StatusCode::TOO_MANY_REQUESTS,
            "node {name} refuses the source: its failures were counted on both nodes together"
        );
    }
    let (st, _) = portal_login(&a, "guarded", "Kept-Secret-77", "").await;
    assert_eq!(st, StatusCode::OK, "another source still signs in");
    let events = a.get("/events?type=auth_throttled").await.1;
    assert!(
        events["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{events}"
    );
}

#[tokio::test]
async fn an_access_policy_made_on_one_node_decides_logins_on_the_other() {
    let pg = Postgres::start();
    let (_tmp, a_dir, b_dir) = data_dirs();
    let a = node(&pg, &a_dir).await;
    let b = node(&pg, &b_dir).await;
    a.user("pia", Some("Node-Password-6")).await;
    let (st, l) = a
        .post(
            "/ip-lists",
            json!({"name": "Anywhere", "networks": ["0.0.0.0/0", "::/0"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    let (st, p) = a
        .post(
            "/access-policies",
            json!({"name": "Portal closed", "target": "portal", "source_in": [l["id"]], "action": "deny"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let refused = eventually(Duration::from_secs(10), || async {
        b.portal_login("pia", "Node-Password-6", None).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    assert!(refused, "the other node applies the policy");
    let (_, x) = b
        .get("/explain?user=pia&resource=portal&ip=127.0.0.1")
        .await;
    assert_eq!(x["policy"]["name"], "Portal closed", "{x}");
    // Deleted on the second node, it stops deciding on the first.
    let (st, _) = b
        .delete(&format!("/access-policies/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let open = eventually(Duration::from_secs(10), || async {
        a.portal_login("pia", "Node-Password-6", None).await.0 == StatusCode::OK
    })
    .await;
    assert!(open, "the first node forgets the deleted policy");
}
