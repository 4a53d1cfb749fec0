//! LDIF import (RFC 2849 content records): people and groups from an `ldapsearch` or `slapcat` dump of
//! another directory, with their password hashes, so that nobody must reset a password on migration day.
//!
//! | LDIF | Stratus |
//! | --- | --- |
//! | person (`inetOrgPerson`, `posixAccount`, `person`, `account`, `sambaSamAccount`, …) | user |
//! | `uid` (else the RDN value) / `mail` | username (an e-mail-shaped uid becomes the login name) / e-mail (required) |
//! | `givenName`, `sn`, `displayName`, `telephoneNumber` | first, last, display name, phone |
//! | `title`, `departmentNumber` (or `ou`), `employeeNumber`, `o` | employment |
//! | `uidNumber`, `gidNumber`, `homeDirectory`, `loginShell` | the same |
//! | `userPassword` | an imported hash (`{SSHA}`, `{CRYPT}$6$`, `{ARGON2}`, …; see `legacy_hash`), or a cleartext password checked against the policy |
//! | `sambaNTPassword` | the NT hash (sealed) |
//! | `memberOf` | memberships of groups that exist by the RDN's `cn` |
//! | group (`posixGroup`, `groupOfNames`, `groupOfUniqueNames`, `sambaGroupMapping`) | group (`cn`, `description`; a Linux group with `gidNumber`; Samba with `sambaGroupMapping`) |
//! | `member`, `uniqueMember` (the DN's `uid` or `cn` RDN), `memberUid` | members |
//!
//! The import runs in passes so a file can be sent in pieces in any order: groups first (without members),
//! then users (with `memberOf`), then members. Every entry gets a result; entries that are neither people nor
//! groups (`organizationalUnit`, the suffix) are reported as skipped. Existing users are never changed: a user
//! whose name or e-mail is taken fails with the reason; an existing group is kept and gets the members.

use crate::access::{Actor, Permission};
use crate::directory::Directory;
use crate::error::{DirectoryError, Result};
use crate::model::{Employment, UserState};
use crate::views::{GroupPatch, LinuxGroupInput, NewGroup, NewUser};
use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// One content record: its DN, the line it starts on, and its attributes (names lower-cased, options such as
/// `;binary` dropped) in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub dn: String,
    pub attrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.attrs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn text(&self, name: &str) -> Option<String> {
        self.values(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn texts(&self, name: &str) -> Vec<String> {
        self.values(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn classes(&self) -> Vec<String> {
        self.texts("objectclass")
            .into_iter()
            .map(|c| c.to_ascii_lowercase())
            .collect()
    }

    fn kind(&self) -> Kind {
        let classes = self.classes();
        let has = |names: &[&str]| classes.iter().any(|c| names.contains(&c.as_str()));
        if has(&[
            "posixgroup",
            "groupofnames",
            "groupofuniquenames",
            "sambagroupmapping",
            "group",
        ]) {
            Kind::Group
        } else if has(&[
            "inetorgperson",
            "posixaccount",
            "person",
            "organizationalperson",
            "account",
            "sambasamaccount",
            "shadowaccount",
            "user",
        ]) {
            Kind::User
        } else {
            Kind::Other
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
    Other,
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// The value of the first RDN of a DN when its attribute is one of `attrs` (`uid=jdoe,ou=People,…` → `jdoe`),
/// with RFC 4514 escapes undone.
pub fn first_rdn_value(dn: &str, attrs: &[&str]) -> Option<String> {
    let mut rdn = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                rdn.push('\\');
                rdn.extend(chars.next());
            }
            ',' | '+' => break,
            c => rdn.push(c),
        }
    }
    let (attr, value) = rdn.split_once('=')?;
    if !attrs.iter().any(|a| a.eq_ignore_ascii_case(attr.trim())) {
        return None;
    }
    let mut out = Vec::new();
    let bytes = value.trim().as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            });
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(bytes[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|v| !v.is_empty())
}

/// Read the content records of an LDIF file: `version:` line, comments, folded lines, `::` base64 values.
/// Change records and `:<` URL values are refused per record; reading goes on after a bad record.
pub fn parse(text: &str) -> Vec<std::result::Result<Entry, ParseError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Unfold: a line starting with one space continues the previous one.
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = raw.strip_prefix(' ') {
            if let Some((_, last)) = lines.last_mut() {
                if !last.is_empty() {
                    last.push_str(cont);
                    continue;
                }
            }
        }
        lines.push((i + 1, raw.to_string()));
    }
    let mut out = Vec::new();
    let mut record: Vec<(usize, String)> = Vec::new();
    let flush = |record: &mut Vec<(usize, String)>, out: &mut Vec<_>| {
        if !record.is_empty() {
            out.push(read_record(record));
            record.clear();
        }
    };
    for (n, line) in lines {
        if line.trim().is_empty() {
            flush(&mut record, &mut out);
        } else if line.starts_with('#')
            || (record.is_empty() && line.to_ascii_lowercase().starts_with("version:"))
        {
            continue;
        } else {
            record.push((n, line));
        }
    }
    flush(&mut record, &mut out);
    out
}

