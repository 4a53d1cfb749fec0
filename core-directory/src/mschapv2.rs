//! MS-CHAPv2 (RFC 2759) verification against a user's NT hash.
//!
//! PEAP's inner method proves the password with an NT-Response computed from the MD4 NT hash. The check lives
//! here, beside the sealed NT hash, so the hash never leaves the core: a listener hands over the challenges and
//! the response and gets back whether they match, the Authenticator Response ("S=…") the peer expects and the
//! 128-bit MPPE keys of RFC 3079 §3 (made from the NT-hash-hash, which only the core can compute).

use crate::crypto::constant_time_eq;
use aws_lc_rs::digest::{Context, SHA1_FOR_LEGACY_USE_ONLY};
use des::cipher::{BlockEncrypt, KeyInit};
use md4::{Digest, Md4};

/// What a peer sent in its MS-CHAPv2 Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsChapV2Proof {
    /// The 16-octet challenge the authenticator sent.
    pub authenticator_challenge: [u8; 16],
    pub peer_challenge: [u8; 16],
    pub nt_response: [u8; 24],
    /// The user name exactly as the peer sent it (it enters the challenge hash), without any `DOMAIN\` prefix.
    pub peer_name: String,
}

/// A verified MS-CHAPv2 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsChapV2Success {
    /// `S=` and 40 upper-case hex digits (RFC 2759 §8.7).
    pub authenticator_response: String,
    pub keys: MppeKeys,
}

/// The 128-bit MPPE start keys of RFC 3079 §3.3–3.4, from the authenticator's side: what RFC 2548 carries as
/// MS-MPPE-Send-Key and MS-MPPE-Recv-Key.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKeys {
    /// The server's send key (Magic3) = the peer's receive key.
    pub send: [u8; 16],
    /// The server's receive key (Magic2) = the peer's send key.
    pub recv: [u8; 16],
}

impl std::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MppeKeys(..)")
    }
}

/// RFC 3079 §3.4 GetMasterKey (16 octets) and GetAsymmetricStartKey for both directions, server side.
fn mppe_keys(nt_hash: &[u8; 16], nt_response: &[u8; 24]) -> MppeKeys {
    const MAGIC1: &[u8] = b"This is the MPPE Master Key";
    const MAGIC2: &[u8] =
        b"On the client side, this is the send key; on the server side, it is the receive key.";
    const MAGIC3: &[u8] =
        b"On the client side, this is the receive key; on the server side, it is the send key.";
    let hash_hash = Md4::digest(nt_hash);
    let mut c = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    c.update(&hash_hash);
    c.update(nt_response);
    c.update(MAGIC1);
    let master = c.finish();
    let start_key = |magic: &[u8]| {
        let mut c = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
        c.update(&master.as_ref()[..16]);
        c.update(&[0u8; 40]);
        c.update(magic);
        c.update(&[0xf2u8; 40]);
        let d = c.finish();
        let mut k = [0u8; 16];
        k.copy_from_slice(&d.as_ref()[..16]);
        k
    };
    MppeKeys {
        send: start_key(MAGIC3),
        recv: start_key(MAGIC2),
    }
}

/// RFC 2759 §8.2 ChallengeHash.
fn challenge_hash(peer: &[u8; 16], auth: &[u8; 16], name: &[u8]) -> [u8; 8] {
    let mut c = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    c.update(peer);
    c.update(auth);
    c.update(name);
    let d = c.finish();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d.as_ref()[..8]);
    out
}

/// Spread 7 key octets over 8 DES key octets (parity bits are ignored by DES).
fn des_key(seven: &[u8]) -> [u8; 8] {
    let mut k = [0u8; 8];
    let mut bits: u64 = 0;
    for b in seven {
        bits = (bits << 8) | u64::from(*b);
    }
    for (i, slot) in k.iter_mut().enumerate() {
        *slot = (((bits >> (49 - 7 * i)) & 0x7f) as u8) << 1;
    }
    k
}

