//! RADIUS on the network side: open accounting sessions (radclient), and Disconnect-Requests (RFC 5176) received
//! and checked by a test NAS (`conformance/radius/nas.py`, Python's standard library only).

use super::{fixture, pap, profile, radclient, Fixture, PW, SECRET};
use crate::harness::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// The test NAS's Dynamic Authorization port.
struct Nas {
    child: Child,
    port: u16,
    lines: Receiver<String>,
}

impl Nas {
    /// `answer` is `ack` or `nak`; `extra` are nas.py options.
    fn start(answer: &str, extra: &[&str]) -> Nas {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/radius/nas.py");
        let mut child = Command::new(super::conformance_python())
            .arg(script)
            .args([SECRET, answer])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs nas.py");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("nas.py announces its port");
        let port: Value = serde_json::from_str(&first).expect("JSON");
        let port = port["port"].as_u64().expect("port") as u16;
        Nas { child, port, lines }
    }

    /// What the NAS received and answered (it exits after answering once).
    fn answered(mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(90))
            .expect("nas.py reports");
        let status = self.child.wait().expect("nas.py ends");
        let v: Value = serde_json::from_str(&line).expect("JSON");
        assert!(
            status.success(),
            "the NAS got no valid Disconnect-Request: {v}"
        );
        v
    }
}

