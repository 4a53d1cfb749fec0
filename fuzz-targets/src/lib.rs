//! # fuzz-targets
//!
//! One function per fuzz target, each taking the raw bytes a hostile peer could send and handing them to the
//! same decoder the listener uses on network input: LDAP framing behind our guard and `ldap3_proto`, LDAP
//! filters, the RADIUS packet codec and its attributes, EAP and the TLS records inside it, the SAML XML
//! reader, exclusive c14n with signature verification, the Redirect and POST bindings, SCIM filters and PATCH,
//! the CSV and LDIF imports, and the admin API's JSON bodies. Each function must return normally whatever it is
//! given; a panic is a bug in the decoder it reaches.
//!
//! The corpora under `corpus/<target>/` (seeds taken from real clients' traffic, and every input that once
//! crashed a target, named `crash-…`) run through these functions as an ordinary test on stable
//! (`tests/corpus.rs`); `fuzz/` drives the same functions with cargo-fuzz on nightly (`scripts/fuzz`).
//!
//! This crate owns the targets and their corpora only. It touches no listener state and opens no socket: it
//! calls decoders and pure functions, never a `Directory`, a store or a network listener. It is not a listener,
//! so it may depend on all of them; no listener may depend on it.
//!
//! # Layout
//! - [`ldap`]: `ldap_frame`, `ldap_filter`.
//! - [`radius`]: `radius_packet`; [`eap`]: `eap`, `eap_tls`.
//! - [`saml`]: `saml_xml`, `saml_c14n_verify`, `saml_redirect`.
//! - [`scim`]: `scim_filter`, `scim_patch`.
//! - [`import`]: `csv_import`, `ldif_import`; [`admin`]: `admin_json`.

pub mod admin;
pub mod eap;
pub mod import;
pub mod ldap;
pub mod radius;
pub mod saml;
pub mod scim;

/// A fuzz target: raw bytes in, nothing out, never a panic.
pub type Target = fn(&[u8]);

/// Every target by the name of its corpus directory and its cargo-fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("ldap_frame", ldap::ldap_frame),
    ("ldap_filter", ldap::ldap_filter),
    ("radius_packet", radius::radius_packet),
    ("eap", eap::eap),
    ("eap_tls", eap::eap_tls),
    ("saml_xml", saml::saml_xml),
    ("saml_c14n_verify", saml::saml_c14n_verify),
    ("saml_redirect", saml::saml_redirect),
    ("scim_filter", scim::scim_filter),
    ("scim_patch", scim::scim_patch),
    ("csv_import", import::csv_import),
    ("ldif_import", import::ldif_import),
    ("admin_json", admin::admin_json),
];

/// The target of that name.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Split `data` into the pieces of a conversation: each piece is a two-octet big-endian length and that many
/// octets (the last one may run short). Targets that take several messages read their input this way, so the
/// fuzzer can grow one message without shifting the others.
pub(crate) fn pieces(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (head, rest) = data.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*head)).min(rest.len());
        let (piece, rest) = rest.split_at(len);
        data = rest;
        Some(piece)
    })
}
