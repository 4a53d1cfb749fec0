//! Groups: the list, the new-group form, and each group's page — its fields (Linux group and GID, Samba,
//! priority, custom attributes, RADIUS reply attributes), its members (add many by user name, with suggestions
//! as you type; remove a selection) and its bindings to LDAP, RADIUS profiles and SSO apps, with what each
//! binding means for the members.

use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use core_directory::access::Permission;
use core_directory::model::{ReplyAttribute, Resource};
use core_directory::views::{GroupPatch, GroupView, LinuxGroupInput, NewGroup};
use core_directory::Id;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/groups", get(list))
        .route("/console/groups/new", get(new_page).post(create))
        .route("/console/groups/{id}", get(detail).post(edit))
        .route("/console/groups/{id}/members", post(members))
        .route("/console/groups/{id}/bindings", post(bindings))
        .route("/console/suggest/users", get(suggest))
}

pub async fn list(State(c): State<Console>, admin: SignedIn) -> Response {
    let mut groups = c.dir.list_groups();
    groups.sort_by(|a, b| a.group.name.cmp(&b.group.name));
    let mut body = String::from("<h1>Groups</h1>");
    if can(&admin, Permission::ManageUsers) {
        body.push_str("<p class=\"actions\"><a class=\"button\" href=\"/console/groups/new\">New group</a></p>");
    }
    body.push_str("<p class=\"hint\">Users reach LDAP, RADIUS networks and apps only through a group bound to them.</p>");
    body.push_str("<div class=\"table\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Members</th><th scope=\"col\">Linux group</th><th scope=\"col\">Bound to</th></tr></thead><tbody>");
    for g in &groups {
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/groups/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            g.group.id,
            esc(&g.group.name),
            g.member_count,
            g.group.linux_group.as_ref().map_or_else(|| "—".to_string(), |l| format!("{} ({})", esc(&l.name), l.gid)),
            esc(&binding_names(&c, &g.bindings).join(", ")),
        );
    }
    body.push_str("</tbody></table></div>");
    html::page(&admin, "/console/groups", "Groups", &body)
}

/// Readable names of bindings (`ldap`, `radius:<id>`, `app:<id>`).
fn binding_names(c: &Console, bindings: &[String]) -> Vec<String> {
    let snap = c.dir.snapshot();
    bindings
        .iter()
        .map(|b| match Resource::parse(b) {
            Some(Resource::Ldap) => "LDAP".to_string(),
            Some(Resource::Radius(id)) => snap
                .radius_servers
                .get(&id)
                .map_or_else(|| b.clone(), |r| format!("RADIUS {}", r.name)),
            Some(Resource::App(id)) => snap
                .apps
                .get(&id)
                .map_or_else(|| b.clone(), |a| format!("app {}", a.name)),
            _ => b.clone(),
        })
        .collect()
}

fn lines_to_map(text: &str, name: &str) -> Result<BTreeMap<String, String>, FormErrors> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(FormErrors(vec![(
                name.into(),
                format!("`{line}` is not name=value"),
            )]));
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

fn reply_lines(text: &str) -> Result<Vec<ReplyAttribute>, FormErrors> {
    Ok(lines_to_map_ordered(text)?
        .into_iter()
        .map(|(attribute, value)| ReplyAttribute { attribute, value })
        .collect())
}

fn lines_to_map_ordered(text: &str) -> Result<Vec<(String, String)>, FormErrors> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(FormErrors(vec![(
                "radius_reply".into(),
                format!("`{line}` is not Attribute=Value"),
            )]));
        };
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

