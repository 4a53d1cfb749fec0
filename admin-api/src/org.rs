//! RADIUS server profiles, SSO app records, org settings and the password policy.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Admin, Json};
use crate::{parse_id, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use core_directory::directory::{ScimConnectorInput, ScimConnectorView};
use core_directory::model::{OrgSettings, PasswordPolicy};
use core_directory::radius_sessions::{RadiusSession, SessionQuery};
use core_directory::views::{
    AppPatch, AppView, NewApp, NewIdpKey, NewRadiusServer, OrgPatch, RadiusServerPatch,
    RadiusServerView,
};
use core_directory::{DirectoryError, Permission};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_radius, list_radius))
        .routes(routes!(get_radius, update_radius, delete_radius))
        .routes(routes!(list_radius_sessions))
        .routes(routes!(create_app, list_apps))
        .routes(routes!(get_app, update_app, delete_app))
        .routes(routes!(get_connector, put_connector, delete_connector))
        .routes(routes!(add_app_key))
        .routes(routes!(activate_app_key))
        .routes(routes!(delete_app_key))
        .routes(routes!(put_sp_metadata))
        .routes(routes!(get_policy, put_policy))
        .routes(routes!(get_org, patch_org))
        .routes(routes!(backup))
}

/// An online backup of the whole directory as a redb file (`stratus backup FILE`; `stratus restore` brings it
/// back). Writes go on while it is made. The checksum of its records is in `X-Stratus-Checksum`.
#[utoipa::path(post, path = "/backup", tag = "settings",
    responses((status = 200, description = "the backup, a redb store file", content_type = "application/octet-stream"),
              (status = 403, body = ErrorBody)))]
async fn backup(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let tmp = tempfile::tempdir().map_err(|e| DirectoryError::Internal(e.to_string()))?;
    let path = tmp.path().join("backup.redb");
    let report = s.dir.backup_to(&actor, path.clone()).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| DirectoryError::Internal(e.to_string()))?;
    // The directory can go as soon as the file is open: the open handle keeps the data readable.
    drop(tmp);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_string(),
            ),
            (
                axum::http::header::HeaderName::from_static("x-stratus-checksum"),
                report.checksum,
            ),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(post, path = "/radius-servers", tag = "radius", request_body = NewRadiusServer,
    responses((status = 201, body = RadiusServerView), (status = 422, body = ErrorBody)))]
async fn create_radius(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(input): Json<NewRadiusServer>,
) -> ApiResult<(StatusCode, axum::Json<RadiusServerView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.dir.create_radius_server(&actor, input).await?),
    ))
}

#[utoipa::path(get, path = "/radius-servers", tag = "radius", responses((status = 200, body = Vec<RadiusServerView>)))]
async fn list_radius(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<RadiusServerView>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.list_radius_servers()))
}

/// Which open RADIUS sessions to list.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RadiusSessionFilter {
    /// A user id or username.
    pub user: Option<String>,
    /// A RADIUS server profile id.
    pub profile: Option<String>,
}

/// Open RADIUS accounting sessions (Start or Interim-Update seen, no Stop yet), oldest first.
#[utoipa::path(get, path = "/radius-sessions", tag = "radius", params(RadiusSessionFilter),
    responses((status = 200, body = Vec<RadiusSession>), (status = 400, body = ErrorBody)))]
async fn list_radius_sessions(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Query(f): Query<RadiusSessionFilter>,
) -> ApiResult<axum::Json<Vec<RadiusSession>>> {
    actor.require(Permission::Read)?;
    let query = SessionQuery {
        user: f.user.filter(|u| !u.is_empty()),
        profile: f
            .profile
            .filter(|p| !p.is_empty())
            .map(|p| parse_id(&p))
            .transpose()?,
    };
    Ok(axum::Json(s.dir.radius_sessions(&query)))
}

#[utoipa::path(get, path = "/radius-servers/{id}", tag = "radius", params(("id" = String, Path)),
    responses((status = 200, body = RadiusServerView), (status = 404, body = ErrorBody)))]
async fn get_radius(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<RadiusServerView>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.get_radius_server(&parse_id(&id)?)?))
}

#[utoipa::path(patch, path = "/radius-servers/{id}", tag = "radius", params(("id" = String, Path)),
    request_body = RadiusServerPatch, responses((status = 200, body = RadiusServerView)))]
async fn update_radius(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(patch): Json<RadiusServerPatch>,
) -> ApiResult<axum::Json<RadiusServerView>> {
    Ok(axum::Json(
        s.dir
            .update_radius_server(&actor, &parse_id(&id)?, patch)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/radius-servers/{id}", tag = "radius", params(("id" = String, Path)), responses((status = 204)))]
async fn delete_radius(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_radius_server(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/apps", tag = "apps", request_body = NewApp,
    responses((status = 201, body = AppView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_app(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(input): Json<NewApp>,
) -> ApiResult<(StatusCode, axum::Json<AppView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.dir.create_app(&actor, input).await?),
    ))
}

#[utoipa::path(get, path = "/apps", tag = "apps", responses((status = 200, body = Vec<AppView>)))]
async fn list_apps(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<AppView>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.list_apps()))
}

#[utoipa::path(get, path = "/apps/{id}", tag = "apps", params(("id" = String, Path)),
    responses((status = 200, body = AppView), (status = 404, body = ErrorBody)))]
