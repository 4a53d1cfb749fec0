//! EAP over RADIUS (RFC 3579): the conversations that carry PEAP-MSCHAPv2, EAP-TTLS (PAP, MS-CHAPv2 or
//! EAP-MSCHAPv2 inside) and EAP-TLS for WPA2/WPA3-Enterprise.
//!
//! A conversation starts with an EAP-Response/Identity and no State. Stratus proposes the first EAP method the
//! NAS profile allows (in the profile's order); a NAK may pick another allowed one. From then on every
//! Access-Challenge carries a State naming the conversation, every request an EAP identifier one higher, and a
//! response must answer the last request of the same conversation from the same NAS — anything else ends it
//! with Access-Reject and EAP-Failure. The table is bounded; a conversation lives
//! [`CONVERSATION_IDLE`] between messages and [`MAX_ROUNDS`] round trips at most, so a handshake that never
//! finishes only holds its slot for seconds.
//!
//! Every decision about the user is the core's ([`core_directory::Directory::authenticate`] with a password,
//! an MS-CHAPv2 proof or a verified certificate). MFA per method, as decided for Stratus:
//! - EAP-TTLS/PAP: when the profile's MFA mode is not off, the inner password may end in `,123456`; a user who
//!   must give a code and did not is refused with an event saying how.
//! - PEAP-MSCHAPv2 and EAP-TTLS/MSCHAPv2 (either form) cannot carry a code: users who would be challenged are refused
//!   (`MfaNotPossible`); users the mode lets through without a code (enrolment period, RequireEnrolledOnly
//!   without TOTP, Off) pass.
//! - EAP-TLS: the certificate is the possession factor, so no code is asked.
//!
//! Inner identities (PEAP's inner Identity, TTLS's User-Name AVP) go through the profile's realm rule
//! ([`core_directory::model::RealmRule`]) before the lookup; the outer identity is only a routing hint and is not
//! looked up. MS-CHAPv2 hashes the name as sent without a `DOMAIN\` prefix, whatever the rule.
//!
//! # Layout
//! [`packet`]: EAP packets in RADIUS; [`tls`]: rustls in memory and the EAP-TLS framing; [`peap`]: PEAPv0 and
//! inner MSCHAPv2; [`ttls`]: Diameter AVPs of TTLS; `ttls_login.rs`: TTLS's inner methods (PAP, MS-CHAPv2 as
//! AVPs, EAP-MSCHAPv2 in EAP-Message AVPs); [`certificate`]: client certificate to user name.

pub mod certificate;
pub mod packet;
pub mod peap;
pub mod tls;
pub mod ttls;
mod ttls_login;

use crate::clients::Client;
use crate::Shared;
use core_directory::model::{RadiusMethod, Resource};
use core_directory::{AuthGrant, AuthOutcome, AuthRequest, Credential, Id, Service};
use packet::{method, Eap, RESPONSE};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tls::{Input, Tunnel};

/// How long a conversation waits for the peer's next message.
pub const CONVERSATION_IDLE: Duration = Duration::from_secs(30);
/// Round trips one conversation may take (a PEAP login takes about ten).
pub const MAX_ROUNDS: u32 = 64;

/// The TLS configurations of the EAP methods, built by the binary from the `[tls]` certificate.
#[derive(Clone)]
pub struct EapTls {
    /// PEAP and EAP-TTLS: server certificate only.
    pub tunnel: Arc<rustls::ServerConfig>,
    /// EAP-TLS: client certificates from the configured CA (and CRLs) required; `None` when no CA is set.
    pub client_certificates: Option<Arc<rustls::ServerConfig>>,
    /// Which part of a client certificate names the user.
    pub identity: certificate::IdentityRule,
    /// TLS data per EAP request.
    pub fragment_size: usize,
}

/// What the NAS is told.
pub enum EapAnswer {
    Challenge {
        state: [u8; 16],
        eap: Eap,
    },
    Accept {
        grant: Box<AuthGrant>,
        session: String,
        eap: Eap,
        msk: Option<[u8; 64]>,
    },
    Reject {
        eap: Eap,
    },
}

