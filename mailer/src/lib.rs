//! Delivers the core's mail queue over SMTP (lettre on rustls): the transport's settings (server, port, STARTTLS
//! or implicit TLS, authentication, sender address, an extra CA to trust) and the loop that takes due messages,
//! leases each so one node sends it, sends it, and reports the outcome to the core. What is sent, to whom and
//! when is the core's business (`core_directory::mail`); this crate must not decide it, nor touch the store
//! except through the directory.

use core_directory::mail::Queued;
use core_directory::Directory;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS at all: only for a mail server on this machine's loopback.
    None,
}

impl TlsMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "starttls" => Some(TlsMode::StartTls),
            "implicit" | "tls" | "smtps" => Some(TlsMode::Implicit),
            "none" => Some(TlsMode::None),
            _ => None,
        }
    }
}

/// The SMTP transport's settings.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The From address, e.g. `Acme IT <it@acme.example>`.
    pub from: String,
    /// A CA certificate (PEM) to trust instead of the system's roots, for a private mail server.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// A transport ready to send.
pub struct Sender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Sender {
    /// Check the settings and build the transport (no connection is made yet).
    pub fn new(s: &SmtpSettings) -> Result<Sender, String> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| format!("mail.from `{}` is not an address: {e}", s.from))?;
        if s.tls == TlsMode::None && !is_loopback(&s.host) {
            return Err(format!(
                "mail.tls = \"none\" is allowed only for a mail server on loopback, not `{}`",
                s.host
            ));
        }
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host).port(s.port);
        if s.tls != TlsMode::None {
            let mut params = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let ca = Certificate::from_pem(pem)
                    .map_err(|e| format!("mail.ca_file is not a PEM certificate: {e}"))?;
                params = params
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(ca);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("mail TLS settings: {e}"))?;
            builder = builder.tls(match s.tls {
                TlsMode::StartTls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        } else {
            builder = builder.tls(Tls::None);
        }
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Sender {
            transport: builder.timeout(Some(s.timeout)).build(),
            from,
        })
    }

    /// Send one message. `Err((permanent, why))`: a permanent refusal (5xx, a bad address) is not retried.
    pub async fn send(&self, m: &core_directory::mail::Message) -> Result<(), (bool, String)> {
        let to: Mailbox =
            m.to.parse()
                .map_err(|e| (true, format!("`{}` is not an address: {e}", m.to)))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(m.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(m.html.clone()),
                    ),
            )
            .map_err(|e| (true, format!("the message could not be built: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) => Err((e.is_permanent(), e.to_string())),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Messages sent per pass, at most.
const BATCH: usize = 50;
/// How often the queue is looked at.
const POLL: Duration = Duration::from_secs(1);
/// How often password-expiry reminders are considered.
const REMINDERS: Duration = Duration::from_secs(3600);

/// Send due messages until `stop` turns true. Each message is leased first, so of several nodes exactly one
/// sends it; the outcome (sent, retried later, dropped) is the core's to record.
pub async fn run(dir: Arc<Directory>, sender: Sender, mut stop: watch::Receiver<bool>) {
    let mut last_reminders: Option<tokio::time::Instant> = None;
    loop {
        if last_reminders.is_none_or(|t| t.elapsed() >= REMINDERS) {
            last_reminders = Some(tokio::time::Instant::now());
            match dir.send_expiry_reminders().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reminders = n, "password expiry reminders queued"),
                Err(e) => tracing::warn!(error = %e, "password expiry reminders failed"),
            }
        }
        match dir.mail_due(chrono::Utc::now(), BATCH) {
            Ok(due) => {
                for q in due {
                    if *stop.borrow() {
                        return;
                    }
                    deliver(&dir, &sender, &q).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "the mail queue could not be read"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn deliver(dir: &Directory, sender: &Sender, q: &Queued) {
    match dir.mail_lease(&q.id) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "a mail lease could not be taken");
            return;
        }
    }
    let outcome = match sender.send(&q.message).await {
        Ok(()) => dir.mail_sent(q).await,
        Err((permanent, why)) => {
            tracing::info!(mail = %q.id, permanent, error = %core_directory::events::log_text(&why), "mail not delivered");
            dir.mail_failed(q, &why, permanent).await
        }
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "a mail outcome could not be recorded");
    }
}
