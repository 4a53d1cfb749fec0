//! Access-Request (RFC 2865 §4.1) and Status-Server (RFC 5997) on the authentication port.
//!
//! A conversation is Request → Accept | Reject, or Request → Challenge → Request (with the State) → Accept |
//! Reject. Which one is the core's decision ([`core_directory::Directory::authenticate`] with service RADIUS and
//! the NAS profile as the resource); this module only reads the request and writes the answer:
//! - PAP: User-Password decoded with the shared secret (up to 128 octets). With the profile's `otp_append`, a
//!   password ending in `,` and six digits is split into password and verification code.
//! - MFA by Access-Challenge: State (see [`crate::challenge`]), Reply-Message asking for the code,
//!   Session-Timeout saying how long the code may take; the code comes back in User-Password.
//! - Accept: the groups' reply attributes and a Class naming this login, which the NAS echoes in accounting.
//! - Reject: no reason, unless the profile allows a Reply-Message.
//!
//! - MS-CHAPv2 without EAP ([`crate::mschap`]), when the profile allows `mschapv2`: the core checks the response
//!   against the NT hash; the Accept adds MS-CHAP2-Success and the RFC 3079 MPPE keys, a Reject MS-CHAP-Error.
//!   It cannot carry a TOTP code: a user the profile would challenge is refused (`MfaNotPossible`), since a
//!   NAS that runs MS-CHAPv2 with its client has no way to put a code in front of the user's password.
//! - The profile's realm rule ([`core_directory::model::RealmRule`]) turns User-Name into the name looked up,
//!   for PAP, the Access-Challenge answer and MS-CHAPv2 alike; a refused realm is a Reject whose event says why.
//!
//! Requests with EAP-Message go to [`crate::eap`]; their Accept adds User-Name, EAP-Success and the MS-MPPE
//! keys. CHAP cannot be checked against argon2id hashes and MS-CHAP v1 is not offered; both are refused with an
//! event that says so. Every reply carries the request's Proxy-States ([`Builder::reply_to`]).

use crate::clients::Client;
use crate::crypt;
use crate::dictionary::{Encoded, Form};
use crate::eap::packet::Eap;
use crate::eap::EapAnswer;
use crate::mschap;
use crate::packet::{attr, Builder, Code, Packet};
use crate::reply;
use crate::Shared;
use core_directory::model::{RadiusMethod, Resource};
use core_directory::{AuthOutcome, AuthRequest, Credential, DenyReason, Event, Service};
use std::net::SocketAddr;

