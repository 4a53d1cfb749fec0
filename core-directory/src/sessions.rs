//! Browser sessions of the admin console, the admin API's cookie and the user portal: random tokens, kept only
//! as SHA-256, with idle and absolute lifetimes from the org settings, and whether the core still accepts the
//! session's owner checked on every use. Each session carries its own CSRF token for the forms of the pages it
//! serves. On one node they are kept in memory and do not survive a restart; on a store shared by several nodes
//! they are kept in the store's short-lived state, so any node serves them and an ending ends them everywhere.
//! This module owns no page and no cookie name.

use crate::crypto::{constant_time_eq, random_bytes, sha256_hex};
use crate::store::Store;
use crate::{Directory, Id};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Serialize, Deserialize)]
struct Session {
    #[serde(rename = "owner")]
    admin: Id,
    /// For user (portal) sessions: the user's `auth_revision` at sign-in.
    revision: u64,
    /// The session's CSRF token, for hidden form fields.
    csrf: String,
    /// Unix milliseconds.
    created: i64,
    last_seen: i64,
}

/// Bound on live sessions; the oldest are dropped past it.
const MAX_SESSIONS: usize = 10_000;
/// How long a shared session record is kept at most (the org's lifetimes decide earlier ends).
const SHARED_KEEP_HOURS: i64 = 24 * 7;
/// A shared session's idle timer is written back at most this often (milliseconds), not on every request.
const SHARED_TOUCH_EVERY_MS: i64 = 30_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A shared session's last use (Unix milliseconds): the later of `recorded` (in the session record) and its
/// separate idle entry in `space`. The idle timer is kept apart from the record so that refreshing it can never
/// bring back a session another node just ended.
pub fn shared_last_seen(store: &dyn Store, space: &str, key: &str, recorded: i64) -> i64 {
    let seen = store
        .ephemeral_get(space, &format!("seen:{key}"))
        .ok()
        .flatten()
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(i64::from_be_bytes);
    recorded.max(seen.unwrap_or(0))
}

/// Refresh a live shared session's idle entry when it is older than the write-back interval; returns the last
/// use now recorded.
pub fn shared_touch(
    store: &dyn Store,
    space: &str,
    key: &str,
    last_seen: i64,
    keep: chrono::Duration,
) -> i64 {
    let now = now_ms();
    if now - last_seen < SHARED_TOUCH_EVERY_MS {
        return last_seen;
    }
    let until = chrono::Utc::now() + keep;
    let _ = store.ephemeral_put(
        space,
        &format!("seen:{key}"),
        &now.to_be_bytes(),
        until,
        false,
    );
    now
}

/// The session table: in memory on one node; in the store's short-lived state when the store is shared by
/// several nodes, so a session begun on one node goes on on another and ends everywhere at once.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
    shared: Option<(String, Arc<dyn Store>)>,
}

impl Sessions {
    /// The `space` sessions of a directory (distinct names for distinct cookies: `console`, `portal`, …).
    pub fn for_directory(space: &str, dir: &Directory) -> Self {
        let store = dir.store();
        Sessions {
            inner: Mutex::default(),
            shared: store
                .is_shared()
                .then(|| (format!("sessions:{space}"), Arc::clone(store))),
        }
    }

