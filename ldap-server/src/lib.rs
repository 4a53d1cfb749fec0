//! # ldap-server
//!
//! The LDAP listener of Stratus (RFC 4511): LDAPv3 over TCP with StartTLS (RFC 4513) and LDAPS, framed by
//! `ldap3_proto`'s BER codec with a PDU size limit. It serves the directory tree built from the core snapshot
//! (users, groups, posixAccount/posixGroup/groupOfNames, Samba attributes), rootDSE and subschema, search with
//! every filter type, scopes, limits and paged results (RFC 2696), compare, whoami (RFC 4532) and password
//! modify (RFC 3062). Writes are refused: the directory is managed through the API.
//!
//! Every decision — who may bind, who is visible, Samba rules, lockout — is a call on
//! `core_directory::Directory` or a rule of its snapshot. It must not depend on any other listener.
//!
//! # Layout
//! - [`session`]: one connection — framing, idle timeouts, StartTLS, the bind state and every operation.
//! - [`search`]: scopes, access, limits, attribute selection and paging.
//! - [`filter`]: filter evaluation by syntax and index planning.
//! - [`entry`]: the tree as entries; [`schema`]: attribute types and object classes as data; [`dn`]: DNs.

pub mod codec;
pub mod dn;
pub mod entry;
pub mod filter;
pub mod schema;
pub mod search;
pub mod session;

use core_directory::Directory;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// Largest request accepted (bytes); larger ones close the connection.
    pub max_pdu_bytes: usize,
    /// Idle time after which a bound connection is closed (unbound ones after at most 60 s).
    pub idle_timeout: Duration,
    /// Concurrent connections; further ones are closed at once.
    pub max_connections: usize,
    /// Concurrent connections from one source address (never more than half of `max_connections`), so one
    /// source cannot shut the others out.
    pub max_connections_per_source: usize,
    /// Largest request accepted before a bind succeeds (a bind, StartTLS or a whoami fit in a few KiB).
    pub max_unbound_pdu_bytes: usize,
    pub limits: search::Limits,
}

impl LdapSettings {
    /// The per-source limit in force: the setting, at most half the listener's connections, at least one.
    pub fn per_source_limit(&self) -> usize {
        self.max_connections_per_source
            .min(self.max_connections / 2)
            .max(1)
    }
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            max_pdu_bytes: 1024 * 1024,
            idle_timeout: Duration::from_secs(900),
            max_connections: 4096,
            max_connections_per_source: 256,
            max_unbound_pdu_bytes: 16 * 1024,
            limits: search::Limits::default(),
        }
    }
}

/// What every connection shares.
pub struct Shared {
    pub dir: Arc<Directory>,
    pub settings: LdapSettings,
    pub tls: Option<TlsAcceptor>,
    pub shutdown: watch::Receiver<bool>,
    permits: Arc<Semaphore>,
    /// Open connections per source address.
    per_source: Arc<core_directory::limits::PerSource>,
}

impl Shared {
    /// A refused connection: logged and recorded as an event naming the source, at most once a minute per source.
    fn note_refusal(&self, ip: std::net::IpAddr, why: &'static str) {
        if !self.per_source.note_refusal(ip) {
            return;
        }
        tracing::warn!(source = %ip, "{why}; closing new connections from this source");
        let dir = Arc::clone(&self.dir);
        tokio::spawn(async move {
            dir.record(
                core_directory::Event::new(
                    core_directory::Service::Ldap,
                    "ldap_connection_refused",
                    false,
                )
                .client(Some(ip))
                .reason(why),
            )
            .await;
        });
    }
}

/// Run the plain (StartTLS-capable) and LDAPS listeners until `shutdown` turns true.
pub async fn serve(
    dir: Arc<Directory>,
    settings: LdapSettings,
    plain: Option<TcpListener>,
    ldaps: Option<TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let settings_per_source = settings.per_source_limit();
    let shared = Arc::new(Shared {
        dir,
        settings,
        tls: tls.map(TlsAcceptor::from),
        shutdown,
        permits,
        per_source: core_directory::limits::PerSource::new(settings_per_source),
    });
    let mut tasks = Vec::new();
    if let Some(l) = plain {
        tasks.push(tokio::spawn(accept_loop(l, false, Arc::clone(&shared))));
    }
    if let Some(l) = ldaps {
        tasks.push(tokio::spawn(accept_loop(l, true, Arc::clone(&shared))));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn accept_loop(listener: TcpListener, ldaps: bool, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    // Accept failures (out of descriptors, mostly) are logged at most every 10 s, with how many there were.
    let mut failures: (Option<std::time::Instant>, u64) = (None, 0);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    failures.1 += 1;
                    if failures.0.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        tracing::warn!(error = %e, failures = failures.1, "LDAP accept failed");
                        failures = (Some(std::time::Instant::now()), 0);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Some(slot) = shared.per_source.take(peer.ip()) else {
            shared.note_refusal(peer.ip(), "this source holds its share of LDAP connections");
            continue;
        };
        let Ok(permit) = Arc::clone(&shared.permits).try_acquire_owned() else {
            shared.note_refusal(peer.ip(), "the LDAP connection limit is reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            if ldaps {
                let Some(acceptor) = shared.tls.clone() else {
                    return;
                };
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(t)) => session::serve(Either::Right(t), peer, shared).await,
                    _ => tracing::debug!(%peer, "LDAPS handshake failed"),
                }
            } else {
                session::serve(Either::Left(tcp), peer, shared).await;
            }
        });
    }
}

/// Bind a listener address; an empty address disables it.
pub async fn bind(addr: &str) -> std::io::Result<Option<(TcpListener, SocketAddr)>> {
    if addr.trim().is_empty() {
        return Ok(None);
    }
    let l = TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok(Some((l, a)))
}
