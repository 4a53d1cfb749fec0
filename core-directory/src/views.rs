//! What leaves the core: entity views without secrets, with derived state (password status, lock, MFA), and
//! the inputs that create and change entities.

use crate::id::Id;
use crate::model::*;
use crate::snapshot::Snapshot;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// TOTP enrolment status as shown to admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TotpStatus {
    NotEnrolled,
    /// Started, waiting for the first code.
    Pending,
    Active,
}

/// MFA state of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MfaView {
    pub required: bool,
    pub totp: TotpStatus,
    /// While MFA is required and TOTP is not active: the end of the enrolment period.
    pub enrolment_deadline: Option<DateTime<Utc>>,
    /// MFA is required, TOTP is not active and the enrolment period is over: the user cannot log in to the
    /// portal until enrolled or reset by an admin.
    pub enrolment_expired: bool,
}

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: Id,
    /// POSIX-safe: LDAP `uid`, RADIUS User-Name, the Linux account name.
    pub username: String,
    /// The e-mail-shaped name the user was created or renamed with (the SCIM userName), when it is not the user
    /// name; the user name was derived from it.
    pub login_name: Option<String>,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub display_name: Option<String>,
    pub state: UserState,
    pub password_status: PasswordStatus,
    pub password_set_at: Option<DateTime<Utc>>,
    pub password_expires_at: Option<DateTime<Utc>>,
    /// The scheme of a password hash imported from another directory (`SSHA`, `CRYPT-SHA512`, `NT`, …), kept
    /// until the user's next successful login re-hashes the password to argon2id; absent otherwise.
    pub legacy_password_scheme: Option<String>,
    pub locked: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub failed_logins: u32,
    pub mfa: MfaView,
    pub ldap_bind_dn: bool,
    pub uid_number: u32,
    pub gid_number: u32,
    pub home_directory: String,
    pub login_shell: String,
    pub employment: Employment,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    /// The user's own custom attributes.
    pub attributes: BTreeMap<String, String>,
    /// Own attributes merged over those inherited from groups (what SSO apps and LDAP see).
    pub effective_attributes: BTreeMap<String, String>,
    pub groups: Vec<Id>,
    /// An NT hash is on file (needed for Samba and PEAP-MSCHAPv2).
    pub nt_hash_present: bool,
    /// The user needs an NT hash (Samba group or PEAP-enabled RADIUS) but has none: the next password set will
    /// create it.
    pub nt_hash_needs_password_set: bool,
    /// The SCIM token that created or adopted the user.
    pub scim_owner: Option<Id>,
    /// Moves with every change of the user, memberships included: give it back as `expect_revision` (or the
    /// SCIM `If-Match`) to change the user only if nobody else did in between.
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserView {
    pub fn of(u: &User, snap: &Snapshot, now: DateTime<Utc>) -> Self {
        let needs_nt = snap.in_samba_group(&u.id) || snap.needs_nt_hash_for_radius(&u.id);
        let totp = match &u.totp {
            None => TotpStatus::NotEnrolled,
            Some(t) if t.confirmed => TotpStatus::Active,
            Some(_) => TotpStatus::Pending,
        };
        let deadline = if u.mfa_required && !u.totp_active() {
            u.mfa_enrolment_deadline
        } else {
            None
        };
        UserView {
            id: u.id.clone(),
            username: u.username.clone(),
            login_name: u.login_name.clone(),
            email: u.email.clone(),
            firstname: u.firstname.clone(),
            lastname: u.lastname.clone(),
            display_name: u.display_name.clone(),
            state: u.state,
            password_status: u.password_status(&snap.policy, now),
            password_set_at: u.password_set_at,
            password_expires_at: u.password_expires_at(&snap.policy),
            legacy_password_scheme: u.legacy_hash_scheme().map(|s| s.name().to_string()),
            locked: u.is_locked(now),
            locked_until: u.locked_until.filter(|t| *t > now),
            failed_logins: u.failed_logins,
            mfa: MfaView {
                required: u.mfa_required,
                totp,
                enrolment_deadline: deadline,
                enrolment_expired: deadline.is_some_and(|d| now >= d),
            },
            ldap_bind_dn: u.ldap_bind_dn,
            uid_number: u.uid_number,
            gid_number: u.gid_number,
            home_directory: u.home_directory.clone(),
            login_shell: u.login_shell.clone(),
            employment: u.employment.clone(),
            phone: u.phone.clone(),
            external_id: u.external_id.clone(),
            attributes: u.attributes.clone(),
            effective_attributes: snap.effective_attributes(u),
            groups: snap.groups_of(&u.id).map(|g| g.id.clone()).collect(),
            nt_hash_present: u.nt_hash.is_some(),
            nt_hash_needs_password_set: needs_nt && u.nt_hash.is_none(),
            scim_owner: u.scim_owner.clone(),
            revision: u.revision,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A user group as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupView {
    #[serde(flatten)]
    pub group: Group,
    pub member_count: usize,
    /// Resources the group is bound to (`ldap`, `radius:{id}`, `app:{id}`, `directory:{id}`).
    pub bindings: Vec<String>,
}

impl GroupView {
    pub fn of(g: &Group, snap: &Snapshot) -> Self {
        GroupView {
            group: g.clone(),
            member_count: snap.members.get(&g.id).map_or(0, |m| m.len()),
            bindings: snap
                .group_bindings
                .get(&g.id)
                .map(|s| s.iter().map(|r| r.to_string()).collect())
                .unwrap_or_default(),
        }
    }
}

/// A RADIUS server profile without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RadiusServerView {
    pub id: Id,
    pub name: String,
    #[schema(value_type = Vec<String>)]
    pub networks: Vec<ipnet::IpNet>,
    pub mfa: RadiusMfaMode,
    pub methods: Vec<RadiusMethod>,
    pub allow_missing_message_authenticator: bool,
    pub otp_append: bool,
    pub reject_reply_message: bool,
    pub dynamic_authorization: bool,
    pub coa_port: u16,
    pub radsec_client: Option<String>,
    pub realm: RealmRule,
    pub bound_groups: Vec<Id>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RadiusServerView {
    pub fn of(r: &RadiusServer, snap: &Snapshot) -> Self {
        RadiusServerView {
            id: r.id.clone(),
            name: r.name.clone(),
            networks: r.networks.clone(),
            mfa: r.mfa,
            methods: r.methods.clone(),
            allow_missing_message_authenticator: r.allow_missing_message_authenticator,
            otp_append: r.otp_append,
            reject_reply_message: r.reject_reply_message,
            dynamic_authorization: r.dynamic_authorization,
            coa_port: r.coa_port,
            radsec_client: r.radsec_client.clone(),
            realm: r.realm.clone(),
            bound_groups: snap.bound_groups(&Resource::Radius(r.id.clone())),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// An SSO app record as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppView {
    pub id: Id,
    pub name: String,
    pub sp_entity_id: String,
    pub acs_urls: Vec<String>,
    pub sp_certificate: Option<String>,
    pub nameid_format: NameIdFormat,
    pub sign: SignTarget,
    pub signature_algorithm: String,
    pub encrypt_assertion: bool,
    pub attributes: Vec<AttributeMapping>,
    pub default_relay_state: Option<String>,
    pub idp_initiated: bool,
    pub require_signed_requests: bool,
    pub sp_slo_url: Option<String>,
    /// The SP's SLO endpoint takes HTTP-POST (else HTTP-Redirect).
    pub sp_slo_post: bool,
    pub sp_encryption_certificate: Option<String>,
    /// The IdP signing certificates; the `active` one signs.
    pub idp_keys: Vec<IdpKeyView>,
    /// The SCIM base URL users are provisioned to, when a connector is set.
    pub scim_base_url: Option<String>,
    /// The certificate (PEM) that must have signed uploaded SP metadata for it to count as verified.
    pub metadata_trust_anchor: Option<String>,
    /// SP metadata uploads must be signed and verified by the trust anchor.
    pub require_signed_metadata: bool,
    /// The last SP metadata upload: when, and whether it was signed and verified by the trust anchor.
    pub sp_metadata_upload: Option<SpMetadataUpload>,
    pub bound_groups: Vec<Id>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An IdP key of an app, without its private half.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IdpKeyView {
    pub id: String,
    pub status: IdpKeyStatus,
    /// The certificate, PEM.
    pub certificate: String,
    pub fingerprint_sha256: String,
    pub not_before: DateTime<Utc>,
    /// When the certificate expires: rotate before then.
    pub not_after: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl IdpKeyView {
    pub fn of(k: &IdpKey) -> Self {
        IdpKeyView {
            id: k.id.clone(),
            status: k.status,
            certificate: k.certificate.clone(),
            fingerprint_sha256: k.fingerprint_sha256.clone(),
            not_before: k.not_before,
            not_after: k.not_after,
            created_at: k.created_at,
        }
    }
}

/// A new IdP key for an app: generated when no certificate is given, otherwise the uploaded pair.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIdpKey {
    /// Sign with the new key at once (the old one stays published as `previous`); otherwise it is published as
    /// `next` until activated.
    #[serde(default)]
    pub activate: bool,
    /// An RSA (≥ 2048 bits) certificate, PEM.
    pub certificate: Option<String>,
    /// Its unencrypted PKCS#8 private key, PEM.
    pub private_key: Option<String>,
}

impl AppView {
    pub fn of(a: &SsoApp, snap: &Snapshot) -> Self {
        AppView {
            id: a.id.clone(),
            name: a.name.clone(),
            sp_entity_id: a.sp_entity_id.clone(),
            acs_urls: a.acs_urls.clone(),
            sp_certificate: a.sp_certificate.clone(),
            nameid_format: a.nameid_format,
            sign: a.sign,
            signature_algorithm: a.signature_algorithm.clone(),
            encrypt_assertion: a.encrypt_assertion,
            attributes: a.attributes.clone(),
            default_relay_state: a.default_relay_state.clone(),
            idp_initiated: a.idp_initiated,
            require_signed_requests: a.require_signed_requests,
            sp_slo_url: a.sp_slo_url.clone(),
            sp_slo_post: a.sp_slo_post,
            sp_encryption_certificate: a.sp_encryption_certificate.clone(),
            idp_keys: a.idp_keys.iter().map(IdpKeyView::of).collect(),
            scim_base_url: a.scim.as_ref().map(|c| c.base_url.clone()),
            metadata_trust_anchor: a.metadata_trust_anchor.clone(),
            require_signed_metadata: a.require_signed_metadata,
            sp_metadata_upload: a.sp_metadata_upload,
            bound_groups: snap.bound_groups(&Resource::App(a.id.clone())),
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// An admin as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AdminView {
    pub id: Id,
    pub email: String,
    pub name: String,
    pub role: AdminRole,
    pub totp: TotpStatus,
    pub password_set: bool,
    /// The password is one-time: the console asks for a new one at sign-in.
    pub password_must_change: bool,
    pub locked: bool,
    pub created_at: DateTime<Utc>,
}

impl AdminView {
    pub fn of(a: &Admin, now: DateTime<Utc>) -> Self {
        AdminView {
            id: a.id.clone(),
            email: a.email.clone(),
            name: a.name.clone(),
            role: a.role,
            totp: match &a.totp {
                None => TotpStatus::NotEnrolled,
                Some(t) if t.confirmed => TotpStatus::Active,
                Some(_) => TotpStatus::Pending,
            },
            password_set: a.password_hash.is_some(),
            password_must_change: a.password_must_change,
            locked: a.locked_until.is_some_and(|t| t > now),
            created_at: a.created_at,
        }
    }
}

/// An API key without its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Id,
    pub name: String,
    pub admin_id: Id,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        ApiKeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            admin_id: k.admin_id.clone(),
            prefix: k.prefix.clone(),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A SCIM token without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScimTokenView {
    pub id: Id,
    pub name: String,
    pub prefix: String,
    /// What the token may change.
    pub scope: ScimScope,
    pub created_at: DateTime<Utc>,
}

impl From<&ScimToken> for ScimTokenView {
    fn from(t: &ScimToken) -> Self {
        ScimTokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            scope: t.scope.clone(),
            created_at: t.created_at,
        }
    }
}

// ----- inputs -----

/// Create a user.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// A POSIX-safe user name, or an e-mail-shaped login name from which the user name is derived.
    pub username: String,
    pub email: String,
    #[serde(default)]
    pub firstname: String,
    #[serde(default)]
    pub lastname: String,
    pub display_name: Option<String>,
    /// Checked against the password policy; without one (and without `password_hash`) the password is pending.
    pub password: Option<String>,
    /// A hash from another directory, as `userPassword` holds it (`{SSHA}…`, `{CRYPT}$6$…`, `{ARGON2}…`,
    /// `{PBKDF2-SHA256}…`; a bare `$6$…` is taken as crypt). Kept until the user's first successful login
    /// re-hashes the password to argon2id. Not with `password`.
    pub password_hash: Option<String>,
    /// A Samba NT hash (32 hex digits, `sambaNTPassword`): kept sealed for Samba and MSCHAPv2, and a password
    /// check of its own when no `password_hash` comes with it.
    pub nt_hash: Option<String>,
    /// Defaults to `active`.
    pub state: Option<UserState>,
    #[serde(default)]
    pub ldap_bind_dn: bool,
    #[serde(default)]
    pub mfa_required: bool,
    /// Allocated from the org's UID range when absent.
    pub uid_number: Option<u32>,
    /// Defaults to the uid number.
    pub gid_number: Option<u32>,
    pub home_directory: Option<String>,
    pub login_shell: Option<String>,
    pub employment: Option<Employment>,
    pub phone: Option<String>,
    /// The id a provisioning system knows the user by (SCIM `externalId`).
    pub external_id: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// Change a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// A new user name, or a new e-mail-shaped login name (the user name then stays as it is).
    pub username: Option<String>,
    pub email: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub display_name: Option<String>,
    pub state: Option<UserState>,
    pub ldap_bind_dn: Option<bool>,
    pub mfa_required: Option<bool>,
    /// Restart the TOTP enrolment period now (an admin's "reset").
    pub reset_mfa_enrolment: Option<bool>,
    pub uid_number: Option<u32>,
    pub gid_number: Option<u32>,
    pub home_directory: Option<String>,
    pub login_shell: Option<String>,
    pub employment: Option<Employment>,
    pub phone: Option<String>,
    /// An empty string removes it.
    pub external_id: Option<String>,
    /// Replaces all custom attributes.
    pub attributes: Option<BTreeMap<String, String>>,
    /// Set a new password in the same transaction (needs the right to reset credentials); the policy applies.
    pub password: Option<String>,
    /// Change the user only if it is still at this revision (else 412).
    pub expect_revision: Option<u64>,
}

/// A Linux group for a user group; the GID is allocated when absent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinuxGroupInput {
    pub name: String,
    pub gid: Option<u32>,
}

/// Create a user group.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub linux_group: Option<LinuxGroupInput>,
    #[serde(default)]
    pub samba: bool,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub radius_reply: Vec<ReplyAttribute>,
    #[serde(default)]
    pub priority: i32,
    /// The id a provisioning system knows the group by (SCIM `externalId`).
    pub external_id: Option<String>,
    /// First members, added in the same transaction.
    #[serde(default)]
    pub members: Vec<Id>,
}

/// Change a group; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `null` removes the Linux group.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<LinuxGroupInput>)]
    pub linux_group: Option<Option<LinuxGroupInput>>,
    pub samba: Option<bool>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub radius_reply: Option<Vec<ReplyAttribute>>,
    pub priority: Option<i32>,
    /// An empty string removes it.
    pub external_id: Option<String>,
    /// The full member list: members not in it are removed, the others added.
    pub members: Option<Vec<Id>>,
    /// Members to add (already members are left as they are).
    #[serde(default)]
    pub add_members: Vec<Id>,
    /// Members to remove (users who are not members are left as they are).
    #[serde(default)]
    pub remove_members: Vec<Id>,
    /// Change the group only if it is still at this revision (else 412).
    pub expect_revision: Option<u64>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// Create a RADIUS server profile.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRadiusServer {
    pub name: String,
    #[schema(value_type = Vec<String>)]
    pub networks: Vec<ipnet::IpNet>,
    pub secret: String,
    #[serde(default = "default_mfa")]
    pub mfa: RadiusMfaMode,
    #[serde(default = "default_methods")]
    pub methods: Vec<RadiusMethod>,
    /// Accept legacy NAS that send no Message-Authenticator (PAP only; off by default).
    #[serde(default)]
    pub allow_missing_message_authenticator: bool,
    /// Accept `password,123456` in User-Password for NAS that cannot answer a challenge (off by default).
    #[serde(default)]
    pub otp_append: bool,
    /// Tell the NAS why in a Reply-Message on Access-Reject (off by default).
    #[serde(default)]
    pub reject_reply_message: bool,
    /// Disconnect (RFC 5176) the open sessions of users who lose access to this profile (off by default).
    #[serde(default)]
    pub dynamic_authorization: bool,
    /// The NAS's CoA/Disconnect port (default 3799).
    pub coa_port: Option<u16>,
    /// The RadSec client: a DNS subjectAltName (else the subject CN) of its TLS client certificate.
    pub radsec_client: Option<String>,
    /// How a realm in User-Name is read (default: `keep`).
    #[serde(default)]
    pub realm: RealmRule,
}

fn default_mfa() -> RadiusMfaMode {
    RadiusMfaMode::Off
}

fn default_methods() -> Vec<RadiusMethod> {
    vec![RadiusMethod::Pap]
}

/// Change a RADIUS server profile.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RadiusServerPatch {
    pub name: Option<String>,
    #[schema(value_type = Option<Vec<String>>)]
    pub networks: Option<Vec<ipnet::IpNet>>,
    pub secret: Option<String>,
    pub mfa: Option<RadiusMfaMode>,
    pub methods: Option<Vec<RadiusMethod>>,
    pub allow_missing_message_authenticator: Option<bool>,
    pub otp_append: Option<bool>,
    pub reject_reply_message: Option<bool>,
    pub dynamic_authorization: Option<bool>,
    pub coa_port: Option<u16>,
    /// `null` removes it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub radsec_client: Option<Option<String>>,
    pub realm: Option<RealmRule>,
}

/// Create an SSO app record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    pub name: String,
    pub sp_entity_id: String,
    pub acs_urls: Vec<String>,
    pub sp_certificate: Option<String>,
    pub nameid_format: Option<NameIdFormat>,
    pub sign: Option<SignTarget>,
    /// `rsa-sha256` (default) or `rsa-sha1`.
    pub signature_algorithm: Option<String>,
    #[serde(default)]
    pub encrypt_assertion: bool,
    #[serde(default)]
    pub attributes: Vec<AttributeMapping>,
    pub default_relay_state: Option<String>,
    #[serde(default = "yes")]
    pub idp_initiated: bool,
    #[serde(default)]
    pub require_signed_requests: bool,
    /// The SP's single-logout URL.
    pub sp_slo_url: Option<String>,
    /// Send LogoutResponses by HTTP-POST rather than HTTP-Redirect.
    #[serde(default)]
    pub sp_slo_post: bool,
    /// The SP's encryption certificate, when not its signing one.
    pub sp_encryption_certificate: Option<String>,
    /// A certificate (PEM, RSA ≥ 2048 bits) whose key must have signed uploaded SP metadata — the SP's own or its
    /// federation's.
    pub metadata_trust_anchor: Option<String>,
    /// Refuse SP metadata uploads that are not signed and verified by `metadata_trust_anchor`.
    #[serde(default)]
    pub require_signed_metadata: bool,
}

fn yes() -> bool {
    true
}

/// Change an SSO app record.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    pub name: Option<String>,
    pub sp_entity_id: Option<String>,
    pub acs_urls: Option<Vec<String>>,
    pub sp_certificate: Option<String>,
    pub nameid_format: Option<NameIdFormat>,
    pub sign: Option<SignTarget>,
    pub signature_algorithm: Option<String>,
    pub encrypt_assertion: Option<bool>,
    pub attributes: Option<Vec<AttributeMapping>>,
    pub default_relay_state: Option<String>,
    pub idp_initiated: Option<bool>,
    pub require_signed_requests: Option<bool>,
    pub sp_slo_url: Option<String>,
    pub sp_slo_post: Option<bool>,
    pub sp_encryption_certificate: Option<String>,
    /// A certificate (PEM); an empty string removes the anchor.
    pub metadata_trust_anchor: Option<String>,
    pub require_signed_metadata: Option<bool>,
}

