//! Admins: the list with role, TOTP and lock state; the new-admin form; each admin's page with the role form,
//! a password reset (one-time: the core makes the admin choose their own at the next sign-in) and deletion
//! after a confirmation. The last administrator is neither demoted nor deleted: the core refuses, and its
//! words are shown next to the field.

use super::{confirm_page, role_label, value_or};
use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use core_directory::access::Permission;
use core_directory::model::AdminRole;
use core_directory::views::{AdminPatch, AdminView, NewAdmin, TotpStatus};
use core_directory::Id;
use std::collections::HashMap;
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/settings/admins", get(list).post(create))
        .route("/console/settings/admins/{id}", get(detail).post(change))
        .route(
            "/console/settings/admins/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

const ROLES: [(&str, &str); 4] = [
    ("administrator", "Administrator — everything"),
    ("manager", "Manager — users and groups"),
    ("help_desk", "Help desk — password resets and unlocks"),
    ("read_only", "Read-only"),
];

fn role_value(role: AdminRole) -> &'static str {
    match role {
        AdminRole::Administrator => "administrator",
        AdminRole::Manager => "manager",
        AdminRole::HelpDesk => "help_desk",
        AdminRole::ReadOnly => "read_only",
    }
}

fn parse_role(v: &str) -> Result<AdminRole, FormErrors> {
    match v {
        "administrator" => Ok(AdminRole::Administrator),
        "manager" => Ok(AdminRole::Manager),
        "help_desk" => Ok(AdminRole::HelpDesk),
        "read_only" => Ok(AdminRole::ReadOnly),
        _ => Err(FormErrors(vec![("role".into(), "choose a role".into())])),
    }
}

fn totp_label(t: TotpStatus) -> &'static str {
    match t {
        TotpStatus::Active => "on",
        TotpStatus::Pending => "enrolment started",
        TotpStatus::NotEnrolled => "off",
    }
}

fn password_label(a: &AdminView) -> &'static str {
    if !a.password_set {
        "not set"
    } else if a.password_must_change {
        "one-time"
    } else {
        "set"
    }
}

/// The role `<select>`, with the core's refusal (the last administrator) under it.
fn role_select(selected: &str, errors: &FormErrors) -> String {
    let mut options = String::new();
    for (value, text) in ROLES {
        let sel = if value == selected { " selected" } else { "" };
        let _ = write!(
            options,
            "<option value=\"{value}\"{sel}>{}</option>",
            esc(text)
        );
    }
    let (aria, error) = match errors.of("role") {
        Some(e) => (
            " aria-invalid=\"true\" aria-describedby=\"f-role-error\"",
            format!(
                "<small class=\"field-error\" id=\"f-role-error\">{}</small>",
                esc(e)
            ),
        ),
        None => ("", String::new()),
    };
    format!(
        "<div class=\"field\"><label for=\"f-role\">Role</label><select id=\"f-role\" name=\"role\"{aria}>{options}</select>{error}</div>"
    )
}

fn crumbs() -> &'static str {
    "<p class=\"crumbs\"><a href=\"/console/settings\">Settings</a> / <a href=\"/console/settings/admins\">Administrators</a> /</p>"
}

pub async fn list(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("deleted") => html::notice(true, "Admin deleted."),
        _ => String::new(),
    };
    render_list(&c, &admin, &[], &FormErrors::default(), &message)
}

