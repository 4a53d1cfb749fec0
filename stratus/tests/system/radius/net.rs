//! RADIUS on the network side: open accounting sessions, driven by radclient.

use super::{fixture, pap, radclient, Fixture, PW, SECRET};
use crate::harness::Server;
use reqwest::StatusCode;
use serde_json::Value;

async fn sessions(s: &Server, query: &str) -> Vec<Value> {
    let (st, v) = s.get(&format!("/radius-sessions{query}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v.as_array().cloned().expect("a list")
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
