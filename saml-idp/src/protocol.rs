//! SAML 2.0 messages: reading AuthnRequests, LogoutRequests and SP metadata; writing Responses, LogoutResponses and
//! IdP metadata.

use crate::dsig::NS_DS;
use crate::xml::Element;
use chrono::{DateTime, SecondsFormat, Utc};

pub const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const STATUS_VERSION: &str = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch";
pub const STATUS_NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
pub const STATUS_INVALID_NAMEID_POLICY: &str =
    "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
pub const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const STATUS_AUTHN_FAILED: &str = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed";

/// Authentication context of a password login.
pub const AC_PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
/// Authentication context when a TOTP code (a time-synchronised one-time code) was given too.
pub const AC_TOTP: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken";

/// A request the IdP cannot act on, with the SAML status to answer (when the SP can be answered at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SamlError {
    pub status: &'static str,
    pub message: String,
}

pub fn requester(message: impl Into<String>) -> SamlError {
    SamlError {
        status: STATUS_REQUESTER,
        message: message.into(),
    }
}

/// The SAML timestamp form.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, SamlError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| requester("IssueInstant is not an xs:dateTime"))
}

/// A fresh message id: `_` then 20 random bytes in hex (an xs:ID must not start with a digit).
pub fn new_id() -> String {
    format!(
        "_{}",
        data_encoding::HEXLOWER.encode(&core_directory::crypto::random_bytes(20))
    )
}

/// What an AuthnRequest asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    pub id: String,
    pub issue_instant: DateTime<Utc>,
    pub issuer: String,
    pub destination: Option<String>,
    pub acs_url: Option<String>,
    pub acs_index: Option<usize>,
    pub force_authn: bool,
    pub is_passive: bool,
    pub nameid_format: Option<String>,
}

fn flag(e: &Element, name: &str) -> Result<bool, SamlError> {
    match e.get(name) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(requester(format!("{name} must be true or false"))),
    }
}

fn issuer(root: &Element) -> Result<String, SamlError> {
    let i = root
        .first(NS_SAML, "Issuer")
        .ok_or_else(|| requester("the request has no Issuer"))?;
    Ok(i.text_content().trim().to_string())
}

fn common(root: &Element, kind: &str) -> Result<(String, DateTime<Utc>), SamlError> {
    if !root.is(NS_SAMLP, kind) {
        return Err(requester(format!("expected a samlp:{kind}")));
    }
    if root.get("Version") != Some("2.0") {
        return Err(SamlError {
            status: STATUS_VERSION,
            message: "only SAML 2.0 is supported".into(),
        });
    }
    let id = root
        .get("ID")
        .filter(|i| !i.is_empty() && i.len() <= 256)
        .ok_or_else(|| requester("the request has no usable ID"))?
        .to_string();
    let at = parse_instant(
        root.get("IssueInstant")
            .ok_or_else(|| requester("the request has no IssueInstant"))?,
    )?;
    Ok((id, at))
}

/// Read an AuthnRequest's fields (checks against the app are the caller's).
pub fn read_authn_request(root: &Element) -> Result<AuthnRequest, SamlError> {
    let (id, issue_instant) = common(root, "AuthnRequest")?;
    if let Some(b) = root.get("ProtocolBinding") {
        if b != BINDING_POST {
            return Err(requester(
                "only the HTTP-POST binding is supported for responses",
            ));
        }
    }
    let acs_index = match root.get("AssertionConsumerServiceIndex") {
        None => None,
        Some(i) => Some(
            i.parse::<usize>()
                .map_err(|_| requester("AssertionConsumerServiceIndex is not a number"))?,
        ),
    };
    Ok(AuthnRequest {
        id,
        issue_instant,
        issuer: issuer(root)?,
        destination: root.get("Destination").map(str::to_string),
        acs_url: root.get("AssertionConsumerServiceURL").map(str::to_string),
        acs_index,
        force_authn: flag(root, "ForceAuthn")?,
        is_passive: flag(root, "IsPassive")?,
        nameid_format: root
            .first(NS_SAMLP, "NameIDPolicy")
            .and_then(|p| p.get("Format"))
            .map(str::to_string),
    })
}

