//! The login pages: the login transaction (bound to the browser cookie, with its CSRF token), the password step,
//! the TOTP step, and the IdP session a finished login starts before going on to the app or the portal. An
//! expired password, given correctly, leads to the new-password form (`new_password.rs`), after the TOTP step
//! when the user has one.

use super::response::deliver;
use super::PageForm;
use super::{cookie, denied_page, internal, ip, set_cookie, Idp, BROWSER_COOKIE, SESSION_COOKIE};
use crate::pages;
use crate::sessions::{Login, PendingSso, Stage};
use axum::extract::{ConnectInfo, Query, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use core_directory::model::Resource;
use core_directory::{AuthGrant, AuthOutcome, AuthRequest, Credential, DenyReason, Id, Service};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    login: Option<String>,
}

pub(super) fn app_name(idp: &Idp, login: &Login) -> Option<String> {
    login
        .sso
        .as_ref()
        .and_then(|s| idp.dir.get_app_record(&s.app).ok())
        .map(|a| a.name.clone())
}

pub(super) fn render_stage(idp: &Idp, id: &str, login: &Login, error: Option<&str>) -> Response {
    match &login.stage {
        Stage::Password => pages::login_form(
            id,
            &login.csrf,
            app_name(idp, login).as_deref(),
            &login.username,
            error,
        ),
        Stage::Totp(_) => pages::totp_form(id, &login.csrf, error),
        Stage::NewPassword { .. } => pages::new_password_form(
            id,
            &login.csrf,
            &core_directory::policy::rules(&idp.dir.snapshot().policy),
            error,
        ),
    }
}

/// Send the browser to the login page with a new login transaction.
pub(super) fn start_login(
    idp: &Idp,
    sso: Option<PendingSso>,
    headers: &HeaderMap,
    stage: Option<(Stage, Id)>,
) -> Response {
    let browser = cookie(headers, BROWSER_COOKIE).unwrap_or_else(crate::sessions::token);
    let mut login = Login::new(&browser, sso);
    if let Some((stage, user)) = stage {
        login.stage = stage;
        login.session_user = Some(user);
    }
    let id = idp.state.put_login(login);
    let mut r = Redirect::to(&format!("/login?login={id}")).into_response();
    set_cookie(&mut r, BROWSER_COOKIE, &browser, None);
    r
}

pub(super) async fn login_page(
    AxState(idp): AxState<Idp>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let browser = cookie(&headers, BROWSER_COOKIE);
    if let (Some(id), Some(b)) = (&q.login, &browser) {
        if let Some(login) = idp.state.login(id).filter(|l| l.bound_to(b)) {
            return render_stage(&idp, id, &login, None);
        }
    }
    if q.login.is_none() {
        if let Some(_s) = idp.session(&headers) {
            return Redirect::to("/portal").into_response();
        }
    }
    // A fresh portal login.
    let browser = browser.unwrap_or_else(crate::sessions::token);
    let login = Login::new(&browser, None);
    let csrf = login.csrf.clone();
    let id = idp.state.put_login(login);
    let mut r = pages::login_form(&id, &csrf, None, "", None);
    set_cookie(&mut r, BROWSER_COOKIE, &browser, None);
    r
}

/// The login transaction a form posts to, checked against its CSRF token and browser cookie.
pub(super) fn posted_login(idp: &Idp, headers: &HeaderMap, id: &str, csrf: &str) -> Option<Login> {
    let browser = cookie(headers, BROWSER_COOKIE)?;
    let login = idp.state.login(id)?;
    (login.bound_to(&browser)
        && core_directory::crypto::constant_time_eq(login.csrf.as_bytes(), csrf.as_bytes()))
    .then_some(login)
}

pub(super) fn expired_login() -> Response {
    let mut r = pages::error_page(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in page has expired or was opened in another browser. Start again from the application.",
    );
    r.headers_mut()
        .insert(header::REFRESH, HeaderValue::from_static("5; url=/login"));
    r
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    login: String,
    csrf: String,
    username: String,
    password: String,
}

/// A login finished: start the IdP session and go on to the app or the portal.
async fn signed_in(
    idp: &Idp,
    headers: &HeaderMap,
    id: &str,
    login: &Login,
    grant: AuthGrant,
) -> Response {
    idp.state.end_login(id);
    // A login replaces whatever session this browser had (ForceAuthn, or another user signing in).
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        idp.state.end_session(&old);
    }
    let (token, s) = idp.state.create_session(
        grant.user.id.clone(),
        grant.user.auth_revision,
        grant.mfa_used,
    );
    let mut r = match &login.sso {
        Some(pending) => deliver(idp, &token, &s, &grant, pending).await,
        None => Redirect::to("/portal").into_response(),
    };
    set_cookie(&mut r, SESSION_COOKIE, &token, None);
    r
}

