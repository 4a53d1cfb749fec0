//! Activation links and the Mail page of the console in headless Chromium (`conformance/console/mail.mjs`)
//! against the real binary: without a mail server the user page shows the link once, in a box with a copy
//! button, and the link sets the first password; with a mail server the link is mailed (or shown when asked
//! for), the queue lists each message's failed attempt without its text, a test message is queued, and a
//! read-only admin gets neither buttons nor forms. Screenshots land in `target/console-screenshots/`.

use crate::harness::{form_body, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

const READONLY_EMAIL: &str = "auditor@example.com";
const READONLY_PASSWORD: &str = "Read-Only-Admin-Pass-3";

/// Run `mail.mjs` in `mode` for the user `user_id`; its JSON.
async fn browse(s: &Server, user_id: &str, mode: &str) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/console/mail.mjs"
    );
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/console-screenshots");
    let args: Vec<String> = [
        script,
        &s.url,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        user_id,
        mode,
        shots,
        READONLY_EMAIL,
        READONLY_PASSWORD,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let v = crate::harness::browser_script(args).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["csp_errors"], json!([]), "{v}");
    assert!(
        v["overflow"].is_null(),
        "pages wider than the screen: {}",
        v["overflow"]
    );
    v
}

#[tokio::test]
async fn without_a_mail_server_the_console_hands_over_an_activation_link_that_activates() {
    let s = Server::start().await;
    let id = s.user("lena", None).await;
    let v = browse(&s, &id, "handover").await;
    assert_eq!(
        v["actions"],
        json!(["Suspend", "Send activation link"]),
        "{v}"
    );
    assert!(
        v["actions_hint"]
            .as_str()
            .unwrap_or("")
            .contains("No mail server is configured"),
        "{v}"
    );
    let link = v["handover_link"].as_str().unwrap_or_default().to_string();
    assert!(
        link.starts_with(&format!("{}/activate?token=", s.url)),
        "{v}"
    );
    let text = v["handover_text"].as_str().unwrap_or("");
    assert!(
        text.contains("No mail was sent") && text.contains("until 20"),
        "{v}"
    );
    assert_eq!(v["handover_copied"], true, "{v}");
    assert_eq!(v["handover_copy_button"], "Copied", "{v}");
    assert_eq!(v["handover_shown_again"], false, "{v}");
    // The Mail page says there is no mail server and offers no test; a forged one is refused by the core.
    assert_eq!(v["mail_card"], "off\nMail", "{v}");
    assert_eq!(v["mail_heading"], "Mail", "{v}");
    assert!(
        v["mail_server"]
            .as_str()
            .unwrap_or("")
            .contains("not configured"),
        "{v}"
    );
    assert_eq!(v["test_forms"], 0, "{v}");
    assert!(
        v["queue_text"]
            .as_str()
            .unwrap_or("")
            .contains("Nothing is waiting"),
        "{v}"
    );
    assert_eq!(v["forged_test_status"], 422, "{v}");
    assert!(
        !v["forged_test_text"].as_str().unwrap_or("").is_empty(),
        "{v}"
    );
    assert_eq!(s.events("activation_link", "lena").await.len(), 1);

    // The link from the page sets the first password, and the user signs in with it.
    let token = link.split_once("token=").map_or("", |(_, t)| t);
    let pw = "Quiet-Meadow-Pass-42";
    let r = s
        .http
        .post(format!("{}/activate", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("token", token),
            ("new_password", pw),
            ("confirm", pw),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (st, me) = s.portal_login("lena", pw, None).await;
    assert_eq!(st, StatusCode::OK, "{me}");
    let (_, user) = s.get(&format!("/users/{id}")).await;
    assert_eq!(user["state"], "active", "{user}");
}

#[tokio::test]
async fn with_a_mail_server_the_console_mails_links_and_shows_the_queue() {
    // A mail server is configured but nothing listens there: each message waits with its first failure.
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
    let (st, ro) = s
        .post(
            "/admins",
            json!({"email": READONLY_EMAIL, "name": "Auditor", "role": "read_only",
                   "password": READONLY_PASSWORD}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{ro}");
    let id = s.user("milo", None).await;
    let v = browse(&s, &id, "mailed").await;
    assert_eq!(
        v["actions"],
        json!([
            "Suspend",
            "Send activation link",
            "Show a link to hand over"
        ]),
        "{v}"
    );
    assert_eq!(
        v["mailed_note"],
        "Activation link mailed to milo@example.com. Its delivery shows on the Mail page until the mail server \
         accepts it.",
        "{v}"
    );
    assert_eq!(v["mailed_page_has_link"], false, "{v}");
    let asked = v["asked_link"].as_str().unwrap_or("");
    assert!(
        asked.starts_with(&format!("{}/activate?token=", s.url)),
        "{v}"
    );
    assert_eq!(v["asked_copied"], true, "{v}");
    assert_eq!(v["asked_shown_again"], false, "{v}");

    // The queue: the welcome mail and the link asked for (both to milo), then the test; one attempt each, with
    // the mail server's failure, and never a message's text.
    assert_eq!(v["mail_heading"], "Mail", "{v}");
    let server = v["mail_server"].as_str().unwrap_or("");
    assert!(
        server.contains("configured") && !server.contains("not configured"),
        "{v}"
    );
    assert_eq!(v["test_default_to"], ADMIN_EMAIL, "{v}");
    assert!(
        v["test_queued"]
            .as_str()
            .unwrap_or("")
            .starts_with("Test message queued"),
        "{v}"
    );
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    let what: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or(""),
                r[1].as_str().unwrap_or(""),
                r[2].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        what,
        [
            ("activation link", "milo@example.com", "1"),
            ("activation link", "milo@example.com", "1"),
            ("test message", "ops@example.com", "1"),
        ],
        "{v}"
    );
    for r in &rows {
        assert!(r[3].as_str().unwrap_or("").ends_with("UTC"), "{v}");
        let error = r[4].as_str().unwrap_or("");
        assert!(!error.is_empty() && error != "—", "{v}");
    }
    assert_eq!(
        v["row_links"],
        json!([
            format!("/console/users/{id}"),
            format!("/console/users/{id}")
        ]),
        "{v}"
    );
    assert!(
        v["queue_status"]
            .as_str()
            .unwrap_or("")
            .starts_with("3 messages waiting, 3 of them after a failed attempt"),
        "{v}"
    );
    assert_eq!(v["queue_shows_link"], false, "{v}");
    assert_eq!(v["refused_status"], 422, "{v}");
    assert_eq!(v["refused_error"], "not an e-mail address", "{v}");
    assert_eq!(v["refused_kept"], "nobody", "{v}");
    let (_, queue) = s.get("/mail/queue").await;
    assert_eq!(
        queue["messages"].as_array().map(Vec::len),
        Some(3),
        "{queue}"
    );

    // Read-only: the queue, without buttons; forged writes refused by the core, and no link handed out.
    assert_eq!(v["readonly_user_buttons"], json!([]), "{v}");
    assert_eq!(v["readonly_rows"], 3, "{v}");
    assert_eq!(v["readonly_mail_buttons"], json!([]), "{v}");
    assert_eq!(v["readonly_forged_status"], 422, "{v}");
    assert!(
        !v["readonly_forged_text"].as_str().unwrap_or("").is_empty(),
        "{v}"
    );
    assert_eq!(v["readonly_activation_status"], 422, "{v}");
    assert_eq!(v["readonly_activation_has_link"], false, "{v}");
    assert_eq!(s.events("activation_link", "milo").await.len(), 2);
}
