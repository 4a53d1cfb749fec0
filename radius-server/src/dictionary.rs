//! The attribute dictionary, as data: FreeRADIUS-format files under `radius-server/dictionary/`, compiled into
//! the binary, parsed once.
//!
//! # Format
//! ```text
//! $INCLUDE rfc2865
//! ATTRIBUTE  <Name>  <number>  <type>  [has_tag,encrypt=1|2|3,concat]
//! VALUE      <Attribute-Name>  <Value-Name>  <number>
//! VENDOR     <Name>  <vendor id>
//! BEGIN-VENDOR <Name>   …   END-VENDOR <Name>
//! ```
//! Types: string, octets, ipaddr, integer, date, ipv6addr, ipv6prefix, ifid, integer64, byte, short, signed.
//! Vendor attributes use the RFC 2865 §5.26 layout (one-octet type and length). When two names share a number,
//! the first is the one shown; both are accepted when encoding.
//!
//! The dictionary turns an admin's `Name[:tag] = value` (a group's reply attribute) into wire octets, and says
//! at the moment the admin sets it whether that is possible, so no reply ever fails at authentication time.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

/// The files shipped with Stratus, by include name.
const FILES: &[(&str, &str)] = &[
    ("dictionary", include_str!("../dictionary/dictionary")),
    ("rfc2865", include_str!("../dictionary/rfc2865")),
    ("rfc2866", include_str!("../dictionary/rfc2866")),
    ("rfc2867", include_str!("../dictionary/rfc2867")),
    ("rfc2868", include_str!("../dictionary/rfc2868")),
    ("rfc2869", include_str!("../dictionary/rfc2869")),
    ("rfc3162", include_str!("../dictionary/rfc3162")),
    ("rfc3580", include_str!("../dictionary/rfc3580")),
    ("rfc4072", include_str!("../dictionary/rfc4072")),
    ("rfc5176", include_str!("../dictionary/rfc5176")),
    ("microsoft", include_str!("../dictionary/microsoft")),
    ("cisco", include_str!("../dictionary/cisco")),
    ("aruba", include_str!("../dictionary/aruba")),
    ("mikrotik", include_str!("../dictionary/mikrotik")),
    ("juniper", include_str!("../dictionary/juniper")),
];

/// The value syntax of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    String,
    Octets,
    IpAddr,
    Integer,
    Date,
    Ipv6Addr,
    Ipv6Prefix,
    InterfaceId,
    Integer64,
    Byte,
    Short,
    Signed,
}

impl ValueType {
    fn parse(text: &str) -> Option<ValueType> {
        Some(match text {
            "string" => ValueType::String,
            "octets" => ValueType::Octets,
            "ipaddr" => ValueType::IpAddr,
            "integer" => ValueType::Integer,
            "date" => ValueType::Date,
            "ipv6addr" => ValueType::Ipv6Addr,
            "ipv6prefix" => ValueType::Ipv6Prefix,
            "ifid" => ValueType::InterfaceId,
            "integer64" => ValueType::Integer64,
            "byte" => ValueType::Byte,
            "short" => ValueType::Short,
            "signed" => ValueType::Signed,
            _ => return None,
        })
    }
}

/// How an attribute's value is hidden with the shared secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    None,
    /// RFC 2865 §5.2 (User-Password).
    UserPassword,
    /// RFC 2868 §3.5 / RFC 2548 (Tunnel-Password, MS-MPPE keys).
    Salted,
    /// Ascend's scheme: known to the dictionary, never sent by Stratus.
    Ascend,
}

/// One attribute definition.
#[derive(Debug, Clone)]
pub struct AttributeDef {
    pub name: String,
    /// 0 for standard attributes.
    pub vendor: u32,
    pub number: u8,
    pub value_type: ValueType,
    pub tagged: bool,
    pub encryption: Encryption,
    /// Named values, keyed by lower-case name.
    values: HashMap<String, u32>,
    names_of_values: HashMap<u32, String>,
}

