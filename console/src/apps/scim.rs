//! An app's outbound SCIM connector: base URL, token (never shown back), group push and the loopback http
//! switch; its status and outbox of pending and failed deliveries, and "retry now".

use super::{count, detail_page, not_found, Answering};
use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use chrono::Utc;
use core_directory::access::Permission;
use core_directory::directory::{ScimConnectorInput, ScimConnectorView};
use core_directory::model::OutboxAction;
use core_directory::views::AppView;
use core_directory::Id;
use std::fmt::Write as _;

fn action_label(a: OutboxAction) -> &'static str {
    match a {
        OutboxAction::UpsertUser => "create or update user",
        OutboxAction::DeactivateUser => "deactivate user",
        OutboxAction::UpsertGroup => "create or update group",
        OutboxAction::DeleteGroup => "delete group",
    }
}

fn outbox_table(c: &Console, v: &ScimConnectorView) -> String {
    let snap = c.dir.snapshot();
    let now = Utc::now();
    let mut s = String::from("<div class=\"table\"><table class=\"outbox\"><thead><tr><th scope=\"col\">For</th><th scope=\"col\">Delivery</th><th scope=\"col\">State</th><th scope=\"col\">Attempts</th><th scope=\"col\">Next attempt</th><th scope=\"col\">Last error</th></tr></thead><tbody>");
    for o in &v.outbox {
        let who = snap.user(&o.subject).map_or_else(
            || {
                snap.group(&o.subject).map_or_else(
                    || format!("<code>{}</code>", o.subject),
                    |g| format!("<a href=\"/console/groups/{}\">{}</a>", g.id, esc(&g.name)),
                )
            },
            |u| {
                format!(
                    "<a href=\"/console/users/{}\">{}</a>",
                    u.id,
                    esc(&u.username)
                )
            },
        );
        let (state, class) = if o.last_error.is_some() {
            ("failed", "failure")
        } else {
            ("pending", "pending")
        };
        let _ = write!(
            s,
            "<tr><td>{who}</td><td>{}</td><td><span class=\"badge {class}\">{state}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            action_label(o.action),
            o.attempts,
            if o.next_attempt_at <= now {
                "now".to_string()
            } else {
                // The backoff starts at seconds: minutes would hide it.
                o.next_attempt_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            },
            o.last_error.as_deref().map_or_else(String::new, esc),
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

pub(super) fn scim_section(
    c: &Console,
    admin: &SignedIn,
    a: &AppView,
    errors: &FormErrors,
    values: &[(String, String)],
) -> String {
    let write = can(admin, Permission::ManageOrg);
    let current = c.dir.scim_connector(&a.id).ok();
    let mut s = String::from("<section><h2>SCIM provisioning</h2><p class=\"hint\">Stratus creates the app’s users (and, with group push, its groups) over SCIM as they gain access, \
        and deactivates them when they lose it.</p>");
    match &current {
        Some(v) => {
            let failed = v.outbox.iter().filter(|o| o.last_error.is_some()).count();
            let _ = write!(
                s,
                "<dl><dt>Base URL</dt><dd><code>{}</code>{}</dd><dt>Group push</dt><dd>{}</dd><dt>Status</dt><dd id=\"scim-status\">{}</dd></dl>",
                esc(&v.base_url),
                if v.insecure_http {
                    " <span class=\"badge warn\">plain http: the token travels in clear</span>"
                } else {
                    ""
                },
                if v.group_push { "on" } else { "off" },
                if v.outbox.is_empty() {
                    format!("up to date; {} users and groups provisioned", v.provisioned)
                } else {
                    format!(
                        "{} provisioned; {} waiting, {failed} of them failed",
                        v.provisioned,
                        count(v.outbox.len(), "delivery", "deliveries")
                    )
                },
            );
            if !v.outbox.is_empty() {
                s.push_str("<h3>Outbox</h3>");
                s.push_str(&outbox_table(c, v));
                let now = Utc::now();
                if write && v.outbox.iter().any(|o| o.next_attempt_at > now) {
                    let _ = write!(
                        s,
                        "<form method=\"post\" action=\"/console/apps/{}/scim/retry\">{}<button>Retry now</button></form>",
                        a.id,
                        admin.csrf_field()
                    );
                }
            }
        }
        None => s.push_str("<p>No connector: users are not provisioned into this app.</p>"),
    }
    if write {
        let fresh = values.is_empty();
        let url = if fresh {
            current
                .as_ref()
                .map_or(String::new(), |v| v.base_url.clone())
        } else {
            field(values, "base_url").to_string()
        };
        let flag = |name: &str, cur: bool| {
            if (fresh && cur) || (!fresh && field(values, name) == "on") {
                "on"
            } else {
                ""
            }
        };
        let _ = write!(
            s,
            "<h3>{}</h3>{}<form method=\"post\" action=\"/console/apps/{}/scim\" class=\"record\">{}\
             <input type=\"hidden\" name=\"do\" value=\"set\">{}{}{}{}<button>Save connector</button></form>",
            if current.is_some() { "Change the connector" } else { "Set up a connector" },
            errors.others(&["base_url", "token"]),
            a.id,
            admin.csrf_field(),
            Field::new("base_url", "SCIM base URL")
                .kind("url")
                .value(&url)
                .hint("https://…/scim/v2 as the app documents it")
                .errors(errors)
                .render(),
            Field::new("token", "Bearer token")
                .kind("password")
                .autocomplete("off")
                .hint(if current.is_some() {
                    "not shown; leave empty to keep the current token (only while the URL stays the same)"
                } else {
                    "the API token the app issued for provisioning"
                })
                .errors(errors)
                .render(),
            Field::new("group_push", "Push groups too")
                .kind("checkbox")
                .value(flag("group_push", current.as_ref().is_some_and(|v| v.group_push)))
                .hint("bound groups are created in the app with their provisioned members")
                .render(),
            Field::new("allow_insecure_http", "Allow plain http to a loopback address")
                .kind("checkbox")
                .value(flag("allow_insecure_http", current.as_ref().is_some_and(|v| v.insecure_http)))
                .hint("for a test endpoint on this machine only: the token travels in clear")
                .render(),
        );
        if current.is_some() {
            let _ = write!(
                s,
                "<form method=\"post\" action=\"/console/apps/{}/scim\">{}<input type=\"hidden\" name=\"do\" value=\"remove\">\
                 <button class=\"secondary\">Remove the connector</button></form>",
                a.id,
                admin.csrf_field()
            );
        }
    }
    s.push_str("</section>");
    s
}

/// Set or remove the SCIM connector.
pub async fn set(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return not_found(&admin);
    };
    if field(&fields, "do") == "remove" {
        return match c.dir.delete_scim_connector(&admin.actor, &id).await {
            Ok(()) => html::redirect(&format!("/console/apps/{id}?done=scim_removed")),
            Err(e) => detail_page(
                &c,
                &admin,
                &id,
                Answering::None,
                &[],
                &html::form_errors(&e),
                "",
            ),
        };
    }
    let token = field(&fields, "token").trim();
    let input = ScimConnectorInput {
        base_url: field(&fields, "base_url").trim().to_string(),
        token: (!token.is_empty()).then(|| token.to_string()),
        group_push: Some(field(&fields, "group_push") == "on"),
        allow_insecure_http: field(&fields, "allow_insecure_http") == "on",
    };
    // The token is never sent back in a form.
    let values: Vec<(String, String)> = fields.into_iter().filter(|(k, _)| k != "token").collect();
    match c.dir.set_scim_connector(&admin.actor, &id, input).await {
        Ok(_) => html::redirect(&format!("/console/apps/{id}?done=scim_saved")),
        Err(e) => detail_page(
            &c,
            &admin,
            &id,
            Answering::Scim,
            &values,
            &html::form_errors(&e),
            "",
        ),
    }
}

/// Make every waiting delivery of the app due now.
pub async fn retry(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return not_found(&admin);
    };
    match c.dir.retry_outbox(&admin.actor, &id).await {
        Ok(n) => html::redirect(&format!("/console/apps/{id}?done=retry&n={n}")),
        Err(e) => detail_page(
            &c,
            &admin,
            &id,
            Answering::None,
            &[],
            &html::form_errors(&e),
            "",
        ),
    }
}
