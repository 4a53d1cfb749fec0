//! The attribute encryptions RADIUS uses with the shared secret.
//!
//! - RFC 2865 §5.2 (User-Password, dictionary `encrypt=1`): the value is padded to a multiple of 16 octets and
//!   each block XORed with MD5(secret ‖ previous cipher block), the first "previous block" being the Request
//!   Authenticator.
//! - RFC 2868 §3.5 (Tunnel-Password) and RFC 2548 §2.4.2/2.4.3 (MS-MPPE-Send-Key / MS-MPPE-Recv-Key), dictionary
//!   `encrypt=2`: a two-octet salt (high bit set, unique per attribute of a packet) and a length octet are put in
//!   front; the chain starts from MD5(secret ‖ Request Authenticator ‖ salt).

use md5::{Digest, Md5};

/// Longest User-Password RFC 2865 allows, in octets.
pub const MAX_USER_PASSWORD: usize = 128;

/// MD5 over the concatenation of `parts`.
pub(crate) fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// XOR `data` (a multiple of 16 octets) in place with the MD5 chain seeded by `seed`; `decrypt` chains on the
/// cipher text that was read, encryption on the cipher text that was written.
fn chain(secret: &[u8], seed: &[u8], data: &mut [u8], decrypt: bool) {
    let mut prev: Vec<u8> = seed.to_vec();
    for block in data.chunks_mut(16) {
        let key = md5_of(&[secret, &prev]);
        let cipher: Vec<u8> = block.to_vec();
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        prev = if decrypt { cipher } else { block.to_vec() };
    }
}

/// Why an encrypted attribute could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("encrypted value of {0} octets is not a positive multiple of 16 up to 128")]
    BadLength(usize),
    #[error("salted value is too short")]
    TooShort,
    #[error("salted value declares {declared} octets but holds {held}")]
    LengthLies { declared: usize, held: usize },
}

/// Hide a User-Password (RFC 2865 §5.2). Values longer than 128 octets are cut there.
pub fn hide_user_password(secret: &[u8], authenticator: &[u8; 16], password: &[u8]) -> Vec<u8> {
    let len = password.len().clamp(1, MAX_USER_PASSWORD);
    let mut data = password[..password.len().min(MAX_USER_PASSWORD)].to_vec();
    data.resize(len.div_ceil(16) * 16, 0);
    chain(secret, authenticator, &mut data, false);
    data
}

/// Recover a User-Password; trailing NUL padding is removed.
pub fn unhide_user_password(
    secret: &[u8],
    authenticator: &[u8; 16],
    hidden: &[u8],
) -> Result<Vec<u8>, CryptError> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_USER_PASSWORD {
        return Err(CryptError::BadLength(hidden.len()));
    }
    let mut data = hidden.to_vec();
    chain(secret, authenticator, &mut data, true);
    while data.last() == Some(&0) {
        data.pop();
    }
    Ok(data)
}

/// Encrypt a salted value (Tunnel-Password, MS-MPPE keys). `salt` must have its high bit set and differ between
/// the attributes of one packet.
pub fn salt_encrypt(
    secret: &[u8],
    authenticator: &[u8; 16],
    salt: [u8; 2],
    plain: &[u8],
) -> Vec<u8> {
    let plain = &plain[..plain.len().min(239)];
    let mut data = Vec::with_capacity(plain.len() + 17);
    data.push(plain.len() as u8);
    data.extend_from_slice(plain);
    data.resize(data.len().div_ceil(16) * 16, 0);
    let seed: Vec<u8> = authenticator.iter().chain(&salt).copied().collect();
    chain(secret, &seed, &mut data, false);
    let mut out = salt.to_vec();
    out.extend_from_slice(&data);
    out
}

/// Decrypt a salted value.
pub fn salt_decrypt(
    secret: &[u8],
    authenticator: &[u8; 16],
    value: &[u8],
) -> Result<Vec<u8>, CryptError> {
    if value.len() < 18 || !(value.len() - 2).is_multiple_of(16) {
        return Err(CryptError::TooShort);
    }
    let seed: Vec<u8> = authenticator.iter().chain(&value[..2]).copied().collect();
    let mut data = value[2..].to_vec();
    chain(secret, &seed, &mut data, true);
    let declared = usize::from(data[0]);
    if declared > data.len() - 1 {
        return Err(CryptError::LengthLies {
            declared,
            held: data.len() - 1,
        });
    }
    Ok(data[1..=declared].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn user_password_round_trips_at_every_length() {
        for len in 1..=MAX_USER_PASSWORD {
            let pw: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let hidden = hide_user_password(b"secret", &AUTH, &pw);
            assert_eq!(hidden.len(), len.div_ceil(16) * 16);
            assert_ne!(&hidden[..len.min(16)], &pw[..len.min(16)]);
            assert_eq!(unhide_user_password(b"secret", &AUTH, &hidden).unwrap(), pw);
        }
    }

    #[test]
    fn user_password_of_wrong_length_is_refused() {
        for len in [0, 15, 17, 144] {
            assert_eq!(
                unhide_user_password(b"s", &AUTH, &vec![0; len]),
                Err(CryptError::BadLength(len))
            );
        }
    }

    #[test]
    fn rfc2865_example_hides_the_password_as_the_rfc_shows() {
        // RFC 2865 §7.1: secret "xyzzy5461", password "arctangent".
        let auth: [u8; 16] = [
            0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4,
            0x22, 0x7a,
        ];
        let hidden = hide_user_password(b"xyzzy5461", &auth, b"arctangent");
        assert_eq!(
            hidden,
            [
                0x0d, 0xbe, 0x70, 0x8d, 0x93, 0xd4, 0x13, 0xce, 0x31, 0x96, 0xe4, 0x3f, 0x78, 0x2a,
                0x0a, 0xee
            ]
        );
    }

    #[test]
    fn salted_values_round_trip_and_lying_lengths_are_refused() {
        for len in [0, 1, 15, 16, 32, 64] {
            let plain: Vec<u8> = (0..len as u8).collect();
            let v = salt_encrypt(b"secret", &AUTH, [0x80, 0x01], &plain);
            assert_eq!((v.len() - 2) % 16, 0);
            assert_eq!(salt_decrypt(b"secret", &AUTH, &v).unwrap(), plain);
        }
        let v = salt_encrypt(b"secret", &AUTH, [0x80, 0x01], b"x");
        assert!(
            salt_decrypt(b"other", &AUTH, &v).is_err()
                || salt_decrypt(b"other", &AUTH, &v).unwrap() != b"x"
        );
        assert_eq!(
            salt_decrypt(b"s", &AUTH, &[0x80]),
            Err(CryptError::TooShort)
        );
    }
}
