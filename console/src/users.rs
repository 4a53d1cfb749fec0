//! Users: the list (search, filters by state, group, password status, MFA and lock, sorting, paging, bulk
//! actions on a selection), the new-user form, and each user's page (every field the API has, effective
//! attributes with where they come from, state, password, unlock, MFA reset, the activation link of a pending
//! password, group memberships and recent events). The list reads the live snapshot and builds views for the
//! shown page only.

use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Utc;
use core_directory::access::Permission;
use core_directory::model::{Employment, PasswordStatus, User, UserState};
use core_directory::views::{NewUser, UserPatch, UserView};
use core_directory::{EventQuery, Id};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

const PAGE: usize = 50;
/// Events examined for a user page's "recent events".
const RECENT_EVENTS_SCAN: usize = 2_000;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/users", get(list).post(bulk))
        .route("/console/users/new", get(new_page).post(create))
        .route("/console/users/{id}", get(detail).post(edit))
        .route("/console/users/{id}/action", post(action))
}

use crate::html::field;

fn opt(fields: &[(String, String)], name: &str) -> Option<String> {
    let v = field(fields, name).trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn state_label(s: UserState) -> &'static str {
    match s {
        UserState::Active => "active",
        UserState::Staged => "staged",
        UserState::Suspended => "suspended",
    }
}

fn password_label(s: PasswordStatus) -> &'static str {
    match s {
        PasswordStatus::Pending => "pending",
        PasswordStatus::Active => "set",
        PasswordStatus::Expired => "expired",
    }
}

fn parse_state(s: &str) -> Option<UserState> {
    match s {
        "active" => Some(UserState::Active),
        "staged" => Some(UserState::Staged),
        "suspended" => Some(UserState::Suspended),
        _ => None,
    }
}

