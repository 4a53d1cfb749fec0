//! Development certificates: on first start a private CA and a server certificate signed by it are generated
//! under `<data_dir>/certs` (keys mode 0600), so HTTPS, LDAPS and the EAP methods work out of the box. Clients
//! trust `ca.pem`. Production deployments point the config at their own certificate instead.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Paths of the dev certificate set.
pub struct DevCerts {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when this call created them.
    pub generated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

fn write_file(path: &Path, text: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Create the dev CA and server certificate unless they exist.
pub fn ensure_dev_certs(data_dir: &Path, names: &[String]) -> Result<DevCerts, CertError> {
    let dir = data_dir.join("certs");
    let certs = DevCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        generated: false,
    };
    if certs.ca.exists() && certs.cert.exists() && certs.key.exists() {
        return Ok(certs);
    }
    std::fs::create_dir_all(&dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Stratus development CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "Stratus");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().map_or("localhost", String::as_str),
    );
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params.signed_by(&server_key, &issuer)?;

    write_file(&dir.join("ca-key.pem"), &ca_key.serialize_pem(), true)?;
    write_file(&certs.ca, &ca_cert.pem(), false)?;
    write_file(&certs.key, &server_key.serialize_pem(), true)?;
    write_file(
        &certs.cert,
        &format!("{}{}", server_cert.pem(), ca_cert.pem()),
        false,
    )?;
    Ok(DevCerts {
        generated: true,
        ..certs
    })
}

fn pem_err(path: &Path, e: rustls::pki_types::pem::Error) -> CertError {
    CertError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(path, e))
}

fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A rustls server configuration from PEM files (TLS 1.2 and 1.3, aws-lc-rs).
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, CertError> {
    let chain = read_chain(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The TLS configurations of the EAP methods (TLS 1.2 and 1.3 both): PEAP and EAP-TTLS with the server
/// certificate only; EAP-TLS requiring a client certificate from `client_ca`, checked against `crls`, when a
/// client CA is configured. No session resumption: every EAP login is a full handshake with fresh keys.
pub fn eap_configs(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    crls: &[PathBuf],
) -> Result<(rustls::ServerConfig, Option<rustls::ServerConfig>), CertError> {
    let chain = read_chain(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e))?;
    let finish = |mut cfg: rustls::ServerConfig| {
        cfg.session_storage = std::sync::Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
        cfg
    };
    let tunnel = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key_der.clone_key())?;
    let Some(ca) = client_ca else {
        return Ok((finish(tunnel), None));
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in read_chain(ca)? {
        roots.add(c)?;
    }
    let mut revoked = Vec::new();
    for path in crls {
        let list: Vec<rustls::pki_types::CertificateRevocationListDer<'static>> =
            rustls::pki_types::CertificateRevocationListDer::pem_file_iter(path)
                .map_err(|e| pem_err(path, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| pem_err(path, e))?;
        revoked.extend(list);
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider(),
    )
    .with_crls(revoked)
    .build()
    .map_err(|e| CertError::Pem {
        path: ca.display().to_string(),
        message: e.to_string(),
    })?;
    let client = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)?;
    Ok((finish(tunnel), Some(finish(client))))
}

/// The RadSec listener's TLS (RFC 6614 §2.3: TLS 1.2 or later): the server certificate, and a client
/// certificate required and verified against `client_ca`.
pub fn radsec_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<rustls::ServerConfig, CertError> {
    let chain = read_chain(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in read_chain(client_ca)? {
        roots.add(c)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider(),
    )
    .build()
    .map_err(|e| CertError::Pem {
        path: client_ca.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)?)
}
