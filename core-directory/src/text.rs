//! Small text helpers shared by the core and its front ends: case-insensitive substring search without
//! allocating, used where a look-up scans many records (the console's user search, the event store's
//! pre-filter by name). Owns no rule.

/// Whether `hay` contains `needle`, ASCII letters compared without case. `needle` must be lower case; other
/// bytes (UTF-8 included) compare exactly. Candidate positions are found with a vectorised byte search for
/// the needle's first byte in either case.
pub fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last_start = hay.len() - needle.len();
    let upper = first.to_ascii_uppercase();
    memchr::memchr2_iter(first, upper, &hay[..=last_start])
        .any(|i| hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
}

#[cfg(test)]
mod tests {
    use super::contains_ignore_ascii_case as c;

    #[test]
    fn finds_in_any_case_and_only_whole_needles() {
        assert!(c(b"Bench User0012345", b"user001"));
        assert!(c(b"ann@Example.com", b"example"));
        assert!(c(b"abc", b""));
        assert!(!c(b"ab", b"abc"));
        assert!(!c(b"Walkthrough", b"walkthroughs"));
        assert!(c(b"xxAnnA", b"anna"));
        assert!(c("Zoë Ärger".as_bytes(), "zoë".as_bytes()));
    }
}
