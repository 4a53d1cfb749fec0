//! `/groups`: user groups, their members and their bindings to resources.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Json};
use crate::{parse_id, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use core_directory::model::Resource;
use core_directory::views::{GroupPatch, GroupView, NewGroup};
use core_directory::{Id, Permission};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_group, list_groups))
        .routes(routes!(get_group, update_group, delete_group))
        .routes(routes!(list_members))
        .routes(routes!(add_member, remove_member))
        .routes(routes!(bind, unbind))
}

fn parse_resource(text: &str) -> Result<Resource, ApiError> {
    Resource::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown resource `{text}`: use ldap, radius:{{id}}, app:{{id}} or directory:{{id}}"
        ))
        .field("resource")
    })
}

#[utoipa::path(post, path = "/groups", tag = "groups", request_body = NewGroup,
    responses((status = 201, body = GroupView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_group(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(input): Json<NewGroup>,
) -> ApiResult<(StatusCode, axum::Json<GroupView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.dir.create_group(&actor, input).await?),
    ))
}

#[utoipa::path(get, path = "/groups", tag = "groups", responses((status = 200, body = Vec<GroupView>)))]
async fn list_groups(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<GroupView>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.list_groups()))
}

#[utoipa::path(get, path = "/groups/{id}", tag = "groups", params(("id" = String, Path)),
    responses((status = 200, body = GroupView), (status = 404, body = ErrorBody)))]
async fn get_group(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<GroupView>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.get_group(&parse_id(&id)?)?))
}

#[utoipa::path(patch, path = "/groups/{id}", tag = "groups", params(("id" = String, Path)), request_body = GroupPatch,
    responses((status = 200, body = GroupView)))]
async fn update_group(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(patch): Json<GroupPatch>,
) -> ApiResult<axum::Json<GroupView>> {
    Ok(axum::Json(
        s.dir.update_group(&actor, &parse_id(&id)?, patch).await?,
    ))
}

#[utoipa::path(delete, path = "/groups/{id}", tag = "groups", params(("id" = String, Path)), responses((status = 204)))]
async fn delete_group(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_group(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/groups/{id}/members", tag = "groups", params(("id" = String, Path)),
    responses((status = 200, description = "member user ids", body = Vec<String>)))]
async fn list_members(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<Id>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.group_members(&parse_id(&id)?)?))
}

#[utoipa::path(put, path = "/groups/{id}/members/{user_id}", tag = "groups",
    params(("id" = String, Path), ("user_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn add_member(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.dir
        .add_member(&actor, &parse_id(&id)?, &parse_id(&user)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/groups/{id}/members/{user_id}", tag = "groups",
    params(("id" = String, Path), ("user_id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_member(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.dir
        .remove_member(&actor, &parse_id(&id)?, &parse_id(&user)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/groups/{id}/bindings/{resource}", tag = "groups",
    params(("id" = String, Path), ("resource" = String, Path, description = "ldap, radius:{id}, app:{id} or directory:{id}")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn bind(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path((id, resource)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.dir
        .bind_group(&actor, &parse_id(&id)?, parse_resource(&resource)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/groups/{id}/bindings/{resource}", tag = "groups",
    params(("id" = String, Path), ("resource" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn unbind(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path((id, resource)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.dir
        .unbind_group(&actor, &parse_id(&id)?, parse_resource(&resource)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
