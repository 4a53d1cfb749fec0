//! SCIM tokens: the list with each token's scope in words, a new token (name and scope) whose secret is shown
//! on the page that created it and never again, each token's page where the scope changes, and deletion after a
//! confirmation. The scope is the core's [`ScimScope`]: which users the token may change (all regular users,
//! those it owns, or members of chosen groups), the groups it may change, and whether Bind-DN service accounts
//! and groups bound to a resource are within reach. The core applies it to every change the token makes.

use super::api_keys::shown_once;
use super::{checked_or, confirm_page, value_or};
use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use core_directory::access::Permission;
use core_directory::model::{ScimScope, ScimUsers};
use core_directory::views::ScimTokenView;
use core_directory::Id;
use std::collections::HashMap;
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/settings/scim-tokens", get(list).post(create))
        .route(
            "/console/settings/scim-tokens/{id}",
            get(detail).post(save_scope),
        )
        .route(
            "/console/settings/scim-tokens/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

const USERS: [(&str, &str, &str); 3] = [
    (
        "all",
        "All regular users",
        "what an identity provider adopting existing users by user name needs",
    ),
    (
        "owned",
        "Only users it owns",
        "users it created, or adopted with its first change when no other token owned them",
    ),
    (
        "members_of",
        "Members of the groups chosen below",
        "and users it created; choose at least one group",
    ),
];

fn users_value(u: ScimUsers) -> &'static str {
    match u {
        ScimUsers::All => "all",
        ScimUsers::Owned => "owned",
        ScimUsers::MembersOf => "members_of",
    }
}

/// Names of groups by id (an id whose group is gone stays an id).
fn group_names(c: &Console, ids: &[Id]) -> Vec<String> {
    let snap = c.dir.snapshot();
    ids.iter()
        .map(|g| {
            snap.group(g)
                .map_or_else(|| g.to_string(), |g| g.name.clone())
        })
        .collect()
}

/// A scope in words, for the list and the token's page.
fn describe(c: &Console, scope: &ScimScope) -> String {
    let groups = group_names(c, &scope.groups).join(", ");
    let mut s = match scope.users {
        ScimUsers::All => "All regular users".to_string(),
        ScimUsers::Owned => "Users it created or adopted".to_string(),
        ScimUsers::MembersOf => format!("Members of {groups}, and users it created"),
    };
    if scope.users != ScimUsers::MembersOf && !scope.groups.is_empty() {
        let _ = write!(s, "; groups {groups}");
    }
    if scope.service_accounts {
        s.push_str("; Bind-DN service accounts too");
    }
    if scope.bound_groups {
        s.push_str("; bound groups too");
    }
    s
}

/// The scope's fields: which users (radio buttons), which groups (checkboxes), and the two widening switches.
fn scope_fields(
    c: &Console,
    scope: &ScimScope,
    values: &[(String, String)],
    errors: &FormErrors,
) -> String {
    let snap = c.dir.snapshot();
    let users = value_or(values, "users", users_value(scope.users).to_string());
    let mut s = String::from("<fieldset><legend>Users it may change</legend>");
    if let Some(e) = errors.of("scope") {
        let _ = write!(s, "<p class=\"error\" role=\"alert\">{}</p>", esc(e));
    }
    for (value, label, hint) in USERS {
        let checked = if users == value { " checked" } else { "" };
        let _ = write!(
            s,
            "<div class=\"field check\"><input type=\"radio\" id=\"f-users-{value}\" name=\"users\" value=\"{value}\"{checked}>\
             <label for=\"f-users-{value}\">{label}</label><small>{hint}</small></div>"
        );
    }
    s.push_str(
        "</fieldset><fieldset><legend>Groups</legend><p class=\"hint\">For “members of”: whose members it \
         manages. With any scope: groups it may change and whose members it may change, even when they are bound.</p>",
    );
    let mut groups: Vec<_> = snap.groups.values().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    if groups.is_empty() {
        s.push_str("<p>No groups yet.</p>");
    } else {
        s.push_str("<div class=\"picklist\">");
    }
    for g in &groups {
        let on = if values.is_empty() {
            scope.groups.contains(&g.id)
        } else {
            values
                .iter()
                .any(|(k, v)| k == "group" && *v == g.id.to_string())
        };
        let bound = snap
            .group_bindings
            .get(&g.id)
            .is_some_and(|b| !b.is_empty());
        let _ = write!(
            s,
            "<div class=\"field check\"><input type=\"checkbox\" id=\"g-{id}\" name=\"group\" value=\"{id}\"{}>\
             <label for=\"g-{id}\">{}</label>{}</div>",
            if on { " checked" } else { "" },
            esc(&g.name),
            if bound { " <span class=\"badge\">bound</span>" } else { "" },
            id = g.id,
        );
    }
    if !groups.is_empty() {
        s.push_str("</div>");
    }
    s.push_str("</fieldset><fieldset><legend>Also within reach</legend>");
    s.push_str(
        &Field::new(
            "service_accounts",
            "LDAP Bind-DN service accounts (their attributes, password and state)",
        )
        .kind("checkbox")
        .value(checked_or(
            values,
            "service_accounts",
            scope.service_accounts,
        ))
        .render(),
    );
    s.push_str(
        &Field::new(
            "bound_groups",
            "Groups bound to LDAP, a RADIUS network or an app: deleting them, and changing the members of those it did not create",
        )
        .kind("checkbox")
        .value(checked_or(values, "bound_groups", scope.bound_groups))
        .render(),
    );
    s.push_str("</fieldset>");
    s
}

