//! The LDAP page: the directory's suffix, its Bind DN service accounts, and copy-ready connection details
//! (host, ports, base DN, bind DN pattern, the CA certificate, and a working `ldapsearch` line).

use crate::html::{self, esc};
use crate::{Console, SignedIn};
use axum::extract::State;
use axum::response::Response;
use std::fmt::Write as _;

pub async fn ldap(State(c): State<Console>, admin: SignedIn) -> Response {
    let snap = c.dir.snapshot();
    let suffix = snap
        .org
        .as_ref()
        .map_or(String::new(), |o| o.ldap_suffix.clone());
    let listeners = c.listeners.read().map(|l| l.clone()).unwrap_or_default();
    let addr = |name: &str| {
        listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
    };
    let ldap = addr("ldap");
    let ldaps = addr("ldaps");
    let mut accounts: Vec<_> = snap.users.values().filter(|u| u.ldap_bind_dn).collect();
    accounts.sort_by(|a, b| a.username.cmp(&b.username));
    let users_base = format!("ou=Users,{suffix}");
    let example = accounts
        .first()
        .map_or("<bind-dn-user>".to_string(), |u| u.username.clone());
    let url = ldaps
        .as_deref()
        .map(|a| format!("ldaps://{}", a.trim_start_matches("ldaps://")))
        .or_else(|| {
            ldap.as_deref()
                .map(|a| format!("ldap://{}", a.trim_start_matches("ldap://")))
        })
        .unwrap_or_else(|| "ldap://<host>:389".into());
    let ca = if url.starts_with("ldaps") {
        "LDAPTLS_CACERT=ca.pem "
    } else {
        ""
    };
    let mut body = String::from("<h1>LDAP</h1>");
    let _ = write!(
        body,
        "<section><h2>Connection</h2><dl class=\"copy\"><dt>LDAP</dt><dd><code>{}</code></dd><dt>LDAPS</dt><dd><code>{}</code></dd>\
         <dt>Base DN</dt><dd><code>{}</code></dd><dt>Users</dt><dd><code>{}</code></dd><dt>Groups</dt><dd><code>ou=Groups,{}</code></dd>\
         <dt>Bind DN</dt><dd><code>uid=&lt;user name&gt;,{}</code></dd><dt>CA certificate</dt><dd><a href=\"/console/ldap/ca.pem\" download>ca.pem</a> (for LDAPS clients)</dd></dl>\
         <p>Search as a Bind DN account:</p><pre><code>{ca}ldapsearch -H {} -x -D 'uid={},{}' -W -b '{}' '(objectClass=posixAccount)' uid mail</code></pre>\
         <p class=\"hint\">Users are visible and can bind only through a group bound to LDAP (see <a href=\"/console/groups\">Groups</a>); anonymous binds are refused.</p></section>",
        esc(ldap.as_deref().unwrap_or("off")),
        esc(ldaps.as_deref().unwrap_or("off")),
        esc(&suffix),
        esc(&users_base),
        esc(&suffix),
        esc(&users_base),
        esc(&url),
        esc(&example),
        esc(&users_base),
        esc(&users_base),
    );
    body.push_str("<section><h2>Bind DN accounts</h2>");
    if accounts.is_empty() {
        body.push_str("<p>No user is an LDAP Bind DN yet. Tick <em>LDAP Bind DN</em> on a user to let it search the directory.</p>");
    } else {
        body.push_str("<ul>");
        for u in accounts {
            let _ = write!(
                body,
                "<li><a href=\"/console/users/{}\">{}</a> <code>uid={},{}</code></li>",
                u.id,
                esc(&u.username),
                esc(&u.username),
                esc(&users_base)
            );
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");
    html::page(&admin, "/console/ldap", "LDAP", &body)
}

/// The development CA certificate.
pub async fn ca(State(c): State<Console>, _admin: SignedIn) -> Response {
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    match &c.ca_pem {
        Some(pem) => {
            let mut r = pem.as_str().to_string().into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            );
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"ca.pem\""),
            );
            r
        }
        None => (
            StatusCode::NOT_FOUND,
            "Stratus uses a configured certificate: ask whoever issued it for its CA",
        )
            .into_response(),
    }
}
