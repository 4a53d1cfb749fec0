//! The directory: the one owner of state and rules. Reads come from the published [`Snapshot`]; every write
//! runs as a [`Tx`] under one writer lock, is committed to the [`Store`] (on the embedded store together with
//! the writes that came while the previous commit was on its way to disk), and only then publishes the next
//! snapshot.

mod accounting;
mod admins;
mod conditional;
mod external;
mod groups;
mod mail;
pub mod master_key;
mod provisioning;
mod resources;
mod scim_scope;
mod scim_tokens;
mod settings;
mod users;

use crate::access::Actor;
use crate::crypto::MasterKey;
use crate::error::{DirectoryError, Result};
use crate::events::{Event, EventQuery};
use crate::id::Id;
use crate::model::*;
use crate::password::{CredentialCache, HashParams, PasswordHasherPool};
use crate::snapshot::{Snapshot, META_ALLOCATORS, META_ORG, META_POLICY};
use crate::store::{Kind, Store, WriteBatch};
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub(crate) use admins::lock_until;
pub use admins::{generate_api_token, AdminLogin, API_TOKEN_PREFIX};
pub(crate) use conditional::{drop_policies_targeting, policies_naming_group};
pub use conditional::{AccessPolicyInput, IpListInput, IpListView};
pub use external::{
    ExternalAccountView, ExternalDirectoryInput, ExternalDirectoryView, ExternalWork,
    TakeoverRequest,
};
pub use mail::{ActivationSent, LinkPurpose, MailSettings};
pub use provisioning::{Delivery, OutboxView, ScimConnectorInput, ScimConnectorView, Wanted};
pub use resources::generate_radius_secret;
pub use scim_tokens::SCIM_TOKEN_PREFIX;
pub use settings::{
    decode_logo, generate_password, BootstrapRequest, BootstrapResult, MAX_LOGO_BYTES,
};
pub use users::{nt_hash, UserListQuery};

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub hash_params: HashParams,
    /// Hashing threads, each keeping one argon2 memory block (0 = number of CPUs).
    pub hash_concurrency: usize,
    pub credential_cache: bool,
    pub credential_cache_ttl: Duration,
    /// Checks a group's RADIUS reply attribute when it is set (the RADIUS listener's dictionary, wired in by the
    /// binary); `None` accepts any well-formed name.
    pub reply_attribute_check: Option<ReplyAttributeCheck>,
    /// Reads SAML SP metadata an admin uploads (the SAML listener's strict XML reader, wired in by the binary);
    /// `None` refuses uploads.
    pub sp_metadata_reader: Option<SpMetadataReader>,
    /// Bounds of the open RADIUS accounting sessions table.
    pub radius_sessions: crate::radius_sessions::SessionLimits,
    /// Per-source throttling of failed logins.
    pub throttle: crate::throttle::ThrottleSettings,
    /// Whether mail is sent, and the links it carries.
    pub mail: MailSettings,
}

/// What an SSO app takes from its SP's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMetadata {
    pub entity_id: String,
    /// HTTP-POST AssertionConsumerService locations, the default first.
    pub acs_urls: Vec<String>,
    /// Their `index` values, in the same order.
    pub acs_indexes: Vec<u32>,
    /// The SP's signing certificate, PEM.
    pub signing_certificate: Option<String>,
    /// `AuthnRequestsSigned="true"`.
    pub authn_requests_signed: bool,
    /// The SingleLogoutService location (its ResponseLocation when given) and whether it takes HTTP-POST.
    pub slo_url: Option<String>,
    pub slo_post: bool,
    /// A separate `use="encryption"` certificate, PEM.
    pub encryption_certificate: Option<String>,
    /// The document carried an enveloped signature.
    pub signed: bool,
    /// The signature verified with the trust anchor the reader was given.
    pub verified_by_trust_anchor: bool,
}

/// The function behind a [`SpMetadataReader`]: the XML text, and the app's metadata trust anchor (PEM). With an
/// anchor, a signed document must verify with it; without one, a signature is recorded but not checked. `Err`
/// carries the reason shown to the admin.
pub type SpMetadataReaderFn =
    dyn Fn(&str, Option<&str>) -> std::result::Result<SpMetadata, String> + Send + Sync;

