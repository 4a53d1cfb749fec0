//! Per-source throttling of failed logins, the same on every protocol (LDAP binds, RADIUS, the portal and SSO
//! login pages, the admin console). A source is the client's address, or for RADIUS the NAS's address with the
//! Calling-Station-Id (many users sit behind one NAS). Failures from a source within a window are counted; past
//! `delay_after` each further attempt from it waits a little longer, past `refuse_after` it is refused before any
//! account is looked at — so a throttled attempt never reaches, and never counts towards, any user's lockout.
//! Allow-listed networks are never throttled. Counts are kept in memory on each node; with a shared store the
//! login paths also add each failure to a counter every node shares and hand the total back through
//! [`Throttle::learn`], so a source spreading its guesses over several nodes gets one budget, not one per node.
//! This module decides nothing about users; the login paths ask it before and tell it after.

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The throttle's settings.
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// Failures in a window after which each attempt waits.
    pub delay_after: u32,
    /// Failures in a window after which attempts are refused outright.
    pub refuse_after: u32,
    pub window: Duration,
    /// The longest wait added to one attempt.
    pub max_delay: Duration,
    /// Sources never throttled (known NAS, app servers, a proxy that passes no client address).
    pub allow: Vec<IpNet>,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            enabled: true,
            delay_after: 10,
            refuse_after: 50,
            window: Duration::from_secs(900),
            max_delay: Duration::from_secs(2),
            allow: Vec::new(),
        }
    }
}

/// What to do with an attempt from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// Wait this long, then go on.
    Wait(Duration),
    /// Refuse without looking at any account; `first` is true once per window (to record one event).
    Refuse {
        first: bool,
    },
}

struct Count {
    since: Instant,
    failures: u32,
    refusal_noted: bool,
}

/// Bound on sources tracked at once; the stalest go first.
const MAX_SOURCES: usize = 100_000;

pub struct Throttle {
    settings: ThrottleSettings,
    counts: Mutex<HashMap<String, Count>>,
}

/// The key of a source: its address, with a RADIUS Calling-Station-Id when there is one.
pub fn source_key(ip: Option<IpAddr>, station: Option<&str>) -> Option<String> {
    let ip = ip?;
    Some(match station.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => format!(
            "{ip}/{}",
            s.chars().take(64).collect::<String>().to_lowercase()
        ),
        None => ip.to_string(),
    })
}