fn render_list(
    c: &Console,
    admin: &SignedIn,
    values: &[(String, String)],
    errors: &FormErrors,
    message: &str,
) -> Response {
    let admins = c.dir.list_admins();
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/settings\">Settings</a> /</p><h1>Administrators</h1>{message}"
    );
    if !can(admin, Permission::ManageOrg) {
        body.push_str(&errors.others(&[]));
    }
    body.push_str(
        "<div class=\"table\"><table><thead><tr><th scope=\"col\">E-mail</th><th scope=\"col\">Name</th>\
         <th scope=\"col\">Role</th><th scope=\"col\">TOTP</th><th scope=\"col\">Password</th>\
         <th scope=\"col\">Locked</th></tr></thead><tbody>",
    );
    for a in &admins {
        let you = if admin.id == a.id {
            " <span class=\"badge\">you</span>"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/settings/admins/{}\">{}</a>{you}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.id,
            esc(&a.email),
            esc(&a.name),
            role_label(a.role),
            totp_label(a.totp),
            password_label(a),
            if a.locked { "<span class=\"badge warn\">locked</span>" } else { "no" },
        );
    }
    body.push_str("</tbody></table></div>");
    if can(admin, Permission::ManageOrg) {
        let policy = c.dir.password_policy();
        let hint = format!(
            "optional: without one the admin cannot sign in until a password is set. {}",
            crate::auth::policy_summary(&policy)
        );
        let v = |name: &str| value_or(values, name, String::new());
        let _ = write!(
            body,
            "<section><h2>New admin</h2><form method=\"post\" action=\"/console/settings/admins\" class=\"record\">{}{}{}{}{}{}\
             <button>Create admin</button></form></section>",
            errors.others(&["email", "name", "role", "password"]),
            admin.csrf_field(),
            Field::new("email", "E-mail").kind("email").value(&v("email")).required().errors(errors).render(),
            Field::new("name", "Name").value(&v("name")).errors(errors).render(),
            role_select(&value_or(values, "role", "read_only".into()), errors),
            Field::new("password", "Initial password")
                .kind("password")
                .autocomplete("new-password")
                .hint(&hint)
                .errors(errors)
                .render(),
        );
    }
    let mut r = html::page(admin, "/console/settings", "Administrators", &body);
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
    let role = match parse_role(field(&fields, "role")) {
        Ok(r) => r,
        Err(e) => return render_list(&c, &admin, &fields, &e, ""),
    };
    let password = field(&fields, "password");
    let input = NewAdmin {
        email: field(&fields, "email").trim().to_string(),
        name: field(&fields, "name").trim().to_string(),
        role,
        password: (!password.is_empty()).then(|| password.to_string()),
    };
    match c.dir.create_admin(&admin.actor, input).await {
        Ok(a) => html::redirect(&format!("/console/settings/admins/{}?done=created", a.id)),
        Err(e) => {
            // The password is never sent back to the browser.
            let values: Vec<(String, String)> = fields
                .into_iter()
                .filter(|(k, _)| k != "password")
                .collect();
            render_list(&c, &admin, &values, &html::form_errors(&e), "")
        }
    }
}

fn detail_page(
    c: &Console,
    admin: &SignedIn,
    id: &Id,
    errors: &FormErrors,
    message: &str,
) -> Response {
    let a = match c.dir.get_admin(id) {
        Ok(a) => a,
        Err(e) => {
            return html::page(
                admin,
                "/console/settings",
                "Admin",
                &html::notice(false, &e.to_string()),
            )
        }
    };
    let own = admin.id == a.id;
    let keys = c
        .dir
        .list_api_keys()
        .iter()
        .filter(|k| k.admin_id == a.id)
        .count();
    let mut body = format!("{}<h1>{}</h1>{message}", crumbs(), esc(&a.email));
    let _ = write!(
        body,
        "<section class=\"summary\"><dl><dt>Name</dt><dd>{}</dd><dt>Role</dt><dd>{}</dd><dt>TOTP</dt><dd>{}</dd>\
         <dt>Password</dt><dd>{}</dd><dt>Locked</dt><dd>{}</dd><dt>API keys</dt><dd>{keys}</dd><dt>Created</dt><dd>{}</dd>\
         <dt>Id</dt><dd><code>{}</code></dd></dl></section>",
        esc(if a.name.is_empty() { "—" } else { &a.name }),
        role_label(a.role),
        totp_label(a.totp),
        match password_label(&a) {
            "one-time" => "one-time: to be replaced at the next sign-in",
            other => other,
        },
        if a.locked { "yes" } else { "no" },
        html::when(&a.created_at),
        a.id,
    );
    if !can(admin, Permission::ManageOrg) {
        body.push_str(&errors.others(&[]));
        return finish(admin, &a.email, &body, errors);
    }
    let base = format!("/console/settings/admins/{}", a.id);
    let _ = write!(
        body,
        "<section><h2>Role</h2><form method=\"post\" action=\"{base}\" class=\"record\">{}{}\
         <input type=\"hidden\" name=\"do\" value=\"role\">{}<button>Save role</button></form></section>",
        errors.others(&["role", "password", "new_password"]),
        admin.csrf_field(),
        role_select(role_value(a.role), errors),
    );
    if own {
        body.push_str(
            "<section><h2>Password</h2><p><a href=\"/console/password\">Change your own password</a> \
             (it asks for the current one).</p><p class=\"hint\">You cannot delete your own account.</p></section>",
        );
    } else {
        let policy = c.dir.password_policy();
        let _ = write!(
            body,
            "<section><h2>Reset password</h2><p class=\"hint\">The new password is one-time: the admin is asked \
             to choose their own at the next sign-in, and their sessions end now.</p>\
             <form method=\"post\" action=\"{base}\" class=\"record\">{}<input type=\"hidden\" name=\"do\" value=\"password\">{}\
             <button>Reset password</button></form></section>\
             <section><h2>Delete</h2><p><a class=\"button danger\" href=\"{base}/delete\">Delete this admin</a></p></section>",
            admin.csrf_field(),
            Field::new("new_password", "New password")
                .kind("password")
                .autocomplete("new-password")
                .hint(&crate::auth::policy_summary(&policy))
                .error_of(errors, &["password", "new_password"])
                .render(),
        );
    }
    finish(admin, &a.email, &body, errors)
}