fn group_form(
    admin: &SignedIn,
    g: Option<&GroupView>,
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
    let g = g.map(|g| &g.group);
    let mut s = errors.others(&[
        "name",
        "description",
        "linux_name",
        "gid",
        "linux_group",
        "priority",
        "attributes",
        "radius_reply",
    ]);
    s.push_str(&admin.csrf_field());
    if let Some(g) = g {
        let _ = write!(
            s,
            "<input type=\"hidden\" name=\"expect_revision\" value=\"{}\">",
            g.revision
        );
    }
    let name = v("name", g.map_or(String::new(), |g| g.name.clone()));
    let description = v(
        "description",
        g.map_or(String::new(), |g| g.description.clone()),
    );
    let linux_name = v(
        "linux_name",
        g.and_then(|g| g.linux_group.as_ref().map(|l| l.name.clone()))
            .unwrap_or_default(),
    );
    let gid = v(
        "gid",
        g.and_then(|g| g.linux_group.as_ref().map(|l| l.gid.to_string()))
            .unwrap_or_default(),
    );
    let priority = v("priority", g.map_or("0".into(), |g| g.priority.to_string()));
    let samba = if values.is_empty() {
        g.is_some_and(|g| g.samba)
    } else {
        field(values, "samba") == "on"
    };
    s.push_str(
        &Field::new("name", "Name")
            .value(&name)
            .required()
            .errors(errors)
            .render(),
    );
    s.push_str(
        &Field::new("description", "Description")
            .value(&description)
            .errors(errors)
            .render(),
    );
    s.push_str("<fieldset><legend>Linux group (posixGroup)</legend>");
    s.push_str(
        &Field::new("linux_name", "Linux group name")
            .value(&linux_name)
            .hint("leave empty for no Linux group")
            .error_of(errors, &["linux_name", "linux_group"])
            .render(),
    );
    s.push_str(
        &Field::new("gid", "GID")
            .value(&gid)
            .hint("allocated when empty")
            .errors(errors)
            .render(),
    );
    s.push_str("</fieldset>");
    s.push_str(
        &Field::new(
            "samba",
            "Samba group (members get Samba attributes and NT hashes)",
        )
        .kind("checkbox")
        .value(if samba { "on" } else { "" })
        .render(),
    );
    s.push_str(
        &Field::new("priority", "Priority")
            .kind("number")
            .value(&priority)
            .hint("higher wins when a member's groups disagree")
            .errors(errors)
            .render(),
    );
    let attrs = v(
        "attributes",
        g.map_or(String::new(), |g| {
            g.attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    let reply = v(
        "radius_reply",
        g.map_or(String::new(), |g| {
            g.radius_reply
                .iter()
                .map(|r| format!("{}={}", r.attribute, r.value))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    );
    let err = |n: &str| {
        errors.of(n).map_or(String::new(), |e| {
            format!("<small class=\"field-error\">{}</small>", esc(e))
        })
    };
    let _ = write!(
        s,
        "<div class=\"field\"><label for=\"f-attributes\">Custom attributes, inherited by members (name=value, one per line)</label>\
         <textarea id=\"f-attributes\" name=\"attributes\" rows=\"3\">{}</textarea>{}</div>\
         <div class=\"field\"><label for=\"f-radius_reply\">RADIUS reply attributes (Attribute=Value, one per line)</label>\
         <textarea id=\"f-radius_reply\" name=\"radius_reply\" rows=\"3\" data-names=\"radius-attributes\" aria-describedby=\"f-radius_reply-hint\">{}</textarea>\
         <small id=\"f-radius_reply-hint\">For a VLAN: Tunnel-Type=VLAN, Tunnel-Medium-Type=IEEE-802, Tunnel-Private-Group-Id=&lt;VLAN id&gt;</small>{}</div>",
        esc(&attrs),
        err("attributes"),
        esc(&reply),
        err("radius_reply"),
    );
    s
}

pub async fn new_page(admin: SignedIn) -> Response {
    new_form(&admin, &[], &FormErrors::default())
}

fn new_form(admin: &SignedIn, values: &[(String, String)], errors: &FormErrors) -> Response {
    let body = format!(
        "<h1>New group</h1><form method=\"post\" action=\"/console/groups/new\" class=\"record\">{}<button>Create group</button></form>",
        group_form(admin, None, values, errors)
    );
    let mut r = html::page(admin, "/console/groups", "New group", &body);
    if !errors.is_empty() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

fn linux(fields: &[(String, String)]) -> Result<Option<LinuxGroupInput>, FormErrors> {
    let name = field(fields, "linux_name").trim();
    let gid = field(fields, "gid").trim();
    if name.is_empty() {
        return Ok(None);
    }
    let gid = if gid.is_empty() {
        None
    } else {
        Some(
            gid.parse()
                .map_err(|_| FormErrors(vec![("gid".into(), "a whole number, please".into())]))?,
        )
    };
    Ok(Some(LinuxGroupInput {
        name: name.to_string(),
        gid,
    }))
}

fn priority(fields: &[(String, String)]) -> Result<i32, FormErrors> {
    let p = field(fields, "priority").trim();
    if p.is_empty() {
        return Ok(0);
    }
    p.parse()
        .map_err(|_| FormErrors(vec![("priority".into(), "a whole number, please".into())]))
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
        Ok::<_, FormErrors>(NewGroup {
            name: field(&fields, "name").trim().to_string(),
            description: field(&fields, "description").trim().to_string(),
            linux_group: linux(&fields)?,
            samba: field(&fields, "samba") == "on",
            attributes: lines_to_map(field(&fields, "attributes"), "attributes")?,
            radius_reply: reply_lines(field(&fields, "radius_reply"))?,
            priority: priority(&fields)?,
            ..NewGroup::default()
        })
    })();
    let input = match parsed {
        Ok(i) => i,
        Err(e) => return new_form(&admin, &fields, &e),
    };
    match c.dir.create_group(&admin.actor, input).await {
        Ok(g) => html::redirect(&format!("/console/groups/{}?done=created", g.group.id)),
        Err(e) => new_form(&admin, &fields, &html::form_errors(&e)),
    }
}

fn detail_page(
    c: &Console,
    admin: &SignedIn,
    id: &Id,
    values: &[(String, String)],
    errors: &FormErrors,
    message: &str,
) -> Response {
    let g = match c.dir.get_group(id) {
        Ok(g) => g,
        Err(e) => {
            return html::page(
                admin,
                "/console/groups",
                "Group",
                &html::notice(false, &e.to_string()),
            )
        }
    };
    let snap = c.dir.snapshot();
    let write = can(admin, Permission::ManageUsers);
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/groups\">Groups</a> /</p><h1>{}</h1>{message}",
        esc(&g.group.name)
    );

    // Bindings, with what they mean.
    let bound: Vec<Resource> = g
        .bindings
        .iter()
        .filter_map(|b| Resource::parse(b))
        .collect();
    let mut resources: Vec<(String, String, String)> = vec![(
        "ldap".into(),
        "LDAP directory".into(),
        "members can bind to LDAP and are visible to LDAP Bind DN accounts".into(),
    )];
    let mut radius: Vec<_> = snap.radius_servers.values().collect();
    radius.sort_by(|a, b| a.name.cmp(&b.name));
    for r in radius {
        resources.push((
            format!("radius:{}", r.id),
            format!("RADIUS {}", r.name),
            format!("members can sign in to the {} network", r.name),
        ));
    }
    let mut apps: Vec<_> = snap.apps.values().collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    for a in apps {
        resources.push((
            format!("app:{}", a.id),
            format!("App {}", a.name),
            format!(
                "members can sign in to {} and see it in their portal",
                a.name
            ),
        ));
    }
    body.push_str("<section><h2>Access</h2>");
    if write {
        let _ = write!(body, "<form method=\"post\" action=\"/console/groups/{}/bindings\">{}<fieldset><legend>This group is bound to</legend>", g.group.id, admin.csrf_field());
    } else {
        body.push_str("<ul>");
    }
    for (key, label, effect) in &resources {
        let on = bound.iter().any(|r| r.to_string() == *key);
        if write {
            let _ = write!(
                body,
                "<div class=\"field check\"><input type=\"checkbox\" id=\"b-{k}\" name=\"bind\" value=\"{k}\"{}><label for=\"b-{k}\">{}</label><small>{}</small></div>",
                if on { " checked" } else { "" },
                esc(label),
                esc(effect),
                k = esc(key),
            );
        } else if on {
            let _ = write!(body, "<li>{}: {}</li>", esc(label), esc(effect));
        }
    }
    if write {
        body.push_str("</fieldset><button>Save access</button></form>");
    } else {
        body.push_str("</ul>");
    }
    body.push_str("</section>");

    // Members.
    let members = c.dir.group_members(id).unwrap_or_default();
    let mut users: Vec<_> = members.iter().filter_map(|m| snap.user(m)).collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let _ = write!(body, "<section><h2>Members ({})</h2>", users.len());
    if write {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/groups/{}/members\" class=\"record\">{}<input type=\"hidden\" name=\"do\" value=\"add\">\
             <div class=\"field\"><label for=\"f-add\">Add users</label><textarea id=\"f-add\" name=\"usernames\" rows=\"2\" data-suggest=\"/console/suggest/users\" aria-describedby=\"f-add-hint\"></textarea>\
             <small id=\"f-add-hint\">User names, separated by spaces, commas or lines</small>{}</div><button>Add</button></form>",
            g.group.id,
            admin.csrf_field(),
            errors.of("usernames").map_or(String::new(), |e| format!("<small class=\"field-error\">{}</small>", esc(e))),
        );
        let _ = write!(body, "<form method=\"post\" action=\"/console/groups/{}/members\">{}<input type=\"hidden\" name=\"do\" value=\"remove\">", g.group.id, admin.csrf_field());
    }
    body.push_str("<div class=\"table\"><table><thead><tr>");
    if write {
        body.push_str("<th scope=\"col\"><span class=\"visually-hidden\">Select</span></th>");
    }
    body.push_str("<th scope=\"col\">User name</th><th scope=\"col\">Name</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for u in users.iter().take(500) {
        body.push_str("<tr>");
        if write {
            let _ = write!(body, "<td><input type=\"checkbox\" name=\"user\" value=\"{id}\" aria-label=\"Select {n}\"></td>", id = u.id, n = esc(&u.username));
        }
        let _ = write!(
            body,
            "<td><a href=\"/console/users/{}\">{}</a></td><td>{}</td><td>{:?}</td></tr>",
            u.id,
            esc(&u.username),
            esc(&u.display()),
            u.state
        );
    }
    body.push_str("</tbody></table></div>");
    if users.len() > 500 {
        let _ = write!(
            body,
            "<p><a href=\"/console/users?group={}\">All {} members</a></p>",
            g.group.id,
            users.len()
        );
    }
    if write {
        body.push_str("<button>Remove selected</button></form>");
    }
    body.push_str("</section>");

    if write {
        let _ = write!(
            body,
            "<section><h2>Settings</h2><form method=\"post\" action=\"/console/groups/{}\" class=\"record\">{}<button>Save changes</button></form></section>",
            g.group.id,
            group_form(admin, Some(&g), values, errors)
        );
    }
    body.push_str(&radius_datalist());
    let mut r = html::page(admin, "/console/groups", &g.group.name, &body);
    if !errors.is_empty() {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// Names of common RADIUS reply attributes, offered while typing.
fn radius_datalist() -> String {
    let names = [
        "Tunnel-Type",
        "Tunnel-Medium-Type",
        "Tunnel-Private-Group-Id",
        "Session-Timeout",
        "Idle-Timeout",
        "Filter-Id",
        "Class",
        "Reply-Message",
        "Framed-IP-Address",
        "Framed-Pool",
        "Acct-Interim-Interval",
        "Service-Type",
    ];
    let mut s = String::from("<datalist id=\"radius-attributes\">");
    for n in names {
        let _ = write!(s, "<option value=\"{n}=\">");
    }
    s.push_str("</datalist>");
    s
}

pub async fn detail(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = Id::parse(&id) else {
        return html::missing(&admin, "/console/groups", "Group");
    };
    let message = match q.get("done").map(String::as_str) {
        Some("created") => html::notice(true, "Group created."),
        Some("saved") => html::notice(true, "Changes saved."),
        Some("bindings") => html::notice(true, "Access saved."),
        Some(other) => html::notice(true, &other.replace('_', " ")),
        None => String::new(),
    };
    detail_page(&c, &admin, &id, &[], &FormErrors::default(), &message)
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
        return html::missing(&admin, "/console/groups", "Group");
    };
    let parsed = (|| {
        Ok::<_, FormErrors>(GroupPatch {
            name: Some(field(&fields, "name").trim().to_string()),
            description: Some(field(&fields, "description").trim().to_string()),
            linux_group: Some(linux(&fields)?),
            samba: Some(field(&fields, "samba") == "on"),
            attributes: Some(lines_to_map(field(&fields, "attributes"), "attributes")?),
            radius_reply: Some(reply_lines(field(&fields, "radius_reply"))?),
            priority: Some(priority(&fields)?),
            expect_revision: field(&fields, "expect_revision").parse().ok(),
            ..GroupPatch::default()
        })
    })();
    let patch = match parsed {
        Ok(p) => p,
        Err(e) => return detail_page(&c, &admin, &id, &fields, &e, ""),
    };
    match c.dir.update_group(&admin.actor, &id, patch).await {
        Ok(_) => html::redirect(&format!("/console/groups/{id}?done=saved")),
        Err(e) => detail_page(&c, &admin, &id, &fields, &html::form_errors(&e), ""),
    }
}

/// Add users by name, or remove a selection, in one change of the group.
pub async fn members(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return html::missing(&admin, "/console/groups", "Group");
    };
    let mut patch = GroupPatch::default();
    if field(&fields, "do") == "add" {
        let snap = c.dir.snapshot();
        let mut unknown = Vec::new();
        for name in field(&fields, "usernames")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
        {
            match snap.user_by_login_name(name) {
                Some(u) => patch.add_members.push(u.id.clone()),
                None => unknown.push(name.to_string()),
            }
        }
        if !unknown.is_empty() {
            let e = FormErrors(vec![(
                "usernames".into(),
                format!("no such user: {}", unknown.join(", ")),
            )]);
            return detail_page(&c, &admin, &id, &[], &e, "");
        }
        if patch.add_members.is_empty() {
            let e = FormErrors(vec![(
                "usernames".into(),
                "type at least one user name".into(),
            )]);
            return detail_page(&c, &admin, &id, &[], &e, "");
        }
    } else {
        patch.remove_members = fields
            .iter()
            .filter(|(k, _)| k == "user")
            .filter_map(|(_, v)| Id::parse(v))
            .collect();
    }
    let n = patch.add_members.len() + patch.remove_members.len();
    match c.dir.update_group(&admin.actor, &id, patch).await {
        Ok(_) => html::redirect(&format!("/console/groups/{id}?done={n}_members_changed")),
        Err(e) => detail_page(
            &c,
            &admin,
            &id,
            &[],
            &html::form_errors(&e),
            &html::notice(false, &e.to_string()),
        ),
    }
}

/// Make the group's bindings the checked ones.
pub async fn bindings(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return html::missing(&admin, "/console/groups", "Group");
    };
    let wanted: Vec<Resource> = fields
        .iter()
        .filter(|(k, _)| k == "bind")
        .filter_map(|(_, v)| Resource::parse(v))
        .collect();
    let current: Vec<Resource> = c
        .dir
        .get_group(&id)
        .map(|g| {
            g.bindings
                .iter()
                .filter_map(|b| Resource::parse(b))
                .collect()
        })
        .unwrap_or_default();
    for r in wanted.iter().filter(|r| !current.contains(r)) {
        if let Err(e) = c.dir.bind_group(&admin.actor, &id, r.clone()).await {
            return detail_page(
                &c,
                &admin,
                &id,
                &[],
                &FormErrors::default(),
                &html::notice(false, &e.to_string()),
            );
        }
    }
    for r in current.iter().filter(|r| !wanted.contains(r)) {
        if let Err(e) = c.dir.unbind_group(&admin.actor, &id, r.clone()).await {
            return detail_page(
                &c,
                &admin,
                &id,
                &[],
                &FormErrors::default(),
                &html::notice(false, &e.to_string()),
            );
        }
    }
    html::redirect(&format!("/console/groups/{id}?done=bindings"))
}

/// User names starting with or containing the typed text, for the member picker (JSON, at most 20).
pub async fn suggest(
    State(c): State<Console>,
    _admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let text = q
        .get("q")
        .map_or(String::new(), |t| t.trim().to_lowercase());
    let mut out: Vec<String> = Vec::new();
    if !text.is_empty() {
        let snap = c.dir.snapshot();
        for u in snap.users.values() {
            if u.username.contains(&text) || u.email.to_lowercase().contains(&text) {
                out.push(u.username.clone());
                if out.len() >= 200 {
                    break;
                }
            }
        }
        out.sort_by_key(|n| (!n.starts_with(&text), n.clone()));
        out.truncate(20);
    }
    let mut r = serde_json::to_string(&out)
        .unwrap_or_else(|_| "[]".into())
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
