//! EAP-TTLS inner methods (RFC 5281 §11.2): what the peer proves inside the tunnel and what Stratus answers.
//!
//! - PAP (§11.2.5): User-Name and User-Password AVPs go to the core; the answer is the Accept or Reject itself.
//! - MS-CHAPv2 (§11.2.4): the challenge is the tunnel's `ttls challenge` keying material; a good response is
//!   answered with an MS-CHAP2-Success AVP, and the peer's empty acknowledgement brings the Accept.
//! - EAP-MSCHAPv2 (§11.2.1, what wpa_supplicant calls `autheap=MSCHAPV2`): whole EAP packets in EAP-Message
//!   AVPs, the same MSCHAPv2 packets PEAP carries but with their EAP headers:
//!   ```text
//!   ← Response/Identity   → MSCHAPv2 Challenge   ← MSCHAPv2 Response (the core checks it)
//!   → MSCHAPv2 Success (S=…) or Failure (E=691)   ← acknowledgement   → Access-Accept / Access-Reject
//!   ```
//!
//! PAP needs the profile method `eap_ttls_pap`; both MS-CHAPv2 forms need `eap_ttls_mschapv2`. The inner name
//! (User-Name AVP or inner Identity) goes through the profile's realm rule; the MS-CHAPv2 hash takes the name as
//! sent without a `DOMAIN\` prefix. The MSK is TTLS's in every case.

use super::packet::{method, Eap, REQUEST, RESPONSE};
use super::ttls::InnerCredentials;
use super::{inner_user, login, peap, ttls, Context, Inner, Step, TlsStage};
use core_directory::model::RadiusMethod;
use core_directory::mschapv2::MsChapV2Proof;
use core_directory::Credential;

/// An EAP-MSCHAPv2 Challenge sent inside the tunnel, waiting for its Response.
pub(super) struct EapChallenge {
    /// The inner identity as sent (events) and the name the realm rule made of it (lookup).
    sent: String,
    user: String,
    challenge: [u8; 16],
    ms_id: u8,
    /// The inner EAP identifier the Response must carry.
    eap_id: u8,
}

/// One message of AVPs from the peer, in whatever inner state the conversation is.
pub(super) async fn step(ctx: &Context<'_>, stage: &mut TlsStage, plain: &[u8]) -> Option<Step> {
    let creds = match ttls::credentials(plain) {
        Ok(c) => c,
        Err(e) => return Some(Step::Refuse(format!("EAP-TTLS: {e}"))),
    };
    if let Some(refusal) = not_allowed(ctx, &creds) {
        return Some(refusal);
    }
    match (std::mem::replace(&mut stage.inner, Inner::Handshake), creds) {
        (Inner::Established { .. }, InnerCredentials::Eap(p)) => eap_identity(ctx, stage, &p),
        (Inner::TtlsEapChallenge(c), InnerCredentials::Eap(p)) => {
            eap_response(ctx, stage, *c, &p).await
        }
        (Inner::TtlsEapSuccess { grant }, InnerCredentials::Eap(p)) => Some(
            match Eap::decode(&p)
                .ok()
                .filter(|e| e.code == RESPONSE)
                .map(|e| peap::success_ack(&e.body))
            {
                Some(Ok(())) => Step::Accept(grant),
                _ => Step::Refuse("EAP-TTLS: expected the MSCHAPv2 success acknowledgement".into()),
            },
        ),
        // Whatever the peer answers to our MSCHAPv2 Failure, the login is refused (the core recorded why).
        (Inner::TtlsEapFailure, _) => Some(Step::Denied),
        (Inner::Established { .. }, creds) => avp_login(ctx, stage, creds).await,
        _ => Some(Step::Refuse(
            "EAP-TTLS: credentials at a point of the conversation that takes none".into(),
        )),
    }
}

/// The refusal when the profile does not allow the inner method the peer chose.
fn not_allowed(ctx: &Context<'_>, creds: &InnerCredentials) -> Option<Step> {
    let (wanted, name) = match creds {
        InnerCredentials::Pap { .. } => (RadiusMethod::EapTtlsPap, "EAP-TTLS/PAP"),
        InnerCredentials::MsChapV2 { .. } | InnerCredentials::Eap(_) => {
            (RadiusMethod::EapTtlsMschapv2, "EAP-TTLS/MSCHAPv2")
        }
    };
    if ctx.client.profile.methods.contains(&wanted) {
        return None;
    }
    let why = format!("{name} is not allowed on this RADIUS server");
    Some(match creds {
        InnerCredentials::Eap(_) => Step::Refuse(why),
        _ => Step::RefuseUser {
            why,
            user: creds.username().to_string(),
        },
    })
}

/// PAP or MS-CHAPv2 as AVPs, in the tunnel's first message.
async fn avp_login(
    ctx: &Context<'_>,
    stage: &mut TlsStage,
    creds: InnerCredentials,
) -> Option<Step> {
    let user = match inner_user(ctx, creds.username()) {
        Ok(u) => u,
        Err(step) => return Some(step),
    };
    match creds {
        InnerCredentials::Pap { password, .. } => {
            let mfa_on = ctx.client.profile.mfa != core_directory::model::RadiusMfaMode::Off;
            let (password, otp) = crate::access::split_otp(mfa_on, password);
            Some(
                match login(ctx, &user, Credential::Password(password), otp).await {
                    Ok(g) => Step::Accept(g),
                    Err(step) => step,
                },
            )
        }
        InnerCredentials::MsChapV2 {
            username,
            challenge,
            response,
        } => mschapv2_avps(ctx, stage, &user, &username, challenge, &response).await,
        InnerCredentials::Eap(_) => Some(Step::Refuse(
            "EAP-TTLS: an EAP packet where AVP credentials were expected".into(),
        )),
    }
}