/// What the NAS is told after the core has decided.
enum Answer {
    Accept(Box<core_directory::AuthGrant>, String),
    Challenge([u8; 16]),
    Reject(Option<&'static str>),
    Eap(EapAnswer),
    /// MS-CHAPv2 without EAP: the grant, the Class and the ident of the peer's response.
    MsChapAccept(Box<core_directory::AuthGrant>, String, u8),
    /// MS-CHAPv2 without EAP refused: the ident for MS-CHAP-Error and the Reply-Message the profile may send.
    MsChapReject(u8, Option<&'static str>),
}

/// Answer an Access-Request; `None` drops it.
pub(crate) async fn access_request(
    shared: &Shared,
    client: &Client,
    req: &Packet,
    src: SocketAddr,
) -> Option<Vec<u8>> {
    let answer = decide(shared, client, req, src).await;
    let secret = &client.secret;
    let code = match answer {
        Answer::Accept(..) | Answer::MsChapAccept(..) | Answer::Eap(EapAnswer::Accept { .. }) => {
            Code::AccessAccept
        }
        Answer::Challenge(_) | Answer::Eap(EapAnswer::Challenge { .. }) => Code::AccessChallenge,
        Answer::Reject(_) | Answer::MsChapReject(..) | Answer::Eap(EapAnswer::Reject { .. }) => {
            Code::AccessReject
        }
    };
    let mut b = Builder::reply_to(req, code, true).ok()?;
    let mut salt = 0u16;
    match &answer {
        Answer::Accept(grant, class) => {
            accept_attributes(shared, &mut b, grant, class, client, req, &mut salt).ok()?;
        }
        Answer::Eap(EapAnswer::Accept {
            grant,
            session,
            eap,
            msk,
        }) => {
            accept_attributes(shared, &mut b, grant, session, client, req, &mut salt).ok()?;
            b.add(attr::USER_NAME, grant.user.username.as_bytes())
                .ok()?;
            eap.put(&mut b).ok()?;
            if let Some(msk) = msk {
                // RFC 5216 §2.3 / RFC 2548: the first half of the MSK is the NAS's receive key.
                for (number, half) in [
                    (MS_MPPE_RECV_KEY, &msk[..32]),
                    (MS_MPPE_SEND_KEY, &msk[32..]),
                ] {
                    let key = Encoded {
                        vendor: MICROSOFT,
                        number,
                        tag: 0,
                        value: half.to_vec(),
                        form: Form::Salted,
                    };
                    reply::put(&mut b, &key, secret, &req.authenticator, &mut salt).ok()?;
                }
            }
        }
        Answer::Eap(EapAnswer::Challenge { state, eap }) => {
            b.add(attr::STATE, state).ok()?;
            eap.put(&mut b).ok()?;
        }
        Answer::Eap(EapAnswer::Reject { eap }) => {
            eap.put(&mut b).ok()?;
        }
        Answer::Challenge(state) => {
            b.add(attr::STATE, state).ok()?;
            b.add(attr::REPLY_MESSAGE, b"Enter your verification code")
                .ok()?;
            let timeout = shared.challenges.timeout().as_secs() as u32;
            b.add(attr::SESSION_TIMEOUT, &timeout.to_be_bytes()).ok()?;
        }
        Answer::Reject(message) => {
            if let (true, Some(m)) = (client.profile.reject_reply_message, message) {
                b.add(attr::REPLY_MESSAGE, m.as_bytes()).ok()?;
            }
        }
        Answer::MsChapAccept(grant, class, ident) => {
            accept_attributes(shared, &mut b, grant, class, client, req, &mut salt).ok()?;
            let (Some(s), Some(keys)) = (&grant.authenticator_response, &grant.mppe_keys) else {
                tracing::error!("MS-CHAPv2 grant without authenticator response or keys");
                return None;
            };
            mschap::put_success(
                &mut b,
                *ident,
                s,
                keys,
                secret,
                &req.authenticator,
                &mut salt,
            )
            .ok()?;
        }
        Answer::MsChapReject(ident, message) => {
            if let (true, Some(m)) = (client.profile.reject_reply_message, message) {
                b.add(attr::REPLY_MESSAGE, m.as_bytes()).ok()?;
            }
            mschap::put_error(&mut b, *ident).ok()?;
        }
    }
    Some(b.response(secret, &req.authenticator))
}

use mschap::{MICROSOFT, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY};

/// The groups' reply attributes and the Class of an Access-Accept.
fn accept_attributes(
    shared: &Shared,
    b: &mut Builder,
    grant: &core_directory::AuthGrant,
    class: &str,
    client: &Client,
    req: &Packet,
    salt: &mut u16,
) -> Result<(), crate::packet::EncodeError> {
    for a in reply::for_grant(grant, shared.dict) {
        if let Err(e) = reply::put(b, &a, &client.secret, &req.authenticator, salt) {
            tracing::warn!(error = %e, "reply attribute does not fit; skipped");
        }
    }
    b.add(attr::CLASS, class.as_bytes())?;
    Ok(())
}

/// Answer a Status-Server on the authentication port (RFC 5997 §3): an Access-Accept, nothing else.
pub(crate) fn status_server(client: &Client, req: &Packet) -> Option<Vec<u8>> {
    let b = Builder::reply_to(req, Code::AccessAccept, true).ok()?;
    Some(b.response(&client.secret, &req.authenticator))
}

/// The Reply-Message for a refusal, for profiles that allow one. Deliberately coarse: an unknown user and a wrong
/// password read the same.
fn reject_message(reason: DenyReason) -> &'static str {
    match reason {
        DenyReason::UnknownUser
        | DenyReason::WrongPassword
        | DenyReason::PasswordPending
        | DenyReason::Staged
        | DenyReason::Suspended
        | DenyReason::CredentialsChanged => "Invalid username or password",
        DenyReason::Locked => "Account locked after too many failed attempts",
        DenyReason::Throttled => "Too many failed attempts; try again later",
        DenyReason::PasswordExpired => "Password expired; change it in the user portal",
        DenyReason::NotBound | DenyReason::UnknownResource => {
            "Access to this network is not allowed"
        }
        DenyReason::PolicyDenied => {
            "Access to this network is not allowed from here or at this time"
        }
        DenyReason::MfaRequiredNoFactor => "Multi-factor authentication is required",
        DenyReason::MfaNotEnrolled | DenyReason::MfaEnrolmentExpired => {
            "Multi-factor authentication is required; enrol in the user portal"
        }
        DenyReason::WrongOtp => "Invalid verification code",
        DenyReason::ChallengeExpired => "The login timed out; try again",
        DenyReason::NtHashMissing => {
            "Password change required; set a new password in the user portal"
        }
        DenyReason::MfaNotPossible => {
            "Multi-factor authentication is required; use a method that accepts a verification code"
        }
    }
}

async fn decide(shared: &Shared, client: &Client, req: &Packet, src: SocketAddr) -> Answer {
    let profile = &client.profile;
    let username = match req.get(attr::USER_NAME).map(std::str::from_utf8) {
        Some(Ok(u)) if !u.is_empty() => u.to_string(),
        _ => {
            refuse(shared, client, src, None, "request has no valid User-Name").await;
            return Answer::Reject(Some("Invalid username or password"));
        }
    };
    match Eap::from_radius(req) {
        Some(Ok(eap)) => {
            return Answer::Eap(crate::eap::handle(shared, client, req, eap, src, &username).await)
        }
        Some(Err(e)) => {
            refuse(
                shared,
                client,
                src,
                Some(&username),
                &format!("EAP-Message: {e}"),
            )
            .await;
            return Answer::Eap(EapAnswer::Reject {
                eap: Eap::failure(0),
            });
        }
        None => {}
    }
    if req.get(attr::CHAP_PASSWORD).is_some() {
        refuse(
            shared,
            client,
            src,
            Some(&username),
            "CHAP cannot be checked against stored password hashes; configure the NAS for PAP or EAP",
        )
        .await;
        return Answer::Reject(None);
    }
    if mschap::present(req) {
        return ms_chap(shared, client, req, src, &username).await;
    }
    if !profile.methods.contains(&RadiusMethod::Pap) {
        refuse(
            shared,
            client,
            src,
            Some(&username),
            "PAP is not allowed on this RADIUS server",
        )
        .await;
        return Answer::Reject(None);
    }
    let Some(hidden) = req.get(attr::USER_PASSWORD) else {
        refuse(
            shared,
            client,
            src,
            Some(&username),
            "request has no User-Password",
        )
        .await;
        return Answer::Reject(Some("Invalid username or password"));
    };
    let password = match crypt::unhide_user_password(&client.secret, &req.authenticator, hidden)
        .ok()
        .and_then(|p| String::from_utf8(p).ok())
    {
        Some(p) => p,
        None => {
            refuse(
                shared,
                client,
                src,
                Some(&username),
                "User-Password is malformed or not UTF-8 (is the shared secret right?)",
            )
            .await;
            return Answer::Reject(Some("Invalid username or password"));
        }
    };
    let lookup = match shared.dir.radius_user_name(&profile.realm, &username) {
        Ok(u) => u,
        Err(why) => {
            refuse(shared, client, src, Some(&username), &why.to_string()).await;
            return Answer::Reject(Some("Invalid username or password"));
        }
    };
    if let Some(state) = req.get(attr::STATE) {
        return second_step(shared, client, src, &lookup, state, &password).await;
    }
    let (password, otp) = split_otp(profile.otp_append, password);
    let session = new_session_id();
    let outcome = shared
        .dir
        .authenticate(AuthRequest {
            username: lookup,
            credential: Credential::Password(password),
            otp,
            service: Service::Radius,
            resource: Some(Resource::Radius(profile.id.clone())),
            client_ip: Some(src.ip()),
            session: Some(session.clone()),
            station: req.text(attr::CALLING_STATION_ID),
        })
        .await;
    match outcome {
        Ok(AuthOutcome::Allow(grant)) => Answer::Accept(Box::new(grant), session),
        Ok(AuthOutcome::NeedMfa(challenge)) => {
            match shared.challenges.issue(challenge, &profile.id, src.ip()) {
                Some(state) => Answer::Challenge(state),
                None => {
                    tracing::warn!("RADIUS challenge table full; refusing a login that needs MFA");
                    Answer::Reject(None)
                }
            }
        }
        Ok(AuthOutcome::Deny(reason)) => Answer::Reject(Some(reject_message(reason))),
        Err(e) => {
            tracing::error!(error = %e, "RADIUS authentication failed inside the directory");
            Answer::Reject(None)
        }
    }
}

/// MS-CHAPv2 as RFC 2548 attributes in the Access-Request: read, checked against the profile, then the core.
async fn ms_chap(
    shared: &Shared,
    client: &Client,
    req: &Packet,
    src: SocketAddr,
    username: &str,
) -> Answer {
    let profile = &client.profile;
    let ident = mschap::ident(req);
    let request = match mschap::read(req, username) {
        Ok(r) => r,
        Err(e) => {
            // A NAS set up for MS-CHAP would otherwise read "no User-Password" and look for a missing password.
            tracing::info!(
                nas = %profile.name,
                user = %core_directory::events::log_text(username),
                "{e}"
            );
            refuse(shared, client, src, Some(username), &e.to_string()).await;
            return Answer::MsChapReject(ident, None);
        }
    };
    if !profile.methods.contains(&RadiusMethod::Mschapv2) {
        refuse(
            shared,
            client,
            src,
            Some(username),
            "MS-CHAPv2 is not allowed on this RADIUS server",
        )
        .await;
        return Answer::MsChapReject(ident, None);
    }
    let lookup = match shared.dir.radius_user_name(&profile.realm, username) {
        Ok(u) => u,
        Err(why) => {
            refuse(shared, client, src, Some(username), &why.to_string()).await;
            return Answer::MsChapReject(ident, Some("Invalid username or password"));
        }
    };
    let session = new_session_id();
    let outcome = shared
        .dir
        .authenticate(AuthRequest {
            username: lookup,
            credential: Credential::MsChapV2(request.proof),
            otp: None,
            service: Service::Radius,
            resource: Some(Resource::Radius(profile.id.clone())),
            client_ip: Some(src.ip()),
            session: Some(session.clone()),
            station: req.text(attr::CALLING_STATION_ID),
        })
        .await;
    match outcome {
        Ok(AuthOutcome::Allow(grant)) => Answer::MsChapAccept(Box::new(grant), session, ident),
        Ok(AuthOutcome::Deny(reason)) => Answer::MsChapReject(ident, Some(reject_message(reason))),
        // The core refuses MS-CHAPv2 logins that would need a code (MfaNotPossible); never a challenge.
        Ok(AuthOutcome::NeedMfa(_)) => Answer::MsChapReject(ident, None),
        Err(e) => {
            tracing::error!(error = %e, "RADIUS authentication failed inside the directory");
            Answer::MsChapReject(ident, None)
        }
    }
}

/// The answer to an Access-Challenge: the State names the pending login, User-Password holds the code.
async fn second_step(
    shared: &Shared,
    client: &Client,
    src: SocketAddr,
    username: &str,
    state: &[u8],
    code: &str,
) -> Answer {
    let challenge = match shared
        .challenges
        .take(state, &client.profile.id, src.ip(), username)
    {
        Ok(c) => c,
        Err(e) => {
            refuse(shared, client, src, Some(username), e.describe()).await;
            return Answer::Reject(Some("Invalid verification code"));
        }
    };
    let session = challenge.session.clone().unwrap_or_else(new_session_id);
    match shared
        .dir
        .complete_mfa(&challenge, code.trim(), Some(src.ip()))
        .await
    {
        Ok(AuthOutcome::Allow(grant)) => Answer::Accept(Box::new(grant), session),
        Ok(AuthOutcome::Deny(reason)) => Answer::Reject(Some(reject_message(reason))),
        Ok(AuthOutcome::NeedMfa(_)) | Err(_) => Answer::Reject(None),
    }
}

/// `password,123456` → (`password`, `123456`) when the profile accepts appended codes.
pub(crate) fn split_otp(otp_append: bool, password: String) -> (String, Option<String>) {
    if otp_append {
        if let Some((pw, code)) = password.rsplit_once(',') {
            if code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit()) {
                return (pw.to_string(), Some(code.to_string()));
            }
        }
    }
    (password, None)
}

