//! HTML building blocks of the console: escaping, the page frame with its navigation, form fields with their
//! labels and errors, tables, and the security headers every console response carries. Everything
//! interpolated is escaped here or by the caller through [`esc`]; nothing here knows a directory rule.

use crate::SignedIn;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use core_directory::access::Permission;

/// HTML-escape text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encode a query-string value.
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers every console page carries: no inline script or style, no framing, HTTPS only, nothing cached.
pub fn secure(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000",
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
}

/// The console's sections, in navigation order: (path, label).
const NAV: [(&str, &str); 11] = [
    ("/console", "Dashboard"),
    ("/console/users", "Users"),
    ("/console/groups", "Groups"),
    ("/console/import", "Import"),
    ("/console/ldap", "LDAP"),
    ("/console/radius", "RADIUS"),
    ("/console/apps", "SSO apps"),
    ("/console/insights", "Insights"),
    ("/console/explain", "Explain"),
    ("/console/settings", "Settings"),
    ("/console/account", "Account"),
];

/// A page without the navigation (sign-in steps).
pub fn bare(status: StatusCode, title: &str, body: &str) -> Response {
    html(
        status,
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{} · Stratus console</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
             </head><body class=\"bare\"><main>{body}</main></body></html>",
            esc(title)
        ),
    )
}

/// A console page: header with the admin and sign-out, navigation with `active` marked, then `body`.
pub fn page(admin: &SignedIn, active: &str, title: &str, body: &str) -> Response {
    let mut nav = String::new();
    for (path, label) in NAV {
        let current = if path == active {
            " aria-current=\"page\""
        } else {
            ""
        };
        nav.push_str(&format!("<li><a href=\"{path}\"{current}>{label}</a></li>"));
    }
    let role = match admin.actor.role {
        core_directory::model::AdminRole::Administrator => "administrator",
        core_directory::model::AdminRole::Manager => "manager",
        core_directory::model::AdminRole::HelpDesk => "help desk",
        core_directory::model::AdminRole::ReadOnly => "read-only",
    };
    html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · Stratus console</title>\
             <link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
             <script src=\"/console/assets/console.js\" defer></script></head><body>\
             <header><a class=\"brand\" href=\"/console\">Stratus</a>\
             <span class=\"who\">{email} <span class=\"role\">{role}</span></span>\
             <form method=\"post\" action=\"/console/logout\">{csrf}<button class=\"link\">Sign out</button></form>\
             </header><nav aria-label=\"Sections\"><ul>{nav}</ul></nav>\
             <main id=\"main\">{body}</main></body></html>",
            title = esc(title),
            email = esc(&admin.actor.label),
            csrf = admin.csrf_field(),
        ),
    )
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// A status line for the top of a page: `ok` notes are polite status, errors are alerts.
pub fn notice(ok: bool, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    if ok {
        format!("<p class=\"note\" role=\"status\">{}</p>", esc(text))
    } else {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(text))
    }
}

