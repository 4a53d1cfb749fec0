//! The master key's check value and rotation. A directory keeps one value sealed under its master key
//! ([`META_KEY_CHECK`]); at start a key that does not open it is refused before anything is served, so a lost or
//! replaced key is found at once instead of at the first TOTP code or RADIUS request. Rotation re-seals every
//! secret of the directory under a new key in one transaction. This module opens no file; the key files are the
//! caller's.

use super::admins::admin_totp_purpose;
use super::provisioning::token_purpose;
use super::resources::{key_purpose, radius_purpose};
use super::users::{nt_purpose, totp_purpose};
use super::Directory;
use crate::crypto::{MasterKey, Sealed};
use crate::error::{DirectoryError, Result};
use crate::snapshot::{Snapshot, META_KEY_CHECK};
use crate::store::Kind;
use std::sync::Arc;

const CHECK_PURPOSE: &str = "master-key-check";
const CHECK_TEXT: &[u8] = b"this is the master key of this Stratus directory";

/// Why a key was refused, in words an operator can act on.
pub const WRONG_KEY: &str = "the master key does not open this directory's secrets: it is not the key the store \
    was sealed with (data/master.key was replaced or deleted, or STRATUS_MASTER_KEY differs). Put the original key \
    back (data/master.key from a backup, or the same STRATUS_MASTER_KEY on every node); a new key cannot open the \
    TOTP seeds, RADIUS secrets, NT hashes, IdP keys and SCIM tokens already stored";

/// One sealed secret of the directory: its purpose and value.
struct SealedSecret<'a> {
    purpose: String,
    value: &'a Sealed,
}

/// Every secret sealed under the master key in `snap`.
fn secrets(snap: &Snapshot) -> Vec<SealedSecret<'_>> {
    let mut out = Vec::new();
    for u in snap.users.values() {
        if let Some(t) = &u.totp {
            out.push(SealedSecret {
                purpose: totp_purpose(&u.id),
                value: &t.secret,
            });
        }
        if let Some(nt) = &u.nt_hash {
            out.push(SealedSecret {
                purpose: nt_purpose(&u.id),
                value: nt,
            });
        }
    }
    for a in snap.admins.values() {
        if let Some(t) = &a.totp {
            out.push(SealedSecret {
                purpose: admin_totp_purpose(&a.id),
                value: &t.secret,
            });
        }
    }
    for r in snap.radius_servers.values() {
        out.push(SealedSecret {
            purpose: radius_purpose(&r.id),
            value: &r.secret,
        });
    }
    for app in snap.apps.values() {
        for k in &app.idp_keys {
            out.push(SealedSecret {
                purpose: key_purpose(&app.id),
                value: &k.private_key,
            });
        }
        if let Some(c) = &app.scim {
            out.push(SealedSecret {
                purpose: token_purpose(&app.id),
                value: &c.token,
            });
        }
    }
    out
}

/// Whether `key` is the key of the directory in `snap`: it opens the check value, or, in a directory made
/// before check values existed, it opens at least one of its secrets (or there are none).
pub(crate) fn verify(snap: &Snapshot, key: &MasterKey) -> Result<()> {
    if let Some(check) = &snap.key_check {
        return match key.open(CHECK_PURPOSE, check) {
            Ok(text) if text == CHECK_TEXT => Ok(()),
            _ => Err(DirectoryError::WrongMasterKey(WRONG_KEY.into())),
        };
    }
    let all = secrets(snap);
    if all.is_empty() || all.iter().any(|s| key.open(&s.purpose, s.value).is_ok()) {
        Ok(())
    } else {
        Err(DirectoryError::WrongMasterKey(WRONG_KEY.into()))
    }
}

/// What [`Directory::rotate_master_key`] re-sealed.
#[derive(Debug, Default)]
pub struct Rotated {
    pub secrets: usize,
}

impl Directory {
    /// Record the master key's check value if the directory has none yet (a new directory, or one made before
    /// check values existed). Called once at start, after the key was verified.
    pub async fn record_key_check(&self) -> Result<()> {
        if self.snapshot().key_check.is_some() {
            return Ok(());
        }
        let sealed = self.master_key.seal(CHECK_PURPOSE, CHECK_TEXT);
        self.write(move |tx| {
            if tx.snap.key_check.is_none() {
                tx.batch.put_json(Kind::Meta, META_KEY_CHECK, &sealed);
                tx.snap.key_check = Some(sealed);
            }
            Ok(())
        })
        .await
    }

