//! `stratus serve`: open the store, initialise on first start, start the listeners, stop gracefully.

use crate::certs;
use crate::config::Config;
use core_directory::crypto::MasterKey;
use core_directory::directory::BootstrapRequest;
use core_directory::password::HashParams;
use core_directory::store::{PgStore, RedbStore, Store};
use core_directory::{Directory, DirectoryConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// Everything that can stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Seal(#[from] core_directory::crypto::SealError),
    #[error(transparent)]
    Directory(#[from] core_directory::DirectoryError),
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Open the directory of `cfg` (its store and master key) without initialising it. A master key that does not
/// open the directory's secrets is refused; a key file made just now for it is removed again, so that putting
/// the right key back is all it takes.
pub async fn open_existing(cfg: &Config) -> Result<Arc<Directory>, ServeError> {
    let dir_err = |source| ServeError::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&cfg.data_dir).map_err(dir_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(dir_err)?;
    }
    let from_env = std::env::var("STRATUS_MASTER_KEY").ok();
    let key_file = cfg.data_dir.join("master.key");
    let new_key_file = from_env.is_none() && !key_file.exists();
    let master = MasterKey::load_or_create(from_env.as_deref(), &cfg.data_dir)?;
    let store: Arc<dyn Store> = if cfg.store.is_empty() {
        Arc::new(
            RedbStore::open(&cfg.data_dir.join("stratus.redb"))
                .map_err(core_directory::DirectoryError::from)?,
        )
    } else if cfg.store.starts_with("postgres://") || cfg.store.starts_with("postgresql://") {
        PgStore::connect(&cfg.store)
            .await
            .map_err(core_directory::DirectoryError::from)?
    } else {
        return Err(core_directory::DirectoryError::invalid(
            "store",
            "the store is empty (the embedded store) or a postgres:// URL",
        )
        .into());
    };
    let p = &cfg.passwords;
    let hash_params = HashParams {
        memory_kib: p.argon2_memory_kib,
        iterations: p.argon2_iterations,
        parallelism: p.argon2_parallelism,
    };
    hash_params
        .check_floor()
        .map_err(|e| ServeError::Config(format!("passwords: {e}")))?;
    let throttle = cfg.throttle.settings().map_err(ServeError::Config)?;
    let smtp = cfg.mail.smtp().map_err(ServeError::Config)?;
    let dir = Directory::open(
        store,
        master,
        DirectoryConfig {
            throttle,
            mail: cfg.mail.core(smtp.is_some()),
            hash_params,
            hash_concurrency: p.hash_concurrency,
            credential_cache: p.credential_cache,
            credential_cache_ttl: Duration::from_secs(p.credential_cache_ttl_seconds),
            reply_attribute_check: Some(core_directory::ReplyAttributeCheck(Arc::new(
                radius_server::reply_attribute_check,
            ))),
            sp_metadata_reader: Some(core_directory::SpMetadataReader(Arc::new(
                saml_idp::read_sp_metadata,
            ))),
            radius_sessions: cfg.radius.session_limits(),
        },
    );
    match dir {
        Err(core_directory::DirectoryError::WrongMasterKey(why)) => {
            if new_key_file {
                let _ = std::fs::remove_file(&key_file);
            }
            let rotated = cfg.data_dir.join("master.key.new");
            let hint = if rotated.exists() {
                format!(
                    "; {} exists: a key rotation may have stopped half-way, and that file may hold the key",
                    rotated.display()
                )
            } else {
                String::new()
            };
            Err(core_directory::DirectoryError::WrongMasterKey(format!("{why}{hint}")).into())
        }
        Err(e) => Err(e.into()),
        Ok(dir) => Ok(dir),
    }
}

/// Open the directory in the data dir, initialising it on first start.
pub async fn open_directory(cfg: &Config) -> Result<Arc<Directory>, ServeError> {
    let dir = open_existing(cfg).await?;
    let boot = dir
        .initialise(BootstrapRequest {
            org_name: cfg.org_name.clone(),
            admin_email: std::env::var("STRATUS_BOOTSTRAP_ADMIN_EMAIL").ok(),
            admin_password: std::env::var("STRATUS_BOOTSTRAP_ADMIN_PASSWORD").ok(),
            api_key: std::env::var("STRATUS_BOOTSTRAP_API_KEY").ok(),
        })
        .await?;
    if let Some(b) = boot {
        // Printed once, to the terminal only: these are never stored in clear or logged.
        println!("stratus: first start — organisation {} created", b.org_id);
        println!("stratus: bootstrap admin: {}", b.admin_email);
        if let Some(pw) = &b.generated_password {
            println!("stratus: bootstrap admin one-time password: {pw}");
        }
        if let Some(key) = &b.generated_api_key {
            println!("stratus: bootstrap admin API key: {key}");
        }
        println!("stratus: these are shown only now; change the password after your first login");
    }
    dir.record_key_check().await?;
    dir.follow_changes();
    Ok(dir)
}

/// `stratus master-key rotate`: re-seal every secret under a new key (every server of the directory stopped).
/// The new key is written to `master.key.new` before the store changes; once the store is sealed under it, it
/// replaces `master.key` (the old one is kept as `master.key.previous`: backups made before need it). With
/// `STRATUS_MASTER_KEY`, the new key is left in `master.key.new` for the operator to set on every node.
pub async fn rotate_master_key(cfg: &Config) -> Result<String, ServeError> {
    let dir = open_existing(cfg).await?;
    if dir.org().is_none() {
        return Err(ServeError::Config(
            "this directory has not been started yet: there is nothing to rotate".into(),
        ));
    }
    let io = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| ServeError::DataDir { path, source }
    };
    let text = data_encoding::HEXLOWER.encode(&core_directory::crypto::random_bytes(32));
    let new = MasterKey::from_text(&text)?;
    let new_path = cfg.data_dir.join("master.key.new");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&new_path).map_err(io(&new_path))?;
        f.write_all(text.as_bytes()).map_err(io(&new_path))?;
        f.sync_all().map_err(io(&new_path))?;
    }
    let rotated = dir.rotate_master_key(&new).await?;
    dir.flush_events().await;
    let mut said = format!(
        "{} secrets re-sealed under a new master key",
        rotated.secrets
    );
    if std::env::var("STRATUS_MASTER_KEY").is_ok() {
        said.push_str(&format!(
            "; set STRATUS_MASTER_KEY on every node to the contents of {}, then delete that file",
            new_path.display()
        ));
    } else {
        let key_path = cfg.data_dir.join("master.key");
        let previous = cfg.data_dir.join("master.key.previous");
        std::fs::rename(&key_path, &previous).map_err(io(&key_path))?;
        std::fs::rename(&new_path, &key_path).map_err(io(&new_path))?;
        if let Ok(d) = std::fs::File::open(&cfg.data_dir) {
            let _ = d.sync_all();
        }
        said.push_str(&format!(
            "; {} replaced, the previous key kept as {} (backups made before today need it)",
            key_path.display(),
            previous.display()
        ));
    }
    Ok(said)
}

