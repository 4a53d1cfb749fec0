//! Dynamic Authorization (RFC 5176): Stratus as the Dynamic Authorization Client, ending the sessions of users
//! who lost access.
//!
//! The task waits on the core's change sequence (`Directory::changes`). After every change it walks the open
//! accounting sessions of profiles with `dynamic_authorization` on and asks the core, against the live
//! snapshot, whether each may go on (`Directory::radius_session_refusal`: user deleted, not active, locked, or no
//! longer in a group bound to the profile). For each refused session it sends a Disconnect-Request to the
//! address the session's accounting came from, at the profile's `coa_port`:
//!
//! ```text
//! code 40, random identifier, User-Name, Acct-Session-Id, NAS-IP-Address / NAS-Identifier / Calling-Station-Id
//! when the NAS gave them, Event-Timestamp, Message-Authenticator (first);
//! Request Authenticator = MD5(code ‖ id ‖ length ‖ 16 zero octets ‖ attributes ‖ secret)   (RFC 5176 §2.3)
//! ```
//!
//! The answer must come from that address with the request's identifier and a Response Authenticator (and
//! Message-Authenticator, when present) that verify with the profile's secret; anything else is ignored. No
//! answer: sent again, `disconnect_attempts` times in all, each waiting `disconnect_timeout`. The outcome is a
//! `radius_disconnect` event (`ack`, `nak` with its Error-Cause, or `no_answer`); an ACK closes the session in
//! the core. A session whose disconnect failed is not tried again while it stays open — the event tells the
//! admin — so a NAS that refuses cannot turn every later change into a burst of requests. The same task drops
//! sessions without an update for too long, once a minute.

use crate::clients::Client;
use crate::packet::{attr, response_valid, Builder, Code, Packet};
use crate::Shared;
use core_directory::auth::DenyReason;
use core_directory::radius_sessions::{RadiusSession, SessionQuery, DISCONNECT_EVENT};
use core_directory::{Event, Id, Service};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::watch;

pub const DISCONNECT_REQUEST: u8 = 40;
pub const DISCONNECT_ACK: u8 = 41;
pub const DISCONNECT_NAK: u8 = 42;
const EVENT_TIMESTAMP: u8 = 55;
const ERROR_CAUSE: u8 = 101;

/// How disconnects are sent.
#[derive(Debug, Clone, Copy)]
pub struct DisconnectSettings {
    /// Requests sent per session at most (the first and the retransmissions).
    pub attempts: u32,
    /// How long each waits for the answer.
    pub timeout: Duration,
}

impl Default for DisconnectSettings {
    fn default() -> Self {
        DisconnectSettings {
            attempts: 3,
            timeout: Duration::from_secs(3),
        }
    }
}

/// A session: profile, NAS address, Acct-Session-Id.
type Key = (Id, IpAddr, String);

fn key(s: &RadiusSession) -> Key {
    (s.profile.clone(), s.nas_address, s.session_id.clone())
}

/// Sessions being disconnected, and those whose disconnect failed (not tried again while they stay open).
#[derive(Default)]
struct Attempted {
    busy: HashSet<Key>,
    failed: HashSet<Key>,
}

