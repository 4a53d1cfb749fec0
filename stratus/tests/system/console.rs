//! The admin console in headless Chromium (playwright-core, `conformance/console/walkthrough.mjs`) against the
//! real binary: the first minutes of a new admin done entirely in the browser, checked end to end with
//! ldapsearch, and a read-only admin who gets no write controls and whose forged writes the server refuses.
//! Screenshots of every page at desktop width and 375 px land in `target/console-screenshots/`.

use crate::harness::{Server, Start};
use reqwest::StatusCode;
use serde_json::{json, Value};

const READONLY_PASSWORD: &str = "Read-Only-Admin-Pass-3";

#[tokio::test]
async fn a_new_admin_does_the_walkthrough_in_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        &tmp.path().join("data"),
        Start {
            generated_bootstrap: true,
            ..Default::default()
        },
    )
    .await;
    let lines = s.stdout.lock().unwrap().clone();
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
            .unwrap_or_else(|| panic!("`{prefix}` printed: {lines:?}"))
    };
    let email = find("stratus: bootstrap admin: ");
    let one_time = find("stratus: bootstrap admin one-time password: ");
    let key = find("stratus: bootstrap admin API key: ");
    let ro = s
        .http
        .post(format!("{}/api/v1/admins", s.url))
        .bearer_auth(&key)
        .json(
            &json!({"email": "auditor@example.com", "name": "Auditor", "role": "read_only",
                      "password": READONLY_PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ro.status(), StatusCode::CREATED);

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/console/walkthrough.mjs"
    );
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/console-screenshots");
    let (url, ldap) = (s.url.clone(), s.ldap.clone());
    let v = crate::harness::browser_script(vec![
        script.to_string(),
        url.to_string(),
        email.to_string(),
        one_time.to_string(),
        "auditor@example.com".to_string(),
        READONLY_PASSWORD.to_string(),
        ldap.to_string(),
        shots.to_string(),
    ])
    .await;
    assert_eq!(v["ok"], true, "{v}");
    // The one-time password is replaced before anything else, with the policy's words for a weak one.
    assert_eq!(v["first_stop"], "/console/password", "{v}");
    assert!(
        v["weak_password_error"]
            .as_str()
            .unwrap_or("")
            .contains("characters"),
        "{v}"
    );
    assert_eq!(v["password_changed"], true, "{v}");
    // TOTP by QR code, then asked for at the next sign-in.
    assert_eq!(v["qr_matches_key"], true, "{v}");
    assert_eq!(v["totp_on"], true, "{v}");
    assert_eq!(v["code_asked"], true, "{v}");
    assert_eq!(v["dashboard_heading"], "Dashboard", "{v}");
    // Users, the duplicate refused in the core's words, search.
    assert_eq!(v["svc_created"], true, "{v}");
    assert_eq!(v["ann_created"], true, "{v}");
    assert!(
        v["duplicate_error"].as_str().unwrap_or("").contains("ann"),
        "{v}"
    );
    assert_eq!(v["search_finds_ann"], true, "{v}");
    // An e-mail-shaped user name shows as the sign-in name beside the uid derived from it.
    let summary = v["login_name_summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("Jane.Doe@Example.com") && summary.contains("jane.doe"),
        "{v}"
    );
    // The group bound to LDAP with both members, and the LDAP page's ldapsearch line finds the user.
    assert_eq!(v["bound"], true, "{v}");
    assert_eq!(v["suggested"], true, "{v}");
    assert_eq!(v["members"], "Members (2)", "{v}");
    assert_eq!(v["attribute_suggested"], "Tunnel-Private-Group-Id=", "{v}");
    assert_eq!(v["ldapsearch_finds_ann"], true, "{v}");
    // The import: one imported, one pending, one refused; the results file has a line per row and the failure.
    assert_eq!(
        v["import_badges"],
        json!(["created", "pending", "refused"]),
        "{v}"
    );
    assert_eq!(v["results_file_lines"], 4, "{v}");
    assert_eq!(v["results_file_has_failure"], true, "{v}");
    // Insights shows the Bind DN account's bind; the export is CSV.
    assert!(v["insights_rows"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(
        v["insights_first"]
            .as_str()
            .unwrap_or("")
            .contains("ldap_bind"),
        "{v}"
    );
    assert!(
        v["export_csv_header"]
            .as_str()
            .unwrap_or("")
            .starts_with("time,service,type"),
        "{v}"
    );
    // The dashboard counted the Bind DN account's LDAP bind.
    assert!(
        v["dashboard_ldap_succeeded"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
    // No page breaks the CSP or overflows at 375 px.
    assert_eq!(v["csp_errors"], json!([]), "{v}");
    assert!(
        v["overflow"].is_null(),
        "pages wider than the screen: {}",
        v["overflow"]
    );
    // Read-only: no write control is drawn; a forged write is refused by the core, one without CSRF before it.
    assert_eq!(v["readonly_new_user_link"], 0, "{v}");
    assert_eq!(v["readonly_buttons"], json!([]), "{v}");
    assert_eq!(v["readonly_forged_status"], 422, "{v}");
    assert!(
        v["readonly_forged_text"]
            .as_str()
            .unwrap_or("")
            .contains("your role does not allow"),
        "{v}"
    );
    assert_eq!(v["missing_csrf_status"], 403, "{v}");
    // And the user was not suspended.
    let users: Value = s
        .http
        .get(format!("{}/api/v1/users?search=ann", s.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        users.to_string().contains("\"state\":\"active\""),
        "{users}"
    );
    assert!(
        v["screenshots"].as_array().is_some_and(|a| a.len() >= 30),
        "{v}"
    );
}