/// The certificate and key every TLS listener uses: the configured files, or the generated dev set.
fn tls_files(cfg: &Config) -> Result<(std::path::PathBuf, std::path::PathBuf), ServeError> {
    if cfg.tls.cert.is_empty() {
        let dev = certs::ensure_dev_certs(&cfg.data_dir, &cfg.tls.dev_cert_names)?;
        if dev.generated {
            println!("stratus: generated development CA {}", dev.ca.display());
        }
        Ok((dev.cert, dev.key))
    } else {
        Ok((cfg.tls.cert.clone().into(), cfg.tls.key.clone().into()))
    }
}

async fn bind(addr: &str) -> Result<Option<(TcpListener, SocketAddr)>, ServeError> {
    ldap_server::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Headers every HTTPS answer gets: `Strict-Transport-Security` (over TLS), and `Cache-Control: no-store` unless
/// the answer says otherwise — API and SCIM answers carry tokens, keys, TOTP secrets and personal data that no
/// cache may keep. Published metadata and the console's assets keep their own rules.
async fn transport_headers(
    axum::extract::State(tls): axum::extract::State<bool>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let path = req.uri().path();
    let cacheable = path.ends_with("/metadata") || path.contains("/assets/");
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    if tls && !h.contains_key(header::STRICT_TRANSPORT_SECURITY) {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if !cacheable && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Raise the soft limit on open files to the hard limit: every LDAP, RADIUS-over-TLS and HTTPS connection is a
/// descriptor, and the usual soft limit of 1,024 would let a few hundred held connections stop every listener.
/// Returns the limit in force.
fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let current = getrlimit(Resource::Nofile);
    let wanted = Rlimit {
        current: current.maximum,
        maximum: current.maximum,
    };
    match setrlimit(Resource::Nofile, wanted) {
        Ok(()) => current.maximum.or(Some(u64::MAX)),
        Err(e) => {
            tracing::warn!(error = %e, "the open-files limit could not be raised");
            current.current
        }
    }
}

/// Run the suite until SIGINT/SIGTERM.
pub async fn run(cfg: Config) -> Result<(), ServeError> {
    let configured_base_url = cfg
        .configured_public_base_url()
        .map_err(ServeError::Config)?;
    let mut cfg = cfg;
    if let Some(limit) = raise_open_files_limit() {
        // Descriptors kept for the store, its files, logs and RADIUS sockets, beyond the listeners' own limits:
        // when the limit cannot hold both, the LDAP and HTTPS connection limits are lowered in proportion, so the
        // listeners refuse connections of their own accord instead of failing to accept any.
        const RESERVED: u64 = 256;
        let listeners = (cfg.ldap.max_connections + cfg.http.max_connections) as u64;
        let budget = limit.saturating_sub(RESERVED).max(64);
        if listeners > budget {
            let scale = |n: usize| ((n as u64 * budget) / listeners).max(16) as usize;
            cfg.ldap.max_connections = scale(cfg.ldap.max_connections);
            cfg.http.max_connections = scale(cfg.http.max_connections);
            tracing::warn!(
                limit,
                ldap = cfg.ldap.max_connections,
                http = cfg.http.max_connections,
                "the open-files limit cannot hold the configured connection limits and a reserve of {RESERVED}; \
                 they are lowered (raise the hard limit, ulimit -Hn, to keep them)"
            );
        } else {
            tracing::debug!(limit, "open-files limit");
        }
    }
    // The mail settings are checked before anything opens: a wrong one stops the start with its name.
    let mail_sender = match cfg.mail.smtp().map_err(ServeError::Config)? {
        Some(s) => {
            let sender = mailer::Sender::new(&s).map_err(ServeError::Config)?;
            tracing::info!(host = %s.host, port = s.port, tls = ?s.tls, "mail is sent through this server");
            Some(sender)
        }
        None => None,
    };
    let dir = open_directory(&cfg).await?;
    let (cert, key) = tls_files(&cfg)?;
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let retention = tokio::spawn({
        let dir = Arc::clone(&dir);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                match dir.apply_event_retention().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "event retention applied"),
                    Err(e) => tracing::warn!(error = %e, "event retention failed"),
                }
            }
        }
    });

    // Where each listener is, for the console's dashboard.
    let listeners: console::Listeners = Default::default();
    // LDAP and LDAPS.
    let ldap_plain = bind(&cfg.ldap.addr).await?;
    let ldaps = bind(&cfg.ldap.ldaps_addr).await?;
    let mut ldap_tls = certs::server_config(&cert, &key)?;
    ldap_tls.alpn_protocols.clear();
    for (name, l) in [("ldap", &ldap_plain), ("ldaps", &ldaps)] {
        if let Some((_, addr)) = l {
            announce_to(&listeners, name, &addr.to_string());
        }
    }
    let ldap = tokio::spawn(ldap_server::serve(
        Arc::clone(&dir),
        cfg.ldap.settings(),
        ldap_plain.map(|(l, _)| l),
        ldaps.map(|(l, _)| l),
        Some(Arc::new(ldap_tls)),
        stop.clone(),
    ));

    // RADIUS authentication and accounting, each on every address of its comma-separated list.
    let mut radius_sockets = Vec::new();
    for (name, addrs) in [
        ("radius", &cfg.radius.addr),
        ("radius_accounting", &cfg.radius.accounting_addr),
    ] {
        let mut sockets = Vec::new();
        for addr in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let bound = radius_server::bind(addr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            if let Some((s, a)) = bound {
                announce_to(&listeners, name, &a.to_string());
                sockets.push(s);
            }
        }
        radius_sockets.push(sockets);
    }
    let radius_acct = radius_sockets.pop().unwrap_or_default();
    let radius_auth = radius_sockets.pop().unwrap_or_default();
    let eap = eap_tls(&cfg, &cert, &key)?;
    let radsec = radsec(&cfg, &cert, &key, &listeners).await?;
    let radius = tokio::spawn(radius_server::serve(
        Arc::clone(&dir),
        cfg.radius.settings(),
        Some(eap),
        radius_auth,
        radius_acct,
        radsec,
        stop.clone(),
    ));

    // Outbound SCIM provisioning to SSO apps with a connector.
    let provisioner = tokio::spawn(scim_server::outbound::run(Arc::clone(&dir), stop.clone()));
    let mail =
        mail_sender.map(|sender| tokio::spawn(mailer::run(Arc::clone(&dir), sender, stop.clone())));
    let external = extdir::start(Arc::clone(&dir), stop.clone());

    // HTTPS: admin API, portal, SAML IdP, SCIM, operations.
    let Some((tcp, local)) = bind(&cfg.http.addr).await? else {
        return Err(ServeError::Bind {
            addr: cfg.http.addr.clone(),
            source: std::io::Error::other("the HTTP listener cannot be disabled"),
        });
    };
    let public_base_url = public_base_url(configured_base_url, cfg.http.tls, local);
    tracing::info!(%public_base_url, "SAML and SCIM URLs are built from the public base URL");
    dir.set_public_base_url(&public_base_url);
    let state = admin_api::AppState::new(Arc::clone(&dir));
    let scheme_addr = format!(
        "{scheme}://{local}",
        scheme = if cfg.http.tls { "https" } else { "http" }
    );
    if let Ok(mut l) = listeners.write() {
        l.push(("http".to_string(), scheme_addr.clone()));
    }
    let ca_pem = if cfg.tls.cert.is_empty() {
        std::fs::read_to_string(std::path::Path::new(&cfg.data_dir).join("certs/ca.pem")).ok()
    } else {
        None
    };
    let console =
        console::Console::new(Arc::clone(&dir), listeners, public_base_url.clone(), ca_pem);
    let app = admin_api::router(state)
        .merge(console::router(console))
        .merge(saml_idp::router(
            Arc::clone(&dir),
            saml_idp::Settings {
                base_url: public_base_url.clone(),
                clock_skew: Duration::from_secs(cfg.saml.clock_skew_seconds),
                assertion_lifetime: Duration::from_secs(cfg.saml.assertion_lifetime_seconds),
            },
        ))
        .merge(scim_server::router(
            Arc::clone(&dir),
            scim_server::ScimSettings {
                base_url: public_base_url,
                rate_per_second: cfg.scim.rate_per_second,
                rate_burst: cfg.scim.rate_burst,
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            cfg.http.tls,
            transport_headers,
        ));
    let limits = crate::https::Limits {
        max_connections: cfg.http.max_connections.max(1),
        max_per_source: cfg.http.max_connections_per_source.max(1),
        header_timeout: Duration::from_secs(cfg.http.header_timeout_seconds.max(1)),
        body_timeout: Duration::from_secs(cfg.http.body_timeout_seconds.max(1)),
        idle_timeout: Duration::from_secs(cfg.http.idle_timeout_seconds.max(1)),
    };
    let acceptor = if cfg.http.tls {
        Some(TlsAcceptor::from(Arc::new(certs::server_config(
            &cert, &key,
        )?)))
    } else {
        None
    };
    announce("http", &scheme_addr);
    let result = drain(
        crate::https::serve(tcp, acceptor, app, limits, stop.clone()),
        stop.clone(),
    )
    .await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, ldap).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, radius).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, provisioner).await;
    if let Some(mail) = mail {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, mail).await;
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, external).await;
    retention.abort();
    dir.flush_events().await;
    tracing::info!("stopped");
    result.map_err(|source| ServeError::Bind {
        addr: cfg.http.addr.clone(),
        source,
    })
}

