//! Mail against a real SMTP server (aiosmtpd, `conformance/mail/smtp_sink.py`, on a loopback port with STARTTLS
//! and AUTH): activation of a CSV-imported user whose password is pending, the forgotten-password reset (the
//! same answer for a known and an unknown address, mail only for the known one, open sessions ended), retries
//! after a refusal and across a restart, and the link handed over when no mail server is configured.

use crate::harness::{form_body, Server, Start, API_KEY};
use crate::radius::conformance_python;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMTP_USER: &str = "stratus-mailer";
const SMTP_PASSWORD: &str = "Smtp-Relay-Secret-9";

/// A CA and a certificate for 127.0.0.1 signed by it, for the mail server's TLS.
fn smtp_pki(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "Stratus test mail CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    dir.to_path_buf()
}

/// The SMTP server, killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    fn start(work: &Path, pki: &Path, extra: &[&str]) -> Sink {
        let dir = work.join(format!("inbox-{}", extra.len()));
        let mut child = Command::new(conformance_python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../conformance/mail/smtp_sink.py"
            ))
            .arg(&dir)
            .arg("--tls-cert")
            .arg(pki.join("server.pem"))
            .arg("--tls-key")
            .arg(pki.join("server.key"))
            .args(["--user", SMTP_USER, "--password", SMTP_PASSWORD])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/test installs it)");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"));
        Sink { child, port, dir }
    }

    /// The messages received so far, oldest first.
    fn messages(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for n in 1.. {
            let Ok(text) = std::fs::read_to_string(self.dir.join(format!("{n}.json"))) else {
                break;
            };
            out.push(serde_json::from_str(&text).unwrap());
        }
        out
    }

    /// Wait (at most 20 s) until a message to `to` whose subject contains `subject` arrives.
    async fn wait_for(&self, to: &str, subject: &str) -> Value {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(m) = self.messages().into_iter().find(|m| {
                m["rcpt_tos"][0] == to && m["subject"].as_str().unwrap_or("").contains(subject)
            }) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no message to {to} about {subject:?}; received: {:?}",
            self.messages()
        );
    }
}

/// A server sending through `sink` (STARTTLS, AUTH, trusting only the test CA).
async fn server_with_mail(sink_port: u16, pki: &Path, extra: &[(&str, &str)]) -> Server {
    let port = sink_port.to_string();
    let ca = pki.join("ca.pem").display().to_string();
    let mut env = vec![
        ("STRATUS_MAIL_SMTP_HOST", "127.0.0.1"),
        ("STRATUS_MAIL_SMTP_PORT", port.as_str()),
        ("STRATUS_MAIL_TLS", "starttls"),
        ("STRATUS_MAIL_USERNAME", SMTP_USER),
        ("STRATUS_MAIL_PASSWORD", SMTP_PASSWORD),
        ("STRATUS_MAIL_FROM", "Stratus Test <it@example.com>"),
        ("STRATUS_MAIL_CA_FILE", ca.as_str()),
        ("STRATUS_MAIL_RETRY_SECONDS", "1"),
    ];
    env.extend_from_slice(extra);
    Server::start_with_env(&env).await
}

/// The link a message carries (the first line starting with the server's URL).
fn link_in(m: &Value, base: &str) -> String {
    m["text"]
        .as_str()
        .unwrap()
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(base))
        .unwrap_or_else(|| panic!("no link in {m}"))
        .to_string()
}

fn token_of(link: &str) -> String {
    link.split_once("token=").unwrap().1.to_string()
}

