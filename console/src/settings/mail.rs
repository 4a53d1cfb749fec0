//! Mail: whether a mail server is configured, the queue of messages waiting to be sent or retried (purpose,
//! recipient, attempts, next attempt, the mail server's last answer; never a message's text, which may carry a
//! single-use link), and a test message. The queue is the core's; this page only reads it.

use super::value_or;
use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use chrono::Utc;
use core_directory::access::Permission;
use core_directory::mail::{Purpose, QueuedView};
use std::collections::HashMap;
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new().route("/console/settings/mail", get(page).post(send_test))
}

fn purpose_label(p: Purpose) -> &'static str {
    match p {
        Purpose::Activation => "activation link",
        Purpose::PasswordReset => "password reset link",
        Purpose::PasswordChanged => "password changed notice",
        Purpose::ExpiryReminder => "password expiry reminder",
        Purpose::Test => "test message",
    }
}

pub async fn page(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("test") => html::notice(
            true,
            "Test message queued. It waits below until the mail server accepts it.",
        ),
        _ => String::new(),
    };
    render(&c, &admin, &[], &FormErrors::default(), &message)
}

fn render(
    c: &Console,
    admin: &SignedIn,
    values: &[(String, String)],
    errors: &FormErrors,
    top: &str,
) -> Response {
    let settings = c.dir.mail_settings();
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/settings\">Settings</a> /</p><h1>Mail</h1>{top}"
    );
    body.push_str("<section><h2>Mail server</h2>");
    if settings.enabled {
        let _ = write!(
            body,
            "<p><span class=\"badge active\">configured</span> Stratus mails activation links to users created \
             without a password, forgotten-password links, password notices and expiry reminders.</p>\
             <dl><dt>Activation links last</dt><dd>{}</dd><dt>Reset links last</dt><dd>{}</dd></dl>",
            count(settings.activation_days, "day"),
            count(settings.reset_minutes, "minute"),
        );
    } else {
        body.push_str(
            "<p><span class=\"badge pending\">not configured</span> Stratus sends no mail: a user's page gives \
             you the activation link to hand over, and a user who forgets a password cannot reset it by e-mail (an \
             admin sets a new one). A mail server is set in <code>[mail]</code> of <code>stratus.toml</code> (<code>smtp_host</code>, <code>from</code>).</p>",
        );
    }
    body.push_str("</section>");
    body.push_str(&queue_section(c, settings.enabled));
    if can(admin, Permission::ManageOrg) && settings.enabled {
        let _ = write!(
            body,
            "<section><h2>Send a test message</h2><form method=\"post\" action=\"/console/settings/mail\" \
             class=\"record\">{}{}{}<button>Send test message</button></form></section>",
            errors.others(&["to"]),
            admin.csrf_field(),
            Field::new("to", "To")
                .kind("email")
                .value(&value_or(values, "to", admin.actor.label.clone()))
                .hint("a short message, “<organisation>: test message”, saying that Stratus can send mail")
                .autocomplete("email")
                .required()
                .errors(errors)
                .render(),
        );
    } else {
        // A refused test from a role without the form, or with no mail server: its errors at the top.
        body.push_str(&errors.others(&[]));
    }
    let mut r = html::page(admin, "/console/settings", "Mail", &body);
    if !errors.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

fn count(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// The queue: where each message goes and how its delivery is going.
fn queue_section(c: &Console, enabled: bool) -> String {
    let mut s = String::from("<section><h2>Queue</h2>");
    let queue = match c.dir.mail_queue() {
        Ok(q) => q,
        Err(e) => {
            s.push_str(&html::notice(false, &e.to_string()));
            s.push_str("</section>");
            return s;
        }
    };
    if queue.is_empty() {
        s.push_str(if enabled {
            "<p>Nothing is waiting: every message was sent.</p></section>"
        } else {
            "<p>Nothing is waiting: without a mail server no message is queued.</p></section>"
        });
        return s;
    }
    let failed = queue.iter().filter(|m| m.last_error.is_some()).count();
    let _ = write!(
        s,
        "<p role=\"status\">{} waiting, {failed} of them after a failed attempt. A message is given up after 12 \
         attempts or a permanent refusal.</p>",
        if queue.len() == 1 {
            "1 message".to_string()
        } else {
            format!("{} messages", queue.len())
        }
    );
    s.push_str(&queue_table(c, &queue));
    s.push_str("</section>");
    s
}

fn queue_table(c: &Console, queue: &[QueuedView]) -> String {
    let snap = c.dir.snapshot();
    let now = Utc::now();
    let mut s = String::from(
        "<div class=\"table\"><table class=\"outbox mail stack\"><thead><tr><th scope=\"col\">Purpose</th>\
         <th scope=\"col\">To</th><th scope=\"col\">Attempts</th><th scope=\"col\">Next attempt</th>\
         <th scope=\"col\">Last error</th></tr></thead><tbody>",
    );
    for m in queue {
        // The recipient links to the user the message is about, when there is one.
        let to = match m.user.as_ref().and_then(|u| snap.user(u)) {
            Some(u) => format!("<a href=\"/console/users/{}\">{}</a>", u.id, esc(&m.to)),
            None => esc(&m.to),
        };
        let _ = write!(
            s,
            "<tr><td data-label=\"Purpose\">{}</td><td data-label=\"To\">{to}</td><td data-label=\"Attempts\">{}</td>\
             <td data-label=\"Next attempt\">{}</td><td data-label=\"Last error\">{}</td></tr>",
            purpose_label(m.purpose),
            m.attempts,
            if m.next_attempt_at <= now {
                "now".to_string()
            } else {
                // Retries start seconds apart: minutes would hide them.
                m.next_attempt_at
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()
            },
            m.last_error.as_deref().map_or_else(|| "—".to_string(), esc),
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

pub async fn send_test(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    match c
        .dir
        .send_test_mail(&admin.actor, field(&fields, "to"))
        .await
    {
        Ok(_) => html::redirect("/console/settings/mail?done=test"),
        Err(e) => render(&c, &admin, &fields, &html::form_errors(&e), ""),
    }
}
