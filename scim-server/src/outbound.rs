//! Outbound SCIM provisioning: Stratus as the SCIM client of each SSO app that has a connector (the Keeper
//! case), so users who gain access through a bound group appear in the app and are deactivated when access ends.
//!
//! Every second in which the directory changed, the provisioner compares what each app should hold — the members of its bound groups (the
//! core's rule), their current SCIM payloads — with what the app was last given ([`core_directory::model::Provisioned`]
//! digests), queues the differences in the core's persistent outbox, and delivers what is due:
//! - a user with access: found by its known id, else by `userName eq`, then replaced (PUT); created (POST) when
//!   the app has no such user;
//! - a user whose access ended, or who was suspended or deleted: `PATCH active=false` — deactivated, not
//!   deleted;
//! - with `group_push`, each bound group with its provisioned members, and a `DELETE` when it is unbound.
//!
//! A delivery that fails is retried by the outbox's backoff; a restart resumes from the store. With several
//! nodes on one store, each delivery attempt is leased in the store, so exactly one node makes it.

use crate::resource::{self, ENTERPRISE, USER};
use core_directory::directory::{Delivery, Wanted};
use core_directory::model::{OutboxAction, OutboxItem, Provisioned, SsoApp, UserState};
use core_directory::views::UserView;
use core_directory::{Directory, Id, Snapshot};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Deliveries per round, so one slow app cannot hold the others up for long.
const PER_ROUND: usize = 50;

fn digest(v: &Value) -> String {
    core_directory::crypto::sha256_hex(v.to_string().as_bytes())
}

/// The user as the app should hold it: the SCIM resource without Stratus's own id, meta and groups, with
/// Stratus's id as externalId.
fn user_payload(u: &UserView, snap: &Snapshot, active: bool) -> Value {
    let mut v = resource::user_json(u, snap, "");
    if let Some(o) = v.as_object_mut() {
        o.remove("id");
        o.remove("meta");
        o.remove("groups");
    }
    v["externalId"] = json!(u.id.as_str());
    v["active"] = json!(active);
    v["schemas"] = json!([USER, ENTERPRISE]);
    v
}

fn group_payload(name: &str, members: &[String]) -> Value {
    json!({"schemas": [resource::GROUP], "displayName": name,
           "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()})
}

/// Run until `shutdown` turns true.
pub async fn run(dir: Arc<Directory>, mut shutdown: watch::Receiver<bool>) {
    // Redirects are not followed: the bearer token goes to the configured base URL and nowhere else; a 3xx is
    // a failed delivery whose error names the status.
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "SCIM provisioner cannot start its HTTP client");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // The directory's change sequence at the last comparison: an unchanged directory has nothing new to queue,
    // so an idle server builds no payloads.
    let mut compared = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let sequence = dir.snapshot().sequence;
        if compared != Some(sequence) {
            match reconcile(&dir).await {
                Ok(_) => compared = Some(sequence),
                Err(e) => tracing::warn!(error = %e, "SCIM provisioning could not queue changes"),
            }
        }
        for item in dir.outbox_due(chrono::Utc::now(), PER_ROUND) {
            deliver(&dir, &http, &item).await;
        }
    }
}

/// Queue what differs between what apps should hold and what they were given.
pub async fn reconcile(dir: &Directory) -> core_directory::Result<usize> {
    let snap = dir.snapshot();
    let now = chrono::Utc::now();
    let mut wanted = Vec::new();
    for app in snap.apps.values().filter(|a| a.scim.is_some()) {
        let members = snap.app_members(&app.id);
        for u in &members {
            let active = u.state == UserState::Active;
            let held = snap.provisioned.get(&(app.id.clone(), u.id.clone()));
            let payload = user_payload(&UserView::of(u, &snap, now), &snap, active);
            match held {
                Some(h) if h.digest == digest(&payload) => {}
                None if !active => {}
                Some(h) if !active && !h.active => {}
                _ if !active => {
                    wanted.push(want(&app.id, &u.id, OutboxAction::DeactivateUser, held))
                }
                _ => wanted.push(want(&app.id, &u.id, OutboxAction::UpsertUser, held)),
            }
        }
        let member_ids: Vec<&Id> = members.iter().map(|u| &u.id).collect();
        for ((a, subject), held) in snap
            .provisioned
            .iter()
            .filter(|((a, _), h)| a == &app.id && !h.group)
        {
            if held.active && !member_ids.contains(&subject) {
                wanted.push(want(a, subject, OutboxAction::DeactivateUser, Some(held)));
            }
        }
        let push = app.scim.as_ref().is_some_and(|c| c.group_push);
        let bound = snap.bound_groups(&core_directory::model::Resource::App(app.id.clone()));
        if push {
            for g in &bound {
                let Some(group) = snap.group(g) else { continue };
                let payload = group_payload(&group.name, &remote_members(&snap, &app.id, g));
                let held = snap.provisioned.get(&(app.id.clone(), g.clone()));
                if held.is_none_or(|h| h.digest != digest(&payload)) {
                    wanted.push(want(&app.id, g, OutboxAction::UpsertGroup, held));
                }
            }
        }
        for ((a, subject), held) in snap
            .provisioned
            .iter()
            .filter(|((a, _), h)| a == &app.id && h.group)
        {
            if !push || !bound.contains(subject) {
                wanted.push(want(a, subject, OutboxAction::DeleteGroup, Some(held)));
            }
        }
    }
    dir.enqueue_outbox(wanted).await
}

