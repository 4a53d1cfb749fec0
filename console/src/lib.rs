//! # console
//!
//! The admin console in the browser: server-rendered HTML pages under `/console` (sign-in with TOTP and the
//! one-time password change, dashboard, users, groups, CSV import, LDAP connection details, RADIUS profiles,
//! SSO apps, insights, the admin's own account) and the root `/`, which sends a browser to the console or to
//! the user portal. Pages work without JavaScript; a small script (`assets/console.js`, same origin, no inline
//! code) only adds conveniences. Every change is a call on [`core_directory::Directory`] with the signed-in
//! admin's [`Actor`], so the core's role checks apply to each one: write controls are only drawn for roles that
//! may use them, and the core refuses the write anyway.
//! one-time password change, dashboard, users, groups, CSV import, LDAP connection details, insights,
//! settings, the admin's own account) and the root `/`, which sends a browser to the console or to the user
//! portal. Pages work without JavaScript; a small script (`assets/console.js`, same origin, no inline code)
//! only adds conveniences. Every change is a call on [`core_directory::Directory`] with the signed-in admin's
//! [`Actor`], so the core's role checks apply to each one: write controls are only drawn for roles that may use
//! them, and the core refuses the write anyway.
//!
//! This crate owns the console's HTML, its session cookie and CSRF checks. It holds no directory rule, depends
//! on the core only, and must not touch the store or any other listener.
//!
//! # Layout
//! - [`html`]: escaping, page frame, form fields, security headers.
//! - [`auth`]: sign-in, TOTP step, one-time password change, sign-out, the admin's account and TOTP enrolment.
//! - [`dashboard`]: counts, listeners and authentication activity charts (SVG drawn here).
//! - [`users`], [`groups`]: lists, details, forms and actions.
//! - [`import`]: CSV import with its per-row results.
//! - [`insights`]: the event log with filters and export.
//! - [`ldap`]: the LDAP connection details.
//! - [`radius`]: RADIUS profiles, what to type into an access point, the shared secret shown once.
//! - [`apps`]: SSO apps, their SP metadata, settings, IdP keys and SCIM connector with its outbox.
//! - [`settings`]: org settings, password policy, admins, API keys, SCIM tokens and mail (the queue, a test).

pub mod apps;
pub mod auth;
pub mod dashboard;
pub mod explain;
pub mod groups;
pub mod html;
pub mod import;
pub mod insights;
pub mod ldap;
pub mod radius;
pub mod settings;
pub mod users;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use core_directory::sessions::Sessions;
use core_directory::{Actor, Directory, Id, Service};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// The console's session cookie: `__Host-` (Secure, Path=/, no Domain), SameSite=Strict, HttpOnly.
pub const COOKIE: &str = "__Host-stratus_console";
/// The user portal's session cookie (only its presence is looked at, to send `/` to the portal).
const PORTAL_COOKIE: &str = "__Host-stratus_sso";

/// Where each listener is, for the dashboard: (protocol, address).
pub type Listeners = Arc<RwLock<Vec<(String, String)>>>;

/// Shared state of the console's handlers.
#[derive(Clone)]
pub struct Console {
    pub dir: Arc<Directory>,
    pub sessions: Arc<Sessions>,
    pub pending: Arc<auth::Pending>,
    pub jobs: Arc<import::Jobs>,
    pub counts: Arc<dashboard::CountsCache>,
    pub search: Arc<users::SearchCache>,
    pub listeners: Listeners,
    /// The public base URL (for copy-ready connection details).
    pub public_base_url: String,
    /// The development CA certificate, when Stratus made its own (for LDAPS and RADIUS clients).
    pub ca_pem: Option<Arc<String>>,
}

impl Console {
    pub fn new(
        dir: Arc<Directory>,
        listeners: Listeners,
        public_base_url: String,
        ca_pem: Option<String>,
    ) -> Self {
        Console {
            sessions: Arc::new(Sessions::for_directory("console", &dir)),
            dir,
            pending: Arc::new(auth::Pending::default()),
            jobs: Arc::new(import::Jobs::default()),
            counts: Arc::new(dashboard::CountsCache::default()),
            search: Arc::new(users::SearchCache::default()),
            listeners,
            public_base_url,
            ca_pem: ca_pem.map(Arc::new),
        }
    }
}

/// The signed-in admin behind a request. Without a live session, or with one the core no longer accepts (see
/// the revocation rule), a GET is sent to the sign-in page and anything else gets 401.
pub struct SignedIn {
    pub actor: Actor,
    pub id: Id,
    token: String,
    csrf: String,
    pub must_change_password: bool,
}