/// Case-insensitive order of two names (ASCII fast path).
fn cmp_ci(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// The users' searchable names — user name, e-mail, first, last and display name, lower case — in one
/// contiguous text, built once per snapshot: a search is then one vectorised scan of a few megabytes instead
/// of a walk over every user's separately allocated strings.
#[derive(Default)]
pub struct SearchIndex {
    sequence: Option<u64>,
    text: Vec<u8>,
    /// Where each user's part of `text` starts, in order, with the user.
    starts: Vec<(usize, Id)>,
}

/// The index of the newest snapshot searched.
#[derive(Default)]
pub struct SearchCache(std::sync::Mutex<Arc<SearchIndex>>);

impl SearchCache {
    pub fn of(&self, snap: &core_directory::Snapshot) -> Arc<SearchIndex> {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cached.sequence != Some(snap.sequence) {
            let mut index = SearchIndex {
                sequence: Some(snap.sequence),
                text: Vec::with_capacity(snap.users.len() * 64),
                starts: Vec::with_capacity(snap.users.len()),
            };
            for u in snap.users.values() {
                index.starts.push((index.text.len(), u.id.clone()));
                for part in [
                    u.username.as_str(),
                    u.email.as_str(),
                    u.firstname.as_str(),
                    u.lastname.as_str(),
                    u.display_name.as_deref().unwrap_or(""),
                ] {
                    index.text.extend(part.to_lowercase().bytes());
                    // A separator no search word contains: a word never matches across two names.
                    index.text.push(0);
                }
            }
            *cached = Arc::new(index);
        }
        Arc::clone(&cached)
    }
}

impl SearchIndex {
    /// The users having every word (lower case) in one of their names.
    pub fn find(&self, words: &[&str]) -> Vec<Id> {
        let Some((first, rest)) = words.split_first() else {
            return Vec::new();
        };
        let mut out: Vec<Id> = Vec::new();
        let mut last: Option<usize> = None;
        for at in memchr::memmem::find_iter(&self.text, first.as_bytes()) {
            let i = self.starts.partition_point(|(s, _)| *s <= at) - 1;
            if last == Some(i) {
                continue;
            }
            last = Some(i);
            let end = self.starts.get(i + 1).map_or(self.text.len(), |(s, _)| *s);
            let part = &self.text[self.starts[i].0..end];
            if rest
                .iter()
                .all(|w| memchr::memmem::find(part, w.as_bytes()).is_some())
            {
                out.push(self.starts[i].1.clone());
            }
        }
        out
    }
}

/// The list's query string, kept across paging and sorting.
fn query_string(q: &HashMap<String, String>, skip: &[&str]) -> String {
    let mut keys: Vec<&String> = q.keys().filter(|k| !skip.contains(&k.as_str())).collect();
    keys.sort();
    keys.iter()
        .filter(|k| !q[k.as_str()].is_empty())
        .map(|k| format!("{}={}", html::q(k), html::q(&q[k.as_str()])))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn list(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    render_list(&c, &admin, &q, "")
}

fn render_list(
    c: &Console,
    admin: &SignedIn,
    q: &HashMap<String, String>,
    message: &str,
) -> Response {
    let snap = c.dir.snapshot();
    let policy = c.dir.password_policy();
    let now = Utc::now();
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let search = get("q").trim().to_lowercase();
    let words: Vec<&str> = search.split_whitespace().collect();
    let state = parse_state(get("state"));
    let group = Id::parse(get("group"));
    let members = group
        .as_ref()
        .map(|g| snap.members.get(g).cloned().unwrap_or_default());
    let password = get("password");
    let mfa = get("mfa");
    let locked = get("locked") == "on";
    let unfiltered = words.is_empty()
        && state.is_none()
        && group.is_none()
        && !locked
        && mfa.is_empty()
        && password.is_empty()
        && matches!(get("sort"), "" | "username");
    if unfiltered {
        // The default view: a page of the user-name index, without looking at any other user.
        let total = snap.users.len();
        let pages = total.div_ceil(PAGE).max(1);
        let page = get("page").parse::<usize>().unwrap_or(1).clamp(1, pages);
        let shown: Vec<UserView> = snap
            .user_order
            .values()
            .skip((page - 1) * PAGE)
            .take(PAGE)
            .filter_map(|id| snap.user(id))
            .map(|u| UserView::of(u, &snap, now))
            .collect();
        return list_page(admin, q, message, &snap, total, page, pages, &shown);
    }
    // Searched: the candidates come from the search index (one pass over compact text), the rest from the
    // snapshot.
    let searched: Option<Vec<&Arc<User>>> = (!words.is_empty()).then(|| {
        c.search
            .of(&snap)
            .find(&words)
            .iter()
            .filter_map(|id| snap.user(id))
            .collect()
    });
    let candidates: Box<dyn Iterator<Item = &Arc<User>>> = match &searched {
        Some(found) => Box::new(found.iter().copied()),
        None => Box::new(snap.users.values()),
    };
    let mut matched: Vec<&Arc<User>> = candidates
        .filter(|u| state.is_none_or(|s| u.state == s))
        .filter(|u| members.as_ref().is_none_or(|m| m.contains(&u.id)))
        .filter(|u| !locked || u.locked_until.is_some_and(|t| t > now))
        .filter(|u| match mfa {
            "on" => u.totp_active(),
            "off" => !u.totp_active(),
            "required" => u.mfa_required,
            _ => true,
        })
        .filter(|u| {
            password.is_empty() || password_label(u.password_status(&policy, now)) == password
        })
        .collect();
    let sort = get("sort");
    let total = matched.len();
    let pages = total.div_ceil(PAGE).max(1);
    let page = get("page").parse::<usize>().unwrap_or(1).clamp(1, pages);
    // Only the users up to the end of the shown page are put in order: a selection (linear) and a sort of
    // that head, instead of sorting every user on every view.
    let order = |a: &&Arc<User>, b: &&Arc<User>| {
        match sort {
            "email" => a.email.cmp(&b.email),
            "name" => {
                cmp_ci(&a.lastname, &b.lastname).then_with(|| cmp_ci(&a.firstname, &b.firstname))
            }
            "created" => b.created_at.cmp(&a.created_at),
            _ => a.username.cmp(&b.username),
        }
        .then_with(|| a.id.cmp(&b.id))
    };
    let head = (page * PAGE).min(total);
    if head > 0 && head < total {
        matched.select_nth_unstable_by(head - 1, order);
        matched.truncate(head);
    }
    matched.sort_unstable_by(order);
    let shown: Vec<UserView> = matched
        .iter()
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .map(|u| UserView::of(u, &snap, now))
        .collect();

    list_page(admin, q, message, &snap, total, page, pages, &shown)
}

/// The users list page around the `shown` users of page `page` of `pages` (`total` matched).
#[allow(clippy::too_many_arguments)]
fn list_page(
    admin: &SignedIn,
    q: &HashMap<String, String>,
    message: &str,
    snap: &core_directory::Snapshot,
    total: usize,
    page: usize,
    pages: usize,
    shown: &[UserView],
) -> Response {
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let (password, mfa, sort, locked) = (
        get("password"),
        get("mfa"),
        get("sort"),
        get("locked") == "on",
    );
    let mut groups: Vec<(String, String)> = snap
        .groups
        .values()
        .map(|g| (g.id.to_string(), g.name.clone()))
        .collect();
    groups.sort_by(|a, b| a.1.cmp(&b.1));
    let group_options: Vec<(&str, &str)> = std::iter::once(("", "Any group"))
        .chain(groups.iter().map(|(i, n)| (i.as_str(), n.as_str())))
        .collect();

    let mut body = String::from("<h1>Users</h1>");
    body.push_str(message);
    if can(admin, Permission::ManageUsers) {
        body.push_str("<p class=\"actions\"><a class=\"button\" href=\"/console/users/new\">New user</a> <a class=\"button secondary\" href=\"/console/import\">Import CSV</a></p>");
    }
    let _ = write!(
        body,
        "<form method=\"get\" action=\"/console/users\" class=\"filters\" role=\"search\">{}{}{}{}{}{}{}\
         <button>Filter</button> <a href=\"/console/users\">Clear</a></form>",
        Field::new("q", "Search")
            .kind("search")
            .value(get("q"))
            .hint("user name, e-mail or name")
            .render(),
        html::select(
            "state",
            "State",
            &[("", "Any state"), ("active", "Active"), ("staged", "Staged"), ("suspended", "Suspended")],
            get("state")
        ),
        html::select("group", "Group", &group_options, get("group")),
        html::select(
            "password",
            "Password",
            &[("", "Any password status"), ("set", "Set"), ("pending", "Pending"), ("expired", "Expired")],
            password
        ),
        html::select(
            "mfa",
            "MFA",
            &[("", "Any MFA"), ("on", "TOTP on"), ("off", "TOTP off"), ("required", "MFA required")],
            mfa
        ),
        html::select(
            "sort",
            "Sort by",
            &[("", "User name"), ("email", "E-mail"), ("name", "Last name"), ("created", "Newest first")],
            sort
        ),
        Field::new("locked", "Locked only")
            .kind("checkbox")
            .value(if locked { "on" } else { "" })
            .render(),
    );
    let _ = write!(
        body,
        "<p class=\"count\" role=\"status\">{total} user{} found</p>",
        if total == 1 { "" } else { "s" }
    );
    let bulk = can(admin, Permission::ManageUsers);
    if bulk {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/users?{}\" id=\"bulk\">{}",
            esc(&query_string(q, &[])),
            admin.csrf_field()
        );
    }
    body.push_str("<div class=\"table\"><table><thead><tr>");
    if bulk {
        body.push_str("<th scope=\"col\"><span class=\"visually-hidden\">Select</span></th>");
    }
    body.push_str("<th scope=\"col\">User name</th><th scope=\"col\">Name</th><th scope=\"col\">E-mail</th><th scope=\"col\">State</th><th scope=\"col\">Password</th><th scope=\"col\">MFA</th></tr></thead><tbody>");
    for u in shown {
        body.push_str("<tr>");
        if bulk {
            let _ = write!(
                body,
                "<td><input type=\"checkbox\" name=\"user\" value=\"{id}\" id=\"sel-{id}\" aria-label=\"Select {name}\"></td>",
                id = u.id,
                name = esc(&u.username)
            );
        }
        let lock = if u.locked {
            " <span class=\"badge warn\">locked</span>"
        } else {
            ""
        };
        let _ = write!(
            body,
            "<td><a href=\"/console/users/{}\">{}</a></td><td>{}</td><td>{}</td><td><span class=\"badge {st}\">{st}</span>{lock}</td><td>{}</td><td>{}</td></tr>",
            u.id,
            esc(&u.username),
            esc(&format!("{} {}", u.firstname, u.lastname)),
            esc(&u.email),
            password_label(u.password_status),
            if matches!(u.mfa.totp, core_directory::views::TotpStatus::Active) { "TOTP" } else if u.mfa.required { "required" } else { "—" },
            st = state_label(u.state),
        );
    }
    body.push_str("</tbody></table></div>");
    if bulk {
        let _ = write!(
            body,
            "<fieldset class=\"bulk\"><legend>With the selected users</legend>{}<button name=\"do\" value=\"activate\">Activate</button> \
             <button name=\"do\" value=\"suspend\">Suspend</button> <button name=\"do\" value=\"add\">Add to group</button> \
             <button name=\"do\" value=\"remove\">Remove from group</button></fieldset></form>",
            html::select("bulk_group", "Group for add or remove", &group_options[1..], ""),
        );
    }
    if pages > 1 {
        let base = query_string(q, &["page"]);
        body.push_str("<nav class=\"pager\" aria-label=\"Pages\">");
        if page > 1 {
            let _ = write!(
                body,
                "<a href=\"/console/users?{}&page={}\" rel=\"prev\">Previous</a>",
                esc(&base),
                page - 1
            );
        }
        let _ = write!(body, " <span>Page {page} of {pages}</span> ");
        if page < pages {
            let _ = write!(
                body,
                "<a href=\"/console/users?{}&page={}\" rel=\"next\">Next</a>",
                esc(&base),
                page + 1
            );
        }
        body.push_str("</nav>");
    }
    html::page(admin, "/console/users", "Users", &body)
}

/// Bulk actions on a selection of users: each is its own core call, and the result counts what succeeded.
pub async fn bulk(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let ids: Vec<Id> = fields
        .iter()
        .filter(|(k, _)| k == "user")
        .filter_map(|(_, v)| Id::parse(v))
        .collect();
    let what = field(&fields, "do");
    let group = Id::parse(field(&fields, "bulk_group"));
    if ids.is_empty() {
        return render_list(
            &c,
            &admin,
            &q,
            &html::notice(false, "Select at least one user first."),
        );
    }
    let (mut done, mut errors) = (0, Vec::new());
    for id in &ids {
        let result = match (what, &group) {
            ("activate" | "suspend", _) => {
                let patch = UserPatch {
                    state: Some(if what == "activate" {
                        UserState::Active
                    } else {
                        UserState::Suspended
                    }),
                    ..UserPatch::default()
                };
                c.dir.update_user(&admin.actor, id, patch).await.map(|_| ())
            }
            ("add", Some(g)) => c.dir.add_member(&admin.actor, g, id).await,
            ("remove", Some(g)) => c.dir.remove_member(&admin.actor, g, id).await,
            ("add" | "remove", None) => {
                return render_list(
                    &c,
                    &admin,
                    &q,
                    &html::notice(false, "Choose the group first."),
                );
            }
            _ => return render_list(&c, &admin, &q, &html::notice(false, "Unknown action.")),
        };
        match result {
            Ok(()) => done += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut message = html::notice(true, &format!("{done} of {} users changed.", ids.len()));
    errors.dedup();
    for e in errors.iter().take(5) {
        message.push_str(&html::notice(false, e));
    }
    render_list(&c, &admin, &q, &message)
}

fn user_form(
    c: &Console,
    admin: &SignedIn,
    u: Option<&UserView>,
    values: &[(String, String)],
    errors: &FormErrors,
) -> String {
    let v = |name: &str, current: String| -> String {
        if values.is_empty() {
            current
        } else {
            field(values, name).to_string()
        }
    };
    let check = |name: &str, current: bool| -> &'static str {
        let on = if values.is_empty() {
            current
        } else {
            field(values, name) == "on"
        };
        if on {
            "on"
        } else {
            ""
        }
    };
    let e = u.map(|u| &u.employment);
    let policy = c.dir.password_policy();
    let mut s = String::new();
    s.push_str(&errors.others(&[
        "username",
        "email",
        "firstname",
        "lastname",
        "display_name",
        "password",
        "uid_number",
        "gid_number",
        "home_directory",
        "login_shell",
        "phone",
        "external_id",
        "attributes",
    ]));
    s.push_str(&admin.csrf_field());
    if let Some(u) = u {
        let _ = write!(
            s,
            "<input type=\"hidden\" name=\"expect_revision\" value=\"{}\">",
            u.revision
        );
    }
    let fields: Vec<(&str, &str, String, &str, &str)> = vec![
        (
            "username",
            "User name",
            u.map_or(String::new(), |u| {
                u.login_name.clone().unwrap_or_else(|| u.username.clone())
            }),
            "text",
            "letters, digits, '.', '_', '-' (the LDAP uid, stored lower case), or an e-mail-shaped sign-in name \
             from which the uid is derived",
        ),
        (
            "email",
            "E-mail",
            u.map_or(String::new(), |u| u.email.clone()),
            "email",
            "",
        ),
        (
            "firstname",
            "First name",
            u.map_or(String::new(), |u| u.firstname.clone()),
            "text",
            "",
        ),
        (
            "lastname",
            "Last name",
            u.map_or(String::new(), |u| u.lastname.clone()),
            "text",
            "",
        ),
        (
            "display_name",
            "Display name",
            u.and_then(|u| u.display_name.clone()).unwrap_or_default(),
            "text",
            "optional",
        ),
    ];
    s.push_str("<fieldset><legend>Identity</legend>");
    for (name, label, current, kind, hint) in &fields {
        let value = v(name, current.clone());
        let mut f = Field::new(name, label)
            .kind(kind)
            .value(&value)
            .hint(hint)
            .errors(errors);
        if *name == "username" || *name == "email" {
            f = f.required();
        }
        s.push_str(&f.render());
    }
    s.push_str("</fieldset>");
    if u.is_none() {
        let hint = format!(
            "optional: without one the password is pending and the user sets it. {}",
            crate::auth::policy_summary(&policy)
        );
        let _ = write!(
            s,
            "<fieldset><legend>Password</legend>{}{}</fieldset>",
            Field::new("password", "Password")
                .kind("password")
                .autocomplete("new-password")
                .hint(&hint)
                .errors(errors)
                .render(),
            html::select(
                "state",
                "State",
                &[("active", "Active"), ("staged", "Staged")],
                &v("state", "active".into())
            ),
        );
    }
    s.push_str("<fieldset><legend>Access</legend>");
    s.push_str(
        &Field::new(
            "ldap_bind_dn",
            "LDAP Bind DN (service account that may search the directory)",
        )
        .kind("checkbox")
        .value(check("ldap_bind_dn", u.is_some_and(|u| u.ldap_bind_dn)))
        .render(),
    );
    s.push_str(
        &Field::new("mfa_required", "MFA required (TOTP)")
            .kind("checkbox")
            .value(check("mfa_required", u.is_some_and(|u| u.mfa.required)))
            .render(),
    );
    s.push_str("</fieldset><fieldset><legend>Linux</legend>");
    let linux: Vec<(&str, &str, String, &str)> = vec![
        (
            "uid_number",
            "UID",
            u.map_or(String::new(), |u| u.uid_number.to_string()),
            "allocated when empty",
        ),
        (
            "gid_number",
            "GID",
            u.map_or(String::new(), |u| u.gid_number.to_string()),
            "the UID when empty",
        ),
        (
            "home_directory",
            "Home directory",
            u.map_or(String::new(), |u| u.home_directory.clone()),
            "/home/<user name> when empty",
        ),
        (
            "login_shell",
            "Login shell",
            u.map_or(String::new(), |u| u.login_shell.clone()),
            "/bin/bash when empty",
        ),
    ];
    for (name, label, current, hint) in &linux {
        let value = v(name, current.clone());
        s.push_str(
            &Field::new(name, label)
                .value(&value)
                .hint(hint)
                .errors(errors)
                .render(),
        );
    }
    s.push_str("</fieldset><fieldset><legend>Employment and contact</legend>");
    let emp: Vec<(&str, &str, String)> = vec![
        (
            "title",
            "Job title",
            e.and_then(|e| e.title.clone()).unwrap_or_default(),
        ),
        (
            "department",
            "Department",
            e.and_then(|e| e.department.clone()).unwrap_or_default(),
        ),
        (
            "company",
            "Company",
            e.and_then(|e| e.company.clone()).unwrap_or_default(),
        ),
        (
            "employee_id",
            "Employee id",
            e.and_then(|e| e.employee_id.clone()).unwrap_or_default(),
        ),
        (
            "manager",
            "Manager",
            e.and_then(|e| e.manager.clone()).unwrap_or_default(),
        ),
        (
            "phone",
            "Phone",
            u.and_then(|u| u.phone.clone()).unwrap_or_default(),
        ),
        (
            "external_id",
            "External id",
            u.and_then(|u| u.external_id.clone()).unwrap_or_default(),
        ),
    ];
    for (name, label, current) in &emp {
        let value = v(name, current.clone());
        s.push_str(
            &Field::new(name, label)
                .value(&value)
                .errors(errors)
                .render(),
        );
    }
    let attrs = u.map_or(String::new(), |u| {
        u.attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let attrs = v("attributes", attrs);
    let _ = write!(
        s,
        "</fieldset><fieldset><legend>Custom attributes</legend><div class=\"field\"><label for=\"f-attributes\">One per line, name=value</label>\
         <textarea id=\"f-attributes\" name=\"attributes\" rows=\"4\">{}</textarea>{}</div></fieldset>",
        esc(&attrs),
        errors.of("attributes").map_or(String::new(), |e| format!("<small class=\"field-error\">{}</small>", esc(e)))
    );
    s
}

fn attributes(fields: &[(String, String)]) -> Result<BTreeMap<String, String>, FormErrors> {
    let mut out = BTreeMap::new();
    for line in field(fields, "attributes").lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(FormErrors(vec![(
                "attributes".into(),
                format!("`{line}` is not name=value"),
            )]));
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

fn number(fields: &[(String, String)], name: &str) -> Result<Option<u32>, FormErrors> {
    match opt(fields, name) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| FormErrors(vec![(name.to_string(), "a whole number, please".into())])),
    }
}

fn employment(fields: &[(String, String)]) -> Employment {
    Employment {
        title: opt(fields, "title"),
        department: opt(fields, "department"),
        company: opt(fields, "company"),
        employee_id: opt(fields, "employee_id"),
        manager: opt(fields, "manager"),
    }
}

pub async fn new_page(State(c): State<Console>, admin: SignedIn) -> Response {
    new_form(&c, &admin, &[], &FormErrors::default())
}

fn new_form(
    c: &Console,
    admin: &SignedIn,
    values: &[(String, String)],
    errors: &FormErrors,
) -> Response {
    let body = format!(
        "<h1>New user</h1><form method=\"post\" action=\"/console/users/new\" class=\"record\">{}<button>Create user</button></form>",
        user_form(c, admin, None, values, errors)
    );
    let mut r = html::page(admin, "/console/users", "New user", &body);
    if !errors.is_empty() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
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
    let parsed = (|| {
        Ok::<_, FormErrors>(NewUser {
            username: field(&fields, "username").trim().to_string(),
            email: field(&fields, "email").trim().to_string(),
            firstname: field(&fields, "firstname").trim().to_string(),
            lastname: field(&fields, "lastname").trim().to_string(),
            display_name: opt(&fields, "display_name"),
            password: (!field(&fields, "password").is_empty())
                .then(|| field(&fields, "password").to_string()),
            state: parse_state(field(&fields, "state")),
            ldap_bind_dn: field(&fields, "ldap_bind_dn") == "on",
            mfa_required: field(&fields, "mfa_required") == "on",
            uid_number: number(&fields, "uid_number")?,
            gid_number: number(&fields, "gid_number")?,
            home_directory: opt(&fields, "home_directory"),
            login_shell: opt(&fields, "login_shell"),
            employment: Some(employment(&fields)),
            phone: opt(&fields, "phone"),
            external_id: opt(&fields, "external_id"),
            attributes: attributes(&fields)?,
            ..NewUser::default()
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(errors) => return new_form(&c, &admin, &fields, &errors),
    };
    match c.dir.create_user(&admin.actor, input).await {
        Ok(u) => html::redirect(&format!("/console/users/{}?done=created", u.id)),
        Err(e) => {
            // The password is never sent back to the browser.
            let values: Vec<(String, String)> = fields
                .into_iter()
                .filter(|(k, _)| k != "password")
                .collect();
            new_form(&c, &admin, &values, &html::form_errors(&e))
        }
    }
}

async fn detail_page(
    c: &Console,
    admin: &SignedIn,
    id: &Id,
    values: &[(String, String)],
    errors: &FormErrors,
    message: &str,
) -> Response {
    let view = match c.dir.get_user(id) {
        Ok(v) => v,
        Err(e) => {
            return html::page(
                admin,
                "/console/users",
                "User",
                &html::notice(false, &e.to_string()),
            )
        }
    };
    let snap = c.dir.snapshot();
    let write = can(admin, Permission::ManageUsers);
    let reset = can(admin, Permission::ResetCredentials);
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/users\">Users</a> /</p><h1>{}</h1>{message}",
        esc(&view.username)
    );
    let _ = write!(
        body,
        "<section class=\"summary\"><dl>{}<dt>State</dt><dd><span class=\"badge {st}\">{st}</span></dd><dt>Password</dt><dd>{}</dd>\
         <dt>Locked</dt><dd>{}</dd><dt>MFA</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>Id</dt><dd><code>{}</code></dd></dl></section>",
        view.login_name.as_deref().map_or(String::new(), |l| format!(
            "<dt>Sign-in name</dt><dd>{}</dd><dt>User name (uid)</dt><dd><code>{}</code></dd>",
            esc(l),
            esc(&view.username)
        )),
        match &view.legacy_password_scheme {
            Some(scheme) => format!(
                "{} <span class=\"hint\">(imported {} hash, re-hashed to argon2id at the next sign-in)</span>",
                password_label(view.password_status),
                esc(scheme)
            ),
            None => password_label(view.password_status).to_string(),
        },
        if view.locked { format!("yes, after {} failed sign-ins", view.failed_logins) } else { "no".into() },
        match view.mfa.totp {
            core_directory::views::TotpStatus::Active => "TOTP on",
            core_directory::views::TotpStatus::Pending => "TOTP enrolment started",
            core_directory::views::TotpStatus::NotEnrolled => if view.mfa.required { "required, not enrolled" } else { "off" },
        },
        html::when(&view.created_at),
        view.id,
        st = state_label(view.state),
    );
    // Actions.
    let base = format!("/console/users/{}/action", view.id);
    let mut actions = String::new();
    if write {
        let (label, value) = if view.state == UserState::Active {
            ("Suspend", "suspend")
        } else {
            ("Activate", "activate")
        };
        let _ = write!(actions, "<form method=\"post\" action=\"{base}\" class=\"inline\">{}<input type=\"hidden\" name=\"do\" value=\"{value}\"><button>{label}</button></form>", admin.csrf_field());
    }
    if reset {
        if view.locked {
            let _ = write!(actions, "<form method=\"post\" action=\"{base}\" class=\"inline\">{}<input type=\"hidden\" name=\"do\" value=\"unlock\"><button>Unlock</button></form>", admin.csrf_field());
        }
        if !matches!(
            view.mfa.totp,
            core_directory::views::TotpStatus::NotEnrolled
        ) {
            let _ = write!(actions, "<form method=\"post\" action=\"{base}\" class=\"inline\">{}<input type=\"hidden\" name=\"do\" value=\"reset_mfa\"><button>Reset MFA</button></form>", admin.csrf_field());
        }
    }
    let activation = reset
        && view.password_status == PasswordStatus::Pending
        && view.state != UserState::Suspended;
    let mail = c.dir.mail_settings().enabled;
    if activation {
        let _ = write!(actions, "<form method=\"post\" action=\"{base}\" class=\"inline\">{}<input type=\"hidden\" name=\"do\" value=\"activation\"><button>Send activation link</button></form>", admin.csrf_field());
        if mail {
            let _ = write!(actions, "<form method=\"post\" action=\"{base}\" class=\"inline\">{}<input type=\"hidden\" name=\"do\" value=\"activation_hand_over\"><button class=\"secondary\">Show a link to hand over</button></form>", admin.csrf_field());
        }
    }
    if !actions.is_empty() {
        let hint = match (activation, mail) {
            (false, _) => "",
            (true, true) => "<p class=\"hint\">The password is still to be chosen: the activation link lets the user set it, once.</p>",
            (true, false) => "<p class=\"hint\">The password is still to be chosen. No mail server is configured: the activation link is shown here for you to hand over.</p>",
        };
        let _ = write!(
            body,
            "<section><h2>Actions</h2><p class=\"actions\">{actions}</p>{hint}</section>"
        );
    }
    if reset {
        let policy = c.dir.password_policy();
        let _ = write!(
            body,
            "<section><h2>Set a password</h2><form method=\"post\" action=\"{base}\" class=\"record\">{}<input type=\"hidden\" name=\"do\" value=\"password\">{}<button>Set password</button></form></section>",
            admin.csrf_field(),
            Field::new("new_password", "New password").kind("password").autocomplete("new-password").hint(&crate::auth::policy_summary(&policy)).error_of(errors, &["password", "new_password"]).render(),
        );
    }
    // Groups.
    let mut groups: Vec<(&Id, &str)> = view
        .groups
        .iter()
        .filter_map(|g| snap.groups.get(g).map(|gr| (g, gr.name.as_str())))
        .collect();
    groups.sort_by(|a, b| a.1.cmp(b.1));
    body.push_str("<section><h2>Groups</h2>");
    if groups.is_empty() {
        body.push_str(
            "<p>Not in any group: this user reaches no LDAP directory, RADIUS network or app.</p>",
        );
    } else {
        body.push_str("<ul class=\"chips\">");
        for (g, name) in &groups {
            let _ = write!(
                body,
                "<li><a href=\"/console/groups/{g}\">{}</a></li>",
                esc(name)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");
    body.push_str(&crate::radius::sessions_section(
        c,
        &core_directory::radius_sessions::SessionQuery {
            user: Some(view.id.to_string()),
            profile: None,
        },
        false,
    ));
    // Effective attributes and where they come from.
    if !view.effective_attributes.is_empty() {
        body.push_str("<section><h2>Effective attributes</h2><div class=\"table\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Value</th><th scope=\"col\">From</th></tr></thead><tbody>");
        for (k, v) in &view.effective_attributes {
            let from = if view.attributes.get(k) == Some(v) {
                "the user".to_string()
            } else {
                groups
                    .iter()
                    .find(|(g, _)| {
                        snap.groups
                            .get(*g)
                            .is_some_and(|gr| gr.attributes.get(k) == Some(v))
                    })
                    .map_or_else(|| "a group".to_string(), |(_, n)| format!("group {n}"))
            };
            let _ = write!(
                body,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(k),
                esc(v),
                esc(&from)
            );
        }
        body.push_str("</tbody></table></div></section>");
    }
    // Edit form.
    if write {
        let _ = write!(
            body,
            "<section><h2>Details</h2><form method=\"post\" action=\"/console/users/{}\" class=\"record\">{}<button>Save changes</button></form></section>",
            view.id,
            user_form(c, admin, Some(&view), values, errors)
        );
    }
    // Recent events.
    let events = c
        .dir
        .query_events(EventQuery {
            user: Some(view.username.clone()),
            limit: 20,
            ..EventQuery::default()
        })
        .await
        .unwrap_or_default();
    let _ = write!(body, "<section><h2>Recent events</h2><p class=\"hint\">Among the latest {RECENT_EVENTS_SCAN} events recorded.</p>{}<p><a href=\"/console/insights?user={}&range=all\">All events of this user</a></p></section>", crate::insights::table(&events), html::q(&view.username));
    let mut r = html::page(admin, "/console/users", &view.username, &body);
    if !errors.is_empty() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
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
        return html::missing(&admin, "/console/users", "User");
    };
    let message = match q.get("done").map(String::as_str) {
        Some("created") => html::notice(true, "User created."),
        Some("activation_mailed") => activation_mailed(&c, &id),
        Some("saved") => html::notice(true, "Changes saved."),
        Some(other) => html::notice(true, &format!("Done: {}.", other.replace('_', " "))),
        None => String::new(),
    };
    detail_page(&c, &admin, &id, &[], &FormErrors::default(), &message).await
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
    let Some(id) = Id::parse(&id) else {
        return html::missing(&admin, "/console/users", "User");
    };
    let parsed = (|| {
        Ok::<_, FormErrors>(UserPatch {
            username: Some(field(&fields, "username").trim().to_string()),
            email: Some(field(&fields, "email").trim().to_string()),
            firstname: Some(field(&fields, "firstname").trim().to_string()),
            lastname: Some(field(&fields, "lastname").trim().to_string()),
            display_name: Some(field(&fields, "display_name").trim().to_string()),
            ldap_bind_dn: Some(field(&fields, "ldap_bind_dn") == "on"),
            mfa_required: Some(field(&fields, "mfa_required") == "on"),
            uid_number: number(&fields, "uid_number")?,
            gid_number: number(&fields, "gid_number")?,
            home_directory: opt(&fields, "home_directory"),
            login_shell: opt(&fields, "login_shell"),
            employment: Some(employment(&fields)),
            phone: Some(field(&fields, "phone").trim().to_string()),
            external_id: Some(field(&fields, "external_id").trim().to_string()),
            attributes: Some(attributes(&fields)?),
            // Saved only if nobody changed the user since the form was drawn.
            expect_revision: field(&fields, "expect_revision").parse().ok(),
            ..UserPatch::default()
        })
    })();
    let patch = match parsed {
        Ok(p) => p,
        Err(errors) => return detail_page(&c, &admin, &id, &fields, &errors, "").await,
    };
    match c.dir.update_user(&admin.actor, &id, patch).await {
        Ok(_) => html::redirect(&format!("/console/users/{id}?done=saved")),
        Err(e) => detail_page(&c, &admin, &id, &fields, &html::form_errors(&e), "").await,
    }
}

pub async fn action(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return html::missing(&admin, "/console/users", "User");
    };
    let what = field(&fields, "do");
    if let "activation" | "activation_hand_over" = what {
        return activation(&c, &admin, &id, what == "activation_hand_over").await;
    }
    let result = match what {
        "suspend" | "activate" => c
            .dir
            .update_user(
                &admin.actor,
                &id,
                UserPatch {
                    state: Some(if what == "activate" {
                        UserState::Active
                    } else {
                        UserState::Suspended
                    }),
                    ..UserPatch::default()
                },
            )
            .await
            .map(|_| ()),
        "unlock" => c.dir.unlock_user(&admin.actor, &id).await.map(|_| ()),
        "reset_mfa" => c.dir.remove_totp(&admin.actor, &id).await.map(|_| ()),
        "password" => c
            .dir
            .set_password(&admin.actor, &id, field(&fields, "new_password"))
            .await
            .map(|_| ()),
        _ => {
            return detail_page(
                &c,
                &admin,
                &id,
                &[],
                &FormErrors::default(),
                &html::notice(false, "Unknown action."),
            )
            .await
        }
    };
    match result {
        Ok(()) => html::redirect(&format!(
            "/console/users/{id}?done={}",
            match what {
                "suspend" => "suspended",
                "activate" => "activated",
                "unlock" => "unlocked",
                "reset_mfa" => "MFA_reset",
                _ => "password_set",
            }
        )),
        Err(e) => {
            detail_page(
                &c,
                &admin,
                &id,
                &[],
                &html::form_errors(&e),
                &html::notice(false, &e.to_string()),
            )
            .await
        }
    }
}

/// An activation link for a user whose password is pending: mailed (then the page says so, after a redirect), or
/// shown once in the answer for the admin to hand over (no redirect: the link is not kept anywhere to show again).
async fn activation(c: &Console, admin: &SignedIn, id: &Id, hand_over: bool) -> Response {
    match c.dir.send_activation(&admin.actor, id, hand_over).await {
        Ok(sent) => match sent.link {
            Some(link) => {
                let shown = activation_link_box(&link, &sent.expires_at);
                detail_page(c, admin, id, &[], &FormErrors::default(), &shown).await
            }
            None => html::redirect(&format!("/console/users/{id}?done=activation_mailed")),
        },
        Err(e) => {
            // Said once, at the top: the refusal concerns no field of the page's forms.
            let mut r = detail_page(
                c,
                admin,
                id,
                &[],
                &FormErrors::default(),
                &html::notice(false, &e.to_string()),
            )
            .await;
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
    }
}

/// The link to hand over, in a box to copy it from.
fn activation_link_box(link: &str, expires_at: &chrono::DateTime<Utc>) -> String {
    format!(
        "<section class=\"once\" aria-labelledby=\"activation-heading\"><h2 id=\"activation-heading\">Activation link</h2>\
         <p role=\"status\">No mail was sent. Hand this link to the user: it sets their first password, once, until {}.</p>\
         <pre class=\"copy\"><code id=\"activation-link\" data-copy=\"link\">{}</code></pre>\
         <p class=\"hint\">Whoever holds it can set the password, so pass it on privately. Stratus keeps only a digest \
         of it and cannot show it again: if it is lost, send a new one.</p></section>",
        html::when(expires_at),
        esc(link)
    )
}

/// The note after an activation link was queued for the user's address.
fn activation_mailed(c: &Console, id: &Id) -> String {
    let to = c
        .dir
        .snapshot()
        .user(id)
        .map_or_else(String::new, |u| u.email.clone());
    format!(
        "<p class=\"note\" role=\"status\">Activation link mailed to <strong>{}</strong>. Its delivery shows on \
         the <a href=\"/console/settings/mail\">Mail</a> page until the mail server accepts it.</p>",
        esc(&to)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(users: &[(&str, &str)]) -> (SearchIndex, Vec<Id>) {
        let mut ix = SearchIndex::default();
        let mut ids = Vec::new();
        for (name, last) in users {
            let id = Id::generate();
            ix.starts.push((ix.text.len(), id.clone()));
            for part in [*name, &format!("{name}@example.com"), "Ann", last, ""] {
                ix.text.extend(part.to_lowercase().bytes());
                ix.text.push(0);
            }
            ids.push(id);
        }
        (ix, ids)
    }

    #[test]
    fn every_word_must_be_in_one_of_the_user_s_names() {
        let (ix, ids) = index(&[
            ("ann", "Lovelace"),
            ("joann", "Walker"),
            ("bob", "Lovelace"),
        ]);
        assert_eq!(
            ix.find(&["ann"]),
            vec![ids[0].clone(), ids[1].clone(), ids[2].clone()]
        );
        assert_eq!(ix.find(&["joann"]), vec![ids[1].clone()]);
        assert_eq!(
            ix.find(&["ann", "lovelace"]),
            vec![ids[0].clone(), ids[2].clone()]
        );
        assert_eq!(ix.find(&["bob", "walker"]), Vec::<Id>::new());
        // A word never spans two names.
        assert_eq!(ix.find(&["comann"]), Vec::<Id>::new());
    }
}