/// The EAP methods Stratus offers, as profile settings and EAP types.
fn eap_type(m: RadiusMethod) -> Option<u8> {
    match m {
        RadiusMethod::Pap | RadiusMethod::Mschapv2 => None,
        RadiusMethod::PeapMschapv2 => Some(method::PEAP),
        RadiusMethod::EapTtlsPap | RadiusMethod::EapTtlsMschapv2 => Some(method::TTLS),
        RadiusMethod::EapTls => Some(method::TLS),
    }
}

fn method_name(t: u8) -> &'static str {
    match t {
        method::PEAP => "PEAP-MSCHAPv2",
        method::TTLS => "EAP-TTLS",
        method::TLS => "EAP-TLS",
        _ => "EAP",
    }
}

/// Where a conversation is.
enum Stage {
    /// A method was proposed (Start sent); the peer answers in it or NAKs.
    Proposed(u8),
    Tls(Box<TlsStage>),
}

struct TlsStage {
    method: u8,
    tunnel: Tunnel,
    inner: Inner,
}

/// The inner state of a TLS-based method.
enum Inner {
    Handshake,
    /// Our last handshake flight is out. PEAP and EAP-TLS peers acknowledge it; TTLS peers send their AVPs.
    Established {
        grant: Option<Box<AuthGrant>>,
    },
    PeapIdentity,
    PeapChallenge {
        identity: String,
        challenge: [u8; 16],
        ms_id: u8,
    },
    PeapSuccess {
        grant: Box<AuthGrant>,
    },
    PeapResult {
        grant: Box<AuthGrant>,
    },
    /// MSCHAPv2 Failure sent; the peer acknowledges it, then EAP-Failure.
    PeapFailure,
    /// TTLS: MS-CHAP2-Success sent in the tunnel; the peer's empty answer brings the Accept.
    TtlsMsChapSuccess {
        grant: Box<AuthGrant>,
    },
    /// TTLS with EAP-MSCHAPv2 inside: the Challenge went out in an EAP-Message AVP.
    TtlsEapChallenge(Box<ttls_login::EapChallenge>),
    /// TTLS with EAP-MSCHAPv2 inside: Success sent; the peer's acknowledgement brings the Accept.
    TtlsEapSuccess {
        grant: Box<AuthGrant>,
    },
    /// TTLS with EAP-MSCHAPv2 inside: Failure sent; whatever the peer answers, EAP-Failure follows.
    TtlsEapFailure,
}

struct Conversation {
    profile: Id,
    nas: IpAddr,
    /// Identifier of the last request sent: the next response must carry it.
    identifier: u8,
    session: String,
    /// The Calling-Station-Id of the conversation's first request (the source failures are counted against).
    station: Option<String>,
    touched: Instant,
    rounds: u32,
    stage: Stage,
}

/// The bounded table of conversations by State.
pub struct Conversations {
    max: usize,
    table: Mutex<HashMap<[u8; 16], Conversation>>,
}

impl Conversations {
    pub fn new(max: usize) -> Self {
        Conversations {
            max,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, state: &[u8]) -> Option<Conversation> {
        let key: [u8; 16] = state.try_into().ok()?;
        let c = self
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)?;
        (c.touched.elapsed() < CONVERSATION_IDLE).then_some(c)
    }

