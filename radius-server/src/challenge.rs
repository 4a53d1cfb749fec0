//! Pending MFA challenges: the State of an Access-Challenge (RFC 2865 §4.4, §5.24) names one half-finished
//! login. A State is 16 random octets, single-use, bound to the user, the NAS profile and the NAS address that
//! received it, and lives for the challenge timeout. On one node the table is in memory and bounded; when it is
//! full of live challenges a new login is refused rather than an old one forgotten. On a store shared by
//! several nodes it is the store's short-lived state, so a NAS may send the answer to any node behind its load
//! balancer, and exactly one node takes a State.

use core_directory::store::Store;
use core_directory::{Id, MfaChallenge};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a State did not lead to a pending login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    Unknown,
    Expired,
    /// Issued to another NAS profile or address.
    WrongClient,
    /// Issued for another User-Name.
    WrongUser,
}

impl StateError {
    pub fn describe(self) -> &'static str {
        match self {
            StateError::Unknown => "unknown or already used State",
            StateError::Expired => "the challenge expired",
            StateError::WrongClient => "State was issued to another NAS",
            StateError::WrongUser => "State was issued for another user",
        }
    }
}

struct Pending {
    challenge: MfaChallenge,
    profile: Id,
    nas: IpAddr,
    expires: Instant,
}

/// A pending challenge as the shared store keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedPending {
    challenge: MfaChallenge,
    profile: Id,
    nas: IpAddr,
}

const SPACE: &str = "radius-challenge";

/// The table of pending challenges.
pub struct Challenges {
    timeout: Duration,
    max: usize,
    pending: Mutex<HashMap<[u8; 16], Pending>>,
    shared: Option<Arc<dyn Store>>,
}

impl Challenges {
    pub fn new(timeout: Duration, max: usize) -> Self {
        Challenges {
            timeout,
            max,
            pending: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Keep the challenges in `store`'s short-lived state (for a store shared by several nodes).
    pub fn shared(mut self, store: Arc<dyn Store>) -> Self {
        self.shared = Some(store);
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Remember a challenge; returns its State, or `None` when the table is full.
    pub fn issue(&self, challenge: MfaChallenge, profile: &Id, nas: IpAddr) -> Option<[u8; 16]> {
        let mut state = [0u8; 16];
        aws_lc_rs::rand::fill(&mut state).ok()?;
        if let Some(store) = &self.shared {
            let record = SharedPending {
                challenge,
                profile: profile.clone(),
                nas,
            };
            let bytes = serde_json::to_vec(&record).ok()?;
            let expires = chrono::Utc::now()
                + chrono::Duration::from_std(self.timeout).unwrap_or(chrono::Duration::seconds(60));
            let key = data_encoding::HEXLOWER.encode(&state);
            return match store.ephemeral_put(SPACE, &key, &bytes, expires, true) {
                Ok(true) => Some(state),
                Ok(false) => None,
                Err(e) => {
                    tracing::error!(error = %e, "a RADIUS challenge could not be stored");
                    None
                }
            };
        }
        let now = Instant::now();
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() >= self.max {
            p.retain(|_, v| v.expires > now);
            if p.len() >= self.max {
                return None;
            }
        }
        p.insert(
            state,
            Pending {
                challenge,
                profile: profile.clone(),
                nas,
                expires: now + self.timeout,
            },
        );
        Some(state)
    }

    /// Take the challenge a State names. The State is used up whatever the outcome.
    pub fn take(
        &self,
        state: &[u8],
        profile: &Id,
        nas: IpAddr,
        username: &str,
    ) -> Result<MfaChallenge, StateError> {
        let key: [u8; 16] = state.try_into().map_err(|_| StateError::Unknown)?;
        if let Some(store) = &self.shared {
            // Expired entries are not returned: an expired State reads as unknown here.
            let found: SharedPending = store
                .ephemeral_take(SPACE, &data_encoding::HEXLOWER.encode(&key))
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or(StateError::Unknown)?;
            if &found.profile != profile || found.nas != nas {
                return Err(StateError::WrongClient);
            }
            if !found.challenge.username.eq_ignore_ascii_case(username) {
                return Err(StateError::WrongUser);
            }
            return Ok(found.challenge);
        }
        let found = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
            .ok_or(StateError::Unknown)?;
        if found.expires <= Instant::now() {
            return Err(StateError::Expired);
        }
        if &found.profile != profile || found.nas != nas {
            return Err(StateError::WrongClient);
        }
        if !found.challenge.username.eq_ignore_ascii_case(username) {
            return Err(StateError::WrongUser);
        }
        Ok(found.challenge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core_directory::Service;

    fn challenge(user: &str) -> MfaChallenge {
        MfaChallenge {
            user_id: Id::generate(),
            username: user.into(),
            service: Service::Radius,
            resource: None,
            session: None,
            station: None,
            issued_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_state_is_single_use_and_bound_to_client_and_user() {
        let t = Challenges::new(Duration::from_secs(60), 10);
        let (p, other) = (Id::generate(), Id::generate());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let s = t.issue(challenge("ann"), &p, ip).unwrap();
        assert!(t.take(&s, &p, ip, "ANN").is_ok());
        assert_eq!(t.take(&s, &p, ip, "ann").unwrap_err(), StateError::Unknown);
        let s = t.issue(challenge("ann"), &p, ip).unwrap();
        assert_eq!(
            t.take(&s, &other, ip, "ann").unwrap_err(),
            StateError::WrongClient
        );
        let s = t.issue(challenge("ann"), &p, ip).unwrap();
        assert_eq!(
            t.take(&s, &p, ip, "bob").unwrap_err(),
            StateError::WrongUser
        );
        assert_eq!(
            t.take(b"short", &p, ip, "ann").unwrap_err(),
            StateError::Unknown
        );
    }

    #[test]
    fn a_full_table_refuses_new_challenges_and_expired_ones_make_room() {
        let t = Challenges::new(Duration::from_millis(20), 2);
        let p = Id::generate();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(t.issue(challenge("a"), &p, ip).is_some());
        let s = t.issue(challenge("b"), &p, ip).unwrap();
        assert!(t.issue(challenge("c"), &p, ip).is_none());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.issue(challenge("d"), &p, ip).is_some());
        assert_eq!(t.take(&s, &p, ip, "b").unwrap_err(), StateError::Unknown);
    }
}
