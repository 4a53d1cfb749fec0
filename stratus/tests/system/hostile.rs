//! Hostile clients: what one source can hold (LDAP connections, half-sent requests), bounded in count and time,
//! while real clients from another source are still served.

use crate::harness::{Server, Start};
use reqwest::StatusCode;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` from the loopback address `from` (another source than the tests' 127.0.0.1).
async fn connect_from(from: [u8; 4], to: &str) -> Option<TcpStream> {
    let to: SocketAddr = to.parse().unwrap();
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::from((from, 0))).ok()?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
        .await
        .ok()?
        .ok()
}

/// Whether the server has closed `c` (a read returns end of stream) within a short wait.
async fn closed_by_server(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

async fn ldap_ready_user(s: &Server) -> String {
    let user = s.user("lena", Some("Ldap-Password-51")).await;
    let (st, g) = s.post("/groups", json!({"name": "ldap-users"})).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    let g = g["id"].as_str().unwrap().to_string();
    s.put(&format!("/groups/{g}/members/{user}"), None).await;
    s.put(&format!("/groups/{g}/bindings/ldap"), None).await;
    let (_, org) = s.get("/settings/org").await;
    org["ldap_suffix"].as_str().unwrap().to_string()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn one_source_holding_ldap_connections_leaves_room_for_the_others() {
    let s = Server::start_with_env(&[
        ("STRATUS_LDAP_MAX_CONNECTIONS", "200"),
        ("STRATUS_LDAP_MAX_CONNECTIONS_PER_SOURCE", "40"),
    ])
    .await;
    let suffix = ldap_ready_user(&s).await;
    // 127.0.0.2 opens 150 idle connections (bounded): only its share stays open.
    let mut held = Vec::new();
    for _ in 0..150 {
        if let Some(c) = connect_from([127, 0, 0, 2], &s.ldap).await {
            held.push(c);
        }
    }
    assert_eq!(held.len(), 150, "the kernel accepted every connection");
    let mut open = 0;
    for c in &mut held {
        if !closed_by_server(c).await {
            open += 1;
        }
    }
    assert_eq!(open, 40, "one source keeps exactly its share");
    // A real client from another source is served meanwhile.
    let (code, out) = crate::identity::whoami(&s, &suffix, "lena", "Ldap-Password-51");
    assert_eq!(code, Some(0), "{out}");
    // The refusal names the source, once, not once per connection.
    let (_, ev) = s
        .get("/events?type=ldap_connection_refused&limit=100")
        .await;
    let ev = ev["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["client_ip"], "127.0.0.2", "{ev:?}");
}

#[tokio::test]
async fn before_a_bind_only_small_requests_are_read_and_memory_stays_bounded() {
    let s = Server::start().await;
    let suffix = ldap_ready_user(&s).await;
    // A request announcing 1 MiB before any bind: closed at once.
    let mut c = connect_from([127, 0, 0, 3], &s.ldap).await.unwrap();
    c.write_all(&[0x30, 0x84, 0x00, 0x10, 0x00, 0x00, 0x02, 0x01, 0x01])
        .await
        .unwrap();
    assert!(closed_by_server(&mut c).await);
    // 200 unbound connections each sending half of a 1 MiB request: the server reads none of it into memory.
    let before = rss_kib(s.pid());
    let chunk = vec![0x04u8; 64 * 1024];
    let mut held = Vec::new();
    for _ in 0..200 {
        let Some(mut c) = connect_from([127, 0, 0, 4], &s.ldap).await else {
            continue;
        };
        let _ = c
            .write_all(&[
                0x30, 0x84, 0x00, 0x10, 0x00, 0x00, 0x02, 0x01, 0x01, 0x63, 0x84, 0x00, 0x0f, 0xff,
                0xf0,
            ])
            .await;
        for _ in 0..8 {
            if c.write_all(&chunk).await.is_err() {
                break;
            }
        }
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib(s.pid()).saturating_sub(before);
    assert!(
        grown < 50 * 1024,
        "200 half-sent requests grew the server by {grown} KiB"
    );
    drop(held);
    // None of it reached the log beyond a bounded line per event.
    let log = std::fs::metadata(s.dir.with_extension("log")).map_or(0, |m| m.len());
    assert!(log < 256 * 1024, "the server log grew to {log} bytes");
    // A bound session still sends large requests: a 40 KB filter is answered.
    let filter = format!(
        "(|{})",
        (0..3000)
            .map(|i| format!("(uid=u{i:05})"))
            .collect::<String>()
    );
    assert!(filter.len() > 30_000);
    let out = std::process::Command::new("ldapsearch")
        .args(["-x", "-LLL", "-H", &format!("ldap://{}", s.ldap)])
        .args([
            "-D",
            &format!("uid=lena,ou=Users,{suffix}"),
            "-w",
            "Ldap-Password-51",
        ])
        .args(["-b", &suffix, &filter, "uid"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Slow and silent HTTPS clients (headers a byte at a time, a body a byte at a time, nothing after the handshake,
/// nothing after a keep-alive answer) are closed within their configured times, one source holds at most its
/// share of connections, and a real client is served meanwhile.
#[tokio::test]
async fn slow_and_silent_https_clients_are_closed_in_time() {
    let s = Server::start_with_env(&[
        ("STRATUS_HTTP_HEADER_TIMEOUT_SECONDS", "2"),
        ("STRATUS_HTTP_BODY_TIMEOUT_SECONDS", "2"),
        ("STRATUS_HTTP_IDLE_TIMEOUT_SECONDS", "2"),
        ("STRATUS_HTTP_MAX_CONNECTIONS", "200"),
        ("STRATUS_HTTP_MAX_CONNECTIONS_PER_SOURCE", "20"),
    ])
    .await;
    let addr = s.url.trim_start_matches("https://").to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();
    // One source holds 60 plain TCP connections: only its share stays open, and a real client is served.
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Some(c) = connect_from([127, 0, 0, 5], &addr).await {
            held.push(c);
        }
    }
    let mut open = 0;
    for c in &mut held {
        if !closed_by_server(c).await {
            open += 1;
        }
    }
    assert_eq!(open, 20, "one source keeps exactly its share");
    assert_eq!(s.get("/users?limit=1").await.0, StatusCode::OK);
    drop(held);
    // Each slow client is watched for at most 20 s; the configured times are 2 s.
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../conformance/http/slow.py"
        ))
        .args([host, port])
        .arg(s.dir.join("certs/ca.pem"))
        .arg("20")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|_| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("slow clients: {v}");
    for kind in [
        "slow_headers",
        "slow_body",
        "idle_after_tls",
        "idle_keep_alive",
        "h2_pings",
    ] {
        let after = v[kind]["closed_after"].as_f64();
        assert!(
            after.is_some_and(|t| t < 10.0),
            "{kind} was not closed by the server: {v}"
        );
    }
    assert_eq!(v["idle_keep_alive"]["status"], "HTTP/1.1 200 OK", "{v}");
    assert_eq!(
        v["slow_body"]["status"], "HTTP/1.1 408 Request Timeout",
        "{v}"
    );
}

/// Signing out takes the session's own proof: the portal page's form token, or a JSON request to the portal
/// API; a page elsewhere cannot sign a user out.
#[tokio::test]
async fn signing_out_needs_the_form_token_or_a_json_request() {
    let s = Server::start().await;
    s.user("otto", Some("Signout-Pass-81")).await;
    // The portal API.
    let r = s
        .http
        .post(format!("{}/portal/api/login", s.url))
        .json(&json!({"username": "otto", "password": "Signout-Pass-81"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let me = |c: String| {
        let s = &s;
        async move {
            s.http
                .get(format!("{}/portal/api/me", s.url))
                .header("cookie", c)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let forged = s
        .http
        .post(format!("{}/portal/api/logout", s.url))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("set-cookie").is_none());
    // The portal page's sign-out posted without its form token gets the refusal page, not a framework error.
    let page = s
        .http
        .post(format!("{}/portal/logout", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains("Sign-out refused"));
    assert_eq!(
        me(cookie.clone()).await,
        StatusCode::OK,
        "the session stays"
    );
    let real = s
        .http
        .post(format!("{}/portal/api/logout", s.url))
        .header("cookie", &cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(real.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(cookie).await, StatusCode::UNAUTHORIZED);
    // The portal pages: a sign-out form without the session's token is refused and the session stays.
    let jar = s.dir.join("otto.jar");
    let args = json!({"username": "otto", "password": "Signout-Pass-81", "jar": jar});
    let v = crate::saml::sp(&s, "portal_login", args.clone());
    assert_eq!(v["portal"], true, "{v}");
    let v = crate::saml::sp(&s, "logout_without_csrf", args);
    assert_eq!(v["status"], 403, "{v}");
    assert_eq!(v["cleared"], false, "{v}");
    assert_eq!(v["portal_after"], 200, "{v}");
}

/// A password typed into the name field is never stored: an attempted name that matches no account is recorded
/// as a keyed digest (the same on every attempt), on every protocol and at the console.
#[tokio::test]
async fn an_unknown_name_is_recorded_as_a_digest_never_as_typed() {
    let s = Server::start().await;
    let typed = "Tr0ub4dor&3-secret";
    for _ in 0..2 {
        let r = s
            .http
            .post(format!("{}/portal/api/login", s.url))
            .json(&json!({"username": typed, "password": "whatever-else"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let _ = crate::radius::radclient(
        &s.radius,
        "auth",
        crate::radius::SECRET,
        &format!("User-Name=\"{typed}\",User-Password=\"x\",Message-Authenticator=0x00"),
    );
    let r = s
        .http
        .post(format!("{}/console/login", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={typed}&password=x&next=%2Fconsole"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error() || r.status().is_success());
    let (_, all) = s.get("/events?limit=1000").await;
    let text = all.to_string();
    assert!(
        !text.contains(typed),
        "the typed name is in the event log: {text}"
    );
    let portal: Vec<String> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "portal_login")
        .map(|e| e["username"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(portal.len(), 2, "{all}");
    assert!(portal[0].starts_with("unknown name #"), "{portal:?}");
    assert_eq!(portal[0], portal[1], "the same name gives the same digest");
    let (_, admin) = s.get("/events?type=admin_login&limit=10").await;
    assert!(admin.to_string().contains("unknown name #"), "{admin}");
    // An administrator searching for the name finds the attempts, though the log holds only the digest.
    let q = typed.replace('&', "%26");
    let (_, found) = s
        .get(&format!("/events?type=portal_login&user={q}&limit=10"))
        .await;
    assert_eq!(found["events"].as_array().map(Vec::len), Some(2), "{found}");
}

/// A simple LDAP bind of `dn` with `pw` over `c`; the result code.
async fn raw_bind(c: &mut TcpStream, id: u8, dn: &str, pw: &str) -> Option<u8> {
    let mut bind = vec![0x02, 0x01, 0x03, 0x04, dn.len() as u8];
    bind.extend_from_slice(dn.as_bytes());
    bind.push(0x80);
    bind.push(pw.len() as u8);
    bind.extend_from_slice(pw.as_bytes());
    let mut op = vec![0x60, bind.len() as u8];
    op.extend(bind);
    let mut msg = vec![0x02, 0x01, id];
    msg.extend(op);
    let mut pdu = vec![0x30, msg.len() as u8];
    pdu.extend(msg);
    c.write_all(&pdu).await.ok()?;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    // …0x61 len 0x0a 0x01 <code>…
    buf[..n]
        .windows(3)
        .find(|w| w[0] == 0x0a && w[1] == 0x01)
        .map(|w| w[2])
}

/// Password spraying — one wrong password for each of many users from one source — is throttled on every
/// protocol (delays, then refusals without looking at any account, one event per source), while a real user
/// from another source (another address; for RADIUS another Calling-Station-Id on the same NAS) signs in.
#[tokio::test]
async fn password_spraying_is_throttled_per_source_on_every_protocol() {
    let s = Server::start_with_env(&[
        ("STRATUS_THROTTLE_DELAY_AFTER", "3"),
        ("STRATUS_THROTTLE_REFUSE_AFTER", "6"),
    ])
    .await;
    let suffix = ldap_ready_user(&s).await;
    let (st, p) = s
        .post(
            "/radius-servers",
            json!({"name": "ap", "networks": ["127.0.0.0/8"], "secret": crate::radius::SECRET}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let lena = s.get("/users?search=lena&limit=1").await.1["users"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::radius::group(
        &s,
        json!({"name": "wifi"}),
        &[&lena],
        Some(&format!("radius:{}", p["id"].as_str().unwrap())),
    )
    .await;
    let names: Vec<String> = (0..8).map(|i| format!("spray{i}")).collect();
    for n in &names {
        s.user(n, Some("Spray-Target-Pass-1")).await;
    }

    // The portal, from 127.0.0.9: six failures, then refusals even with a right password.
    let attacker = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 9]))
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(s.dir.join("certs/ca.pem")).unwrap(),
        )
        .unwrap()])
        .build()
        .unwrap();
    let portal = |c: &reqwest::Client, user: &str, pw: &str| {
        let req = c
            .post(format!("{}/portal/api/login", s.url))
            .json(&json!({"username": user, "password": pw}));
        async move { req.send().await.unwrap().status() }
    };
    let mut statuses = Vec::new();
    for n in &names {
        statuses.push(portal(&attacker, n, "Winter2026!").await.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 401, 429, 429]);
    assert_eq!(
        portal(&attacker, "spray0", "Spray-Target-Pass-1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a throttled source is refused even with the right password"
    );
    assert_eq!(
        portal(&s.http, "spray0", "Spray-Target-Pass-1").await,
        StatusCode::OK
    );
    // No user was locked by the spraying, and only the attempts before the refusals were counted.
    let (_, u) = s.get("/users?search=spray1&limit=1").await;
    assert_eq!(u["users"][0]["locked"], false, "{u}");

    // LDAP binds from 127.0.0.10 on one connection each.
    let mut codes = Vec::new();
    for n in &names {
        let mut c = connect_from([127, 0, 0, 10], &s.ldap).await.unwrap();
        codes.push(
            raw_bind(
                &mut c,
                1,
                &format!("uid={n},ou=Users,{suffix}"),
                "Winter2026!",
            )
            .await,
        );
    }
    // Six wrong passwords (49), then the source is busy (51) before any account is looked at.
    let want: Vec<Option<u8>> = [49, 49, 49, 49, 49, 49, 51, 51].map(Some).to_vec();
    assert_eq!(codes, want);
    let mut c = connect_from([127, 0, 0, 10], &s.ldap).await.unwrap();
    let right = raw_bind(
        &mut c,
        1,
        &format!("uid=lena,ou=Users,{suffix}"),
        "Ldap-Password-51",
    )
    .await;
    assert_eq!(right, Some(51), "the throttled source is refused");
    let (code, out) = crate::identity::whoami(&s, &suffix, "lena", "Ldap-Password-51");
    assert_eq!(code, Some(0), "another source signs in: {out}");

    // RADIUS from one NAS: one Calling-Station-Id sprays, another station of the same NAS signs in.
    let pap = |user: &str, pw: &str, station: &str| {
        let (_, out) = crate::radius::radclient(
            &s.radius,
            "auth",
            crate::radius::SECRET,
            &format!(
                "User-Name={user},User-Password=\"{pw}\",Calling-Station-Id=\"{station}\",Message-Authenticator=0x00"
            ),
        );
        out.contains("Received Access-Accept")
    };
    for n in &names {
        assert!(!pap(n, "Winter2026!", "66-66-66-66-66-66"));
    }
    assert!(!pap("lena", "Ldap-Password-51", "66-66-66-66-66-66"));
    assert!(pap("lena", "Ldap-Password-51", "02-00-00-00-00-01"));

    // One event per throttled source.
    let (_, ev) = s.get("/events?type=auth_throttled&limit=100").await;
    let sources: Vec<String> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["details"]["source"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(sources.len(), 3, "{ev}");
    for want in ["127.0.0.9", "127.0.0.10", "127.0.0.1/66-66-66-66-66-66"] {
        assert!(sources.iter().any(|s| s == want), "{want} in {sources:?}");
    }
}

/// Under a low open-files limit the server lowers its connection limits to fit, so HTTPS connections held by a
/// few sources are refused by the HTTPS listener itself and LDAP keeps accepting (it used to run out of
/// descriptors and log every failed accept).
#[tokio::test]
async fn a_low_open_files_limit_lowers_the_connection_limits_so_ldap_still_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let s = Server::start_in(
        &dir,
        Start {
            nofile: Some(600),
            ..Default::default()
        },
    )
    .await;
    let suffix = ldap_ready_user(&s).await;
    let addr = s.url.trim_start_matches("https://").to_string();
    let mut held = Vec::new();
    for source in 2..=5u8 {
        for _ in 0..150 {
            if let Some(c) = connect_from([127, 0, 0, source], &addr).await {
                held.push(c);
            }
        }
    }
    let mut open = 0;
    for c in &mut held {
        if !closed_by_server(c).await {
            open += 1;
        }
    }
    // 600 descriptors less a reserve of 256 leave 344 for the listeners, half of them HTTPS.
    assert!(
        open <= 172,
        "the server kept {open} HTTPS connections open, above its lowered limit"
    );
    let (code, out) = crate::identity::whoami(&s, &suffix, "lena", "Ldap-Password-51");
    assert_eq!(code, Some(0), "LDAP accepts while HTTPS is full: {out}");
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert!(
        log.contains("the open-files limit cannot hold the configured connection limits"),
        "the lowering is announced"
    );
    assert!(
        log.matches("accept failed").count() <= 2,
        "accept failures are few and rate-limited"
    );
    drop(held);
}
