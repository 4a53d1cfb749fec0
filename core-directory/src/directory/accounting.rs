//! RADIUS accounting sessions on the directory: the listener's accounting events go through here, so the open
//! session table ([`crate::radius_sessions`]) moves with exactly what is stored, and is rebuilt from the same
//! events at start. Also the rule that decides whether an open session may go on.

use super::Directory;
use crate::auth::DenyReason;
use crate::events::{Event, EventQuery, Service};
use crate::id::Id;
use crate::model::{Resource, UserState};
use crate::radius_sessions::{
    Applied, RadiusSession, RadiusSessions, SessionQuery, ACCOUNTING_EVENT, DISCONNECT_EVENT,
};
use crate::store::{Store, StoreError};
use chrono::Utc;
use std::collections::BTreeMap;

/// Events read back at most when the table is rebuilt.
const MAX_REPLAYED: usize = 1_000_000;

impl Directory {
    /// Record a `radius_accounting` or `radius_disconnect` event, wait until it is stored, and apply it to the
    /// open sessions. Returns what it did to them.
    pub async fn radius_session_event(&self, event: Event) -> Applied {
        let applied = self.radius_sessions.apply(&event);
        if applied == Applied::Full {
            tracing::warn!(
                max = self.radius_sessions.limits().max_sessions,
                "RADIUS session table full; a new session is recorded but not tracked"
            );
        }
        self.record(event).await;
        self.flush_events().await;
        applied
    }

    /// Open RADIUS sessions matching `query`, oldest first.
    pub fn radius_sessions(&self, query: &SessionQuery) -> Vec<RadiusSession> {
        self.radius_sessions.list(query)
    }

    /// Open RADIUS sessions per profile id.
    pub fn radius_session_counts(&self) -> BTreeMap<Id, usize> {
        self.radius_sessions.counts()
    }

    /// Drop sessions the NAS stopped updating; returns how many went.
    pub fn expire_radius_sessions(&self) -> usize {
        self.radius_sessions.expire(Utc::now())
    }

    /// Whether an open session may go on, judged on the live snapshot: `Some(reason)` when its user is gone, not
    /// active, locked, or no longer in a group bound to the session's profile (or the profile is gone). A session
    /// whose User-Name named no directory user is not judged.
    pub fn radius_session_refusal(&self, session: &RadiusSession) -> Option<DenyReason> {
        let user = session.user.as_ref()?;
        let snap = self.snapshot();
        let Some(u) = snap.user(user) else {
            return Some(DenyReason::UnknownUser);
        };
        let refusal = match u.state {
            UserState::Staged => Some(DenyReason::Staged),
            UserState::Suspended => Some(DenyReason::Suspended),
            UserState::Active if u.is_locked(Utc::now()) => Some(DenyReason::Locked),
            UserState::Active => None,
        };
        refusal.or_else(|| {
            if !snap.radius_servers.contains_key(&session.profile) {
                return Some(DenyReason::UnknownResource);
            }
            let resource = Resource::Radius(session.profile.clone());
            snap.granting_groups(user, &resource)
                .is_empty()
                .then_some(DenyReason::NotBound)
        })
    }
}

/// Replay the accounting and disconnect events of the last `stale_after` into `sessions`, oldest first;
/// returns how many sessions are open.
pub(super) fn rebuild(store: &dyn Store, sessions: &RadiusSessions) -> Result<usize, StoreError> {
    let Ok(window) = chrono::Duration::from_std(sessions.limits().stale_after) else {
        return Ok(0);
    };
    let since = Utc::now() - window;
    let mut events = Vec::new();
    let mut before_id = None;
    // Bounded: pages of 10,000 until the window or MAX_REPLAYED is reached.
    for _ in 0..MAX_REPLAYED / 10_000 {
        let page = store.query_events(&EventQuery {
            since: Some(since),
            service: Some(Service::Radius),
            before_id,
            limit: 10_000,
            ..Default::default()
        })?;
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        let full = page.len() == 10_000;
        events.extend(
            page.into_iter()
                .filter(|e| e.event_type == ACCOUNTING_EVENT || e.event_type == DISCONNECT_EVENT),
        );
        if !full {
            break;
        }
    }
    for e in events.iter().rev() {
        sessions.apply(e);
    }
    sessions.expire(Utc::now());
    Ok(sessions.counts().values().sum())
}
