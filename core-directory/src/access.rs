//! Who is acting, and what each admin role may do. Every mutating core call takes an [`Actor`] and checks its
//! permission itself, so no front end can forget to.

use crate::error::{DirectoryError, Result};
use crate::events::Service;
use crate::id::Id;
use crate::model::AdminRole;
use std::net::IpAddr;

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read anything (never secrets).
    Read,
    /// Create, change and delete users and groups, memberships and bindings.
    ManageUsers,
    /// Set passwords, unlock accounts, reset MFA.
    ResetCredentials,
    /// RADIUS servers, SSO apps, settings, policy, admins, API keys.
    ManageOrg,
}

impl Permission {
    fn describe(self) -> &'static str {
        match self {
            Permission::Read => "reading the directory",
            Permission::ManageUsers => "managing users and groups",
            Permission::ResetCredentials => "resetting passwords and unlocking users",
            Permission::ManageOrg => "managing organisation settings, resources and admins",
        }
    }
}

/// Whether a role grants a permission.
pub fn role_allows(role: AdminRole, permission: Permission) -> bool {
    match role {
        AdminRole::Administrator => true,
        AdminRole::Manager => matches!(
            permission,
            Permission::Read | Permission::ManageUsers | Permission::ResetCredentials
        ),
        AdminRole::HelpDesk => {
            matches!(permission, Permission::Read | Permission::ResetCredentials)
        }
        AdminRole::ReadOnly => permission == Permission::Read,
    }
}

/// The party behind a core call.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The admin, when an admin acts.
    pub admin_id: Option<Id>,
    /// Shown in events as the actor: an admin's e-mail, a username, or `system`.
    pub label: String,
    /// How the actor authenticated when it matters, e.g. `api-key:<name>`.
    pub via: Option<String>,
    pub role: AdminRole,
    pub service: Service,
    pub client_ip: Option<IpAddr>,
    /// The SCIM token acting, whose scope the core applies to every change it makes.
    pub scim_token: Option<Id>,
}

impl Actor {
    /// Stratus itself (bootstrap, retention, background work).
    pub fn system() -> Self {
        Actor {
            admin_id: None,
            label: "system".into(),
            via: None,
            role: AdminRole::Administrator,
            service: Service::Directory,
            client_ip: None,
            scim_token: None,
        }
    }

    pub fn require(&self, permission: Permission) -> Result<()> {
        if role_allows(self.role, permission) {
            Ok(())
        } else {
            Err(DirectoryError::Forbidden(permission.describe()))
        }
    }
}

/// LDAP: a "Bind DN" service account may search the whole directory and read Samba password hashes; any other
/// bound user sees and compares only their own entry.
pub fn ldap_service_account(user: &crate::model::User) -> bool {
    user.ldap_bind_dn
}

/// LDAP: whether `reader` may read (and compare) the entry of the user `target`.
pub fn ldap_may_read_user(reader: &crate::model::User, target: &Id) -> bool {
    ldap_service_account(reader) || reader.id == *target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_they_say() {
        use AdminRole::*;
        use Permission::*;
        assert!(role_allows(Administrator, ManageOrg));
        assert!(role_allows(Manager, ManageUsers) && !role_allows(Manager, ManageOrg));
        assert!(role_allows(HelpDesk, ResetCredentials) && !role_allows(HelpDesk, ManageUsers));
        assert!(role_allows(ReadOnly, Read) && !role_allows(ReadOnly, ResetCredentials));
    }
}
