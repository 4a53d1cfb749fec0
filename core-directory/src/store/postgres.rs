//! The PostgreSQL backend: several Stratus nodes on one database.
//!
//! Tables (all prefixed `stratus_`):
//! - `records (kind, key, value)`: the same opaque records as the embedded store.
//! - `changes (seq, kind, key)`: which records each commit touched; other nodes read it to catch up, joined to
//!   `records` for the current values (a missing record is a deletion).
//! - `events (id, at, body)`: the one event log of every node.
//! - `meta (key, value)`: the schema version and the change sequence.
//!
//! **Writes across nodes.** A write takes a transaction-scoped advisory lock ([`WRITE_LOCK`]) first, so the
//! writes of all nodes are serialised exactly as one node's writer mutex serialises its own. Under the lock the
//! node reads the changes it has not seen, applies them to its snapshot, and only then runs the write's
//! checks (uniqueness, allocators, revisions, membership deltas) — against the latest state — and commits in the
//! same transaction. Isolation is READ COMMITTED: with every writer behind the lock, no write can interleave, and
//! readers never touch the database (they read the snapshot). A node that dies holding the lock loses its
//! connection, which ends the transaction and frees the lock.
//!
//! **The change feed.** Every commit runs `NOTIFY stratus_changes, '<seq>'`; each node keeps one connection
//! `LISTEN`ing and moves a watch channel, and the core follows with [`Store::changes_since`] (also every second
//! and after a reconnect, so a notification lost while a connection was down costs at most a second).
//!
//! The trait is synchronous (the core calls it on the blocking pool); this backend runs its async client on the
//! runtime it was opened in.

use super::{Change, Kind, LoadedRecords, Op, SharedWrite, Store, StoreError, WriteBatch};
use crate::events::{Event, EventQuery};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio_postgres::NoTls;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Advisory lock taken by every write, on every node.
pub const WRITE_LOCK: i64 = 0x5354_5241_5455_5301;
/// Advisory lock held while migrations run.
const MIGRATION_LOCK: i64 = 0x5354_5241_5455_5302;
const CHANNEL: &str = "stratus_changes";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS stratus_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS stratus_records (kind text NOT NULL, key text NOT NULL, value bytea NOT NULL,
    PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS stratus_changes (id bigserial PRIMARY KEY, seq bigint NOT NULL, kind text NOT NULL,
    key text NOT NULL);
CREATE INDEX IF NOT EXISTS stratus_changes_seq ON stratus_changes (seq);
CREATE TABLE IF NOT EXISTS stratus_events (id bigint PRIMARY KEY, at timestamptz NOT NULL, body bytea NOT NULL);
CREATE INDEX IF NOT EXISTS stratus_events_at ON stratus_events (at);
CREATE SEQUENCE IF NOT EXISTS stratus_event_ids;
CREATE TABLE IF NOT EXISTS stratus_ephemeral (space text NOT NULL, key text NOT NULL, value bytea NOT NULL,
    expires_at timestamptz NOT NULL, PRIMARY KEY (space, key));
INSERT INTO stratus_meta (key, value) VALUES ('change_sequence', 0) ON CONFLICT DO NOTHING;
";

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(format!("PostgreSQL: {e}"))
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    rt: Handle,
    signal: tokio::sync::watch::Receiver<u64>,
}

