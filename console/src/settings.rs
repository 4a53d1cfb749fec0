//! Settings: the hub with the organisation's settings and the password policy (each field labelled, the core's
//! refusal next to its field) and links to the admins, API keys, SCIM tokens and mail pages, which live in the
//! submodules. Admins whose role may not manage the organisation see the same values without a form; the core
//! refuses their writes anyway.
//!
//! # Layout
//! - this file: the hub, the org and password policy forms, and what the settings pages share (numbers in
//!   forms, the confirmation page before a deletion, role names).
//! - [`admins`]: admins with role, TOTP and lock; create, change role, reset password, delete.
//! - [`api_keys`]: API keys; a new token is shown once.
//! - [`scim_tokens`]: SCIM tokens and their scopes; a new token is shown once.
//! - [`mail`]: whether a mail server is configured, the mail queue (never a message's text), a test message.

mod admins;
mod api_keys;
mod mail;
mod scim_tokens;

use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use core_directory::access::Permission;
use core_directory::model::{AdminRole, IdRange, LockoutPolicy, OrgSettings, PasswordPolicy};
use core_directory::views::OrgPatch;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/settings", get(hub))
        .route("/console/settings/org", post(save_org))
        .route("/console/settings/password-policy", post(save_policy))
        .merge(admins::routes())
        .merge(api_keys::routes())
        .merge(scim_tokens::routes())
        .merge(mail::routes())
}

/// A posted form being drawn again: what was typed and what the core (or the parsing) refused.
type Posted<'a> = (&'a [(String, String)], &'a FormErrors);

const NOT_POSTED: Posted<'static> = (&[], &FormErrors(Vec::new()));

/// Numbers read from a form: every field that is not a whole number is reported at once, next to itself.
struct Numbers<'a> {
    fields: &'a [(String, String)],
    errors: Vec<(String, String)>,
}

impl<'a> Numbers<'a> {
    fn new(fields: &'a [(String, String)]) -> Self {
        Numbers {
            fields,
            errors: Vec::new(),
        }
    }

    fn get<T: FromStr + Default>(&mut self, name: &str) -> T {
        match field(self.fields, name).trim().parse() {
            Ok(v) => v,
            Err(_) => {
                self.errors
                    .push((name.to_string(), "a whole number, please".into()));
                T::default()
            }
        }
    }

    fn finish<T>(self, value: T) -> Result<T, FormErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(FormErrors(self.errors))
        }
    }
}

/// A role as the console names it.
pub(crate) fn role_label(role: AdminRole) -> &'static str {
    match role {
        AdminRole::Administrator => "administrator",
        AdminRole::Manager => "manager",
        AdminRole::HelpDesk => "help desk",
        AdminRole::ReadOnly => "read-only",
    }
}

/// The confirmation asked before a deletion: what goes, what follows, and a form posting to `action`.
fn confirm_page(
    admin: &SignedIn,
    title: &str,
    consequence: &str,
    action: &str,
    back: &str,
    error: &str,
) -> Response {
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/console/settings\">Settings</a> /</p><h1>{t}</h1>{}\
         <section class=\"confirm\"><p>{}</p><form method=\"post\" action=\"{}\">{}\
         <button class=\"danger\">{t}</button> <a class=\"button secondary\" href=\"{}\">Cancel</a></form></section>",
        html::notice(false, error),
        esc(consequence),
        esc(action),
        admin.csrf_field(),
        esc(back),
        t = esc(title),
    );
    let mut r = html::page(admin, "/console/settings", title, &body);
    if !error.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// A value typed into a re-drawn form, or the stored one when the form is drawn fresh.
fn value_or(values: &[(String, String)], name: &str, current: String) -> String {
    if values.is_empty() {
        current
    } else {
        field(values, name).to_string()
    }
}

/// A checkbox's state in a re-drawn form, or the stored one.
fn checked_or(values: &[(String, String)], name: &str, current: bool) -> &'static str {
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
}

