//! The server-rendered pages: login, TOTP step, new password, errors, the user portal, and the auto-submitting
//! form that carries a SAML message to the SP. They work without JavaScript (the POST form has a button), every
//! input has a label, and everything interpolated is escaped.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0;color:#1c2733}\
main{max-width:32rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:1rem 0 .3rem;font-weight:600}\
input[type=text],input[type=password]{width:100%;padding:.6rem;font-size:1rem;box-sizing:border-box;border:1px solid #8a96a3;border-radius:4px}\
button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem;background:#0b5cad;color:#fff;border:0;border-radius:4px;cursor:pointer}\
.error{background:#fde8e8;color:#8a1c1c;padding:.7rem;border-radius:4px}.note{background:#e8f1fd;padding:.7rem;border-radius:4px}\
ul.apps{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:1rem}ul.apps a{display:block;padding:1rem 1.4rem;border:1px solid #c5ced8;border-radius:6px;text-decoration:none;color:#0b5cad;font-weight:600}\
code{font-size:1.05rem;word-break:break-all}header.brand{display:flex;align-items:center;gap:.6rem;margin:-.5rem 0 1.2rem;font-weight:600;color:#3a4754}header.brand img{max-height:40px;max-width:160px}ul.rules{margin:.3rem 0 .6rem;padding-left:1.2rem;color:#3a4754}ul.codes{columns:2;padding-left:1.2rem}ul.codes code{white-space:nowrap}@media (max-width:30rem){ul.codes{columns:1}}details{margin-top:1rem}summary{cursor:pointer;color:#0b5cad}p.links{margin-top:1.4rem}.qr svg{width:200px;height:200px}form.inline{display:inline}";

/// A complete page with the security headers every IdP page carries.
pub fn page(status: StatusCode, title: &str, body: &str, script_nonce: Option<&str>) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Stratus</title><link rel=\"stylesheet\" href=\"/login/style.css\"></head>\
         <body><main>{body}</main></body></html>",
        esc(title)
    );
    let script = script_nonce.map_or_else(|| "'none'".to_string(), |n| format!("'nonce-{n}'"));
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src {script}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/portal\">Go to your portal</a></p>",
            esc(title),
            esc(message)
        ),
        None,
    )
}

/// A page that tells the user something (not an error).
pub fn info_page(title: &str, message: &str) -> Response {
    page(
        StatusCode::OK,
        title,
        &format!(
            "<h1>{}</h1><p class=\"note\" role=\"status\">{}</p><p><a href=\"/portal\">Sign in again</a></p>",
            esc(title),
            esc(message)
        ),
        None,
    )
}

fn alert(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e))
    })
}

fn hidden(login: &str, csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"login\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(login),
        esc(csrf)
    )
}

pub fn login_form(
    login: &str,
    csrf: &str,
    app: Option<&str>,
    username: &str,
    error: Option<&str>,
) -> Response {
    page(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "Sign in",
        &login_body(login, csrf, app, username, error),
        None,
    )
}

fn login_body(
    login: &str,
    csrf: &str,
    app: Option<&str>,
    username: &str,
    error: Option<&str>,
) -> String {
    let to = app.map_or_else(String::new, |a| {
        format!("<p>to continue to <strong>{}</strong></p>", esc(a))
    });
    format!(
            "<h1>Sign in</h1>{to}{}<form method=\"post\" action=\"/login\">{}\
             <label for=\"username\">Username or e-mail</label>\
             <input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" autocomplete=\"username\" autocapitalize=\"none\" required autofocus>\
             <label for=\"password\">Password</label>\
             <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in</button></form>\
             <p class=\"links\"><a href=\"/forgot-password\">Forgot your password?</a></p>",
        alert(error),
        hidden(login, csrf),
        esc(username)
    )
}

pub fn totp_form(login: &str, csrf: &str, error: Option<&str>) -> Response {
    page(
        if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK },
        "Verification code",
        &format!(
            "<h1>Verification code</h1><p>Enter the 6-digit code from your authenticator app. Lost it? Enter one of \
             your recovery codes instead.</p>{}\
             <form method=\"post\" action=\"/login/totp\">{}\
             <label for=\"code\">Verification code</label>\
             <input type=\"text\" id=\"code\" name=\"code\" autocomplete=\"one-time-code\" autocapitalize=\"none\" maxlength=\"40\" required autofocus>\
             <button type=\"submit\">Verify</button></form>",
            alert(error),
            hidden(login, csrf)
        ),
        None,
    )
}

