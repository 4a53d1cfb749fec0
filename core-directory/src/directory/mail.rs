//! The mail queue (kept sealed in the store's short-lived state, so every node shares it and a restart loses
//! nothing) and the single-use links mail carries: activation of a user whose password is pending, and the
//! forgotten-password reset. A link's token is random; only its SHA-256 is stored, with the user and the user's
//! `auth_revision` when it was made, so a later password change, lock or state change voids it.

use super::{admin_event, Directory};
use crate::error::{DirectoryError, Result};
use crate::events::{Event, Service};
use crate::id::Id;
use crate::mail::{self, Message, Purpose, Queued, QueuedView};
use crate::model::{User, UserState};
use crate::views::UserView;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use utoipa::ToSchema;

const QUEUE: &str = "mail";
const LEASES: &str = "mail-lease";
const LINKS: &str = "link";
const RATE: &str = "reset-rate";
/// How long a sender holds a message before another node may try it.
const LEASE_SECONDS: i64 = 120;
/// Forgot-password requests per address, and per source address, in an hour.
const RESETS_PER_ADDRESS: u64 = 3;
const RESETS_PER_SOURCE: u64 = 20;

/// The mail settings the core acts on (the transport's own settings stay with the sender).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// A sender is configured: messages are queued and sent. Without one, admins hand links over themselves.
    pub enabled: bool,
    pub activation_days: i64,
    pub reset_minutes: i64,
    /// Days before a password expires on which a reminder goes out (each once).
    pub expiry_reminder_days: Vec<i64>,
    /// Seconds before the first retry of a failed delivery (doubling after each).
    pub retry_seconds: i64,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            enabled: false,
            activation_days: 7,
            reset_minutes: 60,
            expiry_reminder_days: vec![14, 3, 1],
            retry_seconds: 30,
        }
    }
}

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    Activate,
    Reset,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinkRecord {
    user: Id,
    purpose: LinkPurpose,
    auth_revision: u64,
}

/// How an activation reached the user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivationSent {
    /// The welcome message was queued to the user's e-mail address.
    pub mailed: bool,
    /// The link, for the admin to hand over, when it was not mailed (no mail sender, or asked for).
    pub link: Option<String>,
    pub expires_at: DateTime<Utc>,
}

fn link_key(token: &str) -> String {
    crate::crypto::sha256_hex(token.as_bytes())
}

impl Directory {
    pub fn mail_settings(&self) -> &MailSettings {
        &self.mail
    }

    /// Where people reach this Stratus (`public_base_url`): the base of every link in mail. Set once, when the
    /// HTTPS listener knows its address.
    pub fn set_public_base_url(&self, url: &str) {
        let _ = self
            .public_base_url
            .set(url.trim_end_matches('/').to_string());
    }

    fn base_url(&self) -> &str {
        self.public_base_url
            .get()
            .map_or("https://127.0.0.1:8443", String::as_str)
    }

    fn sender_name(&self) -> String {
        self.org()
            .map_or_else(|| "Stratus".into(), |o| o.name.clone())
    }

    /// Put a message in the queue. Its text is sealed (it may carry a link that signs someone in).
    pub(crate) async fn queue_mail(
        &self,
        purpose: Purpose,
        user: Option<&User>,
        message: Message,
    ) -> Result<Id> {
        let now = Utc::now();
        let q = Queued {
            id: Id::generate(),
            purpose,
            user: user.map(|u| u.id.clone()),
            message,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
        };
        self.put_queued(&q, now + mail::queue_lifetime())?;
        let mut e = Event::new(Service::Mail, "mail_queued", true)
            .actor("system")
            .detail("mail", q.id.to_string())
            .detail("purpose", serde_json::to_value(purpose).unwrap_or_default())
            .detail("to", q.message.to.clone());
        if let Some(u) = user {
            e = e.user(&u.username).target("user", &u.id);
        }
        self.record(e).await;
        Ok(q.id)
    }

    fn put_queued(&self, q: &Queued, expires: DateTime<Utc>) -> Result<()> {
        let plain = serde_json::to_vec(q).map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let sealed = self.master_key.seal(&format!("mail:{}", q.id), &plain);
        let bytes =
            serde_json::to_vec(&sealed).map_err(|e| DirectoryError::Internal(e.to_string()))?;
        self.store()
            .ephemeral_put(QUEUE, q.id.as_str(), &bytes, expires, false)?;
        Ok(())
    }