impl Throttle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Throttle {
            settings,
            counts: Mutex::default(),
        }
    }

    fn exempt(&self, ip: Option<IpAddr>) -> bool {
        !self.settings.enabled
            || ip.is_none_or(|ip| self.settings.allow.iter().any(|n| n.contains(&ip)))
    }

    /// Before an attempt from `ip` (keyed by `key`).
    pub fn check(&self, ip: Option<IpAddr>, key: Option<&str>) -> Verdict {
        let (Some(key), false) = (key, self.exempt(ip)) else {
            return Verdict::Go;
        };
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(c) = m.get_mut(key) else {
            return Verdict::Go;
        };
        if c.since.elapsed() >= self.settings.window {
            m.remove(key);
            return Verdict::Go;
        }
        if c.failures >= self.settings.refuse_after {
            let first = !c.refusal_noted;
            c.refusal_noted = true;
            return Verdict::Refuse { first };
        }
        if c.failures >= self.settings.delay_after {
            let over = c.failures - self.settings.delay_after + 1;
            let wait = Duration::from_millis(250).saturating_mul(over);
            return Verdict::Wait(wait.min(self.settings.max_delay));
        }
        Verdict::Go
    }

    /// After a failed attempt from `ip` (keyed by `key`).
    pub fn failed(&self, ip: Option<IpAddr>, key: Option<&str>) {
        let (Some(key), false) = (key, self.exempt(ip)) else {
            return;
        };
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_SOURCES && !m.contains_key(key) {
            let window = self.settings.window;
            m.retain(|_, c| c.since.elapsed() < window);
            if m.len() >= MAX_SOURCES {
                if let Some(oldest) = m
                    .iter()
                    .min_by_key(|(_, c)| c.since)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&oldest);
                }
            }
        }
        let c = m.entry(key.to_string()).or_insert(Count {
            since: Instant::now(),
            failures: 0,
            refusal_noted: false,
        });
        if c.since.elapsed() >= self.settings.window {
            *c = Count {
                since: Instant::now(),
                failures: 0,
                refusal_noted: false,
            };
        }
        c.failures = c.failures.saturating_add(1);
    }

    /// The failures every node together has counted for a source in the current window (from the shared store):
    /// the local count is raised to it, never lowered.
    pub fn learn(&self, key: &str, total: u64) {
        let mut m = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = m.get_mut(key) {
            c.failures = c.failures.max(u32::try_from(total).unwrap_or(u32::MAX));
        }
    }

    /// The window a shared count belongs to at `now` (seconds since the epoch) and when it ends: windows are
    /// aligned so every node names the same one.
    pub fn shared_window(&self, now: i64) -> (i64, i64) {
        let len = i64::try_from(self.settings.window.as_secs().max(1)).unwrap_or(i64::MAX);
        let start = now - now.rem_euclid(len);
        (start, start.saturating_add(len))
    }

    /// Whether a source's failures are counted at all (not switched off, not allow-listed).
    pub fn counts(&self, ip: Option<IpAddr>) -> bool {
        !self.exempt(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn failures_delay_then_refuse_per_source_and_allowed_networks_are_exempt() {
        let t = Throttle::new(ThrottleSettings {
            delay_after: 2,
            refuse_after: 4,
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        });
        let (a, k) = (ip("192.0.2.1"), Some("192.0.2.1"));
        assert_eq!(t.check(a, k), Verdict::Go);
        t.failed(a, k);
        t.failed(a, k);
        assert_eq!(t.check(a, k), Verdict::Wait(Duration::from_millis(250)));
        t.failed(a, k);
        assert_eq!(t.check(a, k), Verdict::Wait(Duration::from_millis(500)));
        t.failed(a, k);
        assert_eq!(t.check(a, k), Verdict::Refuse { first: true });
        assert_eq!(t.check(a, k), Verdict::Refuse { first: false });
        // Another source is untouched; an allowed one is never counted.
        assert_eq!(t.check(ip("192.0.2.2"), Some("192.0.2.2")), Verdict::Go);
        let (n, nk) = (ip("10.1.2.3"), Some("10.1.2.3"));
        for _ in 0..10 {
            t.failed(n, nk);
        }
        assert_eq!(t.check(n, nk), Verdict::Go);
    }

    #[test]
    fn radius_sources_are_per_station() {
        assert_eq!(
            source_key(ip("192.0.2.9"), Some("AA-BB-CC-DD-EE-FF")).as_deref(),
            Some("192.0.2.9/aa-bb-cc-dd-ee-ff")
        );
        assert_eq!(
            source_key(ip("192.0.2.9"), Some(" ")).as_deref(),
            Some("192.0.2.9")
        );
        assert_eq!(source_key(None, Some("x")), None);
    }

    #[test]
    fn a_shared_total_raises_the_local_count() {
        let t = Throttle::new(ThrottleSettings {
            delay_after: 2,
            refuse_after: 4,
            ..Default::default()
        });
        let (a, k) = (ip("192.0.2.1"), Some("192.0.2.1"));
        t.failed(a, k);
        assert_eq!(t.check(a, k), Verdict::Go);
        t.learn("192.0.2.1", 7);
        assert_eq!(t.check(a, k), Verdict::Refuse { first: true });
        t.learn("192.0.2.1", 1);
        assert_eq!(t.check(a, k), Verdict::Refuse { first: false });
        assert_eq!(t.shared_window(1_000), (900, 1_800));
    }
}
