//! The RADIUS packet: decoding that cannot panic, encoding, and the authenticators.
//!
//! # Format (RFC 2865 §3, §5)
//! ```text
//! code(1) identifier(1) length(2) authenticator(16) attributes…      20 ≤ length ≤ 4096
//! attribute: type(1) length(1, ≥ 2, includes these two octets) value(length − 2)
//! Vendor-Specific (26): vendor-id(4) then, for the vendors Stratus knows, vendor-type(1) vendor-length(1) value
//! ```
//! Octets past `length` are padding and ignored; a packet shorter than `length`, or an attribute running past
//! it, is malformed and dropped.
//!
//! Authenticators: Response Authenticator = MD5(code ‖ id ‖ length ‖ Request Authenticator ‖ attributes ‖
//! secret) (RFC 2865 §3); Accounting-Request Authenticator = the same with 16 zero octets in place of the
//! Request Authenticator (RFC 2866 §3); Message-Authenticator = HMAC-MD5(secret, packet) with its own value
//! zeroed and, in responses, the Request Authenticator in the authenticator field (RFC 3579 §3.2).

use crate::crypt::md5_of;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;

pub const MIN_PACKET: usize = 20;
pub const MAX_PACKET: usize = 4096;

/// Standard attribute types the listener reads or writes itself. Everything else goes through the dictionary.
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const CHAP_PASSWORD: u8 = 3;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const PROXY_STATE: u8 = 33;
    pub const CALLED_STATION_ID: u8 = 30;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    pub const ACCT_SESSION_ID: u8 = 44;
    pub const ACCT_SESSION_TIME: u8 = 46;
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const NAS_PORT_ID: u8 = 87;
    pub const NAS_IPV6_ADDRESS: u8 = 95;
}

/// Packet codes (RFC 2865 §3, RFC 2866 §3, RFC 5997).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    AccessRequest,
    AccessAccept,
    AccessReject,
    AccountingRequest,
    AccountingResponse,
    AccessChallenge,
    StatusServer,
    Other(u8),
}

impl Code {
    pub fn from_u8(v: u8) -> Code {
        match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            other => Code::Other(other),
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::Other(v) => v,
        }
    }
}

/// Why a datagram is not a RADIUS packet. Such datagrams are dropped (RFC 2865 §3: silently discarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("{0} octets is shorter than a RADIUS header")]
    TooShort(usize),
    #[error("declared length {0} is outside 20..=4096")]
    BadLength(usize),
    #[error("declared length {declared} but only {received} octets arrived")]
    Truncated { declared: usize, received: usize },
    #[error("attribute at offset {0} has a length below 2")]
    AttributeTooShort(usize),
    #[error("attribute at offset {0} runs past the end of the packet")]
    AttributeOverrun(usize),
    #[error("Message-Authenticator appears more than once or is not 16 octets")]
    BadMessageAuthenticator,
}

/// One attribute as it appears on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub typ: u8,
    pub value: Vec<u8>,
}

/// A decoded packet, with the received octets kept for authenticator checks.
#[derive(Debug, Clone)]
pub struct Packet {
    pub code: Code,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attributes: Vec<Attribute>,
    /// The packet as received, cut to its declared length.
    raw: Vec<u8>,
    /// Where the Message-Authenticator value starts in `raw`.
    message_authenticator_at: Option<usize>,
}

