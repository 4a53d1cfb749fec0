//! Request extractors: JSON bodies with our error shape, and the authenticated admin behind a request.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use core_directory::{Actor, Id, Service};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// A JSON body; malformed JSON, unknown fields and oversized bodies become our error shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            // serde's message names the field and the problem ("unknown field `x`", "missing field `y`").
            e.body_text().replace(
                "Failed to deserialize the JSON body into the target type: ",
                "",
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is too large",
            )
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// The client's address, when the server knows it.
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// Name of the admin session cookie.
pub const SESSION_COOKIE: &str = "stratus_session";

/// The client's address as an extractor (never fails).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// The admin session token in the request's cookies.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    session_cookie_named(headers, SESSION_COOKIE)
}

/// The value of a cookie.
pub fn session_cookie_named(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The admin making a request: by API key (`Authorization: Bearer`) or session cookie.
pub struct Admin(pub Actor);

impl Admin {
    pub fn id(&self) -> Option<&Id> {
        self.0.admin_id.as_ref()
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts);
        if let Some(auth) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(ApiError::unauthorized)?;
            return state
                .dir
                .resolve_api_key(token, Service::Admin, ip)
                .map(Admin)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "the API key is not valid",
                    )
                });
        }
        if let Some(token) = session_cookie(&parts.headers) {
            if let Some(admin_id) = state.sessions.touch_admin(&token, &state.dir) {
                // Cookie-authenticated writes must come from our own pages or API clients, not cross-site forms.
                let safe = parts.method.is_safe();
                let json = parts
                    .headers
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| {
                        v.starts_with("application/json") || v.starts_with("text/csv")
                    });
                let marked = parts.headers.contains_key("x-stratus-request");
                if !safe && !json && !marked {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "cookie-authenticated writes need a JSON body or the X-Stratus-Request header",
                    ));
                }
                if let Some(actor) = state.dir.admin_actor(&admin_id, Service::Admin, ip) {
                    return Ok(Admin(actor));
                }
            }
        }
        Err(ApiError::unauthorized())
    }
}
