//! The user portal's JSON API under `/portal/api`: login (password, then TOTP when the user has it), logout,
//! the signed-in user, and self-service password change. Every decision goes through the core's one
//! authentication function with service `portal`; the deny reason is recorded as an event and not shown, except
//! the two a user must act on after giving the right password (expired password, MFA enrolment over).

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{session_cookie_named, ClientIp, Json};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use core_directory::{AuthOutcome, AuthRequest, DenyReason, Id, Service};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Name of the portal session cookie.
pub const PORTAL_COOKIE: &str = "stratus_portal";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// Portal login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalLogin {
    pub username: String,
    pub password: String,
    /// TOTP code; required when the answer was `mfa_required`.
    pub otp: Option<String>,
}

/// The signed-in user.
#[derive(Serialize, ToSchema)]
pub struct PortalSession {
    pub user_id: Id,
    pub username: String,
    pub mfa_used: bool,
    /// MFA is required and this is the end of the TOTP enrolment period.
    pub mfa_enrolment_deadline: Option<DateTime<Utc>>,
    /// Set when the password expires soon.
    pub password_expires_at: Option<DateTime<Utc>>,
}

/// Self-service password change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

fn denied(reason: DenyReason) -> ApiError {
    match reason {
        DenyReason::PasswordExpired => ApiError::new(
            StatusCode::FORBIDDEN,
            "password_expired",
            "your password has expired; ask an administrator to set a new one",
        ),
        DenyReason::MfaEnrolmentExpired => ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa_enrolment_expired",
            "your MFA enrolment period is over; ask an administrator to reset it",
        ),
        // Told only after the right password (the core answers a wrong one as such).
        DenyReason::Locked => ApiError::new(
            StatusCode::FORBIDDEN,
            "account_locked",
            "your account is locked after too many failed sign-ins; try again later or ask an administrator",
        ),
        DenyReason::Suspended => ApiError::new(
            StatusCode::FORBIDDEN,
            "account_suspended",
            "your account is suspended; ask an administrator",
        ),
        DenyReason::Staged => ApiError::new(
            StatusCode::FORBIDDEN,
            "account_not_active",
            "your account is not active yet; use the activation link sent to your e-mail",
        ),
        // Also said only after the right password and code.
        DenyReason::PolicyDenied => ApiError::new(
            StatusCode::FORBIDDEN,
            "access_policy",
            "your organisation's access policy does not allow signing in from this network or at this time",
        ),
        DenyReason::MfaNotEnrolled => ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa_required",
            "a verification code is required; ask an administrator to set up two-factor authentication for you",
        ),
        DenyReason::Throttled => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many failed sign-ins from this address; try again later",
        ),
        _ => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong username, password or code",
        ),
    }
}

#[utoipa::path(post, path = "/login", tag = "portal", request_body = PortalLogin,
    responses((status = 200, description = "portal session cookie set", body = PortalSession),
              (status = 401, description = "`unauthorized`, or `mfa_required`: send again with `otp`", body = ErrorBody),
              (status = 403, description = "`password_expired`, `mfa_enrolment_expired`; after the right password only: `account_locked`, `account_suspended`, `account_not_active`", body = ErrorBody),
              (status = 429, description = "`throttled`: too many failed sign-ins from this address", body = ErrorBody)))]
async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<PortalLogin>,
) -> ApiResult<Response> {
    let outcome = s
        .dir
        .authenticate(AuthRequest {
            // A user name or the user's e-mail address.
            username: s.dir.login_name(&body.username),
            credential: core_directory::Credential::Password(body.password),
            otp: body.otp,
            service: Service::Portal,
            resource: None,
            client_ip: ip,
            session: None,
            station: None,
        })
        .await?;
    match outcome {
        AuthOutcome::Allow(grant) => {
            let token = s
                .portal_sessions
                .create_with_revision(grant.user.id.clone(), grant.user.auth_revision);
            let cookie =
                format!("{PORTAL_COOKIE}={token}; Path=/portal; HttpOnly; Secure; SameSite=Lax");
            let view = PortalSession {
                user_id: grant.user.id.clone(),
                username: grant.user.username.clone(),
                mfa_used: grant.mfa_used,
                mfa_enrolment_deadline: grant.mfa_enrolment_deadline,
                password_expires_at: grant.password_expires_at,
            };
            Ok(([(header::SET_COOKIE, cookie)], axum::Json(view)).into_response())
        }
        AuthOutcome::NeedMfa(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "mfa_required",
            "enter the verification code from your authenticator app",
        )
        .field("otp")),
        AuthOutcome::Deny(reason) => Err(denied(reason)),
    }
}

fn signed_in(s: &AppState, headers: &HeaderMap) -> ApiResult<Id> {
    session_cookie_named(headers, PORTAL_COOKIE)
        .and_then(|t| s.portal_sessions.touch_user(&t, &s.dir))
        .ok_or_else(ApiError::unauthorized)
}

/// Signing out changes state, so it takes what a cross-site form cannot send: a JSON body (its content type needs
/// a CORS preflight, which this API never grants). Anything else is refused and the session stays.
#[utoipa::path(post, path = "/logout", tag = "portal",
    responses((status = 204), (status = 403, body = ErrorBody)))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "sign out with a JSON request (Content-Type: application/json)",
        )
        .into_response();
    }
    if let Some(t) = session_cookie_named(&headers, PORTAL_COOKIE) {
        s.portal_sessions.end(&t);
    }
    let expire =
        format!("{PORTAL_COOKIE}=; Path=/portal; HttpOnly; Secure; SameSite=Lax; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, expire)]).into_response()
}

#[utoipa::path(get, path = "/me", tag = "portal", responses((status = 200, body = core_directory::views::UserView)))]
async fn me(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<core_directory::views::UserView>> {
    let id = signed_in(&s, &headers)?;
    Ok(axum::Json(s.dir.get_user(&id)?))
}

#[utoipa::path(post, path = "/password", tag = "portal", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, description = "a password rule is broken", body = ErrorBody)))]
async fn change_password(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(body): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let id = signed_in(&s, &headers)?;
    let user = s.dir.get_user(&id)?;
    // Re-check the current password through the one authentication path (counts towards lockout).
    let check = s
        .dir
        .authenticate(AuthRequest {
            username: user.username.clone(),
            credential: core_directory::Credential::Password(body.current_password),
            otp: None,
            service: Service::Portal,
            resource: None,
            client_ip: ip,
            session: None,
            station: None,
        })
        .await?;
    match check {
        AuthOutcome::Allow(_)
        | AuthOutcome::NeedMfa(_)
        | AuthOutcome::Deny(DenyReason::PasswordExpired) => {}
        AuthOutcome::Deny(reason) => return Err(denied(reason)),
    }
    let changed = s
        .dir
        .change_own_password(&id, &body.new_password, Service::Portal, ip)
        .await?;
    // This session stays signed in; the user's other sessions end with the old password.
    if let (Some(t), Some(u)) = (
        session_cookie_named(&headers, PORTAL_COOKIE),
        s.dir.snapshot().user(&changed.id),
    ) {
        s.portal_sessions.set_revision(&t, u.auth_revision);
    }
    Ok(StatusCode::NO_CONTENT)
}