pub fn new_password_form(
    login: &str,
    csrf: &str,
    rules: &[String],
    error: Option<&str>,
) -> Response {
    page(
        if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK },
        "Set a new password",
        &format!(
            "<h1>Set a new password</h1><p class=\"note\">Your password has expired. Choose a new one to continue.</p>{}\
             <form method=\"post\" action=\"/login/password\">{}\
             <label for=\"new_password\">New password</label>{}\
             <input type=\"password\" id=\"new_password\" name=\"new_password\" autocomplete=\"new-password\" aria-describedby=\"rules\" required autofocus>\
             <label for=\"confirm\">Repeat the new password</label>\
             <input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" required>\
             <button type=\"submit\">Set password</button></form>",
            alert(error),
            hidden(login, csrf),
            rules_list(rules)
        ),
        None,
    )
}

/// The login form after a new password was set: the same form with a note saying so.
pub fn login_after_new_password(
    login: &str,
    csrf: &str,
    app: Option<&str>,
    username: &str,
) -> Response {
    let note = "<p class=\"note\" role=\"status\">Your password was changed. Sign in with the new one.</p>";
    let body =
        login_body(login, csrf, app, username, None).replacen("<form", &format!("{note}<form"), 1);
    page(StatusCode::OK, "Sign in", &body, None)
}

/// The auto-submitting form that delivers a SAML message (a button stands in when scripts are off).
pub fn post_form(action: &str, field: &str, value: &str, relay_state: Option<&str>) -> Response {
    let nonce = crate::sessions::token();
    let relay = relay_state.map_or_else(String::new, |r| {
        format!(
            "<input type=\"hidden\" name=\"RelayState\" value=\"{}\">",
            esc(r)
        )
    });
    page(
        StatusCode::OK,
        "Signing in",
        &format!(
            "<h1>Signing in…</h1><form method=\"post\" action=\"{}\" id=\"saml\">\
             <input type=\"hidden\" name=\"{}\" value=\"{}\">{relay}\
             <noscript><p>Scripts are off: press Continue.</p></noscript><button type=\"submit\">Continue</button></form>\
             <script nonce=\"{nonce}\">document.getElementById('saml').submit();</script>",
            esc(action),
            esc(field),
            esc(value)
        ),
        Some(&nonce),
    )
}

/// One app tile of the portal.
pub struct Tile {
    pub name: String,
    pub launch: String,
}

/// What the portal shows.
pub struct Portal<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub csrf: &'a str,
    pub apps: Vec<Tile>,
    pub totp_active: bool,
    pub totp_pending: Option<(String, String)>,
    pub enrolment_deadline: Option<String>,
    pub password_expires: Option<String>,
    pub message: Option<(bool, String)>,
    /// Recovery codes just made: shown this once.
    pub recovery_codes: Option<Vec<String>>,
    /// A replacement TOTP waiting for its first code: (secret, otpauth URI).
    pub replacing: Option<(String, String)>,
    /// How many recovery codes are left.
    pub recovery_left: usize,
    /// The password rules, shown by the new-password field.
    pub rules: Vec<String>,
    /// The user's accounts in external directories: (directory, what its password is there).
    pub external: Vec<(String, String)>,
}

fn recovery_box(codes: &[String]) -> String {
    let items: String = codes
        .iter()
        .map(|c| format!("<li><code>{}</code></li>", esc(c)))
        .collect();
    format!(
        "<div class=\"note\" role=\"status\" id=\"recovery-codes\"><p><strong>Save your recovery codes now.</strong> \
         Each one signs you in once in place of a TOTP code if you lose your authenticator. They are not shown \
         again.</p><ul class=\"codes\">{items}</ul></div>"
    )
}

fn qr_block(secret: &str, uri: &str, action: &str, csrf: &str) -> String {
    format!(
        "<p>Scan this code with your authenticator app, or enter the secret by hand, then type the code it shows.</p>\
         <div class=\"qr\" role=\"img\" aria-label=\"QR code of your TOTP secret\" id=\"totp-qr\">{}</div>\
         <p>Secret: <code id=\"totp-secret\">{}</code></p>\
         <form method=\"post\" action=\"{action}\">{csrf}\
         <label for=\"code\">Verification code</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <button type=\"submit\">Confirm</button></form>",
        qr_svg(uri),
        esc(secret)
    )
}

