//! Opaque 24-hex-character identifiers, as used for every entity.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// An entity id: 12 random bytes written as 24 lowercase hex characters.
///
/// Shared text: the snapshot keeps each id in several indexes (a user's id in about eight), and a clone is a
/// reference count instead of a new allocation. With `String`, those copies were about 400 bytes per user.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "5f1b2c3d4e5f60718293a4b5")]
pub struct Id(Arc<str>);

impl Id {
    /// A fresh random id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 12];
        crate::crypto::fill_random(&mut bytes);
        Id(data_encoding::HEXLOWER.encode(&bytes).into())
    }

    /// Parse an id from text, accepting only 24 hex characters (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(Id(text.to_ascii_lowercase().into()))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_24_hex_and_parse_back() {
        let id = Id::generate();
        assert_eq!(id.as_str().len(), 24);
        assert_eq!(Id::parse(id.as_str()), Some(id));
    }

    #[test]
    fn parse_rejects_wrong_length_and_non_hex() {
        assert!(Id::parse("abc").is_none());
        assert!(Id::parse("zzzzzzzzzzzzzzzzzzzzzzzz").is_none());
    }
}
