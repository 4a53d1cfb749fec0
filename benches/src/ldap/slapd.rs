//! OpenLDAP slapd as the reference: set up, loaded and started by `benches/ldap/slapd.sh` in a temporary
//! directory, stopped (by its pid file) when dropped.

use super::dataset::{Dataset, SERVICE_PASSWORD, SERVICE_USER};
use super::load::Target;
use crate::BoxError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Suffix of the slapd tree; Stratus uses its own org's suffix, the tree under it is the same.
pub const SUFFIX: &str = "o=bench,dc=stratus,dc=local";
/// Password of slapd's rootdn `cn=admin,<suffix>`. Unused by the load: the search phase binds as the same
/// service account as on Stratus, subject to slapd's ACLs (it may read everything but `userPassword`).
const ROOT_PASSWORD: &str = "Bench-Admin-Pass-1";

/// A running private slapd.
pub struct Slapd {
    script: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path().join("run"))
            .status();
    }
}

impl Slapd {
    /// The daemon's process id, from the pid file the script makes it write.
    pub fn pid(&self) -> Result<u32, BoxError> {
        let file = self.dir.path().join("run/slapd.pid");
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        Ok(text.trim().parse()?)
    }
}

/// The script next to this crate's sources, unless given.
pub fn default_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ldap/slapd.sh")
}

/// Install slapd if needed (the script asks apt), so the version can be printed before anything is measured.
pub fn install(script: &Path) -> Result<String, BoxError> {
    run_script(Command::new("bash").arg(script).arg("install"))?;
    let out = Command::new("slapd").arg("-VV").output();
    let out = match out {
        Ok(o) => o,
        Err(_) => Command::new("/usr/sbin/slapd").arg("-VV").output()?,
    };
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().find(|l| l.contains("slapd")).map_or_else(
        || "slapd (unknown version)".into(),
        |l| l.trim().to_string(),
    ))
}

fn run_script(cmd: &mut Command) -> Result<(), BoxError> {
    let status = cmd.status().map_err(|e| format!("cannot run bash: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("slapd.sh failed ({status})").into())
    }
}

/// Write the data set as LDIF, `slapadd` it and start slapd on a free loopback port.
pub fn start(script: &Path, data: Dataset) -> Result<(Slapd, Target), BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("stratus-bench-slapd")
        .tempdir()?;
    let ldif = dir.path().join("bench.ldif");
    let t0 = Instant::now();
    let entries = data.write_ldif(SUFFIX, &ldif)?;
    let generated = t0.elapsed();
    let port = super::free_port()?;
    let t1 = Instant::now();
    run_script(
        Command::new("bash")
            .arg(script)
            .arg("start")
            .arg(dir.path().join("run"))
            .arg(SUFFIX)
            .arg(ROOT_PASSWORD)
            .arg(port.to_string())
            .arg(&ldif),
    )?;
    let slapd = Slapd {
        script: script.to_path_buf(),
        dir,
    };
    println!(
        "slapd: {entries} entries: LDIF written in {:.1} s, slapadd + start in {:.1} s",
        generated.as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    let target = Target {
        server: "slapd",
        url: format!("ldap://127.0.0.1:{port}"),
        base: format!("ou=Users,{SUFFIX}"),
        search_dn: format!("uid={SERVICE_USER},ou=Users,{SUFFIX}"),
        search_password: SERVICE_PASSWORD.into(),
        pid: slapd.pid().ok(),
    };
    Ok((slapd, target))
}
