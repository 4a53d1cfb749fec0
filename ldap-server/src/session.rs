//! One LDAP connection: framing (bounded PDUs), idle timeouts, StartTLS, and the session state machine —
//! anonymous until a successful simple bind, then bound as an ordinary user or a Bind-DN service account.
//! Operations are answered in order; a failed write ends the connection.

use crate::codec::{Control, EntryReply, GuardedCodec, Request};
use crate::entry::{
    Entry, EntryRef, Reader, Tree, OID_MANAGE_DSA_IT, OID_PAGED_RESULTS, OID_PASSWD_MODIFY,
    OID_STARTTLS, OID_WHOAMI,
};
use crate::schema;
use crate::search::{self, PagedState};
use crate::Shared;
use core_directory::events::{Event, Service};
use core_directory::model::Resource;
use core_directory::{Actor, AuthOutcome, AuthRequest, DirectoryError};
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::codec::Framed;
use tokio_util::either::Either;

/// A connection's transport: plain TCP, or TLS (LDAPS, or after StartTLS).
pub type Transport = Either<TcpStream, TlsStream<TcpStream>>;

/// OID of the unsolicited Notice of Disconnection (RFC 4511 §4.4.1).
const OID_NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";
/// Idle limit before a successful bind.
const ANONYMOUS_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

fn result(code: LdapResultCode, message: impl Into<String>) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.into(),
        referral: Vec::new(),
    }
}

fn reply(msgid: i32, op: LdapOp) -> LdapMsg {
    LdapMsg {
        msgid,
        op,
        ctrl: Vec::new(),
    }
}

/// The response that carries `res` for a request, `None` for requests without a response (unbind, abandon) and
/// for anything that is not a request.
fn response_to(id: i32, op: &LdapOp, res: LdapResult) -> Option<LdapMsg> {
    let op = match op {
        LdapOp::BindRequest(_) => LdapOp::BindResponse(LdapBindResponse {
            res,
            saslcreds: None,
        }),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(res),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(res),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(res),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(res),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(res),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(res),
        LdapOp::ExtendedRequest(_) => LdapOp::ExtendedResponse(LdapExtendedResponse {
            res,
            name: None,
            value: None,
        }),
        _ => return None,
    };
    Some(reply(id, op))
}

fn notice(message: &str) -> LdapMsg {
    reply(
        0,
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result(LdapResultCode::ProtocolError, message),
            name: Some(OID_NOTICE_OF_DISCONNECTION.into()),
            value: None,
        }),
    )
}

/// What the loop does after an operation.
enum Next {
    Send(Vec<LdapMsg>),
    /// A search's entries (encoded by [`crate::codec::encode_entry`]), then its SearchResultDone.
    Entries {
        msgid: i32,
        entries: Vec<Entry>,
        done: LdapMsg,
    },
    StartTls(LdapMsg),
    /// Send a last message, then close.
    Final(LdapMsg),
    Close,
}

struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    tls: bool,
    reader: Reader,
    bound_dn: String,
    /// The bound user's `auth_revision` at bind: the core's revocation rule compares it on every operation.
    bound_revision: u64,
    paged: PagedState,
}

