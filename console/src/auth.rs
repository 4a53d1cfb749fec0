//! Signing in to the console: e-mail and password, then a TOTP code when the admin has one, then a new password
//! when the current one is one-time (the bootstrap admin's); signing out; and the admin's own account page with
//! password change and TOTP enrolment by QR code. Lockout and the session rule are the core's.

use crate::html::{self, esc, Field, FormErrors};
use crate::{Console, SignedIn, COOKIE};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use core_directory::crypto::{random_bytes, sha256_hex, Sealed};
use core_directory::directory::AdminLogin;
use core_directory::model::TotpEnrolment;
use core_directory::Directory;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a password step waits for its TOTP code.
const PENDING_FOR: Duration = Duration::from_secs(300);
/// Bound on sign-ins waiting for a code.
const MAX_PENDING: usize = 1_000;

/// Sign-ins whose password was right and which wait for a TOTP code, by a random nonce the TOTP form carries.
/// The password is kept only for those five minutes, so that the core checks both factors together: in memory
/// on one node; on a store shared by several nodes (the code may be posted to another node), sealed with the
/// master key in the store's short-lived state, under the nonce's SHA-256, and taken exactly once.
#[derive(Default)]
pub struct Pending {
    inner: Mutex<HashMap<String, (String, String, Instant, String)>>,
}

/// The store space of sign-ins waiting for a code on a shared store.
const PENDING_SPACE: &str = "console-pending";

impl Pending {
    fn put(&self, dir: &Directory, email: &str, password: &str, next: &str) -> String {
        let nonce = data_encoding::BASE64URL_NOPAD.encode(&random_bytes(24));
        if dir.store().is_shared() {
            let sealed = dir.master_key().seal(
                &format!("{PENDING_SPACE}:{nonce}"),
                &serde_json::to_vec(&(email, password, next)).unwrap_or_default(),
            );
            let until =
                chrono::Utc::now() + chrono::Duration::from_std(PENDING_FOR).unwrap_or_default();
            let key = sha256_hex(nonce.as_bytes());
            return match dir.store().ephemeral_put(
                PENDING_SPACE,
                &key,
                &serde_json::to_vec(&sealed).unwrap_or_default(),
                until,
                true,
            ) {
                Ok(true) => nonce,
                Ok(false) => String::new(),
                Err(e) => {
                    tracing::error!(error = %e, "a sign-in waiting for its code could not be stored");
                    String::new()
                }
            };
        }
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, v| v.2.elapsed() < PENDING_FOR);
        if m.len() >= MAX_PENDING {
            return String::new();
        }
        m.insert(
            nonce.clone(),
            (
                email.to_string(),
                password.to_string(),
                Instant::now(),
                next.to_string(),
            ),
        );
        nonce
    }

    fn take(&self, dir: &Directory, nonce: &str) -> Option<(String, String, String)> {
        if dir.store().is_shared() {
            let bytes = dir
                .store()
                .ephemeral_take(PENDING_SPACE, &sha256_hex(nonce.as_bytes()))
                .ok()
                .flatten()?;
            let sealed: Sealed = serde_json::from_slice(&bytes).ok()?;
            let plain = dir
                .master_key()
                .open(&format!("{PENDING_SPACE}:{nonce}"), &sealed)
                .ok()?;
            return serde_json::from_slice(&plain).ok();
        }
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (email, password, at, next) = m.remove(nonce)?;
        (at.elapsed() < PENDING_FOR).then_some((email, password, next))
    }
}

use crate::html::field;

/// Only a console path may follow sign-in.
fn safe_next(next: &str) -> &str {
    if next.starts_with("/console") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/console"
    }
}

fn login_form(email: &str, next: &str, error: &str) -> Response {
    let errors = FormErrors::default();
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    html::bare(
        status,
        "Sign in",
        &format!(
            "<h1>Stratus admin console</h1>{}<form method=\"post\" action=\"/console/login\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">{}{}<button>Sign in</button></form>\
             <p class=\"aside\">Not an administrator? <a href=\"/portal\">Go to your apps</a>.</p>",
            html::notice(false, error),
            esc(next),
            Field::new("email", "E-mail")
                .kind("email")
                .value(email)
                .required()
                .autocomplete("username")
                .errors(&errors)
                .render(),
            Field::new("password", "Password")
                .kind("password")
                .required()
                .autocomplete("current-password")
                .render(),
        ),
    )
}

pub async fn login_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let next = q.get("next").map_or("/console", |n| safe_next(n));
    login_form("", next, "")
}

