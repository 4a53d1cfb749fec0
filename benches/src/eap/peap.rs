//! The native loader: a PEAPv0 / EAP-MSCHAPv2 supplicant and the NAS in front of it, in one, over one UDP
//! socket, written for this benchmark from RFC 3579 (EAP over RADIUS), the PEAPv0 draft
//! (draft-josefsson-pppext-eap-tls-eap), RFC 5216 §2.3 (keys) and RFC 2759 / draft-kamath-pppext-eap-mschapv2.
//!
//! One [`Peer::authenticate`] is a complete login as eapol_test makes it, and is checked as strictly:
//! ```text
//! → EAP-Response/Identity "anonymous"             ← PEAP Start
//! → TLS ClientHello                               ← ServerHello, Certificate, ServerKeyExchange, Done (fragments,
//!                                                   each acknowledged with an empty response)
//! → ClientKeyExchange, ChangeCipherSpec, Finished ← ChangeCipherSpec, Finished
//! → (empty: acknowledges the Finished)            ← inner Identity request       (inside the tunnel from here)
//! → inner Identity <user>                         ← MSCHAPv2 Challenge
//! → MSCHAPv2 Response (NT-Response)               ← MSCHAPv2 Success "S=…"       checked: the server knows the password
//! → MSCHAPv2 Success acknowledgement              ← Result TLV success
//! → Result TLV success                            ← Access-Accept, EAP-Success, MS-MPPE-Recv-Key and -Send-Key,
//!                                                   checked against the MSK this side derives from the TLS session
//! ```
//! Every Access-Request carries a Message-Authenticator, and every reply must verify (Response Authenticator and
//! Message-Authenticator) with the shared secret. The TLS client is rustls with the TLS versions given (TLS 1.2
//! by default, like wpa_supplicant, which leaves TLS 1.3 off for EAP), no SNI (wpa_supplicant sends none), no
//! session resumption (every login is a full handshake), trusting only the CA given; the certificate is checked
//! for the name `localhost`, which Stratus's development certificate carries. The inner method's arithmetic
//! (NT hash, NT-Response, the expected Authenticator Response) comes from `core_directory::mschapv2`, the code
//! Stratus checks with; FreeRADIUS, measured in the same run, checks it independently.
//!
//! Nothing is retransmitted: a reply that does not come within the reply timeout ends the login as lost.

use core_directory::mschapv2::{nt_response, verify, MsChapV2Proof};
use radius_server::crypt::salt_decrypt;
use radius_server::eap::packet::{method, Eap, REQUEST, RESPONSE, SUCCESS};
use radius_server::packet::{attr, response_valid, Builder, Code, Packet};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FLAG_LENGTH: u8 = 0x80;
const FLAG_MORE: u8 = 0x40;
const FLAG_START: u8 = 0x20;
/// TLS data per EAP response, as wpa_supplicant's default `fragment_size` (our messages are smaller).
const FRAGMENT: usize = 1398;
/// Round trips one login may take before it is given up (a PEAP login takes about ten).
const MAX_ROUNDS: u32 = 40;
/// Longest TLS message reassembled from the server's fragments.
const MAX_MESSAGE: usize = 64 * 1024;
/// The outer identity, as a privacy-minded supplicant sends it.
const OUTER_IDENTITY: &str = "anonymous";

const SERVICE_TYPE: u8 = 6;
const FRAMED_MTU: u8 = 12;
const NAS_PORT_TYPE: u8 = 61;
const MICROSOFT: u32 = 311;
const MS_MPPE_SEND_KEY: u8 = 16;
const MS_MPPE_RECV_KEY: u8 = 17;

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Access-Reject (with its Reply-Message, if any).
    Rejected(Option<String>),
    /// No valid reply within the reply timeout.
    Lost,
    /// A reply that does not verify with the shared secret.
    Invalid,
    /// The EAP, TLS or MSCHAPv2 conversation went wrong (or the server's proof of the password was wrong).
    Protocol(String),
    /// An Access-Accept whose MS-MPPE keys are missing or differ from the MSK derived here.
    Keys(String),
    /// The socket failed.
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rejected(None) => write!(f, "Access-Reject"),
            Failure::Rejected(Some(m)) => write!(f, "Access-Reject ({m})"),
            Failure::Lost => write!(f, "no reply in time"),
            Failure::Invalid => write!(f, "a reply that does not verify with the shared secret"),
            Failure::Protocol(m) => write!(f, "{m}"),
            Failure::Keys(m) => write!(f, "MPPE keys: {m}"),
            Failure::Io(m) => write!(f, "socket: {m}"),
        }
    }
}

