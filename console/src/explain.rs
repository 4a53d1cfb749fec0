//! Explain: "why can't this user get in?" — the core's `explain` for a user, a resource, a source address and a
//! time, shown step by step with every access policy and its conditions. Reads only; records nothing.

use crate::html::{self, esc, Field};
use crate::{Console, SignedIn};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use core_directory::explain::{ExplainDecision, ExplainQuery, Explanation};
use core_directory::model::Resource;
use std::collections::HashMap;
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new().route("/console/explain", get(explain))
}

fn result_html(x: &Explanation) -> String {
    let (ok, label) = match x.decision {
        ExplainDecision::Allow => (true, "Allowed"),
        ExplainDecision::RequireMfa => (true, "Allowed with a verification code"),
        ExplainDecision::Deny => (false, "Refused"),
    };
    let mut s = format!(
        "<section aria-labelledby=\"answer\"><h2 id=\"answer\">{label}</h2>{}",
        html::notice(ok, &x.summary)
    );
    s.push_str("<ol class=\"steps\">");
    for step in &x.steps {
        let _ = write!(
            s,
            "<li><span class=\"badge {c}\">{m}</span> <strong>{}</strong> {}</li>",
            esc(&step.step),
            esc(&step.detail),
            c = if step.passed { "success" } else { "failure" },
            m = if step.passed { "pass" } else { "stop" },
        );
    }
    s.push_str("</ol></section>");
    if !x.policies.is_empty() {
        s.push_str(
            "<section aria-labelledby=\"policies\"><h2 id=\"policies\">Access policies, in evaluation order</h2>\
             <div class=\"table\"><table class=\"stack\"><thead><tr><th scope=\"col\">Priority</th><th scope=\"col\">Policy</th>\
             <th scope=\"col\">Action</th><th scope=\"col\">Conditions</th><th scope=\"col\">Outcome</th></tr></thead><tbody>",
        );
        for p in &x.policies {
            let mut conditions = String::new();
            if p.conditions.is_empty() {
                conditions.push_str("none (every attempt it covers)");
            } else {
                conditions.push_str("<ul class=\"conditions\">");
                for c in &p.conditions {
                    let _ = write!(
                        conditions,
                        "<li><span class=\"badge {}\">{}</span> {}</li>",
                        if c.met { "success" } else { "failure" },
                        if c.met { "met" } else { "not met" },
                        esc(&c.condition)
                    );
                }
                conditions.push_str("</ul>");
            }
            let outcome = if !p.enabled {
                "off"
            } else if !p.covers {
                "does not cover this resource"
            } else if p.matched && p.report_only {
                "matches (report-only: not enforced)"
            } else if p.matched {
                "matches"
            } else {
                "does not match"
            };
            let _ = write!(
                s,
                "<tr><td data-label=\"Priority\">{}</td><td data-label=\"Policy\">{}</td><td data-label=\"Action\">{}</td>\
                 <td data-label=\"Conditions\">{conditions}</td><td data-label=\"Outcome\">{}</td></tr>",
                p.priority,
                esc(&p.name),
                p.action.as_str(),
                outcome
            );
        }
        s.push_str("</tbody></table></div></section>");
    }
    s
}

pub async fn explain(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map_or("", |v| v.trim());
    let snap = c.dir.snapshot();
    let mut resources: Vec<(String, String)> = vec![
        ("portal".into(), "User portal".into()),
        ("ldap".into(), "LDAP".into()),
    ];
    let mut apps: Vec<_> = snap.apps.values().collect();
    apps.sort_by_key(|a| a.name.to_lowercase());
    resources.extend(
        apps.iter()
            .map(|a| (format!("app:{}", a.id), format!("SSO app: {}", a.name))),
    );
    let mut profiles: Vec<_> = snap.radius_servers.values().collect();
    profiles.sort_by_key(|r| r.name.to_lowercase());
    resources.extend(
        profiles
            .iter()
            .map(|r| (format!("radius:{}", r.id), format!("RADIUS: {}", r.name))),
    );
    let options: Vec<(&str, &str)> = resources
        .iter()
        .map(|(v, l)| (v.as_str(), l.as_str()))
        .collect();
    let mut body = String::from(
        "<h1>Explain</h1><p class=\"hint\">What Stratus would decide for a user reaching a resource from an \
         address at a time, assuming the right password — each step, each access policy and its conditions. \
         Nothing is recorded.</p>",
    );
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/console/explain\" class=\"filters\">{}{}{}{}<button>Explain</button></form>",
        Field::new("user", "User").value(get("user")).hint("user name, login name or e-mail").render(),
        html::select("resource", "Resource", &options, if get("resource").is_empty() { "portal" } else { get("resource") }),
        Field::new("ip", "Source address").value(get("ip")).hint("the client's; for RADIUS, the NAS's").render(),
        Field::new("at", "Time (UTC)").value(get("at")).hint("empty: now; or 2026-12-07 09:30").render(),
    );
    if get("user").is_empty() {
        return html::page(&admin, "/console/explain", "Explain", &body);
    }
    let resource = match get("resource") {
        "" | "portal" => Ok(None),
        r => Resource::parse(r)
            .map(Some)
            .ok_or_else(|| format!("`{r}` is not a resource")),
    };
    let source = match get("ip") {
        "" => Ok(None),
        ip => ip
            .parse()
            .map(Some)
            .map_err(|_| format!("`{ip}` is not an IP address")),
    };
    let at = match get("at") {
        "" => Ok(None),
        t => crate::insights::parse_time(t)
            .map(Some)
            .ok_or_else(|| format!("`{t}` is not a date and time")),
    };
    let answer = match (resource, source, at) {
        (Ok(resource), Ok(source), Ok(at)) => c
            .dir
            .explain(
                &admin.actor,
                ExplainQuery {
                    user: get("user").to_string(),
                    resource,
                    source,
                    at,
                },
            )
            .map_err(|e| e.to_string()),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
    };
    match answer {
        Ok(x) => body.push_str(&result_html(&x)),
        Err(e) => body.push_str(&html::notice(false, &e)),
    }
    html::page(&admin, "/console/explain", "Explain", &body)
}