    fn open_queued(&self, key: &str, bytes: &[u8]) -> Option<Queued> {
        let sealed: crate::crypto::Sealed = serde_json::from_slice(bytes).ok()?;
        let plain = self.master_key.open(&format!("mail:{key}"), &sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }

    fn queued(&self) -> Result<Vec<Queued>> {
        let entries = self.store().ephemeral_scan(QUEUE, "", 10_000)?;
        Ok(entries
            .iter()
            .filter_map(|(k, v)| self.open_queued(k, v))
            .collect())
    }

    /// Messages due now, oldest first.
    pub fn mail_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Queued>> {
        let mut due: Vec<Queued> = self
            .queued()?
            .into_iter()
            .filter(|q| q.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|q| q.created_at);
        due.truncate(limit);
        Ok(due)
    }

    /// The queue as admins see it, oldest first.
    pub fn mail_queue(&self) -> Result<Vec<QueuedView>> {
        let mut all: Vec<QueuedView> = self.queued()?.iter().map(QueuedView::from).collect();
        all.sort_by_key(|q| q.created_at);
        Ok(all)
    }

    /// Take the lease on a message: only the node that gets it sends it (for two minutes).
    pub fn mail_lease(&self, id: &Id) -> Result<bool> {
        let until = Utc::now() + Duration::seconds(LEASE_SECONDS);
        Ok(self
            .store()
            .ephemeral_put(LEASES, id.as_str(), b"", until, true)?)
    }

    fn mail_event(q: &Queued, event_type: &str, success: bool) -> Event {
        let mut e = Event::new(Service::Mail, event_type, success)
            .actor("system")
            .detail("mail", q.id.to_string())
            .detail(
                "purpose",
                serde_json::to_value(q.purpose).unwrap_or_default(),
            )
            .detail("to", q.message.to.clone())
            .detail("attempt", q.attempts + 1);
        if let Some(u) = &q.user {
            e = e.target("user", u);
        }
        e
    }

    /// A message was accepted by the mail server: it leaves the queue.
    pub async fn mail_sent(&self, q: &Queued) -> Result<()> {
        self.store().ephemeral_delete(QUEUE, q.id.as_str())?;
        self.store().ephemeral_delete(LEASES, q.id.as_str())?;
        self.record(self.with_username(Self::mail_event(q, "mail_sent", true), q))
            .await;
        Ok(())
    }

    /// A delivery failed: try again later, or drop the message after the last attempt or a permanent refusal.
    pub async fn mail_failed(&self, q: &Queued, error: &str, permanent: bool) -> Result<()> {
        let error: String = error
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let mut next = q.clone();
        next.attempts += 1;
        next.last_error = Some(error.clone());
        let dropped = permanent || next.attempts >= mail::MAX_ATTEMPTS;
        if dropped {
            self.store().ephemeral_delete(QUEUE, q.id.as_str())?;
        } else {
            next.next_attempt_at =
                Utc::now() + mail::backoff(self.mail.retry_seconds, next.attempts - 1);
            self.put_queued(&next, q.created_at + mail::queue_lifetime())?;
        }
        self.store().ephemeral_delete(LEASES, q.id.as_str())?;
        let kind = if dropped {
            "mail_dropped"
        } else {
            "mail_failed"
        };
        let e = Self::mail_event(q, kind, false).reason(error);
        self.record(self.with_username(e, q)).await;
        Ok(())
    }

    fn with_username(&self, e: Event, q: &Queued) -> Event {
        match q
            .user
            .as_ref()
            .and_then(|u| self.snapshot().user(u).cloned())
        {
            Some(u) => e.user(&u.username),
            None => e,
        }
    }

    /// Queue an admin's test message.
    pub async fn send_test_mail(&self, actor: &crate::access::Actor, to: &str) -> Result<Id> {
        actor.require(crate::access::Permission::ManageOrg)?;
        if !self.mail.enabled {
            return Err(DirectoryError::invalid(
                "mail",
                "no mail server is configured ([mail] in stratus.toml)",
            ));
        }
        let to = to.trim();
        if !to.contains('@') || to.len() > 254 || to.chars().any(char::is_control) {
            return Err(DirectoryError::invalid("to", "not an e-mail address"));
        }
        let org = self.sender_name();
        let id = self
            .queue_mail(
                Purpose::Test,
                None,
                mail::test(to, &mail::Sender { org: &org }),
            )
            .await?;
        self.record(admin_event(actor, "mail_test").detail("to", to.to_string()))
            .await;
        Ok(id)
    }

    // ---- Links ----

    fn issue_link(&self, user: &User, purpose: LinkPurpose) -> Result<(String, DateTime<Utc>)> {
        let token = data_encoding::BASE64URL_NOPAD.encode(&crate::crypto::random_bytes(32));
        let expires = Utc::now()
            + match purpose {
                LinkPurpose::Activate => Duration::days(self.mail.activation_days),
                LinkPurpose::Reset => Duration::minutes(self.mail.reset_minutes),
            };
        let rec = LinkRecord {
            user: user.id.clone(),
            purpose,
            auth_revision: user.auth_revision,
        };
        let bytes =
            serde_json::to_vec(&rec).map_err(|e| DirectoryError::Internal(e.to_string()))?;
        self.store()
            .ephemeral_put(LINKS, &link_key(&token), &bytes, expires, false)?;
        Ok((token, expires))
    }

    /// The address of a link's page.
    pub fn link_url(&self, purpose: LinkPurpose, token: &str) -> String {
        let page = match purpose {
            LinkPurpose::Activate => "activate",
            LinkPurpose::Reset => "reset-password",
        };
        format!("{}/{page}?token={token}", self.base_url())
    }

    /// Whether a user may still use a link made for them with `rec`.
    fn link_holds(rec: &LinkRecord, u: &User) -> bool {
        u.auth_revision == rec.auth_revision
            && match rec.purpose {
                LinkPurpose::Activate => {
                    u.password_hash.is_none() && u.state != UserState::Suspended
                }
                LinkPurpose::Reset => u.state == UserState::Active,
            }
    }

    /// The user a link is (still) good for.
    pub fn link_user(&self, token: &str, purpose: LinkPurpose) -> Option<Arc<User>> {
        let bytes = self.store().ephemeral_get(LINKS, &link_key(token)).ok()??;
        let rec: LinkRecord = serde_json::from_slice(&bytes).ok()?;
        let user = self.snapshot().user(&rec.user).cloned()?;
        (rec.purpose == purpose && Self::link_holds(&rec, &user)).then_some(user)
    }

    /// Use a link: set the password it is for (after the policy accepts it), once. Activation also makes a
    /// staged user active; a reset ends every session (the password changed) and sends a notice.
    pub async fn complete_link(
        &self,
        token: &str,
        purpose: LinkPurpose,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<UserView> {
        let gone = || DirectoryError::invalid("token", "this link is not valid any more");
        let user = self.link_user(token, purpose).ok_or_else(gone)?;
        let snap = self.snapshot();
        let prepared = self
            .prepare_password(&snap, Some(&user), &user.username, password)
            .await?;
        // The policy accepted the password: only now is the link spent, by exactly one request.
        let bytes = self
            .store()
            .ephemeral_take(LINKS, &link_key(token))?
            .ok_or_else(gone)?;
        let rec: LinkRecord =
            serde_json::from_slice(&bytes).map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let event_type = match purpose {
            LinkPurpose::Activate => "user_activate",
            LinkPurpose::Reset => "password_reset",
        };
        let service = Service::Portal;
        let user = self
            .write(move |tx| {
                let current = tx.user_at(&rec.user, None)?;
                if rec.purpose != purpose || !Self::link_holds(&rec, &current) {
                    return Err(gone());
                }
                let mut u = (*current).clone();
                self.apply_password(tx, &mut u, prepared);
                if purpose == LinkPurpose::Activate && u.state == UserState::Staged {
                    u.state = UserState::Active;
                }
                tx.event(
                    Event::new(service, event_type, true)
                        .actor(u.username.clone())
                        .client(client_ip)
                        .user(&u.username)
                        .target("user", &u.id)
                        .detail("via", "e-mail link"),
                );
                Ok(tx.put_user(u))
            })
            .await?;
        self.offer_password(&user, password, false);
        if purpose == LinkPurpose::Reset && self.mail.enabled && !user.email.is_empty() {
            let org = self.sender_name();
            let m = mail::password_changed(
                &user.email,
                &greeting(&user),
                Utc::now(),
                &format!("{}/portal", self.base_url()),
                &mail::Sender { org: &org },
            );
            if let Err(e) = self
                .queue_mail(Purpose::PasswordChanged, Some(&user), m)
                .await
            {
                tracing::warn!(error = %e, "the password-changed notice could not be queued");
            }
        }
        Ok(UserView::of(&user, &self.snapshot(), Utc::now()))
    }

    /// Make an activation link for a user whose password is pending, and mail it (unless `hand_over`, or no
    /// mail sender is configured: then the link is returned for the admin to pass on).
    pub async fn send_activation(
        &self,
        actor: &crate::access::Actor,
        id: &Id,
        hand_over: bool,
    ) -> Result<ActivationSent> {
        actor.require(crate::access::Permission::ResetCredentials)?;
        let user = self
            .snapshot()
            .user(id)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("user", id))?;
        if user.password_hash.is_some() {
            return Err(DirectoryError::invalid(
                "password",
                "the user already has a password; use a password reset instead",
            ));
        }
        if user.state == UserState::Suspended {
            return Err(DirectoryError::invalid("state", "the user is suspended"));
        }
        let mailed = self.mail.enabled && !hand_over && !user.email.is_empty();
        let (token, expires_at) = self.issue_link(&user, LinkPurpose::Activate)?;
        let link = self.link_url(LinkPurpose::Activate, &token);
        if mailed {
            self.queue_activation(&user, &link).await?;
        }
        self.record(
            admin_event(actor, "activation_link")
                .user(&user.username)
                .target("user", &user.id)
                .detail("mailed", mailed),
        )
        .await;
        Ok(ActivationSent {
            mailed,
            link: (!mailed).then_some(link),
            expires_at,
        })
    }

    async fn queue_activation(&self, user: &User, link: &str) -> Result<Id> {
        let org = self.sender_name();
        let m = mail::activation(
            &user.email,
            &greeting(user),
            &user.username,
            link,
            self.mail.activation_days,
            &mail::Sender { org: &org },
        );
        self.queue_mail(Purpose::Activation, Some(user), m).await
    }

    /// Welcome users just created with a pending password (API, CSV import, SCIM): when mail is configured,
    /// each with an e-mail address gets an activation message. Best effort: a failure is logged, the user stays.
    pub(crate) async fn welcome(&self, ids: &[Id]) {
        if !self.mail.enabled {
            return;
        }
        for id in ids {
            let Some(user) = self.snapshot().user(id).cloned() else {
                continue;
            };
            if user.password_hash.is_some()
                || user.email.is_empty()
                || user.state == UserState::Suspended
            {
                continue;
            }
            let sent = match self.issue_link(&user, LinkPurpose::Activate) {
                Ok((token, _)) => {
                    let link = self.link_url(LinkPurpose::Activate, &token);
                    self.queue_activation(&user, &link).await.map(|_| ())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::warn!(user = %user.id, error = %e, "the welcome message could not be queued");
            }
        }
    }

    /// "Forgot password": the same answer whatever `typed` names (the caller answers before this finishes),
    /// limited per address and per source. A known active user with a password gets a reset link, a user whose
    /// password is still pending a new activation link; anyone else nothing. Every request is an event.
    pub async fn forgot_password(&self, typed: &str, client_ip: Option<IpAddr>) {
        let typed = typed.trim();
        let now = Utc::now();
        let hour = now.timestamp() / 3600;
        let until = DateTime::from_timestamp((hour + 1) * 3600, 0).unwrap_or(now);
        let snap = self.snapshot();
        let user = snap
            .user_by_username(&self.login_name(typed))
            .cloned()
            .or_else(|| snap.user_by_mail(typed).cloned());
        let who = match &user {
            Some(u) => u.username.clone(),
            None => crate::crypto::unknown_name(&self.master_key, typed),
        };
        let target = user.as_ref().map(|u| u.id.clone());
        let event = |ok: bool, reason: &str| {
            let mut e = Event::new(Service::Portal, "password_reset_request", ok)
                .client(client_ip)
                .user(who.clone())
                .reason(reason);
            if let Some(id) = &target {
                e = e.target("user", id);
            }
            e
        };
        let count = |key: String| {
            self.store()
                .ephemeral_count(RATE, &format!("{key}/{hour}"), 1, until)
                .unwrap_or(u64::MAX)
        };
        if let Some(ip) = client_ip {
            if count(format!("ip:{ip}")) > RESETS_PER_SOURCE {
                self.record(event(false, "too many requests from this address"))
                    .await;
                return;
            }
        }
        if count(format!(
            "to:{}",
            crate::crypto::sha256_hex(crate::snapshot::fold(typed).as_bytes())
        )) > RESETS_PER_ADDRESS
        {
            self.record(event(false, "too many requests for this account"))
                .await;
            return;
        }
        let Some(user) = user else {
            self.record(event(false, "no such account")).await;
            return;
        };
        if !self.mail.enabled {
            self.record(event(false, "no mail server is configured"))
                .await;
            return;
        }
        if user.email.is_empty() || user.state == UserState::Suspended {
            self.record(event(false, "the account cannot reset its password"))
                .await;
            return;
        }
        let purpose = if user.password_hash.is_none() {
            LinkPurpose::Activate
        } else {
            LinkPurpose::Reset
        };
        let sent = match self.issue_link(&user, purpose) {
            Ok((token, _)) => {
                let link = self.link_url(purpose, &token);
                match purpose {
                    LinkPurpose::Activate => self.queue_activation(&user, &link).await,
                    LinkPurpose::Reset => {
                        let org = self.sender_name();
                        let m = mail::password_reset(
                            &user.email,
                            &greeting(&user),
                            &link,
                            self.mail.reset_minutes,
                            &mail::Sender { org: &org },
                        );
                        self.queue_mail(Purpose::PasswordReset, Some(&user), m)
                            .await
                    }
                }
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok(_) => self.record(event(true, "link sent")).await,
            Err(e) => {
                tracing::warn!(error = %e, "a reset link could not be queued");
                self.record(event(false, "the link could not be queued"))
                    .await;
            }
        }
    }

    /// Reminders for passwords that expire soon: each user gets one per configured day count, once.
    pub async fn send_expiry_reminders(&self) -> Result<usize> {
        if !self.mail.enabled {
            return Ok(0);
        }
        let snap = self.snapshot();
        let max_age = snap.policy.max_age_days;
        if max_age == 0 {
            return Ok(0);
        }
        let now = Utc::now();
        let org = self.sender_name();
        let portal = format!("{}/portal", self.base_url());
        let mut sent = 0;
        for u in snap.users.values() {
            let (Some(set), UserState::Active) = (u.password_set_at, u.state) else {
                continue;
            };
            if u.email.is_empty() || u.password_hash.is_none() {
                continue;
            }
            let expires = set + Duration::days(i64::from(max_age));
            let left = (expires - now).num_days();
            if expires <= now {
                continue;
            }
            // The smallest configured threshold the time left is within.
            let Some(days) = self
                .mail
                .expiry_reminder_days
                .iter()
                .copied()
                .filter(|d| left < *d)
                .min()
            else {
                continue;
            };
            // Once per user, password and threshold, across nodes and restarts.
            let key = format!("{}/{}/{days}", u.id, set.timestamp());
            if !self
                .store()
                .ephemeral_put("expiry-reminded", &key, b"", expires, true)?
            {
                continue;
            }
            let m = mail::expiry_reminder(
                &u.email,
                &greeting(u),
                expires,
                &portal,
                &mail::Sender { org: &org },
            );
            self.queue_mail(Purpose::ExpiryReminder, Some(u), m).await?;
            sent += 1;
        }
        Ok(sent)
    }
}

/// How a message greets a user.
fn greeting(u: &User) -> String {
    match (u.firstname.trim(), u.display_name.as_deref().map(str::trim)) {
        (_, Some(d)) if !d.is_empty() => d.to_string(),
        (f, _) if !f.is_empty() => f.to_string(),
        _ => u.username.clone(),
    }
}