impl Packet {
    /// Decode a datagram. Never panics; every length is checked before it is used.
    pub fn decode(data: &[u8]) -> Result<Packet, DecodeError> {
        if data.len() < MIN_PACKET {
            return Err(DecodeError::TooShort(data.len()));
        }
        let declared = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if !(MIN_PACKET..=MAX_PACKET).contains(&declared) {
            return Err(DecodeError::BadLength(declared));
        }
        if declared > data.len() {
            return Err(DecodeError::Truncated {
                declared,
                received: data.len(),
            });
        }
        let raw = data[..declared].to_vec();
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&raw[4..20]);
        let mut attributes = Vec::new();
        let mut message_authenticator_at = None;
        let mut at = MIN_PACKET;
        while at < declared {
            if at + 2 > declared {
                return Err(DecodeError::AttributeOverrun(at));
            }
            let (typ, len) = (raw[at], usize::from(raw[at + 1]));
            if len < 2 {
                return Err(DecodeError::AttributeTooShort(at));
            }
            if at + len > declared {
                return Err(DecodeError::AttributeOverrun(at));
            }
            if typ == attr::MESSAGE_AUTHENTICATOR {
                if len != 18 || message_authenticator_at.is_some() {
                    return Err(DecodeError::BadMessageAuthenticator);
                }
                message_authenticator_at = Some(at + 2);
            }
            attributes.push(Attribute {
                typ,
                value: raw[at + 2..at + len].to_vec(),
            });
            at += len;
        }
        Ok(Packet {
            code: Code::from_u8(raw[0]),
            identifier: raw[1],
            authenticator,
            attributes,
            raw,
            message_authenticator_at,
        })
    }

    /// The first value of an attribute.
    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// Every value of an attribute, in order.
    pub fn all(&self, typ: u8) -> impl Iterator<Item = &[u8]> {
        self.attributes
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// A text attribute (lossy for invalid UTF-8; for logs and events).
    pub fn text(&self, typ: u8) -> Option<String> {
        self.get(typ)
            .map(|v| String::from_utf8_lossy(v).chars().take(253).collect())
    }

    /// A 32-bit integer attribute.
    pub fn integer(&self, typ: u8) -> Option<u32> {
        let v = self.get(typ)?;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }

    /// The value of a vendor-specific attribute (`vendor`, `vendor_type`), RFC 2865 §5.26 layout.
    pub fn vendor(&self, vendor: u32, vendor_type: u8) -> Option<&[u8]> {
        self.all(attr::VENDOR_SPECIFIC).find_map(|v| {
            if v.len() < 6 || u32::from_be_bytes([v[0], v[1], v[2], v[3]]) != vendor {
                return None;
            }
            let mut at = 4;
            while at + 2 <= v.len() {
                let (t, l) = (v[at], usize::from(v[at + 1]));
                if l < 2 || at + l > v.len() {
                    return None;
                }
                if t == vendor_type {
                    return Some(&v[at + 2..at + l]);
                }
                at += l;
            }
            None
        })
    }

    pub fn has_message_authenticator(&self) -> bool {
        self.message_authenticator_at.is_some()
    }

    /// Check the Message-Authenticator of a request. `zero_authenticator` is for Accounting-Requests, whose
    /// authenticator field was zero when the client computed it.
    pub fn message_authenticator_valid(&self, secret: &[u8], zero_authenticator: bool) -> bool {
        let Some(at) = self.message_authenticator_at else {
            return false;
        };
        let mut copy = self.raw.clone();
        let given: Vec<u8> = copy[at..at + 16].to_vec();
        copy[at..at + 16].fill(0);
        if zero_authenticator {
            copy[4..20].fill(0);
        }
        core_directory::crypto::constant_time_eq(&hmac_md5(secret, &copy), &given)
    }

    /// Check an Accounting-Request Authenticator (RFC 2866 §3).
    pub fn accounting_authenticator_valid(&self, secret: &[u8]) -> bool {
        let mut copy = self.raw.clone();
        copy[4..20].fill(0);
        let expected = md5_of(&[&copy, secret]);
        core_directory::crypto::constant_time_eq(&expected, &self.authenticator)
    }
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Md5> as KeyInit>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A packet being built: attributes appended in order, then sealed with the authenticators.
#[derive(Debug, Clone)]
pub struct Builder {
    code: Code,
    identifier: u8,
    body: Vec<u8>,
}

/// Why a packet could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("attribute value of {0} octets exceeds 253")]
    ValueTooLong(usize),
    #[error("packet would exceed 4096 octets")]
    PacketTooLong,
}

impl Builder {
    /// A reply or request. A Message-Authenticator placeholder comes first (as Blast-RADIUS hardening
    /// recommends) when `message_authenticator` is set.
    pub fn new(code: Code, identifier: u8, message_authenticator: bool) -> Builder {
        let mut body = Vec::with_capacity(256);
        if message_authenticator {
            body.extend_from_slice(&[attr::MESSAGE_AUTHENTICATOR, 18]);
            body.extend_from_slice(&[0; 16]);
        }
        Builder {
            code,
            identifier,
            body,
        }
    }

