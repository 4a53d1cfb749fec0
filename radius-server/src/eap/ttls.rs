//! EAP-TTLS inner methods (RFC 5281 §10–11): the peer sends Diameter AVPs through the tunnel.
//!
//! # AVP format (RFC 5281 §10.1)
//! ```text
//! code(4) flags(1: V 0x80 vendor-id present, M 0x40 mandatory) length(3, header included) [vendor-id(4)]
//! data… padded with zeros to a multiple of 4 octets (the padding is not in the length)
//! ```
//! Read: User-Name (1), and either User-Password (2, NUL-padded to a multiple of 16) for PAP (§11.2.5), the
//! Microsoft MS-CHAP-Challenge (311/11) and MS-CHAP2-Response (311/25) for MS-CHAPv2 (§11.2.4), or EAP-Message
//! (79) for an EAP method inside the tunnel (§11.2.1). A mandatory AVP Stratus does not understand ends the
//! conversation (§10.1: the M bit).
//!
//! # MS-CHAPv2 inside TTLS (RFC 5281 §11.2.4)
//! The server sends no challenge: both sides derive 17 octets of TLS keying material with the label
//! `ttls challenge` — 16 of challenge, then the MS-CHAPv2 ident — and the peer's MS-CHAP-Challenge and ident must
//! equal them. A good response is answered in the tunnel with an MS-CHAP2-Success AVP (ident, `S=…`); the peer
//! acknowledges it with an empty message and the Access-Accept follows with the TTLS keying-material MSK.

/// Why the AVPs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AvpError {
    #[error("AVP header or length runs past the data")]
    Truncated,
    #[error("mandatory AVP {code} (vendor {vendor}) is not supported; PAP and MS-CHAPv2 are offered inside EAP-TTLS")]
    UnsupportedMandatory { code: u32, vendor: u32 },
    #[error("no User-Name with User-Password or MS-CHAP2-Response, and no EAP-Message: PAP and MS-CHAPv2 are offered inside EAP-TTLS")]
    NoCredentials,
    #[error("MS-CHAP2-Response without a 16-octet MS-CHAP-Challenge, or not 50 octets")]
    BadMsChap,
}

const USER_NAME: u32 = 1;
const USER_PASSWORD: u32 = 2;
const EAP_MESSAGE: u32 = 79;
/// The largest inner EAP packet taken (an MSCHAPv2 response is about 60 octets).
const MAX_INNER_EAP: usize = 1024;
const MICROSOFT: u32 = 311;
const MS_CHAP_CHALLENGE: u32 = 11;
const MS_CHAP2_RESPONSE: u32 = 25;
const MS_CHAP2_SUCCESS: u32 = 26;
const FLAG_VENDOR: u8 = 0x80;
const FLAG_MANDATORY: u8 = 0x40;

/// What the peer proves itself with inside the tunnel.
#[derive(Debug, PartialEq, Eq)]
pub enum InnerCredentials {
    Pap {
        username: String,
        password: String,
    },
    MsChapV2 {
        username: String,
        challenge: [u8; 16],
        /// ident(1) flags(1) peer-challenge(16) reserved(8) nt-response(24)
        response: [u8; 50],
    },
    /// An EAP packet (EAP-Message AVPs, concatenated).
    Eap(Vec<u8>),
}

impl InnerCredentials {
    /// The User-Name AVP (empty for an EAP packet, whose identity is inside it).
    pub fn username(&self) -> &str {
        match self {
            InnerCredentials::Pap { username, .. }
            | InnerCredentials::MsChapV2 { username, .. } => username,
            InnerCredentials::Eap(_) => "",
        }
    }
}

/// Read the AVPs of the tunnel's first plaintext.
pub fn credentials(data: &[u8]) -> Result<InnerCredentials, AvpError> {
    let (mut name, mut password, mut challenge, mut response) = (None, None, None, None);
    let mut eap: Option<Vec<u8>> = None;
    let mut at = 0usize;
    while at < data.len() {
        let header = data.get(at..at + 8).ok_or(AvpError::Truncated)?;
        let code = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let flags = header[4];
        let len =
            usize::from(header[5]) << 16 | usize::from(header[6]) << 8 | usize::from(header[7]);
        let (vendor, start) = if flags & FLAG_VENDOR != 0 {
            let v = data.get(at + 8..at + 12).ok_or(AvpError::Truncated)?;
            (u32::from_be_bytes([v[0], v[1], v[2], v[3]]), at + 12)
        } else {
            (0, at + 8)
        };
        if len < start - at {
            return Err(AvpError::Truncated);
        }
        let value = data.get(start..at + len).ok_or(AvpError::Truncated)?;
        match (vendor, code) {
            (0, USER_NAME) => name = Some(String::from_utf8_lossy(value).into_owned()),
            (0, USER_PASSWORD) => {
                let end = value.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
                password = String::from_utf8(value[..end].to_vec()).ok();
            }
            (0, EAP_MESSAGE) => {
                let e = eap.get_or_insert_with(Vec::new);
                if e.len() + value.len() > MAX_INNER_EAP {
                    return Err(AvpError::Truncated);
                }
                e.extend_from_slice(value);
            }
            (MICROSOFT, MS_CHAP_CHALLENGE) => challenge = Some(value),
            (MICROSOFT, MS_CHAP2_RESPONSE) => response = Some(value),
            _ if flags & FLAG_MANDATORY != 0 => {
                return Err(AvpError::UnsupportedMandatory { code, vendor })
            }
            _ => {}
        }
        at += len.div_ceil(4) * 4;
    }
    if let Some(e) = eap {
        return Ok(InnerCredentials::Eap(e));
    }
    let username = name
        .filter(|n| !n.is_empty())
        .ok_or(AvpError::NoCredentials)?;
    match (password, response) {
        (_, Some(r)) => Ok(InnerCredentials::MsChapV2 {
            username,
            challenge: challenge
                .and_then(|c| c.try_into().ok())
                .ok_or(AvpError::BadMsChap)?,
            response: r.try_into().map_err(|_| AvpError::BadMsChap)?,
        }),
        (Some(password), None) => Ok(InnerCredentials::Pap { username, password }),
        (None, None) => Err(AvpError::NoCredentials),
    }
}

