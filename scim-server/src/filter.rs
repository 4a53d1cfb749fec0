//! SCIM filters (RFC 7644 §3.4.2.2) and attribute paths (§3.5.2), parsed by recursive descent and evaluated
//! over a resource's JSON.
//!
//! # Grammar
//! ```text
//! filter   = or
//! or       = and *("or" and)
//! and      = unary *("and" unary)
//! unary    = "not" "(" filter ")" / "(" filter ")" / valuePath / attrExp
//! valuePath = attrPath "[" filter "]"
//! attrExp  = attrPath "pr" / attrPath op value        op = eq ne co sw ew gt ge lt le
//! attrPath = [schema-urn ":"] name ["." sub]
//! value    = "string" / number / true / false / null
//! ```
//! Keywords and attribute names are case-insensitive; string comparisons are too, except for the attributes
//! RFC 7643 marks caseExact (`id`, `externalId`, the `value` of group members). Nesting is limited to
//! [`MAX_DEPTH`] and filters to [`MAX_LEN`] characters, so a hostile filter cannot exhaust the stack.

use serde_json::Value;

pub const MAX_DEPTH: usize = 32;
pub const MAX_LEN: usize = 8192;

/// `[urn:]name[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// An extension schema URN (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`), lower-cased; the
    /// core schema URN is dropped.
    pub schema: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, Op, Value),
    /// `emails[type eq "work"]`: the inner filter applies to each element of the multi-valued attribute.
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH path (RFC 7644 §3.5.2): an attribute, optionally narrowed by a value filter, optionally a sub-attribute
/// of the matching elements.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// `emails[type eq "work"].value`
    pub sub: Option<String>,
}

/// Why a filter or path could not be read. Reported as `invalidFilter` or `invalidPath`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

const CORE_SCHEMAS: &[&str] = &[
    "urn:ietf:params:scim:schemas:core:2.0:user",
    "urn:ietf:params:scim:schemas:core:2.0:group",
];

/// Split `urn:…:name.sub` into its schema and attribute.
pub fn attr_path(text: &str) -> Result<AttrPath, ParseError> {
    let text = text.trim();
    let (schema, rest) = if text.to_ascii_lowercase().starts_with("urn:") {
        match text.rfind(':') {
            Some(i) => (Some(text[..i].to_ascii_lowercase()), &text[i + 1..]),
            None => return Err(ParseError(format!("`{text}` is not an attribute path"))),
        }
    } else {
        (None, text)
    };
    let schema = schema.filter(|s| !CORE_SCHEMAS.contains(&s.as_str()));
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '$')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    if !valid(name) || sub.is_some_and(|s| !valid(s)) {
        return Err(ParseError(format!("`{text}` is not an attribute path")));
    }
    Ok(AttrPath {
        schema,
        name: name.to_string(),
        sub: sub.map(str::to_string),
    })
}

