//! The dashboard: users by state, groups, bound resources, current lockouts, where each listener is, and
//! authentication activity per protocol over the last hour, day or week as SVG charts drawn here, with the top
//! failure reasons and sources. Everything comes from the live snapshot and the core's in-memory activity
//! counters, so a view costs the same at any directory size.

use crate::html::{self, esc};
use crate::{Console, SignedIn};
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::Utc;
use core_directory::activity::{ActivityReport, PROTOCOLS};
use core_directory::model::UserState;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Users by state and the end of every lock, counted once per snapshot: the dashboard does not walk every
/// user on every view, only after a change.
#[derive(Default)]
pub struct Counts {
    sequence: Option<u64>,
    states: [usize; 3],
    locks: Vec<chrono::DateTime<Utc>>,
}

/// The counts of the newest snapshot seen.
#[derive(Default)]
pub struct CountsCache(std::sync::Mutex<std::sync::Arc<Counts>>);

fn state_index(s: UserState) -> usize {
    match s {
        UserState::Staged => 0,
        UserState::Active => 1,
        UserState::Suspended => 2,
    }
}

impl CountsCache {
    fn of(&self, snap: &core_directory::Snapshot) -> std::sync::Arc<Counts> {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cached.sequence != Some(snap.sequence) {
            let mut counts = Counts {
                sequence: Some(snap.sequence),
                ..Counts::default()
            };
            for u in snap.users.values() {
                counts.states[state_index(u.state)] += 1;
                if let Some(t) = u.locked_until {
                    counts.locks.push(t);
                }
            }
            *cached = std::sync::Arc::new(counts);
        }
        std::sync::Arc::clone(&cached)
    }
}

/// The ranges the dashboard offers: (query value, label, minutes, buckets).
const RANGES: [(&str, &str, i64, usize); 3] = [
    ("hour", "Last hour", 60, 12),
    ("day", "Last 24 hours", 24 * 60, 24),
    ("week", "Last 7 days", 7 * 24 * 60, 28),
];

fn protocol_label(i: usize) -> &'static str {
    ["LDAP", "RADIUS", "SSO", "Portal", "SCIM", "Console"][i]
}

