//! `stratus.toml` and `STRATUS_*` overrides. Every option is defined once here, with its default; the example
//! file `stratus.example.toml` documents the same set.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store, master key and certificates live.
    pub data_dir: PathBuf,
    /// Empty: the embedded store in the data directory. `postgres://user:password@host:port/db?sslmode=…`: a
    /// PostgreSQL database that several Stratus nodes share (they must share the master key too:
    /// `STRATUS_MASTER_KEY`, or the same `master.key`).
    pub store: String,
    /// Organisation name used on first start.
    pub org_name: String,
    /// The URL users, SPs and provisioning clients reach Stratus at (`https://sso.example.com`): it names the SAML
    /// entity ids and endpoints and SCIM `Location` / `meta.location`. Public URLs are built from it, never from a
    /// request's Host. Empty: the HTTP listener's bound address (`https://127.0.0.1:8443`).
    pub public_base_url: String,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub ldap: LdapConfig,
    pub radius: RadiusConfig,
    pub scim: ScimConfig,
    pub saml: SamlConfig,
    pub log: LogConfig,
    pub passwords: PasswordConfig,
    pub throttle: ThrottleConfig,
    pub mail: MailConfig,
}

/// Outgoing mail (activation, password reset, notices). Without `smtp_host`, nothing is sent and admins hand
/// activation links over themselves.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub smtp_host: String,
    /// 587 with STARTTLS, 465 with implicit TLS [default: by `tls`].
    pub smtp_port: u16,
    /// `starttls` (required), `implicit`, or `none` (only for a mail server on loopback).
    pub tls: String,
    pub username: String,
    /// Also `STRATUS_MAIL_PASSWORD`.
    pub password: String,
    /// The From address, e.g. `Acme IT <it@acme.example>`.
    pub from: String,
    /// A CA certificate (PEM file) to trust for the mail server instead of the system's roots.
    pub ca_file: String,
    /// Days an activation link works.
    pub activation_days: i64,
    /// Minutes a password-reset link works.
    pub reset_minutes: i64,
    /// Days before a password expires on which a reminder goes out.
    pub expiry_reminder_days: Vec<i64>,
    /// Seconds before a failed delivery is tried again (doubling after each failure, at most 6 hours).
    pub retry_seconds: i64,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        let d = core_directory::directory::MailSettings::default();
        MailConfig {
            smtp_host: String::new(),
            smtp_port: 0,
            tls: "starttls".into(),
            username: String::new(),
            password: String::new(),
            from: String::new(),
            ca_file: String::new(),
            activation_days: d.activation_days,
            reset_minutes: d.reset_minutes,
            expiry_reminder_days: d.expiry_reminder_days,
            retry_seconds: d.retry_seconds,
        }
    }
}

impl MailConfig {
    /// The transport's settings, or `None` when no mail server is configured.
    pub fn smtp(&self) -> Result<Option<mailer::SmtpSettings>, String> {
        let host = self.smtp_host.trim();
        if host.is_empty() {
            return Ok(None);
        }
        let tls = mailer::TlsMode::parse(&self.tls)
            .ok_or_else(|| format!("mail.tls: `{}` is not starttls, implicit or none", self.tls))?;
        if self.from.trim().is_empty() {
            return Err("mail.from: the sender address is required with mail.smtp_host".into());
        }
        let port = match (self.smtp_port, tls) {
            (0, mailer::TlsMode::Implicit) => 465,
            (0, _) => 587,
            (p, _) => p,
        };
        let ca_pem = match self.ca_file.trim() {
            "" => None,
            f => Some(std::fs::read(f).map_err(|e| format!("mail.ca_file `{f}`: {e}"))?),
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Ok(Some(mailer::SmtpSettings {
            host: host.to_string(),
            port,
            tls,
            username: opt(&self.username),
            password: opt(&self.password),
            from: self.from.trim().to_string(),
            ca_pem,
            timeout: std::time::Duration::from_secs(30),
        }))
    }

    /// The core's mail settings.
    pub fn core(&self, enabled: bool) -> core_directory::directory::MailSettings {
        core_directory::directory::MailSettings {
            enabled,
            activation_days: self.activation_days.clamp(1, 90),
            reset_minutes: self.reset_minutes.clamp(5, 24 * 60),
            expiry_reminder_days: self
                .expiry_reminder_days
                .iter()
                .copied()
                .filter(|d| (1..=365).contains(d))
                .collect(),
            retry_seconds: self.retry_seconds.clamp(1, 3600),
        }
    }
}

/// Per-source throttling of failed logins on every protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    pub enabled: bool,
    /// Failed logins from one source within the window after which each attempt waits (up to 2 s).
    pub delay_after: u32,
    /// Failed logins from one source within the window after which attempts are refused.
    pub refuse_after: u32,
    pub window_seconds: u64,
    /// Networks never throttled (known NAS, app servers), as CIDRs.
    pub allow: Vec<String>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        let d = core_directory::throttle::ThrottleSettings::default();
        ThrottleConfig {
            enabled: d.enabled,
            delay_after: d.delay_after,
            refuse_after: d.refuse_after,
            window_seconds: d.window.as_secs(),
            allow: Vec::new(),
        }
    }
}

