//! The client side of MS-CHAPv2 (RFC 2759 §8) and the MPPE keys of RFC 3079 §3, written from the RFCs for the
//! tests, separately from the server's code, and checked against the RFCs' own examples.

use aws_lc_rs::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY};
use des::cipher::{BlockEncrypt, KeyInit};
use md4::{Digest, Md4};

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut c = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    for p in parts {
        c.update(p);
    }
    c.finish().as_ref().to_vec()
}

/// RFC 2759 §8.3 NtPasswordHash: MD4 of the UTF-16LE password.
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let unicode: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    Md4::digest(&unicode).into()
}

/// RFC 2759 §8.2 ChallengeHash.
fn challenge_hash(peer: &[u8; 16], auth: &[u8; 16], user: &str) -> [u8; 8] {
    sha1(&[peer, auth, user.as_bytes()])[..8]
        .try_into()
        .unwrap()
}

/// RFC 2759 §8.6 DesEncrypt with a 7-octet key made into a DES key by inserting a (zero) parity bit every 7 bits.
fn des_encrypt(clear: &[u8; 8], key7: &[u8]) -> [u8; 8] {
    let mut bits = 0u64;
    for b in key7 {
        bits = bits << 8 | u64::from(*b);
    }
    let key: Vec<u8> = (0..8)
        .map(|i| ((bits >> (49 - 7 * i)) as u8 & 0x7f) << 1)
        .collect();
    let cipher = des::Des::new_from_slice(&key).unwrap();
    let mut block = des::cipher::generic_array::GenericArray::clone_from_slice(clear);
    cipher.encrypt_block(&mut block);
    block.into()
}

/// RFC 2759 §8.1 GenerateNTResponse.
pub fn nt_response(auth: &[u8; 16], peer: &[u8; 16], user: &str, password: &str) -> [u8; 24] {
    let challenge = challenge_hash(peer, auth, user);
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(&nt_password_hash(password));
    let mut out = [0u8; 24];
    for i in 0..3 {
        out[i * 8..i * 8 + 8].copy_from_slice(&des_encrypt(&challenge, &z[i * 7..i * 7 + 7]));
    }
    out
}

/// RFC 2759 §8.7 GenerateAuthenticatorResponse: `S=` and 40 upper-case hex digits.
pub fn authenticator_response(
    auth: &[u8; 16],
    peer: &[u8; 16],
    user: &str,
    password: &str,
    nt: &[u8; 24],
) -> String {
    let hash_hash = Md4::digest(nt_password_hash(password));
    let digest = sha1(&[&hash_hash, nt, b"Magic server to client signing constant"]);
    let challenge = challenge_hash(peer, auth, user);
    let digest = sha1(&[
        &digest,
        &challenge,
        b"Pad to make it do more than one iteration",
    ]);
    format!("S={}", data_encoding::HEXUPPER.encode(&digest))
}

/// RFC 3079 §3.3–3.4 for 128-bit keys, as the server (authenticator) holds them: (send key, receive key).
pub fn mppe_server_keys(password: &str, nt: &[u8; 24]) -> ([u8; 16], [u8; 16]) {
    let hash_hash = Md4::digest(nt_password_hash(password));
    let master = sha1(&[&hash_hash, nt, b"This is the MPPE Master Key"]);
    let start = |magic: &[u8]| -> [u8; 16] {
        sha1(&[&master[..16], &[0u8; 40], magic, &[0xf2u8; 40]])[..16]
            .try_into()
            .unwrap()
    };
    // Magic 3 is the server's send key, magic 2 its receive key.
    (
        start(
            b"On the client side, this is the receive key; on the server side, it is the send key.",
        ),
        start(
            b"On the client side, this is the send key; on the server side, it is the receive key.",
        ),
    )
}

#[test]
fn the_test_implementation_reproduces_the_rfc_examples() {
    let hex = |s: &str| data_encoding::HEXUPPER.decode(s.as_bytes()).unwrap();
    // RFC 2759 §9.2 and RFC 3079 §3.5.3: user "User", password "clientPass".
    let auth: [u8; 16] = hex("5B5D7C7D7B3F2F3E3C2C602132262628").try_into().unwrap();
    let peer: [u8; 16] = hex("21402324255E262A28295F2B3A337C7E").try_into().unwrap();
    assert_eq!(
        nt_password_hash("clientPass").to_vec(),
        hex("44EBBA8D5312B8D611474411F56989AE")
    );
    let nt = nt_response(&auth, &peer, "User", "clientPass");
    assert_eq!(
        nt.to_vec(),
        hex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
    );
    assert_eq!(
        authenticator_response(&auth, &peer, "User", "clientPass", &nt),
        "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    );
    let (send, _) = mppe_server_keys("clientPass", &nt);
    assert_eq!(send.to_vec(), hex("8B7CDC149B993A1BA118CB153F56DCCB"));
}