impl PgStore {
    /// Connect to `url` (`postgres://user:pass@host:port/db`, TLS per its `sslmode`), bring the schema to the
    /// current version under a migration lock (so nodes starting together migrate once), and start listening for
    /// other nodes' commits. Must be called inside a multi-threaded tokio runtime.
    pub async fn connect(url: &str) -> Result<Arc<Self>, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(backend)?;
        let tls = tls_for(&config)?;
        let manager = match &tls {
            Some(t) => Manager::from_config(
                config.clone(),
                t.clone(),
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            ),
            None => Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            // A database that does not answer must fail a write within seconds, not hang it.
            .wait_timeout(Some(std::time::Duration::from_secs(3)))
            .create_timeout(Some(std::time::Duration::from_secs(2)))
            .recycle_timeout(Some(std::time::Duration::from_secs(2)))
            .build()
            .map_err(backend)?;
        let (tx, signal) = tokio::sync::watch::channel(0u64);
        let store = Arc::new(PgStore {
            pool,
            rt: Handle::current(),
            signal,
        });
        store.migrate().await?;
        tokio::spawn(listen(config, tls, tx));
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(backend)?;
        let txn = client.transaction().await.map_err(backend)?;
        txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(backend)?;
        txn.batch_execute(SCHEMA).await.map_err(backend)?;
        let found: i64 = txn
            .query_opt(
                "SELECT value FROM stratus_meta WHERE key = 'schema_version'",
                &[],
            )
            .await
            .map_err(backend)?
            .map_or(0, |r| r.get(0));
        if found > i64::from(SCHEMA_VERSION) {
            return Err(StoreError::SchemaTooNew {
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: SCHEMA_VERSION,
            });
        }
        txn.execute(
            "INSERT INTO stratus_meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&i64::from(SCHEMA_VERSION)],
        )
        .await
        .map_err(backend)?;
        txn.commit().await.map_err(backend)
    }

