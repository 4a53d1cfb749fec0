//! External directories (Active Directory, an LDAP directory) and password takeover. A directory is a resource:
//! the groups bound to it decide who has an account there. Stratus pushes an account's attributes and, when it
//! has it in hand, its password: at a sign-in to the portal or the login page after the binding or after any
//! change to the user's record, and whenever the user's password is set in Stratus (a change, a reset, an
//! activation, an admin setting it). The cleartext password goes to the connector through an in-memory channel
//! and is never stored; a push that fails is recorded and the password goes again at the next sign-in.
//! Everything else — attribute updates, disabling the account when the user is no longer bound, suspended or
//! deleted — follows from the stored state ([`ExternalAccount`]) and is retried until it holds. The connectors
//! (another crate) speak the wire protocols; this module decides what is pushed and records what happened.

use super::{admin_event, Directory};
use crate::access::{Actor, Permission};
use crate::error::{DirectoryError, Result};
use crate::events::{Event, Service};
use crate::id::Id;
use crate::model::*;
use crate::store::Kind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use zeroize::Zeroizing;

/// A password to push to every external directory a user is bound to: it lives only in this message.
pub struct TakeoverRequest {
    pub user: Id,
    pub password: Zeroizing<String>,
}

/// Create or change an external directory.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalDirectoryInput {
    pub name: String,
    pub kind: ExternalKind,
    /// `ldaps://host[:port]`; `ldap://` only to a directory on this machine's loopback.
    pub url: String,
    pub bind_dn: String,
    /// Required on creation; absent on a change keeps the stored one.
    pub bind_password: Option<String>,
    pub users_dn: String,
    #[serde(default)]
    pub groups_dn: Option<String>,
    /// A CA certificate (PEM) to trust for this directory.
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

/// An external directory as the API shows it (never its bind password).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExternalDirectoryView {
    pub id: Id,
    pub name: String,
    pub kind: ExternalKind,
    pub url: String,
    pub bind_dn: String,
    pub users_dn: String,
    pub groups_dn: Option<String>,
    pub ca_certificate: Option<String>,
    pub bound_groups: Vec<Id>,
    /// Accounts Stratus manages there, and how many of them last failed.
    pub accounts: usize,
    pub failing: usize,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One user's account in one external directory, for admins (per user and per directory) and the portal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExternalAccountView {
    pub directory: Id,
    pub directory_name: String,
    pub user: Id,
    pub username: String,
    pub remote_dn: String,
    pub active: bool,
    /// The password there is the user's current Stratus password.
    pub password_synced: bool,
    /// The attributes there are the user's current ones.
    pub attributes_synced: bool,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Work the connector does without a password: bring an account's attributes up to date, or disable it.
#[derive(Debug, Clone)]
pub enum ExternalWork {
    Update {
        directory: Arc<ExternalDirectory>,
        user: Arc<User>,
        remote_dn: String,
        groups: Vec<String>,
    },
    Disable {
        directory: Arc<ExternalDirectory>,
        user: Id,
        remote_dn: String,
    },
}

fn bind_purpose(id: &Id) -> String {
    format!("external:{id}")
}

fn is_loopback_url(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_matches(|c| c == '[' || c == ']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn validate(input: &ExternalDirectoryInput) -> Result<()> {
    let name = input.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(DirectoryError::invalid(
            "name",
            "name must be 1–100 characters",
        ));
    }
    let url = input.url.trim();
    let secure = url.starts_with("ldaps://");
    if !(secure || url.starts_with("ldap://") && is_loopback_url(url)) {
        return Err(DirectoryError::invalid(
            "url",
            "url must be ldaps://host[:port] (ldap:// only for a directory on loopback)",
        ));
    }
    for (field, v) in [("bind_dn", &input.bind_dn), ("users_dn", &input.users_dn)] {
        if !v.contains('=') || v.len() > 512 || v.chars().any(char::is_control) {
            return Err(DirectoryError::invalid(field, "not a DN"));
        }
    }
    if let Some(g) = &input.groups_dn {
        if !g.trim().is_empty() && (!g.contains('=') || g.chars().any(char::is_control)) {
            return Err(DirectoryError::invalid("groups_dn", "not a DN"));
        }
    }
    if let Some(ca) = &input.ca_certificate {
        if !ca.trim().is_empty() && !ca.contains("-----BEGIN CERTIFICATE-----") {
            return Err(DirectoryError::invalid(
                "ca_certificate",
                "ca_certificate must be a PEM certificate",
            ));
        }
    }
    Ok(())
}

