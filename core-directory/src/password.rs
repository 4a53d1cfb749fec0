//! Password hashing and the verified-credential cache.
//!
//! argon2id runs on a fixed set of dedicated hashing threads, never on the async reactors. Each thread owns one
//! argon2 memory block (19 MiB at the default cost), allocated on its first job and reused for every later hash
//! and verification, so a burst of logins or a 10,000-user import costs `threads × memory` once and the process
//! does not keep a freed 19 MiB buffer per blocking thread. A stored hash with a larger memory cost than the
//! configured one (an imported hash) is verified with a temporary block. The cache remembers, per user, an HMAC
//! of the last password that verified (under a random per-process key), so repeated binds from the same NAS or
//! app skip argon2id; any change of the user's password, state or lock bumps the user's `auth_revision`, which
//! the cache compares, so a stale entry can never admit anyone.

use crate::crypto::{constant_time_eq, random_bytes, MacKey};
use crate::id::Id;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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

impl HashParams {
    /// The weakest cost Stratus accepts for new hashes: OWASP's argon2id baseline, m = 19 MiB with t = 2, or
    /// the same memory × passes with at least 7 MiB (m = 9 MiB, t = 4; m = 7 MiB, t = 5 …).
    pub const FLOOR_MEMORY_KIB: u32 = 7_168;
    pub const FLOOR_MEMORY_PASSES: u64 = 19_456 * 2;

    /// `Err` with a message naming the floor when these parameters are below it.
    pub fn check_floor(&self) -> Result<(), String> {
        let work = u64::from(self.memory_kib) * u64::from(self.iterations);
        if self.memory_kib < Self::FLOOR_MEMORY_KIB || work < Self::FLOOR_MEMORY_PASSES {
            return Err(format!(
                "argon2id m={} KiB, t={} is below the minimum cost: at least {} KiB, and memory × passes at least \
                 {} (the default is m=19456, t=2)",
                self.memory_kib,
                self.iterations,
                Self::FLOOR_MEMORY_KIB,
                Self::FLOOR_MEMORY_PASSES
            ));
        }
        Ok(())
    }

    /// The parameters of a stored argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$…`).
    pub fn of_hash(phc: &str) -> Option<HashParams> {
        let mut parts = phc.split('$');
        let _ = parts.next();
        if !parts.next()?.starts_with("argon2") {
            return None;
        }
        let mut rest = parts.next()?;
        if rest.starts_with("v=") {
            rest = parts.next()?;
        }
        let mut p = HashParams {
            memory_kib: 0,
            iterations: 0,
            parallelism: 0,
        };
        for kv in rest.split(',') {
            let (k, v) = kv.split_once('=')?;
            let v: u32 = v.parse().ok()?;
            match k {
                "m" => p.memory_kib = v,
                "t" => p.iterations = v,
                "p" => p.parallelism = v,
                _ => {}
            }
        }
        (p.memory_kib > 0 && p.iterations > 0).then_some(p)
    }

    /// Whether a hash made with `stored` costs less than these parameters (then it is re-made at the next
    /// successful login).
    pub fn stronger_than(&self, stored: &HashParams) -> bool {
        self.memory_kib > stored.memory_kib || self.iterations > stored.iterations
    }
}

/// Why a hash could not be computed.
#[derive(Debug, thiserror::Error)]
#[error("argon2id: {0}")]
pub struct HashError(String);

/// Length of a new hash's salt and output, in bytes.
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// Work for a hashing thread: runs with that thread's memory block.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// Computes and verifies argon2id hashes on dedicated threads that reuse their memory.
pub struct PasswordHasherPool {
    argon: Argon2<'static>,
    params: HashParams,
    jobs: Mutex<mpsc::Sender<Job>>,
    threads: usize,
}

