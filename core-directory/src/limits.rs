//! Connection shares per source address: a listener counts each open connection against the address it came
//! from, so one source cannot hold every connection, and notes refusals at most once a minute per source. It
//! owns no socket and decides nothing about users; the LDAP and HTTPS listeners use it alike.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Open connections per source address, each source allowed at most `max`.
pub struct PerSource {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
    /// When a refusal was last noted, per source.
    noted: Mutex<HashMap<IpAddr, Instant>>,
}

/// One connection counted against its source; uncounted when dropped.
pub struct SourceSlot {
    owner: Arc<PerSource>,
    ip: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut m = self.owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// How often a refused source is noted at most.
const NOTE_EVERY: Duration = Duration::from_secs(60);

impl PerSource {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerSource {
            max: max.max(1),
            open: Mutex::default(),
            noted: Mutex::default(),
        })
    }

    /// Count a new connection from `ip`, or `None` when the source already holds its share.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let mut m = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            owner: Arc::clone(self),
            ip,
        })
    }

    /// Whether a refusal of `ip` should be logged (and recorded) now: once a minute per source at most.
    pub fn note_refusal(&self, ip: IpAddr) -> bool {
        let mut m = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if m.get(&ip)
            .is_some_and(|t| now.duration_since(*t) < NOTE_EVERY)
        {
            return false;
        }
        if m.len() >= 10_000 {
            m.retain(|_, t| now.duration_since(*t) < NOTE_EVERY);
        }
        m.insert(ip, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_its_share_and_refusals_are_noted_once_a_minute() {
        let p = PerSource::new(2);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let s1 = p.take(a).unwrap();
        let _s2 = p.take(a).unwrap();
        assert!(p.take(a).is_none());
        assert!(p.take(b).is_some());
        drop(s1);
        assert!(p.take(a).is_some(), "a closed connection frees its place");
        assert!(p.note_refusal(a));
        assert!(!p.note_refusal(a));
        assert!(p.note_refusal(b));
    }
}