/// A delivery to queue, with what the app held when this pass decided it (the core skips it if that changed).
fn want(app: &Id, subject: &Id, action: OutboxAction, held: Option<&Arc<Provisioned>>) -> Wanted {
    Wanted {
        app: app.clone(),
        subject: subject.clone(),
        action,
        seen: held.cloned(),
    }
}

/// The app's ids of a group's members that the app holds as active users.
fn remote_members(snap: &Snapshot, app: &Id, group: &Id) -> Vec<String> {
    let mut ids: Vec<String> = snap
        .members_of(group)
        .filter_map(|u| snap.provisioned.get(&(app.clone(), u.id.clone())))
        .filter(|p| p.active)
        .map(|p| p.remote_id.clone())
        .collect();
    ids.sort();
    ids
}

/// Why one delivery failed.
#[derive(Debug)]
struct Failure(String);

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Self {
        // Without the URL: it carries the app's own ids, of any length.
        Failure(format!("request failed: {}", e.without_url()))
    }
}

struct Target<'a> {
    http: &'a reqwest::Client,
    base: String,
    token: String,
}

impl Target<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Failure> {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("accept", "application/scim+json");
        if let Some(b) = body {
            r = r
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let resp = r.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text.chars().take(300).collect())),
        ))
    }

    fn ok(status: u16, body: &Value, what: &str) -> Result<(), Failure> {
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let detail = body["detail"]
                .as_str()
                .map_or_else(|| body.to_string(), str::to_string);
            Err(Failure(format!(
                "{what}: HTTP {status}: {}",
                detail.chars().take(300).collect::<String>()
            )))
        }
    }

    /// The app's id of a resource with `attr eq value`.
    async fn find(&self, kind: &str, attr: &str, value: &str) -> Result<Option<String>, Failure> {
        let filter = format!(
            "{attr} eq \"{}\"",
            value.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let q: String = url_encode(&filter);
        let (status, body) = self
            .call(reqwest::Method::GET, &format!("/{kind}?filter={q}"), None)
            .await?;
        Self::ok(status, &body, "lookup")?;
        Ok(body["Resources"][0]["id"].as_str().map(str::to_string))
    }

    /// PUT to a known id (when it still exists), else find by `attr`, else POST. Returns the app's id.
    async fn upsert(
        &self,
        kind: &str,
        known: Option<&str>,
        attr: &str,
        value: &str,
        payload: &Value,
    ) -> Result<String, Failure> {
        let mut id = known.map(str::to_string);
        if id.is_none() {
            id = self.find(kind, attr, value).await?;
        }
        if let Some(rid) = id {
            let mut body = payload.clone();
            body["id"] = json!(rid);
            let (status, resp) = self
                .call(reqwest::Method::PUT, &format!("/{kind}/{rid}"), Some(&body))
                .await?;
            if status != 404 {
                Self::ok(status, &resp, "replace")?;
                return Ok(rid);
            }
        }
        let (status, resp) = self
            .call(reqwest::Method::POST, &format!("/{kind}"), Some(payload))
            .await?;
        Self::ok(status, &resp, "create")?;
        resp["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Failure("create: the app returned no id".into()))
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How long a node holds the right to make one delivery attempt (on a store shared by several nodes).
const LEASE_SECONDS: i64 = 120;

/// On a shared store: whether this node may make this attempt of this item. The lease is taken in the store
/// (insert-if-absent), so of several nodes exactly one delivers each attempt; it is never handed back, but
/// expires, so a node that dies mid-delivery is replaced by another after [`LEASE_SECONDS`], and the next attempt
/// (after a failure) has a lease of its own.
fn lease(dir: &Directory, item: &OutboxItem) -> bool {
    let store = dir.store();
    if !store.is_shared() {
        return true;
    }
    let until = chrono::Utc::now() + chrono::Duration::seconds(LEASE_SECONDS);
    let key = format!("{}:{}", item.id, item.attempts);
    match store.ephemeral_put("scim-delivery", &key, b"", until, true) {
        Ok(taken) => taken,
        Err(e) => {
            tracing::warn!(error = %e, "no SCIM delivery lease: the store does not answer");
            false
        }
    }
}

async fn deliver(dir: &Directory, http: &reqwest::Client, item: &OutboxItem) {
    if !lease(dir, item) {
        return;
    }
    let snap = dir.snapshot();
    let username = snap.user(&item.subject).map(|u| u.username.clone());
    let Some(app) = snap.apps.get(&item.app).cloned() else {
        let _ = dir.outbox_delivered(item, Delivery::Gone, username).await;
        return;
    };
    let result = match target(dir, http, &app) {
        Some(t) => attempt(&snap, &t, &app, item).await,
        None => Err(Failure("the connector's token cannot be unsealed".into())),
    };
    let outcome = match result {
        Ok(d) => dir.outbox_delivered(item, d, username).await,
        Err(Failure(why)) => {
            tracing::info!(app = %app.name, action = ?item.action, error = %core_directory::events::log_text(&why), "SCIM delivery failed; will retry");
            dir.outbox_failed(item, why, username).await
        }
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "SCIM outbox could not be updated");
    }
}

fn target<'a>(dir: &Directory, http: &'a reqwest::Client, app: &SsoApp) -> Option<Target<'a>> {
    Some(Target {
        http,
        base: app.scim.as_ref()?.base_url.clone(),
        token: dir.scim_connector_token(app)?,
    })
}

