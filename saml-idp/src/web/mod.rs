//! The IdP's HTTP endpoints: per-app metadata, SSO (Redirect and POST), SLO, IdP-initiated launch, the login
//! pages and the user portal.
//!
//! This module owns what they share: the settings, the IdP's state (directory, browser state, loaded signing
//! keys), the router, the cookies, and the error pages for an internal failure or a refusal by the core.
//!
//! # Layout
//! - `metadata.rs`: the per-app IdP metadata document.
//! - `sp_request.rs`: what SSO and SLO check alike on an SP's request: the POST form, the signature, the limits.
//! - `sso.rs`: AuthnRequests (Redirect and POST) and IdP-initiated launch, up to the core's decision.
//! - `response.rs`: the SAML Response posted to the ACS: the assertion for a granted login, or an error status.
//! - `slo.rs`: LogoutRequests and the LogoutResponse.
//! - `login.rs`: the login transaction: password, TOTP step, and the IdP session it ends in.
//! - `new_password.rs`: replacing an expired password during a login.
//! - `portal.rs`: the user portal: apps, TOTP enrolment, password change, sign-out.

mod login;
mod metadata;
mod new_password;
mod portal;
mod response;
mod self_service;
mod slo;
mod sp_request;
mod sso;

use crate::binding;
use crate::dsig::{Alg, Signer};
use crate::pages;
use crate::sessions::{IdpSession, Lifetimes, State};
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use core_directory::model::{IdpKeyStatus, SsoApp};
use core_directory::{DenyReason, Directory, Event, Id, Service};
use login::{login_page, login_password, login_totp};
use metadata::metadata;
use new_password::login_new_password;
use portal::{portal, portal_logout, portal_password, portal_totp_confirm, portal_totp_start};
use slo::{slo_post, slo_redirect};
use sso::{launch, sso_post, sso_redirect};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The IdP session. `__Host-`: only this origin may set it (Secure, Path=/, no Domain). SameSite=None, because
/// the SP's HTTP-POST AuthnRequest is a cross-site POST that must still see the session; every state-changing
/// form of the IdP carries its own CSRF token.
pub const SESSION_COOKIE: &str = "__Host-stratus_sso";
/// Binds login transactions to one browser (Lax: only our own pages read it).
const BROWSER_COOKIE: &str = "__Host-stratus_login";

/// How the IdP is reached and how strict it is.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The public base URL, e.g. `https://sso.example.com` (no trailing slash).
    pub base_url: String,
    /// How far an AuthnRequest's IssueInstant may be from our clock.
    pub clock_skew: Duration,
    /// How long an assertion is valid.
    pub assertion_lifetime: Duration,
}

#[derive(Clone)]
struct Idp {
    dir: Arc<Directory>,
    state: Arc<State>,
    settings: Arc<Settings>,
    /// Loaded signing keys by (app, key id, algorithm): parsing a key costs more than a signature. A rotated key
    /// has a new id, so a stale entry is never used.
    signers: Arc<std::sync::Mutex<Signers>>,
}

/// Loaded signing keys by (app, key id, algorithm).
type Signers = HashMap<(Id, String, Alg), Arc<Signer>>;

/// Bound on cached signing keys (one per app in practice).
const MAX_SIGNERS: usize = 4_096;

/// The IdP's routes, to be merged into the HTTPS listener.
pub fn router(dir: Arc<Directory>, settings: Settings) -> Router {
    let mut state = State::default();
    if dir.store().is_shared() {
        state = state.shared(Arc::clone(dir.store()));
    }
    let idp = Idp {
        dir,
        state: Arc::new(state),
        settings: Arc::new(settings),
        signers: Arc::default(),
    };
    Router::new()
        .route("/saml/{app}/metadata", get(metadata))
        .route("/saml/{app}/sso", get(sso_redirect).post(sso_post))
        .route("/saml/{app}/slo", get(slo_redirect).post(slo_post))
        .route("/saml/{app}/launch", get(launch))
        .route("/login", get(login_page).post(login_password))
        .route("/login/totp", post(login_totp))
        .route("/login/password", post(login_new_password))
        .route("/login/style.css", get(style))
        .route("/login/logo", get(logo))
        .route("/portal", get(portal))
        .route("/portal/totp", post(portal_totp_start))
        .route("/portal/totp/confirm", post(portal_totp_confirm))
        .route("/portal/totp/replace", post(portal::portal_totp_replace))
        .route(
            "/portal/totp/replace/confirm",
            post(portal::portal_totp_replace_confirm),
        )
        .route("/portal/password", post(portal_password))
        .route("/portal/logout", post(portal_logout))
        .route(
            "/forgot-password",
            get(self_service::forgot_page).post(self_service::forgot_post),
        )
        .route(
            "/activate",
            get(self_service::activate_page).post(self_service::activate_post),
        )
        .route(
            "/reset-password",
            get(self_service::reset_page).post(self_service::reset_post),
        )
        .layer(DefaultBodyLimit::max(binding::MAX_MESSAGE * 2))
        .layer(axum::middleware::from_fn_with_state(idp.clone(), brand))
        .with_state(idp)
}