    /// A reply to `req`: its identifier, and every Proxy-State of the request copied unmodified and in order
    /// (RFC 2865 §5.33) — a proxy uses them to route the reply back to the NAS that asked. Fails only when they
    /// cannot fit, and then no reply is better than one the proxy cannot route.
    pub fn reply_to(
        req: &Packet,
        code: Code,
        message_authenticator: bool,
    ) -> Result<Builder, EncodeError> {
        let mut b = Builder::new(code, req.identifier, message_authenticator);
        for state in req.all(attr::PROXY_STATE) {
            b.add(attr::PROXY_STATE, state)?;
        }
        Ok(b)
    }

    /// Append one attribute.
    pub fn add(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        if value.len() > 253 {
            return Err(EncodeError::ValueTooLong(value.len()));
        }
        if MIN_PACKET + self.body.len() + 2 + value.len() > MAX_PACKET {
            return Err(EncodeError::PacketTooLong);
        }
        self.body.push(typ);
        self.body.push((value.len() + 2) as u8);
        self.body.extend_from_slice(value);
        Ok(self)
    }

    /// Append a value that may exceed one attribute, split into 253-octet pieces (EAP-Message, RFC 3579 §3.1).
    pub fn add_split(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        for piece in value.chunks(253) {
            self.add(typ, piece)?;
        }
        Ok(self)
    }

    fn assemble(&self, authenticator: &[u8; 16]) -> Vec<u8> {
        let len = (MIN_PACKET + self.body.len()) as u16;
        let mut out = Vec::with_capacity(usize::from(len));
        out.push(self.code.as_u8());
        out.push(self.identifier);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(authenticator);
        out.extend_from_slice(&self.body);
        out
    }

    fn has_message_authenticator(&self) -> bool {
        self.body.first() == Some(&attr::MESSAGE_AUTHENTICATOR)
    }

    /// The packet with `authenticator` in its header and, when there is one, the Message-Authenticator
    /// computed over it.
    fn signed(&self, secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
        let mut out = self.assemble(authenticator);
        if self.has_message_authenticator() {
            let mac = hmac_md5(secret, &out);
            out[MIN_PACKET + 2..MIN_PACKET + 18].copy_from_slice(&mac);
        }
        out
    }

    /// `out` with its authenticator field replaced by MD5 over the packet and the secret.
    fn with_md5_authenticator(mut out: Vec<u8>, secret: &[u8]) -> Vec<u8> {
        let auth = md5_of(&[&out, secret]);
        out[4..20].copy_from_slice(&auth);
        out
    }

    /// A response to a request with `request_authenticator`: Message-Authenticator, then the Response
    /// Authenticator over everything.
    pub fn response(&self, secret: &[u8], request_authenticator: &[u8; 16]) -> Vec<u8> {
        Self::with_md5_authenticator(self.signed(secret, request_authenticator), secret)
    }

    /// An Access-Request or Status-Server with the given random Request Authenticator (used by tests and the
    /// benchmark loader).
    pub fn access_request(&self, secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
        self.signed(secret, authenticator)
    }

    /// An Accounting-Request: Message-Authenticator over the packet with a zero authenticator, then the
    /// Request Authenticator (RFC 2866 §3).
    pub fn accounting_request(&self, secret: &[u8]) -> Vec<u8> {
        Self::with_md5_authenticator(self.signed(secret, &[0; 16]), secret)
    }
}

