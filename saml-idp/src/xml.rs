//! A strict, small XML reader and the exclusive canonicalisation (xml-exc-c14n, without comments) both signing and
//! verifying use.
//!
//! The reader refuses DTDs (so no entity can be declared, let alone expanded), unknown entity references,
//! processing instructions inside the document, unbound prefixes, duplicate attributes, and documents past the
//! depth, node and attribute limits. Comments are dropped (they are not part of the canonical form). Namespace
//! prefixes are kept as written, because the canonical form depends on them.

use std::sync::Arc;

pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

/// Bounds on what a document may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_nodes: usize,
    pub max_attributes: usize,
    /// Namespace declarations in the whole document (each declaring element copies its scope).
    pub max_namespace_declarations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024,
            max_depth: 32,
            max_nodes: 10_000,
            max_attributes: 64,
            max_namespace_declarations: 128,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the XML is not well-formed: {0}")]
    Syntax(String),
    #[error("DTDs and entity declarations are not accepted")]
    Dtd,
    #[error("processing instructions are not accepted")]
    ProcessingInstruction,
    #[error("the XML exceeds the {0} limit")]
    TooLarge(&'static str),
    #[error("namespace prefix `{0}` is not declared")]
    UnboundPrefix(String),
    #[error("unknown entity `&{0};`")]
    UnknownEntity(String),
    #[error("attribute `{0}` appears twice")]
    DuplicateAttribute(String),
}

/// An attribute: prefix as written, local name, namespace URI (empty for unprefixed attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub prefix: String,
    pub name: String,
    pub ns: String,
    pub value: String,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An element with its namespace resolved and the namespace declarations in scope where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub prefix: String,
    pub name: String,
    pub ns: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
    /// Prefix → namespace bindings in scope (the default namespace under the empty prefix).
    pub in_scope: Arc<Vec<(String, String)>>,
}

impl Element {
    /// A new element `prefix:name` in namespace `ns`, for building documents.
    pub fn new(prefix: &str, name: &str, ns: &str) -> Self {
        Element {
            prefix: prefix.to_string(),
            name: name.to_string(),
            ns: ns.to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
            in_scope: Arc::new(Vec::new()),
        }
    }

    /// Add an unqualified attribute.
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attrs.push(Attr {
            prefix: String::new(),
            name: name.to_string(),
            ns: String::new(),
            value: value.into(),
        });
        self
    }

    /// Add an attribute when `value` is present.
    pub fn attr_opt(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    pub fn child(mut self, e: Element) -> Self {
        self.children.push(Node::Element(e));
        self
    }

    pub fn text(mut self, t: impl Into<String>) -> Self {
        self.children.push(Node::Text(t.into()));
        self
    }

    /// An unqualified attribute's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Child elements named `ns`:`name`.
    pub fn all<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.is(ns, name))
    }

    /// The first child element named `ns`:`name`.
    pub fn first(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// The concatenated text of this element's direct text children.
    pub fn text_content(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Every element of the tree (this one first), depth first.
    pub fn descendants(&self) -> Vec<&Element> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            let e = out[i];
            out.extend(e.elements());
            i += 1;
        }
        out
    }

    fn lookup(&self, prefix: &str) -> Option<&str> {
        self.in_scope
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }
}

struct Open {
    el: Element,
}

/// A raw attribute as tokenised: prefix, local name, decoded value.
type RawAttr = (String, String, String);

