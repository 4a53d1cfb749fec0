//! EAP for WPA2/WPA3-Enterprise with a real supplicant: eapol_test (Debian eapoltest) runs PEAP-MSCHAPv2,
//! EAP-TTLS/PAP and EAP-TLS against the real binary and checks the MPPE keys it derives itself against the ones
//! in the Access-Accept. Malformed conversations come from `conformance/eap/check.py` (pyrad).

use crate::harness::{oathtool, Server, Start};
use crate::radius::{group, SECRET};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const PW: &str = "Correct-Horse-99";

struct Fixture {
    s: Server,
    profile: String,
    pki: PathBuf,
    _tmp: tempfile::TempDir,
}

/// A client CA with a CRL revoking one of two certificates for `ann`, and a certificate from a CA Stratus does
/// not know.
fn client_pki(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    let ca = |cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        (cert, Issuer::new(p, key))
    };
    let (ca_cert, issuer) = ca("Stratus test client CA");
    write("ca.pem", ca_cert.pem());
    let client = |name: &str, cn: &str, serial: u64, issuer: &Issuer<'_, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = vec![SanType::Rfc822Name(
            format!("{cn}@example.com").try_into().unwrap(),
        )];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(SerialNumber::from(serial));
        let cert = p.signed_by(&key, issuer).unwrap();
        write(&format!("{name}.pem"), cert.pem());
        write(&format!("{name}.key"), key.serialize_pem());
    };
    client("ann", "ann", 1001, &issuer);
    client("ann-revoked", "ann", 1002, &issuer);
    client("bob", "bob", 1003, &issuer);
    let crl = CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 1, 1),
        next_update: rcgen::date_time_ymd(2099, 1, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: SerialNumber::from(1002u64),
            revocation_time: rcgen::date_time_ymd(2025, 6, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap();
    write("crl.pem", crl.pem().unwrap());
    let (_, stranger) = ca("Somebody else's CA");
    client("stranger", "ann", 1004, &stranger);
}

async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    client_pki(&pki);
    let s = Server::start_in(
        &tmp.path().join("data"),
        Start {
            env: vec![
                (
                    "STRATUS_RADIUS_EAP_TLS_CLIENT_CA".into(),
                    pki.join("ca.pem").display().to_string(),
                ),
                (
                    "STRATUS_RADIUS_EAP_TLS_CRLS".into(),
                    pki.join("crl.pem").display().to_string(),
                ),
            ],
            ..Default::default()
        },
    )
    .await;
    let (st, p) = s
        .post(
            "/radius-servers",
            json!({"name": "wpa-enterprise", "networks": ["127.0.0.1/32"], "secret": SECRET,
                   "methods": ["peap_mschapv2", "eap_ttls_pap", "eap_tls"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let profile = p["id"].as_str().unwrap().to_string();
    // carl's password is set before he joins: he has no NT hash.
    let carl = s.user("carl", Some(PW)).await;
    let ann = s.user("ann", None).await;
    s.user("bob", Some(PW)).await;
    group(
        &s,
        json!({"name": "wifi", "radius_reply": [{"attribute": "Tunnel-Private-Group-Id", "value": "42"}]}),
        &[&ann, &carl],
        Some(&format!("radius:{profile}")),
    )
    .await;
    // ann's password is set once she is in a group bound to a PEAP profile, so her NT hash is kept.
    let (st, v) = s
        .post(&format!("/users/{ann}/password"), json!({"password": PW}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    Fixture {
        s,
        profile,
        pki,
        _tmp: tmp,
    }
}

/// Run eapol_test with a network block; returns (success, output).
fn eapol(f: &Fixture, network: &str) -> (bool, String) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let conf = f.pki.join(format!("network-{n}.conf"));
    std::fs::write(
        &conf,
        format!("network={{\n  key_mgmt=WPA-EAP\n{network}\n}}\n"),
    )
    .unwrap();
    let (host, port) = f.s.radius.rsplit_once(':').unwrap();
    let out = Command::new("eapol_test")
        .arg("-c")
        .arg(&conf)
        .args(["-a", host, "-p", port, "-s", SECRET, "-r", "0", "-t", "15"])
        .output()
        .expect("eapol_test is installed (scripts/test installs eapoltest)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status.success() && text.trim_end().ends_with("SUCCESS"),
        text,
    )
}

fn ca(f: &Fixture) -> String {
    f.s.dir.join("certs/ca.pem").display().to_string()
}

fn peap(f: &Fixture, user: &str, pw: &str) -> String {
    format!(
        "  eap=PEAP\n  identity=\"{user}\"\n  anonymous_identity=\"anonymous\"\n  password=\"{pw}\"\n  \
         ca_cert=\"{}\"\n  phase2=\"auth=MSCHAPV2\"",
        ca(f)
    )
}

fn ttls(f: &Fixture, user: &str, pw: &str) -> String {
    format!(
        "  eap=TTLS\n  identity=\"{user}\"\n  anonymous_identity=\"anonymous\"\n  password=\"{pw}\"\n  \
         ca_cert=\"{}\"\n  phase2=\"auth=PAP\"",
        ca(f)
    )
}

fn ttls_mschapv2(f: &Fixture, user: &str, pw: &str) -> String {
    ttls(f, user, pw).replace("auth=PAP", "auth=MSCHAPV2")
}

async fn set_profile(f: &Fixture, patch: Value) {
    let (st, v) =
        f.s.patch(&format!("/radius-servers/{}", f.profile), patch)
            .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Let the supplicant offer TLS 1.3 (wpa_supplicant keeps it off for EAP unless told).
fn with_tls13(network: String, tls13: bool) -> String {
    format!(
        "{network}\n  phase1=\"tls_disable_tlsv1_3={}\"",
        if tls13 { 0 } else { 1 }
    )
}

fn tls(f: &Fixture, cert: &str, tls13: bool) -> String {
    let p = f.pki.display();
    format!(
        "  eap=TLS\n  identity=\"ann\"\n  ca_cert=\"{}\"\n  client_cert=\"{p}/{cert}.pem\"\n  \
         private_key=\"{p}/{cert}.key\"\n  phase1=\"tls_disable_tlsv1_3={}\"",
        ca(f),
        if tls13 { 0 } else { 1 }
    )
}

/// The Access-Accept carried the tagged VLAN triplet and eapol_test's own keys matched the MPPE keys.
fn assert_accepted_with_keys_and_vlan(out: &str) {
    assert!(out.contains("MPPE keys OK: 1  mismatch: 0"), "{out}");
    let accept = out
        .rsplit_once("(Access-Accept)")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no Access-Accept: {out}"));
    for attr in [
        "Attribute 81 (Tunnel-Private-Group-Id) length=5",
        "Attribute 64 (Tunnel-Type) length=6",
        "Attribute 65 (Tunnel-Medium-Type) length=6",
        "Attribute 26 (Vendor-Specific)",
        "Attribute 80 (Message-Authenticator)",
    ] {
        assert!(accept.contains(attr), "missing {attr}: {accept}");
    }
}

async fn last_auth(f: &Fixture, user: &str) -> Value {
    f.s.events("radius_auth", user)
        .await
        .first()
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn peap_mschapv2_ttls_pap_and_eap_tls_succeed_with_mppe_keys_and_the_vlan() {
    let f = fixture().await;
    for tls13 in [false, true] {
        let version = if tls13 {
            "Using TLS version TLSv1.3"
        } else {
            "Using TLS version TLSv1.2"
        };
        let (ok, out) = eapol(&f, &with_tls13(peap(&f, "ann", PW), tls13));
        assert!(ok && out.contains(version), "{out}");
        assert_accepted_with_keys_and_vlan(&out);
        let e = last_auth(&f, "ann").await;
        assert_eq!(
            (e["success"].as_bool(), e["details"]["method"].as_str()),
            (Some(true), Some("mschapv2"))
        );
        let (ok, out) = eapol(&f, &with_tls13(ttls(&f, "ann", PW), tls13));
        assert!(ok && out.contains(version), "{out}");
        assert_accepted_with_keys_and_vlan(&out);
        assert_eq!(last_auth(&f, "ann").await["details"]["method"], "password");
    }

    for tls13 in [false, true] {
        let (ok, out) = eapol(&f, &tls(&f, "ann", tls13));
        assert!(ok, "TLS 1.3 {tls13}: {out}");
        assert!(
            out.contains(if tls13 {
                "Using TLS version TLSv1.3"
            } else {
                "Using TLS version TLSv1.2"
            }),
            "{out}"
        );
        assert_accepted_with_keys_and_vlan(&out);
        let e = last_auth(&f, "ann").await;
        assert_eq!(e["details"]["method"], "certificate");
        assert!(
            e["details"]["certificate_subject"]
                .as_str()
                .unwrap()
                .contains("CN=ann"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn wrong_passwords_unbound_users_and_untrusted_certificates_fail() {
    let f = fixture().await;
    let (ok, out) = eapol(&f, &peap(&f, "ann", "Wrong-Horse-99"));
    assert!(!ok && out.contains("(Access-Reject)"), "{out}");
    assert!(
        out.contains("E=691"),
        "an MSCHAPv2 Failure comes before EAP-Failure: {out}"
    );
    assert_eq!(last_auth(&f, "ann").await["reason"], "wrong password");
    let (ok, out) = eapol(&f, &ttls(&f, "ann", "Wrong-Horse-99"));
    assert!(!ok && out.contains("(Access-Reject)"), "{out}");

    // bob is in no group bound to the profile.
    let (ok, _) = eapol(&f, &ttls(&f, "bob", PW));
    assert!(!ok);
    assert_eq!(
        last_auth(&f, "bob").await["reason"],
        "no group of the user is bound to this resource"
    );
    let (ok, _) = eapol(&f, &tls(&f, "bob", false));
    assert!(!ok);
    assert_eq!(
        last_auth(&f, "bob").await["reason"],
        "no group of the user is bound to this resource"
    );

    // carl has no NT hash: PEAP is refused with an event saying what to do; TTLS/PAP still works for him.
    let (ok, _) = eapol(&f, &peap(&f, "carl", PW));
    assert!(!ok);
    let reason = last_auth(&f, "carl").await["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("must set a new password"), "{reason}");
    let (ok, out) = eapol(&f, &ttls(&f, "carl", PW));
    assert!(ok, "{out}");

    // A supplicant that does not trust Stratus's CA stops the handshake.
    let untrusted =
        peap(&f, "ann", PW).replace(&ca(&f), &f.pki.join("ca.pem").display().to_string());
    let (ok, out) = eapol(&f, &untrusted);
    assert!(!ok && !out.contains("(Access-Accept)"), "{out}");

    // Revoked and unknown client certificates are refused by the TLS layer.
    for cert in ["ann-revoked", "stranger"] {
        let (ok, out) = eapol(&f, &tls(&f, cert, false));
        assert!(!ok && !out.contains("(Access-Accept)"), "{cert}: {out}");
    }
    let (_, ev) = f.s.get("/events?type=radius_auth&limit=50").await;
    let reasons: Vec<String> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("Revoked")), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("UnknownIssuer") || r.contains("UnknownCA")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn mfa_inside_eap_ttls_takes_an_appended_code_and_peap_is_refused_with_a_reason() {
    let f = fixture().await;
    let (_, users) = f.s.get("/users?search=ann").await;
    let ann = users["users"][0]["id"].as_str().unwrap().to_string();
    let secret = f.s.enrol_totp(&ann).await;
    let (st, _) =
        f.s.patch(
            &format!("/radius-servers/{}", f.profile),
            json!({"mfa": "require_all"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    let (ok, _) = eapol(&f, &peap(&f, "ann", PW));
    assert!(!ok);
    assert!(last_auth(&f, "ann").await["reason"]
        .as_str()
        .unwrap()
        .contains("cannot carry a verification code"));

    let (ok, _) = eapol(&f, &ttls(&f, "ann", PW));
    assert!(!ok);
    let (_, ev) = f.s.get("/events?type=radius_auth&user=ann&limit=5").await;
    assert!(
        ev["events"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("password,<6-digit code>"),
        "{ev}"
    );

    let (ok, out) = eapol(
        &f,
        &ttls(&f, "ann", &format!("{PW},{}", oathtool(&secret, 0))),
    );
    assert!(ok, "{out}");
    let e = last_auth(&f, "ann").await;
    assert_eq!(e["details"]["mfa"], true, "{e}");

    // The certificate is the second factor: EAP-TLS is not asked for a code.
    let (ok, out) = eapol(&f, &tls(&f, "ann", false));
    assert!(ok, "{out}");
}

#[tokio::test]
async fn ttls_mschapv2_succeeds_with_mppe_keys_once_the_profile_allows_it() {
    let f = fixture().await;
    let (ok, out) = eapol(&f, &ttls_mschapv2(&f, "ann", PW));
    assert!(!ok && out.contains("(Access-Reject)"), "{out}");
    assert_eq!(
        last_auth(&f, "ann").await["reason"],
        "EAP-TTLS/MSCHAPv2 is not allowed on this RADIUS server"
    );
    set_profile(
        &f,
        json!({"methods": ["peap_mschapv2", "eap_ttls_pap", "eap_ttls_mschapv2", "eap_tls"]}),
    )
    .await;
    // MS-CHAPv2 as AVPs (RFC 5281 §11.2.4) and EAP-MSCHAPv2 in EAP-Message AVPs (§11.2.1).
    for (phase2, done) in [
        (
            "auth=MSCHAPV2",
            "EAP-TTLS: Phase 2 MSCHAPV2 authentication succeeded",
        ),
        ("autheap=MSCHAPV2", "EAP-MSCHAPV2: Authentication succeeded"),
    ] {
        for tls13 in [false, true] {
            let version = if tls13 { "TLSv1.3" } else { "TLSv1.2" };
            let network = ttls_mschapv2(&f, "ann", PW).replace("auth=MSCHAPV2", phase2);
            let (ok, out) = eapol(&f, &with_tls13(network, tls13));
            assert!(
                ok && out.contains(&format!("Using TLS version {version}")),
                "{phase2}: {out}"
            );
            // wpa_supplicant checked the server's MSCHAPv2 Success (S=…) itself before it acknowledged it.
            assert!(out.contains(done), "{phase2}: {out}");
            assert_accepted_with_keys_and_vlan(&out);
            let e = last_auth(&f, "ann").await;
            assert_eq!(
                (e["success"].as_bool(), e["details"]["method"].as_str()),
                (Some(true), Some("mschapv2"))
            );
        }
        let network = ttls_mschapv2(&f, "ann", "Wrong-Horse-99").replace("auth=MSCHAPV2", phase2);
        let (ok, out) = eapol(&f, &network);
        assert!(!ok && out.contains("(Access-Reject)"), "{phase2}: {out}");
        assert_eq!(last_auth(&f, "ann").await["reason"], "wrong password");
        // carl has no NT hash: refused with what to do, as with PEAP.
        let network = ttls_mschapv2(&f, "carl", PW).replace("auth=MSCHAPV2", phase2);
        let (ok, _) = eapol(&f, &network);
        assert!(!ok);
        assert!(last_auth(&f, "carl").await["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("must set a new password"));
    }
}

#[tokio::test]
async fn realm_rules_apply_to_the_inner_identities_of_peap_and_ttls() {
    let f = fixture().await;
    set_profile(
        &f,
        json!({"methods": ["peap_mschapv2", "eap_ttls_pap", "eap_ttls_mschapv2", "eap_tls"]}),
    )
    .await;
    // keep (the default): a Windows DOMAIN\ prefix is dropped, user@realm is a name of its own.
    let (ok, out) = eapol(&f, &peap(&f, "CORP\\ann", PW));
    assert!(ok, "{out}");
    let (ok, _) = eapol(&f, &ttls(&f, "ann@corp.example", PW));
    assert!(!ok);
    assert_eq!(
        last_auth(&f, "ann@corp.example").await["reason"],
        "unknown user"
    );

    set_profile(&f, json!({"realm": {"mode": "strip"}})).await;
    for network in [
        ttls(&f, "ann@corp.example", PW),
        peap(&f, "ann@corp.example", PW),
        // The MS-CHAPv2 hash covers the name as sent, realm included, as wpa_supplicant computes it.
        ttls_mschapv2(&f, "ann@corp.example", PW),
    ] {
        let (ok, out) = eapol(&f, &network);
        assert!(ok, "{network}: {out}");
        assert_accepted_with_keys_and_vlan(&out);
    }

    set_profile(
        &f,
        json!({"realm": {"mode": "require", "realms": ["corp.example"]}}),
    )
    .await;
    let (ok, out) = eapol(&f, &ttls(&f, "ann@corp.example", PW));
    assert!(ok, "{out}");
    let (ok, _) = eapol(&f, &ttls(&f, "ann", PW));
    assert!(!ok);
    assert_eq!(
        last_auth(&f, "ann").await["reason"],
        "the user name has no realm and this RADIUS server requires one"
    );
    let (ok, _) = eapol(&f, &peap(&f, "CORP\\ann", PW));
    assert!(!ok);
    assert_eq!(
        last_auth(&f, "CORP\\ann").await["reason"],
        "realm `CORP` is not accepted by this RADIUS server"
    );
}

#[tokio::test]
async fn broken_eap_conversations_are_refused_and_the_listener_keeps_serving() {
    let f = fixture().await;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let (host, port) = f.s.radius.rsplit_once(':').unwrap();
    let out = Command::new(crate::radius::conformance_python())
        .arg(format!("{root}/conformance/eap/check.py"))
        .args([host, port, SECRET])
        .arg(format!("{root}/radius-server/dictionary/dictionary"))
        .output()
        .expect("the conformance venv exists (scripts/test makes it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    // After all of it a real supplicant still gets in.
    let (ok, out) = eapol(&f, &peap(&f, "ann", PW));
    assert!(ok, "{out}");
}

#[tokio::test]
async fn peap_failures_count_towards_the_same_lockout() {
    let f = fixture().await;
    f.s.lockout(3, 0).await;
    for _ in 0..3 {
        let (ok, _) = eapol(&f, &peap(&f, "ann", "Wrong-Horse-99"));
        assert!(!ok);
    }
    let (ok, out) = eapol(&f, &peap(&f, "ann", PW));
    assert!(!ok && out.contains("(Access-Reject)"), "{out}");
    assert_eq!(
        last_auth(&f, "ann").await["reason"],
        "account is locked after too many failures"
    );
    // The lock holds for every method and protocol.
    let (ok, _) = eapol(&f, &tls(&f, "ann", false));
    assert!(!ok);
    // The portal, given the right password, says why; a wrong one learns nothing.
    let (st, body) = f.s.portal_login("ann", PW, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, _) = f.s.portal_login("ann", "Wrong-Horse-99", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
