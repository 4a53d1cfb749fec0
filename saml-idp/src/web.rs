//! The IdP's HTTP endpoints: per-app metadata, SSO (Redirect and POST), SLO, IdP-initiated launch, the login
//! pages and the user portal.
//!
//! Until an AuthnRequest's issuer and ACS URL are known to belong to the app, a bad request gets an error page
//! (there is nowhere safe to send a SAML answer); after that, refusals go back to the SP as a SAML status.

use crate::binding::{self, Incoming};
use crate::dsig::{self, Alg, Signer};
use crate::pages;
use crate::protocol::{self as p, AssertionFacts, SamlError};
use crate::sessions::{IdpSession, Lifetimes, Login, PendingSso, SpSession, Stage, State};
use crate::xml::{self, Element, Limits};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, Path, Query, RawQuery, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use core_directory::model::{IdpKeyStatus, NameIdFormat, Resource, SignTarget, SsoApp};
use core_directory::{
    AuthGrant, AuthOutcome, AuthRequest, Credential, DenyReason, Directory, Event, Id, Service,
};
use serde::Deserialize;
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
const STALE: &str = "the request's IssueInstant is too far from the current time";
/// The SAML bindings ask SPs for at most 80 bytes; real SPs send URLs, so Stratus takes up to this much.
const MAX_RELAY_STATE: usize = 1024;

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
    let idp = Idp {
        dir,
        state: Arc::new(State::default()),
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
        .route("/portal", get(portal))
        .route("/portal/totp", post(portal_totp_start))
        .route("/portal/totp/confirm", post(portal_totp_confirm))
        .route("/portal/password", post(portal_password))
        .route("/portal/logout", post(portal_logout))
        .layer(DefaultBodyLimit::max(binding::MAX_MESSAGE * 2))
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

fn sp_keys(app: &SsoApp) -> Vec<Vec<u8>> {
    app.sp_certificate
        .as_deref()
        .and_then(|c| core_directory::idp_keys::inspect_certificate(c).ok())
        .map(|i| vec![i.rsa_public_key])
        .unwrap_or_default()
}

fn app_of(idp: &Idp, id: &str) -> Option<Arc<SsoApp>> {
    let id = Id::parse(id)?;
    idp.dir.get_app_record(&id).ok()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::STYLE,
    )
        .into_response()
}

// ---------------------------------------------------------------- metadata

async fn metadata(AxState(idp): AxState<Idp>, Path(app): Path<String>) -> Response {
    let Some(app) = app_of(&idp, &app) else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application.",
        );
    };
    let certificates = app
        .idp_keys
        .iter()
        .filter_map(|k| core_directory::idp_keys::certificate_der(&k.certificate).ok())
        .map(|d| data_encoding::BASE64.encode(&d))
        .collect();
    let md = p::idp_metadata(&p::IdpMetadata {
        entity_id: &idp.entity_id(&app.id),
        sso_url: &idp.sso_url(&app.id),
        slo_url: &idp.slo_url(&app.id),
        certificates,
        want_requests_signed: app.require_signed_requests,
    });
    (
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            xml::to_string(&md)
        ),
    )
        .into_response()
}

// ---------------------------------------------------------------- SSO

#[derive(Deserialize)]
struct PostMessage {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn sso_redirect(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
) -> Response {
    let msg = binding::from_redirect(q.as_deref().unwrap_or(""), "SAMLRequest");
    sso(idp, app, msg, headers, ip(&c)).await
}

async fn sso_post(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    form: PostedForm,
) -> Response {
    sso(idp, app, posted(form), headers, ip(&c)).await
}

type PostedForm = Result<Form<PostMessage>, axum::extract::rejection::FormRejection>;

/// A POST-binding request from its form (a form that could not be read says why).
fn posted(form: PostedForm) -> Result<Incoming, binding::BindingError> {
    match form {
        Ok(Form(f)) => binding::from_post(
            f.saml_request.as_deref(),
            f.relay_state.as_deref(),
            "SAMLRequest",
        ),
        Err(e) => Err(binding::BindingError::Form(e.body_text())),
    }
}

/// What a request's signature came to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Signature {
    None,
    /// Signed, but the app has no SP certificate to check it with (proves nothing).
    Unchecked,
    Verified,
}

