//! Conditional access policies with real clients from several loopback source addresses (127.0.0.x, which the
//! machine routes to itself): the portal API and a python3-saml SP through the login page, radclient, ldapwhoami,
//! the server's clock moved by libfaketime for time windows. After each real attempt `explain` is asked the same
//! question and must give the same answer.

use crate::harness::{Server, Start};
use crate::saml::{fixture as saml_fixture, login_args, sp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::process::Command;

const PW: &str = "Correct-Horse-9";

/// A client of the portal API connecting from `source`.
fn client_from(s: &Server, source: &str) -> reqwest::Client {
    let ca = std::fs::read(s.dir.join("certs/ca.pem")).expect("CA");
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA parses")])
        .local_address(source.parse::<IpAddr>().expect("address"))
        .build()
        .expect("client")
}

async fn portal_login_from(s: &Server, source: &str, user: &str, pw: &str) -> (StatusCode, Value) {
    let resp = client_from(s, source)
        .post(format!("{}/portal/api/login", s.url))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .await
        .expect("request");
    let st = resp.status();
    (st, resp.json().await.unwrap_or(Value::Null))
}

async fn ip_list(s: &Server, name: &str, networks: &[&str]) -> String {
    let (st, l) = s
        .post("/ip-lists", json!({"name": name, "networks": networks}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{l}");
    l["id"].as_str().unwrap().to_string()
}

async fn policy(s: &Server, body: Value) -> Value {
    let (st, p) = s.post("/access-policies", body).await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    p
}

async fn explain(s: &Server, user: &str, resource: &str, ip: &str, at: Option<&str>) -> Value {
    let mut path = format!("/explain?user={user}&resource={resource}&ip={ip}");
    if let Some(at) = at {
        path.push_str(&format!("&at={}", at.replace('+', "%2B")));
    }
    let (st, e) = s.get(&path).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    e
}

/// The newest event of a type for a user.
async fn last_event(s: &Server, event_type: &str, user: &str) -> Value {
    s.events(event_type, user)
        .await
        .into_iter()
        .next()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_deny_policy_by_source_refuses_portal_and_sso_logins_from_there_only() {
    let f = saml_fixture(json!({})).await;
    let s = &f.s;
    let lab = ip_list(s, "Lab network", &["127.0.0.7/32", "2001:db8::/32"]).await;
    let portal = policy(
        s,
        json!({"name": "No portal from the lab", "target": "portal", "source_in": [lab], "action": "deny"}),
    )
    .await;
    let apps = policy(
        s,
        json!({"name": "No apps from the lab", "target": "apps", "source_in": [lab], "action": "deny"}),
    )
    .await;
    assert_eq!(portal["priority"], 10);
    assert_eq!(apps["priority"], 20, "placed after the last one");

    // The portal: refused from the lab, with a reason the user can act on; in from elsewhere.
    let (st, body) = portal_login_from(s, "127.0.0.7", "alice", PW).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "access_policy", "{body}");
    let e = last_event(s, "portal_login", "alice").await;
    assert_eq!(e["success"], false, "{e}");
    assert_eq!(
        e["details"]["policy"]["name"], "No portal from the lab",
        "{e}"
    );
    assert_eq!(e["details"]["deny"], "policy_denied", "{e}");
    let x = explain(s, "alice", "portal", "127.0.0.7", None).await;
    assert_eq!(x["decision"], "deny", "{x}");
    assert_eq!(x["policy"]["name"], "No portal from the lab", "{x}");
    assert!(
        x["summary"].as_str().unwrap().contains("access policy"),
        "{x}"
    );

    let (st, body) = portal_login_from(s, "127.0.0.8", "alice", PW).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let e = last_event(s, "portal_login", "alice").await;
    assert_eq!(e["success"], true, "{e}");
    assert_eq!(
        e["details"]["policy"],
        Value::Null,
        "no policy decided: {e}"
    );
    let x = explain(s, "alice", "portal", "127.0.0.8", None).await;
    assert_eq!(x["decision"], "allow", "{x}");
    assert_eq!(x["policies"][0]["matched"], false, "{x}");
    assert_eq!(
        x["policies"][0]["conditions"][0]["met"], false,
        "the source condition is shown unmet: {x}"
    );

    // A python3-saml SP login through the login page: the same.
    let out = sp(s, "login", login_args(&f, json!({"source": "127.0.0.7"})));
    assert_eq!(out["page_status"], 403, "{out}");
    assert!(
        out["page"].as_str().unwrap().contains("access policy"),
        "{out}"
    );
    let e = last_event(s, "sso_auth", "alice").await;
    assert_eq!(
        e["details"]["policy"]["name"], "No apps from the lab",
        "{e}"
    );
    let x = explain(s, "alice", &format!("app:{}", f.app), "127.0.0.7", None).await;
    assert_eq!(x["decision"], "deny", "{x}");
    assert_eq!(x["policy"]["name"], "No apps from the lab", "{x}");

    let out = sp(s, "login", login_args(&f, json!({"source": "127.0.0.8"})));
    assert_eq!(out["authenticated"], true, "{out}");
    assert_eq!(out["errors"], json!([]), "{out}");
    let x = explain(s, "alice", &format!("app:{}", f.app), "127.0.0.8", None).await;
    assert_eq!(x["decision"], "allow", "{x}");

    // Switched off, the policy no longer applies, and explain says so.
    let (st, _) = s
        .put(
            &format!("/access-policies/{}", portal["id"].as_str().unwrap()),
            Some(
                json!({"name": "No portal from the lab", "target": "portal", "source_in": [lab],
                        "action": "deny", "enabled": false}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        portal_login_from(s, "127.0.0.7", "alice", PW).await.0,
        StatusCode::OK
    );
    let x = explain(s, "alice", "portal", "127.0.0.7", None).await;
    assert_eq!(x["decision"], "allow", "{x}");
    assert_eq!(x["policies"][0]["enabled"], false, "{x}");
}

#[tokio::test]
async fn require_mfa_on_one_app_asks_the_code_only_there() {
    let f = saml_fixture(json!({})).await;
    let s = &f.s;
    let secret = s.enrol_totp(&f.user).await;
    let (st, b) = s
        .post(
            "/apps",
            json!({"name": "Payroll", "sp_entity_id": "https://payroll.test/metadata",
                   "acs_urls": ["https://sp.test/acs"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let payroll = b["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .put(&format!("/groups/{}/bindings/app:{payroll}", f.group), None)
        .await;
    assert!(st.is_success());
    let office = ip_list(s, "Office", &["127.0.0.0/24"]).await;
    policy(
        s,
        json!({"name": "Office apps without a code", "target": "apps", "source_in": [office], "action": "allow"}),
    )
    .await;
    policy(
        s,
        json!({"name": "Payroll always with a code", "target": format!("app:{payroll}"), "action": "require_mfa"}),
    )
    .await;

    // The first app, from the office: the password alone.
    let out = sp(
        s,
        "login",
        login_args(&f, json!({"source": "127.0.0.9", "totp_secret": secret})),
    );
    assert_eq!(out["authenticated"], true, "{out}");
    assert_eq!(out["trail"], json!(["password"]), "{out}");
    let x = explain(s, "alice", &format!("app:{}", f.app), "127.0.0.9", None).await;
    assert_eq!(x["decision"], "allow", "{x}");
    assert_eq!(x["policy"]["name"], "Office apps without a code", "{x}");
    // Payroll, from the same place: both policies match; require_mfa beats allow.
    let out = sp(
        s,
        "login",
        json!({"app": payroll, "sp_entity_id": "https://payroll.test/metadata", "username": "alice",
               "password": PW, "totp_secret": secret, "source": "127.0.0.9"}),
    );
    assert_eq!(out["authenticated"], true, "{out}");
    assert_eq!(out["trail"], json!(["password", "totp"]), "{out}");
    let e = last_event(s, "sso_auth", "alice").await;
    assert_eq!(
        e["details"]["policy"]["name"], "Payroll always with a code",
        "{e}"
    );
    assert_eq!(e["details"]["mfa"], true, "{e}");
    let x = explain(s, "alice", &format!("app:{payroll}"), "127.0.0.9", None).await;
    assert_eq!(x["decision"], "require_mfa", "{x}");
    assert_eq!(x["policy"]["name"], "Payroll always with a code", "{x}");
    // From outside the office the first app falls back to its own rule: an enrolled user gives a code.
    let x = explain(s, "alice", &format!("app:{}", f.app), "::1", None).await;
    assert_eq!(x["decision"], "require_mfa", "{x}");
    assert_eq!(x["policy"], Value::Null, "{x}");
}

#[tokio::test]
async fn radius_policies_challenge_and_refuse_with_radclient() {
    let f = crate::radius::fixture().await;
    let s = &f.s;
    let ann = s.events("radius_auth", "ann").await;
    assert!(ann.is_empty());
    let (st, users) = s.get("/users?search=ann").await;
    assert_eq!(st, StatusCode::OK);
    let ann_id = users["users"][0]["id"].as_str().unwrap().to_string();
    s.enrol_totp(&ann_id).await;
    let nas = ip_list(s, "Access points", &["127.0.0.1"]).await;
    let p = policy(
        s,
        json!({"name": "Wi-Fi with a code", "target": format!("radius:{}", f.profile),
               "source_in": [nas], "action": "require_mfa"}),
    )
    .await;
    // The profile itself asks no code (mfa off): the policy makes radclient get a challenge.
    let (_, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        crate::radius::SECRET,
        &format!(
            "User-Name=ann,User-Password=\"{}\",Message-Authenticator=0x00",
            crate::radius::PW
        ),
    );
    assert!(out.contains("Received Access-Challenge"), "{out}");
    let x = explain(
        s,
        "ann",
        &format!("radius:{}", f.profile),
        "127.0.0.1",
        None,
    )
    .await;
    assert_eq!(x["decision"], "require_mfa", "{x}");

    // A deny for the group wins over the require_mfa.
    policy(
        s,
        json!({"name": "Wi-Fi closed", "target": "radius", "groups": [f.wifi], "action": "deny"}),
    )
    .await;
    let (ok, out) = crate::radius::radclient(
        &s.radius,
        "auth",
        crate::radius::SECRET,
        &format!(
            "User-Name=ann,User-Password=\"{}\",Message-Authenticator=0x00",
            crate::radius::PW
        ),
    );
    assert!(!ok && out.contains("Received Access-Reject"), "{out}");
    let e = last_event(s, "radius_auth", "ann").await;
    assert_eq!(e["details"]["policy"]["name"], "Wi-Fi closed", "{e}");
    let x = explain(
        s,
        "ann",
        &format!("radius:{}", f.profile),
        "127.0.0.1",
        None,
    )
    .await;
    assert_eq!(x["decision"], "deny", "{x}");
    assert_eq!(x["policy"]["name"], "Wi-Fi closed", "{x}");
    assert_eq!(p["action"], "require_mfa");
}

/// ldapwhoami bound as a user, from a given local address (libldap's SOCKET_BIND_ADDRESSES, read from the
/// environment).
fn whoami_from(s: &Server, source: &str, dn: &str, pw: &str) -> (bool, String) {
    let out = Command::new("ldapwhoami")
        .args([
            "-x",
            "-H",
            &format!("ldap://{}", s.ldap),
            "-D",
            dn,
            "-w",
            pw,
        ])
        .env("LDAPSOCKET_BIND_ADDRESSES", source)
        .output()
        .expect("ldapwhoami is installed (scripts/test installs ldap-utils)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn ldap_policies_by_source_and_require_mfa_refused_with_an_event() {
    let s = Server::start().await;
    let id = s.user("lena", Some(PW)).await;
    let (st, g) = s.post("/groups", json!({"name": "ldap-users"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let gid = g["id"].as_str().unwrap().to_string();
    assert!(s
        .put(&format!("/groups/{gid}/members/{id}"), None)
        .await
        .0
        .is_success());
    assert!(s
        .put(&format!("/groups/{gid}/bindings/ldap"), None)
        .await
        .0
        .is_success());
    let (_, org) = s.get("/settings/org").await;
    let dn = format!("uid=lena,ou=Users,{}", org["ldap_suffix"].as_str().unwrap());
    let nas = ip_list(&s, "Legacy NAS", &["127.0.0.7"]).await;
    policy(
        &s,
        json!({"name": "LDAP only from the NAS", "target": "ldap", "source_not_in": [nas], "action": "deny"}),
    )
    .await;
    let (ok, out) = whoami_from(&s, "127.0.0.7", &dn, PW);
    assert!(ok, "{out}");
    let x = explain(&s, "lena", "ldap", "127.0.0.7", None).await;
    assert_eq!(x["decision"], "allow", "{x}");
    let (ok, out) = whoami_from(&s, "127.0.0.8", &dn, PW);
    assert!(!ok && out.contains("Invalid credentials (49)"), "{out}");
    let e = last_event(&s, "ldap_bind", "lena").await;
    assert_eq!(
        e["details"]["policy"]["name"], "LDAP only from the NAS",
        "{e}"
    );
    assert_eq!(e["client_ip"], "127.0.0.8", "{e}");
    let x = explain(&s, "lena", "ldap", "127.0.0.8", None).await;
    assert_eq!(x["decision"], "deny", "{x}");

    // Require-MFA where no factor can be given: refused, and the event says why.
    policy(
        &s,
        json!({"name": "LDAP with MFA", "target": "ldap", "action": "require_mfa"}),
    )
    .await;
    let (ok, out) = whoami_from(&s, "127.0.0.7", &dn, PW);
    assert!(!ok, "{out}");
    let e = last_event(&s, "ldap_bind", "lena").await;
    assert_eq!(e["details"]["deny"], "mfa_required_no_factor", "{e}");
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("LDAP bind cannot carry"),
        "{e}"
    );
    let x = explain(&s, "lena", "ldap", "127.0.0.7", None).await;
    assert_eq!(x["decision"], "deny", "{x}");
    assert_eq!(x["reason"], "mfa_required_no_factor", "{x}");
}

#[tokio::test]
async fn time_windows_follow_the_servers_clock_in_the_org_time_zone() {
    let s = Server::start().await;
    s.user("tom", Some(PW)).await;
    let (st, e) = s
        .patch("/settings/org", json!({"time_zone": "Mars/Olympus"}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "time_zone");
    let (st, _) = s
        .patch("/settings/org", json!({"time_zone": "Asia/Tokyo"}))
        .await;
    assert_eq!(st, StatusCode::OK);
    policy(
        &s,
        json!({"name": "Office hours only", "target": "portal", "action": "deny",
               "time": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00", "outside": true}}),
    )
    .await;
    let (_, dir, tmp) = s.terminate().await;
    // Monday 7 December 2026, 01:00 UTC is 10:00 in Tokyo: inside the window.
    let monday = Server::start_in(
        &dir,
        Start {
            faketime: Some("@2026-12-07 01:00:00".into()),
            env: vec![("TZ".into(), "UTC".into())],
            ..Start::default()
        },
    )
    .await;
    assert_eq!(monday.portal_login("tom", PW, None).await.0, StatusCode::OK);
    let x = explain(
        &monday,
        "tom",
        "portal",
        "127.0.0.1",
        Some("2026-12-07T01:00:00Z"),
    )
    .await;
    assert_eq!(x["decision"], "allow", "{x}");
    let x = explain(&monday, "tom", "portal", "127.0.0.1", None).await;
    assert_eq!(
        x["decision"], "allow",
        "explain reads the server's clock when no time is given: {x}"
    );
    let (_, dir, _) = monday.terminate().await;
    // Monday 10:00 UTC is 19:00 in Tokyo: outside.
    let evening = Server::start_in(
        &dir,
        Start {
            faketime: Some("@2026-12-07 10:00:00".into()),
            env: vec![("TZ".into(), "UTC".into())],
            ..Start::default()
        },
    )
    .await;
    let (st, body) = evening.portal_login("tom", PW, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let e = last_event(&evening, "portal_login", "tom").await;
    assert_eq!(e["details"]["policy"]["name"], "Office hours only", "{e}");
    let x = explain(&evening, "tom", "portal", "127.0.0.1", None).await;
    assert_eq!(x["decision"], "deny", "{x}");
    let cond = x["policies"][0]["conditions"][0]["condition"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cond.contains("Mon 19:00") && cond.contains("Asia/Tokyo"),
        "{cond}"
    );
    drop(evening);
    drop(tmp);
}

#[tokio::test]
async fn report_only_records_without_enforcing_and_no_policy_grants_an_unbound_user() {
    let f = saml_fixture(json!({})).await;
    let s = &f.s;
    let everywhere = ip_list(s, "Everywhere", &["0.0.0.0/0", "::/0"]).await;
    policy(
        s,
        json!({"name": "Trial: block apps", "target": "apps", "source_in": [everywhere],
               "action": "deny", "report_only": true}),
    )
    .await;
    policy(
        s,
        json!({"name": "Apps allowed", "target": "apps", "action": "allow"}),
    )
    .await;
    let out = sp(s, "login", login_args(&f, json!({"source": "127.0.0.5"})));
    assert_eq!(out["authenticated"], true, "{out}");
    let e = last_event(s, "sso_auth", "alice").await;
    assert_eq!(e["success"], true, "{e}");
    assert_eq!(e["details"]["policy"]["name"], "Apps allowed", "{e}");
    assert_eq!(
        e["details"]["report_only"][0]["name"], "Trial: block apps",
        "{e}"
    );
    assert_eq!(e["details"]["report_only"][0]["action"], "deny", "{e}");
    let x = explain(s, "alice", &format!("app:{}", f.app), "127.0.0.5", None).await;
    assert_eq!(x["decision"], "allow", "{x}");
    assert_eq!(x["report_only"][0]["name"], "Trial: block apps", "{x}");

    // An allow policy covering everyone does not let in a user no bound group holds.
    s.user("zed", Some(PW)).await;
    let out = sp(
        s,
        "login",
        login_args(&f, json!({"source": "127.0.0.5", "username": "zed"})),
    );
    assert_eq!(out["page_status"], 403, "{out}");
    let e = last_event(s, "sso_auth", "zed").await;
    assert_eq!(e["details"]["deny"], "not_bound", "{e}");
    let x = explain(s, "zed", &format!("app:{}", f.app), "127.0.0.5", None).await;
    assert_eq!(x["decision"], "deny", "{x}");
    assert_eq!(x["reason"], "not_bound", "{x}");
    assert!(
        x["policies"].as_array().unwrap().is_empty(),
        "policies are not reached: {x}"
    );
}

#[tokio::test]
async fn policies_and_lists_are_validated_and_kept_consistent() {
    let s = Server::start().await;
    let uid = s.user("vic", Some(PW)).await;
    let (_, g) = s.post("/groups", json!({"name": "break-glass"})).await;
    let gid = g["id"].as_str().unwrap().to_string();
    assert!(s
        .put(&format!("/groups/{gid}/members/{uid}"), None)
        .await
        .0
        .is_success());
    let field = |v: &Value| v["error"]["field"].as_str().unwrap_or("").to_string();

    let (st, e) = s
        .post("/ip-lists", json!({"name": "Empty", "networks": [" "]}))
        .await;
    assert_eq!(
        (st, field(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, "networks".into()),
        "{e}"
    );
    let (st, e) = s
        .post(
            "/ip-lists",
            json!({"name": "Bad", "networks": ["10.0.0.0/33"]}),
        )
        .await;
    assert_eq!(
        (st, field(&e)),
        (StatusCode::UNPROCESSABLE_ENTITY, "networks".into()),
        "{e}"
    );
    let vpn = ip_list(&s, "VPN", &["10.8.0.0/16", "10.8.1.1"]).await;
    let (st, e) = s
        .post(
            "/ip-lists",
            json!({"name": "vpn", "networks": ["10.9.0.0/16"]}),
        )
        .await;
    assert_eq!(
        (st, field(&e)),
        (StatusCode::CONFLICT, "name".into()),
        "{e}"
    );

    let base = json!({"name": "P", "target": "portal", "action": "deny"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, want) in [
        (
            with(json!({"groups": [gid], "excluded_groups": [gid]})),
            "excluded_groups",
        ),
        (
            with(json!({"source_in": [vpn], "source_not_in": [vpn]})),
            "source_not_in",
        ),
        (
            with(json!({"time": {"days": [], "start": "08:00", "end": "18:00"}})),
            "time",
        ),
        (
            with(json!({"time": {"days": ["mon"], "start": "08:00", "end": "08:00"}})),
            "time",
        ),
        (
            with(json!({"time": {"days": ["mon"], "start": "8h", "end": "18:00"}})),
            "time",
        ),
        (
            with(json!({"target": "app:AAAAAAAAAAAAAAAAAAAAAAAAAA"})),
            "target",
        ),
        (with(json!({"target": "printers"})), "target"),
        (
            with(json!({"source_in": ["AAAAAAAAAAAAAAAAAAAAAAAAAA"]})),
            "source_in",
        ),
    ] {
        let (st, e) = s.post("/access-policies", body.clone()).await;
        assert!(
            st == StatusCode::UNPROCESSABLE_ENTITY || st == StatusCode::BAD_REQUEST,
            "{body} → {st} {e}"
        );
        if st == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(field(&e), want, "{body} → {e}");
        }
    }
    policy(
        &s,
        with(json!({"name": "Outside the VPN", "source_not_in": [vpn], "excluded_groups": [gid]})),
    )
    .await;
    let (st, e) = s
        .post("/access-policies", with(json!({"name": "outside the vpn"})))
        .await;
    assert_eq!(
        (st, field(&e)),
        (StatusCode::CONFLICT, "name".into()),
        "{e}"
    );
    // What a policy names cannot disappear from under it.
    let (st, e) = s.delete(&format!("/ip-lists/{vpn}")).await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Outside the VPN"),
        "{e}"
    );
    let (st, e) = s.delete(&format!("/groups/{gid}")).await;
    assert_eq!(st, StatusCode::CONFLICT, "{e}");
    // The break-glass member is not covered; explain shows the exclusion.
    let x = explain(&s, "vic", "portal", "192.0.2.1", None).await;
    assert_eq!(x["decision"], "allow", "{x}");
    assert_eq!(s.portal_login("vic", PW, None).await.0, StatusCode::OK);
    let (st, list) = s.get("/ip-lists").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list[0]["used_by"], json!(["Outside the VPN"]), "{list}");
    assert_eq!(
        list[0]["networks"],
        json!(["10.8.0.0/16", "10.8.1.1/32"]),
        "{list}"
    );
    // The OpenAPI document has them.
    let (_, doc) = s.get("/openapi.json").await;
    for path in [
        "/api/v1/access-policies",
        "/api/v1/ip-lists",
        "/api/v1/explain",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[tokio::test]
async fn the_cli_manages_lists_and_policies_and_explains() {
    use crate::cli::stratus;
    let s = Server::start().await;
    let uid = s.user("una", Some(PW)).await;
    let (_, g) = s.post("/groups", json!({"name": "staff"})).await;
    let gid = g["id"].as_str().unwrap().to_string();
    assert!(s
        .put(&format!("/groups/{gid}/members/{uid}"), None)
        .await
        .0
        .is_success());
    assert!(s
        .put(&format!("/groups/{gid}/bindings/ldap"), None)
        .await
        .0
        .is_success());
    let (ok, out, err) = stratus(
        &s,
        &[
            "ip-lists",
            "add",
            "Branch",
            "--network",
            "127.0.0.7",
            "--network",
            "10.20.0.0/16",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = stratus(
        &s,
        &[
            "policies",
            "add",
            "Branch LDAP blocked",
            "--target",
            "ldap",
            "--action",
            "deny",
            "--group",
            "staff",
            "--from",
            "Branch",
            "--days",
            "mon,tue,wed,thu,fri,sat,sun",
            "--start",
            "00:00",
            "--end",
            "24:00",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = stratus(&s, &["policies", "list"]);
    assert!(
        ok && out.contains("Branch LDAP blocked\tldap\tdeny\ton"),
        "{out}"
    );
    let (ok, out, err) = stratus(
        &s,
        &["explain", "una", "--resource", "ldap", "--ip", "127.0.0.7"],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("✗ policies") && out.contains("\"Branch LDAP blocked\": matches: deny"),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with("(policy \"Branch LDAP blocked\")."),
        "{out}"
    );
    // Report-only: the bind goes through; explain says what the policy would do.
    let (ok, out, err) = stratus(
        &s,
        &[
            "policies",
            "set",
            "Branch LDAP blocked",
            "--report-only",
            "true",
        ],
    );
    assert!(ok, "{out}{err}");
    let (ok, out, _) = stratus(
        &s,
        &[
            "explain",
            "una",
            "--resource",
            "ldap",
            "--ip",
            "127.0.0.7",
            "--json",
        ],
    );
    assert!(ok, "{out}");
    let x: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(x["decision"], "allow", "{x}");
    assert_eq!(x["report_only"][0]["action"], "deny", "{x}");
    let (ok, _, err) = stratus(&s, &["ip-lists", "delete", "Branch"]);
    assert!(
        !ok && err.contains("used by the policies Branch LDAP blocked"),
        "{err}"
    );
    let (ok, _, err) = stratus(&s, &["policies", "delete", "Branch LDAP blocked"]);
    assert!(ok, "{err}");
    let (ok, _, err) = stratus(&s, &["ip-lists", "delete", "Branch"]);
    assert!(ok, "{err}");
}

#[tokio::test]
async fn the_console_explains_step_by_step_in_chromium() {
    use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD};
    let f = saml_fixture(json!({})).await;
    let s = &f.s;
    let lab = ip_list(s, "Lab network", &["127.0.0.7/32"]).await;
    policy(
        s,
        json!({"name": "No apps from the lab", "target": "apps", "source_in": [lab], "action": "deny"}),
    )
    .await;
    policy(
        s,
        json!({"name": "Trial: codes everywhere", "target": "apps", "action": "require_mfa", "report_only": true}),
    )
    .await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/console/explain.mjs"
    );
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/console-screenshots");
    let args: Vec<String> = [
        script,
        &s.url,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        "alice",
        "SSO app: Example SP",
        "127.0.0.7,127.0.0.8",
        shots,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let v = crate::harness::browser_script(args).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["csp_errors"], json!([]), "{v}");
    assert!(
        v["overflow"].is_null(),
        "wider than the screen: {}",
        v["overflow"]
    );
    let (lab, elsewhere) = (&v["answers"][0], &v["answers"][1]);
    assert_eq!(lab["heading"], "Refused", "{v}");
    assert!(
        lab["summary"]
            .as_str()
            .unwrap()
            .contains("(policy \"No apps from the lab\")"),
        "{v}"
    );
    assert_eq!(lab["policies"][0][4], "matches", "{v}");
    assert_eq!(elsewhere["heading"], "Allowed", "{v}");
    assert_eq!(elsewhere["policies"][0][4], "does not match", "{v}");
    assert_eq!(
        elsewhere["policies"][1][4], "matches (report-only: not enforced)",
        "{v}"
    );
    // The page and the real login agree.
    let out = sp(s, "login", login_args(&f, json!({"source": "127.0.0.7"})));
    assert_eq!(out["page_status"], 403, "{out}");
    let out = sp(s, "login", login_args(&f, json!({"source": "127.0.0.8"})));
    assert_eq!(out["authenticated"], true, "{out}");
}

#[tokio::test]
async fn an_app_a_policy_refuses_shows_the_refusal_page_in_chromium() {
    let f = saml_fixture(json!({})).await;
    let s = &f.s;
    policy(
        s,
        json!({"name": "Example SP closed", "target": format!("app:{}", f.app),
               "groups": [f.group], "action": "deny"}),
    )
    .await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/saml/browser/portal.mjs"
    );
    let shots = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/selfservice-screenshots"
    );
    let v = crate::harness::browser_script(vec![
        script.to_string(),
        s.url.clone(),
        "alice".to_string(),
        PW.to_string(),
        shots.to_string(),
        "policy-refused".to_string(),
        format!("/saml/{}/launch", f.app),
    ])
    .await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["overflow"].is_null(), "wider than the screen: {v}");
    // The portal itself is open; the app is refused, with a reason the user can act on.
    assert_eq!(v["launch_status"], 403, "{v}");
    assert_eq!(v["launch_heading"], "Access refused", "{v}");
    assert!(
        v["launch_text"].as_str().unwrap().contains("access policy"),
        "{v}"
    );
    let e = last_event(s, "sso_auth", "alice").await;
    assert_eq!(e["details"]["policy"]["name"], "Example SP closed", "{e}");
}