/// The Class of a login: `stratus-` and 32 random hex digits.
pub(crate) fn new_session_id() -> String {
    let mut b = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut b);
    format!("stratus-{}", data_encoding::HEXLOWER.encode(&b))
}

/// Record a refusal the core never saw (the request could not reach it).
pub(crate) async fn refuse(
    shared: &Shared,
    client: &Client,
    src: SocketAddr,
    username: Option<&str>,
    why: &str,
) {
    let mut e = Event::new(Service::Radius, "radius_auth", false)
        .client(Some(src.ip()))
        .reason(why)
        .detail("resource", format!("radius:{}", client.profile.id))
        .detail("nas", client.profile.name.clone());
    if let Some(u) = username {
        let u: String = u.chars().take(256).collect();
        e = e.user(u.clone()).actor(u);
    }
    shared.dir.record(e).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_codes_are_split_only_when_the_profile_allows_it() {
        let s = |on, p: &str| split_otp(on, p.to_string());
        assert_eq!(s(true, "pw,123456"), ("pw".into(), Some("123456".into())));
        assert_eq!(s(true, "a,b,123456"), ("a,b".into(), Some("123456".into())));
        assert_eq!(s(true, "pw,12345"), ("pw,12345".into(), None));
        assert_eq!(s(true, "pw,12345a"), ("pw,12345a".into(), None));
        assert_eq!(s(false, "pw,123456"), ("pw,123456".into(), None));
    }
}