async fn attempt(
    snap: &Snapshot,
    t: &Target<'_>,
    app: &SsoApp,
    item: &OutboxItem,
) -> Result<Delivery, Failure> {
    let held = snap
        .provisioned
        .get(&(app.id.clone(), item.subject.clone()));
    let known = held.map(|h| h.remote_id.as_str());
    let now = chrono::Utc::now();
    match item.action {
        OutboxAction::UpsertUser => {
            let Some(u) = snap.user(&item.subject) else {
                return Ok(Delivery::Gone);
            };
            let view = UserView::of(u, snap, now);
            let active = u.state == UserState::Active;
            let payload = user_payload(&view, snap, active);
            let rid = t
                .upsert("Users", known, "userName", &u.username, &payload)
                .await?;
            Ok(Delivery::Held {
                remote_id: rid,
                digest: digest(&payload),
                active,
            })
        }
        OutboxAction::DeactivateUser => {
            let rid = match known {
                Some(r) => Some(r.to_string()),
                None => match snap.user(&item.subject) {
                    Some(u) => t.find("Users", "userName", &u.username).await?,
                    None => None,
                },
            };
            let Some(rid) = rid else {
                return Ok(Delivery::Gone);
            };
            let body = json!({"schemas": [crate::PATCH_OP],
                              "Operations": [{"op": "replace", "path": "active", "value": false}]});
            let (status, resp) = t
                .call(
                    reqwest::Method::PATCH,
                    &format!("/Users/{rid}"),
                    Some(&body),
                )
                .await?;
            if status == 404 {
                return Ok(Delivery::Gone);
            }
            Target::ok(status, &resp, "deactivate")?;
            // The digest of the inactive payload, so the next round sees nothing to do.
            let digest = match snap.user(&item.subject) {
                Some(u) => digest(&user_payload(&UserView::of(u, snap, now), snap, false)),
                None => String::new(),
            };
            Ok(Delivery::Held {
                remote_id: rid,
                digest,
                active: false,
            })
        }
        OutboxAction::UpsertGroup => {
            let Some(g) = snap.group(&item.subject) else {
                return Ok(Delivery::Gone);
            };
            let payload = group_payload(&g.name, &remote_members(snap, &app.id, &g.id));
            let rid = t
                .upsert("Groups", known, "displayName", &g.name, &payload)
                .await?;
            Ok(Delivery::Held {
                remote_id: rid,
                digest: digest(&payload),
                active: true,
            })
        }
        OutboxAction::DeleteGroup => {
            if let Some(rid) = known {
                let (status, resp) = t
                    .call(reqwest::Method::DELETE, &format!("/Groups/{rid}"), None)
                    .await?;
                if status != 404 {
                    Target::ok(status, &resp, "delete group")?;
                }
            }
            Ok(Delivery::Gone)
        }
    }
}
