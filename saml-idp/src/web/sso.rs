//! SP-initiated SSO: AuthnRequests over HTTP-Redirect and HTTP-POST, checked and then answered through a live IdP
//! session (the core decides) or the login page; and IdP-initiated launch from the portal.
//!
//! Until an AuthnRequest's issuer and ACS URL are known to belong to the app, a bad request gets an error page
//! (there is nowhere safe to send a SAML answer); after that, refusals go back to the SP as a SAML status.

use super::login::start_login;
use super::response::{deliver, saml_error};
use super::sp_request::{check_signature, posted, PostedForm, Signature, MAX_RELAY_STATE, STALE};
use super::{app_of, denied_page, internal, ip, Idp};
use crate::binding::{self, Incoming};
use crate::pages;
use crate::protocol::{self as p, SamlError};
use crate::sessions::{IdpSession, PendingSso, Stage};
use crate::xml::{self, Limits};
use axum::extract::{ConnectInfo, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use core_directory::model::{NameIdFormat, Resource};
use core_directory::{AuthOutcome, DenyReason, Service};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn sso_redirect(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
) -> Response {
    let msg = binding::from_redirect(q.as_deref().unwrap_or(""), "SAMLRequest");
    sso(idp, app, msg, headers, ip(&c)).await
}

pub(super) async fn sso_post(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    form: PostedForm,
) -> Response {
    sso(idp, app, posted(form), headers, ip(&c)).await
}

async fn sso(
    idp: Idp,
    app_id: String,
    msg: Result<Incoming, binding::BindingError>,
    headers: HeaderMap,
    ip: Option<IpAddr>,
) -> Response {
    let Some(app) = app_of(&idp, &app_id) else {
        idp.event("sso_request", false, None, ip, "unknown application")
            .await;
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application.",
        );
    };
    let refuse = |reason: String| {
        let idp = idp.clone();
        let app = Arc::clone(&app);
        async move {
            idp.event("sso_request", false, Some(&app.id), ip, &reason)
                .await;
            pages::error_page(StatusCode::BAD_REQUEST, "Sign-in request refused", &reason)
        }
    };
    let msg = match msg {
        Ok(m) => m,
        Err(e) => return refuse(e.to_string()).await,
    };
    let root = match xml::parse(&msg.xml, Limits::default()) {
        Ok(r) => r,
        Err(e) => return refuse(e.to_string()).await,
    };
    let req = match p::read_authn_request(&root) {
        Ok(r) => r,
        Err(e) => return refuse(e.message).await,
    };
    if req.issuer != app.sp_entity_id {
        return refuse("the request's issuer is not this application's SP entity id".to_string())
            .await;
    }
    let signature = match check_signature(&app, &root, &msg) {
        Ok(s) => s,
        Err(e) => return refuse(e).await,
    };
    if signature != Signature::None && req.destination.is_none() {
        // The bindings require Destination on signed messages, so the signature pins the endpoint.
        return refuse("a signed request must name its Destination".into()).await;
    }
    let acs = match (&req.acs_url, req.acs_index) {
        (Some(u), _) => app.acs_urls.iter().find(|a| *a == u).cloned(),
        (None, Some(i)) => {
            if app.acs_indexes.len() == app.acs_urls.len() {
                app.acs_indexes
                    .iter()
                    .position(|x| usize::try_from(*x).is_ok_and(|x| x == i))
                    .and_then(|p| app.acs_urls.get(p).cloned())
            } else {
                app.acs_urls.get(i).cloned()
            }
        }
        (None, None) => app.acs_urls.first().cloned(),
    };
    let Some(acs) = acs else {
        return refuse(
            "the AssertionConsumerServiceURL is not registered for this application".into(),
        )
        .await;
    };
    if let Some(d) = &req.destination {
        if *d != idp.sso_url(&app.id) {
            return refuse("the request's Destination is not this SSO endpoint".into()).await;
        }
    }
    if !idp.timely(req.issue_instant) {
        return refuse(STALE.into()).await;
    }
    let window = idp.settings.clock_skew * 2 + Duration::from_secs(600);
    if !idp.state.first_sighting(&app.id, &req.id, window) {
        return refuse("this request was already used (replayed request ID)".into()).await;
    }
    let relay = msg.relay_state.clone();
    if relay
        .as_deref()
        .is_some_and(|r| r.len() > MAX_RELAY_STATE || r.chars().any(char::is_control))
    {
        return refuse(format!(
            "the RelayState is longer than {MAX_RELAY_STATE} bytes or holds control characters"
        ))
        .await;
    }
    // An app set to an opaque NameID (persistent or transient) does not hand out e-mail addresses because the
    // SP asked for them.
    let opaque = matches!(
        app.nameid_format,
        NameIdFormat::Persistent | NameIdFormat::Transient
    );
    let nameid_format = match req.nameid_format.as_deref() {
        None | Some(p::NAMEID_UNSPECIFIED) => None,
        Some(p::NAMEID_EMAIL) if !opaque => Some(p::NAMEID_EMAIL),
        Some(p::NAMEID_PERSISTENT) => Some(p::NAMEID_PERSISTENT),
        Some(p::NAMEID_TRANSIENT) => Some(p::NAMEID_TRANSIENT),
        Some(_) => {
            idp.event(
                "sso_request",
                false,
                Some(&app.id),
                ip,
                "unsupported NameIDPolicy format",
            )
            .await;
            return saml_error(
                &idp,
                &app,
                &acs,
                Some(&req.id),
                relay.as_deref(),
                SamlError {
                    status: p::STATUS_INVALID_NAMEID_POLICY,
                    message: "the requested NameID format is not supported".into(),
                },
            );
        }
    };
    let pending = PendingSso {
        app: app.id.clone(),
        request_id: Some(req.id.clone()),
        acs_url: acs.clone(),
        relay_state: relay.clone(),
        nameid_format,
        is_passive: req.is_passive,
    };
    let session = idp.session(&headers);
    match session {
        Some((t, s)) if !req.force_authn => continue_sso(&idp, &t, &s, pending, &headers, ip).await,
        _ if req.is_passive => {
            idp.event(
                "sso_request",
                false,
                Some(&app.id),
                ip,
                "IsPassive and no session",
            )
            .await;
            saml_error(
                &idp,
                &app,
                &acs,
                Some(&req.id),
                relay.as_deref(),
                SamlError {
                    status: p::STATUS_NO_PASSIVE,
                    message: "the user is not signed in".into(),
                },
            )
        }
        _ => start_login(&idp, Some(pending), &headers, None),
    }
}

