//! An app's SP metadata: what Stratus took from it, and a new document uploaded as a file or pasted (the
//! multipart form the new-app page shares).

use super::{detail_page, not_found, textarea, yes_no, Answering};
use crate::html::{self, can, esc, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Multipart, Path, State};
use axum::response::Response;
use core_directory::access::Permission;
use core_directory::views::AppView;
use core_directory::Id;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Largest SP metadata document taken (the SAML reader refuses more than 256 KiB anyway).
const MAX_METADATA: usize = 512 * 1024;

/// The fields of a multipart form (the metadata file as text), or why it could not be read.
pub(super) async fn multipart_fields(
    mut form: Multipart,
) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    loop {
        match form.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or_default().to_string();
                let bytes = f
                    .bytes()
                    .await
                    .map_err(|e| format!("The upload failed: {e}"))?;
                if bytes.len() > MAX_METADATA {
                    return Err("The document is larger than 512 KiB.".into());
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("The {name} field is not UTF-8 text."))?;
                out.insert(name, text);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(format!("The upload failed: {e}")),
        }
    }
}

/// The metadata document of a form: the uploaded file, else the pasted text.
pub(super) fn metadata_text(values: &HashMap<String, String>) -> Option<String> {
    let file = values.get("file").map_or("", |s| s.trim());
    let pasted = values.get("metadata").map_or("", |s| s.trim());
    let text = if file.is_empty() { pasted } else { file };
    (!text.is_empty()).then(|| text.to_string())
}

pub(super) fn csrf_of(values: &HashMap<String, String>) -> Vec<(String, String)> {
    vec![(
        "_csrf".to_string(),
        values.get("_csrf").cloned().unwrap_or_default(),
    )]
}

/// The SP as Stratus knows it (from metadata or by hand), and the metadata upload form.
pub(super) fn sp_section(admin: &SignedIn, a: &AppView, errors: &FormErrors) -> String {
    let mut s = String::from("<section><h2>Service provider</h2>");
    let upload = match &a.sp_metadata_upload {
        Some(u) => format!(
            "{}; {}",
            html::when(&u.uploaded_at),
            match (u.signed, u.verified_by_trust_anchor) {
                (true, true) => "signed and verified by the trust anchor",
                (true, false) => "signed, not verified (no trust anchor)",
                _ => "not signed",
            }
        ),
        None => "none: entered by hand".to_string(),
    };
    let mut acs = String::from("<ol class=\"urls\">");
    for u in &a.acs_urls {
        let _ = write!(acs, "<li><code>{}</code></li>", esc(u));
    }
    acs.push_str("</ol>");
    let cert = |c: &Option<String>| match c {
        Some(pem) => match core_directory::idp_keys::inspect_certificate(pem) {
            Ok(i) => format!(
                "SHA-256 <code>{}</code>, valid until {}",
                core_directory::crypto::sha256_hex(&i.der),
                html::when(&i.not_after)
            ),
            Err(e) => format!("unreadable: {}", esc(&e.to_string())),
        },
        None => "none".to_string(),
    };
    let _ = write!(
        s,
        "<dl><dt>Entity id</dt><dd><code id=\"sp-entity-id\">{}</code></dd><dt>ACS URLs</dt><dd>{acs}</dd>\
         <dt>Logout URL</dt><dd>{}</dd><dt>Signing certificate</dt><dd>{}</dd><dt>Encryption certificate</dt><dd>{}</dd>\
         <dt>Signed requests required</dt><dd>{}</dd><dt>Last metadata upload</dt><dd id=\"sp-metadata-upload\">{}</dd></dl>",
        esc(&a.sp_entity_id),
        a.sp_slo_url.as_deref().map_or_else(
            || "none".to_string(),
            |u| format!(
                "<code>{}</code> ({})",
                esc(u),
                if a.sp_slo_post { "HTTP-POST" } else { "HTTP-Redirect" }
            )
        ),
        cert(&a.sp_certificate),
        cert(&a.sp_encryption_certificate),
        yes_no(a.require_signed_requests),
        esc(&upload),
    );
    if can(admin, Permission::ManageOrg) {
        let _ = write!(
            s,
            "<h3>Upload new SP metadata</h3>{}\
             <form method=\"post\" action=\"/console/apps/{}/metadata\" enctype=\"multipart/form-data\" class=\"record\">{}\
             <div class=\"field\"><label for=\"f-file\">Metadata file</label><input type=\"file\" id=\"f-file\" name=\"file\" accept=\".xml,application/xml,application/samlmetadata+xml,text/xml\"></div>\
             {}<button>Upload metadata</button></form>",
            if a.require_signed_metadata {
                "<p class=\"hint\">This app takes only metadata signed by its trust anchor.</p>"
            } else {
                ""
            },
            a.id,
            admin.csrf_field(),
            textarea(
                "metadata",
                "Or paste the metadata",
                "",
                4,
                "replaces the entity id, ACS URLs, logout URL and certificates with the document’s",
                errors
            ),
        );
    }
    s.push_str("</section>");
    s
}

/// New SP metadata, uploaded as a file or pasted.
pub async fn upload(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    form: Multipart,
) -> Response {
    let Some(id) = Id::parse(&id) else {
        return not_found(&admin);
    };
    let values = match multipart_fields(form).await {
        Ok(v) => v,
        Err(e) => {
            return detail_page(
                &c,
                &admin,
                &id,
                Answering::Metadata,
                &[],
                &FormErrors(vec![("metadata".into(), e)]),
                "",
            )
        }
    };
    if let Some(r) = admin.csrf_refusal(&c, &csrf_of(&values)) {
        return r;
    }
    let Some(xml) = metadata_text(&values) else {
        let e = FormErrors(vec![(
            "metadata".into(),
            "choose a metadata file or paste the document".into(),
        )]);
        return detail_page(&c, &admin, &id, Answering::Metadata, &[], &e, "");
    };
    match c.dir.apply_sp_metadata(&admin.actor, &id, &xml).await {
        Ok(_) => html::redirect(&format!("/console/apps/{id}?done=metadata")),
        Err(e) => detail_page(
            &c,
            &admin,
            &id,
            Answering::Metadata,
            &[],
            &html::form_errors(&e),
            "",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_wins_over_pasted_metadata() {
        let mut v = HashMap::new();
        v.insert("metadata".to_string(), " <pasted/> ".to_string());
        assert_eq!(metadata_text(&v).as_deref(), Some("<pasted/>"));
        v.insert("file".to_string(), "<file/>".to_string());
        assert_eq!(metadata_text(&v).as_deref(), Some("<file/>"));
        v.insert("file".to_string(), String::new());
        assert_eq!(metadata_text(&v).as_deref(), Some("<pasted/>"));
    }
}
