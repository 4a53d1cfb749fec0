//! The directory's entities as stored. Secret-bearing fields (password hash, sealed TOTP seed, sealed NT hash,
//! sealed RADIUS secret) live here but never leave the core in a view: see [`crate::views`].

use crate::crypto::Sealed;
use crate::id::Id;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Organisation-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgSettings {
    pub org_id: Id,
    pub name: String,
    pub contact_email: Option<String>,
    /// LDAP naming context, e.g. `o=<orgid>,dc=stratus,dc=local`.
    pub ldap_suffix: String,
    pub samba_domain: String,
    pub samba_sid: String,
    pub uid_range: IdRange,
    pub gid_range: IdRange,
    /// Days a user has to enrol in TOTP after MFA becomes required (1–365).
    pub mfa_enrolment_days: u16,
    /// Idle and absolute lifetimes of admin and portal sessions, in minutes.
    pub session_idle_minutes: u32,
    pub session_absolute_minutes: u32,
    /// Days events are kept; 0 keeps them forever.
    pub event_retention_days: u32,
    /// The colour of buttons and links on the sign-in pages and the portal, `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand_color: Option<String>,
    /// A logo shown above the sign-in pages and the portal: a `data:` URI of a PNG, JPEG, WebP or SVG image
    /// (at most 96 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// The IANA time zone conditional access time windows are read in (`Europe/Paris`); UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// An inclusive range of POSIX ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IdRange {
    pub start: u32,
    pub end: u32,
}

impl IdRange {
    pub fn contains(&self, n: u32) -> bool {
        n >= self.start && n <= self.end
    }
}

/// The password rules every password set must satisfy, by every path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    pub min_length: u16,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_digit: bool,
    pub require_special: bool,
    /// The password may not contain the username (case-insensitive).
    pub disallow_username: bool,
    /// How many previous passwords may not be reused (0 = no history).
    pub history: u16,
    /// Days until a password expires (0 = never).
    pub max_age_days: u32,
    /// Days before expiry when logins start warning.
    pub expiry_warning_days: u32,
    pub lockout: LockoutPolicy,
}

/// Account lockout after repeated failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockoutPolicy {
    pub enabled: bool,
    /// Consecutive failures that lock the account.
    pub max_failures: u32,
    /// Minutes the account stays locked; 0 = until an admin unlocks it.
    pub lock_minutes: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 12,
            require_lowercase: true,
            require_uppercase: true,
            require_digit: true,
            require_special: false,
            disallow_username: true,
            history: 4,
            max_age_days: 0,
            expiry_warning_days: 14,
            lockout: LockoutPolicy {
                enabled: true,
                max_failures: 10,
                lock_minutes: 15,
            },
        }
    }
}

/// Lifecycle state of a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    /// Created but not yet allowed to log in or reach any resource.
    Staged,
    Active,
    /// Temporarily disabled; keeps its data and memberships.
    Suspended,
}

/// Derived status of a user's password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PasswordStatus {
    /// No password has been set yet.
    Pending,
    Active,
    /// Aging has passed; the user must choose a new one.
    Expired,
}

/// TOTP enrolment of a user or admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    pub secret: Sealed,
    /// False between "start" and "confirm with a code".
    pub confirmed: bool,
    pub created_at: DateTime<Utc>,
}

