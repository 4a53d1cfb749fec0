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
        let generated = generated_password.is_some();
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
                brand_color: None,
                time_zone: None,
                logo: None,
            };
            tx.put_org(org);
            tx.put_policy(PasswordPolicy::default());
            tx.snap.allocators = Allocators {
                next_uid: DEFAULT_ID_RANGE.start,
                next_gid: DEFAULT_ID_RANGE.start,
            };
            tx.put_allocators();
            let mut admin = super::admins::new_admin_record(
                tx,
                &admin_email,
                "Bootstrap administrator",
                AdminRole::Administrator,
                Some(hash),
            )?;
            // A generated password is printed once: it is one-time.
            admin.password_must_change = generated;
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
            if let Some(c) = patch.brand_color {
                org.brand_color = validate_color(&c)?;
            }
            if let Some(l) = patch.logo {
                org.logo = validate_logo(&l)?;
            }
            if let Some(z) = patch.time_zone {
                let z = z.trim();
                org.time_zone = if z.is_empty() {
                    None
                } else {
                    let tz: chrono_tz::Tz = z.parse().map_err(|_| {
                        DirectoryError::invalid(
                            "time_zone",
                            "time_zone must be an IANA time zone such as Europe/Paris or America/New_York",
                        )
                    })?;
                    Some(tz.name().to_string())
                };
            }
            tx.put_org(org.clone());
            tx.event(admin_event(&actor, "org_update").target("org", &org.org_id));
            Ok(org)
        })
        .await
    }
}

/// A brand colour: `#rrggbb` (or empty for none).
fn validate_color(text: &str) -> Result<Option<String>> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let ok = t.len() == 7 && t.starts_with('#') && t[1..].chars().all(|c| c.is_ascii_hexdigit());
    if !ok {
        return Err(DirectoryError::invalid(
            "brand_color",
            "brand_color must be a colour like #1d4ed8",
        ));
    }
    Ok(Some(t.to_ascii_lowercase()))
}

/// The largest logo kept, decoded.
pub const MAX_LOGO_BYTES: usize = 96 * 1024;

/// A logo: a base64 `data:` URI of a PNG, JPEG, WebP or SVG image (or empty for none).
fn validate_logo(text: &str) -> Result<Option<String>> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = |m: &str| DirectoryError::invalid("logo", m);
    let (_, data) = decode_logo(t).ok_or_else(|| {
        bad("logo must be a data: URI of a PNG, JPEG, WebP or SVG image, base64-encoded")
    })?;
    if data.len() > MAX_LOGO_BYTES {
        return Err(bad("logo must be at most 96 KiB"));
    }
    Ok(Some(t.to_string()))
}

/// A stored logo's media type and bytes.
pub fn decode_logo(uri: &str) -> Option<(&'static str, Vec<u8>)> {
    let rest = uri.strip_prefix("data:")?;
    let (head, body) = rest.split_once(',')?;
    let mime = match head.strip_suffix(";base64")? {
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "image/webp" => "image/webp",
        "image/svg+xml" => "image/svg+xml",
        _ => return None,
    };
    let data = data_encoding::BASE64.decode(body.trim().as_bytes()).ok()?;
    Some((mime, data))
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

/// Validate the LDAP suffix and store it in one normal form (RFC 4514): attribute types lower-case, no spaces
/// around `=` and `,`, values escaped only where §2.4 requires (`o=Acme\, Inc,dc=example,dc=com`). Values keep
/// their case: it is what clients see in every DN, and the listener compares values by their matching rule.
/// Multi-valued RDNs are refused: the suffix names the entry at the top of the tree, and Stratus names entries
/// with one attribute each.
fn validate_suffix(text: &str) -> Result<String> {
    let v = required("ldap_suffix", text)?;
    let invalid = |why: &str| {
        DirectoryError::invalid(
            "ldap_suffix",
            format!("ldap_suffix {why}; give a DN such as o=example,dc=stratus,dc=local"),
        )
    };
    let mut rdns = Vec::new();
    let mut chars = v.chars().peekable();
    loop {
        let mut attr = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            attr.push(c);
        }
        let attr = suffix_attribute_type(attr.trim())
            .ok_or_else(|| invalid("needs type=value in every RDN, the type a name or an OID"))?;
        let (value, end) = suffix_value(&mut chars).map_err(invalid)?;
        rdns.push(format!("{attr}={}", escape_dn_value(&value)));
        match end {
            Some('+') => {
                return Err(invalid(
                    "must have one attribute per RDN: a multi-valued RDN such as o=Acme+c=US cannot be a \
                     suffix (write o=Acme,c=US, or \\+ for a plus sign inside a value)",
                ))
            }
            Some(_) => {}
            None => break,
        }
    }
    let suffix = rdns.join(",");
    if suffix.eq_ignore_ascii_case("cn=subschema") {
        return Err(invalid(
            "must not be cn=Subschema, the name of the LDAP schema entry",
        ));
    }
    Ok(suffix)
}

