//! An LDAP directory such as OpenLDAP: `inetOrgPerson` entries `uid=<user name>` under the users DN, the
//! password as a salted SHA-1 (`{SSHA}`), which every OpenLDAP accepts, and the bound groups mirrored as
//! `groupOfNames`. Such directories have no standard "disabled" flag: disabling replaces the password with a
//! value no password matches (`{CRYPT}!`), so binds fail while the entry and its attributes stay.

use crate::conn::{
    disable_by, display_name, ensure_member, filter_value, find, rdn_value, values, Target,
};
use crate::{Account, Connector, Pending};
use ldap3::Mod;
use std::collections::HashSet;

pub struct Ldap(pub Target);

/// `{SSHA}` of a password with 8 random bytes of salt.
fn ssha(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 8];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no random salt".to_string())?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(password.as_bytes());
    ctx.update(&salt);
    let mut raw = ctx.finish().as_ref().to_vec();
    raw.extend_from_slice(&salt);
    Ok(format!("{{SSHA}}{}", data_encoding::BASE64.encode(&raw)))
}

impl Connector for Ldap {
    fn upsert<'a>(
        &'a self,
        account: Account<'a>,
        password: Option<&'a str>,
    ) -> Pending<'a, String> {
        Box::pin(async move {
            let t = &self.0;
            let u = account.user;
            let mut ldap = t.connect().await?;
            let display = display_name(u);
            let cn = if display.is_empty() {
                u.username.clone()
            } else {
                display.clone()
            };
            let sn = if u.lastname.trim().is_empty() {
                u.username.clone()
            } else {
                u.lastname.clone()
            };
            let found = find(
                &mut ldap,
                &t.users_dn,
                &format!("(uid={})", filter_value(&u.username)),
            )
            .await?;
            let dn = match found {
                Some(dn) => {
                    let mut mods = vec![
                        Mod::Replace("cn".to_string(), values(&cn)),
                        Mod::Replace("sn".to_string(), values(&sn)),
                        Mod::Replace("givenName".to_string(), values(&u.firstname)),
                        Mod::Replace("displayName".to_string(), values(&display)),
                        Mod::Replace("mail".to_string(), values(&u.email)),
                    ];
                    if let Some(pw) = password {
                        mods.push(Mod::Replace("userPassword".to_string(), [ssha(pw)?].into()));
                    }
                    ldap.modify(&dn, mods)
                        .await
                        .and_then(|r| r.success())
                        .map_err(|e| format!("updating {dn} failed: {e}"))?;
                    dn
                }
                None => {
                    let Some(pw) = password else {
                        return Err(
                            "no account there yet; it is made at the user's next sign-in".into(),
                        );
                    };
                    let dn = format!("uid={},{}", rdn_value(&u.username), t.users_dn);
                    let mut attrs: Vec<(String, HashSet<String>)> = vec![
                        (
                            "objectClass".into(),
                            ["top", "person", "organizationalPerson", "inetOrgPerson"]
                                .map(String::from)
                                .into(),
                        ),
                        ("uid".into(), [u.username.clone()].into()),
                        ("cn".into(), values(&cn)),
                        ("sn".into(), values(&sn)),
                        ("userPassword".into(), [ssha(pw)?].into()),
                    ];
                    for (a, v) in [
                        ("givenName", &u.firstname),
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
            if let Some(groups_dn) = &t.groups_dn {
                for g in account.groups {
                    ensure_member(
                        &mut ldap,
                        groups_dn,
                        "cn",
                        g,
                        &dn,
                        vec![
                            ("objectClass", vec!["top".into(), "groupOfNames".into()]),
                            ("cn", vec![g.clone()]),
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
        Box::pin(disable_by(&self.0, remote_dn, "userPassword", "{CRYPT}!"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssha_is_salted_sha1_with_the_salt_appended() {
        let h = ssha("secret").unwrap();
        let raw = data_encoding::BASE64
            .decode(h.trim_start_matches("{SSHA}").as_bytes())
            .unwrap();
        assert_eq!(raw.len(), 28);
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
        ctx.update(b"secret");
        ctx.update(&raw[20..]);
        assert_eq!(ctx.finish().as_ref(), &raw[..20]);
        assert_ne!(ssha("secret").unwrap(), h, "a new salt each time");
    }
}
