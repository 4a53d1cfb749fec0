//! Distinguished names (RFC 4514): parsing, normalisation for comparison, and escaping values we write.
//!
//! Every attribute naming our entries (`o`, `dc`, `ou`, `uid`, `cn`, `sambaDomainName`) matches case-insensitively,
//! so a normalised DN is lower-case attribute types and values, unescaped, joined with `,` and no spaces.

/// Escape an attribute value for use in a DN.
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
            out.push(c);
        } else if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

/// One `type=value` pair of a DN, type lower-cased, value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    pub attr: String,
    pub value: String,
}

/// Parse a DN into RDNs, most specific first. Multi-valued RDNs (`a=1+b=2`) are refused: we never name entries
/// that way. `None` for malformed input.
pub fn parse(dn: &str) -> Option<Vec<Rdn>> {
    let dn = dn.trim();
    if dn.is_empty() {
        return Some(Vec::new());
    }
    let mut rdns = Vec::new();
    let mut chars = dn.chars().peekable();
    loop {
        // attribute type
        let mut attr = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            attr.push(c);
        }
        let attr = attr.trim().to_ascii_lowercase();
        if attr.is_empty()
            || !attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return None;
        }
        // value, up to an unescaped ','
        let mut value = String::new();
        let mut trailing_spaces = 0usize;
        let mut ended = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let a = chars.next()?;
                    if a.is_ascii_hexdigit() {
                        let b = chars.next()?;
                        let byte = u8::from_str_radix(&format!("{a}{b}"), 16).ok()?;
                        // Hex escapes carry UTF-8 bytes; collect them as bytes, then re-decode.
                        let mut bytes = vec![byte];
                        while chars.peek() == Some(&'\\') {
                            let mut look = chars.clone();
                            look.next();
                            match (look.next(), look.next()) {
                                (Some(x), Some(y))
                                    if x.is_ascii_hexdigit() && y.is_ascii_hexdigit() =>
                                {
                                    bytes.push(u8::from_str_radix(&format!("{x}{y}"), 16).ok()?);
                                    chars.next();
                                    chars.next();
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        value.push_str(&String::from_utf8(bytes).ok()?);
                    } else {
                        value.push(a);
                    }
                    trailing_spaces = 0;
                }
                ',' | ';' => {
                    ended = false;
                    break;
                }
                '+' => return None,
                ' ' => {
                    if !value.is_empty() {
                        value.push(' ');
                        trailing_spaces += 1;
                    }
                }
                _ => {
                    value.push(c);
                    trailing_spaces = 0;
                }
            }
        }
        value.truncate(value.len() - trailing_spaces);
        if value.is_empty() {
            return None;
        }
        rdns.push(Rdn { attr, value });
        if ended {
            break;
        }
    }
    Some(rdns)
}

/// The normalised form used for comparison and as an index key.
pub fn normalize(dn: &str) -> Option<String> {
    let rdns = parse(dn)?;
    Some(
        rdns.iter()
            .map(|r| format!("{}={}", r.attr, escape_value(&r.value.to_lowercase())))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Normalise RDNs that are already parsed.
pub fn join(rdns: &[Rdn]) -> String {
    rdns.iter()
        .map(|r| format!("{}={}", r.attr, escape_value(&r.value.to_lowercase())))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_and_spaces() {
        assert_eq!(
            normalize("UID=Alice , OU=users,o=X").unwrap(),
            normalize("uid=alice,ou=Users,o=x").unwrap()
        );
    }

    #[test]
    fn escapes_round_trip() {
        let v = "Smith, Jr. #1 ";
        let dn = format!("cn={},ou=Users", escape_value(v));
        let rdns = parse(&dn).unwrap();
        assert_eq!(rdns[0].value, v);
        assert_eq!(parse("cn=caf\\c3\\a9").unwrap()[0].value, "café");
    }

    #[test]
    fn malformed_dns_are_refused() {
        assert!(parse("nonsense").is_none());
        assert!(parse("cn=").is_none());
        assert!(parse("cn=a+sn=b").is_none());
        assert!(parse("cn=a\\").is_none());
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
