//! Open RADIUS accounting sessions (RFC 2866): who is on which NAS right now.
//!
//! A session opens with an Accounting Start or Interim-Update, moves with each Interim-Update, and closes with a
//! Stop, with the NAS's Accounting-On/Off (every session of that NAS on that profile ends), with a Disconnect-ACK
//! (RFC 5176) Stratus received for it, or when no update came for `stale_after` (N × the interim interval: the
//! NAS lost it without telling). The table is in memory and bounded (`max_sessions`; a Start beyond it is
//! recorded as an event but not tracked).
//!
//! **Persistence.** Sessions are not store records: every packet that changes one is already a stored event
//! (`radius_accounting`, committed before the Accounting-Response, and `radius_disconnect`), so at start the
//! table is rebuilt by replaying those events of the last `stale_after` — the same [`RadiusSessions::apply`]
//! that live packets go through. An accounting update therefore costs no write transaction and no snapshot
//! publication (which would wake every watcher of [`crate::Directory::changes`] at each Interim-Update).
//!
//! A session is keyed by (profile, NAS address, Acct-Session-Id): Acct-Session-Id is unique per NAS only.

use crate::events::Event;
use crate::id::Id;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use utoipa::ToSchema;

/// Event type of an accounting packet (written by the RADIUS listener).
pub const ACCOUNTING_EVENT: &str = "radius_accounting";
/// Event type of a Disconnect-Request's outcome; a successful one closed the session.
pub const DISCONNECT_EVENT: &str = "radius_disconnect";

/// One open session as the NAS reported it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RadiusSession {
    /// The NAS profile.
    pub profile: Id,
    /// The address the NAS's accounting came from; Disconnect-Requests go there.
    #[schema(value_type = String)]
    pub nas_address: IpAddr,
    /// NAS-IP-Address as the NAS sent it.
    pub nas_ip: Option<String>,
    pub nas_identifier: Option<String>,
    /// Acct-Session-Id.
    pub session_id: String,
    /// User-Name as the NAS sent it.
    pub username: String,
    /// The directory user of that name when the session opened.
    pub user: Option<Id>,
    pub framed_ip: Option<String>,
    pub calling_station: Option<String>,
    pub called_station: Option<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub input_octets: u64,
    pub output_octets: u64,
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// A user id or a username (case-insensitive).
    pub user: Option<String>,
    pub profile: Option<Id>,
}

impl SessionQuery {
    fn matches(&self, s: &RadiusSession) -> bool {
        self.profile.as_ref().is_none_or(|p| &s.profile == p)
            && self.user.as_deref().is_none_or(|u| {
                s.username.eq_ignore_ascii_case(u)
                    || s.user.as_ref().is_some_and(|id| id.as_str() == u)
            })
    }
}

/// Limits of the session table.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session without an update for this long is dropped (N × the interim interval).
    pub stale_after: Duration,
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            stale_after: Duration::from_secs(3 * 600),
            max_sessions: 100_000,
        }
    }
}

type Key = (Id, IpAddr, String);

/// The table of open sessions.
pub struct RadiusSessions {
    limits: SessionLimits,
    open: Mutex<HashMap<Key, RadiusSession>>,
}

/// What an event did to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Opened,
    Updated,
    Closed(usize),
    /// A new session beyond `max_sessions`.
    Full,
    Ignored,
}

