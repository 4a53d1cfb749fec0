//! TOTP recovery codes: ten single-use codes made at each TOTP enrolment, shown once, kept only as SHA-256 digests
//! (salted with the user's id). Each code carries 80 random bits (16 characters of an alphabet without look-alikes,
//! shown in groups of four), so a digest cannot be searched back to its code. Typing is forgiving: case, spaces and
//! dashes do not matter.

use crate::id::Id;

/// Codes made at each enrolment.
pub const COUNT: usize = 10;
/// Characters per code (5 bits each).
const LEN: usize = 16;
/// 32 symbols without the look-alikes i, l, o and 1.
const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz234567890";

/// New codes: (as shown to the user, as stored).
pub fn generate(user: &Id) -> (Vec<String>, Vec<String>) {
    let mut shown = Vec::with_capacity(COUNT);
    let mut stored = Vec::with_capacity(COUNT);
    for _ in 0..COUNT {
        let raw = crate::crypto::random_bytes(LEN);
        let code: String = raw
            .iter()
            .map(|b| ALPHABET[usize::from(b & 31)] as char)
            .collect();
        stored.push(digest(user, &code));
        let grouped = code
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        shown.push(grouped);
    }
    (shown, stored)
}

/// A typed code as compared: lowercase, without spaces and dashes; `None` when it cannot be a recovery code.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The stored form of a (normalized) code.
pub fn digest(user: &Id, code: &str) -> String {
    crate::crypto::sha256_hex(format!("recovery:{user}:{code}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_forgiving_to_type_and_stored_only_as_digests() {
        let user = Id::generate();
        let (shown, stored) = generate(&user);
        assert_eq!(shown.len(), COUNT);
        assert_eq!(shown[0].len(), LEN + 3, "{}", shown[0]);
        let typed = format!(" {} ", shown[3].to_uppercase().replace('-', " "));
        let code = normalize(&typed).unwrap();
        assert_eq!(digest(&user, &code), stored[3]);
        assert!(stored.iter().all(|d| !shown.iter().any(|s| d.contains(s))));
        let mut unique = stored.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        assert_eq!(
            normalize("123456"),
            None,
            "a TOTP code is not a recovery code"
        );
        assert_ne!(digest(&Id::generate(), &code), stored[3], "salted per user");
    }
}
