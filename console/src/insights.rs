//! Insights: the event log with filters (time range, service, type, user, outcome, source address), paging by
//! cursor, and export of the filtered events as JSON lines or CSV. Reads through the core's event query only.

use crate::html::{self, esc, Field};
use crate::{Console, SignedIn};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, Utc};
use core_directory::{Event, EventQuery, Service};
use std::collections::HashMap;
use std::fmt::Write as _;

const PAGE: usize = 50;
/// Most events one export holds.
const EXPORT_MAX: usize = 100_000;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/insights", get(list))
        .route("/console/insights/export", get(export))
}

/// Events as a table (shared with the user page).
pub fn table(events: &[Event]) -> String {
    if events.is_empty() {
        return "<p>No events.</p>".into();
    }
    let mut s = String::from("<div class=\"table\"><table class=\"events\"><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Service</th><th scope=\"col\">Event</th><th scope=\"col\">Outcome</th><th scope=\"col\">User or actor</th><th scope=\"col\">Source</th><th scope=\"col\">Reason</th></tr></thead><tbody>");
    for e in events {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"badge {o}\">{o}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.time.format("%Y-%m-%d %H:%M:%S"),
            e.service.as_str(),
            esc(&e.event_type),
            esc(e.username.as_deref().or(e.actor.as_deref()).unwrap_or("")),
            e.client_ip.map(|i| i.to_string()).unwrap_or_default(),
            esc(e.reason.as_deref().unwrap_or("")),
            o = if e.success { "success" } else { "failure" },
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

/// The filters of the page as a core query, or what is wrong with them.
fn query(q: &HashMap<String, String>, limit: usize) -> Result<EventQuery, String> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let now = Utc::now();
    let since = match get("range") {
        Some("hour") => Some(now - Duration::hours(1)),
        Some("week") => Some(now - Duration::days(7)),
        Some("all") => None,
        Some("custom") => match get("since") {
            Some(s) => Some(parse_time(s).ok_or_else(|| format!("`{s}` is not a date and time"))?),
            None => None,
        },
        _ => Some(now - Duration::days(1)),
    };
    let until = match (get("range"), get("until")) {
        (Some("custom"), Some(u)) => {
            Some(parse_time(u).ok_or_else(|| format!("`{u}` is not a date and time"))?)
        }
        _ => None,
    };
    Ok(EventQuery {
        since,
        until,
        service: match get("service") {
            Some(s) => Some(Service::parse(s).ok_or_else(|| format!("unknown service `{s}`"))?),
            None => None,
        },
        event_type: get("type").map(str::to_string),
        user: get("user").map(str::to_string),
        success: match get("outcome") {
            Some("success") => Some(true),
            Some("failure") => Some(false),
            _ => None,
        },
        client_ip: match get("source") {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| format!("`{s}` is not an IP address"))?,
            ),
            None => None,
        },
        before_id: get("cursor").and_then(|c| c.parse().ok()),
        limit,
        scan_limit: None,
    })
}

/// `2026-12-03T10:00`, `2026-12-03 10:00` (UTC) or RFC 3339 (also the Explain page's time).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn filter_string(q: &HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = q
        .keys()
        .filter(|k| *k != "cursor" && !q[*k].is_empty())
        .collect();
    keys.sort();
    keys.iter()
        .map(|k| format!("{}={}", html::q(k), html::q(&q[k.as_str()])))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn list(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let services: Vec<(&str, &str)> = std::iter::once(("", "Any service"))
        .chain(
            [
                "directory",
                "ldap",
                "radius",
                "sso",
                "scim",
                "admin",
                "portal",
            ]
            .into_iter()
            .map(|s| (s, s)),
        )
        .collect();
    let mut body = String::from("<h1>Insights</h1>");
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/console/insights\" class=\"filters\">{}{}{}{}{}{}{}{}<button>Show</button> <a href=\"/console/insights\">Clear</a></form>",
        html::select("range", "Time", &[("day", "Last 24 hours"), ("hour", "Last hour"), ("week", "Last 7 days"), ("all", "All retained"), ("custom", "From… to…")], if get("range").is_empty() { "day" } else { get("range") }),
        Field::new("since", "From (UTC)").value(get("since")).hint("with From… to…: 2026-12-03 09:00").render(),
        Field::new("until", "To (UTC)").value(get("until")).render(),
        html::select("service", "Service", &services, get("service")),
        Field::new("type", "Event type").value(get("type")).hint("e.g. ldap_bind, radius_auth, user_create").render(),
        Field::new("user", "User or actor").value(get("user")).render(),
        html::select("outcome", "Outcome", &[("", "Any outcome"), ("success", "Success"), ("failure", "Failure")], get("outcome")),
        Field::new("source", "Source address").value(get("source")).render(),
    );
    match query(&q, PAGE) {
        Err(e) => body.push_str(&html::notice(false, &e)),
        Ok(query) => {
            let events = c.dir.query_events(query).await.unwrap_or_default();
            let filters = filter_string(&q);
            let _ = write!(
                body,
                "<p class=\"actions\"><a href=\"/console/insights/export?{f}&format=jsonl\">Export JSON lines</a> · <a href=\"/console/insights/export?{f}&format=csv\">Export CSV</a></p>",
                f = esc(&filters)
            );
            body.push_str(&table(&events));
            if events.len() == PAGE {
                if let Some(last) = events.last() {
                    let _ = write!(body, "<nav class=\"pager\" aria-label=\"Pages\"><a href=\"/console/insights?{}&cursor={}\" rel=\"next\">Older events</a></nav>", esc(&filters), last.id);
                }
            }
        }
    }
    html::page(&admin, "/console/insights", "Insights", &body)
}

fn csv_cell(s: &str) -> String {
    // A leading formula character is neutralised for spreadsheet programs.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn export(
    State(c): State<Console>,
    // Signed in: the extractor refuses anyone else.
    _admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = match query(&q, EXPORT_MAX) {
        Ok(query) => query,
        Err(e) => return (axum::http::StatusCode::BAD_REQUEST, e).into_response(),
    };
    let events = c.dir.query_events(query).await.unwrap_or_default();
    let csv = q.get("format").is_some_and(|f| f == "csv");
    let mut out = String::new();
    if csv {
        out.push_str("time,service,type,success,user,actor,target_type,target_id,source,reason\n");
        for e in &events {
            let cells = [
                e.time.to_rfc3339(),
                e.service.as_str().to_string(),
                e.event_type.clone(),
                e.success.to_string(),
                e.username.clone().unwrap_or_default(),
                e.actor.clone().unwrap_or_default(),
                e.target_type.clone().unwrap_or_default(),
                e.target_id.clone().unwrap_or_default(),
                e.client_ip.map(|i| i.to_string()).unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
            ];
            out.push_str(
                &cells
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(","),
            );
            out.push('\n');
        }
    } else {
        for e in &events {
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
            out.push('\n');
        }
    }
    let (kind, name) = if csv {
        (
            "text/csv; charset=utf-8",
            "attachment; filename=\"stratus-events.csv\"",
        )
    } else {
        (
            "application/x-ndjson",
            "attachment; filename=\"stratus-events.jsonl\"",
        )
    };
    let mut r = out.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(name));
    r
}
