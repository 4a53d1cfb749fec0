//! EAP targets: one EAP packet through the EAP codec and the inner-method decoders (PEAP's MSCHAPv2 and Result
//! TLV, EAP-TTLS's AVPs), and a conversation of EAP-TLS responses through the tunnel (the EAP-TLS flags, length
//! and reassembly, then the TLS records themselves in rustls, then the plaintext through the inner decoders).

use radius_server::eap::packet::Eap;
use radius_server::eap::tls::Tunnel;
use radius_server::eap::{peap, ttls};
use std::sync::{Arc, OnceLock};

/// One EAP packet as the EAP-Message attributes carry it.
pub fn eap(data: &[u8]) {
    inner(data);
    let Ok(e) = Eap::decode(data) else {
        return;
    };
    assert_eq!(
        Eap::decode(&e.encode()).as_ref(),
        Ok(&e),
        "a decoded EAP packet must encode to the same packet"
    );
    let _ = e.method();
    inner(e.data());
}

/// Every decoder of the plaintext a peer sends inside a tunnel.
fn inner(plain: &[u8]) {
    let stripped = peap::strip_header(plain);
    let _ = peap::identity(stripped);
    let _ = peap::response(stripped, plain.get(2).copied().unwrap_or(0), &[7; 16]);
    let _ = peap::success_ack(stripped);
    let _ = peap::result_response(plain);
    let _ = ttls::credentials(plain);
}

/// A conversation: each piece (see [`crate::pieces`]) is the data of one EAP-TLS/PEAP/TTLS response after the
/// type octet, handed to the tunnel in order, with our fragments sent and the plaintext read as the EAP
/// handler does between them.
pub fn eap_tls(data: &[u8]) {
    let Ok(mut tunnel) = Tunnel::new(Arc::clone(server_config()), 1000) else {
        return;
    };
    for piece in crate::pieces(data) {
        if tunnel.receive(piece).is_err() {
            return;
        }
        tunnel.flush();
        while tunnel.has_pending() {
            let _ = tunnel.next_fragment();
        }
        if !tunnel.is_handshaking() {
            inner(&tunnel.read_plaintext());
            let _ = tunnel.export_msk(b"client EAP encryption", None);
        }
    }
}

/// The tunnel's TLS configuration: a fresh self-signed RSA certificate, TLS 1.2 and 1.3, no client certificate.
fn server_config() -> &'static Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let keys = core_directory::idp_keys::generate("fuzz")
            .unwrap_or_else(|e| panic!("key generation: {e}"));
        let cert = core_directory::idp_keys::inspect_certificate(&keys.certificate_pem)
            .unwrap_or_else(|e| panic!("certificate: {e}"));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .and_then(|b| {
                b.with_no_client_auth().with_single_cert(
                    vec![rustls::pki_types::CertificateDer::from(cert.der)],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(keys.private_key.into()),
                )
            })
            .unwrap_or_else(|e| panic!("TLS configuration: {e}"));
        Arc::new(config)
    })
}