/// Create an admin.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub role: AdminRole,
    pub password: Option<String>,
}

/// Change an admin.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminPatch {
    pub name: Option<String>,
    pub role: Option<AdminRole>,
    pub password: Option<String>,
}

/// Change org settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    pub name: Option<String>,
    pub contact_email: Option<String>,
    pub ldap_suffix: Option<String>,
    pub samba_domain: Option<String>,
    pub uid_range: Option<IdRange>,
    pub gid_range: Option<IdRange>,
    pub mfa_enrolment_days: Option<u16>,
    pub session_idle_minutes: Option<u32>,
    pub session_absolute_minutes: Option<u32>,
    pub event_retention_days: Option<u32>,
    /// `#rrggbb`; an empty string removes it.
    pub brand_color: Option<String>,
    /// A `data:image/png|jpeg|webp|svg+xml;base64,…` URI of at most 96 KiB; an empty string removes it.
    pub logo: Option<String>,
    /// An IANA time zone (`Europe/Paris`) for conditional access time windows; an empty string means UTC.
    pub time_zone: Option<String>,
}

/// TOTP enrolment confirmed: the user, and the recovery codes made for it (shown this once, never again).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpConfirmed {
    #[serde(flatten)]
    pub user: UserView,
    /// Single-use codes that stand in for a TOTP code when the authenticator is lost.
    pub recovery_codes: Vec<String>,
}

/// TOTP enrolment started: show these once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpStart {
    /// Base32 secret for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
}
