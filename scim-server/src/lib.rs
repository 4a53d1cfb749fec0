//! # scim-server
//!
//! SCIM 2.0 (RFC 7643, RFC 7644) for Stratus: the service provider under `/scim/v2` that HR systems and IdPs
//! (Okta, Entra ID) provision users and groups into, and the outbound provisioner that pushes SSO apps' users
//! to the apps' own SCIM endpoints. Every change is a call on `core_directory::Directory` with
//! the actor of the SCIM token; it must not depend on any other listener.
//!
//! # Layout
//! - This file: the router, bearer-token authentication, per-token rate limiting, the JSON body rules
//!   (`application/scim+json` or `application/json`, at most 1 MiB), list paging, sorting and attribute selection.
//! - [`ops`]: create/replace/patch/delete/search of users and groups (also used by Bulk); [`resource`]: users and
//!   groups as SCIM JSON and back; [`filter`]: filters and paths; [`patch`]: PATCH operations;
//!   [`discovery`]: ServiceProviderConfig, ResourceTypes, Schemas; [`bulk`]: Bulk; [`error`]: RFC 7644 §3.12.
//!
//! [`outbound`] is the other direction: Stratus provisioning each SSO app's users (and groups) into the app's
//! own SCIM endpoint from the core's persistent outbox.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod ops;
pub mod outbound;
pub mod patch;
pub mod resource;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use core_directory::crypto::sha256_hex;
use core_directory::{Actor, Directory};
use error::{ScimError, SCIM_JSON};
use filter::AttrPath;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Settings of the service provider.
#[derive(Debug, Clone)]
pub struct ScimSettings {
    /// Stratus's public base URL (`https://sso.example.com`, no trailing slash): resource locations are
    /// `{base_url}/scim/v2/…`. Never taken from a request's Host.
    pub base_url: String,
    /// Requests per second one token may make, and the burst it may save up; beyond them, 429.
    pub rate_per_second: f64,
    pub rate_burst: f64,
}

impl Default for ScimSettings {
    fn default() -> Self {
        ScimSettings {
            base_url: "https://127.0.0.1:8443".into(),
            rate_per_second: 100.0,
            rate_burst: 200.0,
        }
    }
}

/// What every request shares.
pub struct ScimState {
    pub dir: Arc<Directory>,
    pub settings: ScimSettings,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// On a shared store: what this node knows of each token's shared count (see [`ScimState::take_shared`]).
    shared_counts: Mutex<HashMap<String, SharedCount>>,
}

/// One token's shared rate-limit window as this node sees it.
struct SharedCount {
    window: i64,
    /// The window's count across nodes at the last flush.
    known: u64,
    /// This node's requests not yet added to the shared count.
    unflushed: u64,
    flushed_at: Instant,
}

/// A node adds its requests to a token's shared count at least this often.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The SCIM routes, to be merged into the HTTPS listener's router.
pub fn router(dir: Arc<Directory>, settings: ScimSettings) -> Router {
    let state = Arc::new(ScimState {
        dir,
        settings,
        buckets: Mutex::new(HashMap::new()),
        shared_counts: Mutex::new(HashMap::new()),
    });
    let api = Router::new()
        .merge(resource_routes("/Users", ops::Kind::Users))
        .merge(resource_routes("/Groups", ops::Kind::Groups))
        .route("/.search", post(search_all))
        .route("/Bulk", post(bulk))
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
        .fallback(|| async { ScimError::not_found("no such SCIM endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            authenticate,
        ))
        .with_state(state);
    Router::new().nest("/scim/v2", api)
}

/// The list, search and by-id routes of one resource type.
fn resource_routes(at: &str, kind: ops::Kind) -> Router<Arc<ScimState>> {
    Router::new()
        .route(at, get(list_kind).post(create_one))
        .route(&format!("{at}/.search"), post(search_kind))
        .route(
            &format!("{at}/{{id}}"),
            get(get_one)
                .put(put_one)
                .patch(patch_one)
                .delete(delete_one),
        )
        .layer(Extension(kind))
}

/// Bearer token → the token's actor; then the token's rate limit.
async fn authenticate(State(s): State<Arc<ScimState>>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(actor) = token.and_then(|t| s.dir.resolve_scim_token(t, ip)) else {
        let e = core_directory::Event::new(core_directory::Service::Scim, "scim_auth", false)
            .client(ip)
            .reason(if token.is_some() {
                "unknown SCIM token"
            } else {
                "no bearer token"
            });
        s.dir.record(e).await;
        return ScimError::new(
            StatusCode::UNAUTHORIZED,
            None,
            "a SCIM bearer token is required",
        )
        .into_response();
    };
    if let Some(wait) = s.take_token(&actor.label) {
        let mut e = ScimError::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "too many requests for this SCIM token",
        );
        e.retry_after = Some(wait);
        return e.into_response();
    }
    req.extensions_mut().insert(actor);
    next.run(req).await
}