/// Check a signed or unsigned request's signature against the app's rules.
fn check_signature(app: &SsoApp, root: &Element, msg: &Incoming) -> Result<Signature, String> {
    if msg.detached.is_none() && !dsig::is_signed(root) {
        return if app.require_signed_requests {
            Err("the app requires signed requests and this one is not signed".into())
        } else {
            Ok(Signature::None)
        };
    }
    let keys = sp_keys(app);
    if keys.is_empty() {
        // Refused only when signing is required.
        return if app.require_signed_requests {
            Err("the app has no SP certificate to check the signature with".into())
        } else {
            Ok(Signature::Unchecked)
        };
    }
    let sha1 = app.signature_algorithm == "rsa-sha1";
    match &msg.detached {
        Some(d) => d.verify(&keys, sha1),
        None => dsig::verify_enveloped(root, &keys, sha1),
    }
    .map(|()| Signature::Verified)
    .map_err(|e| e.to_string())
}

async fn sso(
    idp: Idp,
    app_id: String,
    msg: Result<Incoming, binding::BindingError>,
    headers: HeaderMap,
    ip: Option<IpAddr>,
) -> Response {
    let Some(app) = app_of(&idp, &app_id) else {
        idp.event("sso_request", false, None, ip, "unknown application")
            .await;
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application.",
        );
    };
    let refuse = |reason: String| {
        let idp = idp.clone();
        let app = Arc::clone(&app);
        async move {
            idp.event("sso_request", false, Some(&app.id), ip, &reason)
                .await;
            pages::error_page(StatusCode::BAD_REQUEST, "Sign-in request refused", &reason)
        }
    };
    let msg = match msg {
        Ok(m) => m,
        Err(e) => return refuse(e.to_string()).await,
    };
    let root = match xml::parse(&msg.xml, Limits::default()) {
        Ok(r) => r,
        Err(e) => return refuse(e.to_string()).await,
    };
    let req = match p::read_authn_request(&root) {
        Ok(r) => r,
        Err(e) => return refuse(e.message).await,
    };
    if req.issuer != app.sp_entity_id {
        return refuse("the request's issuer is not this application's SP entity id".to_string())
            .await;
    }
    let signature = match check_signature(&app, &root, &msg) {
        Ok(s) => s,
        Err(e) => return refuse(e).await,
    };
    if signature != Signature::None && req.destination.is_none() {
        // The bindings require Destination on signed messages, so the signature pins the endpoint.
        return refuse("a signed request must name its Destination".into()).await;
    }
    let acs = match (&req.acs_url, req.acs_index) {
        (Some(u), _) => app.acs_urls.iter().find(|a| *a == u).cloned(),
        (None, Some(i)) => {
            if app.acs_indexes.len() == app.acs_urls.len() {
                app.acs_indexes
                    .iter()
                    .position(|x| usize::try_from(*x).is_ok_and(|x| x == i))
                    .and_then(|p| app.acs_urls.get(p).cloned())
            } else {
                app.acs_urls.get(i).cloned()
            }
        }
        (None, None) => app.acs_urls.first().cloned(),
    };
    let Some(acs) = acs else {
        return refuse(
            "the AssertionConsumerServiceURL is not registered for this application".into(),
        )
        .await;
    };
    if let Some(d) = &req.destination {
        if *d != idp.sso_url(&app.id) {
            return refuse("the request's Destination is not this SSO endpoint".into()).await;
        }
    }
    if !idp.timely(req.issue_instant) {
        return refuse(STALE.into()).await;
    }
    let window = idp.settings.clock_skew * 2 + Duration::from_secs(600);
    if !idp.state.first_sighting(&app.id, &req.id, window) {
        return refuse("this request was already used (replayed request ID)".into()).await;
    }
    let relay = msg.relay_state.clone();
    if relay
        .as_deref()
        .is_some_and(|r| r.len() > MAX_RELAY_STATE || r.chars().any(char::is_control))
    {
        return refuse(format!(
            "the RelayState is longer than {MAX_RELAY_STATE} bytes or holds control characters"
        ))
        .await;
    }
    // An app set to an opaque NameID (persistent or transient) does not hand out e-mail addresses because the
    // SP asked for them.
    let opaque = matches!(
        app.nameid_format,
        NameIdFormat::Persistent | NameIdFormat::Transient
    );
    let nameid_format = match req.nameid_format.as_deref() {
        None | Some(p::NAMEID_UNSPECIFIED) => None,
        Some(p::NAMEID_EMAIL) if !opaque => Some(p::NAMEID_EMAIL),
        Some(p::NAMEID_PERSISTENT) => Some(p::NAMEID_PERSISTENT),
        Some(p::NAMEID_TRANSIENT) => Some(p::NAMEID_TRANSIENT),
        Some(_) => {
            idp.event(
                "sso_request",
                false,
                Some(&app.id),
                ip,
                "unsupported NameIDPolicy format",
            )
            .await;
            return saml_error(
                &idp,
                &app,
                &acs,
                Some(&req.id),
                relay.as_deref(),
                SamlError {
                    status: p::STATUS_INVALID_NAMEID_POLICY,
                    message: "the requested NameID format is not supported".into(),
                },
            );
        }
    };
    let pending = PendingSso {
        app: app.id.clone(),
        request_id: Some(req.id.clone()),
        acs_url: acs.clone(),
        relay_state: relay.clone(),
        nameid_format,
        is_passive: req.is_passive,
    };
    let session = idp.session(&headers);
    match session {
        Some((t, s)) if !req.force_authn => continue_sso(&idp, &t, &s, pending, &headers, ip).await,
        _ if req.is_passive => {
            idp.event(
                "sso_request",
                false,
                Some(&app.id),
                ip,
                "IsPassive and no session",
            )
            .await;
            saml_error(
                &idp,
                &app,
                &acs,
                Some(&req.id),
                relay.as_deref(),
                SamlError {
                    status: p::STATUS_NO_PASSIVE,
                    message: "the user is not signed in".into(),
                },
            )
        }
        _ => start_login(&idp, Some(pending), &headers, None),
    }
}

