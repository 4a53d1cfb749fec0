//! # ldap-server
//!
//! Will own the LDAP listener: LDAPv3 over TCP with StartTLS and LDAPS, the BER codec, sessions (unbound →
//! bound), search over the directory tree `ou=Users,<suffix>` (posixAccount, posixGroup, groupOfNames, Samba
//! attributes), rootDSE, subschema, whoami and password modify. Every decision — who may bind, who is visible,
//! lockout — is a call on `core_directory::Directory`; it reads only the published snapshot. It must not depend
//! on any other listener, and it holds no directory rule of its own.
//!
//! Not built yet: the crate exists so the workspace has its final shape.
