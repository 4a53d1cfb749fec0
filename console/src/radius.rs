//! RADIUS profiles (the NAS clients the RADIUS listener answers): the list with the listener's address, the
//! new-profile form, and each profile's page — what to type into an access point (server, ports, the shared
//! secret, EAP methods, the CA certificate for supplicants), its settings, the groups bound to it, secret
//! rotation and deletion. The shared secret is shown once, in the answer to the create or rotate form, and
//! never again: the core keeps it sealed.

use crate::html::field;
use crate::html::{self, can, esc, Field, FormErrors};
use crate::{Console, SignedIn};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use core_directory::access::Permission;
use core_directory::directory::generate_radius_secret;
use core_directory::model::{RadiusMethod, RadiusMfaMode, Resource, DEFAULT_COA_PORT};
use core_directory::model::{RealmMode, RealmRule};
use core_directory::radius_sessions::SessionQuery;
use core_directory::views::{NewRadiusServer, RadiusServerPatch, RadiusServerView};
use core_directory::Id;
use std::collections::HashMap;
use std::fmt::Write as _;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/console/radius", get(list))
        .route("/console/radius/ca.pem", get(crate::ldap::ca))
        .route("/console/radius/new", get(new_page).post(create))
        .route("/console/radius/{id}", get(detail).post(edit))
        .route("/console/radius/{id}/secret", post(rotate))
        .route("/console/radius/{id}/unbind", post(unbind))
        .route("/console/radius/{id}/delete", get(delete_page).post(delete))
}

/// The methods a profile may allow, in the order an EAP conversation proposes them.
const METHODS: [(RadiusMethod, &str, &str, &str); 6] = [
    (
        RadiusMethod::Pap,
        "pap",
        "PAP",
        "user name and password in the Access-Request (captive portals, VPNs, switches)",
    ),
    (
        RadiusMethod::PeapMschapv2,
        "peap_mschapv2",
        "PEAP-MSCHAPv2",
        "WPA2/WPA3-Enterprise with Windows, Android and Apple defaults; members need an NT hash, made at their next password set",
    ),
    (
        RadiusMethod::EapTtlsPap,
        "eap_ttls_pap",
        "EAP-TTLS/PAP",
        "WPA-Enterprise without NT hashes; takes password,123456 when MFA is on",
    ),
    (
        RadiusMethod::EapTtlsMschapv2,
        "eap_ttls_mschapv2",
        "EAP-TTLS/MSCHAPv2",
        "WPA-Enterprise clients set to TTLS with MSCHAPv2 or EAP-MSCHAPv2 inside; members need an NT hash; no TOTP code",
    ),
    (
        RadiusMethod::Mschapv2,
        "mschapv2",
        "MS-CHAPv2 (no EAP)",
        "VPN concentrators that check MS-CHAPv2 by RADIUS; sends MPPE keys; members need an NT hash; no TOTP code",
    ),
    (
        RadiusMethod::EapTls,
        "eap_tls",
        "EAP-TLS",
        "client certificates; proposed only when the server has a client CA configured",
    ),
];

/// Realm rules, as the API names them.
const REALM_MODES: [(RealmMode, &str, &str); 3] = [
    (
        RealmMode::Keep,
        "keep",
        "Keep: user@realm is looked up as typed (DOMAIN\\user loses its domain)",
    ),
    (
        RealmMode::Strip,
        "strip",
        "Strip: user@realm and REALM\\user are looked up as user",
    ),
    (
        RealmMode::Require,
        "require",
        "Require: names without a realm (or one of the realms below) are refused; the realm is removed",
    ),
];

fn realm_value(m: RealmMode) -> &'static str {
    REALM_MODES
        .iter()
        .find(|(r, _, _)| *r == m)
        .map_or("keep", |(_, v, _)| v)
}

fn realm_text(r: &RealmRule) -> String {
    match (r.mode, r.realms.is_empty()) {
        (RealmMode::Require, false) => format!("require: {}", r.realms.join(", ")),
        (m, _) => realm_value(m).to_string(),
    }
}

fn parse_realm(fields: &[(String, String)]) -> RealmRule {
    let mode = REALM_MODES
        .iter()
        .find(|(_, v, _)| *v == field(fields, "realm_mode"))
        .map_or(RealmMode::Keep, |(m, _, _)| *m);
    let realms = field(fields, "realms")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    RealmRule { mode, realms }
}

