//! The API's one error shape, `{"error": {"code", "message", "field"?}}`, and the single mapping from core
//! errors to HTTP statuses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use core_directory::DirectoryError;
use serde::Serialize;
use utoipa::ToSchema;

/// Error details.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `invalid`, `password_policy`, `conflict`, `not_found`, `unauthorized`,
    /// `otp_required`, `forbidden`, `payload_too_large`, `unsupported_media_type`, `internal`.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `password_policy`: the rule broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Every error response body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// An API error: a status and a body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: ErrorDetail,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
                rule: None,
            },
        }
    }

    pub fn field(mut self, field: &str) -> Self {
        self.detail.field = Some(field.to_string());
        self
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required: send `Authorization: Bearer <api key>` or log in",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            DirectoryError::Conflict { field, .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()).field(field)
            }
            DirectoryError::Invalid { field, .. } => {
                let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string());
                match field {
                    Some(f) => err.field(f),
                    None => err,
                }
            }
            DirectoryError::PasswordPolicy(v) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "password_policy",
                    v.message.clone(),
                )
                .field("password");
                err.detail.rule = Some(v.rule.to_string());
                err
            }
            DirectoryError::Forbidden(_) | DirectoryError::OutOfScope(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            DirectoryError::PreconditionFailed { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                e.to_string(),
            ),
            DirectoryError::Unavailable(_) => {
                tracing::warn!(error = %e, "a change was refused: the store does not answer");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    e.to_string(),
                )
            }
            DirectoryError::Store(_)
            | DirectoryError::Internal(_)
            | DirectoryError::WrongMasterKey(_) => {
                tracing::error!(error = %e, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorBody { error: self.detail })).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