/// Parse a document into its root element.
pub fn parse(text: &str, limits: Limits) -> Result<Element, XmlError> {
    if text.len() > limits.max_bytes {
        return Err(XmlError::TooLarge("size"));
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Element> = None;
    let mut nodes = 0usize;
    let mut declarations = 0usize;
    // The element being opened: its name, and raw attributes until `>` or `/>`.
    let mut pending: Option<(String, String, Vec<RawAttr>)> = None;
    for token in xmlparser::Tokenizer::from(text) {
        let token = token.map_err(|e| XmlError::Syntax(e.to_string()))?;
        use xmlparser::Token;
        match token {
            Token::Declaration { .. } | Token::Comment { .. } => {}
            Token::ProcessingInstruction { .. } => return Err(XmlError::ProcessingInstruction),
            Token::DtdStart { .. }
            | Token::EmptyDtd { .. }
            | Token::EntityDeclaration { .. }
            | Token::DtdEnd { .. } => return Err(XmlError::Dtd),
            Token::ElementStart { prefix, local, .. } => {
                if root.is_some() {
                    return Err(XmlError::Syntax("content after the root element".into()));
                }
                nodes += 1;
                if nodes > limits.max_nodes {
                    return Err(XmlError::TooLarge("node"));
                }
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooLarge("depth"));
                }
                pending = Some((prefix.as_str().into(), local.as_str().into(), Vec::new()));
            }
            Token::Attribute {
                prefix,
                local,
                value,
                ..
            } => {
                let Some((_, _, attrs)) = pending.as_mut() else {
                    return Err(XmlError::Syntax("attribute outside a start tag".into()));
                };
                if attrs.len() >= limits.max_attributes {
                    return Err(XmlError::TooLarge("attribute"));
                }
                attrs.push((
                    prefix.as_str().into(),
                    local.as_str().into(),
                    unescape(&normalise_attribute(value.as_str()))?,
                ));
            }
            Token::ElementEnd { end, .. } => match end {
                xmlparser::ElementEnd::Open | xmlparser::ElementEnd::Empty => {
                    let Some((prefix, local, raw)) = pending.take() else {
                        return Err(XmlError::Syntax("unexpected end of a start tag".into()));
                    };
                    let parent_scope = stack
                        .last()
                        .map(|o| Arc::clone(&o.el.in_scope))
                        .unwrap_or_else(|| {
                            Arc::new(vec![
                                (String::new(), String::new()),
                                ("xml".into(), NS_XML.into()),
                            ])
                        });
                    declarations += raw
                        .iter()
                        .filter(|(p, l, _)| p == "xmlns" || (p.is_empty() && l == "xmlns"))
                        .count();
                    if declarations > limits.max_namespace_declarations {
                        return Err(XmlError::TooLarge("namespace declaration"));
                    }
                    let el = open_element(prefix, local, raw, parent_scope)?;
                    if matches!(end, xmlparser::ElementEnd::Empty) {
                        close(el, &mut stack, &mut root);
                    } else {
                        stack.push(Open { el });
                    }
                }
                xmlparser::ElementEnd::Close(prefix, local) => {
                    let Some(open) = stack.pop() else {
                        return Err(XmlError::Syntax("end tag without a start tag".into()));
                    };
                    if open.el.prefix != prefix.as_str() || open.el.name != local.as_str() {
                        return Err(XmlError::Syntax("mismatched end tag".into()));
                    }
                    close(open.el, &mut stack, &mut root);
                }
            },
            Token::Text { text } => {
                let t = unescape(&normalise_newlines(text.as_str()))?;
                push_text(&mut stack, t)?;
            }
            Token::Cdata { text, .. } => {
                push_text(&mut stack, normalise_newlines(text.as_str()))?;
            }
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or_else(|| XmlError::Syntax("no root element".into()))
}

fn push_text(stack: &mut [Open], t: String) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(open) => {
            if let Some(Node::Text(prev)) = open.el.children.last_mut() {
                prev.push_str(&t);
            } else if !t.is_empty() {
                open.el.children.push(Node::Text(t));
            }
            Ok(())
        }
        None if t.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) => Ok(()),
        None => Err(XmlError::Syntax("text outside the root element".into())),
    }
}