const MFA: [(RadiusMfaMode, &str, &str); 4] = [
    (RadiusMfaMode::Off, "off", "Off: the password is enough"),
    (
        RadiusMfaMode::RequireAll,
        "require_all",
        "Everyone answers a TOTP challenge; users without TOTP are refused",
    ),
    (
        RadiusMfaMode::RequireAllExceptEnrolling,
        "require_all_except_enrolling",
        "Everyone, except users still in their enrolment period",
    ),
    (
        RadiusMfaMode::RequireEnrolledOnly,
        "require_enrolled_only",
        "Only users who have TOTP set up",
    ),
];

fn method_label(m: RadiusMethod) -> &'static str {
    METHODS
        .iter()
        .find(|(x, ..)| *x == m)
        .map_or("?", |(_, _, l, _)| l)
}

fn mfa_label(m: RadiusMfaMode) -> &'static str {
    MFA.iter()
        .find(|(x, ..)| *x == m)
        .map_or("?", |(_, _, l)| l)
}

fn mfa_value(m: RadiusMfaMode) -> &'static str {
    MFA.iter()
        .find(|(x, ..)| *x == m)
        .map_or("off", |(_, v, _)| v)
}

/// Where the RADIUS listener answers: (host an access point should use, authentication port, accounting port).
fn listener(c: &Console) -> (String, Option<u16>, Option<u16>) {
    let listeners = c.listeners.read().map(|l| l.clone()).unwrap_or_default();
    let addr = |name: &str| {
        listeners
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, a)| a.parse::<std::net::SocketAddr>().ok())
    };
    let (auth, acct) = (addr("radius"), addr("radius_accounting"));
    // A wildcard address says nothing to an access point: name the host of the public URL instead.
    let host = match auth {
        Some(a) if !a.ip().is_unspecified() => a.ip().to_string(),
        _ => url_host(&c.public_base_url).to_string(),
    };
    (host, auth.map(|a| a.port()), acct.map(|a| a.port()))
}

/// The host of `scheme://host[:port]`.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => rest.split([':', '/']).next().unwrap_or_default(),
    }
}

fn port(p: Option<u16>) -> String {
    p.map_or_else(|| "off".to_string(), |p| p.to_string())
}

pub async fn list(State(c): State<Console>, admin: SignedIn) -> Response {
    let profiles = c.dir.list_radius_servers();
    let (host, auth, acct) = listener(&c);
    let mut body = String::from("<h1>RADIUS</h1>");
    if can(&admin, Permission::ManageOrg) {
        body.push_str("<p class=\"actions\"><a class=\"button\" href=\"/console/radius/new\">New RADIUS profile</a></p>");
    }
    let _ = write!(
        body,
        "<p class=\"hint\">A profile is one kind of access point, switch or VPN: the networks its requests come from, \
         their shared secret, the methods and MFA it allows. Members of the groups bound to it may sign in.</p>\
         <section><h2>Server</h2><dl class=\"copy\"><dt>Address</dt><dd><code>{}</code></dd>\
         <dt>Authentication port</dt><dd><code>{}</code></dd><dt>Accounting port</dt><dd><code>{}</code></dd>\
         <dt>CA certificate</dt><dd><a href=\"/console/radius/ca.pem\" download>ca.pem</a> (for supplicants checking the server)</dd></dl></section>",
        esc(&host),
        port(auth),
        port(acct),
    );
    body.push_str("<div class=\"table\"><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Networks</th><th scope=\"col\">Methods</th><th scope=\"col\">MFA</th><th scope=\"col\">Groups</th><th scope=\"col\">Open sessions</th></tr></thead><tbody>");
    let open = c.dir.radius_session_counts();
    for p in &profiles {
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/radius/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.id,
            esc(&p.name),
            esc(&networks_text(p, ", ")),
            esc(&methods_text(p)),
            esc(mfa_value(p.mfa)).replace('_', " "),
            p.bound_groups.len(),
            open.get(&p.id).copied().unwrap_or(0),
        );
    }
    if profiles.is_empty() {
        body.push_str("<tr><td colspan=\"6\">No RADIUS profile yet.</td></tr>");
    }
    body.push_str("</tbody></table></div>");
    html::page(&admin, "/console/radius", "RADIUS", &body)
}