/// A reader of SP metadata documents.
#[derive(Clone)]
pub struct SpMetadataReader(pub Arc<SpMetadataReaderFn>);

impl std::fmt::Debug for SpMetadataReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpMetadataReader")
    }
}

/// The function behind a [`ReplyAttributeCheck`].
pub type ReplyAttributeCheckFn =
    dyn Fn(&ReplyAttribute) -> std::result::Result<(), String> + Send + Sync;

/// A check of one RADIUS reply attribute: `Err` carries the reason shown to the admin.
#[derive(Clone)]
pub struct ReplyAttributeCheck(pub Arc<ReplyAttributeCheckFn>);

impl std::fmt::Debug for ReplyAttributeCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyAttributeCheck")
    }
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            hash_params: HashParams::default(),
            hash_concurrency: 0,
            credential_cache: true,
            credential_cache_ttl: Duration::from_secs(300),
            reply_attribute_check: None,
            sp_metadata_reader: None,
            radius_sessions: Default::default(),
            throttle: Default::default(),
            mail: Default::default(),
        }
    }
}

/// Writes applied in memory and not yet durable (group commit; see [`Directory::write`]).
#[derive(Default)]
struct Commits {
    /// Writes applied on top of `in_flight` (or the published snapshot), to be committed next, together.
    open: Option<CommitGroup>,
    /// What the commit under way will publish: the base of the writes that come meanwhile.
    in_flight: Option<Arc<Snapshot>>,
}

/// Writes committed together: their combined state and changes, and how their writers hear the outcome.
struct CommitGroup {
    snap: Snapshot,
    batch: WriteBatch,
    done: tokio::sync::watch::Sender<Option<std::result::Result<(), String>>>,
}

enum EventMsg {
    Record(Box<Event>),
    Flush(oneshot::Sender<()>),
}

/// The directory core.
pub struct Directory {
    store: Arc<dyn Store>,
    /// Authentication attempts per protocol, for the dashboard.
    activity: crate::activity::Activity,
    /// RADIUS requests by profile and outcome, for `/metrics`.
    radius_counters: crate::counters::RadiusCounters,
    snapshot: ArcSwap<Snapshot>,
    writer: tokio::sync::Mutex<()>,
    /// Group commit on the embedded store: writes applied and waiting to be made durable together.
    commits: std::sync::Mutex<Commits>,
    /// A group commit finished (its successor may start).
    committed: tokio::sync::Notify,
    /// This directory, for the task that drives a group commit (it must outlive the request that started it).
    me: std::sync::Weak<Directory>,
    pub(crate) hasher: Arc<PasswordHasherPool>,
    pub(crate) cache: CredentialCache,
    pub(crate) master_key: MasterKey,
    pub(crate) throttle: crate::throttle::Throttle,
    pub(crate) mail: MailSettings,
    public_base_url: std::sync::OnceLock<String>,
    /// Where passwords for external directories go (set by the binary when the connectors start).
    takeover: std::sync::OnceLock<tokio::sync::mpsc::Sender<TakeoverRequest>>,
    /// Passwords between a sign-in's two steps, for the takeover (see `auth.rs`).
    pub(crate) held_passwords: std::sync::Mutex<
        std::collections::HashMap<Id, (std::time::Instant, zeroize::Zeroizing<String>)>,
    >,
    events: mpsc::Sender<EventMsg>,
    /// A dummy hash verified for unknown usernames so their timing matches known ones.
    pub(crate) dummy_hash: String,
    pub(crate) reply_check: Option<ReplyAttributeCheck>,
    pub(crate) sp_metadata_reader: Option<SpMetadataReader>,
    /// Login password verifications, for `/metrics`.
    pub(crate) password_verifications: std::sync::atomic::AtomicU64,
    /// False while a shared store cannot be reached (reads go on from the snapshot; writes fail).
    store_reachable: std::sync::atomic::AtomicBool,
    /// Open RADIUS accounting sessions (in memory, rebuilt from their events at start).
    pub(crate) radius_sessions: crate::radius_sessions::RadiusSessions,
    /// The change sequence of the published snapshot, for listeners that act on changes.
    changes: tokio::sync::watch::Sender<u64>,
}