impl ScimState {
    /// Take one request from the token's bucket; `Some(seconds)` to wait when it is empty. On a store shared by
    /// several nodes the bucket is shared too: see [`ScimState::take_shared`].
    fn take_token(&self, key: &str) -> Option<u64> {
        if self.dir.store().is_shared() {
            return self.take_shared(key);
        }
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() > 10_000 {
            b.clear();
        }
        let (rate, burst) = (
            self.settings.rate_per_second,
            self.settings.rate_burst.max(1.0),
        );
        let (tokens, last) = b.entry(key.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            Some(((1.0 - *tokens) / rate.max(0.001)).ceil().max(1.0) as u64)
        }
    }

    /// The shared limit: `burst` requests per window of `burst / rate` seconds (at least one), counted in the
    /// store by every node — the same sustained rate as the bucket. Each node adds its requests to the shared
    /// count in batches (every `burst / 20` requests, at least every request for a small burst, and at least every
    /// [`FLUSH_EVERY`]), so a busy token costs the store a few writes a second, and refuses once what it knows of
    /// the window's count reaches `burst`. When the store cannot count, the request goes through (the store's own
    /// errors then answer the request).
    fn take_shared(&self, key: &str) -> Option<u64> {
        let rate = self.settings.rate_per_second.max(0.001);
        let burst = self.settings.rate_burst.max(1.0) as u64;
        let window_ms = ((burst as f64 / rate) * 1000.0).clamp(1000.0, 3_600_000.0) as i64;
        let now = chrono::Utc::now().timestamp_millis();
        let window = now / window_ms;
        let end = (window + 1) * window_ms;
        let wait = ((end - now + 999) / 1000).max(1) as u64;
        let batch = (burst / 20).max(1);
        let add = {
            let mut counts = self.shared_counts.lock().unwrap_or_else(|e| e.into_inner());
            if counts.len() > 10_000 {
                counts.retain(|_, c| c.window == window);
            }
            let c = counts.entry(key.to_string()).or_insert(SharedCount {
                window,
                known: 0,
                unflushed: 0,
                flushed_at: Instant::now(),
            });
            if c.window != window {
                *c = SharedCount {
                    window,
                    known: 0,
                    unflushed: 0,
                    flushed_at: Instant::now(),
                };
            }
            if c.known + c.unflushed >= burst {
                return Some(wait);
            }
            c.unflushed += 1;
            if c.unflushed < batch && c.flushed_at.elapsed() < FLUSH_EVERY {
                return None;
            }
            c.flushed_at = Instant::now();
            std::mem::take(&mut c.unflushed)
        };
        let expires =
            chrono::DateTime::from_timestamp_millis(end + 1000).unwrap_or_else(chrono::Utc::now);
        let counted = self.dir.store().ephemeral_count(
            "scim-rate",
            &format!("{}/{window}", sha256_hex(key.as_bytes())),
            add,
            expires,
        );
        match counted {
            Ok(total) => {
                let mut counts = self.shared_counts.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = counts.get_mut(key).filter(|c| c.window == window) {
                    c.known = c.known.max(total);
                }
                (total > burst).then_some(wait)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the shared SCIM rate limit could not be counted");
                None
            }
        }
    }

    fn ctx<'a>(&'a self, actor: &'a Actor) -> ops::Ctx<'a> {
        ops::Ctx {
            dir: &self.dir,
            actor,
            base: format!("{}/scim/v2", self.settings.base_url),
        }
    }
}

/// A JSON body with the SCIM content rules.
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if mime != SCIM_JSON && mime != "application/json" {
            return Err(ScimError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                "send application/scim+json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            ScimError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("tooLarge"),
                format!("bodies are limited to {} octets", discovery::MAX_PAYLOAD),
            )
        })?;
        if bytes.len() > discovery::MAX_PAYLOAD {
            return Err(ScimError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("tooLarge"),
                "body too large",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(ScimBody)
            .map_err(|e| ScimError::bad_request("invalidSyntax", format!("malformed JSON: {e}")))
    }
}

fn scim(status: StatusCode, v: Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    r
}