/// A directory user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Id,
    /// POSIX-safe: LDAP `uid`, RADIUS User-Name, the Linux account name.
    pub username: String,
    /// The name the user signs in with and that provisioning systems know, when it is not the user name: an
    /// e-mail-shaped SCIM userName (Okta's and Entra's defaults), case kept as given. The user name is then
    /// derived from it (see `directory::users::resolve_username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_name: Option<String>,
    pub email: String,
    pub firstname: String,
    pub lastname: String,
    pub display_name: Option<String>,
    pub state: UserState,
    pub password_hash: Option<String>,
    pub password_set_at: Option<DateTime<Utc>>,
    /// Hashes of previous passwords, newest first, for the history rule.
    pub password_history: Vec<String>,
    /// MD4 NT hash, sealed; kept only while Samba or MSCHAPv2 needs it.
    pub nt_hash: Option<Sealed>,
    pub totp: Option<TotpEnrolment>,
    /// SHA-256 digests of the unused TOTP recovery codes (`recovery.rs`); made at each enrolment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_codes: Vec<String>,
    /// A new TOTP the user is setting up to replace the active one (self-service), until it is confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_replacement: Option<TotpEnrolment>,
    pub mfa_required: bool,
    /// When MFA became required; with the enrolment days, gives the enrolment deadline.
    pub mfa_enrolment_deadline: Option<DateTime<Utc>>,
    /// Service account allowed to search LDAP.
    pub ldap_bind_dn: bool,
    pub uid_number: u32,
    pub gid_number: u32,
    pub home_directory: String,
    pub login_shell: String,
    pub employment: Employment,
    pub phone: Option<String>,
    /// The id a provisioning system (SCIM `externalId`) knows the user by.
    #[serde(default)]
    pub external_id: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    /// Bumped by every change that must invalidate cached credentials (password, state, lock).
    pub auth_revision: u64,
    /// The SCIM token that created or adopted the user (its provisioning owner), if any.
    #[serde(default)]
    pub scim_owner: Option<Id>,
    /// Bumped by every stored change of the entry, memberships included (the SCIM version and the LDAP
    /// modifyTimestamp move with it); login counters do not count. Writes may require an expected value.
    #[serde(default)]
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// "Far future" used for locks that last until an admin unlocks.
pub fn lock_forever() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
}

impl User {
    /// The scheme of a password hash imported from another directory and not yet re-hashed to argon2id.
    pub fn legacy_hash_scheme(&self) -> Option<crate::legacy_hash::Scheme> {
        self.password_hash
            .as_deref()
            .and_then(crate::legacy_hash::scheme)
    }

    pub fn password_status(&self, policy: &PasswordPolicy, now: DateTime<Utc>) -> PasswordStatus {
        match (&self.password_hash, self.password_set_at) {
            (None, _) => PasswordStatus::Pending,
            (Some(_), Some(set)) if policy.max_age_days > 0 => {
                if now >= set + Duration::days(i64::from(policy.max_age_days)) {
                    PasswordStatus::Expired
                } else {
                    PasswordStatus::Active
                }
            }
            _ => PasswordStatus::Active,
        }
    }

    pub fn password_expires_at(&self, policy: &PasswordPolicy) -> Option<DateTime<Utc>> {
        if policy.max_age_days == 0 {
            return None;
        }
        self.password_set_at
            .map(|set| set + Duration::days(i64::from(policy.max_age_days)))
    }

    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    pub fn totp_active(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed)
    }

    /// True while MFA is required but the user is still inside the enrolment period.
    pub fn in_mfa_enrolment_period(&self, now: DateTime<Utc>) -> bool {
        !self.totp_active()
            && self
                .mfa_enrolment_deadline
                .is_some_and(|deadline| now < deadline)
    }

    pub fn display(&self) -> String {
        self.display_name.clone().unwrap_or_else(|| {
            format!("{} {}", self.firstname, self.lastname)
                .trim()
                .to_string()
        })
    }
}

/// Employment information.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Employment {
    pub title: Option<String>,
    pub department: Option<String>,
    pub company: Option<String>,
    pub employee_id: Option<String>,
    pub manager: Option<String>,
}

/// A POSIX group attached to a user group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinuxGroup {
    pub name: String,
    pub gid: u32,
}

/// One RADIUS reply attribute, by dictionary name, e.g. `Tunnel-Private-Group-Id` = `42`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyAttribute {
    pub attribute: String,
    pub value: String,
}

/// A user group: the only way users reach resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub linux_group: Option<LinuxGroup>,
    pub samba: bool,
    /// Inherited by members; a member's own attribute of the same name wins.
    pub attributes: BTreeMap<String, String>,
    pub radius_reply: Vec<ReplyAttribute>,
    /// Higher wins when members' groups disagree (reply attributes, inherited attributes).
    pub priority: i32,
    /// The id a provisioning system (SCIM `externalId`) knows the group by.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The SCIM token that created the group, if any.
    #[serde(default)]
    pub scim_owner: Option<Id>,
    /// Bumped by every stored change of the group, memberships included.
    #[serde(default)]
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A resource a group can be bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Resource {
    Ldap,
    Radius(Id),
    App(Id),
    Directory(Id),
}

