//! Small crypto helpers on aws-lc-rs: randomness, digests, constant-time comparison, and the master key that
//! seals secrets at rest (TOTP seeds, RADIUS shared secrets, IdP private keys, NT hashes).
//!
//! Sealed values are AES-256-GCM with a random 96-bit nonce and the owning record's purpose as associated data,
//! so a sealed TOTP seed cannot be swapped into another user's record or used as a RADIUS secret.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{digest, hmac, rand::SecureRandom};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::Path;

/// Fill a buffer from the system CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // The system RNG failing is not recoverable: nothing secure can be produced without it.
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buf)
        .expect("system random number generator failed");
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fill_random(&mut v);
    v
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(digest::digest(&digest::SHA256, data).as_ref())
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// HMAC-SHA256 under a key.
pub struct MacKey(hmac::Key);

impl MacKey {
    pub fn random() -> Self {
        MacKey(hmac::Key::new(hmac::HMAC_SHA256, &random_bytes(32)))
    }
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for p in parts {
            // Length-prefix every part so ("ab","c") and ("a","bc") differ.
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// A secret sealed under the master key: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// Why a master key could not be loaded or a value opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("STRATUS_MASTER_KEY must be 32 bytes as 64 hex characters or base64")]
    BadKeyEncoding,
    #[error("master key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("sealed value is malformed or was sealed under another master key")]
    Open,
}

/// The AEAD key protecting secrets at rest.
pub struct MasterKey {
    key: LessSafeKey,
    /// A key derived from the master key for digests of names that must not be kept as given (see
    /// [`MasterKey::name_digest`]).
    names: hmac::Key,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::BadKeyEncoding)?;
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, bytes),
            b"stratus: digests of names in events",
        );
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
            names: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        })
    }

    /// Decode a key given as 64 hex characters or standard base64 of 32 bytes.
    pub fn from_text(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .or_else(|_| data_encoding::BASE64.decode(text.as_bytes()))
            .map_err(|_| SealError::BadKeyEncoding)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKeyEncoding);
        }
        Self::from_bytes(&bytes)
    }

    /// The key from `env_value` when given, otherwise from `<data_dir>/master.key`, generated there once with
    /// mode 0600 when missing.
    pub fn load_or_create(env_value: Option<&str>, data_dir: &Path) -> Result<Self, SealError> {
        if let Some(text) = env_value {
            return Self::from_text(text);
        }
        let path = data_dir.join("master.key");
        let io_err = |source| SealError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_text(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let encoded = data_encoding::HEXLOWER.encode(&random_bytes(32));
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut file = opts.open(&path).map_err(io_err)?;
                file.write_all(encoded.as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Self::from_text(&encoded)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// A random key, for tests and benchmarks.
    pub fn ephemeral() -> Self {
        // 32 random bytes are always a valid AES-256 key.
        Self::from_bytes(&random_bytes(32)).expect("32-byte key")
    }

    /// A short keyed digest of a name (case-folded): the same name gives the same digest on every node and
    /// across restarts, so repeated attempts can be told apart, but the name cannot be read back (it may be a
    /// password typed into the wrong field).
    pub fn name_digest(&self, name: &str) -> String {
        let tag = hmac::sign(&self.names, name.trim().to_lowercase().as_bytes());
        data_encoding::HEXLOWER.encode(&tag.as_ref()[..6])
    }

    /// Seal `plaintext` for `purpose` (e.g. `totp:<user id>`).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Sealed {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        fill_random(&mut nonce_bytes);
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        Sealed(format!("v1:{}", data_encoding::BASE64.encode(&out)))
    }

    /// Open a value sealed for `purpose`.
    pub fn open(&self, purpose: &str, sealed: &Sealed) -> Result<Vec<u8>, SealError> {
        let body = sealed.0.strip_prefix("v1:").ok_or(SealError::Open)?;
        let raw = data_encoding::BASE64
            .decode(body.as_bytes())
            .map_err(|_| SealError::Open)?;
        if raw.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

/// How an event names an attempted name that matches no account: `unknown name #<keyed digest>`.
pub fn unknown_name(key: &MasterKey, name: &str) -> String {
    format!("unknown name #{}", key.name_digest(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_only_for_its_purpose() {
        let key = MasterKey::ephemeral();
        let sealed = key.seal("totp:a", b"seed");
        assert_eq!(key.open("totp:a", &sealed).unwrap(), b"seed");
        assert!(key.open("totp:b", &sealed).is_err());
        assert!(MasterKey::ephemeral().open("totp:a", &sealed).is_err());
    }

    #[test]
    fn master_key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::load_or_create(None, dir.path()).unwrap();
        let sealed = a.seal("x", b"y");
        let b = MasterKey::load_or_create(None, dir.path()).unwrap();
        assert_eq!(b.open("x", &sealed).unwrap(), b"y");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_master_key_text_is_rejected() {
        assert!(MasterKey::from_text("short").is_err());
    }
}