impl AttributeDef {
    /// The name of an enumerated value, when the dictionary has one.
    pub fn value_name(&self, v: u32) -> Option<&str> {
        self.names_of_values.get(&v).map(String::as_str)
    }
}

/// Why a dictionary file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dictionary {file} line {line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Why a reply attribute cannot be encoded. The text is shown to the admin who set it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeAttrError {
    #[error("no such attribute in the RADIUS dictionary")]
    Unknown,
    #[error("the tag must be 0–31 and only tagged attributes take one")]
    BadTag,
    #[error("`{value}` is not a valid {expected}")]
    BadValue {
        value: String,
        expected: &'static str,
    },
    #[error("the value is longer than one attribute can carry")]
    TooLong,
    #[error("this attribute cannot be sent as a reply attribute")]
    NotAReplyAttribute,
}

/// The parsed dictionary.
#[derive(Debug, Default)]
pub struct Dictionary {
    attrs: Vec<AttributeDef>,
    by_name: HashMap<String, usize>,
    by_number: HashMap<(u32, u8), usize>,
    vendors: HashMap<String, u32>,
}

/// A reply attribute ready to be placed in a packet. Salted values are encrypted when the packet is built,
/// since they need the request's authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub vendor: u32,
    pub number: u8,
    pub tag: u8,
    /// The value octets after the tag (for salted attributes: the plain text).
    pub value: Vec<u8>,
    pub form: Form,
}

/// How an encoded value travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Plain,
    /// RFC 2868 §3.1 integer: the tag replaces the high octet.
    TaggedInteger,
    /// RFC 2868 string: an optional tag octet in front.
    TaggedString,
    /// RFC 2868 §3.5 / RFC 2548 salt encryption, after the tag when tagged.
    Salted,
}