fn networks_text(p: &RadiusServerView, sep: &str) -> String {
    p.networks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn methods_text(p: &RadiusServerView) -> String {
    p.methods
        .iter()
        .map(|m| method_label(*m))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Networks typed one per line (or separated by commas or spaces); a bare address is that one host.
fn parse_networks(text: &str) -> Result<Vec<ipnet::IpNet>, FormErrors> {
    let mut out = Vec::new();
    for part in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let net = part
            .parse::<ipnet::IpNet>()
            .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                FormErrors(vec![(
                    "networks".into(),
                    format!("`{part}` is not an address or network such as 192.0.2.0/24"),
                )])
            })?;
        out.push(net);
    }
    Ok(out)
}

fn parse_mfa(v: &str) -> RadiusMfaMode {
    MFA.iter()
        .find(|(_, x, _)| *x == v)
        .map_or(RadiusMfaMode::Off, |(m, ..)| *m)
}

fn parse_methods(fields: &[(String, String)]) -> Vec<RadiusMethod> {
    METHODS
        .iter()
        .filter(|(_, v, ..)| fields.iter().any(|(k, x)| k == "method" && x == v))
        .map(|(m, ..)| *m)
        .collect()
}

fn checked(fields: &[(String, String)], name: &str) -> bool {
    field(fields, name) == "on"
}

/// The profile's settings form (without the secret, which has its own forms).
fn profile_form(
    admin: &SignedIn,
    p: Option<&RadiusServerView>,
    values: &[(String, String)],
    errors: &FormErrors,
) -> String {
    let fresh = values.is_empty();
    let v = |name: &str, current: String| {
        if fresh {
            current
        } else {
            field(values, name).to_string()
        }
    };
    let flag = |name: &str, current: bool| {
        let on = if fresh {
            current
        } else {
            checked(values, name)
        };
        if on {
            "on"
        } else {
            ""
        }
    };
    let mut s = errors.others(&["name", "networks", "methods", "secret", "realm", "realms"]);
    s.push_str(&admin.csrf_field());
    let name = v("name", p.map_or(String::new(), |p| p.name.clone()));
    s.push_str(
        &Field::new("name", "Name")
            .value(&name)
            .required()
            .hint("what these clients are, e.g. office Wi-Fi")
            .errors(errors)
            .render(),
    );
    let nets = v(
        "networks",
        p.map_or(String::new(), |p| networks_text(p, "\n")),
    );
    let _ = write!(
        s,
        "<div class=\"field\"><label for=\"f-networks\">Client networks</label>\
         <textarea id=\"f-networks\" name=\"networks\" rows=\"3\" required spellcheck=\"false\" aria-describedby=\"f-networks-hint\">{}</textarea>\
         <small id=\"f-networks-hint\">Source addresses of the access points or their controller, one per line: 192.0.2.10 or 192.0.2.0/24</small>{}</div>",
        esc(&nets),
        field_error(errors, "networks"),
    );
    let mfa = if fresh {
        p.map_or("off", |p| mfa_value(p.mfa)).to_string()
    } else {
        field(values, "mfa").to_string()
    };
    let options: Vec<(&str, &str)> = MFA.iter().map(|(_, v, l)| (*v, *l)).collect();
    s.push_str(&html::select("mfa", "MFA", &options, &mfa));
    let realm_mode = if fresh {
        p.map_or("keep", |p| realm_value(p.realm.mode)).to_string()
    } else {
        field(values, "realm_mode").to_string()
    };
    let options: Vec<(&str, &str)> = REALM_MODES.iter().map(|(_, v, l)| (*v, *l)).collect();
    s.push_str(&html::select(
        "realm_mode",
        "Realm in the user name",
        &options,
        &realm_mode,
    ));
    let realms = v(
        "realms",
        p.map_or(String::new(), |p| p.realm.realms.join(", ")),
    );
    s.push_str(
        &Field::new("realms", "Accepted realms")
            .value(&realms)
            .hint("with Require only, comma-separated, e.g. corp.example, CORP; empty: any realm")
            .error_of(errors, &["realm", "realms"])
            .render(),
    );
    s.push_str("<fieldset><legend>Allowed methods</legend>");
    let current: Vec<RadiusMethod> = if fresh {
        p.map_or(vec![RadiusMethod::Pap], |p| p.methods.clone())
    } else {
        parse_methods(values)
    };
    for (m, value, label, hint) in METHODS {
        let _ = write!(
            s,
            "<div class=\"field check\"><input type=\"checkbox\" id=\"m-{value}\" name=\"method\" value=\"{value}\"{}>\
             <label for=\"m-{value}\">{label}</label><small>{}</small></div>",
            if current.contains(&m) { " checked" } else { "" },
            esc(hint),
        );
    }
    s.push_str(&field_error(errors, "methods"));
    s.push_str("</fieldset><fieldset><legend>Options</legend>");
    for (name, label, hint, current) in [
        (
            "otp_append",
            "Accept the code after the password (password,123456)",
            "for clients that cannot show a TOTP challenge",
            p.is_some_and(|p| p.otp_append),
        ),
        (
            "reject_reply_message",
            "Say why in a Reply-Message on Access-Reject",
            "off: a refusal carries no reason",
            p.is_some_and(|p| p.reject_reply_message),
        ),
        (
            "allow_missing_message_authenticator",
            "Accept PAP requests without Message-Authenticator",
            "only for legacy clients: weakens the protection against forged requests (Blast-RADIUS)",
            p.is_some_and(|p| p.allow_missing_message_authenticator),
        ),
        (
            "dynamic_authorization",
            "Disconnect users who lose access (RFC 5176)",
            "a Disconnect-Request goes to the client of each open session of a user who is suspended, locked, deleted or no longer in a bound group",
            p.is_some_and(|p| p.dynamic_authorization),
        ),
    ] {
        s.push_str(
            &Field::new(name, label)
                .kind("checkbox")
                .value(flag(name, current))
                .hint(hint)
                .render(),
        );
    }
    let port = v(
        "coa_port",
        p.map_or(DEFAULT_COA_PORT, |p| p.coa_port).to_string(),
    );
    s.push_str(
        &Field::new("coa_port", "Disconnect (CoA) port of the clients")
            .value(&port)
            .hint("UDP, 3799 unless the clients say otherwise")
            .errors(errors)
            .render(),
    );
    let radsec = v(
        "radsec_client",
        p.and_then(|p| p.radsec_client.clone()).unwrap_or_default(),
    );
    s.push_str(
        &Field::new("radsec_client", "RadSec client certificate name")
            .value(&radsec)
            .hint("a DNS name of the client certificate (else its CN); empty: no RadSec client")
            .errors(errors)
            .render(),
    );
    s.push_str("</fieldset>");
    s
}