fn protocol(m: impl Into<String>) -> Failure {
    Failure::Protocol(m.into())
}

/// What a successful login negotiated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Negotiated {
    pub version: String,
    pub cipher: String,
    pub group: String,
    pub round_trips: u32,
}

/// A rustls client configuration for `versions`, trusting only the PEM CA at `ca`.
pub fn tls_config(
    ca: &std::path::Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<rustls::ClientConfig>, crate::BoxError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)
        .map_err(|e| format!("{}: {e}", ca.display()))?
    {
        roots.add(cert.map_err(|e| format!("{}: {e}", ca.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.enable_sni = false;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// One supplicant behind one NAS port: a connected UDP socket and the RADIUS identifiers it uses in turn.
pub struct Peer {
    sock: UdpSocket,
    secret: Arc<[u8]>,
    tls: Arc<rustls::ClientConfig>,
    /// Calling-Station-Id: the station's MAC address.
    station: String,
    next_id: u8,
    reply_timeout: Duration,
    buf: Vec<u8>,
}

impl Peer {
    pub fn new(
        server: SocketAddr,
        secret: Arc<[u8]>,
        tls: Arc<rustls::ClientConfig>,
        station: u32,
        reply_timeout: Duration,
    ) -> Result<Self, crate::BoxError> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.connect(server)?;
        let m = station.to_be_bytes();
        Ok(Peer {
            sock,
            secret,
            tls,
            station: format!("02-00-{:02X}-{:02X}-{:02X}-{:02X}", m[0], m[1], m[2], m[3]),
            next_id: 0,
            reply_timeout,
            buf: vec![0u8; 4097],
        })
    }

    /// One complete PEAP-MSCHAPv2 login of `user` with `password`.
    pub fn authenticate(&mut self, user: &str, password: &str) -> Result<Negotiated, Failure> {
        let nt: [u8; 16] = core_directory::directory::nt_hash(password)
            .try_into()
            .map_err(|_| protocol("NT hash is not 16 octets"))?;
        let mut conv = Conversation {
            user,
            nt,
            tls: None,
            tls_config: Arc::clone(&self.tls),
            version: 0,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            inner: Inner::Identity,
        };
        let identity = {
            let mut body = vec![method::IDENTITY];
            body.extend_from_slice(OUTER_IDENTITY.as_bytes());
            Eap {
                code: RESPONSE,
                identifier: 0,
                body,
            }
        };
        let mut eap = identity;
        let mut state: Option<Vec<u8>> = None;
        for round in 1..=MAX_ROUNDS {
            let (reply, request_authenticator) = self.exchange(&eap, state.as_deref())?;
            match reply.code {
                Code::AccessChallenge => {
                    state = reply.get(attr::STATE).map(<[u8]>::to_vec);
                    let request = match Eap::from_radius(&reply) {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => return Err(protocol(format!("EAP-Message: {e}"))),
                        None => return Err(protocol("Access-Challenge without EAP-Message")),
                    };
                    eap = conv.respond(&request)?;
                }
                Code::AccessAccept => {
                    return conv.accepted(&reply, &self.secret, &request_authenticator, round)
                }
                Code::AccessReject => {
                    return Err(Failure::Rejected(reply.text(attr::REPLY_MESSAGE)));
                }
                other => return Err(protocol(format!("unexpected RADIUS code {other:?}"))),
            }
        }
        Err(protocol(format!(
            "no decision after {MAX_ROUNDS} round trips"
        )))
    }

    /// Send `eap` in an Access-Request (with `state` when the last reply had one) and wait for its reply.
    fn exchange(&mut self, eap: &Eap, state: Option<&[u8]>) -> Result<(Packet, [u8; 16]), Failure> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut authenticator = [0u8; 16];
        aws_lc_rs::rand::fill(&mut authenticator)
            .map_err(|_| protocol("no randomness for an authenticator"))?;
        let packet = (|| {
            let mut b = Builder::new(Code::AccessRequest, id, true);
            b.add(attr::USER_NAME, OUTER_IDENTITY.as_bytes())?;
            b.add(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1])?;
            b.add(attr::NAS_IDENTIFIER, b"stratus-bench")?;
            b.add(attr::CALLING_STATION_ID, self.station.as_bytes())?;
            b.add(FRAMED_MTU, &1400u32.to_be_bytes())?;
            // Wireless - IEEE 802.11, Framed.
            b.add(NAS_PORT_TYPE, &19u32.to_be_bytes())?;
            b.add(SERVICE_TYPE, &2u32.to_be_bytes())?;
            eap.put(&mut b)?;
            if let Some(s) = state {
                b.add(attr::STATE, s)?;
            }
            Ok::<_, radius_server::packet::EncodeError>(
                b.access_request(&self.secret, &authenticator),
            )
        })()
        .map_err(|e| protocol(format!("Access-Request: {e}")))?;
        self.sock
            .send(&packet)
            .map_err(|e| Failure::Io(e.to_string()))?;
        let deadline = Instant::now() + self.reply_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Lost);
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(|e| Failure::Io(e.to_string()))?;
            let n = match self.sock.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Failure::Lost)
                }
                Err(e) => return Err(Failure::Io(e.to_string())),
            };
            let reply = &self.buf[..n];
            // A late reply to an earlier request of this socket: not ours.
            if reply.len() < 20 || reply[1] != id {
                continue;
            }
            if !response_valid(reply, &self.secret, &authenticator) {
                return Err(Failure::Invalid);
            }
            let p = Packet::decode(reply).map_err(|_| Failure::Invalid)?;
            if !p.has_message_authenticator() {
                return Err(protocol("a reply without Message-Authenticator"));
            }
            return Ok((p, authenticator));
        }
    }
}