pub async fn hub(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("org") => html::notice(true, "Organisation settings saved."),
        Some("policy") => html::notice(
            true,
            "Password policy saved. It applies to every password set from now on.",
        ),
        _ => String::new(),
    };
    render_hub(&c, &admin, NOT_POSTED, NOT_POSTED, &message)
}

fn render_hub(
    c: &Console,
    admin: &SignedIn,
    org_form: Posted<'_>,
    policy_form: Posted<'_>,
    message: &str,
) -> Response {
    let snap = c.dir.snapshot();
    let write = can(admin, Permission::ManageOrg);
    let mut body = format!("<h1>Settings</h1>{message}");
    let _ = write!(
        body,
        "<section class=\"cards\" aria-label=\"Access to Stratus and mail\">\
         <a class=\"card\" href=\"/console/settings/admins\"><span class=\"value\">{}</span><span class=\"label\">Administrators</span></a>\
         <a class=\"card\" href=\"/console/settings/api-keys\"><span class=\"value\">{}</span><span class=\"label\">API keys</span></a>\
         <a class=\"card\" href=\"/console/settings/scim-tokens\"><span class=\"value\">{}</span><span class=\"label\">SCIM tokens</span></a>\
         {}</section>",
        snap.admins.len(),
        snap.api_keys.len(),
        snap.scim_tokens.len(),
        mail_card(c),
    );
    let Some(org) = c.dir.org() else {
        body.push_str(&html::notice(false, "The organisation is not initialised."));
        return html::page(admin, "/console/settings", "Settings", &body);
    };
    let policy = c.dir.password_policy();
    if write {
        body.push_str(&org_form_html(admin, &org, org_form));
        body.push_str(&policy_form_html(admin, &policy, policy_form));
    } else {
        // A refused write of a role without the forms: its errors at the top.
        for (_, errors) in [org_form, policy_form] {
            body.push_str(&errors.others(&[]));
        }
        body.push_str(&org_summary(&org));
        body.push_str(&policy_summary(&policy));
    }
    let mut r = html::page(admin, "/console/settings", "Settings", &body);
    if !org_form.1.is_empty() || !policy_form.1.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// The Mail card: the messages waiting, or that no mail server is configured.
fn mail_card(c: &Console) -> String {
    let (value, label) = if c.dir.mail_settings().enabled {
        let waiting = c
            .dir
            .mail_queue()
            .map_or_else(|_| "?".into(), |q| q.len().to_string());
        (waiting, "Mail waiting")
    } else {
        ("off".to_string(), "Mail")
    };
    format!(
        "<a class=\"card\" href=\"/console/settings/mail\"><span class=\"value\">{value}</span>\
         <span class=\"label\">{label}</span></a>"
    )
}

const ORG_FIELDS: [&str; 14] = [
    "time_zone",
    "name",
    "contact_email",
    "ldap_suffix",
    "samba_domain",
    "uid_start",
    "uid_end",
    "uid_range",
    "gid_start",
    "gid_end",
    "gid_range",
    "mfa_enrolment_days",
    "session_idle_minutes",
    "session_absolute_minutes",
];

fn org_form_html(admin: &SignedIn, org: &OrgSettings, (values, errors): Posted<'_>) -> String {
    let v = |name: &str, current: String| value_or(values, name, current);
    let text = |name: &'static str, label: &'static str, current: String, hint: &'static str| {
        let value = v(name, current);
        Field::new(name, label)
            .value(&value)
            .hint(hint)
            .errors(errors)
            .render()
    };
    let number = |name: &'static str,
                  label: &'static str,
                  current: u32,
                  hint: &'static str,
                  also: &'static str| {
        let value = v(name, current.to_string());
        let names: &[&str] = if also.is_empty() {
            &[name]
        } else {
            &[name, also]
        };
        Field::new(name, label)
            .kind("number")
            .value(&value)
            .hint(hint)
            .error_of(errors, names)
            .render()
    };
    let mut s = format!(
        "<section><h2 id=\"org\">Organisation</h2><form method=\"post\" action=\"/console/settings/org\" class=\"record\">{}{}",
        errors.others(&ORG_FIELDS),
        admin.csrf_field()
    );
    s.push_str(&text("name", "Organisation name", org.name.clone(), ""));
    s.push_str(&text(
        "contact_email",
        "Contact e-mail",
        org.contact_email.clone().unwrap_or_default(),
        "optional",
    ));
    s.push_str("<fieldset><legend>LDAP and Samba</legend>");
    s.push_str(&text(
        "ldap_suffix",
        "LDAP suffix (base DN)",
        org.ldap_suffix.clone(),
        "LDAP clients configured with the old suffix stop finding entries when it changes",
    ));
    s.push_str(&text(
        "samba_domain",
        "Samba domain",
        org.samba_domain.clone(),
        "a NetBIOS name: 1–15 letters, digits or hyphens",
    ));
    let _ = write!(
        s,
        "<p class=\"hint\">Samba domain SID: <code>{}</code> (fixed)</p></fieldset>",
        esc(&org.samba_sid)
    );
    s.push_str("<fieldset><legend>UID and GID ranges</legend><div class=\"pair\">");
    s.push_str(&number(
        "uid_start",
        "First UID",
        org.uid_range.start,
        "",
        "uid_range",
    ));
    s.push_str(&number("uid_end", "Last UID", org.uid_range.end, "", ""));
    s.push_str(&number(
        "gid_start",
        "First GID",
        org.gid_range.start,
        "",
        "gid_range",
    ));
    s.push_str(&number("gid_end", "Last GID", org.gid_range.end, "", ""));
    s.push_str(
        "</div><p class=\"hint\">New ids are handed out upwards from here; an id once given is never \
         given again.</p></fieldset>",
    );
    s.push_str("<fieldset><legend>Sign-in and sessions</legend>");
    s.push_str(&number(
        "mfa_enrolment_days",
        "MFA enrolment period (days)",
        u32::from(org.mfa_enrolment_days),
        "days a user has to enrol in TOTP once MFA is required (1–365)",
        "",
    ));
    s.push_str(&number(
        "session_idle_minutes",
        "Session idle lifetime (minutes)",
        org.session_idle_minutes,
        "console and portal sessions end after this long without use",
        "",
    ));
    s.push_str(&number(
        "session_absolute_minutes",
        "Session absolute lifetime (minutes)",
        org.session_absolute_minutes,
        "and after this long in any case",
        "",
    ));
    s.push_str(&text(
        "time_zone",
        "Time zone",
        org.time_zone.clone().unwrap_or_default(),
        "an IANA name such as Europe/Paris, for the time windows of access policies; empty means UTC",
    ));
    s.push_str("</fieldset>");
    s.push_str(&number(
        "event_retention_days",
        "Event retention (days)",
        org.event_retention_days,
        "events older than this are deleted; 0 keeps them forever",
        "",
    ));
    s.push_str("<button>Save organisation settings</button></form></section>");
    s
}

