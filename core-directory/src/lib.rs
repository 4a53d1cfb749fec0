//! # core-directory
//!
//! The directory core of Stratus: users, groups, password policy, TOTP MFA, admins, API keys, bindings,
//! RADIUS server profiles, SSO app records and the event record — and every decision about them. It has no
//! sockets and no HTTP; the listeners (LDAP, RADIUS, SAML, SCIM, admin API) translate their protocols into calls
//! on [`Directory`] and read the published [`Snapshot`]. It must not know any wire protocol.
//!
//! # Layout
//! - [`model`]: the stored entities; [`views`]: what leaves the core (no secrets) and the inputs that change it.
//! - [`store`]: the persistence boundary ([`store::Store`]) and its redb backend.
//! - [`snapshot`]: the immutable, structurally shared read model, swapped atomically after each commit.
//! - [`directory`]: the [`Directory`] handle — writes as transactions, bootstrap, CRUD of every entity.
//! - [`auth`]: the one authentication path every protocol calls.
//! - [`password`], [`policy`], [`totp`], [`crypto`], [`mschapv2`]: argon2id pool and credential cache,
//!   password rules, RFC 6238, sealing of secrets at rest, MS-CHAPv2 checks against the sealed NT hash.
//! - [`realm`]: a RADIUS profile's realm rule for `user@realm` / `REALM\user`, a pure function of rule and name.
//! - [`access`]: admin roles and permissions; [`events`]: directory insights; [`import`] and [`csv`]: CSV import.
//! - [`radius_sessions`]: open RADIUS accounting sessions, rebuilt from their events at start; with
//!   [`Directory::radius_session_refusal`], whether one may go on.

pub mod access;
pub mod activity;
pub mod auth;
pub mod conditional;
pub mod counters;
pub mod crypto;
pub mod csv;
pub mod directory;
pub mod error;
pub mod events;
pub mod explain;
pub mod id;
pub mod idp_keys;
pub mod import;
pub mod ldif;
pub mod legacy_hash;
pub mod limits;
pub mod mail;
pub mod model;
pub mod mschapv2;
pub mod password;
pub mod policy;
pub mod radius_sessions;
pub mod realm;
pub mod recovery;
pub mod sessions;
pub mod snapshot;
pub mod store;
pub mod throttle;
pub mod totp;
pub mod views;

pub use access::{Actor, Permission};
pub use auth::{AuthGrant, AuthOutcome, AuthRequest, Credential, DenyReason, MfaChallenge};
pub use directory::{
    Directory, DirectoryConfig, ReplyAttributeCheck, SpMetadata, SpMetadataReader,
};
pub use error::{DirectoryError, Result};
pub use events::{Event, EventQuery, Service};
pub use id::Id;
pub use snapshot::Snapshot;
