//! RADIUS on the network side: open accounting sessions (radclient), Disconnect-Requests (RFC 5176) received and
//! checked by a test NAS (`conformance/radius/nas.py`, Python's standard library only), and RadSec (RFC 6614)
//! through radsecproxy with client certificates made by rcgen.

use super::{fixture, fixture_with, pap, profile, radclient, Fixture, PW, SECRET};
use crate::harness::{Server, Start, ADMIN_EMAIL, ADMIN_PASSWORD, API_KEY};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
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

/// A console page as the bootstrap admin sees it.
async fn console_page(s: &Server, path: &str) -> String {
    let ca = std::fs::read(s.dir.join("certs/ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/console/login", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password={ADMIN_PASSWORD}",
            ADMIN_EMAIL.replace('@', "%40")
        ))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Host-stratus_console="))
        .and_then(|v| v.split(';').next())
        .expect("a console session cookie")
        .to_string();
    let r = http
        .get(format!("{}{path}", s.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

/// The CLI against the server; returns (success, stdout and stderr).
fn cli(s: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(args)
        .env("STRATUS_URL", &s.url)
        .env("STRATUS_API_KEY", API_KEY)
        .env("STRATUS_CA_CERT", s.dir.join("certs/ca.pem"))
        .output()
        .expect("run stratus");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn the_cli_sets_dynamic_authorization_and_the_radsec_client_of_a_profile() {
    let f = fixture().await;
    let (ok, out) = cli(
        &f.s,
        &[
            "radius",
            "set",
            "ap",
            "--dynamic-authorization",
            "true",
            "--coa-port",
            "3800",
            "--radsec-client",
            "Proxy.Radsec.Test",
        ],
    );
    assert!(ok, "{out}");
    let (_, p) = f.s.get(&format!("/radius-servers/{}", f.profile)).await;
    assert_eq!(p["dynamic_authorization"], true, "{p}");
    assert_eq!(p["coa_port"], 3800, "{p}");
    assert_eq!(p["radsec_client"], "proxy.radsec.test", "{p}");
    // A second profile cannot take the same RadSec client.
    let (st, v) =
        f.s.post(
            "/radius-servers",
            json!({"name": "other", "networks": ["192.0.2.0/24"], "secret": SECRET,
                   "radsec_client": "PROXY.radsec.test"}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (ok, out) = cli(&f.s, &["radius", "set", "ap", "--radsec-client", ""]);
    assert!(ok, "{out}");
    let (_, p) = f.s.get(&format!("/radius-servers/{}", f.profile)).await;
    assert_eq!(p["radsec_client"], Value::Null, "{p}");
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
    // The CLI lists them through the same API.
    let (ok, out) = cli(
        &f.s,
        &["radius", "sessions", "--user", "ann", "--profile", "ap"],
    );
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [format!(
            "ann\t{}\t127.0.0.1\ts-1\t10.9.8.7\t{}",
            f.profile,
            s["started_at"].as_str().unwrap()
        )],
        "{out}"
    );
    // The console shows it on the profile's page, the profile list and the user's page.
    let ann = s["user"].as_str().unwrap().to_string();
    for page in [
        format!("/console/radius/{}", f.profile),
        format!("/console/users/{ann}"),
    ] {
        let html = console_page(&f.s, &page).await;
        assert!(html.contains("Open RADIUS sessions"), "{page}: {html}");
        assert!(html.contains("<code>s-1</code>"), "{page}: {html}");
        assert!(html.contains("10.9.8.7"), "{page}: {html}");
    }
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

/// A client CA and two client certificates from it: `proxy` (DNS name proxy.radsec.test) and `stranger`
/// (stranger.radsec.test, which no profile names).
fn radsec_pki(dir: &Path) {
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "Stratus test RadSec CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = p.self_signed(&key).unwrap();
    write("ca.pem", ca.pem());
    let issuer = Issuer::new(p, key);
    for name in ["proxy", "stranger"] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, format!("{name} client"));
        p.subject_alt_names = vec![SanType::DnsName(
            format!("{name}.radsec.test").try_into().unwrap(),
        )];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &issuer).unwrap();
        write(&format!("{name}.pem"), cert.pem());
        write(&format!("{name}.key"), key.serialize_pem());
    }
}

/// A free UDP port on loopback for radsecproxy.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// radsecproxy taking UDP on `udp` (secret SECRET) and forwarding over RadSec with the `proxy` certificate.
fn radsecproxy(pki: &Path, stratus_ca: &Path, radsec: &str, udp: u16) -> Proxy {
    let (host, port) = radsec.rsplit_once(':').unwrap();
    let conf = format!(
        "ListenUDP 127.0.0.1:{udp}\nLogLevel 3\n\
         client nas {{\n host 127.0.0.1\n type udp\n secret {SECRET}\n}}\n\
         tls stratus {{\n CACertificateFile {ca}\n CertificateFile {cert}\n CertificateKeyFile {key}\n}}\n\
         server stratus {{\n host {host}\n port {port}\n type tls\n tls stratus\n CertificateNameCheck off\n}}\n\
         realm * {{\n server stratus\n accountingServer stratus\n}}\n",
        ca = stratus_ca.display(),
        cert = pki.join("proxy.pem").display(),
        key = pki.join("proxy.key").display(),
    );
    let path = pki.join("radsecproxy.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("radsecproxy")
        .args(["-f", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("radsecproxy is installed (scripts/test installs it)");
    Proxy(child)
}

/// A TLS connection to the RadSec port with `client` (a certificate and key) or none; sends one Access-Request
/// and returns what came back before the connection ended (at most 4096 octets).
async fn radsec_attempt(
    radsec: &str,
    stratus_ca: &Path,
    client: Option<(&Path, &Path)>,
) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(stratus_ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some((cert, key)) => b
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(radsec).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = match connector.connect(name, tcp).await {
        Ok(t) => t,
        Err(_) => return Vec::new(),
    };
    use radius_server::packet::{attr, Builder, Code};
    let authenticator = [7u8; 16];
    let mut req = Builder::new(Code::AccessRequest, 1, true);
    req.add(attr::USER_NAME, b"ann").unwrap();
    req.add(
        attr::USER_PASSWORD,
        &radius_server::crypt::hide_user_password(b"radsec", &authenticator, b"not-her-password"),
    )
    .unwrap();
    let packet = req.access_request(b"radsec", &authenticator);
    if tls.write_all(&packet).await.is_err() {
        return Vec::new();
    }
    let mut got = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), tls.read(&mut got))
        .await
        .expect("the server answers or closes")
        .unwrap_or(0);
    got.truncate(n);
    got
}

#[tokio::test]
async fn radsec_through_radsecproxy_answers_and_refuses_clients_without_a_mapped_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    radsec_pki(&pki);
    let s = Server::start_in(
        &tmp.path().join("data"),
        Start {
            env: vec![
                ("STRATUS_RADIUS_RADSEC_ADDR".into(), "127.0.0.1:0".into()),
                (
                    "STRATUS_RADIUS_RADSEC_CLIENT_CA".into(),
                    pki.join("ca.pem").display().to_string(),
                ),
            ],
            ..Default::default()
        },
    )
    .await;
    let radsec = s
        .stdout
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.strip_prefix("stratus: listening radsec=")
                .map(str::to_string)
        })
        .expect("the RadSec listener is announced");
    let stratus_ca = s.dir.join("certs/ca.pem");
    let f = fixture_with(s).await;
    profile(&f, json!({"radsec_client": "proxy.radsec.test"})).await;

    let udp = free_udp_port();
    let _proxy = radsecproxy(&pki, &stratus_ca, &radsec, udp);
    let proxy_addr = format!("127.0.0.1:{udp}");
    let auth = |user: &str, pw: &str| {
        radclient(
            &proxy_addr,
            "auth",
            SECRET,
            &format!("User-Name={user},User-Password=\"{pw}\",Message-Authenticator=0x00"),
        )
    };
    // radsecproxy may still be starting: a few tries, each radclient's own 5 s.
    let mut accepted = String::new();
    for _ in 0..6 {
        let (_, out) = auth("ann", PW);
        if out.contains("Received Access-") {
            accepted = out;
            break;
        }
    }
    assert!(accepted.contains("Received Access-Accept"), "{accepted}");
    assert!(accepted.contains("Tunnel-Private-Group-Id"), "{accepted}");
    let (_, out) = auth("ann", "wrong-password");
    assert!(out.contains("Received Access-Reject"), "{out}");
    let (_, out) = auth("bob", PW);
    assert!(out.contains("Received Access-Reject"), "{out}");
    // Accounting over the same connection.
    let (ok, out) = radclient(
        &proxy_addr,
        "acct",
        SECRET,
        "Acct-Status-Type=Start,User-Name=ann,Acct-Session-Id=rs-1,NAS-IP-Address=127.0.0.1",
    );
    assert!(ok && out.contains("Received Accounting-Response"), "{out}");
    let open = sessions(&f.s, "?user=ann").await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["profile"], f.profile.as_str());
    let auth_events = f.s.events("radius_auth", "ann").await;
    assert_eq!(
        auth_events[0]["details"]["resource"],
        format!("radius:{}", f.profile),
        "{auth_events:?}"
    );

    // No client certificate, or one no profile names: no answer, and the refusal is recorded.
    let none = radsec_attempt(&radsec, &stratus_ca, None).await;
    assert!(none.is_empty(), "answered without a certificate: {none:?}");
    let stranger = radsec_attempt(
        &radsec,
        &stratus_ca,
        Some((&pki.join("stranger.pem"), &pki.join("stranger.key"))),
    )
    .await;
    assert!(
        stranger.is_empty(),
        "answered an unmapped certificate: {stranger:?}"
    );
    // The proxy's own certificate does get an answer on a direct connection (the attempt is well formed).
    let direct = radsec_attempt(
        &radsec,
        &stratus_ca,
        Some((&pki.join("proxy.pem"), &pki.join("proxy.key"))),
    )
    .await;
    assert_eq!(
        direct.first(),
        Some(&3),
        "an Access-Reject for a wrong password: {direct:?}"
    );
    let (st, v) =
        f.s.get("/events?type=radius_radsec_refused&limit=100")
            .await;
    assert_eq!(st, StatusCode::OK);
    let reasons: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("stranger.radsec.test")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("TLS handshake failed")),
        "{reasons:?}"
    );
}