impl Idp {
    fn entity_id(&self, app: &Id) -> String {
        format!("{}/saml/{app}", self.settings.base_url)
    }
    fn sso_url(&self, app: &Id) -> String {
        format!("{}/saml/{app}/sso", self.settings.base_url)
    }
    fn slo_url(&self, app: &Id) -> String {
        format!("{}/saml/{app}/slo", self.settings.base_url)
    }
    /// A request's IssueInstant is at most the clock skew ahead, and at most the skew plus 5 minutes behind.
    fn timely(&self, at: chrono::DateTime<Utc>) -> bool {
        let skew = chrono::Duration::from_std(self.settings.clock_skew).unwrap_or_default();
        let now = Utc::now();
        at <= now + skew && at >= now - skew - chrono::Duration::minutes(5)
    }
    fn lifetimes(&self) -> Lifetimes {
        let (idle, absolute) = self.dir.org().map_or((30, 720), |o| {
            (o.session_idle_minutes, o.session_absolute_minutes)
        });
        Lifetimes {
            idle: Duration::from_secs(u64::from(idle) * 60),
            absolute: Duration::from_secs(u64::from(absolute) * 60),
        }
    }
    /// The browser's live session; one whose user is no longer active, is locked, or had a password set, a
    /// lock or a state change since (the user's `auth_revision` moved) ends here.
    fn session(&self, headers: &HeaderMap) -> Option<(String, IdpSession)> {
        let t = cookie(headers, SESSION_COOKIE)?;
        let s = self.state.session(&t, self.lifetimes())?;
        if !self.dir.user_session_valid(&s.user, s.revision) {
            self.state.end_session(&t);
            return None;
        }
        Some((t, s))
    }
    async fn event(
        &self,
        kind: &str,
        success: bool,
        app: Option<&Id>,
        ip: Option<IpAddr>,
        reason: &str,
    ) {
        let mut e = Event::new(Service::Sso, kind, success)
            .client(ip)
            .reason(reason);
        if let Some(a) = app {
            e = e.target("app", a);
        }
        self.dir.record(e).await;
    }
    fn signer(&self, app: &SsoApp) -> Result<Arc<Signer>, String> {
        let key = app
            .idp_keys
            .iter()
            .find(|k| k.status == IdpKeyStatus::Active)
            .ok_or("the app has no active IdP key")?;
        let alg = Alg::from_setting(&app.signature_algorithm);
        let slot = (app.id.clone(), key.id.clone(), alg);
        let cached = |m: &std::sync::Mutex<Signers>| {
            m.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&slot)
                .cloned()
        };
        if let Some(s) = cached(&self.signers) {
            return Ok(s);
        }
        let pkcs8 = self
            .dir
            .app_private_key(app, key)
            .map_err(|e| e.to_string())?;
        let der = core_directory::idp_keys::certificate_der(&key.certificate)
            .map_err(|e| e.to_string())?;
        let signer = Arc::new(Signer::new(&pkcs8, &der, alg).map_err(|e| e.to_string())?);
        let mut map = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SIGNERS {
            map.clear();
        }
        map.insert(slot, Arc::clone(&signer));
        Ok(signer)
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

fn set_cookie(r: &mut Response, name: &str, value: &str, max_age: Option<u64>) {
    let age = max_age.map_or_else(String::new, |a| format!("; Max-Age={a}"));
    let same_site = if name == SESSION_COOKIE {
        "None"
    } else {
        "Lax"
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; Secure; SameSite={same_site}{age}"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn ip(c: &ConnectInfo<SocketAddr>) -> Option<IpAddr> {
    Some(c.0.ip())
}

fn app_of(idp: &Idp, id: &str) -> Option<Arc<SsoApp>> {
    let id = Id::parse(id)?;
    idp.dir.get_app_record(&id).ok()
}

/// The pages' stylesheet, with the organisation's colour when it has one.
async fn style(axum::extract::State(idp): axum::extract::State<Idp>) -> Response {
    let mut css = pages::STYLE.to_string();
    if let Some(c) = idp.dir.org().and_then(|o| o.brand_color.clone()) {
        // Validated as #rrggbb when it was set.
        css.push_str(&format!(
            "button{{background:{c}}}a,summary{{color:{c}}}ul.apps a{{color:{c}}}"
        ));
    }
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        css,
    )
        .into_response()
}

/// The organisation's logo, when it has one. An SVG opened on its own runs no script (its own CSP).
async fn logo(axum::extract::State(idp): axum::extract::State<Idp>) -> Response {
    let Some((mime, bytes)) = idp
        .dir
        .org()
        .and_then(|o| o.logo.clone())
        .and_then(|l| core_directory::directory::decode_logo(&l))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "public, max-age=60"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Every HTML page gets the organisation's name (and logo) at the top and in its title.
async fn brand(
    axum::extract::State(idp): axum::extract::State<Idp>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let r = next.run(req).await;
    let html = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !html {
        return r;
    }
    let Some(org) = idp.dir.org() else {
        return r;
    };
    let (mut parts, body) = r.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let logo = if org.logo.is_some() {
        "<img src=\"/login/logo\" alt=\"\">"
    } else {
        ""
    };
    let name = pages::esc(&org.name);
    let text = text
        .replacen(
            "<main>",
            &format!("<main><header class=\"brand\">{logo}<span>{name}</span></header>"),
            1,
        )
        .replacen(" · Stratus</title>", &format!(" · {name}</title>"), 1);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(text))
}

/// An internal failure: logged in full, shown as a plain error page.
fn internal(detail: &str) -> Response {
    tracing::error!(error = detail, "SAML request failed");
    pages::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-in failed",
        "Something went wrong on our side. Try again, or ask your administrator.",
    )
}

