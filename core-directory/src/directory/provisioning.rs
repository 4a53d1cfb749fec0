//! Outbound SCIM provisioning: each SSO app's connector, the persistent outbox of deliveries, and what each app
//! holds. Which users and groups an app should hold is a core rule (members of the groups bound to it,
//! [`crate::Snapshot::app_members`]); building SCIM payloads and speaking HTTP to the app is the SCIM crate's.
//!
//! Outbox entries are records in the store, written in one transaction each, so they survive a restart and are
//! delivered in order of creation. At most one entry per (app, user or group) waits at a time; a delivery
//! builds its payload from the directory as it is then. A failed delivery is retried with exponential
//! backoff (2 s doubling, at most 10 minutes) and shows its error through the admin API. Every delivery is an
//! event (`scim_push`).

use super::settings::admin_event;
use super::{Directory, Tx};
use crate::access::{Actor, Permission};
use crate::error::{DirectoryError, Result};
use crate::events::{Event, Service};
use crate::id::Id;
use crate::model::{OutboxAction, OutboxItem, Provisioned, ScimConnector, SsoApp};
use crate::store::Kind;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// A delivery the provisioner wants, with what the app held of the subject when it decided (`None`: nothing).
#[derive(Debug, Clone)]
pub struct Wanted {
    pub app: Id,
    pub subject: Id,
    pub action: OutboxAction,
    pub seen: Option<Arc<Provisioned>>,
}

pub(crate) fn token_purpose(app: &Id) -> String {
    format!("scim-connector:{app}")
}

/// Set an app's connector. The token may be left out to keep the current one, but only while `base_url` stays
/// the same: a token is never sent to a URL it was not given for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimConnectorInput {
    /// The app's SCIM base URL: `https://`. Plain `http://` only with `allow_insecure_http` and a loopback host.
    pub base_url: String,
    pub token: Option<String>,
    /// Push groups as well as users; left out, the current setting stays (off for a new connector).
    pub group_push: Option<bool>,
    /// Accept a plain `http://` URL on a loopback address (a test endpoint): the token travels in clear.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// An outbox entry as the admin API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxView {
    pub id: Id,
    pub subject: Id,
    pub action: OutboxAction,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// Set once a delivery failed: why.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An app's connector and its state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScimConnectorView {
    pub base_url: String,
    pub group_push: bool,
    /// The connector speaks plain http (a loopback test endpoint): its token travels in clear.
    pub insecure_http: bool,
    /// Users and groups the app holds.
    pub provisioned: usize,
    /// Deliveries waiting; those with `last_error` have failed at least once.
    pub outbox: Vec<OutboxView>,
}

/// The result of one delivery, reported by the provisioner.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The app now holds the subject as `remote_id`, matching `digest`.
    Held {
        remote_id: String,
        digest: String,
        active: bool,
    },
    /// The app no longer holds it (a group deleted, a user it never had).
    Gone,
}

/// Drop an app's outbox and what Stratus knew it to hold (the connector is gone, or the app).
pub(crate) fn forget_provisioning(tx: &mut Tx, app: &Id) {
    let items: Vec<Id> = tx
        .snap
        .outbox
        .values()
        .filter(|o| &o.app == app)
        .map(|o| o.id.clone())
        .collect();
    for o in items {
        tx.snap.outbox.remove(&o);
        tx.batch.delete(Kind::Outbox, o.as_str());
    }
    let held: Vec<(Id, Id)> = tx
        .snap
        .provisioned
        .keys()
        .filter(|(a, _)| a == app)
        .cloned()
        .collect();
    for k in held {
        tx.batch
            .delete(Kind::Provisioned, format!("{}/{}", k.0, k.1));
        tx.snap.provisioned.remove(&k);
    }
}

