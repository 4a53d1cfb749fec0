//! SCIM errors (RFC 7644 §3.12): every failure leaves as an Error message with the status as a string and, where
//! the RFC defines one, a scimType. Directory errors map to them here and nowhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use core_directory::DirectoryError;
use serde_json::json;

pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug, Clone)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(
        status: StatusCode,
        scim_type: Option<&'static str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }
}

impl From<DirectoryError> for ScimError {
    fn from(e: DirectoryError) -> Self {
        match &e {
            DirectoryError::NotFound { .. } => ScimError::not_found(e.to_string()),
            DirectoryError::Conflict { .. } => {
                ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), e.to_string())
            }
            DirectoryError::Invalid { .. } | DirectoryError::PasswordPolicy(_) => {
                ScimError::bad_request("invalidValue", e.to_string())
            }
            DirectoryError::Forbidden(_) | DirectoryError::OutOfScope(_) => {
                ScimError::new(StatusCode::FORBIDDEN, None, e.to_string())
            }
            DirectoryError::PreconditionFailed { .. } => {
                ScimError::new(StatusCode::PRECONDITION_FAILED, None, e.to_string())
            }
            DirectoryError::Unavailable(_) => {
                tracing::warn!(error = %e, "a SCIM change was refused: the store does not answer");
                ScimError::new(StatusCode::SERVICE_UNAVAILABLE, None, e.to_string())
            }
            DirectoryError::Store(_)
            | DirectoryError::Internal(_)
            | DirectoryError::WrongMasterKey(_) => {
                tracing::error!(error = %e, "SCIM request failed inside the directory");
                ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error")
            }
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({"schemas": [ERROR_SCHEMA], "status": self.status.as_u16().to_string(),
                              "detail": self.detail});
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"stratus-scim\""),
            );
        }
        r
    }
}