/// A bar chart of successes and failures per bucket, stacked, with axis labels; scales to its container.
/// `spark`: a small chart without axis labels, stretched to its cell.
pub fn chart(title: &str, report: &ActivityReport, protocols: &[usize], spark: bool) -> String {
    let n = report.buckets.len().max(1);
    let (w, h, left, bottom) = if spark {
        (600.0_f64, 60.0_f64, 0.0_f64, 2.0_f64)
    } else {
        (480.0_f64, 180.0_f64, 34.0_f64, 22.0_f64)
    };
    let ok: Vec<u32> = (0..n)
        .map(|b| protocols.iter().map(|&p| report.ok[p][b]).sum())
        .collect();
    let failed: Vec<u32> = (0..n)
        .map(|b| protocols.iter().map(|&p| report.failed[p][b]).sum())
        .collect();
    let max = ok
        .iter()
        .zip(&failed)
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = (w - left) / n as f64;
    let bar = (slot * 0.7).max(1.0);
    let scale = (h - bottom - 8.0) / f64::from(max);
    let mut svg = format!(
        "<svg class=\"{class}\" viewBox=\"0 0 {w} {h}\"{stretch} role=\"img\" aria-labelledby=\"c-{id}\">\
         <title id=\"c-{id}\">{t}: {total_ok} succeeded, {total_failed} failed</title>\
         <line x1=\"{left}\" y1=\"{base}\" x2=\"{w}\" y2=\"{base}\" stroke=\"#8a96a3\" stroke-width=\"1\"/>",
        class = if spark { "chart spark" } else { "chart" },
        stretch = if spark { " preserveAspectRatio=\"none\"" } else { "" },
        id = title.replace([' ', ','], "-").to_lowercase(),
        t = esc(title),
        total_ok = ok.iter().sum::<u32>(),
        total_failed = failed.iter().sum::<u32>(),
        base = h - bottom,
    );
    if !spark {
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"14\" font-size=\"13\" text-anchor=\"end\" fill=\"#4a5866\">{max}</text>\
             <text x=\"{lx}\" y=\"{base}\" font-size=\"13\" text-anchor=\"end\" fill=\"#4a5866\">0</text>",
            lx = left - 4.0,
            base = h - bottom,
        );
    }
    for b in 0..n {
        let x = left + slot * b as f64 + (slot - bar) / 2.0;
        let ok_h = f64::from(ok[b]) * scale;
        let fail_h = f64::from(failed[b]) * scale;
        let base = h - bottom;
        if ok[b] > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{ok_h:.1}\" fill=\"#2f6fb3\"><title>{} succeeded</title></rect>",
                base - ok_h,
                ok[b]
            );
        }
        if failed[b] > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{fail_h:.1}\" fill=\"#c0392b\"><title>{} failed</title></rect>",
                base - ok_h - fail_h,
                failed[b]
            );
        }
    }
    // Time labels under the first, middle and last buckets.
    let labelled: &[usize] = if spark { &[] } else { &[0, n / 2, n - 1] };
    for (i, &b) in labelled.iter().enumerate() {
        if let Some(t) = report.buckets.get(b) {
            let (x, anchor) = match i {
                0 => (left, "start"),
                2 => (w, "end"),
                _ => (left + slot * b as f64 + slot / 2.0, "middle"),
            };
            let label = if n >= 24 && report.buckets.len() > 1 {
                let span = report.buckets[n - 1] - report.buckets[0];
                if span > chrono::Duration::days(2) {
                    t.format("%b %d").to_string()
                } else {
                    t.format("%H:%M").to_string()
                }
            } else {
                t.format("%H:%M").to_string()
            };
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"13\" text-anchor=\"{anchor}\" fill=\"#4a5866\">{label}</text>",
                h - 6.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

pub async fn dashboard(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let snap = c.dir.snapshot();
    let now = Utc::now();
    let counts = c.counts.of(&snap);
    let locked = counts.locks.iter().filter(|t| **t > now).count();
    let bindings: usize = snap.group_bindings.values().map(|s| s.len()).sum();
    let count = |s: UserState| counts.states[state_index(s)];
    let mut body = String::from("<h1>Dashboard</h1><section class=\"cards\">");
    for (label, value, link) in [
        ("Users", snap.users.len(), "/console/users"),
        (
            "Active",
            count(UserState::Active),
            "/console/users?state=active",
        ),
        (
            "Staged",
            count(UserState::Staged),
            "/console/users?state=staged",
        ),
        (
            "Suspended",
            count(UserState::Suspended),
            "/console/users?state=suspended",
        ),
        ("Locked now", locked, "/console/users?locked=on"),
        ("Groups", snap.groups.len(), "/console/groups"),
        ("Group bindings", bindings, "/console/groups"),
    ] {
        let _ = write!(
            body,
            "<a class=\"card\" href=\"{link}\"><span class=\"value\">{value}</span><span class=\"label\">{label}</span></a>"
        );
    }
    body.push_str("</section>");

    let listeners = c.listeners.read().map(|l| l.clone()).unwrap_or_default();
    body.push_str("<section><h2>Listeners</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">Protocol</th><th scope=\"col\">Address</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for (name, addr) in &listeners {
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{}</code></td><td><span class=\"ok\">listening</span></td></tr>",
            esc(name),
            esc(addr)
        );
    }
    body.push_str("</tbody></table></div></section>");

    let range = q.get("range").map_or("day", String::as_str);
    let (key, label, minutes, buckets) = RANGES
        .iter()
        .copied()
        .find(|r| r.0 == range)
        .unwrap_or(RANGES[1]);
    let report = c
        .dir
        .activity()
        .report(now, chrono::Duration::minutes(minutes), buckets);
    let mut tabs = String::new();
    for (k, l, _, _) in RANGES {
        let current = if k == key {
            " aria-current=\"true\""
        } else {
            ""
        };
        let _ = write!(
            tabs,
            "<li><a href=\"/console?range={k}\"{current}>{l}</a></li>"
        );
    }
    let all: Vec<usize> = (0..PROTOCOLS.len()).collect();
    let _ = write!(
        body,
        "<section><h2>Sign-ins</h2><ul class=\"tabs\">{tabs}</ul><figure>{}<figcaption>{} · \
         <span class=\"key ok\">succeeded</span> <span class=\"key failed\">failed</span></figcaption></figure>",
        chart(&format!("All protocols, {}", label.to_lowercase()), &report, &all, false),
        esc(label)
    );
    body.push_str("<div class=\"table\"><table><thead><tr><th scope=\"col\">Protocol</th><th scope=\"col\">Succeeded</th><th scope=\"col\">Failed</th><th scope=\"col\" class=\"spark\">Activity</th></tr></thead><tbody>");
    for p in 0..PROTOCOLS.len() {
        let ok: u32 = report.ok[p].iter().sum();
        let failed: u32 = report.failed[p].iter().sum();
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{ok}</td><td>{failed}</td><td class=\"spark\">{}</td></tr>",
            protocol_label(p),
            chart(protocol_label(p), &report, &[p], true)
        );
    }
    body.push_str("</tbody></table></div></section>");

    body.push_str("<section class=\"split\"><div><h2>Top failure reasons</h2>");
    body.push_str(&top_list(
        &report.top_reasons,
        "No failures in this period.",
    ));
    body.push_str("</div><div><h2>Top failure sources</h2>");
    body.push_str(&top_list(
        &report.top_sources,
        "No failures in this period.",
    ));
    body.push_str("</div></section><p class=\"hint\">Activity is counted since the server started; the full history is in <a href=\"/console/insights\">Insights</a>.</p>");
    html::page(&admin, "/console", "Dashboard", &body)
}

fn top_list(items: &[(String, u32)], empty: &str) -> String {
    if items.is_empty() {
        return format!("<p>{}</p>", esc(empty));
    }
    let mut s = String::from("<ol class=\"top\">");
    for (k, n) in items {
        let _ = write!(s, "<li><span>{}</span> <strong>{n}</strong></li>", esc(k));
    }
    s.push_str("</ol>");
    s
}