fn org_summary(org: &OrgSettings) -> String {
    format!(
        "<section><h2 id=\"org\">Organisation</h2><dl><dt>Name</dt><dd>{}</dd><dt>Contact e-mail</dt><dd>{}</dd>\
         <dt>LDAP suffix</dt><dd><code>{}</code></dd><dt>Samba domain</dt><dd>{}</dd><dt>Samba domain SID</dt>\
         <dd><code>{}</code></dd><dt>UIDs</dt><dd>{}–{}</dd><dt>GIDs</dt><dd>{}–{}</dd>\
         <dt>MFA enrolment period</dt><dd>{} days</dd><dt>Session idle lifetime</dt><dd>{} minutes</dd>\
         <dt>Session absolute lifetime</dt><dd>{} minutes</dd><dt>Time zone</dt><dd>{}</dd><dt>Event retention</dt><dd>{}</dd></dl></section>",
        esc(&org.name),
        esc(org.contact_email.as_deref().unwrap_or("—")),
        esc(&org.ldap_suffix),
        esc(&org.samba_domain),
        esc(&org.samba_sid),
        org.uid_range.start,
        org.uid_range.end,
        org.gid_range.start,
        org.gid_range.end,
        org.mfa_enrolment_days,
        org.session_idle_minutes,
        org.session_absolute_minutes,
        esc(org.time_zone.as_deref().unwrap_or("UTC")),
        if org.event_retention_days == 0 {
            "forever".to_string()
        } else {
            format!("{} days", org.event_retention_days)
        },
    )
}

