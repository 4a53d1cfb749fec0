//! The SAML IdP against python3-saml (the OneLogin toolkit) as the SP, with xmlsec1 checking the signatures
//! independently: SP- and IdP-initiated login with the TOTP step, attributes for JIT provisioning, SLO, signed
//! requests, encryption, and the requests that must be refused.

use crate::harness::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;

const SP: &str = "https://sp.test";

/// Debian's python3 with python3-onelogin-saml2, requests and lxml (scripts/test installs them).
pub(crate) fn sp(s: &Server, scenario: &str, args: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/saml/sp.py");
    let ca = s.dir.join("certs/ca.pem");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(&s.url)
        .arg(&ca)
        .arg(scenario)
        .arg(args.to_string())
        .output()
        .expect("python3 runs (scripts/test installs python3-onelogin-saml2)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "sp.py {scenario} printed no JSON: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

pub(crate) struct Fixture {
    pub(crate) s: Server,
    pub(crate) app: String,
    pub(crate) user: String,
    pub(crate) group: String,
}

/// A user in a group bound to an app that sends the attributes a JIT-provisioning SP wants.
pub(crate) async fn fixture(app_extra: Value) -> Fixture {
    let s = Server::start().await;
    let user = s.user("alice", Some("Correct-Horse-9")).await;
    let (st, g) = s
        .post(
            "/groups",
            json!({"name": "sso-users", "attributes": {"department": "Engineering"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    let (st, _) = s.put(&format!("/groups/{gid}/members/{user}"), None).await;
    assert!(st.is_success());
    let mut body = json!({
        "name": "Example SP",
        "sp_entity_id": format!("{SP}/metadata"),
        "acs_urls": [format!("{SP}/acs")],
        "sp_slo_url": format!("{SP}/sls"),
        "sign": "both",
        "default_relay_state": "https://sp.test/home",
        "attributes": [
            {"name": "email", "source": "email"},
            {"name": "firstName", "source": "firstname"},
            {"name": "lastName", "source": "lastname"},
            {"name": "memberOf", "source": "groups"},
            {"name": "department", "source": "attribute:department"}
        ]
    });
    if let (Some(b), Some(extra)) = (body.as_object_mut(), app_extra.as_object()) {
        for (k, v) in extra {
            b.insert(k.clone(), v.clone());
        }
    }
    let (st, a) = s.post("/apps", body).await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let app = a["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .put(&format!("/groups/{gid}/bindings/app:{app}"), None)
        .await;
    assert!(st.is_success());
    Fixture {
        s,
        app,
        user,
        group: gid,
    }
}

pub(crate) fn login_args(f: &Fixture, extra: Value) -> Value {
    let mut a = json!({"app": f.app, "username": "alice", "password": "Correct-Horse-9",
                       "want_response_signed": true, "want_assertion_signed": true});
    if let (Some(b), Some(e)) = (a.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    a
}

#[tokio::test]
async fn sp_initiated_login_with_totp_passes_python3_saml_and_xmlsec1() {
    let f = fixture(json!({})).await;
    let secret = f.s.enrol_totp(&f.user).await;
    // A second app, to show the IdP session spares the user a second login.
    let (st, b) =
        f.s.post(
            "/apps",
            json!({"name": "Second SP", "sp_entity_id": "https://second.test/metadata",
                   "acs_urls": [format!("{SP}/acs")], "nameid_format": "persistent"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let second = b["id"].as_str().unwrap().to_string();
    let (st, _) =
        f.s.put(&format!("/groups/{}/bindings/app:{second}", f.group), None)
            .await;
    assert!(st.is_success());

    let out = sp(
        &f.s,
        "login",
        login_args(
            &f,
            json!({"totp_secret": secret, "second_app": second,
                   "second_entity": "https://second.test/metadata",
                   "want_response_signed": false}),
        ),
    );
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["authenticated"], true, "{out}");
    assert_eq!(out["trail"], json!(["password", "totp"]));
    assert_eq!(out["acs"], format!("{SP}/acs"));
    assert_eq!(out["nameid"], "alice@example.com");
    assert_eq!(
        out["authn_context"],
        "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"
    );
    let attrs = &out["attributes"];
    assert_eq!(attrs["email"], json!(["alice@example.com"]));
    assert_eq!(attrs["firstName"], json!(["Test"]));
    assert_eq!(attrs["lastName"], json!(["alice"]));
    assert_eq!(attrs["memberOf"], json!(["sso-users"]));
    assert_eq!(attrs["department"], json!(["Engineering"]));
    assert_eq!(out["relay_state"], "https://sp.test/after");
    assert_eq!(out["xmlsec_response"], "ok", "{out}");
    assert_eq!(out["xmlsec_assertion"], "ok", "{out}");
    // The second app: no password, no code, a persistent opaque NameID.
    let second = &out["second"];
    assert_eq!(second["errors"], json!([]), "{second}");
    assert_eq!(second["trail"], json!([]), "{second}");
    assert_eq!(
        second["nameid_format"],
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    );
    let opaque = second["nameid"].as_str().unwrap();
    assert_eq!(opaque.len(), 43);
    assert!(!opaque.contains("alice"));
    assert_eq!(second["xmlsec_response"], "absent");
    assert_eq!(second["xmlsec_assertion"], "ok");

    let events = f.s.events("sso_auth", "alice").await;
    assert!(events.len() >= 2, "{events:?}");
    assert!(events.iter().all(|e| e["success"] == true));
}

#[tokio::test]
async fn idp_initiated_launch_and_slo() {
    let f = fixture(json!({})).await;
    let out = sp(&f.s, "idp_initiated", login_args(&f, json!({})));
    assert_eq!(out["tiles"], true, "{out}");
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["relay_state"], "https://sp.test/home");
    assert_eq!(
        out["authn_context"],
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    );

    for without_cookie in [false, true] {
        let out = sp(
            &f.s,
            "slo",
            login_args(&f, json!({"without_cookie": without_cookie})),
        );
        assert_eq!(out["login_errors"], json!([]), "{out}");
        assert_eq!(out["location"], format!("{SP}/sls"), "{out}");
        assert_eq!(out["errors"], json!([]), "{out}");
        assert_eq!(out["relay_state"], "https://sp.test/bye");
        if without_cookie {
            // An unsigned request from another client names a user but proves nothing: the session stays.
            assert_eq!(out["portal_after"], 200, "{out}");
        } else {
            // The browser's IdP session is over: the portal sends it to the login page.
            assert_eq!(out["portal_after"], 303, "{out}");
            assert_eq!(out["portal_location"], "/login");
        }
    }
    let logouts = f.s.get("/events?type=sso_logout&limit=10").await.1;
    let reasons: Vec<&str> = logouts["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["0 IdP session(s) ended", "1 IdP session(s) ended"]
    );
}

#[tokio::test]
async fn signed_and_encrypted_exchanges() {
    let s0 = Server::start().await;
    let keys = sp(&s0, "keys", json!({}));
    drop(s0);
    let (key, cert) = (
        keys["key"].as_str().unwrap().to_string(),
        keys["cert"].as_str().unwrap().to_string(),
    );
    let f = fixture(
        json!({"sp_certificate": cert, "require_signed_requests": true,
                           "encrypt_assertion": true, "sign": "assertion"}),
    )
    .await;
    let (_, md) = {
        let r =
            f.s.http
                .get(format!("{}/saml/{}/metadata", f.s.url, f.app))
                .send()
                .await
                .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(md.contains("WantAuthnRequestsSigned=\"true\""), "{md}");
    let out = sp(
        &f.s,
        "login",
        login_args(
            &f,
            json!({"sign_requests": true, "sp_key": key, "sp_cert": cert,
                   "want_response_signed": false, "want_encrypted": true}),
        ),
    );
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["encrypted"], true);
    assert_eq!(out["attributes"]["department"], json!(["Engineering"]));

    // Unsigned requests are refused when the app requires signatures; a signed POST-binding request is taken.
    let args = |kind: &str| json!({"app": f.app, "kind": kind, "sp_key": key, "sp_cert": cert});
    let r = sp(&f.s, "refused", args("unsigned"));
    assert_eq!(r["status"], 400, "{r}");
    assert!(r["body"].as_str().unwrap().contains("not signed"), "{r}");
    let r = sp(&f.s, "refused", args("signed_post"));
    assert_eq!(r["status"], 303, "{r}");
    assert!(r["location"].as_str().unwrap().starts_with("/login?login="));
    for kind in ["wrapped", "wrapped_same_id", "tampered"] {
        let r = sp(&f.s, "refused", args(kind));
        assert_eq!(r["status"], 400, "{kind}: {r}");
    }
    let events = f.s.get("/events?type=sso_request&limit=100").await.1;
    let n = events["events"].as_array().map_or(0, Vec::len);
    assert!(n >= 4, "{events}");
}

#[tokio::test]
async fn bad_requests_are_refused_with_an_event_and_unbound_users_get_no_assertion() {
    let f = fixture(json!({})).await;
    for (kind, needle) in [
        ("acs", "not registered"),
        ("issuer", "issuer"),
        ("expired", "IssueInstant"),
        ("future", "IssueInstant"),
        ("malformed", "not"),
        ("dtd", "DTD"),
        ("oversize", "larger than"),
        ("bad_base64", "base64"),
        ("bad_deflate", "DEFLATE"),
        ("relay_long", "RelayState"),
    ] {
        let r = sp(&f.s, "refused", json!({"app": f.app, "kind": kind}));
        assert_eq!(r["status"], 400, "{kind}: {r}");
        assert!(r["body"].as_str().unwrap().contains(needle), "{kind}: {r}");
    }
    let r = sp(&f.s, "refused", json!({"app": f.app, "kind": "replay"}));
    assert_eq!(r["status"], 400, "{r}");
    assert!(r["body"].as_str().unwrap().contains("replayed"), "{r}");
    let r = sp(
        &f.s,
        "refused",
        json!({"app": "00000000000000000000000000", "kind": "none"}),
    );
    assert_eq!(r["status"], 404, "{r}");
    let events = f.s.get("/events?type=sso_request&limit=100").await.1;
    assert!(
        events["events"].as_array().map_or(0, Vec::len) >= 8,
        "{events}"
    );

    // A user outside the bound group signs in with the right password and gets an error page, no assertion.
    f.s.user("bob", Some("Correct-Horse-9")).await;
    let mut a = login_args(&f, json!({}));
    a["username"] = json!("bob");
    let out = sp(&f.s, "login", a);
    assert_eq!(out["page_status"], 403, "{out}");
    assert!(out["page"].as_str().unwrap().contains("do not have access"));
    let denied = f.s.events("sso_auth", "bob").await;
    assert_eq!(denied[0]["success"], false);
    assert_eq!(denied[0]["details"]["deny"], "not_bound");
}

/// Headless Debian Chromium (playwright-core) through the login page and the portal: sign in, enrol TOTP by
/// scanning the QR code, launch the app from its tile, and sign in again with the code.
#[tokio::test]
async fn browser_signs_in_enrols_totp_by_qr_and_launches_an_app() {
    let f = fixture(json!({})).await;
    let (st, _) =
        f.s.patch(&format!("/users/{}", f.user), json!({"mfa_required": true}))
            .await;
    assert_eq!(st, StatusCode::OK);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/saml/browser/check.mjs"
    );
    let s = &f.s;
    let url = s.url.clone();
    let acs = format!("{SP}/acs");
    let v = crate::harness::browser_script(vec![
        script.to_string(),
        url.to_string(),
        "alice".to_string(),
        "Correct-Horse-9".to_string(),
        "Example SP".to_string(),
        acs.to_string(),
    ])
    .await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["login_url"], "/login");
    assert_eq!(v["portal_heading"], "Welcome, Test alice");
    assert_eq!(v["scanned_uri_scheme"], "otpauth");
    assert_eq!(v["scanned_matches_shown"], true);
    assert_eq!(v["enrolled"], true);
    assert_eq!(v["launch_success"], true, "{v}");
    assert_eq!(v["launch_destination"], format!("{SP}/acs"));
    assert_eq!(v["launch_relay_state"], "https://sp.test/home");
    // The second sign-in used the e-mail address, in upper case.
    assert_eq!(v["second_login_asks_code"], true, "{v}");
    assert_eq!(v["second_login_portal"], true, "{v}");
    assert_eq!(v["deadline_shown"], true, "{v}");
    assert!(
        v["weak_password_message"]
            .as_str()
            .unwrap()
            .contains("at least"),
        "{v}"
    );
    assert_eq!(v["password_changed_message"], "Your password was changed.");
    assert_eq!(v["signed_in_after_own_change"], true, "{v}");
    let (_, user) = s.get(&format!("/users/{}", f.user)).await;
    assert_eq!(user["mfa"]["totp"], "active", "{user}");
}

#[tokio::test]
async fn force_authn_is_passive_and_an_expired_password_on_the_login_page() {
    let f = fixture(json!({})).await;
    // ForceAuthn asks for the password again although the session is live.
    let out = sp(
        &f.s,
        "login",
        login_args(&f, json!({"again": {"force_authn": true}})),
    );
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["again"]["trail"], json!(["password"]), "{out}");
    assert_eq!(out["again"]["errors"], json!([]), "{out}");
    // IsPassive without a session: a NoPassive status, no login page.
    let out = sp(&f.s, "login", login_args(&f, json!({"is_passive": true})));
    assert_eq!(out["trail"], json!([]), "{out}");
    assert_eq!(
        out["status"],
        "urn:oasis:names:tc:SAML:2.0:status:Requester"
    );
    assert_eq!(
        out["sub_status"],
        "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
    );
    assert_eq!(out["authenticated"], false);

    // An expired password: the right one leads to the new-password form (with the policy's message for a
    // weak one), then to a login with the new password.
    f.s.update_policy(|p| p["max_age_days"] = json!(1)).await;
    let secret = f.s.enrol_totp(&f.user).await;
    let Fixture { s, .. } = f;
    let (_, dir, _tmp) = s.terminate().await;
    let later = Server::start_in(
        &dir,
        crate::harness::Start {
            faketime: Some("+2d".into()),
            ..Default::default()
        },
    )
    .await;
    let out = sp(
        &later,
        "expired",
        json!({"username": "alice", "password": "Correct-Horse-9",
               "new_password": "Brand-New-Secret-7", "totp_secret": secret,
               "clock_offset": 2 * 86_400}),
    );
    assert_eq!(out["asked_new_password"], true, "{out}");
    assert_eq!(out["weak_status"], 422, "{out}");
    assert!(
        out["weak_message"].as_str().unwrap().contains("at least"),
        "{out}"
    );
    assert_eq!(out["back_to_login"], true, "{out}");
    assert_eq!(out["portal"], true, "{out}");
    // The second factor comes before the new password, and again at the next login.
    assert_eq!(
        out["trail"],
        json!(["password", "totp", "password", "totp"])
    );
}

/// The IdP metadata tells SPs to refresh it daily and never expires: an SP that honours `validUntil` and caches
/// the document would otherwise stop trusting the IdP once the date passed.
#[tokio::test]
async fn idp_metadata_has_a_cache_duration_and_no_short_expiry() {
    let f = fixture(json!({})).await;
    let r =
        f.s.http
            .get(format!("{}/saml/{}/metadata", f.s.url, f.app))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let md = r.text().await.unwrap();
    let start = md
        .find("<md:EntityDescriptor")
        .expect("an EntityDescriptor");
    let root_tag = &md[start..start + md[start..].find('>').unwrap()];
    assert!(root_tag.contains(r#"cacheDuration="PT24H""#), "{root_tag}");
    assert!(!md.contains("validUntil"), "{md}");
    // python3-saml still reads it as the IdP's metadata.
    let out = sp(&f.s, "login", login_args(&f, json!({})));
    assert_eq!(out["errors"], json!([]), "{out}");
}

#[tokio::test]
async fn sp_metadata_upload_and_idp_key_rotation() {
    let f = fixture(json!({"sp_entity_id": "https://placeholder.test/metadata",
                           "acs_urls": ["https://placeholder.test/acs"]}))
    .await;
    let keys = sp(&f.s, "keys", json!({}));
    let cert = keys["cert"].as_str().unwrap().to_string();
    let key = keys["key"].as_str().unwrap().to_string();
    // The metadata document python3-saml makes for this SP fills the app.
    let md = sp(
        &f.s,
        "metadata",
        json!({"app": f.app, "sp_cert": cert, "sp_key": key, "sign_requests": true}),
    );
    let xml = md["xml"].as_str().unwrap().to_string();
    let put = |body: String| {
        f.s.http
            .put(format!("{}/api/v1/apps/{}/sp-metadata", f.s.url, f.app))
            .bearer_auth(crate::harness::API_KEY)
            .header("content-type", "application/samlmetadata+xml")
            .body(body)
            .send()
    };
    let r = put(xml.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let app: Value = r.json().await.unwrap();
    assert_eq!(app["sp_entity_id"], format!("{SP}/metadata"));
    assert_eq!(app["acs_urls"], json!([format!("{SP}/acs")]));
    assert_eq!(app["sp_slo_url"], format!("{SP}/sls"));
    assert_eq!(app["require_signed_requests"], true);
    assert!(app["sp_certificate"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    // Hostile or broken metadata is refused with the reason.
    for bad in [
        "<!DOCTYPE m [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><m>&x;</m>".to_string(),
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"/>"
            .to_string(),
        xml[..xml.len() / 2].to_string(),
    ] {
        let r = put(bad).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["field"], "metadata", "{e}");
    }

    // Signed requests now work end to end.
    let args = |extra: Value| {
        login_args(
            &f,
            json!({"sign_requests": true, "sp_key": key, "sp_cert": cert}),
        )
        .as_object()
        .cloned()
        .map(|mut m| {
            if let Some(e) = extra.as_object() {
                m.extend(e.clone());
            }
            Value::Object(m)
        })
        .unwrap()
    };
    let out = sp(&f.s, "login", args(json!({})));
    assert_eq!(out["errors"], json!([]), "{out}");
    // A signed LogoutRequest ends the user's session even when it does not come with the browser's cookie.
    let out = sp(&f.s, "slo", args(json!({"without_cookie": true})));
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["portal_after"], 303, "{out}");
    // The metadata's ACS index is the one a request may name.
    for (index, status) in [(1, 303), (0, 400)] {
        let r = sp(
            &f.s,
            "refused",
            json!({"app": f.app, "kind": "index", "index": index,
                   "sign_requests": true, "sp_key": key, "sp_cert": cert}),
        );
        assert_eq!(r["status"], status, "index {index}: {r}");
    }
    let r = sp(
        &f.s,
        "refused",
        json!({"app": f.app, "kind": "tampered_redirect", "sign_requests": true,
                                       "sp_key": key, "sp_cert": cert}),
    );
    assert_eq!(r["status"], 400, "{r}");
    assert!(r["body"].as_str().unwrap().contains("signature"), "{r}");

    // Rotation: a next key is published beside the active one, then activated; the old one stays published
    // until deleted.
    let (st, app) =
        f.s.post(&format!("/apps/{}/idp-keys", f.app), json!({}))
            .await;
    assert_eq!(st, StatusCode::OK, "{app}");
    let statuses: Vec<&str> = app["idp_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["active", "next"]);
    assert!(app["idp_keys"][1]["not_after"].as_str().unwrap() > "2030");
    let next = app["idp_keys"][1]["id"].as_str().unwrap().to_string();
    let old = app["idp_keys"][0]["id"].as_str().unwrap().to_string();
    let out = sp(&f.s, "login", args(json!({})));
    assert_eq!(out["metadata_certificates"], 2);
    assert_eq!(
        out["xmlsec_assertion"], "ok",
        "signed by the first (active) key: {out}"
    );
    let (st, _) =
        f.s.post(
            &format!("/apps/{}/idp-keys/{next}/activate", f.app),
            json!(null),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let out = sp(&f.s, "login", args(json!({"cert_index": 1})));
    assert_eq!(
        out["errors"],
        json!([]),
        "python3-saml takes either published certificate: {out}"
    );
    assert_eq!(
        out["xmlsec_assertion"], "ok",
        "signed by the new key: {out}"
    );
    let (st, e) =
        f.s.delete(&format!("/apps/{}/idp-keys/{next}", f.app))
            .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the active key stays: {e}"
    );
    let (st, app) = f.s.delete(&format!("/apps/{}/idp-keys/{old}", f.app)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(app["idp_keys"].as_array().unwrap().len(), 1);
}

/// An SP key pair made by openssl: (certificate, private key), PEM.
fn sp_keys(s: &Server) -> (String, String) {
    let k = sp(s, "keys", json!({}));
    (
        k["cert"].as_str().unwrap().to_string(),
        k["key"].as_str().unwrap().to_string(),
    )
}

/// The metadata python3-saml makes for the SP with certificate `sp_cert` (requests signed), signed by `signer`
/// (certificate, key) when given.
fn sp_metadata(f: &Fixture, sp_cert: &str, sp_key: &str, signer: Option<(&str, &str)>) -> String {
    let mut args =
        json!({"app": f.app, "sp_cert": sp_cert, "sp_key": sp_key, "sign_requests": true});
    if let Some((cert, key)) = signer {
        args["sign_cert"] = json!(cert);
        args["sign_key"] = json!(key);
    }
    sp(&f.s, "metadata", args)["xml"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn upload_sp_metadata(f: &Fixture, xml: String) -> (StatusCode, Value) {
    let r =
        f.s.http
            .put(format!("{}/api/v1/apps/{}/sp-metadata", f.s.url, f.app))
            .bearer_auth(crate::harness::API_KEY)
            .header("content-type", "application/samlmetadata+xml")
            .body(xml)
            .send()
            .await
            .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// An SP that rolls its key over signs its new metadata with the new key: without a trust anchor the upload is
/// taken (recorded as signed, not verified), and requests signed with the new key are accepted.
#[tokio::test]
async fn signed_sp_metadata_is_taken_again_after_an_sp_key_rollover() {
    let f = fixture(json!({"sp_entity_id": "https://placeholder.test/metadata",
                           "acs_urls": ["https://placeholder.test/acs"]}))
    .await;
    let (old_cert, old_key) = sp_keys(&f.s);
    let md = sp_metadata(&f, &old_cert, &old_key, Some((&old_cert, &old_key)));
    let (st, app) = upload_sp_metadata(&f, md).await;
    assert_eq!(st, StatusCode::OK, "{app}");
    assert_eq!(app["sp_metadata_upload"]["signed"], true, "{app}");
    assert_eq!(
        app["sp_metadata_upload"]["verified_by_trust_anchor"], false,
        "{app}"
    );
    let first_upload = app["sp_metadata_upload"]["uploaded_at"].clone();

    // The rollover: new key, new metadata signed by it.
    let (new_cert, new_key) = sp_keys(&f.s);
    let md = sp_metadata(&f, &new_cert, &new_key, Some((&new_cert, &new_key)));
    let (st, app) = upload_sp_metadata(&f, md).await;
    assert_eq!(st, StatusCode::OK, "{app}");
    assert_eq!(app["sp_metadata_upload"]["signed"], true, "{app}");
    assert_ne!(app["sp_metadata_upload"]["uploaded_at"], first_upload);
    let der = |pem: &str| -> String {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert_eq!(
        der(app["sp_certificate"].as_str().unwrap()),
        der(&new_cert),
        "the new SP certificate replaced the old one"
    );
    let events = f.s.get("/events?type=app_sp_metadata&limit=10").await.1;
    let last = &events["events"][0];
    assert_eq!(last["details"]["signed"], true, "{events}");
    assert_eq!(
        last["details"]["verified_by_trust_anchor"], false,
        "{events}"
    );

    // Requests signed with the new key pass; the old key's are refused.
    let login = |cert: &str, key: &str| {
        login_args(
            &f,
            json!({"sign_requests": true, "sp_key": key, "sp_cert": cert}),
        )
    };
    let out = sp(&f.s, "login", login(&new_cert, &new_key));
    assert_eq!(out["errors"], json!([]), "{out}");
    let r = sp(
        &f.s,
        "refused",
        json!({"app": f.app, "kind": "signed_post", "sp_key": old_key, "sp_cert": old_cert}),
    );
    assert_eq!(r["status"], 400, "{r}");
}

/// With a metadata trust anchor, only metadata its key signed is taken (and shown verified); an app that requires
/// signed metadata refuses unsigned documents.
#[tokio::test]
async fn a_metadata_trust_anchor_must_sign_the_metadata_and_unsigned_uploads_can_be_refused() {
    let f = fixture(json!({"sp_entity_id": "https://placeholder.test/metadata",
                           "acs_urls": ["https://placeholder.test/acs"]}))
    .await;
    let path = format!("/apps/{}", f.app);
    let (sp_cert, sp_key) = sp_keys(&f.s);
    let (federation_cert, federation_key) = sp_keys(&f.s);
    let (other_cert, other_key) = sp_keys(&f.s);

    // The anchor must be a certificate, and requiring signed metadata needs one.
    let (st, e) =
        f.s.patch(&path, json!({"metadata_trust_anchor": "not a certificate"}))
            .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "metadata_trust_anchor", "{e}");
    let (st, e) =
        f.s.patch(&path, json!({"require_signed_metadata": true}))
            .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "require_signed_metadata", "{e}");
    let (st, app) =
        f.s.patch(&path, json!({"metadata_trust_anchor": federation_cert}))
            .await;
    assert_eq!(st, StatusCode::OK, "{app}");
    assert_eq!(app["metadata_trust_anchor"], json!(federation_cert));
    assert_eq!(app["require_signed_metadata"], false);

    // Signed by another key: refused, and the app is unchanged.
    let md = sp_metadata(&f, &sp_cert, &sp_key, Some((&other_cert, &other_key)));
    let (st, e) = upload_sp_metadata(&f, md).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "metadata", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("trust anchor"),
        "{e}"
    );
    let (_, app) = f.s.get(&path).await;
    assert_eq!(app["sp_entity_id"], "https://placeholder.test/metadata");
    assert_eq!(app["sp_metadata_upload"], Value::Null);

    // Signed by the anchor's key (the federation's, not the SP's own): taken and shown verified.
    let signed = sp_metadata(
        &f,
        &sp_cert,
        &sp_key,
        Some((&federation_cert, &federation_key)),
    );
    let (st, app) = upload_sp_metadata(&f, signed.clone()).await;
    assert_eq!(st, StatusCode::OK, "{app}");
    assert_eq!(app["sp_entity_id"], format!("{SP}/metadata"));
    assert_eq!(app["sp_metadata_upload"]["signed"], true, "{app}");
    assert_eq!(
        app["sp_metadata_upload"]["verified_by_trust_anchor"], true,
        "{app}"
    );
    let events = f.s.get("/events?type=app_sp_metadata&limit=10").await.1;
    assert_eq!(
        events["events"][0]["details"]["verified_by_trust_anchor"], true,
        "{events}"
    );
    // The same document changed after signing is refused.
    let tampered = signed.replace(&format!("{SP}/acs"), "https://evil.test/acs");
    let (st, e) = upload_sp_metadata(&f, tampered).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

    // Unsigned metadata is taken while the app does not require signatures, and shown as unsigned.
    let unsigned = sp_metadata(&f, &sp_cert, &sp_key, None);
    let (st, app) = upload_sp_metadata(&f, unsigned.clone()).await;
    assert_eq!(st, StatusCode::OK, "{app}");
    assert_eq!(app["sp_metadata_upload"]["signed"], false, "{app}");
    assert_eq!(
        app["sp_metadata_upload"]["verified_by_trust_anchor"], false,
        "{app}"
    );

    // Once required, unsigned metadata is refused and signed metadata still taken.
    let (st, app) =
        f.s.patch(&path, json!({"require_signed_metadata": true}))
            .await;
    assert_eq!(st, StatusCode::OK, "{app}");
    assert_eq!(app["require_signed_metadata"], true);
    let (st, e) = upload_sp_metadata(&f, unsigned).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not signed"),
        "{e}"
    );
    let (_, app) = f.s.get(&path).await;
    assert_eq!(
        app["sp_metadata_upload"]["signed"], false,
        "unchanged: {app}"
    );
    let (st, app) = upload_sp_metadata(&f, signed).await;
    assert_eq!(st, StatusCode::OK, "{app}");
    assert_eq!(
        app["sp_metadata_upload"]["verified_by_trust_anchor"], true,
        "{app}"
    );
    // The anchor cannot be removed while signatures are required.
    let (st, e) = f.s.patch(&path, json!({"metadata_trust_anchor": ""})).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
}

/// RSA-SHA1 (with SHA-1 digests) is used only for an app configured for it; RSA-SHA256 otherwise.
#[tokio::test]
async fn sha1_signatures_only_when_the_app_asks() {
    let f = fixture(json!({"signature_algorithm": "rsa-sha1"})).await;
    let out = sp(&f.s, "login", login_args(&f, json!({})));
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["xmlsec_response"], "ok", "{out}");
    assert_eq!(out["xmlsec_assertion"], "ok", "{out}");
    assert_eq!(
        out["signature_methods"],
        json!(["http://www.w3.org/2000/09/xmldsig#rsa-sha1"])
    );
    assert_eq!(
        out["digest_methods"],
        json!(["http://www.w3.org/2000/09/xmldsig#sha1"])
    );
    let (st, app) =
        f.s.patch(
            &format!("/apps/{}", f.app),
            json!({"signature_algorithm": "rsa-sha256"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{app}");
    let out = sp(&f.s, "login", login_args(&f, json!({})));
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(
        out["signature_methods"],
        json!(["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"])
    );
    assert_eq!(
        out["digest_methods"],
        json!(["http://www.w3.org/2001/04/xmlenc#sha256"])
    );
}

/// An IdP session ends when the user's password is reset by an admin, or the user is suspended; it survives
/// the idle check otherwise.
#[tokio::test]
async fn sessions_end_with_a_password_reset_or_a_suspension() {
    let f = fixture(json!({})).await;
    let jar = f.s.dir.with_extension("jar");
    let jar = jar.to_str().unwrap();
    let login = |password: &str| json!({"username": "alice", "password": password, "jar": jar});
    let out = sp(&f.s, "portal_login", login("Correct-Horse-9"));
    assert_eq!(out["portal"], true, "{out}");
    assert_eq!(
        sp(&f.s, "portal_status", json!({"jar": jar}))["status"],
        200
    );
    let (st, _) =
        f.s.post(
            &format!("/users/{}/password", f.user),
            json!({"password": "Reset-By-Admin-42"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let after = sp(&f.s, "portal_status", json!({"jar": jar}));
    assert_eq!(after["status"], 303, "{after}");
    assert_eq!(after["location"], "/login");

    let out = sp(&f.s, "portal_login", login("Reset-By-Admin-42"));
    assert_eq!(out["portal"], true, "{out}");
    let (st, _) =
        f.s.patch(&format!("/users/{}", f.user), json!({"state": "suspended"}))
            .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        sp(&f.s, "portal_status", json!({"jar": jar}))["status"],
        303
    );
}
