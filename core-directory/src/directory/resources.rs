//! RADIUS server profiles and SSO app records.

use super::settings::admin_event;
use super::{required, Directory, Tx};
use crate::access::{Actor, Permission};
use crate::error::{DirectoryError, Result};
use crate::id::Id;
use crate::model::*;
use crate::store::Kind;
use crate::views::{
    AppPatch, AppView, NewApp, NewIdpKey, NewRadiusServer, RadiusServerPatch, RadiusServerView,
};
use std::sync::Arc;

pub(crate) fn radius_purpose(id: &Id) -> String {
    format!("radius-secret:{id}")
}

fn validate_secret(secret: &str) -> Result<()> {
    if secret.len() < 16 || secret.len() > 128 || secret.chars().any(char::is_control) {
        return Err(DirectoryError::invalid(
            "secret",
            "the shared secret must be 16–128 printable characters",
        ));
    }
    Ok(())
}

/// A new RADIUS shared secret: 32 characters drawn uniformly from letters and digits (about 190 bits), which
/// every access point accepts and an admin can type.
pub fn generate_radius_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        for b in crate::crypto::random_bytes(48) {
            // 248 = 4 × 62: bytes above it are dropped so every character is equally likely.
            if b < 248 && out.len() < 32 {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

fn validate_networks(nets: &[ipnet::IpNet]) -> Result<()> {
    if nets.is_empty() {
        return Err(DirectoryError::invalid(
            "networks",
            "at least one source address or network is required",
        ));
    }
    Ok(())
}

/// A RadSec client name: a DNS name or CN, trimmed, not empty, no control characters or spaces; folded to
/// lower case. `None` for an empty one.
fn radsec_client(name: Option<&str>) -> Result<Option<String>> {
    let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if n.len() > 253 || n.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DirectoryError::invalid(
            "radsec_client",
            "radsec_client must be a certificate DNS name or CN: at most 253 characters, no spaces",
        ));
    }
    Ok(Some(n.to_ascii_lowercase()))
}

/// A RadSec client name names one profile only.
fn unique_radsec_client(tx: &Tx, id: &Id, name: Option<&str>) -> Result<()> {
    let Some(name) = name else { return Ok(()) };
    if tx
        .snap
        .radius_servers
        .values()
        .any(|r| &r.id != id && r.radsec_client.as_deref() == Some(name))
    {
        return Err(DirectoryError::conflict(
            "radsec_client",
            format!("RadSec client `{name}` already belongs to another RADIUS server profile"),
        ));
    }
    Ok(())
}

fn validate_coa_port(port: u16) -> Result<u16> {
    if port == 0 {
        return Err(DirectoryError::invalid(
            "coa_port",
            "coa_port must be 1–65535",
        ));
    }
    Ok(port)
}

fn validate_methods(methods: &[RadiusMethod]) -> Result<()> {
    if methods.is_empty() {
        return Err(DirectoryError::invalid(
            "methods",
            "at least one method is required",
        ));
    }
    Ok(())
}

/// A realm rule as stored: realms only with `require`, each a plain DNS-like or NT-domain label, in lower case.
fn validate_realm(mut rule: RealmRule) -> Result<RealmRule> {
    if rule.mode != RealmMode::Require && !rule.realms.is_empty() {
        return Err(DirectoryError::invalid(
            "realm",
            "a list of realms applies only to the mode `require`",
        ));
    }
    if rule.realms.len() > 100 {
        return Err(DirectoryError::invalid("realm", "at most 100 realms"));
    }
    for r in &mut rule.realms {
        let ok = !r.is_empty()
            && r.len() <= 253
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !ok {
            return Err(DirectoryError::invalid(
                "realm",
                format!("`{r}` is not a realm: 1–253 letters, digits, '.', '-' or '_'"),
            ));
        }
        *r = r.to_ascii_lowercase();
    }
    rule.realms.sort();
    rule.realms.dedup();
    Ok(rule)
}

fn validate_acs(urls: &[String]) -> Result<()> {
    if urls.is_empty() {
        return Err(DirectoryError::invalid(
            "acs_urls",
            "at least one ACS URL is required",
        ));
    }
    for u in urls {
        validate_url("acs_urls", u)?;
    }
    Ok(())
}

/// An absolute http(s) URL without whitespace or control characters, at most 2,048 characters.
fn validate_url(field: &'static str, u: &str) -> Result<()> {
    let scheme_ok = u.starts_with("https://") || u.starts_with("http://");
    if !scheme_ok || u.len() > 2048 || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let shown: String = u.chars().take(200).collect();
        return Err(DirectoryError::invalid(
            field,
            format!("`{shown}` is not an absolute http(s) URL"),
        ));
    }
    Ok(())
}