/// Send the browser to the login page with a new login transaction.
fn start_login(
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

/// A signed-in browser reaching an app: the core decides, then the assertion goes out.
async fn continue_sso(
    idp: &Idp,
    token: &str,
    s: &IdpSession,
    pending: PendingSso,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> Response {
    let outcome = idp
        .dir
        .authorize_session(
            &s.user,
            s.mfa,
            Service::Sso,
            Some(Resource::App(pending.app.clone())),
            ip,
        )
        .await;
    match outcome {
        Ok(AuthOutcome::Allow(grant)) => deliver(idp, token, s, &grant, &pending).await,
        Ok(AuthOutcome::NeedMfa(_)) if pending.is_passive => passive_refusal(
            idp,
            &pending,
            p::STATUS_NO_PASSIVE,
            "a verification code is needed",
        ),
        Ok(AuthOutcome::NeedMfa(ch)) => start_login(
            idp,
            Some(pending),
            headers,
            Some((Stage::Totp(ch), s.user.clone())),
        ),
        Ok(AuthOutcome::Deny(reason)) => {
            if !matches!(reason, DenyReason::NotBound | DenyReason::UnknownResource) {
                // The session is no good for anything now (suspended, locked, expired password, …).
                idp.state.end_session(token);
            }
            if pending.is_passive {
                return passive_refusal(idp, &pending, p::STATUS_REQUEST_DENIED, "access refused");
            }
            if reason == DenyReason::PasswordExpired {
                // Through the login page, which leads to the new-password form.
                return start_login(idp, Some(pending), headers, None);
            }
            denied_page(idp, Some(&pending.app), reason)
        }
        Err(e) => internal(&e.to_string()),
    }
}

/// An IsPassive request that cannot be answered with an assertion: a SAML status back to the SP.
fn passive_refusal(
    idp: &Idp,
    pending: &PendingSso,
    status: &'static str,
    message: &str,
) -> Response {
    match idp.dir.get_app_record(&pending.app) {
        Ok(app) => saml_error(
            idp,
            &app,
            &pending.acs_url,
            pending.request_id.as_deref(),
            pending.relay_state.as_deref(),
            SamlError {
                status,
                message: message.into(),
            },
        ),
        Err(_) => pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "The application was removed.",
        ),
    }
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
        DenyReason::MfaEnrolmentExpired => pages::error_page(
            StatusCode::FORBIDDEN,
            "Two-factor set-up overdue",
            "Your period to set up two-factor authentication is over. Ask your administrator to reset it.",
        ),
        _ => pages::error_page(StatusCode::FORBIDDEN, "Sign-in refused", "Your account cannot sign in right now."),
    }
}