impl ThrottleConfig {
    /// The core's settings; an allow-list entry that is not a CIDR or address is an error naming it.
    pub fn settings(&self) -> Result<core_directory::throttle::ThrottleSettings, String> {
        let allow = self
            .allow
            .iter()
            .map(|a| {
                let a = a.trim();
                a.parse::<ipnet::IpNet>()
                    .or_else(|_| a.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("throttle.allow: `{a}` is not a network (CIDR) or address")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(core_directory::throttle::ThrottleSettings {
            enabled: self.enabled,
            delay_after: self.delay_after.max(1),
            refuse_after: self.refuse_after.max(self.delay_after.max(1)),
            window: std::time::Duration::from_secs(self.window_seconds.max(1)),
            allow,
            ..Default::default()
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Admin API, portal, SAML and SCIM listener; port 0 picks an ephemeral port.
    pub addr: String,
    /// Serve HTTPS with the `[tls]` certificate. Turn off only behind a TLS-terminating proxy.
    pub tls: bool,
    /// Concurrent connections.
    pub max_connections: usize,
    /// Concurrent connections from one source address (at most half of `max_connections`).
    pub max_connections_per_source: usize,
    /// Seconds a client has to send a request's headers (HTTP/1.1).
    pub header_timeout_seconds: u64,
    /// Seconds a client has to send a request's whole body.
    pub body_timeout_seconds: u64,
    /// Seconds a connection may stay silent with no request in progress (after TLS, between keep-alive requests).
    pub idle_timeout_seconds: u64,
}

/// The certificate every TLS listener (HTTPS, LDAPS, StartTLS, later EAP) presents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; empty generates and uses the dev set under `<data_dir>/certs/`.
    pub cert: String,
    /// PEM private key (with `cert`).
    pub key: String,
    /// Host names and addresses the generated dev certificate covers.
    pub dev_cert_names: Vec<String>,
}

/// The LDAP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// Plain LDAP with StartTLS; empty disables it.
    pub addr: String,
    /// LDAPS; empty disables it.
    pub ldaps_addr: String,
    /// Largest request accepted, in bytes.
    pub max_pdu_bytes: usize,
    /// Seconds a bound connection may stay idle (unbound ones: at most 60).
    pub idle_timeout_seconds: u64,
    /// Concurrent connections.
    pub max_connections: usize,
    /// Concurrent connections from one source address (at most half of `max_connections`).
    pub max_connections_per_source: usize,
    /// Largest request accepted before a bind succeeds, in bytes.
    pub max_unbound_pdu_bytes: usize,
    /// Entries one non-paged search returns at most (0 = no limit).
    pub size_limit: usize,
    /// Seconds one search may run at most.
    pub time_limit_seconds: u64,
}

impl LdapConfig {
    /// The listener's settings.
    pub fn settings(&self) -> ldap_server::LdapSettings {
        let mut s = ldap_server::LdapSettings {
            max_pdu_bytes: self.max_pdu_bytes,
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_seconds.max(1)),
            max_connections: self.max_connections.max(1),
            max_connections_per_source: self.max_connections_per_source.max(1),
            max_unbound_pdu_bytes: self
                .max_unbound_pdu_bytes
                .clamp(1024, self.max_pdu_bytes.max(1024)),
            ..Default::default()
        };
        s.limits.size_limit = self.size_limit;
        s.limits.time_limit = std::time::Duration::from_secs(self.time_limit_seconds.max(1));
        s
    }
}

impl Default for LdapConfig {
    fn default() -> Self {
        let d = ldap_server::LdapSettings::default();
        LdapConfig {
            addr: "127.0.0.1:3389".into(),
            ldaps_addr: "127.0.0.1:6636".into(),
            max_pdu_bytes: d.max_pdu_bytes,
            idle_timeout_seconds: d.idle_timeout.as_secs(),
            max_connections: d.max_connections,
            max_connections_per_source: d.max_connections_per_source,
            max_unbound_pdu_bytes: d.max_unbound_pdu_bytes,
            size_limit: d.limits.size_limit,
            time_limit_seconds: d.limits.time_limit.as_secs(),
        }
    }
}

/// The RADIUS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// UDP authentication addresses, comma-separated (IPv4 and IPv6 at once: `0.0.0.0:1812, [::]:1812`); empty
    /// disables it.
    pub addr: String,
    /// UDP accounting addresses, comma-separated; empty disables it.
    pub accounting_addr: String,
    /// Requests answered at once; beyond this, new requests are dropped and the NAS retries.
    pub max_in_flight: usize,
    /// Receive loops per socket; 0 = number of CPUs.
    pub receive_tasks: usize,
    /// Seconds a user has to answer an MFA Access-Challenge.
    pub challenge_timeout_seconds: u64,
    /// TLS data per EAP request (PEAP, EAP-TTLS, EAP-TLS fragments).
    pub eap_fragment_size: usize,
    /// PEM CA that issues EAP-TLS client certificates; empty disables EAP-TLS.
    pub eap_tls_client_ca: String,
    /// PEM certificate revocation lists checked for EAP-TLS client certificates.
    pub eap_tls_crls: Vec<String>,
    /// What names the user in an EAP-TLS client certificate: `cn` (username) or `email`.
    pub eap_tls_identity: String,
    /// RadSec (RADIUS over TLS, RFC 6614) TCP addresses, comma-separated; empty (the default) disables it.
    pub radsec_addr: String,
    /// PEM CA that issues RadSec client certificates; required with `radsec_addr`.
    pub radsec_client_ca: String,
    /// RadSec connections at once.
    pub radsec_max_connections: usize,
    /// Seconds a RadSec connection may stay without a request.
    pub radsec_idle_timeout_seconds: u64,
    /// Seconds between the Interim-Updates the NAS clients are set to send.
    pub accounting_interim_seconds: u64,
    /// An open accounting session without an update for this many interim intervals is dropped.
    pub accounting_stale_intervals: u32,
}

impl RadiusConfig {
    /// The listener's settings.
    pub fn settings(&self) -> radius_server::RadiusSettings {
        radius_server::RadiusSettings {
            max_in_flight: self.max_in_flight.max(1),
            receive_tasks: self.receive_tasks,
            challenge_timeout: std::time::Duration::from_secs(
                self.challenge_timeout_seconds.clamp(10, 600),
            ),
            ..Default::default()
        }
    }

    /// The bounds of the core's open-session table.
    pub fn session_limits(&self) -> core_directory::radius_sessions::SessionLimits {
        let stale = self
            .accounting_interim_seconds
            .max(1)
            .saturating_mul(u64::from(self.accounting_stale_intervals.max(1)));
        core_directory::radius_sessions::SessionLimits {
            stale_after: std::time::Duration::from_secs(stale),
            ..Default::default()
        }
    }
}

impl Default for RadiusConfig {
    fn default() -> Self {
        let d = radius_server::RadiusSettings::default();
        RadiusConfig {
            addr: "127.0.0.1:1812".into(),
            accounting_addr: "127.0.0.1:1813".into(),
            max_in_flight: d.max_in_flight,
            receive_tasks: d.receive_tasks,
            challenge_timeout_seconds: d.challenge_timeout.as_secs(),
            eap_fragment_size: 1000,
            eap_tls_client_ca: String::new(),
            eap_tls_crls: Vec::new(),
            eap_tls_identity: "cn".into(),
            radsec_addr: String::new(),
            radsec_client_ca: String::new(),
            radsec_max_connections: 256,
            radsec_idle_timeout_seconds: 600,
            accounting_interim_seconds: 600,
            accounting_stale_intervals: 3,
        }
    }
}

/// The SCIM service provider under `/scim/v2` on the HTTPS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimConfig {
    /// Requests per second one SCIM token may make; beyond it and the burst, 429 with Retry-After.
    pub rate_per_second: f64,
    pub rate_burst: f64,
}

impl Default for ScimConfig {
    fn default() -> Self {
        let d = scim_server::ScimSettings::default();
        ScimConfig {
            rate_per_second: d.rate_per_second,
            rate_burst: d.rate_burst,
        }
    }
}

/// The SAML 2.0 IdP, login pages and user portal on the HTTPS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// Deprecated alias of the top-level `public_base_url`, taken when that is not set.
    pub base_url: String,
    /// How far an AuthnRequest's IssueInstant may be from this server's clock.
    pub clock_skew_seconds: u64,
    /// How long an assertion and its bearer confirmation stay valid.
    pub assertion_lifetime_seconds: u64,
}

