//! Users: create, change, delete, passwords, unlock, TOTP enrolment.

use super::settings::admin_event;
use super::{optional, required, scim_scope, Directory, Tx};
use crate::access::{Actor, Permission};
use crate::crypto::Sealed;
use crate::error::{DirectoryError, Result};
use crate::events::{Event, Service};
use crate::id::Id;
use crate::model::*;
use crate::policy;
use crate::snapshot::{fold, Snapshot};
use crate::totp;
use crate::views::{NewUser, TotpConfirmed, TotpStart, UserPatch, UserView};
use chrono::{DateTime, Duration, Utc};
use std::net::IpAddr;
use std::sync::Arc;

/// The ephemeral-state space of used TOTP steps.
const TOTP_SPACE: &str = "totp-used";

/// A password that passed the policy, hashed and ready to store.
pub(crate) struct PreparedPassword {
    hash: String,
    nt_hash: Option<Vec<u8>>,
}

/// Filters for listing users.
#[derive(Debug, Clone, Default)]
pub struct UserListQuery {
    /// Case-insensitive substring of username, email or name.
    pub search: Option<String>,
    pub state: Option<UserState>,
    pub group: Option<Id>,
    /// Only users whose password hash is (`true`) or is not (`false`) one imported from another directory.
    pub legacy_hash: Option<bool>,
    pub offset: usize,
    pub limit: usize,
}

/// MD4 of the UTF-16LE password: the NT hash used by Samba and MSCHAPv2.
pub fn nt_hash(password: &str) -> Vec<u8> {
    use md4::{Digest, Md4};
    let utf16: Vec<u8> = password
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    Md4::digest(&utf16).to_vec()
}

pub(crate) fn nt_purpose(user: &Id) -> String {
    format!("nt-hash:{user}")
}

pub(crate) fn totp_purpose(user: &Id) -> String {
    format!("totp:{user}")
}

fn posix_name(v: &str) -> bool {
    v.len() <= 64
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

const USERNAME_RULE: &str =
    "username must be 1–64 characters: letters, digits, '.', '_' or '-', starting with a \
     letter or digit; or an e-mail-shaped login name such as jane.doe@example.com";

/// The imported password hash (as stored) and NT hash of a new user, checked; `None` when none came.
fn imported_hashes(
    input: &NewUser,
    with_password: bool,
) -> Result<Option<(String, Option<Vec<u8>>)>> {
    if input.password_hash.is_none() && input.nt_hash.is_none() {
        return Ok(None);
    }
    if with_password {
        return Err(DirectoryError::invalid(
            "password_hash",
            "give a password or a password hash, not both",
        ));
    }
    let nt = match input.nt_hash.as_deref().map(str::trim) {
        None => None,
        Some(hex) => {
            let bytes = data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .ok()
                .filter(|b| b.len() == 16)
                .ok_or_else(|| {
                    DirectoryError::invalid("nt_hash", "an NT hash is 32 hexadecimal digits")
                })?;
            Some(bytes)
        }
    };
    let hash = match input.password_hash.as_deref() {
        Some(h) => crate::legacy_hash::import(h)
            .map_err(|m| DirectoryError::invalid("password_hash", m))?,
        None => crate::legacy_hash::NT_ONLY.to_string(),
    };
    Ok(Some((hash, nt)))
}

/// The longest user name Stratus derives (the Linux limit for account names).
const DERIVED_MAX: usize = 32;

/// The user name and login name a requested name gives, decided against `snap` (inside the write that stores
/// them, so two concurrent creations never derive the same name).
///
/// - A POSIX-safe name (letters, digits, '.', '_', '-', starting with a letter or digit) is the user name itself,
///   folded to lower case, and leaves no login name.
/// - An e-mail-shaped name (Okta's default SCIM userName, Entra's userPrincipalName) becomes the login name, kept
///   as given. A new user's user name is derived from its local part (without a `+tag`): lower case, only letters, digits, '.', '_'
///   and '-', starting with a letter or digit, at most 32 characters, `user` when nothing is left, and 2, 3, …
///   appended while another user has it. An existing user given a new e-mail-shaped name keeps the user name
///   they have, and with it their LDAP DN, uid, home directory and RADIUS identity.
pub(crate) fn resolve_username(
    snap: &Snapshot,
    me: Option<&User>,
    requested: &str,
) -> Result<(String, Option<String>)> {
    let v = required("username", requested)?;
    if posix_name(&v) {
        return Ok((v.to_lowercase(), None));
    }
    let login_shaped = v.len() <= 254
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if !login_shaped {
        return Err(DirectoryError::invalid("username", USERNAME_RULE));
    }
    if let Some(me) = me {
        return Ok((me.username.clone(), Some(v)));
    }
    let local = v
        .split(['@', '+'])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let cleaned: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(DERIVED_MAX)
        .collect();
    let base = if cleaned.is_empty() {
        "user".to_string()
    } else {
        cleaned
    };
    let free = |name: &str| snap.user_by_username(name).is_none();
    if free(&base) {
        return Ok((base, Some(v)));
    }
    for n in 2..10_000u32 {
        let suffix = n.to_string();
        let keep = DERIVED_MAX.saturating_sub(suffix.len()).min(base.len());
        let candidate = format!("{}{suffix}", &base[..keep]);
        if free(&candidate) {
            return Ok((candidate, Some(v)));
        }
    }
    Err(DirectoryError::conflict(
        "username",
        format!("no free user name is left for `{v}`"),
    ))
}

pub(crate) fn validate_email(text: &str) -> Result<String> {
    let v = required("email", text)?;
    let ok = v.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !v
                .chars()
                .any(|c| c.is_whitespace() || c == ',' || c == '<' || c == '>')
    });
    if !ok {
        return Err(DirectoryError::invalid(
            "email",
            format!("`{v}` is not a valid e-mail address"),
        ));
    }
    Ok(v)
}

