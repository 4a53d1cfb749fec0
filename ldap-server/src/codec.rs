//! Framing guard in front of `ldap3_proto`'s codec: every LDAPMessage is a BER SEQUENCE (tag 0x30) with a
//! definite length (RFC 4511 §5.1), so a first byte that is not 0x30, or a declared length above the PDU limit,
//! is refused at once instead of waiting for bytes that will never make sense.

use bytes::BytesMut;
use ldap3_proto::proto::LdapMsg;
use ldap3_proto::LdapCodec;
use tokio_util::codec::{Decoder, Encoder};

/// The LDAP codec with early checks of the outer tag and length.
pub struct GuardedCodec {
    inner: LdapCodec,
    max: usize,
}

impl GuardedCodec {
    pub fn new(max_pdu_bytes: usize) -> Self {
        GuardedCodec {
            inner: LdapCodec::new(Some(max_pdu_bytes), None),
            max: max_pdu_bytes,
        }
    }
}

fn refuse(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string())
}

/// Check the outer tag and length of what is buffered; `Ok` when it may still become a valid message.
fn check_header(buf: &[u8], max: usize) -> std::io::Result<()> {
    let Some(&tag) = buf.first() else {
        return Ok(());
    };
    if tag != 0x30 {
        return Err(refuse("an LDAP message must start with a SEQUENCE"));
    }
    let Some(&first) = buf.get(1) else {
        return Ok(());
    };
    if first & 0x80 == 0 {
        return Ok(());
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Err(refuse("indefinite or oversized BER length"));
    }
    let Some(bytes) = buf.get(2..2 + n) else {
        return Ok(());
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    if len > max {
        return Err(refuse("message larger than the PDU limit"));
    }
    Ok(())
}

impl Decoder for GuardedCodec {
    type Item = LdapMsg;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<LdapMsg>, Self::Error> {
        check_header(buf, self.max)?;
        self.inner.decode(buf)
    }
}

impl Encoder<LdapMsg> for GuardedCodec {
    type Error = std::io::Error;

    fn encode(&mut self, msg: LdapMsg, buf: &mut BytesMut) -> Result<(), Self::Error> {
        self.inner.encode(msg, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_wrong_tags_and_lying_lengths_early() {
        assert!(check_header(b"\xff\xfe", 1024).is_err());
        assert!(check_header(b"\x30\x84\x7f\xff\xff\xff", 1024).is_err());
        assert!(check_header(b"\x30\x80", 1024).is_err());
        assert!(
            check_header(b"\x30\x82\x01", 1024).is_ok(),
            "incomplete length waits"
        );
        assert!(check_header(b"\x30\x0c\x02\x01\x01", 1024).is_ok());
        assert!(check_header(b"", 1024).is_ok());
    }
}
