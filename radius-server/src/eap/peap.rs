//! PEAPv0 with inner EAP-MSCHAPv2 (draft-josefsson-pppext-eap-tls-eap, draft-kamath-pppext-eap-mschapv2,
//! RFC 2759), as Windows and wpa_supplicant speak it.
//!
//! Inside the tunnel PEAPv0 drops the EAP header of inner packets — `type data…` only, the identifier being the
//! outer one — except for Extensions (type 33, the Result TLV), which travel whole. The inner conversation:
//! ```text
//! → Identity request        ← identity
//! → MSCHAPv2 Challenge      ← MSCHAPv2 Response (NT-Response)     core checks it against the NT hash
//! → MSCHAPv2 Success (S=…)  ← MSCHAPv2 Success acknowledgement
//! → Extensions: Result TLV success  ← Result TLV success          → Access-Accept + EAP-Success + MPPE keys
//! ```
//! A refused login gets an MSCHAPv2 Failure (`E=691 R=0`, what Windows shows as a wrong password); whatever the
//! peer answers, Access-Reject and EAP-Failure follow.
//!
//! # MSCHAPv2 packets (after the type octet 26)
//! ```text
//! Challenge: opcode 1, ms-id(1), ms-length(2), value-size 16, challenge(16), name…
//! Response:  opcode 2, ms-id(1), ms-length(2), value-size 49, peer-challenge(16), reserved(8), nt-response(24),
//!            flags(1), name…
//! Success:   opcode 3, ms-id(1), ms-length(2), "S=<40 hex> M=<message>"   (the peer answers with opcode 3 alone)
//! ```

use super::packet::{method, REQUEST, RESPONSE};
use core_directory::mschapv2::MsChapV2Proof;

const OP_CHALLENGE: u8 = 1;
const OP_RESPONSE: u8 = 2;
const OP_SUCCESS: u8 = 3;
const OP_FAILURE: u8 = 4;

/// The name Stratus gives itself in MSCHAPv2 challenges.
const SERVER_NAME: &[u8] = b"stratus";

/// Why an inner packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InnerError {
    #[error("expected an inner {expected}, got type {got:?}")]
    Unexpected {
        expected: &'static str,
        got: Option<u8>,
    },
    #[error("malformed MSCHAPv2 response")]
    BadResponse,
    #[error("MSCHAPv2 identifier {got} does not answer challenge {sent}")]
    WrongId { sent: u8, got: u8 },
    #[error("the peer reported failure in its Result TLV")]
    PeerFailed,
}

/// An inner packet without its EAP header (PEAPv0). A peer that sends the header anyway is understood too.
pub fn strip_header(plain: &[u8]) -> &[u8] {
    if plain.len() >= 5
        && plain[0] == RESPONSE
        && usize::from(u16::from_be_bytes([plain[2], plain[3]])) == plain.len()
        && plain[4] != method::EXTENSIONS
    {
        &plain[4..]
    } else {
        plain
    }
}

/// The inner Identity request.
pub fn identity_request() -> Vec<u8> {
    vec![method::IDENTITY]
}

/// Read the inner identity response.
pub fn identity(inner: &[u8]) -> Result<String, InnerError> {
    match inner.split_first() {
        Some((&method::IDENTITY, name)) if !name.is_empty() && name.len() <= 253 => {
            Ok(String::from_utf8_lossy(name).into_owned())
        }
        other => Err(InnerError::Unexpected {
            expected: "identity",
            got: other.map(|(t, _)| *t),
        }),
    }
}

