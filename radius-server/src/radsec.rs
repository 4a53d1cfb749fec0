//! RadSec (RFC 6614): RADIUS over TLS over TCP, authentication and accounting on one connection.
//!
//! # Format (RFC 6614 §2.1)
//! ```text
//! TCP ─ TLS 1.2 or 1.3 ─ RADIUS packets back to back, each framed by its own Length field (20–4096)
//! ```
//! A connection is admitted only with a client certificate that verifies against the configured CA (rustls
//! checks chain and validity during the handshake) and whose subjectAltName DNS names — or, without any, its
//! subject CN — name a profile's `radsec_client`; the profile is looked up again before every packet, so
//! clearing `radsec_client` or deleting the profile ends the connection. The shared secret is `radsec`
//! (§2.3); Message-Authenticator is still required on Access-Requests. After framing, a packet goes through the
//! same checks and handlers as a UDP datagram (`admissible`, `answer` in `lib.rs`). Duplicate detection is per
//! connection (§2.6.4: a retransmission on a new connection is a new request). A length outside 20–4096 loses the
//! framing and closes the connection; a packet that frames but does not decode or authenticate is dropped. Limits:
//! `max_connections` at once (beyond: refused), a 10 s handshake, `idle_timeout` between packets, and the
//! listener's worker slots per request.

