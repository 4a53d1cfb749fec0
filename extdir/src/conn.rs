//! One LDAP connection to an external directory: TLS (LDAPS, or StartTLS over `ldap://` on loopback) trusting
//! the directory's own CA when it has one, the system's roots otherwise, and a bind as the managing account.

use core_directory::model::{ExternalDirectory, User};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long connecting (and each operation) may take.
const TIMEOUT: Duration = Duration::from_secs(15);

pub struct Target {
    pub url: String,
    pub bind_dn: String,
    password: Zeroizing<String>,
    pub users_dn: String,
    pub groups_dn: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    pub fn new(d: &ExternalDirectory, password: Zeroizing<String>) -> Result<Target, String> {
        let tls = match &d.ca_certificate {
            Some(pem) => Some(Arc::new(client_config(pem)?)),
            None => None,
        };
        Ok(Target {
            url: d.url.clone(),
            bind_dn: d.bind_dn.clone(),
            password,
            users_dn: d.users_dn.clone(),
            groups_dn: d.groups_dn.clone(),
            tls,
        })
    }

    /// Connect and bind as the managing account.
    pub async fn connect(&self) -> Result<Ldap, String> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(TIMEOUT);
        if let Some(c) = &self.tls {
            settings = settings.set_config(Arc::clone(c));
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.url))?;
        ldap3::drive!(conn);
        ldap.with_timeout(TIMEOUT);
        ldap.simple_bind(&self.bind_dn, &self.password)
            .await
            .and_then(|r| r.success())
            .map_err(|e| format!("bind as {} refused: {e}", self.bind_dn))?;
        Ok(ldap)
    }
}

/// TLS that trusts only the given CA certificate(s).
fn client_config(pem: &str) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("the CA certificate is not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA certificate is not usable: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no CA certificate in ca_certificate".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// An attribute's value set: empty when the value is blank, so a blank field is removed rather than set.
pub fn values(v: &str) -> HashSet<String> {
    if v.trim().is_empty() {
        HashSet::new()
    } else {
        [v.trim().to_string()].into()
    }
}

/// The name a directory shows for a user: their display name, or first and last name.
pub fn display_name(u: &User) -> String {
    u.display_name
        .clone()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| format!("{} {}", u.firstname, u.lastname).trim().to_string())
}

/// Escape a value for an LDAP filter (RFC 4515).
pub fn filter_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escape a value for one RDN of a DN (RFC 4514).
pub fn rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// The first entry's DN for a filter under `base`, if any.
pub async fn find(ldap: &mut Ldap, base: &str, filter: &str) -> Result<Option<String>, String> {
    let (entries, _) = ldap
        .search(base, ldap3::Scope::Subtree, filter, vec!["1.1"])
        .await
        .and_then(|r| r.success())
        .map_err(|e| format!("search under {base} failed: {e}"))?;
    Ok(entries
        .into_iter()
        .next()
        .map(|e| ldap3::SearchEntry::construct(e).dn))
}

/// Disable an account by replacing one attribute with one value (AD's `userAccountControl`, an LDAP
/// directory's `userPassword`), on a connection of its own.
pub async fn disable_by(t: &Target, dn: &str, attr: &str, value: &str) -> Result<(), String> {
    let mut ldap = t.connect().await?;
    ldap.modify(
        dn,
        vec![ldap3::Mod::Replace(
            attr.to_string(),
            [value.to_string()].into(),
        )],
    )
    .await
    .and_then(|r| r.success())
    .map_err(|e| format!("disabling {dn} failed: {e}"))?;
    let _ = ldap.unbind().await;
    Ok(())
}

/// Add `member` to the group named `name` under `groups_dn`, creating the group (with `create`'s attributes)
/// when it does not exist yet.
pub async fn ensure_member(
    ldap: &mut Ldap,
    groups_dn: &str,
    rdn_attr: &str,
    name: &str,
    member: &str,
    create: Vec<(&str, Vec<String>)>,
) -> Result<(), String> {
    let dn = format!("{rdn_attr}={},{groups_dn}", rdn_value(name));
    let exists = find(
        ldap,
        groups_dn,
        &format!("({rdn_attr}={})", filter_value(name)),
    )
    .await?;
    match exists {
        None => {
            let mut attrs: Vec<(String, std::collections::HashSet<String>)> = create
                .into_iter()
                .map(|(a, v)| (a.to_string(), v.into_iter().collect()))
                .collect();
            attrs.push(("member".into(), [member.to_string()].into()));
            ldap.add(&dn, attrs)
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("creating group {dn} failed: {e}"))?;
        }
        Some(dn) => {
            let r = ldap
                .modify(
                    &dn,
                    vec![ldap3::Mod::Add(
                        "member".to_string(),
                        [member.to_string()].into(),
                    )],
                )
                .await
                .map_err(|e| format!("adding to group {dn} failed: {e}"))?;
            // 20: the member is already there; 68 (Active Directory): the same, said otherwise.
            if r.rc != 0 && r.rc != 20 && r.rc != 68 {
                return Err(format!("adding to group {dn} failed: {r}"));
            }
        }
    }
    Ok(())
}