/// Serve one connection until it closes, idles out, or the server stops.
pub async fn serve(stream: Transport, peer: SocketAddr, shared: Arc<Shared>) {
    let tls = matches!(stream, Either::Right(_));
    let unbound_limit = shared.settings.max_unbound_pdu_bytes;
    let mut framed = Framed::new(
        stream,
        GuardedCodec::new(shared.settings.max_pdu_bytes, unbound_limit),
    );
    let mut shutdown = shared.shutdown.clone();
    let mut s = Session {
        shared: Arc::clone(&shared),
        peer,
        tls,
        reader: Reader::Anonymous,
        bound_dn: String::new(),
        bound_revision: 0,
        paged: PagedState::default(),
    };
    loop {
        // Before a bind succeeds only small requests are read (and so buffered); a bound session gets the full limit.
        let (idle, limit) = if s.reader == Reader::Anonymous {
            (
                ANONYMOUS_IDLE.min(shared.settings.idle_timeout),
                unbound_limit,
            )
        } else {
            (shared.settings.idle_timeout, shared.settings.max_pdu_bytes)
        };
        framed.codec_mut().set_limit(limit);
        let next = tokio::select! {
            n = tokio::time::timeout(idle, framed.next()) => n,
            _ = shutdown.changed() => break,
        };
        let msg = match next {
            Err(_) | Ok(None) => break,
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => {
                // Malformed, oversized or undecodable PDU: the message id is unknown, so disconnect with a notice.
                s.record(
                    "ldap_protocol_error",
                    false,
                    &format!("undecodable request: {e}"),
                )
                .await;
                let _ = framed.send(notice("malformed or oversized request")).await;
                break;
            }
        };
        match s.handle(msg).await {
            Next::Send(replies) => {
                let mut ok = true;
                for r in replies {
                    if framed.feed(r).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                if !ok || SinkExt::<LdapMsg>::flush(&mut framed).await.is_err() {
                    break;
                }
            }
            Next::Entries {
                msgid,
                entries,
                done,
            } => {
                let mut ok = true;
                for entry in entries {
                    if framed.feed(EntryReply { msgid, entry }).await.is_err() {
                        ok = false;
                        break;
                    }
                }
                if !ok
                    || framed.feed(done).await.is_err()
                    || SinkExt::<LdapMsg>::flush(&mut framed).await.is_err()
                {
                    break;
                }
            }
            Next::Close => break,
            Next::Final(r) => {
                let _ = framed.send(r).await;
                break;
            }
            Next::StartTls(r) => {
                if framed.send(r).await.is_err() {
                    break;
                }
                let parts = framed.into_parts();
                // Bytes already buffered after the StartTLS request would be plaintext smuggled into the TLS session.
                if !parts.read_buf.is_empty() {
                    return;
                }
                let (Either::Left(tcp), Some(acceptor)) = (parts.io, shared.tls.clone()) else {
                    return;
                };
                match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(t)) => {
                        s.tls = true;
                        framed = Framed::new(
                            Either::Right(t),
                            GuardedCodec::new(shared.settings.max_pdu_bytes, unbound_limit),
                        );
                    }
                    _ => return,
                }
            }
        }
    }
}

impl Session {
    async fn record(&self, event_type: &str, success: bool, reason: &str) {
        let mut e = Event::new(Service::Ldap, event_type, success).client(Some(self.peer.ip()));
        if !self.bound_dn.is_empty() {
            e = e.actor(self.bound_dn.clone());
        }
        if !reason.is_empty() {
            e = e.reason(reason);
        }
        self.shared.dir.record(e).await;
    }

    /// Whether Stratus acts on a control sent with this operation (RFC 4511 §4.1.11: a control must be
    /// recognised and appropriate for the operation).
    fn control_supported(oid: &str, op: &LdapOp) -> bool {
        match oid {
            OID_PAGED_RESULTS => matches!(op, LdapOp::SearchRequest(_)),
            // RFC 3296: the control asks for referral objects to be treated as ordinary entries. The tree has
            // no referral objects, so every operation already does what it asks.
            OID_MANAGE_DSA_IT => true,
            _ => false,
        }
    }

    async fn handle(&mut self, req: Request) -> Next {
        let Request { msg, controls } = req;
        let id = msg.msgid;
        for c in controls
            .iter()
            .filter(|c| !Self::control_supported(&c.oid, &msg.op))
        {
            if c.critical {
                let text = format!("critical control {} is not supported", c.oid);
                let res = result(LdapResultCode::UnavailableCriticalExtension, text);
                // Unbind and abandon have no response; they go ahead as if the control were not there.
                if let Some(r) = response_to(id, &msg.op, res) {
                    return Next::Send(vec![r]);
                }
            } else {
                // Any client can send these; a log line per request would be noise, not news.
                tracing::debug!(
                    oid = %core_directory::events::log_text(&c.oid),
                    peer = %self.peer,
                    "non-critical LDAP control ignored"
                );
            }
        }
        if let Some(refused) = self.revoked(id, &msg.op).await {
            return Next::Send(vec![refused]);
        }
        match msg.op {
            LdapOp::BindRequest(req) => Next::Send(vec![self.bind(id, req).await]),
            LdapOp::UnbindRequest => Next::Close,
            LdapOp::SearchRequest(req) => self.search(id, &req, &controls).await,
            LdapOp::CompareRequest(req) => Next::Send(vec![self.compare(id, &req).await]),
            LdapOp::AbandonRequest(_) => Next::Send(Vec::new()),
            LdapOp::ExtendedRequest(req) => self.extended(id, req).await,
            LdapOp::AddRequest(_)
            | LdapOp::ModifyRequest(_)
            | LdapOp::DelRequest(_)
            | LdapOp::ModifyDNRequest(_) => Next::Send(self.refuse_write(id, &msg.op).await),
            _ => {
                self.record(
                    "ldap_protocol_error",
                    false,
                    "a response or unknown operation was sent to the server",
                )
                .await;
                Next::Final(notice("unexpected operation"))
            }
        }
    }