    /// Keep a conversation under its State; `false` when the table is full of live ones. A conversation already
    /// under way (`new` false) is always kept, so a full table refuses new logins, never half-finished ones.
    fn keep(&self, state: [u8; 16], mut c: Conversation, new: bool) -> bool {
        c.touched = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if new && t.len() >= self.max {
            t.retain(|_, v| v.touched.elapsed() < CONVERSATION_IDLE);
            if t.len() >= self.max {
                return false;
            }
        }
        t.insert(state, c);
        true
    }

    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The end of a conversation, with the reason recorded when it is a refusal Stratus decided itself.
enum Step {
    Request(Vec<u8>),
    Accept(Box<AuthGrant>),
    /// Refused by the core (already recorded).
    Denied,
    /// Refused here: recorded with this reason.
    Refuse(String),
    /// Refused here for a user named inside the tunnel: recorded under that user.
    RefuseUser {
        why: String,
        user: String,
    },
}

/// Answer an Access-Request that carries EAP-Message.
pub(crate) async fn handle(
    shared: &Shared,
    client: &Client,
    req: &crate::packet::Packet,
    eap: Eap,
    src: SocketAddr,
    username: &str,
) -> EapAnswer {
    let reject = |id: u8| EapAnswer::Reject {
        eap: Eap::failure(id),
    };
    if eap.code != RESPONSE {
        crate::access::refuse(
            shared,
            client,
            src,
            Some(username),
            "EAP packet is not a Response",
        )
        .await;
        return reject(eap.identifier);
    }
    let Some(tls) = shared.eap.as_ref() else {
        crate::access::refuse(
            shared,
            client,
            src,
            Some(username),
            "EAP is not configured on this server",
        )
        .await;
        return reject(eap.identifier);
    };
    let new = req.get(crate::packet::attr::STATE).is_none();
    let mut conv = match req.get(crate::packet::attr::STATE) {
        None => match start(shared, client, src, &eap) {
            Ok(c) => c,
            Err(why) => {
                crate::access::refuse(shared, client, src, Some(username), &why).await;
                return reject(eap.identifier);
            }
        },
        Some(state) => match shared.conversations.take(state) {
            Some(c) if c.profile == client.profile.id && c.nas == src.ip() => c,
            Some(_) => {
                crate::access::refuse(
                    shared,
                    client,
                    src,
                    Some(username),
                    "EAP State was issued to another NAS",
                )
                .await;
                return reject(eap.identifier);
            }
            None => {
                crate::access::refuse(
                    shared,
                    client,
                    src,
                    Some(username),
                    "unknown or expired EAP State",
                )
                .await;
                return reject(eap.identifier);
            }
        },
    };
    if conv.station.is_none() {
        conv.station = req.text(crate::packet::attr::CALLING_STATION_ID);
    }
    let step = if conv.rounds == 0 {
        conv.rounds = 1;
        Step::Request(Eap::request(conv.identifier, proposed(&conv), &start_data()).body)
    } else {
        advance(shared, tls, client, src, &mut conv, &eap).await
    };
    match step {
        Step::Request(body) => {
            let mut state = [0u8; 16];
            if aws_lc_rs::rand::fill(&mut state).is_err() {
                return reject(eap.identifier);
            }
            let eap = Eap {
                code: packet::REQUEST,
                identifier: conv.identifier,
                body,
            };
            if !shared.conversations.keep(state, conv, new) {
                crate::access::refuse(
                    shared,
                    client,
                    src,
                    Some(username),
                    "EAP conversation table is full",
                )
                .await;
                return reject(eap.identifier);
            }
            EapAnswer::Challenge { state, eap }
        }
        Step::Accept(grant) => {
            let msk = match &conv.stage {
                Stage::Tls(t) => msk(t),
                Stage::Proposed(_) => None,
            };
            EapAnswer::Accept {
                grant,
                session: conv.session,
                eap: Eap::success(eap.identifier),
                msk,
            }
        }
        Step::Denied => reject(eap.identifier),
        Step::Refuse(why) => {
            crate::access::refuse(shared, client, src, Some(username), &why).await;
            reject(eap.identifier)
        }
        Step::RefuseUser { why, user } => {
            crate::access::refuse(shared, client, src, Some(&user), &why).await;
            reject(eap.identifier)
        }
    }
}

fn start_data() -> Vec<u8> {
    vec![tls::FLAG_START]
}

fn proposed(c: &Conversation) -> u8 {
    match &c.stage {
        Stage::Proposed(m) => *m,
        Stage::Tls(t) => t.method,
    }
}

/// A new conversation from an EAP-Response/Identity.
fn start(
    shared: &Shared,
    client: &Client,
    src: SocketAddr,
    eap: &Eap,
) -> Result<Conversation, String> {
    if eap.method() != Some(method::IDENTITY) {
        return Err("EAP conversation must begin with an Identity response".into());
    }
    let first = allowed(shared, client)
        .first()
        .copied()
        .ok_or_else(|| "no EAP method is allowed on this RADIUS server".to_string())?;
    Ok(Conversation {
        profile: client.profile.id.clone(),
        nas: src.ip(),
        identifier: eap.identifier.wrapping_add(1),
        session: crate::access::new_session_id(),
        station: None,
        touched: Instant::now(),
        rounds: 0,
        stage: Stage::Proposed(first),
    })
}

/// The EAP methods this profile allows and this server can run, in the profile's order.
fn allowed(shared: &Shared, client: &Client) -> Vec<u8> {
    let has_client_ca = shared
        .eap
        .as_ref()
        .is_some_and(|t| t.client_certificates.is_some());
    let mut out: Vec<u8> = Vec::new();
    for t in client.profile.methods.iter().filter_map(|m| eap_type(*m)) {
        if (t != method::TLS || has_client_ca) && !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

async fn advance(
    shared: &Shared,
    tls: &EapTls,
    client: &Client,
    src: SocketAddr,
    conv: &mut Conversation,
    eap: &Eap,
) -> Step {
    if eap.identifier != conv.identifier {
        return Step::Refuse(format!(
            "EAP response {} does not answer request {}",
            eap.identifier, conv.identifier
        ));
    }
    conv.rounds += 1;
    if conv.rounds > MAX_ROUNDS {
        return Step::Refuse("EAP conversation took too many round trips".into());
    }
    conv.identifier = conv.identifier.wrapping_add(1);
    if let Stage::Proposed(m) = conv.stage {
        match eap.method() {
            Some(method::NAK) => {
                let ours = allowed(shared, client);
                return match eap.data().iter().find(|t| ours.contains(t)) {
                    Some(&pick) => {
                        conv.stage = Stage::Proposed(pick);
                        Step::Request(Eap::request(conv.identifier, pick, &start_data()).body)
                    }
                    None => Step::Refuse(format!(
                        "the peer wants EAP types {:?}; this RADIUS server allows {}",
                        eap.data(),
                        ours.iter()
                            .map(|t| method_name(*t))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
            }
            Some(t) if t == m => {
                let config = match m {
                    method::TLS => tls.client_certificates.clone(),
                    _ => Some(Arc::clone(&tls.tunnel)),
                };
                let Some(config) = config else {
                    return Step::Refuse("EAP-TLS has no client CA configured".into());
                };
                match Tunnel::new(config, tls.fragment_size) {
                    Ok(tunnel) => {
                        conv.stage = Stage::Tls(Box::new(TlsStage {
                            method: m,
                            tunnel,
                            inner: Inner::Handshake,
                        }))
                    }
                    Err(e) => return Step::Refuse(e.to_string()),
                }
            }
            other => {
                return Step::Refuse(format!(
                    "the peer answered {} with EAP type {other:?}",
                    method_name(m)
                ))
            }
        }
    }
    let Stage::Tls(stage) = &mut conv.stage else {
        return Step::Refuse("EAP conversation in no method".into());
    };
    if eap.method() != Some(stage.method) {
        return Step::Refuse(format!(
            "method switched from {} to type {:?} mid-conversation",
            method_name(stage.method),
            eap.method()
        ));
    }
    let ctx = Context {
        shared,
        tls,
        client,
        src,
        session: &conv.session,
        station: conv.station.as_deref(),
        identifier: conv.identifier,
    };
    tls_step(&ctx, stage, eap.data()).await
}

/// What a TLS step needs to know about its request.
struct Context<'a> {
    shared: &'a Shared,
    tls: &'a EapTls,
    client: &'a Client,
    src: SocketAddr,
    session: &'a str,
    station: Option<&'a str>,
    /// Identifier of the request about to be sent.
    identifier: u8,
}

async fn tls_step(ctx: &Context<'_>, stage: &mut TlsStage, data: &[u8]) -> Step {
    let input = match stage.tunnel.receive(data) {
        Ok(i) => i,
        Err(e) => return Step::Refuse(format!("{}: {e}", method_name(stage.method))),
    };
    match input {
        Input::Fragment => return Step::Request(typed(stage, stage.tunnel.ack())),
        Input::Ack if stage.tunnel.has_pending() => {
            let frag = stage.tunnel.next_fragment();
            return Step::Request(typed(stage, frag));
        }
        Input::Ack => {
            if let Some(step) = acknowledged(stage) {
                return step;
            }
        }
        Input::Message => {
            if let Some(step) = after_message(ctx, stage).await {
                return step;
            }
        }
    }
    stage.tunnel.flush();
    if stage.tunnel.has_pending() {
        let frag = stage.tunnel.next_fragment();
        return Step::Request(typed(stage, frag));
    }
    if stage.method == method::TTLS && matches!(stage.inner, Inner::Established { .. }) {
        // TLS 1.3: the peer's Finished ends the handshake and the server has nothing left to say; an empty
        // request asks for the inner credentials.
        return Step::Request(typed(stage, stage.tunnel.ack()));
    }
    Step::Refuse(format!(
        "{}: nothing to send and nothing decided (handshake stalled)",
        method_name(stage.method)
    ))
}

fn typed(stage: &TlsStage, data: Vec<u8>) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 1);
    body.push(stage.method);
    body.extend_from_slice(&data);
    body
}

/// The peer acknowledged our last flight with nothing of its own.
fn acknowledged(stage: &mut TlsStage) -> Option<Step> {
    match std::mem::replace(&mut stage.inner, Inner::Handshake) {
        Inner::Established { grant: Some(grant) } if stage.method == method::TLS => {
            Some(Step::Accept(grant))
        }
        Inner::TtlsMsChapSuccess { grant } if stage.method == method::TTLS => {
            Some(Step::Accept(grant))
        }
        Inner::Established { grant: None } if stage.method == method::PEAP => {
            if let Err(e) = stage.tunnel.write_plaintext(&peap::identity_request()) {
                return Some(Step::Refuse(e.to_string()));
            }
            stage.inner = Inner::PeapIdentity;
            None
        }
        other => {
            stage.inner = other;
            Some(Step::Refuse(format!(
                "{}: unexpected empty response",
                method_name(stage.method)
            )))
        }
    }
}

/// A complete TLS message went through rustls: advance the handshake or the inner method.
async fn after_message(ctx: &Context<'_>, stage: &mut TlsStage) -> Option<Step> {
    if matches!(stage.inner, Inner::Handshake) && !stage.tunnel.is_handshaking() {
        let grant = if stage.method == method::TLS {
            match certificate_login(ctx, stage).await {
                Ok(g) => Some(g),
                Err(step) => return Some(step),
            }
        } else {
            None
        };
        if stage.method == method::TLS && stage.tunnel.is_tls13() {
            // RFC 9190 §2.5: one octet of application data says no more handshake messages will follow.
            if let Err(e) = stage.tunnel.write_plaintext(&[0]) {
                return Some(Step::Refuse(e.to_string()));
            }
        }
        stage.inner = Inner::Established { grant };
        if stage.method == method::PEAP && stage.tunnel.is_tls13() {
            // TLS 1.3 has no server Finished left to acknowledge: the inner method starts at once.
            if let Err(e) = stage.tunnel.write_plaintext(&peap::identity_request()) {
                return Some(Step::Refuse(e.to_string()));
            }
            stage.inner = Inner::PeapIdentity;
        }
    }
    let plain = stage.tunnel.read_plaintext();
    if plain.is_empty() {
        // An acknowledgement sent as an empty TLS record rather than an empty EAP-TTLS message.
        if matches!(stage.inner, Inner::TtlsMsChapSuccess { .. }) {
            return acknowledged(stage);
        }
        return None;
    }
    match stage.method {
        method::TTLS => ttls_login::step(ctx, stage, &plain).await,
        method::PEAP => peap_step(ctx, stage, &plain).await,
        _ => Some(Step::Refuse("EAP-TLS peer sent application data".into())),
    }
}

async fn login(
    ctx: &Context<'_>,
    username: &str,
    credential: Credential,
    otp: Option<String>,
) -> Result<Box<AuthGrant>, Step> {
    let outcome = ctx
        .shared
        .dir
        .authenticate(AuthRequest {
            username: username.to_string(),
            credential,
            otp,
            service: Service::Radius,
            resource: Some(Resource::Radius(ctx.client.profile.id.clone())),
            client_ip: Some(ctx.src.ip()),
            session: Some(ctx.session.to_string()),
            station: ctx.station.map(str::to_string),
        })
        .await;
    match outcome {
        Ok(AuthOutcome::Allow(g)) => Ok(Box::new(g)),
        Ok(AuthOutcome::Deny(_)) => Err(Step::Denied),
        Ok(AuthOutcome::NeedMfa(_)) => Err(Step::RefuseUser {
            why: "MFA is required: inside EAP-TTLS give the password as password,<6-digit code>"
                .into(),
            user: username.to_string(),
        }),
        Err(e) => Err(Step::Refuse(format!("directory error: {e}"))),
    }
}

async fn certificate_login(ctx: &Context<'_>, stage: &TlsStage) -> Result<Box<AuthGrant>, Step> {
    let Some(cert) = stage
        .tunnel
        .connection()
        .peer_certificates()
        .and_then(|c| c.first())
    else {
        return Err(Step::Refuse("EAP-TLS peer sent no certificate".into()));
    };
    let snap = ctx.shared.dir.snapshot();
    let (username, subject) = match certificate::user_of(cert, ctx.tls.identity, &snap) {
        Ok(x) => x,
        Err(e) => return Err(Step::Refuse(format!("EAP-TLS: {e}"))),
    };
    login(ctx, &username, Credential::Certificate { subject }, None).await
}

/// The name a profile's realm rule makes of an inner identity, or the refusal to record under the name sent.
fn inner_user(ctx: &Context<'_>, sent: &str) -> Result<String, Step> {
    ctx.shared
        .dir
        .radius_user_name(&ctx.client.profile.realm, sent)
        .map_err(|why| Step::RefuseUser {
            why: why.to_string(),
            user: sent.to_string(),
        })
}

async fn peap_step(ctx: &Context<'_>, stage: &mut TlsStage, plain: &[u8]) -> Option<Step> {
    let inner = peap::strip_header(plain);
    let next = match std::mem::replace(&mut stage.inner, Inner::Handshake) {
        Inner::PeapIdentity => match peap::identity(inner) {
            Ok(identity) => {
                let mut challenge = [0u8; 16];
                let mut ms_id = [0u8; 1];
                if aws_lc_rs::rand::fill(&mut challenge).is_err()
                    || aws_lc_rs::rand::fill(&mut ms_id).is_err()
                {
                    return Some(Step::Refuse("no randomness".into()));
                }
                (
                    peap::challenge_request(ms_id[0], &challenge),
                    Inner::PeapChallenge {
                        identity,
                        challenge,
                        ms_id: ms_id[0],
                    },
                )
            }
            Err(e) => return Some(Step::Refuse(format!("PEAP: {e}"))),
        },
        Inner::PeapChallenge {
            identity,
            challenge,
            ms_id,
        } => {
            let proof = match peap::response(inner, ms_id, &challenge) {
                Ok(p) => p,
                Err(e) => return Some(Step::Refuse(format!("PEAP: {e}"))),
            };
            let user = match inner_user(ctx, &identity) {
                Ok(u) => u,
                Err(step) => return Some(step),
            };
            match login(ctx, &user, Credential::MsChapV2(proof), None).await {
                Ok(grant) => {
                    let Some(s) = grant.authenticator_response.clone() else {
                        return Some(Step::Refuse("PEAP: no authenticator response".into()));
                    };
                    (
                        peap::success_request(ms_id, &s),
                        Inner::PeapSuccess { grant },
                    )
                }
                // A refusal is told in MSCHAPv2 terms first (E=691), as Windows expects before EAP-Failure.
                Err(Step::Denied) => (peap::failure_request(ms_id), Inner::PeapFailure),
                Err(step) => return Some(step),
            }
        }
        // Whatever the peer answers to our MSCHAPv2 Failure, the conversation ends refused (the core has
        // already recorded why).
        Inner::PeapFailure => return Some(Step::Denied),
        Inner::PeapSuccess { grant } => match peap::success_ack(inner) {
            Ok(()) => (
                peap::result_request(ctx.identifier),
                Inner::PeapResult { grant },
            ),
            Err(e) => return Some(Step::Refuse(format!("PEAP: {e}"))),
        },
        Inner::PeapResult { grant } => {
            return Some(match peap::result_response(plain) {
                Ok(()) => Step::Accept(grant),
                Err(e) => Step::Refuse(format!("PEAP: {e}")),
            })
        }
        Inner::Handshake
        | Inner::Established { .. }
        | Inner::TtlsMsChapSuccess { .. }
        | Inner::TtlsEapChallenge(_)
        | Inner::TtlsEapSuccess { .. }
        | Inner::TtlsEapFailure => {
            return Some(Step::Refuse(
                "PEAP: data in the tunnel before the inner method".into(),
            ))
        }
    };
    let (bytes, inner_state) = next;
    stage.inner = inner_state;
    if let Err(e) = stage.tunnel.write_plaintext(&bytes) {
        return Some(Step::Refuse(e.to_string()));
    }
    None
}

/// The MSK of a finished TLS-based method (RFC 5216 §2.3, RFC 5281 §8, RFC 9190 §2.3).
fn msk(stage: &TlsStage) -> Option<[u8; 64]> {
    let t = &stage.tunnel;
    if t.is_tls13() {
        let context = [stage.method];
        t.export_msk(b"EXPORTER_EAP_TLS_Key_Material", Some(&context))
    } else if stage.method == method::TTLS {
        t.export_msk(b"ttls keying material", None)
    } else {
        t.export_msk(b"client EAP encryption", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation() -> Conversation {
        Conversation {
            profile: Id::generate(),
            nas: "127.0.0.1".parse().unwrap(),
            identifier: 1,
            session: "s".into(),
            station: None,
            touched: Instant::now(),
            rounds: 1,
            stage: Stage::Proposed(method::PEAP),
        }
    }

    /// Every decoder of network input, fed pseudo-random bytes (a fixed seed, so a failure repeats): none may
    /// panic, whatever it is given.
    #[test]
    fn decoders_survive_random_input() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if len >= 4 && next() % 2 == 0 {
                // Often make the length field agree, so the decoders get past it.
                data[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            }
            let _ = crate::packet::Packet::decode(&data);
            let _ = packet::Eap::decode(&data);
            let _ = ttls::credentials(&data);
            let _ = peap::identity(&data);
            let _ = peap::response(&data, data.get(2).copied().unwrap_or(0), &[0; 16]);
            let _ = peap::result_response(&data);
            let _ = peap::success_ack(&data);
            if let Ok(p) = crate::packet::Packet::decode(&data) {
                let _ = p.vendor(311, 16);
                let _ = crate::crypt::unhide_user_password(b"s", &[0; 16], &data);
                let _ = crate::crypt::salt_decrypt(b"s", &[0; 16], &data);
                let _ = crate::mschap::read(&p, "u");
            }
        }
    }

    #[test]
    fn the_conversation_table_is_bounded_and_a_state_is_taken_once() {
        let t = Conversations::new(2);
        assert!(
            t.keep([4; 16], conversation(), false),
            "one under way is kept"
        );
        assert!(t.take(&[4; 16]).is_some());
        assert!(t.keep([1; 16], conversation(), true));
        assert!(t.keep([2; 16], conversation(), true));
        assert!(
            !t.keep([3; 16], conversation(), true),
            "a full table of live conversations refuses more"
        );
        assert!(t.take(&[1; 16]).is_some());
        assert!(t.take(&[1; 16]).is_none());
        assert!(t.take(&[9; 3]).is_none());
        assert!(t.keep([3; 16], conversation(), true));
        assert_eq!(t.len(), 2);
    }
}
