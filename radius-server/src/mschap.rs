//! MS-CHAPv2 without EAP (RFC 2548 §2.3, RFC 2759, RFC 3079): what VPN concentrators send when they run
//! MS-CHAPv2 with the client themselves and ask RADIUS only to check the answer.
//!
//! # Attributes (vendor 311, Microsoft)
//! ```text
//! request  MS-CHAP-Challenge (11)   16 octets: the NAS's authenticator challenge
//!          MS-CHAP2-Response (25)   ident(1) flags(1) peer-challenge(16) reserved(8) nt-response(24)
//! accept   MS-CHAP2-Success (26)    ident(1) "S=<40 hex>"              the peer checks the server knew its hash
//!          MS-MPPE-Send-Key (16)    RFC 3079 server send key, 16 octets, salt-encrypted (RFC 2548 §2.4.2)
//!          MS-MPPE-Recv-Key (17)    RFC 3079 server receive key (RFC 2548 §2.4.3)
//!          MS-MPPE-Encryption-Policy (7) = 1 (allowed), MS-MPPE-Encryption-Types (8) = 4 (128-bit keys)
//! reject   MS-CHAP-Error (2)        ident(1) "E=691 R=0 C=<32 hex> V=3"   (authentication failure, no retry)
//! ```
//! The name in the challenge hash is the User-Name as sent without a `DOMAIN\` prefix (as Windows and
//! wpa_supplicant compute it); the profile's realm rule decides only which user is looked up. MS-CHAP v1
//! (MS-CHAP-Response, 1) is refused: it would need the LM hash or a weaker construction Stratus does not keep.

use crate::dictionary::{Encoded, Form};
use crate::packet::{Builder, EncodeError, Packet};
use crate::reply;
use core_directory::mschapv2::{MppeKeys, MsChapV2Proof};

pub const MICROSOFT: u32 = 311;
pub const MS_CHAP_RESPONSE: u8 = 1;
pub const MS_CHAP_ERROR: u8 = 2;
pub const MS_MPPE_ENCRYPTION_POLICY: u8 = 7;
pub const MS_MPPE_ENCRYPTION_TYPES: u8 = 8;
pub const MS_CHAP_CHALLENGE: u8 = 11;
pub const MS_MPPE_SEND_KEY: u8 = 16;
pub const MS_MPPE_RECV_KEY: u8 = 17;
pub const MS_CHAP2_RESPONSE: u8 = 25;
pub const MS_CHAP2_SUCCESS: u8 = 26;

/// Why MS-CHAP attributes in a request cannot be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsChapError {
    #[error("MS-CHAP v1 is not supported; configure the NAS for MS-CHAPv2, PEAP-MSCHAPv2, EAP-TTLS or PAP")]
    Version1,
    #[error("MS-CHAP2-Response without a 16-octet MS-CHAP-Challenge")]
    NoChallenge,
    #[error("MS-CHAP2-Response is not 50 octets")]
    BadResponse,
}

/// A checked-in-shape MS-CHAPv2 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsChapRequest {
    /// The ident the NAS put in its response, echoed in Success and Error.
    pub ident: u8,
    pub proof: MsChapV2Proof,
}

/// True when the request carries any MS-CHAP attribute (v1 or v2).
pub fn present(req: &Packet) -> bool {
    [MS_CHAP_CHALLENGE, MS_CHAP_RESPONSE, MS_CHAP2_RESPONSE]
        .iter()
        .any(|t| req.vendor(MICROSOFT, *t).is_some())
}

/// The ident of the request's MS-CHAP2-Response (or v1 MS-CHAP-Response), for an MS-CHAP-Error even when the
/// rest is malformed.
pub fn ident(req: &Packet) -> u8 {
    req.vendor(MICROSOFT, MS_CHAP2_RESPONSE)
        .or_else(|| req.vendor(MICROSOFT, MS_CHAP_RESPONSE))
        .and_then(|r| r.first().copied())
        .unwrap_or(0)
}

/// Read the MS-CHAPv2 attributes of a request; `user_name` is the User-Name as sent.
pub fn read(req: &Packet, user_name: &str) -> Result<MsChapRequest, MsChapError> {
    let Some(response) = req.vendor(MICROSOFT, MS_CHAP2_RESPONSE) else {
        return Err(MsChapError::Version1);
    };
    let challenge: [u8; 16] = req
        .vendor(MICROSOFT, MS_CHAP_CHALLENGE)
        .and_then(|c| c.try_into().ok())
        .ok_or(MsChapError::NoChallenge)?;
    if response.len() != 50 {
        return Err(MsChapError::BadResponse);
    }
    let mut proof = MsChapV2Proof {
        authenticator_challenge: challenge,
        peer_challenge: [0; 16],
        nt_response: [0; 24],
        peer_name: core_directory::realm::mschap_name(user_name).to_string(),
    };
    proof.peer_challenge.copy_from_slice(&response[2..18]);
    proof.nt_response.copy_from_slice(&response[26..50]);
    Ok(MsChapRequest {
        ident: response[0],
        proof,
    })
}