fn parse_scope(fields: &[(String, String)]) -> Result<ScimScope, FormErrors> {
    let users = match field(fields, "users") {
        "all" => ScimUsers::All,
        "owned" => ScimUsers::Owned,
        "members_of" => ScimUsers::MembersOf,
        _ => {
            return Err(FormErrors(vec![(
                "scope".into(),
                "choose which users the token may change".into(),
            )]))
        }
    };
    let mut groups = Vec::new();
    for (_, v) in fields.iter().filter(|(k, _)| k == "group") {
        match Id::parse(v) {
            Some(id) => groups.push(id),
            None => {
                return Err(FormErrors(vec![(
                    "scope".into(),
                    "a chosen group does not exist".into(),
                )]))
            }
        }
    }
    Ok(ScimScope {
        users,
        groups,
        service_accounts: field(fields, "service_accounts") == "on",
        bound_groups: field(fields, "bound_groups") == "on",
    })
}

pub async fn list(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("deleted") => html::notice(true, "SCIM token deleted: it no longer works."),
        _ => String::new(),
    };
    render_list(&c, &admin, &[], &FormErrors::default(), &message)
}

fn render_list(
    c: &Console,
    admin: &SignedIn,
    values: &[(String, String)],
    errors: &FormErrors,
    top: &str,
) -> Response {
    let tokens = c.dir.list_scim_tokens();
    let write = can(admin, Permission::ManageOrg);
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/settings\">Settings</a> /</p><h1>SCIM tokens</h1>{top}\
         <p class=\"hint\">A SCIM token lets an HR system or identity provider manage users and groups at \
         <code>{}/scim/v2</code>, within its scope. It is good for SCIM only; Stratus keeps only its SHA-256.</p>",
        esc(c.public_base_url.trim_end_matches('/')),
    );
    if !write {
        body.push_str(&errors.others(&[]));
    }
    body.push_str(
        "<div class=\"table\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Prefix</th>\
         <th scope=\"col\">Scope</th><th scope=\"col\">Created</th></tr></thead><tbody>",
    );
    for t in &tokens {
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/settings/scim-tokens/{}\">{}</a></td><td><code>{}…</code></td><td>{}</td><td>{}</td></tr>",
            t.id,
            esc(&t.name),
            esc(&t.prefix),
            esc(&describe(c, &t.scope)),
            html::when(&t.created_at),
        );
    }
    if tokens.is_empty() {
        body.push_str("<tr><td colspan=\"4\">No SCIM tokens.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    if write {
        let _ = write!(
            body,
            "<section><h2>New SCIM token</h2><form method=\"post\" action=\"/console/settings/scim-tokens\" class=\"record\">{}{}{}{}\
             <button>Create SCIM token</button></form></section>",
            errors.others(&["name", "scope"]),
            admin.csrf_field(),
            Field::new("name", "Name")
                .value(&value_or(values, "name", String::new()))
                .hint("the system that provisions with it, e.g. okta")
                .required()
                .errors(errors)
                .render(),
            scope_fields(c, &ScimScope::default(), values, errors),
        );
    }
    let mut r = html::page(admin, "/console/settings", "SCIM tokens", &body);
    if !errors.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

pub async fn create(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let scope = match parse_scope(&fields) {
        Ok(s) => s,
        Err(e) => return render_list(&c, &admin, &fields, &e, ""),
    };
    match c
        .dir
        .create_scim_token(&admin.actor, field(&fields, "name"), scope)
        .await
    {
        Ok((t, token)) => {
            let top = shown_once(
                "SCIM token",
                &t.name,
                &token,
                &format!(
                    "Give it to the provisioning system with the base URL {}/scim/v2.",
                    c.public_base_url.trim_end_matches('/')
                ),
            );
            render_list(&c, &admin, &[], &FormErrors::default(), &top)
        }
        Err(e) => render_list(&c, &admin, &fields, &html::form_errors(&e), ""),
    }
}

fn find(c: &Console, id: &Id) -> Option<ScimTokenView> {
    c.dir.list_scim_tokens().into_iter().find(|t| t.id == *id)
}

fn no_such_token(admin: &SignedIn) -> Response {
    html::page(
        admin,
        "/console/settings",
        "SCIM token",
        &html::notice(false, "No such SCIM token."),
    )
}

fn detail_page(
    c: &Console,
    admin: &SignedIn,
    id: &Id,
    values: &[(String, String)],
    errors: &FormErrors,
    message: &str,
) -> Response {
    let Some(t) = find(c, id) else {
        return no_such_token(admin);
    };
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/settings\">Settings</a> / <a href=\"/console/settings/scim-tokens\">SCIM tokens</a> /</p>\
         <h1>{}</h1>{message}<section class=\"summary\"><dl><dt>Prefix</dt><dd><code>{}…</code></dd><dt>Scope</dt><dd>{}</dd>\
         <dt>Created</dt><dd>{}</dd><dt>Id</dt><dd><code>{}</code></dd></dl></section>",
        esc(&t.name),
        esc(&t.prefix),
        esc(&describe(c, &t.scope)),
        html::when(&t.created_at),
        t.id,
    );
    if can(admin, Permission::ManageOrg) {
        let _ = write!(
            body,
            "<section><h2>Scope</h2><p class=\"hint\">A change applies from the token's next request.</p>\
             <form method=\"post\" action=\"/console/settings/scim-tokens/{id}\" class=\"record\">{}{}{}\
             <button>Save scope</button></form></section><section><h2>Delete</h2>\
             <p><a class=\"button danger\" href=\"/console/settings/scim-tokens/{id}/delete\">Delete this token</a></p></section>",
            errors.others(&["scope"]),
            admin.csrf_field(),
            scope_fields(c, &t.scope, values, errors),
            id = t.id,
        );
    } else {
        body.push_str(&errors.others(&[]));
    }
    let mut r = html::page(admin, "/console/settings", &t.name, &body);
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
        return no_such_token(&admin);
    };
    let message = match q.get("done").map(String::as_str) {
        Some("scope") => html::notice(true, "Scope saved."),
        _ => String::new(),
    };
    detail_page(&c, &admin, &id, &[], &FormErrors::default(), &message)
}