/// A single resource, with its ETag (and Location when created).
fn one(status: StatusCode, v: Value) -> Response {
    let version = v["meta"]["version"].as_str().map(str::to_string);
    let location = v["meta"]["location"].as_str().map(str::to_string);
    let mut r = scim(status, v);
    if let Some(Ok(e)) = version.map(|v| HeaderValue::from_str(&v)) {
        r.headers_mut().insert(header::ETAG, e);
    }
    if status == StatusCode::CREATED {
        if let Some(Ok(l)) = location.map(|l| HeaderValue::from_str(&l)) {
            r.headers_mut().insert(header::LOCATION, l);
        }
    }
    r
}

fn if_match(h: &HeaderMap) -> Option<&str> {
    h.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

type Params = Query<HashMap<String, String>>;

/// Read list parameters from the query string or a `.search` body.
struct ListParams {
    filter: Option<filter::Filter>,
    start: usize,
    count: usize,
    sort_by: Option<AttrPath>,
    descending: bool,
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

fn paths(list: Option<String>) -> Result<Vec<AttrPath>, ScimError> {
    list.map(|l| {
        l.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| filter::attr_path(p).map_err(|e| ScimError::bad_request("invalidPath", e.0)))
            .collect()
    })
    .unwrap_or(Ok(Vec::new()))
}

impl ListParams {
    fn read(get: impl Fn(&str) -> Option<String>) -> Result<Self, ScimError> {
        let filter = match get("filter") {
            Some(f) if !f.trim().is_empty() => {
                Some(filter::parse(&f).map_err(|e| ScimError::bad_request("invalidFilter", e.0))?)
            }
            _ => None,
        };
        let number = |name: &str, default: i64| -> Result<i64, ScimError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| {
                    ScimError::bad_request("invalidValue", format!("{name} must be a number"))
                }),
            }
        };
        let start = number("startIndex", 1)?.max(1) as usize;
        let count = number("count", 100)?.clamp(0, discovery::MAX_RESULTS as i64) as usize;
        let sort_by = match get("sortBy") {
            Some(s) => Some(
                filter::attr_path(&s).map_err(|e| ScimError::bad_request("invalidPath", e.0))?,
            ),
            None => None,
        };
        let descending = get("sortOrder").is_some_and(|o| o.eq_ignore_ascii_case("descending"));
        Ok(ListParams {
            filter,
            start,
            count,
            sort_by,
            descending,
            attributes: paths(get("attributes"))?,
            excluded: paths(get("excludedAttributes"))?,
        })
    }

    fn from_query(q: &HashMap<String, String>) -> Result<Self, ScimError> {
        Self::read(|name| {
            q.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        })
    }

    fn from_body(b: &Value) -> Result<Self, ScimError> {
        Self::read(|name| {
            let o = b.as_object()?;
            let v = o.get(filter::key_of(o, name)?)?;
            match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Array(a) => Some(
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => None,
            }
        })
    }
}

/// The first value of an attribute, for sorting.
fn sort_key(v: &Value, p: &AttrPath) -> Option<Value> {
    let c = filter::container(v, p)?.as_object()?;
    let mut x = c.get(filter::key_of(c, &p.name)?)?.clone();
    if let Value::Array(a) = &x {
        x = a.first()?.clone();
    }
    match (&p.sub, &x) {
        (Some(sub), Value::Object(o)) => o.get(filter::key_of(o, sub)?).cloned(),
        (None, Value::Object(o)) => o.get("value").cloned(),
        _ => Some(x),
    }
}

fn compare_keys(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (None, None) => Equal,
        (None, _) => Greater,
        (_, None) => Less,
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Equal)
        }
        (Some(x), Some(y)) => {
            let s = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_lowercase);
            s(x).cmp(&s(y))
        }
    }
}

