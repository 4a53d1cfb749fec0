//! The schema Stratus serves, as data: every attribute type with its OID, syntax and matching, and every object
//! class. Filters, attribute selection and the subschema entry all read these tables.

/// How values of an attribute compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Directory string, case-insensitive, inner spaces folded (caseIgnoreMatch).
    CaseIgnore,
    /// IA5 string, case-insensitive (caseIgnoreIA5Match) — e-mail and home directories.
    CaseIgnoreIa5,
    /// INTEGER with integer ordering.
    Integer,
    /// A DN, compared in normalised form.
    Dn,
    /// GeneralizedTime, ordered.
    Time,
    /// OID or name, case-insensitive (objectClass).
    Oid,
    /// Octet string, exact.
    Octets,
}

impl Syntax {
    fn oid(self) -> &'static str {
        match self {
            Syntax::CaseIgnore => "1.3.6.1.4.1.1466.115.121.1.15",
            Syntax::CaseIgnoreIa5 => "1.3.6.1.4.1.1466.115.121.1.26",
            Syntax::Integer => "1.3.6.1.4.1.1466.115.121.1.27",
            Syntax::Dn => "1.3.6.1.4.1.1466.115.121.1.12",
            Syntax::Time => "1.3.6.1.4.1.1466.115.121.1.24",
            Syntax::Oid => "1.3.6.1.4.1.1466.115.121.1.38",
            Syntax::Octets => "1.3.6.1.4.1.1466.115.121.1.40",
        }
    }

    fn equality(self) -> &'static str {
        match self {
            Syntax::CaseIgnore => "caseIgnoreMatch",
            Syntax::CaseIgnoreIa5 => "caseIgnoreIA5Match",
            Syntax::Integer => "integerMatch",
            Syntax::Dn => "distinguishedNameMatch",
            Syntax::Time => "generalizedTimeMatch",
            Syntax::Oid => "objectIdentifierMatch",
            Syntax::Octets => "octetStringMatch",
        }
    }
}

/// One attribute type.
#[derive(Debug)]
pub struct AttributeType {
    pub name: &'static str,
    pub oid: &'static str,
    pub syntax: Syntax,
    pub single: bool,
    /// Operational: returned only when asked for by name or with `+`.
    pub operational: bool,
}

const fn at(name: &'static str, oid: &'static str, syntax: Syntax, single: bool) -> AttributeType {
    AttributeType {
        name,
        oid,
        syntax,
        single,
        operational: false,
    }
}

const fn op(name: &'static str, oid: &'static str, syntax: Syntax) -> AttributeType {
    AttributeType {
        name,
        oid,
        syntax,
        single: true,
        operational: true,
    }
}

use Syntax::*;