impl Resource {
    /// Parse `ldap`, `radius:{id}`, `app:{id}`, `directory:{id}`.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "ldap" {
            return Some(Resource::Ldap);
        }
        let (kind, id) = text.split_once(':')?;
        let id = Id::parse(id)?;
        match kind {
            "radius" => Some(Resource::Radius(id)),
            "app" => Some(Resource::App(id)),
            "directory" => Some(Resource::Directory(id)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Ldap => f.write_str("ldap"),
            Resource::Radius(id) => write!(f, "radius:{id}"),
            Resource::App(id) => write!(f, "app:{id}"),
            Resource::Directory(id) => write!(f, "directory:{id}"),
        }
    }
}

impl From<Resource> for String {
    fn from(r: Resource) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for Resource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Resource::parse(&s).ok_or_else(|| format!("unknown resource `{s}`"))
    }
}

/// MFA requirement of a RADIUS server profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RadiusMfaMode {
    Off,
    /// Every user must answer a TOTP challenge; users without TOTP are refused.
    RequireAll,
    /// As RequireAll, but users still inside their TOTP enrolment period pass without a code.
    RequireAllExceptEnrolling,
    /// Only users with active TOTP are challenged.
    RequireEnrolledOnly,
}

/// Authentication methods a RADIUS profile allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RadiusMethod {
    Pap,
    PeapMschapv2,
    EapTtlsPap,
    EapTls,
    /// MS-CHAPv2 as RFC 2548 attributes in the Access-Request itself, without EAP (VPN concentrators).
    Mschapv2,
    /// EAP-TTLS with MS-CHAPv2 inside (RFC 5281 §11.2.4).
    EapTtlsMschapv2,
}

/// How a RADIUS profile reads a realm in User-Name (`user@realm`, `REALM\user`); see [`crate::realm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RealmMode {
    /// `user@realm` is looked up as sent; a Windows `DOMAIN\` prefix is dropped (what Stratus always did).
    #[default]
    Keep,
    /// Either form of realm is removed before the lookup.
    Strip,
    /// Names without a realm (or, with a list, without one of its realms) are refused; the realm is removed.
    Require,
}

/// A RADIUS profile's realm rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RealmRule {
    #[serde(default)]
    pub mode: RealmMode,
    /// With `require`: the accepted realms (any realm when empty). Stored in lower case.
    #[serde(default)]
    pub realms: Vec<String>,
}

/// The kind of an external directory Stratus manages accounts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExternalKind {
    /// Active Directory (or Samba AD) over LDAPS: `user` objects, `unicodePwd`, `userAccountControl`.
    ActiveDirectory,
    /// An LDAP directory such as OpenLDAP: `inetOrgPerson` entries, `userPassword` as a salted SHA hash.
    Ldap,
}

/// An external directory: a resource like LDAP or a RADIUS profile. The groups bound to it decide who has an
/// account there; their passwords are taken over from Stratus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalDirectory {
    pub id: Id,
    pub name: String,
    pub kind: ExternalKind,
    /// `ldaps://host[:port]` (or `ldap://` with StartTLS).
    pub url: String,
    /// The account Stratus binds as to manage users there.
    pub bind_dn: String,
    pub bind_password: Sealed,
    /// Where user entries are created.
    pub users_dn: String,
    /// Where the bound groups are mirrored; none: memberships are not managed.
    #[serde(default)]
    pub groups_dn: Option<String>,
    /// A CA certificate (PEM) to trust for this directory instead of the system's roots.
    #[serde(default)]
    pub ca_certificate: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an external directory holds of a Stratus user, as last pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalAccount {
    pub directory: Id,
    pub user: Id,
    /// The entry's DN there.
    pub remote_dn: String,
    /// Enabled there (false after unbinding: the account is disabled, never deleted).
    pub active: bool,
    /// The user's `revision` whose attributes were pushed.
    pub record_revision: u64,
    /// The user's `auth_revision` whose password was pushed; none until a password was.
    pub password_revision: Option<u64>,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A RADIUS client (NAS) profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RadiusServer {
    pub id: Id,
    pub name: String,
    pub networks: Vec<ipnet::IpNet>,
    pub secret: Sealed,
    pub mfa: RadiusMfaMode,
    pub methods: Vec<RadiusMethod>,
    /// Accept legacy NAS that omit Message-Authenticator (PAP only).
    pub allow_missing_message_authenticator: bool,
    /// Accept `password,123456` in User-Password for NAS that cannot answer an Access-Challenge.
    #[serde(default)]
    pub otp_append: bool,
    /// Send a Reply-Message saying why on Access-Reject (off: a reject carries no reason).
    #[serde(default)]
    pub reject_reply_message: bool,
    /// Send a Disconnect-Request (RFC 5176) to the NAS of each open session of a user who may no longer use
    /// this profile (suspended, locked, deleted, unbound).
    #[serde(default)]
    pub dynamic_authorization: bool,
    /// The NAS's Dynamic Authorization (CoA/Disconnect) UDP port.
    #[serde(default = "default_coa_port")]
    pub coa_port: u16,
    /// The RadSec (RFC 6614) client of this profile: a DNS name of its certificate's subjectAltName or, when it
    /// has none, its subject CN (compared case-insensitively).
    #[serde(default)]
    pub radsec_client: Option<String>,
    /// How a realm in User-Name is read (profiles stored before realms existed keep today's behaviour).
    #[serde(default)]
    pub realm: RealmRule,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The Dynamic Authorization port of RFC 5176 §3.
pub const DEFAULT_COA_PORT: u16 = 3799;

fn default_coa_port() -> u16 {
    DEFAULT_COA_PORT
}

/// SAML NameID format of an SSO app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NameIdFormat {
    Email,
    Persistent,
    Unspecified,
    Transient,
}

/// What an SSO app wants signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignTarget {
    Response,
    Assertion,
    Both,
}