/// Employment fields are free text without control characters.
fn validate_employment(e: crate::model::Employment) -> Result<crate::model::Employment> {
    Ok(crate::model::Employment {
        title: optional("employment.title", e.title.as_deref())?,
        department: optional("employment.department", e.department.as_deref())?,
        company: optional("employment.company", e.company.as_deref())?,
        employee_id: optional("employment.employee_id", e.employee_id.as_deref())?,
        manager: optional("employment.manager", e.manager.as_deref())?,
    })
}

fn validate_attributes(attrs: &std::collections::BTreeMap<String, String>) -> Result<()> {
    for (k, v) in attrs {
        let ok = !k.is_empty()
            && k.len() <= 64
            && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(DirectoryError::invalid(
                "attributes",
                format!("attribute name `{k}` must be 1–64 letters, digits, '_' or '-', starting with a letter"),
            ));
        }
        if v.len() > 1024 {
            return Err(DirectoryError::invalid(
                "attributes",
                format!("attribute `{k}` is longer than 1024 characters"),
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(DirectoryError::invalid(
                "attributes",
                format!("attribute `{k}` must not contain control characters"),
            ));
        }
    }
    Ok(())
}

fn check_unique_user(
    snap: &Snapshot,
    me: Option<&Id>,
    username: &str,
    login_name: Option<&str>,
    email: &str,
    uid: u32,
) -> Result<()> {
    let other = |id: Option<&Id>| id.is_some_and(|id| Some(id) != me);
    if other(snap.user_by_name.get(&fold(username))) {
        return Err(DirectoryError::conflict(
            "username",
            format!("username `{username}` is already taken"),
        ));
    }
    if let Some(login) = login_name {
        if other(snap.user_by_login.get(&fold(login))) {
            return Err(DirectoryError::conflict(
                "username",
                format!("username `{login}` is already taken"),
            ));
        }
    }
    if other(snap.user_by_email.get(&fold(email))) {
        return Err(DirectoryError::conflict(
            "email",
            format!("e-mail `{email}` is already used by another user"),
        ));
    }
    if other(snap.user_by_uid.get(&uid)) {
        return Err(DirectoryError::conflict(
            "uid_number",
            format!("uidNumber {uid} is already used by another user"),
        ));
    }
    Ok(())
}

/// Take the next free UID from the org range; allocations never go backwards, so no UID is handed out twice.
pub(crate) fn allocate_uid(tx: &mut Tx, requested: Option<u32>) -> Result<u32> {
    let org = tx.org()?;
    let range = org.uid_range;
    if let Some(uid) = requested {
        if !range.contains(uid) {
            return Err(DirectoryError::invalid(
                "uid_number",
                format!(
                    "uid_number {uid} is outside the UID range {}–{}",
                    range.start, range.end
                ),
            ));
        }
        if uid >= tx.snap.allocators.next_uid {
            tx.snap.allocators.next_uid = uid.saturating_add(1);
            tx.put_allocators();
        }
        return Ok(uid);
    }
    let mut next = tx.snap.allocators.next_uid.max(range.start);
    while tx.snap.user_by_uid.contains_key(&next) {
        next = next.saturating_add(1);
    }
    if !range.contains(next) {
        return Err(DirectoryError::conflict(
            "uid_number",
            "the UID range is exhausted",
        ));
    }
    tx.snap.allocators.next_uid = next + 1;
    tx.put_allocators();
    Ok(next)
}

impl Directory {
    /// Check a password against the policy (including history) and hash it, outside any lock.
    pub(crate) async fn prepare_password(
        &self,
        snap: &Snapshot,
        user: Option<&User>,
        username: &str,
        password: &str,
    ) -> Result<PreparedPassword> {
        let policy = Arc::clone(&snap.policy);
        policy::check_password(&policy, username, password)?;
        if let Some(u) = user {
            if policy.history > 0 {
                let recent: Vec<String> = u
                    .password_hash
                    .iter()
                    .chain(u.password_history.iter())
                    .take(usize::from(policy.history))
                    .cloned()
                    .collect();
                if self.hasher.verify_any(&recent, password).await {
                    return Err(policy::history_violation(&policy).into());
                }
            }
        }
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        Ok(PreparedPassword {
            hash,
            nt_hash: Some(nt_hash(password)),
        })
    }

    /// Store a prepared password on a user inside a transaction.
    pub(crate) fn apply_password(&self, tx: &Tx, user: &mut User, prepared: PreparedPassword) {
        if let Some(old) = user.password_hash.take() {
            user.password_history.insert(0, old);
            user.password_history.truncate(24);
        }
        user.password_hash = Some(prepared.hash);
        user.password_set_at = Some(tx.now);
        user.failed_logins = 0;
        user.locked_until = None;
        user.auth_revision += 1;
        // Keep the NT hash only while Samba or PEAP-MSCHAPv2 needs it.
        let needs_nt =
            tx.snap.in_samba_group(&user.id) || tx.snap.needs_nt_hash_for_radius(&user.id);
        user.nt_hash = match (needs_nt, prepared.nt_hash) {
            (true, Some(nt)) => Some(self.master_key.seal(&nt_purpose(&user.id), &nt)),
            _ => None,
        };
        self.cache.forget(&user.id);
    }

    /// The user's NT hash, when one is on file.
    pub fn user_nt_hash(&self, user: &User) -> Option<Vec<u8>> {
        let sealed: &Sealed = user.nt_hash.as_ref()?;
        self.master_key.open(&nt_purpose(&user.id), sealed).ok()
    }

    /// After a successful login with a hash imported from another directory: hash the password with argon2id
    /// and drop the old hash (and compute the NT hash if Samba or MSCHAPv2 needs one and none is on file), unless
    /// the password changed in the meantime. Sessions are not affected: the password is the same. Best effort:
    /// a failure leaves the old hash for the next login.
    pub(crate) async fn rehash_legacy(&self, user: &User, old: &str, password: &str) {
        let Some(scheme) = crate::legacy_hash::scheme(old) else {
            return;
        };
        self.rehash(user, old, password, scheme.name().to_string())
            .await;
    }

    /// After a successful login with an argon2 hash made at a lower cost than the configured one: the same
    /// password hashed again at the configured cost.
    pub(crate) async fn rehash_if_weaker(&self, user: &User, old: &str, password: &str) {
        let configured = self.hasher.params();
        let Some(stored) = crate::password::HashParams::of_hash(old) else {
            return;
        };
        if configured.stronger_than(&stored) {
            let from = format!("argon2id m={},t={}", stored.memory_kib, stored.iterations);
            self.rehash(user, old, password, from).await;
        }
    }

    /// Replace `old` (still the user's hash) with a new argon2id hash of `password`, recording where from.
    async fn rehash(&self, user: &User, old: &str, password: &str, from: String) {
        let Ok(new) = self.hasher.hash(password).await else {
            return;
        };
        let nt = nt_hash(password);
        let (id, old) = (user.id.clone(), old.to_string());
        let done = self
            .write(move |tx| {
                let Some(current) = tx.snap.user(&id).cloned() else {
                    return Ok(());
                };
                if current.password_hash.as_deref() != Some(old.as_str()) {
                    return Ok(());
                }
                let mut u = (*current).clone();
                u.password_hash = Some(new);
                let needs_nt =
                    tx.snap.in_samba_group(&u.id) || tx.snap.needs_nt_hash_for_radius(&u.id);
                if needs_nt && u.nt_hash.is_none() {
                    u.nt_hash = Some(self.master_key.seal(&nt_purpose(&u.id), &nt));
                }
                if !needs_nt {
                    u.nt_hash = None;
                }
                tx.event(
                    crate::events::Event::new(Service::Directory, "password_rehashed", true)
                        .user(&u.username)
                        .target("user", &u.id)
                        .detail("from", from)
                        .detail("to", "argon2id"),
                );
                tx.put_user(u);
                Ok(())
            })
            .await;
        if let Err(e) = done {
            tracing::warn!(user = %user.username, error = %e, "re-hashing an imported password failed");
        }
    }

    pub fn get_user(&self, id: &Id) -> Result<UserView> {
        let snap = self.snapshot();
        let u = snap
            .user(id)
            .ok_or_else(|| DirectoryError::not_found("user", id))?;
        Ok(UserView::of(u, &snap, Utc::now()))
    }

    /// Users matching a query, sorted by username, with the total count before paging.
    pub fn list_users(&self, q: &UserListQuery) -> (usize, Vec<UserView>) {
        let snap = self.snapshot();
        let now = Utc::now();
        let search = q.search.as_deref().map(str::to_lowercase);
        let members = q
            .group
            .as_ref()
            .map(|g| snap.members.get(g).cloned().unwrap_or_default());
        let mut matched: Vec<&Arc<User>> = snap
            .users
            .values()
            .filter(|u| q.state.is_none_or(|s| u.state == s))
            .filter(|u| {
                q.legacy_hash
                    .is_none_or(|l| u.legacy_hash_scheme().is_some() == l)
            })
            .filter(|u| members.as_ref().is_none_or(|m| m.contains(&u.id)))
            .filter(|u| {
                search.as_deref().is_none_or(|s| {
                    u.username.contains(s)
                        || u.login_name
                            .as_ref()
                            .is_some_and(|l| l.to_lowercase().contains(s))
                        || u.email.to_lowercase().contains(s)
                        || u.display().to_lowercase().contains(s)
                })
            })
            .collect();
        matched.sort_by(|a, b| a.username.cmp(&b.username));
        let total = matched.len();
        let page = matched
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|u| UserView::of(u, &snap, now))
            .collect();
        (total, page)
    }

    pub async fn create_user(&self, actor: &Actor, input: NewUser) -> Result<UserView> {
        actor.require(Permission::ManageUsers)?;
        let email = validate_email(&input.email)?;
        validate_attributes(&input.attributes)?;
        let snap = self.snapshot();
        // Fail fast on duplicates before spending argon2id on the password (the write decides again).
        let (username, login) = resolve_username(&snap, None, &input.username)?;
        check_unique_user(&snap, None, &username, login.as_deref(), &email, u32::MAX)?;
        let prepared = match input.password.as_deref() {
            Some(pw) => Some(self.prepare_password(&snap, None, &username, pw).await?),
            None => None,
        };
        let actor = actor.clone();
        let user = self
            .write(move |tx| self.insert_user(tx, &actor, input, email, prepared))
            .await?;
        if user.password_hash.is_none() {
            self.welcome(std::slice::from_ref(&user.id)).await;
        }
        Ok(UserView::of(&user, &self.snapshot(), Utc::now()))
    }

    /// Create a user inside a transaction (shared by the API and CSV import); `input.username` is the requested
    /// name, resolved here (see [`resolve_username`]).
    pub(crate) fn insert_user(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        input: NewUser,
        email: String,
        prepared: Option<PreparedPassword>,
    ) -> Result<User> {
        let (username, login_name) = resolve_username(&tx.snap, None, &input.username)?;
        let imported = imported_hashes(&input, prepared.is_some())?;
        let uid = allocate_uid(tx, input.uid_number)?;
        check_unique_user(
            &tx.snap,
            None,
            &username,
            login_name.as_deref(),
            &email,
            uid,
        )?;
        let org = tx.org()?;
        let now = tx.now;
        let mut user = User {
            id: Id::generate(),
            username: username.clone(),
            login_name,
            email,
            firstname: super::text("firstname", &input.firstname, 256)?,
            lastname: super::text("lastname", &input.lastname, 256)?,
            display_name: optional("display_name", input.display_name.as_deref())?,
            state: input.state.unwrap_or(UserState::Active),
            password_hash: None,
            password_set_at: None,
            password_history: Vec::new(),
            nt_hash: None,
            totp: None,
            recovery_codes: Vec::new(),
            totp_replacement: None,
            mfa_required: input.mfa_required,
            mfa_enrolment_deadline: input
                .mfa_required
                .then(|| now + Duration::days(i64::from(org.mfa_enrolment_days))),
            ldap_bind_dn: input.ldap_bind_dn,
            uid_number: uid,
            gid_number: input.gid_number.unwrap_or(uid),
            home_directory: optional("home_directory", input.home_directory.as_deref())?
                .unwrap_or_else(|| format!("/home/{username}")),
            login_shell: optional("login_shell", input.login_shell.as_deref())?
                .unwrap_or_else(|| "/bin/bash".into()),
            employment: validate_employment(input.employment.unwrap_or_default())?,
            phone: optional("phone", input.phone.as_deref())?,
            external_id: optional("external_id", input.external_id.as_deref())?,
            attributes: input.attributes,
            failed_logins: 0,
            locked_until: None,
            auth_revision: 0,
            scim_owner: actor.scim_token.clone(),
            revision: 0,
            created_at: now,
            updated_at: now,
        };
        let with_password = prepared.is_some();
        if let Some(p) = prepared {
            self.apply_password(tx, &mut user, p);
        }
        let imported_scheme = imported.as_ref().map(|(hash, nt)| {
            user.password_hash = Some(hash.clone());
            user.password_set_at = Some(now);
            user.nt_hash = nt
                .as_ref()
                .map(|nt| self.master_key.seal(&nt_purpose(&user.id), nt));
            crate::legacy_hash::scheme(hash).map_or("", |s| s.name())
        });
        let mut ev = admin_event(actor, "user_create")
            .user(&user.username)
            .target("user", &user.id)
            .detail(
                "state",
                serde_json::to_value(user.state).unwrap_or_default(),
            )
            .detail("password_set", with_password);
        if let Some(scheme) = imported_scheme {
            ev = ev.detail("password_hash_imported", scheme);
        }
        tx.event(ev);
        Ok((*tx.put_user(user)).clone())
    }

    /// Change a user: every field of the patch, and the password when it carries one, in one transaction — all of
    /// it or, when anything is refused, none of it. With `expect_revision`, only if the user is still at it.
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: &Id,
        mut patch: UserPatch,
    ) -> Result<UserView> {
        actor.require(Permission::ManageUsers)?;
        let password = patch.password.take();
        let prepared = match password.as_deref() {
            None => None,
            Some(pw) => {
                actor.require(Permission::ResetCredentials)?;
                let snap = self.snapshot();
                let user = snap
                    .user(id)
                    .ok_or_else(|| DirectoryError::not_found("user", id))?;
                // Refuse what the scope or the revision will refuse before spending argon2id on it.
                let early = scim_scope::check_user(&snap, actor, user).and_then(|()| {
                    super::check_revision("user", id, user.revision, patch.expect_revision)
                });
                if let Err(e) = early {
                    self.record_scope_denial(actor, &e).await;
                    return Err(e);
                }
                let username = match patch.username.as_deref() {
                    Some(n) => resolve_username(&snap, Some(user), n)?.0,
                    None => user.username.clone(),
                };
                Some(
                    self.prepare_password_logged(actor, &snap, user, &username, pw, "password_set")
                        .await?,
                )
            }
        };
        let who = actor.clone();
        let id = id.clone();
        let user = self
            .write_as(actor, move |tx| {
                let current = tx.user_at(&id, patch.expect_revision)?;
                scim_scope::check_user(&tx.snap, &who, &current)?;
                let mut u = (*current).clone();
                let changed = self.apply_user_patch(tx, &mut u, patch)?;
                check_unique_user(
                    &tx.snap,
                    Some(&u.id),
                    &u.username,
                    u.login_name.as_deref(),
                    &u.email,
                    u.uid_number,
                )?;
                scim_scope::adopt(&who, &mut u);
                // A write that changes nothing (an IdP's repeated full PUT) moves no revision or timestamp.
                if prepared.is_none() && *current == u {
                    return Ok(current);
                }
                if !changed.is_empty() {
                    tx.event(
                        admin_event(&who, "user_update")
                            .user(&u.username)
                            .target("user", &u.id)
                            .detail("fields", changed),
                    );
                }
                if let Some(p) = prepared {
                    self.apply_password(tx, &mut u, p);
                    tx.event(
                        admin_event(&who, "password_set")
                            .user(&u.username)
                            .target("user", &u.id)
                            .detail("nt_hash_stored", u.nt_hash.is_some()),
                    );
                }
                Ok(tx.put_user(u))
            })
            .await?;
        Ok(UserView::of(&user, &self.snapshot(), Utc::now()))
    }

    /// Apply a patch's fields to a user in a transaction; returns the names of the fields it sets.
    fn apply_user_patch(
        &self,
        tx: &mut Tx,
        u: &mut User,
        patch: UserPatch,
    ) -> Result<Vec<&'static str>> {
        let mut changed = Vec::new();
        if let Some(v) = patch.username {
            let (username, login) = resolve_username(&tx.snap, Some(u), &v)?;
            if username != u.username || login != u.login_name {
                u.username = username;
                u.login_name = login;
                changed.push("username");
            }
        }
        if let Some(v) = patch.email {
            u.email = validate_email(&v)?;
            changed.push("email");
        }
        if let Some(v) = patch.firstname {
            u.firstname = super::text("firstname", &v, 256)?;
            changed.push("firstname");
        }
        if let Some(v) = patch.lastname {
            u.lastname = super::text("lastname", &v, 256)?;
            changed.push("lastname");
        }
        if let Some(v) = patch.display_name {
            u.display_name = optional("display_name", Some(&v))?;
            changed.push("display_name");
        }
        if let Some(s) = patch.state {
            if s != u.state {
                u.state = s;
                u.auth_revision += 1;
                self.cache.forget(&u.id);
                changed.push("state");
            }
        }
        if let Some(v) = patch.ldap_bind_dn {
            u.ldap_bind_dn = v;
            changed.push("ldap_bind_dn");
        }
        let enrolment_days = i64::from(tx.org()?.mfa_enrolment_days);
        if let Some(v) = patch.mfa_required {
            if v && !u.mfa_required {
                u.mfa_enrolment_deadline = Some(tx.now + Duration::days(enrolment_days));
            }
            if !v {
                u.mfa_enrolment_deadline = None;
            }
            u.mfa_required = v;
            changed.push("mfa_required");
        }
        if patch.reset_mfa_enrolment == Some(true) {
            u.mfa_enrolment_deadline = Some(tx.now + Duration::days(enrolment_days));
            changed.push("mfa_enrolment_deadline");
        }
        if let Some(uid) = patch.uid_number {
            if uid != u.uid_number {
                u.uid_number = allocate_uid(tx, Some(uid))?;
                changed.push("uid_number");
            }
        }
        if let Some(v) = patch.gid_number {
            u.gid_number = v;
            changed.push("gid_number");
        }
        if let Some(v) = patch.home_directory {
            u.home_directory = required("home_directory", &v)?;
            changed.push("home_directory");
        }
        if let Some(v) = patch.login_shell {
            u.login_shell = required("login_shell", &v)?;
            changed.push("login_shell");
        }
        if let Some(v) = patch.employment {
            u.employment = validate_employment(v)?;
            changed.push("employment");
        }
        if let Some(v) = patch.phone {
            u.phone = optional("phone", Some(&v))?;
            changed.push("phone");
        }
        if let Some(v) = patch.external_id {
            u.external_id = optional("external_id", Some(&v))?;
            changed.push("external_id");
        }
        if let Some(v) = patch.attributes {
            validate_attributes(&v)?;
            u.attributes = v;
            changed.push("attributes");
        }
        Ok(changed)
    }

    pub async fn delete_user(&self, actor: &Actor, id: &Id) -> Result<()> {
        self.delete_user_at(actor, id, None).await
    }

    /// Delete a user; with `expect`, only if the user is still at that revision.
    pub async fn delete_user_at(&self, actor: &Actor, id: &Id, expect: Option<u64>) -> Result<()> {
        actor.require(Permission::ManageUsers)?;
        let who = actor.clone();
        let id = id.clone();
        self.write_as(actor, move |tx| {
            let current = tx.user_at(&id, expect)?;
            scim_scope::check_user(&tx.snap, &who, &current)?;
            let groups: Vec<Id> = tx.snap.groups_of(&id).map(|g| g.id.clone()).collect();
            let old = tx
                .snap
                .remove_user(&id)
                .ok_or_else(|| DirectoryError::not_found("user", &id))?;
            for g in &groups {
                tx.batch
                    .delete(crate::store::Kind::Membership, format!("{g}/{id}"));
                tx.touch_group(g);
            }
            tx.batch.delete(crate::store::Kind::User, id.as_str());
            self.cache.forget(&id);
            tx.event(
                admin_event(&who, "user_delete")
                    .user(&old.username)
                    .target("user", &id),
            );
            Ok(())
        })
        .await
    }

    /// An admin sets a user's password.
    pub async fn set_password(&self, actor: &Actor, id: &Id, password: &str) -> Result<UserView> {
        actor.require(Permission::ResetCredentials)?;
        self.change_password(actor, id, password, "password_set")
            .await
    }

    /// Check a new password against the policy and hash it; a refusal is recorded as a failed `event_type`.
    async fn prepare_password_logged(
        &self,
        actor: &Actor,
        snap: &Snapshot,
        user: &User,
        username: &str,
        password: &str,
        event_type: &'static str,
    ) -> Result<PreparedPassword> {
        match self
            .prepare_password(snap, Some(user), username, password)
            .await
        {
            Ok(p) => Ok(p),
            Err(e) => {
                let mut ev = admin_event(actor, event_type)
                    .user(&user.username)
                    .target("user", &user.id)
                    .reason(e.to_string());
                if let DirectoryError::PasswordPolicy(v) = &e {
                    ev = ev.detail("rule", v.rule);
                }
                ev.success = false;
                self.record(ev).await;
                Err(e)
            }
        }
    }

    /// Set a password after policy checks; shared by admin resets and self-service changes.
    pub async fn change_password(
        &self,
        actor: &Actor,
        id: &Id,
        password: &str,
        event_type: &'static str,
    ) -> Result<UserView> {
        let snap = self.snapshot();
        let user = snap
            .user(id)
            .ok_or_else(|| DirectoryError::not_found("user", id))?;
        if let Err(e) = scim_scope::check_user(&snap, actor, user) {
            self.record_scope_denial(actor, &e).await;
            return Err(e);
        }
        let prepared = self
            .prepare_password_logged(actor, &snap, user, &user.username, password, event_type)
            .await?;
        let who = actor.clone();
        let id = id.clone();
        let user = self
            .write_as(actor, move |tx| {
                let current = tx.user_at(&id, None)?;
                scim_scope::check_user(&tx.snap, &who, &current)?;
                let mut u = (*current).clone();
                scim_scope::adopt(&who, &mut u);
                self.apply_password(tx, &mut u, prepared);
                tx.event(
                    admin_event(&who, event_type)
                        .user(&u.username)
                        .target("user", &u.id)
                        .detail("nt_hash_stored", u.nt_hash.is_some()),
                );
                Ok(tx.put_user(u))
            })
            .await?;
        // A password set in Stratus goes to the external directories the user is bound to.
        self.offer_password(&user, password, false);
        Ok(UserView::of(&user, &self.snapshot(), Utc::now()))
    }

    pub async fn unlock_user(&self, actor: &Actor, id: &Id) -> Result<UserView> {
        actor.require(Permission::ResetCredentials)?;
        let actor = actor.clone();
        let id = id.clone();
        let user = self
            .write(move |tx| {
                let mut u = (**tx
                    .snap
                    .user(&id)
                    .ok_or_else(|| DirectoryError::not_found("user", &id))?)
                .clone();
                u.failed_logins = 0;
                u.locked_until = None;
                u.auth_revision += 1;
                tx.event(
                    admin_event(&actor, "user_unlock")
                        .user(&u.username)
                        .target("user", &u.id),
                );
                Ok(tx.put_user(u))
            })
            .await?;
        Ok(UserView::of(&user, &self.snapshot(), Utc::now()))
    }

    /// Start TOTP enrolment: a new secret, pending until confirmed with a code.
    pub async fn start_totp(&self, actor: &Actor, id: &Id) -> Result<TotpStart> {
        actor.require(Permission::ResetCredentials)?;
        let secret = totp::generate_secret();
        let sealed = self.master_key.seal(&totp_purpose(id), &secret);
        let actor = actor.clone();
        let id = id.clone();
        let issuer = self
            .org()
            .map_or_else(|| "Stratus".into(), |o| o.name.clone());
        self.write(move |tx| {
            let mut u = (**tx
                .snap
                .user(&id)
                .ok_or_else(|| DirectoryError::not_found("user", &id))?)
            .clone();
            u.totp = Some(TotpEnrolment {
                secret: sealed,
                confirmed: false,
                created_at: tx.now,
            });
            let start = TotpStart {
                secret: totp::secret_base32(&secret),
                otpauth_uri: totp::otpauth_uri(&issuer, &u.username, &secret),
            };
            tx.event(
                admin_event(&actor, "totp_enrol_start")
                    .user(&u.username)
                    .target("user", &u.id),
            );
            tx.put_user(u);
            Ok(start)
        })
        .await
    }

    /// Confirm a pending TOTP enrolment with a current code; new recovery codes replace any earlier ones.
    pub async fn confirm_totp(&self, actor: &Actor, id: &Id, code: &str) -> Result<TotpConfirmed> {
        actor.require(Permission::ResetCredentials)?;
        let snap = self.snapshot();
        let user = snap
            .user(id)
            .ok_or_else(|| DirectoryError::not_found("user", id))?;
        let Some(enrolment) = &user.totp else {
            return Err(DirectoryError::invalid(
                "code",
                "no TOTP enrolment has been started",
            ));
        };
        if !self.check_totp(id, &totp_purpose(id), &enrolment.secret, code, Utc::now()) {
            let mut ev = admin_event(actor, "totp_enrol_confirm")
                .user(&user.username)
                .target("user", id)
                .reason("wrong or reused verification code");
            ev.success = false;
            self.record(ev).await;
            return Err(DirectoryError::invalid(
                "code",
                "the verification code is not valid",
            ));
        }
        let (shown, stored) = crate::recovery::generate(id);
        let actor = actor.clone();
        let id = id.clone();
        let user = self
            .write(move |tx| {
                let mut u = (**tx
                    .snap
                    .user(&id)
                    .ok_or_else(|| DirectoryError::not_found("user", &id))?)
                .clone();
                if let Some(t) = u.totp.as_mut() {
                    t.confirmed = true;
                }
                u.mfa_enrolment_deadline = None;
                u.recovery_codes = stored;
                tx.event(
                    admin_event(&actor, "totp_enrol_confirm")
                        .user(&u.username)
                        .target("user", &u.id)
                        .detail("recovery_codes", u.recovery_codes.len()),
                );
                Ok(tx.put_user(u))
            })
            .await?;
        Ok(TotpConfirmed {
            user: UserView::of(&user, &self.snapshot(), Utc::now()),
            recovery_codes: shown,
        })
    }

    /// A signed-in user starting their own TOTP enrolment (the portal). Refused when the user already has an
    /// active TOTP: replacing it takes the password and a code again ([`Directory::start_own_totp_replacement`]),
    /// so a stolen session alone cannot swap the second factor.
    pub async fn start_own_totp(
        &self,
        user: &Id,
        service: Service,
        client_ip: Option<IpAddr>,
    ) -> Result<TotpStart> {
        let actor = self.self_actor(user, service, client_ip)?;
        if self.snapshot().user(user).is_some_and(|u| u.totp_active()) {
            return Err(DirectoryError::invalid(
                "totp",
                "TOTP is already set up; replace it with your password and a code",
            ));
        }
        self.start_totp(&actor, user).await
    }

    /// A signed-in user confirming their own pending TOTP enrolment with a code.
    pub async fn confirm_own_totp(
        &self,
        user: &Id,
        code: &str,
        service: Service,
        client_ip: Option<IpAddr>,
    ) -> Result<TotpConfirmed> {
        let actor = self.self_actor(user, service, client_ip)?;
        if self.snapshot().user(user).is_some_and(|u| u.totp_active()) {
            return Err(DirectoryError::invalid("totp", "TOTP is already set up"));
        }
        self.confirm_totp(&actor, user, code).await
    }

    /// A signed-in user setting their own new password (portal, or the login page after an expired one; the
    /// caller has checked the current password or the expired one). The policy applies as for any set.
    pub async fn change_own_password(
        &self,
        user: &Id,
        password: &str,
        service: Service,
        client_ip: Option<IpAddr>,
    ) -> Result<UserView> {
        let actor = self.self_actor(user, service, client_ip)?;
        self.change_password(&actor, user, password, "password_change")
            .await
    }

    /// The actor of a user acting on their own credentials: used only inside the self-service calls, which
    /// name the user themselves.
    fn self_actor(&self, user: &Id, service: Service, client_ip: Option<IpAddr>) -> Result<Actor> {
        let u = self
            .snapshot()
            .user(user)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("user", user))?;
        Ok(Actor {
            admin_id: None,
            label: u.username.clone(),
            via: Some("self-service".into()),
            role: crate::model::AdminRole::HelpDesk,
            service,
            client_ip,
            scim_token: None,
        })
    }

    /// A user replacing their TOTP (a new phone, a lost one): the password and a current code — TOTP or a
    /// recovery code — are checked through the one authentication path (failures count towards lockout and the
    /// source's throttle), then a new secret waits beside the active one until it is confirmed.
    pub async fn start_own_totp_replacement(
        &self,
        user: &Id,
        password: &str,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<TotpStart> {
        let u = self
            .snapshot()
            .user(user)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("user", user))?;
        if !u.totp_active() {
            return Err(DirectoryError::invalid(
                "totp",
                "no TOTP is set up yet; set it up instead",
            ));
        }
        let outcome = self
            .authenticate(crate::auth::AuthRequest {
                username: u.username.clone(),
                credential: crate::auth::Credential::Password(password.to_string()),
                otp: Some(code.to_string()),
                service: Service::Portal,
                resource: None,
                client_ip,
                session: None,
                station: None,
            })
            .await?;
        if !matches!(outcome, crate::auth::AuthOutcome::Allow(ref g) if g.mfa_used) {
            return Err(DirectoryError::invalid(
                "code",
                "the password or the code is not right",
            ));
        }
        let secret = totp::generate_secret();
        let sealed = self.master_key.seal(&totp_purpose(user), &secret);
        let issuer = self
            .org()
            .map_or_else(|| "Stratus".into(), |o| o.name.clone());
        let id = user.clone();
        self.write(move |tx| {
            let mut u = (*tx.user_at(&id, None)?).clone();
            u.totp_replacement = Some(TotpEnrolment {
                secret: sealed,
                confirmed: false,
                created_at: tx.now,
            });
            let start = TotpStart {
                secret: totp::secret_base32(&secret),
                otpauth_uri: totp::otpauth_uri(&issuer, &u.username, &secret),
            };
            tx.event(
                Event::new(Service::Portal, "totp_replace_start", true)
                    .actor(u.username.clone())
                    .client(client_ip)
                    .user(&u.username)
                    .target("user", &u.id),
            );
            tx.put_user(u);
            Ok(start)
        })
        .await
    }

    /// Confirm a replacement TOTP with a code from it: it becomes the active one, and new recovery codes
    /// replace the old.
    pub async fn confirm_own_totp_replacement(
        &self,
        user: &Id,
        code: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<TotpConfirmed> {
        let u = self
            .snapshot()
            .user(user)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("user", user))?;
        let Some(pending) = u.totp_replacement.clone() else {
            return Err(DirectoryError::invalid(
                "code",
                "no replacement TOTP has been started",
            ));
        };
        if !self.check_totp(user, &totp_purpose(user), &pending.secret, code, Utc::now()) {
            return Err(DirectoryError::invalid(
                "code",
                "the verification code is not valid",
            ));
        }
        let (shown, stored) = crate::recovery::generate(user);
        let id = user.clone();
        let updated = self
            .write(move |tx| {
                let mut u = (*tx.user_at(&id, None)?).clone();
                // Confirmed only if it is still the replacement the code was checked against.
                if u.totp_replacement.as_ref() != Some(&pending) {
                    return Err(DirectoryError::invalid(
                        "code",
                        "the replacement changed; start again",
                    ));
                }
                u.totp = Some(TotpEnrolment {
                    confirmed: true,
                    ..pending
                });
                u.totp_replacement = None;
                u.recovery_codes = stored;
                tx.event(
                    Event::new(Service::Portal, "totp_replace_confirm", true)
                        .actor(u.username.clone())
                        .client(client_ip)
                        .user(&u.username)
                        .target("user", &u.id),
                );
                Ok(tx.put_user(u))
            })
            .await?;
        Ok(TotpConfirmed {
            user: UserView::of(&updated, &self.snapshot(), Utc::now()),
            recovery_codes: shown,
        })
    }

    /// Remove a user's TOTP; if MFA stays required, a new enrolment period starts.
    pub async fn remove_totp(&self, actor: &Actor, id: &Id) -> Result<UserView> {
        actor.require(Permission::ResetCredentials)?;
        let actor = actor.clone();
        let id = id.clone();
        let user = self
            .write(move |tx| {
                let days = i64::from(tx.org()?.mfa_enrolment_days);
                let mut u = (**tx
                    .snap
                    .user(&id)
                    .ok_or_else(|| DirectoryError::not_found("user", &id))?)
                .clone();
                u.totp = None;
                u.totp_replacement = None;
                u.recovery_codes.clear();
                if u.mfa_required {
                    u.mfa_enrolment_deadline = Some(tx.now + Duration::days(days));
                }
                tx.event(
                    admin_event(&actor, "totp_remove")
                        .user(&u.username)
                        .target("user", &u.id),
                );
                Ok(tx.put_user(u))
            })
            .await?;
        Ok(UserView::of(&user, &self.snapshot(), Utc::now()))
    }

    /// Verify a TOTP code and consume its step so it is accepted only once.
    pub(crate) fn check_totp(
        &self,
        owner: &Id,
        purpose: &str,
        sealed: &Sealed,
        code: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Ok(secret) = self.master_key.open(purpose, sealed) else {
            tracing::error!(owner = %owner, "TOTP secret could not be opened with this master key");
            return false;
        };
        let unix = u64::try_from(now.timestamp()).unwrap_or(0);
        let Some(step) = totp::verify(&secret, code, unix) else {
            return false;
        };
        // Each code is accepted once per owner, on any node and across restarts: the step is recorded in the
        // store. Taking step S also marks the two steps before it, so no older code of the ±1 window is accepted
        // after a newer one.
        let store = self.store();
        let expires = now + Duration::minutes(5);
        match store.ephemeral_put(TOTP_SPACE, &format!("{owner}:{step}"), b"", expires, true) {
            Ok(true) => {
                for older in [step.saturating_sub(1), step.saturating_sub(2)] {
                    let _ = store.ephemeral_put(
                        TOTP_SPACE,
                        &format!("{owner}:{older}"),
                        b"",
                        expires,
                        false,
                    );
                }
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::error!(owner = %owner, error = %e, "the TOTP replay guard could not be read; the code is refused");
                false
            }
        }
    }

    /// The TOTP purpose string for a user (for tests and benchmarks that compute codes).
    pub fn user_totp_secret(&self, user: &User) -> Option<Vec<u8>> {
        let t = user.totp.as_ref()?;
        self.master_key
            .open(&totp_purpose(&user.id), &t.secret)
            .ok()
    }

    /// The secret of a replacement TOTP waiting to be confirmed, for showing it again.
    pub fn user_totp_replacement_secret(&self, user: &User) -> Option<Vec<u8>> {
        let t = user.totp_replacement.as_ref()?;
        self.master_key
            .open(&totp_purpose(&user.id), &t.secret)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_hash_matches_known_vector() {
        // MD4(UTF-16LE("password"))
        assert_eq!(
            data_encoding::HEXLOWER.encode(&nt_hash("password")),
            "8846f7eaee8fb117ad06bdd830b7586c"
        );
    }

    #[test]
    fn usernames_are_validated_folded_or_derived_from_login_names() {
        let snap = Snapshot::empty();
        let resolve = |name: &str| resolve_username(&snap, None, name);
        assert_eq!(
            resolve(" Alice.Smith ").unwrap(),
            ("alice.smith".into(), None)
        );
        assert!(resolve("-bad").is_err());
        assert!(resolve("has space").is_err());
        assert!(resolve("two@at@signs.example").is_err());
        assert!(resolve("no-domain-dot@host").is_err());
        assert_eq!(
            resolve("Jane.O'Hara+wifi@Example.COM").unwrap(),
            (
                "jane.ohara".into(),
                Some("Jane.O'Hara+wifi@Example.COM".into())
            )
        );
        // An Entra guest's userPrincipalName.
        assert_eq!(
            resolve("_ext_x#EXT#@tenant.onmicrosoft.com").unwrap().0,
            "ext_xext"
        );
        assert_eq!(resolve("--@example.com").unwrap().0, "user");
        let long = format!("{}@example.com", "a".repeat(80));
        assert_eq!(resolve(&long).unwrap().0.len(), DERIVED_MAX);
    }

    #[test]
    fn emails_are_validated() {
        assert!(validate_email("a@b.example").is_ok());
        assert!(validate_email("nope").is_err());
        assert!(validate_email("a@b").is_err());
    }
}