/// Every attribute Stratus serves.
pub static ATTRIBUTES: &[AttributeType] = &[
    at("objectClass", "2.5.4.0", Oid, false),
    at("cn", "2.5.4.3", CaseIgnore, false),
    at("sn", "2.5.4.4", CaseIgnore, false),
    at("o", "2.5.4.10", CaseIgnore, false),
    at("ou", "2.5.4.11", CaseIgnore, false),
    at("title", "2.5.4.12", CaseIgnore, false),
    at("description", "2.5.4.13", CaseIgnore, false),
    at("telephoneNumber", "2.5.4.20", CaseIgnore, false),
    at("member", "2.5.4.31", Dn, false),
    at("givenName", "2.5.4.42", CaseIgnore, false),
    at("uid", "0.9.2342.19200300.100.1.1", CaseIgnore, false),
    at("mail", "0.9.2342.19200300.100.1.3", CaseIgnoreIa5, false),
    at("dc", "0.9.2342.19200300.100.1.25", CaseIgnoreIa5, true),
    at("displayName", "2.16.840.1.113730.3.1.241", CaseIgnore, true),
    at(
        "employeeNumber",
        "2.16.840.1.113730.3.1.3",
        CaseIgnore,
        true,
    ),
    at(
        "departmentNumber",
        "2.16.840.1.113730.3.1.2",
        CaseIgnore,
        false,
    ),
    at("uidNumber", "1.3.6.1.1.1.1.0", Integer, true),
    at("gidNumber", "1.3.6.1.1.1.1.1", Integer, true),
    at("gecos", "1.3.6.1.1.1.1.2", CaseIgnoreIa5, true),
    at("homeDirectory", "1.3.6.1.1.1.1.3", CaseIgnoreIa5, true),
    at("loginShell", "1.3.6.1.1.1.1.4", CaseIgnoreIa5, true),
    at("shadowLastChange", "1.3.6.1.1.1.1.5", Integer, true),
    at("shadowExpire", "1.3.6.1.1.1.1.10", Integer, true),
    at("memberUid", "1.3.6.1.1.1.1.12", CaseIgnoreIa5, false),
    at("memberOf", "1.2.840.113556.1.2.102", Dn, false),
    at("sambaSID", "1.3.6.1.4.1.7165.2.1.20", CaseIgnoreIa5, true),
    at(
        "sambaPrimaryGroupSID",
        "1.3.6.1.4.1.7165.2.1.23",
        CaseIgnoreIa5,
        true,
    ),
    at(
        "sambaNTPassword",
        "1.3.6.1.4.1.7165.2.1.25",
        CaseIgnoreIa5,
        true,
    ),
    at(
        "sambaAcctFlags",
        "1.3.6.1.4.1.7165.2.1.26",
        CaseIgnoreIa5,
        true,
    ),
    at("sambaPwdLastSet", "1.3.6.1.4.1.7165.2.1.27", Integer, true),
    at("sambaGroupType", "1.3.6.1.4.1.7165.2.1.19", Integer, true),
    at(
        "sambaDomainName",
        "1.3.6.1.4.1.7165.2.1.38",
        CaseIgnore,
        true,
    ),
    op("entryUUID", "1.3.6.1.1.16.4", Oid),
    op("entryDN", "1.3.6.1.1.20", Dn),
    op("createTimestamp", "2.5.18.1", Time),
    op("modifyTimestamp", "2.5.18.2", Time),
    op("hasSubordinates", "2.5.18.9", CaseIgnore),
    op("subschemaSubentry", "2.5.18.10", Dn),
    op("structuralObjectClass", "2.5.21.9", Oid),
    op("namingContexts", "1.3.6.1.4.1.1466.101.120.5", Dn),
    op("supportedExtension", "1.3.6.1.4.1.1466.101.120.7", Oid),
    op("supportedControl", "1.3.6.1.4.1.1466.101.120.13", Oid),
    op(
        "supportedSASLMechanisms",
        "1.3.6.1.4.1.1466.101.120.14",
        CaseIgnore,
    ),
    op(
        "supportedLDAPVersion",
        "1.3.6.1.4.1.1466.101.120.15",
        Integer,
    ),
    op("vendorName", "1.3.6.1.1.4", CaseIgnore),
    op("vendorVersion", "1.3.6.1.1.5", CaseIgnore),
    op("objectClasses", "2.5.21.6", CaseIgnore),
    op("attributeTypes", "2.5.21.5", CaseIgnore),
    op("ldapSyntaxes", "1.3.6.1.4.1.1466.101.120.16", CaseIgnore),
    op("matchingRules", "2.5.21.4", CaseIgnore),
];

/// Every attribute by its lower-case name and by its OID. Entries are built with a few dozen look-ups each, and
/// a scan of the table cost about 2 % of a search's CPU.
///
/// Keyed by short names the server itself spells, so a plain FNV-1a hash serves: no client can choose what
/// the table holds.
static BY_NAME: std::sync::LazyLock<
    std::collections::HashMap<&'static str, &'static AttributeType, Fnv>,
> = std::sync::LazyLock::new(|| {
    let mut map = std::collections::HashMap::with_capacity_and_hasher(ATTRIBUTES.len() * 2, Fnv);
    for a in ATTRIBUTES {
        let lower: &'static str = Box::leak(a.name.to_ascii_lowercase().into_boxed_str());
        map.insert(lower, a);
        map.insert(a.oid, a);
    }
    map
});

/// FNV-1a, for [`BY_NAME`].
#[derive(Clone, Copy, Default)]
struct Fnv;

struct FnvHasher(u64);

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Longest attribute name looked up without allocating (longer names are not in the table anyway).
const NAME_BUFFER: usize = 64;

