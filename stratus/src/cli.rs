//! The admin CLI: every command is one or more calls to the admin API of a running server.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Where the server is and how to authenticate.
#[derive(Args, Clone)]
pub struct Connection {
    /// Base URL of the server.
    #[arg(
        long,
        env = "STRATUS_URL",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    url: String,
    /// API key.
    #[arg(long, env = "STRATUS_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// CA certificate to trust (default: data/certs/ca.pem when present).
    #[arg(long, env = "STRATUS_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
}

/// The admin commands.
#[derive(Subcommand)]
pub enum Admin {
    /// Manage users.
    #[command(subcommand)]
    Users(Users),
    /// Manage user groups.
    #[command(subcommand)]
    Groups(Groups),
    /// Import users: `import FILE.csv` or `import csv FILE` (header `firstname,lastname,username,email,password`
    /// plus optional columns), `import ldif FILE` (an ldapsearch or slapcat dump of people and groups, with their
    /// password hashes; a `.ldif` file is taken as LDIF without the word).
    Import {
        /// The file, or the format (`csv`, `ldif`) followed by the file.
        first: String,
        file: Option<PathBuf>,
        /// Where to write the per-row results CSV.
        #[arg(long, default_value = "import-results.csv")]
        results: PathBuf,
    },
    /// Make an online backup of the running directory (a redb file; writes go on meanwhile). `stratus restore`
    /// brings it back.
    Backup {
        /// Where to write the backup.
        file: PathBuf,
    },
    /// Manage RADIUS server profiles (the NAS clients: access points, VPNs, switches).
    #[command(subcommand)]
    Radius(Radius),
    /// Manage SAML SSO applications (their IdP keys and SP settings).
    #[command(subcommand)]
    Apps(Apps),
    /// Query or export events.
    #[command(subcommand)]
    Events(Events),
    /// Outgoing mail: the queue and a test message.
    #[command(subcommand)]
    Mail(Mail),
    /// Conditional access policies: allow, deny or require MFA by group, source network and time.
    #[command(subcommand)]
    Policies(Policies),
    /// Named lists of networks that policies match sources against.
    #[command(subcommand, name = "ip-lists")]
    IpLists(IpLists),
    /// What the authentication path would decide for a user reaching a resource from a source at a time, step
    /// by step (assuming the right password).
    Explain {
        /// A user name, login name or e-mail address.
        user: String,
        /// `portal`, `ldap`, `radius:<name or id>` or `app:<name or id>`.
        #[arg(long, default_value = "portal")]
        resource: String,
        /// The source address (for RADIUS, the NAS's).
        #[arg(long)]
        ip: Option<String>,
        /// When, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
        /// Print the whole answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// NameID formats and signing targets of an SSO app, as the API names them.
const NAMEID_FORMATS: [&str; 4] = ["email", "persistent", "unspecified", "transient"];
const SIGN_TARGETS: [&str; 3] = ["assertion", "response", "both"];

#[derive(Subcommand)]
pub enum Apps {
    /// Add an app; Stratus makes its IdP key and certificate. Prints the app with its IdP metadata URL.
    Add {
        name: String,
        /// The SP's entity id (its Issuer).
        #[arg(long)]
        entity_id: String,
        /// An AssertionConsumerService URL (repeat for several; the first is the default).
        #[arg(long = "acs", required = true)]
        acs_urls: Vec<String>,
        #[arg(long, value_parser = NAMEID_FORMATS)]
        nameid_format: Option<String>,
        #[arg(long, value_parser = SIGN_TARGETS)]
        sign: Option<String>,
        /// An attribute sent to the app, `Name=source` with source email, firstname, lastname, username, groups or
        /// attribute:<custom> (repeat).
        #[arg(long = "attribute")]
        attributes: Vec<String>,
        /// Where IdP-initiated logins land.
        #[arg(long)]
        default_relay_state: Option<String>,
    },
    List,
    /// Fill an app's SP entity id, ACS URLs, SLO URL and certificate from the SP's metadata file.
    SpMetadata {
        app: String,
        file: PathBuf,
    },
    /// Add a new IdP key: published beside the active one, or with --activate signing at once.
    RotateKey {
        app: String,
        #[arg(long)]
        activate: bool,
    },
    /// Make a published key the signing key.
    ActivateKey {
        app: String,
        key: String,
    },
    Delete {
        app: String,
    },
}

/// Authentication methods of a RADIUS profile, as the API names them.
const RADIUS_METHODS: [&str; 6] = [
    "pap",
    "peap_mschapv2",
    "eap_ttls_pap",
    "eap_ttls_mschapv2",
    "eap_tls",
    "mschapv2",
];

/// Realm rules of a RADIUS profile, as the API names them.
const RADIUS_REALM_MODES: [&str; 3] = ["keep", "strip", "require"];

/// MFA modes of a RADIUS profile, as the API names them.
const RADIUS_MFA_MODES: [&str; 4] = [
    "off",
    "require_all",
    "require_all_except_enrolling",
    "require_enrolled_only",
];

#[derive(Subcommand)]
pub enum Radius {
    /// Add a profile: the NAS source networks and their shared secret.
    Add {
        name: String,
        /// Source address or network of the NAS (repeat for several).
        #[arg(long = "network", required = true)]
        networks: Vec<String>,
        /// Shared secret (16–128 characters).
        #[arg(long, env = "STRATUS_RADIUS_SECRET", hide_env_values = true)]
        secret: String,
        #[arg(long, default_value = "off", value_parser = RADIUS_MFA_MODES)]
        mfa: String,
        /// Accept `password,123456` from NAS that cannot answer a challenge.
        #[arg(long)]
        otp_append: bool,
        /// Allowed method, in order of preference (repeat; default pap).
        #[arg(long = "method", value_parser = RADIUS_METHODS)]
        methods: Vec<String>,
        /// How `user@realm` / `REALM\user` in User-Name is read.
        #[arg(long, default_value = "keep", value_parser = RADIUS_REALM_MODES)]
        realm_mode: String,
        /// With `--realm-mode require`: an accepted realm (repeat; none: any realm).
        #[arg(long = "realm")]
        realms: Vec<String>,
    },
    List,
    /// Change a profile's MFA mode, networks or secret.
    Set {
        server: String,
        #[arg(long, value_parser = RADIUS_MFA_MODES)]
        mfa: Option<String>,
        #[arg(long = "network")]
        networks: Vec<String>,
        #[arg(long, env = "STRATUS_RADIUS_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[arg(long)]
        otp_append: Option<bool>,
        /// Allowed methods, replacing the current list (repeat).
        #[arg(long = "method", value_parser = RADIUS_METHODS)]
        methods: Vec<String>,
        /// Disconnect (RFC 5176) the open sessions of users who lose access to this profile.
        #[arg(long)]
        dynamic_authorization: Option<bool>,
        /// The NAS clients' Dynamic Authorization (CoA/Disconnect) UDP port.
        #[arg(long)]
        coa_port: Option<u16>,
        /// The RadSec client's certificate DNS name (else CN); an empty value removes it.
        #[arg(long)]
        radsec_client: Option<String>,
        /// How `user@realm` / `REALM\user` in User-Name is read (the realm list is replaced too).
        #[arg(long, value_parser = RADIUS_REALM_MODES)]
        realm_mode: Option<String>,
        /// With `--realm-mode require`: an accepted realm (repeat; none: any realm).
        #[arg(long = "realm", requires = "realm_mode")]
        realms: Vec<String>,
    },
    Delete {
        server: String,
    },
    /// Open accounting sessions (tab-separated: user, profile, NAS address, session id, framed IP, started).
    Sessions {
        /// A username or user id.
        #[arg(long)]
        user: Option<String>,
        /// A profile name or id.
        #[arg(long)]
        profile: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum Users {
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        firstname: String,
        #[arg(long, default_value = "")]
        lastname: String,
        /// Initial password (checked against the policy); omit for a pending password.
        #[arg(long, env = "STRATUS_NEW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// A service account that may search LDAP ("Bind DN").
        #[arg(long)]
        ldap_bind_dn: bool,
    },
    List {
        #[arg(long)]
        search: Option<String>,
    },
    Show {
        user: String,
    },
    SetPassword {
        user: String,
        #[arg(long, env = "STRATUS_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
    Suspend {
        user: String,
    },
    Activate {
        user: String,
    },
    Unlock {
        user: String,
    },
    /// Send a user whose password is pending the link that sets it: mailed when a mail server is configured,
    /// else printed (with its expiry) for you to hand over.
    Activation {
        user: String,
        /// Print the link instead of mailing it, even when a mail server is configured.
        #[arg(long)]
        hand_over: bool,
    },
    Delete {
        user: String,
    },
}

#[derive(Subcommand)]
pub enum Groups {
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Create a Linux group with this name.
        #[arg(long)]
        linux_name: Option<String>,
        /// GID of the Linux group (allocated when absent).
        #[arg(long)]
        gid: Option<u32>,
        #[arg(long)]
        samba: bool,
    },
    List,
    AddMember {
        group: String,
        user: String,
    },
    RemoveMember {
        group: String,
        user: String,
    },
    /// Bind to `ldap`, `radius:{id or name}`, `app:{id}` or `directory:{id}`.
    Bind {
        group: String,
        resource: String,
    },
    Unbind {
        group: String,
        resource: String,
    },
    /// Add a RADIUS reply attribute, e.g. `Tunnel-Private-Group-Id 42`.
    SetReplyAttribute {
        group: String,
        attribute: String,
        value: String,
    },
}

#[derive(Subcommand)]
pub enum Events {
    Query {
        #[arg(long)]
        service: Option<String>,
        #[arg(long = "type")]
        event_type: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// All matching events as JSON lines.
    Export {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        since: Option<String>,
        /// File to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum Mail {
    /// Messages waiting to be sent or retried, oldest first (tab-separated: purpose, to, attempts, next attempt,
    /// last error); never their text.
    Queue,
    /// Queue a test message to ADDRESS (needs a mail server: `[mail]` in stratus.toml).
    Test { address: String },
}

/// A failed CLI command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("server answered {status}: {message}")]
    Api { status: StatusCode, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    fn new(conn: &Connection) -> Result<Self, CliError> {
        let key = conn.api_key.clone().ok_or_else(|| {
            CliError::Usage("an API key is needed: --api-key or STRATUS_API_KEY".into())
        })?;
        let mut builder = reqwest::Client::builder();
        let ca = conn
            .ca_cert
            .clone()
            .or_else(|| Some(PathBuf::from("data/certs/ca.pem")).filter(|p| p.exists()));
        if let Some(path) = ca {
            let pem = std::fs::read(&path).map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
            let cert = reqwest::Certificate::from_pem(&pem)?;
            builder = builder.tls_certs_only([cert]);
        }
        Ok(Client {
            http: builder.build()?,
            base: format!("{}/api/v1", conn.url.trim_end_matches('/')),
            key,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(CliError::Api { status, message });
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        })
    }

    async fn user_id(&self, user: &str) -> Result<String, CliError> {
        if core_directory::Id::parse(user).is_some() {
            return Ok(user.to_string());
        }
        let page = self
            .call(
                Method::GET,
                &format!("/users?search={}&limit=1000", urlencode(user)),
                None,
            )
            .await?;
        page["users"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| {
                u["username"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(user))
            })
            .and_then(|u| u["id"].as_str().map(str::to_string))
            .ok_or_else(|| CliError::Usage(format!("no user `{user}`")))
    }

    async fn group_id(&self, group: &str) -> Result<String, CliError> {
        if core_directory::Id::parse(group).is_some() {
            return Ok(group.to_string());
        }
        let all = self.call(Method::GET, "/groups", None).await?;
        all.as_array()
            .into_iter()
            .flatten()
            .find(|g| {
                g["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(group))
            })
            .and_then(|g| g["id"].as_str().map(str::to_string))
            .ok_or_else(|| CliError::Usage(format!("no group `{group}`")))
    }

    async fn radius_id(&self, server: &str) -> Result<String, CliError> {
        if core_directory::Id::parse(server).is_some() {
            return Ok(server.to_string());
        }
        let all = self.call(Method::GET, "/radius-servers", None).await?;
        all.as_array()
            .into_iter()
            .flatten()
            .find(|r| {
                r["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(server))
            })
            .and_then(|r| r["id"].as_str().map(str::to_string))
            .ok_or_else(|| CliError::Usage(format!("no RADIUS server `{server}`")))
    }

    async fn app_id(&self, app: &str) -> Result<String, CliError> {
        if core_directory::Id::parse(app).is_some() {
            return Ok(app.to_string());
        }
        let all = self.call(Method::GET, "/apps", None).await?;
        all.as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                a["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(app))
            })
            .and_then(|a| a["id"].as_str().map(str::to_string))
            .ok_or_else(|| CliError::Usage(format!("no app `{app}`")))
    }

    /// A binding target with `radius:` followed by a profile name resolved to its id.
    async fn resource(&self, resource: &str) -> Result<String, CliError> {
        if let Some(server) = resource.strip_prefix("radius:") {
            return Ok(format!("radius:{}", self.radius_id(server).await?));
        }
        if let Some(app) = resource.strip_prefix("app:") {
            return Ok(format!("app:{}", self.app_id(app).await?));
        }
        Ok(resource.to_string())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub async fn run(conn: &Connection, cmd: Admin) -> Result<(), CliError> {
    let c = Client::new(conn)?;
    match cmd {
        Admin::Users(u) => users(&c, u).await,
        Admin::Groups(g) => groups(&c, g).await,
        Admin::Import {
            first,
            file,
            results,
        } => match (first.as_str(), file) {
            ("ldif", Some(file)) => import_ldif(&c, &file, &results).await,
            ("csv", Some(file)) => import(&c, &file, &results).await,
            (format, Some(_)) => Err(CliError::Usage(format!(
                "unknown import format `{format}`: csv or ldif"
            ))),
            (path, None) if path.to_ascii_lowercase().ends_with(".ldif") => {
                import_ldif(&c, &PathBuf::from(path), &results).await
            }
            (path, None) => import(&c, &PathBuf::from(path), &results).await,
        },
        Admin::Backup { file } => backup(&c, &file).await,
        Admin::Radius(r) => radius(&c, r).await,
        Admin::Apps(a) => apps(&c, conn, a).await,
        Admin::Events(e) => events(&c, e).await,
        Admin::Mail(m) => mail(&c, m).await,
        Admin::Policies(p) => policies(&c, p).await,
        Admin::IpLists(l) => ip_lists(&c, l).await,
        Admin::Explain {
            user,
            resource,
            ip,
            at,
            json,
        } => explain(&c, &user, &resource, ip.as_deref(), at.as_deref(), json).await,
    }
}

async fn radius(c: &Client, cmd: Radius) -> Result<(), CliError> {
    let v = match cmd {
        Radius::Add {
            name,
            networks,
            secret,
            mfa,
            otp_append,
            methods,
            realm_mode,
            realms,
        } => {
            let methods = if methods.is_empty() {
                vec!["pap".to_string()]
            } else {
                methods
            };
            let body = json!({"name": name, "networks": networks, "secret": secret, "mfa": mfa,
                              "otp_append": otp_append, "methods": methods,
                              "realm": {"mode": realm_mode, "realms": realms}});
            c.call(Method::POST, "/radius-servers", Some(body)).await?
        }
        Radius::List => {
            let all = c.call(Method::GET, "/radius-servers", None).await?;
            for r in all.as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{}",
                    r["id"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or(""),
                    r["networks"],
                    r["mfa"].as_str().unwrap_or(""),
                );
            }
            return Ok(());
        }
        Radius::Set {
            server,
            mfa,
            networks,
            secret,
            otp_append,
            methods,
            dynamic_authorization,
            coa_port,
            radsec_client,
            realm_mode,
            realms,
        } => {
            let id = c.radius_id(&server).await?;
            let mut body = json!({});
            if let Some(m) = mfa {
                body["mfa"] = json!(m);
            }
            if !networks.is_empty() {
                body["networks"] = json!(networks);
            }
            if let Some(s) = secret {
                body["secret"] = json!(s);
            }
            if let Some(o) = otp_append {
                body["otp_append"] = json!(o);
            }
            if !methods.is_empty() {
                body["methods"] = json!(methods);
            }
            if let Some(d) = dynamic_authorization {
                body["dynamic_authorization"] = json!(d);
            }
            if let Some(p) = coa_port {
                body["coa_port"] = json!(p);
            }
            if let Some(r) = radsec_client {
                body["radsec_client"] = if r.trim().is_empty() {
                    Value::Null
                } else {
                    json!(r)
                };
            }
            if let Some(mode) = realm_mode {
                body["realm"] = json!({"mode": mode, "realms": realms});
            }
            c.call(Method::PATCH, &format!("/radius-servers/{id}"), Some(body))
                .await?
        }
        Radius::Sessions { user, profile } => {
            let mut query = Vec::new();
            if let Some(u) = user {
                query.push(format!("user={}", urlencode(&u)));
            }
            if let Some(p) = profile {
                query.push(format!("profile={}", c.radius_id(&p).await?));
            }
            let all = c
                .call(
                    Method::GET,
                    &format!("/radius-sessions?{}", query.join("&")),
                    None,
                )
                .await?;
            for x in all.as_array().into_iter().flatten() {
                let text = |k: &str| x[k].as_str().unwrap_or("").to_string();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    text("username"),
                    text("profile"),
                    text("nas_address"),
                    text("session_id"),
                    text("framed_ip"),
                    text("started_at"),
                );
            }
            return Ok(());
        }
        Radius::Delete { server } => {
            let id = c.radius_id(&server).await?;
            c.call(Method::DELETE, &format!("/radius-servers/{id}"), None)
                .await?;
            return Ok(());
        }
    };
    print(&v);
    Ok(())
}

async fn apps(c: &Client, conn: &Connection, cmd: Apps) -> Result<(), CliError> {
    let metadata_url = |id: &str| format!("{}/saml/{id}/metadata", conn.url.trim_end_matches('/'));
    let v = match cmd {
        Apps::Add {
            name,
            entity_id,
            acs_urls,
            nameid_format,
            sign,
            attributes,
            default_relay_state,
        } => {
            let mut mappings = Vec::new();
            for a in attributes {
                let (n, src) = a.split_once('=').ok_or_else(|| {
                    CliError::Usage(format!("--attribute `{a}` must be Name=source"))
                })?;
                mappings.push(json!({"name": n, "source": src}));
            }
            let mut body = json!({"name": name, "sp_entity_id": entity_id, "acs_urls": acs_urls,
                                  "attributes": mappings});
            if let Some(f) = nameid_format {
                body["nameid_format"] = json!(f);
            }
            if let Some(t) = sign {
                body["sign"] = json!(t);
            }
            if let Some(r) = default_relay_state {
                body["default_relay_state"] = json!(r);
            }
            let mut app = c.call(Method::POST, "/apps", Some(body)).await?;
            let id = app["id"].as_str().unwrap_or_default().to_string();
            app["idp_metadata_url"] = json!(metadata_url(&id));
            app
        }
        Apps::List => {
            let all = c.call(Method::GET, "/apps", None).await?;
            for a in all.as_array().into_iter().flatten() {
                let id = a["id"].as_str().unwrap_or("");
                let expires = a["idp_keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|k| k["status"] == "active")
                    .and_then(|k| k["not_after"].as_str())
                    .unwrap_or("");
                println!(
                    "{id}\t{}\t{}\tkey expires {expires}\t{}",
                    a["name"].as_str().unwrap_or(""),
                    a["sp_entity_id"].as_str().unwrap_or(""),
                    metadata_url(id),
                );
            }
            return Ok(());
        }
        Apps::SpMetadata { app, file } => {
            let id = c.app_id(&app).await?;
            let xml = std::fs::read(&file).map_err(|source| CliError::Io {
                path: file.display().to_string(),
                source,
            })?;
            let resp = c
                .http
                .put(format!("{}/apps/{id}/sp-metadata", c.base))
                .bearer_auth(&c.key)
                .header("content-type", "application/samlmetadata+xml")
                .body(xml)
                .send()
                .await?;
            let status = resp.status();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(CliError::Api {
                    status,
                    message: v["error"]["message"].as_str().unwrap_or("").to_string(),
                });
            }
            v
        }
        Apps::RotateKey { app, activate } => {
            let id = c.app_id(&app).await?;
            c.call(
                Method::POST,
                &format!("/apps/{id}/idp-keys"),
                Some(json!({"activate": activate})),
            )
            .await?
        }
        Apps::ActivateKey { app, key } => {
            let id = c.app_id(&app).await?;
            c.call(
                Method::POST,
                &format!("/apps/{id}/idp-keys/{key}/activate"),
                None,
            )
            .await?
        }
        Apps::Delete { app } => {
            let id = c.app_id(&app).await?;
            c.call(Method::DELETE, &format!("/apps/{id}"), None).await?;
            return Ok(());
        }
    };
    print(&v);
    Ok(())
}

async fn users(c: &Client, cmd: Users) -> Result<(), CliError> {
    let v = match cmd {
        Users::Add {
            username,
            email,
            firstname,
            lastname,
            password,
            ldap_bind_dn,
        } => {
            let body = json!({"username": username, "email": email, "firstname": firstname,
                              "lastname": lastname, "password": password, "ldap_bind_dn": ldap_bind_dn});
            c.call(Method::POST, "/users", Some(body)).await?
        }
        Users::List { search } => {
            let q = search
                .map(|s| format!("?search={}", urlencode(&s)))
                .unwrap_or_default();
            let page = c.call(Method::GET, &format!("/users{q}"), None).await?;
            for u in page["users"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u["id"].as_str().unwrap_or(""),
                    u["username"].as_str().unwrap_or(""),
                    u["email"].as_str().unwrap_or(""),
                    u["state"].as_str().unwrap_or(""),
                    u["password_status"].as_str().unwrap_or("")
                );
            }
            return Ok(());
        }
        Users::Show { user } => {
            c.call(
                Method::GET,
                &format!("/users/{}", c.user_id(&user).await?),
                None,
            )
            .await?
        }
        Users::SetPassword { user, password } => {
            let id = c.user_id(&user).await?;
            c.call(
                Method::POST,
                &format!("/users/{id}/password"),
                Some(json!({"password": password})),
            )
            .await?
        }
        Users::Suspend { user } => {
            let id = c.user_id(&user).await?;
            c.call(
                Method::PATCH,
                &format!("/users/{id}"),
                Some(json!({"state": "suspended"})),
            )
            .await?
        }
        Users::Activate { user } => {
            let id = c.user_id(&user).await?;
            c.call(
                Method::PATCH,
                &format!("/users/{id}"),
                Some(json!({"state": "active"})),
            )
            .await?
        }
        Users::Unlock { user } => {
            let id = c.user_id(&user).await?;
            c.call(Method::POST, &format!("/users/{id}/unlock"), None)
                .await?
        }
        Users::Activation { user, hand_over } => {
            let id = c.user_id(&user).await?;
            return activation(c, &id, hand_over).await;
        }
        Users::Delete { user } => {
            let id = c.user_id(&user).await?;
            c.call(Method::DELETE, &format!("/users/{id}"), None)
                .await?;
            println!("deleted {id}");
            return Ok(());
        }
    };
    print(&v);
    Ok(())
}

/// Ask for an activation link and say where it went: the user's mailbox, or this terminal.
async fn activation(c: &Client, id: &str, hand_over: bool) -> Result<(), CliError> {
    let sent = c
        .call(
            Method::POST,
            &format!("/users/{id}/activation"),
            Some(json!({"hand_over": hand_over})),
        )
        .await?;
    let expires = to_the_second(sent["expires_at"].as_str().unwrap_or(""));
    match sent["link"].as_str() {
        Some(link) => {
            println!("{link}");
            println!("not mailed: hand it to the user (it works once, until {expires})");
        }
        None => {
            let user = c.call(Method::GET, &format!("/users/{id}"), None).await?;
            println!(
                "activation link mailed to {} (valid until {expires})",
                shown(user["email"].as_str().unwrap_or(""))
            );
        }
    }
    Ok(())
}

/// An RFC 3339 time from the API, shortened to the second (as it came when it does not parse).
fn to_the_second(time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(time).map_or_else(
        |_| time.to_string(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        },
    )
}

async fn mail(c: &Client, cmd: Mail) -> Result<(), CliError> {
    match cmd {
        Mail::Queue => {
            let queue = c.call(Method::GET, "/mail/queue", None).await?;
            if queue["enabled"] != true {
                eprintln!("no mail server is configured ([mail] in stratus.toml): nothing is sent");
            }
            for m in queue["messages"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    m["purpose"].as_str().unwrap_or(""),
                    shown(m["to"].as_str().unwrap_or("")),
                    m["attempts"],
                    to_the_second(m["next_attempt_at"].as_str().unwrap_or("")),
                    shown(m["last_error"].as_str().unwrap_or(""))
                );
            }
        }
        Mail::Test { address } => {
            c.call(Method::POST, "/mail/test", Some(json!({"to": address})))
                .await?;
            println!("test message to {} queued", shown(&address));
        }
    }
    Ok(())
}

async fn groups(c: &Client, cmd: Groups) -> Result<(), CliError> {
    match cmd {
        Groups::Add {
            name,
            description,
            linux_name,
            gid,
            samba,
        } => {
            let linux = linux_name.map(|n| json!({"name": n, "gid": gid}));
            let body = json!({"name": name, "description": description, "linux_group": linux, "samba": samba});
            print(&c.call(Method::POST, "/groups", Some(body)).await?);
        }
        Groups::List => {
            for g in c
                .call(Method::GET, "/groups", None)
                .await?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{}\t{}\t{} members",
                    g["id"].as_str().unwrap_or(""),
                    g["name"].as_str().unwrap_or(""),
                    g["member_count"]
                );
            }
        }
        Groups::AddMember { group, user } => {
            let (g, u) = (c.group_id(&group).await?, c.user_id(&user).await?);
            c.call(Method::PUT, &format!("/groups/{g}/members/{u}"), None)
                .await?;
        }
        Groups::RemoveMember { group, user } => {
            let (g, u) = (c.group_id(&group).await?, c.user_id(&user).await?);
            c.call(Method::DELETE, &format!("/groups/{g}/members/{u}"), None)
                .await?;
        }
        Groups::Bind { group, resource } => {
            let g = c.group_id(&group).await?;
            let resource = c.resource(&resource).await?;
            c.call(
                Method::PUT,
                &format!("/groups/{g}/bindings/{resource}"),
                None,
            )
            .await?;
        }
        Groups::Unbind { group, resource } => {
            let g = c.group_id(&group).await?;
            let resource = c.resource(&resource).await?;
            c.call(
                Method::DELETE,
                &format!("/groups/{g}/bindings/{resource}"),
                None,
            )
            .await?;
        }
        Groups::SetReplyAttribute {
            group,
            attribute,
            value,
        } => {
            let g = c.group_id(&group).await?;
            let current = c.call(Method::GET, &format!("/groups/{g}"), None).await?;
            let mut reply: Vec<Value> = current["radius_reply"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            reply.retain(|a| a["attribute"].as_str() != Some(attribute.as_str()));
            reply.push(json!({"attribute": attribute, "value": value}));
            print(
                &c.call(
                    Method::PATCH,
                    &format!("/groups/{g}"),
                    Some(json!({"radius_reply": reply})),
                )
                .await?,
            );
        }
    }
    Ok(())
}

/// Split CSV text into records at line ends outside quotes.
fn records(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, b) in body.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => {
                out.push(&body[start..=i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

/// Send one piece of an import; the answer's JSON, or the API's refusal (the progress bar stops there).
async fn post_piece(
    c: &Client,
    path: &str,
    content_type: &str,
    body: String,
    bar: &ProgressBar,
) -> Result<Value, CliError> {
    let resp = c
        .http
        .post(format!("{}{path}", c.base))
        .bearer_auth(&c.key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        bar.abandon();
        return Err(CliError::Api {
            status,
            message: v["error"]["message"]
                .as_str()
                .unwrap_or("import failed")
                .to_string(),
        });
    }
    Ok(v)
}

/// Rows sent per request, so the progress bar moves and no request is huge.
const IMPORT_CHUNK: usize = 500;

async fn import(c: &Client, file: &PathBuf, results: &PathBuf) -> Result<(), CliError> {
    let io = |path: &PathBuf| {
        let path = path.display().to_string();
        move |source| CliError::Io { path, source }
    };
    let bytes = std::fs::read(file).map_err(io(file))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::Usage("the CSV file is not UTF-8".into()))?;
    let recs = records(&text);
    let Some((header, rows)) = recs.split_first() else {
        return Err(CliError::Usage("the CSV file is empty".into()));
    };
    let bar = ProgressBar::new(rows.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {elapsed_precise}")
    {
        bar.set_style(style);
    }
    let mut out = String::from("line,firstname,lastname,email,username,result\r\n");
    let (mut imported, mut failed) = (0u64, 0u64);
    for (n, chunk) in rows.chunks(IMPORT_CHUNK).enumerate() {
        let body = format!("{}{}", header, chunk.concat());
        let v = post_piece(c, "/import/users", "text/csv", body, &bar).await?;
        let offset = n * IMPORT_CHUNK;
        for r in v["rows"].as_array().into_iter().flatten() {
            let line = r["line"].as_u64().unwrap_or(0) + offset as u64;
            let ok = r["status"] == "imported";
            if ok {
                imported += 1
            } else {
                failed += 1
            }
            let result = if ok {
                "Success: User Imported".to_string()
            } else {
                format!("Failed: {}", r["message"].as_str().unwrap_or(""))
            };
            let field = |k: &str| csv_field(r[k].as_str().unwrap_or(""));
            out.push_str(&format!(
                "{line},{},{},{},{},{}\r\n",
                field("firstname"),
                field("lastname"),
                field("email"),
                field("username"),
                csv_field(&result)
            ));
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    std::fs::write(results, out).map_err(io(results))?;
    println!(
        "imported {imported}, failed {failed}; results in {}",
        results.display()
    );
    Ok(())
}

async fn backup(c: &Client, file: &PathBuf) -> Result<(), CliError> {
    use tokio::io::AsyncWriteExt;
    let resp = c
        .http
        .post(format!("{}/backup", c.base))
        .bearer_auth(&c.key)
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        return Err(CliError::Api {
            status,
            message: v["error"]["message"]
                .as_str()
                .unwrap_or("backup failed")
                .to_string(),
        });
    }
    let checksum = resp
        .headers()
        .get("x-stratus-checksum")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let io = |source| CliError::Io {
        path: file.display().to_string(),
        source,
    };
    // Written beside the target and renamed at the end, so a failed download leaves no half file behind.
    let partial = file.with_extension("partial");
    let mut out = tokio::fs::File::create(&partial).await.map_err(io)?;
    let mut resp = resp;
    let mut size = 0usize;
    while let Some(chunk) = resp.chunk().await? {
        size += chunk.len();
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.sync_all().await.map_err(io)?;
    drop(out);
    tokio::fs::rename(&partial, file).await.map_err(io)?;
    println!(
        "backup written to {} ({size} bytes, records checksum {checksum})",
        file.display()
    );
    Ok(())
}

/// LDIF records sent per request.
const LDIF_CHUNK: usize = 500;

/// Cut an LDIF file into pieces of at most [`LDIF_CHUNK`] records, at blank lines (which end records; folded
/// lines start with a space and are never blank): (first line number, text) each.
fn ldif_chunks(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut start_line, mut records, mut in_record) = (0usize, 1usize, 0usize, false);
    let mut pos = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        pos += line.len();
        let blank = line.trim().is_empty();
        if !blank && !line.starts_with('#') && !in_record {
            in_record = true;
            records += 1;
        }
        if blank {
            in_record = false;
            if records >= LDIF_CHUNK {
                out.push((start_line, &text[start..pos]));
                (start, start_line, records) = (pos, i + 2, 0);
            }
        }
    }
    if start < text.len() && !text[start..].trim().is_empty() {
        out.push((start_line, &text[start..]));
    }
    out
}

async fn import_ldif(c: &Client, file: &PathBuf, results: &PathBuf) -> Result<(), CliError> {
    let io = |path: &PathBuf| {
        let path = path.display().to_string();
        move |source| CliError::Io { path, source }
    };
    let bytes = std::fs::read(file).map_err(io(file))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::Usage(
            "the LDIF file is not UTF-8 (non-UTF-8 values must be base64, `attr:: …`)".into(),
        )
    })?;
    let chunks = ldif_chunks(&text);
    let passes = ["groups", "users", "members"];
    let bar = ProgressBar::new((chunks.len() * passes.len()) as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {msg} {pos}/{len} pieces  {elapsed_precise}")
    {
        bar.set_style(style);
    }
    let mut out = String::from("line,dn,kind,result\r\n");
    let (mut users, mut groups, mut failed) = (0u64, 0u64, 0u64);
    for pass in passes {
        bar.set_message(pass);
        for (first_line, chunk) in &chunks {
            let path = format!("/import/ldif?pass={pass}");
            let body = chunk.to_string();
            let v = post_piece(c, &path, "text/plain; charset=utf-8", body, &bar).await?;
            for r in v["rows"].as_array().into_iter().flatten() {
                let line = r["line"].as_u64().unwrap_or(0) + *first_line as u64 - 1;
                let st = r["status"].as_str().unwrap_or("");
                match (st, r["kind"].as_str()) {
                    ("imported", Some("user")) => users += 1,
                    ("imported", Some("group")) => groups += 1,
                    ("failed", _) => failed += 1,
                    _ => {}
                }
                let result = format!("{}: {}", st, r["message"].as_str().unwrap_or(""));
                out.push_str(&format!(
                    "{line},{},{},{}\r\n",
                    csv_field(r["dn"].as_str().unwrap_or("")),
                    csv_field(r["kind"].as_str().unwrap_or("")),
                    csv_field(&result)
                ));
            }
            bar.inc(1);
        }
    }
    bar.finish();
    std::fs::write(results, out).map_err(io(results))?;
    println!(
        "imported {users} users and {groups} groups, failed {failed}; results in {}",
        results.display()
    );
    Ok(())
}

fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn events(c: &Client, cmd: Events) -> Result<(), CliError> {
    match cmd {
        Events::Query {
            service,
            event_type,
            user,
            since,
            limit,
        } => {
            let mut q = vec![format!("limit={limit}")];
            for (k, v) in [
                ("service", service),
                ("type", event_type),
                ("user", user),
                ("since", since),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", urlencode(&v)));
                }
            }
            let page = c
                .call(Method::GET, &format!("/events?{}", q.join("&")), None)
                .await?;
            for e in page["events"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    e["time"].as_str().unwrap_or(""),
                    e["service"].as_str().unwrap_or(""),
                    e["type"].as_str().unwrap_or(""),
                    if e["success"] == true { "ok" } else { "FAIL" },
                    shown(e["username"].as_str().or(e["actor"].as_str()).unwrap_or("")),
                    shown(e["reason"].as_str().unwrap_or(""))
                );
            }
        }
        Events::Export {
            service,
            since,
            out,
        } => {
            let mut q = Vec::new();
            for (k, v) in [("service", service), ("since", since)] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", urlencode(&v)));
                }
            }
            let resp = c
                .http
                .get(format!("{}/events/export?{}", c.base, q.join("&")))
                .bearer_auth(&c.key)
                .send()
                .await?;
            let status = resp.status();
            let text = resp.text().await?;
            if !status.is_success() {
                return Err(CliError::Api {
                    status,
                    message: text,
                });
            }
            match out {
                Some(p) => std::fs::write(&p, text).map_err(|source| CliError::Io {
                    path: p.display().to_string(),
                    source,
                })?,
                None => print!("{text}"),
            }
        }
    }
    Ok(())
}

/// Text recorded from a peer, fit for the admin's terminal: control characters (escape sequences, tabs that would
/// shift the columns, line breaks) are shown escaped, never acted on.
fn shown(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape =
                c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}');
            let out: Vec<char> = if escape {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            out
        })
        .collect()
}