    /// Re-seal every secret of the directory and the check value under `new`, in one transaction. Every secret
    /// must open under the current key first: one that does not stops the rotation and nothing changes. The
    /// caller keeps `new` safe before calling (the store is sealed under it once this returns) and stops using
    /// this `Directory` afterwards (it still holds the old key).
    pub async fn rotate_master_key(&self, new: &MasterKey) -> Result<Rotated> {
        let old = &self.master_key;
        self.write(|tx| {
            let count = std::cell::Cell::new(0usize);
            let reseal = |purpose: &str, value: &Sealed| -> Result<Sealed> {
                let plain = old.open(purpose, value).map_err(|_| {
                    DirectoryError::Internal(format!(
                        "a secret ({purpose}) does not open under the current key; nothing was rotated"
                    ))
                })?;
                count.set(count.get() + 1);
                Ok(new.seal(purpose, &plain))
            };
            let users: Vec<_> = tx.snap.users.values().cloned().collect();
            for u in users {
                if u.totp.is_none() && u.nt_hash.is_none() {
                    continue;
                }
                let mut u = (*u).clone();
                if let Some(t) = &mut u.totp {
                    t.secret = reseal(&totp_purpose(&u.id), &t.secret)?;
                }
                if let Some(nt) = &u.nt_hash {
                    u.nt_hash = Some(reseal(&nt_purpose(&u.id), nt)?);
                }
                tx.put_user_counters(u);
            }
            let admins: Vec<_> = tx.snap.admins.values().cloned().collect();
            for a in admins {
                if a.totp.is_none() {
                    continue;
                }
                let mut a = (*a).clone();
                if let Some(t) = &mut a.totp {
                    t.secret = reseal(&admin_totp_purpose(&a.id), &t.secret)?;
                }
                tx.batch.put_json(Kind::Admin, a.id.as_str(), &a);
                tx.snap.put_admin(Arc::new(a));
            }
            let servers: Vec<_> = tx.snap.radius_servers.values().cloned().collect();
            for r in servers {
                let mut r = (*r).clone();
                r.secret = reseal(&radius_purpose(&r.id), &r.secret)?;
                tx.batch.put_json(Kind::RadiusServer, r.id.as_str(), &r);
                tx.snap.radius_servers.insert(r.id.clone(), Arc::new(r));
            }
            let directories: Vec<_> = tx.snap.external_directories.values().cloned().collect();
            for d in directories {
                let mut d = (*d).clone();
                d.bind_password = reseal(&format!("external:{}", d.id), &d.bind_password)?;
                tx.batch.put_json(Kind::ExternalDirectory, d.id.as_str(), &d);
                tx.snap.external_directories.insert(d.id.clone(), Arc::new(d));
            }
            let apps: Vec<_> = tx.snap.apps.values().cloned().collect();
            for app in apps {
                if app.idp_keys.is_empty() && app.scim.is_none() {
                    continue;
                }
                let mut app = (*app).clone();
                let (kp, tp) = (key_purpose(&app.id), token_purpose(&app.id));
                for k in &mut app.idp_keys {
                    k.private_key = reseal(&kp, &k.private_key)?;
                }
                if let Some(c) = &mut app.scim {
                    c.token = reseal(&tp, &c.token)?;
                }
                tx.batch.put_json(Kind::App, app.id.as_str(), &app);
                tx.snap.apps.insert(app.id.clone(), Arc::new(app));
            }
            let check = new.seal(CHECK_PURPOSE, CHECK_TEXT);
            tx.batch.put_json(Kind::Meta, META_KEY_CHECK, &check);
            tx.snap.key_check = Some(check);
            tx.event(
                crate::events::Event::new(crate::events::Service::Directory, "master_key_rotate", true)
                    .actor("system")
                    .detail("secrets", count.get()),
            );
            Ok(Rotated {
                secrets: count.get(),
            })
        })
        .await
    }
}