/// Look an attribute up by name or OID, case-insensitively.
pub fn attribute(name: &str) -> Option<&'static AttributeType> {
    if name.len() > NAME_BUFFER {
        return None;
    }
    let mut buf = [0u8; NAME_BUFFER];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name.as_bytes());
    lower.make_ascii_lowercase();
    // Lower-casing ASCII letters keeps the bytes valid UTF-8.
    let lower = std::str::from_utf8(lower).ok()?;
    BY_NAME.get(lower).copied()
}

/// A set of attribute types, one bit per row of [`ATTRIBUTES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttributeSet(u128);

impl AttributeSet {
    pub const ALL: AttributeSet = AttributeSet(u128::MAX);

    fn bit(at: &AttributeType) -> u128 {
        // The row of `at` in the table, from its address: every AttributeType lives in ATTRIBUTES.
        let offset = (at as *const AttributeType as usize)
            .wrapping_sub(ATTRIBUTES.as_ptr() as usize)
            / std::mem::size_of::<AttributeType>();
        debug_assert!(offset < ATTRIBUTES.len(), "{} is not in the table", at.name);
        1u128.checked_shl(offset as u32).unwrap_or(0)
    }

    pub fn insert(&mut self, at: &AttributeType) {
        self.0 |= Self::bit(at);
    }

    pub fn contains(&self, at: &AttributeType) -> bool {
        self.0 & Self::bit(at) != 0
    }

    pub fn union(self, other: AttributeSet) -> AttributeSet {
        AttributeSet(self.0 | other.0)
    }
}

/// One object class: name, OID, superclass, kind, MUST and MAY.
pub struct ObjectClass {
    pub name: &'static str,
    pub oid: &'static str,
    pub sup: &'static str,
    pub kind: &'static str,
    pub must: &'static [&'static str],
    pub may: &'static [&'static str],
}

/// Every object class Stratus serves.
pub static OBJECT_CLASSES: &[ObjectClass] = &[
    ObjectClass {
        name: "top",
        oid: "2.5.6.0",
        sup: "",
        kind: "ABSTRACT",
        must: &["objectClass"],
        may: &[],
    },
    ObjectClass {
        name: "organization",
        oid: "2.5.6.4",
        sup: "top",
        kind: "STRUCTURAL",
        must: &["o"],
        may: &["description"],
    },
    ObjectClass {
        name: "organizationalUnit",
        oid: "2.5.6.5",
        sup: "top",
        kind: "STRUCTURAL",
        must: &["ou"],
        may: &["description"],
    },
    ObjectClass {
        name: "dcObject",
        oid: "1.3.6.1.4.1.1466.344",
        sup: "top",
        kind: "AUXILIARY",
        must: &["dc"],
        may: &[],
    },
    ObjectClass {
        name: "person",
        oid: "2.5.6.6",
        sup: "top",
        kind: "STRUCTURAL",
        must: &["sn", "cn"],
        may: &["telephoneNumber", "description"],
    },
    ObjectClass {
        name: "organizationalPerson",
        oid: "2.5.6.7",
        sup: "person",
        kind: "STRUCTURAL",
        must: &[],
        may: &["title", "ou"],
    },
    ObjectClass {
        name: "inetOrgPerson",
        oid: "2.16.840.1.113730.3.2.2",
        sup: "organizationalPerson",
        kind: "STRUCTURAL",
        must: &[],
        may: &[
            "uid",
            "mail",
            "givenName",
            "displayName",
            "employeeNumber",
            "departmentNumber",
        ],
    },
    ObjectClass {
        name: "posixAccount",
        oid: "1.3.6.1.1.1.2.0",
        sup: "top",
        kind: "AUXILIARY",
        must: &["cn", "uid", "uidNumber", "gidNumber", "homeDirectory"],
        may: &["loginShell", "gecos", "description"],
    },
    ObjectClass {
        name: "shadowAccount",
        oid: "1.3.6.1.1.1.2.1",
        sup: "top",
        kind: "AUXILIARY",
        must: &["uid"],
        may: &["shadowLastChange", "shadowExpire"],
    },
    ObjectClass {
        name: "groupOfNames",
        oid: "2.5.6.9",
        sup: "top",
        kind: "STRUCTURAL",
        must: &["cn"],
        may: &["member", "description"],
    },
    ObjectClass {
        name: "posixGroup",
        oid: "1.3.6.1.1.1.2.2",
        sup: "top",
        kind: "AUXILIARY",
        must: &["cn", "gidNumber"],
        may: &["memberUid", "description"],
    },
    ObjectClass {
        name: "sambaSamAccount",
        oid: "1.3.6.1.4.1.7165.2.2.6",
        sup: "top",
        kind: "AUXILIARY",
        must: &["uid", "sambaSID"],
        may: &[
            "sambaNTPassword",
            "sambaPwdLastSet",
            "sambaAcctFlags",
            "sambaPrimaryGroupSID",
            "displayName",
        ],
    },
    ObjectClass {
        name: "sambaGroupMapping",
        oid: "1.3.6.1.4.1.7165.2.2.4",
        sup: "top",
        kind: "AUXILIARY",
        must: &["gidNumber", "sambaSID", "sambaGroupType"],
        may: &["displayName", "description"],
    },
    ObjectClass {
        name: "sambaDomain",
        oid: "1.3.6.1.4.1.7165.2.2.5",
        sup: "top",
        kind: "STRUCTURAL",
        must: &["sambaDomainName", "sambaSID"],
        may: &[],
    },
    ObjectClass {
        name: "subschema",
        oid: "2.5.20.1",
        sup: "top",
        kind: "AUXILIARY",
        must: &[],
        may: &[
            "objectClasses",
            "attributeTypes",
            "ldapSyntaxes",
            "matchingRules",
        ],
    },
];

