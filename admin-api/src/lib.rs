//! # admin-api
//!
//! The JSON admin API under `/api/v1` (axum), its OpenAPI 3.1 document, admin sessions, the user portal's
//! JSON API under `/portal/api`, and the operational
//! endpoints `/healthz`, `/readyz` and `/metrics`. It translates HTTP to calls on
//! [`core_directory::Directory`] and back, mapping core errors to statuses in one place ([`error`]). It owns no
//! rule of the directory and must not touch the store or any other listener.
//!
//! # Layout
//! - [`extract`]: JSON bodies with our error shape; the authenticated admin (API key or session cookie).
//! - [`sessions`]: the core's browser session table, re-exported.
//! - [`users`], [`groups`], [`org`], [`admins`], [`events`]: one module per resource family.
//! - [`portal`]: the user portal's login and self-service API.
//! - [`ops`]: health, readiness and Prometheus metrics.

pub mod admins;
pub mod conditional;
pub mod error;
pub mod events;
pub mod external;
pub mod extract;
pub mod groups;
pub mod mail;
pub mod ops;
pub mod org;
pub mod portal;
pub use core_directory::sessions;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use core_directory::{Directory, Id};
use error::ApiError;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Largest JSON body accepted.
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Largest CSV import accepted.
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub dir: Arc<Directory>,
    pub sessions: Arc<sessions::Sessions>,
    pub portal_sessions: Arc<sessions::Sessions>,
    pub metrics: Arc<ops::Metrics>,
}

impl AppState {
    pub fn new(dir: Arc<Directory>) -> Self {
        AppState {
            sessions: Arc::new(sessions::Sessions::for_directory("admin-api", &dir)),
            portal_sessions: Arc::new(sessions::Sessions::for_directory("portal", &dir)),
            dir,
            metrics: Arc::new(ops::Metrics::default()),
        }
    }
}

/// Parse a path id.
pub fn parse_id(text: &str) -> Result<Id, ApiError> {
    Id::parse(text)
        .ok_or_else(|| ApiError::bad_request(format!("`{text}` is not a valid id")).field("id"))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Stratus admin API", description = "Users, groups, bindings, RADIUS servers, SSO apps, policy, admins, API keys and events."),
    tags(
        (name = "users"), (name = "groups"), (name = "radius"), (name = "apps"), (name = "settings"),
        (name = "admins"), (name = "auth"), (name = "events"), (name = "portal"), (name = "mail"), (name = "directories"), (name = "policies")
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// The routers of `/api/v1` and `/portal/api`, and their OpenAPI document (paths include the prefixes).
pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let import = events::router().layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT));
    let admin = OpenApiRouter::new()
        .merge(users::router())
        .merge(mail::router())
        .merge(external::router())
        .merge(conditional::router())
        .merge(groups::router())
        .merge(org::router())
        .merge(admins::router())
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .merge(import);
    let portal = portal::router().layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", admin)
        .nest("/portal/api", portal)
        .with_state(state)
        .split_for_parts()
}

/// The whole HTTP surface of the admin side: `/api/v1/*`, `/api/v1/openapi.json`, `/portal/api/*`, `/healthz`,
/// `/readyz`, `/metrics`.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api(state.clone());
    let doc = Arc::new(doc.to_json().unwrap_or_else(|_| "{}".into()));
    let openapi = axum::routing::get(move || {
        let doc = Arc::clone(&doc);
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                (*doc).clone(),
            )
        }
    });
    api.route("/api/v1/openapi.json", openapi)
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .route("/portal/api/{*rest}", axum::routing::any(not_found))
        .merge(ops::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state,
            ops::count_requests,
        ))
}

async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    )
}
