//! Admin login and sessions, admins, and API keys.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{session_cookie, Admin, ClientIp, Json, SESSION_COOKIE};
use crate::users::CodeBody;
use crate::{parse_id, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use core_directory::directory::AdminLogin;
use core_directory::model::ScimScope;
use core_directory::views::{
    AdminPatch, AdminView, ApiKeyView, NewAdmin, ScimTokenView, TotpStart,
};
use core_directory::Permission;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(start_my_totp))
        .routes(routes!(confirm_my_totp))
        .routes(routes!(create_admin, list_admins))
        .routes(routes!(get_admin, update_admin, delete_admin))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(delete_key))
        .routes(routes!(create_scim_token, list_scim_tokens))
        .routes(routes!(delete_scim_token))
        .routes(routes!(set_scim_token_scope))
}

/// Admin login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
    /// Required when the admin has TOTP.
    pub otp: Option<String>,
}

/// `{"name": "..."}`
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    pub name: String,
}

/// A new API key; `token` is shown only here.
#[derive(Serialize, ToSchema)]
pub struct NewKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    pub token: String,
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "session cookie set", body = AdminView),
              (status = 401, description = "wrong credentials, or `otp_required`", body = ErrorBody)))]
async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<LoginBody>,
) -> ApiResult<Response> {
    match s
        .dir
        .admin_login(&body.email, &body.password, body.otp.as_deref(), ip)
        .await?
    {
        AdminLogin::Allowed(actor) => {
            let id = actor.admin_id.clone().ok_or_else(ApiError::unauthorized)?;
            let revision = s.dir.admin_revision(&id).unwrap_or_default();
            let token = s.sessions.create_with_revision(id.clone(), revision);
            let view = s.dir.get_admin(&id)?;
            let cookie =
                format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict");
            Ok(([(header::SET_COOKIE, cookie)], axum::Json(view)).into_response())
        }
        AdminLogin::NeedOtp => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "otp_required",
            "enter the verification code from your authenticator app",
        )
        .field("otp")),
        AdminLogin::Denied => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong e-mail, password or verification code",
        )),
    }
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", responses((status = 204)))]
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_cookie(&headers) {
        s.sessions.end(&token);
    }
    let expire = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, expire)]).into_response()
}

#[utoipa::path(get, path = "/me", tag = "auth", responses((status = 200, body = AdminView)))]
async fn me(State(s): State<AppState>, admin: Admin) -> ApiResult<axum::Json<AdminView>> {
    let id = admin.id().ok_or_else(ApiError::unauthorized)?;
    Ok(axum::Json(s.dir.get_admin(id)?))
}

#[utoipa::path(post, path = "/me/mfa/totp", tag = "auth", responses((status = 200, body = TotpStart)))]
async fn start_my_totp(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<TotpStart>> {
    Ok(axum::Json(s.dir.start_admin_totp(&actor).await?))
}

#[utoipa::path(post, path = "/me/mfa/totp/confirm", tag = "auth", request_body = CodeBody,
    responses((status = 200, body = AdminView), (status = 422, body = ErrorBody)))]
async fn confirm_my_totp(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<CodeBody>,
) -> ApiResult<axum::Json<AdminView>> {
    Ok(axum::Json(
        s.dir.confirm_admin_totp(&actor, &body.code).await?,
    ))
}

#[utoipa::path(post, path = "/admins", tag = "admins", request_body = NewAdmin,
    responses((status = 201, body = AdminView), (status = 409, body = ErrorBody)))]
async fn create_admin(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(input): Json<NewAdmin>,
) -> ApiResult<(StatusCode, axum::Json<AdminView>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.dir.create_admin(&actor, input).await?),
    ))
}

#[utoipa::path(get, path = "/admins", tag = "admins", responses((status = 200, body = Vec<AdminView>)))]
async fn list_admins(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<AdminView>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.list_admins()))
}

#[utoipa::path(get, path = "/admins/{id}", tag = "admins", params(("id" = String, Path)),
    responses((status = 200, body = AdminView), (status = 404, body = ErrorBody)))]