fn read_record(lines: &[(usize, String)]) -> std::result::Result<Entry, ParseError> {
    let start = lines.first().map_or(0, |(n, _)| *n);
    let err = |line: usize, message: String| ParseError { line, message };
    let mut dn = None;
    let mut attrs = Vec::new();
    for (n, line) in lines {
        let Some((name, rest)) = line.split_once(':') else {
            return Err(err(
                *n,
                format!("`{}` is not `attribute: value`", trim_for_message(line)),
            ));
        };
        let (value, base64) = match rest.strip_prefix(':') {
            Some(b) => (b.trim(), true),
            None if rest.starts_with('<') => {
                return Err(err(*n, "values read from URLs (`:<`) are not taken".into()));
            }
            None => (rest.strip_prefix(' ').unwrap_or(rest).trim_start(), false),
        };
        let value = if base64 {
            BASE64
                .decode(value.as_bytes())
                .map_err(|_| err(*n, format!("the base64 value of `{name}` is malformed")))?
        } else {
            value.as_bytes().to_vec()
        };
        let name = name
            .split(';')
            .next()
            .unwrap_or(name)
            .trim()
            .to_ascii_lowercase();
        if dn.is_none() {
            if name != "dn" {
                return Err(err(*n, "a record starts with `dn:`".into()));
            }
            dn = Some(String::from_utf8(value).map_err(|_| err(*n, "the DN is not UTF-8".into()))?);
            continue;
        }
        if name == "changetype" {
            return Err(err(*n, "change records are not imported; give content records (an ldapsearch or slapcat dump)".into()));
        }
        attrs.push((name, value));
    }
    Ok(Entry {
        line: start,
        dn: dn.unwrap_or_default(),
        attrs,
    })
}

fn trim_for_message(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Which entries an import request handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LdifPass {
    /// Groups without members; the entries that are neither people nor groups (reported as skipped), and the
    /// records that could not be read (reported as failed).
    Groups,
    /// People, with `memberOf` memberships of groups that exist.
    Users,
    /// The members of groups.
    Members,
    /// All three in order.
    All,
}

/// The result of one entry in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LdifRowResult {
    /// The line the entry starts on.
    pub line: usize,
    pub dn: String,
    /// `user`, `group` or `other`.
    pub kind: String,
    /// `imported`, `updated`, `kept`, `skipped` or `failed`.
    pub status: String,
    pub message: String,
    pub id: Option<String>,
}

/// Results of an LDIF import request.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct LdifReport {
    pub imported: usize,
    pub failed: usize,
    pub rows: Vec<LdifRowResult>,
}

fn row(e: &Entry, kind: &str, status: &str, message: String, id: Option<String>) -> LdifRowResult {
    LdifRowResult {
        line: e.line,
        dn: e.dn.clone(),
        kind: kind.into(),
        status: status.into(),
        message,
        id,
    }
}

/// The user an LDIF person entry describes.
fn new_user(e: &Entry) -> std::result::Result<(NewUser, Vec<String>), String> {
    let username = e
        .text("uid")
        .or_else(|| first_rdn_value(&e.dn, &["uid", "cn"]))
        .ok_or("the entry has no uid")?;
    let email = e
        .text("mail")
        .ok_or("the entry has no mail attribute: every Stratus user needs an e-mail address")?;
    let number = |attr: &str| -> std::result::Result<Option<u32>, String> {
        e.text(attr)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| format!("{attr} `{v}` is not a number"))
            })
            .transpose()
    };
    let (mut password, mut password_hash) = (None, None);
    if let Some(raw) = e.values("userpassword").next() {
        let v = std::str::from_utf8(raw).map_err(|_| "userPassword is not UTF-8 text")?;
        if v.starts_with('{') || v.starts_with('$') {
            password_hash = Some(v.to_string());
        } else if !v.is_empty() {
            password = Some(v.to_string());
        }
    }
    // Samba writes "NO PASSWORDXXXX…" for accounts without one.
    let nt_hash = e
        .text("sambantpassword")
        .filter(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()));
    let has_password = password.is_some() || password_hash.is_some() || nt_hash.is_some();
    let groups = e
        .texts("memberof")
        .iter()
        .filter_map(|dn| first_rdn_value(dn, &["cn"]))
        .collect();
    let employment = Employment {
        title: e.text("title"),
        department: e.text("departmentnumber").or_else(|| e.text("ou")),
        company: e.text("o"),
        employee_id: e.text("employeenumber"),
        manager: None,
    };
    Ok((
        NewUser {
            username,
            email,
            firstname: e.text("givenname").unwrap_or_default(),
            lastname: e.text("sn").unwrap_or_default(),
            display_name: e.text("displayname"),
            password,
            password_hash,
            nt_hash,
            state: Some(if has_password {
                UserState::Active
            } else {
                UserState::Staged
            }),
            uid_number: number("uidnumber")?,
            gid_number: number("gidnumber")?,
            home_directory: e.text("homedirectory"),
            login_shell: e.text("loginshell"),
            phone: e.text("telephonenumber"),
            employment: Some(employment),
            ..NewUser::default()
        },
        groups,
    ))
}