/// An open write transaction: a working copy of the snapshot plus the batch that persists it.
pub(crate) struct Tx {
    pub snap: Snapshot,
    pub batch: WriteBatch,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Tx {
    /// Store a changed user: its revision moves and `updated_at` becomes now. Returns what was stored.
    pub fn put_user(&mut self, mut user: User) -> Arc<User> {
        user.revision += 1;
        user.updated_at = self.now;
        self.store_user(user)
    }

    /// Store a user whose login counters (failed logins, lock) changed: no revision move, since nothing a client
    /// of the entry sees has changed.
    pub fn put_user_counters(&mut self, user: User) {
        self.store_user(user);
    }

    fn store_user(&mut self, user: User) -> Arc<User> {
        self.batch.put_json(Kind::User, user.id.as_str(), &user);
        let user = Arc::new(user);
        self.snap.put_user(Arc::clone(&user));
        user
    }

    /// Store a changed group: its revision moves and `updated_at` becomes now. Returns what was stored.
    pub fn put_group(&mut self, mut group: Group) -> Arc<Group> {
        group.revision += 1;
        group.updated_at = self.now;
        self.batch.put_json(Kind::Group, group.id.as_str(), &group);
        let group = Arc::new(group);
        self.snap.put_group(Arc::clone(&group));
        group
    }

    /// Move a user's revision and `updated_at` without other change: something derived from it (its groups)
    /// changed, and incremental readers (SCIM versions, LDAP modifyTimestamp) must see it.
    pub fn touch_user(&mut self, id: &Id) {
        if let Some(u) = self.snap.user(id).cloned() {
            self.put_user((*u).clone());
        }
    }

    /// Move a group's revision and `updated_at` (its members changed).
    pub fn touch_group(&mut self, id: &Id) {
        if let Some(g) = self.snap.group(id).cloned() {
            self.put_group((*g).clone());
        }
    }

    /// The user as the working copy has it, refused when `expect` names another revision than the current one.
    pub fn user_at(&self, id: &Id, expect: Option<u64>) -> Result<Arc<User>> {
        let u = self
            .snap
            .user(id)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("user", id))?;
        check_revision("user", id, u.revision, expect)?;
        Ok(u)
    }

    /// The group as the working copy has it, refused when `expect` names another revision than the current one.
    pub fn group_at(&self, id: &Id, expect: Option<u64>) -> Result<Arc<Group>> {
        let g = self
            .snap
            .group(id)
            .cloned()
            .ok_or_else(|| DirectoryError::not_found("group", id))?;
        check_revision("group", id, g.revision, expect)?;
        Ok(g)
    }

    pub fn put_allocators(&mut self) {
        let a = self.snap.allocators;
        self.batch.put_json(Kind::Meta, META_ALLOCATORS, &a);
    }

    pub fn put_org(&mut self, org: OrgSettings) {
        self.batch.put_json(Kind::Meta, META_ORG, &org);
        self.snap.org = Some(Arc::new(org));
    }

    pub fn put_policy(&mut self, policy: PasswordPolicy) {
        self.batch.put_json(Kind::Meta, META_POLICY, &policy);
        self.snap.policy = Arc::new(policy);
    }

    pub fn event(&mut self, event: Event) {
        self.batch.event(event);
    }

    pub fn org(&self) -> Result<Arc<OrgSettings>> {
        self.snap
            .org
            .clone()
            .ok_or_else(|| DirectoryError::Internal("organisation is not initialised".into()))
    }
}