/// The password rules as a list, for a new-password field.
fn rules_list(rules: &[String]) -> String {
    if rules.is_empty() {
        return String::new();
    }
    let items: String = rules
        .iter()
        .map(|r| format!("<li>{}</li>", esc(r)))
        .collect();
    format!("<p id=\"rules-intro\">Your password needs:</p><ul class=\"rules\" id=\"rules\">{items}</ul>")
}

/// The QR code of a TOTP otpauth URI, as inline SVG.
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

pub fn portal(p: &Portal) -> Response {
    let csrf = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(p.csrf)
    );
    let mut body = format!(
        "<h1>Welcome, {}</h1><form class=\"inline\" method=\"post\" action=\"/portal/logout\">{csrf}<button type=\"submit\">Sign out</button></form>",
        esc(p.display_name)
    );
    if let Some((ok, m)) = &p.message {
        body.push_str(&format!(
            "<p class=\"{}\" role=\"status\">{}</p>",
            if *ok { "note" } else { "error" },
            esc(m)
        ));
    }
    if let Some(d) = &p.password_expires {
        body.push_str(&format!(
            "<p class=\"note\">Your password expires on {}.</p>",
            esc(d)
        ));
    }
    body.push_str("<h2>Your apps</h2>");
    if p.apps.is_empty() {
        body.push_str("<p>No apps are assigned to you yet.</p>");
    } else {
        body.push_str("<ul class=\"apps\">");
        for t in &p.apps {
            body.push_str(&format!(
                "<li><a href=\"{}\">{}</a></li>",
                esc(&t.launch),
                esc(&t.name)
            ));
        }
        body.push_str("</ul>");
    }
    if !p.external.is_empty() {
        body.push_str("<h2>Your password elsewhere</h2><ul class=\"external\">");
        for (name, state) in &p.external {
            body.push_str(&format!(
                "<li><strong>{}</strong>: {}</li>",
                esc(name),
                esc(state)
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Two-factor authentication</h2>");
    if let Some(codes) = &p.recovery_codes {
        body.push_str(&recovery_box(codes));
    }
    if let Some((secret, uri)) = &p.replacing {
        body.push_str(
            "<p>Your current authenticator keeps working until the new one is confirmed.</p>",
        );
        body.push_str(&qr_block(
            secret,
            uri,
            "/portal/totp/replace/confirm",
            &csrf,
        ));
    } else if p.totp_active {
        body.push_str(&format!(
            "<p>TOTP is set up for your account. Recovery codes left: {}.</p>\
             <details><summary>Replace your authenticator</summary>\
             <form method=\"post\" action=\"/portal/totp/replace\">{csrf}\
             <label for=\"replace_password\">Your password</label>\
             <input type=\"password\" id=\"replace_password\" name=\"current_password\" autocomplete=\"current-password\" required>\
             <label for=\"replace_code\">Code from your authenticator, or a recovery code</label>\
             <input type=\"text\" id=\"replace_code\" name=\"code\" autocomplete=\"one-time-code\" autocapitalize=\"none\" required>\
             <button type=\"submit\">Set up a new authenticator</button></form></details>",
            p.recovery_left
        ));
    } else if let Some((secret, uri)) = &p.totp_pending {
        body.push_str(&qr_block(secret, uri, "/portal/totp/confirm", &csrf));
    } else {
        if let Some(d) = &p.enrolment_deadline {
            body.push_str(&format!(
                "<p class=\"note\">Your organisation requires TOTP. Set it up before {}.</p>",
                esc(d)
            ));
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"/portal/totp\">{csrf}<button type=\"submit\">Set up TOTP</button></form>"
        ));
    }
    body.push_str(&format!(
        "<h2>Change password</h2><form method=\"post\" action=\"/portal/password\">{csrf}\
         <label for=\"current_password\">Current password</label>\
         <input type=\"password\" id=\"current_password\" name=\"current_password\" autocomplete=\"current-password\" required>\
         <label for=\"new_password\">New password</label>{}\
         <input type=\"password\" id=\"new_password\" name=\"new_password\" autocomplete=\"new-password\" aria-describedby=\"rules\" required>\
         <label for=\"confirm\">Repeat the new password</label>\
         <input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Change password</button></form><p><small>Signed in as {}</small></p>",
        rules_list(&p.rules),
        esc(p.username)
    ));
    page(StatusCode::OK, "Your portal", &body, None)
}

/// "Forgot your password?": one field, and the same answer whatever is typed.
pub fn forgot_form(error: Option<&str>) -> Response {
    page(
        StatusCode::OK,
        "Forgot your password",
        &format!(
            "<h1>Forgot your password?</h1><p>Enter your user name or e-mail address. If it belongs to an account, \
             a link to choose a new password is sent to the account's e-mail address.</p>{}\
             <form method=\"post\" action=\"/forgot-password\">\
             <label for=\"username\">Username or e-mail</label>\
             <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" required autofocus>\
             <button type=\"submit\">Send the link</button></form>\
             <p class=\"links\"><a href=\"/portal\">Back to sign-in</a></p>",
            alert(error)
        ),
        None,
    )
}

/// Which page sets a password from a mailed link.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LinkPage {
    Activate,
    Reset,
}

impl LinkPage {
    fn action(self) -> &'static str {
        match self {
            LinkPage::Activate => "/activate",
            LinkPage::Reset => "/reset-password",
        }
    }
}

