//! A throwaway PostgreSQL 15 cluster from the machine's packages for the benchmarks that run Stratus on
//! PostgreSQL: initdb into a temporary directory (as the `postgres` user when run as root), a loopback port,
//! stopped and removed when dropped. Nothing here touches a PostgreSQL the machine already runs.

use crate::BoxError;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The master key of benchmark nodes on PostgreSQL (every node of one directory needs the same key).
pub const MASTER_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// A PostgreSQL server for the run, stopped when dropped.
pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

fn pg(tool: &str) -> Command {
    let path = format!("{PG_BIN}/{tool}");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn must(cmd: &mut Command, what: &str) -> Result<(), BoxError> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

impl Postgres {
    pub fn start() -> Result<Self, BoxError> {
        let dir = tempfile::Builder::new()
            .prefix("stratus-bench-pg")
            .tempdir_in("/tmp")?;
        let _ = Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status();
        let data = dir.path().join("data");
        let data_s = data.display().to_string();
        must(
            pg("initdb").args([
                "-D",
                &data_s,
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ]),
            "initdb",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = pg("postgres")
            .args(["-D", &data_s, "-p", &port.to_string(), "-h", "127.0.0.1"])
            .args(["-k", &dir.path().display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pg_ = Postgres { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pg("pg_isready")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            if Instant::now() > deadline {
                return Err("PostgreSQL did not start".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        must(
            pg("createdb").args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "stratus",
            ]),
            "createdb",
        )?;
        Ok(pg_)
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/stratus?sslmode=disable",
            self.port
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = pg("pg_ctl")
            .args([
                "stop",
                "-D",
                &self.data().display().to_string(),
                "-m",
                "fast",
                "-w",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// The `STRATUS_*` settings of a node on this cluster.
pub fn node_env(url: &str) -> [(&str, &str); 2] {
    [("STRATUS_STORE", url), ("STRATUS_MASTER_KEY", MASTER_KEY)]
}
