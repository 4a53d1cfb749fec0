//! # saml-idp
//!
//! Owns the SAML 2.0 identity provider: per-app metadata, SP- and IdP-initiated SSO over HTTP-Redirect and
//! HTTP-POST, signed (and optionally encrypted) assertions, SLO, the login page with its TOTP step, and the user
//! portal pages. Logins go through `core_directory::Directory::authenticate` with service `sso` (`portal` for the
//! portal itself); access to an app is always the core's decision. It must not depend on any other listener, and
//! it keeps no directory data of its own: only browser sessions, pending logins and seen request ids, in memory.

pub mod binding;
pub mod dsig;
pub mod encrypt;
pub mod pages;
pub mod protocol;
pub mod sessions;
pub mod web;
pub mod xml;

pub use web::{router, Settings};

/// Read SP metadata for the core's upload call: strict XML, and when the document is signed and the app has a
/// metadata trust anchor (PEM), a signature that verifies with the anchor's key. Without an anchor a signature is
/// noted, not checked: a key the document names itself, or one an earlier upload brought, would vouch for nothing
/// (and the latter refused every SP key rollover).
pub fn read_sp_metadata(
    text: &str,
    trust_anchor: Option<&str>,
) -> Result<core_directory::SpMetadata, String> {
    let root = xml::parse(
        text,
        xml::Limits {
            max_bytes: 512 * 1024,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let signed = dsig::is_signed(&root);
    let verified_by_trust_anchor = match (signed, trust_anchor) {
        (true, Some(anchor)) => {
            let key = core_directory::idp_keys::inspect_certificate(anchor)
                .map_err(|e| format!("the metadata trust anchor cannot be used: {e}"))?
                .rsa_public_key;
            dsig::verify_enveloped(&root, &[key], false).map_err(|e| {
                format!("the metadata signature does not verify with the app's metadata trust anchor: {e}")
            })?;
            true
        }
        _ => false,
    };
    let facts = protocol::read_sp_metadata(&root)?;
    Ok(core_directory::SpMetadata {
        entity_id: facts.entity_id,
        acs_urls: facts.acs_urls,
        acs_indexes: facts.acs_indexes,
        signing_certificate: facts.signing_certificate,
        encryption_certificate: facts.encryption_certificate,
        authn_requests_signed: facts.authn_requests_signed,
        slo_url: facts.slo_url,
        slo_post: facts.slo_post,
        signed,
        verified_by_trust_anchor,
    })
}

#[cfg(test)]
mod tests {
    use crate::xml::Element;

    fn sp_metadata() -> Element {
        let md = |n: &str| Element::new("md", n, crate::protocol::NS_MD);
        md("EntityDescriptor")
            .attr("ID", "_md1")
            .attr("entityID", "https://sp.example/metadata")
            .child(
                md("SPSSODescriptor")
                    .attr("AuthnRequestsSigned", "true")
                    .attr("protocolSupportEnumeration", crate::protocol::NS_SAMLP)
                    .child(
                        md("AssertionConsumerService")
                            .attr("Binding", crate::protocol::BINDING_POST)
                            .attr("Location", "https://sp.example/acs2")
                            .attr("index", "2"),
                    )
                    .child(
                        md("AssertionConsumerService")
                            .attr("Binding", crate::protocol::BINDING_POST)
                            .attr("Location", "https://sp.example/acs1")
                            .attr("index", "1"),
                    ),
            )
    }

    #[test]
    fn signed_sp_metadata_verifies_only_with_the_trust_anchor() {
        let key = core_directory::idp_keys::generate("sp").unwrap();
        let der = core_directory::idp_keys::certificate_der(&key.certificate_pem).unwrap();
        let signer =
            crate::dsig::Signer::new(&key.private_key, &der, crate::dsig::Alg::RsaSha256).unwrap();
        let mut doc = sp_metadata();
        signer.sign_enveloped(&mut doc, 0);
        let text = crate::xml::to_string(&doc);
        let md = crate::read_sp_metadata(&text, Some(&key.certificate_pem)).unwrap();
        assert_eq!(md.entity_id, "https://sp.example/metadata");
        assert_eq!(
            md.acs_urls,
            ["https://sp.example/acs1", "https://sp.example/acs2"]
        );
        assert!(md.authn_requests_signed);
        assert!(md.signed && md.verified_by_trust_anchor);
        // Signed by a key other than the anchor's, or changed after signing: refused.
        let other = core_directory::idp_keys::generate("other").unwrap();
        assert!(crate::read_sp_metadata(&text, Some(&other.certificate_pem))
            .unwrap_err()
            .contains("trust anchor"));
        let tampered = text.replace("acs1", "evil");
        assert!(crate::read_sp_metadata(&tampered, Some(&key.certificate_pem)).is_err());
        // Without an anchor the signature is noted and not checked.
        let md = crate::read_sp_metadata(&text, None).unwrap();
        assert!(md.signed && !md.verified_by_trust_anchor);
        let md = crate::read_sp_metadata(&crate::xml::to_string(&sp_metadata()), None).unwrap();
        assert!(!md.signed && !md.verified_by_trust_anchor);
    }

    /// Mutated and truncated requests go through every reader without a panic (a small stand-in for fuzzing,
    /// deterministic so a failure repeats).
    #[test]
    fn mutated_requests_never_panic() {
        let base = concat!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
            r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" "#,
            r#"IssueInstant="2026-12-01T10:00:00Z" AssertionConsumerServiceURL="https://sp/acs">"#,
            r#"<saml:Issuer>https://sp</saml:Issuer><samlp:NameIDPolicy Format="x"/>"#,
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>"#,
            r#"</samlp:AuthnRequest>"#
        )
        .as_bytes()
        .to_vec();
        let mut seed: u64 = 0x5eed;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            let mut doc = base.clone();
            for _ in 0..(next() % 6 + 1) {
                let at = (next() as usize) % doc.len();
                match next() % 3 {
                    0 => doc[at] = (next() % 256) as u8,
                    1 => {
                        doc.remove(at);
                    }
                    _ => doc.insert(at, b"<>&\"'=:/x"[(next() % 9) as usize]),
                }
            }
            let cut = (next() as usize) % (doc.len() + 1);
            for text in [&doc[..], &doc[..cut]] {
                let text = String::from_utf8_lossy(text);
                if let Ok(root) = crate::xml::parse(&text, crate::xml::Limits::default()) {
                    let _ = crate::protocol::read_authn_request(&root);
                    let _ = crate::protocol::read_logout_request(&root);
                    let _ = crate::protocol::read_sp_metadata(&root);
                    let _ = crate::dsig::verify_enveloped(&root, &[vec![1, 2, 3]], true);
                    let _ = crate::xml::canonicalize(&root, None, &["#default".into()]);
                }
                let q = format!("SAMLRequest={}&SigAlg=x&Signature=%%", text);
                let _ = crate::binding::from_redirect(&q, "SAMLRequest");
            }
        }
    }
}