fn nameid(app: &SsoApp, grant: &AuthGrant, format: Option<&'static str>) -> (&'static str, String) {
    let format = format.unwrap_or(match app.nameid_format {
        NameIdFormat::Email => p::NAMEID_EMAIL,
        NameIdFormat::Persistent => p::NAMEID_PERSISTENT,
        NameIdFormat::Unspecified => p::NAMEID_UNSPECIFIED,
        NameIdFormat::Transient => p::NAMEID_TRANSIENT,
    });
    let u = &grant.user;
    let value = match format {
        p::NAMEID_EMAIL => u.email.clone(),
        p::NAMEID_PERSISTENT => {
            let d = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                format!("{}:{}:{}", app.nameid_salt, app.id, u.id).as_bytes(),
            );
            data_encoding::BASE64URL_NOPAD.encode(d.as_ref())
        }
        p::NAMEID_TRANSIENT => p::new_id(),
        _ => u.username.clone(),
    };
    (format, value)
}

fn attributes(idp: &Idp, app: &SsoApp, grant: &AuthGrant) -> Vec<(String, Vec<String>)> {
    let snap = idp.dir.snapshot();
    let u = &grant.user;
    let custom = snap.effective_attributes(u);
    app.attributes
        .iter()
        .filter_map(|m| {
            let values = match m.source.as_str() {
                "email" => vec![u.email.clone()],
                "firstname" => vec![u.firstname.clone()],
                "lastname" => vec![u.lastname.clone()],
                "username" => vec![u.username.clone()],
                "groups" => {
                    let mut g: Vec<String> =
                        snap.groups_of(&u.id).map(|g| g.name.clone()).collect();
                    g.sort();
                    g
                }
                other => match other.strip_prefix("attribute:").and_then(|n| custom.get(n)) {
                    Some(v) => vec![v.clone()],
                    None => return None,
                },
            };
            Some((m.name.clone(), values))
        })
        .collect()
}

/// Build, sign and post the Response for a granted login.
async fn deliver(
    idp: &Idp,
    token: &str,
    s: &IdpSession,
    grant: &AuthGrant,
    pending: &PendingSso,
) -> Response {
    let Ok(app) = idp.dir.get_app_record(&pending.app) else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "The application was removed.",
        );
    };
    let signer = match idp.signer(&app) {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    let (format, value) = nameid(&app, grant, pending.nameid_format);
    let now = Utc::now();
    let facts = AssertionFacts {
        idp_entity_id: idp.entity_id(&app.id),
        sp_entity_id: app.sp_entity_id.clone(),
        acs_url: pending.acs_url.clone(),
        in_response_to: pending.request_id.clone(),
        nameid_format: format,
        nameid: value.clone(),
        session_index: s.index.clone(),
        authn_instant: s.authn_instant,
        session_not_on_or_after: Some(State::session_deadline(s, idp.lifetimes())),
        mfa: s.mfa || grant.mfa_used,
        attributes: attributes(idp, &app, grant),
        now,
        lifetime: chrono::Duration::from_std(idp.settings.assertion_lifetime).unwrap_or_default(),
    };
    let mut assertion = p::assertion(&facts);
    if matches!(app.sign, SignTarget::Assertion | SignTarget::Both) {
        signer.sign_enveloped(&mut assertion, 1);
    }
    let body = if app.encrypt_assertion {
        match app
            .sp_encryption_certificate
            .as_deref()
            .or(app.sp_certificate.as_deref())
            .map(|c| crate::encrypt::encrypt_assertion(&assertion, c))
        {
            Some(Ok(e)) => e,
            Some(Err(e)) => return internal(&e),
            None => {
                return pages::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    "the app wants encrypted assertions but has no SP certificate",
                )
            }
        }
    } else {
        assertion
    };
    let mut response = p::response(
        &facts.idp_entity_id,
        &pending.acs_url,
        pending.request_id.as_deref(),
        p::STATUS_SUCCESS,
        None,
        now,
        Some(body),
    );
    if matches!(app.sign, SignTarget::Response | SignTarget::Both) {
        signer.sign_enveloped(&mut response, 1);
    }
    idp.dir
        .record(
            Event::new(Service::Sso, "sso_assertion", true)
                .user(grant.user.username.clone())
                .target("app", &app.id)
                .detail("acs", pending.acs_url.clone())
                .detail("nameid_format", format)
                .detail("session_index", s.index.clone())
                .detail("solicited", pending.request_id.is_some())
                .detail("mfa", facts.mfa),
        )
        .await;
    idp.state.add_app(
        token,
        SpSession {
            app: app.id.clone(),
            nameid: value,
        },
    );
    let relay = pending.relay_state.clone().or_else(|| {
        pending
            .request_id
            .is_none()
            .then(|| app.default_relay_state.clone())
            .flatten()
    });
    let encoded = data_encoding::BASE64.encode(xml::to_string(&response).as_bytes());
    pages::post_form(&pending.acs_url, "SAMLResponse", &encoded, relay.as_deref())
}

