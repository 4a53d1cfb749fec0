//! Public URLs — SCIM `Location` and `meta.location`, SAML entity ids and endpoints — come from the one
//! `public_base_url` setting (default: the listener's bound address with its port), never from the request: a
//! hostile HTTP/1.1 Host header is not reflected, and an HTTP/2 request, which has no Host header, gets the same
//! URLs.

use crate::harness::Server;
use reqwest::{StatusCode, Version};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A client trusting the server's dev CA that speaks only HTTP/1.1, or only HTTP/2.
fn client(s: &Server, version: Version) -> reqwest::Client {
    let ca = std::fs::read(s.dir.join("certs/ca.pem")).unwrap();
    let b =
        reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()]);
    let b = if version == Version::HTTP_2 {
        b.http2_prior_knowledge()
    } else {
        b.http1_only()
    };
    b.build().unwrap()
}

/// Create a SCIM user with `client`, optionally with a Host header of the client's choosing; returns the
/// Location header, `meta.location` and the id.
async fn scim_create(
    s: &Server,
    client: &reqwest::Client,
    version: Version,
    host: Option<&str>,
    username: &str,
) -> (String, String, String) {
    let (st, t) = s.post("/scim-tokens", json!({"name": username})).await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap();
    let mut req = client
        .post(format!("{}/scim/v2/Users", s.url))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                   "userName": username, "name": {"givenName": "Pat", "familyName": "Lee"},
                   "emails": [{"value": format!("{username}@example.com"), "primary": true}]})
            .to_string(),
        );
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.version(), version, "the request went over {version:?}");
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    (
        location,
        body["meta"]["location"].as_str().unwrap().to_string(),
        body["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn scim_and_saml_urls_come_from_the_configured_public_base_url() {
    let s =
        Server::start_with_env(&[("STRATUS_PUBLIC_BASE_URL", "https://sso.example.test/")]).await;
    let base = "https://sso.example.test";
    for (version, host) in [
        (Version::HTTP_11, Some("evil.example")),
        (Version::HTTP_2, None),
    ] {
        let c = client(&s, version);
        let user = format!("pat{}", if host.is_some() { 1 } else { 2 });
        let (location, meta, id) = scim_create(&s, &c, version, host, &user).await;
        assert_eq!(
            location,
            format!("{base}/scim/v2/Users/{id}"),
            "{version:?}"
        );
        assert_eq!(meta, location, "{version:?}");
    }
    // The discovery documents too.
    let (st, t) = s.post("/scim-tokens", json!({"name": "discovery"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let spc: Value = client(&s, Version::HTTP_11)
        .get(format!("{}/scim/v2/ServiceProviderConfig", s.url))
        .bearer_auth(t["token"].as_str().unwrap())
        .header("host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        spc["meta"]["location"],
        format!("{base}/scim/v2/ServiceProviderConfig")
    );

    // The SAML IdP is named by the same setting.
    let (st, app) = s
        .post(
            "/apps",
            json!({"name": "SP", "sp_entity_id": "https://sp.test/metadata",
                   "acs_urls": ["https://sp.test/acs"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{app}");
    let app = app["id"].as_str().unwrap();
    let md = client(&s, Version::HTTP_11)
        .get(format!("{}/saml/{app}/metadata", s.url))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        md.contains(&format!("entityID=\"{base}/saml/{app}\"")),
        "{md}"
    );
    assert!(
        md.contains(&format!("Location=\"{base}/saml/{app}/sso\"")),
        "{md}"
    );
    assert!(!md.contains("evil.example"), "{md}");
}

#[tokio::test]
async fn without_a_setting_urls_carry_the_bound_address_and_port_whatever_the_request_says() {
    let s = Server::start_with_env(&[]).await;
    // `s.url` is the announced listener address, `https://127.0.0.1:<port>`.
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let (location, meta, id) = scim_create(
        &s,
        &client(&s, Version::HTTP_11),
        Version::HTTP_11,
        Some("evil.example"),
        "pat1",
    )
    .await;
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", s.url));
    assert_eq!(meta, location);
    // HTTP/2 carries no Host header.
    let (location, meta, id) = scim_create(
        &s,
        &client(&s, Version::HTTP_2),
        Version::HTTP_2,
        None,
        "pat2",
    )
    .await;
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", s.url));
    assert_eq!(meta, location);
}

#[tokio::test]
async fn the_deprecated_saml_base_url_still_names_every_public_url() {
    let s =
        Server::start_with_env(&[("STRATUS_SAML_BASE_URL", "https://legacy.example.test")]).await;
    let (location, _, id) = scim_create(
        &s,
        &client(&s, Version::HTTP_2),
        Version::HTTP_2,
        None,
        "pat1",
    )
    .await;
    assert_eq!(
        location,
        format!("https://legacy.example.test/scim/v2/Users/{id}")
    );
}

/// A public base URL that is not an absolute http(s) URL without query or fragment stops the server at start,
/// with a message naming the setting.
#[test]
fn an_invalid_public_base_url_stops_the_server_at_start() {
    for bad in [
        "sso.example.test",
        "ftp://sso.example.test",
        "https://sso.example.test/?tenant=1",
        "https://sso.example.test/#x",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
            .arg("serve")
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .env("STRATUS_PUBLIC_BASE_URL", bad)
            .env("STRATUS_HTTP_ADDR", "127.0.0.1:0")
            .env("STRATUS_LDAP_ADDR", "127.0.0.1:0")
            .env("STRATUS_LDAPS_ADDR", "127.0.0.1:0")
            .env("STRATUS_RADIUS_ADDR", "127.0.0.1:0")
            .env("STRATUS_RADIUS_ACCOUNTING_ADDR", "127.0.0.1:0")
            .env_remove("STRATUS_SAML_BASE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server started with public_base_url `{bad}`");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{bad}");
        assert!(err.contains("public_base_url"), "{bad}: {err}");
    }
}