const POLICY_ACTIONS: [&str; 3] = ["allow", "deny", "require_mfa"];

#[derive(Subcommand)]
pub enum Policies {
    /// Every policy, in evaluation order.
    List,
    /// Add a conditional access policy.
    Add(Box<PolicyAdd>),
    /// Switch a policy on or off, between report-only and enforced, or move it.
    Set {
        policy: String,
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(long)]
        report_only: Option<bool>,
        #[arg(long)]
        priority: Option<u32>,
    },
    Delete {
        policy: String,
    },
}

/// What `policies add` takes.
#[derive(Args)]
pub struct PolicyAdd {
    name: String,
    /// `portal`, `apps`, `app:<name or id>`, `radius`, `radius:<name or id>` or `ldap`.
    #[arg(long)]
    target: String,
    #[arg(long, value_parser = POLICY_ACTIONS)]
    action: String,
    /// Cover only members of this group (repeat; none: every user).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Never cover members of this group (repeat), e.g. a break-glass group.
    #[arg(long = "exclude-group")]
    excluded_groups: Vec<String>,
    /// Match only sources in this IP list (name or id; repeat: any of them).
    #[arg(long = "from")]
    source_in: Vec<String>,
    /// Match only sources in none of these IP lists (repeat).
    #[arg(long = "not-from")]
    source_not_in: Vec<String>,
    /// Days of a time window, e.g. `mon,tue,wed,thu,fri`.
    #[arg(long, requires_all = ["start", "end"])]
    days: Option<String>,
    /// Start of the window, HH:MM, in the organisation's time zone.
    #[arg(long, requires = "days")]
    start: Option<String>,
    /// End of the window, HH:MM (before the start: past midnight).
    #[arg(long, requires = "days")]
    end: Option<String>,
    /// Match outside the window instead of inside.
    #[arg(long, requires = "days")]
    outside: bool,
    /// Match only users whose TOTP is (true) or is not (false) active.
    #[arg(long)]
    mfa_enrolled: Option<bool>,
    /// Lower first (default: after every other policy).
    #[arg(long)]
    priority: Option<u32>,
    /// Record what the policy would do without enforcing it.
    #[arg(long)]
    report_only: bool,
    /// Create it switched off.
    #[arg(long)]
    disabled: bool,
    #[arg(long)]
    description: Option<String>,
}