fn close(el: Element, stack: &mut [Open], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.el.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

fn open_element(
    prefix: String,
    local: String,
    raw: Vec<RawAttr>,
    parent_scope: Arc<Vec<(String, String)>>,
) -> Result<Element, XmlError> {
    let mut decls = Vec::new();
    let mut plain = Vec::new();
    for (p, l, v) in raw {
        if p == "xmlns" {
            if l == "xml" || l == "xmlns" || v == NS_XMLNS || v == NS_XML {
                return Err(XmlError::Syntax("reserved namespace declaration".into()));
            }
            if v.is_empty() {
                return Err(XmlError::Syntax(
                    "a prefix cannot be bound to the empty namespace".into(),
                ));
            }
            if decls.iter().any(|(d, _)| *d == l) {
                return Err(XmlError::DuplicateAttribute(format!("xmlns:{l}")));
            }
            decls.push((l, v));
        } else if p.is_empty() && l == "xmlns" {
            if decls.iter().any(|(d, _)| d.is_empty()) {
                return Err(XmlError::DuplicateAttribute("xmlns".into()));
            }
            decls.push((String::new(), v));
        } else {
            plain.push((p, l, v));
        }
    }
    let in_scope = if decls.is_empty() {
        parent_scope
    } else {
        let mut scope: Vec<(String, String)> = parent_scope
            .iter()
            .filter(|(p, _)| !decls.iter().any(|(d, _)| d == p))
            .cloned()
            .collect();
        scope.extend(decls);
        Arc::new(scope)
    };
    let mut el = Element {
        prefix,
        name: local,
        ns: String::new(),
        attrs: Vec::new(),
        children: Vec::new(),
        in_scope,
    };
    el.ns = el
        .lookup(&el.prefix)
        .ok_or_else(|| XmlError::UnboundPrefix(el.prefix.clone()))?
        .to_string();
    for (p, l, v) in plain {
        let ns = if p.is_empty() {
            String::new()
        } else {
            el.lookup(&p)
                .ok_or_else(|| XmlError::UnboundPrefix(p.clone()))?
                .to_string()
        };
        if el.attrs.iter().any(|a| a.ns == ns && a.name == l) {
            return Err(XmlError::DuplicateAttribute(l));
        }
        el.attrs.push(Attr {
            prefix: p,
            name: l,
            ns,
            value: v,
        });
    }
    Ok(el)
}

fn normalise_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_string();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Attribute-value normalisation for CDATA attributes: literal whitespace characters become spaces.
fn normalise_attribute(s: &str) -> String {
    normalise_newlines(s).replace(['\n', '\t'], " ")
}

fn unescape(s: &str) -> Result<String, XmlError> {
    if !s.contains('&') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .filter(|&e| e <= 12)
            .ok_or_else(|| XmlError::Syntax("unterminated entity reference".into()))?;
        let name = &after[..end];
        let ch = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(XmlError::UnknownEntity(name.chars().take(32).collect()));
                };
                code.and_then(char::from_u32)
                    .filter(|c| xml_char(*c))
                    .ok_or_else(|| XmlError::Syntax("invalid character reference".into()))?
            }
        };
        out.push(ch);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A character XML 1.0 allows in a document.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            // A value from the directory holding a character XML cannot carry: written as U+FFFD, so the
            // document stays well-formed (signing and serialising both see the same replacement).
            c if !xml_char(c) => out.push('\u{FFFD}'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            c if !xml_char(c) => out.push('\u{FFFD}'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
}

fn qname(prefix: &str, name: &str, out: &mut String) {
    if !prefix.is_empty() {
        out.push_str(prefix);
        out.push(':');
    }
    out.push_str(name);
}

/// The exclusive canonical form (without comments) of `apex` and its descendants, leaving out `exclude` (the
/// enveloped signature) when given. `inclusive` lists the InclusiveNamespaces PrefixList (`#default` for the
/// default namespace).
pub fn canonicalize(apex: &Element, exclude: Option<&Element>, inclusive: &[String]) -> String {
    let mut out = String::with_capacity(1024);
    let mut rendered: Vec<(String, String)> = Vec::new();
    write_c14n(apex, exclude, inclusive, &mut rendered, &mut out);
    out
}

/// Serialise a document built with [`Element`] (its canonical form).
pub fn to_string(root: &Element) -> String {
    canonicalize(root, None, &[])
}

fn write_c14n(
    e: &Element,
    exclude: Option<&Element>,
    inclusive: &[String],
    rendered: &mut Vec<(String, String)>,
    out: &mut String,
) {
    let mut wanted: Vec<(String, String)> = vec![(e.prefix.clone(), e.ns.clone())];
    for a in &e.attrs {
        if !a.prefix.is_empty() && a.prefix != "xml" {
            wanted.push((a.prefix.clone(), a.ns.clone()));
        }
    }
    for p in inclusive {
        let p = if p == "#default" { "" } else { p.as_str() };
        if let Some(uri) = e.lookup(p) {
            wanted.push((p.to_string(), uri.to_string()));
        }
    }
    wanted.sort();
    wanted.dedup_by(|a, b| a.0 == b.0);
    let depth_mark = rendered.len();
    let mut decls = Vec::new();
    for (p, uri) in wanted {
        if p == "xml" {
            continue;
        }
        let current = rendered
            .iter()
            .rev()
            .find(|(rp, _)| *rp == p)
            .map(|(_, u)| u.as_str());
        let needed = match current {
            Some(u) => u != uri,
            // Nothing rendered yet: the default namespace is implicitly empty.
            None => !(p.is_empty() && uri.is_empty()),
        };
        if needed {
            decls.push((p.clone(), uri.clone()));
            rendered.push((p, uri));
        }
    }
    out.push('<');
    qname(&e.prefix, &e.name, out);
    for (p, uri) in &decls {
        if p.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(p);
            out.push_str("=\"");
        }
        escape_attr(uri, out);
        out.push('"');
    }
    let mut attrs: Vec<&Attr> = e.attrs.iter().collect();
    attrs.sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
    for a in attrs {
        out.push(' ');
        qname(&a.prefix, &a.name, out);
        out.push_str("=\"");
        escape_attr(&a.value, out);
        out.push('"');
    }
    out.push('>');
    for c in &e.children {
        match c {
            Node::Text(t) => escape_text(t, out),
            Node::Element(child) => {
                if exclude.is_some_and(|x| std::ptr::eq(x, child)) {
                    continue;
                }
                write_c14n(child, exclude, inclusive, rendered, out);
            }
        }
    }
    out.push_str("</");
    qname(&e.prefix, &e.name, out);
    out.push('>');
    rendered.truncate(depth_mark);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Element, XmlError> {
        parse(s, Limits::default())
    }

    #[test]
    fn dtds_and_entities_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(p(bomb), Err(XmlError::Dtd));
        assert!(matches!(p("<a>&foo;</a>"), Err(XmlError::UnknownEntity(_))));
        let ext = r#"<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>"#;
        assert_eq!(p(ext), Err(XmlError::Dtd));
        assert_eq!(p("<a><?php x?></a>"), Err(XmlError::ProcessingInstruction));
    }

    #[test]
    fn limits_hold() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert_eq!(p(&deep), Err(XmlError::TooLarge("depth")));
        let big = format!("<a>{}</a>", "x".repeat(300 * 1024));
        assert_eq!(p(&big), Err(XmlError::TooLarge("size")));
        assert!(matches!(p("<x:a/>"), Err(XmlError::UnboundPrefix(_))));
        assert!(matches!(
            p(r#"<a b="1" b="2"/>"#),
            Err(XmlError::DuplicateAttribute(_))
        ));
        assert!(p("<a></b>").is_err());
        assert!(matches!(
            p(r#"<a xmlns:p="urn:x" xmlns:p="urn:y"/>"#),
            Err(XmlError::DuplicateAttribute(_))
        ));
        assert!(p("<a>&#xFFFE;</a>").is_err());
        let decls: String = (0..130)
            .map(|i| format!("<e xmlns:p{i}=\"urn:{i}\"/>"))
            .collect();
        assert_eq!(
            p(&format!("<r>{decls}</r>")),
            Err(XmlError::TooLarge("namespace declaration"))
        );
        assert!(p("<a/><b/>").is_err());
    }

    #[test]
    fn text_and_references_are_decoded() {
        let e = p("<a x=\"1&#x9;2\r\n3\">&lt;b&gt; &amp; &#233;<![CDATA[<c>]]></a>").unwrap();
        assert_eq!(e.text_content(), "<b> & é<c>");
        assert_eq!(e.get("x"), Some("1\t2 3"));
    }

    // The exclusive-c14n examples: namespace declarations move to where they are used, unused ones vanish,
    // attributes are sorted by namespace URI then name, empty elements get end tags.
    #[test]
    fn canonical_form_matches_exclusive_c14n() {
        let doc = r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n0:local>"#;
        let root = p(doc).unwrap();
        let elem2 = root.elements().next().unwrap();
        assert_eq!(
            canonicalize(elem2, None, &[]),
            r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#
        );
        let attrs =
            p(r#"<e xmlns:b="urn:b" xmlns:a="urn:a" z="1" b:y="2" a:y="3" a="4"/>"#).unwrap();
        assert_eq!(
            canonicalize(&attrs, None, &[]),
            r#"<e xmlns:a="urn:a" xmlns:b="urn:b" a="4" z="1" a:y="3" b:y="2"></e>"#
        );
        let dflt = p(r#"<a xmlns="urn:x"><b xmlns=""><c/></b></a>"#).unwrap();
        assert_eq!(
            canonicalize(&dflt, None, &[]),
            r#"<a xmlns="urn:x"><b xmlns=""><c></c></b></a>"#
        );
        let inc = p(r#"<a:r xmlns:a="urn:a" xmlns:k="urn:k"><a:s/></a:r>"#).unwrap();
        assert_eq!(
            canonicalize(inc.elements().next().unwrap(), None, &["k".into()]),
            r#"<a:s xmlns:a="urn:a" xmlns:k="urn:k"></a:s>"#
        );
        let esc = p("<a b=\"&quot;&lt;&#xA;\">&#xD;&gt;</a>").unwrap();
        assert_eq!(
            canonicalize(&esc, None, &[]),
            "<a b=\"&quot;&lt;&#xA;\">&#xD;&gt;</a>"
        );
    }

    #[test]
    fn built_documents_round_trip() {
        let doc = Element::new("p", "A", "urn:p")
            .attr("ID", "_1")
            .child(Element::new("q", "B", "urn:q").text("x & y"));
        let text = to_string(&doc);
        assert_eq!(
            text,
            r#"<p:A xmlns:p="urn:p" ID="_1"><q:B xmlns:q="urn:q">x &amp; y</q:B></p:A>"#
        );
        let back = p(&text).unwrap();
        assert_eq!(to_string(&back), text);
        // Characters XML cannot carry never make an unparseable document.
        let odd = Element::new("", "a", "")
            .text("x\u{1}y\u{FFFF}")
            .attr("b", "\u{8}");
        let text = to_string(&odd);
        assert_eq!(text, "<a b=\"\u{FFFD}\">x\u{FFFD}y\u{FFFD}</a>");
        assert!(p(&text).is_ok());
    }
}