async fn get_admin(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AdminView>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.get_admin(&parse_id(&id)?)?))
}

#[utoipa::path(patch, path = "/admins/{id}", tag = "admins", params(("id" = String, Path)), request_body = AdminPatch,
    responses((status = 200, body = AdminView)))]
async fn update_admin(
    State(s): State<AppState>,
    Admin(actor): Admin,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(patch): Json<AdminPatch>,
) -> ApiResult<axum::Json<AdminView>> {
    let id = parse_id(&id)?;
    let view = s.dir.update_admin(&actor, &id, patch).await?;
    // An admin who sets their own password keeps the session they did it from; their other sessions end.
    if actor.admin_id.as_ref() == Some(&id) {
        if let (Some(token), Some(revision)) = (session_cookie(&headers), s.dir.admin_revision(&id))
        {
            s.sessions.set_revision(&token, revision);
        }
    }
    Ok(axum::Json(view))
}

#[utoipa::path(delete, path = "/admins/{id}", tag = "admins", params(("id" = String, Path)),
    responses((status = 204), (status = 422, description = "own account or last administrator", body = ErrorBody)))]
async fn delete_admin(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_admin(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api-keys", tag = "admins", request_body = NewKeyBody,
    responses((status = 201, description = "the token is shown once", body = NewKey)))]
async fn create_key(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<NewKeyBody>,
) -> ApiResult<(StatusCode, axum::Json<NewKey>)> {
    let (key, token) = s.dir.create_api_key(&actor, &body.name).await?;
    Ok((StatusCode::CREATED, axum::Json(NewKey { key, token })))
}

#[utoipa::path(get, path = "/api-keys", tag = "admins", responses((status = 200, body = Vec<ApiKeyView>)))]
async fn list_keys(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<ApiKeyView>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.list_api_keys()))
}

#[utoipa::path(delete, path = "/api-keys/{id}", tag = "admins", params(("id" = String, Path)), responses((status = 204)))]
async fn delete_key(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_api_key(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new SCIM token; `token` is shown only here.
#[derive(Serialize, ToSchema)]
pub struct NewScimToken {
    #[serde(flatten)]
    pub scim_token: ScimTokenView,
    pub token: String,
}

/// A new SCIM token: its name and, optionally, its scope (the default scope otherwise).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScimTokenBody {
    pub name: String,
    pub scope: Option<ScimScope>,
}

#[utoipa::path(post, path = "/scim-tokens", tag = "admins", request_body = NewScimTokenBody,
    responses((status = 201, description = "the token is shown once; it is good for /scim/v2 only", body = NewScimToken)))]
async fn create_scim_token(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Json(body): Json<NewScimTokenBody>,
) -> ApiResult<(StatusCode, axum::Json<NewScimToken>)> {
    let (scim_token, token) = s
        .dir
        .create_scim_token(&actor, &body.name, body.scope.unwrap_or_default())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewScimToken { scim_token, token }),
    ))
}

#[utoipa::path(get, path = "/scim-tokens", tag = "admins", responses((status = 200, body = Vec<ScimTokenView>)))]
async fn list_scim_tokens(
    State(s): State<AppState>,
    Admin(actor): Admin,
) -> ApiResult<axum::Json<Vec<ScimTokenView>>> {
    actor.require(Permission::Read)?;
    Ok(axum::Json(s.dir.list_scim_tokens()))
}

#[utoipa::path(put, path = "/scim-tokens/{id}/scope", tag = "admins", params(("id" = String, Path)), request_body = ScimScope,
    responses((status = 200, body = ScimTokenView), (status = 422, body = ErrorBody)))]
async fn set_scim_token_scope(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Json(scope): Json<ScimScope>,
) -> ApiResult<axum::Json<ScimTokenView>> {
    Ok(axum::Json(
        s.dir
            .set_scim_token_scope(&actor, &parse_id(&id)?, scope)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/scim-tokens/{id}", tag = "admins", params(("id" = String, Path)), responses((status = 204)))]
async fn delete_scim_token(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.dir.delete_scim_token(&actor, &parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