#[derive(Subcommand)]
pub enum IpLists {
    List,
    /// Add a named list of addresses and networks (CIDR, IPv4 or IPv6).
    Add {
        name: String,
        #[arg(long = "network", required = true)]
        networks: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Replace a list's networks.
    Set {
        list: String,
        #[arg(long = "network", required = true)]
        networks: Vec<String>,
    },
    Delete {
        list: String,
    },
}

/// The id of a policy or IP list named by name or id, from a listing.
async fn named_id(c: &Client, path: &str, what: &str, name: &str) -> Result<String, CliError> {
    if core_directory::Id::parse(name).is_some() {
        return Ok(name.to_string());
    }
    let all = c.call(Method::GET, path, None).await?;
    all.as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|p| p["id"].as_str().map(str::to_string))
        .ok_or_else(|| CliError::Usage(format!("no {what} `{name}`")))
}

async fn policy_target(c: &Client, target: &str) -> Result<String, CliError> {
    match target {
        "portal" | "apps" | "radius" | "ldap" => Ok(target.to_string()),
        t => c.resource(t).await,
    }
}

async fn policies(c: &Client, cmd: Policies) -> Result<(), CliError> {
    match cmd {
        Policies::List => {
            let all = c.call(Method::GET, "/access-policies", None).await?;
            for p in all.as_array().into_iter().flatten() {
                let state = match (p["enabled"].as_bool(), p["report_only"].as_bool()) {
                    (Some(false), _) => "off",
                    (_, Some(true)) => "report-only",
                    _ => "on",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    p["priority"],
                    shown(p["name"].as_str().unwrap_or("")),
                    p["target"].as_str().unwrap_or(""),
                    p["action"].as_str().unwrap_or(""),
                    state,
                    p["id"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Policies::Add(add) => {
            let PolicyAdd {
                name,
                target,
                action,
                groups,
                excluded_groups,
                source_in,
                source_not_in,
                days,
                start,
                end,
                outside,
                mfa_enrolled,
                priority,
                report_only,
                disabled,
                description,
            } = *add;
            let mut g = Vec::new();
            for x in &groups {
                g.push(c.group_id(x).await?);
            }
            let mut xg = Vec::new();
            for x in &excluded_groups {
                xg.push(c.group_id(x).await?);
            }
            let mut si = Vec::new();
            for x in &source_in {
                si.push(named_id(c, "/ip-lists", "IP list", x).await?);
            }
            let mut sn = Vec::new();
            for x in &source_not_in {
                sn.push(named_id(c, "/ip-lists", "IP list", x).await?);
            }
            let time = days.map(|d| {
                json!({
                    "days": d.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect::<Vec<_>>(),
                    "start": start.unwrap_or_default(),
                    "end": end.unwrap_or_default(),
                    "outside": outside,
                })
            });
            let body = json!({
                "name": name,
                "description": description,
                "enabled": !disabled,
                "report_only": report_only,
                "priority": priority,
                "target": policy_target(c, &target).await?,
                "groups": g,
                "excluded_groups": xg,
                "source_in": si,
                "source_not_in": sn,
                "time": time,
                "mfa_enrolled": mfa_enrolled,
                "action": action,
            });
            print(&c.call(Method::POST, "/access-policies", Some(body)).await?);
            Ok(())
        }
        Policies::Set {
            policy,
            enabled,
            report_only,
            priority,
        } => {
            let id = named_id(c, "/access-policies", "policy", &policy).await?;
            let mut p = c
                .call(Method::GET, &format!("/access-policies/{id}"), None)
                .await?;
            if let Some(obj) = p.as_object_mut() {
                for k in ["id", "created_at", "updated_at"] {
                    obj.remove(k);
                }
                if let Some(v) = enabled {
                    obj.insert("enabled".into(), json!(v));
                }
                if let Some(v) = report_only {
                    obj.insert("report_only".into(), json!(v));
                }
                if let Some(v) = priority {
                    obj.insert("priority".into(), json!(v));
                }
            }
            print(
                &c.call(Method::PUT, &format!("/access-policies/{id}"), Some(p))
                    .await?,
            );
            Ok(())
        }
        Policies::Delete { policy } => {
            let id = named_id(c, "/access-policies", "policy", &policy).await?;
            c.call(Method::DELETE, &format!("/access-policies/{id}"), None)
                .await?;
            Ok(())
        }
    }
}

async fn ip_lists(c: &Client, cmd: IpLists) -> Result<(), CliError> {
    match cmd {
        IpLists::List => {
            let all = c.call(Method::GET, "/ip-lists", None).await?;
            for l in all.as_array().into_iter().flatten() {
                let nets: Vec<&str> = l["networks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{}\t{}\t{}",
                    shown(l["name"].as_str().unwrap_or("")),
                    nets.join(","),
                    l["id"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        IpLists::Add {
            name,
            networks,
            description,
        } => {
            let body = json!({"name": name, "networks": networks, "description": description});
            print(&c.call(Method::POST, "/ip-lists", Some(body)).await?);
            Ok(())
        }
        IpLists::Set { list, networks } => {
            let id = named_id(c, "/ip-lists", "IP list", &list).await?;
            let current = c
                .call(Method::GET, &format!("/ip-lists/{id}"), None)
                .await?;
            let body = json!({
                "name": current["name"],
                "description": current["description"],
                "networks": networks,
            });
            print(
                &c.call(Method::PUT, &format!("/ip-lists/{id}"), Some(body))
                    .await?,
            );
            Ok(())
        }
        IpLists::Delete { list } => {
            let id = named_id(c, "/ip-lists", "IP list", &list).await?;
            c.call(Method::DELETE, &format!("/ip-lists/{id}"), None)
                .await?;
            Ok(())
        }
    }
}

async fn explain(
    c: &Client,
    user: &str,
    resource: &str,
    ip: Option<&str>,
    at: Option<&str>,
    as_json: bool,
) -> Result<(), CliError> {
    let resource = policy_target(c, resource).await?;
    let mut path = format!(
        "/explain?user={}&resource={}",
        urlencode(user),
        urlencode(&resource)
    );
    if let Some(ip) = ip {
        path.push_str(&format!("&ip={}", urlencode(ip)));
    }
    if let Some(at) = at {
        path.push_str(&format!("&at={}", urlencode(at)));
    }
    let e = c.call(Method::GET, &path, None).await?;
    if as_json {
        print(&e);
        return Ok(());
    }
    for s in e["steps"].as_array().into_iter().flatten() {
        println!(
            "{} {:<9} {}",
            if s["passed"].as_bool() == Some(true) {
                "✓"
            } else {
                "✗"
            },
            s["step"].as_str().unwrap_or(""),
            shown(s["detail"].as_str().unwrap_or(""))
        );
        if s["step"] == "policies" {
            for p in e["policies"].as_array().into_iter().flatten() {
                let state = if p["enabled"] == false {
                    " (off)"
                } else if p["report_only"] == true {
                    " (report-only)"
                } else {
                    ""
                };
                let outcome = if p["covers"] == false {
                    "does not cover this resource".to_string()
                } else if p["matched"] == true {
                    format!("matches: {}", p["action"].as_str().unwrap_or(""))
                } else {
                    "does not match".to_string()
                };
                println!(
                    "    {} \"{}\"{state}: {outcome}",
                    p["priority"],
                    shown(p["name"].as_str().unwrap_or(""))
                );
                for cnd in p["conditions"].as_array().into_iter().flatten() {
                    println!(
                        "        {} {}",
                        if cnd["met"] == true { "✓" } else { "✗" },
                        shown(cnd["condition"].as_str().unwrap_or(""))
                    );
                }
            }
        }
    }
    println!("{}", shown(e["summary"].as_str().unwrap_or("")));
    Ok(())
}