/// Attribute selection (RFC 7644 §3.4.2.5): `id` and `schemas` are always returned.
fn project(mut v: Value, attributes: &[AttrPath], excluded: &[AttrPath]) -> Value {
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if !attributes.is_empty() {
        let old = std::mem::take(obj);
        for (k, val) in old {
            let keep_all = ["id", "schemas"].iter().any(|a| a.eq_ignore_ascii_case(&k));
            let wanted: Vec<&AttrPath> = attributes
                .iter()
                .filter(|p| match &p.schema {
                    Some(urn) => urn.eq_ignore_ascii_case(&k),
                    None => p.name.eq_ignore_ascii_case(&k),
                })
                .collect();
            if keep_all || wanted.iter().any(|p| p.schema.is_none() && p.sub.is_none()) {
                obj.insert(k, val);
            } else if !wanted.is_empty() {
                // Keep only the named parts of a complex attribute or an extension.
                let names: Vec<&str> = wanted
                    .iter()
                    .map(|p| {
                        if p.schema.is_some() {
                            p.name.as_str()
                        } else {
                            p.sub.as_deref().unwrap_or("")
                        }
                    })
                    .collect();
                if let Value::Object(inner) = val {
                    let kept: serde_json::Map<String, Value> = inner
                        .into_iter()
                        .filter(|(ik, _)| names.iter().any(|n| n.eq_ignore_ascii_case(ik)))
                        .collect();
                    obj.insert(k, Value::Object(kept));
                }
            }
        }
    }
    for p in excluded {
        if p.name.eq_ignore_ascii_case("id") || p.name.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let key = match &p.schema {
            Some(urn) => filter::key_of(obj, urn).cloned(),
            None => filter::key_of(obj, &p.name).cloned(),
        };
        if let Some(key) = key {
            if p.schema.is_some() {
                if let Some(Value::Object(inner)) = obj.get_mut(&key) {
                    if let Some(ik) = filter::key_of(inner, &p.name).cloned() {
                        inner.remove(&ik);
                    }
                }
            } else {
                obj.remove(&key);
            }
        }
    }
    v
}

/// Which resources a list covers.
#[derive(Clone, Copy)]
enum Scope {
    Users,
    Groups,
    /// A search at the root (`/.search`): both.
    All,
}

impl From<ops::Kind> for Scope {
    fn from(k: ops::Kind) -> Self {
        match k {
            ops::Kind::Users => Scope::Users,
            ops::Kind::Groups => Scope::Groups,
        }
    }
}

fn list(s: &ScimState, actor: &Actor, scope: Scope, p: ListParams) -> Response {
    let ctx = s.ctx(actor);
    let unfiltered = p.filter.is_none() && p.sort_by.is_none();
    if let (true, Scope::Users | Scope::Groups) = (unfiltered, scope) {
        let (total, page) =
            ops::unfiltered_page(&ctx, matches!(scope, Scope::Groups), p.start, p.count);
        let page: Vec<Value> = page
            .into_iter()
            .map(|v| project(v, &p.attributes, &p.excluded))
            .collect();
        let body = serde_json::json!({"schemas": [LIST_RESPONSE], "totalResults": total,
            "startIndex": p.start, "itemsPerPage": page.len(), "Resources": page});
        return scim(StatusCode::OK, body);
    }
    let mut all = match scope {
        Scope::Users => ctx.search(false, p.filter.as_ref()),
        Scope::Groups => ctx.search(true, p.filter.as_ref()),
        Scope::All => {
            let mut v = ctx.search(false, p.filter.as_ref());
            v.extend(ctx.search(true, p.filter.as_ref()));
            v
        }
    };
    if let Some(by) = &p.sort_by {
        all.sort_by(|a, b| {
            let o = compare_keys(&sort_key(a, by), &sort_key(b, by));
            let o = if p.descending { o.reverse() } else { o };
            // Ties by id, so pages never overlap or skip.
            o.then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
        });
    } else {
        // Creation order, ties by id: the same order on every page and after a restart.
        let key = |v: &Value| {
            (
                v["meta"]["created"].as_str().unwrap_or("").to_string(),
                v["id"].as_str().unwrap_or("").to_string(),
            )
        };
        all.sort_by_cached_key(key);
    }
    let body = ops::list_response(all, p.start, p.count, |v| {
        project(v, &p.attributes, &p.excluded)
    });
    scim(StatusCode::OK, body)
}

