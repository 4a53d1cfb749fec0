//! Admin console and user portal sessions: random tokens, kept only as SHA-256 in memory, with idle and absolute lifetimes from
//! the org settings. Sessions do not survive a restart.

use core_directory::crypto::{random_bytes, sha256_hex};
use core_directory::{Directory, Id};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Session {
    admin: Id,
    /// For user (portal) sessions: the user's `auth_revision` at sign-in.
    revision: u64,
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

    /// End a session.
    pub fn end(&self, token: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&sha256_hex(token.as_bytes()));
    }
}