/// Submit a link's form.
async fn set_password(s: &Server, page: &str, token: &str, pw: &str) -> (StatusCode, String) {
    let r = s
        .http
        .post(format!("{}/{page}", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", token),
            ("new_password", pw),
            ("confirm", pw),
        ]))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn events(s: &Server, kind: &str) -> Vec<Value> {
    let (_, ev) = s.get(&format!("/events?type={kind}&limit=100")).await;
    ev["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_csv_imported_user_activates_from_the_welcome_mail_and_binds_to_ldap() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = smtp_pki(&tmp.path().join("pki"));
    let sink = Sink::start(tmp.path(), &pki, &[]);
    let s = server_with_mail(sink.port, &pki, &[]).await;
    let (st, g) = s.post("/groups", json!({"name": "staff"})).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let g = g["id"].as_str().unwrap().to_string();
    s.put(&format!("/groups/{g}/bindings/ldap"), None).await;
    let suffix = s.get("/settings/org").await.1["ldap_suffix"]
        .as_str()
        .unwrap()
        .to_string();

    let csv = "firstname,lastname,username,email,password,groups\r\n\
               Nia,Newhire,nia,nia@example.com,,staff\r\n";
    let r = s
        .http
        .post(format!("{}/api/v1/import/users", s.url))
        .bearer_auth(API_KEY)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, u) = s.get("/users?search=nia").await;
    assert_eq!(u["users"][0]["password_status"], "pending", "{u}");
    assert_eq!(u["users"][0]["state"], "staged", "{u}");

    let m = sink.wait_for("nia@example.com", "Activate").await;
    assert_eq!(m["tls"], true, "STARTTLS was used: {m}");
    assert_eq!(m["authenticated"], true, "the relay's AUTH was used: {m}");
    assert!(m["html"].as_str().unwrap().contains("Choose your password"));
    let link = link_in(&m, &s.url);
    assert!(link.starts_with(&format!("{}/activate?token=", s.url)));

    // The page names the account and shows the rules before the fields.
    let page = s.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("nia") && html.contains("At least 12 characters"),
        "{html}"
    );
    // A password the policy refuses leaves the link usable.
    let token = token_of(&link);
    let (st, body) = set_password(&s, "activate", &token, "short").await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (st, body) = set_password(&s, "activate", &token, "First-Day-Pass-42").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert!(body.contains("Your account is active"), "{body}");

    let (code, out) = crate::identity::whoami(&s, &suffix, "nia", "First-Day-Pass-42");
    assert_eq!(code, Some(0), "the activated user binds to LDAP: {out}");
    let (_, u) = s.get("/users?search=nia").await;
    assert_eq!(u["users"][0]["state"], "active", "{u}");
    // The link worked once.
    let (st, _) = set_password(&s, "activate", &token, "Second-Try-Pass-43").await;
    assert_eq!(st, StatusCode::GONE);
    assert_eq!(
        s.http.get(&link).send().await.unwrap().status(),
        StatusCode::GONE
    );
    assert_eq!(events(&s, "user_activate").await.len(), 1);
    let sent = events(&s, "mail_sent").await;
    assert!(
        sent.iter()
            .any(|e| e["details"]["purpose"] == "activation" && e["username"] == "nia"),
        "{sent:?}"
    );
}

