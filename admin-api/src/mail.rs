//! `/users/{id}/activation` (send or hand over an activation link), `/mail/queue` (what waits to be sent) and
//! `/mail/test`.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Json};
use crate::{parse_id, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use core_directory::directory::ActivationSent;
use core_directory::mail::QueuedView;
use core_directory::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_activation))
        .routes(routes!(mail_queue))
        .routes(routes!(test_mail))
}

/// `{"hand_over": true}` returns the link instead of mailing it.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ActivationRequest {
    #[serde(default)]
    pub hand_over: bool,
}

#[utoipa::path(post, path = "/users/{id}/activation", tag = "users", params(("id" = String, Path)),
    request_body(content = ActivationRequest, description = "optional"),
    responses((status = 200, description = "a single-use link to set the first password: mailed to the user, or \
        returned to hand over when no mail server is configured or `hand_over` is set", body = ActivationSent),
        (status = 422, description = "the user already has a password, or is suspended", body = ErrorBody)))]
async fn send_activation(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<ActivationSent>> {
    // The body is optional: none (or `{}`) mails the link when it can.
    let hand_over = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        serde_json::from_slice::<ActivationRequest>(&body)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!("the body is not an activation request: {e}"),
                )
            })?
            .hand_over
    };
    Ok(axum::Json(
        s.dir
            .send_activation(&actor, &parse_id(&id)?, hand_over)
            .await?,
    ))
}

/// The mail queue.
#[derive(Serialize, ToSchema)]
pub struct MailQueue {
    /// A mail server is configured.
    pub enabled: bool,
    pub messages: Vec<QueuedView>,
}

#[utoipa::path(get, path = "/mail/queue", tag = "mail",
    responses((status = 200, description = "messages waiting to be sent or retried (never their text)", body = MailQueue)))]
async fn mail_queue(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<MailQueue>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(MailQueue {
        enabled: s.dir.mail_settings().enabled,
        messages: s.dir.mail_queue()?,
    }))
}

/// `{"to": "it@example.com"}`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestMail {
    pub to: String,
}

/// The queued message's id.
#[derive(Serialize, ToSchema)]
pub struct Queued {
    pub id: String,
}

#[utoipa::path(post, path = "/mail/test", tag = "mail", request_body = TestMail,
    responses((status = 202, description = "a test message is queued", body = Queued),
              (status = 422, description = "no mail server is configured, or not an address", body = ErrorBody)))]
async fn test_mail(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<TestMail>,
) -> ApiResult<(StatusCode, axum::Json<Queued>)> {
    let id = s.dir.send_test_mail(&actor, &body.to).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Queued { id: id.to_string() }),
    ))
}