const POLICY_FIELDS: [&str; 7] = [
    "min_length",
    "history",
    "max_age_days",
    "expiry_warning_days",
    "lockout_max_failures",
    "lockout.max_failures",
    "lockout_lock_minutes",
];

fn policy_form_html(admin: &SignedIn, p: &PasswordPolicy, (values, errors): Posted<'_>) -> String {
    let number = |name: &'static str, label: &'static str, current: u32, hint: &'static str| {
        let value = value_or(values, name, current.to_string());
        Field::new(name, label)
            .kind("number")
            .value(&value)
            .hint(hint)
            .error_of(errors, &[name, &name.replacen('_', ".", 1)])
            .render()
    };
    let check = |name: &'static str, label: &'static str, current: bool| {
        Field::new(name, label)
            .kind("checkbox")
            .value(checked_or(values, name, current))
            .render()
    };
    let mut s = format!(
        "<section><h2 id=\"policy\">Password policy</h2><p class=\"hint\">Every password set by any path — the \
         console, the API, SCIM, CSV import, the portal, LDAP — must pass it.</p>\
         <form method=\"post\" action=\"/console/settings/password-policy\" class=\"record\">{}{}",
        errors.others(&POLICY_FIELDS),
        admin.csrf_field()
    );
    s.push_str(&number(
        "min_length",
        "Minimum length (characters)",
        u32::from(p.min_length),
        "",
    ));
    s.push_str("<fieldset><legend>The password must contain</legend>");
    s.push_str(&check(
        "require_lowercase",
        "a lower-case letter",
        p.require_lowercase,
    ));
    s.push_str(&check(
        "require_uppercase",
        "an upper-case letter",
        p.require_uppercase,
    ));
    s.push_str(&check("require_digit", "a digit", p.require_digit));
    s.push_str(&check(
        "require_special",
        "a character that is not a letter or digit",
        p.require_special,
    ));
    s.push_str("</fieldset>");
    s.push_str(&check(
        "disallow_username",
        "The password may not contain the user name",
        p.disallow_username,
    ));
    s.push_str(&number(
        "history",
        "Password history",
        u32::from(p.history),
        "how many previous passwords may not be used again (0–24)",
    ));
    s.push_str("<fieldset><legend>Expiry</legend>");
    s.push_str(&number(
        "max_age_days",
        "Maximum age (days)",
        p.max_age_days,
        "0: passwords never expire",
    ));
    s.push_str(&number(
        "expiry_warning_days",
        "Expiry warning (days)",
        p.expiry_warning_days,
        "sign-ins warn this many days before a password expires",
    ));
    s.push_str("</fieldset><fieldset><legend>Lockout</legend>");
    s.push_str(&check(
        "lockout_enabled",
        "Lock accounts after repeated failures",
        p.lockout.enabled,
    ));
    s.push_str(&number(
        "lockout_max_failures",
        "Failures before the lock",
        p.lockout.max_failures,
        "wrong passwords and wrong codes, by any protocol, in a row",
    ));
    s.push_str(&number(
        "lockout_lock_minutes",
        "Lock duration (minutes)",
        p.lockout.lock_minutes,
        "0: locked until an admin unlocks the account",
    ));
    s.push_str("</fieldset><button>Save password policy</button></form></section>");
    s
}

