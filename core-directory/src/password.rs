//! Password hashing and the verified-credential cache.
//!
//! argon2id runs on tokio's blocking pool behind a semaphore sized to the machine, so a burst of logins can
//! neither stall the async reactors nor allocate unbounded 19 MiB argon2 blocks. The cache remembers, per user,
//! an HMAC of the last password that verified (under a random per-process key), so repeated binds from the same
//! NAS or app skip argon2id; any change of the user's password, state or lock bumps the user's
//! `auth_revision`, which the cache compares, so a stale entry can never admit anyone.

use crate::crypto::{constant_time_eq, MacKey};
use crate::id::Id;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Why a hash could not be computed.
#[derive(Debug, thiserror::Error)]
#[error("argon2id: {0}")]
pub struct HashError(String);

/// Computes and verifies argon2id hashes off the async reactor.
pub struct PasswordHasherPool {
    argon: Argon2<'static>,
    permits: Semaphore,
}

impl PasswordHasherPool {
    /// A pool running at most `concurrency` hashes at once (0 = number of CPUs).
    pub fn new(params: HashParams, concurrency: usize) -> Result<Self, HashError> {
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError(e.to_string()))?;
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        Ok(PasswordHasherPool {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, p),
            permits: Semaphore::new(concurrency),
        })
    }

    /// Hash synchronously (for callers already on a blocking thread).
    pub fn hash_blocking(&self, password: &str) -> Result<String, HashError> {
        self.argon
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    }

    /// Verify synchronously; a malformed stored hash never verifies.
    pub fn verify_blocking(&self, phc: &str, password: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Hash on the blocking pool.
    pub async fn hash(self: &Arc<Self>, password: &str) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError(e.to_string()))?;
        let pool = Arc::clone(self);
        let password = password.to_string();
        tokio::task::spawn_blocking(move || pool.hash_blocking(&password))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// Verify on the blocking pool.
    pub async fn verify(self: &Arc<Self>, phc: &str, password: &str) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let pool = Arc::clone(self);
        let (phc, password) = (phc.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || pool.verify_blocking(&phc, &password))
            .await
            .unwrap_or(false)
    }

    /// Verify against several hashes (password history); true when any matches.
    pub async fn verify_any(self: &Arc<Self>, hashes: &[String], password: &str) -> bool {
        for h in hashes {
            if self.verify(h, password).await {
                return true;
            }
        }
        false
    }
}

struct CacheEntry {
    mac: [u8; 32],
    revision: u64,
    expires: Instant,
}

/// Number of independently locked shards of the credential cache.
const SHARDS: usize = 16;
/// Entries per shard before the shard is emptied (bounds memory under a flood of distinct users).
const SHARD_CAPACITY: usize = 16_384;

/// Remembers recently verified credentials so repeated logins skip argon2id.
pub struct CredentialCache {
    key: MacKey,
    ttl: Duration,
    enabled: bool,
    shards: Vec<Mutex<HashMap<Id, CacheEntry>>>,
}

impl CredentialCache {
    pub fn new(enabled: bool, ttl: Duration) -> Self {
        CredentialCache {
            key: MacKey::random(),
            ttl,
            enabled,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, user: &Id) -> &Mutex<HashMap<Id, CacheEntry>> {
        let h = user.as_str().bytes().fold(0usize, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(b as usize)
        });
        &self.shards[h % SHARDS]
    }

    fn mac(&self, user: &Id, password: &str) -> [u8; 32] {
        self.key
            .sign(&[user.as_str().as_bytes(), password.as_bytes()])
    }

    /// True when this exact password verified for this user at this revision within the TTL.
    pub fn check(&self, user: &Id, revision: u64, password: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let mac = self.mac(user, password);
        let shard = self.shard(user).lock().unwrap_or_else(|p| p.into_inner());
        shard.get(user).is_some_and(|e| {
            e.revision == revision && e.expires > Instant::now() && constant_time_eq(&e.mac, &mac)
        })
    }

    /// Remember a password that just verified.
    pub fn remember(&self, user: &Id, revision: u64, password: &str) {
        if !self.enabled {
            return;
        }
        let entry = CacheEntry {
            mac: self.mac(user, password),
            revision,
            expires: Instant::now() + self.ttl,
        };
        let mut shard = self.shard(user).lock().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= SHARD_CAPACITY {
            shard.clear();
        }
        shard.insert(user.clone(), entry);
    }

    /// Forget a user (their password, state or lock changed).
    pub fn forget(&self, user: &Id) {
        let mut shard = self.shard(user).lock().unwrap_or_else(|p| p.into_inner());
        shard.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap_pool() -> Arc<PasswordHasherPool> {
        let params = HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        Arc::new(PasswordHasherPool::new(params, 2).unwrap())
    }

    #[tokio::test]
    async fn argon2id_hash_verifies_only_the_right_password() {
        let pool = cheap_pool();
        let h = pool.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(pool.verify(&h, "correct horse").await);
        assert!(!pool.verify(&h, "wrong horse").await);
        assert!(!pool.verify("not a hash", "correct horse").await);
    }

    #[test]
    fn cache_hit_requires_same_password_and_revision() {
        let cache = CredentialCache::new(true, Duration::from_secs(60));
        let id = Id::generate();
        cache.remember(&id, 1, "pw");
        assert!(cache.check(&id, 1, "pw"));
        assert!(!cache.check(&id, 1, "other"));
        assert!(!cache.check(&id, 2, "pw"));
        cache.forget(&id);
        assert!(!cache.check(&id, 1, "pw"));
    }

    #[test]
    fn disabled_cache_never_hits() {
        let cache = CredentialCache::new(false, Duration::from_secs(60));
        let id = Id::generate();
        cache.remember(&id, 1, "pw");
        assert!(!cache.check(&id, 1, "pw"));
    }
}