/// A signed-in browser reaching an app: the core decides, then the assertion goes out.
async fn continue_sso(
    idp: &Idp,
    token: &str,
    s: &IdpSession,
    pending: PendingSso,
    headers: &HeaderMap,
    ip: Option<IpAddr>,
) -> Response {
    let outcome = idp
        .dir
        .authorize_session(
            &s.user,
            s.mfa,
            Service::Sso,
            Some(Resource::App(pending.app.clone())),
            ip,
        )
        .await;
    match outcome {
        Ok(AuthOutcome::Allow(grant)) => deliver(idp, token, s, &grant, &pending).await,
        Ok(AuthOutcome::NeedMfa(_)) if pending.is_passive => passive_refusal(
            idp,
            &pending,
            p::STATUS_NO_PASSIVE,
            "a verification code is needed",
        ),
        Ok(AuthOutcome::NeedMfa(ch)) => start_login(
            idp,
            Some(pending),
            headers,
            Some((Stage::Totp(ch), s.user.clone())),
        ),
        Ok(AuthOutcome::Deny(reason)) => {
            if !matches!(
                reason,
                DenyReason::NotBound
                    | DenyReason::UnknownResource
                    | DenyReason::PolicyDenied
                    | DenyReason::MfaNotEnrolled
            ) {
                // The session is no good for anything now (suspended, locked, expired password, …).
                idp.state.end_session(token);
            }
            if pending.is_passive {
                return passive_refusal(idp, &pending, p::STATUS_REQUEST_DENIED, "access refused");
            }
            if reason == DenyReason::PasswordExpired {
                // Through the login page, which leads to the new-password form.
                return start_login(idp, Some(pending), headers, None);
            }
            denied_page(idp, Some(&pending.app), reason)
        }
        Err(e) => internal(&e.to_string()),
    }
}

/// An IsPassive request that cannot be answered with an assertion: a SAML status back to the SP.
fn passive_refusal(
    idp: &Idp,
    pending: &PendingSso,
    status: &'static str,
    message: &str,
) -> Response {
    match idp.dir.get_app_record(&pending.app) {
        Ok(app) => saml_error(
            idp,
            &app,
            &pending.acs_url,
            pending.request_id.as_deref(),
            pending.relay_state.as_deref(),
            SamlError {
                status,
                message: message.into(),
            },
        ),
        Err(_) => pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "The application was removed.",
        ),
    }
}

pub(super) async fn launch(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
) -> Response {
    let Some(app) = app_of(&idp, &app).filter(|a| a.idp_initiated) else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application to launch.",
        );
    };
    let Some(acs) = app.acs_urls.first().cloned() else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "The application has no ACS URL.",
        );
    };
    let pending = PendingSso {
        app: app.id.clone(),
        request_id: None,
        acs_url: acs,
        relay_state: app.default_relay_state.clone(),
        nameid_format: None,
        is_passive: false,
    };
    match idp.session(&headers) {
        Some((t, s)) => continue_sso(&idp, &t, &s, pending, &headers, ip(&c)).await,
        None => start_login(&idp, Some(pending), &headers, None),
    }
}
