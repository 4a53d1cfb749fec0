//! The user portal pages, on the IdP session: the apps the user may launch, TOTP enrolment, the password change
//! and sign-out. Every form post carries the session's CSRF token.

use super::PageForm;
use super::{ip, set_cookie, Idp, SESSION_COOKIE};
use crate::pages;
use crate::sessions::IdpSession;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use core_directory::model::Resource;
use core_directory::{AuthOutcome, AuthRequest, Credential, DenyReason, Event, Service};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    /// Missing is the same as wrong: each handler refuses the post with its own page.
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

fn portal_view(
    idp: &Idp,
    s: &IdpSession,
    pending: Option<(String, String)>,
    message: Option<(bool, String)>,
) -> Response {
    portal_view_with(idp, s, pending, message, None)
}

/// The portal page, with recovery codes just made (shown this once).
fn portal_view_with(
    idp: &Idp,
    s: &IdpSession,
    pending: Option<(String, String)>,
    message: Option<(bool, String)>,
    recovery_codes: Option<Vec<String>>,
) -> Response {
    let snap = idp.dir.snapshot();
    let Some(user) = snap.user(&s.user).cloned() else {
        return Redirect::to("/login").into_response();
    };
    let now = Utc::now();
    let mut apps: Vec<pages::Tile> = snap
        .apps
        .values()
        .filter(|a| {
            a.idp_initiated
                && !snap
                    .granting_groups(&user.id, &Resource::App(a.id.clone()))
                    .is_empty()
        })
        .map(|a| pages::Tile {
            name: a.name.clone(),
            launch: format!("/saml/{}/launch", a.id),
        })
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    let display = format!("{} {}", user.firstname, user.lastname);
    let display = if display.trim().is_empty() {
        user.username.clone()
    } else {
        display.trim().to_string()
    };
    let deadline = (user.mfa_required && !user.totp_active())
        .then_some(user.mfa_enrolment_deadline)
        .flatten()
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string());
    let expires = user
        .password_expires_at(&snap.policy)
        .filter(|t| *t - chrono::Duration::days(i64::from(snap.policy.expiry_warning_days)) <= now)
        .map(|d| d.format("%Y-%m-%d").to_string());
    pages::portal(&pages::Portal {
        username: &user.username,
        display_name: &display,
        csrf: &s.csrf,
        apps,
        totp_active: user.totp_active(),
        totp_pending: pending,
        enrolment_deadline: deadline,
        password_expires: expires,
        message,
        recovery_codes,
        replacing: idp.dir.user_totp_replacement_secret(&user).map(|secret| {
            (
                core_directory::totp::secret_base32(&secret),
                core_directory::totp::otpauth_uri(&org_name(idp), &user.username, &secret),
            )
        }),
        recovery_left: user.recovery_codes.len(),
        rules: core_directory::policy::rules(&snap.policy),
        external: idp
            .dir
            .external_accounts_of(&user.id)
            .into_iter()
            .filter(|a| a.active)
            .map(|a| {
                let state = if a.password_synced {
                    "your password there was updated to your current one"
                } else if a.last_error.is_some() {
                    "your password could not be updated there yet; it is tried again at your next sign-in"
                } else {
                    "your password there is updated at your next sign-in"
                };
                (a.directory_name, state.to_string())
            })
            .collect(),
    })
}

fn org_name(idp: &Idp) -> String {
    idp.dir
        .org()
        .map_or_else(|| "Stratus".to_string(), |o| o.name.clone())
}

pub(super) async fn portal(AxState(idp): AxState<Idp>, headers: HeaderMap) -> Response {
    match idp.session(&headers) {
        Some((_, s)) => portal_view(&idp, &s, None, None),
        None => Redirect::to("/login").into_response(),
    }
}

/// The session of a portal form post, its CSRF token checked.
fn portal_post(idp: &Idp, headers: &HeaderMap, csrf: &str) -> Option<(String, IdpSession)> {
    idp.session(headers).filter(|(_, s)| {
        core_directory::crypto::constant_time_eq(s.csrf.as_bytes(), csrf.as_bytes())
    })
}

pub(super) async fn portal_totp_start(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<CsrfForm>,
) -> Response {
    let Some((_, s)) = portal_post(&idp, &headers, &f.csrf) else {
        return Redirect::to("/login").into_response();
    };
    match idp
        .dir
        .start_own_totp(&s.user, Service::Portal, ip(&c))
        .await
    {
        Ok(start) => portal_view(&idp, &s, Some((start.secret, start.otpauth_uri)), None),
        Err(e) => portal_view(&idp, &s, None, Some((false, e.to_string()))),
    }
}

