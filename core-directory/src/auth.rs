//! The one authentication path every protocol uses.
//!
//! In order: the user exists and is Active → not locked → password verifies → password not expired → the
//! resource is bound to one of the user's groups → the MFA requirement of the resource → record the event and
//! update the failure counter. The deny reason goes to the event; what the peer learns is its protocol's business.

use crate::conditional::{self, Attempt, PolicyAction, Verdict};
use crate::directory::Directory;
use crate::error::Result;
use crate::events::{Event, Service};
use crate::explain::Trace;
use crate::id::Id;
use crate::model::*;
use crate::mschapv2::MsChapV2Proof;
use crate::snapshot::Snapshot;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// What the user proves their identity with.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The password itself (PAP, LDAP bind, portal, EAP-TTLS/PAP): checked with argon2id or the credential cache.
    Password(String),
    /// An MS-CHAPv2 response (PEAP): checked against the user's sealed NT hash.
    MsChapV2(MsChapV2Proof),
    /// A client certificate the listener verified against its configured CA and mapped to the username
    /// (EAP-TLS). There is no password step; the certificate also stands for the second factor.
    Certificate { subject: String },
    /// An IdP session the user signed in to earlier: only [`Directory::authorize_session`] takes it; given to
    /// [`Directory::authenticate`] it is refused.
    Session,
}

impl Credential {
    fn method(&self) -> &'static str {
        match self {
            Credential::Password(_) => "password",
            Credential::MsChapV2(_) => "mschapv2",
            Credential::Certificate { .. } => "certificate",
            Credential::Session => "session",
        }
    }
}

/// One login attempt.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub username: String,
    pub credential: Credential,
    /// A TOTP code given together with the password (SSO form, `password,code` RADIUS).
    pub otp: Option<String>,
    pub service: Service,
    /// What is being reached; `None` is the user portal itself.
    pub resource: Option<Resource>,
    pub client_ip: Option<IpAddr>,
    /// An id the protocol gives this login (the RADIUS Class), recorded with its event so later records —
    /// accounting — can be tied to it.
    pub session: Option<String>,
    /// The RADIUS Calling-Station-Id: with the NAS's address, the source a failure is counted against.
    pub station: Option<String>,
}

/// Why a login was refused. Logged and recorded; never sent to a peer beyond what its protocol allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// Too many failed logins from this source: refused before any account is looked at.
    Throttled,
    UnknownUser,
    Staged,
    Suspended,
    Locked,
    PasswordPending,
    WrongPassword,
    PasswordExpired,
    /// None of the user's groups is bound to the resource (implicit deny).
    NotBound,
    UnknownResource,
    /// MFA is required and the user has no active TOTP.
    MfaNotEnrolled,
    /// MFA is required, TOTP is not active and the enrolment period is over.
    MfaEnrolmentExpired,
    WrongOtp,
    /// MS-CHAPv2 needs the NT hash, which is made only when a password is set.
    NtHashMissing,
    /// A code is required but the method cannot carry one (MS-CHAPv2 in any transport).
    MfaNotPossible,
    /// The second step came after the challenge's lifetime ([`MFA_CHALLENGE_LIFETIME`]).
    ChallengeExpired,
    /// A session's user had a password set or reset, a lock or a state change since it began.
    CredentialsChanged,
    /// A conditional access policy denies the attempt.
    PolicyDenied,
    /// A conditional access policy requires MFA where no second factor can be given (an LDAP bind).
    MfaRequiredNoFactor,
}

/// How long the answer to a [`MfaChallenge`] may take.
pub const MFA_CHALLENGE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

