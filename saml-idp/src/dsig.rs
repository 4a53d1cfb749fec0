//! XML signatures: enveloped RSA signatures over exclusive-canonical XML, made for our responses and checked on
//! what SPs send (POST-binding requests, signed metadata), plus the HTTP-Redirect binding's detached query-string
//! signature.
//!
//! Verification is deliberately narrow, which is what defeats signature-wrapping: the signature must be a direct
//! child of the document's root, carry exactly one Reference, and that Reference must point at the root itself by
//! an ID no other element in the document carries. The caller then uses that same parsed root, so the element
//! the signature covers is the element acted on.

use crate::xml::{canonicalize, Element};
use aws_lc_rs::signature::{self, RsaKeyPair};

pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// The signature algorithm of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RsaSha256,
    RsaSha1,
}

impl Alg {
    pub fn from_setting(s: &str) -> Alg {
        if s == "rsa-sha1" {
            Alg::RsaSha1
        } else {
            Alg::RsaSha256
        }
    }

    pub fn uri(self) -> &'static str {
        match self {
            Alg::RsaSha256 => RSA_SHA256,
            Alg::RsaSha1 => RSA_SHA1,
        }
    }

    fn digest_uri(self) -> &'static str {
        match self {
            Alg::RsaSha256 => DIGEST_SHA256,
            Alg::RsaSha1 => DIGEST_SHA1,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Alg::RsaSha256 => &aws_lc_rs::digest::SHA256,
            Alg::RsaSha1 => &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        };
        aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("the message is not signed")]
    Missing,
    #[error("the signature is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature does not cover the message it is attached to")]
    Wrapping,
    #[error("algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("the digest does not match: the message was changed after it was signed")]
    Digest,
    #[error("the signature does not verify with the SP certificate")]
    Invalid,
}

/// Signs with one app's IdP key.
pub struct Signer {
    key: RsaKeyPair,
    /// The same key for RSA-SHA1, which aws-lc-rs does not sign; made only for apps configured for it.
    legacy: Option<rsa::pkcs1v15::SigningKey<sha1::Sha1>>,
    /// The certificate, base64 DER, for KeyInfo.
    certificate_b64: String,
    pub alg: Alg,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(pkcs8: &[u8], certificate_der: &[u8], alg: Alg) -> Result<Self, SigError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| SigError::Malformed("IdP key"))?;
        let legacy = match alg {
            Alg::RsaSha256 => None,
            Alg::RsaSha1 => {
                use rsa::pkcs8::DecodePrivateKey;
                let k = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8)
                    .map_err(|_| SigError::Malformed("IdP key"))?;
                Some(rsa::pkcs1v15::SigningKey::new(k))
            }
        };
        Ok(Signer {
            key,
            legacy,
            certificate_b64: data_encoding::BASE64.encode(certificate_der),
            alg,
        })
    }

    /// A raw RSA PKCS#1 v1.5 signature (the Redirect binding's).
    pub fn sign_bytes(&self, data: &[u8]) -> Vec<u8> {
        if let (Alg::RsaSha1, Some(legacy)) = (self.alg, &self.legacy) {
            use rsa::signature::{RandomizedSigner, SignatureEncoding};
            // Blinded by the random generator, so the private-key operation's timing does not follow the key.
            return legacy
                .sign_with_rng(&mut rsa::rand_core::OsRng, data)
                .to_vec();
        }
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        // Signing an in-memory buffer with a key that loaded cannot fail short of memory exhaustion.
        self.key
            .sign(&signature::RSA_PKCS1_SHA256, &rng, data, &mut sig)
            .expect("RSA signing of an in-memory buffer");
        sig
    }

    /// Sign `el` (which must carry an `ID`) with an enveloped signature inserted as its child number `at`
    /// (after the Issuer, where SAML wants it).
    pub fn sign_enveloped(&self, el: &mut Element, at: usize) {
        let id = el.get("ID").unwrap_or_default().to_string();
        let digest = self.alg.digest(canonicalize(el, None, &[]).as_bytes());
        let ds = |name: &str| Element::new("ds", name, NS_DS);
        let signed_info = ds("SignedInfo")
            .child(ds("CanonicalizationMethod").attr("Algorithm", EXC_C14N))
            .child(ds("SignatureMethod").attr("Algorithm", self.alg.uri()))
            .child(
                ds("Reference")
                    .attr("URI", format!("#{id}"))
                    .child(
                        ds("Transforms")
                            .child(ds("Transform").attr("Algorithm", ENVELOPED))
                            .child(ds("Transform").attr("Algorithm", EXC_C14N)),
                    )
                    .child(ds("DigestMethod").attr("Algorithm", self.alg.digest_uri()))
                    .child(ds("DigestValue").text(data_encoding::BASE64.encode(&digest))),
            );
        let value = self.sign_bytes(canonicalize(&signed_info, None, &[]).as_bytes());
        let sig = ds("Signature")
            .child(signed_info)
            .child(ds("SignatureValue").text(data_encoding::BASE64.encode(&value)))
            .child(ds("KeyInfo").child(
                ds("X509Data").child(ds("X509Certificate").text(self.certificate_b64.clone())),
            ));
        let at = at.min(el.children.len());
        el.children.insert(at, crate::xml::Node::Element(sig));
    }
}