/// The form behind an activation or reset link: who the account is, the password rules before the fields.
pub fn link_password_form(
    kind: LinkPage,
    token: &str,
    org: &str,
    username: &str,
    rules: &[String],
    error: Option<&str>,
) -> Response {
    let (title, intro, button) = match kind {
        LinkPage::Activate => (
            "Activate your account",
            format!(
                "Welcome to {}. Choose the password of your account <strong>{}</strong>.",
                esc(org),
                esc(username)
            ),
            "Activate",
        ),
        LinkPage::Reset => (
            "Choose a new password",
            format!(
                "Choose a new password for <strong>{}</strong>. Every session signed in with the old one ends.",
                esc(username)
            ),
            "Set the new password",
        ),
    };
    let rules = rules_list(rules);
    page(
        if error.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        title,
        &format!(
            "<h1>{title}</h1><p>{intro}</p>{}<form method=\"post\" action=\"{}\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <input type=\"text\" name=\"username\" value=\"{}\" autocomplete=\"username\" hidden>\
             <label for=\"new_password\">New password</label>\
             {rules}\
             <input type=\"password\" id=\"new_password\" name=\"new_password\" autocomplete=\"new-password\" aria-describedby=\"rules\" required autofocus>\
             <label for=\"confirm\">Repeat the new password</label>\
             <input type=\"password\" id=\"confirm\" name=\"confirm\" autocomplete=\"new-password\" required>\
             <button type=\"submit\">{button}</button></form>",
            alert(error),
            kind.action(),
            esc(token),
            esc(username)
        ),
        None,
    )
}

/// A link that is used, expired, or was never one.
pub fn link_invalid(kind: LinkPage) -> Response {
    let what = match kind {
        LinkPage::Activate => "activation",
        LinkPage::Reset => "password-reset",
    };
    page(
        StatusCode::GONE,
        "Link not valid",
        &format!(
            "<h1>This link is not valid any more</h1><p class=\"error\" role=\"alert\">The {what} link has been \
             used, has expired, or was replaced by a newer one.</p>\
             <p><a href=\"/forgot-password\">Ask for a new link</a> · <a href=\"/portal\">Sign in</a></p>"
        ),
        None,
    )
}

/// After a password was set from a link.
pub fn link_done(kind: LinkPage, username: &str, mfa_next: bool) -> Response {
    let (title, msg) = match kind {
        LinkPage::Activate => ("Your account is active", "Your password is set."),
        LinkPage::Reset => ("Your password was changed", "Your new password is set."),
    };
    let next = if mfa_next {
        " Your organisation requires a second factor: after you sign in, set up TOTP with an authenticator app."
    } else {
        ""
    };
    page(
        StatusCode::OK,
        title,
        &format!(
            "<h1>{title}</h1><p class=\"note\" role=\"status\">{msg}{next}</p>\
             <p>Sign in as <strong>{}</strong> with your new password.</p><p><a href=\"/portal\">Sign in</a></p>",
            esc(username)
        ),
        None,
    )
}
