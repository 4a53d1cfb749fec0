//! Browser state of the IdP, in memory: IdP sessions (the cookie after a login), login transactions (a login in
//! progress, with its CSRF token and the SSO request it will answer), and the AuthnRequest ids already seen.
//! Tokens are kept only as SHA-256; every table is bounded. None of it survives a restart.

use chrono::{DateTime, Utc};
use core_directory::crypto::{random_bytes, sha256_hex};
use core_directory::{Id, MfaChallenge};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_SESSIONS: usize = 50_000;
const MAX_LOGINS: usize = 50_000;
const MAX_SEEN: usize = 200_000;
/// How long a login page stays usable.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Wrong codes or passwords allowed in one login transaction before it must start over.
pub const LOGIN_ATTEMPTS: u8 = 5;

pub fn token() -> String {
    data_encoding::BASE64URL_NOPAD.encode(&random_bytes(32))
}

/// An app the session has signed in to (for SLO).
#[derive(Debug, Clone)]
pub struct SpSession {
    pub app: Id,
    pub nameid: String,
}

/// A signed-in browser.
#[derive(Debug, Clone)]
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
    created: Instant,
    last_seen: Instant,
}

/// The SSO request a login will answer.
#[derive(Debug, Clone)]
pub struct PendingSso {
    pub app: Id,
    /// `None` for an IdP-initiated (unsolicited) response.
    pub request_id: Option<String>,
    pub acs_url: String,
    pub relay_state: Option<String>,
    pub nameid_format: Option<&'static str>,
    /// The SP asked for no interaction: any answer but an assertion goes back as a SAML status.
    pub is_passive: bool,
}

/// Where a login transaction stands.
#[derive(Debug, Clone)]
pub enum Stage {
    Password,
    Totp(MfaChallenge),
    /// The right password was given but it has expired: the user sets a new one first.
    NewPassword {
        user: Id,
    },
}

/// A login in progress.
#[derive(Debug, Clone)]
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
    created: Instant,
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
            created: Instant::now(),
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

#[derive(Default)]
pub struct State {
    sessions: Mutex<HashMap<String, IdpSession>>,
    logins: Mutex<HashMap<String, Login>>,
    seen: Mutex<HashMap<String, Instant>>,
    /// A store shared by several nodes: the request ids seen are kept there, so a request replayed to another
    /// node is refused too.
    shared: Option<std::sync::Arc<dyn core_directory::store::Store>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn evict_oldest<V>(map: &mut HashMap<String, V>, max: usize, age: impl Fn(&V) -> Instant) {
    if map.len() >= max {
        if let Some(k) = map
            .iter()
            .min_by_key(|(_, v)| age(v))
            .map(|(k, _)| k.clone())
        {
            map.remove(&k);
        }
    }
}

impl State {
    /// Keep the request ids seen in `store` (for a store shared by several nodes).
    pub fn shared(mut self, store: std::sync::Arc<dyn core_directory::store::Store>) -> Self {
        self.shared = Some(store);
        self
    }

    /// Start an IdP session; returns the cookie token.
    pub fn create_session(&self, user: Id, revision: u64, mfa: bool) -> (String, IdpSession) {
        let t = token();
        let now = Instant::now();
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
        let mut map = lock(&self.sessions);
        evict_oldest(&mut map, MAX_SESSIONS, |s| s.created);
        map.insert(sha256_hex(t.as_bytes()), s.clone());
        (t, s)
    }

    /// The live session of a cookie, its idle timer refreshed.
    pub fn session(&self, t: &str, life: Lifetimes) -> Option<IdpSession> {
        let key = sha256_hex(t.as_bytes());
        let now = Instant::now();
        let mut map = lock(&self.sessions);
        let alive = map.get(&key).is_some_and(|s| {
            now.duration_since(s.last_seen) < life.idle
                && now.duration_since(s.created) < life.absolute
        });
        if !alive {
            map.remove(&key);
            return None;
        }
        let s = map.get_mut(&key)?;
        s.last_seen = now;
        Some(s.clone())
    }

    /// When the session ends at the latest.
    pub fn session_deadline(s: &IdpSession, life: Lifetimes) -> DateTime<Utc> {
        let left = life.absolute.saturating_sub(s.created.elapsed());
        Utc::now() + chrono::Duration::from_std(left).unwrap_or_default()
    }

    /// Note that the session signed in to an app.
    pub fn add_app(&self, t: &str, sp: SpSession) {
        if let Some(s) = lock(&self.sessions).get_mut(&sha256_hex(t.as_bytes())) {
            s.apps.retain(|a| a.app != sp.app);
            s.apps.push(sp);
        }
    }

    /// Carry a session over the user's own password change.
    pub fn set_revision(&self, t: &str, revision: u64) {
        if let Some(s) = lock(&self.sessions).get_mut(&sha256_hex(t.as_bytes())) {
            s.revision = revision;
        }
    }

    /// Mark a session as having seen a second factor.
    pub fn set_mfa(&self, t: &str) {
        if let Some(s) = lock(&self.sessions).get_mut(&sha256_hex(t.as_bytes())) {
            s.mfa = true;
        }
    }

    pub fn end_session(&self, t: &str) -> Option<IdpSession> {
        lock(&self.sessions).remove(&sha256_hex(t.as_bytes()))
    }

    /// End every session that signed in to `app` as `nameid` and whose index is among `indexes` (any, when
    /// empty); returns how many ended.
    pub fn end_matching(&self, app: &Id, nameid: &str, indexes: &[String]) -> usize {
        let mut map = lock(&self.sessions);
        let before = map.len();
        map.retain(|_, s| {
            !(s.apps.iter().any(|a| a.app == *app && a.nameid == nameid)
                && (indexes.is_empty() || indexes.contains(&s.index)))
        });
        before - map.len()
    }

    /// Store a login transaction; returns its id.
    pub fn put_login(&self, login: Login) -> String {
        let id = token();
        let mut map = lock(&self.logins);
        if map.len() >= MAX_LOGINS {
            map.retain(|_, l| l.created.elapsed() < LOGIN_TTL);
        }
        evict_oldest(&mut map, MAX_LOGINS, |l| l.created);
        map.insert(id.clone(), login);
        id
    }

    pub fn login(&self, id: &str) -> Option<Login> {
        let mut map = lock(&self.logins);
        match map.get(id) {
            Some(l) if l.created.elapsed() < LOGIN_TTL => Some(l.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn update_login(&self, id: &str, login: Login) {
        if let Some(l) = lock(&self.logins).get_mut(id) {
            *l = login;
        }
    }

    pub fn end_login(&self, id: &str) {
        lock(&self.logins).remove(id);
    }

    /// Record a request id; `false` when it was seen within `window` (a replay).
    pub fn first_sighting(&self, app: &Id, request_id: &str, window: Duration) -> bool {
        let key = format!("{app}/{request_id}");
        if let Some(store) = &self.shared {
            let until = Utc::now()
                + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::minutes(10));
            return match store.ephemeral_put("saml-request-id", &key, b"", until, true) {
                Ok(first) => first,
                Err(e) => {
                    // Without the shared record a replay cannot be told apart: refuse.
                    tracing::warn!(error = %e, "the SAML request-id record is unreachable; the request is refused");
                    false
                }
            };
        }
        let now = Instant::now();
        let mut map = lock(&self.seen);
        if map.len() >= MAX_SEEN {
            map.retain(|_, at| now.duration_since(*at) < window);
        }
        if map
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < window)
        {
            return false;
        }
        evict_oldest(&mut map, MAX_SEEN, |at| *at);
        map.insert(key, now);
        true
    }
}