impl Default for SamlConfig {
    fn default() -> Self {
        SamlConfig {
            base_url: String::new(),
            clock_skew_seconds: 180,
            assertion_lifetime_seconds: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// tracing filter, e.g. `info` or `stratus=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    /// argon2id memory in KiB.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashing threads (each keeps one argon2 memory block); 0 = number of CPUs.
    pub hash_concurrency: usize,
    /// Remember verified credentials so repeated logins skip argon2id.
    pub credential_cache: bool,
    pub credential_cache_ttl_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            store: String::new(),
            org_name: "Stratus".into(),
            public_base_url: String::new(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            ldap: LdapConfig::default(),
            radius: RadiusConfig::default(),
            scim: ScimConfig::default(),
            saml: SamlConfig::default(),
            log: LogConfig::default(),
            passwords: PasswordConfig::default(),
            throttle: ThrottleConfig::default(),
            mail: MailConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: "127.0.0.1:8443".into(),
            tls: true,
            max_connections: 4096,
            max_connections_per_source: 256,
            header_timeout_seconds: 20,
            body_timeout_seconds: 60,
            idle_timeout_seconds: 120,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: String::new(),
            key: String::new(),
            dev_cert_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            credential_cache: true,
            credential_cache_ttl_seconds: 300,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
}

fn env_parse<T: std::str::FromStr>(name: &'static str, slot: &mut T) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Ok(v) = std::env::var(name) {
        *slot = v.parse().map_err(|e: T::Err| ConfigError::Env {
            name,
            message: e.to_string(),
        })?;
    }
    Ok(())
}

impl Config {
    /// Load `path` when it exists (an explicitly named file must exist), then apply environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("stratus.toml"), false),
        };
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.display().to_string(),
                message: parse_message(&text, &e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Config::default(),
            Err(e) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source: e,
                })
            }
        };
        cfg.apply_env()?;
        Ok(cfg)
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        env_parse("STRATUS_DATA_DIR", &mut self.data_dir)?;
        env_parse("STRATUS_THROTTLE_ENABLED", &mut self.throttle.enabled)?;
        env_parse(
            "STRATUS_THROTTLE_DELAY_AFTER",
            &mut self.throttle.delay_after,
        )?;
        env_parse(
            "STRATUS_THROTTLE_REFUSE_AFTER",
            &mut self.throttle.refuse_after,
        )?;
        env_parse(
            "STRATUS_THROTTLE_WINDOW_SECONDS",
            &mut self.throttle.window_seconds,
        )?;
        if let Ok(v) = std::env::var("STRATUS_THROTTLE_ALLOW") {
            self.throttle.allow = v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect();
        }
        env_parse("STRATUS_MAIL_SMTP_HOST", &mut self.mail.smtp_host)?;
        env_parse("STRATUS_MAIL_SMTP_PORT", &mut self.mail.smtp_port)?;
        env_parse("STRATUS_MAIL_TLS", &mut self.mail.tls)?;
        env_parse("STRATUS_MAIL_USERNAME", &mut self.mail.username)?;
        env_parse("STRATUS_MAIL_PASSWORD", &mut self.mail.password)?;
        env_parse("STRATUS_MAIL_FROM", &mut self.mail.from)?;
        env_parse("STRATUS_MAIL_CA_FILE", &mut self.mail.ca_file)?;
        env_parse("STRATUS_MAIL_RETRY_SECONDS", &mut self.mail.retry_seconds)?;
        env_parse("STRATUS_STORE", &mut self.store)?;
        env_parse("STRATUS_ORG_NAME", &mut self.org_name)?;
        env_parse("STRATUS_PUBLIC_BASE_URL", &mut self.public_base_url)?;
        env_parse("STRATUS_HTTP_ADDR", &mut self.http.addr)?;
        env_parse("STRATUS_HTTP_TLS", &mut self.http.tls)?;
        env_parse(
            "STRATUS_HTTP_MAX_CONNECTIONS",
            &mut self.http.max_connections,
        )?;
        env_parse(
            "STRATUS_HTTP_MAX_CONNECTIONS_PER_SOURCE",
            &mut self.http.max_connections_per_source,
        )?;
        env_parse(
            "STRATUS_HTTP_HEADER_TIMEOUT_SECONDS",
            &mut self.http.header_timeout_seconds,
        )?;
        env_parse(
            "STRATUS_HTTP_BODY_TIMEOUT_SECONDS",
            &mut self.http.body_timeout_seconds,
        )?;
        env_parse(
            "STRATUS_HTTP_IDLE_TIMEOUT_SECONDS",
            &mut self.http.idle_timeout_seconds,
        )?;
        env_parse("STRATUS_TLS_CERT", &mut self.tls.cert)?;
        env_parse("STRATUS_TLS_KEY", &mut self.tls.key)?;
        env_parse("STRATUS_LDAP_ADDR", &mut self.ldap.addr)?;
        env_parse("STRATUS_LDAPS_ADDR", &mut self.ldap.ldaps_addr)?;
        env_parse(
            "STRATUS_LDAP_MAX_CONNECTIONS",
            &mut self.ldap.max_connections,
        )?;
        env_parse(
            "STRATUS_LDAP_MAX_CONNECTIONS_PER_SOURCE",
            &mut self.ldap.max_connections_per_source,
        )?;
        env_parse("STRATUS_RADIUS_ADDR", &mut self.radius.addr)?;
        env_parse(
            "STRATUS_RADIUS_ACCOUNTING_ADDR",
            &mut self.radius.accounting_addr,
        )?;
        env_parse(
            "STRATUS_RADIUS_EAP_TLS_CLIENT_CA",
            &mut self.radius.eap_tls_client_ca,
        )?;
        if let Ok(v) = std::env::var("STRATUS_RADIUS_EAP_TLS_CRLS") {
            self.radius.eap_tls_crls = v
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
        }
        env_parse(
            "STRATUS_RADIUS_EAP_TLS_IDENTITY",
            &mut self.radius.eap_tls_identity,
        )?;
        env_parse("STRATUS_RADIUS_RADSEC_ADDR", &mut self.radius.radsec_addr)?;
        env_parse(
            "STRATUS_RADIUS_RADSEC_CLIENT_CA",
            &mut self.radius.radsec_client_ca,
        )?;
        env_parse(
            "STRATUS_RADIUS_ACCOUNTING_INTERIM_SECONDS",
            &mut self.radius.accounting_interim_seconds,
        )?;
        env_parse(
            "STRATUS_RADIUS_ACCOUNTING_STALE_INTERVALS",
            &mut self.radius.accounting_stale_intervals,
        )?;
        env_parse(
            "STRATUS_RADIUS_MAX_IN_FLIGHT",
            &mut self.radius.max_in_flight,
        )?;
        env_parse(
            "STRATUS_SCIM_RATE_PER_SECOND",
            &mut self.scim.rate_per_second,
        )?;
        env_parse("STRATUS_SCIM_RATE_BURST", &mut self.scim.rate_burst)?;
        env_parse("STRATUS_SAML_BASE_URL", &mut self.saml.base_url)?;
        env_parse(
            "STRATUS_SAML_CLOCK_SKEW_SECONDS",
            &mut self.saml.clock_skew_seconds,
        )?;
        env_parse(
            "STRATUS_SAML_ASSERTION_LIFETIME_SECONDS",
            &mut self.saml.assertion_lifetime_seconds,
        )?;
        env_parse("STRATUS_LOG_FORMAT", &mut self.log.format)?;
        env_parse("STRATUS_LOG_LEVEL", &mut self.log.level)?;
        env_parse(
            "STRATUS_ARGON2_MEMORY_KIB",
            &mut self.passwords.argon2_memory_kib,
        )?;
        env_parse(
            "STRATUS_ARGON2_ITERATIONS",
            &mut self.passwords.argon2_iterations,
        )?;
        env_parse(
            "STRATUS_ARGON2_PARALLELISM",
            &mut self.passwords.argon2_parallelism,
        )?;
        env_parse(
            "STRATUS_HASH_CONCURRENCY",
            &mut self.passwords.hash_concurrency,
        )?;
        env_parse(
            "STRATUS_CREDENTIAL_CACHE",
            &mut self.passwords.credential_cache,
        )?;
        env_parse(
            "STRATUS_CREDENTIAL_CACHE_TTL_SECONDS",
            &mut self.passwords.credential_cache_ttl_seconds,
        )?;
        Ok(())
    }
}