/// The CoA port typed in the form; an unreadable one becomes 0, which the core refuses with its own message.
fn parse_coa_port(fields: &[(String, String)]) -> u16 {
    let v = field(fields, "coa_port").trim();
    if v.is_empty() {
        return DEFAULT_COA_PORT;
    }
    v.parse().unwrap_or(0)
}

fn field_error(errors: &FormErrors, name: &str) -> String {
    errors.of(name).map_or(String::new(), |e| {
        format!("<small class=\"field-error\">{}</small>", esc(e))
    })
}

fn secret_field(label: &str, errors: &FormErrors) -> String {
    Field::new("secret", label)
        .kind("password")
        .autocomplete("new-password")
        .hint("leave empty to have Stratus generate one (recommended); 16–128 characters")
        .errors(errors)
        .render()
}

pub async fn new_page(admin: SignedIn) -> Response {
    new_form(&admin, &[], &FormErrors::default())
}

fn new_form(admin: &SignedIn, values: &[(String, String)], errors: &FormErrors) -> Response {
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/console/radius\">RADIUS</a> /</p><h1>New RADIUS profile</h1>\
         <form method=\"post\" action=\"/console/radius/new\" class=\"record\">{}{}<button>Create profile</button></form>",
        profile_form(admin, None, values, errors),
        secret_field("Shared secret", errors),
    );
    let mut r = html::page(admin, "/console/radius", "New RADIUS profile", &body);
    if !errors.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// The secret typed in the form, or a new one.
