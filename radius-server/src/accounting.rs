//! Accounting-Request (RFC 2866) on the accounting port.
//!
//! Start, Interim-Update, Stop (and Accounting-On/Off) are recorded as `radius_accounting` events with the user,
//! the NAS, the session id, octets (Gigawords included, RFC 2869 §5.1), packets, duration, the terminate cause
//! and the Class that ties the session to its `radius_auth` event. The core keeps the open sessions from the
//! same events (`Directory::radius_session_event`: Start and Interim-Update open or move one, Stop closes it,
//! Accounting-On/Off close every session of that NAS). The Accounting-Response is sent only once the event is
//! stored (RFC 2866 §4.1: a server that cannot record a request must not acknowledge it). A request whose
//! authenticator does not verify is dropped.

use crate::clients::Client;
use crate::packet::{attr, Builder, Code, Packet};
use crate::Shared;
use core_directory::radius_sessions::ACCOUNTING_EVENT;
use core_directory::{Event, Service};
use serde_json::Value;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Answer an Accounting-Request whose authenticators have been checked; `None` drops it.
pub(crate) async fn accounting_request(
    shared: &Shared,
    client: &Client,
    req: &Packet,
    src: SocketAddr,
) -> Option<Vec<u8>> {
    shared
        .dir
        .radius_session_event(event(shared, client, req, src))
        .await;
    response(client, req, false)
}

/// An Accounting-Response. Only the answer to a Status-Server carries a Message-Authenticator (RFC 5997 §3):
/// NAS software disagrees on how one in an Accounting-Response is computed, and the Response Authenticator
/// already proves it. `None` when the request's Proxy-States cannot fit.
pub(crate) fn response(client: &Client, req: &Packet, status_server: bool) -> Option<Vec<u8>> {
    let b = Builder::reply_to(req, Code::AccountingResponse, status_server).ok()?;
    Some(b.response(&client.secret, &req.authenticator))
}

fn octets(req: &Packet, low: u8, gigawords: u8) -> Option<u64> {
    let lo = req.integer(low)?;
    let hi = req.integer(gigawords).unwrap_or(0);
    Some((u64::from(hi) << 32) | u64::from(lo))
}

fn event(shared: &Shared, client: &Client, req: &Packet, src: SocketAddr) -> Event {
    let dict = shared.dict;
    let named = |typ: u8| {
        req.integer(typ).map(|v| {
            dict.by_number(0, typ)
                .and_then(|d| d.value_name(v))
                .map_or(Value::from(v), Value::from)
        })
    };
    let mut e = Event::new(Service::Radius, ACCOUNTING_EVENT, true)
        .client(Some(src.ip()))
        .detail("nas", client.profile.name.clone())
        .detail("resource", format!("radius:{}", client.profile.id));
    if let Some(u) = req.text(attr::USER_NAME) {
        if let Some(user) = shared.dir.snapshot().user_by_username(&u) {
            e = e.target("user", &user.id);
        }
        e = e.user(u.clone()).actor(u);
    }
    let text = |typ: u8| req.text(typ).map(Value::from);
    let integer = |typ: u8| req.integer(typ).map(Value::from);
    let ipv4 = |typ: u8| {
        req.get(typ)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(|v| Value::from(Ipv4Addr::from(v).to_string()))
    };
    let class = req
        .get(attr::CLASS)
        .map(|c| Value::from(String::from_utf8_lossy(c).into_owned()));
    let nas_ipv6 = req
        .get(attr::NAS_IPV6_ADDRESS)
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .map(|v| Value::from(Ipv6Addr::from(v).to_string()));
    let fields = [
        ("status", named(attr::ACCT_STATUS_TYPE)),
        ("session_id", text(attr::ACCT_SESSION_ID)),
        ("class", class),
        ("nas_ip", ipv4(attr::NAS_IP_ADDRESS)),
        ("nas_ipv6", nas_ipv6),
        ("nas_identifier", text(attr::NAS_IDENTIFIER)),
        ("nas_port", integer(attr::NAS_PORT)),
        ("nas_port_id", text(attr::NAS_PORT_ID)),
        ("called_station", text(attr::CALLED_STATION_ID)),
        ("calling_station", text(attr::CALLING_STATION_ID)),
        ("framed_ip", ipv4(attr::FRAMED_IP_ADDRESS)),
        (
            "input_octets",
            octets(req, attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS).map(Value::from),
        ),
        (
            "output_octets",
            octets(req, attr::ACCT_OUTPUT_OCTETS, attr::ACCT_OUTPUT_GIGAWORDS).map(Value::from),
        ),
        ("input_packets", integer(attr::ACCT_INPUT_PACKETS)),
        ("output_packets", integer(attr::ACCT_OUTPUT_PACKETS)),
        ("session_time", integer(attr::ACCT_SESSION_TIME)),
        ("terminate_cause", named(attr::ACCT_TERMINATE_CAUSE)),
    ];
    for (key, value) in fields {
        if let Some(v) = value {
            e.details.insert(key.to_string(), v);
        }
    }
    e
}
