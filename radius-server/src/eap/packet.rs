//! EAP packets (RFC 3748 §4) and their transport in RADIUS (RFC 3579 §3.1).
//!
//! # Format
//! ```text
//! code(1: 1 Request, 2 Response, 3 Success, 4 Failure) identifier(1) length(2) [type(1) data…]
//! ```
//! In RADIUS, one EAP packet is split over consecutive EAP-Message attributes of up to 253 octets each; the
//! receiver concatenates them. Success and Failure carry no type.

use crate::packet::{attr, Builder, EncodeError, Packet};

pub const REQUEST: u8 = 1;
pub const RESPONSE: u8 = 2;
pub const SUCCESS: u8 = 3;
pub const FAILURE: u8 = 4;

/// EAP method types Stratus speaks (IANA "EAP Method Types").
pub mod method {
    pub const IDENTITY: u8 = 1;
    pub const NAK: u8 = 3;
    pub const TLS: u8 = 13;
    pub const TTLS: u8 = 21;
    pub const PEAP: u8 = 25;
    pub const MSCHAPV2: u8 = 26;
    /// PEAP Extensions (Result TLV).
    pub const EXTENSIONS: u8 = 33;
}

/// Largest EAP packet Stratus accepts or sends in one RADIUS packet.
pub const MAX_EAP: usize = 4000;

/// One EAP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eap {
    pub code: u8,
    pub identifier: u8,
    /// Type and data; empty for Success and Failure.
    pub body: Vec<u8>,
}

/// Why an EAP packet could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EapError {
    #[error("EAP packet shorter than its header")]
    TooShort,
    #[error("EAP length {declared} disagrees with the {received} octets carried")]
    LengthMismatch { declared: usize, received: usize },
    #[error("EAP packet over {MAX_EAP} octets")]
    TooLong,
}

impl Eap {
    /// Decode one EAP packet; the length field must match exactly.
    pub fn decode(data: &[u8]) -> Result<Eap, EapError> {
        if data.len() < 4 {
            return Err(EapError::TooShort);
        }
        if data.len() > MAX_EAP {
            return Err(EapError::TooLong);
        }
        let declared = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if declared != data.len() {
            return Err(EapError::LengthMismatch {
                declared,
                received: data.len(),
            });
        }
        Ok(Eap {
            code: data[0],
            identifier: data[1],
            body: data[4..].to_vec(),
        })
    }

    /// The EAP packet carried in a RADIUS request's EAP-Message attributes, if any.
    pub fn from_radius(req: &Packet) -> Option<Result<Eap, EapError>> {
        let mut data = Vec::new();
        for piece in req.all(attr::EAP_MESSAGE) {
            if data.len() + piece.len() > MAX_EAP {
                return Some(Err(EapError::TooLong));
            }
            data.extend_from_slice(piece);
        }
        (!data.is_empty() || req.get(attr::EAP_MESSAGE).is_some()).then(|| Eap::decode(&data))
    }

    pub fn method(&self) -> Option<u8> {
        self.body.first().copied()
    }

    /// The data after the type octet.
    pub fn data(&self) -> &[u8] {
        self.body.get(1..).unwrap_or(&[])
    }

    pub fn request(identifier: u8, method: u8, data: &[u8]) -> Eap {
        let mut body = Vec::with_capacity(data.len() + 1);
        body.push(method);
        body.extend_from_slice(data);
        Eap {
            code: REQUEST,
            identifier,
            body,
        }
    }

    pub fn success(identifier: u8) -> Eap {
        Eap {
            code: SUCCESS,
            identifier,
            body: Vec::new(),
        }
    }

    pub fn failure(identifier: u8) -> Eap {
        Eap {
            code: FAILURE,
            identifier,
            body: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let len = (4 + self.body.len()) as u16;
        let mut out = Vec::with_capacity(usize::from(len));
        out.push(self.code);
        out.push(self.identifier);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Append as EAP-Message attributes.
    pub fn put(&self, b: &mut Builder) -> Result<(), EncodeError> {
        b.add_split(attr::EAP_MESSAGE, &self.encode()).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Code;

    #[test]
    fn eap_round_trips_through_split_attributes() {
        let e = Eap::request(7, method::PEAP, &vec![0xab; 1500]);
        let mut b = Builder::new(Code::AccessChallenge, 1, true);
        e.put(&mut b).unwrap();
        let p = Packet::decode(&b.response(b"s", &[0; 16])).unwrap();
        assert_eq!(p.all(attr::EAP_MESSAGE).count(), 6);
        assert_eq!(Eap::from_radius(&p).unwrap().unwrap(), e);
    }

    #[test]
    fn lying_lengths_are_refused() {
        assert_eq!(Eap::decode(&[2, 1, 0]), Err(EapError::TooShort));
        assert!(matches!(
            Eap::decode(&[2, 1, 0, 9, 1]),
            Err(EapError::LengthMismatch { .. })
        ));
        assert_eq!(Eap::decode(&[2, 1, 0, 5, 1]).unwrap().method(), Some(1));
    }
}