impl DenyReason {
    pub fn describe(self) -> &'static str {
        match self {
            DenyReason::Throttled => "too many failed logins from this source; try again later",
            DenyReason::UnknownUser => "unknown user",
            DenyReason::Staged => "user is staged, not yet active",
            DenyReason::Suspended => "user is suspended",
            DenyReason::Locked => "account is locked after too many failures",
            DenyReason::PasswordPending => "user has no password yet",
            DenyReason::WrongPassword => "wrong password",
            DenyReason::PasswordExpired => "password has expired",
            DenyReason::NotBound => "no group of the user is bound to this resource",
            DenyReason::UnknownResource => "unknown resource",
            DenyReason::MfaNotEnrolled => "MFA is required but the user has no active TOTP",
            DenyReason::MfaEnrolmentExpired => {
                "MFA enrolment period is over; enrol or ask an admin to reset it"
            }
            DenyReason::WrongOtp => "wrong or reused verification code",
            DenyReason::NtHashMissing => {
                "MS-CHAPv2 needs the user's NT hash, which is made when a password is set: the user must set a new password"
            }
            DenyReason::MfaNotPossible => {
                "MFA is required but MS-CHAPv2 (PEAP, EAP-TTLS or plain RADIUS) cannot carry a verification code; use PAP or EAP-TTLS/PAP with password,code, or EAP-TLS"
            }
            DenyReason::ChallengeExpired => "the verification code came after the login timed out",
            DenyReason::CredentialsChanged => {
                "the user's password, lock or state changed since the session began"
            }
            DenyReason::PolicyDenied => "an access policy denies this login",
            DenyReason::MfaRequiredNoFactor => {
                "an access policy requires MFA, which an LDAP bind cannot carry"
            }
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct AuthGrant {
    pub user: Arc<User>,
    /// The user's groups bound to the resource, highest priority first (empty for the portal).
    pub groups: Vec<Arc<Group>>,
    /// A second factor was verified.
    pub mfa_used: bool,
    /// MFA is required but the user is still inside the enrolment period.
    pub mfa_enrolment_deadline: Option<DateTime<Utc>>,
    /// Set when the password expires within the policy's warning period.
    pub password_expires_at: Option<DateTime<Utc>>,
    /// For MS-CHAPv2: the Authenticator Response (`S=…`) that proves to the peer the server knew its hash.
    pub authenticator_response: Option<String>,
    /// For MS-CHAPv2: the RFC 3079 MPPE keys (RADIUS MS-CHAPv2 without EAP sends them to the NAS).
    pub mppe_keys: Option<crate::mschapv2::MppeKeys>,
}

impl AuthGrant {
    /// The RADIUS reply attributes of the granting groups, conflicts resolved by group priority: an attribute
    /// name (compared case-insensitively, a `:tag` suffix included) belongs to the highest-priority group that
    /// sets it, and that group's values — several, for multi-valued attributes such as Cisco-AVPair — are the
    /// ones sent. Groups of equal priority are taken in name order.
    pub fn radius_reply(&self) -> Vec<ReplyAttribute> {
        let mut claimed: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for g in &self.groups {
            let mine: Vec<String> = g
                .radius_reply
                .iter()
                .map(|a| a.attribute.to_ascii_lowercase())
                .collect();
            for (a, key) in g.radius_reply.iter().zip(&mine) {
                if !claimed.contains(key) {
                    out.push(a.clone());
                }
            }
            for key in mine {
                if !claimed.contains(&key) {
                    claimed.push(key);
                }
            }
        }
        out
    }
}

/// The password step succeeded; a TOTP code is needed to finish. Listeners keep this (e.g. behind a RADIUS
/// State) and pass it to [`Directory::complete_mfa`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MfaChallenge {
    pub user_id: Id,
    pub username: String,
    pub service: Service,
    pub resource: Option<Resource>,
    /// The [`AuthRequest::session`] of the first step, carried to the second.
    pub session: Option<String>,
    /// The [`AuthRequest::station`] of the first step.
    #[serde(default)]
    pub station: Option<String>,
    pub issued_at: DateTime<Utc>,
}

/// What a login attempt comes to.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Allow(AuthGrant),
    NeedMfa(MfaChallenge),
    Deny(DenyReason),
}

/// What MFA asks of this login.
pub(crate) enum MfaNeed {
    None,
    /// Allowed without a code while the enrolment period runs.
    Enrolling(DateTime<Utc>),
    Code,
    Refuse(DenyReason),
}

fn event_type(service: Service) -> &'static str {
    match service {
        Service::Ldap => "ldap_bind",
        Service::Radius => "radius_auth",
        Service::Sso => "sso_auth",
        Service::Portal => "portal_login",
        Service::Scim => "scim_auth",
        Service::Admin => "admin_login",
        Service::Directory | Service::Mail => "auth",
    }
}

fn mfa_need(
    snap: &Snapshot,
    user: &User,
    resource: Option<&Resource>,
    now: DateTime<Utc>,
) -> MfaNeed {
    let enrolling = || match user.mfa_enrolment_deadline {
        Some(d) if now < d => MfaNeed::Enrolling(d),
        _ => MfaNeed::Refuse(DenyReason::MfaEnrolmentExpired),
    };
    match resource {
        // LDAP binds carry no second factor.
        Some(Resource::Ldap) | Some(Resource::Directory(_)) => MfaNeed::None,
        Some(Resource::Radius(id)) => {
            let Some(server) = snap.radius_servers.get(id) else {
                return MfaNeed::Refuse(DenyReason::UnknownResource);
            };
            match (server.mfa, user.totp_active()) {
                (RadiusMfaMode::Off, _) => MfaNeed::None,
                (_, true) => MfaNeed::Code,
                (RadiusMfaMode::RequireAll, false) => MfaNeed::Refuse(DenyReason::MfaNotEnrolled),
                (RadiusMfaMode::RequireAllExceptEnrolling, false) => {
                    if user.in_mfa_enrolment_period(now) {
                        enrolling()
                    } else {
                        MfaNeed::Refuse(DenyReason::MfaNotEnrolled)
                    }
                }
                (RadiusMfaMode::RequireEnrolledOnly, false) => MfaNeed::None,
            }
        }
        // Portal and SSO: enrolled users always give a code; required-but-unenrolled users get the period.
        None | Some(Resource::App(_)) => {
            if user.totp_active() {
                MfaNeed::Code
            } else if user.mfa_required {
                enrolling()
            } else {
                MfaNeed::None
            }
        }
    }
}

/// What the path checks once the credential is proven.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccessChecks<'a> {
    /// `None`: the user portal.
    pub resource: Option<&'a Resource>,
    pub source: Option<IpAddr>,
    pub at: DateTime<Utc>,
    /// A client certificate stands for the second factor.
    pub by_certificate: bool,
    /// Refuse an expired password (a certificate or a second step has none to check).
    pub check_expiry: bool,
}

/// The path's answer once the credential is proven.
pub(crate) struct Access {
    pub groups: Vec<Arc<Group>>,
    pub need: MfaNeed,
    pub verdict: Verdict,
}

/// A refusal after the credential, with the policies' verdict when they were reached.
pub(crate) struct Refusal {
    pub reason: DenyReason,
    pub verdict: Option<Verdict>,
}