    /// Run a future on the store's runtime from the blocking pool (or any thread outside a runtime).
    fn block<T>(&self, f: impl Future<Output = T>) -> T {
        match Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(|| self.rt.block_on(f)),
            Err(_) => self.rt.block_on(f),
        }
    }

    async fn changes_after(
        client: &impl deadpool_postgres::GenericClient,
        after: u64,
    ) -> Result<Vec<Change>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        // One statement, one snapshot: the values are those of the newest commit it sees, and so is the sequence.
        let stmt = client
            .prepare_cached(
                "SELECT c.seq, c.kind, c.key, r.value FROM stratus_changes c
                 LEFT JOIN stratus_records r ON r.kind = c.kind AND r.key = c.key
                 WHERE c.seq > $1 ORDER BY c.seq, c.id",
            )
            .await
            .map_err(backend)?;
        let rows = client.query(&stmt, &[&after]).await.map_err(backend)?;
        let mut out: Vec<Change> = Vec::new();
        for row in rows {
            let seq: i64 = row.get(0);
            let seq = u64::try_from(seq).unwrap_or(0);
            let table: String = row.get(1);
            let kind = Kind::from_table_name(&table).ok_or_else(|| StoreError::Corrupt {
                kind: "changes",
                key: table.clone(),
                reason: "unknown record kind".into(),
            })?;
            let key: String = row.get(2);
            let value: Option<Vec<u8>> = row.get(3);
            let op = match value {
                Some(value) => Op::Put { kind, key, value },
                None => Op::Delete { kind, key },
            };
            match out.last_mut() {
                Some(c) if c.sequence == seq => c.ops.push(op),
                _ => out.push(Change {
                    sequence: seq,
                    ops: vec![op],
                }),
            }
        }
        Ok(out)
    }

    async fn write_events(
        client: &impl deadpool_postgres::GenericClient,
        events: Vec<Event>,
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let ids = Self::event_ids(client, events.len()).await?;
        Self::insert_events(client, events, &ids).await
    }

    /// `n` new event ids, in order.
    async fn event_ids(
        client: &impl deadpool_postgres::GenericClient,
        n: usize,
    ) -> Result<Vec<i64>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let stmt = client
            .prepare_cached(
                "SELECT nextval('stratus_event_ids') FROM generate_series(1, $1::bigint) ORDER BY 1",
            )
            .await
            .map_err(backend)?;
        let rows = client.query(&stmt, &[&n]).await.map_err(backend)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Insert events under the given ids, in one statement.
    async fn insert_events(
        client: &impl deadpool_postgres::GenericClient,
        events: Vec<Event>,
        ids: &[i64],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut at = Vec::with_capacity(events.len());
        let mut bodies = Vec::with_capacity(events.len());
        for (mut event, id) in events.into_iter().zip(ids) {
            event.id = u64::try_from(*id).unwrap_or(0);
            at.push(event.time);
            bodies.push(serde_json::to_vec(&event).map_err(backend)?);
        }
        let stmt = client
            .prepare_cached(
                "INSERT INTO stratus_events (id, at, body)
                 SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bytea[])",
            )
            .await
            .map_err(backend)?;
        client
            .execute(&stmt, &[&ids, &at, &bodies])
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Apply a batch inside an open transaction that holds the write lock; returns the new sequence. The
    /// statements are prepared once per connection and sent in two pipelined rounds: the sequence and event
    /// ids, then the records (each key's last operation in the batch), the change rows, the events and the
    /// notification.
    async fn apply(
        client: &impl deadpool_postgres::GenericClient,
        batch: WriteBatch,
    ) -> Result<u64, StoreError> {
        let seq_stmt = client
            .prepare_cached(
                "UPDATE stratus_meta SET value = value + 1 WHERE key = 'change_sequence' RETURNING value",
            )
            .await
            .map_err(backend)?;
        let (seq_row, event_ids) = futures_util::try_join!(
            async { client.query_one(&seq_stmt, &[]).await.map_err(backend) },
            Self::event_ids(client, batch.events.len()),
        )?;
        let seq: i64 = seq_row.get(0);
        // The last operation on each key, in the order keys were first touched.
        let mut last: std::collections::HashMap<(&'static str, &str), usize> =
            std::collections::HashMap::new();
        let mut touched: Vec<(&'static str, &str)> = Vec::new();
        for (i, op) in batch.ops.iter().enumerate() {
            let (kind, key) = match op {
                Op::Put { kind, key, .. } | Op::Delete { kind, key } => {
                    (kind.table_name(), key.as_str())
                }
            };
            if last.insert((kind, key), i).is_none() {
                touched.push((kind, key));
            }
        }
        let (mut put_kinds, mut put_keys, mut put_values) = (Vec::new(), Vec::new(), Vec::new());
        let (mut del_kinds, mut del_keys) = (Vec::new(), Vec::new());
        for k in &touched {
            match &batch.ops[last[k]] {
                Op::Put { value, .. } => {
                    put_kinds.push(k.0);
                    put_keys.push(k.1);
                    put_values.push(value.as_slice());
                }
                Op::Delete { .. } => {
                    del_kinds.push(k.0);
                    del_keys.push(k.1);
                }
            }
        }
        let change_kinds: Vec<&str> = touched.iter().map(|k| k.0).collect();
        let change_keys: Vec<&str> = touched.iter().map(|k| k.1).collect();
        let puts = async {
            if put_keys.is_empty() {
                return Ok(());
            }
            let stmt = client
                .prepare_cached(
                    "INSERT INTO stratus_records (kind, key, value)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])
                     ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .await
                .map_err(backend)?;
            client
                .execute(&stmt, &[&put_kinds, &put_keys, &put_values])
                .await
                .map(|_| ())
                .map_err(backend)
        };
        let deletes = async {
            if del_keys.is_empty() {
                return Ok(());
            }
            let stmt = client
                .prepare_cached(
                    "DELETE FROM stratus_records r USING unnest($1::text[], $2::text[]) AS d(kind, key)
                     WHERE r.kind = d.kind AND r.key = d.key",
                )
                .await
                .map_err(backend)?;
            client
                .execute(&stmt, &[&del_kinds, &del_keys])
                .await
                .map(|_| ())
                .map_err(backend)
        };
        let changes = async {
            if change_keys.is_empty() {
                return Ok(());
            }
            let stmt = client
                .prepare_cached(
                    "INSERT INTO stratus_changes (seq, kind, key)
                     SELECT $1::bigint, * FROM unnest($2::text[], $3::text[])",
                )
                .await
                .map_err(backend)?;
            client
                .execute(&stmt, &[&seq, &change_kinds, &change_keys])
                .await
                .map(|_| ())
                .map_err(backend)
        };
        let notify = async {
            let stmt = client
                .prepare_cached("SELECT pg_notify($1, $2)")
                .await
                .map_err(backend)?;
            client
                .execute(&stmt, &[&CHANNEL, &seq.to_string()])
                .await
                .map(|_| ())
                .map_err(backend)
        };
        futures_util::try_join!(
            puts,
            deletes,
            changes,
            Self::insert_events(client, batch.events, &event_ids),
            notify
        )?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }
}

/// TLS to the database unless the URL says `sslmode=disable` (or the host is a Unix socket).
fn tls_for(
    config: &tokio_postgres::Config,
) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, StoreError> {
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Ok(path) = std::env::var("STRATUS_STORE_CA") {
        let pem = std::fs::read(&path).map_err(|e| backend(format!("{path}: {e}")))?;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| backend(format!("{path}: {e}")))?)
                .map_err(backend)?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(backend)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls)))
}