/// One SAML attribute sent to an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeMapping {
    /// Attribute name in the assertion.
    pub name: String,
    /// `email`, `firstname`, `lastname`, `username`, `groups`, or `attribute:<custom name>`.
    pub source: String,
}

/// An SSO (SAML) application record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsoApp {
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
    /// The SAML `index` of each ACS URL, when the SP's metadata gave them (else an index is the position).
    #[serde(default)]
    pub acs_indexes: Vec<u32>,
    /// Where LogoutResponses go (the SP's SingleLogoutService).
    #[serde(default)]
    pub sp_slo_url: Option<String>,
    /// The SP's SingleLogoutService takes HTTP-POST (otherwise HTTP-Redirect).
    #[serde(default)]
    pub sp_slo_post: bool,
    /// The SP's encryption certificate, when it differs from its signing one (`sp_certificate`).
    #[serde(default)]
    pub sp_encryption_certificate: Option<String>,
    /// AuthnRequests and LogoutRequests must carry a valid signature by the SP certificate.
    #[serde(default)]
    pub require_signed_requests: bool,
    /// The IdP signing keys: exactly one `Active` (it signs), others published in the metadata during a
    /// rotation.
    #[serde(default)]
    pub idp_keys: Vec<IdpKey>,
    /// Random per-app salt of the persistent NameID, so the opaque id differs between apps.
    #[serde(default)]
    pub nameid_salt: String,
    /// Outbound SCIM provisioning into the app.
    #[serde(default)]
    pub scim: Option<ScimConnector>,
    /// The certificate (PEM) whose key must have signed uploaded SP metadata for it to count as verified: the
    /// SP's own or its federation's, chosen by the admin — never one taken from an earlier upload.
    #[serde(default)]
    pub metadata_trust_anchor: Option<String>,
    /// SP metadata uploads must be signed and verified by `metadata_trust_anchor`.
    #[serde(default)]
    pub require_signed_metadata: bool,
    /// The last SP metadata upload that was taken.
    #[serde(default)]
    pub sp_metadata_upload: Option<SpMetadataUpload>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What is known of the SP metadata an app was last filled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SpMetadataUpload {
    pub uploaded_at: DateTime<Utc>,
    /// The document carried an enveloped signature.
    pub signed: bool,
    /// That signature verified with the app's `metadata_trust_anchor`. A signed document uploaded while the app
    /// had no trust anchor is `signed` but not verified: nothing vouched for its signer.
    pub verified_by_trust_anchor: bool,
}

/// Where an IdP key is in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdpKeyStatus {
    /// Signs responses and is published.
    Active,
    /// Published so SPs can learn it before it is activated.
    Next,
    /// Was active; still published until deleted, so SPs that cached it keep working.
    Previous,
}

