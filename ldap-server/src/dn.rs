//! Distinguished names (RFC 4514): parsing, comparison, and escaping values we write.
//!
//! Two DNs name the same entry when their RDNs match one by one (RFC 4517 §4.2.15, distinguishedNameMatch):
//! attribute types compare by OID — a name and its OID, in any case, are the same type — and values by the
//! equality rule of their type from [`crate::schema`], with `caseIgnoreMatch` for types the schema does not
//! serve (`c`, `l`, `st` … are all directory strings). [`normalize`] writes that comparison key as a string.
//!
//! Parsing is lenient where RFC 4514 §4 allows it (spaces around separators, `;` between RDNs) and strict
//! elsewhere: a dangling escape, an empty type or value, or an escape that is not UTF-8 is not a DN. Multi-valued
//! RDNs (`a=1+b=2`) are valid DNs but never name an entry of ours, so they get their own error.

use crate::schema::{self, Syntax};

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

/// One `type=value` pair of a DN: the type as the schema names it, lower-cased (or as given, lower-cased, when
/// the schema does not know it), the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    pub attr: String,
    pub value: String,
}

impl Rdn {
    /// The value as its type's equality rule sees it.
    fn match_key(&self) -> String {
        let syntax = schema::attribute(&self.attr).map_or(Syntax::CaseIgnore, |a| a.syntax);
        match syntax {
            Syntax::Integer => self
                .value
                .trim()
                .parse::<i64>()
                .map_or_else(|_| self.value.clone(), |n| n.to_string()),
            Syntax::Octets | Syntax::Time => self.value.clone(),
            Syntax::CaseIgnore | Syntax::CaseIgnoreIa5 | Syntax::Oid | Syntax::Dn => {
                crate::filter::fold(&self.value)
            }
        }
    }
}

/// Why a string is not a DN we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnError {
    /// Not a DN at all (RFC 4514 syntax).
    Syntax,
    /// A valid DN with a multi-valued RDN, which names nothing here.
    MultiValued,
}

/// The attribute type of an AVA, canonical: schema name or given text, lower-cased.
fn attribute_type(text: &str) -> Result<String, DnError> {
    let t = text.trim();
    let descr = t.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let numeric = !t.is_empty()
        && t.split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !descr && !numeric {
        return Err(DnError::Syntax);
    }
    Ok(
        schema::attribute(t)
            .map_or_else(|| t.to_ascii_lowercase(), |a| a.name.to_ascii_lowercase()),
    )
}

/// Parse a DN into RDNs, most specific first.
pub fn parse(dn: &str) -> Result<Vec<Rdn>, DnError> {
    let dn = dn.trim();
    if dn.is_empty() {
        return Ok(Vec::new());
    }
    let mut rdns = Vec::new();
    let mut multi_valued = false;
    let mut in_rdn = 0usize;
    let mut chars = dn.chars().peekable();
    loop {
        let mut attr = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            attr.push(c);
        }
        let attr = attribute_type(&attr)?;
        let (value, end) = value(&mut chars)?;
        in_rdn += 1;
        if in_rdn > 1 {
            multi_valued = true;
        }
        rdns.push(Rdn { attr, value });
        match end {
            End::Ava => {}
            End::Rdn => in_rdn = 0,
            End::Dn => break,
        }
    }
    if multi_valued {
        return Err(DnError::MultiValued);
    }
    Ok(rdns)
}

/// What ended a value.
enum End {
    /// `+`: another AVA of the same RDN follows.
    Ava,
    /// `,` or `;`: another RDN follows.
    Rdn,
    Dn,
}