impl Dictionary {
    /// The dictionary shipped with Stratus.
    pub fn standard() -> &'static Dictionary {
        static DICT: OnceLock<Dictionary> = OnceLock::new();
        DICT.get_or_init(|| {
            let lookup = |name: &str| FILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
            // The shipped files are checked by a unit test; a parse failure here is a build defect.
            Dictionary::parse("dictionary", &lookup).unwrap_or_else(|e| panic!("{e}"))
        })
    }

    /// Parse `root` and what it includes; `files` returns a file's text by include name.
    pub fn parse(
        root: &str,
        files: &dyn Fn(&str) -> Option<&'static str>,
    ) -> Result<Self, ParseError> {
        let mut d = Dictionary::default();
        d.parse_file(root, files, 0)?;
        Ok(d)
    }

    fn parse_file(
        &mut self,
        name: &str,
        files: &dyn Fn(&str) -> Option<&'static str>,
        depth: usize,
    ) -> Result<(), ParseError> {
        let err = |line: usize, message: String| ParseError {
            file: name.to_string(),
            line,
            message,
        };
        if depth > 8 {
            return Err(err(0, "includes nest too deeply".into()));
        }
        let text = files(name).ok_or_else(|| err(0, "no such file".into()))?;
        let mut vendor = 0u32;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.split('#').next().unwrap_or("").trim();
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                [] => {}
                ["$INCLUDE", file] => self.parse_file(file, files, depth + 1)?,
                ["VENDOR", vname, id] => {
                    let id: u32 = id
                        .parse()
                        .map_err(|_| err(line_no, format!("bad vendor id `{id}`")))?;
                    self.vendors.insert(vname.to_ascii_lowercase(), id);
                }
                ["BEGIN-VENDOR", vname] => {
                    vendor = *self
                        .vendors
                        .get(&vname.to_ascii_lowercase())
                        .ok_or_else(|| err(line_no, format!("unknown vendor `{vname}`")))?;
                }
                ["END-VENDOR", _] => vendor = 0,
                ["ATTRIBUTE", aname, number, typ, rest @ ..] if rest.len() <= 1 => {
                    let number: u8 = number
                        .parse()
                        .ok()
                        .filter(|n| *n > 0 || vendor != 0)
                        .ok_or_else(|| err(line_no, format!("bad attribute number `{number}`")))?;
                    let value_type = ValueType::parse(typ)
                        .ok_or_else(|| err(line_no, format!("unknown type `{typ}`")))?;
                    let (mut tagged, mut encryption) = (false, Encryption::None);
                    for flag in rest.iter().flat_map(|r| r.split(',')) {
                        match flag {
                            "has_tag" => tagged = true,
                            "encrypt=1" => encryption = Encryption::UserPassword,
                            "encrypt=2" => encryption = Encryption::Salted,
                            "encrypt=3" => encryption = Encryption::Ascend,
                            "concat" => {}
                            other => return Err(err(line_no, format!("unknown flag `{other}`"))),
                        }
                    }
                    let idx = self.attrs.len();
                    self.attrs.push(AttributeDef {
                        name: aname.to_string(),
                        vendor,
                        number,
                        value_type,
                        tagged,
                        encryption,
                        values: HashMap::new(),
                        names_of_values: HashMap::new(),
                    });
                    if self
                        .by_name
                        .insert(aname.to_ascii_lowercase(), idx)
                        .is_some()
                    {
                        return Err(err(line_no, format!("`{aname}` is defined twice")));
                    }
                    self.by_number.entry((vendor, number)).or_insert(idx);
                }
                ["VALUE", aname, vname, number] => {
                    let idx = *self
                        .by_name
                        .get(&aname.to_ascii_lowercase())
                        .ok_or_else(|| err(line_no, format!("VALUE for unknown `{aname}`")))?;
                    let n: u32 = number
                        .parse()
                        .map_err(|_| err(line_no, format!("bad value `{number}`")))?;
                    let a = &mut self.attrs[idx];
                    a.values.insert(vname.to_ascii_lowercase(), n);
                    a.names_of_values
                        .entry(n)
                        .or_insert_with(|| vname.to_string());
                }
                _ => return Err(err(line_no, format!("cannot read `{line}`"))),
            }
        }
        Ok(())
    }

    /// An attribute by name (case-insensitive).
    pub fn by_name(&self, name: &str) -> Option<&AttributeDef> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map(|i| &self.attrs[*i])
    }

    /// An attribute by vendor (0 = standard) and number.
    pub fn by_number(&self, vendor: u32, number: u8) -> Option<&AttributeDef> {
        self.by_number
            .get(&(vendor, number))
            .map(|i| &self.attrs[*i])
    }

    /// Encode `Name[:tag]` = `value` as a reply attribute.
    pub fn encode(&self, name: &str, value: &str) -> Result<Encoded, EncodeAttrError> {
        let (base, tag) = match name.rsplit_once(':') {
            Some((b, t)) => (
                b,
                Some(t.parse::<u8>().map_err(|_| EncodeAttrError::BadTag)?),
            ),
            None => (name, None),
        };
        let def = self.by_name(base).ok_or(EncodeAttrError::Unknown)?;
        if def.vendor == 0 && NOT_REPLY.contains(&def.number) {
            return Err(EncodeAttrError::NotAReplyAttribute);
        }
        if matches!(
            def.encryption,
            Encryption::UserPassword | Encryption::Ascend
        ) {
            return Err(EncodeAttrError::NotAReplyAttribute);
        }
        let tag = match (tag, def.tagged) {
            (Some(t), true) if t <= 31 => t,
            (None, true) => DEFAULT_TAG,
            (None, false) => 0,
            _ => return Err(EncodeAttrError::BadTag),
        };
        let bytes = encode_value(def, value)?;
        // Room left in one attribute: 253 octets, less the VSA header, the tag octet, and for salted values the
        // salt, the length octet and the padding.
        let mut room = 253 - if def.vendor != 0 { 6 } else { 0 };
        if def.encryption == Encryption::Salted {
            room = (room - 2) / 16 * 16 - 1;
        } else if def.tagged && def.value_type != ValueType::Integer {
            room -= 1;
        }
        if bytes.len() > room {
            return Err(EncodeAttrError::TooLong);
        }
        Ok(Encoded {
            vendor: def.vendor,
            number: def.number,
            tag,
            value: bytes,
            form: match (def.encryption, def.tagged, def.value_type) {
                (Encryption::Salted, _, _) => Form::Salted,
                (_, true, ValueType::Integer) => Form::TaggedInteger,
                (_, true, _) => Form::TaggedString,
                _ => Form::Plain,
            },
        })
    }
}