/// What a new app takes from the SP metadata it was created from, besides its fields.
struct FromMetadata {
    acs_indexes: Vec<u32>,
    signed: bool,
    verified_by_trust_anchor: bool,
}

/// The sources an attribute mapping may read (the IdP builds each attribute from one of them).
const ATTRIBUTE_SOURCES: [&str; 5] = ["email", "firstname", "lastname", "username", "groups"];

/// Attribute mappings: a name (at most 256 characters, no control characters, each name once) and a known
/// source — one of [`ATTRIBUTE_SOURCES`] or `attribute:<custom attribute name>`. An unknown source would
/// silently send nothing.
fn validate_attribute_mappings(mappings: &[AttributeMapping]) -> Result<()> {
    let bad = |m: String| Err(DirectoryError::invalid("attributes", m));
    for (i, m) in mappings.iter().enumerate() {
        let name = m.name.trim();
        if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
            return bad(format!(
                "attribute names are 1–256 characters without control characters (`{}`)",
                m.name.chars().take(60).collect::<String>()
            ));
        }
        let known = ATTRIBUTE_SOURCES.contains(&m.source.as_str())
            || m.source
                .strip_prefix("attribute:")
                .is_some_and(|n| !n.trim().is_empty());
        if !known {
            return bad(format!(
                "`{}` is not a source: use email, firstname, lastname, username, groups or attribute:<name>",
                m.source.chars().take(60).collect::<String>()
            ));
        }
        if mappings[..i].iter().any(|o| o.name.trim() == name) {
            return bad(format!("the attribute `{name}` is mapped twice"));
        }
    }
    Ok(())
}

fn validate_relay_state(r: Option<&str>) -> Result<()> {
    match r {
        Some(r) if r.len() > 1024 || r.chars().any(char::is_control) => {
            Err(DirectoryError::invalid(
                "default_relay_state",
                "the default RelayState is at most 1,024 characters without control characters",
            ))
        }
        _ => Ok(()),
    }
}

fn check_sp_certificate(pem: &str) -> Result<()> {
    crate::idp_keys::inspect_certificate(pem)
        .map(|_| ())
        .map_err(|e| DirectoryError::invalid("sp_certificate", e.to_string()))
}

/// A metadata trust anchor must be a certificate whose key can check our signatures (RSA ≥ 2048 bits). Its
/// validity dates are not checked: federations keep one signing certificate for many years.
fn check_trust_anchor(pem: &str) -> Result<()> {
    crate::idp_keys::inspect_certificate(pem)
        .map(|_| ())
        .map_err(|e| DirectoryError::invalid("metadata_trust_anchor", e.to_string()))
}

fn check_require_signed_metadata(a: &SsoApp) -> Result<()> {
    if a.require_signed_metadata && a.metadata_trust_anchor.is_none() {
        return Err(DirectoryError::invalid(
            "require_signed_metadata",
            "requiring signed SP metadata needs a metadata_trust_anchor to verify it with",
        ));
    }
    Ok(())
}

pub(crate) fn key_purpose(app: &Id) -> String {
    format!("saml-key:{app}")
}

fn validate_sig_alg(alg: &str) -> Result<String> {
    match alg {
        "rsa-sha256" | "rsa-sha1" => Ok(alg.to_string()),
        _ => Err(DirectoryError::invalid(
            "signature_algorithm",
            "signature_algorithm must be rsa-sha256 or rsa-sha1",
        )),
    }
}

fn unique_name<'a>(
    mut names: impl Iterator<Item = (&'a Id, &'a str)>,
    me: Option<&Id>,
    name: &str,
    what: &str,
) -> Result<()> {
    if names.any(|(id, n)| Some(id) != me && n.eq_ignore_ascii_case(name)) {
        return Err(DirectoryError::conflict(
            "name",
            format!("a {what} named `{name}` already exists"),
        ));
    }
    Ok(())
}

fn remove_bindings(tx: &mut Tx, resource: &Resource) {
    for g in tx.snap.bound_groups(resource) {
        tx.snap.unbind(&g, resource);
        tx.batch.delete(Kind::Binding, format!("{g}/{resource}"));
    }
}

impl Directory {
    /// The plaintext shared secret of a RADIUS profile (for the RADIUS listener only).
    pub fn radius_secret(&self, server: &RadiusServer) -> Option<Vec<u8>> {
        self.master_key
            .open(&radius_purpose(&server.id), &server.secret)
            .ok()
    }

