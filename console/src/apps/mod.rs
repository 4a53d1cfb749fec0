//! SSO apps (SAML service providers): the list, the new-app form (from the SP's metadata, uploaded or pasted,
//! or by hand), and each app's page — what to give the SP (the IdP metadata URL and endpoints), the groups
//! bound to it, and deletion. The page's other parts each have their file:
//! - [`metadata`]: what was read from the SP's metadata, and a new upload (file or pasted);
//! - [`settings`]: NameID, attribute mappings, signing, encryption, SP certificates and metadata trust;
//! - [`keys`]: the IdP signing keys, their rotation and certificates;
//! - [`scim`]: the outbound SCIM connector, its outbox and "retry now".

mod keys;
mod metadata;
mod scim;
mod settings;

use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use core_directory::access::Permission;
use core_directory::model::IdpKeyStatus;
use core_directory::views::{AppView, NewApp};
use core_directory::Id;
use std::collections::HashMap;
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/apps", get(list))
        .route("/console/apps/new", get(new_page).post(create))
        .route("/console/apps/{id}", get(detail).post(settings::edit))
        .route("/console/apps/{id}/metadata", post(metadata::upload))
        .route("/console/apps/{id}/keys", post(keys::change))
        .route(
            "/console/apps/{id}/keys/{key}/certificate.pem",
            get(keys::certificate),
        )
        .route("/console/apps/{id}/scim", post(scim::set))
        .route("/console/apps/{id}/scim/retry", post(scim::retry))
        .route("/console/apps/{id}/delete", get(delete_page).post(delete))
}

