//! The persistence boundary. The core talks to storage only through [`Store`]; no backend type crosses it.
//!
//! A backend keeps opaque records (`kind`, `key`) → bytes, an append-only event log with monotonic ids, a
//! monotonically increasing change sequence and a schema version. Every [`WriteBatch`] is one transaction:
//! its records, its events and the sequence bump land together or not at all.

pub mod copy;
pub mod postgres;
pub mod redb_store;

use crate::events::{Event, EventQuery};
use chrono::{DateTime, Utc};

pub use postgres::PgStore;
pub use redb_store::RedbStore;

/// The kinds of record the core persists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Meta,
    User,
    Group,
    /// Key `<group id>/<user id>`, empty value.
    Membership,
    /// Key `<group id>/<resource>`, empty value.
    Binding,
    RadiusServer,
    App,
    Admin,
    ApiKey,
    ScimToken,
    /// Key: outbox item id.
    Outbox,
    /// Key `<app id>/<user or group id>`.
    Provisioned,
    ExternalDirectory,
    /// Key `<directory id>/<user id>`.
    ExternalAccount,
    AccessPolicy,
    IpList,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Meta,
        Kind::User,
        Kind::Group,
        Kind::Membership,
        Kind::Binding,
        Kind::RadiusServer,
        Kind::App,
        Kind::Admin,
        Kind::ApiKey,
        Kind::ScimToken,
        Kind::Outbox,
        Kind::Provisioned,
        Kind::ExternalDirectory,
        Kind::ExternalAccount,
        Kind::AccessPolicy,
        Kind::IpList,
    ];

    /// The kind a [`Kind::table_name`] names.
    pub fn from_table_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.table_name() == name)
    }

    pub fn table_name(self) -> &'static str {
        match self {
            Kind::Meta => "meta",
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::Membership => "memberships",
            Kind::Binding => "bindings",
            Kind::RadiusServer => "radius_servers",
            Kind::App => "apps",
            Kind::Admin => "admins",
            Kind::ApiKey => "api_keys",
            Kind::ScimToken => "scim_tokens",
            Kind::Outbox => "scim_outbox",
            Kind::Provisioned => "scim_provisioned",
            Kind::ExternalDirectory => "external_directories",
            Kind::ExternalAccount => "external_accounts",
            Kind::AccessPolicy => "access_policies",
            Kind::IpList => "ip_lists",
        }
    }
}

/// One change inside a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        kind: Kind,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        kind: Kind,
        key: String,
    },
}

/// Everything one mutation writes.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub ops: Vec<Op>,
    pub events: Vec<Event>,
}

impl WriteBatch {
    pub fn put(&mut self, kind: Kind, key: impl Into<String>, value: Vec<u8>) {
        self.ops.push(Op::Put {
            kind,
            key: key.into(),
            value,
        });
    }

    pub fn put_json<T: serde::Serialize>(&mut self, kind: Kind, key: impl Into<String>, value: &T) {
        // Serialising our own model types to JSON cannot fail (no non-string map keys, no foreign types).
        let bytes = serde_json::to_vec(value).expect("model types serialise to JSON");
        self.put(kind, key, bytes);
    }

    pub fn delete(&mut self, kind: Kind, key: impl Into<String>) {
        self.ops.push(Op::Delete {
            kind,
            key: key.into(),
        });
    }

    pub fn event(&mut self, event: Event) {
        self.events.push(event);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty()
    }
}

/// All records, as loaded at start-up.
#[derive(Debug, Default)]
pub struct LoadedRecords {
    pub sequence: u64,
    pub records: Vec<(Kind, String, Vec<u8>)>,
}

/// A committed transaction's record changes, as a shared store hands them to the other nodes.
#[derive(Debug, Clone)]
pub struct Change {
    pub sequence: u64,
    pub ops: Vec<Op>,
}

/// A write in progress on a store shared by several nodes: every other node's writes wait until it commits or
/// is dropped (which rolls it back).
pub trait SharedWrite: Send {
    /// Apply the batch and end the write; returns the new change sequence.
    fn commit(self: Box<Self>, batch: WriteBatch) -> Result<u64, StoreError>;
}