/// A SAML error status posted back to a validated ACS URL.
fn saml_error(
    idp: &Idp,
    app: &SsoApp,
    acs: &str,
    in_response_to: Option<&str>,
    relay: Option<&str>,
    e: SamlError,
) -> Response {
    let mut r = p::response(
        &idp.entity_id(&app.id),
        acs,
        in_response_to,
        e.status,
        Some(&e.message),
        Utc::now(),
        None,
    );
    if let Ok(signer) = idp.signer(app) {
        signer.sign_enveloped(&mut r, 1);
    }
    let encoded = data_encoding::BASE64.encode(xml::to_string(&r).as_bytes());
    pages::post_form(acs, "SAMLResponse", &encoded, relay)
}

// ---------------------------------------------------------------- IdP-initiated

async fn launch(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
) -> Response {
    let Some(app) = app_of(&idp, &app).filter(|a| a.idp_initiated) else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application to launch.",
        );
    };
    let Some(acs) = app.acs_urls.first().cloned() else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "The application has no ACS URL.",
        );
    };
    let pending = PendingSso {
        app: app.id.clone(),
        request_id: None,
        acs_url: acs,
        relay_state: app.default_relay_state.clone(),
        nameid_format: None,
        is_passive: false,
    };
    match idp.session(&headers) {
        Some((t, s)) => continue_sso(&idp, &t, &s, pending, &headers, ip(&c)).await,
        None => start_login(&idp, Some(pending), &headers, None),
    }
}

// ---------------------------------------------------------------- SLO

async fn slo_redirect(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
) -> Response {
    let msg = binding::from_redirect(q.as_deref().unwrap_or(""), "SAMLRequest");
    slo(idp, app, msg, headers, ip(&c)).await
}

async fn slo_post(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    form: PostedForm,
) -> Response {
    if let Ok(Form(f)) = &form {
        if f.saml_response.is_some() && f.saml_request.is_none() {
            // A LogoutResponse to a logout Stratus never starts: nothing to do.
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "Unexpected message",
                "Stratus did not ask for this logout response.",
            );
        }
    }
    let msg = posted(form);
    slo(idp, app, msg, headers, ip(&c)).await
}

