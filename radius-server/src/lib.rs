//! # radius-server
//!
//! The RADIUS listener of Stratus: UDP authentication (RFC 2865) and accounting (RFC 2866) for Wi-Fi access
//! points, VPN concentrators and switches, and the same over RadSec (RFC 6614, TLS over TCP). It owns the
//! packet codec with the attribute dictionary as data, per-NAS shared secrets, Message-Authenticator (RFC 3579,
//! required by default), duplicate detection, PAP, MS-CHAPv2 without EAP (RFC 2548, with RFC 3079 MPPE keys), the
//! TOTP Access-Challenge flow, EAP (PEAP-MSCHAPv2, EAP-TTLS with PAP or MS-CHAPv2 inside, EAP-TLS over rustls,
//! with MS-MPPE keys), reply attributes from bound groups, accounting records, and Disconnect-Requests (RFC 5176)
//! to the NAS of sessions the directory no longer allows. It applies each profile's realm rule to the names it
//! reads (the rule itself, a pure function, is the core's: `core_directory::realm`).
//!
//! Every decision — who the user is, whether the password, code, lockout and binding allow the login, which
//! group's reply attribute wins — is a call on `core_directory::Directory` or a rule of its snapshot. It must
//! not depend on any other listener.
//!
//! # Layout
//! - [`packet`]: decoding that cannot panic, encoding, authenticators; [`crypt`]: User-Password and salted
//!   attribute encryption; [`dictionary`]: the FreeRADIUS-format dictionary under `dictionary/`.
//! - [`clients`]: NAS profile by source address; [`duplicates`]: the retransmission table;
//!   [`challenge`]: pending MFA challenges by State.
//! - [`access`]: Access-Request and Status-Server; [`mschap`]: MS-CHAPv2 as RFC 2548 attributes; [`eap`]: EAP
//!   conversations (PEAP-MSCHAPv2, EAP-TTLS/PAP and /MSCHAPv2, EAP-TLS); [`accounting`]: Accounting-Request;
//!   [`reply`]: reply attributes of an Accept.
//! - [`radsec`]: the TLS listener, its framing and client-certificate-to-profile mapping; [`dynauth`]: the
//!   Disconnect-Requests sent when a change in the directory ends a user's right to an open session.
//! - This file: the sockets, the receive loops and the checks every request passes before a handler sees it
//!   (UDP and RadSec alike).
//!
//! # Path of a datagram
//! receive loop → known source? (else dropped, recorded at most once a minute per address) → decodes? →
//! code allowed on this port? → Message-Authenticator / accounting authenticator verifies? → duplicate? (answer
//! again or ignore) → a worker slot free? (else dropped: the NAS retries) → handler task → reply sent and
//! remembered for retransmissions. argon2id runs on the core's blocking pool, never on a receive loop.

pub mod access;
pub mod accounting;
pub mod challenge;
pub mod clients;
pub mod crypt;
pub mod dictionary;
pub mod duplicates;
pub mod dynauth;
pub mod eap;
pub mod mschap;
pub mod packet;
pub mod radsec;
pub mod reply;

use challenge::Challenges;
use clients::{Client, Clients};
use core_directory::model::ReplyAttribute;
use core_directory::{Directory, Event, Service};
use dictionary::Dictionary;
use duplicates::{Duplicates, Seen};
use packet::{attr, Code, Packet, MAX_PACKET};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};

/// Listener settings.
#[derive(Debug, Clone)]
pub struct RadiusSettings {
    /// Requests being answered at once; beyond this new requests are dropped (the NAS retransmits).
    pub max_in_flight: usize,
    /// Receive loops per socket (0 = number of CPUs).
    pub receive_tasks: usize,
    /// How long a request is remembered for duplicate detection.
    pub duplicate_window: Duration,
    /// How long the user has to answer an Access-Challenge.
    pub challenge_timeout: Duration,
    /// Pending challenges at most.
    pub max_challenges: usize,
    /// EAP conversations in progress at most.
    pub max_conversations: usize,
    /// How Disconnect-Requests (RFC 5176) are retried.
    pub disconnect: dynauth::DisconnectSettings,
}

impl Default for RadiusSettings {
    fn default() -> Self {
        RadiusSettings {
            max_in_flight: 256,
            receive_tasks: 0,
            duplicate_window: Duration::from_secs(30),
            challenge_timeout: Duration::from_secs(60),
            max_challenges: 10_000,
            max_conversations: 4096,
            disconnect: dynauth::DisconnectSettings::default(),
        }
    }
}

/// What every request shares.
pub struct Shared {
    pub dir: Arc<Directory>,
    pub dict: &'static Dictionary,
    clients: Clients,
    duplicates: Duplicates,
    challenges: Challenges,
    eap: Option<eap::EapTls>,
    conversations: eap::Conversations,
    notices: Notices,
    in_flight: Arc<Semaphore>,
}

/// Which socket a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Auth,
    Acct,
    /// A RadSec connection: authentication and accounting alike.
    RadSec,
}

