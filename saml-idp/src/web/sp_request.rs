//! What SSO and SLO check alike on a request from an SP: the HTTP-POST form it came in, its signature against the
//! app's rules, and the limits on IssueInstant and RelayState.

use crate::binding::{self, Incoming};
use crate::dsig;
use crate::xml::Element;
use axum::extract::Form;
use core_directory::model::SsoApp;
use serde::Deserialize;

pub(super) const STALE: &str = "the request's IssueInstant is too far from the current time";
/// The SAML bindings ask SPs for at most 80 bytes; real SPs send URLs, so Stratus takes up to this much.
pub(super) const MAX_RELAY_STATE: usize = 1024;

#[derive(Deserialize)]
pub(super) struct PostMessage {
    #[serde(rename = "SAMLRequest")]
    pub(super) saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    pub(super) saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

pub(super) type PostedForm = Result<Form<PostMessage>, axum::extract::rejection::FormRejection>;

/// A POST-binding request from its form (a form that could not be read says why).
pub(super) fn posted(form: PostedForm) -> Result<Incoming, binding::BindingError> {
    match form {
        Ok(Form(f)) => binding::from_post(
            f.saml_request.as_deref(),
            f.relay_state.as_deref(),
            "SAMLRequest",
        ),
        Err(e) => Err(binding::BindingError::Form(e.body_text())),
    }
}

/// What a request's signature came to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Signature {
    None,
    /// Signed, but the app has no SP certificate to check it with (proves nothing).
    Unchecked,
    Verified,
}

fn sp_keys(app: &SsoApp) -> Vec<Vec<u8>> {
    app.sp_certificate
        .as_deref()
        .and_then(|c| core_directory::idp_keys::inspect_certificate(c).ok())
        .map(|i| vec![i.rsa_public_key])
        .unwrap_or_default()
}

/// Check a signed or unsigned request's signature against the app's rules.
pub(super) fn check_signature(
    app: &SsoApp,
    root: &Element,
    msg: &Incoming,
) -> Result<Signature, String> {
    if msg.detached.is_none() && !dsig::is_signed(root) {
        return if app.require_signed_requests {
            Err("the app requires signed requests and this one is not signed".into())
        } else {
            Ok(Signature::None)
        };
    }
    let keys = sp_keys(app);
    if keys.is_empty() {
        // Refused only when signing is required.
        return if app.require_signed_requests {
            Err("the app has no SP certificate to check the signature with".into())
        } else {
            Ok(Signature::Unchecked)
        };
    }
    let sha1 = app.signature_algorithm == "rsa-sha1";
    match &msg.detached {
        Some(d) => d.verify(&keys, sha1),
        None => dsig::verify_enveloped(root, &keys, sha1),
    }
    .map(|()| Signature::Verified)
    .map_err(|e| e.to_string())
}
