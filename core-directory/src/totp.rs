//! TOTP (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps, one step of drift either way.
//!
//! Verification returns the time step that matched, so the caller can refuse a code whose step was already
//! used (the replay guard lives in [`crate::directory`]).

use aws_lc_rs::hmac;

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;

/// A fresh 160-bit secret.
pub fn generate_secret() -> Vec<u8> {
    crate::crypto::random_bytes(20)
}

/// Base32 (RFC 4648, no padding) as authenticator apps expect.
pub fn secret_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// `otpauth://` URI for QR codes.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={}&period={}",
        enc(issuer),
        enc(account),
        secret_base32(secret),
        enc(issuer),
        DIGITS,
        STEP_SECONDS
    )
}

/// The code for one time step.
pub fn code_at_step(secret: &[u8], step: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    binary % 10u32.pow(DIGITS)
}

/// The code for a Unix time, formatted with leading zeros.
pub fn code_at(secret: &[u8], unix_seconds: u64) -> String {
    format!("{:06}", code_at_step(secret, unix_seconds / STEP_SECONDS))
}

/// The step whose code matches `code` within ±1 step of `unix_seconds`, if any.
pub fn verify(secret: &[u8], code: &str, unix_seconds: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_seconds / STEP_SECONDS;
    let mut found = None;
    // Check every candidate so timing does not reveal which step matched.
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = format!("{:06}", code_at_step(secret, step));
        if crate::crypto::constant_time_eq(expected.as_bytes(), code.as_bytes()) && found.is_none()
        {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column (8-digit values; we keep the last 6 digits).
    #[test]
    fn rfc6238_sha1_test_vectors() {
        let secret = b"12345678901234567890";
        let vectors = [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ];
        for (t, full) in vectors {
            assert_eq!(code_at(secret, t), full[2..], "time {t}");
        }
    }

    #[test]
    fn adjacent_steps_accepted_and_far_ones_refused() {
        let secret = generate_secret();
        let t = 1_700_000_000;
        let prev = code_at(&secret, t - 30);
        assert_eq!(verify(&secret, &prev, t), Some(t / 30 - 1));
        let far = code_at(&secret, t - 120);
        assert_eq!(verify(&secret, &far, t), None);
        assert_eq!(verify(&secret, "12345", t), None);
        assert_eq!(verify(&secret, "abcdef", t), None);
    }
}