impl Directory {
    /// Open the directory over a store: load every record, build the first snapshot, start the event writer.
    /// Must be called inside a tokio runtime.
    pub fn open(
        store: Arc<dyn Store>,
        master_key: MasterKey,
        config: DirectoryConfig,
    ) -> Result<Arc<Self>> {
        let snapshot = Snapshot::from_store(store.as_ref())?;
        master_key::verify(&snapshot, &master_key)?;
        let hasher = Arc::new(
            PasswordHasherPool::new(config.hash_params, config.hash_concurrency)
                .map_err(|e| DirectoryError::Internal(e.to_string()))?,
        );
        let dummy_hash = hasher
            .hash_blocking("stratus-dummy-password")
            .map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let (tx, rx) = mpsc::channel(16_384);
        let radius_sessions = crate::radius_sessions::RadiusSessions::new(config.radius_sessions);
        let open = accounting::rebuild(store.as_ref(), &radius_sessions)?;
        if open > 0 {
            tracing::info!(open, "RADIUS accounting sessions rebuilt from their events");
        }
        let (changes, _) = tokio::sync::watch::channel(snapshot.sequence);
        let dir = Arc::new_cyclic(|me| Directory {
            me: me.clone(),
            commits: std::sync::Mutex::default(),
            committed: tokio::sync::Notify::new(),
            store: Arc::clone(&store),
            activity: crate::activity::Activity::default(),
            radius_counters: crate::counters::RadiusCounters::default(),
            snapshot: ArcSwap::from_pointee(snapshot),
            writer: tokio::sync::Mutex::new(()),
            hasher,
            cache: CredentialCache::new(config.credential_cache, config.credential_cache_ttl),
            master_key,
            throttle: crate::throttle::Throttle::new(config.throttle.clone()),
            mail: config.mail.clone(),
            public_base_url: std::sync::OnceLock::new(),
            takeover: std::sync::OnceLock::new(),
            held_passwords: std::sync::Mutex::default(),
            events: tx,
            dummy_hash,
            reply_check: config.reply_attribute_check,
            sp_metadata_reader: config.sp_metadata_reader,
            password_verifications: std::sync::atomic::AtomicU64::new(0),
            store_reachable: std::sync::atomic::AtomicBool::new(true),
            radius_sessions,
            changes,
        });
        tokio::spawn(event_writer(store, rx));
        Ok(dir)
    }

    /// The current snapshot. Cheap; hold it for the duration of one request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The org settings (the directory is always initialised after [`Directory::initialise`]).
    pub fn org(&self) -> Option<Arc<OrgSettings>> {
        self.snapshot().org.clone()
    }

    pub fn master_key(&self) -> &MasterKey {
        &self.master_key
    }

    /// Run `f` as one transaction: serialised with other writers, committed as one batch, then published.
    ///
    /// On a store shared by several nodes the write first takes the store's cluster-wide write lock and applies
    /// the changes other nodes committed since this node's snapshot, so the closure decides against the latest
    /// state of the whole cluster, exactly as it does against this node's own on one node.
    pub(crate) async fn write<R>(&self, f: impl FnOnce(&mut Tx) -> Result<R>) -> Result<R> {
        if !self.store.is_shared() {
            return self.write_grouped(f).await;
        }
        let _guard = self.writer.lock().await;
        let (store, after) = (Arc::clone(&self.store), self.snapshot.load().sequence);
        let (write, changes) = tokio::task::spawn_blocking(move || store.begin_shared_write(after))
            .await
            .map_err(|e| DirectoryError::Internal(e.to_string()))?
            .map_err(unavailable)?;
        self.apply_changes(&changes)?;
        let mut tx = Tx {
            snap: (*self.snapshot.load_full()).clone(),
            batch: WriteBatch::default(),
            now: chrono::Utc::now(),
        };
        let out = f(&mut tx)?;
        if tx.batch.is_empty() {
            return Ok(out);
        }
        let batch = std::mem::take(&mut tx.batch);
        let seq = tokio::task::spawn_blocking(move || write.commit(batch))
            .await
            .map_err(|e| DirectoryError::Internal(e.to_string()))?
            .map_err(unavailable)?;
        tx.snap.sequence = seq;
        self.snapshot.store(Arc::new(tx.snap));
        self.changes.send_replace(seq);
        Ok(out)
    }