/// The check the directory runs when an admin sets a group's reply attribute: it must be encodable with this
/// listener's dictionary.
pub fn reply_attribute_check(a: &ReplyAttribute) -> Result<(), String> {
    Dictionary::standard()
        .encode(&a.attribute, &a.value)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Run the authentication and accounting sockets, the RadSec listener when there is one, and the Dynamic
/// Authorization task until `shutdown` turns true.
pub async fn serve(
    dir: Arc<Directory>,
    settings: RadiusSettings,
    eap: Option<eap::EapTls>,
    auth: Vec<UdpSocket>,
    acct: Vec<UdpSocket>,
    radsec: Option<radsec::RadSec>,
    shutdown: watch::Receiver<bool>,
) {
    let mut challenges = Challenges::new(settings.challenge_timeout, settings.max_challenges);
    if dir.store().is_shared() {
        challenges = challenges.shared(Arc::clone(dir.store()));
    }
    let shared = Arc::new(Shared {
        dir,
        dict: Dictionary::standard(),
        clients: Clients::default(),
        duplicates: Duplicates::new(settings.duplicate_window, 200_000),
        challenges,
        eap,
        conversations: eap::Conversations::new(settings.max_conversations),
        notices: Notices::default(),
        in_flight: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
    });
    let loops = match settings.receive_tasks {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let mut tasks = vec![tokio::spawn(dynauth::run(
        Arc::clone(&shared),
        settings.disconnect,
        shutdown.clone(),
    ))];
    if let Some(r) = radsec {
        tasks.push(tokio::spawn(radsec::serve(
            Arc::clone(&shared),
            r,
            shutdown.clone(),
        )));
    }
    // Every address shares one state (duplicates, challenges, EAP conversations): a NAS that reaches Stratus
    // over IPv4 and IPv6 is one client. A reply leaves by the socket its request came in on.
    let sockets = auth
        .into_iter()
        .map(|s| (s, Port::Auth))
        .chain(acct.into_iter().map(|s| (s, Port::Acct)));
    for (sock, port) in sockets {
        let sock = Arc::new(sock);
        for _ in 0..loops {
            tasks.push(tokio::spawn(receive(
                Arc::clone(&sock),
                port,
                Arc::clone(&shared),
                shutdown.clone(),
            )));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Bind a UDP listener; an empty address disables it.
pub async fn bind(addr: &str) -> std::io::Result<Option<(UdpSocket, SocketAddr)>> {
    if addr.trim().is_empty() {
        return Ok(None);
    }
    let s = UdpSocket::bind(addr).await?;
    let a = s.local_addr()?;
    Ok(Some((s, a)))
}

async fn receive(
    sock: Arc<UdpSocket>,
    port: Port,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // One octet more than the largest packet, so an oversized datagram is seen as such.
    let mut buf = vec![0u8; MAX_PACKET + 1];
    loop {
        let (n, src) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP port-unreachable from an earlier reply shows up here on some systems; keep serving.
                    tracing::debug!(error = %e, "RADIUS receive failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        dispatch(&sock, &buf[..n], src, port, &shared);
    }
}

/// Every check a datagram passes before a handler task is started for it.
fn dispatch(sock: &Arc<UdpSocket>, data: &[u8], src: SocketAddr, port: Port, shared: &Arc<Shared>) {
    let count = |profile: &str, outcome: &'static str, reason: &'static str| {
        shared.dir.radius_counters().count(profile, outcome, reason);
    };
    let Some(client) = shared.clients.find(&shared.dir, src.ip()) else {
        count("", "dropped", "unknown_client");
        shared.notice(
            src,
            None,
            "radius_unknown_client",
            "packet from an unknown source dropped",
        );
        return;
    };
    if data.len() > MAX_PACKET {
        count(&client.profile.name, "dropped", "malformed");
        shared.notice(
            src,
            Some(&client),
            "radius_malformed",
            "datagram over 4096 octets dropped",
        );
        return;
    }
    let req = match Packet::decode(data) {
        Ok(p) => p,
        Err(e) => {
            count(&client.profile.name, "dropped", "malformed");
            shared.notice(
                src,
                Some(&client),
                "radius_malformed",
                &format!("dropped: {e}"),
            );
            return;
        }
    };
    if let Err(why) = admissible(&client, &req, port) {
        count(&client.profile.name, "dropped", "authenticator");
        shared.notice(src, Some(&client), "radius_dropped", why);
        return;
    }
    let key = (src, req.identifier, req.authenticator);
    match shared.duplicates.check(key) {
        Seen::Answered(reply) => {
            count(&client.profile.name, "retransmission", "");
            let _ = sock.try_send_to(&reply, src);
            return;
        }
        Seen::InProgress => {
            count(&client.profile.name, "retransmission", "");
            return;
        }
        Seen::New => {}
    }
    let Ok(permit) = Arc::clone(&shared.in_flight).try_acquire_owned() else {
        shared.duplicates.forget(&key);
        count(&client.profile.name, "dropped", "overload");
        shared.notice(
            src,
            Some(&client),
            "radius_overload",
            "all workers busy; request dropped for the NAS to retry",
        );
        return;
    };
    let (sock, shared) = (Arc::clone(sock), Arc::clone(shared));
    tokio::spawn(async move {
        let _permit = permit;
        let reply = answer(&shared, &client, &req, src, port).await;
        match reply {
            Some(r) => {
                // Remembered before it is sent, so a retransmission that crosses the reply is answered too.
                let r = shared.duplicates.answered(key, r);
                if let Err(e) = sock.send_to(&r, src).await {
                    tracing::debug!(%src, error = %e, "RADIUS reply not sent");
                }
            }
            None => shared.duplicates.forget(&key),
        }
    });
}

/// The handler of an admitted request, and its count; `None` means no answer.
async fn answer(
    shared: &Shared,
    client: &Client,
    req: &Packet,
    src: SocketAddr,
    port: Port,
) -> Option<Vec<u8>> {
    let reply = match (port, req.code) {
        (Port::Auth | Port::RadSec, Code::AccessRequest) => {
            access::access_request(shared, client, req, src).await
        }
        (Port::Auth | Port::RadSec, Code::StatusServer) => access::status_server(client, req),
        (Port::Acct | Port::RadSec, Code::AccountingRequest) => {
            accounting::accounting_request(shared, client, req, src).await
        }
        (Port::Acct, Code::StatusServer) => accounting::response(client, req, true),
        _ => None,
    };
    let outcome = match reply.as_ref().and_then(|r| r.first()) {
        Some(2) => "accept",
        Some(3) => "reject",
        Some(11) => "challenge",
        Some(5) => "accounting",
        Some(_) => "other",
        None => "dropped",
    };
    let reason = if reply.is_none() { "no_answer" } else { "" };
    shared
        .dir
        .radius_counters()
        .count(&client.profile.name, outcome, reason);
    reply
}

/// The code and authenticator checks of RFC 2865/2866/3579/5997 (and RFC 6614 §2.3 on RadSec, where every
/// Access-Request carries a Message-Authenticator); `Err` says why the packet is dropped.
fn admissible(client: &Client, req: &Packet, port: Port) -> Result<(), &'static str> {
    let secret = &client.secret;
    match (port, req.code) {
        (Port::Auth | Port::RadSec, Code::AccessRequest)
        | (Port::Auth | Port::RadSec, Code::StatusServer) => {
            if req.has_message_authenticator() {
                if !req.message_authenticator_valid(secret, false) {
                    return Err("Message-Authenticator does not verify (wrong shared secret?)");
                }
            } else if req.code == Code::StatusServer
                || req.get(attr::EAP_MESSAGE).is_some()
                || port == Port::RadSec
                || !client.profile.allow_missing_message_authenticator
                // The opt-in is for PAP from old NAS: every other method needs the attribute.
                || req.get(attr::USER_PASSWORD).is_none()
            {
                return Err("Access-Request without Message-Authenticator");
            }
            Ok(())
        }
        (Port::Acct | Port::RadSec, Code::AccountingRequest) => {
            if !req.accounting_authenticator_valid(secret) {
                return Err(
                    "Accounting-Request authenticator does not verify (wrong shared secret?)",
                );
            }
            if req.has_message_authenticator() && !req.message_authenticator_valid(secret, true) {
                return Err("Message-Authenticator does not verify");
            }
            Ok(())
        }
        (Port::Acct, Code::StatusServer) => {
            if !req.message_authenticator_valid(secret, false) {
                return Err("Status-Server without a valid Message-Authenticator");
            }
            Ok(())
        }
        _ => Err("packet code not served on this port"),
    }
}

/// Events for dropped datagrams, at most one per source address and reason a minute, so a flood cannot fill the
/// event record; the count of those not recorded goes with the next one.
#[derive(Default)]
struct Notices {
    last: Mutex<HashMap<(IpAddr, String), (Instant, u64)>>,
}

impl Shared {
    fn notice(&self, src: SocketAddr, client: Option<&Client>, kind: &'static str, why: &str) {
        let now = Instant::now();
        let suppressed = {
            let mut last = self.notices.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.len() > 10_000 {
                last.retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(60));
                if last.len() > 10_000 {
                    last.clear();
                }
            }
            let entry = last
                .entry((src.ip(), format!("{kind}: {why}")))
                .or_insert((now, u64::MAX));
            if entry.1 != u64::MAX && now.duration_since(entry.0) < Duration::from_secs(60) {
                entry.1 += 1;
                return;
            }
            let suppressed = if entry.1 == u64::MAX { 0 } else { entry.1 };
            *entry = (now, 0);
            suppressed
        };
        tracing::warn!(%src, kind, why, "RADIUS datagram dropped");
        let mut e = Event::new(Service::Radius, kind, false)
            .client(Some(src.ip()))
            .reason(why)
            .detail("source_port", src.port())
            .detail("suppressed_since_last", suppressed);
        if let Some(c) = client {
            e = e
                .detail("nas", c.profile.name.clone())
                .detail("resource", format!("radius:{}", c.profile.id));
        }
        let dir = Arc::clone(&self.dir);
        tokio::spawn(async move { dir.record(e).await });
    }
}