impl Config {
    /// The configured public base URL, checked: `public_base_url`, else the deprecated `saml.base_url`; `None`
    /// when neither is set (the bound address is used). `Err` says what is wrong with it.
    pub fn configured_public_base_url(&self) -> Result<Option<String>, String> {
        let (name, value) = match (self.public_base_url.trim(), self.saml.base_url.trim()) {
            ("", "") => return Ok(None),
            (p, "") => ("public_base_url", p),
            ("", s) => {
                tracing::warn!(
                    "saml.base_url (STRATUS_SAML_BASE_URL) is deprecated; set public_base_url \
                     (STRATUS_PUBLIC_BASE_URL), which also names SCIM locations"
                );
                ("saml.base_url", s)
            }
            (p, s) => {
                let (p, s) = (check_public_base_url(p), check_public_base_url(s));
                return match (p, s) {
                    (Ok(p), Ok(s)) if p == s => Ok(Some(p)),
                    _ => Err(
                        "public_base_url and the deprecated saml.base_url are both set and \
                              differ; set public_base_url only"
                            .into(),
                    ),
                };
            }
        };
        check_public_base_url(value)
            .map(Some)
            .map_err(|e| format!("{name} `{value}`: {e}"))
    }
}

/// An absolute `http(s)://host[:port]` URL, in the form public URLs are built from (trailing slash removed). A
/// path is refused as well as a query or fragment: the listener serves from its root, and its pages redirect to
/// root paths (`/login`), which a path prefix would break.
pub fn check_public_base_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be https or http".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL must not carry a user name or password".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the URL must not have a query or fragment".into());
    }
    if url.path() != "/" {
        return Err("the URL must not have a path (Stratus serves from the root)".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// A parse error by line and column with the parser's message, without the excerpt of the file the parser
/// would quote: that line may hold a secret (a database URL with its password).
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", e.message().trim_end())
        }
        None => e.message().trim_end().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let text = include_str!("../../stratus.example.toml");
        let cfg: Config = toml::from_str(text).expect("example parses");
        let d = Config::default();
        assert_eq!(cfg.http.addr, d.http.addr);
        assert_eq!(
            cfg.passwords.argon2_memory_kib,
            d.passwords.argon2_memory_kib
        );
        assert_eq!(cfg.data_dir, d.data_dir);
        assert_eq!(cfg.public_base_url, d.public_base_url);
        assert_eq!(cfg.saml.base_url, d.saml.base_url);
        assert_eq!(cfg.ldap.addr, d.ldap.addr);
        assert_eq!(cfg.ldap.max_pdu_bytes, d.ldap.max_pdu_bytes);
        assert_eq!(cfg.ldap.size_limit, d.ldap.size_limit);
        assert_eq!(cfg.tls.dev_cert_names, d.tls.dev_cert_names);
        assert_eq!(cfg.radius.addr, d.radius.addr);
        assert_eq!(cfg.radius.accounting_addr, d.radius.accounting_addr);
        assert_eq!(cfg.radius.max_in_flight, d.radius.max_in_flight);
        assert_eq!(
            cfg.radius.challenge_timeout_seconds,
            d.radius.challenge_timeout_seconds
        );
    }

    #[test]
    fn a_parse_error_names_its_place_but_does_not_quote_the_file() {
        let text =
            "data_dir = \"data\"\nstore = \"postgres://stratus:S3cret-DB-pass@db/stratus\" x\n";
        let e = toml::from_str::<Config>(text).unwrap_err();
        assert!(
            e.to_string().contains("S3cret-DB-pass"),
            "the parser quotes the line"
        );
        let m = parse_message(text, &e);
        assert!(m.starts_with("line 2, column "), "{m}");
        assert!(!m.contains("S3cret-DB-pass"), "{m}");
    }

    #[test]
    fn public_base_url_is_an_absolute_http_url_without_path_query_or_fragment() {
        for (given, taken) in [
            ("https://sso.example.com", "https://sso.example.com"),
            ("https://sso.example.com/", "https://sso.example.com"),
            (
                "HTTPS://SSO.Example.com:8443/",
                "https://sso.example.com:8443",
            ),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(check_public_base_url(given).as_deref(), Ok(taken));
        }
        for bad in [
            "sso.example.com",
            "/relative",
            "ftp://sso.example.com",
            "https://sso.example.com/?a=b",
            "https://sso.example.com/#top",
            "https://sso.example.com/stratus",
            "https://user:pw@sso.example.com",
            "https://",
        ] {
            assert!(check_public_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deprecated_saml_base_url_is_an_alias_of_public_base_url() {
        let mut cfg = Config::default();
        assert_eq!(cfg.configured_public_base_url(), Ok(None));
        cfg.saml.base_url = "https://old.example.com/".into();
        assert_eq!(
            cfg.configured_public_base_url(),
            Ok(Some("https://old.example.com".into()))
        );
        cfg.public_base_url = "https://old.example.com".into();
        assert_eq!(
            cfg.configured_public_base_url(),
            Ok(Some("https://old.example.com".into()))
        );
        cfg.public_base_url = "https://new.example.com".into();
        assert!(cfg.configured_public_base_url().is_err());
        cfg.saml.base_url.clear();
        assert_eq!(
            cfg.configured_public_base_url(),
            Ok(Some("https://new.example.com".into()))
        );
        cfg.public_base_url = "https://new.example.com/path?x".into();
        assert!(cfg
            .configured_public_base_url()
            .unwrap_err()
            .contains("public_base_url"));
    }

    #[test]
    fn unknown_option_is_rejected() {
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
    }
}