use rustls_pki_types::pem::PemObject;

/// Keep one connection LISTENing to the change channel: move `tx` on every notification, after every
/// (re)connection, and once a second, so a node catches up even when a notification was lost with a connection.
async fn listen(
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    tx: tokio::sync::watch::Sender<u64>,
) {
    loop {
        let ended = match &tls {
            Some(t) => match config.connect(t.clone()).await {
                Ok((client, connection)) => follow(client, connection, &tx).await,
                Err(e) => Err(e),
            },
            None => match config.connect(NoTls).await {
                Ok((client, connection)) => follow(client, connection, &tx).await,
                Err(e) => Err(e),
            },
        };
        if let Err(e) = ended {
            tracing::warn!(error = %e, "the PostgreSQL change feed connection failed; retrying");
        }
        // Every store handle gone: the directory is shutting down.
        if tx.receiver_count() == 0 {
            return;
        }
        tx.send_modify(|v| *v += 1);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn follow<S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    tx: &tokio::sync::watch::Sender<u64>,
) -> Result<(), tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    let mut listening = false;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            r = &mut listen, if !listening => {
                r?;
                listening = true;
                tx.send_modify(|v| *v += 1);
            }
            m = messages.next() => match m {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => tx.send_modify(|v| *v += 1),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            _ = tick.tick() => {
                if tx.receiver_count() == 0 {
                    return Ok(());
                }
                tx.send_modify(|v| *v += 1);
            }
        }
    }
}

/// A write holding the cluster-wide write lock in an open transaction.
struct PgWrite {
    client: Option<deadpool_postgres::Object>,
    rt: Handle,
}

impl SharedWrite for PgWrite {
    fn commit(mut self: Box<Self>, batch: WriteBatch) -> Result<u64, StoreError> {
        let Some(client) = self.client.take() else {
            return Err(backend("the write was already ended"));
        };
        let rt = self.rt.clone();
        let run = async move {
            let seq = match PgStore::apply(&client, batch).await {
                Ok(seq) => seq,
                Err(e) => {
                    // The connection goes with the failed transaction.
                    drop(deadpool_postgres::Object::take(client));
                    return Err(e);
                }
            };
            client.batch_execute("COMMIT").await.map_err(backend)?;
            Ok(seq)
        };
        match Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(|| rt.block_on(run)),
            Err(_) => rt.block_on(run),
        }
    }
}