/// One IdP key pair of an SSO app with its self-signed (or uploaded) certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdpKey {
    /// The first 16 hex digits of the certificate's SHA-256 fingerprint.
    pub id: String,
    /// The certificate, PEM.
    pub certificate: String,
    /// The RSA private key as PKCS#8 DER, sealed for `saml-key:<app id>`.
    pub private_key: Sealed,
    pub fingerprint_sha256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub status: IdpKeyStatus,
    pub created_at: DateTime<Utc>,
}

/// Where and how Stratus provisions an app's users (and, with `group_push`, its groups) over SCIM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScimConnector {
    /// The app's SCIM base URL, e.g. `https://keeper.example/api/rest/scim/v2/123`.
    pub base_url: String,
    /// The app's bearer token, sealed.
    pub token: Sealed,
    pub group_push: bool,
}

/// What an outbox entry asks of an app's SCIM endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxAction {
    /// Create or update the user (found by userName when Stratus does not know the app's id yet).
    UpsertUser,
    /// `active=false`: access ended or the user was suspended or deleted. Never a delete.
    DeactivateUser,
    UpsertGroup,
    /// The group is no longer bound to the app.
    DeleteGroup,
}

/// One pending delivery to an app's SCIM endpoint. The payload is built when it is delivered, from the
/// directory as it is then, so a late delivery never sends stale data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: Id,
    pub app: Id,
    /// The user or group concerned.
    pub subject: Id,
    pub action: OutboxAction,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What an app holds of a Stratus user or group, as last delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provisioned {
    pub app: Id,
    pub subject: Id,
    /// The app's id for it.
    pub remote_id: String,
    /// Digest of the last payload delivered (the provisioner compares it with the current one).
    pub digest: String,
    pub active: bool,
    /// A group (pushed with `group_push`) rather than a user.
    #[serde(default)]
    pub group: bool,
    pub updated_at: DateTime<Utc>,
}

/// What an admin may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// Everything.
    Administrator,
    /// Users and groups.
    Manager,
    /// Password resets and unlocks.
    HelpDesk,
    ReadOnly,
}

/// An administrator. Admins are not directory users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admin {
    pub id: Id,
    pub email: String,
    pub name: String,
    pub role: AdminRole,
    pub password_hash: Option<String>,
    pub totp: Option<TotpEnrolment>,
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    /// Bumped by a password set and a lock: admin sessions made before end.
    #[serde(default)]
    pub auth_revision: u64,
    /// The password was generated or set by someone else (the bootstrap admin's one-time password): the console
    /// asks for a new one before anything else.
    #[serde(default)]
    pub password_must_change: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API key; only a SHA-256 of the token is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Id,
    pub name: String,
    /// Admin the key acts as.
    pub admin_id: Id,
    /// First characters of the token, to recognise it.
    pub prefix: String,
    pub token_sha256: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A bearer token for the SCIM service provider (an HR system or IdP provisioning into Stratus). It grants SCIM
/// only, acting with the rights of a manager (users and groups); only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScimToken {
    pub id: Id,
    pub name: String,
    /// First characters of the token, to recognise it.
    pub prefix: String,
    pub token_sha256: String,
    /// What the token may change; tokens stored before scopes existed get the default.
    #[serde(default)]
    pub scope: ScimScope,
    pub created_at: DateTime<Utc>,
}

/// Which users a SCIM token may change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScimUsers {
    /// Every regular user (what an IdP adopting existing users by userName needs).
    #[default]
    All,
    /// Users the token created, or adopted on its first write to a user no other token owns.
    Owned,
    /// Users the token created and members of the scope's groups.
    MembersOf,
}

/// What a SCIM token may manage, decided by the admin. The defaults let an IdP create and adopt regular users
/// and push its own groups, and keep it away from what grants infrastructure access.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimScope {
    #[serde(default)]
    pub users: ScimUsers,
    /// For `members_of`: the groups whose members the token manages (and whose membership it may change).
    #[serde(default)]
    pub groups: Vec<Id>,
    /// May change LDAP Bind-DN service accounts (their attributes, password, state). Off by default.
    #[serde(default)]
    pub service_accounts: bool,
    /// May delete groups bound to a resource, and change the members of bound groups it did not create and
    /// that are not among `groups`. Off by default.
    #[serde(default)]
    pub bound_groups: bool,
}

/// Persistent counters that must never go backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Allocators {
    pub next_uid: u32,
    pub next_gid: u32,
}
