//! RADIUS with real clients: radclient (Debian freeradius-utils) and pyrad 2.6 with pyotp
//! (`conformance/radius/check.py`), against the real binary's UDP sockets on loopback.

mod net;

use crate::harness::{oathtool, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Command;

pub const SECRET: &str = "testing123-testing123";
pub const PW: &str = "Correct-Horse-99";

/// A directory with a RADIUS profile `ap` for 127.0.0.1 and: `ann` (group `wifi`, bound, VLAN 42 and a
/// Cisco-AVPair), `sam` (in `wifi`, suspended), `carl` (group `lobby`, not bound), `bob` (no group).
pub struct Fixture {
    pub s: Server,
    pub profile: String,
    pub wifi: String,
}

pub async fn group(s: &Server, body: Value, members: &[&str], bind: Option<&str>) -> String {
    let (st, g) = s.post("/groups", body).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let id = g["id"].as_str().unwrap().to_string();
    for m in members {
        let (st, _) = s.put(&format!("/groups/{id}/members/{m}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
    if let Some(r) = bind {
        let (st, _) = s.put(&format!("/groups/{id}/bindings/{r}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
    id
}

pub async fn fixture() -> Fixture {
    fixture_with(Server::start().await).await
}

pub async fn fixture_with(s: Server) -> Fixture {
    let (st, p) = s
        .post(
            "/radius-servers",
            json!({"name": "ap", "networks": ["127.0.0.1/32"], "secret": SECRET}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let profile = p["id"].as_str().unwrap().to_string();
    let ann = s.user("ann", Some(PW)).await;
    let sam = s.user("sam", Some(PW)).await;
    let carl = s.user("carl", Some(PW)).await;
    s.user("bob", Some(PW)).await;
    let wifi = group(
        &s,
        json!({"name": "wifi", "radius_reply": [
            {"attribute": "Tunnel-Private-Group-Id", "value": "42"},
            {"attribute": "Cisco-AV-Pair", "value": "shell:priv-lvl=15"}]}),
        &[&ann, &sam],
        Some(&format!("radius:{profile}")),
    )
    .await;
    group(&s, json!({"name": "lobby"}), &[&carl], None).await;
    let (st, _) = s
        .patch(&format!("/users/{sam}"), json!({"state": "suspended"}))
        .await;
    assert_eq!(st, StatusCode::OK);
    Fixture { s, profile, wifi }
}

/// Run radclient (`auth`, `acct` or `status`) with one request; returns (exit success, everything it printed).
pub fn radclient(addr: &str, kind: &str, secret: &str, attrs: &str) -> (bool, String) {
    let mut child = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "5", addr, kind, secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("radclient is installed (scripts/test installs freeradius-utils)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attrs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn pap(f: &Fixture, user: &str, pw: &str) -> (bool, String) {
    radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &format!("User-Name={user},User-Password=\"{pw}\",Message-Authenticator=0x00"),
    )
}

/// The interpreter of the venv `scripts/test` builds with pyrad and pyotp.
pub fn conformance_python() -> String {
    std::env::var("STRATUS_CONFORMANCE_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/conformance-venv/bin/python3"
        )
        .to_string()
    })
}

/// Run `conformance/radius/check.py CHECK ...`; returns (exit success, the JSON line or the failure text).
pub fn pyrad(f: &Fixture, check: &str, args: &[&str]) -> (bool, Value, String) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let (host, port) = f.s.radius.rsplit_once(':').unwrap();
    let acct = f.s.radius_accounting.rsplit_once(':').unwrap().1;
    let out = Command::new(conformance_python())
        .arg(format!("{root}/conformance/radius/check.py"))
        .args([check, host, port, acct, SECRET])
        .arg(format!("{root}/radius-server/dictionary/dictionary"))
        .args(args)
        .output()
        .expect("the conformance venv exists (scripts/test makes it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let json = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (out.status.success(), json, text)
}

async fn last_auth_reason(f: &Fixture, user: &str) -> (bool, String) {
    let ev = f.s.events("radius_auth", user).await;
    let e = ev
        .first()
        .unwrap_or_else(|| panic!("no radius_auth event for {user}"));
    (
        e["success"].as_bool().unwrap(),
        e["reason"].as_str().unwrap_or_default().to_string(),
    )
}

async fn profile(f: &Fixture, patch: Value) {
    let (st, v) =
        f.s.patch(&format!("/radius-servers/{}", f.profile), patch)
            .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn pap_accepts_a_bound_user_with_the_tagged_vlan_and_rejects_everyone_else() {
    let f = fixture().await;
    let (ok, out) = pap(&f, "ann", PW);
    assert!(ok, "{out}");
    assert!(out.contains("Received Access-Accept"), "{out}");
    for line in [
        "Tunnel-Type:1 = VLAN",
        "Tunnel-Medium-Type:1 = IEEE-802",
        "Tunnel-Private-Group-Id:1 = \"42\"",
        "Cisco-AVPair = \"shell:priv-lvl=15\"",
        "Message-Authenticator = 0x",
        "Class = 0x",
    ] {
        assert!(out.contains(line), "missing `{line}` in {out}");
    }
    for (user, pw, reason) in [
        ("ann", "Wrong-Password-1", "wrong password"),
        ("nobody", PW, "unknown user"),
        ("sam", PW, "user is suspended"),
        ("carl", PW, "no group of the user is bound to this resource"),
        ("bob", PW, "no group of the user is bound to this resource"),
    ] {
        let (ok, out) = pap(&f, user, pw);
        assert!(!ok, "{user}: {out}");
        assert!(out.contains("Received Access-Reject"), "{user}: {out}");
        assert!(
            !out.contains("Reply-Message"),
            "a reject says nothing by default: {out}"
        );
        assert_eq!(
            last_auth_reason(&f, user).await,
            (false, reason.to_string()),
            "{user}"
        );
    }
    assert_eq!(last_auth_reason(&f, "ann").await.1, "wrong password");
}

#[tokio::test]
async fn reject_carries_a_reply_message_only_when_the_profile_allows_it() {
    let f = fixture().await;
    profile(&f, json!({"reject_reply_message": true})).await;
    let (_, out) = pap(&f, "ann", "Wrong-Password-1");
    assert!(out.contains("Received Access-Reject"), "{out}");
    assert!(
        out.contains("Reply-Message = \"Invalid username or password\""),
        "{out}"
    );
    let (_, out) = pap(&f, "carl", PW);
    assert!(
        out.contains("Reply-Message = \"Access to this network is not allowed\""),
        "{out}"
    );
}

#[tokio::test]
async fn wrong_secret_missing_message_authenticator_and_unknown_nas_get_no_answer() {
    let f = fixture().await;
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        "not-the-shared-secret",
        &format!("User-Name=ann,User-Password={PW},Message-Authenticator=0x00"),
    );
    assert!(!ok && !out.contains("Received Access-"), "{out}");
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &format!("User-Name=ann,User-Password={PW}"),
    );
    assert!(!ok && !out.contains("Received Access-"), "{out}");
    let (_, ev) = f.s.get("/events?type=radius_dropped&limit=100").await;
    let reasons: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Message-Authenticator does not verify")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("without Message-Authenticator")),
        "{reasons:?}"
    );

    // A legacy PAP-only NAS may be allowed to omit it, per profile.
    profile(&f, json!({"allow_missing_message_authenticator": true})).await;
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &format!("User-Name=ann,User-Password={PW}"),
    );
    assert!(ok && out.contains("Received Access-Accept"), "{out}");

    // A source outside every profile's networks is an unknown NAS.
    profile(&f, json!({"networks": ["10.0.0.0/8"]})).await;
    let (ok, out) = pap(&f, "ann", PW);
    assert!(!ok && !out.contains("Received Access-"), "{out}");
    let (_, ev) = f.s.get("/events?type=radius_unknown_client").await;
    assert_eq!(ev["events"][0]["client_ip"], "127.0.0.1", "{ev}");
}

#[tokio::test]
async fn group_priority_decides_conflicting_reply_attributes() {
    let f = fixture().await;
    let (_, users) = f.s.get("/users?search=ann").await;
    let ann = users["users"][0]["id"].as_str().unwrap().to_string();
    group(
        &f.s,
        json!({"name": "net-admins", "priority": 10, "radius_reply": [
            {"attribute": "Tunnel-Private-Group-Id", "value": "99"},
            {"attribute": "Session-Timeout", "value": "600"}]}),
        &[&ann],
        Some(&format!("radius:{}", f.profile)),
    )
    .await;
    let (_, out) = pap(&f, "ann", PW);
    assert!(out.contains("Tunnel-Private-Group-Id:1 = \"99\""), "{out}");
    assert!(!out.contains("\"42\""), "{out}");
    assert!(out.contains("Session-Timeout = 600"), "{out}");
    assert!(
        out.contains("Cisco-AVPair = \"shell:priv-lvl=15\""),
        "{out}"
    );
    // Raise the other group above it: its VLAN wins now.
    let (st, _) =
        f.s.patch(&format!("/groups/{}", f.wifi), json!({"priority": 20}))
            .await;
    assert_eq!(st, StatusCode::OK);
    let (_, out) = pap(&f, "ann", PW);
    assert!(out.contains("Tunnel-Private-Group-Id:1 = \"42\""), "{out}");
    assert!(out.contains("Session-Timeout = 600"), "{out}");
}

#[tokio::test]
async fn reply_attributes_the_dictionary_cannot_encode_are_refused_by_the_api() {
    let f = fixture().await;
    for (attr, value, says) in [
        ("No-Such-Attribute", "1", "no such attribute"),
        ("Session-Timeout", "soon", "is not a valid"),
        ("Tunnel-Type:99", "VLAN", "tag"),
        ("Framed-IP-Address", "10.0.0.300", "IPv4 address"),
        ("User-Password", "x", "cannot be sent"),
    ] {
        let (st, e) =
            f.s.post(
                "/groups",
                json!({"name": "bad", "radius_reply": [{"attribute": attr, "value": value}]}),
            )
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{attr}: {e}");
        assert_eq!(e["error"]["field"], "radius_reply", "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{attr}: {e}"
        );
    }
    let (st, e) =
        f.s.patch(
            &format!("/groups/{}", f.wifi),
            json!({"radius_reply": [{"attribute": "Nope", "value": "1"}]}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    for (attr, value) in [
        ("Aruba-Admin-Role", "root"),
        ("Mikrotik-Group", "full"),
        ("Juniper-Local-User-Name", "super"),
    ] {
        let (st, e) =
            f.s.patch(
                &format!("/groups/{}", f.wifi),
                json!({"radius_reply": [{"attribute": attr, "value": value}]}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{attr}: {e}");
        let (_, out) = pap(&f, "ann", PW);
        assert!(
            out.contains(&format!("{attr} = \"{value}\"")),
            "{attr}: {out}"
        );
    }
}

#[tokio::test]
async fn accounting_start_and_stop_are_acknowledged_and_tied_to_the_login() {
    let f = fixture().await;
    let (_, out) = pap(&f, "ann", PW);
    let class = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Class = "))
        .expect("Accept has a Class")
        .to_string();
    let start = format!(
        "Acct-Status-Type=Start,User-Name=ann,Acct-Session-Id=sess-1,NAS-IP-Address=127.0.0.1,\
         NAS-Identifier=ap-3,Calling-Station-Id=02-00-00-00-00-01,Class={class}"
    );
    let (ok, out) = radclient(&f.s.radius_accounting, "acct", SECRET, &start);
    assert!(ok && out.contains("Received Accounting-Response"), "{out}");
    let stop = format!(
        "Acct-Status-Type=Stop,User-Name=ann,Acct-Session-Id=sess-1,NAS-IP-Address=127.0.0.1,\
         Acct-Input-Octets=1000,Acct-Input-Gigawords=1,Acct-Output-Octets=2000,Acct-Session-Time=3600,\
         Acct-Terminate-Cause=User-Request,Class={class}"
    );
    let (ok, out) = radclient(&f.s.radius_accounting, "acct", SECRET, &stop);
    assert!(ok && out.contains("Received Accounting-Response"), "{out}");
    // Signed with another secret: dropped, not acknowledged.
    let (ok, out) = radclient(
        &f.s.radius_accounting,
        "acct",
        "not-the-shared-secret",
        &stop,
    );
    assert!(
        !ok && !out.contains("Received Accounting-Response"),
        "{out}"
    );

    let ev = f.s.events("radius_accounting", "ann").await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    let (stop_e, start_e) = (&ev[0]["details"], &ev[1]["details"]);
    assert_eq!(start_e["status"], "Start");
    assert_eq!(start_e["nas_identifier"], "ap-3");
    assert_eq!(start_e["calling_station"], "02-00-00-00-00-01");
    assert_eq!(stop_e["status"], "Stop");
    assert_eq!(stop_e["session_id"], "sess-1");
    assert_eq!(stop_e["input_octets"], (1u64 << 32) + 1000);
    assert_eq!(stop_e["output_octets"], 2000);
    assert_eq!(stop_e["session_time"], 3600);
    assert_eq!(stop_e["terminate_cause"], "User-Request");
    // The Class ties the session to the authentication event.
    let sent = String::from_utf8(
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(class.trim_start_matches("0x").as_bytes())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stop_e["class"], sent.as_str());
    let auth = f.s.events("radius_auth", "ann").await;
    assert_eq!(auth[0]["details"]["session"], sent.as_str(), "{auth:?}");
}

#[tokio::test]
async fn mfa_modes_challenge_with_real_totp_codes() {
    let f = fixture().await;
    let mut totp = Vec::new();
    let mut ids = Vec::new();
    for name in ["tina", "tom", "tess", "ted"] {
        let id = f.s.user(name, Some(PW)).await;
        totp.push(f.s.enrol_totp(&id).await);
        ids.push(id);
    }
    let (st, eve) = f
        .s
        .post("/users", json!({"username": "eve", "email": "eve@example.com", "password": PW, "mfa_required": true}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{eve}");
    ids.push(eve["id"].as_str().unwrap().to_string());
    ids.push(f.s.user("ned", Some(PW)).await);
    for id in &ids {
        let (st, _) =
            f.s.put(&format!("/groups/{}/members/{id}", f.wifi), None)
                .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
    }
    let login = |user: &str, secret: Option<&str>| {
        let mut args = vec![user, PW];
        args.extend(secret);
        let (ok, v, text) = pyrad(&f, "login", &args);
        assert!(ok, "{text}");
        (
            v["first"].as_str().unwrap().to_string(),
            v["final"].as_str().unwrap().to_string(),
            v,
        )
    };

    // Off: nobody is challenged.
    assert_eq!(login("tina", None).0, "accept");

    // RequireAll: enrolled users answer a challenge; everyone else is refused.
    profile(&f, json!({"mfa": "require_all"})).await;
    let (first, last, v) = login("tina", Some(&totp[0]));
    assert_eq!(
        (first.as_str(), last.as_str()),
        ("challenge", "accept"),
        "{v}"
    );
    assert_eq!(v["state_len"], 16);
    assert_eq!(v["session_timeout"], 60);
    assert_eq!(v["reply_message"], "Enter your verification code");
    assert_eq!(
        v["tags"]["81"],
        json!([1]),
        "VLAN still sent after MFA: {v}"
    );
    assert!(last_auth_reason(&f, "tina").await.0);
    assert_eq!(login("eve", None).1, "reject");
    assert_eq!(
        last_auth_reason(&f, "eve").await.1,
        "MFA is required but the user has no active TOTP"
    );
    assert_eq!(login("ned", None).1, "reject");

    // RequireAllExceptEnrolling: users inside their enrolment period pass without a code.
    profile(&f, json!({"mfa": "require_all_except_enrolling"})).await;
    let (first, last, _) = login("tom", Some(&totp[1]));
    assert_eq!((first.as_str(), last.as_str()), ("challenge", "accept"));
    assert_eq!(login("eve", None).0, "accept");
    assert_eq!(login("ned", None).1, "reject");

    // RequireEnrolledOnly: only users with active TOTP are challenged.
    profile(&f, json!({"mfa": "require_enrolled_only"})).await;
    let (first, last, _) = login("tess", Some(&totp[2]));
    assert_eq!((first.as_str(), last.as_str()), ("challenge", "accept"));
    assert_eq!(login("eve", None).0, "accept");
    assert_eq!(login("ned", None).0, "accept");

    // A code is accepted once: the same code in a second login is refused.
    let (ok, v, text) = pyrad(&f, "replay", &["ted", PW, &totp[3]]);
    assert!(ok, "{text}");
    assert_eq!(v["outcomes"], json!(["accept", "reject"]));
    // The refusal is written with the failure count in the same commit, the acceptance by the event queue, so
    // the two may be numbered in either order: look at both.
    let ev = f.s.events("radius_auth", "ted").await;
    assert!(
        ev.iter()
            .take(2)
            .any(|e| e["success"] == false && e["reason"] == "wrong or reused verification code"),
        "{ev:?}"
    );
    // A State never issued is refused.
    let (ok, _, text) = pyrad(&f, "wrongstate", &["ted", PW]);
    assert!(ok, "{text}");
}

#[tokio::test]
async fn appended_code_works_for_nas_that_cannot_do_challenges() {
    let f = fixture().await;
    let id = f.s.user("olga", Some(PW)).await;
    let secret = f.s.enrol_totp(&id).await;
    let (st, _) =
        f.s.put(&format!("/groups/{}/members/{id}", f.wifi), None)
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    profile(&f, json!({"mfa": "require_all", "otp_append": true})).await;
    let (ok, out) = pap(&f, "olga", &format!("{PW},{}", oathtool(&secret, 0)));
    assert!(ok && out.contains("Received Access-Accept"), "{out}");
    let (ok, out) = pap(&f, "olga", &format!("{PW},000000"));
    assert!(!ok && out.contains("Received Access-Reject"), "{out}");
    // Without a code the NAS still gets a challenge.
    let (_, out) = pap(&f, "olga", PW);
    assert!(out.contains("Received Access-Challenge"), "{out}");
}

#[tokio::test]
async fn lockout_from_radius_failures_refuses_the_right_password() {
    let f = fixture().await;
    f.s.lockout(3, 0).await;
    for _ in 0..3 {
        let (ok, _) = pap(&f, "ann", "Wrong-Password-1");
        assert!(!ok);
    }
    let (ok, out) = pap(&f, "ann", PW);
    assert!(!ok && out.contains("Received Access-Reject"), "{out}");
    assert_eq!(
        last_auth_reason(&f, "ann").await.1,
        "account is locked after too many failures"
    );
}

#[tokio::test]
async fn malformed_datagrams_and_retransmissions_never_break_the_listener() {
    let f = fixture().await;
    let (ok, v, text) = pyrad(&f, "badinput", &["ann", PW]);
    assert!(ok, "{text}");
    assert_eq!(v["still_serving"], true);
    let (_, ev) = f.s.get("/events?type=radius_malformed&limit=100").await;
    assert!(
        !ev["events"].as_array().unwrap().is_empty(),
        "malformed datagrams are recorded: {ev}"
    );

    // A retransmission (same identifier and authenticator) gets the same reply and is not authenticated twice.
    let before = f.s.events("radius_auth", "carl").await.len();
    let (ok, v, text) = pyrad(&f, "duplicate", &["carl", "Wrong-Password-1"]);
    assert!(ok, "{text}");
    assert_eq!(v["reply_code"], 3);
    assert_eq!(f.s.events("radius_auth", "carl").await.len(), before + 1);
    let (_, u) = f.s.get("/users?search=carl").await;
    assert_eq!(u["users"][0]["failed_logins"], 1, "{u}");

    // Status-Server (RFC 5997) answers on both ports.
    let (ok, out) = radclient(&f.s.radius, "status", SECRET, "Message-Authenticator=0x00");
    assert!(ok && out.contains("Received Access-Accept"), "{out}");
    let (ok, out) = radclient(
        &f.s.radius_accounting,
        "status",
        SECRET,
        "Message-Authenticator=0x00",
    );
    assert!(ok && out.contains("Received Accounting-Response"), "{out}");
}

#[tokio::test]
async fn a_burst_beyond_the_worker_limit_is_dropped_not_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_in(
        &tmp.path().join("data"),
        crate::harness::Start {
            env: vec![("STRATUS_RADIUS_MAX_IN_FLIGHT".into(), "2".into())],
            ..Default::default()
        },
    )
    .await;
    let f = fixture_with(s).await;
    // Unknown users cost a full argon2id verification each, so two workers cannot keep up with 200 at once.
    let (ok, v, text) = pyrad(&f, "flood", &["nobody", PW, "200"]);
    assert!(ok, "{text}");
    let answered = v["answered"].as_u64().unwrap();
    assert!((2..200).contains(&answered), "{v}");
    let (_, ev) = f.s.get("/events?type=radius_overload").await;
    assert_eq!(
        ev["events"][0]["reason"], "all workers busy; request dropped for the NAS to retry",
        "{ev}"
    );
    // Once the burst has drained the listener answers normally.
    let (ok, out) = pap(&f, "ann", PW);
    assert!(ok && out.contains("Received Access-Accept"), "{out}");
}

#[test]
fn dictionary_agrees_with_the_one_freeradius_ships() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new("python3")
        .arg(format!("{root}/conformance/radius/dictionary.py"))
        .arg(format!("{root}/radius-server/dictionary"))
        .output()
        .expect("python3 runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\"problems\": 0"), "{text}");
}

/// Two Proxy-State attributes as a chain of proxies would add them: the first hop's last.
const PROXY_STATES: [&str; 2] = ["0x7374726174757331", "0x00ff0a"];

/// The Proxy-State values of the reply radclient printed, in order.
fn reply_proxy_states(out: &str) -> Vec<String> {
    let received = out
        .find("Received ")
        .unwrap_or_else(|| panic!("no reply: {out}"));
    out[received..]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Proxy-State = "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn proxy_state_comes_back_unmodified_and_in_order_in_every_reply() {
    let f = fixture().await;
    let id = f.s.user("olga", Some(PW)).await;
    f.s.enrol_totp(&id).await;
    let (st, _) =
        f.s.put(&format!("/groups/{}/members/{id}", f.wifi), None)
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    profile(
        &f,
        json!({"mfa": "require_enrolled_only", "methods": ["pap", "peap_mschapv2"]}),
    )
    .await;
    let proxied = format!(
        "Proxy-State={},Proxy-State={}",
        PROXY_STATES[0], PROXY_STATES[1]
    );
    let auth = |attrs: &str| {
        radclient(
            &f.s.radius,
            "auth",
            SECRET,
            &format!("{attrs},Message-Authenticator=0x00,{proxied}"),
        )
    };
    for (what, attrs, answer) in [
        (
            "PAP accept",
            format!("User-Name=ann,User-Password=\"{PW}\""),
            "Access-Accept",
        ),
        (
            "PAP reject",
            "User-Name=ann,User-Password=\"Wrong-Password-1\"".to_string(),
            "Access-Reject",
        ),
        (
            "MFA challenge",
            format!("User-Name=olga,User-Password=\"{PW}\""),
            "Access-Challenge",
        ),
        // EAP-Response/Identity "ann": the server proposes a method.
        (
            "EAP challenge",
            "User-Name=ann,EAP-Message=0x0200000801616e6e".to_string(),
            "Access-Challenge",
        ),
        // An EAP packet too short to read: EAP-Failure.
        (
            "EAP reject",
            "User-Name=ann,EAP-Message=0x0201".to_string(),
            "Access-Reject",
        ),
    ] {
        let (_, out) = auth(&attrs);
        assert!(out.contains(&format!("Received {answer}")), "{what}: {out}");
        assert_eq!(reply_proxy_states(&out), PROXY_STATES, "{what}: {out}");
    }
    let (ok, out) = radclient(
        &f.s.radius_accounting,
        "acct",
        SECRET,
        &format!("Acct-Status-Type=Start,User-Name=ann,Acct-Session-Id=sess-9,{proxied}"),
    );
    assert!(ok && out.contains("Received Accounting-Response"), "{out}");
    assert_eq!(reply_proxy_states(&out), PROXY_STATES, "{out}");

    // A retransmission is answered from the duplicate table with the same Proxy-States.
    let (ok, v, text) = pyrad(&f, "proxystate", &["ann", PW]);
    assert!(ok, "{text}");
    assert_eq!(v["code"], 2, "{v}");
}

/// The fixed challenges of the MS-CHAPv2 requests below (what a VPN concentrator would have sent its client).
const AUTH_CHALLENGE: [u8; 16] = *b"stratus-auth-chl";
const PEER_CHALLENGE: [u8; 16] = *b"stratus-peer-chl";

/// radclient attributes of an MS-CHAPv2 Access-Request for `user` (as sent) proving `password`, with ident 7.
fn ms_chap_v2_attrs(user: &str, password: &str) -> String {
    use crate::mschap::nt_response;
    let hash_name = user.split_once('\\').map_or(user, |(_, u)| u);
    let nt = nt_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, hash_name, password);
    let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
    format!(
        "User-Name=\"{}\",MS-CHAP-Challenge=0x{},MS-CHAP2-Response=0x0700{}{}{},Message-Authenticator=0x00",
        user.replace('\\', "\\\\"),
        hex(&AUTH_CHALLENGE),
        hex(&PEER_CHALLENGE),
        "00".repeat(8),
        hex(&nt)
    )
}

/// The value radclient printed for an attribute of the reply, e.g. `0x…` or `"…"`.
fn printed<'a>(out: &'a str, attribute: &str) -> Option<&'a str> {
    let reply = out.rsplit_once("Received Access-").map_or(out, |(_, r)| r);
    reply
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{attribute} = ")))
}

#[tokio::test]
async fn mschapv2_without_eap_accepts_with_the_authenticator_response_and_rfc3079_keys() {
    let f = fixture().await;
    // vera's password is set once she is in a group bound to an MS-CHAPv2 profile, so her NT hash is kept.
    let vera = f.s.user("vera", None).await;
    let (st, _) =
        f.s.put(&format!("/groups/{}/members/{vera}", f.wifi), None)
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    // Not allowed on the profile yet: refused, with MS-CHAP-Error, and the event says why.
    let (ok, out) = radclient(&f.s.radius, "auth", SECRET, &ms_chap_v2_attrs("vera", PW));
    assert!(!ok && out.contains("Received Access-Reject"), "{out}");
    assert!(out.contains("E=691 R=0"), "{out}");
    assert_eq!(
        last_auth_reason(&f, "vera").await,
        (
            false,
            "MS-CHAPv2 is not allowed on this RADIUS server".into()
        )
    );

    profile(&f, json!({"methods": ["pap", "mschapv2"]})).await;
    let (st, v) =
        f.s.post(&format!("/users/{vera}/password"), json!({"password": PW}))
            .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (ok, out) = radclient(&f.s.radius, "auth", SECRET, &ms_chap_v2_attrs("vera", PW));
    assert!(ok && out.contains("Received Access-Accept"), "{out}");
    let nt = crate::mschap::nt_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, "vera", PW);
    let s =
        crate::mschap::authenticator_response(&AUTH_CHALLENGE, &PEER_CHALLENGE, "vera", PW, &nt);
    let hex = |b: &[u8]| format!("0x{}", data_encoding::HEXLOWER.encode(b));
    let mut success = vec![7u8];
    success.extend_from_slice(s.as_bytes());
    assert_eq!(
        printed(&out, "MS-CHAP2-Success"),
        Some(hex(&success).as_str()),
        "{out}"
    );
    // radclient decrypts the salted keys with the secret (RFC 2548 §2.4.2–2.4.3).
    let (send, recv) = crate::mschap::mppe_server_keys(PW, &nt);
    assert_eq!(
        printed(&out, "MS-MPPE-Send-Key"),
        Some(hex(&send).as_str()),
        "{out}"
    );
    assert_eq!(
        printed(&out, "MS-MPPE-Recv-Key"),
        Some(hex(&recv).as_str()),
        "{out}"
    );
    assert_eq!(
        printed(&out, "MS-MPPE-Encryption-Policy"),
        Some("Encryption-Allowed"),
        "{out}"
    );
    // RFC 2548 §2.4.1: bit 0x4 is 128-bit RC4 (the dictionaries' value names for this attribute disagree).
    assert_eq!(
        printed(&out, "MS-MPPE-Encryption-Types"),
        Some("4"),
        "{out}"
    );
    assert!(out.contains("Tunnel-Private-Group-Id:1 = \"42\""), "{out}");
    let e = &f.s.events("radius_auth", "vera").await[0];
    assert_eq!(
        (e["success"].as_bool(), e["details"]["method"].as_str()),
        (Some(true), Some("mschapv2"))
    );

    // A wrong password: Reject with MS-CHAP-Error 691, no retry.
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &ms_chap_v2_attrs("vera", "Wrong-Horse-1"),
    );
    assert!(!ok && out.contains("Received Access-Reject"), "{out}");
    assert!(out.contains("E=691 R=0") && out.contains("V=3"), "{out}");
    assert!(printed(&out, "MS-MPPE-Send-Key").is_none(), "{out}");
    assert_eq!(last_auth_reason(&f, "vera").await.1, "wrong password");

    // ann's password was set before her group was bound to an MS-CHAPv2 profile: no NT hash.
    let (ok, out) = radclient(&f.s.radius, "auth", SECRET, &ms_chap_v2_attrs("ann", PW));
    assert!(!ok && out.contains("E=691"), "{out}");
    assert!(last_auth_reason(&f, "ann")
        .await
        .1
        .contains("the user must set a new password"));

    // A DOMAIN\ prefix stays out of the hash and, under the default rule, out of the lookup.
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &ms_chap_v2_attrs("CORP\\vera", PW),
    );
    assert!(ok, "{out}");
    // With `strip`, user@realm finds vera while the hash covers the name as sent (as Windows computes it).
    profile(&f, json!({"realm": {"mode": "strip"}})).await;
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &ms_chap_v2_attrs("vera@corp.example", PW),
    );
    assert!(ok, "{out}");

    // MS-CHAPv2 cannot carry a TOTP code: a user the profile would challenge is refused, saying so.
    f.s.enrol_totp(&vera).await;
    profile(&f, json!({"mfa": "require_enrolled_only"})).await;
    let (ok, out) = radclient(&f.s.radius, "auth", SECRET, &ms_chap_v2_attrs("vera", PW));
    assert!(!ok && out.contains("E=691"), "{out}");
    assert!(last_auth_reason(&f, "vera")
        .await
        .1
        .contains("cannot carry a verification code"));

    // MS-CHAP v1 stays refused with a reason.
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &format!(
            "User-Name=vera,MS-CHAP-Challenge=0x{},MS-CHAP-Response=0x0101{},Message-Authenticator=0x00",
            "22".repeat(8),
            "11".repeat(48)
        ),
    );
    assert!(!ok && out.contains("Received Access-Reject"), "{out}");
    assert!(last_auth_reason(&f, "vera")
        .await
        .1
        .starts_with("MS-CHAP v1 is not supported"));

    // A profile that lets old NAS leave out Message-Authenticator does so for PAP only: an MS-CHAPv2 request
    // without one gets no answer.
    profile(&f, json!({"methods": ["pap", "mschapv2"], "mfa": "off", "allow_missing_message_authenticator": true})).await;
    let without = ms_chap_v2_attrs("vera", PW).replace(",Message-Authenticator=0x00", "");
    let (ok, out) = radclient(&f.s.radius, "auth", SECRET, &without);
    assert!(!ok && !out.contains("Received Access-"), "{out}");
}

