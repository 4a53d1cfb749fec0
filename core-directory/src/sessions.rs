//! Browser sessions of the admin console, the admin API's cookie and the user portal: random tokens, kept only
//! as SHA-256 in memory, with idle and absolute lifetimes from the org settings, and whether the core still
//! accepts the session's owner checked on every use. Each session carries its own CSRF token for the forms of
//! the pages it serves. Sessions do not survive a restart. This module owns no page and no cookie name.

use crate::crypto::{constant_time_eq, random_bytes, sha256_hex};
use crate::{Directory, Id};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Session {
    admin: Id,
    /// For user (portal) sessions: the user's `auth_revision` at sign-in.
    revision: u64,
    /// The session's CSRF token, for hidden form fields.
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// Bound on live sessions; the oldest are dropped past it.
const MAX_SESSIONS: usize = 10_000;

/// The session table.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Start a user's session, remembering their `auth_revision` (see [`Sessions::touch_user`]).
    pub fn create_with_revision(&self, admin: Id, revision: u64) -> String {
        let token = data_encoding::BASE64URL_NOPAD.encode(&random_bytes(32));
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            sha256_hex(token.as_bytes()),
            Session {
                admin,
                revision,
                csrf: data_encoding::BASE64URL_NOPAD.encode(&random_bytes(24)),
                created: now,
                last_seen: now,
            },
        );
        token
    }

    /// The admin of a live session, refreshing its idle timer.
    pub fn touch(&self, token: &str, dir: &Directory) -> Option<Id> {
        let (idle, absolute) = dir.org().map_or((30, 720), |o| {
            (o.session_idle_minutes, o.session_absolute_minutes)
        });
        let key = sha256_hex(token.as_bytes());
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let alive = map.get(&key).is_some_and(|s| {
            now.duration_since(s.last_seen) < Duration::from_secs(u64::from(idle) * 60)
                && now.duration_since(s.created) < Duration::from_secs(u64::from(absolute) * 60)
        });
        if !alive {
            map.remove(&key);
            return None;
        }
        let s = map.get_mut(&key)?;
        s.last_seen = now;
        Some(s.admin.clone())
    }

    /// The admin of a live console session that the core still accepts (the admin exists, is not locked, and
    /// had no password set since); a session it refuses ends.
    pub fn touch_admin(&self, token: &str, dir: &Directory) -> Option<Id> {
        self.touch_checked(token, dir, |id, rev| dir.admin_session_valid(id, rev))
    }

    /// The user of a live user session that the core still accepts (active, not locked, no password set or
    /// reset since); a session it refuses ends.
    pub fn touch_user(&self, token: &str, dir: &Directory) -> Option<Id> {
        self.touch_checked(token, dir, |id, rev| dir.user_session_valid(id, rev))
    }

    /// A live session whose owner and remembered revision `valid` still accepts; one it refuses ends.
    fn touch_checked(
        &self,
        token: &str,
        dir: &Directory,
        valid: impl Fn(&Id, u64) -> bool,
    ) -> Option<Id> {
        let owner = self.touch(token, dir)?;
        let revision = {
            let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&sha256_hex(token.as_bytes()))?.revision
        };
        if valid(&owner, revision) {
            Some(owner)
        } else {
            self.end(token);
            None
        }
    }

    /// Carry a user session over the user's own password change.
    pub fn set_revision(&self, token: &str, revision: u64) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = map.get_mut(&sha256_hex(token.as_bytes())) {
            s.revision = revision;
        }
    }

    /// The session's CSRF token.
    pub fn csrf(&self, token: &str) -> Option<String> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&sha256_hex(token.as_bytes()))
            .map(|s| s.csrf.clone())
    }

    /// Whether a form's CSRF field is the session's (constant time).
    pub fn csrf_matches(&self, token: &str, field: &str) -> bool {
        self.csrf(token)
            .is_some_and(|c| constant_time_eq(c.as_bytes(), field.as_bytes()))
    }

    /// End a session.
    pub fn end(&self, token: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&sha256_hex(token.as_bytes()));
    }
}
