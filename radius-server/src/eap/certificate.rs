//! EAP-TLS: which user a client certificate belongs to.
//!
//! rustls has already checked the chain against the configured CA, its validity period and the configured CRLs
//! before this runs; here the certificate is only read. The rule is a server setting: the subject's common name
//! is a username, or the certificate's e-mail address (subjectAltName rfc822Name, else the subject's
//! emailAddress) is a user's e-mail.

use core_directory::Snapshot;
use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// Which part of a client certificate names the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRule {
    CommonName,
    Email,
}

impl IdentityRule {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "cn" => Some(IdentityRule::CommonName),
            "email" => Some(IdentityRule::Email),
            _ => None,
        }
    }
}

/// Why a certificate names no user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    #[error("client certificate cannot be read")]
    Unreadable,
    #[error("client certificate has no {0}")]
    NoName(&'static str),
    #[error("no user matches the certificate's {what} `{value}`")]
    NoUser { what: &'static str, value: String },
}

/// The username a certificate maps to, and its subject (for the event).
pub fn user_of(
    der: &CertificateDer<'_>,
    rule: IdentityRule,
    snap: &Snapshot,
) -> Result<(String, String), CertificateError> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der.as_ref())
        .map_err(|_| CertificateError::Unreadable)?;
    let subject = cert.subject().to_string();
    let user = match rule {
        IdentityRule::CommonName => {
            let cn = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .ok_or(CertificateError::NoName("common name"))?;
            snap.user_by_username(cn)
                .ok_or_else(|| CertificateError::NoUser {
                    what: "common name",
                    value: cn.to_string(),
                })?
        }
        IdentityRule::Email => {
            let from_san = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .and_then(|san| {
                    san.value.general_names.iter().find_map(|n| match n {
                        GeneralName::RFC822Name(m) => Some(m.to_string()),
                        _ => None,
                    })
                });
            let mail = from_san
                .or_else(|| {
                    cert.subject()
                        .iter_email()
                        .next()
                        .and_then(|a| a.as_str().ok())
                        .map(str::to_string)
                })
                .ok_or(CertificateError::NoName("e-mail address"))?;
            snap.user_by_mail(&mail)
                .ok_or_else(|| CertificateError::NoUser {
                    what: "e-mail address",
                    value: mail.clone(),
                })?
        }
    };
    Ok((user.username.clone(), subject))
}