fn text(e: &Event, key: &str) -> Option<String> {
    e.details
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn number(e: &Event, key: &str) -> Option<u64> {
    e.details.get(key).and_then(|v| v.as_u64())
}

/// The profile of an event: its `resource` detail, `radius:{id}`.
fn profile_of(e: &Event) -> Option<Id> {
    text(e, "resource")?
        .strip_prefix("radius:")
        .and_then(Id::parse)
}

fn key_of(e: &Event) -> Option<Key> {
    Some((
        profile_of(e)?,
        e.client_ip?.to_canonical(),
        text(e, "session_id")?,
    ))
}

impl RadiusSessions {
    pub fn new(limits: SessionLimits) -> Self {
        RadiusSessions {
            limits,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<Key, RadiusSession>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Apply a `radius_accounting` or `radius_disconnect` event, live or replayed.
    pub fn apply(&self, e: &Event) -> Applied {
        match e.event_type.as_str() {
            ACCOUNTING_EVENT => self.accounting(e),
            DISCONNECT_EVENT if e.success => match key_of(e) {
                Some(k) => Applied::Closed(usize::from(self.table().remove(&k).is_some())),
                None => Applied::Ignored,
            },
            _ => Applied::Ignored,
        }
    }

    fn accounting(&self, e: &Event) -> Applied {
        let status = text(e, "status").unwrap_or_default();
        if matches!(status.as_str(), "Accounting-On" | "Accounting-Off") {
            // RFC 2866 §5.1: the NAS (re)started or is going down; none of its sessions survive.
            let (Some(profile), Some(nas)) = (profile_of(e), e.client_ip) else {
                return Applied::Ignored;
            };
            let nas = nas.to_canonical();
            let mut t = self.table();
            let before = t.len();
            t.retain(|(p, a, _), _| !(p == &profile && *a == nas));
            return Applied::Closed(before - t.len());
        }
        let Some(key) = key_of(e) else {
            return Applied::Ignored;
        };
        match status.as_str() {
            "Stop" => Applied::Closed(usize::from(self.table().remove(&key).is_some())),
            "Start" | "Interim-Update" => {
                let mut t = self.table();
                let len = t.len();
                if let Some(s) = t.get_mut(&key) {
                    update(s, e);
                    return Applied::Updated;
                }
                if len >= self.limits.max_sessions {
                    return Applied::Full;
                }
                // An Interim-Update for a session never seen (Stratus restarted past the window, or the Start was
                // lost) opens it, dated back by the session time it reports.
                let started_at = number(e, "session_time")
                    .filter(|_| status == "Interim-Update")
                    .and_then(|s| chrono::Duration::try_seconds(s as i64))
                    .map_or(e.time, |d| e.time - d);
                let mut s = RadiusSession {
                    profile: key.0.clone(),
                    nas_address: key.1,
                    nas_ip: None,
                    nas_identifier: None,
                    session_id: key.2.clone(),
                    username: e.username.clone().unwrap_or_default(),
                    user: e
                        .target_id
                        .as_deref()
                        .filter(|_| e.target_type.as_deref() == Some("user"))
                        .and_then(Id::parse),
                    framed_ip: None,
                    calling_station: None,
                    called_station: None,
                    started_at,
                    updated_at: e.time,
                    input_octets: 0,
                    output_octets: 0,
                };
                update(&mut s, e);
                t.insert(key, s);
                Applied::Opened
            }
            _ => Applied::Ignored,
        }
    }

    /// Drop sessions without an update for `stale_after`; returns how many went.
    pub fn expire(&self, now: DateTime<Utc>) -> usize {
        let Ok(stale) = chrono::Duration::from_std(self.limits.stale_after) else {
            return 0;
        };
        let mut t = self.table();
        let before = t.len();
        t.retain(|_, s| now - s.updated_at < stale);
        before - t.len()
    }

    /// Open sessions matching `q`, oldest first.
    pub fn list(&self, q: &SessionQuery) -> Vec<RadiusSession> {
        self.expire(Utc::now());
        let mut v: Vec<_> = self
            .table()
            .values()
            .filter(|s| q.matches(s))
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then_with(|| a.session_id.cmp(&b.session_id))
        });
        v
    }

    /// Open sessions per profile.
    pub fn counts(&self) -> BTreeMap<Id, usize> {
        self.expire(Utc::now());
        let mut m = BTreeMap::new();
        for (p, _, _) in self.table().keys() {
            *m.entry(p.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// Take what an update says about a session; what it leaves out stays as it was.
fn update(s: &mut RadiusSession, e: &Event) {
    s.updated_at = s.updated_at.max(e.time);
    let set = |slot: &mut Option<String>, key: &str| {
        if let Some(v) = text(e, key) {
            *slot = Some(v);
        }
    };
    set(&mut s.nas_ip, "nas_ip");
    set(&mut s.nas_identifier, "nas_identifier");
    set(&mut s.framed_ip, "framed_ip");
    set(&mut s.calling_station, "calling_station");
    set(&mut s.called_station, "called_station");
    if let Some(v) = number(e, "input_octets") {
        s.input_octets = v;
    }
    if let Some(v) = number(e, "output_octets") {
        s.output_octets = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Service;

    fn acct(status: &str, session: &str, profile: &Id, nas: &str) -> Event {
        Event::new(Service::Radius, ACCOUNTING_EVENT, true)
            .client(Some(nas.parse().unwrap()))
            .user("ann")
            .detail("resource", format!("radius:{profile}"))
            .detail("status", status)
            .detail("session_id", session)
    }

    #[test]
    fn start_interim_stop_and_accounting_on_open_move_and_close_sessions() {
        let t = RadiusSessions::new(SessionLimits::default());
        let (p, q) = (Id::generate(), Id::generate());
        assert_eq!(
            t.apply(&acct("Start", "a", &p, "10.0.0.1")),
            Applied::Opened
        );
        assert_eq!(
            t.apply(&acct("Start", "b", &p, "10.0.0.1")),
            Applied::Opened
        );
        assert_eq!(
            t.apply(&acct("Start", "a", &p, "10.0.0.2")),
            Applied::Opened
        );
        assert_eq!(
            t.apply(&acct("Start", "a", &q, "10.0.0.1")),
            Applied::Opened
        );
        let interim = acct("Interim-Update", "a", &p, "10.0.0.1").detail("input_octets", 7u64);
        assert_eq!(t.apply(&interim), Applied::Updated);
        assert_eq!(t.list(&SessionQuery::default()).len(), 4);
        assert_eq!(
            t.apply(&acct("Stop", "b", &p, "10.0.0.1")),
            Applied::Closed(1)
        );
        assert_eq!(
            t.apply(&acct("Accounting-On", "", &p, "10.0.0.1")),
            Applied::Closed(1)
        );
        let left = t.list(&SessionQuery::default());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left
            .iter()
            .all(|s| s.nas_address.to_string() == "10.0.0.2" || s.profile == q));
        let by_profile = t.list(&SessionQuery {
            profile: Some(q.clone()),
            user: Some("ANN".into()),
        });
        assert_eq!(by_profile.len(), 1);
    }

    #[test]
    fn a_full_table_refuses_new_sessions_and_stale_ones_expire() {
        let t = RadiusSessions::new(SessionLimits {
            stale_after: Duration::from_secs(60),
            max_sessions: 1,
        });
        let p = Id::generate();
        assert_eq!(
            t.apply(&acct("Start", "a", &p, "10.0.0.1")),
            Applied::Opened
        );
        assert_eq!(t.apply(&acct("Start", "b", &p, "10.0.0.1")), Applied::Full);
        assert_eq!(t.expire(Utc::now() + chrono::Duration::seconds(61)), 1);
        assert_eq!(
            t.apply(&acct("Start", "b", &p, "10.0.0.1")),
            Applied::Opened
        );
    }

    #[test]
    fn a_successful_disconnect_closes_the_session_and_a_refused_one_does_not() {
        let t = RadiusSessions::new(SessionLimits::default());
        let p = Id::generate();
        t.apply(&acct("Start", "a", &p, "10.0.0.1"));
        let mut nak = acct("", "a", &p, "10.0.0.1");
        nak.event_type = DISCONNECT_EVENT.into();
        nak.success = false;
        assert_eq!(t.apply(&nak), Applied::Ignored);
        nak.success = true;
        assert_eq!(t.apply(&nak), Applied::Closed(1));
    }
}
