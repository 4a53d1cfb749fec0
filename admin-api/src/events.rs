//! `/events` (directory insights), `/import/users` (CSV import) and `/import/ldif` (LDIF import).

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Admin;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use core_directory::import::ImportReport;
use core_directory::ldif::{LdifPass, LdifReport};
use core_directory::{Event, EventQuery, Permission, Service};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(export_events))
        .routes(routes!(import_users))
        .routes(routes!(import_ldif))
}

/// Which entries of the LDIF this request imports.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LdifQuery {
    /// `groups` (without members; also reports skipped and unreadable records), `users` (with `memberOf`),
    /// `members`, or `all` (the default: the three in order). A large file can be sent in pieces, each piece
    /// once per pass, groups first.
    pub pass: Option<LdifPass>,
}

#[utoipa::path(post, path = "/import/ldif", tag = "users", params(LdifQuery),
    request_body(content = String, content_type = "text/plain", description = "LDIF content records (an ldapsearch or slapcat dump)"),
    responses((status = 200, description = "per-entry results", body = LdifReport),
              (status = 422, description = "not LDIF at all, or not UTF-8", body = ErrorBody)))]
async fn import_ldif(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Query(q): Query<LdifQuery>,
    body: Bytes,
) -> ApiResult<axum::Json<LdifReport>> {
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError::from(core_directory::DirectoryError::invalid(
            "ldif",
            "the LDIF file is not UTF-8 (non-UTF-8 values must be base64, `attr:: …`)",
        ))
    })?;
    let report = s
        .dir
        .import_ldif(&actor, text, q.pass.unwrap_or(LdifPass::All), &|_, _| {})
        .await?;
    Ok(axum::Json(report))
}

/// Event filters.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// directory, ldap, radius, sso, scim, admin or portal.
    pub service: Option<String>,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Username, actor or target id.
    pub user: Option<String>,
    /// RFC 3339 time; events at or after it.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339 time; events before it.
    pub until: Option<DateTime<Utc>>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// The client's IP address.
    pub source: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<u64>,
    /// 1–1000, default 100.
    pub limit: Option<usize>,
}

/// A page of events, newest first.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<u64>,
}

fn query(f: EventFilter, default_limit: usize, max: usize) -> ApiResult<EventQuery> {
    let service = match f.service.as_deref() {
        Some(s) => Some(Service::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!("unknown service `{s}`")).field("service")
        })?),
        None => None,
    };
    let limit = f.limit.unwrap_or(default_limit);
    if !(1..=max).contains(&limit) {
        return Err(
            ApiError::bad_request(format!("limit must be between 1 and {max}")).field("limit"),
        );
    }
    Ok(EventQuery {
        since: f.since,
        until: f.until,
        service,
        event_type: f.event_type,
        user: f.user,
        success: match f.outcome.as_deref() {
            None => None,
            Some("success") => Some(true),
            Some("failure") => Some(false),
            Some(o) => {
                return Err(ApiError::bad_request(format!(
                    "outcome is `success` or `failure`, not `{o}`"
                ))
                .field("outcome"))
            }
        },
        client_ip: match f.source.as_deref() {
            None => None,
            Some(s) => Some(s.parse().map_err(|_| {
                ApiError::bad_request(format!("`{s}` is not an IP address")).field("source")
            })?),
        },
        before_id: f.cursor,
        limit,
        scan_limit: None,
    })
}

#[utoipa::path(get, path = "/events", tag = "events", params(EventFilter),
    responses((status = 200, body = EventPage), (status = 400, body = ErrorBody)))]
async fn list_events(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Query(f): Query<EventFilter>,
) -> ApiResult<axum::Json<EventPage>> {
    actor.require(Permission::Read)?;
    let q = query(f, 100, 1000)?;
    let limit = q.limit;
    let events = s.dir.query_events(q).await?;
    let next_cursor = (events.len() == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(EventPage {
        events,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/events/export", tag = "events", params(EventFilter),
    responses((status = 200, description = "JSON lines, newest first", content_type = "application/x-ndjson", body = String)))]
async fn export_events(
    State(s): State<AppState>,
    Admin(actor): Admin,
    Query(f): Query<EventFilter>,
) -> ApiResult<Response> {
    actor.require(Permission::Read)?;
    let q = query(f, 100_000, 1_000_000)?;
    let events = s.dir.query_events(q).await?;
    let mut out = String::new();
    for e in events {
        out.push_str(&serde_json::to_string(&e).map_err(|e| ApiError::bad_request(e.to_string()))?);
        out.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
}

#[utoipa::path(post, path = "/import/users", tag = "users",
    request_body(content = String, content_type = "text/csv", description = "header `firstname,lastname,username,email,password` (any order), optionally with `uid_number`, `gid_number`, `login_shell`, `home_directory`, `groups` (`;`-separated), `password_hash`, `state`"),
    responses((status = 200, description = "per-row results; CSV with `Accept: text/csv`", body = ImportReport),
              (status = 422, description = "wrong header or encoding", body = ErrorBody)))]
async fn import_users(
    State(s): State<AppState>,
    Admin(actor): Admin,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let report = s.dir.import_users_csv(&actor, &body).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"import-results.csv\"",
                ),
            ],
            report.to_csv(),
        )
            .into_response());
    }
    Ok(axum::Json::<ImportReport>(report).into_response())
}