fn vsa(number: u8, value: Vec<u8>, form: Form) -> Encoded {
    Encoded {
        vendor: MICROSOFT,
        number,
        tag: 0,
        value,
        form,
    }
}

/// The MS-CHAPv2 attributes of an Access-Accept: Success with the authenticator response, the MPPE keys and
/// the encryption policy.
pub fn put_success(
    b: &mut Builder,
    ident: u8,
    authenticator_response: &str,
    keys: &MppeKeys,
    secret: &[u8],
    request_authenticator: &[u8; 16],
    salt: &mut u16,
) -> Result<(), EncodeError> {
    let mut success = vec![ident];
    success.extend_from_slice(authenticator_response.as_bytes());
    for a in [
        vsa(MS_CHAP2_SUCCESS, success, Form::Plain),
        vsa(MS_MPPE_SEND_KEY, keys.send.to_vec(), Form::Salted),
        vsa(MS_MPPE_RECV_KEY, keys.recv.to_vec(), Form::Salted),
        vsa(
            MS_MPPE_ENCRYPTION_POLICY,
            1u32.to_be_bytes().to_vec(),
            Form::Plain,
        ),
        vsa(
            MS_MPPE_ENCRYPTION_TYPES,
            4u32.to_be_bytes().to_vec(),
            Form::Plain,
        ),
    ] {
        reply::put(b, &a, secret, request_authenticator, salt)?;
    }
    Ok(())
}

/// The MS-CHAP-Error of an Access-Reject: 691 (authentication failure), no retry, a fresh challenge, version 3.
pub fn put_error(b: &mut Builder, ident: u8) -> Result<(), EncodeError> {
    let mut c = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut c);
    let mut value = vec![ident];
    value.extend_from_slice(
        format!("E=691 R=0 C={} V=3", data_encoding::HEXUPPER.encode(&c)).as_bytes(),
    );
    reply::put(
        b,
        &vsa(MS_CHAP_ERROR, value, Form::Plain),
        b"",
        &[0; 16],
        &mut 0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Code;

    fn request(attrs: &[(u8, Vec<u8>)]) -> Packet {
        let mut b = Builder::new(Code::AccessRequest, 1, true);
        b.add(crate::packet::attr::USER_NAME, b"CORP\\User")
            .unwrap();
        for (t, v) in attrs {
            let mut vsa = MICROSOFT.to_be_bytes().to_vec();
            vsa.push(*t);
            vsa.push((v.len() + 2) as u8);
            vsa.extend_from_slice(v);
            b.add(crate::packet::attr::VENDOR_SPECIFIC, &vsa).unwrap();
        }
        Packet::decode(&b.access_request(b"s", &[3; 16])).unwrap()
    }

    #[test]
    fn a_v2_response_is_read_with_the_domain_left_out_of_the_hash_name() {
        let mut response = vec![7, 0];
        response.extend_from_slice(&[1; 16]);
        response.extend_from_slice(&[0; 8]);
        response.extend_from_slice(&[2; 24]);
        let p = request(&[
            (MS_CHAP_CHALLENGE, vec![9; 16]),
            (MS_CHAP2_RESPONSE, response),
        ]);
        assert!(present(&p));
        let r = read(&p, "CORP\\User").unwrap();
        assert_eq!(r.ident, 7);
        assert_eq!(r.proof.authenticator_challenge, [9; 16]);
        assert_eq!(r.proof.peer_challenge, [1; 16]);
        assert_eq!(r.proof.nt_response, [2; 24]);
        assert_eq!(r.proof.peer_name, "User");
    }

    #[test]
    fn v1_short_and_unchallenged_responses_are_refused() {
        let v1 = request(&[
            (MS_CHAP_CHALLENGE, vec![9; 8]),
            (MS_CHAP_RESPONSE, vec![0; 50]),
        ]);
        assert_eq!(read(&v1, "u"), Err(MsChapError::Version1));
        let short = request(&[
            (MS_CHAP_CHALLENGE, vec![9; 16]),
            (MS_CHAP2_RESPONSE, vec![0; 49]),
        ]);
        assert_eq!(read(&short, "u"), Err(MsChapError::BadResponse));
        let alone = request(&[(MS_CHAP2_RESPONSE, vec![0; 50])]);
        assert_eq!(read(&alone, "u"), Err(MsChapError::NoChallenge));
        assert!(!present(&request(&[])));
    }
}