/// The base of every public URL: the configured one, else the listener's bound address (scheme per TLS). Never
/// taken from a request, so a client cannot choose the URLs others are given.
fn public_base_url(configured: Option<String>, tls: bool, local: SocketAddr) -> String {
    configured.unwrap_or_else(|| {
        if local.ip().is_unspecified() {
            tracing::warn!(
                %local,
                "the HTTP listener is bound to a wildcard address; set public_base_url so SAML and SCIM URLs \
                 name a reachable host"
            );
        }
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{local}")
    })
}

/// The RadSec listener from `radius.radsec_addr` (comma-separated; none when empty) with the `[tls]`
/// certificate and `radius.radsec_client_ca`.
async fn radsec(
    cfg: &Config,
    cert: &std::path::Path,
    key: &std::path::Path,
    listeners: &console::Listeners,
) -> Result<Option<radius_server::radsec::RadSec>, ServeError> {
    let r = &cfg.radius;
    let addrs: Vec<&str> = r
        .radsec_addr
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if addrs.is_empty() {
        return Ok(None);
    }
    if r.radsec_client_ca.trim().is_empty() {
        return Err(ServeError::Config(
            "radius.radsec_addr needs radius.radsec_client_ca: RadSec clients are known by their certificates"
                .into(),
        ));
    }
    let tls = certs::radsec_config(cert, key, std::path::Path::new(&r.radsec_client_ca))?;
    let mut bound = Vec::new();
    for addr in addrs {
        if let Some((l, a)) = bind(addr).await? {
            announce_to(listeners, "radsec", &a.to_string());
            bound.push(l);
        }
    }
    Ok(Some(radius_server::radsec::RadSec {
        listeners: bound,
        tls: Arc::new(tls),
        max_connections: r.radsec_max_connections.max(1),
        idle_timeout: Duration::from_secs(r.radsec_idle_timeout_seconds.max(1)),
    }))
}

