//! The per-app IdP metadata document (`/saml/{app}/metadata`): entity id, SSO and SLO endpoints, the signing
//! certificates of every IdP key (so a rotation's `next` key is published ahead), and whether requests must be
//! signed.

use super::{app_of, Idp};
use crate::pages;
use crate::protocol as p;
use crate::xml;
use axum::extract::{Path, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub(super) async fn metadata(AxState(idp): AxState<Idp>, Path(app): Path<String>) -> Response {
    let Some(app) = app_of(&idp, &app) else {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "There is no such application.",
        );
    };
    let certificates = app
        .idp_keys
        .iter()
        .filter_map(|k| core_directory::idp_keys::certificate_der(&k.certificate).ok())
        .map(|d| data_encoding::BASE64.encode(&d))
        .collect();
    let md = p::idp_metadata(&p::IdpMetadata {
        entity_id: &idp.entity_id(&app.id),
        sso_url: &idp.sso_url(&app.id),
        slo_url: &idp.slo_url(&app.id),
        certificates,
        want_requests_signed: app.require_signed_requests,
    });
    (
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            xml::to_string(&md)
        ),
    )
        .into_response()
}
