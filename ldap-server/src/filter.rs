//! Search filters (RFC 4511 §4.5.1.7): evaluation by attribute syntax with three-valued logic, and planning —
//! which users and groups can match at all, from the core snapshot's indexes — so that an equality on uid, mail,
//! uidNumber, gidNumber, cn (groups), memberUid, member or memberOf never scans the directory.

use crate::dn;
use crate::entry::{Entry, EntryRef, Tree};
use crate::schema::{self, Syntax};
use core_directory::Id;
use ldap3_proto::proto::LdapFilter;
use std::collections::HashSet;

/// RFC 4511 filter result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    True,
    False,
    Undefined,
}

/// caseIgnoreMatch and its IA5 twin: case and insignificant spaces do not count (RFC 4518 §2.6.1).
pub(crate) fn fold(v: &str) -> String {
    v.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn equal(syntax: Syntax, a: &str, b: &str) -> Option<bool> {
    Some(match syntax {
        Syntax::Integer => a.trim().parse::<i64>().ok()? == b.trim().parse::<i64>().ok()?,
        Syntax::Dn => dn::normalize(a)? == dn::normalize(b)?,
        Syntax::Octets | Syntax::Time => a == b,
        Syntax::CaseIgnore | Syntax::CaseIgnoreIa5 | Syntax::Oid => fold(a) == fold(b),
    })
}

fn order(syntax: Syntax, value: &str, assertion: &str) -> Option<std::cmp::Ordering> {
    Some(match syntax {
        Syntax::Integer => value
            .trim()
            .parse::<i64>()
            .ok()?
            .cmp(&assertion.trim().parse::<i64>().ok()?),
        Syntax::Time | Syntax::Octets => value.cmp(assertion),
        Syntax::CaseIgnore | Syntax::CaseIgnoreIa5 => fold(value).cmp(&fold(assertion)),
        Syntax::Dn | Syntax::Oid => return None,
    })
}

fn any(values: &[String], test: impl Fn(&str) -> Option<bool>) -> Truth {
    let mut undefined = false;
    for v in values {
        match test(v) {
            Some(true) => return Truth::True,
            Some(false) => {}
            None => undefined = true,
        }
    }
    if undefined {
        Truth::Undefined
    } else {
        Truth::False
    }
}

/// Evaluate a filter against an entry.
pub fn eval(f: &LdapFilter, e: &Entry) -> Truth {
    match f {
        LdapFilter::And(items) => {
            let mut out = Truth::True;
            for i in items {
                match eval(i, e) {
                    Truth::False => return Truth::False,
                    Truth::Undefined => out = Truth::Undefined,
                    Truth::True => {}
                }
            }
            out
        }
        LdapFilter::Or(items) => {
            let mut out = Truth::False;
            for i in items {
                match eval(i, e) {
                    Truth::True => return Truth::True,
                    Truth::Undefined => out = Truth::Undefined,
                    Truth::False => {}
                }
            }
            out
        }
        LdapFilter::Not(inner) => match eval(inner, e) {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Undefined => Truth::Undefined,
        },
        LdapFilter::Present(a) => match schema::attribute(a) {
            Some(at) if e.get(at).is_some() => Truth::True,
            _ => Truth::False,
        },
        LdapFilter::Equality(a, v) | LdapFilter::Approx(a, v) => {
            with_values(a, e, |at, vals| any(vals, |x| equal(at.syntax, x, v)))
        }
        LdapFilter::GreaterOrEqual(a, v) => with_values(a, e, |at, vals| {
            any(vals, |x| order(at.syntax, x, v).map(|o| o.is_ge()))
        }),
        LdapFilter::LessOrEqual(a, v) => with_values(a, e, |at, vals| {
            any(vals, |x| order(at.syntax, x, v).map(|o| o.is_le()))
        }),
        LdapFilter::Substring(a, sub) => with_values(a, e, |at, vals| {
            if matches!(at.syntax, Syntax::Integer | Syntax::Dn) {
                return Truth::Undefined;
            }
            let initial = sub.initial.as_deref().map(fold);
            let parts: Vec<String> = sub.any.iter().map(|s| fold(s)).collect();
            let last = sub.final_.as_deref().map(fold);
            any(vals, |x| {
                Some(substring_match(
                    &fold(x),
                    initial.as_deref(),
                    &parts,
                    last.as_deref(),
                ))
            })
        }),
        LdapFilter::Extensible(_) => Truth::Undefined,
    }
}

fn with_values(
    attr: &str,
    e: &Entry,
    f: impl Fn(&schema::AttributeType, &[String]) -> Truth,
) -> Truth {
    match schema::attribute(attr) {
        None => Truth::Undefined,
        Some(at) => match e.get(at) {
            None => Truth::False,
            Some(vals) => f(at, vals),
        },
    }
}

fn substring_match(value: &str, initial: Option<&str>, any: &[String], last: Option<&str>) -> bool {
    let mut rest = value;
    if let Some(i) = initial {
        match rest.strip_prefix(i) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for part in any {
        match rest.find(part.as_str()) {
            Some(pos) => rest = &rest[pos + part.len()..],
            None => return false,
        }
    }
    match last {
        Some(l) => rest.ends_with(l),
        None => true,
    }
}

/// Candidates of one kind: every entry of the kind, or a known set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidates {
    All,
    Only(HashSet<Id>),
}

impl Candidates {
    fn none() -> Self {
        Candidates::Only(HashSet::new())
    }

    fn one(id: Option<Id>) -> Self {
        Candidates::Only(id.into_iter().collect())
    }

    fn and(self, other: Self) -> Self {
        match (self, other) {
            (Candidates::All, x) | (x, Candidates::All) => x,
            (Candidates::Only(a), Candidates::Only(b)) => {
                Candidates::Only(a.intersection(&b).cloned().collect())
            }
        }
    }

    fn or(self, other: Self) -> Self {
        match (self, other) {
            (Candidates::All, _) | (_, Candidates::All) => Candidates::All,
            (Candidates::Only(mut a), Candidates::Only(b)) => {
                a.extend(b);
                Candidates::Only(a)
            }
        }
    }
}

/// Which entries of each kind can match a filter.
#[derive(Debug, Clone)]
pub struct Plan {
    pub users: Candidates,
    pub groups: Candidates,
    /// The fixed entries (suffix, ou=Users, Samba domain) may match.
    pub fixed: bool,
}

impl Plan {
    fn all() -> Self {
        Plan {
            users: Candidates::All,
            groups: Candidates::All,
            fixed: true,
        }
    }

    fn and(self, o: Plan) -> Plan {
        Plan {
            users: self.users.and(o.users),
            groups: self.groups.and(o.groups),
            fixed: self.fixed && o.fixed,
        }
    }

    fn or(self, o: Plan) -> Plan {
        Plan {
            users: self.users.or(o.users),
            groups: self.groups.or(o.groups),
            fixed: self.fixed || o.fixed,
        }
    }

    /// Whether an entry is a candidate.
    pub fn admits(&self, r: &EntryRef) -> bool {
        let within = |c: &Candidates, id: &Id| match c {
            Candidates::All => true,
            Candidates::Only(s) => s.contains(id),
        };
        match r {
            EntryRef::User(id) => within(&self.users, id),
            EntryRef::Group(id) => within(&self.groups, id),
            _ => self.fixed,
        }
    }
}

const USER_CLASSES: &[&str] = &[
    "person",
    "organizationalperson",
    "inetorgperson",
    "posixaccount",
    "shadowaccount",
    "sambasamaccount",
];
const GROUP_CLASSES: &[&str] = &["groupofnames", "posixgroup", "sambagroupmapping"];

/// Plan a filter using the snapshot's indexes.
pub fn plan(f: &LdapFilter, tree: &Tree) -> Plan {
    match f {
        LdapFilter::And(items) => items.iter().fold(Plan::all(), |p, i| p.and(plan(i, tree))),
        LdapFilter::Or(items) if !items.is_empty() => {
            let mut it = items.iter();
            let first = it.next().map(|i| plan(i, tree)).unwrap_or_else(Plan::all);
            it.fold(first, |p, i| p.or(plan(i, tree)))
        }
        LdapFilter::Equality(a, v) => plan_equality(a, v, tree),
        _ => Plan::all(),
    }
}

fn plan_equality(attr: &str, value: &str, tree: &Tree) -> Plan {
    let snap = tree.snap;
    let Some(at) = schema::attribute(attr) else {
        return Plan::all();
    };
    let only_users = |users: Candidates| Plan {
        users,
        groups: Candidates::none(),
        fixed: false,
    };
    let only_groups = |groups: Candidates| Plan {
        users: Candidates::none(),
        groups,
        fixed: false,
    };
    let user_of_dn = |text: &str| match tree.resolve(text) {
        Some(EntryRef::User(id)) => Some(id),
        _ => None,
    };
    match at.name {
        "uid" => only_users(Candidates::one(
            snap.user_by_username(value).map(|u| u.id.clone()),
        )),
        "mail" => only_users(Candidates::one(
            snap.user_by_mail(value).map(|u| u.id.clone()),
        )),
        "uidNumber" => match value.trim().parse::<u32>() {
            Ok(n) => only_users(Candidates::one(
                snap.user_by_uid_number(n).map(|u| u.id.clone()),
            )),
            Err(_) => only_users(Candidates::none()),
        },
        "gidNumber" => match value.trim().parse::<u32>() {
            // Users' gidNumber has no index; groups' has.
            Ok(n) => Plan {
                users: Candidates::All,
                groups: Candidates::one(snap.group_by_gid.get(&n).cloned()),
                fixed: false,
            },
            Err(_) => Plan {
                users: Candidates::none(),
                groups: Candidates::none(),
                fixed: false,
            },
        },
        "memberUid" => only_groups(Candidates::Only(
            snap.user_by_username(value)
                .map(|u| snap.groups_of(&u.id).map(|g| g.id.clone()).collect())
                .unwrap_or_default(),
        )),
        "member" => only_groups(Candidates::Only(
            user_of_dn(value)
                .map(|id| snap.groups_of(&id).map(|g| g.id.clone()).collect())
                .unwrap_or_default(),
        )),
        "memberOf" => only_users(Candidates::Only(match tree.resolve(value) {
            Some(EntryRef::Group(g)) => snap.members_of(&g).map(|u| u.id.clone()).collect(),
            _ => HashSet::new(),
        })),
        "objectClass" => {
            let class = value.trim().to_ascii_lowercase();
            if class == "top" {
                Plan::all()
            } else if USER_CLASSES.contains(&class.as_str()) {
                only_users(Candidates::All)
            } else if GROUP_CLASSES.contains(&class.as_str()) {
                only_groups(Candidates::All)
            } else {
                Plan {
                    users: Candidates::none(),
                    groups: Candidates::none(),
                    fixed: true,
                }
            }
        }
        // A group's cn is its unique name; users' cn (display name) has no index.
        "cn" => Plan {
            users: Candidates::All,
            groups: Candidates::one(snap.group_by_group_name(value).map(|g| g.id.clone())),
            fixed: true,
        },
        _ => Plan::all(),
    }
}

/// The attribute types a filter reads (names outside the schema read nothing: they evaluate to Undefined).
pub fn attributes(f: &LdapFilter) -> schema::AttributeSet {
    let mut set = schema::AttributeSet::default();
    let mut stack = vec![f];
    while let Some(f) = stack.pop() {
        let name = match f {
            LdapFilter::And(items) | LdapFilter::Or(items) => {
                stack.extend(items.iter());
                continue;
            }
            LdapFilter::Not(inner) => {
                stack.push(inner);
                continue;
            }
            LdapFilter::Present(a)
            | LdapFilter::Equality(a, _)
            | LdapFilter::Approx(a, _)
            | LdapFilter::GreaterOrEqual(a, _)
            | LdapFilter::LessOrEqual(a, _)
            | LdapFilter::Substring(a, _) => a,
            LdapFilter::Extensible(_) => continue,
        };
        if let Some(at) = schema::attribute(name) {
            set.insert(at);
        }
    }
    set
}

/// Number of nodes in a filter, to refuse absurd ones before evaluating them against every entry.
pub fn size(f: &LdapFilter) -> usize {
    match f {
        LdapFilter::And(v) | LdapFilter::Or(v) => 1 + v.iter().map(size).sum::<usize>(),
        LdapFilter::Not(i) => 1 + size(i),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::proto::LdapSubstringFilter;

    fn entry() -> Entry {
        let mut e = Entry::of("uid=alice,ou=Users,o=x".into(), Vec::new());
        let mut put = |n: &str, v: &[&str]| {
            e.attrs.push((
                schema::attribute(n).unwrap(),
                v.iter().map(|s| s.to_string()).collect(),
            ));
        };
        put("uid", &["alice"]);
        put("cn", &["Alice  Smith"]);
        put("uidNumber", &["5000"]);
        put("objectClass", &["top", "posixAccount"]);
        put("memberOf", &["cn=Eng,ou=Users,o=x"]);
        e
    }

    fn eq(a: &str, v: &str) -> LdapFilter {
        LdapFilter::Equality(a.into(), v.into())
    }

    #[test]
    fn matching_follows_attribute_syntax() {
        let e = entry();
        assert_eq!(eval(&eq("UID", "ALICE"), &e), Truth::True);
        assert_eq!(
            eval(&eq("cn", "alice smith"), &e),
            Truth::True,
            "spaces folded"
        );
        assert_eq!(
            eval(&eq("uidNumber", "05000"), &e),
            Truth::True,
            "integer match"
        );
        assert_eq!(
            eval(
                &LdapFilter::GreaterOrEqual("uidNumber".into(), "999".into()),
                &e
            ),
            Truth::True
        );
        assert_eq!(
            eval(
                &LdapFilter::LessOrEqual("uidNumber".into(), "999".into()),
                &e
            ),
            Truth::False
        );
        assert_eq!(
            eval(&eq("memberOf", "CN=eng, ou=users,O=X"), &e),
            Truth::True,
            "DN match"
        );
        assert_eq!(eval(&eq("objectclass", "POSIXACCOUNT"), &e), Truth::True);
        assert_eq!(eval(&eq("uidNumber", "abc"), &e), Truth::Undefined);
        assert_eq!(eval(&eq("nosuchattr", "x"), &e), Truth::Undefined);
        assert_eq!(
            eval(&LdapFilter::Not(Box::new(eq("nosuchattr", "x"))), &e),
            Truth::Undefined
        );
        assert_eq!(eval(&LdapFilter::Present("mail".into()), &e), Truth::False);
    }

    #[test]
    fn substrings_and_boolean_logic() {
        let e = entry();
        let sub = LdapFilter::Substring(
            "cn".into(),
            LdapSubstringFilter {
                initial: Some("al".into()),
                any: vec!["ce".into()],
                final_: Some("TH".into()),
            },
        );
        assert_eq!(eval(&sub, &e), Truth::True);
        let and = LdapFilter::And(vec![eq("uid", "alice"), eq("uid", "bob")]);
        assert_eq!(eval(&and, &e), Truth::False);
        let or = LdapFilter::Or(vec![eq("nosuch", "x"), eq("uid", "alice")]);
        assert_eq!(eval(&or, &e), Truth::True);
        let or = LdapFilter::Or(vec![eq("nosuch", "x"), eq("uid", "bob")]);
        assert_eq!(eval(&or, &e), Truth::Undefined);
    }

    #[test]
    fn candidates_combine() {
        let a: HashSet<Id> = [Id::generate()].into_iter().collect();
        assert_eq!(
            Candidates::All.and(Candidates::Only(a.clone())),
            Candidates::Only(a.clone())
        );
        assert_eq!(
            Candidates::Only(a.clone()).or(Candidates::All),
            Candidates::All
        );
        assert_eq!(
            Candidates::Only(a.clone()).and(Candidates::none()),
            Candidates::none()
        );
    }
}