/// Watch the directory and disconnect refused sessions until `shutdown` turns true.
pub(crate) async fn run(
    shared: Arc<Shared>,
    settings: DisconnectSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = shared.dir.changes();
    let attempted = Arc::new(Mutex::new(Attempted::default()));
    let mut expiry = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                check(&shared, &attempted, settings);
            }
            _ = expiry.tick() => {
                let gone = shared.dir.expire_radius_sessions();
                if gone > 0 {
                    tracing::info!(gone, "stale RADIUS sessions dropped (no accounting update)");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Start a disconnect for every open session the directory no longer allows.
fn check(shared: &Arc<Shared>, attempted: &Arc<Mutex<Attempted>>, settings: DisconnectSettings) {
    let snap = shared.dir.snapshot();
    let sessions = shared.dir.radius_sessions(&SessionQuery::default());
    let mut a = attempted.lock().unwrap_or_else(|p| p.into_inner());
    let open: HashSet<Key> = sessions.iter().map(key).collect();
    a.failed.retain(|k| open.contains(k));
    for s in sessions {
        let Some(profile) = snap.radius_servers.get(&s.profile) else {
            continue;
        };
        if !profile.dynamic_authorization {
            continue;
        }
        let k = key(&s);
        if a.busy.contains(&k) || a.failed.contains(&k) {
            continue;
        }
        let Some(reason) = shared.dir.radius_session_refusal(&s) else {
            continue;
        };
        let Some(client) = shared.clients.of_profile(&shared.dir, profile) else {
            continue;
        };
        a.busy.insert(k.clone());
        let (shared, attempted) = (Arc::clone(shared), Arc::clone(attempted));
        tokio::spawn(async move {
            let acked = disconnect(&shared, &client, &s, reason, settings).await;
            let mut a = attempted.lock().unwrap_or_else(|p| p.into_inner());
            a.busy.remove(&k);
            if !acked {
                a.failed.insert(k);
            }
        });
    }
}

/// What came back.
enum Outcome {
    Ack,
    Nak(Option<u32>),
    NoAnswer,
}

/// Send the Disconnect-Request for one session, record the outcome; `true` on a Disconnect-ACK.
async fn disconnect(
    shared: &Shared,
    client: &Client,
    s: &RadiusSession,
    reason: DenyReason,
    settings: DisconnectSettings,
) -> bool {
    let nas = SocketAddr::new(s.nas_address, client.profile.coa_port);
    let (outcome, attempts) = match request(client, s) {
        Some((id, packet)) => send(nas, id, &packet, &client.secret, settings).await,
        None => (Outcome::NoAnswer, 0),
    };
    let mut e = Event::new(
        Service::Radius,
        DISCONNECT_EVENT,
        matches!(outcome, Outcome::Ack),
    )
    .client(Some(s.nas_address))
    .user(s.username.clone())
    .reason(reason.describe())
    .detail("nas", client.profile.name.clone())
    .detail("resource", format!("radius:{}", client.profile.id))
    .detail("session_id", s.session_id.clone())
    .detail("coa_port", client.profile.coa_port)
    .detail("attempts", attempts);
    if let Some(u) = &s.user {
        e = e.target("user", u);
    }
    e = match outcome {
        Outcome::Ack => e.detail("outcome", "ack"),
        Outcome::Nak(cause) => {
            let name = cause.map(|c| {
                shared
                    .dict
                    .by_number(0, ERROR_CAUSE)
                    .and_then(|d| d.value_name(c))
                    .map_or_else(|| c.to_string(), str::to_string)
            });
            e.detail("outcome", "nak").detail(
                "error_cause",
                name.map_or(serde_json::Value::Null, Into::into),
            )
        }
        Outcome::NoAnswer => e.detail("outcome", "no_answer"),
    };
    let acked = e.success;
    tracing::info!(
        user = %core_directory::events::log_text(&s.username),
        session = %core_directory::events::log_text(&s.session_id),
        %nas,
        acked,
        "RADIUS Disconnect-Request answered"
    );
    shared.dir.radius_session_event(e).await;
    acked
}

/// The Disconnect-Request: its identifier and octets. `None` only when the attributes cannot fit.
fn request(client: &Client, s: &RadiusSession) -> Option<(u8, Vec<u8>)> {
    let mut id = [0u8; 1];
    aws_lc_rs::rand::fill(&mut id).ok()?;
    let mut b = Builder::new(Code::Other(DISCONNECT_REQUEST), id[0], true);
    b.add(attr::USER_NAME, s.username.as_bytes()).ok()?;
    b.add(attr::ACCT_SESSION_ID, s.session_id.as_bytes()).ok()?;
    if let Some(ip) = s.nas_ip.as_deref().and_then(|i| i.parse::<Ipv4Addr>().ok()) {
        b.add(attr::NAS_IP_ADDRESS, &ip.octets()).ok()?;
    }
    if let Some(n) = &s.nas_identifier {
        b.add(attr::NAS_IDENTIFIER, n.as_bytes()).ok()?;
    }
    if let Some(c) = &s.calling_station {
        b.add(attr::CALLING_STATION_ID, c.as_bytes()).ok()?;
    }
    let now = u32::try_from(chrono::Utc::now().timestamp()).unwrap_or(u32::MAX);
    b.add(EVENT_TIMESTAMP, &now.to_be_bytes()).ok()?;
    // The same construction as an Accounting-Request (RFC 5176 §2.3 and §3.5).
    Some((id[0], b.accounting_request(&client.secret)))
}

/// Send `packet` and wait for its answer, `attempts` times at most; returns the outcome and the requests sent.
async fn send(
    nas: SocketAddr,
    id: u8,
    packet: &[u8],
    secret: &[u8],
    settings: DisconnectSettings,
) -> (Outcome, u32) {
    let local: IpAddr = if nas.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = match UdpSocket::bind((local, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no socket for a Disconnect-Request");
            return (Outcome::NoAnswer, 0);
        }
    };
    let mut authenticator = [0u8; 16];
    authenticator.copy_from_slice(&packet[4..20]);
    let mut buf = vec![0u8; crate::packet::MAX_PACKET];
    for attempt in 1..=settings.attempts.max(1) {
        if let Err(e) = sock.send_to(packet, nas).await {
            tracing::debug!(%nas, error = %e, "Disconnect-Request not sent");
        }
        let answer = tokio::time::timeout(settings.timeout, async {
            // Stray or forged datagrams are skipped; at most 16 per attempt are looked at.
            for _ in 0..16 {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                if from != nas {
                    continue;
                }
                if let Some(o) = judge(&buf[..n], id, secret, &authenticator) {
                    return Some(o);
                }
            }
            None
        })
        .await;
        if let Ok(Some(o)) = answer {
            return (o, attempt);
        }
    }
    (Outcome::NoAnswer, settings.attempts.max(1))
}

/// An answer to our request, or `None` for anything else.
fn judge(data: &[u8], id: u8, secret: &[u8], authenticator: &[u8; 16]) -> Option<Outcome> {
    let p = Packet::decode(data).ok()?;
    if p.identifier != id || !response_valid(data, secret, authenticator) {
        return None;
    }
    match p.code.as_u8() {
        DISCONNECT_ACK => Some(Outcome::Ack),
        DISCONNECT_NAK => Some(Outcome::Nak(p.integer(ERROR_CAUSE))),
        _ => None,
    }
}
