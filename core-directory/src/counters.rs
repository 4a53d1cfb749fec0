//! Counters that listeners feed and `/metrics` reads: RADIUS requests per profile by outcome, and the
//! datagrams dropped before any profile was known, by reason. Keys are bounded — profile names and a fixed
//! set of outcome and reason words — so a flood of strange traffic cannot grow them. Owns no rule.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// RADIUS counters: profile → `(outcome, reason)` → count. `profile` is `""` when the source matched none.
/// Counting an already seen series allocates nothing.
#[derive(Default)]
pub struct RadiusCounters {
    inner: Mutex<BTreeMap<String, Series>>,
}

/// One profile's counts by `(outcome, reason)`.
type Series = BTreeMap<(&'static str, &'static str), u64>;

impl RadiusCounters {
    /// Count one request. `outcome` is one of `accept`, `reject`, `challenge`, `accounting`, `status`,
    /// `dropped`; `reason` says why a request was dropped (`""` otherwise).
    pub fn count(&self, profile: &str, outcome: &'static str, reason: &'static str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let series = match m.get_mut(profile) {
            Some(s) => s,
            None => m.entry(profile.to_string()).or_default(),
        };
        *series.entry((outcome, reason)).or_insert(0) += 1;
    }

    /// Every counter, in key order.
    pub fn snapshot(&self) -> Vec<(String, &'static str, &'static str, u64)> {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .flat_map(|(p, series)| {
                series
                    .iter()
                    .map(move |((o, r), n)| (p.clone(), *o, *r, *n))
            })
            .collect()
    }
}