fn new_group(e: &Entry) -> std::result::Result<NewGroup, String> {
    let name = e
        .text("cn")
        .or_else(|| first_rdn_value(&e.dn, &["cn"]))
        .ok_or("the group has no cn")?;
    let classes = e.classes();
    let gid = e
        .text("gidnumber")
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| format!("gidNumber `{v}` is not a number"))
        })
        .transpose()?;
    Ok(NewGroup {
        linux_group: (classes.iter().any(|c| c == "posixgroup") || gid.is_some()).then(|| {
            LinuxGroupInput {
                name: name.clone(),
                gid,
            }
        }),
        samba: classes.iter().any(|c| c == "sambagroupmapping"),
        description: e.text("description").unwrap_or_default(),
        name,
        ..NewGroup::default()
    })
}

impl Directory {
    /// Import an LDIF dump (or a piece of one) in `pass`; `progress(done, total)` is told as entries settle.
    /// A file that is not LDIF at all fails whole; everything else is reported per entry.
    pub async fn import_ldif(
        self: &Arc<Self>,
        actor: &Actor,
        text: &str,
        pass: LdifPass,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<LdifReport> {
        actor.require(Permission::ManageUsers)?;
        let parsed = parse(text);
        if !parsed.is_empty() && parsed.iter().all(|r| r.is_err()) {
            let first = parsed.iter().find_map(|r| r.as_ref().err());
            return Err(DirectoryError::invalid(
                "ldif",
                format!(
                    "this is not an LDIF file: {}",
                    first.map_or(String::new(), |e| format!("line {}: {}", e.line, e.message))
                ),
            ));
        }
        let passes: &[LdifPass] = match pass {
            LdifPass::All => &[LdifPass::Groups, LdifPass::Users, LdifPass::Members],
            _ => std::slice::from_ref(&pass),
        };
        let total = parsed.len() * passes.len();
        let mut done = 0;
        let mut rows = Vec::new();
        for p in passes {
            for r in &parsed {
                let out = match r {
                    Err(e) => (*p == LdifPass::Groups).then(|| LdifRowResult {
                        line: e.line,
                        dn: String::new(),
                        kind: "other".into(),
                        status: "failed".into(),
                        message: e.message.clone(),
                        id: None,
                    }),
                    Ok(e) => self.import_entry(actor, e, *p).await,
                };
                rows.extend(out);
                done += 1;
                progress(done, total);
            }
        }
        let imported = rows.iter().filter(|r| r.status == "imported").count();
        let failed = rows.iter().filter(|r| r.status == "failed").count();
        self.record(
            crate::directory::admin_event(actor, "ldif_import")
                .detail("pass", format!("{pass:?}").to_lowercase())
                .detail("imported", imported)
                .detail("failed", failed),
        )
        .await;
        Ok(LdifReport {
            imported,
            failed,
            rows,
        })
    }

    async fn import_entry(
        self: &Arc<Self>,
        actor: &Actor,
        e: &Entry,
        pass: LdifPass,
    ) -> Option<LdifRowResult> {
        match (e.kind(), pass) {
            (Kind::Other, LdifPass::Groups) => {
                let classes = e.texts("objectclass").join(", ");
                Some(row(
                    e,
                    "other",
                    "skipped",
                    format!("neither a person nor a group ({classes})"),
                    None,
                ))
            }
            (Kind::Group, LdifPass::Groups) => Some(match new_group(e) {
                Err(m) => row(e, "group", "failed", m, None),
                Ok(g) => match self.snapshot().group_by_group_name(&g.name).cloned() {
                    Some(existing) => row(
                        e,
                        "group",
                        "kept",
                        "a group with this name exists; members are added to it".into(),
                        Some(existing.id.to_string()),
                    ),
                    None => match self.create_group(actor, g).await {
                        Ok(v) => row(
                            e,
                            "group",
                            "imported",
                            "group imported".into(),
                            Some(v.group.id.to_string()),
                        ),
                        Err(err) => row(e, "group", "failed", err.to_string(), None),
                    },
                },
            }),
            (Kind::User, LdifPass::Users) => Some(match new_user(e) {
                Err(m) => row(e, "user", "failed", m, None),
                Ok((input, groups)) => match self.create_user(actor, input).await {
                    Err(err) => row(e, "user", "failed", err.to_string(), None),
                    Ok(v) => {
                        let mut missing = Vec::new();
                        for name in groups {
                            let group = self
                                .snapshot()
                                .group_by_group_name(&name)
                                .map(|g| g.id.clone());
                            let added = match group {
                                Some(g) => self
                                    .update_group(
                                        actor,
                                        &g,
                                        GroupPatch {
                                            add_members: vec![v.id.clone()],
                                            ..GroupPatch::default()
                                        },
                                    )
                                    .await
                                    .is_ok(),
                                None => false,
                            };
                            if !added {
                                missing.push(name);
                            }
                        }
                        let mut message = match &v.legacy_password_scheme {
                            Some(s) => format!("user imported with its {s} password hash"),
                            None => "user imported".to_string(),
                        };
                        if !missing.is_empty() {
                            message.push_str(&format!(
                                "; memberOf groups not found: {}",
                                missing.join(", ")
                            ));
                        }
                        row(e, "user", "imported", message, Some(v.id.to_string()))
                    }
                },
            }),
            (Kind::Group, LdifPass::Members) => Some(self.import_members(actor, e).await),
            _ => None,
        }
    }

    async fn import_members(&self, actor: &Actor, e: &Entry) -> LdifRowResult {
        let name = match new_group(e) {
            Ok(g) => g.name,
            Err(m) => return row(e, "group", "failed", m, None),
        };
        let snap = self.snapshot();
        let Some(group) = snap.group_by_group_name(&name).cloned() else {
            return row(
                e,
                "group",
                "failed",
                format!("group `{name}` does not exist"),
                None,
            );
        };
        let mut names: Vec<String> = e.texts("memberuid");
        for dn in e
            .texts("member")
            .iter()
            .chain(e.texts("uniquemember").iter())
        {
            match first_rdn_value(dn, &["uid", "cn"]) {
                Some(v) => names.push(v),
                None => names.push(dn.clone()),
            }
        }
        let mut ids = Vec::new();
        let mut unknown = Vec::new();
        for n in names {
            match snap
                .user_by_login_name(&n)
                .or_else(|| snap.user_by_mail(&n))
            {
                Some(u) if !ids.contains(&u.id) => ids.push(u.id.clone()),
                Some(_) => {}
                None => unknown.push(n),
            }
        }
        let count = ids.len();
        if count > 0 {
            let patch = GroupPatch {
                add_members: ids,
                ..GroupPatch::default()
            };
            if let Err(err) = self.update_group(actor, &group.id, patch).await {
                return row(
                    e,
                    "group",
                    "failed",
                    err.to_string(),
                    Some(group.id.to_string()),
                );
            }
        }
        let mut message = format!("{count} members");
        if !unknown.is_empty() {
            message.push_str(&format!("; not found: {}", unknown.join(", ")));
        }
        row(e, "group", "updated", message, Some(group.id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_unfold_decode_and_skip_comments() {
        let text = "version: 1\n\n# people\ndn: uid=ann,ou=People,dc=example,dc=com\nobjectClass: inetOrgPerson\ncn: Ann\n  Lee\nuserPassword:: e1NTSEF9YWJj\ndescription;lang-en: x\n\ndn: cn=x\nchangetype: add\n\ndn:: Y249w6ksZGM9ZXhhbXBsZQ==\ncn: e\r\n";
        let r = parse(text);
        assert_eq!(r.len(), 3);
        let ann = r[0].as_ref().unwrap();
        assert_eq!(ann.dn, "uid=ann,ou=People,dc=example,dc=com");
        assert_eq!(ann.line, 4);
        assert_eq!(ann.text("cn").as_deref(), Some("Ann Lee"));
        assert_eq!(ann.text("userpassword").as_deref(), Some("{SSHA}abc"));
        assert_eq!(ann.text("description").as_deref(), Some("x"));
        assert_eq!(ann.kind(), Kind::User);
        assert!(r[1]
            .as_ref()
            .unwrap_err()
            .message
            .contains("change records"));
        assert_eq!(r[2].as_ref().unwrap().dn, "cn=é,dc=example");
    }

    #[test]
    fn first_rdn_values_are_unescaped() {
        assert_eq!(
            first_rdn_value("uid=jdoe,ou=People,dc=x", &["uid"]).as_deref(),
            Some("jdoe")
        );
        assert_eq!(
            first_rdn_value("CN=Doe\\, John,ou=x", &["cn"]).as_deref(),
            Some("Doe, John")
        );
        assert_eq!(
            first_rdn_value("cn=a\\2Bb,ou=x", &["cn"]).as_deref(),
            Some("a+b")
        );
        assert_eq!(first_rdn_value("ou=x,dc=y", &["uid", "cn"]), None);
    }
}
