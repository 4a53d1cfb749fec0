//! An app's settings form: names and URLs, NameID format, attribute mappings, what is signed and how,
//! encryption, the SP's certificates and the metadata trust anchor.

use super::{detail_page, lines, not_found, textarea, Answering};
use crate::html::field;
use crate::html::{self, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use core_directory::model::{AttributeMapping, NameIdFormat, SignTarget};
use core_directory::views::{AppPatch, AppView};
use core_directory::Id;

const NAMEID: [(NameIdFormat, &str, &str); 4] = [
    (NameIdFormat::Email, "email", "E-mail address"),
    (
        NameIdFormat::Persistent,
        "persistent",
        "Persistent (opaque, stable per user and app)",
    ),
    (NameIdFormat::Unspecified, "unspecified", "User name"),
    (
        NameIdFormat::Transient,
        "transient",
        "Transient (new at every sign-in)",
    ),
];

const SIGN: [(SignTarget, &str, &str); 3] = [
    (SignTarget::Assertion, "assertion", "The assertion"),
    (SignTarget::Response, "response", "The response"),
    (SignTarget::Both, "both", "Both"),
];

pub(super) fn nameid_value(f: NameIdFormat) -> &'static str {
    NAMEID
        .iter()
        .find(|(x, ..)| *x == f)
        .map_or("email", |(_, v, _)| v)
}

pub(super) fn sign_value(t: SignTarget) -> &'static str {
    SIGN.iter()
        .find(|(x, ..)| *x == t)
        .map_or("assertion", |(_, v, _)| v)
}

pub(super) fn attributes_text(a: &[AttributeMapping]) -> String {
    a.iter()
        .map(|m| format!("{}={}", m.name, m.source))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_attributes(text: &str) -> Result<Vec<AttributeMapping>, FormErrors> {
    lines(text)
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((n, s)) => Ok(AttributeMapping {
                name: n.trim().to_string(),
                source: s.trim().to_string(),
            }),
            None => Err(FormErrors(vec![(
                "attributes".into(),
                format!("`{l}` is not name=source"),
            )])),
        })
        .collect()
}

/// The app's settings form.
pub(super) fn settings_form(
    admin: &SignedIn,
    a: &AppView,
    values: &[(String, String)],
    errors: &FormErrors,
) -> String {
    let fresh = values.is_empty();
    let v = |name: &str, current: String| {
        if fresh {
            current
        } else {
            field(values, name).to_string()
        }
    };
    let flag = |name: &str, current: bool| {
        if (fresh && current) || (!fresh && field(values, name) == "on") {
            "on"
        } else {
            ""
        }
    };
    let shown = [
        "name",
        "sp_entity_id",
        "acs_urls",
        "sp_slo_url",
        "default_relay_state",
        "attributes",
        "sp_certificate",
        "sp_encryption_certificate",
        "metadata_trust_anchor",
        "require_signed_metadata",
        "require_signed_requests",
        "signature_algorithm",
    ];
    let mut s = errors.others(&shown);
    s.push_str(&admin.csrf_field());
    let text = |name: &'static str, label: &'static str, current: String, hint: &'static str| {
        let value = v(name, current);
        Field::new(name, label)
            .value(&value)
            .hint(hint)
            .errors(errors)
            .render()
    };
    s.push_str(&text("name", "Name", a.name.clone(), ""));
    s.push_str(&text(
        "sp_entity_id",
        "SP entity id",
        a.sp_entity_id.clone(),
        "",
    ));
    s.push_str(&textarea(
        "acs_urls",
        "ACS URLs",
        &v("acs_urls", a.acs_urls.join("\n")),
        2,
        "one per line, the default first",
        errors,
    ));
    s.push_str(&text(
        "sp_slo_url",
        "SP logout URL",
        a.sp_slo_url.clone().unwrap_or_default(),
        "where LogoutResponses go; empty for none",
    ));
    s.push_str(
        &Field::new(
            "sp_slo_post",
            "The logout URL takes HTTP-POST (else HTTP-Redirect)",
        )
        .kind("checkbox")
        .value(flag("sp_slo_post", a.sp_slo_post))
        .render(),
    );
    s.push_str("<fieldset><legend>Assertion</legend>");
    let nameid_opts: Vec<(&str, &str)> = NAMEID.iter().map(|(_, v, l)| (*v, *l)).collect();
    s.push_str(&html::select(
        "nameid_format",
        "NameID format",
        &nameid_opts,
        &v("nameid_format", nameid_value(a.nameid_format).into()),
    ));
    s.push_str(&textarea(
        "attributes",
        "Attributes (name=source, one per line)",
        &v("attributes", attributes_text(&a.attributes)),
        4,
        "sources: email, firstname, lastname, username, groups (all the user's group names), attribute:<custom attribute>",
        errors,
    ));
    s.push_str(&text(
        "default_relay_state",
        "Default RelayState",
        a.default_relay_state.clone().unwrap_or_default(),
        "where the SP sends users after a sign-in from the portal",
    ));
    s.push_str(
        &Field::new(
            "idp_initiated",
            "Show in users' portal (IdP-initiated sign-in)",
        )
        .kind("checkbox")
        .value(flag("idp_initiated", a.idp_initiated))
        .render(),
    );
    s.push_str("</fieldset><fieldset><legend>Signing and encryption</legend>");
    let sign_opts: Vec<(&str, &str)> = SIGN.iter().map(|(_, v, l)| (*v, *l)).collect();
    s.push_str(&html::select(
        "sign",
        "Sign",
        &sign_opts,
        &v("sign", sign_value(a.sign).into()),
    ));
    s.push_str(&html::select(
        "signature_algorithm",
        "Signature algorithm",
        &[
            ("rsa-sha256", "RSA-SHA256"),
            ("rsa-sha1", "RSA-SHA1 (only for SPs that need it)"),
        ],
        &v("signature_algorithm", a.signature_algorithm.clone()),
    ));
    s.push_str(
        &Field::new(
            "encrypt_assertion",
            "Encrypt the assertion to the SP's certificate",
        )
        .kind("checkbox")
        .value(flag("encrypt_assertion", a.encrypt_assertion))
        .render(),
    );
    s.push_str(
        &Field::new(
            "require_signed_requests",
            "Require signed requests from the SP",
        )
        .kind("checkbox")
        .value(flag("require_signed_requests", a.require_signed_requests))
        .hint("needs the SP's signing certificate")
        .errors(errors)
        .render(),
    );
    s.push_str(&textarea(
        "sp_certificate",
        "SP signing certificate (PEM)",
        &v(
            "sp_certificate",
            a.sp_certificate.clone().unwrap_or_default(),
        ),
        3,
        "",
        errors,
    ));
    s.push_str(&textarea(
        "sp_encryption_certificate",
        "SP encryption certificate (PEM), when not the signing one",
        &v(
            "sp_encryption_certificate",
            a.sp_encryption_certificate.clone().unwrap_or_default(),
        ),
        3,
        "",
        errors,
    ));
    s.push_str("</fieldset><fieldset><legend>Metadata trust</legend>");
    s.push_str(&textarea(
        "metadata_trust_anchor",
        "Metadata trust anchor (PEM)",
        &v(
            "metadata_trust_anchor",
            a.metadata_trust_anchor.clone().unwrap_or_default(),
        ),
        3,
        "the certificate, the SP's own or its federation's, whose key must sign uploaded metadata for it to count as verified",
        errors,
    ));
    s.push_str(
        &Field::new(
            "require_signed_metadata",
            "Take only metadata signed by the trust anchor",
        )
        .kind("checkbox")
        .value(flag("require_signed_metadata", a.require_signed_metadata))
        .errors(errors)
        .render(),
    );
    s.push_str("</fieldset>");
    s
}