fn ms_packet(opcode: u8, ms_id: u8, payload: &[u8]) -> Vec<u8> {
    let ms_len = (4 + payload.len()) as u16;
    let mut out = vec![method::MSCHAPV2, opcode, ms_id];
    out.extend_from_slice(&ms_len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An MSCHAPv2 Challenge request.
pub fn challenge_request(ms_id: u8, challenge: &[u8; 16]) -> Vec<u8> {
    let mut payload = vec![16];
    payload.extend_from_slice(challenge);
    payload.extend_from_slice(SERVER_NAME);
    ms_packet(OP_CHALLENGE, ms_id, &payload)
}

/// Read an MSCHAPv2 Response into the proof the core checks.
pub fn response(
    inner: &[u8],
    ms_id: u8,
    challenge: &[u8; 16],
) -> Result<MsChapV2Proof, InnerError> {
    match inner.first() {
        Some(&method::MSCHAPV2) => {}
        other => {
            return Err(InnerError::Unexpected {
                expected: "MSCHAPv2 response",
                got: other.copied(),
            })
        }
    }
    // type, opcode, id, ms-length(2), value-size, value(49), name
    if inner.len() < 6 + 49 || inner[1] != OP_RESPONSE || inner[5] != 49 {
        return Err(InnerError::BadResponse);
    }
    if inner[2] != ms_id {
        return Err(InnerError::WrongId {
            sent: ms_id,
            got: inner[2],
        });
    }
    let value = &inner[6..6 + 49];
    let name = String::from_utf8_lossy(&inner[6 + 49..]).into_owned();
    let mut proof = MsChapV2Proof {
        authenticator_challenge: *challenge,
        peer_challenge: [0; 16],
        nt_response: [0; 24],
        peer_name: core_directory::realm::mschap_name(&name).to_string(),
    };
    proof.peer_challenge.copy_from_slice(&value[..16]);
    proof.nt_response.copy_from_slice(&value[24..48]);
    Ok(proof)
}

/// The MSCHAPv2 Success request carrying the authenticator response.
pub fn success_request(ms_id: u8, authenticator_response: &str) -> Vec<u8> {
    ms_packet(
        OP_SUCCESS,
        ms_id,
        format!("{authenticator_response} M=Welcome").as_bytes(),
    )
}

/// The MSCHAPv2 Failure request for a refused login: E=691 (authentication failure), no retry, version 3.
pub fn failure_request(ms_id: u8) -> Vec<u8> {
    let mut c = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut c);
    let text = format!(
        "E=691 R=0 C={} V=3 M=Authentication failed",
        data_encoding::HEXUPPER.encode(&c)
    );
    ms_packet(OP_FAILURE, ms_id, text.as_bytes())
}

/// The peer's acknowledgement of our Success.
pub fn success_ack(inner: &[u8]) -> Result<(), InnerError> {
    match inner {
        [method::MSCHAPV2, OP_SUCCESS, ..] => Ok(()),
        other => Err(InnerError::Unexpected {
            expected: "MSCHAPv2 success acknowledgement",
            got: other.first().copied(),
        }),
    }
}

/// The Extensions request with a Result TLV (success), whole EAP packet with `identifier`.
pub fn result_request(identifier: u8) -> Vec<u8> {
    // Result TLV: mandatory bit + type 3, length 2, status 1 (success).
    let body = [method::EXTENSIONS, 0x80, 0x03, 0x00, 0x02, 0x00, 0x01];
    let mut out = vec![REQUEST, identifier];
    out.extend_from_slice(&((4 + body.len()) as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Read the peer's Result TLV.
pub fn result_response(plain: &[u8]) -> Result<(), InnerError> {
    // code, id, length(2), type 33, then TLVs: flags+type(2), length(2), value.
    if plain.len() < 5 || plain[0] != RESPONSE || plain[4] != method::EXTENSIONS {
        return Err(InnerError::Unexpected {
            expected: "Result TLV",
            got: plain.get(4).copied(),
        });
    }
    let mut tlvs = &plain[5..];
    while tlvs.len() >= 4 {
        let typ = u16::from_be_bytes([tlvs[0], tlvs[1]]) & 0x3fff;
        let len = usize::from(u16::from_be_bytes([tlvs[2], tlvs[3]]));
        let Some(value) = tlvs.get(4..4 + len) else {
            break;
        };
        if typ == 3 {
            return if value == [0, 1] {
                Ok(())
            } else {
                Err(InnerError::PeerFailed)
            };
        }
        tlvs = &tlvs[4 + len..];
    }
    Err(InnerError::Unexpected {
        expected: "Result TLV",
        got: Some(method::EXTENSIONS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_is_read_into_a_proof() {
        let mut inner = vec![method::MSCHAPV2, OP_RESPONSE, 9, 0, 0, 49];
        inner.extend_from_slice(&[1; 16]);
        inner.extend_from_slice(&[0; 8]);
        inner.extend_from_slice(&[2; 24]);
        inner.push(0);
        inner.extend_from_slice(b"CORP\\ann");
        let p = response(&inner, 9, &[7; 16]).unwrap();
        assert_eq!(
            (p.peer_challenge, p.nt_response, p.peer_name.as_str()),
            ([1; 16], [2; 24], "ann")
        );
        assert_eq!(
            response(&inner, 8, &[7; 16]),
            Err(InnerError::WrongId { sent: 8, got: 9 })
        );
        assert_eq!(
            response(&inner[..30], 9, &[7; 16]),
            Err(InnerError::BadResponse)
        );
    }

    #[test]
    fn result_tlv_reads_success_and_failure() {
        let mut ok = result_request(3);
        ok[0] = RESPONSE;
        assert_eq!(result_response(&ok), Ok(()));
        let mut failed = ok.clone();
        *failed.last_mut().unwrap() = 2;
        assert_eq!(result_response(&failed), Err(InnerError::PeerFailed));
        assert!(result_response(&[2, 3, 0, 5, 33]).is_err());
    }

    #[test]
    fn identity_and_headers() {
        assert_eq!(identity(&[1, b'a', b'n', b'n']).unwrap(), "ann");
        assert!(identity(&[1]).is_err());
        assert_eq!(
            strip_header(&[2, 5, 0, 8, 1, b'a', b'n', b'n']),
            &[1, b'a', b'n', b'n']
        );
    }
}