fn start_session(c: &Console, id: &core_directory::Id, next: &str) -> Response {
    let revision = c.dir.admin_revision(id).unwrap_or_default();
    let token = c.sessions.create_with_revision(id.clone(), revision);
    let mut r = html::redirect(next);
    set_cookie(&mut r, &token, false);
    r
}

fn set_cookie(r: &mut Response, token: &str, expire: bool) {
    let v = if expire {
        format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
    } else {
        format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict")
    };
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

const DENIED: &str = "Wrong e-mail, password or verification code, or the account is locked.";

pub async fn login(
    State(c): State<Console>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let (email, password) = (field(&fields, "email"), field(&fields, "password"));
    let next = safe_next(field(&fields, "next"));
    match c
        .dir
        .admin_login(email, password, None, Some(addr.ip()))
        .await
    {
        Ok(AdminLogin::Allowed(actor)) => match actor.admin_id {
            Some(id) => start_session(&c, &id, next),
            None => login_form(email, next, DENIED),
        },
        Ok(AdminLogin::NeedOtp) => {
            let nonce = c.pending.put(&c.dir, email, password, next);
            if nonce.is_empty() {
                return login_form(
                    email,
                    next,
                    "Too many sign-ins are waiting; try again shortly.",
                );
            }
            totp_form(&nonce, "")
        }
        Ok(AdminLogin::Denied) => login_form(email, next, DENIED),
        Err(e) => login_form(email, next, &e.to_string()),
    }
}

fn totp_form(nonce: &str, error: &str) -> Response {
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    html::bare(
        status,
        "Verification code",
        &format!(
            "<h1>Verification code</h1>{}<p>Enter the code from your authenticator app.</p>\
             <form method=\"post\" action=\"/console/login/totp\">\
             <input type=\"hidden\" name=\"nonce\" value=\"{}\">{}<button>Verify</button></form>",
            html::notice(false, error),
            esc(nonce),
            Field::new("code", "Verification code")
                .required()
                .autocomplete("one-time-code")
                .render(),
        ),
    )
}

pub async fn login_totp(
    State(c): State<Console>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some((email, password, next)) = c.pending.take(&c.dir, field(&fields, "nonce")) else {
        return login_form("", "/console", "The sign-in took too long; start again.");
    };
    match c
        .dir
        .admin_login(
            &email,
            &password,
            Some(field(&fields, "code")),
            Some(addr.ip()),
        )
        .await
    {
        Ok(AdminLogin::Allowed(actor)) => match actor.admin_id {
            Some(id) => start_session(&c, &id, &next),
            None => login_form(&email, &next, DENIED),
        },
        _ => login_form(&email, &next, DENIED),
    }
}

pub async fn logout(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(token) = crate::cookie(&headers, COOKIE) {
        // Sign-out needs the session's own form: a cross-site post cannot sign an admin out.
        if c.sessions.csrf_matches(&token, field(&fields, "_csrf")) {
            c.sessions.end(&token);
        }
    }
    let mut r = html::redirect("/console/login");
    set_cookie(&mut r, "", true);
    r
}

fn password_form(admin: &SignedIn, errors: &FormErrors, c: &Console) -> Response {
    let policy = c.dir.password_policy();
    let intro = if admin.must_change_password {
        "<p class=\"note\" role=\"status\">Your password is a one-time password. Choose your own before \
         you continue.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Change your password</h1>{intro}{}<form method=\"post\" action=\"/console/password\">{}{}{}\
         <p class=\"hint\">{}</p><button>Change password</button></form>",
        errors.others(&["current_password", "new_password", "password"]),
        admin.csrf_field(),
        Field::new("current_password", "Current password")
            .kind("password")
            .required()
            .autocomplete("current-password")
            .errors(errors)
            .render(),
        Field::new("new_password", "New password")
            .kind("password")
            .required()
            .autocomplete("new-password")
            .error_of(errors, &["new_password", "password"])
            .render(),
        esc(&policy_summary(&policy)),
    );
    if admin.must_change_password {
        html::bare(StatusCode::OK, "Change your password", &body)
    } else {
        html::page(admin, "/console/account", "Change your password", &body)
    }
}

/// The password policy in words, shown before typing.
pub fn policy_summary(p: &core_directory::model::PasswordPolicy) -> String {
    let mut rules = vec![format!("at least {} characters", p.min_length)];
    if p.require_uppercase {
        rules.push("an upper-case letter".into());
    }
    if p.require_lowercase {
        rules.push("a lower-case letter".into());
    }
    if p.require_digit {
        rules.push("a digit".into());
    }
    if p.require_special {
        rules.push("a character that is not a letter or digit".into());
    }
    if p.disallow_username {
        rules.push("not to contain your user name".into());
    }
    if p.history > 0 {
        rules.push(format!("to differ from your last {} passwords", p.history));
    }
    format!("The password needs {}.", rules.join(", "))
}

pub async fn password_page(State(c): State<Console>, admin: SignedIn) -> Response {
    password_form(&admin, &FormErrors::default(), &c)
}

pub async fn change_password(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    match c
        .dir
        .change_own_admin_password(
            &admin.actor,
            field(&fields, "current_password"),
            field(&fields, "new_password"),
        )
        .await
    {
        Ok(revision) => {
            // The change ended every session of this admin; this browser carries on.
            c.sessions.set_revision(&admin.token, revision);
            html::redirect("/console/account?done=password")
        }
        Err(e) => {
            let mut r = password_form(&admin, &html::form_errors(&e), &c);
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
    }
}

fn account_page(c: &Console, admin: &SignedIn, extra: &str, message: &str) -> Response {
    let snap = c.dir.snapshot();
    let me = snap.admins.get(&admin.id);
    let totp = match me.and_then(|a| a.totp.as_ref()) {
        Some(TotpEnrolment {
            confirmed: true, ..
        }) => "<p>TOTP is <strong>on</strong>: sign-in asks for a code from your authenticator app.</p>",
        _ => "<p>TOTP is <strong>off</strong>. Turn it on: sign-in will then also ask for a code from an \
              authenticator app.</p>",
    };
    let start = format!(
        "<form method=\"post\" action=\"/console/account/totp\">{}<button>Set up TOTP</button></form>",
        admin.csrf_field()
    );
    let body = format!(
        "<h1>Your account</h1>{}<section><h2>Details</h2><dl><dt>E-mail</dt><dd>{}</dd><dt>Name</dt><dd>{}</dd>\
         </dl></section><section><h2>Password</h2><p><a href=\"/console/password\">Change your password</a></p>\
         </section><section><h2>Two-factor sign-in</h2>{totp}{extra}{start}</section>",
        message,
        esc(&admin.actor.label),
        esc(me.map_or("", |a| a.name.as_str())),
    );
    html::page(admin, "/console/account", "Your account", &body)
}

pub async fn account(
    State(c): State<Console>,
    admin: SignedIn,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let message = match q.get("done").map(String::as_str) {
        Some("password") => html::notice(true, "Your password has been changed."),
        Some("totp") => html::notice(true, "TOTP is set up: sign-in will ask for a code."),
        _ => String::new(),
    };
    account_page(&c, &admin, "", &message)
}

fn enrol_form(admin: &SignedIn, uri: &str, secret: &str, error: &str) -> String {
    format!(
        "<div class=\"enrol\">{}<p>Scan this code with your authenticator app, or type the key.</p>\
         <div class=\"qr\" id=\"totp-qr\">{}</div><p>Key: <code id=\"totp-secret\">{}</code></p>\
         <form method=\"post\" action=\"/console/account/totp/confirm\">{}\
         <input type=\"hidden\" name=\"uri\" value=\"{}\"><input type=\"hidden\" name=\"secret\" value=\"{}\">{}\
         <button>Confirm</button></form></div>",
        html::notice(false, error),
        qr_svg(uri),
        esc(secret),
        admin.csrf_field(),
        esc(uri),
        esc(secret),
        Field::new("code", "Verification code")
            .required()
            .autocomplete("one-time-code")
            .render(),
    )
}

pub async fn start_totp(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    match c.dir.start_admin_totp(&admin.actor).await {
        Ok(start) => {
            let form = enrol_form(&admin, &start.otpauth_uri, &start.secret, "");
            account_page(&c, &admin, &form, "")
        }
        Err(e) => account_page(&c, &admin, "", &html::notice(false, &e.to_string())),
    }
}

pub async fn confirm_totp(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    match c
        .dir
        .confirm_admin_totp(&admin.actor, field(&fields, "code"))
        .await
    {
        Ok(_) => html::redirect("/console/account?done=totp"),
        Err(e) => {
            // The enrolment stays pending with the same secret: show the same code again with the error.
            let form = enrol_form(
                &admin,
                field(&fields, "uri"),
                field(&fields, "secret"),
                &e.to_string(),
            );
            let mut r = account_page(&c, &admin, &form, "");
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
    }
}

/// The QR code of a TOTP otpauth URI, as inline SVG.
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}