/// The EAP methods' TLS set-up from `[tls]` and `[radius]`.
fn eap_tls(
    cfg: &Config,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<radius_server::eap::EapTls, ServeError> {
    let r = &cfg.radius;
    let identity = radius_server::eap::certificate::IdentityRule::parse(&r.eap_tls_identity)
        .ok_or_else(|| {
            ServeError::Config(format!(
                "radius.eap_tls_identity must be `cn` or `email`, not `{}`",
                r.eap_tls_identity
            ))
        })?;
    let crls: Vec<std::path::PathBuf> = r.eap_tls_crls.iter().map(Into::into).collect();
    let ca = Some(std::path::Path::new(&r.eap_tls_client_ca)).filter(|p| !p.as_os_str().is_empty());
    let (tunnel, client) = certs::eap_configs(cert, key, ca, &crls)?;
    Ok(radius_server::eap::EapTls {
        tunnel: Arc::new(tunnel),
        client_certificates: client.map(Arc::new),
        identity,
        fragment_size: r.eap_fragment_size,
    })
}

/// Resolves once the shutdown flag is set.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// How long open connections may finish their requests after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serve until the shutdown flag is set, then let open connections finish for at most [`SHUTDOWN_GRACE`]: a
/// client that keeps an idle keep-alive connection must not hold the process up.
async fn drain(
    server: impl std::future::IntoFuture<Output = std::io::Result<()>>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let deadline = async move {
        stopped(stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        r = server.into_future() => r,
        _ = deadline => {
            tracing::warn!("connections still open after the shutdown grace period; closing them");
            Ok(())
        }
    }
}

/// Log a bound listener, and print it in a fixed form that scripts and tests read.
/// Announce a listener and note it for the console.
fn announce_to(listeners: &console::Listeners, listener: &str, addr: &str) {
    announce(listener, addr);
    if let Ok(mut l) = listeners.write() {
        l.push((listener.to_string(), addr.to_string()));
    }
}

fn announce(listener: &str, addr: &str) {
    tracing::info!(listener, addr, "listener ready");
    println!("stratus: listening {listener}={addr}");
}