async fn get_app(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AppView>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.get_app(&parse_id(&id)?)?))
}

#[utoipa::path(patch, path = "/apps/{id}", tag = "apps", params(("id" = String, Path)), request_body = AppPatch,
    responses((status = 200, body = AppView)))]
async fn update_app(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(patch): Json<AppPatch>,
) -> ApiResult<axum::Json<AppView>> {
    Ok(axum::Json(
        s.dir.update_app(&actor, &parse_id(&id)?, patch).await?,
    ))
}

#[utoipa::path(delete, path = "/apps/{id}", tag = "apps", params(("id" = String, Path)), responses((status = 204)))]
async fn delete_app(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_app(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/apps/{id}/idp-keys", tag = "apps", params(("id" = String, Path)), request_body = NewIdpKey,
    responses((status = 200, description = "the app with its keys; a generated key is RSA-2048 with a 5-year self-signed certificate", body = AppView),
              (status = 422, body = ErrorBody)))]
async fn add_app_key(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(input): Json<NewIdpKey>,
) -> ApiResult<axum::Json<AppView>> {
    Ok(axum::Json(
        s.dir.add_app_key(&actor, &parse_id(&id)?, input).await?,
    ))
}

#[utoipa::path(post, path = "/apps/{id}/idp-keys/{key}/activate", tag = "apps",
    params(("id" = String, Path), ("key" = String, Path)), responses((status = 200, body = AppView), (status = 404, body = ErrorBody)))]
async fn activate_app_key(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<axum::Json<AppView>> {
    Ok(axum::Json(
        s.dir
            .activate_app_key(&actor, &parse_id(&id)?, &key)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/apps/{id}/idp-keys/{key}", tag = "apps",
    params(("id" = String, Path), ("key" = String, Path)), responses((status = 200, body = AppView), (status = 422, body = ErrorBody)))]
async fn delete_app_key(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<axum::Json<AppView>> {
    Ok(axum::Json(
        s.dir.delete_app_key(&actor, &parse_id(&id)?, &key).await?,
    ))
}

#[utoipa::path(put, path = "/apps/{id}/sp-metadata", tag = "apps", params(("id" = String, Path)),
    request_body(content = String, content_type = "application/samlmetadata+xml", description = "the SP's EntityDescriptor"),
    responses((status = 200, description = "SP entity id, ACS URLs and certificate taken from the metadata", body = AppView),
              (status = 422, body = ErrorBody)))]
async fn put_sp_metadata(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<AppView>> {
    let xml = std::str::from_utf8(&body)
        .map_err(|_| DirectoryError::invalid("metadata", "the metadata must be UTF-8 XML"))?;
    Ok(axum::Json(
        s.dir
            .apply_sp_metadata(&actor, &parse_id(&id)?, xml)
            .await?,
    ))
}

#[utoipa::path(get, path = "/apps/{id}/scim-connector", tag = "apps", params(("id" = String, Path)),
    responses((status = 200, description = "the connector, what the app holds, and the outbox with any errors", body = ScimConnectorView)))]
async fn get_connector(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ScimConnectorView>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.scim_connector(&parse_id(&id)?)?))
}

#[utoipa::path(put, path = "/apps/{id}/scim-connector", tag = "apps", params(("id" = String, Path)),
    request_body = ScimConnectorInput, responses((status = 200, body = ScimConnectorView), (status = 422, body = ErrorBody)))]
async fn put_connector(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(input): Json<ScimConnectorInput>,
) -> ApiResult<axum::Json<ScimConnectorView>> {
    Ok(axum::Json(
        s.dir
            .set_scim_connector(&actor, &parse_id(&id)?, input)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/apps/{id}/scim-connector", tag = "apps", params(("id" = String, Path)), responses((status = 204)))]
async fn delete_connector(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_scim_connector(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/settings/password-policy", tag = "settings", responses((status = 200, body = PasswordPolicy)))]
async fn get_policy(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<PasswordPolicy>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json((*s.dir.password_policy()).clone()))
}

#[utoipa::path(put, path = "/settings/password-policy", tag = "settings", request_body = PasswordPolicy,
    responses((status = 200, body = PasswordPolicy), (status = 422, body = ErrorBody)))]
async fn put_policy(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(policy): Json<PasswordPolicy>,
) -> ApiResult<axum::Json<PasswordPolicy>> {
    Ok(axum::Json(s.dir.set_password_policy(&actor, policy).await?))
}

#[utoipa::path(get, path = "/settings/org", tag = "settings", responses((status = 200, body = OrgSettings)))]
async fn get_org(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<OrgSettings>> {
    actor.require(Permission::Read)?;
    let org = s
        .dir
        .org()
        .ok_or_else(|| DirectoryError::Internal("organisation is not initialised".into()))?;
    Ok(axum::Json((*org).clone()))
}

#[utoipa::path(patch, path = "/settings/org", tag = "settings", request_body = OrgPatch,
    responses((status = 200, body = OrgSettings), (status = 422, body = ErrorBody)))]
async fn patch_org(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(patch): Json<OrgPatch>,
) -> ApiResult<axum::Json<OrgSettings>> {
    Ok(axum::Json(s.dir.update_org(&actor, patch).await?))
}