impl Drop for PgWrite {
    fn drop(&mut self) {
        // Not committed: closing the connection rolls the transaction back and frees the lock.
        if let Some(client) = self.client.take() {
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

impl Store for PgStore {
    fn load(&self) -> Result<LoadedRecords, StoreError> {
        self.block(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let txn = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(backend)?;
            let seq: i64 = txn
                .query_one(
                    "SELECT value FROM stratus_meta WHERE key = 'change_sequence'",
                    &[],
                )
                .await
                .map_err(backend)?
                .get(0);
            let rows = txn
                .query("SELECT kind, key, value FROM stratus_records", &[])
                .await
                .map_err(backend)?;
            let mut out = LoadedRecords {
                sequence: u64::try_from(seq).unwrap_or(0),
                records: Vec::with_capacity(rows.len()),
            };
            for row in rows {
                let table: String = row.get(0);
                let Some(kind) = Kind::from_table_name(&table) else {
                    continue;
                };
                out.records.push((kind, row.get(1), row.get(2)));
            }
            txn.commit().await.map_err(backend)?;
            Ok(out)
        })
    }

    fn commit(&self, batch: WriteBatch) -> Result<u64, StoreError> {
        // A write outside the shared path (nothing in the core does this for a shared store) still takes the
        // lock, so it cannot interleave with another node's write.
        let (write, _) = self.begin_shared_write(u64::MAX)?;
        write.commit(batch)
    }

    fn append_events(&self, events: Vec<Event>) -> Result<(), StoreError> {
        self.block(async {
            let mut client = self.pool.get().await.map_err(backend)?;
            let txn = client.transaction().await.map_err(backend)?;
            Self::write_events(&txn, events).await?;
            txn.commit().await.map_err(backend)
        })
    }

    fn query_events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            let mut upper = i64::try_from(query.before_id.unwrap_or(u64::MAX)).unwrap_or(i64::MAX);
            let mut scanned = 0usize;
            let scan = query.scan_limit.unwrap_or(usize::MAX);
            let since = query.since.map(|s| s - chrono::Duration::minutes(5));
            let mut out = Vec::new();
            const PAGE: i64 = 1000;
            loop {
                let rows = client
                    .query(
                        "SELECT id, body FROM stratus_events WHERE id < $1
                           AND ($2::timestamptz IS NULL OR at >= $2)
                         ORDER BY id DESC LIMIT $3",
                        &[&upper, &since, &PAGE],
                    )
                    .await
                    .map_err(backend)?;
                let n = rows.len();
                for row in rows {
                    let id: i64 = row.get(0);
                    upper = id;
                    scanned += 1;
                    if scanned > scan {
                        return Ok(out);
                    }
                    let body: Vec<u8> = row.get(1);
                    let event: Event =
                        serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt {
                            kind: "events",
                            key: id.to_string(),
                            reason: super::decode_failure(&e),
                        })?;
                    if query.matches(&event) {
                        out.push(event);
                        if out.len() >= query.limit {
                            return Ok(out);
                        }
                    }
                }
                if n < PAGE as usize {
                    return Ok(out);
                }
            }
        })
    }

    fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            let n = client
                .execute("DELETE FROM stratus_events WHERE at < $1", &[&before])
                .await
                .map_err(backend)?;
            // Changes every node has long applied are not needed any more either.
            client
                .execute(
                    "DELETE FROM stratus_changes WHERE seq < (SELECT value FROM stratus_meta
                       WHERE key = 'change_sequence') - 100000",
                    &[],
                )
                .await
                .map_err(backend)?;
            Ok(n)
        })
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            let v: i64 = client
                .query_one(
                    "SELECT value FROM stratus_meta WHERE key = 'schema_version'",
                    &[],
                )
                .await
                .map_err(backend)?
                .get(0);
            Ok(u32::try_from(v).unwrap_or(0))
        })
    }

    fn ephemeral_put(
        &self,
        space: &str,
        key: &str,
        value: &[u8],
        expires: DateTime<Utc>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            // Without only_if_absent the update always applies; with it, only over an expired entry.
            let n = client
                .execute(
                    "INSERT INTO stratus_ephemeral (space, key, value, expires_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
                     WHERE NOT $5 OR stratus_ephemeral.expires_at <= now()",
                    &[&space, &key, &value, &expires, &only_if_absent],
                )
                .await
                .map_err(backend)?;
            Ok(n == 1)
        })
    }

    fn ephemeral_get(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "SELECT value FROM stratus_ephemeral WHERE space = $1 AND key = $2 AND expires_at > now()",
                    &[&space, &key],
                )
                .await
                .map_err(backend)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn ephemeral_delete(&self, space: &str, key: &str) -> Result<(), StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "DELETE FROM stratus_ephemeral WHERE space = $1 AND key = $2",
                    &[&space, &key],
                )
                .await
                .map_err(backend)?;
            Ok(())
        })
    }

    fn ephemeral_take(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            let row = client
                .query_opt(
                    "DELETE FROM stratus_ephemeral WHERE space = $1 AND key = $2
                     RETURNING value, expires_at > now()",
                    &[&space, &key],
                )
                .await
                .map_err(backend)?;
            Ok(row.and_then(|r| r.get::<_, bool>(1).then(|| r.get(0))))
        })
    }

    fn ephemeral_count(
        &self,
        space: &str,
        key: &str,
        add: u64,
        expires: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            // The counter is kept as 8 big-endian bytes, like the embedded store's.
            let add = i64::try_from(add).unwrap_or(i64::MAX);
            let row = client
                .query_one(
                    "INSERT INTO stratus_ephemeral (space, key, value, expires_at)
                     VALUES ($1, $2, int8send($4::bigint), $3)
                     ON CONFLICT (space, key) DO UPDATE SET
                       value = CASE WHEN stratus_ephemeral.expires_at <= now() OR length(stratus_ephemeral.value) <> 8
                               THEN int8send($4::bigint)
                               ELSE int8send(('x' || encode(stratus_ephemeral.value, 'hex'))::bit(64)::bigint + $4) END,
                       expires_at = CASE WHEN stratus_ephemeral.expires_at <= now() OR length(stratus_ephemeral.value) <> 8
                                    THEN EXCLUDED.expires_at ELSE stratus_ephemeral.expires_at END
                     RETURNING ('x' || encode(value, 'hex'))::bit(64)::bigint",
                    &[&space, &key, &expires, &add],
                )
                .await
                .map_err(backend)?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    fn ephemeral_scan(
        &self,
        space: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            let rows = client
                .query(
                    "SELECT key, value FROM stratus_ephemeral
                     WHERE space = $1 AND starts_with(key, $2) AND expires_at > now()
                     ORDER BY key LIMIT $3",
                    &[&space, &prefix, &limit],
                )
                .await
                .map_err(backend)?;
            Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn ephemeral_prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            client
                .execute(
                    "DELETE FROM stratus_ephemeral WHERE expires_at <= $1",
                    &[&now],
                )
                .await
                .map_err(backend)
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn begin_shared_write(
        &self,
        after: u64,
    ) -> Result<(Box<dyn SharedWrite>, Vec<Change>), StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            let begun = async {
                // One round trip for both.
                client
                    .batch_execute(&format!(
                        "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                    ))
                    .await
                    .map_err(backend)?;
                if after == u64::MAX {
                    Ok(Vec::new())
                } else {
                    Self::changes_after(&client, after).await
                }
            }
            .await;
            match begun {
                Ok(changes) => Ok((
                    Box::new(PgWrite {
                        client: Some(client),
                        rt: self.rt.clone(),
                    }) as Box<dyn SharedWrite>,
                    changes,
                )),
                Err(e) => {
                    drop(deadpool_postgres::Object::take(client));
                    Err(e)
                }
            }
        })
    }

    fn changes_since(&self, after: u64) -> Result<Vec<Change>, StoreError> {
        self.block(async {
            let client = self.pool.get().await.map_err(backend)?;
            Self::changes_after(&client, after).await
        })
    }

    fn change_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.signal.clone())
    }

    fn health(&self) -> Result<(), StoreError> {
        self.schema_version().map(|_| ())
    }
}
