//! Active Directory (and Samba AD) over LDAPS: `user` objects under the users container named by their
//! sAMAccountName (the Stratus user name), the password set through `unicodePwd` (the quoted password in
//! UTF-16LE, which AD accepts only over an encrypted connection), enabled and disabled through
//! `userAccountControl` (512 / 514), and the bound groups mirrored as global security groups.

use crate::conn::{
    disable_by, display_name, ensure_member, filter_value, find, rdn_value, values, Target,
};
use crate::{Account, Connector, Pending};
use ldap3::Mod;
use std::collections::HashSet;

pub struct ActiveDirectory(pub Target);

const ENABLED: &str = "512";
const DISABLED: &str = "514";

/// The realm of a DN's domain components (`dc=corp,dc=example` → `corp.example`).
fn realm(dn: &str) -> String {
    dn.split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.trim().split_once('=')?;
            k.eq_ignore_ascii_case("dc").then(|| v.to_ascii_lowercase())
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// `unicodePwd`'s value: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

impl Connector for ActiveDirectory {
    fn upsert<'a>(
        &'a self,
        account: Account<'a>,
        password: Option<&'a str>,
    ) -> Pending<'a, String> {
        Box::pin(async move {
            let t = &self.0;
            let u = account.user;
            let sam = &u.username;
            if sam.chars().count() > 20 {
                return Err(format!(
                    "the user name {sam} is longer than the 20 characters of an Active Directory sAMAccountName"
                ));
            }
            let mut ldap = t.connect().await?;
            let display = display_name(u);
            let found = find(
                &mut ldap,
                &t.users_dn,
                &format!(
                    "(&(objectClass=user)(sAMAccountName={}))",
                    filter_value(sam)
                ),
            )
            .await?;
            let dn = match found {
                Some(dn) => {
                    let mods = vec![
                        Mod::Replace("givenName".to_string(), values(&u.firstname)),
                        Mod::Replace("sn".to_string(), values(&u.lastname)),
                        Mod::Replace("displayName".to_string(), values(&display)),
                        Mod::Replace("mail".to_string(), values(&u.email)),
                    ];
                    ldap.modify(&dn, mods)
                        .await
                        .and_then(|r| r.success())
                        .map_err(|e| format!("updating {dn} failed: {e}"))?;
                    dn
                }
                None => {
                    if password.is_none() {
                        return Err(
                            "no account there yet; it is made at the user's next sign-in".into(),
                        );
                    }
                    let dn = format!("CN={},{}", rdn_value(sam), t.users_dn);
                    let mut attrs: Vec<(String, HashSet<String>)> = vec![
                        (
                            "objectClass".into(),
                            ["top", "person", "organizationalPerson", "user"]
                                .map(String::from)
                                .into(),
                        ),
                        ("sAMAccountName".into(), [sam.clone()].into()),
                        (
                            "userPrincipalName".into(),
                            [format!("{sam}@{}", realm(&t.users_dn))].into(),
                        ),
                        ("userAccountControl".into(), [DISABLED.to_string()].into()),
                    ];
                    for (a, v) in [
                        ("givenName", &u.firstname),
                        ("sn", &u.lastname),
                        ("displayName", &display),
                        ("mail", &u.email),
                    ] {
                        if !v.trim().is_empty() {
                            attrs.push((a.into(), values(v)));
                        }
                    }
                    ldap.add(&dn, attrs)
                        .await
                        .and_then(|r| r.success())
                        .map_err(|e| format!("creating {dn} failed: {e}"))?;
                    dn
                }
            };
            if let Some(pw) = password {
                ldap.modify(
                    &dn,
                    vec![Mod::Replace(
                        b"unicodePwd".to_vec(),
                        [unicode_pwd(pw)].into(),
                    )],
                )
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("setting the password of {dn} failed: {e}"))?;
            }
            ldap.modify(
                &dn,
                vec![Mod::Replace(
                    "userAccountControl".to_string(),
                    [ENABLED.to_string()].into(),
                )],
            )
            .await
            .and_then(|r| r.success())
            .map_err(|e| format!("enabling {dn} failed: {e}"))?;
            if let Some(groups_dn) = &t.groups_dn {
                for g in account.groups {
                    ensure_member(
                        &mut ldap,
                        groups_dn,
                        "CN",
                        g,
                        &dn,
                        vec![
                            ("objectClass", vec!["top".into(), "group".into()]),
                            ("sAMAccountName", vec![g.clone()]),
                            // A global security group.
                            ("groupType", vec!["-2147483646".into()]),
                        ],
                    )
                    .await?;
                }
            }
            let _ = ldap.unbind().await;
            Ok(dn)
        })
    }

    fn disable<'a>(&'a self, remote_dn: &'a str) -> Pending<'a, ()> {
        Box::pin(disable_by(
            &self.0,
            remote_dn,
            "userAccountControl",
            DISABLED,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_realm_comes_from_the_domain_components_and_the_password_is_quoted_utf16() {
        assert_eq!(realm("CN=Users,DC=Corp,DC=Example"), "corp.example");
        assert_eq!(unicode_pwd("a"), vec![b'"', 0, b'a', 0, b'"', 0]);
    }
}