    /// The revocation rule, asked of the core before every operation of a bound session: when the bound user may
    /// no longer use LDAP (suspended, locked, password set or reset, expired, no longer in a group bound to LDAP,
    /// deleted), the session falls back to anonymous and the operation is answered insufficientAccessRights.
    /// Binds, unbinds and abandons pass: they need no identity.
    async fn revoked(&mut self, id: i32, op: &LdapOp) -> Option<LdapMsg> {
        let Reader::Bound(user) = &self.reader else {
            return None;
        };
        if matches!(
            op,
            LdapOp::BindRequest(_) | LdapOp::UnbindRequest | LdapOp::AbandonRequest(_)
        ) {
            return None;
        }
        let reason = self.shared.dir.session_refusal(
            user,
            self.bound_revision,
            Some(&Resource::Ldap),
            Some(self.peer.ip()),
        )?;
        self.record("ldap_session_revoked", false, reason.describe())
            .await;
        self.reader = Reader::Anonymous;
        self.bound_dn.clear();
        self.paged = PagedState::default();
        let res = result(
            LdapResultCode::InsufficentAccessRights,
            "the bound identity may no longer use this directory; bind again",
        );
        response_to(id, op, res)
    }

    async fn refuse_write(&self, id: i32, op: &LdapOp) -> Vec<LdapMsg> {
        self.record("ldap_write", false, "LDAP is read-only; writes are refused")
            .await;
        let res = result(
            LdapResultCode::UnwillingToPerform,
            "the directory is managed through the Stratus API",
        );
        response_to(id, op, res).into_iter().collect()
    }

    async fn bind(&mut self, id: i32, req: LdapBindRequest) -> LdapMsg {
        let respond = |code, text: &str| {
            reply(
                id,
                LdapOp::BindResponse(LdapBindResponse {
                    res: result(code, text),
                    saslcreds: None,
                }),
            )
        };
        // Any bind attempt first drops the current identity (RFC 4513 §5).
        self.reader = Reader::Anonymous;
        self.bound_dn.clear();
        self.paged = PagedState::default();
        if req.version != 3 {
            return respond(LdapResultCode::ProtocolError, "only LDAPv3 is supported");
        }
        let password = match req.cred {
            LdapBindCred::Simple(pw) => pw,
            _ => {
                self.record("ldap_bind", false, "SASL bind attempted").await;
                return respond(
                    LdapResultCode::AuthMethodNotSupported,
                    "only simple bind is supported",
                );
            }
        };
        // The name of a simple bind is a DN (RFC 4511 §4.2); a bare username is not one.
        let rdns = match crate::dn::parse(&req.dn) {
            Err(crate::dn::DnError::Syntax) => {
                self.record("ldap_bind", false, "the bind name is not a DN")
                    .await;
                return respond(
                    LdapResultCode::InvalidDNSyntax,
                    "the bind name must be a DN: uid=<username>,ou=Users,<suffix>",
                );
            }
            // A multi-valued RDN is a valid DN that names none of our entries.
            Err(crate::dn::DnError::MultiValued) => Vec::new(),
            Ok(rdns) => rdns,
        };
        if req.dn.is_empty() && password.is_empty() {
            self.record("ldap_bind", false, "anonymous bind refused")
                .await;
            return respond(
                LdapResultCode::InappropriateAuthentication,
                "anonymous bind is not allowed",
            );
        }
        if password.is_empty() {
            self.record(
                "ldap_bind",
                false,
                "unauthenticated bind (DN without password) refused",
            )
            .await;
            return respond(
                LdapResultCode::UnwillingToPerform,
                "unauthenticated bind is not allowed",
            );
        }
        let snap = self.shared.dir.snapshot();
        let tree = Tree::new(&snap, &self.shared.dir);
        // A DN of the form uid=<username>,ou=Users,<suffix> (by DN comparison) names a username. Any other DN goes
        // to the core as it is: no username contains '=', so it is an unknown user there, which costs the same
        // hashing time and records the same event as any other failure.
        let username = tree
            .username_in(&rdns)
            .map_or_else(|| req.dn.clone(), str::to_string);
        let outcome = self
            .shared
            .dir
            .authenticate(AuthRequest {
                username,
                credential: core_directory::Credential::Password(password),
                otp: None,
                service: Service::Ldap,
                resource: Some(Resource::Ldap),
                client_ip: Some(self.peer.ip()),
                session: None,
                station: None,
            })
            .await;
        match outcome {
            Ok(AuthOutcome::Allow(grant)) => {
                self.reader = Reader::Bound(grant.user.id.clone());
                self.bound_revision = grant.user.auth_revision;
                self.bound_dn = tree.user_dn(&grant.user);
                respond(LdapResultCode::Success, "")
            }
            // A throttled source is told so (it says nothing about any account): busy means "try later".
            Ok(AuthOutcome::Deny(core_directory::DenyReason::Throttled)) => respond(
                LdapResultCode::Busy,
                "too many failed binds from this address; try again later",
            ),
            Ok(_) => respond(LdapResultCode::InvalidCredentials, "invalid credentials"),
            Err(e) => {
                tracing::error!(error = %e, "bind failed internally");
                respond(LdapResultCode::OperationsError, "internal error")
            }
        }
    }