/// What a LogoutRequest asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub id: String,
    pub issue_instant: DateTime<Utc>,
    pub issuer: String,
    pub destination: Option<String>,
    pub name_id: String,
    pub session_indexes: Vec<String>,
}

pub fn read_logout_request(root: &Element) -> Result<LogoutRequest, SamlError> {
    let (id, issue_instant) = common(root, "LogoutRequest")?;
    let name_id = root
        .first(NS_SAML, "NameID")
        .map(|n| n.text_content().trim().to_string())
        .ok_or_else(|| requester("the LogoutRequest has no NameID"))?;
    Ok(LogoutRequest {
        id,
        issue_instant,
        issuer: issuer(root)?,
        destination: root.get("Destination").map(str::to_string),
        name_id,
        session_indexes: root
            .all(NS_SAMLP, "SessionIndex")
            .map(|s| s.text_content().trim().to_string())
            .collect(),
    })
}

/// Everything an assertion says.
#[derive(Debug, Clone)]
pub struct AssertionFacts {
    pub idp_entity_id: String,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub in_response_to: Option<String>,
    pub nameid_format: &'static str,
    pub nameid: String,
    pub session_index: String,
    pub authn_instant: DateTime<Utc>,
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    pub mfa: bool,
    pub attributes: Vec<(String, Vec<String>)>,
    pub now: DateTime<Utc>,
    /// How long the assertion (and its bearer confirmation) stays valid.
    pub lifetime: chrono::Duration,
}

fn saml(name: &str) -> Element {
    Element::new("saml", name, NS_SAML)
}

fn samlp(name: &str) -> Element {
    Element::new("samlp", name, NS_SAMLP)
}