async fn slo(
    idp: Idp,
    app_id: String,
    msg: Result<Incoming, binding::BindingError>,
    headers: HeaderMap,
    ip: Option<IpAddr>,
) -> Response {
    let Some(app) = app_of(&idp, &app_id) else {
        idp.event("sso_logout", false, None, ip, "unknown application")
            .await;
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application.",
        );
    };
    let checked = (|| {
        let msg = msg.map_err(|e| e.to_string())?;
        let root = xml::parse(&msg.xml, Limits::default()).map_err(|e| e.to_string())?;
        let req = p::read_logout_request(&root).map_err(|e| e.message)?;
        if req.issuer != app.sp_entity_id {
            return Err("the request's issuer is not this application's SP entity id".to_string());
        }
        let signed = check_signature(&app, &root, &msg)? == Signature::Verified;
        if !idp.timely(req.issue_instant) {
            return Err(STALE.into());
        }
        match &req.destination {
            Some(d) if *d != idp.slo_url(&app.id) => {
                return Err("the request's Destination is not this SLO endpoint".into())
            }
            None if signed => return Err("a signed request must name its Destination".into()),
            _ => {}
        }
        if msg
            .relay_state
            .as_deref()
            .is_some_and(|r| r.len() > MAX_RELAY_STATE || r.chars().any(char::is_control))
        {
            return Err("the RelayState is too long or holds control characters".into());
        }
        Ok((req, msg.relay_state, signed))
    })();
    let (req, relay, signed) = match checked {
        Ok(v) => v,
        Err(reason) => {
            idp.event("sso_logout", false, Some(&app.id), ip, &reason)
                .await;
            return pages::error_page(StatusCode::BAD_REQUEST, "Logout request refused", &reason);
        }
    };
    // The browser's own session ends on any valid request. Other sessions of that NameID (and SessionIndex)
    // end only on a verified signature: an unsigned request could name anyone.
    let mut ended = 0;
    if let Some((t, s)) = idp.session(&headers) {
        if s.apps
            .iter()
            .any(|a| a.app == app.id && a.nameid == req.name_id)
        {
            idp.state.end_session(&t);
            ended += 1;
        }
    }
    if signed {
        ended += idp
            .state
            .end_matching(&app.id, &req.name_id, &req.session_indexes);
    }
    idp.event(
        "sso_logout",
        true,
        Some(&app.id),
        ip,
        &format!("{ended} IdP session(s) ended"),
    )
    .await;
    let Some(dest) = app.sp_slo_url.clone() else {
        let mut r = pages::info_page("Signed out", "You are signed out.");
        set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
        return r;
    };
    let mut lr = p::logout_response(
        &idp.entity_id(&app.id),
        &dest,
        &req.id,
        p::STATUS_SUCCESS,
        Utc::now(),
    );
    let signer = match idp.signer(&app) {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    let mut r = if app.sp_slo_post {
        signer.sign_enveloped(&mut lr, 1);
        let encoded = data_encoding::BASE64.encode(xml::to_string(&lr).as_bytes());
        pages::post_form(&dest, "SAMLResponse", &encoded, relay.as_deref())
    } else {
        let encoded = binding::deflate_b64(&xml::to_string(&lr));
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("SAMLResponse", &encoded);
        if let Some(r) = &relay {
            query.append_pair("RelayState", r);
        }
        query.append_pair("SigAlg", signer.alg.uri());
        let mut url_query = query.finish();
        let sig = data_encoding::BASE64.encode(&signer.sign_bytes(url_query.as_bytes()));
        let sig: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        url_query.push_str(&format!("&Signature={sig}"));
        let sep = if dest.contains('?') { '&' } else { '?' };
        Redirect::to(&format!("{dest}{sep}{url_query}")).into_response()
    };
    set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
    r
}

// ---------------------------------------------------------------- login pages

#[derive(Deserialize)]
struct LoginQuery {
    login: Option<String>,
}

fn app_name(idp: &Idp, login: &Login) -> Option<String> {
    login
        .sso
        .as_ref()
        .and_then(|s| idp.dir.get_app_record(&s.app).ok())
        .map(|a| a.name.clone())
}

fn render_stage(idp: &Idp, id: &str, login: &Login, error: Option<&str>) -> Response {
    match &login.stage {
        Stage::Password => pages::login_form(
            id,
            &login.csrf,
            app_name(idp, login).as_deref(),
            &login.username,
            error,
        ),
        Stage::Totp(_) => pages::totp_form(id, &login.csrf, error),
        Stage::NewPassword { .. } => pages::new_password_form(id, &login.csrf, error),
    }
}