/// Only what changed: setting the same ACS URLs again would forget the indexes the SP's metadata gave them.
fn changed<T: PartialEq>(new: T, current: &T) -> Option<T> {
    (new != *current).then_some(new)
}

fn pem_field(fields: &[(String, String)], name: &str) -> String {
    field(fields, name).trim().to_string()
}

pub async fn edit(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(a) = Id::parse(&id).and_then(|id| c.dir.get_app(&id).ok()) else {
        return not_found(&admin);
    };
    let attributes = match parse_attributes(field(&fields, "attributes")) {
        Ok(v) => v,
        Err(e) => return detail_page(&c, &admin, &a.id, Answering::Settings, &fields, &e, ""),
    };
    let nameid = NAMEID
        .iter()
        .find(|(_, v, _)| *v == field(&fields, "nameid_format"))
        .map(|(f, ..)| *f);
    let sign = SIGN
        .iter()
        .find(|(_, v, _)| *v == field(&fields, "sign"))
        .map(|(t, ..)| *t);
    let on = |name: &str| field(&fields, name) == "on";
    let patch = AppPatch {
        name: Some(field(&fields, "name").trim().to_string()),
        sp_entity_id: changed(
            field(&fields, "sp_entity_id").trim().to_string(),
            &a.sp_entity_id,
        ),
        acs_urls: changed(lines(field(&fields, "acs_urls")), &a.acs_urls),
        sp_certificate: changed(
            pem_field(&fields, "sp_certificate"),
            &a.sp_certificate.clone().unwrap_or_default(),
        ),
        nameid_format: nameid,
        sign,
        signature_algorithm: Some(field(&fields, "signature_algorithm").to_string()),
        encrypt_assertion: Some(on("encrypt_assertion")),
        attributes: Some(attributes),
        default_relay_state: Some(field(&fields, "default_relay_state").trim().to_string()),
        idp_initiated: Some(on("idp_initiated")),
        require_signed_requests: Some(on("require_signed_requests")),
        sp_slo_url: Some(field(&fields, "sp_slo_url").trim().to_string()),
        sp_slo_post: Some(on("sp_slo_post")),
        sp_encryption_certificate: changed(
            pem_field(&fields, "sp_encryption_certificate"),
            &a.sp_encryption_certificate.clone().unwrap_or_default(),
        ),
        metadata_trust_anchor: changed(
            pem_field(&fields, "metadata_trust_anchor"),
            &a.metadata_trust_anchor.clone().unwrap_or_default(),
        ),
        require_signed_metadata: Some(on("require_signed_metadata")),
    };
    match c.dir.update_app(&admin.actor, &a.id, patch).await {
        Ok(_) => html::redirect(&format!("/console/apps/{}?done=saved", a.id)),
        Err(e) => detail_page(
            &c,
            &admin,
            &a.id,
            Answering::Settings,
            &fields,
            &html::form_errors(&e),
            "",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lines_become_mappings() {
        let m = parse_attributes("email=email\n\n memberOf = groups \n")
            .unwrap_or_else(|e| panic!("{:?}", e.0));
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[1].name.as_str(), m[1].source.as_str()),
            ("memberOf", "groups")
        );
        let e = parse_attributes("just-a-name").unwrap_err();
        assert!(e.of("attributes").unwrap().contains("name=source"));
    }
}