/// The unsigned assertion.
pub fn assertion(f: &AssertionFacts) -> Element {
    let not_after = instant(f.now + f.lifetime);
    let mut nameid = saml("NameID").attr("Format", f.nameid_format);
    if f.nameid_format == NAMEID_PERSISTENT || f.nameid_format == NAMEID_TRANSIENT {
        nameid = nameid
            .attr("NameQualifier", f.idp_entity_id.clone())
            .attr("SPNameQualifier", f.sp_entity_id.clone());
    }
    let subject = saml("Subject").child(nameid.text(f.nameid.clone())).child(
        saml("SubjectConfirmation")
            .attr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
            .child(
                saml("SubjectConfirmationData")
                    .attr_opt("InResponseTo", f.in_response_to.clone())
                    .attr("NotOnOrAfter", not_after.clone())
                    .attr("Recipient", f.acs_url.clone()),
            ),
    );
    let conditions = saml("Conditions")
        .attr("NotBefore", instant(f.now - chrono::Duration::seconds(30)))
        .attr("NotOnOrAfter", not_after)
        .child(saml("AudienceRestriction").child(saml("Audience").text(f.sp_entity_id.clone())));
    let authn = saml("AuthnStatement")
        .attr("AuthnInstant", instant(f.authn_instant))
        .attr("SessionIndex", f.session_index.clone())
        .attr_opt(
            "SessionNotOnOrAfter",
            f.session_not_on_or_after.map(instant),
        )
        .child(
            saml("AuthnContext").child(saml("AuthnContextClassRef").text(if f.mfa {
                AC_TOTP
            } else {
                AC_PASSWORD
            })),
        );
    let mut a = saml("Assertion")
        .attr("ID", new_id())
        .attr("IssueInstant", instant(f.now))
        .attr("Version", "2.0")
        .child(saml("Issuer").text(f.idp_entity_id.clone()))
        .child(subject)
        .child(conditions)
        .child(authn);
    if !f.attributes.is_empty() {
        let mut st = saml("AttributeStatement");
        for (name, values) in &f.attributes {
            let mut attr = saml("Attribute").attr("Name", name.clone()).attr(
                "NameFormat",
                "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            );
            for v in values {
                attr = attr.child(saml("AttributeValue").text(v.clone()));
            }
            st = st.child(attr);
        }
        a = a.child(st);
    }
    a
}

/// A Response around `body` (an assertion, an encrypted assertion, or nothing for an error).
pub fn response(
    idp_entity_id: &str,
    destination: &str,
    in_response_to: Option<&str>,
    status: &str,
    message: Option<&str>,
    now: DateTime<Utc>,
    body: Option<Element>,
) -> Element {
    let mut st = samlp("Status");
    if status == STATUS_SUCCESS {
        st = st.child(samlp("StatusCode").attr("Value", status));
    } else {
        // Second-level codes sit under Requester or Responder.
        let (top, sub) = match status {
            STATUS_REQUESTER | STATUS_RESPONDER | STATUS_VERSION => (status, None),
            STATUS_NO_PASSIVE | STATUS_INVALID_NAMEID_POLICY | STATUS_REQUEST_DENIED => {
                (STATUS_REQUESTER, Some(status))
            }
            _ => (STATUS_RESPONDER, Some(status)),
        };
        let mut code = samlp("StatusCode").attr("Value", top);
        if let Some(s) = sub {
            code = code.child(samlp("StatusCode").attr("Value", s));
        }
        st = st.child(code);
        if let Some(m) = message {
            st = st.child(samlp("StatusMessage").text(m));
        }
    }
    let mut r = samlp("Response")
        .attr("Destination", destination)
        .attr("ID", new_id())
        .attr_opt("InResponseTo", in_response_to)
        .attr("IssueInstant", instant(now))
        .attr("Version", "2.0")
        .child(saml("Issuer").text(idp_entity_id))
        .child(st);
    if let Some(b) = body {
        r = r.child(b);
    }
    r
}

/// A LogoutResponse.
pub fn logout_response(
    idp_entity_id: &str,
    destination: &str,
    in_response_to: &str,
    status: &str,
    now: DateTime<Utc>,
) -> Element {
    samlp("LogoutResponse")
        .attr("Destination", destination)
        .attr("ID", new_id())
        .attr("InResponseTo", in_response_to)
        .attr("IssueInstant", instant(now))
        .attr("Version", "2.0")
        .child(saml("Issuer").text(idp_entity_id))
        .child(samlp("Status").child(samlp("StatusCode").attr("Value", status)))
}

/// The IdP metadata of one app.
pub struct IdpMetadata<'a> {
    pub entity_id: &'a str,
    pub sso_url: &'a str,
    pub slo_url: &'a str,
    /// Base64 DER certificates to publish (the active one and any in rotation).
    pub certificates: Vec<String>,
    pub want_requests_signed: bool,
}

/// How long an SP may cache IdP metadata before fetching it again (SAML metadata §2.3.2, an xs:duration). The
/// metadata carries no `validUntil`: an SP that honours one would stop trusting the IdP once it passed, while a
/// cache duration only tells it to refresh — and a rotation's `next` key is published long before it signs.
pub const METADATA_CACHE_DURATION: &str = "PT24H";

pub fn idp_metadata(m: &IdpMetadata) -> Element {
    let md = |n: &str| Element::new("md", n, NS_MD);
    let mut idp = md("IDPSSODescriptor")
        .attr(
            "WantAuthnRequestsSigned",
            if m.want_requests_signed {
                "true"
            } else {
                "false"
            },
        )
        .attr("protocolSupportEnumeration", NS_SAMLP);
    for c in &m.certificates {
        idp = idp.child(
            md("KeyDescriptor").attr("use", "signing").child(
                Element::new("ds", "KeyInfo", NS_DS).child(
                    Element::new("ds", "X509Data", NS_DS)
                        .child(Element::new("ds", "X509Certificate", NS_DS).text(c.clone())),
                ),
            ),
        );
    }
    for b in [BINDING_REDIRECT, BINDING_POST] {
        idp = idp.child(
            md("SingleLogoutService")
                .attr("Binding", b)
                .attr("Location", m.slo_url),
        );
    }
    for f in [
        NAMEID_EMAIL,
        NAMEID_PERSISTENT,
        NAMEID_TRANSIENT,
        NAMEID_UNSPECIFIED,
    ] {
        idp = idp.child(md("NameIDFormat").text(f));
    }
    for b in [BINDING_REDIRECT, BINDING_POST] {
        idp = idp.child(
            md("SingleSignOnService")
                .attr("Binding", b)
                .attr("Location", m.sso_url),
        );
    }
    md("EntityDescriptor")
        .attr("entityID", m.entity_id)
        .attr("cacheDuration", METADATA_CACHE_DURATION)
        .child(idp)
}

