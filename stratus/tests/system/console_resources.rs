//! RADIUS profiles and SSO apps set up in the admin console in headless Chromium
//! (`conformance/console/resources.mjs`), then used by real clients: radclient signs in with the shared secret
//! the console showed once and gets the group's VLAN, and the python3-saml SP whose metadata made the app signs
//! in through it. Screenshots of every page at desktop width and 375 px land in `target/console-screenshots/`.

use crate::harness::{Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::radius::radclient;
use crate::saml::sp;
use serde_json::json;

const USER_PASSWORD: &str = "Wireless-Horse-Pass-7";

fn pap(s: &Server, secret: &str) -> (bool, String) {
    radclient(
        &s.radius,
        "auth",
        secret,
        &format!("User-Name=ann,User-Password=\"{USER_PASSWORD}\",Message-Authenticator=0x00"),
    )
}

#[tokio::test]
async fn radius_profiles_and_sso_apps_are_set_up_in_the_browser_and_work() {
    let s = Server::start().await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let script = format!("{root}/conformance/console/resources.mjs");
    let shots = format!("{root}/target/console-screenshots");
    let sp_py = format!("{root}/conformance/saml/sp.py");
    let ca = s.dir.join("certs/ca.pem").display().to_string();
    let url = s.url.clone();
    let v = crate::harness::browser_script(vec![
        script.to_string(),
        url.to_string(),
        ADMIN_EMAIL.to_string(),
        ADMIN_PASSWORD.to_string(),
        shots.to_string(),
        sp_py.to_string(),
        ca.to_string(),
        "/usr/bin/python3".to_string(),
    ])
    .await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["signed_in"], true, "{v}");
    assert_eq!(v["user_created"], true, "{v}");
    assert_eq!(v["group_members"], "Members (1)", "{v}");

    // RADIUS: a bad network is refused next to its field; the secret is generated, shown once, rotated.
    assert!(
        v["network_error"]
            .as_str()
            .unwrap_or("")
            .contains("not-a-network"),
        "{v}"
    );
    let first = v["first_secret"].as_str().unwrap_or("");
    let secret = v["secret"].as_str().unwrap_or("");
    assert_eq!(first.len(), 32, "{v}");
    assert_eq!(secret.len(), 32, "{v}");
    assert_ne!(first, secret, "{v}");
    assert!(
        v["secret_warning"]
            .as_str()
            .unwrap_or("")
            .contains("will not show it again"),
        "{v}"
    );
    assert_eq!(v["secret_shown_again"], false, "{v}");
    assert_eq!(v["rotated_notice"], "Secret rotated.", "{v}");
    assert_eq!(v["typed_secret_shown"], true, "{v}");
    assert_eq!(v["radius_ca"], true, "{v}");
    assert_eq!(v["radius_bound"], true, "{v}");
    assert_eq!(v["profile_groups"], json!(["wifi"]), "{v}");
    // What to type into an access point is this server's RADIUS listener.
    let (host, port) = s.radius.rsplit_once(':').unwrap();
    assert_eq!(v["ap_server"], host, "{v}");
    assert_eq!(v["ap_port"], port, "{v}");
    assert_eq!(
        v["ap_accounting_port"],
        s.radius_accounting.rsplit_once(':').unwrap().1,
        "{v}"
    );
    assert_eq!(v["ap_methods"], "EAP-TTLS/PAP", "{v}");
    assert_eq!(v["profiles_after_delete"], json!(["office-wifi"]), "{v}");

    // radclient with the secret copied from the page: the group's VLAN comes back; the rotated-away secret
    // gets no answer.
    let (ok, reply) = pap(&s, secret);
    assert!(ok, "{reply}");
    assert!(reply.contains("Received Access-Accept"), "{reply}");
    for line in [
        "Tunnel-Type:1 = VLAN",
        "Tunnel-Medium-Type:1 = IEEE-802",
        "Tunnel-Private-Group-Id:1 = \"42\"",
    ] {
        assert!(reply.contains(line), "missing `{line}` in {reply}");
    }
    let (ok, reply) = pap(&s, first);
    assert!(
        !ok && !reply.contains("Access-Accept"),
        "the old secret is dead: {reply}"
    );

    // SSO: the app made from the SP's metadata, a broken document refused in the reader's words.
    assert!(
        !v["bad_metadata_error"].as_str().unwrap_or("").is_empty(),
        "{v}"
    );
    assert_eq!(v["app_created"], true, "{v}");
    assert_eq!(v["sp_entity_id"], "https://sp.test/metadata", "{v}");
    assert!(
        v["sp_metadata_upload"]
            .as_str()
            .unwrap_or("")
            .contains("not signed"),
        "{v}"
    );
    assert_eq!(v["signed_requests"], "yes", "{v}");
    let app = v["app"].as_str().unwrap_or("").to_string();
    assert_eq!(
        v["idp_metadata_url"],
        format!("{}/saml/{app}/metadata", s.url),
        "{v}"
    );
    assert!(
        v["attribute_error"]
            .as_str()
            .unwrap_or("")
            .contains("`mail` is not a source"),
        "{v}"
    );
    assert_eq!(v["settings_saved"], true, "{v}");
    assert_eq!(v["key_statuses"], json!(["active", "next"]), "{v}");
    assert_eq!(v["key_certificate"], true, "{v}");
    assert_eq!(v["key_statuses_after_delete"], json!(["active"]), "{v}");
    assert_eq!(v["app_bound"], true, "{v}");
    assert_eq!(v["app_groups"], json!(["wifi"]), "{v}");

    // SCIM: plain http needs the loopback switch; the token never comes back; a failed delivery shows its
    // error and is retried now.
    assert!(
        v["insecure_error"]
            .as_str()
            .unwrap_or("")
            .contains("plain http"),
        "{v}"
    );
    assert_eq!(v["token_sent_back"], false, "{v}");
    assert_eq!(v["connector_saved"], true, "{v}");
    assert_eq!(v["outbox_state"], json!(["failed"]), "{v}");
    assert!(!v["outbox_error"].as_str().unwrap_or("").is_empty(), "{v}");
    assert_eq!(v["token_shown"], false, "{v}");
    assert!(
        v["retry_notice"]
            .as_str()
            .unwrap_or("")
            .starts_with("1 waiting delivery"),
        "{v}"
    );
    assert!(
        v["attempts_after_retry"]
            .as_str()
            .and_then(|a| a.parse::<u32>().ok())
            .is_some_and(|a| a >= 2),
        "{v}"
    );
    assert!(
        v["hand_made_upload"]
            .as_str()
            .unwrap_or("")
            .contains("by hand"),
        "{v}"
    );
    assert_eq!(v["apps_after_delete"], json!(["Example SP"]), "{v}");

    // No page breaks the CSP or overflows at 375 px.
    assert_eq!(v["csp_errors"], json!([]), "{v}");
    assert!(
        v["overflow"].is_null(),
        "pages wider than the screen: {}",
        v["overflow"]
    );
    assert!(
        v["screenshots"].as_array().is_some_and(|a| a.len() >= 22),
        "{v}"
    );

    // The SP signs in through the app, with signed requests and the assertion settings made in the console.
    let login = sp(
        &s,
        "login",
        json!({"app": app, "username": "ann", "password": USER_PASSWORD,
               "sign_requests": true, "sp_key": v["sp_key"], "sp_cert": v["sp_cert"],
               "want_response_signed": true, "want_assertion_signed": true}),
    );
    assert_eq!(login["errors"], json!([]), "{login}");
    assert_eq!(login["authenticated"], true, "{login}");
    assert_eq!(login["nameid"], "ann@example.com", "{login}");
    assert_eq!(login["attributes"]["memberOf"], json!(["wifi"]), "{login}");
    assert_eq!(login["xmlsec_response"], "ok", "{login}");
    assert_eq!(login["xmlsec_assertion"], "ok", "{login}");
}