fn not_found(admin: &SignedIn) -> Response {
    let mut r = html::page(
        admin,
        "/console/apps",
        "SSO app",
        &html::notice(false, "No such app."),
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

fn field_error(errors: &FormErrors, name: &str) -> String {
    errors.of(name).map_or(String::new(), |e| {
        format!(
            "<small class=\"field-error\" id=\"f-{name}-error\">{}</small>",
            esc(e)
        )
    })
}

/// A labelled textarea with its hint and error.
fn textarea(
    name: &str,
    label: &str,
    value: &str,
    rows: u8,
    hint: &str,
    errors: &FormErrors,
) -> String {
    let hint_html = if hint.is_empty() {
        String::new()
    } else {
        format!("<small id=\"f-{name}-hint\">{}</small>", esc(hint))
    };
    let described = match (hint.is_empty(), errors.of(name).is_some()) {
        (true, false) => String::new(),
        (false, false) => format!(" aria-describedby=\"f-{name}-hint\""),
        (true, true) => format!(" aria-describedby=\"f-{name}-error\""),
        (false, true) => format!(" aria-describedby=\"f-{name}-hint f-{name}-error\""),
    };
    let invalid = if errors.of(name).is_some() {
        " aria-invalid=\"true\""
    } else {
        ""
    };
    format!(
        "<div class=\"field\"><label for=\"f-{name}\">{}</label><textarea id=\"f-{name}\" name=\"{name}\" rows=\"{rows}\" spellcheck=\"false\"{described}{invalid}>{}</textarea>{hint_html}{}</div>",
        esc(label),
        esc(value),
        field_error(errors, name),
    )
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn list(State(c): State<Console>, admin: SignedIn) -> Response {
    let apps = c.dir.list_apps();
    let mut body = String::from("<h1>SSO apps</h1>");
    if can(&admin, Permission::ManageOrg) {
        body.push_str(
            "<p class=\"actions\"><a class=\"button\" href=\"/console/apps/new\">New app</a></p>",
        );
    }
    body.push_str("<p class=\"hint\">SAML service providers. Members of the groups bound to an app may sign in to it and see it in their portal.</p>");
    body.push_str("<div class=\"table\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">SP entity id</th><th scope=\"col\">Groups</th><th scope=\"col\">SCIM</th></tr></thead><tbody>");
    for a in &apps {
        let scim = match c.dir.scim_connector(&a.id) {
            Ok(v) if v.outbox.iter().any(|o| o.last_error.is_some()) => {
                "<span class=\"badge failure\">failing</span>".to_string()
            }
            Ok(v) if !v.outbox.is_empty() => format!("{} pending", v.outbox.len()),
            Ok(v) => format!("{} provisioned", v.provisioned),
            Err(_) => "—".to_string(),
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/apps/{}\">{}</a></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            a.id,
            esc(&a.name),
            esc(&a.sp_entity_id),
            a.bound_groups.len(),
            scim,
        );
    }
    if apps.is_empty() {
        body.push_str("<tr><td colspan=\"4\">No app yet.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    html::page(&admin, "/console/apps", "SSO apps", &body)
}

pub async fn new_page(admin: SignedIn) -> Response {
    new_form(&admin, &HashMap::new(), &FormErrors::default())
}

fn new_form(admin: &SignedIn, values: &HashMap<String, String>, errors: &FormErrors) -> Response {
    let get = |k: &str| values.get(k).map_or("", String::as_str);
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/console/apps\">SSO apps</a> /</p><h1>New SSO app</h1>{}\
         <form method=\"post\" action=\"/console/apps/new\" enctype=\"multipart/form-data\" class=\"record\">{}{}\
         <fieldset><legend>From the SP’s metadata</legend><p class=\"hint\">The SP’s SAML metadata (an EntityDescriptor) fills the entity id, ACS URLs, \
         logout URL and certificates.</p>\
         <div class=\"field\"><label for=\"f-file\">Metadata file</label><input type=\"file\" id=\"f-file\" name=\"file\" accept=\".xml,application/xml,application/samlmetadata+xml,text/xml\"></div>\
         {}</fieldset>\
         <fieldset><legend>Or by hand</legend>{}{}</fieldset>\
         <button>Create app</button></form>",
        errors.others(&["name", "metadata", "sp_entity_id", "acs_urls"]),
        admin.csrf_field(),
        Field::new("name", "Name")
            .value(get("name"))
            .required()
            .hint("as users see it in their portal")
            .errors(errors)
            .render(),
        textarea("metadata", "Or paste the metadata", get("metadata"), 4, "", errors),
        Field::new("sp_entity_id", "SP entity id")
            .value(get("sp_entity_id"))
            .hint("the SP’s issuer, often its metadata URL")
            .errors(errors)
            .render(),
        textarea(
            "acs_urls",
            "ACS URLs",
            get("acs_urls"),
            2,
            "where the SP receives assertions (HTTP-POST), one per line, the default first",
            errors
        ),
    );
    let mut r = html::page(admin, "/console/apps", "New SSO app", &body);
    if !errors.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

pub async fn create(State(c): State<Console>, admin: SignedIn, form: Multipart) -> Response {
    let mut values = match metadata::multipart_fields(form).await {
        Ok(v) => v,
        Err(e) => {
            return new_form(
                &admin,
                &HashMap::new(),
                &FormErrors(vec![("metadata".into(), e)]),
            )
        }
    };
    if let Some(r) = admin.csrf_refusal(&c, &metadata::csrf_of(&values)) {
        return r;
    }
    let name = values.get("name").map_or("", |s| s.trim()).to_string();
    let result = match metadata::metadata_text(&values) {
        Some(xml) => {
            c.dir
                .create_app_from_sp_metadata(&admin.actor, &name, &xml)
                .await
        }
        None => {
            let input = NewApp {
                name,
                sp_entity_id: values
                    .get("sp_entity_id")
                    .map_or("", |s| s.trim())
                    .to_string(),
                acs_urls: lines(values.get("acs_urls").map_or("", String::as_str)),
                sp_certificate: None,
                nameid_format: None,
                sign: None,
                signature_algorithm: None,
                encrypt_assertion: false,
                attributes: Vec::new(),
                default_relay_state: None,
                idp_initiated: true,
                require_signed_requests: false,
                sp_slo_url: None,
                sp_slo_post: false,
                sp_encryption_certificate: None,
                metadata_trust_anchor: None,
                require_signed_metadata: false,
            };
            c.dir.create_app(&admin.actor, input).await
        }
    };
    match result {
        Ok(a) => html::redirect(&format!("/console/apps/{}?done=created", a.id)),
        Err(e) => {
            // A file cannot be put back into a file input; the pasted text is kept.
            values.remove("file");
            new_form(&admin, &values, &html::form_errors(&e))
        }
    }
}

/// What the SP needs from Stratus.
fn idp_section(c: &Console, a: &AppView) -> String {
    let base = format!("{}/saml/{}", c.public_base_url, a.id);
    let active = a.idp_keys.iter().find(|k| k.status == IdpKeyStatus::Active);
    format!(
        "<section><h2>For the service provider</h2><p>Give the SP the metadata URL, or these values.</p><dl class=\"copy\">\
         <dt>IdP metadata URL</dt><dd><code id=\"idp-metadata-url\">{base_e}/metadata</code></dd>\
         <dt>IdP entity id (issuer)</dt><dd><code>{base_e}</code></dd>\
         <dt>Sign-in URL (SSO)</dt><dd><code>{base_e}/sso</code> (HTTP-Redirect and HTTP-POST)</dd>\
         <dt>Logout URL (SLO)</dt><dd><code>{base_e}/slo</code></dd>\
         <dt>Signing certificate</dt><dd>{cert}</dd>\
         <dt>Portal launch</dt><dd>{launch}</dd></dl></section>",
        base_e = esc(&base),
        cert = active.map_or_else(
            || "none active".to_string(),
            |k| format!(
                "<a href=\"/console/apps/{}/keys/{}/certificate.pem\" download>certificate.pem</a> (SHA-256 <code>{}</code>)",
                a.id,
                esc(&k.id),
                esc(&k.fingerprint_sha256)
            )
        ),
        launch = if a.idp_initiated {
            format!("<code>{}/launch</code>", esc(&base))
        } else {
            "off (the app is not in users’ portal)".to_string()
        },
    )
}

/// `n` and the noun in the right number.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn groups_section(c: &Console, a: &AppView) -> String {
    let snap = c.dir.snapshot();
    let mut groups: Vec<_> = a
        .bound_groups
        .iter()
        .filter_map(|g| snap.group(g))
        .collect();
    groups.sort_by(|x, y| x.name.cmp(&y.name));
    let mut s = String::from("<section><h2>Groups</h2>");
    if groups.is_empty() {
        s.push_str("<p>No group is bound: nobody can sign in to this app yet. Bind a group on its page (<a href=\"/console/groups\">Groups</a>).</p>");
    } else {
        s.push_str("<p class=\"hint\">Members of these groups may sign in; bindings are changed on each group’s page.</p><ul class=\"chips\">");
        for g in groups {
            let _ = write!(
                s,
                "<li><a href=\"/console/groups/{}\">{}</a></li>",
                g.id,
                esc(&g.name)
            );
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>");
    s
}

/// Which form the page is answering, so its values and errors go back to that form only.
#[derive(PartialEq, Clone, Copy)]
enum Answering {
    Settings,
    Metadata,
    Scim,
    None,
}

fn detail_page(
    c: &Console,
    admin: &SignedIn,
    id: &Id,
    which: Answering,
    values: &[(String, String)],
    errors: &FormErrors,
    message: &str,
) -> Response {
    let a = match c.dir.get_app(id) {
        Ok(a) => a,
        Err(_) => return not_found(admin),
    };
    let none = FormErrors::default();
    let for_form = |f: Answering| if which == f { errors } else { &none };
    let values_for = |f: Answering| if which == f { values } else { &[][..] };
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/apps\">SSO apps</a> /</p><h1>{}</h1>{message}",
        esc(&a.name)
    );
    if which == Answering::None {
        body.push_str(&errors.others(&[]));
    }
    body.push_str(&idp_section(c, &a));
    body.push_str(&groups_section(c, &a));
    body.push_str(&metadata::sp_section(
        admin,
        &a,
        for_form(Answering::Metadata),
    ));
    if can(admin, Permission::ManageOrg) {
        let _ = write!(
            body,
            "<section><h2>Settings</h2><form method=\"post\" action=\"/console/apps/{}\" class=\"record\">{}<button>Save changes</button></form></section>",
            a.id,
            settings::settings_form(admin, &a, values_for(Answering::Settings), for_form(Answering::Settings)),
        );
    } else {
        let _ = write!(
            body,
            "<section><h2>Assertion</h2><dl><dt>NameID</dt><dd>{}</dd><dt>Signed</dt><dd>{}</dd><dt>Encrypted</dt><dd>{}</dd><dt>Attributes</dt><dd><pre><code>{}</code></pre></dd></dl></section>",
            settings::nameid_value(a.nameid_format),
            settings::sign_value(a.sign),
            yes_no(a.encrypt_assertion),
            esc(&settings::attributes_text(&a.attributes)),
        );
    }
    body.push_str(&keys::keys_section(admin, &a));
    body.push_str(&scim::scim_section(
        c,
        admin,
        &a,
        for_form(Answering::Scim),
        values_for(Answering::Scim),
    ));
    if can(admin, Permission::ManageOrg) {
        let _ = write!(
            body,
            "<section><h2>Delete</h2><p><a class=\"button danger\" href=\"/console/apps/{}/delete\">Delete this app</a></p></section>",
            a.id
        );
    }
    let mut r = html::page(admin, "/console/apps", &a.name, &body);
    if !errors.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

pub async fn detail(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = Id::parse(&id) else {
        return not_found(&admin);
    };
    let message = match q.get("done").map(String::as_str) {
        Some("created") => html::notice(true, "App created."),
        Some("saved") => html::notice(true, "Changes saved."),
        Some("metadata") => html::notice(true, "SP metadata taken."),
        Some("key_added") => html::notice(true, "Key added."),
        Some("key_activated") => html::notice(true, "Key activated."),
        Some("key_deleted") => html::notice(true, "Key deleted."),
        Some("scim_saved") => html::notice(true, "Connector saved."),
        Some("scim_removed") => html::notice(true, "Connector removed."),
        Some("retry") => {
            let n = q
                .get("n")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            html::notice(
                true,
                &format!(
                    "{} will be tried again now.",
                    count(n, "waiting delivery", "waiting deliveries")
                ),
            )
        }
        _ => String::new(),
    };
    detail_page(
        &c,
        &admin,
        &id,
        Answering::None,
        &[],
        &FormErrors::default(),
        &message,
    )
}

pub async fn delete_page(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let Some(a) = Id::parse(&id).and_then(|id| c.dir.get_app(&id).ok()) else {
        return not_found(&admin);
    };
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/console/apps\">SSO apps</a> / <a href=\"/console/apps/{id}\">{name}</a> /</p>\
         <h1>Delete {name}?</h1><p>Users can no longer sign in to it, its signing keys are destroyed, its group bindings ({n}) \
         and its SCIM connector, if any, are removed (the app keeps the users it was given). This cannot be undone.</p>\
         <form method=\"post\" action=\"/console/apps/{id}/delete\">{csrf}<button class=\"danger\">Delete app</button> \
         <a href=\"/console/apps/{id}\">Cancel</a></form>",
        id = a.id,
        name = esc(&a.name),
        n = a.bound_groups.len(),
        csrf = admin.csrf_field(),
    );
    html::page(&admin, "/console/apps", "Delete SSO app", &body)
}

pub async fn delete(
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
    match c.dir.delete_app(&admin.actor, &id).await {
        Ok(()) => html::redirect("/console/apps"),
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
