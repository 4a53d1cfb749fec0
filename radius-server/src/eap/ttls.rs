//! EAP-TTLS inner PAP (RFC 5281 §10–11): the peer sends Diameter AVPs through the tunnel.
//!
//! # AVP format (RFC 5281 §10.1)
//! ```text
//! code(4) flags(1: V 0x80 vendor-id present, M 0x40 mandatory) length(3, header included) [vendor-id(4)]
//! data… padded with zeros to a multiple of 4 octets (the padding is not in the length)
//! ```
//! Only User-Name (1) and User-Password (2, NUL-padded to a multiple of 16) are read; a mandatory AVP Stratus
//! does not understand ends the conversation (RFC 5281 §10.1: the M bit).

/// Why the AVPs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AvpError {
    #[error("AVP header or length runs past the data")]
    Truncated,
    #[error("mandatory AVP {code} (vendor {vendor}) is not supported; only PAP is offered inside EAP-TTLS")]
    UnsupportedMandatory { code: u32, vendor: u32 },
    #[error("no User-Name and User-Password AVPs: only PAP is offered inside EAP-TTLS")]
    NoPap,
}

const USER_NAME: u32 = 1;
const USER_PASSWORD: u32 = 2;
const FLAG_VENDOR: u8 = 0x80;
const FLAG_MANDATORY: u8 = 0x40;

/// The PAP credentials of a TTLS tunnel.
#[derive(Debug, PartialEq, Eq)]
pub struct PapCredentials {
    pub username: String,
    pub password: String,
}

/// Read the AVPs of the tunnel's first plaintext.
pub fn pap(data: &[u8]) -> Result<PapCredentials, AvpError> {
    let (mut name, mut password) = (None, None);
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
            _ if flags & FLAG_MANDATORY != 0 => {
                return Err(AvpError::UnsupportedMandatory { code, vendor })
            }
            _ => {}
        }
        at += len.div_ceil(4) * 4;
    }
    match (name, password) {
        (Some(username), Some(password)) if !username.is_empty() => {
            Ok(PapCredentials { username, password })
        }
        _ => Err(AvpError::NoPap),
    }
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
            pap(&data).unwrap(),
            PapCredentials {
                username: "ann".into(),
                password: "secret".into()
            }
        );
    }

    #[test]
    fn unknown_mandatory_avps_and_truncation_are_refused() {
        let mut data = avp(USER_NAME, FLAG_MANDATORY, b"ann");
        data.extend(avp(99, FLAG_MANDATORY, b"x"));
        assert!(matches!(
            pap(&data),
            Err(AvpError::UnsupportedMandatory { code: 99, .. })
        ));
        let data = avp(USER_NAME, 0, b"ann");
        assert_eq!(pap(&data[..6]), Err(AvpError::Truncated));
        assert_eq!(pap(&data), Err(AvpError::NoPap));
        let mut lying = avp(USER_NAME, 0, b"ann");
        lying[7] = 200;
        assert_eq!(pap(&lying), Err(AvpError::Truncated));
        lying[7] = 3;
        assert_eq!(pap(&lying), Err(AvpError::Truncated));
    }
}