    pub fn get_radius_server(&self, id: &Id) -> Result<RadiusServerView> {
        let snap = self.snapshot();
        let r = snap
            .radius_servers
            .get(id)
            .ok_or_else(|| DirectoryError::not_found("radius server", id))?;
        Ok(RadiusServerView::of(r, &snap))
    }

    pub fn list_radius_servers(&self) -> Vec<RadiusServerView> {
        let snap = self.snapshot();
        let mut v: Vec<_> = snap
            .radius_servers
            .values()
            .map(|r| RadiusServerView::of(r, &snap))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub async fn create_radius_server(
        &self,
        actor: &Actor,
        input: NewRadiusServer,
    ) -> Result<RadiusServerView> {
        actor.require(Permission::ManageOrg)?;
        let name = required("name", &input.name)?;
        validate_secret(&input.secret)?;
        validate_networks(&input.networks)?;
        validate_methods(&input.methods)?;
        let radsec = radsec_client(input.radsec_client.as_deref())?;
        let coa_port = validate_coa_port(input.coa_port.unwrap_or(DEFAULT_COA_PORT))?;
        let realm = validate_realm(input.realm)?;
        let actor = actor.clone();
        let id = Id::generate();
        let sealed = self
            .master_key
            .seal(&radius_purpose(&id), input.secret.as_bytes());
        let server = self
            .write(move |tx| {
                unique_name(
                    tx.snap
                        .radius_servers
                        .values()
                        .map(|r| (&r.id, r.name.as_str())),
                    None,
                    &name,
                    "RADIUS server",
                )?;
                unique_radsec_client(tx, &id, radsec.as_deref())?;
                let r = RadiusServer {
                    id,
                    name,
                    networks: input.networks,
                    secret: sealed,
                    mfa: input.mfa,
                    methods: input.methods,
                    allow_missing_message_authenticator: input.allow_missing_message_authenticator,
                    otp_append: input.otp_append,
                    reject_reply_message: input.reject_reply_message,
                    dynamic_authorization: input.dynamic_authorization,
                    coa_port,
                    radsec_client: radsec,
                    realm,
                    created_at: tx.now,
                    updated_at: tx.now,
                };
                tx.batch.put_json(Kind::RadiusServer, r.id.as_str(), &r);
                tx.snap
                    .radius_servers
                    .insert(r.id.clone(), Arc::new(r.clone()));
                tx.event(
                    admin_event(&actor, "radius_server_create").target("radius_server", &r.id),
                );
                Ok(r)
            })
            .await?;
        Ok(RadiusServerView::of(&server, &self.snapshot()))
    }

    pub async fn update_radius_server(
        &self,
        actor: &Actor,
        id: &Id,
        patch: RadiusServerPatch,
    ) -> Result<RadiusServerView> {
        actor.require(Permission::ManageOrg)?;
        if let Some(s) = &patch.secret {
            validate_secret(s)?;
        }
        let radsec = patch
            .radsec_client
            .as_ref()
            .map(|r| radsec_client(r.as_deref()))
            .transpose()?;
        if let Some(p) = patch.coa_port {
            validate_coa_port(p)?;
        }
        let sealed = patch
            .secret
            .as_ref()
            .map(|s| self.master_key.seal(&radius_purpose(id), s.as_bytes()));
        let actor = actor.clone();
        let id = id.clone();
        let server = self
            .write(move |tx| {
                let mut r = (**tx
                    .snap
                    .radius_servers
                    .get(&id)
                    .ok_or_else(|| DirectoryError::not_found("radius server", &id))?)
                .clone();
                if let Some(n) = patch.name {
                    r.name = required("name", &n)?;
                    unique_name(
                        tx.snap
                            .radius_servers
                            .values()
                            .map(|r| (&r.id, r.name.as_str())),
                        Some(&id),
                        &r.name,
                        "RADIUS server",
                    )?;
                }
                if let Some(n) = patch.networks {
                    validate_networks(&n)?;
                    r.networks = n;
                }
                if let Some(s) = sealed {
                    r.secret = s;
                }
                if let Some(m) = patch.mfa {
                    r.mfa = m;
                }
                if let Some(m) = patch.methods {
                    validate_methods(&m)?;
                    r.methods = m;
                }
                if let Some(v) = patch.allow_missing_message_authenticator {
                    r.allow_missing_message_authenticator = v;
                }
                if let Some(v) = patch.otp_append {
                    r.otp_append = v;
                }
                if let Some(v) = patch.reject_reply_message {
                    r.reject_reply_message = v;
                }
                if let Some(v) = patch.dynamic_authorization {
                    r.dynamic_authorization = v;
                }
                if let Some(p) = patch.coa_port {
                    r.coa_port = p;
                }
                if let Some(c) = radsec {
                    unique_radsec_client(tx, &id, c.as_deref())?;
                    r.radsec_client = c;
                }
                if let Some(rule) = patch.realm {
                    r.realm = validate_realm(rule)?;
                }
                r.updated_at = tx.now;
                tx.batch.put_json(Kind::RadiusServer, r.id.as_str(), &r);
                tx.snap
                    .radius_servers
                    .insert(r.id.clone(), Arc::new(r.clone()));
                tx.event(
                    admin_event(&actor, "radius_server_update").target("radius_server", &r.id),
                );
                Ok(r)
            })
            .await?;
        Ok(RadiusServerView::of(&server, &self.snapshot()))
    }

    pub async fn delete_radius_server(&self, actor: &Actor, id: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            tx.snap
                .radius_servers
                .remove(&id)
                .ok_or_else(|| DirectoryError::not_found("radius server", &id))?;
            remove_bindings(tx, &Resource::Radius(id.clone()));
            super::drop_policies_targeting(tx, &actor, &Resource::Radius(id.clone()));
            tx.batch.delete(Kind::RadiusServer, id.as_str());
            tx.event(admin_event(&actor, "radius_server_delete").target("radius_server", &id));
            Ok(())
        })
        .await
    }

    pub fn get_app(&self, id: &Id) -> Result<AppView> {
        let snap = self.snapshot();
        let a = snap
            .apps
            .get(id)
            .ok_or_else(|| DirectoryError::not_found("app", id))?;
        Ok(AppView::of(a, &snap))
    }

    pub fn list_apps(&self) -> Vec<AppView> {
        let snap = self.snapshot();
        let mut v: Vec<_> = snap.apps.values().map(|a| AppView::of(a, &snap)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub async fn create_app(&self, actor: &Actor, input: NewApp) -> Result<AppView> {
        self.create_app_with(actor, input, None).await
    }

    /// Create an app from its SP's metadata: the SP entity id, the ACS URLs with their indexes, the SLO URL,
    /// the certificates and the signed-request flag come from the document, and the app records the upload —
    /// all in one write. A new app has no metadata trust anchor yet, so a signed document is recorded as signed
    /// but not verified (see [`Directory::apply_sp_metadata`]). A refused document creates nothing.
    pub async fn create_app_from_sp_metadata(
        &self,
        actor: &Actor,
        name: &str,
        xml: &str,
    ) -> Result<AppView> {
        actor.require(Permission::ManageOrg)?;
        let reader = self.sp_metadata_reader.clone().ok_or_else(|| {
            DirectoryError::invalid("metadata", "SP metadata upload is not available")
        })?;
        let md = (reader.0)(xml, None).map_err(|e| DirectoryError::invalid("metadata", e))?;
        let require_signed_requests = md.authn_requests_signed && md.signing_certificate.is_some();
        let input = NewApp {
            name: name.to_string(),
            sp_entity_id: md.entity_id,
            acs_urls: md.acs_urls,
            sp_certificate: md.signing_certificate,
            nameid_format: None,
            sign: None,
            signature_algorithm: None,
            encrypt_assertion: false,
            attributes: Vec::new(),
            default_relay_state: None,
            idp_initiated: true,
            require_signed_requests,
            sp_slo_url: md.slo_url,
            sp_slo_post: md.slo_post,
            sp_encryption_certificate: md.encryption_certificate,
            metadata_trust_anchor: None,
            require_signed_metadata: false,
        };
        let from = FromMetadata {
            acs_indexes: md.acs_indexes,
            signed: md.signed,
            verified_by_trust_anchor: md.verified_by_trust_anchor,
        };
        // What the document carried is judged as the document: its faults are the metadata's.
        self.create_app_with(actor, input, Some(from))
            .await
            .map_err(|e| match e {
                DirectoryError::Invalid {
                    field: Some(f),
                    message,
                } if f != "name" => DirectoryError::invalid("metadata", message),
                other => other,
            })
    }

    async fn create_app_with(
        &self,
        actor: &Actor,
        input: NewApp,
        from: Option<FromMetadata>,
    ) -> Result<AppView> {
        actor.require(Permission::ManageOrg)?;
        let name = required("name", &input.name)?;
        let sp_entity_id = required("sp_entity_id", &input.sp_entity_id)?;
        validate_acs(&input.acs_urls)?;
        validate_attribute_mappings(&input.attributes)?;
        let alg = validate_sig_alg(input.signature_algorithm.as_deref().unwrap_or("rsa-sha256"))?;
        let sp_certificate = input.sp_certificate.filter(|c| !c.trim().is_empty());
        if let Some(c) = &sp_certificate {
            check_sp_certificate(c)?;
        }
        let sp_encryption_certificate = input
            .sp_encryption_certificate
            .filter(|c| !c.trim().is_empty());
        if let Some(c) = &sp_encryption_certificate {
            check_sp_certificate(c)?;
        }
        let sp_slo_url = input.sp_slo_url.filter(|u| !u.is_empty());
        if let Some(u) = &sp_slo_url {
            validate_url("sp_slo_url", u)?;
        }
        validate_relay_state(input.default_relay_state.as_deref())?;
        let metadata_trust_anchor = input.metadata_trust_anchor.filter(|c| !c.trim().is_empty());
        if let Some(c) = &metadata_trust_anchor {
            check_trust_anchor(c)?;
        }
        if input.require_signed_requests && sp_certificate.is_none() {
            return Err(DirectoryError::invalid(
                "require_signed_requests",
                "signed requests need the SP certificate (sp_certificate or SP metadata)",
            ));
        }
        let app_id = Id::generate();
        let key = self
            .new_idp_key(&app_id, &name, NewIdpKey::default())
            .await?;
        let actor = actor.clone();
        let app = self
            .write(move |tx| {
                if tx
                    .snap
                    .apps
                    .values()
                    .any(|a| a.sp_entity_id == sp_entity_id)
                {
                    return Err(DirectoryError::conflict(
                        "sp_entity_id",
                        format!("an app with SP entity id `{sp_entity_id}` already exists"),
                    ));
                }
                let a = SsoApp {
                    id: app_id,
                    name,
                    sp_entity_id,
                    acs_urls: input.acs_urls,
                    acs_indexes: from
                        .as_ref()
                        .map_or_else(Vec::new, |f| f.acs_indexes.clone()),
                    sp_certificate,
                    sp_encryption_certificate,
                    nameid_format: input.nameid_format.unwrap_or(NameIdFormat::Email),
                    sign: input.sign.unwrap_or(SignTarget::Assertion),
                    signature_algorithm: alg,
                    encrypt_assertion: input.encrypt_assertion,
                    attributes: input.attributes,
                    default_relay_state: input.default_relay_state,
                    idp_initiated: input.idp_initiated,
                    require_signed_requests: input.require_signed_requests,
                    sp_slo_url,
                    sp_slo_post: input.sp_slo_post,
                    idp_keys: vec![IdpKey {
                        status: IdpKeyStatus::Active,
                        ..key
                    }],
                    nameid_salt: data_encoding::HEXLOWER.encode(&crate::crypto::random_bytes(16)),
                    scim: None,
                    metadata_trust_anchor,
                    require_signed_metadata: input.require_signed_metadata,
                    sp_metadata_upload: from.as_ref().map(|f| SpMetadataUpload {
                        uploaded_at: tx.now,
                        signed: f.signed,
                        verified_by_trust_anchor: f.verified_by_trust_anchor,
                    }),
                    created_at: tx.now,
                    updated_at: tx.now,
                };
                check_require_signed_metadata(&a)?;
                tx.batch.put_json(Kind::App, a.id.as_str(), &a);
                tx.snap.apps.insert(a.id.clone(), Arc::new(a.clone()));
                let mut event = admin_event(&actor, "app_create").target("app", &a.id);
                if let Some(u) = &a.sp_metadata_upload {
                    event = event
                        .detail("from_sp_metadata", true)
                        .detail("signed", u.signed)
                        .detail("verified_by_trust_anchor", u.verified_by_trust_anchor);
                }
                tx.event(event);
                Ok(a)
            })
            .await?;
        Ok(AppView::of(&app, &self.snapshot()))
    }

    pub async fn update_app(&self, actor: &Actor, id: &Id, patch: AppPatch) -> Result<AppView> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        let app = self
            .write(move |tx| {
                let mut a = (**tx
                    .snap
                    .apps
                    .get(&id)
                    .ok_or_else(|| DirectoryError::not_found("app", &id))?)
                .clone();
                if let Some(v) = patch.name {
                    a.name = required("name", &v)?;
                }
                if let Some(v) = patch.sp_entity_id {
                    let v = required("sp_entity_id", &v)?;
                    if tx
                        .snap
                        .apps
                        .values()
                        .any(|o| o.id != id && o.sp_entity_id == v)
                    {
                        return Err(DirectoryError::conflict(
                            "sp_entity_id",
                            format!("an app with SP entity id `{v}` already exists"),
                        ));
                    }
                    a.sp_entity_id = v;
                }
                if let Some(v) = patch.acs_urls {
                    validate_acs(&v)?;
                    a.acs_urls = v;
                    // URLs an admin sets are indexed by position.
                    a.acs_indexes.clear();
                }
                if let Some(v) = patch.sp_encryption_certificate {
                    if !v.trim().is_empty() {
                        check_sp_certificate(&v)?;
                    }
                    a.sp_encryption_certificate = Some(v).filter(|s| !s.trim().is_empty());
                }
                if let Some(v) = patch.sp_slo_post {
                    a.sp_slo_post = v;
                }
                if let Some(v) = patch.sp_certificate {
                    if !v.trim().is_empty() {
                        check_sp_certificate(&v)?;
                    }
                    a.sp_certificate = Some(v).filter(|s| !s.trim().is_empty());
                }
                if let Some(v) = patch.sp_slo_url {
                    if !v.is_empty() {
                        validate_url("sp_slo_url", &v)?;
                    }
                    a.sp_slo_url = Some(v).filter(|u| !u.is_empty());
                }
                if let Some(v) = patch.require_signed_requests {
                    a.require_signed_requests = v;
                }
                if let Some(v) = patch.metadata_trust_anchor {
                    if !v.trim().is_empty() {
                        check_trust_anchor(&v)?;
                    }
                    a.metadata_trust_anchor = Some(v).filter(|s| !s.trim().is_empty());
                }
                if let Some(v) = patch.require_signed_metadata {
                    a.require_signed_metadata = v;
                }
                check_require_signed_metadata(&a)?;
                if a.require_signed_requests && a.sp_certificate.is_none() {
                    return Err(DirectoryError::invalid(
                        "require_signed_requests",
                        "signed requests need the SP certificate (sp_certificate or SP metadata)",
                    ));
                }
                if let Some(v) = patch.nameid_format {
                    a.nameid_format = v;
                }
                if let Some(v) = patch.sign {
                    a.sign = v;
                }
                if let Some(v) = patch.signature_algorithm {
                    a.signature_algorithm = validate_sig_alg(&v)?;
                }
                if let Some(v) = patch.encrypt_assertion {
                    a.encrypt_assertion = v;
                }
                if let Some(v) = patch.attributes {
                    validate_attribute_mappings(&v)?;
                    a.attributes = v;
                }
                if let Some(v) = patch.default_relay_state {
                    validate_relay_state(Some(&v))?;
                    a.default_relay_state = Some(v).filter(|s| !s.is_empty());
                }
                if let Some(v) = patch.idp_initiated {
                    a.idp_initiated = v;
                }
                put_app(tx, &mut a);
                tx.event(admin_event(&actor, "app_update").target("app", &a.id));
                Ok(a)
            })
            .await?;
        Ok(AppView::of(&app, &self.snapshot()))
    }

    pub async fn delete_app(&self, actor: &Actor, id: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        self.write(move |tx| {
            tx.snap
                .apps
                .remove(&id)
                .ok_or_else(|| DirectoryError::not_found("app", &id))?;
            remove_bindings(tx, &Resource::App(id.clone()));
            super::drop_policies_targeting(tx, &actor, &Resource::App(id.clone()));
            tx.batch.delete(Kind::App, id.as_str());
            super::provisioning::forget_provisioning(tx, &id);
            tx.event(admin_event(&actor, "app_delete").target("app", &id));
            Ok(())
        })
        .await
    }
}

