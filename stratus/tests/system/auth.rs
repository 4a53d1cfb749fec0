//! The one authentication path, through the user portal's login: lockout and admin unlock, TOTP accepted once
//! (codes from oathtool), password expiry and the MFA enrolment period (the server's clock moved by faketime).

use crate::harness::{oathtool, Server, Start};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn lockout_after_n_failures_until_admin_unlock() {
    let s = Server::start().await;
    s.lockout(3, 0).await;
    let id = s.user("hank", Some("Right-Password-1")).await;
    assert_eq!(
        s.portal_login("hank", "Right-Password-1", None).await.0,
        StatusCode::OK
    );
    for _ in 0..3 {
        assert_eq!(
            s.portal_login("hank", "Wrong-Password-1", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (_, u) = s.get(&format!("/users/{id}")).await;
    assert_eq!(u["locked"], true, "{u}");
    assert_eq!(u["failed_logins"], 3);
    let (st, body) = s.portal_login("hank", "Right-Password-1", None).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "the right password does not open a locked account: {body}"
    );
    assert_eq!(
        body["error"]["code"], "account_locked",
        "who gave the right password is told why"
    );
    let (st, body) = s.portal_login("hank", "Wrong-Password-2", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["error"]["code"], "unauthorized",
        "who did not is told nothing about the account"
    );

    let (st, u) = s.post(&format!("/users/{id}/unlock"), json!(null)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(u["locked"], false);
    assert_eq!(
        s.portal_login("hank", "Right-Password-1", None).await.0,
        StatusCode::OK
    );

    let logins = s.events("portal_login", "hank").await;
    assert!(logins
        .iter()
        .any(|e| e["reason"] == "account is locked after too many failures"));
    assert_eq!(
        logins
            .iter()
            .filter(|e| e["reason"] == "wrong password")
            .count(),
        3
    );
    assert_eq!(s.events("user_lockout", "hank").await.len(), 1);
    assert_eq!(s.events("user_unlock", "hank").await.len(), 1);
}

#[tokio::test]
async fn timed_lock_expires_and_counter_restarts() {
    let s = Server::start().await;
    s.lockout(2, 1).await;
    s.user("ivy", Some("Right-Password-1")).await;
    for _ in 0..2 {
        s.portal_login("ivy", "Wrong-Password-1", None).await;
    }
    assert_eq!(
        s.portal_login("ivy", "Right-Password-1", None).await.0,
        StatusCode::FORBIDDEN,
        "locked (said only after the right password)"
    );
    let (_, dir, tmp) = s.terminate().await;
    let later = Server::start_in(
        &dir,
        Start {
            faketime: Some("+2m".into()),
            ..Start::default()
        },
    )
    .await;
    assert_eq!(
        later.portal_login("ivy", "Right-Password-1", None).await.0,
        StatusCode::OK,
        "a 1-minute lock has run out"
    );
    drop(later);
    drop(tmp);
}

#[tokio::test]
async fn totp_code_is_accepted_once_and_refused_on_replay() {
    let s = Server::start().await;
    let id = s.user("jack", Some("Right-Password-1")).await;
    let (st, t) = s.post(&format!("/users/{id}/mfa/totp"), json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let secret = t["secret"].as_str().unwrap().to_string();
    assert!(t["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let (_, u) = s.get(&format!("/users/{id}")).await;
    assert_eq!(u["mfa"]["totp"], "pending");

    // Confirm with the code of the previous step so the login below gets a fresh one.
    let (st, e) = s
        .post(
            &format!("/users/{id}/mfa/totp/confirm"),
            json!({"code": "000000"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, u) = s
        .post(
            &format!("/users/{id}/mfa/totp/confirm"),
            json!({"code": oathtool(&secret, -30)}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{u}");
    assert_eq!(u["mfa"]["totp"], "active");

    let (st, e) = s.portal_login("jack", "Right-Password-1", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(e["error"]["code"], "mfa_required");
    let code = oathtool(&secret, 0);
    let (st, ok) = s
        .portal_login("jack", "Right-Password-1", Some(&code))
        .await;
    assert_eq!(st, StatusCode::OK, "{ok}");
    assert_eq!(ok["mfa_used"], true);
    let (st, replay) = s
        .portal_login("jack", "Right-Password-1", Some(&code))
        .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "a code is accepted once: {replay}"
    );
    let events = s.events("portal_login", "jack").await;
    assert!(events
        .iter()
        .any(|e| e["success"] == true && e["details"]["mfa"] == true));
    assert!(events
        .iter()
        .any(|e| e["reason"] == "wrong or reused verification code"));
    assert!(!s.events("totp_enrol_confirm", "jack").await.is_empty());

    // The guard is in the store: a restart does not make the code good again.
    let (clean, dir, tmp) = s.terminate().await;
    assert!(clean);
    let s = Server::start_in(&dir, Default::default()).await;
    let (st, replay) = s
        .portal_login("jack", "Right-Password-1", Some(&code))
        .await;
    assert_eq!(
        st,
        StatusCode::UNAUTHORIZED,
        "replayed after a restart: {replay}"
    );
    drop(tmp);
}

#[tokio::test]
async fn suspended_staged_and_pending_users_cannot_log_in() {
    let s = Server::start().await;
    let id = s.user("kim", Some("Right-Password-1")).await;
    s.patch(&format!("/users/{id}"), json!({"state": "suspended"}))
        .await;
    let (st, body) = s.portal_login("kim", "Right-Password-1", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "account_suspended", "{body}");
    let (st, body) = s.portal_login("kim", "Wrong-Password-1", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    s.user("lee", None).await;
    assert_eq!(
        s.portal_login("lee", "", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.portal_login("nobody", "Whatever-123", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.events("portal_login", "kim").await[0]["reason"],
        "user is suspended"
    );
    assert_eq!(
        s.events("portal_login", "lee").await[0]["reason"],
        "user has no password yet"
    );
    // A name that matches no account is recorded as a digest, never as typed.
    let (_, ev) = s.get("/events?type=portal_login&limit=100").await;
    let unknown = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "unknown user")
        .cloned()
        .unwrap_or_default();
    assert!(
        unknown["username"]
            .as_str()
            .unwrap_or_default()
            .starts_with("unknown name #"),
        "{ev}"
    );
    assert!(!ev.to_string().contains("nobody"), "{ev}");
}

#[tokio::test]
async fn password_expires_after_the_policy_age() {
    let s = Server::start().await;
    s.update_policy(|p| p["max_age_days"] = json!(30)).await;
    let id = s.user("mia", Some("Right-Password-1")).await;
    assert_eq!(
        s.portal_login("mia", "Right-Password-1", None).await.0,
        StatusCode::OK
    );
    let (_, dir, tmp) = s.terminate().await;

    let later = Server::start_in(
        &dir,
        Start {
            faketime: Some("+31d".into()),
            ..Start::default()
        },
    )
    .await;
    let (_, u) = later.get(&format!("/users/{id}")).await;
    assert_eq!(u["password_status"], "expired", "{u}");
    let (st, e) = later.portal_login("mia", "Right-Password-1", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "password_expired");
    let (st, _) = later
        .post(
            &format!("/users/{id}/password"),
            json!({"password": "New-Password-22"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        later.portal_login("mia", "New-Password-22", None).await.0,
        StatusCode::OK
    );
    drop(later);
    drop(tmp);
}

#[tokio::test]
async fn mfa_enrolment_period_ends_portal_access_until_reset() {
    let s = Server::start().await;
    let (st, e) = s
        .post("/users", json!({"username": "ned", "email": "ned@example.com", "password": "Right-Password-1", "mfa_required": true}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    let id = e["id"].as_str().unwrap().to_string();
    assert!(e["mfa"]["enrolment_deadline"].is_string());
    let (st, ok) = s.portal_login("ned", "Right-Password-1", None).await;
    assert_eq!(st, StatusCode::OK, "inside the 7-day period: {ok}");
    assert!(ok["mfa_enrolment_deadline"].is_string());
    let (_, dir, tmp) = s.terminate().await;

    let later = Server::start_in(
        &dir,
        Start {
            faketime: Some("+8d".into()),
            ..Start::default()
        },
    )
    .await;
    let (st, e) = later.portal_login("ned", "Right-Password-1", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(e["error"]["code"], "mfa_enrolment_expired");
    let (_, u) = later.get(&format!("/users/{id}")).await;
    assert_eq!(u["mfa"]["enrolment_expired"], true);
    let (st, _) = later
        .patch(
            &format!("/users/{id}"),
            json!({"reset_mfa_enrolment": true}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        later.portal_login("ned", "Right-Password-1", None).await.0,
        StatusCode::OK,
        "an admin reset reopens the period"
    );
    drop(later);
    drop(tmp);
}

#[tokio::test]
async fn portal_user_changes_own_password_under_the_policy() {
    let s = Server::start().await;
    s.user("olga", Some("Right-Password-1")).await;
    let resp = s
        .http
        .post(format!("{}/portal/api/login", s.url))
        .json(&json!({"username": "olga", "password": "Right-Password-1"}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let change = |current: &str, new: &str| {
        s.http
            .post(format!("{}/portal/api/password", s.url))
            .header("cookie", cookie.clone())
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    assert_eq!(
        change("Right-Password-1", "short").await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        change("Wrong-Password-1", "Brand-New-Pass-9")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        change("Right-Password-1", "Brand-New-Pass-9")
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.portal_login("olga", "Brand-New-Pass-9", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.portal_login("olga", "Right-Password-1", None).await.0,
        StatusCode::UNAUTHORIZED,
        "old password no longer works (cache invalidated)"
    );
    assert!(!s.events("password_change", "olga").await.is_empty());
    // The session that changed the password stays; an admin reset ends it.
    let me = || {
        s.http
            .get(format!("{}/portal/api/me", s.url))
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(me().await.unwrap().status(), StatusCode::OK);
    let (_, users) = s.get("/users?search=olga").await;
    let id = users["users"][0]["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .post(
            &format!("/users/{id}/password"),
            json!({"password": "Admin-Reset-Pass-3"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_login_asks_for_totp_once_enrolled() {
    let s = Server::start().await;
    let (st, t) = s.post("/me/mfa/totp", json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let secret = t["secret"].as_str().unwrap().to_string();
    let (st, me) = s
        .post(
            "/me/mfa/totp/confirm",
            json!({"code": oathtool(&secret, -30)}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{me}");
    assert_eq!(me["totp"], "active");
    let login = |otp: Option<String>| {
        let mut body = json!({"email": crate::harness::ADMIN_EMAIL, "password": crate::harness::ADMIN_PASSWORD});
        if let Some(o) = otp {
            body["otp"] = json!(o);
        }
        s.http
            .post(format!("{}/api/v1/auth/login", s.url))
            .json(&body)
            .send()
    };
    let r = login(None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "otp_required"
    );
    let code = oathtool(&secret, 0);
    assert_eq!(
        login(Some(code.clone())).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        login(Some(code)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "admin codes are single-use too"
    );
}

#[tokio::test]
async fn the_portal_takes_a_user_name_or_an_e_mail_address() {
    let s = Server::start().await;
    s.user("dora", Some("Correct-Horse-9")).await;
    let (st, v) = s
        .portal_login("Dora@Example.com", "Correct-Horse-9", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["username"], "dora", "{v}");
    let (st, _) = s.portal_login("dora", "Correct-Horse-9", None).await;
    assert_eq!(st, StatusCode::OK);
    // A wrong password by e-mail counts against the same user; an unknown address is an unknown user.
    let (st, _) = s.portal_login("dora@example.com", "wrong", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .portal_login("nobody@example.com", "Correct-Horse-9", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let events = s.events("portal_login", "dora").await;
    assert!(
        events
            .iter()
            .any(|e| e["success"] == false
                && e["reason"].as_str().unwrap_or("").contains("password")),
        "{events:?}"
    );
}

/// Recovery codes: ten made at enrolment and shown once (the confirm answer), each standing in for a TOTP code
/// exactly once, typed in any case with or without dashes; none after TOTP is removed.
#[tokio::test]
async fn recovery_codes_stand_in_for_the_totp_code_once_each() {
    let s = Server::start().await;
    let id = s.user("rosa", Some("Recovery-Pass-12")).await;
    let (st, t) = s.post(&format!("/users/{id}/mfa/totp"), json!(null)).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    let secret = t["secret"].as_str().unwrap().to_string();
    let (st, confirmed) = s
        .post(
            &format!("/users/{id}/mfa/totp/confirm"),
            json!({"code": crate::harness::oathtool(&secret, -30)}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{confirmed}");
    assert_eq!(
        confirmed["username"], "rosa",
        "the user's fields are all there"
    );
    let codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    // Never shown again, and not stored as given.
    let (_, user) = s.get(&format!("/users/{id}")).await;
    assert!(!user.to_string().contains(&codes[0]), "{user}");
    assert!(
        !std::fs::read(s.dir.join("stratus.redb"))
            .map(|b| String::from_utf8_lossy(&b).contains(&codes[0].replace('-', "")))
            .unwrap_or(false),
        "a recovery code is stored only as a digest"
    );

    let (st, body) = s
        .portal_login("rosa", "Recovery-Pass-12", Some(&codes[0]))
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, _) = s
        .portal_login("rosa", "Recovery-Pass-12", Some(&codes[0]))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "a code works once");
    let typed = codes[1].to_uppercase().replace('-', " ");
    let (st, body) = s
        .portal_login("rosa", "Recovery-Pass-12", Some(&typed))
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "case and separators do not matter: {body}"
    );
    let used = s.events("recovery_code_used", "rosa").await;
    assert_eq!(used.len(), 2);
    assert_eq!(used[0]["details"]["recovery_codes_left"], 8);
    // A wrong code counts as a failed login.
    let (st, _) = s
        .portal_login("rosa", "Recovery-Pass-12", Some("aaaa-bbbb-cccc-dddd"))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (_, user) = s.get(&format!("/users/{id}")).await;
    assert_eq!(user["failed_logins"], 1, "{user}");
    // Removing TOTP removes the codes with it.
    let (st, _) = s.delete(&format!("/users/{id}/mfa/totp")).await;
    assert_eq!(st, StatusCode::OK);
    let (st, body) = s
        .portal_login("rosa", "Recovery-Pass-12", Some(&codes[2]))
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "no second factor is asked any more: {body}"
    );
    let id2 = s.user("rosa2", Some("Recovery-Pass-13")).await;
    let secret2 = s.enrol_totp(&id2).await;
    assert!(!secret2.is_empty());
    let (st, _) = s
        .portal_login("rosa2", "Recovery-Pass-13", Some(&codes[3]))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "codes belong to their user");
}

/// A small SVG logo as the console and API take it: a base64 `data:` URI.
pub fn test_logo() -> String {
    let svg = "<svg xmlns='http://www.w3.org/2000/svg' width='120' height='32'>\
               <rect width='32' height='32' rx='6' fill='#aa3300'/>\
               <text x='40' y='22' font-family='sans-serif' font-size='16'>Acme</text></svg>";
    format!(
        "data:image/svg+xml;base64,{}",
        data_encoding::BASE64.encode(svg.as_bytes())
    )
}

/// The organisation's name, colour and logo on the sign-in pages; bad values are refused with field errors.
#[tokio::test]
async fn sign_in_pages_carry_the_organisations_name_colour_and_logo() {
    let s = Server::start().await;
    let logo = test_logo();
    let (st, org) = s
        .patch(
            "/settings/org",
            json!({"name": "Acme Corp", "brand_color": "#AA3300", "logo": logo}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{org}");
    assert_eq!(org["brand_color"], "#aa3300");
    let page = s
        .http
        .get(format!("{}/login", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<title>Sign in · Acme Corp</title>"),
        "{page}"
    );
    assert!(
        page.contains("<header class=\"brand\"><img src=\"/login/logo\" alt=\"\"><span>Acme Corp</span></header>"),
        "{page}"
    );
    let css = s
        .http
        .get(format!("{}/login/style.css", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("button{background:#aa3300}"), "{css}");
    let r = s
        .http
        .get(format!("{}/login/logo", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert!(r.text().await.unwrap().contains("Acme</text>"));
    for (field, bad) in [
        ("brand_color", json!("red")),
        ("logo", json!("https://example.com/logo.png")),
        ("logo", json!("data:text/html;base64,PGgxPg==")),
    ] {
        let (st, e) = s.patch("/settings/org", json!({ field: bad })).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    // Removing the logo: the page has no image and the address answers 404.
    let (st, _) = s.patch("/settings/org", json!({"logo": ""})).await;
    assert_eq!(st, StatusCode::OK);
    let r = s
        .http
        .get(format!("{}/login/logo", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
