//! FreeRADIUS as the reference: configured and started by `benches/radius/freeradius.sh` in a temporary
//! directory, in the foreground as a child of this process, stopped when dropped.

use super::dataset::{Dataset, PASSWORD};
use super::load::Target;
use super::stratus::{log_tail, stop};
use crate::BoxError;
use std::ffi::OsStr;
use std::io::{BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running private FreeRADIUS.
pub struct FreeRadius {
    child: Child,
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(10));
    }
}

/// The script next to this crate's sources, unless given.
pub fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("radius/freeradius.sh")
}

/// Install FreeRADIUS if needed (the script asks apt) and return its version line.
pub fn install(script: &Path) -> Result<String, BoxError> {
    let out = Command::new("bash")
        .arg(script)
        .arg("install")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if !out.status.success() {
        return Err(format!("freeradius.sh install failed ({})", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().find(|l| l.contains("FreeRADIUS")).map_or_else(
        || "FreeRADIUS (unknown version)".into(),
        |l| l.trim().to_string(),
    ))
}

/// A free UDP port on 127.0.0.1 (free when asked; the server binds it right after).
fn free_udp_port() -> Result<u16, BoxError> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl FreeRadius {
    /// Write the users file (every user of `data` with its Cleartext-Password) and start FreeRADIUS on a free
    /// loopback port. Returns once the process runs; the caller checks that it answers.
    pub fn start(script: &Path, data: Dataset, secret: &str) -> Result<Self, BoxError> {
        Self::start_with(script, data, &|_| PASSWORD, secret, &[])
    }

    /// [`FreeRadius::start`] with each user's password from `password` (by data-set index) and `extra`
    /// arguments after the users file (`script start DIR SECRET PORT USERS EXTRA…`).
    pub fn start_with(
        script: &Path,
        data: Dataset,
        password: &dyn Fn(usize) -> &'static str,
        secret: &str,
        extra: &[&OsStr],
    ) -> Result<Self, BoxError> {
        let dir = tempfile::Builder::new()
            .prefix("stratus-bench-freeradius")
            .tempdir()?;
        let users = dir.path().join("users.in");
        let t0 = Instant::now();
        {
            let mut out = BufWriter::new(std::fs::File::create(&users)?);
            for i in 0..data.users {
                writeln!(
                    out,
                    "{} Cleartext-Password := \"{}\"",
                    Dataset::username(i),
                    password(i)
                )?;
            }
            out.flush()?;
        }
        let port = free_udp_port()?;
        let log = dir.path().join("freeradius.sh.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("bash")
            .arg(script)
            .arg("start")
            .arg(dir.path().join("run"))
            .arg(secret)
            .arg(port.to_string())
            .arg(&users)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out))
            .spawn()
            .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
        println!(
            "freeradius: users file with {} users written in {:.2} s; starting on 127.0.0.1:{port}",
            data.users,
            t0.elapsed().as_secs_f64()
        );
        Ok(FreeRadius {
            child,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Has the process (the script, or FreeRADIUS once the script has exec'd it) exited?
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// The script's output and FreeRADIUS's log, for error messages.
    pub fn log_tail(&self) -> String {
        let run = self.dir.path().join("run");
        let mut text = log_tail(&self.dir.path().join("freeradius.sh.log"));
        for f in ["check.log", "radius.log"] {
            let t = log_tail(&run.join(f));
            if !t.is_empty() {
                text.push_str(&format!("\n{f}:\n{t}"));
            }
        }
        text
    }

    pub fn target(&self, secret: &Arc<[u8]>) -> Target {
        Target {
            server: "freeradius",
            addr: self.addr,
            secret: Arc::clone(secret),
        }
    }
}