impl Directory {
    /// Make (or take from an upload) and seal one IdP key; its status is set by the caller.
    async fn new_idp_key(&self, app: &Id, app_name: &str, input: NewIdpKey) -> Result<IdpKey> {
        let material =
            match (input.certificate, input.private_key) {
                (None, None) => {
                    let name = app_name.to_string();
                    tokio::task::spawn_blocking(move || crate::idp_keys::generate(&name))
                        .await
                        .map_err(|e| DirectoryError::Internal(e.to_string()))?
                        .map_err(|e| DirectoryError::Internal(e.to_string()))?
                }
                (Some(c), Some(k)) => crate::idp_keys::from_upload(&c, &k)
                    .map_err(|e| DirectoryError::invalid("certificate", e.to_string()))?,
                _ => return Err(DirectoryError::invalid(
                    "private_key",
                    "give both the certificate and its private key, or neither to generate a key",
                )),
            };
        let now = chrono::Utc::now();
        Ok(IdpKey {
            id: material.fingerprint_sha256[..16].to_string(),
            certificate: material.certificate_pem,
            private_key: self
                .master_key
                .seal(&key_purpose(app), &material.private_key),
            fingerprint_sha256: material.fingerprint_sha256,
            not_before: material.not_before,
            not_after: material.not_after,
            status: IdpKeyStatus::Next,
            created_at: now,
        })
    }

