//! Duplicate detection (RFC 5080 §2.2.2): a NAS retransmits a request it has no answer to with the same
//! identifier and authenticator. A retransmission gets the reply already sent, or nothing while the first copy
//! is still being worked on — never a second authentication, which would count a wrong password twice.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Source, identifier and Request Authenticator.
pub type RequestKey = (SocketAddr, u8, [u8; 16]);

/// What the table knows of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// First copy: the caller answers it and then calls [`Duplicates::answered`] or [`Duplicates::forget`].
    New,
    /// A copy is being answered now.
    InProgress,
    /// Already answered: send this again.
    Answered(Arc<Vec<u8>>),
}

enum Slot {
    InProgress,
    Answered(Arc<Vec<u8>>),
}

struct Inner {
    /// Each slot with the generation it was claimed in.
    slots: HashMap<RequestKey, (u64, Slot)>,
    /// Claims in time order; an entry whose generation no longer matches its slot is stale and only dropped.
    order: VecDeque<(Instant, RequestKey, u64)>,
    generation: u64,
}

impl Inner {
    /// Drop the oldest claim, and its slot unless the key was claimed again since.
    fn pop_oldest(&mut self) {
        if let Some((_, k, generation)) = self.order.pop_front() {
            if self.slots.get(&k).is_some_and(|(g, _)| *g == generation) {
                self.slots.remove(&k);
            }
        }
    }
}

/// The duplicate table: bounded in entries and in time.
pub struct Duplicates {
    window: Duration,
    max: usize,
    inner: Mutex<Inner>,
}

impl Duplicates {
    pub fn new(window: Duration, max: usize) -> Self {
        Duplicates {
            window,
            max,
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                order: VecDeque::new(),
                generation: 0,
            }),
        }
    }

    /// Look a request up, claiming it when it is new.
    pub fn check(&self, key: RequestKey) -> Seen {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while g
            .order
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) >= self.window)
        {
            g.pop_oldest();
        }
        match g.slots.get(&key) {
            Some((_, Slot::InProgress)) => Seen::InProgress,
            Some((_, Slot::Answered(r))) => Seen::Answered(Arc::clone(r)),
            None => {
                while g.order.len() >= self.max {
                    g.pop_oldest();
                }
                g.generation += 1;
                let generation = g.generation;
                g.slots.insert(key, (generation, Slot::InProgress));
                g.order.push_back((now, key, generation));
                Seen::New
            }
        }
    }

    /// Remember the reply to a request (before it is sent); returns it for sending.
    pub fn answered(&self, key: RequestKey, reply: Vec<u8>) -> Arc<Vec<u8>> {
        let reply = Arc::new(reply);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, slot)) = g.slots.get_mut(&key) {
            *slot = Slot::Answered(Arc::clone(&reply));
        }
        reply
    }

    /// Forget a request that got no reply (dropped), so a retransmission is answered afresh.
    pub fn forget(&self, key: &RequestKey) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.slots.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8) -> RequestKey {
        ("127.0.0.1:1000".parse().unwrap(), id, [id; 16])
    }

    #[test]
    fn a_retransmission_gets_the_first_reply() {
        let d = Duplicates::new(Duration::from_secs(30), 100);
        assert_eq!(d.check(key(1)), Seen::New);
        assert_eq!(d.check(key(1)), Seen::InProgress);
        d.answered(key(1), vec![1, 2, 3]);
        assert_eq!(d.check(key(1)), Seen::Answered(Arc::new(vec![1, 2, 3])));
        assert_eq!(d.check(key(2)), Seen::New);
        d.forget(&key(2));
        assert_eq!(d.check(key(2)), Seen::New);
    }

    #[test]
    fn the_table_stays_bounded() {
        let d = Duplicates::new(Duration::from_secs(30), 10);
        for i in 0..=255u8 {
            d.check(key(i));
        }
        let g = d.inner.lock().unwrap();
        assert!(g.slots.len() <= 11 && g.order.len() <= 11);
    }

    #[test]
    fn a_forgotten_request_claimed_again_keeps_its_new_slot() {
        let d = Duplicates::new(Duration::from_secs(30), 4);
        d.check(key(1));
        d.forget(&key(1));
        d.check(key(1));
        d.answered(key(1), vec![7]);
        // The stale first claim of key 1 is pushed out by these; the second claim must survive it.
        d.check(key(2));
        d.check(key(3));
        d.check(key(4));
        assert_eq!(d.check(key(1)), Seen::Answered(Arc::new(vec![7])));
    }

    #[test]
    fn entries_expire_after_the_window() {
        let d = Duplicates::new(Duration::from_millis(1), 100);
        d.check(key(1));
        d.answered(key(1), vec![1]);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(d.check(key(1)), Seen::New);
    }
}