pub async fn save_scope(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return no_such_token(&admin);
    };
    let scope = match parse_scope(&fields) {
        Ok(s) => s,
        Err(e) => return detail_page(&c, &admin, &id, &fields, &e, ""),
    };
    match c.dir.set_scim_token_scope(&admin.actor, &id, scope).await {
        Ok(_) => html::redirect(&format!("/console/settings/scim-tokens/{id}?done=scope")),
        Err(e) => detail_page(&c, &admin, &id, &fields, &html::form_errors(&e), ""),
    }
}

fn delete_question(c: &Console, admin: &SignedIn, id: &Id, error: &str) -> Response {
    let name = find(c, id).map_or_else(|| id.to_string(), |t| t.name);
    confirm_page(
        admin,
        "Delete SCIM token",
        &format!(
            "Delete the SCIM token “{name}”? The system provisioning with it is refused from now on. Users and \
             groups it made stay. This cannot be undone."
        ),
        &format!("/console/settings/scim-tokens/{id}/delete"),
        &format!("/console/settings/scim-tokens/{id}"),
        error,
    )
}

pub async fn confirm_delete(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match Id::parse(&id) {
        Some(id) => delete_question(&c, &admin, &id, ""),
        None => no_such_token(&admin),
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
        return no_such_token(&admin);
    };
    match c.dir.delete_scim_token(&admin.actor, &id).await {
        Ok(()) => html::redirect("/console/settings/scim-tokens?done=deleted"),
        Err(e) => delete_question(&c, &admin, &id, &e.to_string()),
    }
}