fn single(
    result: Result<Value, ScimError>,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Response {
    match result {
        Ok(v) => {
            let none_match = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|h| h.to_str().ok());
            if none_match.is_some_and(|n| Some(n) == v["meta"]["version"].as_str()) {
                return StatusCode::NOT_MODIFIED.into_response();
            }
            match ListParams::from_query(q) {
                Ok(p) => one(StatusCode::OK, project(v, &p.attributes, &p.excluded)),
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

fn written(result: Result<Value, ScimError>, status: StatusCode) -> Response {
    match result {
        Ok(v) => one(status, v),
        Err(e) => e.into_response(),
    }
}

/// A scope's lists and searches, and its resources by id, for both kinds: the kind comes from the route.
async fn list_kind(
    State(s): State<Arc<ScimState>>,
    Extension(k): Extension<ops::Kind>,
    Extension(a): Extension<Actor>,
    Query(q): Params,
) -> Response {
    match ListParams::from_query(&q) {
        Ok(p) => list(&s, &a, Scope::from(k), p),
        Err(e) => e.into_response(),
    }
}

async fn search_kind(
    State(s): State<Arc<ScimState>>,
    Extension(k): Extension<ops::Kind>,
    Extension(a): Extension<Actor>,
    ScimBody(b): ScimBody,
) -> Response {
    match ListParams::from_body(&b) {
        Ok(p) => list(&s, &a, Scope::from(k), p),
        Err(e) => e.into_response(),
    }
}

async fn search_all(
    State(s): State<Arc<ScimState>>,
    Extension(a): Extension<Actor>,
    ScimBody(b): ScimBody,
) -> Response {
    match ListParams::from_body(&b) {
        Ok(p) => list(&s, &a, Scope::All, p),
        Err(e) => e.into_response(),
    }
}

async fn get_one(
    State(s): State<Arc<ScimState>>,
    Extension(k): Extension<ops::Kind>,
    Extension(a): Extension<Actor>,
    h: HeaderMap,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    single(s.ctx(&a).get(k, &id), &h, &q)
}

async fn create_one(
    State(s): State<Arc<ScimState>>,
    Extension(k): Extension<ops::Kind>,
    Extension(a): Extension<Actor>,
    ScimBody(b): ScimBody,
) -> Response {
    written(s.ctx(&a).create(k, &b).await, StatusCode::CREATED)
}

async fn put_one(
    State(s): State<Arc<ScimState>>,
    Extension(k): Extension<ops::Kind>,
    Extension(a): Extension<Actor>,
    h: HeaderMap,
    Path(id): Path<String>,
    ScimBody(b): ScimBody,
) -> Response {
    written(
        s.ctx(&a).replace(k, &id, &b, if_match(&h)).await,
        StatusCode::OK,
    )
}

async fn patch_one(
    State(s): State<Arc<ScimState>>,
    Extension(k): Extension<ops::Kind>,
    Extension(a): Extension<Actor>,
    h: HeaderMap,
    Path(id): Path<String>,
    ScimBody(b): ScimBody,
) -> Response {
    written(
        s.ctx(&a).patch(k, &id, &b, if_match(&h)).await,
        StatusCode::OK,
    )
}

async fn delete_one(
    State(s): State<Arc<ScimState>>,
    Extension(k): Extension<ops::Kind>,
    Extension(a): Extension<Actor>,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match s.ctx(&a).delete(k, &id, if_match(&h)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn bulk(
    State(s): State<Arc<ScimState>>,
    Extension(a): Extension<Actor>,
    ScimBody(b): ScimBody,
) -> Response {
    match bulk::run(&s.ctx(&a), &b).await {
        Ok(v) => scim(StatusCode::OK, v),
        Err(e) => e.into_response(),
    }
}

async fn service_provider_config(
    State(s): State<Arc<ScimState>>,
    Extension(a): Extension<Actor>,
) -> Response {
    scim(
        StatusCode::OK,
        discovery::service_provider_config(&s.ctx(&a).base),
    )
}

fn listed(items: Vec<Value>) -> Response {
    scim(
        StatusCode::OK,
        ops::list_response(items.clone(), 1, items.len(), |v| v),
    )
}

async fn resource_types(
    State(s): State<Arc<ScimState>>,
    Extension(a): Extension<Actor>,
) -> Response {
    listed(discovery::resource_types(&s.ctx(&a).base))
}

async fn resource_type(
    State(s): State<Arc<ScimState>>,
    Extension(a): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    match discovery::resource_types(&s.ctx(&a).base)
        .into_iter()
        .find(|r| r["id"] == id)
    {
        Some(r) => scim(StatusCode::OK, r),
        None => ScimError::not_found(format!("no resource type {id}")).into_response(),
    }
}

async fn schemas(State(s): State<Arc<ScimState>>, Extension(a): Extension<Actor>) -> Response {
    listed(discovery::schemas(&s.ctx(&a).base))
}

async fn schema(
    State(s): State<Arc<ScimState>>,
    Extension(a): Extension<Actor>,
    Path(id): Path<String>,
) -> Response {
    match discovery::schemas(&s.ctx(&a).base)
        .into_iter()
        .find(|r| r["id"] == id)
    {
        Some(r) => scim(StatusCode::OK, r),
        None => ScimError::not_found(format!("no schema {id}")).into_response(),
    }
}