/// RFC 4512 descriptions of every attribute type, for the subschema entry.
pub fn attribute_type_descriptions() -> Vec<String> {
    ATTRIBUTES
        .iter()
        .map(|a| {
            format!(
                "( {} NAME '{}' EQUALITY {} SYNTAX {}{}{} )",
                a.oid,
                a.name,
                a.syntax.equality(),
                a.syntax.oid(),
                if a.single { " SINGLE-VALUE" } else { "" },
                if a.operational {
                    " NO-USER-MODIFICATION USAGE directoryOperation"
                } else {
                    ""
                }
            )
        })
        .collect()
}

/// RFC 4512 descriptions of every object class.
pub fn object_class_descriptions() -> Vec<String> {
    let list = |v: &[&str]| match v.len() {
        0 => String::new(),
        1 => v[0].to_string(),
        _ => format!("( {} )", v.join(" $ ")),
    };
    OBJECT_CLASSES
        .iter()
        .map(|c| {
            let mut s = format!("( {} NAME '{}'", c.oid, c.name);
            if !c.sup.is_empty() {
                s.push_str(&format!(" SUP {}", c.sup));
            }
            s.push_str(&format!(" {}", c.kind));
            if !c.must.is_empty() {
                s.push_str(&format!(" MUST {}", list(c.must)));
            }
            if !c.may.is_empty() {
                s.push_str(&format!(" MAY {}", list(c.may)));
            }
            s.push_str(" )");
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_accept_oids() {
        assert_eq!(attribute("UIDNUMBER").unwrap().name, "uidNumber");
        assert_eq!(attribute("2.5.4.3").unwrap().name, "cn");
        assert!(attribute("nope").is_none());
        assert!(attribute(&"x".repeat(200)).is_none());
        assert!(attribute("Ünïcode").is_none());
        for a in ATTRIBUTES {
            assert!(std::ptr::eq(attribute(a.name).unwrap(), a));
            assert!(std::ptr::eq(attribute(a.oid).unwrap(), a));
        }
    }

    #[test]
    fn every_attribute_has_its_own_bit() {
        assert!(
            ATTRIBUTES.len() <= 128,
            "AttributeSet holds 128 attribute types"
        );
        let mut seen = AttributeSet::default();
        for a in ATTRIBUTES {
            assert!(!seen.contains(a), "{} shares a bit", a.name);
            seen.insert(a);
            assert!(seen.contains(a));
        }
        let mut one = AttributeSet::default();
        one.insert(attribute("uid").unwrap());
        assert!(!one.contains(attribute("cn").unwrap()));
        assert!(AttributeSet::ALL.contains(attribute("cn").unwrap()));
    }

    #[test]
    fn every_class_attribute_is_defined() {
        for c in OBJECT_CLASSES {
            for a in c.must.iter().chain(c.may.iter()) {
                assert!(attribute(a).is_some(), "{} uses undefined {}", c.name, a);
            }
        }
    }
}