/// A connector URL in the form it is stored (no trailing slash), or why it is refused: an absolute https URL
/// with a host, no user name or password, no query or fragment; plain http only when allowed and the host is a
/// loopback address.
fn connector_url(raw: &str, allow_insecure_http: bool) -> Result<String> {
    let bad = |why: &str| DirectoryError::invalid("base_url", why);
    let raw = raw.trim();
    if raw.contains(['\\', '\0']) || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "base_url must not contain backslashes, spaces or control characters",
        ));
    }
    let parsed =
        url::Url::parse(raw).map_err(|e| bad(&format!("base_url is not an absolute URL: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "base_url must not carry a user name or password: the token authenticates",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("base_url must not have a query or fragment"));
    }
    let loopback = match parsed.host() {
        None => return Err(bad("base_url must name a host")),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure_http && loopback => {}
        "http" if allow_insecure_http => {
            return Err(bad("allow_insecure_http is for loopback test endpoints only: use https"))
        }
        "http" => {
            return Err(bad(
                "plain http would send the app's token in clear: use https (allow_insecure_http admits a loopback test endpoint)",
            ))
        }
        _ => return Err(bad("base_url must be an https URL")),
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

fn backoff(attempts: u32) -> Duration {
    Duration::seconds((2i64 << attempts.min(12)).min(600))
}

impl Directory {
    pub fn scim_connector(&self, app: &Id) -> Result<ScimConnectorView> {
        let snap = self.snapshot();
        let a = snap
            .apps
            .get(app)
            .ok_or_else(|| DirectoryError::not_found("app", app))?;
        let c = a
            .scim
            .as_ref()
            .ok_or_else(|| DirectoryError::not_found("scim connector of app", app))?;
        let mut outbox: Vec<OutboxView> = snap
            .outbox
            .values()
            .filter(|o| &o.app == app)
            .map(|o| OutboxView {
                id: o.id.clone(),
                subject: o.subject.clone(),
                action: o.action,
                attempts: o.attempts,
                next_attempt_at: o.next_attempt_at,
                last_error: o.last_error.clone(),
                created_at: o.created_at,
            })
            .collect();
        outbox.sort_by_key(|o| o.created_at);
        Ok(ScimConnectorView {
            base_url: c.base_url.clone(),
            group_push: c.group_push,
            insecure_http: c.base_url.starts_with("http://"),
            provisioned: snap.provisioned.keys().filter(|(a, _)| a == app).count(),
            outbox,
        })
    }

    pub async fn set_scim_connector(
        &self,
        actor: &Actor,
        app: &Id,
        input: ScimConnectorInput,
    ) -> Result<ScimConnectorView> {
        actor.require(Permission::ManageOrg)?;
        let url = connector_url(&input.base_url, input.allow_insecure_http)?;
        let insecure = url.starts_with("http://");
        let sealed = match input.token.as_deref() {
            Some(t) if !t.trim().is_empty() && t.len() <= 4096 => Some(
                self.master_key
                    .seal(&token_purpose(app), t.trim().as_bytes()),
            ),
            Some(_) => {
                return Err(DirectoryError::invalid(
                    "token",
                    "the token must be 1–4096 characters",
                ))
            }
            None => None,
        };
        let actor = actor.clone();
        let id = app.clone();
        self.write(move |tx| {
            let mut a = (**tx
                .snap
                .apps
                .get(&id)
                .ok_or_else(|| DirectoryError::not_found("app", &id))?)
            .clone();
            // Decided against the app as it is inside this write: a concurrent change of the URL cannot let a
            // kept token follow it.
            let current = a.scim.as_ref();
            let token = match (sealed, current) {
                (Some(s), _) => s,
                (None, Some(c)) if c.base_url == url => c.token.clone(),
                (None, Some(_)) => {
                    return Err(DirectoryError::invalid(
                        "token",
                        "a new base_url needs the app's token again: send it with the URL",
                    ))
                }
                (None, None) => {
                    return Err(DirectoryError::invalid("token", "a token is required"))
                }
            };
            let group_push = input
                .group_push
                .unwrap_or_else(|| current.is_some_and(|c| c.group_push));
            a.scim = Some(ScimConnector {
                base_url: url.clone(),
                token,
                group_push,
            });
            a.updated_at = tx.now;
            tx.batch.put_json(Kind::App, a.id.as_str(), &a);
            tx.snap.apps.insert(a.id.clone(), Arc::new(a));
            let mut event = admin_event(&actor, "scim_connector_set")
                .target("app", &id)
                .detail("base_url", url.as_str())
                .detail("group_push", group_push);
            if insecure {
                event = event.detail("insecure_http", true);
            }
            tx.event(event);
            Ok(())
        })
        .await?;
        if insecure {
            tracing::warn!(app = %app, "SCIM connector set to plain http on a loopback address: its token travels in clear");
        }
        self.scim_connector(app)
    }

    /// Remove an app's connector, its outbox and what Stratus knew the app to hold (the app keeps its data).
    pub async fn delete_scim_connector(&self, actor: &Actor, app: &Id) -> Result<()> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = app.clone();
        self.write(move |tx| {
            let mut a = (**tx
                .snap
                .apps
                .get(&id)
                .ok_or_else(|| DirectoryError::not_found("app", &id))?)
            .clone();
            if a.scim.take().is_none() {
                return Err(DirectoryError::not_found("scim connector of app", &id));
            }
            a.updated_at = tx.now;
            tx.batch.put_json(Kind::App, a.id.as_str(), &a);
            tx.snap.apps.insert(a.id.clone(), Arc::new(a));
            forget_provisioning(tx, &id);
            tx.event(admin_event(&actor, "scim_connector_delete").target("app", &id));
            Ok(())
        })
        .await
    }

    /// "Retry now": every delivery waiting for the app becomes due at once (its attempt count and last error
    /// stay, so the backoff continues from where it was if it fails again). Returns how many were moved.
    pub async fn retry_outbox(&self, actor: &Actor, app: &Id) -> Result<usize> {
        actor.require(Permission::ManageOrg)?;
        let actor = actor.clone();
        let id = app.clone();
        self.write(move |tx| {
            if !tx.snap.apps.contains_key(&id) {
                return Err(DirectoryError::not_found("app", &id));
            }
            let waiting: Vec<Arc<OutboxItem>> = tx
                .snap
                .outbox
                .values()
                .filter(|o| o.app == id && o.next_attempt_at > tx.now)
                .cloned()
                .collect();
            for o in &waiting {
                let mut o = (**o).clone();
                o.next_attempt_at = tx.now;
                tx.batch.put_json(Kind::Outbox, o.id.as_str(), &o);
                tx.snap.outbox.insert(o.id.clone(), Arc::new(o));
            }
            tx.event(
                admin_event(&actor, "scim_outbox_retry")
                    .target("app", &id)
                    .detail("entries", waiting.len()),
            );
            Ok(waiting.len())
        })
        .await
    }

    /// The app's SCIM token in clear, for the provisioner only.
    pub fn scim_connector_token(&self, app: &SsoApp) -> Option<String> {
        let c = app.scim.as_ref()?;
        let bytes = self
            .master_key
            .open(&token_purpose(&app.id), &c.token)
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    /// Queue deliveries; one already waiting for the same app and subject is left as it is, and so is one
    /// whose subject the app's record changed for since the provisioner looked (a delivery finished meanwhile:
    /// its next pass decides again from the new state, so nothing is delivered twice).
    pub async fn enqueue_outbox(&self, wanted: Vec<Wanted>) -> Result<usize> {
        if wanted.is_empty() {
            return Ok(0);
        }
        self.write(move |tx| {
            let mut added = 0;
            for Wanted {
                app,
                subject,
                action,
                seen,
            } in wanted
            {
                let now_held = tx.snap.provisioned.get(&(app.clone(), subject.clone()));
                if now_held != seen.as_ref()
                    || tx
                        .snap
                        .outbox
                        .values()
                        .any(|o| o.app == app && o.subject == subject)
                {
                    continue;
                }
                let o = OutboxItem {
                    id: Id::generate(),
                    app,
                    subject,
                    action,
                    attempts: 0,
                    next_attempt_at: tx.now,
                    last_error: None,
                    created_at: tx.now,
                };
                tx.batch.put_json(Kind::Outbox, o.id.as_str(), &o);
                tx.snap.outbox.insert(o.id.clone(), Arc::new(o));
                added += 1;
            }
            Ok(added)
        })
        .await
    }

    /// Outbox entries due now, oldest first.
    pub fn outbox_due(&self, now: DateTime<Utc>, limit: usize) -> Vec<Arc<OutboxItem>> {
        let snap = self.snapshot();
        let mut due: Vec<Arc<OutboxItem>> = snap
            .outbox
            .values()
            .filter(|o| o.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|o| o.created_at);
        due.truncate(limit);
        due
    }

    fn push_event(item: &OutboxItem, success: bool) -> Event {
        let kind = match item.action {
            OutboxAction::UpsertUser | OutboxAction::DeactivateUser => "user",
            OutboxAction::UpsertGroup | OutboxAction::DeleteGroup => "group",
        };
        Event::new(Service::Scim, "scim_push", success)
            .actor("system")
            .target(kind, &item.subject)
            .detail("app", item.app.to_string())
            .detail(
                "action",
                serde_json::to_value(item.action).unwrap_or_default(),
            )
            .detail("attempt", item.attempts + 1)
            .detail("item", item.id.to_string())
    }

    /// A delivery succeeded: the entry goes, what the app holds is recorded, in one transaction.
    pub async fn outbox_delivered(
        &self,
        item: &OutboxItem,
        result: Delivery,
        username: Option<String>,
    ) -> Result<()> {
        let item = item.clone();
        self.write(move |tx| {
            tx.snap.outbox.remove(&item.id);
            tx.batch.delete(Kind::Outbox, item.id.as_str());
            let key = (item.app.clone(), item.subject.clone());
            let record_key = format!("{}/{}", item.app, item.subject);
            match result {
                Delivery::Held {
                    remote_id,
                    digest,
                    active,
                } => {
                    let p = Provisioned {
                        app: item.app.clone(),
                        subject: item.subject.clone(),
                        remote_id,
                        digest,
                        active,
                        group: matches!(
                            item.action,
                            OutboxAction::UpsertGroup | OutboxAction::DeleteGroup
                        ),
                        updated_at: tx.now,
                    };
                    tx.batch.put_json(Kind::Provisioned, &record_key, &p);
                    tx.snap.provisioned.insert(key, Arc::new(p));
                }
                Delivery::Gone => {
                    tx.batch.delete(Kind::Provisioned, record_key);
                    tx.snap.provisioned.remove(&key);
                }
            }
            let mut e = Self::push_event(&item, true);
            if let Some(u) = username {
                e = e.user(u);
            }
            tx.event(e);
            Ok(())
        })
        .await
    }

    /// A delivery failed: try again later, and say why.
    pub async fn outbox_failed(
        &self,
        item: &OutboxItem,
        error: String,
        username: Option<String>,
    ) -> Result<()> {
        let item = item.clone();
        let error: String = error.chars().take(500).collect();
        self.write(move |tx| {
            let Some(current) = tx.snap.outbox.get(&item.id).cloned() else {
                return Ok(());
            };
            let mut o = (*current).clone();
            o.attempts += 1;
            o.next_attempt_at = tx.now + backoff(o.attempts);
            o.last_error = Some(error.clone());
            tx.batch.put_json(Kind::Outbox, o.id.as_str(), &o);
            tx.snap.outbox.insert(o.id.clone(), Arc::new(o));
            let mut e = Self::push_event(&item, false).reason(error);
            if let Some(u) = username {
                e = e.user(u);
            }
            tx.event(e);
            Ok(())
        })
        .await
    }
}