fn chosen_secret(fields: &[(String, String)]) -> String {
    let typed = field(fields, "secret");
    if typed.is_empty() {
        generate_radius_secret()
    } else {
        typed.to_string()
    }
}

pub async fn create(
    State(c): State<Console>,
    admin: SignedIn,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    // A secret the admin typed is never sent back in a form.
    let values: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "secret")
        .cloned()
        .collect();
    let networks = match parse_networks(field(&fields, "networks")) {
        Ok(n) => n,
        Err(e) => return new_form(&admin, &values, &e),
    };
    let secret = chosen_secret(&fields);
    let input = NewRadiusServer {
        name: field(&fields, "name").trim().to_string(),
        networks,
        secret: secret.clone(),
        mfa: parse_mfa(field(&fields, "mfa")),
        methods: parse_methods(&fields),
        allow_missing_message_authenticator: checked(
            &fields,
            "allow_missing_message_authenticator",
        ),
        otp_append: checked(&fields, "otp_append"),
        reject_reply_message: checked(&fields, "reject_reply_message"),
        dynamic_authorization: checked(&fields, "dynamic_authorization"),
        coa_port: Some(parse_coa_port(&fields)),
        radsec_client: Some(field(&fields, "radsec_client").to_string()),
        realm: parse_realm(&fields),
    };
    match c.dir.create_radius_server(&admin.actor, input).await {
        Ok(p) => detail_page(
            &c,
            &admin,
            &p.id,
            &[],
            &FormErrors::default(),
            &html::notice(true, "Profile created."),
            Some(&secret),
        ),
        Err(e) => new_form(&admin, &values, &html::form_errors(&e)),
    }
}

/// The one-time display of a shared secret.
fn secret_box(secret: &str) -> String {
    format!(
        "<section class=\"secret\" aria-labelledby=\"secret-heading\"><h2 id=\"secret-heading\">Shared secret</h2>\
         <p><code id=\"radius-secret\">{}</code></p>\
         <p class=\"warn\" role=\"status\">Copy it into the access point now: Stratus keeps it sealed and will not show it again. \
         Lost it? Rotate the secret below.</p></section>",
        esc(secret)
    )
}