    async fn search(&mut self, id: i32, req: &LdapSearchRequest, controls: &[Control]) -> Next {
        let paging = match controls.iter().find(|c| c.oid == OID_PAGED_RESULTS) {
            None => None,
            Some(c) => match search::PageRequest::decode(c.value.as_deref()) {
                Some(p) => Some(p),
                None => {
                    let res = result(
                        LdapResultCode::ProtocolError,
                        "the paged results control value is malformed",
                    );
                    return Next::Send(vec![reply(id, LdapOp::SearchResultDone(res))]);
                }
            },
        };
        let snap = self.shared.dir.snapshot();
        let tree = Tree::new(&snap, &self.shared.dir);
        let outcome = search::search(
            &tree,
            &self.reader,
            req,
            &self.shared.settings.limits,
            paging.as_ref(),
            &mut self.paged,
        );
        if !matches!(
            outcome.code,
            LdapResultCode::Success
                | LdapResultCode::SizeLimitExceeded
                | LdapResultCode::NoSuchObject
        ) {
            self.record(
                "ldap_search",
                false,
                &format!("{:?}: {}", outcome.code, outcome.message),
            )
            .await;
        }
        let mut done = reply(
            id,
            LdapOp::SearchResultDone(LdapResult {
                code: outcome.code,
                matcheddn: outcome.matched_dn,
                message: outcome.message,
                referral: Vec::new(),
            }),
        );
        if let Some(cookie) = outcome.cookie {
            done.ctrl
                .push(LdapControl::SimplePagedResults { size: 0, cookie });
        }
        Next::Entries {
            msgid: id,
            entries: outcome.entries,
            done,
        }
    }

    async fn compare(&self, id: i32, req: &LdapCompareRequest) -> LdapMsg {
        let respond = |code, text: &str| reply(id, LdapOp::CompareResult(result(code, text)));
        if self.reader == Reader::Anonymous {
            return respond(LdapResultCode::InsufficentAccessRights, "bind first");
        }
        let snap = self.shared.dir.snapshot();
        let tree = Tree::new(&snap, &self.shared.dir);
        let Some(target) = tree
            .resolve(&req.dn)
            .filter(|r| tree.visible_to(r, &self.reader))
        else {
            return respond(LdapResultCode::NoSuchObject, "no such entry");
        };
        if req.atype.eq_ignore_ascii_case("userPassword") {
            return respond(
                LdapResultCode::InsufficentAccessRights,
                "passwords cannot be compared",
            );
        }
        let Some(at) = schema::attribute(&req.atype) else {
            return respond(
                LdapResultCode::UndefinedAttributeType,
                "unknown attribute type",
            );
        };
        let mut want = schema::AttributeSet::default();
        want.insert(at);
        let Some(entry) = tree.build(&target, &self.reader, want) else {
            return respond(LdapResultCode::NoSuchObject, "no such entry");
        };
        if entry.get(at).is_none() {
            return respond(
                LdapResultCode::NoSuchAttribute,
                "the entry has no such attribute",
            );
        }
        let asserted = String::from_utf8_lossy(&req.val).into_owned();
        let probe = ldap3_proto::proto::LdapFilter::Equality(at.name.into(), asserted);
        // The entry was built with this attribute only, so the filter reads nothing else.
        match crate::filter::eval(&probe, &entry) {
            crate::filter::Truth::True => respond(LdapResultCode::CompareTrue, ""),
            crate::filter::Truth::False => respond(LdapResultCode::CompareFalse, ""),
            crate::filter::Truth::Undefined => respond(
                LdapResultCode::InvalidAttributeSyntax,
                "the value does not fit the attribute's syntax",
            ),
        }
    }