/// A storage failure. The message is for operators' logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("stored data is from schema version {found}, newer than this build understands ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("stored record {kind}/{key} is corrupt: {reason}")]
    Corrupt {
        kind: &'static str,
        key: String,
        reason: String,
    },
}

/// Why a stored record did not decode, without the values the decoder would quote (stored records hold users'
/// and peers' text): the class of error and where in the record.
pub fn decode_failure(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {}, column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

/// What [`Store::load_each`] hands each record to: kind, key, stored bytes.
pub type RecordVisitor<'a> = dyn FnMut(Kind, &str, &[u8]) -> Result<(), StoreError> + 'a;

/// A persistence backend.
pub trait Store: Send + Sync + 'static {
    /// Every record and the current change sequence.
    fn load(&self) -> Result<LoadedRecords, StoreError>;
    /// Every record handed to `visit` one at a time, in one consistent read; returns the change sequence. A
    /// store that can read without copying every record's bytes first (the embedded store) does so.
    fn load_each(&self, visit: &mut RecordVisitor<'_>) -> Result<u64, StoreError> {
        let loaded = self.load()?;
        for (kind, key, bytes) in &loaded.records {
            visit(*kind, key, bytes)?;
        }
        Ok(loaded.sequence)
    }
    /// Apply a batch atomically; returns the new change sequence. Event ids are assigned here.
    fn commit(&self, batch: WriteBatch) -> Result<u64, StoreError>;
    /// Append events that change no record (authentication attempts), in one transaction.
    fn append_events(&self, events: Vec<Event>) -> Result<(), StoreError>;
    /// Events matching a query, newest first, at most `query.limit`.
    fn query_events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError>;
    /// Delete events older than `before`; returns how many went.
    fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The schema version the data is at.
    fn schema_version(&self) -> Result<u32, StoreError>;

    /// Short-lived state every node must agree on and a restart must keep (TOTP codes used, sessions): `value`
    /// under (`space`, `key`) until `expires`. With `only_if_absent`, an unexpired entry is left as it is and the
    /// answer is `false`; otherwise the entry is written and the answer is `true`.
    fn ephemeral_put(
        &self,
        space: &str,
        key: &str,
        value: &[u8],
        expires: DateTime<Utc>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError>;
    /// An unexpired entry.
    fn ephemeral_get(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn ephemeral_delete(&self, space: &str, key: &str) -> Result<(), StoreError>;
    /// Remove an entry and return it if it was unexpired, atomically: of several nodes taking the same entry,
    /// exactly one gets it.
    fn ephemeral_take(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Count `add` more under (`space`, `key`), atomically across nodes: an unexpired counter goes up by `add`,
    /// an absent or expired one starts at `add` and lasts until `expires`. Returns the new count.
    fn ephemeral_count(
        &self,
        space: &str,
        key: &str,
        add: u64,
        expires: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// The unexpired entries of `space` whose key begins with `prefix`, as (key, value), at most `limit`.
    fn ephemeral_scan(
        &self,
        space: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Drop expired entries; returns how many went.
    fn ephemeral_prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Whether other processes write to the same data (then the core follows their changes and takes
    /// [`Store::begin_shared_write`] for each write). False for the embedded store.
    fn is_shared(&self) -> bool {
        false
    }

    /// Shared stores: begin a write that excludes every other node's writes, and return the changes committed
    /// after `after`, which the caller applies before deciding anything.
    fn begin_shared_write(
        &self,
        _after: u64,
    ) -> Result<(Box<dyn SharedWrite>, Vec<Change>), StoreError> {
        Err(StoreError::Backend(
            "this store has one writer process; it takes no shared writes".into(),
        ))
    }

    /// Shared stores: the changes committed after `after`, in order.
    fn changes_since(&self, _after: u64) -> Result<Vec<Change>, StoreError> {
        Ok(Vec::new())
    }

    /// Shared stores: moves whenever any node commits (a hint to call [`Store::changes_since`]).
    fn change_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// A short description of the store's health for `/readyz`: `Ok` when it answers.
    fn health(&self) -> Result<(), StoreError> {
        self.schema_version().map(|_| ())
    }
}