fn policy_summary(p: &PasswordPolicy) -> String {
    let lockout = if p.lockout.enabled {
        format!(
            "after {} failures, {}",
            p.lockout.max_failures,
            if p.lockout.lock_minutes == 0 {
                "until an admin unlocks".to_string()
            } else {
                format!("for {} minutes", p.lockout.lock_minutes)
            }
        )
    } else {
        "off".to_string()
    };
    format!(
        "<section><h2 id=\"policy\">Password policy</h2><p>{}</p><dl><dt>Maximum age</dt><dd>{}</dd>\
         <dt>Expiry warning</dt><dd>{} days</dd><dt>Lockout</dt><dd>{}</dd></dl></section>",
        esc(&crate::auth::policy_summary(p)),
        if p.max_age_days == 0 {
            "never expires".to_string()
        } else {
            format!("{} days", p.max_age_days)
        },
        p.expiry_warning_days,
        esc(&lockout),
    )
}

fn parse_org(fields: &[(String, String)]) -> Result<OrgPatch, FormErrors> {
    let text = |name: &str| Some(field(fields, name).trim().to_string());
    let mut n = Numbers::new(fields);
    let patch = OrgPatch {
        name: text("name"),
        contact_email: text("contact_email"),
        ldap_suffix: text("ldap_suffix"),
        samba_domain: text("samba_domain"),
        uid_range: Some(IdRange {
            start: n.get("uid_start"),
            end: n.get("uid_end"),
        }),
        gid_range: Some(IdRange {
            start: n.get("gid_start"),
            end: n.get("gid_end"),
        }),
        mfa_enrolment_days: Some(n.get("mfa_enrolment_days")),
        session_idle_minutes: Some(n.get("session_idle_minutes")),
        session_absolute_minutes: Some(n.get("session_absolute_minutes")),
        event_retention_days: Some(n.get("event_retention_days")),
        // Branding is set through the API (`PATCH /api/v1/settings/org`); the form leaves it as it is.
        brand_color: None,
        logo: None,
        time_zone: text("time_zone"),
    };
    n.finish(patch)
}

fn parse_policy(fields: &[(String, String)]) -> Result<PasswordPolicy, FormErrors> {
    let on = |name: &str| field(fields, name) == "on";
    let mut n = Numbers::new(fields);
    let policy = PasswordPolicy {
        min_length: n.get("min_length"),
        require_lowercase: on("require_lowercase"),
        require_uppercase: on("require_uppercase"),
        require_digit: on("require_digit"),
        require_special: on("require_special"),
        disallow_username: on("disallow_username"),
        history: n.get("history"),
        max_age_days: n.get("max_age_days"),
        expiry_warning_days: n.get("expiry_warning_days"),
        lockout: LockoutPolicy {
            enabled: on("lockout_enabled"),
            max_failures: n.get("lockout_max_failures"),
            lock_minutes: n.get("lockout_lock_minutes"),
        },
    };
    n.finish(policy)
}

pub async fn save_org(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let result = match parse_org(&fields) {
        Ok(patch) => c
            .dir
            .update_org(&admin.actor, patch)
            .await
            .map_err(|e| html::form_errors(&e)),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => html::redirect("/console/settings?done=org#org"),
        Err(errors) => render_hub(&c, &admin, (&fields, &errors), NOT_POSTED, ""),
    }
}

pub async fn save_policy(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let result = match parse_policy(&fields) {
        Ok(policy) => c
            .dir
            .set_password_policy(&admin.actor, policy)
            .await
            .map_err(|e| html::form_errors(&e)),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => html::redirect("/console/settings?done=policy#policy"),
        Err(errors) => render_hub(&c, &admin, NOT_POSTED, (&fields, &errors), ""),
    }
}
