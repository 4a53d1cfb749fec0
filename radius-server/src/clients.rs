//! Which NAS profile a datagram belongs to, by its source address (UDP) or its client certificate (RadSec), and
//! the profile's shared secret.
//!
//! A source matches a profile when it lies in one of the profile's networks; when several profiles match, the
//! one with the longest prefix wins, so a /32 for one access point can sit inside a /24 for the rest of a site.
//! Secrets are unsealed once per profile version and kept in memory.

use core_directory::model::RadiusServer;
use core_directory::{Directory, Id};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// A known NAS: its profile and shared secret.
#[derive(Clone)]
pub struct Client {
    pub profile: Arc<RadiusServer>,
    pub secret: Arc<[u8]>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("profile", &self.profile.name)
            .finish_non_exhaustive()
    }
}

/// An unsealed secret and the profile version (`updated_at`) it was read from.
type SecretEntry = (chrono::DateTime<chrono::Utc>, Arc<[u8]>);

/// The client table.
#[derive(Default)]
pub struct Clients {
    /// Unsealed secrets by profile id, with the profile version they belong to.
    secrets: Mutex<HashMap<Id, SecretEntry>>,
}

impl Clients {
    /// The profile for a source address, or `None` for an unknown NAS.
    pub fn find(&self, dir: &Directory, source: IpAddr) -> Option<Client> {
        let source = source.to_canonical();
        let snap = dir.snapshot();
        let profile = snap
            .radius_servers
            .values()
            .filter_map(|p| {
                p.networks
                    .iter()
                    .filter(|n| n.contains(&source))
                    .map(|n| n.prefix_len())
                    .max()
                    .map(|len| (len, p))
            })
            .max_by(|(a, pa), (b, pb)| a.cmp(b).then_with(|| pb.id.cmp(&pa.id)))
            .map(|(_, p)| Arc::clone(p))?;
        let secret = self.secret(dir, &profile)?;
        Some(Client { profile, secret })
    }

    /// A profile with its shared secret (for requests Stratus sends to the NAS).
    pub fn of_profile(&self, dir: &Directory, profile: &Arc<RadiusServer>) -> Option<Client> {
        let secret = self.secret(dir, profile)?;
        Some(Client {
            profile: Arc::clone(profile),
            secret,
        })
    }

    /// The profile whose `radsec_client` is one of `names` (a certificate's DNS names, else its CN), with the
    /// RadSec shared secret `radsec` (RFC 6614 §2.3).
    pub fn radsec(&self, dir: &Directory, names: &[String]) -> Option<Client> {
        let snap = dir.snapshot();
        let profile = snap.radius_servers.values().find(|p| {
            p.radsec_client
                .as_deref()
                .is_some_and(|c| names.iter().any(|n| n.eq_ignore_ascii_case(c)))
        })?;
        Some(Client {
            profile: Arc::clone(profile),
            secret: Arc::from(&b"radsec"[..]),
        })
    }

    fn secret(&self, dir: &Directory, profile: &RadiusServer) -> Option<Arc<[u8]>> {
        let mut cache = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((version, s)) = cache.get(&profile.id) {
            if *version == profile.updated_at {
                return Some(Arc::clone(s));
            }
        }
        let Some(secret) = dir.radius_secret(profile) else {
            tracing::error!(profile = %profile.name, "RADIUS secret cannot be unsealed with this master key");
            return None;
        };
        let secret: Arc<[u8]> = secret.into();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            profile.id.clone(),
            (profile.updated_at, Arc::clone(&secret)),
        );
        Some(secret)
    }
}