/// The tag given to tagged attributes (Tunnel-*) that an admin sets without one, so that the VLAN triplet
/// always travels as one tagged group (RFC 2868 §3.1).
pub const DEFAULT_TAG: u8 = 1;

/// Standard attributes a group may not set: they belong to the protocol itself.
const NOT_REPLY: &[u8] = &[
    1,  // User-Name
    2,  // User-Password
    3,  // CHAP-Password
    24, // State
    25, // Class (Stratus sets it to tie accounting to the login)
    26, // Vendor-Specific (set vendor attributes by name)
    60, // CHAP-Challenge
    79, // EAP-Message
    80, // Message-Authenticator
];

fn encode_value(def: &AttributeDef, value: &str) -> Result<Vec<u8>, EncodeAttrError> {
    let bad = |expected: &'static str| EncodeAttrError::BadValue {
        value: value.chars().take(64).collect(),
        expected,
    };
    let named = || def.values.get(&value.to_ascii_lowercase()).copied();
    let v = value.trim();
    Ok(match def.value_type {
        ValueType::String => v.as_bytes().to_vec(),
        ValueType::Octets => match v.strip_prefix("0x") {
            Some(hex) => data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .map_err(|_| bad("hexadecimal octet string"))?,
            None => v.as_bytes().to_vec(),
        },
        ValueType::Integer | ValueType::Date => {
            let n = named()
                .or_else(|| v.parse().ok())
                .ok_or_else(|| bad("32-bit unsigned integer or value name"))?;
            if def.tagged && n > 0x00ff_ffff {
                return Err(bad("24-bit integer (tagged attribute)"));
            }
            n.to_be_bytes().to_vec()
        }
        ValueType::Byte => vec![named()
            .and_then(|n| u8::try_from(n).ok())
            .or_else(|| v.parse().ok())
            .ok_or_else(|| bad("integer 0–255"))?],
        ValueType::Short => named()
            .and_then(|n| u16::try_from(n).ok())
            .or_else(|| v.parse().ok())
            .ok_or_else(|| bad("integer 0–65535"))?
            .to_be_bytes()
            .to_vec(),
        ValueType::Signed => v
            .parse::<i32>()
            .map_err(|_| bad("signed 32-bit integer"))?
            .to_be_bytes()
            .to_vec(),
        ValueType::Integer64 => v
            .parse::<u64>()
            .map_err(|_| bad("64-bit unsigned integer"))?
            .to_be_bytes()
            .to_vec(),
        ValueType::IpAddr => v
            .parse::<Ipv4Addr>()
            .map_err(|_| bad("IPv4 address"))?
            .octets()
            .to_vec(),
        ValueType::Ipv6Addr => v
            .parse::<Ipv6Addr>()
            .map_err(|_| bad("IPv6 address"))?
            .octets()
            .to_vec(),
        ValueType::Ipv6Prefix => {
            let net: ipnet::Ipv6Net = v.parse().map_err(|_| bad("IPv6 prefix"))?;
            let len = net.prefix_len();
            let mut out = vec![0, len];
            out.extend_from_slice(&net.network().octets()[..usize::from(len).div_ceil(8)]);
            out
        }
        ValueType::InterfaceId => {
            let hex: String = v.chars().filter(|c| *c != ':').collect();
            let b = data_encoding::HEXLOWER_PERMISSIVE
                .decode(hex.as_bytes())
                .ok()
                .filter(|b| b.len() == 8)
                .ok_or_else(|| bad("interface id (8 octets)"))?;
            b
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_dictionary_parses_with_the_attributes_stratus_relies_on() {
        let d = Dictionary::standard();
        for (name, vendor, number) in [
            ("User-Name", 0, 1),
            ("User-Password", 0, 2),
            ("Reply-Message", 0, 18),
            ("Tunnel-Type", 0, 64),
            ("Tunnel-Medium-Type", 0, 65),
            ("Tunnel-Private-Group-Id", 0, 81),
            ("EAP-Message", 0, 79),
            ("Message-Authenticator", 0, 80),
            ("MS-MPPE-Send-Key", 311, 16),
            ("MS-MPPE-Recv-Key", 311, 17),
            ("Cisco-AVPair", 9, 1),
            ("Cisco-AV-Pair", 9, 1),
            ("Aruba-Admin-Role", 14823, 4),
            ("Mikrotik-Group", 14988, 3),
            ("Juniper-Local-User-Name", 2636, 1),
        ] {
            let a = d.by_name(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!((a.vendor, a.number), (vendor, number), "{name}");
        }
        assert!(d.by_name("tunnel-type").unwrap().tagged);
        assert_eq!(
            d.by_name("Tunnel-Password").unwrap().encryption,
            Encryption::Salted
        );
        assert_eq!(d.by_number(9, 1).unwrap().name, "Cisco-AVPair");
    }

    #[test]
    fn vlan_triplet_encodes_tagged() {
        let d = Dictionary::standard();
        let t = d.encode("Tunnel-Type", "VLAN").unwrap();
        assert_eq!(
            (t.number, t.tag, t.value.clone()),
            (64, 1, 13u32.to_be_bytes().to_vec())
        );
        let m = d.encode("Tunnel-Medium-Type:2", "IEEE-802").unwrap();
        assert_eq!((m.tag, m.value.clone()), (2, 6u32.to_be_bytes().to_vec()));
        let g = d.encode("Tunnel-Private-Group-Id", "42").unwrap();
        assert_eq!((g.number, g.tag, g.value), (81, 1, b"42".to_vec()));
    }

    #[test]
    fn bad_reply_attributes_are_refused_with_a_reason() {
        let d = Dictionary::standard();
        assert_eq!(d.encode("No-Such-Attr", "1"), Err(EncodeAttrError::Unknown));
        assert_eq!(
            d.encode("Tunnel-Type:40", "VLAN"),
            Err(EncodeAttrError::BadTag)
        );
        assert_eq!(
            d.encode("Session-Timeout:1", "60"),
            Err(EncodeAttrError::BadTag)
        );
        assert!(matches!(
            d.encode("Session-Timeout", "soon"),
            Err(EncodeAttrError::BadValue { .. })
        ));
        assert!(matches!(
            d.encode("Framed-IP-Address", "10.0.0.300"),
            Err(EncodeAttrError::BadValue { .. })
        ));
        assert_eq!(
            d.encode("User-Password", "x"),
            Err(EncodeAttrError::NotAReplyAttribute)
        );
        assert_eq!(
            d.encode("Class", "x"),
            Err(EncodeAttrError::NotAReplyAttribute)
        );
        assert_eq!(
            d.encode("Reply-Message", &"x".repeat(254)),
            Err(EncodeAttrError::TooLong)
        );
        assert_eq!(
            d.encode("Session-Timeout", "3600").unwrap().value,
            3600u32.to_be_bytes()
        );
        assert_eq!(
            d.encode("Framed-IP-Address", "10.1.2.3").unwrap().value,
            [10, 1, 2, 3]
        );
    }

    #[test]
    fn malformed_dictionary_lines_are_reported_with_their_line() {
        let files = |n: &str| match n {
            "root" => Some("ATTRIBUTE A 1 string\nATTRIBUTE B x integer\n"),
            _ => None,
        };
        let e = Dictionary::parse("root", &files).unwrap_err();
        assert_eq!(e.line, 2);
        let files = |n: &str| (n == "root").then_some("$INCLUDE root\n");
        assert!(Dictionary::parse("root", &files).is_err());
    }
}
