//! Reply attributes of an Access-Accept: what the user's groups bound to the profile set (conflicts resolved by
//! group priority in the core, [`core_directory::AuthGrant::radius_reply`]), encoded with the dictionary.
//!
//! A group that sets only `Tunnel-Private-Group-Id` gets the rest of the RFC 3580 §3.31 VLAN triplet —
//! `Tunnel-Type = VLAN` and `Tunnel-Medium-Type = IEEE-802` with the same tag — since a switch ignores a VLAN id
//! without them. Tagged attributes set without a tag carry tag 1 ([`crate::dictionary::DEFAULT_TAG`]).

use crate::crypt;
use crate::dictionary::{Dictionary, Encoded, Form};
use crate::packet::{attr, Builder, EncodeError};
use core_directory::AuthGrant;

const TUNNEL_TYPE: u8 = 64;
const TUNNEL_MEDIUM_TYPE: u8 = 65;
const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;
const VLAN: u32 = 13;
const IEEE_802: u32 = 6;

/// The encoded reply attributes for a grant.
pub fn for_grant(grant: &AuthGrant, dict: &Dictionary) -> Vec<Encoded> {
    let mut out: Vec<Encoded> = Vec::new();
    for a in grant.radius_reply() {
        match dict.encode(&a.attribute, &a.value) {
            Ok(e) => out.push(e),
            // Checked when the admin set it; only a dictionary change between versions can get here.
            Err(e) => {
                tracing::warn!(attribute = %a.attribute, error = %e, "reply attribute skipped")
            }
        }
    }
    complete_vlan_triplets(&mut out);
    out
}

fn complete_vlan_triplets(attrs: &mut Vec<Encoded>) {
    let has = |attrs: &[Encoded], number: u8, tag: u8| {
        attrs
            .iter()
            .any(|a| a.vendor == 0 && a.number == number && a.tag == tag)
    };
    let tags: Vec<u8> = attrs
        .iter()
        .filter(|a| a.vendor == 0 && a.number == TUNNEL_PRIVATE_GROUP_ID)
        .map(|a| a.tag)
        .collect();
    for tag in tags {
        for (number, value) in [(TUNNEL_TYPE, VLAN), (TUNNEL_MEDIUM_TYPE, IEEE_802)] {
            if !has(attrs, number, tag) {
                attrs.push(Encoded {
                    vendor: 0,
                    number,
                    tag,
                    value: value.to_be_bytes().to_vec(),
                    form: Form::TaggedInteger,
                });
            }
        }
    }
}

/// Put one encoded attribute into a reply. `salt` numbers the salted attributes of the packet (RFC 2868 §3.5:
/// each salt in a packet is unique).
pub fn put(
    b: &mut Builder,
    a: &Encoded,
    secret: &[u8],
    request_authenticator: &[u8; 16],
    salt: &mut u16,
) -> Result<(), EncodeError> {
    let mut value = Vec::with_capacity(a.value.len() + 20);
    match a.form {
        Form::Salted => {
            *salt = salt.wrapping_add(1);
            let mut random = [0u8; 1];
            let _ = aws_lc_rs::rand::fill(&mut random);
            // High bit set (required), the low octet unique within the packet, the rest random.
            let s = (0x8000 | (u16::from(random[0] & 0x7f) << 8) | (*salt & 0xff)).to_be_bytes();
            if a.tag != 0 {
                value.push(a.tag);
            }
            value.extend_from_slice(&crypt::salt_encrypt(
                secret,
                request_authenticator,
                s,
                &a.value,
            ));
        }
        Form::TaggedInteger if a.value.len() == 4 => {
            value.push(a.tag);
            value.extend_from_slice(&a.value[1..]);
        }
        // An untagged value whose first octet would read as a tag gets an explicit zero tag.
        Form::TaggedString if a.tag != 0 || a.value.first().is_some_and(|c| *c <= 0x1f) => {
            value.push(a.tag);
            value.extend_from_slice(&a.value);
        }
        _ => value.extend_from_slice(&a.value),
    }
    if a.vendor == 0 {
        b.add(a.number, &value)?;
    } else {
        if value.len() > 247 {
            return Err(EncodeError::ValueTooLong(value.len()));
        }
        let mut vsa = a.vendor.to_be_bytes().to_vec();
        vsa.push(a.number);
        vsa.push((value.len() + 2) as u8);
        vsa.extend_from_slice(&value);
        b.add(attr::VENDOR_SPECIFIC, &vsa)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Code, Packet};

    #[test]
    fn a_vlan_id_alone_becomes_the_tagged_triplet() {
        let d = Dictionary::standard();
        let mut attrs = vec![d.encode("Tunnel-Private-Group-Id", "42").unwrap()];
        complete_vlan_triplets(&mut attrs);
        let mut b = Builder::new(Code::AccessAccept, 1, true);
        let mut salt = 0;
        for a in &attrs {
            put(&mut b, a, b"s", &[0; 16], &mut salt).unwrap();
        }
        let p = Packet::decode(&b.response(b"s", &[0; 16])).unwrap();
        assert_eq!(p.get(64), Some(&[1u8, 0, 0, 13][..]));
        assert_eq!(p.get(65), Some(&[1u8, 0, 0, 6][..]));
        assert_eq!(p.get(81), Some(&b"\x0142"[..]));
    }

    #[test]
    fn salted_vendor_attributes_decrypt_with_the_secret() {
        let d = Dictionary::standard();
        let a = d
            .encode("MS-MPPE-Send-Key", "0x00112233445566778899aabbccddeeff")
            .unwrap();
        let mut b = Builder::new(Code::AccessAccept, 1, true);
        let mut salt = 0;
        put(&mut b, &a, b"secret", &[7; 16], &mut salt).unwrap();
        let p = Packet::decode(&b.response(b"secret", &[7; 16])).unwrap();
        let v = p.vendor(311, 16).unwrap();
        assert!(v[0] & 0x80 != 0);
        assert_eq!(
            crypt::salt_decrypt(b"secret", &[7; 16], v).unwrap(),
            a.value
        );
    }
}