impl SignedIn {
    /// The hidden CSRF field every form carries.
    pub fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"_csrf\" value=\"{}\">",
            html::esc(&self.csrf)
        )
    }

    /// The refusal of a posted form that does not carry this session's CSRF token.
    pub fn csrf_refusal(&self, c: &Console, fields: &[(String, String)]) -> Option<Response> {
        let sent = fields
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        if c.sessions.csrf_matches(&self.token, sent) {
            None
        } else {
            Some(html::bare(
                StatusCode::FORBIDDEN,
                "Form expired",
                "<h1>This form has expired</h1><p class=\"error\" role=\"alert\">The page was open too long \
                 or came from elsewhere. Go back, reload the page and try again.</p>\
                 <p><a href=\"/console\">Back to the console</a></p>",
            ))
        }
    }
}

/// The value of a cookie.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Response> {
        let refuse = |parts: &Parts| {
            if parts.method == Method::GET {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/console", |p| p.as_str());
                html::redirect(&format!("/console/login?next={}", html::q(next)))
            } else {
                html::bare(
                    StatusCode::UNAUTHORIZED,
                    "Signed out",
                    "<h1>You are signed out</h1><p><a href=\"/console/login\">Sign in again</a></p>",
                )
            }
        };
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(refuse(parts));
        };
        let Some(id) = c.sessions.touch_admin(&token, &c.dir) else {
            return Err(refuse(parts));
        };
        let Some(actor) = c.dir.admin_actor(&id, Service::Admin, client_ip(parts)) else {
            return Err(refuse(parts));
        };
        let csrf = c.sessions.csrf(&token).unwrap_or_default();
        let must_change_password = c
            .dir
            .snapshot()
            .admins
            .get(&id)
            .is_some_and(|a| a.password_must_change);
        // A one-time password is replaced before anything else.
        let path = parts.uri.path();
        if must_change_password && path != "/console/password" && path != "/console/logout" {
            return Err(html::redirect("/console/password"));
        }
        Ok(SignedIn {
            actor,
            id,
            token,
            csrf,
            must_change_password,
        })
    }
}

/// Security headers on every response; cross-site form posts refused before any handler runs.
async fn guard(req: Request, next: Next) -> Response {
    let cross_site = req.method() != Method::GET
        && req.method() != Method::HEAD
        && req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site");
    let mut r = if cross_site {
        html::bare(
            StatusCode::FORBIDDEN,
            "Refused",
            "<h1>Refused</h1><p class=\"error\" role=\"alert\">A form from another site cannot change Stratus.</p>",
        )
    } else {
        next.run(req).await
    };
    html::secure(r.headers_mut());
    r
}

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// `/`: an admin with a console session goes to the console, a browser with a portal session to the portal;
/// anyone else chooses.
async fn root(State(c): State<Console>, headers: axum::http::HeaderMap) -> Response {
    if cookie(&headers, COOKIE).is_some_and(|t| c.sessions.touch_admin(&t, &c.dir).is_some()) {
        return html::redirect("/console");
    }
    if cookie(&headers, PORTAL_COOKIE).is_some() {
        return html::redirect("/portal");
    }
    let org = c
        .dir
        .org()
        .map_or_else(|| "Stratus".to_string(), |o| o.name.clone());
    html::bare(
        StatusCode::OK,
        "Sign in",
        &format!(
            "<h1>{}</h1><p>Where do you want to go?</p><ul class=\"choices\">\
             <li><a class=\"button\" href=\"/portal\">My apps (user portal)</a></li>\
             <li><a class=\"button secondary\" href=\"/console/login\">Admin console</a></li></ul>",
            html::esc(&org)
        ),
    )
}

/// The console's routes, `/` included.
pub fn router(c: Console) -> Router {
    Router::new()
        .route("/", get(root))
        .route(
            "/console/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/login/totp", post(auth::login_totp))
        .route("/console/logout", post(auth::logout))
        .route(
            "/console/password",
            get(auth::password_page).post(auth::change_password),
        )
        .route("/console/account", get(auth::account))
        .route("/console/account/totp", post(auth::start_totp))
        .route("/console/account/totp/confirm", post(auth::confirm_totp))
        .route("/console", get(dashboard::dashboard))
        .merge(users::routes())
        .merge(groups::routes())
        .merge(import::routes())
        .merge(insights::routes())
        .merge(explain::routes())
        .merge(radius::routes())
        .merge(apps::routes())
        .merge(settings::routes())
        .route("/console/ldap", get(ldap::ldap))
        .route("/console/ldap/ca.pem", get(ldap::ca))
        .layer(axum::middleware::from_fn(guard))
        .with_state(c)
}
