//! The directory tree as LDAP entries, built on demand from the core snapshot:
//!
//! ```text
//! ""                                   rootDSE
//! cn=Subschema                         what is served
//! <suffix>                             organization
//!   ou=Users,<suffix>                  organizationalUnit
//!     uid=<username>,ou=Users,<suffix> inetOrgPerson, posixAccount, shadowAccount (+ sambaSamAccount)
//!     cn=<group>,ou=Users,<suffix>     groupOfNames (+ posixGroup, sambaGroupMapping)
//!   sambaDomainName=<domain>,<suffix>  sambaDomain
//! ```
//!
//! Which users and groups appear, and who gets Samba attributes, are the core's rules (`Snapshot::ldap_*`).

use crate::dn;
use crate::schema::{self, AttributeSet, AttributeType};
use chrono::{DateTime, Utc};
use core_directory::model::{Group, User, UserState};
use core_directory::{access, Directory, Id, Snapshot};
use std::sync::Arc;

/// Vendor version reported in the rootDSE.
pub const VENDOR_VERSION: &str = env!("CARGO_PKG_VERSION");
/// OIDs of what we support.
pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
pub const OID_MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";
pub const OID_STARTTLS: &str = "1.3.6.1.4.1.1466.20037";
pub const OID_WHOAMI: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const OID_PASSWD_MODIFY: &str = "1.3.6.1.4.1.4203.1.11.1";

/// An entry ready to be filtered and sent.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dn: String,
    pub attrs: Vec<(&'static AttributeType, Vec<String>)>,
    /// The attributes worth building: those the search returns or its filter reads. The others are left out
    /// before their values are made (a search for sssd's attributes skips a third of a user entry).
    want: AttributeSet,
}

impl Entry {
    fn new(dn: String, want: AttributeSet) -> Self {
        Entry {
            dn,
            attrs: Vec::with_capacity(32),
            want,
        }
    }

    /// An entry made of given attributes (tests, and the compare of one attribute).
    pub fn of(dn: String, attrs: Vec<(&'static AttributeType, Vec<String>)>) -> Self {
        Entry {
            dn,
            attrs,
            want: AttributeSet::ALL,
        }
    }

    /// Whether an attribute is worth building (see `want`).
    fn wants(&self, name: &str) -> bool {
        schema::attribute(name).is_some_and(|at| self.want.contains(at))
    }

    fn put(&mut self, name: &str, mut values: Vec<String>) {
        // Every name we put is in the schema table; a miss is a bug caught by the tests.
        let Some(at) = schema::attribute(name) else {
            debug_assert!(false, "attribute {name} is not in the schema");
            return;
        };
        if !self.want.contains(at) {
            return;
        }
        values.retain(|v| !v.is_empty());
        if !values.is_empty() {
            self.attrs.push((at, values));
        }
    }

    fn one(&mut self, name: &str, value: impl Into<String>) {
        self.put(name, vec![value.into()]);
    }

    /// [`Entry::one`] for a value that costs something to make: made only when the attribute is wanted.
    fn one_with<S: Into<String>>(&mut self, name: &str, value: impl FnOnce() -> S) {
        if self.wants(name) {
            self.one(name, value());
        }
    }

    /// Values of an attribute.
    pub fn get(&self, at: &AttributeType) -> Option<&[String]> {
        self.attrs
            .iter()
            .find(|(a, _)| std::ptr::eq(*a, at))
            .map(|(_, v)| v.as_slice())
    }
}

/// Which entry a DN names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryRef {
    RootDse,
    Subschema,
    Suffix,
    UsersOu,
    SambaDomain,
    User(Id),
    Group(Id),
}

/// Who is reading. What a bound user may see is the core's rule (`access::ldap_*`), applied to the user as the
/// current snapshot has them, so a change of their Bind-DN flag takes effect at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    Anonymous,
    Bound(Id),
}

/// The tree over one snapshot.
pub struct Tree<'a> {
    pub snap: &'a Snapshot,
    pub dir: &'a Directory,
    pub suffix: String,
    suffix_norm: String,
    suffix_rdns: usize,
}

