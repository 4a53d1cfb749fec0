//! The CLI against a running server: users, groups, SAML apps and their keys, import with a results file, events,
//! activation links and the mail queue.

use crate::harness::{form_body, Server, API_KEY};
use reqwest::StatusCode;
use std::process::Command;
use std::time::{Duration, Instant};

/// Run the CLI against a server: (success, stdout, stderr).
pub(crate) fn stratus(s: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(args)
        .env("STRATUS_URL", &s.url)
        .env("STRATUS_API_KEY", API_KEY)
        .env("STRATUS_CA_CERT", s.dir.join("certs/ca.pem"))
        .output()
        .expect("run stratus");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn cli_manages_users_groups_imports_and_events() {
    let s = Server::start().await;
    let (ok, out, err) = stratus(
        &s,
        &[
            "users",
            "add",
            "--username",
            "quinn",
            "--email",
            "quinn@example.com",
            "--password",
            "Cli-Password-123",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = stratus(
        &s,
        &[
            "users",
            "add",
            "--username",
            "weak",
            "--email",
            "weak@example.com",
            "--password",
            "weak",
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains("password must be at least 12 characters long"),
        "{err}"
    );

    let (ok, out, err) = stratus(
        &s,
        &[
            "groups",
            "add",
            "Staff",
            "--linux-name",
            "staff",
            "--gid",
            "6000",
            "--samba",
        ],
    );
    assert!(ok, "{out}{err}");
    for args in [
        vec!["groups", "add-member", "Staff", "quinn"],
        vec!["groups", "bind", "Staff", "ldap"],
        vec![
            "groups",
            "set-reply-attribute",
            "Staff",
            "Tunnel-Private-Group-Id",
            "30",
        ],
        vec!["users", "suspend", "quinn"],
        vec!["users", "activate", "quinn"],
        vec!["users", "unlock", "quinn"],
        vec![
            "users",
            "set-password",
            "quinn",
            "--password",
            "Cli-Password-456",
        ],
    ] {
        let (ok, out, err) = stratus(&s, &args);
        assert!(ok, "{args:?}: {out}{err}");
    }
    let (_, groups) = s.get("/groups").await;
    let g = &groups[0];
    assert_eq!(g["member_count"], 1);
    assert_eq!(g["radius_reply"][0]["value"], "30");
    assert_eq!(g["bindings"][0], "ldap");
    let (ok, out, _) = stratus(&s, &["users", "list"]);
    assert!(
        ok && out.contains("quinn\tquinn@example.com\tactive\tactive"),
        "{out}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("users.csv");
    let mut text = String::from("firstname,lastname,username,email,password\n");
    for i in 0..1200 {
        text.push_str(&format!("F{i},L{i},bulk{i},bulk{i}@example.com,\n"));
    }
    text.push_str("Bad,Row,quinn,dup@example.com,\n");
    std::fs::write(&csv, text).unwrap();
    let results = tmp.path().join("results.csv");
    let (ok, out, err) = stratus(
        &s,
        &[
            "import",
            csv.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("imported 1200, failed 1"), "{out}");
    let res = std::fs::read_to_string(&results).unwrap();
    assert_eq!(res.lines().count(), 1202);
    assert!(
        res.lines()
            .last()
            .unwrap()
            .starts_with("1202,Bad,Row,dup@example.com,quinn,Failed:"),
        "{res}"
    );

    let (ok, out, _) = stratus(&s, &["events", "query", "--type", "user_import"]);
    assert!(ok && out.contains("user_import"), "{out}");
    let export = tmp.path().join("events.jsonl");
    let (ok, _, err) = stratus(&s, &["events", "export", "--out", export.to_str().unwrap()]);
    assert!(ok, "{err}");
    let lines = std::fs::read_to_string(&export).unwrap();
    assert!(lines
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    let (ok, _, _) = stratus(&s, &["users", "delete", "quinn"]);
    assert!(ok);
    assert_eq!(s.get("/users?search=quinn").await.1["total"], 0);
}

#[tokio::test]
async fn cli_sets_up_a_radius_network_that_radclient_reaches() {
    let s = Server::start().await;
    let secret = "cli-shared-secret-42";
    let run = |args: &[&str]| {
        let (ok, out, err) = stratus(&s, args);
        assert!(ok, "{args:?}: {out}{err}");
        out
    };
    run(&[
        "users",
        "add",
        "--username",
        "rita",
        "--email",
        "rita@example.com",
        "--password",
        "Cli-Password-123",
    ]);
    run(&[
        "radius",
        "add",
        "office-wifi",
        "--network",
        "127.0.0.1/32",
        "--secret",
        secret,
        "--mfa",
        "require_enrolled_only",
    ]);
    run(&["groups", "add", "Staff"]);
    run(&["groups", "add-member", "Staff", "rita"]);
    run(&[
        "groups",
        "set-reply-attribute",
        "Staff",
        "Tunnel-Private-Group-Id",
        "30",
    ]);
    run(&["groups", "bind", "Staff", "radius:office-wifi"]);
    let list = run(&["radius", "list"]);
    assert!(
        list.contains("office-wifi") && list.contains("require_enrolled_only"),
        "{list}"
    );
    let (ok, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        secret,
        "User-Name=rita,User-Password=Cli-Password-123,Message-Authenticator=0x00",
    );
    assert!(
        ok && out.contains("Tunnel-Private-Group-Id:1 = \"30\""),
        "{out}"
    );
    // A reply attribute the dictionary does not know is refused with the reason.
    let (ok, _, err) = stratus(
        &s,
        &[
            "groups",
            "set-reply-attribute",
            "Staff",
            "Tunnel-Bogus",
            "1",
        ],
    );
    assert!(!ok && err.contains("no such attribute"), "{err}");
    run(&[
        "radius",
        "set",
        "office-wifi",
        "--mfa",
        "off",
        "--method",
        "pap",
        "--method",
        "eap_ttls_pap",
        "--realm-mode",
        "strip",
    ]);
    assert!(run(&["radius", "list"]).contains("office-wifi"));
    // With `strip`, rita@example.org is rita.
    let (ok, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        secret,
        "User-Name=rita@example.org,User-Password=Cli-Password-123,Message-Authenticator=0x00",
    );
    assert!(ok, "{out}");
    run(&[
        "radius",
        "set",
        "office-wifi",
        "--realm-mode",
        "require",
        "--realm",
        "corp.example",
    ]);
    let (ok, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        secret,
        "User-Name=rita@example.org,User-Password=Cli-Password-123,Message-Authenticator=0x00",
    );
    assert!(!ok && out.contains("Access-Reject"), "{out}");
    run(&["groups", "unbind", "Staff", "radius:office-wifi"]);
    let (ok, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        secret,
        "User-Name=rita,User-Password=Cli-Password-123,Message-Authenticator=0x00",
    );
    assert!(!ok && out.contains("Access-Reject"), "{out}");
    run(&["radius", "delete", "office-wifi"]);
    assert!(!run(&["radius", "list"]).contains("office-wifi"));
}

#[tokio::test]
async fn cli_manages_saml_apps_and_their_keys() {
    let s = Server::start().await;
    let (ok, out, err) = stratus(
        &s,
        &[
            "apps",
            "add",
            "Wiki",
            "--entity-id",
            "https://wiki.example.com/saml",
            "--acs",
            "https://wiki.example.com/saml/acs",
            "--attribute",
            "email=email",
            "--attribute",
            "groups=groups",
        ],
    );
    assert!(ok, "{out}{err}");
    let app: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let id = app["id"].as_str().unwrap().to_string();
    assert_eq!(
        app["idp_metadata_url"],
        format!("{}/saml/{id}/metadata", s.url)
    );
    assert_eq!(app["idp_keys"][0]["status"], "active");
    let (ok, out, err) = stratus(
        &s,
        &["apps", "add", "Bad", "--entity-id", "x", "--acs", "ftp://x"],
    );
    assert!(!ok, "{out}");
    assert!(err.contains("not an absolute http(s) URL"), "{err}");
    let (ok, out, _) = stratus(&s, &["apps", "list"]);
    assert!(
        ok && out.contains("Wiki") && out.contains("key expires 20"),
        "{out}"
    );

    // Bind by name; rotate; the SP's metadata fills the app.
    stratus(&s, &["groups", "add", "Staff"]);
    let (ok, out, err) = stratus(&s, &["groups", "bind", "Staff", "app:Wiki"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = stratus(&s, &["apps", "rotate-key", "Wiki"]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["idp_keys"][1]["status"], "next");
    let next = v["idp_keys"][1]["id"].as_str().unwrap().to_string();
    let (ok, out, err) = stratus(&s, &["apps", "activate-key", "Wiki", &next]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["idp_keys"][0]["status"], "previous");
    assert_eq!(v["idp_keys"][1]["status"], "active");

    let md = s.dir.with_extension("sp.xml");
    std::fs::write(
        &md,
        concat!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://wiki.example.com/sp">"#,
            r#"<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#,
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://wiki.example.com/slo"/>"#,
            r#"<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://wiki.example.com/acs" index="0"/>"#,
            r#"</md:SPSSODescriptor></md:EntityDescriptor>"#
        ),
    )
    .unwrap();
    let (ok, out, err) = stratus(&s, &["apps", "sp-metadata", "Wiki", md.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sp_entity_id"], "https://wiki.example.com/sp");
    assert_eq!(v["acs_urls"][0], "https://wiki.example.com/acs");
    assert_eq!(v["sp_slo_url"], "https://wiki.example.com/slo");
    std::fs::write(&md, "<!DOCTYPE x []><x/>").unwrap();
    let (ok, _, err) = stratus(&s, &["apps", "sp-metadata", "Wiki", md.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("DTD"), "{err}");
    let (ok, _, err) = stratus(&s, &["apps", "delete", "Wiki"]);
    assert!(ok, "{err}");
}

#[tokio::test]
async fn cli_hands_over_an_activation_link_that_sets_the_first_password() {
    let s = Server::start().await;
    let id = s.user("pia", None).await;
    let (st, _) = s.portal_login("pia", "Amber-Harbour-Pass-42", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // No mail server: the link is printed, with its expiry, for the admin to hand over.
    let (ok, out, err) = stratus(&s, &["users", "activation", "pia"]);
    assert!(ok, "{out}{err}");
    let mut lines = out.lines();
    let link = lines.next().unwrap_or_default();
    assert!(
        link.starts_with(&format!("{}/activate?token=", s.url)),
        "{out}"
    );
    assert!(
        lines.next().is_some_and(|l| l.contains("not mailed")
            && l.contains("until 20")
            && l.ends_with("Z)")),
        "{out}"
    );
    let token = link.split_once("token=").unwrap().1;
    let activate = |password: &'static str| {
        s.http
            .post(format!("{}/activate", s.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("token", token),
                ("new_password", password),
                ("confirm", password),
            ]))
            .send()
    };
    let r = activate("Amber-Harbour-Pass-42").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (st, v) = s.portal_login("pia", "Amber-Harbour-Pass-42", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The link worked once; the user, named by id now, has a password and gets no new link.
    let r = activate("Amber-Harbour-Pass-43").await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let (ok, out, err) = stratus(&s, &["users", "activation", &id]);
    assert!(!ok, "{out}");
    assert!(err.contains("already has a password"), "{err}");
    // Without a mail server the queue is empty and says why; a test message is refused with the reason.
    let (ok, out, err) = stratus(&s, &["mail", "queue"]);
    assert!(ok && out.is_empty(), "{out}{err}");
    assert!(err.contains("no mail server is configured"), "{err}");
    let (ok, _, err) = stratus(&s, &["mail", "test", "ops@example.com"]);
    assert!(!ok && err.contains("no mail server is configured"), "{err}");
}

#[tokio::test]
async fn cli_mails_activation_links_and_lists_the_mail_queue() {
    // A mail server is configured but nothing listens there: every message waits in the queue with its error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let s = Server::start_with_env(&[
        ("STRATUS_MAIL_SMTP_HOST", "127.0.0.1"),
        ("STRATUS_MAIL_SMTP_PORT", &port),
        ("STRATUS_MAIL_TLS", "none"),
        ("STRATUS_MAIL_FROM", "Stratus Test <it@example.com>"),
        ("STRATUS_MAIL_RETRY_SECONDS", "3600"),
    ])
    .await;
    s.user("ravi", None).await;
    let (ok, out, err) = stratus(&s, &["users", "activation", "ravi"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("activation link mailed to ravi@example.com (valid until 20"),
        "{out}"
    );
    assert!(
        !out.contains("token="),
        "a mailed link is not printed: {out}"
    );
    let (ok, out, err) = stratus(&s, &["users", "activation", "ravi", "--hand-over"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with(&format!("{}/activate?token=", s.url)),
        "{out}"
    );
    let (ok, out, err) = stratus(&s, &["mail", "test", "ops@example.com"]);
    assert!(
        ok && out.trim() == "test message to ops@example.com queued",
        "{out}{err}"
    );

    // The welcome mail, the activation asked for and the test wait; each shows after its first failed attempt.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let (ok, out, err) = stratus(&s, &["mail", "queue"]);
        assert!(ok && err.is_empty(), "{out}{err}");
        let rows: Vec<Vec<String>> = out
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect();
        if rows.len() == 3 && rows.iter().all(|r| r[2] == "1") || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let purposes: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        purposes,
        [
            ("activation", "ravi@example.com"),
            ("activation", "ravi@example.com"),
            ("test", "ops@example.com")
        ],
        "{rows:?}"
    );
    for r in &rows {
        assert_eq!(r.len(), 5, "{rows:?}");
        assert_eq!(r[2], "1", "one attempt so far: {rows:?}");
        assert!(r[3].starts_with("20") && r[3].ends_with('Z'), "{rows:?}");
        assert!(!r[4].is_empty(), "the failed attempt's error: {rows:?}");
    }
}