/// RFC 5281 §11.2.4: check the implicit challenge, then the response; a good one is answered in the tunnel.
async fn mschapv2_avps(
    ctx: &Context<'_>,
    stage: &mut TlsStage,
    user: &str,
    sent_name: &str,
    challenge: [u8; 16],
    response: &[u8; 50],
) -> Option<Step> {
    let Some(implicit) = stage.tunnel.export::<17>(b"ttls challenge") else {
        return Some(Step::Refuse(
            "EAP-TTLS: no keying material for the MS-CHAPv2 challenge".into(),
        ));
    };
    let ident = response[0];
    if implicit[..16] != challenge || implicit[16] != ident {
        return Some(Step::RefuseUser {
            why: "EAP-TTLS/MSCHAPv2: the challenge or ident is not the one derived from the tunnel"
                .into(),
            user: sent_name.to_string(),
        });
    }
    let mut proof = MsChapV2Proof {
        authenticator_challenge: challenge,
        peer_challenge: [0; 16],
        nt_response: [0; 24],
        peer_name: core_directory::realm::mschap_name(sent_name).to_string(),
    };
    proof.peer_challenge.copy_from_slice(&response[2..18]);
    proof.nt_response.copy_from_slice(&response[26..50]);
    let grant = match login(ctx, user, Credential::MsChapV2(proof), None).await {
        Ok(g) => g,
        Err(step) => return Some(step),
    };
    let Some(s) = grant.authenticator_response.as_deref() else {
        return Some(Step::Refuse("EAP-TTLS: no authenticator response".into()));
    };
    if let Err(e) = stage
        .tunnel
        .write_plaintext(&ttls::mschap2_success(ident, s))
    {
        return Some(Step::Refuse(e.to_string()));
    }
    stage.inner = Inner::TtlsMsChapSuccess { grant };
    None
}

/// Send an inner EAP request (type and data in `body`) in an EAP-Message AVP.
fn send_inner(stage: &mut TlsStage, identifier: u8, body: Vec<u8>) -> Option<Step> {
    let packet = Eap {
        code: REQUEST,
        identifier,
        body,
    }
    .encode();
    stage
        .tunnel
        .write_plaintext(&ttls::eap_message(&packet))
        .err()
        .map(|e| Step::Refuse(e.to_string()))
}

/// The inner EAP-Response/Identity: the realm rule, then an MSCHAPv2 Challenge.
fn eap_identity(ctx: &Context<'_>, stage: &mut TlsStage, packet: &[u8]) -> Option<Step> {
    let eap = match Eap::decode(packet) {
        Ok(e) if e.code == RESPONSE && e.method() == Some(method::IDENTITY) => e,
        _ => {
            return Some(Step::Refuse(
                "EAP-TTLS: the inner EAP conversation must begin with an Identity response".into(),
            ))
        }
    };
    let sent = String::from_utf8_lossy(eap.data()).into_owned();
    if sent.is_empty() || sent.len() > 253 {
        return Some(Step::Refuse(
            "EAP-TTLS: inner identity empty or over 253 octets".into(),
        ));
    }
    let user = match inner_user(ctx, &sent) {
        Ok(u) => u,
        Err(step) => return Some(step),
    };
    let (mut challenge, mut ms_id) = ([0u8; 16], [0u8; 1]);
    if aws_lc_rs::rand::fill(&mut challenge).is_err() || aws_lc_rs::rand::fill(&mut ms_id).is_err()
    {
        return Some(Step::Refuse("no randomness".into()));
    }
    let eap_id = eap.identifier.wrapping_add(1);
    if let Some(step) = send_inner(stage, eap_id, peap::challenge_request(ms_id[0], &challenge)) {
        return Some(step);
    }
    stage.inner = Inner::TtlsEapChallenge(Box::new(EapChallenge {
        sent,
        user,
        challenge,
        ms_id: ms_id[0],
        eap_id,
    }));
    None
}

/// The inner MSCHAPv2 Response: the core decides; Success or Failure goes back inside the tunnel.
async fn eap_response(
    ctx: &Context<'_>,
    stage: &mut TlsStage,
    c: EapChallenge,
    packet: &[u8],
) -> Option<Step> {
    let eap = match Eap::decode(packet) {
        Ok(e) if e.code == RESPONSE && e.identifier == c.eap_id => e,
        _ => {
            return Some(Step::RefuseUser {
                why: "EAP-TTLS: the inner EAP response does not answer the MSCHAPv2 challenge"
                    .into(),
                user: c.sent,
            })
        }
    };
    let proof = match peap::response(&eap.body, c.ms_id, &c.challenge) {
        Ok(p) => p,
        Err(e) => {
            return Some(Step::RefuseUser {
                why: format!("EAP-TTLS: {e}"),
                user: c.sent,
            })
        }
    };
    let next_id = c.eap_id.wrapping_add(1);
    match login(ctx, &c.user, Credential::MsChapV2(proof), None).await {
        Ok(grant) => {
            let Some(s) = grant.authenticator_response.clone() else {
                return Some(Step::Refuse("EAP-TTLS: no authenticator response".into()));
            };
            if let Some(step) = send_inner(stage, next_id, peap::success_request(c.ms_id, &s)) {
                return Some(step);
            }
            stage.inner = Inner::TtlsEapSuccess { grant };
            None
        }
        // A refusal is told in MSCHAPv2 terms first (E=691), as with PEAP.
        Err(Step::Denied) => {
            if let Some(step) = send_inner(stage, next_id, peap::failure_request(c.ms_id)) {
                return Some(step);
            }
            stage.inner = Inner::TtlsEapFailure;
            None
        }
        Err(step) => Some(step),
    }
}
