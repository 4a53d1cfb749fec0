//! SAML targets: the strict XML reader with the message readers behind it, exclusive c14n and enveloped
//! signature verification, and the Redirect and POST bindings (query parsing, base64, bounded DEFLATE, the
//! detached signature).

use saml_idp::binding::{self, Incoming};
use saml_idp::dsig;
use saml_idp::xml::{self, Element, Limits};
use std::sync::OnceLock;

/// A document as the SSO, SLO and metadata endpoints read it.
pub fn saml_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = saml_idp::read_sp_metadata(text, None);
    let Ok(root) = xml::parse(text, Limits::default()) else {
        return;
    };
    messages(&root);
    // The canonical form is a fixed point: reading it back and canonicalising again changes nothing, or a
    // signature made over one serialisation would not verify over the other.
    let canonical = xml::to_string(&root);
    // The canonical form may declare a namespace again on every element that uses it, so only the depth keeps
    // its limit when it is read back.
    let unlimited = Limits {
        max_bytes: usize::MAX,
        max_nodes: usize::MAX,
        max_attributes: usize::MAX,
        max_namespace_declarations: usize::MAX,
        ..Limits::default()
    };
    match xml::parse(&canonical, unlimited) {
        Ok(again) => assert_eq!(
            xml::to_string(&again),
            canonical,
            "canonicalisation must be idempotent"
        ),
        Err(e) => panic!("the canonical form of a document we accepted is refused: {e}"),
    }
}

fn messages(root: &Element) {
    let _ = saml_idp::protocol::read_authn_request(root);
    let _ = saml_idp::protocol::read_logout_request(root);
    let _ = saml_idp::protocol::read_sp_metadata(root);
}

/// A signed document: c14n of the whole tree and of the signature's SignedInfo, and verification with a key
/// that did not sign it (every check before the RSA operation runs on the input).
pub fn saml_c14n_verify(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(root) = xml::parse(text, Limits::default()) else {
        return;
    };
    let signature = root.first(dsig::NS_DS, "Signature");
    let _ = xml::canonicalize(&root, signature, &[]);
    let _ = xml::canonicalize(&root, signature, &["#default".into(), "saml".into()]);
    let _ = dsig::is_signed(&root);
    for c in dsig::key_info_certificates(&root) {
        let _ = core_directory::idp_keys::inspect_certificate(&c);
    }
    for allow_sha1 in [false, true] {
        let _ = dsig::verify_enveloped(&root, std::slice::from_ref(sp_key()), allow_sha1);
    }
}

/// A raw query string at the Redirect-binding endpoints, and the same text as a POST-binding form field.
pub fn saml_redirect(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for field in ["SAMLRequest", "SAMLResponse"] {
        if let Ok(m) = binding::from_redirect(text, field) {
            incoming(&m);
        }
    }
    if let Ok(m) = binding::from_post(Some(text), Some(text), "SAMLRequest") {
        incoming(&m);
    }
}

fn incoming(m: &Incoming) {
    if let Some(d) = &m.detached {
        let _ = d.verify(std::slice::from_ref(sp_key()), true);
    }
    if let Ok(root) = xml::parse(&m.xml, Limits::default()) {
        messages(&root);
    }
}

/// An SP's public key (PKCS#1 DER), made once.
fn sp_key() -> &'static Vec<u8> {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| {
        let m = core_directory::idp_keys::generate("fuzz-sp")
            .unwrap_or_else(|e| panic!("key generation: {e}"));
        core_directory::idp_keys::inspect_certificate(&m.certificate_pem)
            .unwrap_or_else(|e| panic!("certificate: {e}"))
            .rsa_public_key
    })
}
