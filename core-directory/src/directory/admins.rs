//! Admins, API keys and admin login.

use super::settings::admin_event;
use super::{Directory, Tx};
use crate::access::{Actor, Permission};
use crate::crypto;
use crate::error::{DirectoryError, Result};
use crate::events::{Event, Service};
use crate::id::Id;
use crate::model::*;
use crate::snapshot::fold;
use crate::store::Kind;
use crate::totp;
use crate::views::{AdminPatch, AdminView, ApiKeyView, NewAdmin, TotpStart};
use chrono::{Duration, Utc};
use std::net::IpAddr;
use std::sync::Arc;

/// Prefix of every API token, so leaked tokens are recognisable by scanners.
pub const API_TOKEN_PREFIX: &str = "stratus_";

/// A new random API token.
pub fn generate_api_token() -> String {
    format!(
        "{API_TOKEN_PREFIX}{}",
        data_encoding::BASE64URL_NOPAD.encode(&crypto::random_bytes(32))
    )
}

pub(crate) fn admin_totp_purpose(id: &Id) -> String {
    format!("admin-totp:{id}")
}

pub(crate) fn new_admin_record(
    tx: &Tx,
    email: &str,
    name: &str,
    role: AdminRole,
    password_hash: Option<String>,
) -> Result<Admin> {
    let email = super::users::validate_email(email)?;
    if tx.snap.admin_by_email.contains_key(&fold(&email)) {
        return Err(DirectoryError::conflict(
            "email",
            format!("an admin with e-mail `{email}` already exists"),
        ));
    }
    Ok(Admin {
        id: Id::generate(),
        email,
        name: super::text("name", name, 256)?,
        role,
        password_hash,
        totp: None,
        failed_logins: 0,
        locked_until: None,
        auth_revision: 0,
        password_must_change: false,
        created_at: tx.now,
        updated_at: tx.now,
    })
}

pub(crate) fn insert_api_key(tx: &mut Tx, name: &str, admin: &Id, token: &str) -> ApiKey {
    let key = ApiKey {
        id: Id::generate(),
        name: name.to_string(),
        admin_id: admin.clone(),
        prefix: token.chars().take(API_TOKEN_PREFIX.len() + 4).collect(),
        token_sha256: crypto::sha256_hex(token.as_bytes()),
        created_at: tx.now,
        last_used_at: None,
    };
    tx.batch.put_json(Kind::ApiKey, key.id.as_str(), &key);
    tx.snap.put_api_key(Arc::new(key.clone()));
    key
}

/// Outcome of an admin login attempt.
#[derive(Debug)]
pub enum AdminLogin {
    Allowed(Actor),
    /// Password was right; a TOTP code is needed.
    NeedOtp,
    Denied,
}

impl Directory {
    pub fn list_admins(&self) -> Vec<AdminView> {
        let now = Utc::now();
        let mut v: Vec<_> = self
            .snapshot()
            .admins
            .values()
            .map(|a| AdminView::of(a, now))
            .collect();
        v.sort_by(|a, b| a.email.cmp(&b.email));
        v
    }

    pub fn get_admin(&self, id: &Id) -> Result<AdminView> {
        let snap = self.snapshot();
        let a = snap
            .admins
            .get(id)
            .ok_or_else(|| DirectoryError::not_found("admin", id))?;
        Ok(AdminView::of(a, Utc::now()))
    }

    async fn admin_password_hash(&self, email: &str, password: &str) -> Result<String> {
        let policy = self.password_policy();
        let local = email.split('@').next().unwrap_or_default();
        crate::policy::check_password(&policy, local, password)?;
        self.hasher
            .hash(password)
            .await
            .map_err(|e| DirectoryError::Internal(e.to_string()))
    }

    pub async fn create_admin(&self, actor: &Actor, input: NewAdmin) -> Result<AdminView> {
        actor.require(Permission::ManageOrg)?;
        let hash = match input.password.as_deref() {
            Some(p) => Some(self.admin_password_hash(&input.email, p).await?),
            None => None,
        };
        let actor = actor.clone();
        let admin = self
            .write(move |tx| {
                let a = new_admin_record(tx, &input.email, &input.name, input.role, hash)?;
                tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
                tx.snap.put_admin(Arc::new(a.clone()));
                tx.event(
                    admin_event(&actor, "admin_create")
                        .target("admin", &a.id)
                        .detail("email", a.email.clone()),
                );
                Ok(a)
            })
            .await?;
        Ok(AdminView::of(&admin, Utc::now()))
    }