/// An attribute type: a name (lower-cased) or a numeric OID.
fn suffix_attribute_type(t: &str) -> Option<String> {
    let name = t.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !t.is_empty()
        && t.split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (name || oid).then(|| t.to_ascii_lowercase())
}

/// One value of a suffix, unescaped, up to an unescaped `,` `;` `+` (returned) or the end.
fn suffix_value(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> std::result::Result<(String, Option<char>), &'static str> {
    let mut value = String::new();
    // Unescaped spaces at either end are not part of the value (RFC 4514 §3).
    let mut trailing_spaces = 0usize;
    let mut end = None;
    let mut bytes = Vec::new();
    while let Some(c) = chars.next() {
        if c != '\\' && !bytes.is_empty() {
            value.push_str(&String::from_utf8(std::mem::take(&mut bytes)).map_err(|_| BAD_ESCAPE)?);
        }
        match c {
            '\\' => {
                let a = chars.next().ok_or(BAD_ESCAPE)?;
                if a.is_ascii_hexdigit() {
                    let b = chars
                        .next()
                        .filter(char::is_ascii_hexdigit)
                        .ok_or(BAD_ESCAPE)?;
                    let pair: String = [a, b].iter().collect();
                    // Hex escapes carry UTF-8 octets; a character may take several.
                    bytes.push(u8::from_str_radix(&pair, 16).map_err(|_| BAD_ESCAPE)?);
                    trailing_spaces = 0;
                    continue;
                }
                if !bytes.is_empty() {
                    value.push_str(
                        &String::from_utf8(std::mem::take(&mut bytes)).map_err(|_| BAD_ESCAPE)?,
                    );
                }
                if !matches!(
                    a,
                    '"' | '+' | ',' | ';' | '<' | '>' | '\\' | ' ' | '#' | '='
                ) {
                    return Err(BAD_ESCAPE);
                }
                value.push(a);
                trailing_spaces = 0;
            }
            ',' | ';' | '+' => {
                end = Some(c);
                break;
            }
            '#' if value.is_empty() => {
                return Err("has a hex-encoded (#…) value; write the value as text")
            }
            ' ' if value.is_empty() => {}
            ' ' => {
                value.push(' ');
                trailing_spaces += 1;
            }
            _ => {
                value.push(c);
                trailing_spaces = 0;
            }
        }
    }
    if !bytes.is_empty() {
        value.push_str(&String::from_utf8(bytes).map_err(|_| BAD_ESCAPE)?);
    }
    value.truncate(value.len() - trailing_spaces);
    if value.is_empty() {
        return Err("has an empty value");
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok((value, end))
}

const BAD_ESCAPE: &str =
    "has a bad escape: a backslash takes two hex digits or one of \" + , ; < > \\ space # =";

/// Escape a value for a DN where RFC 4514 §2.4 requires it, and nowhere else.
fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        if matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ')
        {
            out.push('\\');
        }
        out.push(c);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_stored_in_one_normal_form() {
        let ok = |s: &str| validate_suffix(s).unwrap();
        assert_eq!(ok("dc=Example, DC=com"), "dc=Example,dc=com");
        assert_eq!(ok(" O = Acme\\, Inc , dc=com"), "o=Acme\\, Inc,dc=com");
        assert_eq!(ok("o=Acme\\2C Inc;dc=com"), "o=Acme\\, Inc,dc=com");
        assert_eq!(ok("o=Caf\\C3\\A9,c=FR"), "o=Café,c=FR");
        assert_eq!(ok("o=a\\=b"), "o=a=b");
        assert_eq!(ok("o=\\ lead\\ ,2.5.4.3=x"), "o=\\ lead\\ ,2.5.4.3=x");
        assert_eq!(ok("o=1\\+1"), "o=1\\+1");
    }

    #[test]
    fn suffixes_that_cannot_name_the_tree_are_refused() {
        for (bad, says) in [
            ("o=Acme+c=US", "one attribute per RDN"),
            ("dc=example,,dc=com", "type=value"),
            ("example.com", "type=value"),
            ("dc=", "empty value"),
            ("dc=example,", "type=value"),
            ("o=a\\", "bad escape"),
            ("o=a\\x", "bad escape"),
            ("o=\\ff", "bad escape"),
            ("o=#0403616263", "hex-encoded"),
            ("o=a\\00", "control characters"),
            ("2.=a", "type=value"),
            ("cn=Subschema", "cn=Subschema"),
        ] {
            match validate_suffix(bad) {
                Err(DirectoryError::Invalid { field, message }) => {
                    assert_eq!(field, Some("ldap_suffix"));
                    assert!(message.contains(says), "{bad}: {message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