fn finish(admin: &SignedIn, title: &str, body: &str, errors: &FormErrors) -> Response {
    let mut r = html::page(admin, "/console/settings", title, body);
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
        return no_such_admin(&admin);
    };
    let message = match q.get("done").map(String::as_str) {
        Some("created") => html::notice(true, "Admin created."),
        Some("role") => html::notice(true, "Role saved."),
        Some("password") => html::notice(
            true,
            "Password reset. Give it to the admin safely: they choose their own at the next sign-in.",
        ),
        _ => String::new(),
    };
    detail_page(&c, &admin, &id, &FormErrors::default(), &message)
}

fn no_such_admin(admin: &SignedIn) -> Response {
    html::page(
        admin,
        "/console/settings",
        "Admin",
        &html::notice(false, "No such admin."),
    )
}

/// Change an admin's role, or reset their password.
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
        return no_such_admin(&admin);
    };
    let (patch, done) = match field(&fields, "do") {
        "role" => match parse_role(field(&fields, "role")) {
            Ok(role) => (
                AdminPatch {
                    role: Some(role),
                    ..AdminPatch::default()
                },
                "role",
            ),
            Err(e) => return detail_page(&c, &admin, &id, &e, ""),
        },
        "password" => (
            AdminPatch {
                password: Some(field(&fields, "new_password").to_string()),
                ..AdminPatch::default()
            },
            "password",
        ),
        _ => {
            let e = FormErrors(vec![(String::new(), "Unknown action.".into())]);
            return detail_page(&c, &admin, &id, &e, "");
        }
    };
    match c.dir.update_admin(&admin.actor, &id, patch).await {
        Ok(_) => html::redirect(&format!("/console/settings/admins/{id}?done={done}")),
        Err(e) => detail_page(&c, &admin, &id, &html::form_errors(&e), ""),
    }
}

fn delete_question(c: &Console, admin: &SignedIn, id: &Id, error: &str) -> Response {
    let email = c
        .dir
        .get_admin(id)
        .map_or_else(|_| id.to_string(), |a| a.email);
    confirm_page(
        admin,
        "Delete admin",
        &format!(
            "Delete the admin {email}? Their API keys are deleted with them and their console sessions end. \
             This cannot be undone."
        ),
        &format!("/console/settings/admins/{id}/delete"),
        &format!("/console/settings/admins/{id}"),
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
        None => no_such_admin(&admin),
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
        return no_such_admin(&admin);
    };
    match c.dir.delete_admin(&admin.actor, &id).await {
        Ok(()) => html::redirect("/console/settings/admins?done=deleted"),
        Err(e) => delete_question(&c, &admin, &id, &e.to_string()),
    }
}