fn not_found(admin: &SignedIn) -> Response {
    let mut r = html::page(
        admin,
        "/console/radius",
        "RADIUS profile",
        &html::notice(false, "No such RADIUS profile."),
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// What an administrator types into the access point.
fn access_point_section(c: &Console, p: &RadiusServerView) -> String {
    let (host, auth, acct) = listener(c);
    let eap: Vec<&str> = p
        .methods
        .iter()
        .filter(|m| **m != RadiusMethod::Pap)
        .map(|m| method_label(*m))
        .collect();
    let message_auth = if p.allow_missing_message_authenticator {
        "recommended (PAP without it is accepted)"
    } else {
        "required: turn on “Message-Authenticator” / “Blast-RADIUS protection” if the device asks"
    };
    format!(
        "<section><h2>Access point settings</h2><dl class=\"copy\">\
         <dt>RADIUS server</dt><dd><code>{}</code></dd><dt>Authentication port</dt><dd><code>{}</code></dd>\
         <dt>Accounting port</dt><dd><code>{}</code></dd>\
         <dt>Shared secret</dt><dd>the one shown when this profile was created or its secret last rotated</dd>\
         <dt>Message-Authenticator</dt><dd>{}</dd>\
         <dt>WPA-Enterprise (802.1X) methods</dt><dd>{}</dd>\
         <dt>CA certificate</dt><dd><a href=\"/console/radius/ca.pem\" download>ca.pem</a>: give it to supplicants so they can check the server’s certificate</dd>\
         <dt>Requests from</dt><dd><code>{}</code></dd></dl></section>",
        esc(&host),
        port(auth),
        port(acct),
        message_auth,
        if eap.is_empty() {
            "none (PAP only)".to_string()
        } else {
            esc(&eap.join(", "))
        },
        esc(&networks_text(p, ", ")),
    )
}

/// The open accounting sessions matching `query` as a table (the profile page lists a profile's, the user page a
/// user's); empty when there are none and `always` is off.
pub fn sessions_section(c: &Console, query: &SessionQuery, always: bool) -> String {
    let sessions = c.dir.radius_sessions(query);
    if sessions.is_empty() && !always {
        return String::new();
    }
    let snap = c.dir.snapshot();
    let mut s = format!(
        "<section><h2>Open RADIUS sessions</h2><p class=\"hint\">{} open: accounting Start or Interim-Update seen, no Stop yet.</p>\
         <div class=\"table\"><table><thead><tr><th scope=\"col\">User</th><th scope=\"col\">Profile</th><th scope=\"col\">Client</th>\
         <th scope=\"col\">Session</th><th scope=\"col\">Address</th><th scope=\"col\">Station</th><th scope=\"col\">Started</th>\
         <th scope=\"col\">Updated</th><th scope=\"col\">In / out</th></tr></thead><tbody>",
        sessions.len()
    );
    for x in sessions.iter().take(500) {
        let user = match &x.user {
            Some(id) => format!("<a href=\"/console/users/{id}\">{}</a>", esc(&x.username)),
            None => esc(&x.username),
        };
        let profile = snap
            .radius_servers
            .get(&x.profile)
            .map_or_else(String::new, |p| {
                format!("<a href=\"/console/radius/{}\">{}</a>", p.id, esc(&p.name))
            });
        let _ = write!(
            s,
            "<tr><td>{user}</td><td>{profile}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td></tr>",
            esc(&x.nas_identifier.clone().unwrap_or_else(|| x.nas_address.to_string())),
            esc(&x.session_id),
            esc(x.framed_ip.as_deref().unwrap_or("")),
            esc(x.calling_station.as_deref().unwrap_or("")),
            html::when(&x.started_at),
            html::when(&x.updated_at),
            x.input_octets,
            x.output_octets,
        );
    }
    if sessions.is_empty() {
        s.push_str("<tr><td colspan=\"9\">No open session.</td></tr>");
    }
    s.push_str("</tbody></table></div></section>");
    s
}

fn groups_section(c: &Console, admin: &SignedIn, p: &RadiusServerView) -> String {
    let snap = c.dir.snapshot();
    let mut groups: Vec<_> = p
        .bound_groups
        .iter()
        .filter_map(|g| snap.group(g))
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut s = String::from("<section><h2>Groups</h2>");
    if groups.is_empty() {
        s.push_str("<p>No group is bound: nobody can sign in through this profile yet. Bind a group on its page (<a href=\"/console/groups\">Groups</a>).</p>");
    } else {
        s.push_str("<p class=\"hint\">Members of these groups may sign in; their groups’ reply attributes (a VLAN, for example) go with the Access-Accept.</p><ul class=\"rows\">");
        let unbind = can(admin, Permission::ManageUsers);
        for g in groups {
            let _ = write!(
                s,
                "<li><a href=\"/console/groups/{}\">{}</a>",
                g.id,
                esc(&g.name)
            );
            if unbind {
                let _ = write!(
                    s,
                    " <form method=\"post\" action=\"/console/radius/{}/unbind\" class=\"inline\">{}\
                     <input type=\"hidden\" name=\"group\" value=\"{}\"><button class=\"secondary small\" aria-label=\"Unbind {}\">Unbind</button></form>",
                    p.id,
                    admin.csrf_field(),
                    g.id,
                    esc(&g.name)
                );
            }
            s.push_str("</li>");
        }
        s.push_str("</ul>");
    }
    s.push_str("</section>");
    s
}

fn detail_page(
    c: &Console,
    admin: &SignedIn,
    id: &Id,
    values: &[(String, String)],
    errors: &FormErrors,
    message: &str,
    secret: Option<&str>,
) -> Response {
    let p = match c.dir.get_radius_server(id) {
        Ok(p) => p,
        Err(_) => return not_found(admin),
    };
    let write = can(admin, Permission::ManageOrg);
    let mut body = format!(
        "<p class=\"crumbs\"><a href=\"/console/radius\">RADIUS</a> /</p><h1>{}</h1>{message}",
        esc(&p.name)
    );
    if let Some(s) = secret {
        body.push_str(&secret_box(s));
    }
    body.push_str(&access_point_section(c, &p));
    let options: Vec<&str> = [
        (p.otp_append, "code after the password"),
        (p.reject_reply_message, "reasons on reject"),
        (
            p.allow_missing_message_authenticator,
            "PAP without Message-Authenticator",
        ),
        (p.dynamic_authorization, "disconnects users who lose access"),
    ]
    .into_iter()
    .filter_map(|(on, l)| on.then_some(l))
    .collect();
    let _ = write!(
        body,
        "<section><h2>Profile</h2><dl><dt>Methods</dt><dd>{}</dd><dt>MFA</dt><dd>{}</dd><dt>Realm</dt><dd>{}</dd><dt>Options</dt><dd>{}</dd>\
         <dt>Created</dt><dd>{}</dd><dt>Changed</dt><dd>{}</dd><dt>Id</dt><dd><code>{}</code></dd></dl></section>",
        esc(&methods_text(&p)),
        esc(mfa_label(p.mfa)),
        esc(&realm_text(&p.realm)),
        if options.is_empty() {
            "none".to_string()
        } else {
            esc(&options.join(", "))
        },
        html::when(&p.created_at),
        html::when(&p.updated_at),
        p.id,
    );
    body.push_str(&groups_section(c, admin, &p));
    body.push_str(&sessions_section(
        c,
        &SessionQuery {
            profile: Some(p.id.clone()),
            user: None,
        },
        true,
    ));
    if write {
        let _ = write!(
            body,
            "<section><h2>Settings</h2><form method=\"post\" action=\"/console/radius/{id}\" class=\"record\">{}<button>Save changes</button></form></section>\
             <section><h2>Rotate the shared secret</h2><p>The old secret stops working at once: change it on every access point of this profile.</p>\
             <form method=\"post\" action=\"/console/radius/{id}/secret\" class=\"record\">{}{}<button>Rotate secret</button></form></section>\
             <section><h2>Delete</h2><p><a class=\"button danger\" href=\"/console/radius/{id}/delete\">Delete this profile</a></p></section>",
            profile_form(admin, Some(&p), values, errors),
            admin.csrf_field(),
            secret_field("New shared secret", errors),
            id = p.id,
        );
    }
    let mut r = html::page(admin, "/console/radius", &p.name, &body);
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
        return not_found(&admin);
    };
    let message = match q.get("done").map(String::as_str) {
        Some("saved") => html::notice(true, "Changes saved."),
        Some("unbound") => html::notice(true, "Group unbound."),
        _ => String::new(),
    };
    detail_page(&c, &admin, &id, &[], &FormErrors::default(), &message, None)
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
        return not_found(&admin);
    };
    let networks = match parse_networks(field(&fields, "networks")) {
        Ok(n) => n,
        Err(e) => return detail_page(&c, &admin, &id, &fields, &e, "", None),
    };
    let patch = RadiusServerPatch {
        name: Some(field(&fields, "name").trim().to_string()),
        networks: Some(networks),
        secret: None,
        mfa: Some(parse_mfa(field(&fields, "mfa"))),
        methods: Some(parse_methods(&fields)),
        allow_missing_message_authenticator: Some(checked(
            &fields,
            "allow_missing_message_authenticator",
        )),
        otp_append: Some(checked(&fields, "otp_append")),
        reject_reply_message: Some(checked(&fields, "reject_reply_message")),
        dynamic_authorization: Some(checked(&fields, "dynamic_authorization")),
        coa_port: Some(parse_coa_port(&fields)),
        radsec_client: Some(Some(field(&fields, "radsec_client").to_string())),
        realm: Some(parse_realm(&fields)),
    };
    match c.dir.update_radius_server(&admin.actor, &id, patch).await {
        Ok(_) => html::redirect(&format!("/console/radius/{id}?done=saved")),
        Err(e) => detail_page(&c, &admin, &id, &fields, &html::form_errors(&e), "", None),
    }
}

