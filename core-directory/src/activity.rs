//! Authentication activity in memory, for the console's dashboard: successes and failures per protocol in
//! one-minute buckets over the last seven days, and per hour the most frequent failure reasons and client
//! addresses. Fed by every recorded authentication event (see [`Activity::observe`]), read without touching the
//! event store, so a dashboard view costs the same at any number of users or events. Starts empty at each process
//! start. Owns no event and no rule: it only counts what the directory records.

use crate::events::{Event, Service};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

/// The protocols whose sign-ins are counted, in display order.
pub const PROTOCOLS: [Service; 6] = [
    Service::Ldap,
    Service::Radius,
    Service::Sso,
    Service::Portal,
    Service::Scim,
    Service::Admin,
];

/// Minutes kept: seven days.
const MINUTES: usize = 7 * 24 * 60;
/// Distinct reasons or addresses kept per hour; further ones are counted as "other".
const KEYS_PER_HOUR: usize = 64;

/// Whether an event is an authentication attempt, and of which protocol.
pub fn protocol_of(e: &Event) -> Option<usize> {
    let counted = matches!(
        e.event_type.as_str(),
        "ldap_bind" | "radius_auth" | "sso_auth" | "portal_login" | "scim_auth" | "admin_login"
    );
    if !counted {
        return None;
    }
    PROTOCOLS.iter().position(|p| *p == e.service)
}

#[derive(Clone, Copy, Default)]
struct Minute {
    /// Minutes since the epoch this bucket holds (a stale bucket is from an earlier lap of the ring).
    at: i64,
    ok: [u32; PROTOCOLS.len()],
    failed: [u32; PROTOCOLS.len()],
}

#[derive(Default)]
struct Hour {
    at: i64,
    reasons: HashMap<String, u32>,
    sources: HashMap<String, u32>,
}

struct Inner {
    minutes: Vec<Minute>,
    hours: Vec<Hour>,
}

/// The counters.
pub struct Activity {
    inner: Mutex<Inner>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            inner: Mutex::new(Inner {
                minutes: vec![Minute::default(); MINUTES],
                hours: (0..MINUTES / 60).map(|_| Hour::default()).collect(),
            }),
        }
    }
}

/// Counts over a time window, read by the dashboard.
#[derive(Debug, Clone, Default)]
pub struct ActivityReport {
    /// Start of each bucket.
    pub buckets: Vec<DateTime<Utc>>,
    /// `[protocol][bucket]` successes and failures.
    pub ok: Vec<Vec<u32>>,
    pub failed: Vec<Vec<u32>>,
    /// Most frequent failure reasons and client addresses over the window, most frequent first.
    pub top_reasons: Vec<(String, u32)>,
    pub top_sources: Vec<(String, u32)>,
}

fn bump(map: &mut HashMap<String, u32>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else if map.len() < KEYS_PER_HOUR {
        map.insert(key.to_string(), 1);
    } else {
        *map.entry("other".into()).or_default() += 1;
    }
}

fn top(map: HashMap<String, u32>, n: usize) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

impl Activity {
    /// Count an event if it is an authentication attempt.
    pub fn observe(&self, e: &Event) {
        let Some(p) = protocol_of(e) else { return };
        let minute = e.time.timestamp().div_euclid(60);
        let hour = minute.div_euclid(60);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let m = &mut inner.minutes[minute.rem_euclid(MINUTES as i64) as usize];
        if m.at > minute {
            // Older than what the slot holds now (an event from a lap ago): outside the window.
            return;
        }
        if m.at != minute {
            *m = Minute {
                at: minute,
                ..Minute::default()
            };
        }
        if e.success {
            m.ok[p] += 1;
            return;
        }
        m.failed[p] += 1;
        let slots = inner.hours.len() as i64;
        let h = &mut inner.hours[hour.rem_euclid(slots) as usize];
        if h.at > hour {
            return;
        }
        if h.at != hour {
            *h = Hour {
                at: hour,
                ..Hour::default()
            };
        }
        bump(&mut h.reasons, e.reason.as_deref().unwrap_or("(no reason)"));
        if let Some(ip) = e.client_ip {
            bump(&mut h.sources, &ip.to_string());
        }
    }

    /// The `window` ending at `now`, in `buckets` equal buckets (window a whole number of minutes, at most
    /// seven days).
    pub fn report(
        &self,
        now: DateTime<Utc>,
        window: chrono::Duration,
        buckets: usize,
    ) -> ActivityReport {
        let minutes = window.num_minutes().clamp(1, MINUTES as i64);
        let buckets = buckets.clamp(1, minutes as usize);
        let per = (minutes as usize).div_ceil(buckets) as i64;
        let end = now.timestamp().div_euclid(60);
        let start = end - per * buckets as i64 + 1;
        let mut report = ActivityReport {
            buckets: (0..buckets)
                .filter_map(|b| DateTime::from_timestamp((start + per * b as i64) * 60, 0))
                .collect(),
            ok: vec![vec![0; buckets]; PROTOCOLS.len()],
            failed: vec![vec![0; buckets]; PROTOCOLS.len()],
            ..ActivityReport::default()
        };
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for minute in start..=end {
            let m = &inner.minutes[minute.rem_euclid(MINUTES as i64) as usize];
            if m.at != minute {
                continue;
            }
            let b = ((minute - start) / per) as usize;
            for p in 0..PROTOCOLS.len() {
                report.ok[p][b] += m.ok[p];
                report.failed[p][b] += m.failed[p];
            }
        }
        let (mut reasons, mut sources) = (HashMap::new(), HashMap::new());
        let (first_hour, last_hour) = (start.div_euclid(60), end.div_euclid(60));
        for h in inner
            .hours
            .iter()
            .filter(|h| h.at >= first_hour && h.at <= last_hour)
        {
            for (k, n) in &h.reasons {
                *reasons.entry(k.clone()).or_insert(0) += n;
            }
            for (k, n) in &h.sources {
                *sources.entry(k.clone()).or_insert(0) += n;
            }
        }
        report.top_reasons = top(reasons, 8);
        report.top_sources = top(sources, 8);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(service: Service, kind: &str, ok: bool, at: DateTime<Utc>) -> Event {
        let mut e = Event::new(service, kind, ok).reason("wrong password");
        e.time = at;
        e.client_ip = Some("192.0.2.7".parse().unwrap());
        e
    }

    #[test]
    fn counts_land_in_their_bucket_and_old_laps_are_ignored() {
        let a = Activity::default();
        let now = Utc::now();
        a.observe(&ev(Service::Ldap, "ldap_bind", true, now));
        a.observe(&ev(Service::Ldap, "ldap_bind", false, now));
        a.observe(&ev(
            Service::Radius,
            "radius_auth",
            false,
            now - chrono::Duration::minutes(30),
        ));
        a.observe(&ev(Service::Directory, "user_create", true, now));
        // Eight days ago: same ring slot as a recent minute, must not count.
        a.observe(&ev(
            Service::Ldap,
            "ldap_bind",
            true,
            now - chrono::Duration::days(7),
        ));
        let r = a.report(now, chrono::Duration::hours(1), 12);
        assert_eq!(r.ok[0].iter().sum::<u32>(), 1);
        assert_eq!(r.failed[0][11], 1);
        assert_eq!(r.failed[1].iter().sum::<u32>(), 1);
        assert_eq!(r.top_reasons, vec![("wrong password".to_string(), 2)]);
        assert_eq!(r.top_sources[0].0, "192.0.2.7");
        let r = a.report(now, chrono::Duration::minutes(10), 10);
        assert_eq!(r.failed[1].iter().sum::<u32>(), 0, "outside the window");
    }
}