/// Where the inner method is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    Identity,
    Challenge,
    /// Our NT-Response is out; the server must answer with this Authenticator Response.
    Success(String),
    Result,
    /// The server said success in its Result TLV and we agreed: only the Access-Accept is left.
    Done,
    /// The server said the inner method failed and we acknowledged it: only the Access-Reject is left.
    Failed,
}

/// The state of one login.
struct Conversation<'a> {
    user: &'a str,
    nt: [u8; 16],
    tls: Option<ClientConnection>,
    tls_config: Arc<rustls::ClientConfig>,
    /// PEAP version (0).
    version: u8,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
    sent: usize,
    inner: Inner,
}

impl Conversation<'_> {
    /// The response to one EAP request.
    fn respond(&mut self, request: &Eap) -> Result<Eap, Failure> {
        if request.code != REQUEST {
            return Err(protocol(format!(
                "EAP code {} in an Access-Challenge",
                request.code
            )));
        }
        let body = match request.method() {
            Some(method::PEAP) => {
                let mut body = vec![method::PEAP];
                body.extend_from_slice(&self.peap(request.data(), request.identifier)?);
                body
            }
            Some(method::IDENTITY) => {
                let mut body = vec![method::IDENTITY];
                body.extend_from_slice(OUTER_IDENTITY.as_bytes());
                body
            }
            other => {
                return Err(protocol(format!(
                    "the server proposed EAP type {other:?}, not PEAP"
                )))
            }
        };
        Ok(Eap {
            code: RESPONSE,
            identifier: request.identifier,
            body,
        })
    }

    /// The PEAP data (flags and TLS) of the response to a PEAP request's data.
    fn peap(&mut self, data: &[u8], identifier: u8) -> Result<Vec<u8>, Failure> {
        let (&flags, mut rest) = data
            .split_first()
            .ok_or_else(|| protocol("PEAP request without flags"))?;
        if flags & FLAG_START != 0 {
            if self.tls.is_some() {
                return Err(protocol("a second PEAP Start"));
            }
            // PEAPv0 is the only version this peer speaks (and either server): the version bits of every
            // response are 0, whatever the Start offered.
            self.version = 0;
            let name = ServerName::try_from("localhost").map_err(|e| protocol(e.to_string()))?;
            let mut conn = ClientConnection::new(Arc::clone(&self.tls_config), name)
                .map_err(|e| protocol(format!("TLS: {e}")))?;
            self.outgoing.clear();
            self.sent = 0;
            while conn.wants_write() {
                conn.write_tls(&mut self.outgoing)
                    .map_err(|e| protocol(format!("TLS: {e}")))?;
            }
            self.tls = Some(conn);
            return Ok(self.next_fragment());
        }
        if self.tls.is_none() {
            return Err(protocol("PEAP data before the Start"));
        }
        if flags & FLAG_LENGTH != 0 {
            if rest.len() < 4 {
                return Err(protocol("PEAP length flag without a length"));
            }
            rest = &rest[4..];
        }
        if rest.is_empty() && flags & FLAG_MORE == 0 {
            // The server acknowledges a fragment of ours.
            if self.sent < self.outgoing.len() {
                return Ok(self.next_fragment());
            }
            return Err(protocol(
                "an empty PEAP request with nothing of ours pending",
            ));
        }
        if self.incoming.len() + rest.len() > MAX_MESSAGE {
            return Err(protocol("the server's TLS message is too long"));
        }
        self.incoming.extend_from_slice(rest);
        if flags & FLAG_MORE != 0 {
            return Ok(vec![self.version]);
        }
        let message = std::mem::take(&mut self.incoming);
        let plain = {
            let conn = self.tls.as_mut().ok_or_else(|| protocol("no TLS"))?;
            let mut input = &message[..];
            while !input.is_empty() {
                let n = conn
                    .read_tls(&mut input)
                    .map_err(|e| protocol(format!("TLS: {e}")))?;
                conn.process_new_packets()
                    .map_err(|e| protocol(format!("TLS: {e}")))?;
                if n == 0 {
                    break;
                }
            }
            let mut plain = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match conn.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => plain.extend_from_slice(&buf[..n]),
                    Err(_) => break,
                }
            }
            plain
        };
        if !plain.is_empty() {
            let answer = self.inner(&plain, identifier)?;
            let conn = self.tls.as_mut().ok_or_else(|| protocol("no TLS"))?;
            conn.writer()
                .write_all(&answer)
                .map_err(|e| protocol(format!("TLS: {e}")))?;
        }
        let conn = self.tls.as_mut().ok_or_else(|| protocol("no TLS"))?;
        self.outgoing.clear();
        self.sent = 0;
        while conn.wants_write() {
            conn.write_tls(&mut self.outgoing)
                .map_err(|e| protocol(format!("TLS: {e}")))?;
        }
        if self.outgoing.is_empty() {
            // Nothing to say (the server's Finished): an empty response acknowledges it.
            return Ok(vec![self.version]);
        }
        Ok(self.next_fragment())
    }

    /// The next fragment of our outgoing TLS message.
    fn next_fragment(&mut self) -> Vec<u8> {
        let total = self.outgoing.len();
        let left = total - self.sent;
        let chunk = left.min(FRAGMENT);
        let more = chunk < left;
        let mut out = Vec::with_capacity(chunk + 5);
        if more && self.sent == 0 {
            out.push(self.version | FLAG_LENGTH | FLAG_MORE);
            out.extend_from_slice(&(total as u32).to_be_bytes());
        } else if more {
            out.push(self.version | FLAG_MORE);
        } else {
            out.push(self.version);
        }
        out.extend_from_slice(&self.outgoing[self.sent..self.sent + chunk]);
        self.sent += chunk;
        out
    }

    /// The answer, to go through the tunnel, to one inner packet. PEAPv0 leaves the EAP header off inner
    /// packets except Extensions (the Result TLV); a header sent anyway is understood.
    fn inner(&mut self, plain: &[u8], outer_id: u8) -> Result<Vec<u8>, Failure> {
        let full = plain.len() >= 5
            && plain[0] == REQUEST
            && usize::from(u16::from_be_bytes([plain[2], plain[3]])) == plain.len();
        let (id, body) = if full {
            (plain[1], &plain[4..])
        } else {
            (outer_id, plain)
        };
        match (body.first().copied(), &self.inner) {
            (Some(method::IDENTITY), Inner::Identity) => {
                self.inner = Inner::Challenge;
                let mut out = vec![method::IDENTITY];
                out.extend_from_slice(self.user.as_bytes());
                Ok(out)
            }
            (Some(method::MSCHAPV2), Inner::Challenge) => self.mschapv2_response(body),
            (Some(method::MSCHAPV2), Inner::Success(expected)) => {
                // Success: type, opcode 3, ms-id, ms-length(2), "S=<40 hex> M=…".
                match body.get(1) {
                    Some(3) => {}
                    Some(4) => {
                        // MSCHAPv2 Failure (E=691: wrong password): acknowledge it like wpa_supplicant; the
                        // server ends the conversation with a reject.
                        self.inner = Inner::Failed;
                        return Ok(vec![method::MSCHAPV2, 4]);
                    }
                    other => {
                        return Err(protocol(format!(
                            "MSCHAPv2 opcode {other:?} after our response"
                        )))
                    }
                }
                let message = body.get(5..).unwrap_or_default();
                let said = message.get(..42).unwrap_or_default();
                if !said.eq_ignore_ascii_case(expected.as_bytes()) {
                    return Err(protocol(
                        "the MSCHAPv2 Authenticator Response is wrong: the server does not know the password",
                    ));
                }
                self.inner = Inner::Result;
                Ok(vec![method::MSCHAPV2, 3])
            }
            (Some(method::EXTENSIONS), stage) => {
                let ok = result_tlv(&body[1..])
                    .ok_or_else(|| protocol("Extensions request without a Result TLV"))?;
                if ok && *stage != Inner::Result {
                    return Err(protocol(format!(
                        "a Result TLV saying success in stage {stage:?}"
                    )));
                }
                // A failure (FreeRADIUS's answer to a wrong password) is agreed to, as wpa_supplicant does; the
                // server ends the conversation with a reject.
                self.inner = if ok { Inner::Done } else { Inner::Failed };
                Ok(vec![
                    RESPONSE,
                    id,
                    0,
                    11,
                    method::EXTENSIONS,
                    0x80,
                    0x03,
                    0x00,
                    0x02,
                    0x00,
                    if ok { 1 } else { 2 },
                ])
            }
            (t, stage) => Err(protocol(format!("inner EAP type {t:?} in stage {stage:?}"))),
        }
    }

    /// The MSCHAPv2 Response to a Challenge (type, opcode 1, ms-id, ms-length(2), 16, challenge(16), name…).
    fn mschapv2_response(&mut self, body: &[u8]) -> Result<Vec<u8>, Failure> {
        if body.len() < 22 || body[1] != 1 || body[5] != 16 {
            return Err(protocol("malformed MSCHAPv2 Challenge"));
        }
        let ms_id = body[2];
        let mut challenge = [0u8; 16];
        challenge.copy_from_slice(&body[6..22]);
        let mut peer_challenge = [0u8; 16];
        aws_lc_rs::rand::fill(&mut peer_challenge)
            .map_err(|_| protocol("no randomness for the peer challenge"))?;
        let nt = nt_response(&challenge, &peer_challenge, self.user, &self.nt);
        let expected = verify(
            &MsChapV2Proof {
                authenticator_challenge: challenge,
                peer_challenge,
                nt_response: nt,
                peer_name: self.user.to_string(),
            },
            &self.nt,
        )
        .ok_or_else(|| protocol("our own NT-Response does not verify"))?;
        // type, opcode 2, ms-id, ms-length(2), value-size 49, peer challenge, 8 reserved, NT-Response, flags, name.
        let mut out = vec![method::MSCHAPV2, 2, ms_id, 0, 0, 49];
        out.extend_from_slice(&peer_challenge);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&nt);
        out.push(0);
        out.extend_from_slice(self.user.as_bytes());
        let ms_len = (out.len() - 1) as u16;
        out[3..5].copy_from_slice(&ms_len.to_be_bytes());
        self.inner = Inner::Success(expected.authenticator_response);
        Ok(out)
    }

    /// The checks of an Access-Accept: EAP-Success, the inner method finished, and MS-MPPE keys that are the
    /// MSK of this TLS session (RFC 5216 §2.3 for TLS 1.2, RFC 9427 for TLS 1.3).
    fn accepted(
        &self,
        reply: &Packet,
        secret: &[u8],
        request_authenticator: &[u8; 16],
        round_trips: u32,
    ) -> Result<Negotiated, Failure> {
        match Eap::from_radius(reply) {
            Some(Ok(e)) if e.code == SUCCESS => {}
            _ => return Err(protocol("Access-Accept without EAP-Success")),
        }
        if self.inner != Inner::Done {
            return Err(protocol(format!(
                "Access-Accept before the inner method finished ({:?})",
                self.inner
            )));
        }
        let conn = self.tls.as_ref().ok_or_else(|| protocol("no TLS"))?;
        let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        let mut material = [0u8; 128];
        let exported = if tls13 {
            conn.export_keying_material(
                &mut material,
                b"EXPORTER_EAP_TLS_Key_Material",
                Some(&[method::PEAP]),
            )
        } else {
            conn.export_keying_material(&mut material, b"client EAP encryption", None)
        };
        exported.map_err(|e| Failure::Keys(format!("no MSK: {e}")))?;
        for (vendor_type, name, expected) in [
            (MS_MPPE_RECV_KEY, "MS-MPPE-Recv-Key", &material[..32]),
            (MS_MPPE_SEND_KEY, "MS-MPPE-Send-Key", &material[32..64]),
        ] {
            let hidden = reply
                .vendor(MICROSOFT, vendor_type)
                .ok_or_else(|| Failure::Keys(format!("no {name}")))?;
            let key = salt_decrypt(secret, request_authenticator, hidden)
                .map_err(|e| Failure::Keys(format!("{name}: {e}")))?;
            if key.get(..32) != Some(expected) {
                return Err(Failure::Keys(format!("{name} differs from the MSK")));
            }
        }
        let suite = conn.negotiated_cipher_suite();
        Ok(Negotiated {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
                other => format!("{other:?}"),
            },
            cipher: suite.map_or_else(|| "?".into(), |s| format!("{:?}", s.suite())),
            group: conn
                .negotiated_key_exchange_group()
                .map_or_else(|| "?".into(), |g| format!("{:?}", g.name())),
            round_trips,
        })
    }
}

/// The status of the Result TLV among `tlvs` (flags+type(2), length(2), value): `Some(true)` for success.
fn result_tlv(mut tlvs: &[u8]) -> Option<bool> {
    while tlvs.len() >= 4 {
        let typ = u16::from_be_bytes([tlvs[0], tlvs[1]]) & 0x3fff;
        let len = usize::from(u16::from_be_bytes([tlvs[2], tlvs[3]]));
        let value = tlvs.get(4..4 + len)?;
        if typ == 3 {
            return Some(value == [0, 1]);
        }
        tlvs = &tlvs[4 + len..];
    }
    None
}