    pub async fn update_admin(
        &self,
        actor: &Actor,
        id: &Id,
        patch: AdminPatch,
    ) -> Result<AdminView> {
        let own = actor.admin_id.as_ref() == Some(id);
        // Admins may change their own name and password; everything else needs org management.
        if !own || patch.role.is_some() {
            actor.require(Permission::ManageOrg)?;
        }
        let current = self
            .snapshot()
            .admins
            .get(id)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("admin", id))?;
        let hash = match patch.password.as_deref() {
            Some(p) => Some(self.admin_password_hash(&current.email, p).await?),
            None => None,
        };
        let actor = actor.clone();
        let id = id.clone();
        let admin = self
            .write(move |tx| {
                let mut a = (**tx
                    .snap
                    .admins
                    .get(&id)
                    .ok_or_else(|| DirectoryError::not_found("admin", &id))?)
                .clone();
                if let Some(n) = patch.name {
                    a.name = super::text("name", &n, 256)?;
                }
                if let Some(r) = patch.role {
                    if a.role == AdminRole::Administrator
                        && r != AdminRole::Administrator
                        && count_administrators(tx) <= 1
                    {
                        return Err(DirectoryError::invalid(
                            "role",
                            "the last administrator cannot be demoted",
                        ));
                    }
                    a.role = r;
                }
                if let Some(h) = hash {
                    a.password_hash = Some(h);
                    a.failed_logins = 0;
                    a.locked_until = None;
                    a.auth_revision += 1;
                    // A password someone else chose is one-time.
                    a.password_must_change = !own;
                }
                a.updated_at = tx.now;
                tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
                tx.snap.put_admin(Arc::new(a.clone()));
                tx.event(admin_event(&actor, "admin_update").target("admin", &a.id));
                Ok(a)
            })
            .await?;
        Ok(AdminView::of(&admin, Utc::now()))
    }

    /// The calling admin replaces their own password, proving the current one (the console's change-password
    /// page; also how a one-time password is replaced). Sessions made before end; the new revision is returned so
    /// the caller can carry its own session over.
    pub async fn change_own_admin_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
    ) -> Result<u64> {
        let id = actor
            .admin_id
            .clone()
            .ok_or_else(|| DirectoryError::invalid("admin", "not an admin"))?;
        let admin = self
            .snapshot()
            .admins
            .get(&id)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("admin", &id))?;
        let ok = match &admin.password_hash {
            Some(h) => self.hasher.verify(h, current).await,
            None => false,
        };
        if !ok {
            return Err(DirectoryError::invalid(
                "current_password",
                "the current password is not right",
            ));
        }
        if current == new {
            return Err(DirectoryError::invalid(
                "new_password",
                "choose a password different from the current one",
            ));
        }
        let hash = self.admin_password_hash(&admin.email, new).await?;
        let actor = actor.clone();
        self.write(move |tx| {
            // The password verified above must still be the one on file.
            let mut a = (**tx
                .snap
                .admins
                .get(&id)
                .ok_or_else(|| DirectoryError::not_found("admin", &id))?)
            .clone();
            if a.auth_revision != admin.auth_revision {
                return Err(DirectoryError::PreconditionFailed {
                    kind: "admin",
                    id: id.to_string(),
                    expected: admin.auth_revision,
                    current: a.auth_revision,
                });
            }
            a.password_hash = Some(hash);
            a.password_must_change = false;
            a.failed_logins = 0;
            a.auth_revision += 1;
            a.updated_at = tx.now;
            let revision = a.auth_revision;
            tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
            tx.snap.put_admin(Arc::new(a));
            tx.event(admin_event(&actor, "admin_password_change").target("admin", &id));
            Ok(revision)
        })
        .await
    }

    pub async fn delete_admin(&self, actor: &Actor, id: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        if actor.admin_id.as_ref() == Some(id) {
            return Err(DirectoryError::invalid(
                "id",
                "administrators cannot delete their own account",
            ));
        }
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            let a = tx
                .snap
                .admins
                .get(&id)
                .cloned()
                .ok_or_else(|| DirectoryError::not_found("admin", &id))?;
            if a.role == AdminRole::Administrator && count_administrators(tx) <= 1 {
                return Err(DirectoryError::invalid(
                    "id",
                    "the last administrator cannot be deleted",
                ));
            }
            tx.snap.remove_admin(&id);
            tx.batch.delete(Kind::Admin, id.as_str());
            let keys: Vec<Id> = tx
                .snap
                .api_keys
                .values()
                .filter(|k| k.admin_id == id)
                .map(|k| k.id.clone())
                .collect();
            for k in keys {
                tx.snap.remove_api_key(&k);
                tx.batch.delete(Kind::ApiKey, k.as_str());
            }
            tx.event(
                admin_event(&actor, "admin_delete")
                    .target("admin", &id)
                    .detail("email", a.email.clone()),
            );
            Ok(())
        })
        .await
    }

    pub fn list_api_keys(&self) -> Vec<ApiKeyView> {
        let mut v: Vec<_> = self
            .snapshot()
            .api_keys
            .values()
            .map(|k| ApiKeyView::from(&**k))
            .collect();
        v.sort_by_key(|k| k.created_at);
        v
    }

    /// Create an API key acting as the calling admin; the token is returned once.
    pub async fn create_api_key(&self, actor: &Actor, name: &str) -> Result<(ApiKeyView, String)> {
        actor.require(Permission::Read)?;
        let admin_id = actor
            .admin_id
            .clone()
            .ok_or_else(|| DirectoryError::invalid("admin", "API keys belong to an admin"))?;
        let name = super::required("name", name)?;
        let token = generate_api_token();
        let actor = actor.clone();
        let t = token.clone();
        let key = self
            .write(move |tx| {
                let key = insert_api_key(tx, &name, &admin_id, &t);
                tx.event(
                    admin_event(&actor, "api_key_create")
                        .target("api_key", &key.id)
                        .detail("name", name.clone()),
                );
                Ok(key)
            })
            .await?;
        Ok((ApiKeyView::from(&key), token))
    }

    pub async fn delete_api_key(&self, actor: &Actor, id: &Id) -> Result<()> {
        let snap = self.snapshot();
        let key = snap
            .api_keys
            .get(id)
            .ok_or_else(|| DirectoryError::not_found("api key", id))?;
        if actor.admin_id.as_ref() != Some(&key.admin_id) {
            actor.require(Permission::ManageOrg)?;
        }
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            tx.snap
                .remove_api_key(&id)
                .ok_or_else(|| DirectoryError::not_found("api key", &id))?;
            tx.batch.delete(Kind::ApiKey, id.as_str());
            tx.event(admin_event(&actor, "api_key_delete").target("api_key", &id));
            Ok(())
        })
        .await
    }

    /// The admin an API token acts as. Lookup is by SHA-256 of the token, so no token is ever compared in clear.
    pub fn resolve_api_key(
        &self,
        token: &str,
        service: Service,
        ip: Option<IpAddr>,
    ) -> Option<Actor> {
        let snap = self.snapshot();
        let id = snap
            .api_key_by_hash
            .get(&crypto::sha256_hex(token.as_bytes()))?;
        let key = snap.api_keys.get(id)?;
        let admin = snap.admins.get(&key.admin_id)?;
        Some(Actor {
            admin_id: Some(admin.id.clone()),
            label: admin.email.clone(),
            via: Some(format!("api-key:{}", key.name)),
            role: admin.role,
            service,
            client_ip: ip,
            scim_token: None,
        })
    }

    /// The revocation rule for admin console sessions: the admin still exists, is not locked, and had no
    /// password set and no lock since the session began (when their `auth_revision` was `revision`).
    pub fn admin_session_valid(&self, id: &Id, revision: u64) -> bool {
        self.snapshot().admins.get(id).is_some_and(|a| {
            a.auth_revision == revision && a.locked_until.is_none_or(|t| t <= Utc::now())
        })
    }

    /// An admin's `auth_revision` (what a new session remembers).
    pub fn admin_revision(&self, id: &Id) -> Option<u64> {
        self.snapshot().admins.get(id).map(|a| a.auth_revision)
    }

    /// The actor for an admin id (sessions).
    pub fn admin_actor(&self, id: &Id, service: Service, ip: Option<IpAddr>) -> Option<Actor> {
        let snap = self.snapshot();
        let admin = snap.admins.get(id)?;
        Some(Actor {
            admin_id: Some(admin.id.clone()),
            label: admin.email.clone(),
            via: Some("session".into()),
            role: admin.role,
            service,
            client_ip: ip,
            scim_token: None,
        })
    }

    /// Admin console login: password, then TOTP when enrolled. Lockout follows the org policy.
    pub async fn admin_login(
        &self,
        email: &str,
        password: &str,
        otp: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<AdminLogin> {
        let source = crate::throttle::source_key(ip, None);
        match self.throttle.check(ip, source.as_deref()) {
            crate::throttle::Verdict::Go => {}
            crate::throttle::Verdict::Wait(d) => tokio::time::sleep(d).await,
            crate::throttle::Verdict::Refuse { first } => {
                if first {
                    self.record(
                        Event::new(Service::Admin, "auth_throttled", false)
                            .client(ip)
                            .reason(crate::auth::DenyReason::Throttled.describe()),
                    )
                    .await;
                }
                return Ok(AdminLogin::Denied);
            }
        }
        let snap = self.snapshot();
        let now = Utc::now();
        // An e-mail that matches no administrator is recorded only as a keyed digest: it may be a password.
        let known = snap.admin_by_mail(email).is_some();
        let who = if known {
            email.to_string()
        } else {
            crate::crypto::unknown_name(&self.master_key, email)
        };
        let event = |ok: bool, reason: Option<&str>| {
            let mut e = Event::new(Service::Admin, "admin_login", ok)
                .actor(who.clone())
                .client(ip);
            if let Some(r) = reason {
                e = e.reason(r);
            }
            e
        };
        let Some(admin) = snap.admin_by_mail(email).cloned() else {
            self.hasher.verify(&self.dummy_hash, password).await;
            self.count_failure(ip, None);
            self.record(event(false, Some("unknown admin"))).await;
            return Ok(AdminLogin::Denied);
        };
        if admin.locked_until.is_some_and(|t| t > now) {
            self.record(event(false, Some("account locked"))).await;
            return Ok(AdminLogin::Denied);
        }
        let ok = match &admin.password_hash {
            Some(h) => self.hasher.verify(h, password).await,
            None => false,
        };
        if !ok {
            self.count_failure(ip, None);
            self.admin_failure(&admin.id).await?;
            self.record(event(false, Some("wrong password"))).await;
            return Ok(AdminLogin::Denied);
        }
        if let Some(t) = admin.totp.as_ref().filter(|t| t.confirmed) {
            let Some(code) = otp.filter(|c| !c.is_empty()) else {
                return Ok(AdminLogin::NeedOtp);
            };
            if !self.check_totp(
                &admin.id,
                &admin_totp_purpose(&admin.id),
                &t.secret,
                code,
                now,
            ) {
                self.count_failure(ip, None);
                self.admin_failure(&admin.id).await?;
                self.record(event(false, Some("wrong or reused verification code")))
                    .await;
                return Ok(AdminLogin::Denied);
            }
        }
        if admin.failed_logins > 0 {
            let id = admin.id.clone();
            self.write(move |tx| {
                if let Some(a) = tx.snap.admins.get(&id).cloned() {
                    let mut a = (*a).clone();
                    a.failed_logins = 0;
                    tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
                    tx.snap.put_admin(Arc::new(a));
                }
                Ok(())
            })
            .await?;
        }
        self.record(event(true, None).target("admin", &admin.id))
            .await;
        Ok(AdminLogin::Allowed(Actor {
            admin_id: Some(admin.id.clone()),
            label: admin.email.clone(),
            via: Some("password".into()),
            role: admin.role,
            service: Service::Admin,
            client_ip: ip,
            scim_token: None,
        }))
    }

    async fn admin_failure(&self, id: &Id) -> Result<()> {
        let id = id.clone();
        self.write(move |tx| {
            let policy = Arc::clone(&tx.snap.policy);
            if let Some(a) = tx.snap.admins.get(&id).cloned() {
                let mut a = (*a).clone();
                a.failed_logins += 1;
                if policy.lockout.enabled && a.failed_logins >= policy.lockout.max_failures {
                    a.locked_until = Some(lock_until(&policy, tx.now));
                    a.auth_revision += 1;
                }
                tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
                tx.snap.put_admin(Arc::new(a));
            }
            Ok(())
        })
        .await
    }

    /// Start TOTP enrolment for the calling admin.
    pub async fn start_admin_totp(&self, actor: &Actor) -> Result<TotpStart> {
        let id = actor
            .admin_id
            .clone()
            .ok_or_else(|| DirectoryError::invalid("admin", "not an admin"))?;
        let secret = totp::generate_secret();
        let sealed = self.master_key.seal(&admin_totp_purpose(&id), &secret);
        let issuer = self
            .org()
            .map_or_else(|| "Stratus".into(), |o| format!("{} admin", o.name));
        let actor = actor.clone();
        self.write(move |tx| {
            let mut a = (**tx
                .snap
                .admins
                .get(&id)
                .ok_or_else(|| DirectoryError::not_found("admin", &id))?)
            .clone();
            a.totp = Some(TotpEnrolment {
                secret: sealed,
                confirmed: false,
                created_at: tx.now,
            });
            let start = TotpStart {
                secret: totp::secret_base32(&secret),
                otpauth_uri: totp::otpauth_uri(&issuer, &a.email, &secret),
            };
            tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
            tx.snap.put_admin(Arc::new(a));
            tx.event(admin_event(&actor, "admin_totp_enrol_start").target("admin", &id));
            Ok(start)
        })
        .await
    }

    /// Confirm the calling admin's TOTP enrolment.
    pub async fn confirm_admin_totp(&self, actor: &Actor, code: &str) -> Result<AdminView> {
        let id = actor
            .admin_id
            .clone()
            .ok_or_else(|| DirectoryError::invalid("admin", "not an admin"))?;
        let admin = self
            .snapshot()
            .admins
            .get(&id)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("admin", &id))?;
        let Some(t) = &admin.totp else {
            return Err(DirectoryError::invalid(
                "code",
                "no TOTP enrolment has been started",
            ));
        };
        if !self.check_totp(&id, &admin_totp_purpose(&id), &t.secret, code, Utc::now()) {
            return Err(DirectoryError::invalid(
                "code",
                "the verification code is not valid",
            ));
        }
        let actor = actor.clone();
        let a = self
            .write(move |tx| {
                let mut a = (**tx
                    .snap
                    .admins
                    .get(&id)
                    .ok_or_else(|| DirectoryError::not_found("admin", &id))?)
                .clone();
                if let Some(t) = a.totp.as_mut() {
                    t.confirmed = true;
                }
                tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
                tx.snap.put_admin(Arc::new(a.clone()));
                tx.event(admin_event(&actor, "admin_totp_enrol_confirm").target("admin", &id));
                Ok(a)
            })
            .await?;
        Ok(AdminView::of(&a, Utc::now()))
    }

    /// The TOTP secret of an admin (tests compute codes with it).
    pub fn admin_totp_secret(&self, admin: &Admin) -> Option<Vec<u8>> {
        let t = admin.totp.as_ref()?;
        self.master_key
            .open(&admin_totp_purpose(&admin.id), &t.secret)
            .ok()
    }
}

fn count_administrators(tx: &Tx) -> usize {
    tx.snap
        .admins
        .values()
        .filter(|a| a.role == AdminRole::Administrator)
        .count()
}

/// When a lock that starts now ends.
pub(crate) fn lock_until(
    policy: &PasswordPolicy,
    now: chrono::DateTime<Utc>,
) -> chrono::DateTime<Utc> {
    if policy.lockout.lock_minutes == 0 {
        lock_forever()
    } else {
        now + Duration::minutes(i64::from(policy.lockout.lock_minutes))
    }
}