    /// Add an IdP key to an app: generated, or the uploaded pair; active at once or published as `next`.
    pub async fn add_app_key(&self, actor: &Actor, id: &Id, input: NewIdpKey) -> Result<AppView> {
        actor.require(Permission::ManageOrg)?;
        let app = self.get_app_record(id)?;
        let activate = input.activate;
        let key = self.new_idp_key(id, &app.name, input).await?;
        let actor = actor.clone();
        let id = id.clone();
        let app = self
            .write(move |tx| {
                let mut a = app_record(tx, &id)?;
                if a.idp_keys.iter().any(|k| k.id == key.id) {
                    return Err(DirectoryError::conflict(
                        "certificate",
                        "the app already has this certificate",
                    ));
                }
                if a.idp_keys.len() >= 4 {
                    return Err(DirectoryError::invalid(
                        "certificate",
                        "an app holds at most 4 IdP keys; delete a previous one first",
                    ));
                }
                let key_id = key.id.clone();
                a.idp_keys
                    .retain(|k| !(activate && k.status == IdpKeyStatus::Next));
                a.idp_keys.push(key);
                if activate {
                    activate_key(&mut a, &key_id);
                }
                put_app(tx, &mut a);
                tx.event(
                    admin_event(&actor, "app_key_add")
                        .target("app", &a.id)
                        .detail("key", key_id)
                        .detail("activated", activate),
                );
                Ok(a)
            })
            .await?;
        Ok(AppView::of(&app, &self.snapshot()))
    }

