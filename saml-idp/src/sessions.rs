//! Browser state of the IdP: IdP sessions (the cookie after a login), login transactions (a login in progress,
//! with its CSRF token and the SSO request it will answer), and the AuthnRequest ids already seen. Session tokens
//! are kept only as SHA-256. On one node the tables are in memory, bounded, and do not survive a restart; on a
//! store shared by several nodes they live in the store's short-lived state, so a login begun on one node goes on
//! on another, and a logout or a single logout on any node ends the session everywhere. This module owns no page.

use chrono::{DateTime, Utc};
use core_directory::crypto::{random_bytes, sha256_hex};
use core_directory::sessions;
use core_directory::store::Store;
use core_directory::{Id, MfaChallenge};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_SESSIONS: usize = 50_000;
const MAX_LOGINS: usize = 50_000;
const MAX_SEEN: usize = 200_000;
/// How long a login page stays usable.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Wrong codes or passwords allowed in one login transaction before it must start over.
pub const LOGIN_ATTEMPTS: u8 = 5;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A requested NameID format: one of the formats the IdP knows.
pub type KnownFormat = Option<&'static str>;

/// A [`KnownFormat`] is stored by its URI.
mod known_format {
    use crate::protocol::{NAMEID_EMAIL, NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<&'static str>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(f) => s.serialize_some(f),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        Ok(v.and_then(|f| {
            [
                NAMEID_EMAIL,
                NAMEID_PERSISTENT,
                NAMEID_TRANSIENT,
                NAMEID_UNSPECIFIED,
            ]
            .into_iter()
            .find(|k| *k == f)
        }))
    }
}

pub fn token() -> String {
    data_encoding::BASE64URL_NOPAD.encode(&random_bytes(32))
}

/// An app the session has signed in to (for SLO).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpSession {
    pub app: Id,
    pub nameid: String,
}

/// A signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdpSession {
    pub user: Id,
    pub mfa: bool,
    pub authn_instant: DateTime<Utc>,
    /// The SessionIndex sent in assertions.
    pub index: String,
    pub apps: Vec<SpSession>,
    /// A CSRF token for the portal's forms.
    pub csrf: String,
    /// The user's `auth_revision` when the session began: a password set or reset, a lock or a state change
    /// moves it, and the session ends.
    pub revision: u64,
    /// Unix milliseconds.
    created: i64,
    last_seen: i64,
}

/// The SSO request a login will answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSso {
    pub app: Id,
    /// `None` for an IdP-initiated (unsolicited) response.
    pub request_id: Option<String>,
    pub acs_url: String,
    pub relay_state: Option<String>,
    #[serde(with = "known_format")]
    pub nameid_format: KnownFormat,
    /// The SP asked for no interaction: any answer but an assertion goes back as a SAML status.
    pub is_passive: bool,
}

/// Where a login transaction stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Stage {
    Password,
    Totp(MfaChallenge),
    /// The right password was given but it has expired: the user sets a new one first.
    NewPassword {
        user: Id,
    },
}

/// A login in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    pub csrf: String,
    /// SHA-256 of the browser cookie the transaction is bound to (so a login form cannot be planted).
    pub browser: String,
    pub sso: Option<PendingSso>,
    pub stage: Stage,
    pub username: String,
    /// The user is already signed in and only needs to give a code (step-up for an app).
    pub session_user: Option<Id>,
    /// The password was right but expired: after the code, the new-password form (not a session).
    pub then_new_password: bool,
    pub attempts: u8,
    /// Unix milliseconds.
    created: i64,
}

impl Login {
    pub fn new(browser_cookie: &str, sso: Option<PendingSso>) -> Self {
        Login {
            csrf: token(),
            browser: sha256_hex(browser_cookie.as_bytes()),
            sso,
            stage: Stage::Password,
            username: String::new(),
            session_user: None,
            then_new_password: false,
            attempts: 0,
            created: now_ms(),
        }
    }

