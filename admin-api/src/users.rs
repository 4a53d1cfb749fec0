//! `/users`: create, list, read, change, delete, password set, unlock, TOTP enrolment.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Json};
use crate::{parse_id, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use core_directory::directory::UserListQuery;
use core_directory::model::UserState;
use core_directory::views::{NewUser, TotpConfirmed, TotpStart, UserPatch, UserView};
use core_directory::Permission;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password))
        .routes(routes!(unlock_user))
        .routes(routes!(start_totp, remove_totp))
        .routes(routes!(confirm_totp))
}

/// A page of users.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub users: Vec<UserView>,
}

/// Filters and paging for `GET /users`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    /// Substring of username, e-mail or name.
    pub search: Option<String>,
    pub state: Option<UserState>,
    /// Only members of this group.
    pub group: Option<String>,
    /// `true`: only users whose password is still a hash imported from another directory (re-hashed to
    /// argon2id at their next login); `false`: only the others.
    pub legacy_hash: Option<bool>,
    pub offset: Option<usize>,
    /// 1–1000, default 100.
    pub limit: Option<usize>,
}

/// `{"password": "..."}`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub password: String,
}

/// `{"code": "123456"}`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    pub code: String,
}

#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_user(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(input): Json<NewUser>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let user = s.dir.create_user(&actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

#[utoipa::path(get, path = "/users", tag = "users", params(UserFilter), responses((status = 200, body = UserPage)))]
async fn list_users(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Query(f): Query<UserFilter>,
) -> ApiResult<axum::Json<UserPage>> {
    actor.require(Permission::Read)?;
    let limit = f.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000").field("limit"));
    }
    let group = match f.group.as_deref() {
        Some(g) => Some(parse_id(g)?),
        None => None,
    };
    let q = UserListQuery {
        search: f.search,
        state: f.state,
        group,
        legacy_hash: f.legacy_hash,
        offset: f.offset.unwrap_or(0),
        limit,
    };
    let (total, users) = s.dir.list_users(&q);
    Ok(axum::Json(UserPage {
        total,
        offset: q.offset,
        limit,
        users,
    }))
}

#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
async fn get_user(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserView>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.get_user(&parse_id(&id)?)?))
}

#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UserPatch,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_user(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(patch): Json<UserPatch>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(
        s.dir.update_user(&actor, &parse_id(&id)?, patch).await?,
    ))
}

#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_user(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_user(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/users/{id}/password", tag = "users", params(("id" = String, Path)), request_body = PasswordBody,
    responses((status = 200, body = UserView), (status = 422, description = "a password rule is broken", body = ErrorBody)))]
async fn set_password(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(body): Json<PasswordBody>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(
        s.dir
            .set_password(&actor, &parse_id(&id)?, &body.password)
            .await?,
    ))
}

#[utoipa::path(post, path = "/users/{id}/unlock", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView)))]
async fn unlock_user(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(
        s.dir.unlock_user(&actor, &parse_id(&id)?).await?,
    ))
}

#[utoipa::path(post, path = "/users/{id}/mfa/totp", tag = "users", params(("id" = String, Path)),
    responses((status = 200, description = "secret and otpauth URI, shown once", body = TotpStart)))]
async fn start_totp(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<TotpStart>> {
    Ok(axum::Json(s.dir.start_totp(&actor, &parse_id(&id)?).await?))
}

#[utoipa::path(post, path = "/users/{id}/mfa/totp/confirm", tag = "users", params(("id" = String, Path)), request_body = CodeBody,
    responses((status = 200, description = "the user, and ten single-use recovery codes shown only now", body = TotpConfirmed),
              (status = 422, body = ErrorBody)))]
async fn confirm_totp(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(body): Json<CodeBody>,
) -> ApiResult<axum::Json<TotpConfirmed>> {
    Ok(axum::Json(
        s.dir
            .confirm_totp(&actor, &parse_id(&id)?, &body.code)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/users/{id}/mfa/totp", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView)))]
async fn remove_totp(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<UserView>> {
    Ok(axum::Json(
        s.dir.remove_totp(&actor, &parse_id(&id)?).await?,
    ))
}
