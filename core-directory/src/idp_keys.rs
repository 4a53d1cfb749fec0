//! IdP key material of SSO apps: RSA key pairs with self-signed certificates made here, or a certificate and key
//! an admin uploads (checked to belong together, RSA of at least 2048 bits). Sealing and storing them is the
//! directory's business; signing with them is the SAML listener's.

use chrono::{DateTime, Utc};

/// How long a generated IdP certificate is valid.
pub const CERTIFICATE_YEARS: i64 = 5;

/// A key pair ready to be sealed and stored.
#[derive(Clone)]
pub struct KeyMaterial {
    pub certificate_pem: String,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    pub fingerprint_sha256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("fingerprint_sha256", &self.fingerprint_sha256)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Why key material was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("key generation failed")]
    Generate,
}

fn invalid(msg: impl Into<String>) -> KeyError {
    KeyError::Invalid(msg.into())
}

/// Generate an RSA-2048 key and a self-signed certificate naming the app. Slow (tens of milliseconds): call it
/// off the async threads.
pub fn generate(app_name: &str) -> Result<KeyMaterial, KeyError> {
    use aws_lc_rs::encoding::AsDer;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| KeyError::Generate)?;
    let pkcs8 = key.as_der().map_err(|_| KeyError::Generate)?;
    let pkcs8 = pkcs8.as_ref().to_vec();
    let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8.clone()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|_| KeyError::Generate)?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|_| KeyError::Generate)?;
    let cn: String = format!("Stratus SAML IdP {app_name}")
        .chars()
        .take(64)
        .collect();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Stratus");
    let now = Utc::now();
    let not_before = now - chrono::Duration::minutes(5);
    let not_after = now + chrono::Duration::days(365 * CERTIFICATE_YEARS);
    params.not_before = to_offset(not_before);
    params.not_after = to_offset(not_after);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(
        &crate::crypto::random_bytes(16),
    ));
    let cert = params
        .self_signed(&signer)
        .map_err(|_| KeyError::Generate)?;
    let der = cert.der().to_vec();
    Ok(KeyMaterial {
        certificate_pem: cert.pem(),
        private_key: pkcs8,
        fingerprint_sha256: fingerprint(&der),
        not_before: truncate(not_before),
        not_after: truncate(not_after),
    })
}

fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn to_offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Colon-free lowercase hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    crate::crypto::sha256_hex(der)
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text (or of bare base64, as SAML metadata carries it).
pub fn certificate_der(pem_or_base64: &str) -> Result<Vec<u8>, KeyError> {
    let body = pem_block(pem_or_base64, "CERTIFICATE").unwrap_or(pem_or_base64);
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::BASE64
        .decode(compact.as_bytes())
        .map_err(|_| invalid("the certificate is not PEM or base64"))
}

fn pem_block<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    Some(&text[start..stop])
}

/// Facts about a certificate an admin or an SP gave.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    pub der: Vec<u8>,
    /// PKCS#1 RSAPublicKey DER of an RSA key.
    pub rsa_public_key: Vec<u8>,
    /// The whole SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    pub rsa_bits: usize,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// Parse a certificate and require an RSA key of at least 2048 bits.
pub fn inspect_certificate(pem_or_base64: &str) -> Result<CertificateInfo, KeyError> {
    use x509_parser::prelude::FromDer;
    let der = certificate_der(pem_or_base64)?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&der)
        .map_err(|_| invalid("the certificate is not a valid X.509 certificate"))?;
    let spki = cert.public_key();
    let rsa = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa,
        _ => return Err(invalid("the certificate's key is not RSA")),
    };
    let bits = rsa.key_size();
    if bits < 2048 {
        return Err(invalid(format!(
            "the certificate's RSA key has {bits} bits; at least 2048 are required"
        )));
    }
    let validity = cert.validity();
    let at = |t: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
    };
    Ok(CertificateInfo {
        rsa_public_key: spki.subject_public_key.data.to_vec(),
        spki: spki.raw.to_vec(),
        rsa_bits: bits,
        not_before: at(validity.not_before),
        not_after: at(validity.not_after),
        der,
    })
}

/// Check an uploaded certificate and PKCS#8 private key (PEM) and return them as key material.
pub fn from_upload(certificate_pem: &str, private_key_pem: &str) -> Result<KeyMaterial, KeyError> {
    use aws_lc_rs::signature::KeyPair as _;
    let info = inspect_certificate(certificate_pem)?;
    let body = pem_block(private_key_pem, "PRIVATE KEY").ok_or_else(|| {
        invalid("the private key must be an unencrypted PKCS#8 PEM (BEGIN PRIVATE KEY)")
    })?;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let pkcs8 = data_encoding::BASE64
        .decode(compact.as_bytes())
        .map_err(|_| invalid("the private key PEM is not base64"))?;
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| invalid("the private key is not an RSA PKCS#8 key"))?;
    if key.public_key().as_ref() != info.rsa_public_key.as_slice() {
        return Err(invalid(
            "the private key does not belong to the certificate",
        ));
    }
    if info.not_after <= Utc::now() {
        return Err(invalid("the certificate has expired"));
    }
    let b64 = data_encoding::BASE64.encode(&info.der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    Ok(KeyMaterial {
        certificate_pem: pem,
        private_key: pkcs8,
        fingerprint_sha256: fingerprint(&info.der),
        not_before: info.not_before,
        not_after: info.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::KeyPair as _;

    #[test]
    fn generated_key_matches_its_certificate() {
        let m = generate("Example").unwrap();
        let info = inspect_certificate(&m.certificate_pem).unwrap();
        assert_eq!(info.rsa_bits, 2048);
        let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&m.private_key).unwrap();
        assert_eq!(key.public_key().as_ref(), info.rsa_public_key.as_slice());
        assert!(m.not_after > Utc::now() + chrono::Duration::days(365 * 4));
    }

    #[test]
    fn upload_of_a_foreign_key_is_refused() {
        use aws_lc_rs::encoding::AsDer;
        let m = generate("A").unwrap();
        let other = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = other.as_der().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            data_encoding::BASE64.encode(der.as_ref())
        );
        let err = from_upload(&m.certificate_pem, &pem).unwrap_err();
        assert!(err.to_string().contains("does not belong"));
        let own = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            data_encoding::BASE64.encode(&m.private_key)
        );
        assert_eq!(
            from_upload(&m.certificate_pem, &own)
                .unwrap()
                .fingerprint_sha256,
            m.fingerprint_sha256
        );
    }
}