    fn get(&self, key: &str) -> Option<Session> {
        match &self.shared {
            Some((space, store)) => store
                .ephemeral_get(space, key)
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice(&b).ok()),
            None => self
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .cloned(),
        }
    }

    fn put(&self, key: String, session: Session) {
        match &self.shared {
            Some((space, store)) => {
                let expires = chrono::DateTime::from_timestamp_millis(session.created)
                    .unwrap_or_else(chrono::Utc::now)
                    + chrono::Duration::hours(SHARED_KEEP_HOURS);
                let bytes = serde_json::to_vec(&session).unwrap_or_default();
                if let Err(e) = store.ephemeral_put(space, &key, &bytes, expires, false) {
                    tracing::error!(error = %e, "a session could not be stored");
                }
            }
            None => {
                let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= MAX_SESSIONS && !map.contains_key(&key) {
                    if let Some(oldest) = map
                        .iter()
                        .min_by_key(|(_, s)| s.created)
                        .map(|(k, _)| k.clone())
                    {
                        map.remove(&oldest);
                    }
                }
                map.insert(key, session);
            }
        }
    }

    fn remove(&self, key: &str) {
        match &self.shared {
            Some((space, store)) => {
                if let Err(e) = store.ephemeral_delete(space, key) {
                    tracing::error!(error = %e, "a session could not be ended in the store");
                }
                let _ = store.ephemeral_delete(space, &format!("seen:{key}"));
            }
            None => {
                self.inner
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(key);
            }
        }
    }

    /// Start a user's session, remembering their `auth_revision` (see [`Sessions::touch_user`]).
    pub fn create_with_revision(&self, admin: Id, revision: u64) -> String {
        let token = data_encoding::BASE64URL_NOPAD.encode(&random_bytes(32));
        let now = now_ms();
        self.put(
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

    /// The owner of a live session, refreshing its idle timer.
    pub fn touch(&self, token: &str, dir: &Directory) -> Option<Id> {
        self.touch_session(token, dir).map(|s| s.admin)
    }

    fn touch_session(&self, token: &str, dir: &Directory) -> Option<Session> {
        let (idle, absolute) = dir.org().map_or((30, 720), |o| {
            (o.session_idle_minutes, o.session_absolute_minutes)
        });
        let alive = |s: &Session, now: i64| {
            now - s.last_seen < i64::from(idle) * 60_000
                && now - s.created < i64::from(absolute) * 60_000
        };
        let key = sha256_hex(token.as_bytes());
        let now = now_ms();
        let Some((space, store)) = &self.shared else {
            // One lock for the check and the refresh, so an ending in between cannot be undone by the refresh.
            let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let s = map.get_mut(&key)?;
            if !alive(s, now) {
                map.remove(&key);
                return None;
            }
            s.last_seen = now;
            return Some(s.clone());
        };
        // Shared: the record itself is only written at sign-in (and by a revision change); the idle timer is a
        // separate entry, so refreshing it can never bring back a session another node just ended.
        let mut s = self.get(&key)?;
        s.last_seen = shared_last_seen(store.as_ref(), space, &key, s.last_seen);
        if !alive(&s, now) {
            self.remove(&key);
            return None;
        }
        s.last_seen = shared_touch(
            store.as_ref(),
            space,
            &key,
            s.last_seen,
            chrono::Duration::hours(SHARED_KEEP_HOURS),
        );
        Some(s)
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
        let s = self.touch_session(token, dir)?;
        if valid(&s.admin, s.revision) {
            Some(s.admin)
        } else {
            self.end(token);
            None
        }
    }

    /// Carry a user session over the user's own password change.
    pub fn set_revision(&self, token: &str, revision: u64) {
        let key = sha256_hex(token.as_bytes());
        match &self.shared {
            None => {
                let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(s) = map.get_mut(&key) {
                    s.revision = revision;
                }
            }
            Some((space, store)) => {
                // Taken and put back, never read and rewritten: a session ended meanwhile stays ended.
                let taken = store
                    .ephemeral_take(space, &key)
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice::<Session>(&b).ok());
                if let Some(mut s) = taken {
                    s.revision = revision;
                    self.put(key, s);
                }
            }
        }
    }

    /// The session's CSRF token.
    pub fn csrf(&self, token: &str) -> Option<String> {
        self.get(&sha256_hex(token.as_bytes())).map(|s| s.csrf)
    }

    /// Whether a form's CSRF field is the session's (constant time).
    pub fn csrf_matches(&self, token: &str, field: &str) -> bool {
        self.csrf(token)
            .is_some_and(|c| constant_time_eq(c.as_bytes(), field.as_bytes()))
    }

    /// End a session.
    pub fn end(&self, token: &str) {
        self.remove(&sha256_hex(token.as_bytes()));
    }
}