struct Parser<'a> {
    src: &'a str,
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, what: &str) -> Result<T, ParseError> {
        Err(ParseError(format!(
            "{what} at position {} of the filter",
            self.at
        )))
    }

    fn skip_ws(&mut self) {
        while self.src[self.at..].starts_with([' ', '\t', '\n', '\r']) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    /// A bare word: attribute path, keyword, number, true/false/null.
    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let start = self.at;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"') {
                break;
            }
            self.at += c.len_utf8();
        }
        &self.src[start..self.at]
    }

    fn keyword(&mut self, kw: &str) -> bool {
        let save = self.at;
        if self.word().eq_ignore_ascii_case(kw) {
            true
        } else {
            self.at = save;
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            self.err(&format!("expected `{c}`"))
        }
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("filter nests too deeply");
        }
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ParseError> {
        self.skip_ws();
        if self.peek() == Some('(') {
            self.at += 1;
            let f = self.or()?;
            self.expect(')')?;
            return Ok(f);
        }
        let save = self.at;
        if self.keyword("not") {
            self.skip_ws();
            if self.peek() == Some('(') {
                self.at += 1;
                let f = self.or()?;
                self.expect(')')?;
                return Ok(Filter::Not(Box::new(f)));
            }
            self.at = save;
        }
        let word = self.word();
        if word.is_empty() {
            return self.err("expected an attribute");
        }
        let path = attr_path(word)?;
        self.skip_ws();
        if self.peek() == Some('[') {
            self.at += 1;
            let inner = self.or()?;
            self.expect(']')?;
            // `emails[type eq "work"].value eq "…"` (what Entra sends): an element that matches the bracket and
            // whose sub-attribute compares.
            if self.peek() == Some('.') {
                self.at += 1;
                let sub = self.word();
                if sub.is_empty() || sub.contains(['.', ':']) {
                    return self.err("expected a sub-attribute after `].`");
                }
                let sub = AttrPath {
                    schema: None,
                    name: sub.to_string(),
                    sub: None,
                };
                let last = self.comparison(sub)?;
                return Ok(Filter::ValuePath(
                    path,
                    Box::new(Filter::And(Box::new(inner), Box::new(last))),
                ));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.comparison(path)
    }

    /// `op value` (or `pr`) after an attribute path.
    fn comparison(&mut self, path: AttrPath) -> Result<Filter, ParseError> {
        self.skip_ws();
        let op = self.word().to_ascii_lowercase();
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return self.err("expected an operator (eq ne co sw ew gt ge lt le pr)"),
        };
        let value = self.value()?;
        Ok(Filter::Compare(path, op, value))
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.skip_ws();
        if self.peek() == Some('"') {
            // A JSON string, escapes included.
            let start = self.at;
            self.at += 1;
            let mut escaped = false;
            while let Some(c) = self.peek() {
                self.at += c.len_utf8();
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        return serde_json::from_str(&self.src[start..self.at])
                            .map_err(|_| ParseError("malformed string in the filter".into()));
                    }
                    _ => {}
                }
            }
            return self.err("unterminated string");
        }
        let w = self.word();
        match w.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "null" => Ok(Value::Null),
            _ => match serde_json::from_str::<serde_json::Number>(w) {
                Ok(n) => Ok(Value::Number(n)),
                Err(_) => self.err("expected a value (string, number, true, false or null)"),
            },
        }
    }
}

/// Parse a filter expression.
pub fn parse(text: &str) -> Result<Filter, ParseError> {
    if text.len() > MAX_LEN {
        return Err(ParseError(format!(
            "filter longer than {MAX_LEN} characters"
        )));
    }
    let mut p = Parser {
        src: text,
        at: 0,
        depth: 0,
    };
    let f = p.or()?;
    p.skip_ws();
    if p.at != text.len() {
        return p.err("unexpected text");
    }
    Ok(f)
}

/// Parse a PATCH path.
pub fn parse_path(text: &str) -> Result<PatchPath, ParseError> {
    let text = text.trim();
    let Some(open) = text.find('[') else {
        return Ok(PatchPath {
            attr: attr_path(text)?,
            filter: None,
            sub: None,
        });
    };
    let close = text
        .rfind(']')
        .filter(|c| *c > open)
        .ok_or_else(|| ParseError(format!("`{text}`: unbalanced `[`")))?;
    let attr = attr_path(&text[..open])?;
    if attr.sub.is_some() {
        return Err(ParseError(format!(
            "`{text}`: a value filter applies to an attribute"
        )));
    }
    let filter = parse(&text[open + 1..close])?;
    let rest = &text[close + 1..];
    let sub = match rest.strip_prefix('.') {
        Some(s) if attr_path(s).is_ok_and(|p| p.sub.is_none() && p.schema.is_none()) => {
            Some(s.to_string())
        }
        None if rest.is_empty() => None,
        _ => return Err(ParseError(format!("`{text}`: unexpected text after `]`"))),
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// The key of `obj` matching `name` case-insensitively.
pub fn key_of<'v>(obj: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name))
}

fn get<'v>(obj: &'v Value, name: &str) -> Option<&'v Value> {
    let o = obj.as_object()?;
    key_of(o, name).and_then(|k| o.get(k))
}

/// The object an attribute path starts from: the resource itself, or its extension object.
pub fn container<'v>(resource: &'v Value, path: &AttrPath) -> Option<&'v Value> {
    match &path.schema {
        None => Some(resource),
        Some(urn) => get(resource, urn),
    }
}

