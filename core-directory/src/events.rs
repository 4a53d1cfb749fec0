//! Directory insights: the append-only event record of every mutation and every authentication attempt.
//!
//! Events never carry passwords, OTP codes or secrets; the deny reason goes here, not to the client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

/// The longest reason an event keeps, in characters.
pub const MAX_REASON: usize = 512;

/// Text from a peer made fit for a log line: printable text of at most 64 characters as it is; anything else
/// (control characters, escape sequences, long input) as `hex:` and the hex of its first 32 bytes, with the
/// length. No log line carries more than that of a peer's input.
pub fn log_text(text: &str) -> String {
    if text.chars().count() <= 64 && !text.chars().any(unprintable) {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let head = &bytes[..bytes.len().min(32)];
    format!(
        "hex:{}{} ({} bytes)",
        data_encoding::HEXLOWER.encode(head),
        if bytes.len() > 32 { "…" } else { "" },
        bytes.len()
    )
}

/// Characters that do not show as themselves in a log line: controls, whitespace other than the space, and the
/// invisible format characters (zero-width, bidirectional overrides and isolates, soft hyphen, byte-order mark).
fn unprintable(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

/// Which part of Stratus produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Directory,
    Ldap,
    Radius,
    Sso,
    Scim,
    Admin,
    Portal,
    /// Outgoing mail.
    Mail,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Directory => "directory",
            Service::Ldap => "ldap",
            Service::Radius => "radius",
            Service::Sso => "sso",
            Service::Scim => "scim",
            Service::Admin => "admin",
            Service::Portal => "portal",
            Service::Mail => "mail",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Service::Directory,
            Service::Ldap,
            Service::Radius,
            Service::Sso,
            Service::Scim,
            Service::Admin,
            Service::Portal,
            Service::Mail,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Monotonic id assigned by the store; also the pagination cursor.
    pub id: u64,
    pub time: DateTime<Utc>,
    pub service: Service,
    /// e.g. `user_create`, `password_set`, `ldap_bind`, `radius_auth`, `admin_login`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub success: bool,
    /// Who did it: an admin's email, `api-key:<name>`, a username, or `system`.
    pub actor: Option<String>,
    /// Username of the directory user concerned, when there is one.
    pub username: Option<String>,
    /// Id of the entity acted on.
    pub target_id: Option<String>,
    /// Kind of the entity acted on (`user`, `group`, `radius_server`, ...).
    pub target_type: Option<String>,
    #[schema(value_type = Option<String>)]
    pub client_ip: Option<IpAddr>,
    /// Why an attempt failed (never sent to a protocol peer beyond what its protocol allows).
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// A new event stamped now; the store assigns the id.
    pub fn new(service: Service, event_type: &str, success: bool) -> Self {
        Event {
            id: 0,
            time: Utc::now(),
            service,
            event_type: event_type.to_string(),
            success,
            actor: None,
            username: None,
            target_id: None,
            target_type: None,
            client_ip: None,
            reason: None,
            details: serde_json::Map::new(),
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn user(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    pub fn target(mut self, kind: &str, id: impl ToString) -> Self {
        self.target_type = Some(kind.to_string());
        self.target_id = Some(id.to_string());
        self
    }

    pub fn client(mut self, ip: Option<IpAddr>) -> Self {
        self.client_ip = ip;
        self
    }

    /// Why, in words; a reason carrying a peer's input is cut to its first [`MAX_REASON`] characters.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        let mut reason: String = reason.into();
        if reason.chars().count() > MAX_REASON {
            reason = reason.chars().take(MAX_REASON).collect::<String>() + "…";
        }
        self.reason = Some(reason);
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

/// A query over the event record; newest first.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub service: Option<Service>,
    pub event_type: Option<String>,
    /// Matches the username, the actor, or the target id.
    pub user: Option<String>,
    /// Only successes (`true`) or failures (`false`).
    pub success: Option<bool>,
    /// Only events from this client address.
    pub client_ip: Option<IpAddr>,
    /// Only events with an id below this (the previous page's last id).
    pub before_id: Option<u64>,
    pub limit: usize,
    /// Examine at most this many of the newest events (a bounded look-up, e.g. a page's "recent events").
    pub scan_limit: Option<usize>,
}

impl EventQuery {
    pub fn matches(&self, e: &Event) -> bool {
        self.since.is_none_or(|s| e.time >= s)
            && self.until.is_none_or(|u| e.time < u)
            && self.service.is_none_or(|s| e.service == s)
            && self.event_type.as_deref().is_none_or(|t| e.event_type == t)
            && self.success.is_none_or(|ok| e.success == ok)
            && self.client_ip.is_none_or(|ip| e.client_ip == Some(ip))
            && self.user.as_deref().is_none_or(|u| {
                e.username
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(u))
                    || e.actor
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(u))
                    || e.target_id.as_deref() == Some(u)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_in_logs_is_bounded_and_hex_when_not_printable() {
        assert_eq!(log_text("alice"), "alice");
        assert_eq!(log_text("a\u{1b}[31m"), "hex:611b5b33316d (6 bytes)");
        assert!(
            log_text("admin\u{202e}nimda").starts_with("hex:"),
            "a bidirectional override"
        );
        assert!(
            log_text("a\u{2028}b").starts_with("hex:"),
            "a line separator"
        );
        assert!(log_text("tab\there").starts_with("hex:"));
        assert_eq!(log_text("two words"), "two words");
        let long = "x".repeat(1000);
        let shown = log_text(&long);
        assert!(
            shown.starts_with("hex:7878") && shown.ends_with("(1000 bytes)"),
            "{shown}"
        );
        assert!(shown.len() < 100);
        let e = Event::new(Service::Ldap, "t", false).reason("y".repeat(10_000));
        assert_eq!(e.reason.map(|r| r.chars().count()), Some(MAX_REASON + 1));
    }
}