#[tokio::test]
async fn forgot_password_answers_alike_mails_only_the_account_and_the_reset_ends_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = smtp_pki(&tmp.path().join("pki"));
    let sink = Sink::start(tmp.path(), &pki, &[]);
    let s = server_with_mail(sink.port, &pki, &[]).await;
    s.user("omar", Some("Old-Pass-Word-11")).await;
    let (st, _) = s.portal_login("omar", "Old-Pass-Word-11", None).await;
    assert_eq!(st, StatusCode::OK);
    // An open portal session.
    let r = s
        .http
        .post(format!("{}/portal/api/login", s.url))
        .json(&json!({"username": "omar", "password": "Old-Pass-Word-11"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let me = || async {
        s.http
            .get(format!("{}/portal/api/me", s.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(me().await, StatusCode::OK);

    // The same answer for a known and an unknown address; the work happens after it.
    let ask = |who: &'static str| {
        let req = s
            .http
            .post(format!("{}/forgot-password", s.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("username", who)]));
        async move {
            let t = Instant::now();
            let r = req.send().await.unwrap();
            let st = r.status();
            (st, r.text().await.unwrap(), t.elapsed())
        }
    };
    let (st_known, body_known, t_known) = ask("omar@example.com").await;
    let (st_unknown, body_unknown, t_unknown) = ask("nobody@example.com").await;
    eprintln!("forgot-password answer times: known {t_known:?}, unknown {t_unknown:?}");
    assert_eq!(st_known, StatusCode::OK);
    assert_eq!((st_known, &body_known), (st_unknown, &body_unknown));

    let m = sink.wait_for("omar@example.com", "Reset").await;
    let link = link_in(&m, &s.url);
    assert!(link.starts_with(&format!("{}/reset-password?token=", s.url)));
    // Only the known account got mail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let to: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(to, ["omar@example.com"]);
    let requests = events(&s, "password_reset_request").await;
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|e| !e.to_string().contains("nobody@example.com")),
        "an unknown address is recorded as a digest: {requests:?}"
    );

    let (st, body) = set_password(&s, "reset-password", &token_of(&link), "New-Pass-Word-22").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(
        me().await,
        StatusCode::UNAUTHORIZED,
        "the reset ended the open session"
    );
    let (st, _) = s.portal_login("omar", "Old-Pass-Word-11", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s.portal_login("omar", "New-Pass-Word-22", None).await;
    assert_eq!(st, StatusCode::OK);
    let notice = sink.wait_for("omar@example.com", "was changed").await;
    assert!(notice["text"].as_str().unwrap().contains("every session"));
    let (st, _) = set_password(&s, "reset-password", &token_of(&link), "Third-Pass-Word-33").await;
    assert_eq!(st, StatusCode::GONE, "a reset link works once");
}

#[tokio::test]
async fn a_refused_message_is_retried_and_a_queued_one_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = smtp_pki(&tmp.path().join("pki"));
    // The server refuses the first message once (451): it is sent on the retry.
    let sink = Sink::start(tmp.path(), &pki, &["--fail-first", "1"]);
    let s = server_with_mail(sink.port, &pki, &[]).await;
    let (st, q) = s.post("/mail/test", json!({"to": "ops@example.com"})).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{q}");
    sink.wait_for("ops@example.com", "test message").await;
    let failed = events(&s, "mail_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("451"),
        "{failed:?}"
    );
    assert_eq!(events(&s, "mail_sent").await.len(), 1);
    drop(sink);

    // No mail server listens: the message waits in the queue, and a restart keeps it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (_, dir, guard) = s.terminate().await;
    let port_text = port.to_string();
    let ca = pki.join("ca.pem").display().to_string();
    let env: Vec<(String, String)> = [
        ("STRATUS_MAIL_SMTP_HOST", "127.0.0.1"),
        ("STRATUS_MAIL_SMTP_PORT", port_text.as_str()),
        ("STRATUS_MAIL_USERNAME", SMTP_USER),
        ("STRATUS_MAIL_PASSWORD", SMTP_PASSWORD),
        ("STRATUS_MAIL_FROM", "Stratus Test <it@example.com>"),
        ("STRATUS_MAIL_CA_FILE", ca.as_str()),
        ("STRATUS_MAIL_RETRY_SECONDS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let start = |env: Vec<(String, String)>| {
        let dir = dir.clone();
        async move {
            Server::start_in(
                &dir,
                Start {
                    env,
                    ..Default::default()
                },
            )
            .await
        }
    };
    let s = start(env.clone()).await;
    let (st, _) = s
        .post("/mail/test", json!({"to": "later@example.com"}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    while events(&s, "mail_failed").await.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, queue) = s.get("/mail/queue").await;
    let waiting = queue["messages"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{queue}");
    assert_eq!(waiting[0]["to"], "later@example.com");
    assert!(waiting[0]["attempts"].as_u64().unwrap() >= 1, "{queue}");
    assert!(
        waiting[0].get("text").is_none(),
        "the queue never shows a message's text"
    );
    let (clean, _, _) = s.terminate().await;
    assert!(clean);

    let port_arg = port.to_string();
    let sink = Sink::start(tmp.path(), &pki, &["--port", &port_arg]);
    let s = start(env).await;
    sink.wait_for("later@example.com", "test message").await;
    let (_, queue) = s.get("/mail/queue").await;
    assert_eq!(queue["messages"].as_array().unwrap().len(), 0, "{queue}");
    drop(guard);
}

#[tokio::test]
async fn without_a_mail_server_the_admin_hands_the_activation_link_over() {
    let s = Server::start().await;
    let id = s.user("hana", None).await;
    let (st, sent) = s.post(&format!("/users/{id}/activation"), json!({})).await;
    assert_eq!(st, StatusCode::OK, "{sent}");
    assert_eq!(sent["mailed"], false);
    let link = sent["link"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{}/activate?token=", s.url)),
        "{link}"
    );
    let (st, body) = set_password(&s, "activate", &token_of(&link), "Handed-Over-Pass-5").await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _) = s.portal_login("hana", "Handed-Over-Pass-5", None).await;
    assert_eq!(st, StatusCode::OK);
    // A user with a password gets no activation link.
    let (st, e) = s.post(&format!("/users/{id}/activation"), json!({})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // Forgot-password says plainly that it is not set up (the same for every address).
    let r = s
        .http
        .post(format!("{}/forgot-password", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("username", "hana")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        s.post("/mail/test", json!({"to": "x@example.com"})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

/// The self-service pages in headless Chromium, from the welcome mail's link to a replaced authenticator, each
/// photographed at desktop width and 375 px (`target/selfservice-screenshots/`).
#[tokio::test]
async fn self_service_pages_work_in_a_browser_from_the_welcome_mail_to_a_new_authenticator() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = smtp_pki(&tmp.path().join("pki"));
    let sink = Sink::start(tmp.path(), &pki, &[]);
    let s = server_with_mail(sink.port, &pki, &[]).await;
    // The organisation's name, colour and logo on every page.
    let (st, org) = s
        .patch(
            "/settings/org",
            json!({"name": "Acme Corp", "brand_color": "#aa3300", "logo": crate::auth::test_logo()}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{org}");
    s.user("vera", None).await;
    let m = sink.wait_for("vera@example.com", "Activate").await;
    let link = link_in(&m, &s.url);
    let shots = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/selfservice-screenshots"
    );
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/saml/browser/selfservice.mjs"
        ))
        .args([&s.url, &link, "vera", "Blue-Harbour-Pass-8", shots])
        .output()
        .expect("node runs (scripts/test installs playwright-core)");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "selfservice.mjs printed no JSON: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!("{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["activation_title"], "Activate your account", "{v}");
    assert_eq!(v["rules_shown"], true, "{v}");
    assert_eq!(v["activated"], "Your account is active", "{v}");
    assert_eq!(v["forgot_answer"], "Check your e-mail", "{v}");
    assert_eq!(v["recovery_codes_shown"], 10, "{v}");
    assert_eq!(
        v["codes_shown_again"], 0,
        "recovery codes are shown once: {v}"
    );
    assert_eq!(v["signed_in_with_recovery_code"], true, "{v}");
    assert!(
        v["codes_left_text"].as_str().unwrap().contains("left: 9"),
        "{v}"
    );
    assert_eq!(v["new_secret_differs"], true, "{v}");
    assert_eq!(v["new_codes"], 10, "{v}");
    assert_eq!(v["new_codes_differ"], true, "{v}");
    assert_eq!(v["shots"].as_array().unwrap().len(), 18, "{v}");
    // The old codes went with the old authenticator; the new one signs in.
    let old = v["old_unused_code"].as_str().unwrap();
    let (st, _) = s
        .portal_login("vera", "Blue-Harbour-Pass-8", Some(old))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(s.events("totp_replace_confirm", "vera").await.len(), 1);
    assert_eq!(s.events("recovery_code_used", "vera").await.len(), 2);
}

/// Password-expiry reminders: with passwords valid 30 days, a server whose clock reads 20 days later mails the
/// reminder for the 14-day threshold once — a restart sends no second one.
#[tokio::test]
async fn a_password_nearing_expiry_gets_one_reminder_per_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = smtp_pki(&tmp.path().join("pki"));
    let sink = Sink::start(tmp.path(), &pki, &[]);
    let s = server_with_mail(sink.port, &pki, &[]).await;
    s.update_policy(|p| p["max_age_days"] = json!(30)).await;
    s.user("pia", Some("Aging-Password-77")).await;
    s.user("quinn", None).await;
    let (_, dir, guard) = s.terminate().await;
    let port = sink.port.to_string();
    let ca = pki.join("ca.pem").display().to_string();
    let env: Vec<(String, String)> = [
        ("STRATUS_MAIL_SMTP_HOST", "127.0.0.1"),
        ("STRATUS_MAIL_SMTP_PORT", port.as_str()),
        ("STRATUS_MAIL_USERNAME", SMTP_USER),
        ("STRATUS_MAIL_PASSWORD", SMTP_PASSWORD),
        ("STRATUS_MAIL_FROM", "Stratus Test <it@example.com>"),
        ("STRATUS_MAIL_CA_FILE", ca.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let later = || Start {
        faketime: Some("+20d".into()),
        env: env.clone(),
        ..Default::default()
    };
    let s = Server::start_in(&dir, later()).await;
    let m = sink.wait_for("pia@example.com", "expires in").await;
    assert!(
        m["subject"].as_str().unwrap().contains("9 days")
            || m["subject"].as_str().unwrap().contains("10 days"),
        "{m}"
    );
    assert!(m["text"].as_str().unwrap().contains("/portal"), "{m}");
    let (clean, dir, _) = s.terminate().await;
    assert!(clean);
    let s = Server::start_in(&dir, later()).await;
    // The mailer looks at reminders as it starts; give it a moment, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reminders: Vec<Value> = sink
        .messages()
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap_or("").contains("expires in"))
        .collect();
    assert_eq!(
        reminders.len(),
        1,
        "one reminder per threshold: {reminders:?}"
    );
    assert!(
        reminders
            .iter()
            .all(|m| m["rcpt_tos"][0] == "pia@example.com"),
        "a user without a password gets none"
    );
    drop(s);
    drop(guard);
}

/// Forgot-password requests for one address are limited (three an hour go further, each answered alike), and a
/// user an HR system creates through SCIM without a password gets the welcome mail.
#[tokio::test]
async fn forgot_password_is_limited_per_address_and_scim_created_users_are_welcomed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = smtp_pki(&tmp.path().join("pki"));
    let sink = Sink::start(tmp.path(), &pki, &[]);
    let s = server_with_mail(sink.port, &pki, &[]).await;
    s.user("wren", Some("Limited-Pass-41")).await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let r = s
            .http
            .post(format!("{}/forgot-password", s.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("username", "wren")]))
            .send()
            .await
            .unwrap();
        answers.push((r.status(), r.text().await.unwrap()));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every answer is the same"
    );
    let start = Instant::now();
    while s.events("password_reset_request", "wren").await.len() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "requests recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests = s.events("password_reset_request", "wren").await;
    let limited = requests
        .iter()
        .filter(|e| e["reason"] == "too many requests for this account")
        .count();
    assert_eq!(limited, 2, "{requests:?}");
    let start = Instant::now();
    while sink.messages().len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "three reset mails"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 3, "only three went out");

    // SCIM: a user created without a password is welcomed like any other.
    let (st, t) = s.post("/scim-tokens", json!({"name": "hr"})).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let r = s
        .http
        .post(format!("{}/scim/v2/Users", s.url))
        .bearer_auth(t["token"].as_str().unwrap())
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "xena",
                   "name": {"givenName": "Xena", "familyName": "Hire"},
                   "emails": [{"value": "xena@example.com", "primary": true}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let m = sink.wait_for("xena@example.com", "Activate").await;
    assert!(link_in(&m, &s.url).contains("/activate?token="));
}
