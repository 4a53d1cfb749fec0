//! The HTTP bindings: HTTP-Redirect (DEFLATE + base64 in the query, with its detached signature over the raw
//! query text) and HTTP-POST (base64 in a form field; the auto-submitting form we answer with).

use crate::dsig::{alg_of, Alg, SigError};
use std::io::Read;

/// The most a SAML message may inflate or decode to.
pub const MAX_MESSAGE: usize = 128 * 1024;

/// Why a binding could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("no {0} parameter")]
    Missing(&'static str),
    #[error("the message is not valid base64")]
    Base64,
    #[error("the message is not valid DEFLATE data")]
    Deflate,
    #[error("the message is larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("the message is not UTF-8")]
    Utf8,
    #[error("a parameter appears twice")]
    Duplicate,
    #[error("the form could not be read: {0}")]
    Form(String),
    #[error(transparent)]
    Signature(#[from] SigError),
}

/// A message taken from either binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub xml: String,
    pub relay_state: Option<String>,
    /// Redirect binding: the detached signature, its algorithm URI and the exact bytes it covers.
    pub detached: Option<Detached>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    pub sig_alg: String,
    pub signature: Vec<u8>,
    pub signed: String,
}

impl Detached {
    pub fn verify(&self, keys: &[Vec<u8>], allow_sha1: bool) -> Result<(), SigError> {
        let alg: Alg = alg_of(&self.sig_alg, allow_sha1)?;
        crate::dsig::verify_bytes(alg, keys, self.signed.as_bytes(), &self.signature)
    }
}

fn b64(value: &str) -> Result<Vec<u8>, BindingError> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > MAX_MESSAGE * 2 {
        return Err(BindingError::TooLarge);
    }
    data_encoding::BASE64
        .decode(compact.as_bytes())
        .map_err(|_| BindingError::Base64)
}

fn inflate(data: &[u8]) -> Result<String, BindingError> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(data)
        .take(MAX_MESSAGE as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BindingError::Deflate)?;
    if out.len() > MAX_MESSAGE {
        return Err(BindingError::TooLarge);
    }
    String::from_utf8(out).map_err(|_| BindingError::Utf8)
}

/// Compress and encode a message for the Redirect binding.
pub fn deflate_b64(xml: &str) -> String {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(xml.as_bytes());
    data_encoding::BASE64.encode(&enc.finish().unwrap_or_default())
}

fn decode_component(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Read a Redirect-binding message (`SAMLRequest` or `SAMLResponse`) from the raw query string.
pub fn from_redirect(raw_query: &str, field: &'static str) -> Result<Incoming, BindingError> {
    let mut message = None;
    let mut relay = None;
    let mut sig_alg = None;
    let mut signature = None;
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match decode_component(k).as_str() {
            f if f == field => &mut message,
            "RelayState" => &mut relay,
            "SigAlg" => &mut sig_alg,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_some() {
            return Err(BindingError::Duplicate);
        }
        *slot = Some(v.to_string());
    }
    let raw_message = message.ok_or(BindingError::Missing(field))?;
    let xml = inflate(&b64(&decode_component(&raw_message))?)?;
    let detached = match (&sig_alg, &signature) {
        (Some(alg), Some(sig)) => {
            // The signature covers the parameters exactly as they were sent, in this order.
            let mut signed = format!("{field}={raw_message}");
            if let Some(r) = &relay {
                signed.push_str(&format!("&RelayState={r}"));
            }
            signed.push_str(&format!("&SigAlg={alg}"));
            Some(Detached {
                sig_alg: decode_component(alg),
                signature: b64(&decode_component(sig))?,
                signed,
            })
        }
        (None, None) => None,
        (None, Some(_)) => return Err(BindingError::Missing("SigAlg")),
        (Some(_), None) => return Err(BindingError::Missing("Signature")),
    };
    Ok(Incoming {
        xml,
        relay_state: relay.map(|r| decode_component(&r)),
        detached,
    })
}

/// Read a POST-binding message from its form fields.
pub fn from_post(
    message: Option<&str>,
    relay_state: Option<&str>,
    field: &'static str,
) -> Result<Incoming, BindingError> {
    let raw = message.ok_or(BindingError::Missing(field))?;
    let bytes = b64(raw)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(BindingError::TooLarge);
    }
    Ok(Incoming {
        xml: String::from_utf8(bytes).map_err(|_| BindingError::Utf8)?,
        relay_state: relay_state.map(str::to_string),
        detached: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_messages_round_trip_and_bad_ones_are_refused() {
        let xml = "<samlp:AuthnRequest/>";
        let enc = deflate_b64(xml);
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLRequest", &enc)
            .append_pair("RelayState", "/a b")
            .finish();
        let m = from_redirect(&q, "SAMLRequest").unwrap();
        assert_eq!(m.xml, xml);
        assert_eq!(m.relay_state.as_deref(), Some("/a b"));
        assert!(m.detached.is_none());
        assert_eq!(
            from_redirect("SAMLRequest=!!!", "SAMLRequest"),
            Err(BindingError::Base64)
        );
        assert_eq!(
            from_redirect("SAMLRequest=AAAA", "SAMLRequest"),
            Err(BindingError::Deflate)
        );
        assert_eq!(
            from_redirect("RelayState=x", "SAMLRequest"),
            Err(BindingError::Missing("SAMLRequest"))
        );
        assert_eq!(
            from_redirect(&format!("{q}&SAMLRequest=x"), "SAMLRequest"),
            Err(BindingError::Duplicate)
        );
        // A DEFLATE bomb stops at the limit.
        let bomb = deflate_b64(&"a".repeat(MAX_MESSAGE * 4));
        let q = format!(
            "SAMLRequest={}",
            percent_encoding::utf8_percent_encode(&bomb, percent_encoding::NON_ALPHANUMERIC)
        );
        assert_eq!(
            from_redirect(&q, "SAMLRequest"),
            Err(BindingError::TooLarge)
        );
    }
}
