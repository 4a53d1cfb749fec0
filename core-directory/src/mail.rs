//! Outgoing mail as the core sees it: what a message says (the templates, in plain text and HTML, with the
//! organisation's name) and how a queued message is kept. Messages wait in the store's short-lived state (space
//! `mail`, sealed with the master key: they carry single-use links) until a sender delivers them; the sender
//! (SMTP, in its own crate) asks the directory for due messages, takes a lease on one, and reports the outcome.
//! This module sends nothing and knows no transport.

use crate::id::Id;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a message is sent; also its event detail and the admin queue's column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The welcome message of a user whose password is pending, with the link that sets it.
    Activation,
    /// A forgotten-password link.
    PasswordReset,
    /// The notice sent after a password was reset or changed.
    PasswordChanged,
    /// The password expires soon.
    ExpiryReminder,
    /// An admin's test of the mail settings.
    Test,
}

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A message in the queue, as stored (sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    pub id: Id,
    pub purpose: Purpose,
    /// The user it concerns, when one does.
    pub user: Option<Id>,
    pub message: Message,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A queued message as admins see it: where it goes and how delivery is going, never its text (it may carry a
/// single-use link).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueuedView {
    pub id: Id,
    pub purpose: Purpose,
    pub to: String,
    pub user: Option<Id>,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&Queued> for QueuedView {
    fn from(q: &Queued) -> Self {
        QueuedView {
            id: q.id.clone(),
            purpose: q.purpose,
            to: q.message.to.clone(),
            user: q.user.clone(),
            attempts: q.attempts,
            next_attempt_at: q.next_attempt_at,
            last_error: q.last_error.clone(),
            created_at: q.created_at,
        }
    }
}

/// Delivery attempts before a message is dropped (with an event): about two days of retries.
pub const MAX_ATTEMPTS: u32 = 12;

/// How long a message may stay queued at most (beyond the last retry).
pub fn queue_lifetime() -> Duration {
    Duration::days(3)
}

/// The wait before the next attempt after `attempts` failures: `base` seconds (30 by default), doubling, at
/// most 6 hours.
pub fn backoff(base: i64, attempts: u32) -> Duration {
    let secs = base.max(1).saturating_mul(1i64 << attempts.min(10));
    Duration::seconds(secs.min(6 * 3600))
}

/// What the templates need to know about the organisation.
pub struct Sender<'a> {
    pub org: &'a str,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One message in both forms: paragraphs, and at most one button-like link.
fn compose(
    to: &str,
    subject: String,
    sender: &Sender<'_>,
    paragraphs: &[String],
    link: Option<(&str, &str)>,
) -> Message {
    let mut text = String::new();
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;color:#1f2937;max-width:560px\">\
         <p style=\"font-weight:600\">{}</p>",
        esc(sender.org)
    );
    for p in paragraphs {
        text.push_str(p);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>", esc(p)));
    }
    if let Some((label, url)) = link {
        text.push_str(&format!("{label}:\n{url}\n\n"));
        html.push_str(&format!(
            "<p><a href=\"{u}\" style=\"display:inline-block;padding:10px 16px;background:#1d4ed8;color:#fff;\
             text-decoration:none;border-radius:6px\">{l}</a></p><p style=\"font-size:13px;color:#4b5563\">\
             If the button does not work, open this address: {u}</p>",
            u = esc(url),
            l = esc(label)
        ));
    }
    text.push_str(&format!("— {}\n", sender.org));
    html.push_str("</body></html>");
    Message {
        to: to.to_string(),
        subject,
        text,
        html,
    }
}

/// The welcome message with the activation link.
pub fn activation(
    to: &str,
    name: &str,
    username: &str,
    url: &str,
    valid_days: i64,
    s: &Sender<'_>,
) -> Message {
    compose(
        to,
        format!("Activate your {} account", s.org),
        s,
        &[
            format!("Hello {name},"),
            format!(
                "An account has been created for you at {}. Your user name is {username}. Choose your \
                 password to activate it.",
                s.org
            ),
            format!(
                "The link works once and for {valid_days} days. If you did not expect this message, you can \
                 ignore it."
            ),
        ],
        Some(("Choose your password", url)),
    )
}

/// The forgotten-password link.
pub fn password_reset(
    to: &str,
    name: &str,
    url: &str,
    valid_minutes: i64,
    s: &Sender<'_>,
) -> Message {
    compose(
        to,
        format!("Reset your {} password", s.org),
        s,
        &[
            format!("Hello {name},"),
            "Someone asked to reset the password of your account. If it was you, choose a new password \
             with the link below."
                .to_string(),
            format!(
                "The link works once and for {valid_minutes} minutes. If it was not you, ignore this message: \
                 your password stays as it is."
            ),
        ],
        Some(("Choose a new password", url)),
    )
}

/// The notice after a password was reset.
pub fn password_changed(
    to: &str,
    name: &str,
    at: DateTime<Utc>,
    portal: &str,
    s: &Sender<'_>,
) -> Message {
    compose(
        to,
        format!("Your {} password was changed", s.org),
        s,
        &[
            format!("Hello {name},"),
            format!(
                "The password of your account was reset on {} UTC, and every session signed in with the \
                 old one has ended.",
                at.format("%Y-%m-%d at %H:%M")
            ),
            "If you did not do this, contact your administrator at once.".to_string(),
        ],
        Some(("Open your apps", portal)),
    )
}

/// The reminder that a password expires soon.
pub fn expiry_reminder(
    to: &str,
    name: &str,
    expires: DateTime<Utc>,
    portal: &str,
    s: &Sender<'_>,
) -> Message {
    let days = (expires - Utc::now()).num_days().max(0);
    compose(
        to,
        format!(
            "Your {} password expires in {days} day{}",
            s.org,
            if days == 1 { "" } else { "s" }
        ),
        s,
        &[
            format!("Hello {name},"),
            format!(
                "Your password expires on {} UTC. Change it in your apps portal before then to keep signing in.",
                expires.format("%Y-%m-%d")
            ),
        ],
        Some(("Change your password", portal)),
    )
}

/// An admin's test message.
pub fn test(to: &str, s: &Sender<'_>) -> Message {
    compose(
        to,
        format!("{}: test message", s.org),
        s,
        &[
            "This test message shows that Stratus can send mail with the settings you gave."
                .to_string(),
        ],
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_the_link_in_both_forms_and_escape_html() {
        let s = Sender { org: "Acme <Labs>" };
        let m = activation(
            "ada@example.com",
            "Ada",
            "ada",
            "https://id.example.com/activate?token=a&b",
            7,
            &s,
        );
        assert!(m.text.contains("https://id.example.com/activate?token=a&b"));
        assert!(m
            .html
            .contains("https://id.example.com/activate?token=a&amp;b"));
        assert!(m.html.contains("Acme &lt;Labs&gt;"));
        assert!(!m.html.contains("<Labs>"));
        assert_eq!(m.subject, "Activate your Acme <Labs> account");
    }

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(backoff(30, 0), Duration::seconds(30));
        assert_eq!(backoff(30, 1), Duration::seconds(60));
        assert_eq!(backoff(30, 20), Duration::seconds(6 * 3600));
    }
}