fn case_exact(path: &AttrPath) -> bool {
    let n = path.name.to_ascii_lowercase();
    matches!(n.as_str(), "id" | "externalid" | "password")
        || (n == "members"
            && path
                .sub
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("value")))
}

/// Every value the path names in `resource` (multi-valued attributes give several).
fn values<'v>(resource: &'v Value, path: &AttrPath) -> Vec<&'v Value> {
    let Some(attr) = container(resource, path).and_then(|c| get(c, &path.name)) else {
        return Vec::new();
    };
    match attr {
        // Elements of a multi-valued attribute: a complex one compared as a whole is its `value`
        // (RFC 7644 §3.4.2.2).
        Value::Array(items) => items
            .iter()
            .filter_map(|v| match (&path.sub, v) {
                (Some(sub), v) => get(v, sub),
                (None, Value::Object(_)) => get(v, "value"),
                (None, v) => Some(v),
            })
            .collect(),
        single => match &path.sub {
            Some(sub) => get(single, sub).into_iter().collect(),
            None => vec![single],
        },
    }
}

fn compare(actual: &Value, op: Op, wanted: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let order = match (actual, wanted) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                Op::Co => return a.contains(&b),
                Op::Sw => return a.starts_with(&b),
                Op::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => return false,
        },
        (Value::Bool(a), Value::Bool(b)) => match op {
            Op::Eq => return a == b,
            Op::Ne => return a != b,
            _ => return false,
        },
        _ => return op == Op::Ne,
    };
    match op {
        Op::Eq => order == Ordering::Equal,
        Op::Ne => order != Ordering::Equal,
        Op::Gt => order == Ordering::Greater,
        Op::Ge => order != Ordering::Less,
        Op::Lt => order == Ordering::Less,
        Op::Le => order != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Does `resource` match?
pub fn matches(f: &Filter, resource: &Value) -> bool {
    match f {
        Filter::And(a, b) => matches(a, resource) && matches(b, resource),
        Filter::Or(a, b) => matches(a, resource) || matches(b, resource),
        Filter::Not(a) => !matches(a, resource),
        Filter::Present(p) => values(resource, p).into_iter().any(present),
        Filter::Compare(p, op, wanted) => {
            let found = values(resource, p);
            if wanted.is_null() {
                let absent = !found.iter().any(|v| present(v));
                return match op {
                    Op::Eq => absent,
                    Op::Ne => !absent,
                    _ => false,
                };
            }
            let exact = case_exact(p);
            match op {
                // `ne` holds when no value equals.
                Op::Ne => !found.iter().any(|v| compare(v, Op::Eq, wanted, exact)),
                _ => found.iter().any(|v| compare(v, *op, wanted, exact)),
            }
        }
        Filter::ValuePath(p, inner) => {
            let Some(attr) = container(resource, p).and_then(|c| get(c, &p.name)) else {
                return false;
            };
            match attr {
                Value::Array(items) => items.iter().any(|item| matches(inner, item)),
                item => matches(inner, item),
            }
        }
    }
}

/// An index look-up that finds every resource a filter can match (and perhaps more: the filter is still applied
/// to each one found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Id(&'a str),
    /// Users: `userName` (the login name or user name, case-insensitive).
    UserName(&'a str),
    /// Users: the e-mail address (case-insensitive; Stratus keeps one per user).
    Email(&'a str),
    ExternalId(&'a str),
    /// Groups: `displayName` (the group name, case-insensitive).
    DisplayName(&'a str),
    /// Groups: those with this user id among their members.
    Member(&'a str),
}

fn plain(p: &AttrPath, name: &str) -> bool {
    (p.schema.is_none()
        || p.schema
            .as_deref()
            .is_some_and(|s| CORE_SCHEMAS.iter().any(|c| c.eq_ignore_ascii_case(s))))
        && p.name.eq_ignore_ascii_case(name)
}

/// `attribute eq "text"` → the attribute path and the text.
fn equals(f: &Filter) -> Option<(&AttrPath, &str)> {
    match f {
        Filter::Compare(p, Op::Eq, Value::String(s)) => Some((p, s)),
        _ => None,
    }
}

/// The index look-ups that together find every resource `f` can match, or `None` when one must scan: the
/// filters Okta and Entra send (`userName eq`, `externalId eq`, `emails[type eq "work"].value eq`, `id eq`;
/// on Groups `displayName eq`, `members[value eq …]`), alone, under `and` (one side suffices) or `or` (both
/// sides must be indexed).
pub fn lookups(f: &Filter, groups: bool) -> Option<Vec<Lookup<'_>>> {
    match f {
        Filter::And(a, b) => lookups(a, groups).or_else(|| lookups(b, groups)),
        Filter::Or(a, b) => {
            let mut all = lookups(a, groups)?;
            all.extend(lookups(b, groups)?);
            Some(all)
        }
        Filter::Compare(..) => {
            let (p, v) = equals(f)?;
            let value_sub = p
                .sub
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("value"));
            let found = if plain(p, "id") && p.sub.is_none() {
                Lookup::Id(v)
            } else if plain(p, "externalId") && p.sub.is_none() {
                Lookup::ExternalId(v)
            } else if !groups && plain(p, "userName") && p.sub.is_none() {
                Lookup::UserName(v)
            } else if !groups && plain(p, "emails") && value_sub {
                Lookup::Email(v)
            } else if groups && plain(p, "displayName") && p.sub.is_none() {
                Lookup::DisplayName(v)
            } else if groups && plain(p, "members") && value_sub {
                Lookup::Member(v)
            } else {
                return None;
            };
            Some(vec![found])
        }
        // `emails[type eq "work" and value eq "…"]`, `members[value eq "…"]`: the element's `value`.
        Filter::ValuePath(p, inner) => {
            let attr = if !groups && plain(p, "emails") {
                "emails"
            } else if groups && plain(p, "members") {
                "members"
            } else {
                return None;
            };
            let v = value_equals(inner)?;
            Some(vec![if attr == "emails" {
                Lookup::Email(v)
            } else {
                Lookup::Member(v)
            }])
        }
        Filter::Not(_) | Filter::Present(_) => None,
    }
}

/// Inside brackets: the text a `value eq "…"` requires (alone or under `and`).
fn value_equals(f: &Filter) -> Option<&str> {
    match f {
        Filter::And(a, b) => value_equals(a).or_else(|| value_equals(b)),
        _ => {
            let (p, v) = equals(f)?;
            (p.schema.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value"))
                .then_some(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({"userName": "Bjensen", "id": "ABC", "active": true, "name": {"givenName": "Barbara"},
               "emails": [{"value": "bjensen@example.com", "type": "work"}, {"value": "babs@home.org", "type": "home"}],
               "meta": {"lastModified": "2026-01-02T00:00:00Z"},
               "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701", "department": "Tour"}})
    }

    fn ok(f: &str) -> bool {
        matches(&parse(f).unwrap_or_else(|e| panic!("{f}: {e}")), &user())
    }

    #[test]
    fn rfc_examples_evaluate() {
        assert!(ok(r#"userName eq "bjensen""#));
        assert!(ok(r#"USERNAME Eq "BJENSEN""#));
        assert!(!ok(r#"id eq "abc""#), "id is case-exact");
        assert!(ok(r#"name.givenName sw "bar""#));
        assert!(ok(r#"userName co "jen" and active eq true"#));
        assert!(ok(r#"emails[type eq "work" and value co "@example.com"]"#));
        assert!(!ok(r#"emails[type eq "work" and value co "@home.org"]"#));
        assert!(ok(r#"emails.value ew ".org""#));
        assert!(ok(r#"emails co "babs""#));
        assert!(ok(r#"meta.lastModified gt "2025-12-31T00:00:00Z""#));
        assert!(ok(
            r#"not (userName eq "x") and (active eq false or title pr or name pr)"#
        ));
        assert!(ok(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701""#
        ));
        assert!(ok(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen""#
        ));
        assert!(ok(r#"title eq null"#));
        assert!(ok(r#"userName ne "other""#));
        assert!(!ok(r#"title pr"#));
    }

    #[test]
    fn malformed_filters_are_refused_with_a_position() {
        for f in [
            "",
            "userName",
            "userName eq",
            r#"userName xx "a""#,
            r#"(userName eq "a""#,
            r#"userName eq "a" and"#,
            r#"emails[type eq "work""#,
            r#"userName eq "unterminated"#,
            "1bad eq 1",
            r#"userName eq "a" garbage"#,
        ] {
            assert!(parse(f).is_err(), "{f} should not parse");
        }
        let deep = format!("{}userName pr{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
        assert!(parse(&"a".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn indexed_lookups_are_recognised() {
        let users = |t: &str| {
            lookups(&parse(t).unwrap_or_else(|e| panic!("{t}: {e}")), false)
                .map(|l| format!("{l:?}"))
        };
        let groups = |t: &str| {
            lookups(&parse(t).unwrap_or_else(|e| panic!("{t}: {e}")), true)
                .map(|l| format!("{l:?}"))
        };
        assert_eq!(
            users(r#"userName eq "Ann""#).as_deref(),
            Some(r#"[UserName("Ann")]"#)
        );
        for text in [
            r#"emails.value eq "a@x.org""#,
            r#"EMAILS eq "a@x.org""#,
            r#"emails[type eq "work"].value eq "a@x.org""#,
            r#"emails[type eq "work" and value eq "a@x.org"]"#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:emails.value eq "a@x.org""#,
        ] {
            assert_eq!(
                users(text).as_deref(),
                Some(r#"[Email("a@x.org")]"#),
                "{text}"
            );
        }
        assert_eq!(
            users(r#"externalId eq "E1""#).as_deref(),
            Some(r#"[ExternalId("E1")]"#)
        );
        assert_eq!(
            users(r#"userName eq "a" or externalId eq "b""#).as_deref(),
            Some(r#"[UserName("a"), ExternalId("b")]"#)
        );
        assert_eq!(
            users(r#"active eq true and userName eq "a""#).as_deref(),
            Some(r#"[UserName("a")]"#)
        );
        assert_eq!(
            groups(r#"displayName eq "Staff""#).as_deref(),
            Some(r#"[DisplayName("Staff")]"#)
        );
        assert_eq!(
            groups(r#"members[value eq "U1"]"#).as_deref(),
            Some(r#"[Member("U1")]"#)
        );
        assert_eq!(
            groups(r#"members.value eq "U1""#).as_deref(),
            Some(r#"[Member("U1")]"#)
        );
        // What no index serves: a scan.
        for text in [
            r#"emails.type eq "work""#,
            r#"userName co "a""#,
            r#"userName eq "a" or active eq true"#,
            r#"not (userName eq "a")"#,
            r#"displayName eq "Staff""#,
        ] {
            assert_eq!(users(text), None, "{text}");
        }
        assert_eq!(groups(r#"userName eq "a""#), None);
    }

    #[test]
    fn a_sub_attribute_after_brackets_is_read_and_matched() {
        assert!(ok(
            r#"emails[type eq "work"].value eq "bjensen@example.com""#
        ));
        assert!(!ok(
            r#"emails[type eq "home"].value eq "bjensen@example.com""#
        ));
        assert!(ok(r#"emails[type eq "home"].value co "home.org""#));
        assert!(ok(r#"emails[type eq "work"].value pr"#));
        for bad in [
            r#"emails[type eq "work"]."#,
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work"].a.b eq "x""#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_paths_parse() {
        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(
            (p.attr.name.as_str(), p.sub.as_deref()),
            ("emails", Some("value"))
        );
        assert!(p.filter.is_some());
        let p =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
                .unwrap();
        assert_eq!(
            p.attr.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user")
        );
        assert_eq!(
            (p.attr.name.as_str(), p.attr.sub.as_deref()),
            ("manager", Some("value"))
        );
        assert!(parse_path("members[value eq \"x\"]").is_ok());
        assert!(parse_path("members[value eq \"x\"").is_err());
        assert!(parse_path("na me").is_err());
    }
}