/// An EAP packet in an EAP-Message AVP (mandatory) for the peer.
pub fn eap_message(packet: &[u8]) -> Vec<u8> {
    let len = 8 + packet.len();
    let mut out = EAP_MESSAGE.to_be_bytes().to_vec();
    out.push(FLAG_MANDATORY);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(packet);
    out.resize(len.div_ceil(4) * 4, 0);
    out
}

/// The MS-CHAP2-Success AVP (vendor 311, mandatory) the server sends in the tunnel: ident, then `S=…`.
pub fn mschap2_success(ident: u8, authenticator_response: &str) -> Vec<u8> {
    let mut value = vec![ident];
    value.extend_from_slice(authenticator_response.as_bytes());
    let len = 12 + value.len();
    let mut out = MS_CHAP2_SUCCESS.to_be_bytes().to_vec();
    out.push(FLAG_VENDOR | FLAG_MANDATORY);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&MICROSOFT.to_be_bytes());
    out.extend_from_slice(&value);
    out.resize(len.div_ceil(4) * 4, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avp(code: u32, flags: u8, value: &[u8]) -> Vec<u8> {
        let len = 8 + value.len();
        let mut out = code.to_be_bytes().to_vec();
        out.push(flags);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(value);
        out.resize(len.div_ceil(4) * 4, 0);
        out
    }

    #[test]
    fn pap_avps_are_read_and_padding_removed() {
        let mut data = avp(USER_NAME, FLAG_MANDATORY, b"ann");
        data.extend(avp(
            USER_PASSWORD,
            FLAG_MANDATORY,
            b"secret\0\0\0\0\0\0\0\0\0\0",
        ));
        assert_eq!(
            credentials(&data).unwrap(),
            InnerCredentials::Pap {
                username: "ann".into(),
                password: "secret".into()
            }
        );
    }

    fn vendor_avp(code: u32, value: &[u8]) -> Vec<u8> {
        let len = 12 + value.len();
        let mut out = code.to_be_bytes().to_vec();
        out.push(FLAG_VENDOR | FLAG_MANDATORY);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&MICROSOFT.to_be_bytes());
        out.extend_from_slice(value);
        out.resize(len.div_ceil(4) * 4, 0);
        out
    }

    #[test]
    fn mschapv2_avps_are_read_and_the_success_avp_is_well_formed() {
        let mut data = avp(USER_NAME, FLAG_MANDATORY, b"CORP\\ann");
        data.extend(vendor_avp(MS_CHAP_CHALLENGE, &[5; 16]));
        data.extend(vendor_avp(MS_CHAP2_RESPONSE, &[6; 50]));
        assert_eq!(
            credentials(&data).unwrap(),
            InnerCredentials::MsChapV2 {
                username: "CORP\\ann".into(),
                challenge: [5; 16],
                response: [6; 50]
            }
        );
        let mut short = avp(USER_NAME, FLAG_MANDATORY, b"ann");
        short.extend(vendor_avp(MS_CHAP2_RESPONSE, &[6; 50]));
        assert_eq!(credentials(&short), Err(AvpError::BadMsChap));
        let ok = mschap2_success(7, "S=AB");
        assert_eq!(ok, vendor_avp(MS_CHAP2_SUCCESS, b"\x07S=AB"));
    }

    #[test]
    fn eap_message_avps_round_trip() {
        let packet = [2, 5, 0, 8, 1, b'a', b'n', b'n'];
        let data = eap_message(&packet);
        assert_eq!(data.len() % 4, 0);
        assert_eq!(
            credentials(&data).unwrap(),
            InnerCredentials::Eap(packet.to_vec())
        );
        let huge = eap_message(&[0; MAX_INNER_EAP + 1]);
        assert_eq!(credentials(&huge), Err(AvpError::Truncated));
    }

    #[test]
    fn unknown_mandatory_avps_and_truncation_are_refused() {
        let mut data = avp(USER_NAME, FLAG_MANDATORY, b"ann");
        data.extend(avp(99, FLAG_MANDATORY, b"x"));
        assert!(matches!(
            credentials(&data),
            Err(AvpError::UnsupportedMandatory { code: 99, .. })
        ));
        let data = avp(USER_NAME, 0, b"ann");
        assert_eq!(credentials(&data[..6]), Err(AvpError::Truncated));
        assert_eq!(credentials(&data), Err(AvpError::NoCredentials));
        let mut lying = avp(USER_NAME, 0, b"ann");
        lying[7] = 200;
        assert_eq!(credentials(&lying), Err(AvpError::Truncated));
        lying[7] = 3;
        assert_eq!(credentials(&lying), Err(AvpError::Truncated));
    }
}