    /// Make an app's `next` (or `previous`) key the signing key; the old one stays published as `previous`.
    pub async fn activate_app_key(&self, actor: &Actor, id: &Id, key_id: &str) -> Result<AppView> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        let key_id = key_id.to_string();
        let app = self
            .write(move |tx| {
                let mut a = app_record(tx, &id)?;
                if !a.idp_keys.iter().any(|k| k.id == key_id) {
                    return Err(DirectoryError::not_found("key", &key_id));
                }
                activate_key(&mut a, &key_id);
                put_app(tx, &mut a);
                tx.event(
                    admin_event(&actor, "app_key_activate")
                        .target("app", &a.id)
                        .detail("key", key_id),
                );
                Ok(a)
            })
            .await?;
        Ok(AppView::of(&app, &self.snapshot()))
    }

    /// Remove a key that no longer signs.
    pub async fn delete_app_key(&self, actor: &Actor, id: &Id, key_id: &str) -> Result<AppView> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = id.clone();
        let key_id = key_id.to_string();
        let app = self
            .write(move |tx| {
                let mut a = app_record(tx, &id)?;
                match a.idp_keys.iter().find(|k| k.id == key_id) {
                    None => return Err(DirectoryError::not_found("key", &key_id)),
                    Some(k) if k.status == IdpKeyStatus::Active => {
                        return Err(DirectoryError::invalid(
                            "key",
                            "the active key cannot be deleted; activate another first",
                        ))
                    }
                    Some(_) => {}
                }
                a.idp_keys.retain(|k| k.id != key_id);
                put_app(tx, &mut a);
                tx.event(
                    admin_event(&actor, "app_key_delete")
                        .target("app", &a.id)
                        .detail("key", key_id),
                );
                Ok(a)
            })
            .await?;
        Ok(AppView::of(&app, &self.snapshot()))
    }

    /// The PKCS#8 private key of one of an app's IdP keys.
    pub fn app_private_key(&self, app: &SsoApp, key: &IdpKey) -> Result<Vec<u8>> {
        self.master_key
            .open(&key_purpose(&app.id), &key.private_key)
            .map_err(|e| DirectoryError::Internal(e.to_string()))
    }

    /// Fill an app's SP entity id, ACS URLs, certificate and signed-request flag from its SP metadata.
    ///
    /// A signed document is verified with the app's metadata trust anchor when it has one (and refused when that
    /// fails); without an anchor its signature is recorded as not verified. An app that requires signed metadata
    /// takes only documents its anchor verified. What was found is kept as the app's `sp_metadata_upload`.
    pub async fn apply_sp_metadata(&self, actor: &Actor, id: &Id, xml: &str) -> Result<AppView> {
        actor.require(Permission::ManageOrg)?;
        let app = self.get_app_record(id)?;
        let reader = self.sp_metadata_reader.clone().ok_or_else(|| {
            DirectoryError::invalid("metadata", "SP metadata upload is not available")
        })?;
        // Read and verified outside the writer lock; the anchor used is compared with the working copy below.
        let anchor = app.metadata_trust_anchor.clone();
        let md = (reader.0)(xml, anchor.as_deref())
            .map_err(|e| DirectoryError::invalid("metadata", e))?;
        validate_acs(&md.acs_urls)?;
        for c in [&md.signing_certificate, &md.encryption_certificate]
            .into_iter()
            .flatten()
        {
            check_sp_certificate(c)?;
        }
        if let Some(u) = &md.slo_url {
            validate_url("metadata", u)?;
        }
        let actor = actor.clone();
        let id = id.clone();
        let app = self
            .write(move |tx| {
                let mut a = app_record(tx, &id)?;
                if a.metadata_trust_anchor != anchor {
                    return Err(DirectoryError::conflict(
                        "metadata_trust_anchor",
                        "the app's metadata trust anchor changed during the upload; upload again",
                    ));
                }
                if a.require_signed_metadata && !md.verified_by_trust_anchor {
                    let found = if md.signed {
                        "its signature was not verified by it"
                    } else {
                        "the document is not signed"
                    };
                    return Err(DirectoryError::invalid(
                        "metadata",
                        format!(
                            "this app requires SP metadata signed by its metadata trust anchor; {found}"
                        ),
                    ));
                }
                if tx
                    .snap
                    .apps
                    .values()
                    .any(|o| o.id != id && o.sp_entity_id == md.entity_id)
                {
                    return Err(DirectoryError::conflict(
                        "sp_entity_id",
                        format!("an app with SP entity id `{}` already exists", md.entity_id),
                    ));
                }
                a.sp_entity_id = md.entity_id;
                a.acs_urls = md.acs_urls;
                a.acs_indexes = md.acs_indexes;
                if md.slo_url.is_some() {
                    a.sp_slo_url = md.slo_url;
                    a.sp_slo_post = md.slo_post;
                }
                if md.encryption_certificate.is_some() {
                    a.sp_encryption_certificate = md.encryption_certificate;
                }
                if md.signing_certificate.is_some() {
                    a.sp_certificate = md.signing_certificate;
                }
                if md.authn_requests_signed && a.sp_certificate.is_some() {
                    a.require_signed_requests = true;
                }
                let upload = SpMetadataUpload {
                    uploaded_at: tx.now,
                    signed: md.signed,
                    verified_by_trust_anchor: md.verified_by_trust_anchor,
                };
                a.sp_metadata_upload = Some(upload);
                put_app(tx, &mut a);
                tx.event(
                    admin_event(&actor, "app_sp_metadata")
                        .target("app", &a.id)
                        .detail("signed", upload.signed)
                        .detail("verified_by_trust_anchor", upload.verified_by_trust_anchor),
                );
                Ok(a)
            })
            .await?;
        Ok(AppView::of(&app, &self.snapshot()))
    }

    /// An app record as stored (the listener's view).
    pub fn get_app_record(&self, id: &Id) -> Result<Arc<SsoApp>> {
        self.snapshot()
            .apps
            .get(id)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("app", id))
    }
}