    async fn extended(&mut self, id: i32, req: LdapExtendedRequest) -> Next {
        let respond = |code, text: &str, name: Option<&str>, value: Option<Vec<u8>>| {
            reply(
                id,
                LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res: result(code, text),
                    name: name.map(str::to_string),
                    value,
                }),
            )
        };
        match req.name.as_str() {
            OID_STARTTLS => {
                if self.tls {
                    Next::Send(vec![respond(
                        LdapResultCode::OperationsError,
                        "TLS is already active",
                        Some(OID_STARTTLS),
                        None,
                    )])
                } else if self.shared.tls.is_none() {
                    Next::Send(vec![respond(
                        LdapResultCode::Unavailable,
                        "TLS is not configured",
                        Some(OID_STARTTLS),
                        None,
                    )])
                } else {
                    Next::StartTls(respond(
                        LdapResultCode::Success,
                        "",
                        Some(OID_STARTTLS),
                        None,
                    ))
                }
            }
            OID_WHOAMI => {
                let authz = if self.bound_dn.is_empty() {
                    String::new()
                } else {
                    format!("dn:{}", self.bound_dn)
                };
                Next::Send(vec![respond(
                    LdapResultCode::Success,
                    "",
                    None,
                    Some(authz.into_bytes()),
                )])
            }
            OID_PASSWD_MODIFY => Next::Send(vec![self.password_modify(id, &req).await]),
            other => {
                self.record(
                    "ldap_extended",
                    false,
                    &format!("unknown extended operation {other}"),
                )
                .await;
                Next::Send(vec![respond(
                    LdapResultCode::ProtocolError,
                    "unsupported extended operation",
                    None,
                    None,
                )])
            }
        }
    }

    /// RFC 3062: a bound user changes their own password, giving the old one; the policy applies.
    async fn password_modify(&mut self, id: i32, req: &LdapExtendedRequest) -> LdapMsg {
        // No responseValue: we never generate passwords (RFC 3062 §2 makes the value optional).
        let respond = |code, text: &str| {
            reply(
                id,
                LdapOp::ExtendedResponse(LdapExtendedResponse {
                    res: result(code, text),
                    name: None,
                    value: None,
                }),
            )
        };
        let me = match &self.reader {
            Reader::Bound(id) => id.clone(),
            Reader::Anonymous => {
                return respond(LdapResultCode::InsufficentAccessRights, "bind first")
            }
        };
        let Ok(pm) = LdapPasswordModifyRequest::try_from(req) else {
            return respond(
                LdapResultCode::ProtocolError,
                "malformed password modify request",
            );
        };
        let snap = self.shared.dir.snapshot();
        let Some(user) = snap.user(&me).cloned() else {
            return respond(LdapResultCode::NoSuchObject, "no such entry");
        };
        let tree = Tree::new(&snap, &self.shared.dir);
        if let Some(identity) = pm.user_identity.as_deref() {
            let own = identity.strip_prefix("dn:").unwrap_or(identity);
            let same = matches!(tree.resolve(own), Some(EntryRef::User(ref u)) if *u == me)
                || identity
                    .strip_prefix("u:")
                    .is_some_and(|u| u.eq_ignore_ascii_case(&user.username));
            if !same {
                self.record(
                    "ldap_password_modify",
                    false,
                    "attempt to change another user's password",
                )
                .await;
                return respond(
                    LdapResultCode::InsufficentAccessRights,
                    "you may change only your own password",
                );
            }
        }
        let (Some(old), Some(new)) = (pm.old_password, pm.new_password) else {
            return respond(
                LdapResultCode::UnwillingToPerform,
                "give the old and the new password; generated passwords are not offered",
            );
        };
        let check = self
            .shared
            .dir
            .authenticate(AuthRequest {
                username: user.username.clone(),
                credential: core_directory::Credential::Password(old),
                otp: None,
                service: Service::Ldap,
                resource: Some(Resource::Ldap),
                client_ip: Some(self.peer.ip()),
                session: None,
                station: None,
            })
            .await;
        if !matches!(check, Ok(AuthOutcome::Allow(_))) {
            return respond(
                LdapResultCode::InvalidCredentials,
                "the old password is not correct",
            );
        }
        let actor = Actor {
            admin_id: None,
            label: user.username.clone(),
            via: Some("ldap".into()),
            role: core_directory::model::AdminRole::ReadOnly,
            service: Service::Ldap,
            client_ip: Some(self.peer.ip()),
            scim_token: None,
        };
        match self
            .shared
            .dir
            .change_password(&actor, &me, &new, "password_change")
            .await
        {
            Ok(_) => respond(LdapResultCode::Success, ""),
            Err(DirectoryError::PasswordPolicy(v)) => {
                respond(LdapResultCode::ConstraintViolation, &v.message)
            }
            Err(e) => {
                tracing::error!(error = %e, "password modify failed");
                respond(LdapResultCode::OperationsError, "internal error")
            }
        }
    }
}