async fn login_page(
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
fn posted_login(idp: &Idp, headers: &HeaderMap, id: &str, csrf: &str) -> Option<Login> {
    let browser = cookie(headers, BROWSER_COOKIE)?;
    let login = idp.state.login(id)?;
    (login.bound_to(&browser)
        && core_directory::crypto::constant_time_eq(login.csrf.as_bytes(), csrf.as_bytes()))
    .then_some(login)
}

fn expired_login() -> Response {
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
struct PasswordForm {
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

async fn login_password(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    Form(f): Form<PasswordForm>,
) -> Response {
    let Some(mut login) = posted_login(&idp, &headers, &f.login, &f.csrf) else {
        return expired_login();
    };
    if !matches!(login.stage, Stage::Password) {
        return render_stage(&idp, &f.login, &login, None);
    }
    login.username = f.username.chars().take(256).collect();
    let resource = login.sso.as_ref().map(|s| Resource::App(s.app.clone()));
    let outcome = idp
        .dir
        .authenticate(AuthRequest {
            username: f.username.clone(),
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
                .user_by_username(&f.username)
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
                    username: f.username.clone(),
                    service: Service::Portal,
                    resource: None,
                    session: None,
                    issued_at: Utc::now(),
                })
            } else {
                Stage::NewPassword { user }
            };
            idp.state.update_login(&f.login, login.clone());
            render_stage(&idp, &f.login, &login, None)
        }
        Ok(AuthOutcome::Deny(
            reason @ (DenyReason::NotBound | DenyReason::MfaEnrolmentExpired),
        )) => {
            idp.state.end_login(&f.login);
            denied_page(&idp, login.sso.as_ref().map(|s| &s.app), reason)
        }
        Ok(AuthOutcome::Deny(_)) => {
            login.attempts += 1;
            if login.attempts >= crate::sessions::LOGIN_ATTEMPTS {
                idp.state.end_login(&f.login);
                return expired_login();
            }
            idp.state.update_login(&f.login, login.clone());
            render_stage(&idp, &f.login, &login, Some("Wrong username or password."))
        }
        Err(e) => internal(&e.to_string()),
    }
}

#[derive(Deserialize)]
struct TotpForm {
    login: String,
    csrf: String,
    code: String,
}

async fn login_totp(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    Form(f): Form<TotpForm>,
) -> Response {
    let Some(mut login) = posted_login(&idp, &headers, &f.login, &f.csrf) else {
        return expired_login();
    };
    let Stage::Totp(ch) = &login.stage else {
        return render_stage(&idp, &f.login, &login, None);
    };
    let code: String = f
        .code
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(16)
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

#[derive(Deserialize)]
struct NewPasswordForm {
    login: String,
    csrf: String,
    new_password: String,
    confirm: String,
}

async fn login_new_password(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    Form(f): Form<NewPasswordForm>,
) -> Response {
    let Some(mut login) = posted_login(&idp, &headers, &f.login, &f.csrf) else {
        return expired_login();
    };
    let Stage::NewPassword { user } = login.stage.clone() else {
        return render_stage(&idp, &f.login, &login, None);
    };
    if f.new_password != f.confirm {
        return render_stage(&idp, &f.login, &login, Some("The two passwords differ."));
    }
    match idp
        .dir
        .change_own_password(&user, &f.new_password, Service::Portal, ip(&c))
        .await
    {
        Ok(_) => {
            login.stage = Stage::Password;
            idp.state.update_login(&f.login, login.clone());
            pages::login_after_new_password(
                &f.login,
                &login.csrf,
                app_name(&idp, &login).as_deref(),
                &login.username,
            )
        }
        Err(e) => render_stage(&idp, &f.login, &login, Some(&e.to_string())),
    }
}

// ---------------------------------------------------------------- portal

#[derive(Deserialize)]
struct CsrfForm {
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
    })
}

async fn portal(AxState(idp): AxState<Idp>, headers: HeaderMap) -> Response {
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

async fn portal_totp_start(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    Form(f): Form<CsrfForm>,
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

async fn portal_totp_confirm(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    Form(f): Form<CsrfForm>,
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
        Ok(_) => {
            idp.state.set_mfa(&t);
            portal_view(
                &idp,
                &s,
                None,
                Some((
                    true,
                    "TOTP is set up. You will be asked for a code when you sign in.".into(),
                )),
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

async fn portal_password(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    Form(f): Form<CsrfForm>,
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

async fn portal_logout(
    AxState(idp): AxState<Idp>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some((t, s)) = portal_post(&idp, &headers, &f.csrf) {
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