/// Store a changed app record.
fn put_app(tx: &mut Tx, a: &mut SsoApp) {
    a.updated_at = tx.now;
    tx.batch.put_json(Kind::App, a.id.as_str(), &*a);
    tx.snap.apps.insert(a.id.clone(), Arc::new(a.clone()));
}

fn app_record(tx: &Tx, id: &Id) -> Result<SsoApp> {
    Ok((**tx
        .snap
        .apps
        .get(id)
        .ok_or_else(|| DirectoryError::not_found("app", id))?)
    .clone())
}

/// Make `key_id` the active key; the active one before it becomes `previous`.
fn activate_key(a: &mut SsoApp, key_id: &str) {
    for k in &mut a.idp_keys {
        if k.id == key_id {
            k.status = IdpKeyStatus::Active;
        } else if k.status == IdpKeyStatus::Active {
            k.status = IdpKeyStatus::Previous;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_mappings_need_a_known_source_and_a_unique_name() {
        let m = |name: &str, source: &str| AttributeMapping {
            name: name.into(),
            source: source.into(),
        };
        assert!(validate_attribute_mappings(&[
            m("email", "email"),
            m("memberOf", "groups"),
            m("department", "attribute:department"),
        ])
        .is_ok());
        for (bad, says) in [
            (vec![m("mail", "mail")], "not a source"),
            (vec![m("x", "attribute:")], "not a source"),
            (vec![m("", "email")], "1–256"),
            (vec![m("a", "email"), m("a", "username")], "mapped twice"),
        ] {
            match validate_attribute_mappings(&bad) {
                Err(DirectoryError::Invalid { field, message }) => {
                    assert_eq!(field, Some("attributes"));
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn generated_radius_secrets_are_valid_and_never_repeat() {
        let a = generate_radius_secret();
        let b = generate_radius_secret();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert!(validate_secret(&a).is_ok());
        assert_ne!(a, b);
    }
}
