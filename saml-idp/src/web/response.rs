//! The SAML Response posted to an SP's ACS: for a granted login the assertion (NameID, attributes, signed and
//! optionally encrypted as the app asks), recorded as an `sso_assertion` event and added to the IdP session; or
//! a SAML error status.

use super::{internal, Idp};
use crate::pages;
use crate::protocol::{self as p, AssertionFacts, SamlError};
use crate::sessions::{IdpSession, PendingSso, SpSession, State};
use crate::xml;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use core_directory::model::{NameIdFormat, SignTarget, SsoApp};
use core_directory::{AuthGrant, Event, Service};

fn nameid(app: &SsoApp, grant: &AuthGrant, format: Option<&'static str>) -> (&'static str, String) {
    let format = format.unwrap_or(match app.nameid_format {
        NameIdFormat::Email => p::NAMEID_EMAIL,
        NameIdFormat::Persistent => p::NAMEID_PERSISTENT,
        NameIdFormat::Unspecified => p::NAMEID_UNSPECIFIED,
        NameIdFormat::Transient => p::NAMEID_TRANSIENT,
    });
    let u = &grant.user;
    let value = match format {
        p::NAMEID_EMAIL => u.email.clone(),
        p::NAMEID_PERSISTENT => {
            let d = aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                format!("{}:{}:{}", app.nameid_salt, app.id, u.id).as_bytes(),
            );
            data_encoding::BASE64URL_NOPAD.encode(d.as_ref())
        }
        p::NAMEID_TRANSIENT => p::new_id(),
        _ => u.username.clone(),
    };
    (format, value)
}

fn attributes(idp: &Idp, app: &SsoApp, grant: &AuthGrant) -> Vec<(String, Vec<String>)> {
    let snap = idp.dir.snapshot();
    let u = &grant.user;
    let custom = snap.effective_attributes(u);
    app.attributes
        .iter()
        .filter_map(|m| {
            let values = match m.source.as_str() {
                "email" => vec![u.email.clone()],
                "firstname" => vec![u.firstname.clone()],
                "lastname" => vec![u.lastname.clone()],
                "username" => vec![u.username.clone()],
                "groups" => {
                    let mut g: Vec<String> =
                        snap.groups_of(&u.id).map(|g| g.name.clone()).collect();
                    g.sort();
                    g
                }
                other => match other.strip_prefix("attribute:").and_then(|n| custom.get(n)) {
                    Some(v) => vec![v.clone()],
                    None => return None,
                },
            };
            Some((m.name.clone(), values))
        })
        .collect()
}

/// Build, sign and post the Response for a granted login.
pub(super) async fn deliver(
    idp: &Idp,
    token: &str,
    s: &IdpSession,
    grant: &AuthGrant,
    pending: &PendingSso,
) -> Response {
    let Ok(app) = idp.dir.get_app_record(&pending.app) else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "The application was removed.",
        );
    };
    let signer = match idp.signer(&app) {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    let (format, value) = nameid(&app, grant, pending.nameid_format);
    let now = Utc::now();
    let facts = AssertionFacts {
        idp_entity_id: idp.entity_id(&app.id),
        sp_entity_id: app.sp_entity_id.clone(),
        acs_url: pending.acs_url.clone(),
        in_response_to: pending.request_id.clone(),
        nameid_format: format,
        nameid: value.clone(),
        session_index: s.index.clone(),
        authn_instant: s.authn_instant,
        session_not_on_or_after: Some(State::session_deadline(s, idp.lifetimes())),
        mfa: s.mfa || grant.mfa_used,
        attributes: attributes(idp, &app, grant),
        now,
        lifetime: chrono::Duration::from_std(idp.settings.assertion_lifetime).unwrap_or_default(),
    };
    let mut assertion = p::assertion(&facts);
    if matches!(app.sign, SignTarget::Assertion | SignTarget::Both) {
        signer.sign_enveloped(&mut assertion, 1);
    }
    let body = if app.encrypt_assertion {
        match app
            .sp_encryption_certificate
            .as_deref()
            .or(app.sp_certificate.as_deref())
            .map(|c| crate::encrypt::encrypt_assertion(&assertion, c))
        {
            Some(Ok(e)) => e,
            Some(Err(e)) => return internal(&e),
            None => {
                return pages::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    "the app wants encrypted assertions but has no SP certificate",
                )
            }
        }
    } else {
        assertion
    };
    let mut response = p::response(
        &facts.idp_entity_id,
        &pending.acs_url,
        pending.request_id.as_deref(),
        p::STATUS_SUCCESS,
        None,
        now,
        Some(body),
    );
    if matches!(app.sign, SignTarget::Response | SignTarget::Both) {
        signer.sign_enveloped(&mut response, 1);
    }
    idp.dir
        .record(
            Event::new(Service::Sso, "sso_assertion", true)
                .user(grant.user.username.clone())
                .target("app", &app.id)
                .detail("acs", pending.acs_url.clone())
                .detail("nameid_format", format)
                .detail("session_index", s.index.clone())
                .detail("solicited", pending.request_id.is_some())
                .detail("mfa", facts.mfa),
        )
        .await;
    idp.state.add_app(
        token,
        SpSession {
            app: app.id.clone(),
            nameid: value,
        },
    );
    let relay = pending.relay_state.clone().or_else(|| {
        pending
            .request_id
            .is_none()
            .then(|| app.default_relay_state.clone())
            .flatten()
    });
    let encoded = data_encoding::BASE64.encode(xml::to_string(&response).as_bytes());
    pages::post_form(&pending.acs_url, "SAMLResponse", &encoded, relay.as_deref())
}

/// A SAML error status posted back to a validated ACS URL.
pub(super) fn saml_error(
    idp: &Idp,
    app: &SsoApp,
    acs: &str,
    in_response_to: Option<&str>,
    relay: Option<&str>,
    e: SamlError,
) -> Response {
    let mut r = p::response(
        &idp.entity_id(&app.id),
        acs,
        in_response_to,
        e.status,
        Some(&e.message),
        Utc::now(),
        None,
    );
    if let Ok(signer) = idp.signer(app) {
        signer.sign_enveloped(&mut r, 1);
    }
    let encoded = data_encoding::BASE64.encode(xml::to_string(&r).as_bytes());
    pages::post_form(acs, "SAMLResponse", &encoded, relay)
}