pub(super) async fn login_password(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<PasswordForm>,
) -> Response {
    let Some(mut login) = posted_login(&idp, &headers, &f.login, &f.csrf) else {
        return expired_login();
    };
    if !matches!(login.stage, Stage::Password) {
        return render_stage(&idp, &f.login, &login, None);
    }
    // The form takes a user name or the user's e-mail address; from here on it is the user name.
    let username = idp
        .dir
        .login_name(&f.username.chars().take(256).collect::<String>());
    login.username = username.clone();
    let resource = login.sso.as_ref().map(|s| Resource::App(s.app.clone()));
    let outcome = idp
        .dir
        .authenticate(AuthRequest {
            username: username.clone(),
            credential: Credential::Password(f.password),
            otp: None,
            service: if resource.is_some() {
                Service::Sso
            } else {
                Service::Portal
            },
            resource,
            client_ip: ip(&c),
            session: None,
            station: None,
        })
        .await;
    match outcome {
        Ok(AuthOutcome::Allow(grant)) => signed_in(&idp, &headers, &f.login, &login, grant).await,
        Ok(AuthOutcome::NeedMfa(ch)) => {
            login.stage = Stage::Totp(ch);
            idp.state.update_login(&f.login, login.clone());
            render_stage(&idp, &f.login, &login, None)
        }
        Ok(AuthOutcome::Deny(DenyReason::PasswordExpired)) => {
            let Some(user) = idp
                .dir
                .snapshot()
                .user_by_login_name(&username)
                .map(|u| u.id.clone())
            else {
                return expired_login();
            };
            let snap = idp.dir.snapshot();
            let totp = snap.user(&user).is_some_and(|u| u.totp_active());
            login.stage = if totp {
                // The right (expired) password alone does not let anyone choose the next one: the second
                // factor comes first.
                login.then_new_password = true;
                Stage::Totp(core_directory::MfaChallenge {
                    user_id: user.clone(),
                    username: username.clone(),
                    service: Service::Portal,
                    resource: None,
                    session: None,
                    issued_at: Utc::now(),
                    station: None,
                })
            } else {
                Stage::NewPassword { user }
            };
            idp.state.update_login(&f.login, login.clone());
            render_stage(&idp, &f.login, &login, None)
        }
        Ok(AuthOutcome::Deny(
            reason @ (DenyReason::NotBound
            | DenyReason::MfaEnrolmentExpired
            | DenyReason::PolicyDenied
            | DenyReason::MfaNotEnrolled),
        )) => {
            idp.state.end_login(&f.login);
            denied_page(&idp, login.sso.as_ref().map(|s| &s.app), reason)
        }
        // The core says these only after the right password: the account's state may be told plainly.
        Ok(AuthOutcome::Deny(
            reason @ (DenyReason::Locked | DenyReason::Suspended | DenyReason::Staged),
        )) => {
            idp.state.update_login(&f.login, login.clone());
            render_stage(&idp, &f.login, &login, Some(account_state_message(reason)))
        }
        Ok(AuthOutcome::Deny(DenyReason::Throttled)) => {
            idp.state.update_login(&f.login, login.clone());
            render_stage(
                &idp,
                &f.login,
                &login,
                Some("Too many failed sign-ins from your network. Try again later."),
            )
        }
        Ok(AuthOutcome::Deny(_)) => {
            login.attempts += 1;
            if login.attempts >= crate::sessions::LOGIN_ATTEMPTS {
                idp.state.end_login(&f.login);
                return expired_login();
            }
            idp.state.update_login(&f.login, login.clone());
            render_stage(
                &idp,
                &f.login,
                &login,
                Some("Wrong username, e-mail or password."),
            )
        }
        Err(e) => internal(&e.to_string()),
    }
}

#[derive(Deserialize)]
pub(super) struct TotpForm {
    login: String,
    csrf: String,
    code: String,
}

pub(super) async fn login_totp(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<TotpForm>,
) -> Response {
    let Some(mut login) = posted_login(&idp, &headers, &f.login, &f.csrf) else {
        return expired_login();
    };
    let Stage::Totp(ch) = &login.stage else {
        return render_stage(&idp, &f.login, &login, None);
    };
    // A TOTP code, or a recovery code (16 characters in groups of four, typed with or without dashes).
    let code: String = f
        .code
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(40)
        .collect();
    match idp.dir.complete_mfa(ch, &code, ip(&c)).await {
        Ok(AuthOutcome::Allow(grant)) if login.then_new_password => {
            login.stage = Stage::NewPassword {
                user: grant.user.id.clone(),
            };
            login.then_new_password = false;
            idp.state.update_login(&f.login, login.clone());
            render_stage(&idp, &f.login, &login, None)
        }
        Ok(AuthOutcome::Allow(grant)) => {
            if let Some(user) = login.session_user.clone() {
                // Step-up: the existing session now carries a second factor.
                idp.state.end_login(&f.login);
                let Some((t, mut s)) = idp.session(&headers).filter(|(_, s)| s.user == user) else {
                    return expired_login();
                };
                idp.state.set_mfa(&t);
                s.mfa = true;
                return match &login.sso {
                    Some(pending) => deliver(&idp, &t, &s, &grant, pending).await,
                    None => Redirect::to("/portal").into_response(),
                };
            }
            signed_in(&idp, &headers, &f.login, &login, grant).await
        }
        Ok(AuthOutcome::Deny(DenyReason::ChallengeExpired)) => {
            idp.state.end_login(&f.login);
            expired_login()
        }
        Ok(AuthOutcome::Deny(DenyReason::WrongOtp)) => {
            login.attempts += 1;
            if login.attempts >= crate::sessions::LOGIN_ATTEMPTS {
                idp.state.end_login(&f.login);
                return expired_login();
            }
            idp.state.update_login(&f.login, login.clone());
            render_stage(
                &idp,
                &f.login,
                &login,
                Some("That code is not valid. Try the next one."),
            )
        }
        Ok(AuthOutcome::Deny(reason)) => {
            idp.state.end_login(&f.login);
            denied_page(&idp, login.sso.as_ref().map(|s| &s.app), reason)
        }
        Ok(AuthOutcome::NeedMfa(_)) => expired_login(),
        Err(e) => internal(&e.to_string()),
    }
}

/// What a user who gave the right password is told about an account they cannot use.
pub(super) fn account_state_message(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::Locked => {
            "Your account is locked after too many failed sign-ins. Try again later, or ask your administrator to unlock it."
        }
        DenyReason::Suspended => "Your account is suspended. Ask your administrator.",
        _ => "Your account is not active yet. Use the activation link sent to your e-mail, or ask your administrator.",
    }
}
