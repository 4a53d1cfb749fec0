//! `/access-policies` (conditional access), `/ip-lists` (the networks they name) and `/explain` (what the
//! authentication path would decide for a user, a resource, a source and a time, and why).

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Admin, Json};
use crate::{parse_id, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use core_directory::conditional::AccessPolicy;
use core_directory::directory::{AccessPolicyInput, IpListInput, IpListView};
use core_directory::explain::{ExplainQuery, Explanation};
use core_directory::model::Resource;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_policy, list_policies))
        .routes(routes!(get_policy, update_policy, delete_policy))
        .routes(routes!(create_list, list_lists))
        .routes(routes!(get_list, update_list, delete_list))
        .routes(routes!(explain))
}

#[utoipa::path(post, path = "/access-policies", tag = "policies", request_body = AccessPolicyInput,
    responses((status = 201, body = AccessPolicy), (status = 409, description = "the name is taken", body = ErrorBody),
              (status = 422, description = "a field is wrong, names something that does not exist, or the policy could match nobody", body = ErrorBody)))]
async fn create_policy(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<AccessPolicyInput>,
) -> ApiResult<(StatusCode, axum::Json<AccessPolicy>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.dir.put_access_policy(&actor, None, body).await?),
    ))
}

#[utoipa::path(get, path = "/access-policies", tag = "policies",
    responses((status = 200, description = "in evaluation order (priority, then name)", body = Vec<AccessPolicy>)))]
async fn list_policies(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<AccessPolicy>>> {
    Ok(axum::Json(s.dir.list_access_policies(&actor)?))
}

#[utoipa::path(get, path = "/access-policies/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = AccessPolicy), (status = 404, body = ErrorBody)))]
async fn get_policy(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AccessPolicy>> {
    Ok(axum::Json(
        s.dir.get_access_policy(&actor, &parse_id(&id)?)?,
    ))
}

#[utoipa::path(put, path = "/access-policies/{id}", tag = "policies", params(("id" = String, Path)),
    request_body = AccessPolicyInput,
    responses((status = 200, body = AccessPolicy), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_policy(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(body): Json<AccessPolicyInput>,
) -> ApiResult<axum::Json<AccessPolicy>> {
    Ok(axum::Json(
        s.dir
            .put_access_policy(&actor, Some(&parse_id(&id)?), body)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/access-policies/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_policy(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_access_policy(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/ip-lists", tag = "policies", request_body = IpListInput,
    responses((status = 201, body = IpListView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_list(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<IpListInput>,
) -> ApiResult<(StatusCode, axum::Json<IpListView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.dir.put_ip_list(&actor, None, body).await?),
    ))
}

#[utoipa::path(get, path = "/ip-lists", tag = "policies", responses((status = 200, body = Vec<IpListView>)))]
async fn list_lists(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<IpListView>>> {
    Ok(axum::Json(s.dir.list_ip_lists(&actor)?))
}

#[utoipa::path(get, path = "/ip-lists/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = IpListView), (status = 404, body = ErrorBody)))]
async fn get_list(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<IpListView>> {
    Ok(axum::Json(s.dir.get_ip_list(&actor, &parse_id(&id)?)?))
}

#[utoipa::path(put, path = "/ip-lists/{id}", tag = "policies", params(("id" = String, Path)),
    request_body = IpListInput,
    responses((status = 200, body = IpListView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_list(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(body): Json<IpListInput>,
) -> ApiResult<axum::Json<IpListView>> {
    Ok(axum::Json(
        s.dir
            .put_ip_list(&actor, Some(&parse_id(&id)?), body)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/ip-lists/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "a policy uses it", body = ErrorBody)))]
async fn delete_list(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_ip_list(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to explain.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// A user name, login name or e-mail address.
    pub user: String,
    /// `portal` (the default), `ldap`, `radius:{id}` or `app:{id}`.
    pub resource: Option<String>,
    /// The source address (the client's; for RADIUS, the NAS's).
    pub ip: Option<String>,
    /// When (RFC 3339); now by default.
    pub at: Option<String>,
}

#[utoipa::path(get, path = "/explain", tag = "policies", params(ExplainParams),
    responses((status = 200, description = "each step of the authentication path and the final answer", body = Explanation),
              (status = 400, description = "a parameter is malformed", body = ErrorBody)))]
async fn explain(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Query(p): Query<ExplainParams>,
) -> ApiResult<axum::Json<Explanation>> {
    let resource = match p.resource.as_deref().map(str::trim) {
        None | Some("") | Some("portal") => None,
        Some(r) => Some(Resource::parse(r).ok_or_else(|| {
            ApiError::bad_request("resource must be portal, ldap, radius:<id> or app:<id>")
                .field("resource")
        })?),
    };
    let source = match p.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(ip) => Some(ip.parse().map_err(|_| {
            ApiError::bad_request("ip must be an IPv4 or IPv6 address").field("ip")
        })?),
    };
    let at = match p.at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    ApiError::bad_request("at must be an RFC 3339 time like 2026-12-07T09:30:00Z")
                        .field("at")
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok(axum::Json(s.dir.explain(
        &actor,
        ExplainQuery {
            user: p.user,
            resource,
            source,
            at,
        },
    )?))
}