/// Verify a raw RSA signature with any of `keys` (PKCS#1 RSAPublicKey DER).
pub fn verify_bytes(alg: Alg, keys: &[Vec<u8>], data: &[u8], sig: &[u8]) -> Result<(), SigError> {
    let params: &dyn signature::VerificationAlgorithm = match alg {
        Alg::RsaSha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Alg::RsaSha1 => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
    };
    for k in keys {
        if signature::UnparsedPublicKey::new(params, k)
            .verify(data, sig)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(SigError::Invalid)
}

/// The algorithm named by a signature-method URI, if accepted (`allow_sha1` for apps configured for SHA-1).
pub fn alg_of(uri: &str, allow_sha1: bool) -> Result<Alg, SigError> {
    match uri {
        RSA_SHA256 => Ok(Alg::RsaSha256),
        RSA_SHA1 if allow_sha1 => Ok(Alg::RsaSha1),
        other => Err(SigError::Algorithm(other.chars().take(100).collect())),
    }
}

fn b64(text: &str) -> Result<Vec<u8>, SigError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    data_encoding::BASE64
        .decode(compact.as_bytes())
        .map_err(|_| SigError::Malformed("base64"))
}

/// The InclusiveNamespaces PrefixList of a c14n method, de-duplicated; more than 16 prefixes is malformed (a
/// real signer lists a handful, and each one costs work on every element).
fn prefix_list(method: &Element) -> Result<Vec<String>, SigError> {
    let mut list: Vec<String> = method
        .first(EXC_C14N, "InclusiveNamespaces")
        .and_then(|i| i.get("PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    list.sort();
    list.dedup();
    if list.len() > 16 {
        return Err(SigError::Malformed(
            "InclusiveNamespaces PrefixList is too long",
        ));
    }
    Ok(list)
}

/// Whether the root carries an enveloped signature at all.
pub fn is_signed(root: &Element) -> bool {
    root.first(NS_DS, "Signature").is_some()
}

/// The certificates (base64 DER) a signature's KeyInfo carries.
pub fn key_info_certificates(root: &Element) -> Vec<String> {
    root.first(NS_DS, "Signature")
        .and_then(|s| s.first(NS_DS, "KeyInfo"))
        .into_iter()
        .flat_map(|k| k.all(NS_DS, "X509Data"))
        .flat_map(|d| d.all(NS_DS, "X509Certificate"))
        .map(|c| c.text_content().split_whitespace().collect())
        .collect()
}

/// Verify the enveloped signature of a document's root against `keys`. See the module comment for the rules.
pub fn verify_enveloped(
    root: &Element,
    keys: &[Vec<u8>],
    allow_sha1: bool,
) -> Result<(), SigError> {
    let mut sigs = root.all(NS_DS, "Signature");
    let sig = sigs.next().ok_or(SigError::Missing)?;
    if sigs.next().is_some() {
        return Err(SigError::Wrapping);
    }
    let all = root.descendants();
    // A second signature anywhere below, or an ID carried twice, means someone is playing with the tree.
    if all.iter().filter(|e| e.is(NS_DS, "Signature")).count() != 1 {
        return Err(SigError::Wrapping);
    }
    let id = root.get("ID").ok_or(SigError::Wrapping)?;
    if all
        .iter()
        .filter(|e| {
            e.attrs
                .iter()
                .any(|a| (a.name == "ID" || a.name == "Id") && a.value == id)
        })
        .count()
        != 1
    {
        return Err(SigError::Wrapping);
    }
    let info = one(sig, "SignedInfo")?;
    let c14n = one(info, "CanonicalizationMethod")?;
    if c14n.get("Algorithm") != Some(EXC_C14N) {
        return Err(SigError::Algorithm(
            c14n.get("Algorithm")
                .unwrap_or_default()
                .chars()
                .take(100)
                .collect(),
        ));
    }
    let alg = alg_of(
        one(info, "SignatureMethod")?
            .get("Algorithm")
            .unwrap_or_default(),
        allow_sha1,
    )?;
    let mut refs = info.all(NS_DS, "Reference");
    let reference = refs.next().ok_or(SigError::Malformed("no Reference"))?;
    if refs.next().is_some() {
        return Err(SigError::Wrapping);
    }
    if reference.get("URI") != Some(&format!("#{id}")) {
        return Err(SigError::Wrapping);
    }
    let mut inclusive = Vec::new();
    let mut enveloped = false;
    let mut exclusive = false;
    if let Some(transforms) = reference.first(NS_DS, "Transforms") {
        for t in transforms.all(NS_DS, "Transform") {
            match t.get("Algorithm") {
                Some(ENVELOPED) => enveloped = true,
                Some(EXC_C14N) => {
                    exclusive = true;
                    inclusive = prefix_list(t)?;
                }
                other => {
                    return Err(SigError::Algorithm(
                        other.unwrap_or_default().chars().take(100).collect(),
                    ))
                }
            }
        }
    }
    if !enveloped || !exclusive {
        return Err(SigError::Malformed(
            "the Reference must use the enveloped-signature and exclusive c14n transforms",
        ));
    }
    let digest_alg = match one(reference, "DigestMethod")?.get("Algorithm") {
        Some(DIGEST_SHA256) => Alg::RsaSha256,
        Some(DIGEST_SHA1) if allow_sha1 => Alg::RsaSha1,
        other => {
            return Err(SigError::Algorithm(
                other.unwrap_or_default().chars().take(100).collect(),
            ))
        }
    };
    // The SignedInfo signature first (cheap, and only the SP can make one), then the digest of the document.
    let value = b64(&one(sig, "SignatureValue")?.text_content())?;
    let signed = canonicalize(info, None, &prefix_list(c14n)?);
    verify_bytes(alg, keys, signed.as_bytes(), &value)?;
    let expected = b64(&one(reference, "DigestValue")?.text_content())?;
    let actual = digest_alg.digest(canonicalize(root, Some(sig), &inclusive).as_bytes());
    if !core_directory::crypto::constant_time_eq(&expected, &actual) {
        return Err(SigError::Digest);
    }
    Ok(())
}

fn one<'a>(parent: &'a Element, name: &'static str) -> Result<&'a Element, SigError> {
    let mut it = parent.all(NS_DS, name);
    let first = it.next().ok_or(SigError::Malformed(name))?;
    if it.next().is_some() {
        return Err(SigError::Malformed(name));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse, to_string, Limits, Node};

    fn key() -> (Signer, Vec<u8>) {
        let m = core_directory::idp_keys::generate("t").unwrap();
        let info = core_directory::idp_keys::inspect_certificate(&m.certificate_pem).unwrap();
        (
            Signer::new(&m.private_key, &info.der, Alg::RsaSha256).unwrap(),
            info.rsa_public_key,
        )
    }

    fn request() -> Element {
        Element::new(
            "samlp",
            "AuthnRequest",
            "urn:oasis:names:tc:SAML:2.0:protocol",
        )
        .attr("ID", "_r1")
        .attr("Version", "2.0")
        .child(
            Element::new("saml", "Issuer", "urn:oasis:names:tc:SAML:2.0:assertion")
                .text("https://sp.example"),
        )
    }

    #[test]
    fn signed_documents_verify_after_a_round_trip_and_tampering_is_caught() {
        let (signer, public) = key();
        let mut doc = request();
        signer.sign_enveloped(&mut doc, 1);
        let text = to_string(&doc);
        let parsed = parse(&text, Limits::default()).unwrap();
        verify_enveloped(&parsed, std::slice::from_ref(&public), false).unwrap();

        let tampered = text.replace("https://sp.example", "https://evil.example");
        let parsed = parse(&tampered, Limits::default()).unwrap();
        assert_eq!(
            verify_enveloped(&parsed, std::slice::from_ref(&public), false),
            Err(SigError::Digest)
        );
        let (_, other) = key();
        let parsed = parse(&text, Limits::default()).unwrap();
        assert_eq!(
            verify_enveloped(&parsed, &[other], false),
            Err(SigError::Invalid)
        );
        // SHA-1 is refused unless the app allows it.
        let mut sha1 = request();
        let m = core_directory::idp_keys::generate("t").unwrap();
        let info = core_directory::idp_keys::inspect_certificate(&m.certificate_pem).unwrap();
        let s1 = Signer::new(&m.private_key, &info.der, Alg::RsaSha1).unwrap();
        let p1 = info.rsa_public_key;
        s1.sign_enveloped(&mut sha1, 1);
        let parsed = parse(&to_string(&sha1), Limits::default()).unwrap();
        assert!(matches!(
            verify_enveloped(&parsed, std::slice::from_ref(&p1), false),
            Err(SigError::Algorithm(_))
        ));
        verify_enveloped(&parsed, &[p1], true).unwrap();
    }

    // Signature wrapping: a signed element moved under a new root, or a second element with the signed ID.
    #[test]
    fn wrapped_signatures_are_refused() {
        let (signer, public) = key();
        let mut signed = request();
        signer.sign_enveloped(&mut signed, 1);
        // The attacker's request keeps the signed original inside an extension and claims its ID.
        let mut evil = request();
        if let Some(Node::Element(issuer)) = evil.children.get_mut(0) {
            issuer.children = vec![Node::Text("https://evil.example".into())];
        }
        let sig = signed.first(NS_DS, "Signature").unwrap().clone();
        let wrapper = Element::new(
            "samlp",
            "Extensions",
            "urn:oasis:names:tc:SAML:2.0:protocol",
        )
        .child(signed.clone());
        let evil_a = evil.clone().child(wrapper.clone());
        let evil_b = {
            let mut e = evil.clone().child(wrapper);
            e.children.insert(1, Node::Element(sig));
            e
        };
        for doc in [evil_a, evil_b] {
            let parsed = parse(&to_string(&doc), Limits::default()).unwrap();
            let r = verify_enveloped(&parsed, std::slice::from_ref(&public), false);
            assert!(
                matches!(r, Err(SigError::Wrapping) | Err(SigError::Missing)),
                "{r:?}"
            );
        }
        // The signature's Reference pointing somewhere other than the root.
        let text = to_string(&signed).replace("URI=\"#_r1\"", "URI=\"#_other\"");
        let parsed = parse(&text, Limits::default()).unwrap();
        assert_eq!(
            verify_enveloped(&parsed, &[public], false),
            Err(SigError::Wrapping)
        );
    }
}