/// What a form field looks like: a label, the input, an optional hint, and the error for this field.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: &'a str,
    pub error: Option<&'a str>,
    pub required: bool,
    pub autocomplete: &'a str,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Self {
        Field {
            name,
            label,
            kind: "text",
            value: "",
            hint: "",
            error: None,
            required: false,
            autocomplete: "off",
        }
    }
    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }
    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = hint;
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn autocomplete(mut self, a: &'a str) -> Self {
        self.autocomplete = a;
        self
    }
    /// The error of this field among a form's errors.
    pub fn errors(mut self, errors: &'a FormErrors) -> Self {
        self.error = errors.of(self.name);
        self
    }

    /// The first error among several field names (the core may name a field differently).
    pub fn error_of(mut self, errors: &'a FormErrors, names: &[&str]) -> Self {
        self.error = names.iter().find_map(|n| errors.of(n));
        self
    }

    pub fn render(&self) -> String {
        let id = format!("f-{}", self.name);
        let mut described = Vec::new();
        let hint = if self.hint.is_empty() {
            String::new()
        } else {
            described.push(format!("{id}-hint"));
            format!("<small id=\"{id}-hint\">{}</small>", esc(self.hint))
        };
        let error = match self.error {
            Some(e) => {
                described.push(format!("{id}-error"));
                format!(
                    "<small class=\"field-error\" id=\"{id}-error\">{}</small>",
                    esc(e)
                )
            }
            None => String::new(),
        };
        let aria = if described.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", described.join(" "))
        };
        let invalid = if self.error.is_some() {
            " aria-invalid=\"true\""
        } else {
            ""
        };
        let required = if self.required { " required" } else { "" };
        if self.kind == "checkbox" {
            let checked = if self.value == "on" { " checked" } else { "" };
            return format!(
                "<div class=\"field check\"><input type=\"checkbox\" id=\"{id}\" name=\"{name}\"{checked}{aria}>\
                 <label for=\"{id}\">{label}</label>{hint}{error}</div>",
                name = esc(self.name),
                label = esc(self.label)
            );
        }
        format!(
            "<div class=\"field\"><label for=\"{id}\">{label}</label>\
             <input type=\"{kind}\" id=\"{id}\" name=\"{name}\" value=\"{value}\" autocomplete=\"{ac}\"{required}{invalid}{aria}>\
             {hint}{error}</div>",
            label = esc(self.label),
            kind = esc(self.kind),
            name = esc(self.name),
            value = esc(self.value),
            ac = esc(self.autocomplete),
        )
    }
}

/// A `<select>` with a label: `options` are (value, text).
pub fn select(name: &str, label: &str, options: &[(&str, &str)], selected: &str) -> String {
    let mut opts = String::new();
    for (v, t) in options {
        let sel = if *v == selected { " selected" } else { "" };
        opts.push_str(&format!(
            "<option value=\"{}\"{sel}>{}</option>",
            esc(v),
            esc(t)
        ));
    }
    format!(
        "<div class=\"field\"><label for=\"f-{n}\">{}</label><select id=\"f-{n}\" name=\"{n}\">{opts}</select></div>",
        esc(label),
        n = esc(name)
    )
}

/// Errors of a submitted form, by field (the core's field names); `""` for the whole form.
#[derive(Default)]
pub struct FormErrors(pub Vec<(String, String)>);

impl FormErrors {
    pub fn of(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Errors whose field the form does not show, for the top of the form.
    pub fn others(&self, shown: &[&str]) -> String {
        self.0
            .iter()
            .filter(|(f, _)| !shown.contains(&f.as_str()))
            .map(|(_, m)| notice(false, m))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A core error as form errors: an invalid field goes next to that field, anything else to the top.
pub fn form_errors(e: &core_directory::DirectoryError) -> FormErrors {
    match e {
        core_directory::DirectoryError::Invalid { field, message } => FormErrors(vec![(
            field.unwrap_or_default().to_string(),
            message.clone(),
        )]),
        // A name or e-mail already taken: next to that field.
        core_directory::DirectoryError::Conflict { field, message } => {
            FormErrors(vec![(field.to_string(), message.clone())])
        }
        // A password refused by the policy: next to the password field, whatever the form calls it.
        core_directory::DirectoryError::PasswordPolicy(v) => {
            FormErrors(vec![("password".into(), v.to_string())])
        }
        other => FormErrors(vec![(String::new(), other.to_string())]),
    }
}

/// Whether the admin may do something: write controls are drawn only then (the core refuses anyway).
pub fn can(admin: &SignedIn, p: Permission) -> bool {
    core_directory::access::role_allows(admin.actor.role, p)
}

/// A small form with one button posting to `action` (an action on a record).
pub fn action_button(admin: &SignedIn, action: &str, label: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button class=\"{}\">{}</button></form>",
        esc(action),
        admin.csrf_field(),
        esc(class),
        esc(label)
    )
}

/// Local date and time of an instant, to the minute (UTC).
pub fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The value of a posted form field (`""` when absent).
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The page for a record that does not exist (or an id that is not one).
pub fn missing(admin: &SignedIn, active: &str, what: &str) -> Response {
    let mut r = page(
        admin,
        active,
        what,
        &notice(false, &format!("No such {}.", what.to_lowercase())),
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