pub(super) async fn portal_totp_confirm(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<CsrfForm>,
) -> Response {
    let Some((t, s)) = portal_post(&idp, &headers, &f.csrf) else {
        return Redirect::to("/login").into_response();
    };
    let code = f
        .rest
        .get("code")
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    match idp
        .dir
        .confirm_own_totp(&s.user, &code, Service::Portal, ip(&c))
        .await
    {
        Ok(confirmed) => {
            idp.state.set_mfa(&t);
            portal_view_with(
                &idp,
                &s,
                None,
                Some((
                    true,
                    "TOTP is set up. You will be asked for a code when you sign in.".into(),
                )),
                Some(confirmed.recovery_codes),
            )
        }
        Err(e) => {
            // Show the same secret again so the user can retry.
            let snap = idp.dir.snapshot();
            let pending = snap
                .user(&s.user)
                .filter(|u| !u.totp_active())
                .and_then(|u| {
                    let secret = idp.dir.user_totp_secret(u)?;
                    let org = idp
                        .dir
                        .org()
                        .map_or_else(|| "Stratus".to_string(), |o| o.name.clone());
                    Some((
                        core_directory::totp::secret_base32(&secret),
                        core_directory::totp::otpauth_uri(&org, &u.username, &secret),
                    ))
                });
            portal_view(&idp, &s, pending, Some((false, e.to_string())))
        }
    }
}

/// Start replacing the authenticator: the current password and a code (TOTP or recovery) first.
pub(super) async fn portal_totp_replace(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<CsrfForm>,
) -> Response {
    let Some((_, s)) = portal_post(&idp, &headers, &f.csrf) else {
        return Redirect::to("/login").into_response();
    };
    let get = |k: &str| f.rest.get(k).cloned().unwrap_or_default();
    match idp
        .dir
        .start_own_totp_replacement(
            &s.user,
            &get("current_password"),
            get("code").trim(),
            ip(&c),
        )
        .await
    {
        Ok(_) => portal_view(&idp, &s, None, None),
        Err(e) => portal_view(&idp, &s, None, Some((false, e.to_string()))),
    }
}

/// Confirm the new authenticator with a code from it; new recovery codes are shown once.
pub(super) async fn portal_totp_replace_confirm(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<CsrfForm>,
) -> Response {
    let Some((_, s)) = portal_post(&idp, &headers, &f.csrf) else {
        return Redirect::to("/login").into_response();
    };
    let code = f
        .rest
        .get("code")
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    match idp
        .dir
        .confirm_own_totp_replacement(&s.user, &code, ip(&c))
        .await
    {
        Ok(confirmed) => portal_view_with(
            &idp,
            &s,
            None,
            Some((
                true,
                "Your new authenticator is set up; the old one no longer works.".into(),
            )),
            Some(confirmed.recovery_codes),
        ),
        Err(e) => portal_view(&idp, &s, None, Some((false, e.to_string()))),
    }
}

pub(super) async fn portal_password(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<CsrfForm>,
) -> Response {
    let Some((t, s)) = portal_post(&idp, &headers, &f.csrf) else {
        return Redirect::to("/login").into_response();
    };
    let get = |k: &str| f.rest.get(k).cloned().unwrap_or_default();
    let (current, new, confirm) = (get("current_password"), get("new_password"), get("confirm"));
    if new != confirm {
        return portal_view(
            &idp,
            &s,
            None,
            Some((false, "The two new passwords differ.".into())),
        );
    }
    let Some(user) = idp.dir.snapshot().user(&s.user).cloned() else {
        return Redirect::to("/login").into_response();
    };
    let check = idp
        .dir
        .authenticate(AuthRequest {
            username: user.username.clone(),
            credential: Credential::Password(current),
            otp: None,
            service: Service::Portal,
            resource: None,
            client_ip: ip(&c),
            session: None,
            station: None,
        })
        .await;
    match check {
        Ok(
            AuthOutcome::Allow(_)
            | AuthOutcome::NeedMfa(_)
            | AuthOutcome::Deny(DenyReason::PasswordExpired),
        ) => {}
        _ => {
            return portal_view(
                &idp,
                &s,
                None,
                Some((false, "The current password is not right.".into())),
            )
        }
    }
    match idp
        .dir
        .change_own_password(&user.id, &new, Service::Portal, ip(&c))
        .await
    {
        Ok(_) => {
            // This browser stays signed in; the user's other sessions end with the old password.
            if let Some(u) = idp.dir.snapshot().user(&s.user) {
                idp.state.set_revision(&t, u.auth_revision);
            }
            portal_view(
                &idp,
                &s,
                None,
                Some((true, "Your password was changed.".into())),
            )
        }
        Err(e) => portal_view(&idp, &s, None, Some((false, e.to_string()))),
    }
}

pub(super) async fn portal_logout(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    PageForm(f): PageForm<CsrfForm>,
) -> Response {
    let Some((t, s)) = portal_post(&idp, &headers, &f.csrf) else {
        // No valid form token: a page elsewhere cannot sign the user out, and the session cookie stays.
        return pages::error_page(
            axum::http::StatusCode::FORBIDDEN,
            "Sign-out refused",
            "This sign-out form is no longer valid. Open your apps page again and sign out from there.",
        );
    };
    {
        idp.state.end_session(&t);
        let username = idp
            .dir
            .snapshot()
            .user(&s.user)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        idp.dir
            .record(
                Event::new(Service::Portal, "portal_logout", true)
                    .client(ip(&c))
                    .user(username)
                    .target("user", &s.user),
            )
            .await;
    }
    let mut r = pages::info_page("Signed out", "You are signed out.");
    set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
    r
}