#[tokio::test]
async fn chap_is_refused_with_a_reason_that_says_so() {
    let f = fixture().await;
    let (ok, out) = radclient(
        &f.s.radius,
        "auth",
        SECRET,
        &format!("User-Name=ann,CHAP-Password=\"{PW}\",Message-Authenticator=0x00"),
    );
    assert!(!ok && out.contains("Received Access-Reject"), "{out}");
    assert!(last_auth_reason(&f, "ann")
        .await
        .1
        .starts_with("CHAP cannot be checked"));
}

#[tokio::test]
async fn realm_rules_decide_which_user_pap_and_the_totp_answer_look_up() {
    let f = fixture().await;
    let login = |user: &str| pap(&f, &user.replace('\\', "\\\\"), PW);
    // keep (the default): user@realm is a name of its own; a DOMAIN\ prefix is dropped as before.
    assert!(login("ann").0);
    assert!(!login("ann@corp.example").0);
    assert_eq!(
        last_auth_reason(&f, "ann@corp.example").await.1,
        "unknown user"
    );
    assert!(login("CORP\\ann").0);

    profile(&f, json!({"realm": {"mode": "strip"}})).await;
    assert!(login("ann").0);
    assert!(login("ann@corp.example").0);
    assert!(login("CORP\\ann").0);
    assert!(!login("ann@").0);
    assert_eq!(
        last_auth_reason(&f, "ann@").await.1,
        "the user name has an empty user or realm part"
    );

    profile(
        &f,
        json!({"realm": {"mode": "require", "realms": ["Corp.Example", "CORP"]}}),
    )
    .await;
    assert!(!login("ann").0);
    assert_eq!(
        last_auth_reason(&f, "ann").await.1,
        "the user name has no realm and this RADIUS server requires one"
    );
    assert!(login("ann@corp.example").0);
    assert!(login("corp\\ann").0);
    assert!(!login("ann@evil.example").0);
    assert_eq!(
        last_auth_reason(&f, "ann@evil.example").await.1,
        "realm `evil.example` is not accepted by this RADIUS server"
    );
    let (st, v) =
        f.s.patch(
            &format!("/radius-servers/{}", f.profile),
            json!({"realm": {"mode": "keep", "realms": ["x"]}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, v) = f.s.get(&format!("/radius-servers/{}", f.profile)).await;
    assert_eq!(
        v["realm"],
        json!({"mode": "require", "realms": ["corp", "corp.example"]})
    );

    // The answer to an Access-Challenge carries the same User-Name: the rule applies to it too.
    let tina = f.s.user("tina", Some(PW)).await;
    let secret = f.s.enrol_totp(&tina).await;
    let (st, _) =
        f.s.put(&format!("/groups/{}/members/{tina}", f.wifi), None)
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    profile(
        &f,
        json!({"mfa": "require_all", "realm": {"mode": "strip"}}),
    )
    .await;
    let (ok, v, text) = pyrad(&f, "login", &["tina@corp.example", PW, &secret]);
    assert!(ok, "{text}");
    assert_eq!(
        (v["first"].as_str(), v["final"].as_str()),
        (Some("challenge"), Some("accept")),
        "{v}"
    );
}

#[tokio::test]
async fn one_server_answers_on_ipv4_and_ipv6_at_once() {
    let s = Server::start_with_env(&[
        ("STRATUS_RADIUS_ADDR", "127.0.0.1:0, [::1]:0"),
        ("STRATUS_RADIUS_ACCOUNTING_ADDR", "127.0.0.1:0,[::1]:0"),
    ])
    .await;
    let announced = |name: &str| -> Vec<String> {
        let prefix = format!("stratus: listening {name}=");
        s.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    };
    let auth = announced("radius");
    assert_eq!(auth.len(), 2, "{auth:?}");
    assert_eq!(announced("radius_accounting").len(), 2);
    let (st, v) = s
        .post(
            "/radius-servers",
            json!({"name": "dual", "networks": ["127.0.0.1/32", "::1/128"], "secret": SECRET}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let profile = v["id"].as_str().unwrap().to_string();
    let user = s.user("vera", Some("Correct-Horse-9")).await;
    let (_, g) = s.post("/groups", json!({"name": "wifi"})).await;
    let g = g["id"].as_str().unwrap().to_string();
    s.put(&format!("/groups/{g}/members/{user}"), None).await;
    s.put(&format!("/groups/{g}/bindings/radius:{profile}"), None)
        .await;
    for addr in &auth {
        let (ok, out) = radclient(
            addr,
            "auth",
            SECRET,
            "User-Name=vera,User-Password=\"Correct-Horse-9\",Message-Authenticator=0x00",
        );
        assert!(ok && out.contains("Access-Accept"), "{addr}: {out}");
    }
    assert!(
        auth.iter().any(|a| a.starts_with('[')),
        "one address is IPv6: {auth:?}"
    );
}

/// The value of one `stratus_radius_requests_total` series (0 when absent).
async fn radius_metric(s: &Server, profile: &str, outcome: &str, reason: &str) -> u64 {
    let text = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(
        "stratus_radius_requests_total{{profile=\"{profile}\",outcome=\"{outcome}\",reason=\"{reason}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_radius_requests_by_profile_and_outcome() {
    let f = fixture().await;
    assert!(pap(&f, "ann", PW).0);
    assert!(pap(&f, "ann", PW).0);
    assert!(!pap(&f, "bob", PW).0, "bob is in no bound group");
    // A wrong secret: the Message-Authenticator does not verify and the request is dropped.
    let (ok, _) = radclient(
        &f.s.radius,
        "auth",
        "not-the-secret",
        &format!("User-Name=ann,User-Password={PW},Message-Authenticator=0x00"),
    );
    assert!(!ok);
    assert_eq!(radius_metric(&f.s, "ap", "accept", "").await, 2);
    assert_eq!(radius_metric(&f.s, "ap", "reject", "").await, 1);
    assert_eq!(
        radius_metric(&f.s, "ap", "dropped", "authenticator").await,
        1
    );
    // A source no profile covers.
    profile(&f, json!({"networks": ["10.0.0.0/8"]})).await;
    assert!(!pap(&f, "ann", PW).0);
    assert_eq!(
        radius_metric(&f.s, "", "dropped", "unknown_client").await,
        1
    );
}