fn is_users_ou(rdn: &dn::Rdn) -> bool {
    rdn.attr == "ou" && crate::filter::fold(&rdn.value) == "users"
}

/// GeneralizedTime (`YYYYMMDDHHMMSSZ`), written digit by digit: chrono's formatter parses its pattern on every
/// call, and two timestamps per entry made it about 1 % of a search's CPU.
fn generalized(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return t.format("%Y%m%d%H%M%SZ").to_string();
    }
    let mut out = String::with_capacity(15);
    for (value, digits) in [
        (year as u32, 4),
        (t.month(), 2),
        (t.day(), 2),
        (t.hour(), 2),
        (t.minute(), 2),
        (t.second(), 2),
    ] {
        for k in (0..digits).rev() {
            let d = (value / 10u32.pow(k)) % 10;
            out.push(char::from(b'0' + d as u8));
        }
    }
    out.push('Z');
    out
}

/// A stable UUID for an entity id (12 bytes) so `entryUUID` never changes.
fn entry_uuid(id: &Id) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_str().as_bytes());
    let b = d.as_ref();
    let h = data_encoding::HEXLOWER.encode(&b[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl<'a> Tree<'a> {
    pub fn new(snap: &'a Snapshot, dir: &'a Directory) -> Self {
        let suffix = snap.org.as_ref().map_or_else(
            || "dc=stratus,dc=local".to_string(),
            |o| o.ldap_suffix.clone(),
        );
        // A suffix stored before the core validated it may not parse; it then matches nothing but itself.
        let (suffix_norm, suffix_rdns) = match dn::parse(&suffix) {
            Ok(rdns) => (dn::join(&rdns), rdns.len()),
            Err(_) => (suffix.to_lowercase(), usize::MAX),
        };
        Tree {
            snap,
            dir,
            suffix,
            suffix_norm,
            suffix_rdns,
        }
    }

    pub fn users_ou(&self) -> String {
        format!("ou=Users,{}", self.suffix)
    }

    pub fn user_dn(&self, u: &User) -> String {
        format!(
            "uid={},ou=Users,{}",
            dn::escape_value(&u.username),
            self.suffix
        )
    }

    pub fn group_dn(&self, g: &Group) -> String {
        format!("cn={},ou=Users,{}", dn::escape_value(&g.name), self.suffix)
    }

    fn samba_domain_dn(&self) -> Option<String> {
        let org = self.snap.org.as_ref()?;
        Some(format!(
            "sambaDomainName={},{}",
            dn::escape_value(&org.samba_domain),
            self.suffix
        ))
    }

    /// The RDNs of a DN below the suffix (empty for the suffix itself); `None` when the DN is outside our tree.
    pub fn below_suffix<'r>(&self, rdns: &'r [dn::Rdn]) -> Option<&'r [dn::Rdn]> {
        let local = rdns.len().checked_sub(self.suffix_rdns)?;
        (dn::join(&rdns[local..]) == self.suffix_norm).then_some(&rdns[..local])
    }

    /// The username a DN names when it has the form of a user entry, `uid=<username>,ou=Users,<suffix>`, whether
    /// or not that user exists.
    pub fn username_in<'r>(&self, rdns: &'r [dn::Rdn]) -> Option<&'r str> {
        match self.below_suffix(rdns)? {
            [leaf, ou] if leaf.attr == "uid" && is_users_ou(ou) => Some(&leaf.value),
            _ => None,
        }
    }

    /// Resolve a DN to an entry that exists (ignoring who reads).
    pub fn resolve(&self, text: &str) -> Option<EntryRef> {
        let rdns = dn::parse(text).ok()?;
        if rdns.is_empty() {
            return Some(EntryRef::RootDse);
        }
        if rdns.len() == 1
            && rdns[0].attr == "cn"
            && rdns[0].value.eq_ignore_ascii_case("subschema")
        {
            return Some(EntryRef::Subschema);
        }
        match self.below_suffix(&rdns)? {
            [] => Some(EntryRef::Suffix),
            [ou] if is_users_ou(ou) => Some(EntryRef::UsersOu),
            [d] if d.attr == "sambadomainname" => {
                let org = self.snap.org.as_ref()?;
                d.value
                    .eq_ignore_ascii_case(&org.samba_domain)
                    .then_some(EntryRef::SambaDomain)
            }
            [leaf, ou] if is_users_ou(ou) => match leaf.attr.as_str() {
                "uid" => self
                    .snap
                    .user_by_username(&leaf.value)
                    .filter(|u| self.snap.ldap_user_visible(u))
                    .map(|u| EntryRef::User(u.id.clone())),
                "cn" => self
                    .snap
                    .group_by_group_name(&leaf.value)
                    .filter(|g| self.snap.ldap_group_visible(&g.id))
                    .map(|g| EntryRef::Group(g.id.clone())),
                _ => None,
            },
            _ => None,
        }
    }

    fn reader_user(&self, reader: &Reader) -> Option<&Arc<User>> {
        match reader {
            Reader::Bound(id) => self.snap.user(id),
            Reader::Anonymous => None,
        }
    }

    /// May this reader use this entry as a search base? Ordinary users may search from the suffix or `ou=Users`
    /// (applications look themselves up that way) without reading those entries.
    pub fn traversable(&self, r: &EntryRef, reader: &Reader) -> bool {
        self.visible_to(r, reader)
            || (self.reader_user(reader).is_some()
                && matches!(r, EntryRef::Suffix | EntryRef::UsersOu))
    }

    /// May this reader see this entry at all?
    pub fn visible_to(&self, r: &EntryRef, reader: &Reader) -> bool {
        match (r, self.reader_user(reader)) {
            (EntryRef::RootDse, _) => true,
            (_, None) => false,
            (EntryRef::Subschema, Some(_)) => true,
            (EntryRef::User(id), Some(me)) => access::ldap_may_read_user(me, id),
            (_, Some(me)) => access::ldap_service_account(me),
        }
    }

    /// Children of an entry, in a stable order (users by username, then groups by name).
    pub fn children(&self, r: &EntryRef) -> Vec<EntryRef> {
        match r {
            EntryRef::Suffix => {
                let mut v = vec![EntryRef::UsersOu];
                if self.snap.org.is_some() {
                    v.push(EntryRef::SambaDomain);
                }
                v
            }
            EntryRef::UsersOu => {
                let mut users: Vec<&Arc<User>> = self
                    .snap
                    .users
                    .values()
                    .filter(|u| self.snap.ldap_user_visible(u))
                    .collect();
                users.sort_by(|a, b| a.username.cmp(&b.username));
                let mut groups: Vec<&Arc<Group>> = self
                    .snap
                    .groups
                    .values()
                    .filter(|g| self.snap.ldap_group_visible(&g.id))
                    .collect();
                groups.sort_by(|a, b| a.name.cmp(&b.name));
                users
                    .into_iter()
                    .map(|u| EntryRef::User(u.id.clone()))
                    .chain(groups.into_iter().map(|g| EntryRef::Group(g.id.clone())))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// Build an entry with at least the attributes in `want`; `None` when it has gone since it was found.
    pub fn build(&self, r: &EntryRef, reader: &Reader, want: AttributeSet) -> Option<Entry> {
        match r {
            EntryRef::RootDse => Some(self.root_dse(want)),
            EntryRef::Subschema => Some(subschema(want)),
            EntryRef::Suffix => Some(self.suffix_entry(want)),
            EntryRef::UsersOu => {
                let mut e = Entry::new(self.users_ou(), want);
                e.put(
                    "objectClass",
                    vec!["top".into(), "organizationalUnit".into()],
                );
                e.one("ou", "Users");
                e.one("structuralObjectClass", "organizationalUnit");
                e.one("hasSubordinates", "TRUE");
                e.one("subschemaSubentry", "cn=Subschema");
                Some(e)
            }
            EntryRef::SambaDomain => {
                let org = self.snap.org.as_ref()?;
                let mut e = Entry::new(self.samba_domain_dn()?, want);
                e.put("objectClass", vec!["top".into(), "sambaDomain".into()]);
                e.one("sambaDomainName", org.samba_domain.clone());
                e.one("sambaSID", org.samba_sid.clone());
                e.one("structuralObjectClass", "sambaDomain");
                e.one("hasSubordinates", "FALSE");
                Some(e)
            }
            EntryRef::User(id) => self.snap.user(id).map(|u| self.user_entry(u, reader, want)),
            EntryRef::Group(id) => self.snap.group(id).map(|g| self.group_entry(g, want)),
        }
    }

    fn root_dse(&self, want: AttributeSet) -> Entry {
        let mut e = Entry::new(String::new(), want);
        e.put("objectClass", vec!["top".into()]);
        e.one("namingContexts", self.suffix.clone());
        e.one("supportedLDAPVersion", "3");
        e.put(
            "supportedControl",
            vec![OID_PAGED_RESULTS.into(), OID_MANAGE_DSA_IT.into()],
        );
        e.put(
            "supportedExtension",
            vec![
                OID_STARTTLS.into(),
                OID_WHOAMI.into(),
                OID_PASSWD_MODIFY.into(),
            ],
        );
        e.one("vendorName", "Stratus");
        e.one("vendorVersion", format!("Stratus {VENDOR_VERSION}"));
        e.one("subschemaSubentry", "cn=Subschema");
        e
    }

    fn suffix_entry(&self, want: AttributeSet) -> Entry {
        let mut e = Entry::new(self.suffix.clone(), want);
        let first = dn::parse(&self.suffix)
            .ok()
            .and_then(|r| r.into_iter().next());
        let org_name = self
            .snap
            .org
            .as_ref()
            .map_or_else(|| "Stratus".to_string(), |o| o.name.clone());
        match first {
            Some(r) if r.attr == "dc" => {
                e.put(
                    "objectClass",
                    vec!["top".into(), "dcObject".into(), "organization".into()],
                );
                e.one("dc", r.value);
                e.one("o", org_name);
            }
            Some(r) if r.attr == "o" => {
                e.put("objectClass", vec!["top".into(), "organization".into()]);
                e.one("o", r.value);
                e.one("description", org_name);
            }
            _ => {
                e.put("objectClass", vec!["top".into(), "organization".into()]);
                e.one("o", org_name);
            }
        }
        e.one("structuralObjectClass", "organization");
        e.one("hasSubordinates", "TRUE");
        e.one("subschemaSubentry", "cn=Subschema");
        e
    }

    fn user_entry(&self, u: &User, reader: &Reader, want: AttributeSet) -> Entry {
        let mut e = Entry::new(self.user_dn(u), want);
        let samba = self.snap.ldap_samba_user(&u.id);
        let mut classes: Vec<String> = [
            "top",
            "person",
            "organizationalPerson",
            "inetOrgPerson",
            "posixAccount",
            "shadowAccount",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if samba {
            classes.push("sambaSamAccount".into());
        }
        e.put("objectClass", classes);
        let display = u.display();
        let cn = if display.is_empty() {
            u.username.clone()
        } else {
            display.clone()
        };
        e.one("uid", u.username.clone());
        e.one("cn", cn.clone());
        e.one(
            "sn",
            if u.lastname.is_empty() {
                u.username.clone()
            } else {
                u.lastname.clone()
            },
        );
        e.one("givenName", u.firstname.clone());
        e.one("displayName", cn.clone());
        e.one("mail", u.email.clone());
        e.one("uidNumber", u.uid_number.to_string());
        e.one("gidNumber", u.gid_number.to_string());
        e.one("homeDirectory", u.home_directory.clone());
        e.one("loginShell", u.login_shell.clone());
        e.one("gecos", cn);
        e.one(
            "employeeNumber",
            u.employment.employee_id.clone().unwrap_or_default(),
        );
        e.one("title", u.employment.title.clone().unwrap_or_default());
        e.one(
            "departmentNumber",
            u.employment.department.clone().unwrap_or_default(),
        );
        e.one("telephoneNumber", u.phone.clone().unwrap_or_default());
        if e.wants("memberOf") {
            let groups: Vec<String> = self
                .snap
                .groups_of(&u.id)
                .filter(|g| self.snap.ldap_group_visible(&g.id))
                .map(|g| self.group_dn(g))
                .collect();
            e.put("memberOf", groups);
        }
        if let Some(set) = u.password_set_at {
            e.one("shadowLastChange", (set.timestamp() / 86_400).to_string());
        }
        if u.state == UserState::Suspended {
            // Expired at day 1 of the epoch: PAM and sssd refuse the account.
            e.one("shadowExpire", "1");
        }
        if samba {
            let disabled = u.state != UserState::Active || u.is_locked(Utc::now());
            e.one_with("sambaSID", || {
                self.snap.samba_user_sid(u).unwrap_or_default()
            });
            if let Some(org) = &self.snap.org {
                e.one("sambaPrimaryGroupSID", format!("{}-513", org.samba_sid));
            }
            e.one(
                "sambaAcctFlags",
                if disabled {
                    "[UD         ]"
                } else {
                    "[U          ]"
                },
            );
            if let Some(set) = u.password_set_at {
                e.one("sambaPwdLastSet", set.timestamp().to_string());
            }
            if e.wants("sambaNTPassword")
                && self
                    .reader_user(reader)
                    .is_some_and(|me| access::ldap_service_account(me))
            {
                if let Some(nt) = self.dir.user_nt_hash(u) {
                    e.one("sambaNTPassword", data_encoding::HEXUPPER.encode(&nt));
                }
            }
        }
        self.operational(&mut e, &u.id, "inetOrgPerson", u.created_at, u.updated_at);
        e
    }

    fn group_entry(&self, g: &Group, want: AttributeSet) -> Entry {
        let mut e = Entry::new(self.group_dn(g), want);
        let mut classes = vec!["top".to_string(), "groupOfNames".to_string()];
        if g.linux_group.is_some() {
            classes.push("posixGroup".into());
        }
        let samba = g.samba && g.linux_group.is_some();
        if samba {
            classes.push("sambaGroupMapping".into());
        }
        e.put("objectClass", classes);
        e.one("cn", g.name.clone());
        e.one("description", g.description.clone());
        let mut members: Vec<&Arc<User>> = Vec::new();
        if e.wants("member") || e.wants("memberUid") {
            members.extend(
                self.snap
                    .members_of(&g.id)
                    .filter(|u| self.snap.ldap_user_visible(u)),
            );
            members.sort_by(|a, b| a.username.cmp(&b.username));
        }
        if e.wants("member") {
            e.put("member", members.iter().map(|u| self.user_dn(u)).collect());
        }
        if let Some(lg) = &g.linux_group {
            e.one("gidNumber", lg.gid.to_string());
            e.put(
                "memberUid",
                members.iter().map(|u| u.username.clone()).collect(),
            );
            if samba {
                if let Some(org) = &self.snap.org {
                    e.one(
                        "sambaSID",
                        format!(
                            "{}-{}",
                            org.samba_sid,
                            core_directory::snapshot::samba_group_rid(lg.gid)
                        ),
                    );
                }
                e.one("sambaGroupType", "2");
                e.one("displayName", g.name.clone());
            }
        }
        self.operational(&mut e, &g.id, "groupOfNames", g.created_at, g.updated_at);
        e
    }

    fn operational(
        &self,
        e: &mut Entry,
        id: &Id,
        structural: &str,
        created: DateTime<Utc>,
        modified: DateTime<Utc>,
    ) {
        e.one_with("entryUUID", || entry_uuid(id));
        let entry_dn = e.dn.clone();
        e.one_with("entryDN", || entry_dn);
        e.one_with("createTimestamp", || generalized(created));
        e.one_with("modifyTimestamp", || generalized(modified));
        e.one("structuralObjectClass", structural);
        e.one("hasSubordinates", "FALSE");
        e.one("subschemaSubentry", "cn=Subschema");
    }
}

fn subschema(want: AttributeSet) -> Entry {
    let mut e = Entry::new("cn=Subschema".into(), want);
    e.put("objectClass", vec!["top".into(), "subschema".into()]);
    e.one("cn", "Subschema");
    if e.wants("objectClasses") {
        e.put("objectClasses", schema::object_class_descriptions());
    }
    if e.wants("attributeTypes") {
        e.put("attributeTypes", schema::attribute_type_descriptions());
    }
    e.one("structuralObjectClass", "subschema");
    e
}
