//! API keys: the list (name, prefix, owner, created, last use when recorded), a new key whose token is shown on
//! the page that created it and never again (the core keeps only its SHA-256), and deletion after a
//! confirmation. A key acts as the admin who made it, with that admin's role: the core lets every admin make
//! their own, and delete their own; deleting another admin's key needs the right to manage the organisation.

use super::{confirm_page, value_or};
use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use core_directory::access::Permission;
use core_directory::views::ApiKeyView;
use core_directory::Id;
use std::collections::HashMap;
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/settings/api-keys", get(list).post(create))
        .route(
            "/console/settings/api-keys/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

/// Whether this admin may delete the key (their own, or any with org management); the core decides anyway.
fn may_delete(admin: &SignedIn, key: &ApiKeyView) -> bool {
    key.admin_id == admin.id || can(admin, Permission::ManageOrg)
}

pub async fn list(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("deleted") => html::notice(true, "API key deleted: it no longer works."),
        _ => String::new(),
    };
    render(&c, &admin, &[], &FormErrors::default(), &message)
}

fn render(
    c: &Console,
    admin: &SignedIn,
    values: &[(String, String)],
    errors: &FormErrors,
    top: &str,
) -> Response {
    let snap = c.dir.snapshot();
    let keys = c.dir.list_api_keys();
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/settings\">Settings</a> /</p><h1>API keys</h1>{top}\
         <p class=\"hint\">An API key calls <code>/api/v1</code> as the admin who created it, with that admin's \
         role. Stratus keeps only a SHA-256 of each token.</p>"
    );
    let used = keys.iter().any(|k| k.last_used_at.is_some());
    body.push_str(
        "<div class=\"table\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Prefix</th>\
         <th scope=\"col\">Admin</th><th scope=\"col\">Created</th>",
    );
    if used {
        body.push_str("<th scope=\"col\">Last used</th>");
    }
    body.push_str(
        "<th scope=\"col\"><span class=\"visually-hidden\">Actions</span></th></tr></thead><tbody>",
    );
    for k in &keys {
        let owner = snap
            .admins
            .get(&k.admin_id)
            .map_or_else(|| k.admin_id.to_string(), |a| a.email.clone());
        let _ = write!(
            body,
            "<tr><td>{}</td><td><code>{}…</code></td><td>{}</td><td>{}</td>",
            esc(&k.name),
            esc(&k.prefix),
            esc(&owner),
            html::when(&k.created_at),
        );
        if used {
            let _ = write!(
                body,
                "<td>{}</td>",
                k.last_used_at.as_ref().map_or("—".to_string(), html::when)
            );
        }
        if may_delete(admin, k) {
            let _ = write!(
                body,
                "<td><a class=\"button danger small\" href=\"/console/settings/api-keys/{}/delete\" \
                 aria-label=\"Delete API key {n}\">Delete</a></td></tr>",
                k.id,
                n = esc(&k.name),
            );
        } else {
            body.push_str("<td></td></tr>");
        }
    }
    if keys.is_empty() {
        let _ = write!(
            body,
            "<tr><td colspan=\"{}\">No API keys.</td></tr>",
            if used { 6 } else { 5 }
        );
    }
    body.push_str("</tbody></table></div>");
    if can(admin, Permission::Read) {
        let _ = write!(
            body,
            "<section><h2>New API key</h2><p class=\"hint\">The key acts as you ({}), with your role.</p>\
             <form method=\"post\" action=\"/console/settings/api-keys\" class=\"record\">{}{}{}\
             <button>Create API key</button></form></section>",
            esc(&admin.actor.label),
            errors.others(&["name"]),
            admin.csrf_field(),
            Field::new("name", "Name")
                .value(&value_or(values, "name", String::new()))
                .hint("what the key is for, e.g. the system that uses it")
                .required()
                .errors(errors)
                .render(),
        );
    }
    let mut r = html::page(admin, "/console/settings", "API keys", &body);
    if !errors.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// The token of a key just made, on the page that made it: the only time it is shown.
pub(super) fn shown_once(what: &str, name: &str, token: &str, usage: &str) -> String {
    format!(
        "<section class=\"once\" role=\"status\"><h2>{what} “{}” created</h2><p><strong>Copy the token now.</strong> \
         Stratus keeps only its SHA-256 and cannot show it again.</p><pre><code id=\"new-token\">{}</code></pre>\
         <p class=\"hint\">{}</p></section>",
        esc(name),
        esc(token),
        esc(usage),
    )
}

pub async fn create(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    match c
        .dir
        .create_api_key(&admin.actor, field(&fields, "name"))
        .await
    {
        Ok((key, token)) => {
            let top = shown_once(
                "API key",
                &key.name,
                &token,
                "Send it as Authorization: Bearer <token> to /api/v1.",
            );
            render(&c, &admin, &[], &FormErrors::default(), &top)
        }
        Err(e) => render(&c, &admin, &fields, &html::form_errors(&e), ""),
    }
}

fn delete_question(c: &Console, admin: &SignedIn, id: &Id, error: &str) -> Response {
    let name = c
        .dir
        .list_api_keys()
        .into_iter()
        .find(|k| k.id == *id)
        .map_or_else(|| id.to_string(), |k| k.name);
    confirm_page(
        admin,
        "Delete API key",
        &format!(
            "Delete the API key “{name}”? Whatever uses it is refused from now on. This cannot be undone."
        ),
        &format!("/console/settings/api-keys/{id}/delete"),
        "/console/settings/api-keys",
        error,
    )
}

fn no_such_key(admin: &SignedIn) -> Response {
    html::page(
        admin,
        "/console/settings",
        "API key",
        &html::notice(false, "No such API key."),
    )
}

pub async fn confirm_delete(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match Id::parse(&id) {
        Some(id) => delete_question(&c, &admin, &id, ""),
        None => no_such_key(&admin),
    }
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
        return no_such_key(&admin);
    };
    match c.dir.delete_api_key(&admin.actor, &id).await {
        Ok(()) => html::redirect("/console/settings/api-keys?done=deleted"),
        Err(e) => delete_question(&c, &admin, &id, &e.to_string()),
    }
}
