//! The console's settings pages in headless Chromium (`conformance/console/settings.mjs`) against the real
//! binary: the password policy and org settings forms with the core's refusals next to their fields, admins
//! (create, one-time password reset, the last administrator kept), an API key shown once and refused once
//! deleted, a SCIM token held to its group's members until its scope is widened, and a help-desk admin who gets
//! no write controls and whose forged writes the core refuses. Screenshots land in `target/console-screenshots/`.

use crate::harness::{Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_admin_manages_settings_admins_and_tokens_in_the_browser() {
    let s = Server::start().await;
    let (st, g) = s.post("/groups", json!({"name": "contractors"})).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let contractors = g["id"].as_str().unwrap().to_string();
    let outsider = s.user("outsider", None).await;
    let member = s.user("contractor", None).await;
    let (st, v) = s
        .put(&format!("/groups/{contractors}/members/{member}"), None)
        .await;
    assert!(st.is_success(), "{v}");

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/console/settings.mjs"
    );
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/console-screenshots");
    let ca = s.dir.join("certs/ca.pem").display().to_string();
    let (url, o, m) = (s.url.clone(), outsider.clone(), member.clone());
    let v = crate::harness::browser_script(vec![
        script.to_string(),
        url.to_string(),
        ADMIN_EMAIL.to_string(),
        ADMIN_PASSWORD.to_string(),
        ca.to_string(),
        o.to_string(),
        m.to_string(),
        shots.to_string(),
    ])
    .await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["hub_heading"], "Settings", "{v}");

    // The policy: a refused value next to its field; the user form's hint and refusal follow the new minimum.
    assert!(
        v["policy_error"]
            .as_str()
            .unwrap_or("")
            .contains("min_length must be between 1"),
        "{v}"
    );
    assert_eq!(v["policy_saved"], true, "{v}");
    assert!(
        v["user_password_hint"]
            .as_str()
            .unwrap_or("")
            .contains("at least 16 characters"),
        "{v}"
    );
    assert_eq!(
        v["short_password_error"], "password must be at least 16 characters long",
        "{v}"
    );
    let (_, policy) = s.get("/settings/password-policy").await;
    assert_eq!(policy["min_length"], 16, "{policy}");

    // The org: the core's refusal next to its field, the typed values kept; then saved.
    assert_eq!(
        v["org_error"], "mfa_enrolment_days must be between 1 and 365",
        "{v}"
    );
    assert_eq!(v["org_kept_typed_value"], "45", "{v}");
    assert_eq!(v["org_saved"], true, "{v}");
    let (_, org) = s.get("/settings/org").await;
    assert_eq!(org["session_idle_minutes"], 45, "{org}");
    assert_eq!(org["mfa_enrolment_days"], 10, "{org}");

    // Admins: created, a reset password is one-time, the last administrator stays, a deletion is confirmed.
    assert_eq!(v["admin_created"], true, "{v}");
    assert_eq!(v["password_reset"], true, "{v}");
    assert_eq!(v["password_one_time"], true, "{v}");
    assert_eq!(
        v["demote_error"], "the last administrator cannot be demoted",
        "{v}"
    );
    assert_eq!(v["admin_deleted"], true, "{v}");
    assert_eq!(
        v["admins_after"],
        json!(["helpdesk@example.com", ADMIN_EMAIL]),
        "{v}"
    );

    // The API key: shown once, good for the API with curl, refused once deleted.
    let api_token = v["api_token"].as_str().unwrap_or_default().to_string();
    assert!(api_token.starts_with("stratus_"), "{v}");
    assert_eq!(v["api_with_key"], 200, "{v}");
    assert_eq!(v["api_token_shown_again"], false, "{v}");
    assert_eq!(v["api_key_listed"], 1, "{v}");
    assert_eq!(v["api_key_deleted"], true, "{v}");
    assert_eq!(v["api_after_delete"], 401, "{v}");
    let after = s
        .http
        .get(format!("{}/api/v1/users", s.url))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);

    // The SCIM token: a members_of scope needs a group; the contractors' member is in reach, the outsider
    // only once the scope is widened.
    assert!(
        v["scope_error"]
            .as_str()
            .unwrap_or("")
            .contains("needs at least one group"),
        "{v}"
    );
    assert!(
        v["scim_scope_listed"]
            .as_str()
            .unwrap_or("")
            .contains("Members of contractors"),
        "{v}"
    );
    assert_eq!(v["scim_outsider"], 403, "{v}");
    assert!(
        v["scim_outsider_detail"]
            .as_str()
            .unwrap_or("")
            .contains("not a member of the token's groups"),
        "{v}"
    );
    assert_eq!(v["scim_member"], 200, "{v}");
    assert_eq!(v["scim_token_shown_again"], false, "{v}");
    assert_eq!(v["scope_saved"], true, "{v}");
    assert_eq!(v["scim_outsider_after"], 200, "{v}");
    let (_, tokens) = s.get("/scim-tokens").await;
    assert_eq!(tokens[0]["name"], "vendor", "{tokens}");
    assert_eq!(tokens[0]["scope"]["users"], "all", "{tokens}");
    assert_eq!(tokens.as_array().map(Vec::len), Some(1), "{tokens}");

    // The help-desk admin: the reset password was one-time; no write controls on the settings pages (an API
    // key of their own is theirs to make: the core allows it to every admin); forged writes refused by the core,
    // one without the CSRF token before it.
    assert_eq!(v["help_first_stop"], "/console/password", "{v}");
    for page in ["hub", "admins", "admin", "scim-tokens", "scim-token"] {
        let w = &v["help_writes"][page];
        assert_eq!(w["buttons"], json!([]), "{page}: {v}");
        assert_eq!(w["post_forms"], 0, "{page}: {v}");
        assert_eq!(w["inputs"], 0, "{page}: {v}");
        assert_eq!(w["delete_links"], 0, "{page}: {v}");
    }
    let keys = &v["help_writes"]["api-keys"];
    assert_eq!(keys["buttons"], json!(["Create API key"]), "{v}");
    assert_eq!(keys["delete_links"], 0, "{v}");
    assert_eq!(v["forged_policy_status"], 422, "{v}");
    assert!(
        v["forged_policy_text"]
            .as_str()
            .unwrap_or("")
            .contains("managing organisation settings"),
        "{v}"
    );
    assert_eq!(v["forged_admin_status"], 422, "{v}");
    assert!(
        !v["forged_admin_text"].as_str().unwrap_or("").is_empty(),
        "{v}"
    );
    assert_eq!(v["missing_csrf_status"], 403, "{v}");
    let (_, policy) = s.get("/settings/password-policy").await;
    assert_eq!(policy["min_length"], 16, "the forged policy was not saved");
    let (_, admins) = s.get("/admins").await;
    let help = admins
        .as_array()
        .and_then(|a| a.iter().find(|a| a["email"] == "helpdesk@example.com"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(help["role"], "help_desk", "{admins}");
    assert_eq!(help["password_must_change"], false, "{admins}");
    assert!(!admins.to_string().contains("mallory"), "{admins}");

    // Every page fits a phone and keeps to the CSP.
    assert_eq!(v["csp_errors"], json!([]), "{v}");
    assert!(
        v["overflow"].is_null(),
        "pages wider than the screen: {}",
        v["overflow"]
    );
    assert!(
        v["screenshots"].as_array().is_some_and(|a| a.len() >= 30),
        "{v}"
    );
}