/// What SP metadata says about the SP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMetadataFacts {
    pub entity_id: String,
    /// HTTP-POST ACS locations, the default (`isDefault`, else the lowest index) first, and their indexes.
    pub acs_urls: Vec<String>,
    pub acs_indexes: Vec<u32>,
    pub signing_certificate: Option<String>,
    /// A `use="encryption"` certificate.
    pub encryption_certificate: Option<String>,
    pub authn_requests_signed: bool,
    /// Where LogoutResponses go (ResponseLocation, else Location), and whether by HTTP-POST.
    pub slo_url: Option<String>,
    pub slo_post: bool,
}

fn key_certificate(k: &Element) -> Option<String> {
    k.first(NS_DS, "KeyInfo")
        .and_then(|k| k.first(NS_DS, "X509Data"))
        .and_then(|d| d.first(NS_DS, "X509Certificate"))
        .map(|c| pem(&c.text_content()))
}

/// Read an SP's EntityDescriptor.
pub fn read_sp_metadata(root: &Element) -> Result<SpMetadataFacts, String> {
    if !root.is(NS_MD, "EntityDescriptor") {
        return Err("the metadata must be one md:EntityDescriptor".into());
    }
    let entity_id = root
        .get("entityID")
        .filter(|e| !e.is_empty())
        .ok_or("the EntityDescriptor has no entityID")?
        .to_string();
    let sp = root
        .first(NS_MD, "SPSSODescriptor")
        .ok_or("the metadata has no SPSSODescriptor")?;
    let mut acs: Vec<(bool, u32, String)> = Vec::new();
    for a in sp.all(NS_MD, "AssertionConsumerService") {
        if a.get("Binding") != Some(BINDING_POST) {
            continue;
        }
        let loc = a
            .get("Location")
            .ok_or("an AssertionConsumerService has no Location")?;
        let index = a
            .get("index")
            .and_then(|i| i.parse().ok())
            .ok_or("an AssertionConsumerService has no valid index")?;
        if acs.iter().any(|(_, i, _)| *i == index) {
            return Err(format!(
                "AssertionConsumerService index {index} appears twice"
            ));
        }
        acs.push((a.get("isDefault") != Some("true"), index, loc.to_string()));
    }
    if acs.is_empty() {
        return Err("the metadata has no HTTP-POST AssertionConsumerService".into());
    }
    acs.sort();
    let keys: Vec<&Element> = sp.all(NS_MD, "KeyDescriptor").collect();
    let signing = keys
        .iter()
        .find(|k| k.get("use").is_none_or(|u| u == "signing"))
        .and_then(|k| key_certificate(k));
    let encryption = keys
        .iter()
        .find(|k| k.get("use") == Some("encryption"))
        .and_then(|k| key_certificate(k));
    let slo = [BINDING_REDIRECT, BINDING_POST].iter().find_map(|b| {
        sp.all(NS_MD, "SingleLogoutService")
            .find(|s| s.get("Binding") == Some(b))
            .and_then(|s| s.get("ResponseLocation").or_else(|| s.get("Location")))
            .map(|l| (l.to_string(), *b == BINDING_POST))
    });
    Ok(SpMetadataFacts {
        entity_id,
        acs_indexes: acs.iter().map(|(_, i, _)| *i).collect(),
        acs_urls: acs.into_iter().map(|(_, _, l)| l).collect(),
        signing_certificate: signing,
        encryption_certificate: encryption,
        authn_requests_signed: sp.get("AuthnRequestsSigned") == Some("true"),
        slo_post: slo.as_ref().is_some_and(|(_, p)| *p),
        slo_url: slo.map(|(l, _)| l),
    })
}

/// Base64 DER to PEM.
pub fn pem(b64: &str) -> String {
    let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in compact.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
