//! Every password rule is enforced on every set, with a message naming it; hashes are argon2id and no password
//! reaches the log or the store in clear.

use crate::harness::Server;
use reqwest::StatusCode;
use serde_json::json;

async fn strict_policy(s: &Server, history: u32) {
    let (st, p) = s
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings/password-policy",
            Some(json!({"min_length": 11, "require_lowercase": true, "require_uppercase": true, "require_digit": true,
                        "require_special": true, "disallow_username": true, "history": history, "max_age_days": 0,
                        "expiry_warning_days": 14, "lockout": {"enabled": true, "max_failures": 3, "lock_minutes": 0}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
}

#[tokio::test]
async fn each_password_rule_is_rejected_with_its_message() {
    let s = Server::start().await;
    strict_policy(&s, 2).await;
    let id = s.user("erin", None).await;
    let cases = [
        (
            "Sh0rt!",
            "min_length",
            "password must be at least 11 characters long",
        ),
        (
            "NOLOWERCASE12!",
            "lowercase",
            "password must include a lowercase letter",
        ),
        (
            "nouppercase12!",
            "uppercase",
            "password must include an uppercase letter",
        ),
        ("NoDigitsHere!!", "digit", "password must include a number"),
        (
            "NoSpecial12345",
            "special",
            "password must include a special character",
        ),
        (
            "xxErin-12345!",
            "username",
            "password may not contain the username",
        ),
    ];
    for (pw, rule, message) in cases {
        let (st, e) = s
            .post(&format!("/users/{id}/password"), json!({"password": pw}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{pw}: {e}");
        assert_eq!(e["error"]["code"], "password_policy");
        assert_eq!(e["error"]["rule"], rule, "{pw}");
        assert_eq!(e["error"]["message"], message);
        assert_eq!(e["error"]["field"], "password");
    }
    // Creation goes through the same rules.
    let (st, e) = s
        .post(
            "/users",
            json!({"username": "frank", "email": "f@example.com", "password": "weak"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["rule"], "min_length");
    assert_eq!(
        s.get("/users?search=frank").await.1["total"],
        0,
        "a refused creation writes nothing"
    );

    // History: the current and previous passwords cannot be reused.
    for pw in ["First-Passw0rd!", "Second-Passw0rd!"] {
        let (st, e) = s
            .post(&format!("/users/{id}/password"), json!({"password": pw}))
            .await;
        assert_eq!(st, StatusCode::OK, "{e}");
    }
    for pw in ["First-Passw0rd!", "Second-Passw0rd!"] {
        let (st, e) = s
            .post(&format!("/users/{id}/password"), json!({"password": pw}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{pw} reused");
        assert_eq!(e["error"]["rule"], "history");
    }
    let (st, _) = s
        .post(
            &format!("/users/{id}/password"),
            json!({"password": "Third-Passw0rd!"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = s
        .post(
            &format!("/users/{id}/password"),
            json!({"password": "First-Passw0rd!"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "only the 2 most recent are remembered");

    let failures = s.events("password_set", "erin").await;
    assert!(failures
        .iter()
        .any(|e| e["success"] == false && e["details"]["rule"] == "history"));
}

#[tokio::test]
async fn passwords_and_secrets_never_appear_in_logs_or_store_in_clear() {
    let s = Server::start().await;
    let pw = "Very-Distinctive-Pw-7731";
    let id = s.user("gina", Some(pw)).await;
    let (_, t) = s.post(&format!("/users/{id}/mfa/totp"), json!(null)).await;
    let secret = t["secret"].as_str().unwrap().to_string();
    let (st, _) = s.post("/radius-servers", json!({"name": "AP", "networks": ["127.0.0.1/32"], "secret": "Distinctive-Radius-Secret"})).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        s.portal_login("gina", "Wrong-Password-000", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, export) = s
        .call(reqwest::Method::GET, "/api/v1/events/export", None)
        .await;
    let (ok, dir, _tmp) = s.terminate().await;
    assert!(ok, "SIGTERM stops the server cleanly");
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    let store = std::fs::read(dir.join("stratus.redb")).unwrap();
    let raw_secret = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    for needle in [
        pw.as_bytes(),
        b"Wrong-Password-000",
        b"Distinctive-Radius-Secret",
        secret.as_bytes(),
    ] {
        assert!(
            !log.as_bytes().windows(needle.len()).any(|w| w == needle),
            "log leaks {}",
            String::from_utf8_lossy(needle)
        );
        assert!(
            !store.windows(needle.len()).any(|w| w == needle),
            "store holds {} in clear",
            String::from_utf8_lossy(needle)
        );
        assert!(!export
            .to_string()
            .contains(&*String::from_utf8_lossy(needle)));
    }
    assert!(
        !store
            .windows(raw_secret.len())
            .any(|w| w == raw_secret.as_slice()),
        "TOTP seed sealed at rest"
    );
    assert!(
        store.windows(10).any(|w| w == b"$argon2id$"),
        "password hashes are argon2id PHC strings"
    );
}

/// argon2id below the minimum cost is refused at start; hashes made at a lower cost than the configured one are
/// made again at the next successful login, and the password keeps working.
#[tokio::test]
async fn argon2_cost_has_a_floor_and_weaker_hashes_are_upgraded_at_login() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_stratus"))
        .args(["serve", "--data-dir"])
        .arg(&dir)
        .env("STRATUS_HTTP_ADDR", "127.0.0.1:0")
        .env("STRATUS_LDAP_ADDR", "127.0.0.1:0")
        .env("STRATUS_LDAPS_ADDR", "")
        .env("STRATUS_RADIUS_ADDR", "")
        .env("STRATUS_RADIUS_ACCOUNTING_ADDR", "")
        .env("STRATUS_ARGON2_MEMORY_KIB", "1024")
        .env("STRATUS_ARGON2_ITERATIONS", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("below the minimum cost"), "{said}");

    // A cheaper (but allowed) cost first, then the default: the next login re-hashes.
    let cheap = [
        ("STRATUS_ARGON2_MEMORY_KIB", "7168"),
        ("STRATUS_ARGON2_ITERATIONS", "6"),
    ];
    let s = Server::start_in(
        &dir,
        crate::harness::Start {
            env: cheap
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        },
    )
    .await;
    s.user("una", Some("Upgrade-Pass-77")).await;
    let (ok, _, _) = s.terminate().await;
    assert!(ok);
    let s = Server::start_in(&dir, crate::harness::Start::default()).await;
    let login = || async {
        s.http
            .post(format!("{}/portal/api/login", s.url))
            .json(&json!({"username": "una", "password": "Upgrade-Pass-77"}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(login().await, StatusCode::OK);
    let ev = s.events("password_rehashed", "una").await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["details"]["from"], "argon2id m=7168,t=6", "{ev:?}");
    assert_eq!(
        login().await,
        StatusCode::OK,
        "the re-made hash opens with the same password"
    );
    assert_eq!(
        s.events("password_rehashed", "una").await.len(),
        1,
        "once only"
    );
}
