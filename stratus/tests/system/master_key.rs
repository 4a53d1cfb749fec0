//! The master key: a server refuses to start with a key that does not open its directory's secrets (a deleted
//! key file, another STRATUS_MASTER_KEY), and `stratus master-key rotate` re-seals every secret under a new key
//! so that RADIUS secrets and TOTP seeds keep working, while the old key is refused afterwards.

use crate::harness::{Server, Start};
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// `stratus serve` that must stop on its own: (success, everything it printed).
fn refused_start(dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new("timeout");
    cmd.arg("60")
        .arg(env!("CARGO_BIN_EXE_stratus"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .env("STRATUS_HTTP_ADDR", "127.0.0.1:0")
        .env("STRATUS_LDAP_ADDR", "127.0.0.1:0")
        .env("STRATUS_LDAPS_ADDR", "127.0.0.1:0")
        .env("STRATUS_RADIUS_ADDR", "127.0.0.1:0")
        .env("STRATUS_RADIUS_ACCOUNTING_ADDR", "127.0.0.1:0")
        .env_remove("STRATUS_MASTER_KEY")
        .env_remove("STRATUS_STORE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("stratus runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn rotate(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["master-key", "rotate", "--data-dir"])
        .arg(dir)
        .env_remove("STRATUS_MASTER_KEY")
        .env_remove("STRATUS_STORE")
        .output()
        .expect("stratus runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn accepted(s: &Server) -> bool {
    let (ok, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        crate::radius::SECRET,
        "User-Name=keyuser,User-Password=\"Key-Password-77\",Message-Authenticator=0x00",
    );
    ok && out.contains("Access-Accept")
}

async fn portal_login(s: &Server, code: &str) -> StatusCode {
    s.http
        .post(format!("{}/portal/api/login", s.url))
        .json(&json!({"username": "keyuser", "password": "Key-Password-77", "otp": code}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_wrong_master_key_is_refused_and_a_rotated_one_keeps_every_secret() {
    if std::env::var("STRATUS_TEST_STORE").as_deref() == Ok("postgres") {
        return; // the key files live in the data directory; this test is about them
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let s = Server::start_in(&dir, Start::default()).await;
    let (st, p) = s
        .post(
            "/radius-servers",
            json!({"name": "ap", "networks": ["127.0.0.1/32"], "secret": crate::radius::SECRET}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let profile = p["id"].as_str().unwrap().to_string();
    let user = s.user("keyuser", Some("Key-Password-77")).await;
    crate::radius::group(
        &s,
        json!({"name": "wifi"}),
        &[&user],
        Some(&format!("radius:{profile}")),
    )
    .await;
    let secret = s.enrol_totp(&user).await;
    assert!(accepted(&s));
    let (ok, _, _) = s.terminate().await;
    assert!(ok);
    let key_file = dir.join("master.key");
    let original = std::fs::read_to_string(&key_file).unwrap();

    // The key file deleted: the server refuses to start, says what to do, and leaves no new key behind.
    std::fs::remove_file(&key_file).unwrap();
    let (ok, said) = refused_start(&dir, &[]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("master key does not open this directory's secrets"),
        "{said}"
    );
    assert!(said.contains("Put the original key back"), "{said}");
    assert!(!key_file.exists(), "no stray key file is left");
    // Another key by environment: refused too.
    let other = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    let (ok, said) = refused_start(&dir, &[("STRATUS_MASTER_KEY", other)]);
    assert!(!ok && said.contains("master key does not open"), "{said}");

    // The right key back: it starts and RADIUS works.
    std::fs::write(&key_file, &original).unwrap();
    let s = Server::start_in(&dir, Start::default()).await;
    assert!(accepted(&s));
    let (ok, _, _) = s.terminate().await;
    assert!(ok);

    // Rotation: every secret re-sealed, the key file replaced, the old one kept beside it.
    let (ok, said) = rotate(&dir);
    assert!(ok, "{said}");
    assert!(said.contains("secrets re-sealed"), "{said}");
    let rotated = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(rotated.trim(), original.trim());
    assert_eq!(
        std::fs::read_to_string(dir.join("master.key.previous")).unwrap(),
        original
    );
    assert!(!dir.join("master.key.new").exists());
    let s = Server::start_in(&dir, Start::default()).await;
    assert!(accepted(&s), "the RADIUS secret opens under the new key");
    let code = crate::harness::oathtool(&secret, 0);
    assert_eq!(
        portal_login(&s, &code).await,
        StatusCode::OK,
        "the TOTP seed opens under the new key"
    );
    let ev = s.get("/events?type=master_key_rotate&limit=5").await.1;
    assert_eq!(ev["events"].as_array().map(Vec::len), Some(1), "{ev}");
    let (ok, _, _) = s.terminate().await;
    assert!(ok);
    // The old key no longer opens the directory.
    let (ok, said) = refused_start(&dir, &[("STRATUS_MASTER_KEY", original.trim())]);
    assert!(!ok && said.contains("master key does not open"), "{said}");
}