    /// [`Directory::write`] on the embedded store, with group commit. Writers still run one at a time under the
    /// writer lock, each on the state every earlier write left — committed or not — so each decides against the
    /// latest state exactly as before. But a write does not hold the lock while its commit reaches the disk: the
    /// writes that arrive meanwhile are applied on top and committed together in the next store transaction, one
    /// fsync for all of them. A writer returns only once its group is durable and published (readers never see
    /// a change that is not on disk); if a commit fails, its group and every write made on top of it fail, and
    /// the next write starts again from the published state. An empty write that saw uncommitted changes waits
    /// for them too, so it never answers from a state that could still be lost.
    async fn write_grouped<R>(&self, f: impl FnOnce(&mut Tx) -> Result<R>) -> Result<R> {
        let guard = self.writer.lock().await;
        let base = {
            let c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
            match (&c.open, &c.in_flight) {
                (Some(g), _) => g.snap.clone(),
                (None, Some(s)) => (**s).clone(),
                (None, None) => (*self.snapshot.load_full()).clone(),
            }
        };
        let mut tx = Tx {
            snap: base,
            batch: WriteBatch::default(),
            now: chrono::Utc::now(),
        };
        let out = f(&mut tx)?;
        let (mut done, start_driver) = {
            let mut c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
            if tx.batch.is_empty() && c.open.is_none() && c.in_flight.is_none() {
                return Ok(out);
            }
            match &mut c.open {
                Some(g) => {
                    if !tx.batch.is_empty() {
                        g.snap = tx.snap;
                        g.batch.ops.append(&mut tx.batch.ops);
                        g.batch.events.append(&mut tx.batch.events);
                    }
                    (g.done.subscribe(), false)
                }
                None => {
                    let (sender, receiver) = tokio::sync::watch::channel(None);
                    c.open = Some(CommitGroup {
                        snap: tx.snap,
                        batch: std::mem::take(&mut tx.batch),
                        done: sender,
                    });
                    (receiver, true)
                }
            }
        };
        drop(guard);
        if start_driver {
            // A task of its own, so that a writer whose request goes away never leaves its group uncommitted.
            let Some(me) = self.me.upgrade() else {
                return Err(DirectoryError::Internal("the directory is closing".into()));
            };
            tokio::spawn(async move { me.drive_commit().await });
        }
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| DirectoryError::Internal("a group commit was abandoned".into()))?
            .clone();
        match outcome {
            Some(Ok(())) => Ok(out),
            Some(Err(e)) => Err(DirectoryError::Unavailable(e)),
            None => Err(DirectoryError::Internal(
                "a group commit ended without an outcome".into(),
            )),
        }
    }

    /// Commit the open group once the commit before it has finished: one store transaction, then publish.
    async fn drive_commit(&self) {
        let group = loop {
            let finished = self.committed.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            {
                let mut c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
                if c.in_flight.is_none() {
                    let Some(g) = c.open.take() else {
                        // Failed with the commit it was built on.
                        return;
                    };
                    c.in_flight = Some(Arc::new(g.snap.clone()));
                    break g;
                }
            }
            finished.await;
        };
        let CommitGroup {
            mut snap,
            batch,
            done,
        } = group;
        let result = if batch.is_empty() {
            Ok(None)
        } else {
            let store = Arc::clone(&self.store);
            tokio::task::spawn_blocking(move || store.commit(batch))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map(Some).map_err(|e| unavailable(e).to_string()))
        };
        match result {
            Ok(seq) => {
                if let Some(seq) = seq {
                    snap.sequence = seq;
                    // Published before the in-flight state is cleared: a writer always finds one or the other.
                    self.snapshot.store(Arc::new(snap));
                    self.changes.send_replace(seq);
                }
                self.commits
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .in_flight = None;
                let _ = done.send(Some(Ok(())));
            }
            Err(e) => {
                tracing::error!(error = %e, "a group commit failed; its writes and those made on top of them are refused");
                // No writer may be between reading the failed state and joining a group while it is discarded.
                let _guard = self.writer.lock().await;
                let next = {
                    let mut c = self.commits.lock().unwrap_or_else(|e| e.into_inner());
                    c.in_flight = None;
                    c.open.take()
                };
                if let Some(next) = next {
                    let _ = next.done.send(Some(Err(e.clone())));
                }
                let _ = done.send(Some(Err(e)));
            }
        }
        self.committed.notify_waiters();
    }

    /// Apply changes committed by other nodes to the published snapshot (the caller holds the writer lock).
    fn apply_changes(&self, changes: &[crate::store::Change]) -> Result<()> {
        let Some(last) = changes.last() else {
            return Ok(());
        };
        let mut snap = (*self.snapshot.load_full()).clone();
        for change in changes {
            for op in &change.ops {
                snap.apply_op(op)?;
                // A user changed elsewhere: their cached credential may be stale.
                if let crate::store::Op::Put {
                    kind: crate::store::Kind::User,
                    key,
                    ..
                }
                | crate::store::Op::Delete {
                    kind: crate::store::Kind::User,
                    key,
                } = op
                {
                    if let Some(id) = Id::parse(key) {
                        self.cache.forget(&id);
                    }
                }
            }
        }
        snap.sequence = last.sequence;
        self.snapshot.store(Arc::new(snap));
        // Listeners that act on changes (RADIUS Disconnect) act on other nodes' changes too.
        self.changes.send_replace(last.sequence);
        Ok(())
    }

    /// Follow the other nodes of a shared store: apply their commits to this node's snapshot as the store signals
    /// them. Returns at once for a store with one writer process.
    pub fn follow_changes(self: &Arc<Self>) {
        let Some(mut signal) = self.store.change_signal() else {
            return;
        };
        let dir = Arc::downgrade(self);
        tokio::spawn(async move {
            while signal.changed().await.is_ok() {
                let Some(dir) = dir.upgrade() else {
                    return;
                };
                let _guard = dir.writer.lock().await;
                let (store, after) = (Arc::clone(&dir.store), dir.snapshot.load().sequence);
                let changes = tokio::task::spawn_blocking(move || store.changes_since(after)).await;
                match changes {
                    Ok(Ok(changes)) => {
                        if let Err(e) = dir.apply_changes(&changes) {
                            tracing::error!(error = %e, "a change from another node could not be applied");
                        }
                        dir.store_reachable
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(Err(e)) => {
                        if dir
                            .store_reachable
                            .swap(false, std::sync::atomic::Ordering::Relaxed)
                        {
                            tracing::warn!(error = %e, "the store is unreachable; serving reads from the snapshot");
                        }
                    }
                    Err(_) => return,
                }
            }
        });
    }

    /// Whether the last attempt to follow the store's changes reached it (always true for the embedded store).
    pub fn store_reachable(&self) -> bool {
        self.store_reachable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The change sequence of the published snapshot: it moves after every committed write, once the new
    /// snapshot is readable. Listeners that must act on changes (RADIUS Disconnect) wait on it.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// [`Directory::write`] for a change `actor` asked for: when a SCIM token's scope refuses it, the refusal is
    /// recorded as a `scim_scope_denied` event with the scope (the refused write itself wrote nothing).
    pub(crate) async fn write_as<R>(
        &self,
        actor: &Actor,
        f: impl FnOnce(&mut Tx) -> Result<R>,
    ) -> Result<R> {
        let out = self.write(f).await;
        if let Err(e) = &out {
            self.record_scope_denial(actor, e).await;
        }
        out
    }

    /// When `error` is a SCIM token's scope refusing a change, record it as a `scim_scope_denied` event with
    /// the scope.
    pub(crate) async fn record_scope_denial(&self, actor: &Actor, error: &DirectoryError) {
        let DirectoryError::OutOfScope(reason) = error else {
            return;
        };
        let scope = actor
            .scim_token
            .as_ref()
            .and_then(|t| self.snapshot().scim_tokens.get(t).map(|t| t.scope.clone()));
        let mut e = admin_event(actor, "scim_scope_denied")
            .reason(reason.clone())
            .detail("scope", serde_json::to_value(scope).unwrap_or_default());
        e.success = false;
        self.record(e).await;
    }

    /// Record an event that changes no record (authentication attempts). Written in batches in the background;
    /// [`Directory::query_events`] waits for everything recorded before it.
    pub async fn record(&self, event: Event) {
        self.activity.observe(&event);
        if self
            .events
            .send(EventMsg::Record(Box::new(event)))
            .await
            .is_err()
        {
            tracing::error!("event writer has stopped; an event was not recorded");
        }
    }

    /// RADIUS requests by profile and outcome (the RADIUS listener counts, `/metrics` reads).
    pub fn radius_counters(&self) -> &crate::counters::RadiusCounters {
        &self.radius_counters
    }

    /// Authentication activity of the last seven days (since the process started).
    pub fn activity(&self) -> &crate::activity::Activity {
        &self.activity
    }

    /// Wait until every event recorded so far is in the store.
    pub async fn flush_events(&self) {
        let (tx, rx) = oneshot::channel();
        if self.events.send(EventMsg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Events, newest first.
    /// A `user` filter naming no account also finds the attempts made with that name, which events record only
    /// as a keyed digest (see [`crate::crypto::unknown_name`]); a former account's own events are found as before.
    pub async fn query_events(&self, query: EventQuery) -> Result<Vec<Event>> {
        self.flush_events().await;
        let digest_query = query.user.as_deref().and_then(|name| {
            let snap = self.snapshot();
            let known = snap.user_by_username(name).is_some()
                || snap.user_by_login_name(name).is_some()
                || snap.user_by_mail(name).is_some()
                || snap.admin_by_mail(name).is_some();
            (!known && !name.starts_with("unknown name #")).then(|| EventQuery {
                user: Some(crate::crypto::unknown_name(&self.master_key, name)),
                ..query.clone()
            })
        });
        let store = Arc::clone(&self.store);
        let limit = query.limit;
        Ok(tokio::task::spawn_blocking(move || {
            let mut found = store.query_events(&query)?;
            if let Some(q) = digest_query {
                found.extend(store.query_events(&q)?);
                found.sort_by_key(|e| std::cmp::Reverse(e.id));
                found.dedup_by_key(|e| e.id);
                found.truncate(limit);
            }
            Ok::<_, crate::store::StoreError>(found)
        })
        .await
        .map_err(|e| DirectoryError::Internal(e.to_string()))??)
    }

    /// Delete events older than the org's retention; returns how many went.
    /// Expired short-lived state (used TOTP codes, sessions) goes at the same time.
    pub async fn apply_event_retention(&self) -> Result<u64> {
        let store = Arc::clone(&self.store);
        let _ =
            tokio::task::spawn_blocking(move || store.ephemeral_prune(chrono::Utc::now())).await;
        let days = self.org().map_or(0, |o| o.event_retention_days);
        if days == 0 {
            return Ok(0);
        }
        self.flush_events().await;
        let before = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
        let store = Arc::clone(&self.store);
        Ok(
            tokio::task::spawn_blocking(move || store.prune_events(before))
                .await
                .map_err(|e| DirectoryError::Internal(e.to_string()))??,
        )
    }

    /// An online backup: a consistent copy of every record (writes go on meanwhile) and of the event log into a
    /// new redb file at `path`, checked by counts and a checksum. Administrators only.
    pub async fn backup_to(
        &self,
        actor: &Actor,
        path: std::path::PathBuf,
    ) -> Result<crate::store::copy::CopyReport> {
        actor.require(crate::access::Permission::ManageOrg)?;
        self.flush_events().await;
        let store = Arc::clone(&self.store);
        let report = tokio::task::spawn_blocking(move || {
            let target = crate::store::RedbStore::open(&path)?;
            crate::store::copy::copy(store.as_ref(), &target)
        })
        .await
        .map_err(|e| DirectoryError::Internal(e.to_string()))??;
        self.record(
            crate::directory::admin_event(actor, "backup")
                .detail("events", report.events)
                .detail("checksum", report.checksum.clone()),
        )
        .await;
        Ok(report)
    }

    /// The store, for short-lived shared state.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store's schema version.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self.store.schema_version()?)
    }
}

/// Most events in one commit of the event writer.
const EVENT_BATCH: usize = 1024;
/// How long the event writer lets a batch fill before committing it, unless someone waits for a flush. Each
/// commit costs a sync to disk and two thread hand-overs: letting batches fill for a few milliseconds took the
/// server's CPU per cached LDAP bind from 31 µs to 19 µs (`stratus-bench ldap`, 8 connections, 36,000 → 53,000
/// binds/s). A crash loses what the channel holds either way; the linger adds at most this much to it.
const EVENT_LINGER: Duration = Duration::from_millis(5);

/// Writes recorded events in batches: whatever has queued up goes in one transaction.
async fn event_writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<EventMsg>) {
    let mut buf = Vec::with_capacity(EVENT_BATCH);
    while rx.recv_many(&mut buf, EVENT_BATCH).await > 0 {
        let flushing = |msgs: &[EventMsg]| msgs.iter().any(|m| matches!(m, EventMsg::Flush(_)));
        if !flushing(&buf) {
            let deadline = tokio::time::Instant::now() + EVENT_LINGER;
            while buf.len() < EVENT_BATCH {
                let before = buf.len();
                match tokio::time::timeout_at(
                    deadline,
                    rx.recv_many(&mut buf, EVENT_BATCH - before),
                )
                .await
                {
                    Ok(n) if n > 0 && !flushing(&buf[before..]) => {}
                    // Closed, time is up, or a flush is waiting.
                    _ => break,
                }
            }
        }
        let mut events = Vec::new();
        let mut waiters = Vec::new();
        for msg in buf.drain(..) {
            match msg {
                EventMsg::Record(e) => events.push(*e),
                EventMsg::Flush(w) => waiters.push(w),
            }
        }
        if !events.is_empty() {
            let s = Arc::clone(&store);
            match tokio::task::spawn_blocking(move || s.append_events(events)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "could not write events"),
                Err(e) => tracing::error!(error = %e, "event writer task failed"),
            }
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

/// The optimistic-concurrency rule: a write that names the revision it was based on happens only if the entry is
/// still at that revision, checked inside the serialised write against the working copy.
fn check_revision(kind: &'static str, id: &Id, current: u64, expect: Option<u64>) -> Result<()> {
    match expect {
        Some(e) if e != current => Err(DirectoryError::PreconditionFailed {
            kind,
            id: id.to_string(),
            expected: e,
            current,
        }),
        _ => Ok(()),
    }
}

/// Trim and require a non-empty value.
pub(crate) fn required(field: &'static str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} is required"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if v.len() > 256 {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} must be at most 256 characters"),
        ));
    }
    Ok(v.to_string())
}