impl Refusal {
    fn early(reason: DenyReason) -> Refusal {
        Refusal {
            reason,
            verdict: None,
        }
    }
}

/// Why a user's state keeps them out whatever they prove: staged, suspended, locked at `at`.
pub(crate) fn state_refusal(user: &User, at: DateTime<Utc>) -> Option<DenyReason> {
    match user.state {
        UserState::Active if user.is_locked(at) => Some(DenyReason::Locked),
        UserState::Active => None,
        UserState::Staged => Some(DenyReason::Staged),
        UserState::Suspended => Some(DenyReason::Suspended),
    }
}

/// Everything the path decides after the credential, in order — password expiry, the binding (implicit deny
/// first: nothing below can grant what no binding grants), the conditional access policies, the MFA requirement
/// — for logins, IdP sessions, second steps and `explain` alike. Reads the snapshot, changes nothing; with a
/// trace, each step is described.
/// Describe a step, when `explain` asks.
fn note(trace: &mut Option<&mut Trace>, step: &str, passed: bool, detail: &dyn Fn() -> String) {
    if let Some(t) = trace.as_deref_mut() {
        t.step(step, passed, detail());
    }
}

pub(crate) fn decide_access(
    snap: &Snapshot,
    user: &User,
    c: AccessChecks<'_>,
    mut trace: Option<&mut Trace>,
) -> std::result::Result<Access, Refusal> {
    if c.check_expiry && user.password_status(&snap.policy, c.at) == PasswordStatus::Expired {
        note(&mut trace, "password", false, &|| {
            DenyReason::PasswordExpired.describe().to_string()
        });
        return Err(Refusal::early(DenyReason::PasswordExpired));
    }
    note(&mut trace, "password", true, &|| {
        if c.check_expiry {
            user.password_expires_at(&snap.policy).map_or_else(
                || "set; it does not expire".to_string(),
                |t| format!("set; it expires {}", t.to_rfc3339()),
            )
        } else {
            "not checked for this method".to_string()
        }
    });
    let groups = match c.resource {
        None => {
            note(&mut trace, "binding", true, &|| {
                "the user portal needs no binding".to_string()
            });
            Vec::new()
        }
        Some(r) => {
            let exists = match r {
                Resource::Ldap => true,
                Resource::Directory(id) => snap.external_directories.contains_key(id),
                Resource::Radius(id) => snap.radius_servers.contains_key(id),
                Resource::App(id) => snap.apps.contains_key(id),
            };
            if !exists {
                note(&mut trace, "binding", false, &|| {
                    DenyReason::UnknownResource.describe().to_string()
                });
                return Err(Refusal::early(DenyReason::UnknownResource));
            }
            let groups = snap.granting_groups(&user.id, r);
            note(&mut trace, "binding", !groups.is_empty(), &|| {
                let bound = snap.bound_groups(r);
                if bound.is_empty() {
                    return "no group is bound to it".to_string();
                }
                bound
                    .iter()
                    .filter_map(|g| snap.groups.get(g))
                    .map(|g| {
                        let member = groups.iter().any(|m| m.id == g.id);
                        format!(
                            "group {} is bound: the user is {}a member",
                            g.name,
                            if member { "" } else { "not " }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            if groups.is_empty() {
                return Err(Refusal::early(DenyReason::NotBound));
            }
            groups
        }
    };
    let attempt = Attempt {
        resource: c.resource,
        source: c.source,
        at: c.at,
    };
    let verdict = conditional::evaluate(
        snap,
        user,
        attempt,
        trace.as_deref_mut().map(|t| &mut t.policies),
    );
    let decided = verdict.action();
    note(
        &mut trace,
        "policies",
        decided != Some(PolicyAction::Deny),
        &|| {
            let mut text = match &verdict.decided {
                None if snap.policy_order.is_empty() => "there are no policies".to_string(),
                None => "no enforced policy matches: the binding decides".to_string(),
                Some(p) => format!("policy \"{}\" matches: {}", p.name, p.action.as_str()),
            };
            for r in &verdict.report_only {
                text.push_str(&format!(
                    "; report-only policy \"{}\" would {}",
                    r.name,
                    r.action.as_str()
                ));
            }
            text
        },
    );
    let refuse = |reason: DenyReason, verdict: Verdict| {
        Err(Refusal {
            reason,
            verdict: Some(verdict),
        })
    };
    if decided == Some(PolicyAction::Deny) {
        return refuse(DenyReason::PolicyDenied, verdict);
    }
    let base = if c.by_certificate {
        MfaNeed::None
    } else {
        mfa_need(snap, user, c.resource, c.at)
    };
    // A matching policy decides the second factor: `allow` lets the user in with the password alone (the
    // trusted-network rule), `require_mfa` asks a code. With no policy, the resource's own rule stands.
    let need = match (decided, base) {
        (Some(PolicyAction::Allow), _) => MfaNeed::None,
        (_, MfaNeed::Refuse(reason)) => MfaNeed::Refuse(reason),
        (Some(PolicyAction::RequireMfa), _)
            if matches!(
                c.resource,
                Some(Resource::Ldap) | Some(Resource::Directory(_))
            ) =>
        {
            MfaNeed::Refuse(DenyReason::MfaRequiredNoFactor)
        }
        (Some(PolicyAction::RequireMfa), _) if c.by_certificate => MfaNeed::None,
        (Some(PolicyAction::RequireMfa), _) if user.totp_active() => MfaNeed::Code,
        // Not enrolled: in when the user's enrolment period runs (so they can reach the portal to enrol), else out.
        (Some(PolicyAction::RequireMfa), _) => match user.mfa_enrolment_deadline {
            Some(d) if c.at < d => MfaNeed::Enrolling(d),
            _ => MfaNeed::Refuse(DenyReason::MfaNotEnrolled),
        },
        (_, base) => base,
    };
    match &need {
        MfaNeed::Refuse(reason) => {
            note(&mut trace, "mfa", false, &|| reason.describe().to_string());
            return refuse(*reason, verdict);
        }
        MfaNeed::Code => note(&mut trace, "mfa", true, &|| {
            if decided == Some(PolicyAction::RequireMfa) {
                "a verification code is asked, as the policy requires".to_string()
            } else {
                "a verification code is asked (the user has TOTP, or the resource requires it)"
                    .to_string()
            }
        }),
        MfaNeed::Enrolling(d) => note(&mut trace, "mfa", true, &|| {
            format!(
                "MFA is required; the user may enrol until {}",
                d.to_rfc3339()
            )
        }),
        MfaNeed::None => note(&mut trace, "mfa", true, &|| {
            if decided == Some(PolicyAction::Allow) {
                "no verification code is asked: the policy allows the password alone".to_string()
            } else if c.by_certificate {
                "the certificate stands for the second factor".to_string()
            } else {
                "no verification code is asked".to_string()
            }
        }),
    }
    Ok(Access {
        groups,
        need,
        verdict,
    })
}

/// A policy verdict in an event: the policy that decided (`null`: none matched, the binding decided) and what
/// report-only policies would have done.
fn with_verdict(mut e: Event, v: Option<&Verdict>) -> Event {
    let Some(v) = v else {
        return e;
    };
    e = e.detail(
        "policy",
        serde_json::to_value(&v.decided).unwrap_or_default(),
    );
    if !v.report_only.is_empty() {
        e = e.detail(
            "report_only",
            serde_json::to_value(&v.report_only).unwrap_or_default(),
        );
    }
    e
}

impl Directory {
    /// Authenticate a login attempt for any protocol.
    /// The user name a sign-in form's "user name or e-mail" field stands for: the user with that user name, else
    /// the user with that login name (an e-mail-shaped SCIM userName), else the user with that e-mail address
    /// (all case-insensitive), else the text unchanged (which then fails as an unknown user, at the same cost as
    /// any other refusal). For the login page, the portal and RADIUS; LDAP binds name a DN.
    pub fn login_name(&self, typed: &str) -> String {
        let typed = typed.trim();
        let snap = self.snapshot();
        if let Some(u) = snap.user_by_login_name(typed) {
            return u.username.clone();
        }
        if !typed.contains('@') {
            return typed.to_string();
        }
        snap.user_by_mail(typed)
            .map_or_else(|| typed.to_string(), |u| u.username.clone())
    }

    pub async fn authenticate(&self, req: AuthRequest) -> Result<AuthOutcome> {
        if let Some(refused) = self.throttled(&req).await {
            return Ok(refused);
        }
        let snap = self.snapshot();
        let now = Utc::now();
        let Some(user) = snap.user_by_login_name(&req.username).cloned() else {
            self.spend_verification(&req).await;
            return self.deny(&req, None, DenyReason::UnknownUser).await;
        };
        if let Some(refused) = self.unusable(&req, &user, now).await? {
            return Ok(refused);
        }
        let mut authenticator_response = None;
        let mut mppe_keys = None;
        match &req.credential {
            Credential::Password(password) => {
                let Some(hash) = user.password_hash.as_deref() else {
                    self.spend_verification(&req).await;
                    return self
                        .deny(&req, Some(&user), DenyReason::PasswordPending)
                        .await;
                };
                if !self.cache.check(&user.id, user.auth_revision, password) {
                    let ok = if hash == crate::legacy_hash::NT_ONLY {
                        self.verify_nt_only(&user, password)
                    } else {
                        self.verify_password(hash, password).await
                    };
                    if !ok {
                        return self.fail(&req, &user, DenyReason::WrongPassword).await;
                    }
                    self.cache.remember(&user.id, user.auth_revision, password);
                    if user.legacy_hash_scheme().is_some() {
                        self.rehash_legacy(&user, hash, password).await;
                    } else {
                        self.rehash_if_weaker(&user, hash, password).await;
                    }
                }
            }
            Credential::MsChapV2(proof) => {
                if user.password_hash.is_none() {
                    return self
                        .deny(&req, Some(&user), DenyReason::PasswordPending)
                        .await;
                }
                let Some(nt) = self.user_nt_hash(&user) else {
                    return self
                        .deny(&req, Some(&user), DenyReason::NtHashMissing)
                        .await;
                };
                match crate::mschapv2::verify(proof, &nt) {
                    Some(s) => {
                        authenticator_response = Some(s.authenticator_response);
                        mppe_keys = Some(s.keys);
                    }
                    None => return self.fail(&req, &user, DenyReason::WrongPassword).await,
                }
            }
            Credential::Certificate { .. } => {}
            Credential::Session => {
                return self.fail(&req, &user, DenyReason::WrongPassword).await;
            }
        }
        let by_certificate = matches!(req.credential, Credential::Certificate { .. });
        let checks = AccessChecks {
            resource: req.resource.as_ref(),
            source: req.client_ip,
            at: now,
            by_certificate,
            check_expiry: !by_certificate,
        };
        let access = match decide_access(&snap, &user, checks, None) {
            Ok(a) => a,
            Err(r) => return self.refuse(&req, &user, r).await,
        };
        let verdict = access.verdict;
        let mut grant = AuthGrant {
            user: Arc::clone(&user),
            groups: access.groups,
            mfa_used: by_certificate,
            mfa_enrolment_deadline: None,
            password_expires_at: user.password_expires_at(&snap.policy).filter(|t| {
                *t - chrono::Duration::days(i64::from(snap.policy.expiry_warning_days)) <= now
            }),
            authenticator_response,
            mppe_keys,
        };
        match access.need {
            MfaNeed::None => {}
            MfaNeed::Enrolling(deadline) => grant.mfa_enrolment_deadline = Some(deadline),
            MfaNeed::Refuse(reason) => {
                return self
                    .deny_with(&req, Some(&user), reason, Some(&verdict))
                    .await
            }
            MfaNeed::Code => match req.otp.as_deref() {
                None | Some("") if matches!(req.credential, Credential::MsChapV2(_)) => {
                    return self
                        .deny_with(
                            &req,
                            Some(&user),
                            DenyReason::MfaNotPossible,
                            Some(&verdict),
                        )
                        .await;
                }
                None | Some("") => {
                    self.hold_for_takeover(&req, &user);
                    return Ok(AuthOutcome::NeedMfa(MfaChallenge {
                        user_id: user.id.clone(),
                        username: user.username.clone(),
                        service: req.service,
                        resource: req.resource.clone(),
                        session: req.session.clone(),
                        station: req.station.clone(),
                        issued_at: now,
                    }));
                }
                Some(code) => {
                    if !self.second_factor_ok(&req, &user, code, now).await {
                        return self
                            .fail_with(&req, &user, DenyReason::WrongOtp, Some(&verdict))
                            .await;
                    }
                    grant.mfa_used = true;
                }
            },
        }
        self.succeed(&req, &user, &grant, Some(&verdict)).await?;
        if let (Credential::Password(pw), Service::Portal | Service::Sso) =
            (&req.credential, req.service)
        {
            self.offer_password(&user, pw, true);
        }
        Ok(AuthOutcome::Allow(grant))
    }

    /// Between the password and the code of a portal or login-page sign-in, the password waits in this
    /// process's memory (never stored) for the takeover into external directories, for as long as a challenge
    /// lives. A code answered on another node finds none here: that sign-in pushes nothing, the next one does.
    fn hold_for_takeover(&self, req: &AuthRequest, user: &User) {
        let (Credential::Password(pw), Service::Portal | Service::Sso) =
            (&req.credential, req.service)
        else {
            return;
        };
        if !self.takeover_due(user) {
            return;
        }
        let mut held = self
            .held_passwords
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        held.retain(|_, (at, _)| {
            at.elapsed() < MFA_CHALLENGE_LIFETIME.to_std().unwrap_or_default()
        });
        held.insert(
            user.id.clone(),
            (
                std::time::Instant::now(),
                zeroize::Zeroizing::new(pw.clone()),
            ),
        );
    }

    /// Finish a login that answered [`AuthOutcome::NeedMfa`] with the user's TOTP code. The user's state, lock
    /// and binding are checked again, since time has passed.
    pub async fn complete_mfa(
        &self,
        challenge: &MfaChallenge,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<AuthOutcome> {
        let snap = self.snapshot();
        let now = Utc::now();
        let req = AuthRequest {
            username: challenge.username.clone(),
            credential: Credential::Password(String::new()),
            otp: Some(code.to_string()),
            service: challenge.service,
            resource: challenge.resource.clone(),
            client_ip,
            session: challenge.session.clone(),
            station: challenge.station.clone(),
        };
        let Some(user) = snap.user(&challenge.user_id).cloned() else {
            return self.deny(&req, None, DenyReason::UnknownUser).await;
        };
        if user.state != UserState::Active {
            return self.deny(&req, Some(&user), DenyReason::Suspended).await;
        }
        if user.is_locked(now) {
            return self.deny(&req, Some(&user), DenyReason::Locked).await;
        }
        if now - challenge.issued_at > MFA_CHALLENGE_LIFETIME {
            return self
                .deny(&req, Some(&user), DenyReason::ChallengeExpired)
                .await;
        }
        // Policies and bindings are judged again, from this step's source: one added or changed meanwhile counts.
        let checks = AccessChecks {
            resource: challenge.resource.as_ref(),
            source: client_ip,
            at: now,
            by_certificate: false,
            check_expiry: false,
        };
        let access = match decide_access(&snap, &user, checks, None) {
            Ok(a) => a,
            Err(r) => return self.refuse(&req, &user, r).await,
        };
        if !self.second_factor_ok(&req, &user, code, now).await {
            return self
                .fail_with(&req, &user, DenyReason::WrongOtp, Some(&access.verdict))
                .await;
        }
        let grant = AuthGrant {
            user: Arc::clone(&user),
            groups: access.groups,
            mfa_used: true,
            mfa_enrolment_deadline: None,
            password_expires_at: None,
            authenticator_response: None,
            mppe_keys: None,
        };
        self.succeed(&req, &user, &grant, Some(&access.verdict))
            .await?;
        let held = self
            .held_passwords
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user.id);
        if let Some((at, pw)) = held {
            if at.elapsed() < MFA_CHALLENGE_LIFETIME.to_std().unwrap_or_default() {
                self.offer_password(&user, &pw, true);
            }
        }
        Ok(AuthOutcome::Allow(grant))
    }

    /// The revocation rule, one for every kind of session (an LDAP connection bound as the user, an IdP or
    /// portal session): why a session opened for `user` when their `auth_revision` was `revision` may no longer
    /// be used, checked against the live snapshot on every operation. `None` means it still may. A session ends
    /// when the user is gone, is not active, is locked, had a password set or reset, a lock or a state change
    /// since (any of which moves `auth_revision`), when the password has expired, and — for a session on a
    /// resource — when no group of the user is bound to it any more, or an access policy now denies it from
    /// `source` (a time window that has begun, an IP list that changed).
    pub fn session_refusal(
        &self,
        user: &Id,
        revision: u64,
        resource: Option<&Resource>,
        source: Option<IpAddr>,
    ) -> Option<DenyReason> {
        let snap = self.snapshot();
        let now = Utc::now();
        let Some(u) = snap.user(user) else {
            return Some(DenyReason::UnknownUser);
        };
        let refusal = match u.state {
            UserState::Staged => Some(DenyReason::Staged),
            UserState::Suspended => Some(DenyReason::Suspended),
            UserState::Active if u.is_locked(now) => Some(DenyReason::Locked),
            UserState::Active if u.auth_revision != revision => {
                Some(DenyReason::CredentialsChanged)
            }
            UserState::Active
                if u.password_status(&snap.policy, now) == PasswordStatus::Expired =>
            {
                Some(DenyReason::PasswordExpired)
            }
            UserState::Active => None,
        };
        refusal.or_else(|| {
            let r = resource?;
            let checks = AccessChecks {
                resource: Some(r),
                source,
                at: now,
                by_certificate: false,
                check_expiry: false,
            };
            decide_access(&snap, u, checks, None)
                .err()
                .map(|r| r.reason)
        })
    }

    /// [`Directory::session_refusal`] for a session on no particular resource (the portal, an IdP session).
    pub fn user_session_valid(&self, user: &Id, revision: u64) -> bool {
        self.session_refusal(user, revision, None, None).is_none()
    }

    /// A user signed in earlier (an IdP session) reaching `resource`: state, lock, password expiry and binding are
    /// checked again and the attempt is recorded like a login, with method `session`. When the resource needs a
    /// code and the session was made without one, the answer is [`AuthOutcome::NeedMfa`] (finish it with
    /// [`Directory::complete_mfa`]).
    pub async fn authorize_session(
        &self,
        user_id: &Id,
        session_mfa: bool,
        service: Service,
        resource: Option<Resource>,
        client_ip: Option<IpAddr>,
    ) -> Result<AuthOutcome> {
        let snap = self.snapshot();
        let now = Utc::now();
        let user = snap.user(user_id).cloned();
        let req = AuthRequest {
            username: user
                .as_ref()
                .map(|u| u.username.clone())
                .unwrap_or_default(),
            credential: Credential::Session,
            otp: None,
            service,
            resource: resource.clone(),
            client_ip,
            session: None,
            station: None,
        };
        let Some(user) = user else {
            return self.deny(&req, None, DenyReason::UnknownUser).await;
        };
        if let Some(refused) = self.unusable(&req, &user, now).await? {
            return Ok(refused);
        }
        let checks = AccessChecks {
            resource: resource.as_ref(),
            source: client_ip,
            at: now,
            by_certificate: false,
            check_expiry: true,
        };
        let access = match decide_access(&snap, &user, checks, None) {
            Ok(a) => a,
            Err(r) => return self.refuse(&req, &user, r).await,
        };
        let mut grant = AuthGrant {
            user: Arc::clone(&user),
            groups: access.groups,
            mfa_used: session_mfa,
            mfa_enrolment_deadline: None,
            password_expires_at: None,
            authenticator_response: None,
            mppe_keys: None,
        };
        match access.need {
            MfaNeed::None => {}
            MfaNeed::Enrolling(deadline) => grant.mfa_enrolment_deadline = Some(deadline),
            MfaNeed::Refuse(reason) => {
                return self
                    .deny_with(&req, Some(&user), reason, Some(&access.verdict))
                    .await
            }
            MfaNeed::Code if session_mfa => {}
            MfaNeed::Code => {
                return Ok(AuthOutcome::NeedMfa(MfaChallenge {
                    user_id: user.id.clone(),
                    username: user.username.clone(),
                    service,
                    resource,
                    session: None,
                    station: None,
                    issued_at: now,
                }))
            }
        }
        self.succeed(&req, &user, &grant, Some(&access.verdict))
            .await?;
        Ok(AuthOutcome::Allow(grant))
    }

    /// One argon2id verification of a login's password, counted (`/metrics`).
    async fn verify_password(&self, hash: &str, password: &str) -> bool {
        self.password_verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.hasher.verify(hash, password).await
    }

    /// A user who came with a Samba NT hash only: the password is checked against it (MD4 of UTF-16LE).
    fn verify_nt_only(&self, user: &User, password: &str) -> bool {
        self.password_verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.user_nt_hash(user).is_some_and(|nt| {
            crate::crypto::constant_time_eq(&crate::directory::nt_hash(password), &nt)
        })
    }

    /// A refusal decided before the password is checked (unknown user, staged, suspended, locked, no password
    /// yet) still costs one verification, against a dummy hash: otherwise an unauthenticated client could tell
    /// account states apart by the answer's speed.
    async fn spend_verification(&self, req: &AuthRequest) {
        if let Credential::Password(password) = &req.credential {
            self.verify_password(&self.dummy_hash, password).await;
        }
    }

    /// Login password verifications (argon2id) so far, refusals' dummy ones included.
    pub fn password_verifications(&self) -> u64 {
        self.password_verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `Some(refusal)`, already recorded, when the user's state or lock keeps them out whatever they prove. The
    /// password is still verified, at the cost of any other attempt: only someone who gives the right one is told
    /// the account is locked, suspended or not active yet; anyone else hears "wrong password", as for any
    /// refusal, and nothing about the account. The event records the real reason either way, and no failure
    /// is counted against an account that is already out of reach.
    async fn unusable(
        &self,
        req: &AuthRequest,
        user: &User,
        now: DateTime<Utc>,
    ) -> Result<Option<AuthOutcome>> {
        let Some(reason) = state_refusal(user, now) else {
            return Ok(None);
        };
        let proven = match (&req.credential, user.password_hash.as_deref()) {
            (Credential::Password(pw), Some(hash))
                if hash != crate::legacy_hash::NT_ONLY && !pw.is_empty() =>
            {
                self.verify_password(hash, pw).await
            }
            _ => {
                self.spend_verification(req).await;
                false
            }
        };
        let outcome = self.deny(req, Some(user), reason).await?;
        Ok(Some(if proven {
            outcome
        } else {
            AuthOutcome::Deny(DenyReason::WrongPassword)
        }))
    }

    /// The second factor: a current TOTP code, or one of the user's unused recovery codes (spent here, in a
    /// write, so of two concurrent uses exactly one succeeds).
    async fn second_factor_ok(
        &self,
        req: &AuthRequest,
        user: &User,
        code: &str,
        now: DateTime<Utc>,
    ) -> bool {
        if self.user_totp_ok(user, code, now) {
            return true;
        }
        let Some(code) = crate::recovery::normalize(code) else {
            return false;
        };
        let digest = crate::recovery::digest(&user.id, &code);
        if !user.totp_active() || !user.recovery_codes.contains(&digest) {
            return false;
        }
        let id = user.id.clone();
        let event = self.auth_event(req, Some(user), true);
        let used = self
            .write(move |tx| {
                let Some(current) = tx.snap.user(&id).cloned() else {
                    return Ok(false);
                };
                let Some(at) = current.recovery_codes.iter().position(|d| *d == digest) else {
                    return Ok(false);
                };
                let mut u = (*current).clone();
                u.recovery_codes.remove(at);
                let mut e = event;
                e.event_type = "recovery_code_used".into();
                tx.event(e.detail("recovery_codes_left", u.recovery_codes.len()));
                tx.put_user(u);
                Ok(true)
            })
            .await;
        used.unwrap_or(false)
    }

    fn user_totp_ok(&self, user: &User, code: &str, now: DateTime<Utc>) -> bool {
        match user.totp.as_ref().filter(|t| t.confirmed) {
            Some(t) => {
                self.check_totp(&user.id, &format!("totp:{}", user.id), &t.secret, code, now)
            }
            None => false,
        }
    }

    /// The event of an authentication. A name that matches no account is not recorded as given (it may be a
    /// password typed into the name field): the event names `unknown name #<keyed digest>` instead.
    fn auth_event(&self, req: &AuthRequest, user: Option<&User>, success: bool) -> Event {
        let mut e = Event::new(req.service, event_type(req.service), success)
            .client(req.client_ip)
            .user(user.map_or_else(
                || crate::crypto::unknown_name(&self.master_key, &req.username),
                |u| u.username.clone(),
            ));
        e.actor = e.username.clone();
        if let Some(u) = user {
            e = e.target("user", &u.id);
        }
        if let Some(r) = &req.resource {
            e = e.detail("resource", r.to_string());
        }
        if let Some(s) = &req.session {
            e = e.detail("session", s.clone());
        }
        // The RADIUS Calling-Station-Id, for reporting (policies match the NAS's address).
        if let Some(s) = &req.station {
            e = e.detail("calling_station_id", s.chars().take(64).collect::<String>());
        }
        e = e.detail("method", req.credential.method());
        if let Credential::Certificate { subject } = &req.credential {
            e = e.detail("certificate_subject", subject.clone());
        }
        e
    }

    /// The throttle's verdict on an attempt from this request's source: a refusal (recorded once per window), or
    /// `None` after any wait it asks for.
    async fn throttled(&self, req: &AuthRequest) -> Option<AuthOutcome> {
        use crate::throttle::{source_key, Verdict};
        let key = source_key(req.client_ip, req.station.as_deref());
        match self.throttle.check(req.client_ip, key.as_deref()) {
            Verdict::Go => None,
            Verdict::Wait(d) => {
                tokio::time::sleep(d).await;
                None
            }
            Verdict::Refuse { first } => {
                if first {
                    let mut e = Event::new(req.service, "auth_throttled", false)
                        .client(req.client_ip)
                        .reason(DenyReason::Throttled.describe());
                    if let Some(k) = &key {
                        e = e.detail("source", k.clone());
                    }
                    self.record(e).await;
                }
                Some(AuthOutcome::Deny(DenyReason::Throttled))
            }
        }
    }

    /// Count a failed attempt against its source, on this node and, when other nodes share the store, in a
    /// counter they all add to (one store write per failure; successes cost nothing).
    pub(crate) fn count_failure(&self, ip: Option<std::net::IpAddr>, station: Option<&str>) {
        let Some(key) = crate::throttle::source_key(ip, station) else {
            return;
        };
        self.throttle.failed(ip, Some(&key));
        if !self.store().is_shared() || !self.throttle.counts(ip) {
            return;
        }
        let (start, end) = self.throttle.shared_window(Utc::now().timestamp());
        let expires = DateTime::from_timestamp(end, 0).unwrap_or_else(Utc::now);
        let name = format!("{}/{start}", crate::crypto::sha256_hex(key.as_bytes()));
        match self.store().ephemeral_count("throttle", &name, 1, expires) {
            Ok(total) => self.throttle.learn(&key, total),
            Err(e) => {
                tracing::warn!(error = %e, "a failed attempt could not be counted in the shared store")
            }
        }
    }

    async fn deny(
        &self,
        req: &AuthRequest,
        user: Option<&User>,
        reason: DenyReason,
    ) -> Result<AuthOutcome> {
        self.deny_with(req, user, reason, None).await
    }

    /// A refusal after the credential was proven.
    async fn refuse(&self, req: &AuthRequest, user: &User, r: Refusal) -> Result<AuthOutcome> {
        self.deny_with(req, Some(user), r.reason, r.verdict.as_ref())
            .await
    }

    /// A refusal, recorded with the policies' verdict when they were evaluated.
    async fn deny_with(
        &self,
        req: &AuthRequest,
        user: Option<&User>,
        reason: DenyReason,
        verdict: Option<&Verdict>,
    ) -> Result<AuthOutcome> {
        if reason == DenyReason::UnknownUser {
            self.count_failure(req.client_ip, req.station.as_deref());
        }
        let e = self
            .auth_event(req, user, false)
            .reason(reason.describe())
            .detail("deny", serde_json::to_value(reason).unwrap_or_default());
        self.record(with_verdict(e, verdict)).await;
        Ok(AuthOutcome::Deny(reason))
    }

    /// A failure that counts towards lockout.
    async fn fail(
        &self,
        req: &AuthRequest,
        user: &User,
        reason: DenyReason,
    ) -> Result<AuthOutcome> {
        self.fail_with(req, user, reason, None).await
    }

    async fn fail_with(
        &self,
        req: &AuthRequest,
        user: &User,
        reason: DenyReason,
        verdict: Option<&Verdict>,
    ) -> Result<AuthOutcome> {
        self.count_failure(req.client_ip, req.station.as_deref());
        let id = user.id.clone();
        let event = self
            .auth_event(req, Some(user), false)
            .reason(reason.describe())
            .detail("deny", serde_json::to_value(reason).unwrap_or_default());
        let event = with_verdict(event, verdict);
        let lock_event = self.auth_event(req, Some(user), true);
        self.write(move |tx| {
            let Some(u) = tx.snap.user(&id).cloned() else {
                tx.event(event);
                return Ok(());
            };
            let policy = Arc::clone(&tx.snap.policy);
            let mut u = (*u).clone();
            if u.locked_until.is_some_and(|t| t <= tx.now) {
                // A lock that has run out starts a fresh count.
                u.locked_until = None;
                u.failed_logins = 0;
            }
            u.failed_logins += 1;
            let mut event = event.detail("failed_logins", u.failed_logins);
            if policy.lockout.enabled
                && u.failed_logins >= policy.lockout.max_failures
                && !u.is_locked(tx.now)
            {
                let until = crate::directory::lock_until(&policy, tx.now);
                u.locked_until = Some(until);
                u.auth_revision += 1;
                event = event.detail("locked", true);
                let mut lock = lock_event;
                lock.event_type = "user_lockout".into();
                lock.service = Service::Directory;
                tx.event(
                    lock.detail("locked_until", until.to_rfc3339())
                        .detail("failures", u.failed_logins),
                );
            }
            tx.event(event);
            tx.put_user_counters(u);
            Ok(())
        })
        .await?;
        self.cache.forget(&user.id);
        Ok(AuthOutcome::Deny(reason))
    }

    async fn succeed(
        &self,
        req: &AuthRequest,
        user: &User,
        grant: &AuthGrant,
        verdict: Option<&Verdict>,
    ) -> Result<()> {
        let mut e = with_verdict(
            self.auth_event(req, Some(user), true)
                .detail("mfa", grant.mfa_used),
            verdict,
        );
        if let Some(d) = grant.mfa_enrolment_deadline {
            e = e.detail("mfa_enrolment_deadline", d.to_rfc3339());
        }
        // A session proves nothing new, so it does not clear the failure count a password guesser built up.
        if user.failed_logins > 0 && !matches!(req.credential, Credential::Session) {
            let id = user.id.clone();
            self.write(move |tx| {
                if let Some(u) = tx.snap.user(&id).cloned() {
                    let mut u = (*u).clone();
                    u.failed_logins = 0;
                    tx.put_user_counters(u);
                }
                tx.event(e);
                Ok(())
            })
            .await
        } else {
            self.record(e).await;
            Ok(())
        }
    }
}