/// Check a response the way a NAS does (tests, benchmark loader): Response Authenticator and, when present,
/// Message-Authenticator.
pub fn response_valid(response: &[u8], secret: &[u8], request_authenticator: &[u8; 16]) -> bool {
    let Ok(p) = Packet::decode(response) else {
        return false;
    };
    let mut copy = p.raw.clone();
    copy[4..20].copy_from_slice(request_authenticator);
    if let Some(at) = p.message_authenticator_at {
        let mut m = copy.clone();
        m[at..at + 16].fill(0);
        if !core_directory::crypto::constant_time_eq(&hmac_md5(secret, &m), &copy[at..at + 16]) {
            return false;
        }
    }
    core_directory::crypto::constant_time_eq(&md5_of(&[&copy, secret]), &p.authenticator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(secret: &[u8]) -> Vec<u8> {
        let mut b = Builder::new(Code::AccessRequest, 7, true);
        b.add(attr::USER_NAME, b"alice").unwrap();
        b.access_request(secret, &[9; 16])
    }

    #[test]
    fn replies_carry_the_proxy_states_of_the_request_in_order() {
        let mut b = Builder::new(Code::AccessRequest, 3, true);
        b.add(attr::PROXY_STATE, b"second-hop").unwrap();
        b.add(attr::USER_NAME, b"alice").unwrap();
        b.add(attr::PROXY_STATE, b"\x00first").unwrap();
        let req = Packet::decode(&b.access_request(b"s", &[1; 16])).unwrap();
        let reply = Builder::reply_to(&req, Code::AccessReject, true).unwrap();
        let p = Packet::decode(&reply.response(b"s", &req.authenticator)).unwrap();
        assert_eq!(p.identifier, 3);
        let states: Vec<&[u8]> = p.all(attr::PROXY_STATE).collect();
        assert_eq!(states, vec![&b"second-hop"[..], &b"\x00first"[..]]);
    }

    #[test]
    fn request_round_trips_and_message_authenticator_verifies() {
        let raw = request(b"secret");
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(p.code, Code::AccessRequest);
        assert_eq!(p.identifier, 7);
        assert_eq!(p.text(attr::USER_NAME).as_deref(), Some("alice"));
        assert!(p.message_authenticator_valid(b"secret", false));
        assert!(!p.message_authenticator_valid(b"wrong", false));
    }

    #[test]
    fn response_carries_valid_authenticators() {
        let mut b = Builder::new(Code::AccessAccept, 7, true);
        b.add(attr::REPLY_MESSAGE, b"hello").unwrap();
        let raw = b.response(b"secret", &[9; 16]);
        assert!(response_valid(&raw, b"secret", &[9; 16]));
        assert!(!response_valid(&raw, b"secret", &[8; 16]));
        assert!(!response_valid(&raw, b"other", &[9; 16]));
    }

    #[test]
    fn accounting_request_authenticator_verifies() {
        let mut b = Builder::new(Code::AccountingRequest, 1, false);
        b.add(attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()).unwrap();
        let p = Packet::decode(&b.accounting_request(b"secret")).unwrap();
        assert!(p.accounting_authenticator_valid(b"secret"));
        assert!(!p.accounting_authenticator_valid(b"other"));
    }

    #[test]
    fn malformed_packets_are_refused_without_panicking() {
        let good = request(b"s");
        assert_eq!(
            Packet::decode(&good[..19]).unwrap_err(),
            DecodeError::TooShort(19)
        );
        let mut lying = good.clone();
        lying[2..4].copy_from_slice(&5000u16.to_be_bytes());
        assert_eq!(
            Packet::decode(&lying).unwrap_err(),
            DecodeError::BadLength(5000)
        );
        let mut long = good.clone();
        long[2..4].copy_from_slice(&((good.len() + 10) as u16).to_be_bytes());
        assert!(matches!(
            Packet::decode(&long).unwrap_err(),
            DecodeError::Truncated { .. }
        ));
        let mut zero = good.clone();
        zero[21] = 0;
        assert_eq!(
            Packet::decode(&zero).unwrap_err(),
            DecodeError::AttributeTooShort(20)
        );
        let mut over = good.clone();
        over[21] = 200;
        assert_eq!(
            Packet::decode(&over).unwrap_err(),
            DecodeError::AttributeOverrun(20)
        );
        // Padding beyond the declared length is ignored.
        let mut padded = good.clone();
        padded.extend_from_slice(&[0xff; 30]);
        assert!(Packet::decode(&padded).is_ok());
        // Every prefix and every single-octet corruption decodes or fails cleanly.
        for cut in 0..good.len() {
            let _ = Packet::decode(&good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 2, 0x7f, 0xff] {
                let mut c = good.clone();
                c[i] = v;
                let _ = Packet::decode(&c);
            }
        }
    }

    #[test]
    fn vendor_attributes_are_found_by_vendor_and_type() {
        let mut b = Builder::new(Code::AccessAccept, 1, false);
        let mut vsa = 311u32.to_be_bytes().to_vec();
        vsa.extend_from_slice(&[16, 5, 1, 2, 3]);
        b.add(attr::VENDOR_SPECIFIC, &vsa).unwrap();
        let p = Packet::decode(&b.response(b"s", &[0; 16])).unwrap();
        assert_eq!(p.vendor(311, 16), Some(&[1u8, 2, 3][..]));
        assert_eq!(p.vendor(311, 17), None);
        assert_eq!(p.vendor(9, 16), None);
    }
}