impl Drop for Nas {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn sessions(s: &Server, query: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/radius-sessions{query}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().cloned().expect("a list")
}

/// The newest `radius_disconnect` event of a user, once there is one (asked at most 100 times, 100 ms apart).
async fn disconnect_event(s: &Server, user: &str) -> Value {
    for _ in 0..100 {
        if let Some(e) = s.events("radius_disconnect", user).await.first() {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no radius_disconnect event for {user}");
}

fn start_session(f: &Fixture, user: &str, session: &str) {
    let (ok, out) = pap(f, user, PW);
    assert!(ok && out.contains("Received Access-Accept"), "{out}");
    let start = format!(
        "Acct-Status-Type=Start,User-Name={user},Acct-Session-Id={session},NAS-IP-Address=127.0.0.1,\
         NAS-Identifier=ap-7,Calling-Station-Id=02-00-00-00-00-07,Framed-IP-Address=10.9.8.7"
    );
    let (ok, out) = radclient(&f.s.radius_accounting, "acct", SECRET, &start);
    assert!(ok && out.contains("Received Accounting-Response"), "{out}");
}

/// Dynamic authorization on for the fixture's profile, towards the test NAS.
async fn disconnects_to(f: &Fixture, nas: &Nas) {
    profile(
        f,
        json!({"dynamic_authorization": true, "coa_port": nas.port}),
    )
    .await;
}

fn assert_disconnect_request(d: &Value, user: &str, session: &str) {
    assert_eq!(d["code"], 40, "{d}");
    assert_eq!(d["request_authenticator_ok"], true, "{d}");
    assert_eq!(d["message_authenticator_ok"], true, "{d}");
    let a = &d["attributes"];
    assert_eq!(a["User-Name"], user, "{d}");
    assert_eq!(a["Acct-Session-Id"], session, "{d}");
    assert_eq!(a["NAS-IP-Address"], "127.0.0.1", "{d}");
    assert_eq!(a["Calling-Station-Id"], "02-00-00-00-00-07", "{d}");
    assert!(a["Event-Timestamp"].as_u64().is_some(), "{d}");
}

#[tokio::test]
async fn suspending_a_user_sends_a_disconnect_request_and_the_ack_closes_the_session() {
    let f = fixture().await;
    let nas = Nas::start("ack", &[]);
    disconnects_to(&f, &nas).await;
    start_session(&f, "ann", "dm-1");
    let open = sessions(&f.s, "?user=ann").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let ann = open[0]["user"].as_str().expect("user id").to_string();

    let (st, v) =
        f.s.patch(&format!("/users/{ann}"), json!({"state": "suspended"}))
            .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let d = nas.answered();
    assert_disconnect_request(&d, "ann", "dm-1");
    assert_eq!(d["received"], 1, "{d}");

    let e = disconnect_event(&f.s, "ann").await;
    assert_eq!(e["success"], true, "{e}");
    assert_eq!(e["details"]["outcome"], "ack", "{e}");
    assert_eq!(e["reason"], "user is suspended", "{e}");
    assert_eq!(e["details"]["session_id"], "dm-1", "{e}");
    assert!(sessions(&f.s, "?user=ann").await.is_empty());
}

#[tokio::test]
async fn unbinding_the_group_disconnects_its_members_and_an_unanswered_request_is_sent_again() {
    let f = fixture().await;
    // The first request goes unanswered: the same request (same identifier) must come again.
    let nas = Nas::start("ack", &["--ignore", "1"]);
    disconnects_to(&f, &nas).await;
    start_session(&f, "ann", "dm-2");
    let (st, v) =
        f.s.delete(&format!("/groups/{}/bindings/radius:{}", f.wifi, f.profile))
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let d = nas.answered();
    assert_disconnect_request(&d, "ann", "dm-2");
    assert_eq!(d["received"], 2, "{d}");
    assert_eq!(d["identifiers"].as_array().map(Vec::len), Some(1), "{d}");

    let e = disconnect_event(&f.s, "ann").await;
    assert_eq!(e["success"], true, "{e}");
    assert_eq!(e["details"]["attempts"], 2, "{e}");
    assert_eq!(
        e["reason"], "no group of the user is bound to this resource",
        "{e}"
    );
    assert!(sessions(&f.s, "?user=ann").await.is_empty());
}

#[tokio::test]
async fn a_disconnect_nak_is_recorded_with_its_error_cause_and_the_session_stays_open() {
    let f = fixture().await;
    let nas = Nas::start("nak", &["--error-cause", "503"]);
    disconnects_to(&f, &nas).await;
    start_session(&f, "ann", "dm-3");
    let ann = sessions(&f.s, "?user=ann").await[0]["user"]
        .as_str()
        .unwrap()
        .to_string();
    // Removing her from the bound group is the change this time.
    let (st, v) =
        f.s.delete(&format!("/groups/{}/members/{ann}", f.wifi))
            .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let d = nas.answered();
    assert_disconnect_request(&d, "ann", "dm-3");

    let e = disconnect_event(&f.s, "ann").await;
    assert_eq!(e["success"], false, "{e}");
    assert_eq!(e["details"]["outcome"], "nak", "{e}");
    assert_eq!(
        e["details"]["error_cause"], "Session-Context-Not-Found",
        "{e}"
    );
    let open = sessions(&f.s, "?user=ann").await;
    assert_eq!(open.len(), 1, "a NAK leaves the session open: {open:?}");
}

async fn open_sessions_metric(s: &Server, profile: &str) -> Option<u64> {
    let r = s
        .http
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let prefix = format!("stratus_radius_sessions{{profile=\"{profile}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn sessions_are_listed_from_start_to_stop_and_survive_a_restart() {
    let f = fixture().await;
    start_session(&f, "ann", "s-1");
    let acct = |f: &Fixture, attrs: &str| {
        let (ok, out) = radclient(&f.s.radius_accounting, "acct", SECRET, attrs);
        assert!(ok && out.contains("Received Accounting-Response"), "{out}");
    };
    acct(
        &f,
        "Acct-Status-Type=Interim-Update,User-Name=ann,Acct-Session-Id=s-1,NAS-IP-Address=127.0.0.1,\
         Acct-Input-Octets=1000,Acct-Input-Gigawords=1,Acct-Output-Octets=2000,Acct-Session-Time=60",
    );
    let open = sessions(&f.s, &format!("?profile={}", f.profile)).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let s = &open[0];
    assert_eq!(s["username"], "ann");
    assert_eq!(s["session_id"], "s-1");
    assert_eq!(s["profile"], f.profile.as_str());
    assert_eq!(s["nas_address"], "127.0.0.1");
    assert_eq!(s["nas_identifier"], "ap-7");
    assert_eq!(s["framed_ip"], "10.9.8.7");
    assert_eq!(s["calling_station"], "02-00-00-00-00-07");
    assert_eq!(s["input_octets"], (1u64 << 32) + 1000);
    assert_eq!(s["output_octets"], 2000);
    assert!(sessions(&f.s, "?user=bob").await.is_empty());
    assert_eq!(open_sessions_metric(&f.s, "ap").await, Some(1));
    // A read-only filter that names no profile id is refused.
    let (st, _) = f.s.get("/radius-sessions?profile=nonsense").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Rebuilt from the accounting events after a restart.
    let Fixture { s, profile, wifi } = f;
    let (ok, dir, _tmp) = s.terminate().await;
    assert!(ok, "clean shutdown");
    let f = Fixture {
        s: Server::start_in(&dir, Default::default()).await,
        profile,
        wifi,
    };
    let open = sessions(&f.s, "?user=ann").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["input_octets"], (1u64 << 32) + 1000);

    // Stop closes it; Accounting-On closes every session of that NAS.
    acct(
        &f,
        "Acct-Status-Type=Stop,User-Name=ann,Acct-Session-Id=s-1,NAS-IP-Address=127.0.0.1,Acct-Session-Time=90",
    );
    assert!(sessions(&f.s, "?user=ann").await.is_empty());
    assert_eq!(open_sessions_metric(&f.s, "ap").await, Some(0));
    for id in ["s-2", "s-3"] {
        acct(
            &f,
            &format!("Acct-Status-Type=Start,User-Name=ann,Acct-Session-Id={id},NAS-IP-Address=127.0.0.1"),
        );
    }
    assert_eq!(sessions(&f.s, "").await.len(), 2);
    acct(
        &f,
        "Acct-Status-Type=Accounting-On,NAS-IP-Address=127.0.0.1",
    );
    assert!(sessions(&f.s, "").await.is_empty());
}