fn opt(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Directory {
    fn external_view(&self, d: &ExternalDirectory) -> ExternalDirectoryView {
        let snap = self.snapshot();
        let mine: Vec<_> = snap
            .external_accounts
            .values()
            .filter(|a| a.directory == d.id)
            .collect();
        ExternalDirectoryView {
            id: d.id.clone(),
            name: d.name.clone(),
            kind: d.kind,
            url: d.url.clone(),
            bind_dn: d.bind_dn.clone(),
            users_dn: d.users_dn.clone(),
            groups_dn: d.groups_dn.clone(),
            ca_certificate: d.ca_certificate.clone(),
            bound_groups: snap.bound_groups(&Resource::Directory(d.id.clone())),
            accounts: mine.len(),
            failing: mine.iter().filter(|a| a.last_error.is_some()).count(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }

    pub async fn create_external_directory(
        &self,
        actor: &Actor,
        input: ExternalDirectoryInput,
    ) -> Result<ExternalDirectoryView> {
        actor.require(Permission::ManageOrg)?;
        validate(&input)?;
        let password = input
            .bind_password
            .clone()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| DirectoryError::invalid("bind_password", "bind_password is required"))?;
        let id = Id::generate();
        let sealed = self
            .master_key
            .seal(&bind_purpose(&id), password.as_bytes());
        let actor = actor.clone();
        let d = self
            .write(move |tx| {
                if tx
                    .snap
                    .external_directories
                    .values()
                    .any(|d| d.name.eq_ignore_ascii_case(input.name.trim()))
                {
                    return Err(DirectoryError::Conflict {
                        field: "name",
                        message: format!(
                            "an external directory named `{}` exists",
                            input.name.trim()
                        ),
                    });
                }
                let d = ExternalDirectory {
                    id: id.clone(),
                    name: input.name.trim().to_string(),
                    kind: input.kind,
                    url: input.url.trim().to_string(),
                    bind_dn: input.bind_dn.trim().to_string(),
                    bind_password: sealed,
                    users_dn: input.users_dn.trim().to_string(),
                    groups_dn: opt(&input.groups_dn),
                    ca_certificate: opt(&input.ca_certificate),
                    created_at: tx.now,
                    updated_at: tx.now,
                };
                tx.batch
                    .put_json(Kind::ExternalDirectory, d.id.as_str(), &d);
                tx.snap
                    .external_directories
                    .insert(d.id.clone(), Arc::new(d.clone()));
                tx.event(
                    admin_event(&actor, "external_directory_create")
                        .target("directory", &d.id)
                        .detail("kind", serde_json::to_value(d.kind).unwrap_or_default()),
                );
                Ok(d)
            })
            .await?;
        Ok(self.external_view(&d))
    }

    pub async fn update_external_directory(
        &self,
        actor: &Actor,
        id: &Id,
        input: ExternalDirectoryInput,
    ) -> Result<ExternalDirectoryView> {
        actor.require(Permission::ManageOrg)?;
        validate(&input)?;
        let sealed = input
            .bind_password
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| self.master_key.seal(&bind_purpose(id), p.as_bytes()));
        let actor = actor.clone();
        let id = id.clone();
        let d = self
            .write(move |tx| {
                let current = tx
                    .snap
                    .external_directories
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| DirectoryError::not_found("external directory", &id))?;
                let mut d = (*current).clone();
                d.name = input.name.trim().to_string();
                d.kind = input.kind;
                d.url = input.url.trim().to_string();
                d.bind_dn = input.bind_dn.trim().to_string();
                if let Some(s) = sealed {
                    d.bind_password = s;
                }
                d.users_dn = input.users_dn.trim().to_string();
                d.groups_dn = opt(&input.groups_dn);
                d.ca_certificate = opt(&input.ca_certificate);
                d.updated_at = tx.now;
                tx.batch
                    .put_json(Kind::ExternalDirectory, d.id.as_str(), &d);
                tx.snap
                    .external_directories
                    .insert(d.id.clone(), Arc::new(d.clone()));
                tx.event(
                    admin_event(&actor, "external_directory_update").target("directory", &d.id),
                );
                Ok(d)
            })
            .await?;
        Ok(self.external_view(&d))
    }

    /// Delete an external directory once no group is bound to it. The accounts there stay as they are.
    pub async fn delete_external_directory(&self, actor: &Actor, id: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            if !tx.snap.external_directories.contains_key(&id) {
                return Err(DirectoryError::not_found("external directory", &id));
            }
            if !tx
                .snap
                .bound_groups(&Resource::Directory(id.clone()))
                .is_empty()
            {
                return Err(DirectoryError::invalid(
                    "directory",
                    "unbind its groups first (their accounts there are disabled)",
                ));
            }
            tx.snap.external_directories.remove(&id);
            tx.batch.delete(Kind::ExternalDirectory, id.as_str());
            let accounts: Vec<_> = tx
                .snap
                .external_accounts
                .keys()
                .filter(|(d, _)| *d == id)
                .cloned()
                .collect();
            for (d, u) in accounts {
                tx.batch.delete(Kind::ExternalAccount, format!("{d}/{u}"));
                tx.snap.external_accounts.remove(&(d, u));
            }
            tx.event(admin_event(&actor, "external_directory_delete").target("directory", &id));
            Ok(())
        })
        .await
    }

    pub fn list_external_directories(&self, actor: &Actor) -> Result<Vec<ExternalDirectoryView>> {
        actor.require(Permission::Read)?;
        let snap = self.snapshot();
        let mut all: Vec<_> = snap
            .external_directories
            .values()
            .map(|d| self.external_view(d))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    pub fn get_external_directory(&self, actor: &Actor, id: &Id) -> Result<ExternalDirectoryView> {
        actor.require(Permission::Read)?;
        let snap = self.snapshot();
        let d = snap
            .external_directories
            .get(id)
            .ok_or_else(|| DirectoryError::not_found("external directory", id))?;
        Ok(self.external_view(d))
    }

    /// The bind password of a directory, for its connector.
    pub fn external_bind_password(&self, d: &ExternalDirectory) -> Option<Zeroizing<String>> {
        let bytes = self
            .master_key
            .open(&bind_purpose(&d.id), &d.bind_password)
            .ok()?;
        String::from_utf8(bytes).ok().map(Zeroizing::new)
    }

    /// The directories an active user is bound to, with the names of their groups bound to each.
    pub fn external_targets(&self, user: &Id) -> Vec<(Arc<ExternalDirectory>, Vec<String>)> {
        let snap = self.snapshot();
        let Some(u) = snap.user(user) else {
            return Vec::new();
        };
        if u.state != UserState::Active {
            return Vec::new();
        }
        let mut out = Vec::new();
        for d in snap.external_directories.values() {
            let groups = snap.granting_groups(user, &Resource::Directory(d.id.clone()));
            if !groups.is_empty() {
                let mut names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
                names.sort();
                out.push((Arc::clone(d), names));
            }
        }
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }

    /// Whether a signing-in user's password should go to an external directory now: bound somewhere where
    /// Stratus holds no account yet, or holds one whose password or attributes are older than the user's.
    pub(crate) fn takeover_due(&self, user: &User) -> bool {
        let snap = self.snapshot();
        self.external_targets(&user.id).iter().any(|(d, _)| {
            match snap.external_accounts.get(&(d.id.clone(), user.id.clone())) {
                None => true,
                Some(a) => {
                    !a.active
                        || a.password_revision != Some(user.auth_revision)
                        || a.record_revision != user.revision
                }
            }
        })
    }

    /// Where takeover requests go (the connectors, wired by the binary).
    pub fn set_password_takeover(&self, sender: tokio::sync::mpsc::Sender<TakeoverRequest>) {
        let _ = self.takeover.set(sender);
    }

    /// Hand a user's password to the connectors when they are bound to an external directory (and, for a
    /// sign-in, only when something there is out of date). Never waits: a full channel drops the request, and
    /// the next sign-in pushes again.
    pub(crate) fn offer_password(&self, user: &User, password: &str, sign_in: bool) {
        let Some(tx) = self.takeover.get() else {
            return;
        };
        let wanted = if sign_in {
            self.takeover_due(user)
        } else {
            !self.external_targets(&user.id).is_empty()
        };
        if wanted {
            let _ = tx.try_send(TakeoverRequest {
                user: user.id.clone(),
                password: Zeroizing::new(password.to_string()),
            });
        }
    }

    fn external_event(
        &self,
        kind: &str,
        d: &ExternalDirectory,
        user: &User,
        success: bool,
        password: bool,
    ) -> Event {
        Event::new(Service::Directory, kind, success)
            .actor("system")
            .user(&user.username)
            .target("user", &user.id)
            .detail("directory", d.id.to_string())
            .detail("directory_name", d.name.clone())
            .detail("password", password)
    }

    /// A push reached the directory: record what it now holds.
    pub async fn external_pushed(
        &self,
        d: &ExternalDirectory,
        user: &User,
        remote_dn: String,
        password: bool,
    ) -> Result<()> {
        let event = self.external_event("external_push", d, user, true, password);
        let (did, uid, revision, auth) = (
            d.id.clone(),
            user.id.clone(),
            user.revision,
            user.auth_revision,
        );
        self.write(move |tx| {
            let before = tx
                .snap
                .external_accounts
                .get(&(did.clone(), uid.clone()))
                .cloned();
            let a = ExternalAccount {
                directory: did.clone(),
                user: uid.clone(),
                remote_dn,
                active: true,
                record_revision: revision,
                password_revision: if password {
                    Some(auth)
                } else {
                    before.and_then(|b| b.password_revision)
                },
                last_error: None,
                updated_at: tx.now,
            };
            tx.batch
                .put_json(Kind::ExternalAccount, format!("{did}/{uid}"), &a);
            tx.snap.external_accounts.insert((did, uid), Arc::new(a));
            tx.event(event);
            Ok(())
        })
        .await
    }

    /// A push or a change failed: record why (an admin sees it per user and directory).
    pub async fn external_failed(
        &self,
        d: &ExternalDirectory,
        user: &User,
        error: &str,
        password: bool,
    ) -> Result<()> {
        let error: String = error
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        let event = self
            .external_event("external_push", d, user, false, password)
            .reason(error.clone());
        let (did, uid) = (d.id.clone(), user.id.clone());
        self.write(move |tx| {
            // A first push that failed leaves an inactive record, so admins see it and the next sign-in
            // tries again.
            let a = match tx.snap.external_accounts.get(&(did.clone(), uid.clone())) {
                Some(current) => ExternalAccount {
                    last_error: Some(error),
                    updated_at: tx.now,
                    ..(**current).clone()
                },
                None => ExternalAccount {
                    directory: did.clone(),
                    user: uid.clone(),
                    remote_dn: String::new(),
                    active: false,
                    record_revision: 0,
                    password_revision: None,
                    last_error: Some(error),
                    updated_at: tx.now,
                },
            };
            tx.batch
                .put_json(Kind::ExternalAccount, format!("{did}/{uid}"), &a);
            tx.snap.external_accounts.insert((did, uid), Arc::new(a));
            tx.event(event);
            Ok(())
        })
        .await
    }

    /// An account was disabled there (the user is no longer bound, or suspended, or deleted).
    pub async fn external_disabled(&self, d: &ExternalDirectory, user: &Id) -> Result<()> {
        let username = self
            .snapshot()
            .user(user)
            .map(|u| u.username.clone())
            .unwrap_or_else(|| user.to_string());
        let event = Event::new(Service::Directory, "external_disable", true)
            .actor("system")
            .user(username)
            .target("user", user)
            .detail("directory", d.id.to_string())
            .detail("directory_name", d.name.clone());
        let (did, uid) = (d.id.clone(), user.clone());
        self.write(move |tx| {
            if let Some(current) = tx
                .snap
                .external_accounts
                .get(&(did.clone(), uid.clone()))
                .cloned()
            {
                let mut a = (*current).clone();
                a.active = false;
                a.last_error = None;
                a.updated_at = tx.now;
                tx.batch
                    .put_json(Kind::ExternalAccount, format!("{did}/{uid}"), &a);
                tx.snap.external_accounts.insert((did, uid), Arc::new(a));
            }
            tx.event(event);
            Ok(())
        })
        .await
    }

    /// What the connectors must do without a password: disable accounts whose user is no longer bound (or not
    /// active, or gone), and bring active accounts' attributes up to date.
    pub fn external_work(&self) -> Vec<ExternalWork> {
        let snap = self.snapshot();
        let now = Utc::now();
        let mut out = Vec::new();
        for a in snap.external_accounts.values() {
            let Some(d) = snap.external_directories.get(&a.directory) else {
                continue;
            };
            // After a failure, a minute passes before the next try.
            if a.last_error.is_some() && now - a.updated_at < chrono::Duration::seconds(60) {
                continue;
            }
            let user = snap.user(&a.user).cloned();
            let bound = user.as_ref().is_some_and(|u| {
                u.state == UserState::Active
                    && !snap
                        .granting_groups(&u.id, &Resource::Directory(d.id.clone()))
                        .is_empty()
            });
            match (bound, a.active, user) {
                (false, true, _) => out.push(ExternalWork::Disable {
                    directory: Arc::clone(d),
                    user: a.user.clone(),
                    remote_dn: a.remote_dn.clone(),
                }),
                (true, true, Some(u)) if a.record_revision != u.revision => {
                    let mut groups: Vec<String> = snap
                        .granting_groups(&u.id, &Resource::Directory(d.id.clone()))
                        .iter()
                        .map(|g| g.name.clone())
                        .collect();
                    groups.sort();
                    out.push(ExternalWork::Update {
                        directory: Arc::clone(d),
                        user: u,
                        remote_dn: a.remote_dn.clone(),
                        groups,
                    })
                }
                _ => {}
            }
        }
        out
    }

    /// A user's accounts in external directories (admins per user; the portal for the user).
    pub fn external_accounts_of(&self, user: &Id) -> Vec<ExternalAccountView> {
        let snap = self.snapshot();
        let Some(u) = snap.user(user) else {
            return Vec::new();
        };
        let mut out: Vec<_> = snap
            .external_accounts
            .values()
            .filter(|a| a.user == *user)
            .filter_map(|a| {
                let d = snap.external_directories.get(&a.directory)?;
                Some(ExternalAccountView {
                    directory: d.id.clone(),
                    directory_name: d.name.clone(),
                    user: u.id.clone(),
                    username: u.username.clone(),
                    remote_dn: a.remote_dn.clone(),
                    active: a.active,
                    password_synced: a.password_revision == Some(u.auth_revision),
                    attributes_synced: a.record_revision == u.revision,
                    last_error: a.last_error.clone(),
                    updated_at: a.updated_at,
                })
            })
            .collect();
        out.sort_by(|a, b| a.directory_name.cmp(&b.directory_name));
        out
    }

    /// The accounts Stratus manages in one directory.
    pub fn external_accounts_in(
        &self,
        actor: &Actor,
        directory: &Id,
    ) -> Result<Vec<ExternalAccountView>> {
        actor.require(Permission::Read)?;
        let snap = self.snapshot();
        if !snap.external_directories.contains_key(directory) {
            return Err(DirectoryError::not_found("external directory", directory));
        }
        let mut out = Vec::new();
        for a in snap
            .external_accounts
            .values()
            .filter(|a| a.directory == *directory)
        {
            out.extend(
                self.external_accounts_of(&a.user)
                    .into_iter()
                    .filter(|v| v.directory == *directory),
            );
        }
        out.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(out)
    }
}