/// RFC 2759 §8.5 ChallengeResponse: the 8-octet challenge encrypted under three DES keys from the NT hash.
fn challenge_response(challenge: &[u8; 8], nt_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(nt_hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        let key = des_key(&z[i * 7..i * 7 + 7]);
        // A DES key is always 8 octets, so this cannot fail.
        let Ok(cipher) = des::Des::new_from_slice(&key) else {
            return [0; 24];
        };
        let mut block = des::cipher::generic_array::GenericArray::clone_from_slice(challenge);
        cipher.encrypt_block(&mut block);
        out[i * 8..i * 8 + 8].copy_from_slice(&block);
    }
    out
}

/// RFC 2759 §8.1 GenerateNTResponse.
pub fn nt_response(
    proof_challenge: &[u8; 16],
    peer: &[u8; 16],
    name: &str,
    nt_hash: &[u8; 16],
) -> [u8; 24] {
    challenge_response(
        &challenge_hash(peer, proof_challenge, name.as_bytes()),
        nt_hash,
    )
}

/// RFC 2759 §8.7 GenerateAuthenticatorResponse, as the `S=` and 40 upper-case hex digits the peer checks.
fn authenticator_response(proof: &MsChapV2Proof, nt_hash: &[u8; 16]) -> String {
    const MAGIC1: &[u8] = b"Magic server to client signing constant";
    const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";
    let hash_hash = Md4::digest(nt_hash);
    let mut c = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    c.update(&hash_hash);
    c.update(&proof.nt_response);
    c.update(MAGIC1);
    let d = c.finish();
    let ch = challenge_hash(
        &proof.peer_challenge,
        &proof.authenticator_challenge,
        proof.peer_name.as_bytes(),
    );
    let mut c = Context::new(&SHA1_FOR_LEGACY_USE_ONLY);
    c.update(d.as_ref());
    c.update(&ch);
    c.update(MAGIC2);
    let a = c.finish();
    format!("S={}", data_encoding::HEXUPPER.encode(a.as_ref()))
}

/// Check a proof against an NT hash; the authenticator response and MPPE keys when it matches.
pub fn verify(proof: &MsChapV2Proof, nt_hash: &[u8]) -> Option<MsChapV2Success> {
    let hash: [u8; 16] = nt_hash.try_into().ok()?;
    let expected = nt_response(
        &proof.authenticator_challenge,
        &proof.peer_challenge,
        &proof.peer_name,
        &hash,
    );
    constant_time_eq(&expected, &proof.nt_response).then(|| MsChapV2Success {
        authenticator_response: authenticator_response(proof, &hash),
        keys: mppe_keys(&hash, &proof.nt_response),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXUPPER_PERMISSIVE
            .decode(s.replace(' ', "").as_bytes())
            .unwrap()
    }

    #[test]
    fn rfc2759_section_9_2_example_verifies() {
        // RFC 2759 §9.2: UserName "User", Password "clientPass".
        let auth: [u8; 16] = hex("5B5D7C7D7B3F2F3E3C2C602132262628").try_into().unwrap();
        let peer: [u8; 16] = hex("21402324255E262A28295F2B3A337C7E").try_into().unwrap();
        let nt: [u8; 24] = hex("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
            .try_into()
            .unwrap();
        let hash = crate::directory::nt_hash("clientPass");
        assert_eq!(hash, hex("44EBBA8D5312B8D611474411F56989AE"));
        let proof = MsChapV2Proof {
            authenticator_challenge: auth,
            peer_challenge: peer,
            nt_response: nt,
            peer_name: "User".into(),
        };
        let ok = verify(&proof, &hash).unwrap();
        assert_eq!(
            ok.authenticator_response,
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
        // RFC 3079 §3.5.3 prints SendStartKey128 from the server's side (IsSend, IsServer: Magic3).
        assert_eq!(
            ok.keys.send.to_vec(),
            hex("8B7CDC149B993A1BA118CB153F56DCCB")
        );
        assert_ne!(ok.keys.recv, ok.keys.send);
        let wrong = crate::directory::nt_hash("clientPasS");
        assert_eq!(verify(&proof, &wrong), None);
        let mut other_name = proof.clone();
        other_name.peer_name = "user".into();
        assert_eq!(verify(&other_name, &hash), None);
    }
}
