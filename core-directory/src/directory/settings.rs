//! First-start initialisation, org settings and the password policy.

use super::{required, Directory};
use crate::access::{Actor, Permission};
use crate::crypto;
use crate::error::{DirectoryError, Result};
use crate::events::{Event, Service};
use crate::id::Id;
use crate::model::*;
use crate::views::OrgPatch;
use std::sync::Arc;

/// Who to create as the first admin; absent values are generated and returned once.
#[derive(Debug, Clone, Default)]
pub struct BootstrapRequest {
    pub org_name: String,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    pub api_key: Option<String>,
}

/// What the first start created; secrets appear here once and are never stored in clear.
#[derive(Debug, Clone)]
pub struct BootstrapResult {
    pub org_id: Id,
    pub admin_email: String,
    /// Set when Stratus generated the password.
    pub generated_password: Option<String>,
    /// Set when Stratus generated the key.
    pub generated_api_key: Option<String>,
}

/// Default UID/GID ranges.
pub const DEFAULT_ID_RANGE: IdRange = IdRange {
    start: 5000,
    end: 2_000_000_000,
};

impl Directory {
    /// Create the org, default policy and first admin if the store is empty. Returns `None` when the directory
    /// was already initialised.
    pub async fn initialise(&self, req: BootstrapRequest) -> Result<Option<BootstrapResult>> {
        if self.org().is_some() {
            return Ok(None);
        }
        let generated_password = req.admin_password.is_none().then(generate_password);
        let password = req
            .admin_password
            .clone()
            .or_else(|| generated_password.clone())
            .unwrap_or_default();
        let hash = self
            .hasher
            .hash(&password)
            .await
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let generated_api_key = req
            .api_key
            .is_none()
            .then(super::admins::generate_api_token);
        let token = req
            .api_key
            .clone()
            .or_else(|| generated_api_key.clone())
            .unwrap_or_default();
        if token.len() < 20 {
            return Err(DirectoryError::invalid(
                "api_key",
                "the bootstrap API key must be at least 20 characters",
            ));
        }
        let admin_email = req
            .admin_email
            .clone()
            .unwrap_or_else(|| "admin@stratus.local".to_string());
        let org_name = if req.org_name.trim().is_empty() {
            "Stratus".to_string()
        } else {
            req.org_name.clone()
        };
        self.write(move |tx| {
            if tx.snap.org.is_some() {
                return Ok(None);
            }
            let org_id = Id::generate();
            let org = OrgSettings {
                org_id: org_id.clone(),
                name: org_name,
                contact_email: None,
                ldap_suffix: format!("o={org_id},dc=stratus,dc=local"),
                samba_domain: "STRATUS".into(),
                samba_sid: generate_domain_sid(),
                uid_range: DEFAULT_ID_RANGE,
                gid_range: DEFAULT_ID_RANGE,
                mfa_enrolment_days: 7,
                session_idle_minutes: 30,
                session_absolute_minutes: 12 * 60,
                event_retention_days: 90,
            };
            tx.put_org(org);
            tx.put_policy(PasswordPolicy::default());
            tx.snap.allocators = Allocators {
                next_uid: DEFAULT_ID_RANGE.start,
                next_gid: DEFAULT_ID_RANGE.start,
            };
            tx.put_allocators();
            let admin = super::admins::new_admin_record(
                tx,
                &admin_email,
                "Bootstrap administrator",
                AdminRole::Administrator,
                Some(hash),
            )?;
            let admin_id = admin.id.clone();
            tx.snap.put_admin(Arc::new(admin.clone()));
            tx.batch
                .put_json(crate::store::Kind::Admin, admin.id.as_str(), &admin);
            super::admins::insert_api_key(tx, "bootstrap", &admin_id, &token);
            tx.event(
                Event::new(Service::Directory, "org_initialise", true)
                    .actor("system")
                    .target("org", &org_id)
                    .detail("admin_email", admin_email.clone()),
            );
            Ok(Some(BootstrapResult {
                org_id,
                admin_email,
                generated_password,
                generated_api_key,
            }))
        })
        .await
    }

    pub fn password_policy(&self) -> Arc<PasswordPolicy> {
        Arc::clone(&self.snapshot().policy)
    }

