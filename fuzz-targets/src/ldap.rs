//! LDAP targets: a byte stream through the connection's codec (`GuardedCodec`: the outer tag and length
//! checks, our control reader, then `ldap3_proto`), and what a session does with each decoded request before it
//! reaches the directory: DNs, the paged-results control, filter size and evaluation, compare assertions.

use bytes::BytesMut;
use ldap3_proto::proto::{LdapFilter, LdapOp, LdapSearchRequest};
use ldap_server::codec::{GuardedCodec, Request};
use ldap_server::entry::Entry;
use ldap_server::filter;
use ldap_server::search::{Limits, PageRequest};
use ldap_server::{dn, schema, LdapSettings};
use std::sync::OnceLock;
use tokio_util::codec::Decoder;

/// A client's byte stream, arriving in two reads (the split point is the input's middle), decoded as the
/// connection loop does until the codec waits for more or refuses.
pub fn ldap_frame(data: &[u8]) {
    let mut codec = {
        let max = LdapSettings::default().max_pdu_bytes;
        GuardedCodec::new(max, max)
    };
    let (first, second) = data.split_at(data.len() / 2);
    let mut buf = BytesMut::from(first);
    if !drain(&mut codec, &mut buf) {
        return;
    }
    buf.extend_from_slice(second);
    drain(&mut codec, &mut buf);
}

/// The input as the filter of a search request (a BER-encoded `Filter`), framed as a client would send it.
pub fn ldap_filter(data: &[u8]) {
    // searchRequest { baseObject "", scope wholeSubtree, derefAliases never, sizeLimit 0, timeLimit 0,
    // typesOnly FALSE, filter <data>, attributes {} }
    let mut op = vec![
        0x04, 0x00, 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01,
        0x01, 0x00,
    ];
    op.extend_from_slice(data);
    op.extend_from_slice(&[0x30, 0x00]);
    let mut body = vec![0x02, 0x01, 0x01, 0x63];
    put_length(&mut body, op.len());
    body.extend_from_slice(&op);
    let mut message = vec![0x30];
    put_length(&mut message, body.len());
    message.extend_from_slice(&body);
    let mut codec = {
        let max = LdapSettings::default().max_pdu_bytes;
        GuardedCodec::new(max, max)
    };
    drain(&mut codec, &mut BytesMut::from(&message[..]));
}

fn put_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Decode and act on every complete message; `false` once the codec refused the stream (the connection ends).
fn drain(codec: &mut GuardedCodec, buf: &mut BytesMut) -> bool {
    loop {
        match codec.decode(buf) {
            Ok(Some(request)) => handle(&request),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The request-reading steps of a session that need no directory.
fn handle(request: &Request) {
    for control in &request.controls {
        let _ = PageRequest::decode(control.value.as_deref());
    }
    match &request.msg.op {
        LdapOp::BindRequest(b) => {
            let _ = dn::parse(&b.dn);
        }
        LdapOp::SearchRequest(s) => search(s),
        LdapOp::CompareRequest(c) => {
            let _ = dn::normalize(&c.dn);
            if let Some(at) = schema::attribute(&c.atype) {
                let asserted = String::from_utf8_lossy(&c.val).into_owned();
                let probe = LdapFilter::Equality(at.name.into(), asserted);
                for e in entries() {
                    let _ = filter::eval(&probe, e);
                }
            }
        }
        LdapOp::ExtendedRequest(x) => {
            let _ = ldap3_proto::proto::LdapPasswordModifyRequest::try_from(x);
        }
        _ => {}
    }
}

fn search(s: &LdapSearchRequest) {
    let _ = dn::parse(&s.base);
    let _ = dn::normalize(&s.base);
    for a in &s.attrs {
        let _ = schema::attribute(a);
    }
    if filter::size(&s.filter) > Limits::default().max_filter_nodes {
        return;
    }
    for e in entries() {
        let _ = filter::eval(&s.filter, e);
    }
}

/// A user and a group shaped like the tree's entries, covering every attribute syntax.
fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let entry = |dn: &str, attrs: &[(&str, &[&str])]| {
            Entry::of(
                dn.into(),
                attrs
                    .iter()
                    .filter_map(|(name, values)| {
                        let at = schema::attribute(name)?;
                        Some((at, values.iter().map(|v| v.to_string()).collect()))
                    })
                    .collect(),
            )
        };
        let suffix = "o=0123456789abcdef01234567,dc=stratus,dc=local";
        let alice = format!("uid=alice,ou=Users,{suffix}");
        let group = format!("cn=staff,ou=Groups,{suffix}");
        vec![
            entry(
                &alice,
                &[
                    (
                        "objectClass",
                        &["top", "inetOrgPerson", "posixAccount", "sambaSamAccount"],
                    ),
                    ("uid", &["alice"]),
                    ("cn", &["Alice  Example"]),
                    ("sn", &["Example"]),
                    ("mail", &["alice@example.com"]),
                    ("uidNumber", &["10001"]),
                    ("gidNumber", &["10001"]),
                    ("homeDirectory", &["/home/alice"]),
                    ("memberOf", &[&group]),
                    ("createTimestamp", &["20240101000000Z"]),
                    ("entryUUID", &["6ba7b810-9dad-11d1-80b4-00c04fd430c8"]),
                ],
            ),
            entry(
                &group,
                &[
                    ("objectClass", &["top", "groupOfNames", "posixGroup"]),
                    ("cn", &["staff"]),
                    ("gidNumber", &["20000"]),
                    ("member", &[&alice]),
                    ("memberUid", &["alice"]),
                ],
            ),
        ]
    })
}
