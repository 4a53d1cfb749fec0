//! Operational endpoints: liveness, readiness and Prometheus metrics.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// HTTP counters by status class.
#[derive(Default)]
pub struct Metrics {
    by_class: [AtomicU64; 6],
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Count every response by status class.
pub async fn count_requests(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let class = usize::from(resp.status().as_u16() / 100).min(5);
    s.metrics.by_class[class].fetch_add(1, Ordering::Relaxed);
    resp
}

/// Ready when the directory is initialised and its store answers; a node of a shared store that cannot reach it
/// keeps serving reads from its snapshot but says so here, so a load balancer can prefer the others.
async fn readyz(State(s): State<AppState>) -> Response {
    let dir = std::sync::Arc::clone(&s.dir);
    let store = tokio::task::spawn_blocking(move || dir.schema_version()).await;
    match (s.dir.org(), store) {
        (Some(_), Ok(Ok(_))) if s.dir.store_reachable() => "ready\n".into_response(),
        (Some(_), Ok(Ok(_))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store's change feed is behind\n",
        )
            .into_response(),
        (Some(_), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store does not answer\n",
        )
            .into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response(),
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let snap = s.dir.snapshot();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP stratus_http_responses_total HTTP responses by status class."
    );
    let _ = writeln!(out, "# TYPE stratus_http_responses_total counter");
    for (i, c) in s.metrics.by_class.iter().enumerate().skip(1) {
        let _ = writeln!(
            out,
            "stratus_http_responses_total{{class=\"{i}xx\"}} {}",
            c.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP stratus_password_verifications_total Login password verifications (argon2id), dummy ones for refusals included.\n# TYPE stratus_password_verifications_total counter\nstratus_password_verifications_total {}",
        s.dir.password_verifications()
    );
    let _ = writeln!(
        out,
        "# HELP stratus_radius_requests_total RADIUS requests by profile and outcome (accept, reject, challenge, accounting, other, retransmission, dropped with a reason); profile \"\" is a source that matches no profile.\n# TYPE stratus_radius_requests_total counter"
    );
    for (profile, outcome, reason, n) in s.dir.radius_counters().snapshot() {
        let _ = writeln!(
            out,
            "stratus_radius_requests_total{{profile=\"{}\",outcome=\"{outcome}\",reason=\"{reason}\"}} {n}",
            label(&profile)
        );
    }
    let _ = writeln!(
        out,
        "# HELP stratus_radius_sessions Open RADIUS accounting sessions by profile.\n# TYPE stratus_radius_sessions gauge"
    );
    let open = s.dir.radius_session_counts();
    let mut profiles: Vec<_> = snap.radius_servers.values().collect();
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    for p in profiles {
        let _ = writeln!(
            out,
            "stratus_radius_sessions{{profile=\"{}\"}} {}",
            label(&p.name),
            open.get(&p.id).copied().unwrap_or(0)
        );
    }
    let gauges = [
        (
            "stratus_users",
            "Users in the directory.",
            snap.users.len() as u64,
        ),
        ("stratus_groups", "User groups.", snap.groups.len() as u64),
        (
            "stratus_radius_servers",
            "RADIUS server profiles.",
            snap.radius_servers.len() as u64,
        ),
        ("stratus_apps", "SSO applications.", snap.apps.len() as u64),
        (
            "stratus_change_sequence",
            "Store change sequence of the published snapshot.",
            snap.sequence,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
