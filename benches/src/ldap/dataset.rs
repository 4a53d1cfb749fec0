//! The synthetic population both servers get: the same usernames, the same password, the same groups of 100,
//! under the same DIT (`uid=<username>,ou=Users,<suffix>` and `cn=<group>,ou=Users,<suffix>`).

use crate::BoxError;
use aws_lc_rs::digest;
use data_encoding::BASE64;
use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::ops::Range;
use std::path::Path;

/// Every user's password, on both servers.
pub const PASSWORD: &str = "Bench-Password-1";
/// The LDAP service account the search phase binds as, on both servers: `uid=svc-bench,ou=Users,<suffix>`.
pub const SERVICE_USER: &str = "svc-bench";
pub const SERVICE_PASSWORD: &str = "Bench-Service-Pass-1";
/// Members per group (the last group may have fewer).
pub const GROUP_SIZE: usize = 100;
/// uidNumber of the first slapd user; Stratus allocates its own from the org's UID range.
const FIRST_UID: u32 = 10_000;
/// gidNumber of the first group, on both servers: far above the user numbers either allocates.
pub const FIRST_GID: u32 = 1_000_000;

/// `users` users named `bench0000000`…, in groups of [`GROUP_SIZE`] consecutive users.
#[derive(Clone, Copy)]
pub struct Dataset {
    pub users: usize,
}

impl Dataset {
    pub fn username(i: usize) -> String {
        format!("bench{i:07}")
    }

    pub fn email(i: usize) -> String {
        format!("bench{i:07}@bench.local")
    }

    pub const FIRST_NAME: &'static str = "Bench";

    pub fn last_name(i: usize) -> String {
        format!("User{i:07}")
    }

    pub fn groups(&self) -> usize {
        self.users.div_ceil(GROUP_SIZE)
    }

    pub fn group_name(j: usize) -> String {
        format!("bench-group-{j:05}")
    }

    pub fn group_gid(j: usize) -> u32 {
        FIRST_GID + j as u32
    }

    /// Users `range` as a CSV import file: names, e-mail, the password and the user's group.
    pub fn import_csv(range: Range<usize>) -> String {
        let mut csv = String::from("firstname,lastname,username,email,password,groups\n");
        for i in range {
            csv.push_str(&format!(
                "{},{},{},{},{PASSWORD},{}\n",
                Self::FIRST_NAME,
                Self::last_name(i),
                Self::username(i),
                Self::email(i),
                Self::group_name(Self::group_of(i)),
            ));
        }
        csv
    }

    /// The group of user `i`.
    pub fn group_of(i: usize) -> usize {
        i / GROUP_SIZE
    }

    /// The user indices in group `j`.
    pub fn group_members(&self, j: usize) -> Range<usize> {
        j * GROUP_SIZE..((j + 1) * GROUP_SIZE).min(self.users)
    }

    /// The whole tree for slapd under `suffix`: the suffix entry, `ou=Users`, the service account, every user
    /// with an `{SSHA}` password and every group. Returns the number of entries written.
    ///
    /// Groups differ from Stratus's in one respect: the stock `nis.schema` makes `posixGroup` structural, as
    /// `groupOfNames` is, and slapd refuses an entry with two unrelated structural classes. So slapd groups are
    /// `posixGroup` + `extensibleObject` (auxiliary, allowing any attribute) carrying both `memberUid` and
    /// `member` DNs, where Stratus serves `groupOfNames` + `posixGroup`. The benchmark searches and binds users
    /// only, so the difference is never measured.
    pub fn write_ldif(&self, suffix: &str, path: &Path) -> Result<usize, BoxError> {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        let mut entry = String::with_capacity(1024);
        let mut entries = 0usize;

        suffix_entry(suffix, &mut entry)?;
        writeln!(
            entry,
            "dn: ou=Users,{suffix}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Users\n"
        )?;
        writeln!(
            entry,
            "dn: uid={SERVICE_USER},ou=Users,{suffix}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: inetOrgPerson\nuid: {SERVICE_USER}\n\
             cn: Bench Service\nsn: Service\nmail: svc@bench.local\nuserPassword: {}\n",
            ssha(SERVICE_PASSWORD)?
        )?;
        out.write_all(entry.as_bytes())?;
        entries += 3;

        for i in 0..self.users {
            entry.clear();
            let uid = Self::username(i);
            let (given, sn) = (Self::FIRST_NAME, Self::last_name(i));
            let number = FIRST_UID + i as u32;
            writeln!(entry, "dn: uid={uid},ou=Users,{suffix}")?;
            for class in [
                "top",
                "person",
                "organizationalPerson",
                "inetOrgPerson",
                "posixAccount",
                "shadowAccount",
            ] {
                writeln!(entry, "objectClass: {class}")?;
            }
            writeln!(
                entry,
                "uid: {uid}\ncn: {given} {sn}\nsn: {sn}\ngivenName: {given}\nmail: {}\n\
                 uidNumber: {number}\ngidNumber: {number}\nhomeDirectory: /home/{uid}\n\
                 loginShell: /bin/bash\nuserPassword: {}\n",
                Self::email(i),
                ssha(PASSWORD)?,
            )?;
            out.write_all(entry.as_bytes())?;
            entries += 1;
        }

        for j in 0..self.groups() {
            entry.clear();
            let name = Self::group_name(j);
            writeln!(
                entry,
                "dn: cn={name},ou=Users,{suffix}\nobjectClass: top\nobjectClass: posixGroup\n\
                 objectClass: extensibleObject\ncn: {name}\ngidNumber: {}",
                Self::group_gid(j)
            )?;
            for i in self.group_members(j) {
                writeln!(entry, "memberUid: {}", Self::username(i))?;
            }
            for i in self.group_members(j) {
                writeln!(entry, "member: uid={},ou=Users,{suffix}", Self::username(i))?;
            }
            entry.push('\n');
            out.write_all(entry.as_bytes())?;
            entries += 1;
        }
        out.flush()?;
        Ok(entries)
    }
}

/// The entry of the suffix itself, from its first RDN: `o=` (organization), `dc=` (dcObject + organization) or
/// `ou=` (organizationalUnit).
fn suffix_entry(suffix: &str, entry: &mut String) -> Result<(), BoxError> {
    let rdn = suffix.split(',').next().unwrap_or_default();
    let (attr, value) = rdn
        .split_once('=')
        .ok_or_else(|| format!("suffix {suffix:?} does not start with attr=value"))?;
    let value = value.trim();
    writeln!(entry, "dn: {suffix}\nobjectClass: top")?;
    match attr.trim().to_ascii_lowercase().as_str() {
        "o" => writeln!(entry, "objectClass: organization\no: {value}\n")?,
        "dc" => writeln!(
            entry,
            "objectClass: dcObject\nobjectClass: organization\ndc: {value}\no: {value}\n"
        )?,
        "ou" => writeln!(entry, "objectClass: organizationalUnit\nou: {value}\n")?,
        other => return Err(format!("suffix RDN type {other:?} is not o, dc or ou").into()),
    }
    Ok(())
}

/// `{SSHA}` as slapd's `slappasswd` makes it: base64 of SHA-1(password ‖ salt) ‖ salt, with an 8-byte random
/// salt.
pub fn ssha(password: &str) -> Result<String, BoxError> {
    let mut salt = [0u8; 8];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no randomness for an SSHA salt")?;
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(password.as_bytes());
    ctx.update(&salt);
    let mut raw = ctx.finish().as_ref().to_vec();
    raw.extend_from_slice(&salt);
    Ok(format!("{{SSHA}}{}", BASE64.encode(&raw)))
}