/// A new shared secret (typed or generated), shown once in the answer.
pub async fn rotate(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let Some(id) = Id::parse(&id) else {
        return not_found(&admin);
    };
    let secret = chosen_secret(&fields);
    let patch = RadiusServerPatch {
        secret: Some(secret.clone()),
        ..RadiusServerPatch::default()
    };
    match c.dir.update_radius_server(&admin.actor, &id, patch).await {
        Ok(_) => detail_page(
            &c,
            &admin,
            &id,
            &[],
            &FormErrors::default(),
            &html::notice(true, "Secret rotated."),
            Some(&secret),
        ),
        Err(e) => detail_page(&c, &admin, &id, &[], &html::form_errors(&e), "", None),
    }
}

/// Unbind one group from the profile (binding is done on the group's page).
pub async fn unbind(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = admin.csrf_refusal(&c, &fields) {
        return r;
    }
    let (Some(id), Some(group)) = (Id::parse(&id), Id::parse(field(&fields, "group"))) else {
        return not_found(&admin);
    };
    match c
        .dir
        .unbind_group(&admin.actor, &group, Resource::Radius(id.clone()))
        .await
    {
        Ok(()) => html::redirect(&format!("/console/radius/{id}?done=unbound")),
        Err(e) => detail_page(
            &c,
            &admin,
            &id,
            &[],
            &FormErrors::default(),
            &html::notice(false, &e.to_string()),
            None,
        ),
    }
}