impl PasswordHasherPool {
    /// A pool of `concurrency` hashing threads (0 = number of CPUs).
    pub fn new(params: HashParams, concurrency: usize) -> Result<Self, HashError> {
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| HashError(e.to_string()))?;
        let threads = if concurrency == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            concurrency
        };
        let blocks = p.block_count();
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    let mut memory: Vec<Block> = Vec::new();
                    loop {
                        // The lock is held only while waiting for the next job, never while hashing.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        let Ok(job) = job else { return };
                        if memory.len() < blocks {
                            memory.resize(blocks, Block::default());
                        }
                        job(&mut memory);
                    }
                })
                .map_err(|e| HashError(e.to_string()))?;
        }
        Ok(PasswordHasherPool {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, p),
            params,
            jobs: Mutex::new(tx),
            threads,
        })
    }

    /// Number of hashing threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f` on a hashing thread, handing its result to `reply`; false when the pool has stopped.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
        reply: impl FnOnce(T) + Send + 'static,
    ) -> bool {
        let job: Job = Box::new(move |memory| reply(f(memory)));
        let sender = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        sender.send(job).is_ok()
    }

    /// Run `f` on a hashing thread and wait for it without an async runtime (safe inside one too: this
    /// blocks the calling thread only).
    fn run_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        if !self.submit(f, move |v| {
            let _ = tx.send(v);
        }) {
            return None;
        }
        rx.recv().ok()
    }

    /// Run `f` on a hashing thread and await it.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.submit(f, move |v| {
            let _ = tx.send(v);
        }) {
            return None;
        }
        rx.await.ok()
    }

    /// Hash synchronously (for callers outside the async reactors, such as start-up).
    /// The parameters new hashes are made with.
    pub fn params(&self) -> HashParams {
        self.params
    }

    pub fn hash_blocking(&self, password: &str) -> Result<String, HashError> {
        let (argon, password) = (self.argon.clone(), password.to_string());
        self.run_blocking(move |memory| new_hash(&argon, &password, memory))
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Verify synchronously; a malformed stored hash never verifies.
    pub fn verify_blocking(&self, phc: &str, password: &str) -> bool {
        let (phc, password) = (phc.to_string(), password.to_string());
        self.run_blocking(move |memory| verify_hash(&phc, &password, memory))
            .unwrap_or(false)
    }

    /// Hash on a hashing thread.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let (argon, password) = (self.argon.clone(), password.to_string());
        self.run(move |memory| new_hash(&argon, &password, memory))
            .await
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Verify on a hashing thread; a malformed stored hash never verifies.
    pub async fn verify(&self, phc: &str, password: &str) -> bool {
        let (phc, password) = (phc.to_string(), password.to_string());
        self.run(move |memory| verify_hash(&phc, &password, memory))
            .await
            .unwrap_or(false)
    }

    /// Verify against several hashes (password history); true when any matches.
    pub async fn verify_any(&self, hashes: &[String], password: &str) -> bool {
        for h in hashes {
            if self.verify(h, password).await {
                return true;
            }
        }
        false
    }
}

fn stopped() -> HashError {
    HashError("the hashing threads have stopped".into())
}

/// The largest memory cost a stored hash may ask for (1 GiB): a corrupt or hostile imported hash must not make a
/// verification allocate without bound.
const MAX_VERIFY_BLOCKS: usize = 1 << 20;

/// A new argon2id PHC string with a random salt, computed in `memory`.
fn new_hash(argon: &Argon2<'_>, password: &str, memory: &mut [Block]) -> Result<String, HashError> {
    let salt = random_bytes(SALT_LEN);
    let mut out = [0u8; OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
        .map_err(|e| HashError(e.to_string()))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| HashError(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(|e| HashError(e.to_string()))?),
        hash: Some(Output::new(&out).map_err(|e| HashError(e.to_string()))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches a stored argon2 PHC string. The thread's block is used when it is large enough;
/// a hash with a larger memory cost gets a temporary one. Anything malformed does not verify.
fn verify_hash(phc: &str, password: &str, memory: &mut [Block]) -> bool {
    if phc.starts_with('{') {
        // A hash imported from another directory (`legacy_hash`); `{ARGON2}` comes back here without its prefix.
        return crate::legacy_hash::verify(phc, password, |inner, pw| {
            inner.starts_with('$') && verify_hash(inner, pw, memory)
        });
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt.as_ref(), parsed.hash.as_ref()) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::new(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let needed = argon.params().block_count();
    if needed > MAX_VERIFY_BLOCKS {
        return false;
    }
    let done = if memory.len() >= needed {
        argon.hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..],
        )
    } else {
        argon.hash_password_into(password.as_bytes(), salt.as_ref(), &mut out)
    };
    done.is_ok() && constant_time_eq(&out, expected.as_bytes())
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

    #[tokio::test]
    async fn hashes_interoperate_with_the_standard_argon2_encoder() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let pool = cheap_pool();
        // A hash made by the plain argon2 encoder (as stored by earlier releases or imported) verifies here, also
        // with a memory cost larger than the pool's block, which takes a temporary block.
        for memory_kib in [64, 256] {
            let reference = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(memory_kib, 1, 1, None).unwrap(),
            );
            let stored = reference.hash_password(b"pass phrase").unwrap().to_string();
            assert!(pool.verify(&stored, "pass phrase").await, "{stored}");
            assert!(!pool.verify(&stored, "pass phrasE").await);
        }
        // And a hash made here verifies with the plain encoder.
        let ours = pool.hash("pass phrase").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"pass phrase", &parsed)
            .is_ok());
        assert!(pool.verify_blocking(&ours, "pass phrase"));
        assert_ne!(
            ours,
            pool.hash_blocking("pass phrase").unwrap(),
            "salts differ"
        );
    }

    #[tokio::test]
    async fn an_absurd_memory_cost_does_not_verify() {
        let pool = cheap_pool();
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!pool.verify(huge, "x").await);
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
