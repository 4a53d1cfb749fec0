//! Assertion encryption to the SP certificate (XML Encryption 1.1): the canonical assertion is sealed with a fresh
//! AES-256-GCM key, and that key is encrypted with RSA-OAEP (MGF1 with SHA-1, the form every SAML SP library
//! decrypts) to the SP's public key.

use crate::dsig::NS_DS;
use crate::protocol::NS_SAML;
use crate::xml::{to_string, Element};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1};

pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const RSA_OAEP: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

/// `saml:EncryptedAssertion` holding `assertion`, readable only with the private key of `sp_certificate`.
pub fn encrypt_assertion(assertion: &Element, sp_certificate: &str) -> Result<Element, String> {
    let info =
        core_directory::idp_keys::inspect_certificate(sp_certificate).map_err(|e| e.to_string())?;
    let rsa = OaepPublicEncryptingKey::new(
        PublicEncryptingKey::from_der(&info.spki)
            .map_err(|_| "the SP certificate's key cannot encrypt")?,
    )
    .map_err(|_| "the SP certificate's key cannot encrypt")?;
    let cek = core_directory::crypto::random_bytes(32);
    let nonce_bytes = core_directory::crypto::random_bytes(NONCE_LEN);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &cek).map_err(|_| "AES key")?);
    let mut data = to_string(assertion).into_bytes();
    let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes).map_err(|_| "nonce")?;
    key.seal_in_place_append_tag(nonce, Aad::empty(), &mut data)
        .map_err(|_| "encryption failed")?;
    let mut payload = nonce_bytes;
    payload.extend_from_slice(&data);
    let mut wrapped = vec![0u8; rsa.ciphertext_size()];
    let wrapped = rsa
        .encrypt(&OAEP_SHA1_MGF1SHA1, &cek, &mut wrapped, None)
        .map_err(|_| "key transport failed")?
        .to_vec();
    let x = |n: &str| Element::new("xenc", n, NS_XENC);
    let cipher = |bytes: &[u8]| {
        x("CipherData").child(x("CipherValue").text(data_encoding::BASE64.encode(bytes)))
    };
    let encrypted_key = x("EncryptedKey")
        .child(x("EncryptionMethod").attr("Algorithm", RSA_OAEP).child(
            Element::new("ds", "DigestMethod", NS_DS).attr("Algorithm", crate::dsig::DIGEST_SHA1),
        ))
        .child(cipher(&wrapped));
    Ok(Element::new("saml", "EncryptedAssertion", NS_SAML).child(
        x("EncryptedData")
            .attr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
            .child(x("EncryptionMethod").attr("Algorithm", AES256_GCM))
            .child(Element::new("ds", "KeyInfo", NS_DS).child(encrypted_key))
            .child(cipher(&payload)),
    ))
}
