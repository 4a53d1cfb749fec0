//! `/external-directories`: Active Directory and LDAP directories Stratus manages accounts in (bind groups to
//! `directory:{id}`), the accounts there per directory, and `/users/{id}/external-accounts` per user.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Json};
use crate::{parse_id, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use core_directory::directory::{
    ExternalAccountView, ExternalDirectoryInput, ExternalDirectoryView,
};
use core_directory::Permission;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(accounts))
        .routes(routes!(user_accounts))
}

#[utoipa::path(post, path = "/external-directories", tag = "directories", request_body = ExternalDirectoryInput,
    responses((status = 201, body = ExternalDirectoryView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<ExternalDirectoryInput>,
) -> ApiResult<(StatusCode, axum::Json<ExternalDirectoryView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.dir.create_external_directory(&actor, body).await?),
    ))
}

#[utoipa::path(get, path = "/external-directories", tag = "directories",
    responses((status = 200, body = Vec<ExternalDirectoryView>)))]
async fn list(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<ExternalDirectoryView>>> {
    Ok(axum::Json(s.dir.list_external_directories(&actor)?))
}

#[utoipa::path(get, path = "/external-directories/{id}", tag = "directories", params(("id" = String, Path)),
    responses((status = 200, body = ExternalDirectoryView), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ExternalDirectoryView>> {
    Ok(axum::Json(
        s.dir.get_external_directory(&actor, &parse_id(&id)?)?,
    ))
}

#[utoipa::path(put, path = "/external-directories/{id}", tag = "directories", params(("id" = String, Path)),
    request_body = ExternalDirectoryInput,
    responses((status = 200, body = ExternalDirectoryView), (status = 422, body = ErrorBody)))]
async fn update(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(body): Json<ExternalDirectoryInput>,
) -> ApiResult<axum::Json<ExternalDirectoryView>> {
    Ok(axum::Json(
        s.dir
            .update_external_directory(&actor, &parse_id(&id)?, body)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/external-directories/{id}", tag = "directories", params(("id" = String, Path)),
    responses((status = 204), (status = 422, description = "groups are still bound to it", body = ErrorBody)))]
async fn delete(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir
        .delete_external_directory(&actor, &parse_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/external-directories/{id}/accounts", tag = "directories", params(("id" = String, Path)),
    responses((status = 200, description = "the accounts Stratus manages there, with their state and last error", body = Vec<ExternalAccountView>)))]
async fn accounts(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<ExternalAccountView>>> {
    Ok(axum::Json(
        s.dir.external_accounts_in(&actor, &parse_id(&id)?)?,
    ))
}

#[utoipa::path(get, path = "/users/{id}/external-accounts", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = Vec<ExternalAccountView>)))]
async fn user_accounts(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<ExternalAccountView>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.external_accounts_of(&parse_id(&id)?)))
}