/// Trim a free-text value that may be empty: no control characters (CR, LF, ESC, … would reach LDAP, SAML and
/// SCIM clients and logs as they are), at most `max` characters.
pub(crate) fn text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.chars().any(char::is_control) {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    if v.chars().count() > max {
        return Err(DirectoryError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(v.to_string())
}

/// Trim an optional free-text value; empty means absent.
pub(crate) fn optional(field: &'static str, value: Option<&str>) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required(field, v).map(Some),
    }
}

pub(crate) use settings::admin_event;

/// Validate a new user's requested name and e-mail and check both are free (CSV import's pre-check). Returns
/// the folded requested name (for spotting a name twice in one file) and the e-mail; the write that creates the
/// user resolves the name again (see `users::resolve_username`).
pub(crate) fn validate_new_identity(
    snap: &Snapshot,
    username: &str,
    email: &str,
) -> std::result::Result<(String, String), String> {
    let (resolved, login) =
        users::resolve_username(snap, None, username).map_err(|e| e.to_string())?;
    let email = users::validate_email(email).map_err(|e| e.to_string())?;
    let taken = match &login {
        None => snap.user_by_username(&resolved).is_some(),
        Some(l) => snap.user_by_login.contains_key(&crate::snapshot::fold(l)),
    };
    if taken {
        return Err(format!(
            "username `{}` is already taken",
            login.as_deref().unwrap_or(&resolved)
        ));
    }
    if snap.user_by_mail(&email).is_some() {
        return Err(format!("e-mail `{email}` is already used by another user"));
    }
    Ok((
        crate::snapshot::fold(login.as_deref().unwrap_or(&resolved)),
        email,
    ))
}

/// A store failure as the caller sees it: a backend that does not answer means the directory cannot write now.
fn unavailable(e: crate::store::StoreError) -> DirectoryError {
    match e {
        crate::store::StoreError::Backend(m) => DirectoryError::Unavailable(m),
        other => DirectoryError::from(other),
    }
}