/// One attribute value, unescaped, up to an unescaped separator.
fn value(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<(String, End), DnError> {
    let mut value = String::new();
    // Unescaped spaces at the end are not part of the value (RFC 4514 §3: they must be escaped to count).
    let mut trailing_spaces = 0usize;
    let mut end = End::Dn;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let a = chars.next().ok_or(DnError::Syntax)?;
                if a.is_ascii_hexdigit() {
                    value.push_str(&hex_escapes(a, chars)?);
                } else {
                    value.push(a);
                }
                trailing_spaces = 0;
            }
            ',' | ';' => {
                end = End::Rdn;
                break;
            }
            '+' => {
                end = End::Ava;
                break;
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
    value.truncate(value.len() - trailing_spaces);
    if value.is_empty() {
        return Err(DnError::Syntax);
    }
    Ok((value, end))
}

/// A run of `\XX` escapes starting with the digit `a` already read: UTF-8 bytes, decoded together.
fn hex_escapes(
    a: char,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<String, DnError> {
    let hex = |x: char, y: char| {
        let pair = [x, y].iter().collect::<String>();
        u8::from_str_radix(&pair, 16).map_err(|_| DnError::Syntax)
    };
    let b = chars.next().ok_or(DnError::Syntax)?;
    let mut bytes = vec![hex(a, b)?];
    while chars.peek() == Some(&'\\') {
        let mut look = chars.clone();
        look.next();
        match (look.next(), look.next()) {
            (Some(x), Some(y)) if x.is_ascii_hexdigit() && y.is_ascii_hexdigit() => {
                bytes.push(hex(x, y)?);
                chars.next();
                chars.next();
                chars.next();
            }
            _ => break,
        }
    }
    String::from_utf8(bytes).map_err(|_| DnError::Syntax)
}

/// The comparison key of a DN: equal keys name the same entry. `None` when it is not a usable DN.
pub fn normalize(dn: &str) -> Option<String> {
    parse(dn).ok().map(|rdns| join(&rdns))
}

/// The comparison key of RDNs that are already parsed.
pub fn join(rdns: &[Rdn]) -> String {
    rdns.iter()
        .map(|r| format!("{}={}", r.attr, escape_value(&r.match_key())))
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
        assert_eq!(
            normalize("dc=Example, DC=com").unwrap(),
            normalize("dc=example,dc=com").unwrap()
        );
    }

    #[test]
    fn types_compare_by_oid_and_values_by_their_matching_rule() {
        assert_eq!(
            normalize("0.9.2342.19200300.100.1.1=alice,2.5.4.11=Users").unwrap(),
            normalize("uid=alice,ou=users").unwrap()
        );
        assert_eq!(
            normalize("cn=Jane   Doe").unwrap(),
            normalize("cn=jane doe").unwrap(),
            "caseIgnoreMatch folds inner spaces"
        );
        assert_eq!(
            normalize("uidNumber=05001").unwrap(),
            normalize("uidnumber=5001").unwrap(),
            "integerMatch"
        );
        assert_ne!(normalize("cn=a").unwrap(), normalize("sn=a").unwrap());
    }

    #[test]
    fn escapes_round_trip() {
        let v = "Smith, Jr. #1 ";
        let dn = format!("cn={},ou=Users", escape_value(v));
        let rdns = parse(&dn).unwrap();
        assert_eq!(rdns[0].value, v);
        assert_eq!(parse("cn=caf\\c3\\a9").unwrap()[0].value, "café");
        assert_eq!(
            normalize("o=Acme\\, Inc,dc=com").unwrap(),
            normalize("O=acme\\2c inc , DC=COM").unwrap(),
            "a comma escaped either way"
        );
        assert_eq!(parse("o=Acme\\, Inc,dc=com").unwrap().len(), 2);
    }

    #[test]
    fn malformed_dns_are_refused() {
        for bad in [
            "nonsense",
            "user000040",
            "cn=",
            "cn=a\\",
            "cn=a\\4",
            "cn=\\ff",
            "=a",
            "c n=a",
            "1.=a",
            "cn=a,",
            "cn=a+",
        ] {
            assert_eq!(parse(bad), Err(DnError::Syntax), "{bad}");
        }
        assert_eq!(parse("cn=a+sn=b,dc=com"), Err(DnError::MultiValued));
        assert_eq!(parse("o=Acme+c=US"), Err(DnError::MultiValued));
        assert_eq!(parse("cn=a+sn=b,="), Err(DnError::Syntax));
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