    pub async fn set_password_policy(
        &self,
        actor: &Actor,
        policy: PasswordPolicy,
    ) -> Result<PasswordPolicy> {
        actor.require(Permission::ManageOrg)?;
        if policy.min_length == 0
            || usize::from(policy.min_length) > crate::policy::MAX_PASSWORD_BYTES
        {
            return Err(DirectoryError::invalid(
                "min_length",
                format!(
                    "min_length must be between 1 and {}",
                    crate::policy::MAX_PASSWORD_BYTES
                ),
            ));
        }
        if policy.history > 24 {
            return Err(DirectoryError::invalid(
                "history",
                "history must be at most 24",
            ));
        }
        if policy.lockout.enabled && policy.lockout.max_failures == 0 {
            return Err(DirectoryError::invalid(
                "lockout.max_failures",
                "lockout needs at least one allowed failure",
            ));
        }
        let actor = actor.clone();
        self.write(move |tx| {
            tx.put_policy(policy.clone());
            tx.event(admin_event(&actor, "password_policy_update").target("policy", "password"));
            Ok(policy)
        })
        .await
    }

    pub async fn update_org(&self, actor: &Actor, patch: OrgPatch) -> Result<OrgSettings> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        self.write(move |tx| {
            let mut org = (*tx.org()?).clone();
            if let Some(v) = patch.name {
                org.name = required("name", &v)?;
            }
            if let Some(v) = patch.contact_email {
                org.contact_email = super::optional("contact_email", Some(&v))?;
            }
            if let Some(v) = patch.ldap_suffix {
                org.ldap_suffix = validate_suffix(&v)?;
            }
            if let Some(v) = patch.samba_domain {
                let v = required("samba_domain", &v)?;
                if v.len() > 15 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(DirectoryError::invalid(
                        "samba_domain",
                        "samba_domain must be 1–15 letters, digits or hyphens (a NetBIOS name)",
                    ));
                }
                org.samba_domain = v.to_uppercase();
            }
            if let Some(r) = patch.uid_range {
                validate_range("uid_range", r)?;
                org.uid_range = r;
            }
            if let Some(r) = patch.gid_range {
                validate_range("gid_range", r)?;
                org.gid_range = r;
            }
            if let Some(d) = patch.mfa_enrolment_days {
                if !(1..=365).contains(&d) {
                    return Err(DirectoryError::invalid(
                        "mfa_enrolment_days",
                        "mfa_enrolment_days must be between 1 and 365",
                    ));
                }
                org.mfa_enrolment_days = d;
            }
            if let Some(m) = patch.session_idle_minutes {
                org.session_idle_minutes = m.max(1);
            }
            if let Some(m) = patch.session_absolute_minutes {
                org.session_absolute_minutes = m.max(1);
            }
            if let Some(d) = patch.event_retention_days {
                org.event_retention_days = d;
            }
            tx.put_org(org.clone());
            tx.event(admin_event(&actor, "org_update").target("org", &org.org_id));
            Ok(org)
        })
        .await
    }
}

/// An event for an admin's action.
pub(crate) fn admin_event(actor: &Actor, event_type: &str) -> Event {
    let e = Event::new(actor.service, event_type, true)
        .actor(actor.label.clone())
        .client(actor.client_ip);
    match &actor.via {
        Some(via) => e.detail("via", via.clone()),
        None => e,
    }
}

fn validate_range(field: &'static str, r: IdRange) -> Result<()> {
    if r.start < 1000 || r.end < r.start {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} must start at 1000 or above and end at or after its start"),
        ));
    }
    Ok(())
}

fn validate_suffix(text: &str) -> Result<String> {
    let v = required("ldap_suffix", text)?;
    let ok = v.split(',').all(|rdn| {
        rdn.split_once('=')
            .is_some_and(|(a, b)| !a.trim().is_empty() && !b.trim().is_empty())
    });
    if !ok {
        return Err(DirectoryError::invalid(
            "ldap_suffix",
            "ldap_suffix must be a DN such as o=example,dc=stratus,dc=local",
        ));
    }
    Ok(v)
}

/// A 20-character password from an unambiguous alphabet with every character class.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let bytes = crypto::random_bytes(17);
    let body: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{body}a9Z")
}

/// `S-1-5-21-a-b-c` with three random sub-authorities.
fn generate_domain_sid() -> String {
    let b = crypto::random_bytes(12);
    let sub = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    format!("S-1-5-21-{}-{}-{}", sub(0), sub(4), sub(8))
}