use crate::clients::Client;
use crate::duplicates::{Duplicates, Seen};
use crate::packet::{Packet, MAX_PACKET, MIN_PACKET};
use crate::{admissible, answer, Port, Shared};
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The RadSec listener.
pub struct RadSec {
    pub listeners: Vec<TcpListener>,
    /// TLS 1.2+ with the server certificate, requiring a client certificate from the RadSec CA.
    pub tls: Arc<rustls::ServerConfig>,
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

pub(crate) async fn serve(shared: Arc<Shared>, radsec: RadSec, shutdown: watch::Receiver<bool>) {
    let acceptor = TlsAcceptor::from(radsec.tls);
    let slots = Arc::new(Semaphore::new(radsec.max_connections.max(1)));
    let mut tasks = Vec::new();
    for l in radsec.listeners {
        tasks.push(tokio::spawn(accept(
            l,
            acceptor.clone(),
            Arc::clone(&shared),
            Arc::clone(&slots),
            radsec.idle_timeout,
            shutdown.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "RadSec accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            shared.notice(
                peer,
                None,
                "radius_overload",
                "RadSec connection refused: all connection slots busy",
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            acceptor.clone(),
            Arc::clone(&shared),
            idle,
            shutdown.clone(),
            slot,
        ));
    }
}

/// The names a certificate offers for the profile lookup: its subjectAltName DNS names, else its subject CN.
pub fn certificate_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(der.as_ref()) else {
        return Vec::new();
    };
    let dns: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !dns.is_empty() {
        return dns;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect()
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let refused = |why: &str| shared.notice(peer, None, "radius_radsec_refused", why);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return refused(handshake_failure(&e)),
        Err(_) => return refused("TLS handshake timed out"),
    };
    let names = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(certificate_names)
        .unwrap_or_default();
    let Some(client) = shared.clients.radsec(&shared.dir, &names) else {
        let mut tls = tls;
        let _ = tls.shutdown().await;
        // The names are the peer's: the notice carries how many and the first, made fit for a log.
        return refused(&format!(
            "the client certificate's {} name(s), first {}, match no RADIUS profile's radsec_client",
            names.len(),
            names
                .first()
                .map_or_else(|| "(none)".to_string(), |n| core_directory::events::log_text(n))
        ));
    };
    tracing::debug!(%peer, profile = %client.profile.name, "RadSec connection");
    let (mut rd, mut wr) = tokio::io::split(tls);
    let (tx, mut rx) = mpsc::channel::<Arc<Vec<u8>>>(64);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            if wr.write_all(&reply).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let seen = Arc::new(Duplicates::new(Duration::from_secs(30), 1024));
    loop {
        let data = tokio::select! {
            r = tokio::time::timeout(idle, read_packet(&mut rd)) => match r {
                Ok(Ok(Some(d))) => d,
                Ok(Ok(None)) => break,
                Ok(Err(why)) => {
                    shared.notice(peer, Some(&client), "radius_malformed", why);
                    break;
                }
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        // The profile may have changed or gone since the handshake.
        let Some(client) = shared
            .clients
            .radsec(&shared.dir, &names)
            .filter(|c| c.profile.id == client.profile.id)
        else {
            refused("the profile no longer names this client certificate");
            break;
        };
        receive(&shared, &client, &data, peer, &seen, &tx).await;
    }
    drop(tx);
    let _ = writer.await;
}

/// One RADIUS packet off the stream: `None` at a clean end of stream, `Err` when the framing is lost.
async fn read_packet<R: AsyncReadExt + Unpin>(rd: &mut R) -> Result<Option<Vec<u8>>, &'static str> {
    let mut head = [0u8; 4];
    if rd.read_exact(&mut head).await.is_err() {
        // The client closed (or the TLS layer failed) between packets.
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if !(MIN_PACKET..=MAX_PACKET).contains(&len) {
        return Err("RadSec packet length outside 20..=4096; connection closed");
    }
    let mut buf = vec![0u8; len];
    buf[..4].copy_from_slice(&head);
    rd.read_exact(&mut buf[4..])
        .await
        .map_err(|_| "RadSec stream ended inside a packet")?;
    Ok(Some(buf))
}

/// The checks of a framed packet, then its handler in its own task.
async fn receive(
    shared: &Arc<Shared>,
    client: &Client,
    data: &[u8],
    peer: SocketAddr,
    seen: &Arc<Duplicates>,
    tx: &mpsc::Sender<Arc<Vec<u8>>>,
) {
    let count = |outcome: &'static str, reason: &'static str| {
        shared
            .dir
            .radius_counters()
            .count(&client.profile.name, outcome, reason);
    };
    let req = match Packet::decode(data) {
        Ok(p) => p,
        Err(e) => {
            count("dropped", "malformed");
            shared.notice(
                peer,
                Some(client),
                "radius_malformed",
                &format!("dropped: {e}"),
            );
            return;
        }
    };
    if let Err(why) = admissible(client, &req, Port::RadSec) {
        count("dropped", "authenticator");
        shared.notice(peer, Some(client), "radius_dropped", why);
        return;
    }
    let key = (peer, req.identifier, req.authenticator);
    match seen.check(key) {
        Seen::Answered(reply) => {
            count("retransmission", "");
            let _ = tx.send(reply).await;
            return;
        }
        Seen::InProgress => {
            count("retransmission", "");
            return;
        }
        Seen::New => {}
    }
    let Ok(permit) = Arc::clone(&shared.in_flight).try_acquire_owned() else {
        seen.forget(&key);
        count("dropped", "overload");
        shared.notice(
            peer,
            Some(client),
            "radius_overload",
            "all workers busy; RadSec request dropped for the client to retry",
        );
        return;
    };
    let (shared, client, seen, tx) = (
        Arc::clone(shared),
        client.clone(),
        Arc::clone(seen),
        tx.clone(),
    );
    tokio::spawn(async move {
        let _permit = permit;
        match answer(&shared, &client, &req, peer, Port::RadSec).await {
            Some(r) => {
                let r = seen.answered(key, r);
                let _ = tx.send(r).await;
            }
            None => seen.forget(&key),
        }
    });
}

/// A failed handshake as one fixed sentence per kind of failure. The TLS library's own text can carry what the
/// peer's certificate says (its key usages, names), and the notice is keyed by its text: peer-chosen text would
/// both reach the log and defeat the once-a-minute limit.
fn handshake_failure(e: &std::io::Error) -> &'static str {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::NoCertificatesPresented) => {
            "TLS handshake failed: no client certificate"
        }
        Some(rustls::Error::InvalidCertificate(_)) => {
            "TLS handshake failed: the client certificate is not valid for this server"
        }
        Some(rustls::Error::PeerIncompatible(_)) => {
            "TLS handshake failed: no protocol version or cipher suite in common"
        }
        Some(rustls::Error::AlertReceived(_)) => "TLS handshake failed: the client sent an alert",
        Some(_) => "TLS handshake failed: the client broke the protocol",
        None => "TLS handshake failed: the connection failed",
    }
}