    pub fn bound_to(&self, browser_cookie: &str) -> bool {
        core_directory::crypto::constant_time_eq(
            self.browser.as_bytes(),
            sha256_hex(browser_cookie.as_bytes()).as_bytes(),
        )
    }
}

/// Lifetimes of IdP sessions.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
}

/// How long a shared session record is kept at most (the org's lifetimes decide earlier ends).
const SHARED_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Bound on the sessions one single logout looks at.
const MAX_SLO_MATCHES: usize = 1_000;

/// Something kept in a table, with the time it was made (for evicting the oldest when a table is full).
trait Aged {
    fn created_ms(&self) -> i64;
}

impl Aged for IdpSession {
    fn created_ms(&self) -> i64 {
        self.created
    }
}

impl Aged for Login {
    fn created_ms(&self) -> i64 {
        self.created
    }
}

impl Aged for i64 {
    fn created_ms(&self) -> i64 {
        *self
    }
}

/// One table of browser state: in memory (bounded) or in a shared store's `space`.
struct Table<V> {
    memory: Mutex<HashMap<String, V>>,
    max: usize,
    shared: Option<(&'static str, Arc<dyn Store>)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<V: Clone + Serialize + DeserializeOwned + Aged> Table<V> {
    fn new(max: usize) -> Self {
        Table {
            memory: Mutex::default(),
            max,
            shared: None,
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        match &self.shared {
            Some((space, store)) => match store.ephemeral_get(space, key) {
                Ok(b) => b.and_then(|b| serde_json::from_slice(&b).ok()),
                Err(e) => {
                    tracing::warn!(error = %e, space, "IdP state is unreachable");
                    None
                }
            },
            None => lock(&self.memory).get(key).cloned(),
        }
    }

    fn put(&self, key: String, v: V, keep: Duration) {
        match &self.shared {
            Some((space, store)) => {
                let until = Utc::now() + chrono::Duration::from_std(keep).unwrap_or_default();
                let bytes = serde_json::to_vec(&v).unwrap_or_default();
                if let Err(e) = store.ephemeral_put(space, &key, &bytes, until, false) {
                    tracing::error!(error = %e, space, "IdP state could not be stored");
                }
            }
            None => {
                let mut map = lock(&self.memory);
                if map.len() >= self.max && !map.contains_key(&key) {
                    if let Some(oldest) = map
                        .iter()
                        .min_by_key(|(_, v)| v.created_ms())
                        .map(|(k, _)| k.clone())
                    {
                        map.remove(&oldest);
                    }
                }
                map.insert(key, v);
            }
        }
    }

    fn take(&self, key: &str) -> Option<V> {
        match &self.shared {
            Some((space, store)) => match store.ephemeral_take(space, key) {
                Ok(b) => b.and_then(|b| serde_json::from_slice(&b).ok()),
                Err(e) => {
                    tracing::error!(error = %e, space, "IdP state could not be removed");
                    None
                }
            },
            None => lock(&self.memory).remove(key),
        }
    }

    /// Change an entry that exists. On a shared store the entry is taken and put back, never read and
    /// rewritten, so an entry another node removed meanwhile stays removed.
    fn modify(&self, key: &str, keep: Duration, f: impl FnOnce(&mut V)) {
        if self.shared.is_none() {
            if let Some(v) = lock(&self.memory).get_mut(key) {
                f(v);
            }
            return;
        }
        if let Some(mut v) = self.take(key) {
            f(&mut v);
            self.put(key.to_string(), v, keep);
        }
    }
}

pub struct State {
    sessions: Table<IdpSession>,
    logins: Table<Login>,
    seen: Table<i64>,
    /// Shared stores only: the single-logout index, `app / SHA-256(NameID) / session key` → SessionIndex.
    slo_index: Option<Arc<dyn Store>>,
}

impl Default for State {
    fn default() -> Self {
        State {
            sessions: Table::new(MAX_SESSIONS),
            logins: Table::new(MAX_LOGINS),
            seen: Table::new(MAX_SEEN),
            slo_index: None,
        }
    }
}

const SLO_SPACE: &str = "idp-slo";

fn slo_prefix(app: &Id, nameid: &str) -> String {
    format!("{app}/{}/", sha256_hex(nameid.as_bytes()))
}

impl State {
    /// Keep sessions, logins and the request ids seen in `store` (for a store shared by several nodes).
    pub fn shared(mut self, store: Arc<dyn Store>) -> Self {
        self.sessions.shared = Some(("idp-sessions", Arc::clone(&store)));
        self.logins.shared = Some(("idp-logins", Arc::clone(&store)));
        self.seen.shared = Some(("saml-request-id", Arc::clone(&store)));
        self.slo_index = Some(store);
        self
    }

    /// Start an IdP session; returns the cookie token.
    pub fn create_session(&self, user: Id, revision: u64, mfa: bool) -> (String, IdpSession) {
        let t = token();
        let now = now_ms();
        let s = IdpSession {
            user,
            mfa,
            authn_instant: Utc::now(),
            index: crate::protocol::new_id(),
            apps: Vec::new(),
            csrf: token(),
            revision,
            created: now,
            last_seen: now,
        };
        self.sessions
            .put(sha256_hex(t.as_bytes()), s.clone(), SHARED_KEEP);
        (t, s)
    }

    /// The live session of a cookie, its idle timer refreshed.
    pub fn session(&self, t: &str, life: Lifetimes) -> Option<IdpSession> {
        let key = sha256_hex(t.as_bytes());
        let now = now_ms();
        let alive = |s: &IdpSession| {
            now - s.last_seen < ms(life.idle) && now - s.created < ms(life.absolute)
        };
        let Some((space, store)) = &self.sessions.shared else {
            // One lock for the check and the refresh, so an ending in between cannot be undone by the refresh.
            let mut map = lock(&self.sessions.memory);
            let s = map.get_mut(&key)?;
            if !alive(s) {
                map.remove(&key);
                return None;
            }
            s.last_seen = now;
            return Some(s.clone());
        };
        // Shared: the idle timer is a separate entry, so refreshing it can never bring back a session another
        // node just ended.
        let mut s = self.sessions.get(&key)?;
        s.last_seen = sessions::shared_last_seen(store.as_ref(), space, &key, s.last_seen);
        if !alive(&s) {
            self.remove_session(&key);
            return None;
        }
        s.last_seen = sessions::shared_touch(
            store.as_ref(),
            space,
            &key,
            s.last_seen,
            chrono::Duration::from_std(SHARED_KEEP).unwrap_or_default(),
        );
        Some(s)
    }

    fn remove_session(&self, key: &str) -> Option<IdpSession> {
        let s = self.sessions.take(key);
        if let (Some((space, store)), Some(s)) = (&self.sessions.shared, &s) {
            let _ = store.ephemeral_delete(space, &format!("seen:{key}"));
            for a in &s.apps {
                let _ = store.ephemeral_delete(
                    SLO_SPACE,
                    &format!("{}{key}", slo_prefix(&a.app, &a.nameid)),
                );
            }
        }
        s
    }

    /// When the session ends at the latest.
    pub fn session_deadline(s: &IdpSession, life: Lifetimes) -> DateTime<Utc> {
        let end = s.created.saturating_add(ms(life.absolute));
        DateTime::from_timestamp_millis(end).unwrap_or_else(Utc::now)
    }

    /// Note that the session signed in to an app.
    pub fn add_app(&self, t: &str, sp: SpSession) {
        let key = sha256_hex(t.as_bytes());
        let mut index = None;
        self.sessions.modify(&key, SHARED_KEEP, |s| {
            s.apps.retain(|a| a.app != sp.app);
            index = Some(s.index.clone());
            s.apps.push(sp.clone());
        });
        if let (Some(store), Some(index)) = (&self.slo_index, index) {
            let until = Utc::now() + chrono::Duration::from_std(SHARED_KEEP).unwrap_or_default();
            let k = format!("{}{key}", slo_prefix(&sp.app, &sp.nameid));
            if let Err(e) = store.ephemeral_put(SLO_SPACE, &k, index.as_bytes(), until, false) {
                tracing::error!(error = %e, "the single-logout index could not be stored");
            }
        }
    }

    /// Carry a session over the user's own password change.
    pub fn set_revision(&self, t: &str, revision: u64) {
        self.sessions
            .modify(&sha256_hex(t.as_bytes()), SHARED_KEEP, |s| {
                s.revision = revision
            });
    }

    /// Mark a session as having seen a second factor.
    pub fn set_mfa(&self, t: &str) {
        self.sessions
            .modify(&sha256_hex(t.as_bytes()), SHARED_KEEP, |s| s.mfa = true);
    }

    pub fn end_session(&self, t: &str) -> Option<IdpSession> {
        self.remove_session(&sha256_hex(t.as_bytes()))
    }

    /// End every session that signed in to `app` as `nameid` and whose index is among `indexes` (any, when
    /// empty); returns how many ended.
    pub fn end_matching(&self, app: &Id, nameid: &str, indexes: &[String]) -> usize {
        let Some(store) = &self.slo_index else {
            let mut map = lock(&self.sessions.memory);
            let before = map.len();
            map.retain(|_, s| {
                !(s.apps.iter().any(|a| a.app == *app && a.nameid == nameid)
                    && (indexes.is_empty() || indexes.contains(&s.index)))
            });
            return before - map.len();
        };
        let prefix = slo_prefix(app, nameid);
        let found = match store.ephemeral_scan(SLO_SPACE, &prefix, MAX_SLO_MATCHES) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "the single-logout index is unreachable");
                return 0;
            }
        };
        let mut ended = 0;
        for (k, index) in found {
            let index = String::from_utf8_lossy(&index);
            if !indexes.is_empty() && !indexes.iter().any(|i| *i == index) {
                continue;
            }
            let _ = store.ephemeral_delete(SLO_SPACE, &k);
            if self.remove_session(&k[prefix.len()..]).is_some() {
                ended += 1;
            }
        }
        ended
    }

    /// Store a login transaction; returns its id.
    pub fn put_login(&self, login: Login) -> String {
        let id = token();
        if self.logins.shared.is_none() {
            let mut map = lock(&self.logins.memory);
            if map.len() >= MAX_LOGINS {
                let now = now_ms();
                map.retain(|_, l| now - l.created < ms(LOGIN_TTL));
            }
        }
        self.logins.put(id.clone(), login, LOGIN_TTL);
        id
    }

    pub fn login(&self, id: &str) -> Option<Login> {
        let l = self.logins.get(id)?;
        if now_ms() - l.created < ms(LOGIN_TTL) {
            Some(l)
        } else {
            self.logins.take(id);
            None
        }
    }

    pub fn update_login(&self, id: &str, login: Login) {
        self.logins.modify(id, LOGIN_TTL, |l| *l = login);
    }

    pub fn end_login(&self, id: &str) {
        self.logins.take(id);
    }

    /// Record a request id; `false` when it was seen within `window` (a replay).
    pub fn first_sighting(&self, app: &Id, request_id: &str, window: Duration) -> bool {
        let key = format!("{app}/{request_id}");
        let now = now_ms();
        if let Some((space, store)) = &self.seen.shared {
            let until = Utc::now()
                + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(10));
            return match store.ephemeral_put(space, &key, b"", until, true) {
                Ok(first) => first,
                Err(e) => {
                    // Without the shared record a replay cannot be told apart: refuse.
                    tracing::warn!(error = %e, "the SAML request-id record is unreachable; the request is refused");
                    false
                }
            };
        }
        let mut map = lock(&self.seen.memory);
        if map.len() >= MAX_SEEN {
            map.retain(|_, at| now - *at < ms(window));
        }
        if map.get(&key).is_some_and(|at| now - *at < ms(window)) {
            return false;
        }
        drop(map);
        self.seen.put(key, now, window);
        true
    }
}