pub async fn delete_page(
    State(c): State<Console>,
    admin: SignedIn,
    Path(id): Path<String>,
) -> Response {
    let Some(p) = Id::parse(&id).and_then(|id| c.dir.get_radius_server(&id).ok()) else {
        return not_found(&admin);
    };
    let body = format!(
        "<p class=\"crumbs\"><a href=\"/console/radius\">RADIUS</a> / <a href=\"/console/radius/{id}\">{name}</a> /</p>\
         <h1>Delete {name}?</h1><p>Requests from <code>{nets}</code> will get no answer, and its group bindings ({n}) \
         are removed. This cannot be undone.</p>\
         <form method=\"post\" action=\"/console/radius/{id}/delete\">{csrf}<button class=\"danger\">Delete profile</button> \
         <a href=\"/console/radius/{id}\">Cancel</a></form>",
        id = p.id,
        name = esc(&p.name),
        nets = esc(&networks_text(&p, ", ")),
        n = p.bound_groups.len(),
        csrf = admin.csrf_field(),
    );
    html::page(&admin, "/console/radius", "Delete RADIUS profile", &body)
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
        return not_found(&admin);
    };
    match c.dir.delete_radius_server(&admin.actor, &id).await {
        Ok(()) => html::redirect("/console/radius"),
        Err(e) => detail_page(
            &c,
            &admin,
            &id,
            &[],
            &FormErrors::default(),
            &html::notice(false, &e.to_string()),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_take_addresses_and_prefixes_one_per_line_or_comma() {
        let nets = parse_networks("192.0.2.10\n10.0.0.0/8, 2001:db8::/32")
            .unwrap_or_else(|e| panic!("{:?}", e.0));
        let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["192.0.2.10/32", "10.0.0.0/8", "2001:db8::/32"]);
        let e = parse_networks("192.0.2.300").unwrap_err();
        assert!(e.of("networks").unwrap().contains("192.0.2.300"));
    }

    #[test]
    fn the_public_url_names_the_host_for_access_points() {
        assert_eq!(url_host("https://id.example.com:8443"), "id.example.com");
        assert_eq!(url_host("https://[2001:db8::1]:8443"), "2001:db8::1");
        assert_eq!(url_host("http://10.0.0.5"), "10.0.0.5");
    }

    #[test]
    fn methods_keep_the_order_eap_proposes_them_in() {
        let f = |v: &str| ("method".to_string(), v.to_string());
        let got = parse_methods(&[f("eap_ttls_pap"), f("pap"), f("nonsense")]);
        assert_eq!(got, [RadiusMethod::Pap, RadiusMethod::EapTtlsPap]);
    }

    #[test]
    fn the_realm_fields_become_a_rule_and_an_unknown_mode_keeps_names() {
        let f = |k: &str, v: &str| (k.to_string(), v.to_string());
        let got = parse_realm(&[
            f("realm_mode", "require"),
            f("realms", " corp.example, CORP\nother "),
        ]);
        assert_eq!(got.mode, RealmMode::Require);
        assert_eq!(got.realms, ["corp.example", "CORP", "other"]);
        assert_eq!(realm_text(&got), "require: corp.example, CORP, other");
        let got = parse_realm(&[f("realm_mode", "nonsense")]);
        assert_eq!(got, RealmRule::default());
        assert_eq!(realm_text(&got), "keep");
    }
}
