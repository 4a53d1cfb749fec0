//! An app's IdP signing keys: the list with their status, rotation (a next key, or a replacement at once),
//! activation, deletion and each certificate as a download.

use super::{detail_page, not_found, Answering};
use crate::html::field;
use crate::html::{self, can, esc};
use crate::{Console, SignedIn};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use core_directory::access::Permission;
use core_directory::model::IdpKeyStatus;
use core_directory::views::{AppView, NewIdpKey};
use core_directory::Id;
use std::fmt::Write as _;

pub(super) fn keys_section(admin: &SignedIn, a: &AppView) -> String {
    let write = can(admin, Permission::ManageOrg);
    let mut s = String::from(
        "<section><h2>IdP signing keys</h2><p class=\"hint\">The active key signs. To rotate: add a next key (published in the metadata beside the active one), \
         let SPs refresh their copy of the metadata, then activate it; the old key stays published as previous until you delete it.</p>\
         <div class=\"table\"><table class=\"keys\"><thead><tr><th scope=\"col\">Key</th><th scope=\"col\">Status</th><th scope=\"col\">Valid until</th><th scope=\"col\">Certificate</th>",
    );
    if write {
        s.push_str("<th scope=\"col\"><span class=\"visually-hidden\">Actions</span></th>");
    }
    s.push_str("</tr></thead><tbody>");
    let action = |key: &str, what: &str, label: &str, class: &str| {
        format!(
            "<form method=\"post\" action=\"/console/apps/{}/keys\" class=\"inline\">{}<input type=\"hidden\" name=\"key\" value=\"{}\">\
             <input type=\"hidden\" name=\"do\" value=\"{what}\"><button class=\"{class}\">{label}</button></form>",
            a.id,
            admin.csrf_field(),
            esc(key),
        )
    };
    for k in &a.idp_keys {
        let status = match k.status {
            IdpKeyStatus::Active => "active",
            IdpKeyStatus::Next => "next",
            IdpKeyStatus::Previous => "previous",
        };
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td><span class=\"badge {}\">{status}</span></td><td>{}</td>\
             <td><a href=\"/console/apps/{}/keys/{}/certificate.pem\" download>Download</a></td>",
            esc(&k.id),
            if k.status == IdpKeyStatus::Active {
                "success"
            } else {
                "pending"
            },
            html::when(&k.not_after),
            a.id,
            esc(&k.id),
        );
        if write {
            s.push_str("<td>");
            if k.status != IdpKeyStatus::Active {
                s.push_str(&action(&k.id, "activate", "Activate", "small"));
                s.push_str(&action(&k.id, "delete", "Delete", "small danger"));
            }
            s.push_str("</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    if write {
        let _ = write!(
            s,
            "<p class=\"actions\">{}{}</p>",
            action("", "add", "Add a next key", "secondary"),
            action("", "add_activate", "Replace the key now", "secondary"),
        );
    }
    s.push_str("</section>");
    s
}

/// Add (and maybe activate), activate or delete an IdP key.
pub async fn change(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return not_found(&admin);
    };
    let key = field(&fields, "key");
    let (result, done) = match field(&fields, "do") {
        what @ ("add" | "add_activate") => (
            c.dir
                .add_app_key(
                    &admin.actor,
                    &id,
                    NewIdpKey {
                        activate: what == "add_activate",
                        ..NewIdpKey::default()
                    },
                )
                .await,
            if what == "add" {
                "key_added"
            } else {
                "key_activated"
            },
        ),
        "activate" => (
            c.dir.activate_app_key(&admin.actor, &id, key).await,
            "key_activated",
        ),
        "delete" => (
            c.dir.delete_app_key(&admin.actor, &id, key).await,
            "key_deleted",
        ),
        _ => return not_found(&admin),
    };
    match result {
        Ok(_) => html::redirect(&format!("/console/apps/{id}?done={done}")),
        Err(e) => detail_page(
            &c,
            &admin,
            &id,
            Answering::None,
            &[],
            &html::form_errors(&e),
            "",
        ),
    }
}

/// One IdP key's certificate, PEM.
pub async fn certificate(
    State(c): State<Console>,
    _admin: SignedIn,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let found = Id::parse(&id)
        .and_then(|id| c.dir.get_app(&id).ok())
        .and_then(|a| a.idp_keys.into_iter().find(|k| k.id == key));
    let Some(k) = found else {
        return (StatusCode::NOT_FOUND, "no such key").into_response();
    };
    let mut r = k.certificate.clone().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    // The key id is hex digits the core made, safe in a header.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"stratus-idp-{}.pem\"",
        k.id.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    )) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
