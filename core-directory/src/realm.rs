//! Realms in a RADIUS User-Name (`user@realm`, `REALM\user`) and the per-profile rule that reads them.
//!
//! The rule is a pure function of the profile's [`RealmRule`] and the text the NAS or supplicant sent: it returns
//! the name the one authentication path looks up, or why the name is refused. It knows nothing about users, so it
//! composes with whatever the lookup accepts (a user name today; an e-mail-shaped login name tomorrow).
//!
//! Where the realm is (RFC 7542 §2 and Windows practice): a `\` makes what comes before the first one an NT domain
//! (`CORP\ann`); otherwise what follows the last `@` is the realm (`ann@corp.example`).
//!
//! - [`RealmMode::Keep`] (the default): `user@realm` stays whole — it may be a login name in its own right — and
//!   a `DOMAIN\` prefix is dropped, as Stratus always did for PEAP and EAP-TTLS: Windows puts its domain there,
//!   MS-CHAPv2 leaves it out of its hash (RFC 2759 §4), and no Stratus user name can hold a `\`.
//! - [`RealmMode::Strip`]: either form loses its realm.
//! - [`RealmMode::Require`]: a name without a realm is refused; so is a realm outside the profile's list when the
//!   list is not empty (compared without regard to case). The realm is then removed.

use crate::model::{RadiusMethod, RealmMode, RealmRule};
use std::fmt;

/// Why a User-Name was refused by the profile's realm rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RealmRefusal {
    /// The profile requires a realm and the name has none.
    Missing,
    /// The realm is not one the profile accepts.
    NotAccepted(String),
    /// The user part or the realm is empty (`@corp`, `ann@`, `\ann`).
    Empty,
}

impl fmt::Display for RealmRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RealmRefusal::Missing => {
                f.write_str("the user name has no realm and this RADIUS server requires one")
            }
            RealmRefusal::NotAccepted(r) => {
                let r: String = r.chars().take(64).collect();
                write!(f, "realm `{r}` is not accepted by this RADIUS server")
            }
            RealmRefusal::Empty => f.write_str("the user name has an empty user or realm part"),
        }
    }
}

/// A name split into its realm and the rest; `None` when it carries no realm.
pub fn split(name: &str) -> Option<(&str, &str)> {
    if let Some((domain, user)) = name.split_once('\\') {
        return Some((domain, user));
    }
    name.rsplit_once('@').map(|(user, realm)| (realm, user))
}

/// The name MS-CHAPv2 hashes (RFC 2759 §4, §8.2): the user name without a leading `DOMAIN\`, as Windows and
/// wpa_supplicant compute it. An `@realm` stays in the hash.
pub fn mschap_name(name: &str) -> &str {
    name.split_once('\\').map_or(name, |(_, user)| user)
}

impl RealmRule {
    /// The name to look up for the `sent` User-Name (or inner EAP identity), or why it is refused.
    pub fn user_name<'a>(&self, sent: &'a str) -> Result<&'a str, RealmRefusal> {
        let parts = split(sent);
        match (self.mode, parts) {
            (RealmMode::Keep, _) => Ok(mschap_name(sent)),
            (RealmMode::Strip, None) => Ok(sent),
            (RealmMode::Require, None) => Err(RealmRefusal::Missing),
            (_, Some((realm, user))) if realm.is_empty() || user.is_empty() => {
                Err(RealmRefusal::Empty)
            }
            (RealmMode::Strip, Some((_, user))) => Ok(user),
            (RealmMode::Require, Some((realm, user))) => {
                if self.realms.is_empty()
                    || self.realms.iter().any(|r| r.eq_ignore_ascii_case(realm))
                {
                    Ok(user)
                } else {
                    Err(RealmRefusal::NotAccepted(realm.to_string()))
                }
            }
        }
    }
}

impl crate::Directory {
    /// The name to look up for a RADIUS User-Name (or inner identity) under `rule`: a user's own e-mail-shaped
    /// login name is that user whatever the rule would strip (under `require` its realm must still be accepted),
    /// so that `strip` never turns `jane.doe@contoso.example` into another user's `jane.doe`; any other name goes
    /// through the rule.
    pub fn radius_user_name(&self, rule: &RealmRule, sent: &str) -> Result<String, RealmRefusal> {
        if !sent.contains('\\')
            && self
                .snapshot()
                .user_by_login
                .contains_key(&crate::snapshot::fold(sent))
        {
            if let (RealmMode::Require, Some((realm, _))) = (rule.mode, split(sent)) {
                if !rule.realms.is_empty()
                    && !rule.realms.iter().any(|r| r.eq_ignore_ascii_case(realm))
                {
                    return Err(RealmRefusal::NotAccepted(realm.to_string()));
                }
            }
            return Ok(sent.to_string());
        }
        rule.user_name(sent).map(str::to_string)
    }
}

impl RadiusMethod {
    /// Methods whose proof is an MS-CHAPv2 response, checked against the user's NT hash.
    pub fn uses_nt_hash(self) -> bool {
        matches!(
            self,
            RadiusMethod::PeapMschapv2 | RadiusMethod::Mschapv2 | RadiusMethod::EapTtlsMschapv2
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mode: RealmMode, realms: &[&str]) -> RealmRule {
        RealmRule {
            mode,
            realms: realms.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn keep_leaves_at_realms_whole_and_drops_only_an_nt_domain() {
        let r = rule(RealmMode::Keep, &[]);
        assert_eq!(r.user_name("ann"), Ok("ann"));
        assert_eq!(r.user_name("ann@corp.example"), Ok("ann@corp.example"));
        assert_eq!(r.user_name("CORP\\ann"), Ok("ann"));
        assert_eq!(r.user_name("CORP\\ann@x"), Ok("ann@x"));
    }

    #[test]
    fn strip_removes_either_form_of_realm() {
        let r = rule(RealmMode::Strip, &[]);
        assert_eq!(r.user_name("ann"), Ok("ann"));
        assert_eq!(r.user_name("ann@corp.example"), Ok("ann"));
        assert_eq!(r.user_name("a@b@corp.example"), Ok("a@b"));
        assert_eq!(r.user_name("CORP\\ann"), Ok("ann"));
        assert_eq!(r.user_name("ann@"), Err(RealmRefusal::Empty));
        assert_eq!(r.user_name("\\ann"), Err(RealmRefusal::Empty));
    }

    #[test]
    fn require_refuses_missing_and_unlisted_realms() {
        let any = rule(RealmMode::Require, &[]);
        assert_eq!(any.user_name("ann"), Err(RealmRefusal::Missing));
        assert_eq!(any.user_name("ann@whatever"), Ok("ann"));
        let listed = rule(RealmMode::Require, &["corp.example", "CORP"]);
        assert_eq!(listed.user_name("ann@Corp.Example"), Ok("ann"));
        assert_eq!(listed.user_name("corp\\ann"), Ok("ann"));
        assert_eq!(
            listed.user_name("ann@evil.example"),
            Err(RealmRefusal::NotAccepted("evil.example".into()))
        );
        assert_eq!(listed.user_name("@corp"), Err(RealmRefusal::Empty));
    }

    #[test]
    fn the_mschap_hash_name_loses_only_an_nt_domain() {
        assert_eq!(mschap_name("CORP\\ann"), "ann");
        assert_eq!(mschap_name("ann@corp.example"), "ann@corp.example");
        assert_eq!(mschap_name("a\\b\\c"), "b\\c");
    }
}