fn denied_page(idp: &Idp, app: Option<&Id>, reason: DenyReason) -> Response {
    let name = app
        .and_then(|a| idp.dir.get_app_record(a).ok())
        .map_or_else(|| "this application".to_string(), |a| a.name.clone());
    match reason {
        DenyReason::NotBound => pages::error_page(
            StatusCode::FORBIDDEN,
            "No access",
            &format!("You do not have access to {name}. Ask your administrator to add you to a group that may use it."),
        ),
        DenyReason::PasswordExpired => pages::error_page(
            StatusCode::FORBIDDEN,
            "Password expired",
            "Your password has expired. Sign in again to set a new one.",
        ),
        DenyReason::PolicyDenied => pages::error_page(
            StatusCode::FORBIDDEN,
            "Access refused",
            &format!("Your organisation's access policy does not allow signing in to {name} from this network or at this time. Ask your administrator if you need it."),
        ),
        DenyReason::MfaNotEnrolled => pages::error_page(
            StatusCode::FORBIDDEN,
            "Two-factor authentication required",
            &format!("Signing in to {name} needs a verification code. Set up two-factor authentication in the user portal first."),
        ),
        DenyReason::MfaEnrolmentExpired => pages::error_page(
            StatusCode::FORBIDDEN,
            "Two-factor set-up overdue",
            "Your period to set up two-factor authentication is over. Ask your administrator to reset it.",
        ),
        _ => pages::error_page(StatusCode::FORBIDDEN, "Sign-in refused", "Your account cannot sign in right now."),
    }
}

/// A page's form, like axum's `Form`, except that a form that cannot be read (a field missing, not a form at all)
/// is answered with an error page saying so, never with the framework's plain-text rejection.
pub(super) struct PageForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for PageForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        match axum::extract::Form::<T>::from_request(req, state).await {
            Ok(axum::extract::Form(t)) => Ok(PageForm(t)),
            Err(e) => Err(pages::error_page(
                e.status(),
                "Form not accepted",
                "The form was incomplete or did not come from this site's page. Go back, reload the page and try again.",
            )),
        }
    }
}
