//! SP-initiated single logout: a LogoutRequest over HTTP-Redirect or HTTP-POST ends IdP sessions, and the signed
//! LogoutResponse goes back to the SP's SLO URL by Redirect or POST.

use super::sp_request::{check_signature, posted, PostedForm, Signature, MAX_RELAY_STATE, STALE};
use super::{app_of, internal, ip, set_cookie, Idp, SESSION_COOKIE};
use crate::binding::{self, Incoming};
use crate::pages;
use crate::protocol as p;
use crate::xml::{self, Limits};
use axum::extract::{ConnectInfo, Form, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use std::net::{IpAddr, SocketAddr};

pub(super) async fn slo_redirect(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
) -> Response {
    let msg = binding::from_redirect(q.as_deref().unwrap_or(""), "SAMLRequest");
    slo(idp, app, msg, headers, ip(&c)).await
}

pub(super) async fn slo_post(
    AxState(idp): AxState<Idp>,
    Path(app): Path<String>,
    headers: HeaderMap,
    c: ConnectInfo<SocketAddr>,
    form: PostedForm,
) -> Response {
    if let Ok(Form(f)) = &form {
        if f.saml_response.is_some() && f.saml_request.is_none() {
            // A LogoutResponse to a logout Stratus never starts: nothing to do.
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "Unexpected message",
                "Stratus did not ask for this logout response.",
            );
        }
    }
    let msg = posted(form);
    slo(idp, app, msg, headers, ip(&c)).await
}

async fn slo(
    idp: Idp,
    app_id: String,
    msg: Result<Incoming, binding::BindingError>,
    headers: HeaderMap,
    ip: Option<IpAddr>,
) -> Response {
    let Some(app) = app_of(&idp, &app_id) else {
        idp.event("sso_logout", false, None, ip, "unknown application")
            .await;
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application.",
        );
    };
    let checked = (|| {
        let msg = msg.map_err(|e| e.to_string())?;
        let root = xml::parse(&msg.xml, Limits::default()).map_err(|e| e.to_string())?;
        let req = p::read_logout_request(&root).map_err(|e| e.message)?;
        if req.issuer != app.sp_entity_id {
            return Err("the request's issuer is not this application's SP entity id".to_string());
        }
        let signed = check_signature(&app, &root, &msg)? == Signature::Verified;
        if !idp.timely(req.issue_instant) {
            return Err(STALE.into());
        }
        match &req.destination {
            Some(d) if *d != idp.slo_url(&app.id) => {
                return Err("the request's Destination is not this SLO endpoint".into())
            }
            None if signed => return Err("a signed request must name its Destination".into()),
            _ => {}
        }
        if msg
            .relay_state
            .as_deref()
            .is_some_and(|r| r.len() > MAX_RELAY_STATE || r.chars().any(char::is_control))
        {
            return Err("the RelayState is too long or holds control characters".into());
        }
        Ok((req, msg.relay_state, signed))
    })();
    let (req, relay, signed) = match checked {
        Ok(v) => v,
        Err(reason) => {
            idp.event("sso_logout", false, Some(&app.id), ip, &reason)
                .await;
            return pages::error_page(StatusCode::BAD_REQUEST, "Logout request refused", &reason);
        }
    };
    // The browser's own session ends on any valid request. Other sessions of that NameID (and SessionIndex)
    // end only on a verified signature: an unsigned request could name anyone.
    let mut ended = 0;
    if let Some((t, s)) = idp.session(&headers) {
        if s.apps
            .iter()
            .any(|a| a.app == app.id && a.nameid == req.name_id)
        {
            idp.state.end_session(&t);
            ended += 1;
        }
    }
    if signed {
        ended += idp
            .state
            .end_matching(&app.id, &req.name_id, &req.session_indexes);
    }
    idp.event(
        "sso_logout",
        true,
        Some(&app.id),
        ip,
        &format!("{ended} IdP session(s) ended"),
    )
    .await;
    let Some(dest) = app.sp_slo_url.clone() else {
        let mut r = pages::info_page("Signed out", "You are signed out.");
        set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
        return r;
    };
    let mut lr = p::logout_response(
        &idp.entity_id(&app.id),
        &dest,
        &req.id,
        p::STATUS_SUCCESS,
        Utc::now(),
    );
    let signer = match idp.signer(&app) {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    let mut r = if app.sp_slo_post {
        signer.sign_enveloped(&mut lr, 1);
        let encoded = data_encoding::BASE64.encode(xml::to_string(&lr).as_bytes());
        pages::post_form(&dest, "SAMLResponse", &encoded, relay.as_deref())
    } else {
        let encoded = binding::deflate_b64(&xml::to_string(&lr));
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("SAMLResponse", &encoded);
        if let Some(r) = &relay {
            query.append_pair("RelayState", r);
        }
        query.append_pair("SigAlg", signer.alg.uri());
        let mut url_query = query.finish();
        let sig = data_encoding::BASE64.encode(&signer.sign_bytes(url_query.as_bytes()));
        let sig: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        url_query.push_str(&format!("&Signature={sig}"));
        let sep = if dest.contains('?') { '&' } else { '?' };
        Redirect::to(&format!("{dest}{sep}{url_query}")).into_response()
    };
    set_cookie(&mut r, SESSION_COOKIE, "", Some(0));
    r
}
