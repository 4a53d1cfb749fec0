//! The embedded default backend: one redb file under the data directory.
//!
//! One table per record kind (`&str` key → JSON bytes), an `events` table keyed by event id, and a `meta`
//! table holding the schema version and the change sequence. Migrations run in one write transaction at open.

use super::{Kind, LoadedRecords, Op, Store, StoreError, WriteBatch};
use crate::events::{Event, EventQuery};
use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use std::path::Path;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// `<space>\u{1}<key>` → expiry (Unix milliseconds, big-endian) ‖ value.
const EPHEMERAL: TableDefinition<&str, &[u8]> = TableDefinition::new("ephemeral");
const SYSTEM: TableDefinition<&str, u64> = TableDefinition::new("system");

const SCHEMA_VERSION_KEY: &str = "schema_version";
const SEQUENCE_KEY: &str = "change_sequence";
const NEXT_EVENT_KEY: &str = "next_event_id";

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 4;

/// Migration `i` brings the data from version `i` to `i + 1`.
type Migration = fn(&WriteTransaction) -> Result<(), redb::Error>;
const MIGRATIONS: [Migration; 4] = [
    migrate_0_to_1,
    migrate_1_to_2,
    migrate_2_to_3,
    migrate_3_to_4,
];

/// Version 1: create every table so that readers never meet a missing one.
fn migrate_0_to_1(txn: &WriteTransaction) -> Result<(), redb::Error> {
    for kind in Kind::ALL {
        txn.open_table(table(kind))?;
    }
    txn.open_table(EVENTS)?;
    Ok(())
}

/// Version 2: the SCIM token table.
fn migrate_1_to_2(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(table(Kind::ScimToken))?;
    Ok(())
}

/// Version 3: the outbound SCIM outbox and what apps hold.
fn migrate_2_to_3(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(table(Kind::Outbox))?;
    txn.open_table(table(Kind::Provisioned))?;
    Ok(())
}

/// Version 4: short-lived shared state (TOTP codes used survive a restart).
fn migrate_3_to_4(txn: &WriteTransaction) -> Result<(), redb::Error> {
    txn.open_table(EPHEMERAL)?;
    Ok(())
}

fn ephemeral_key(space: &str, key: &str) -> String {
    format!("{space}\u{1}{key}")
}

/// (expiry, value) of a stored ephemeral entry.
fn ephemeral_parts(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (head, value) = bytes.split_at_checked(8)?;
    Some((i64::from_be_bytes(head.try_into().ok()?), value))
}

fn table(kind: Kind) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(kind.table_name())
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// redb's page cache. Reads are served by the snapshot, so the store is read in full once at start-up and
/// otherwise only along the pages a commit touches; redb's default (1 GiB) kept most of a large store resident
/// after that first read (a million users: about 1 GiB of the process's memory).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The redb store.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Open (or create) `path` and bring it to the current schema version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(backend)?;
        let store = RedbStore { db };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        {
            let mut system = txn.open_table(SYSTEM).map_err(backend)?;
            let found = system
                .get(SCHEMA_VERSION_KEY)
                .map_err(backend)?
                .map(|v| v.value() as u32)
                .unwrap_or(0);
            if found > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            for step in &MIGRATIONS[found as usize..] {
                step(&txn).map_err(backend)?;
            }
            system
                .insert(SCHEMA_VERSION_KEY, u64::from(SCHEMA_VERSION))
                .map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(())
    }

    fn write_events(txn: &WriteTransaction, events: Vec<Event>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut system = txn.open_table(SYSTEM).map_err(backend)?;
        let mut next = system
            .get(NEXT_EVENT_KEY)
            .map_err(backend)?
            .map(|v| v.value())
            .unwrap_or(1);
        let mut table = txn.open_table(EVENTS).map_err(backend)?;
        for mut event in events {
            event.id = next;
            let bytes = serde_json::to_vec(&event).map_err(backend)?;
            table.insert(next, bytes.as_slice()).map_err(backend)?;
            next += 1;
        }
        system.insert(NEXT_EVENT_KEY, next).map_err(backend)?;
        Ok(())
    }
}

impl Store for RedbStore {
    fn load(&self) -> Result<LoadedRecords, StoreError> {
        let mut records = Vec::new();
        let sequence = self.load_each(&mut |kind, key, value| {
            records.push((kind, key.to_string(), value.to_vec()));
            Ok(())
        })?;
        Ok(LoadedRecords { sequence, records })
    }

    fn load_each(&self, visit: &mut super::RecordVisitor<'_>) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let system = txn.open_table(SYSTEM).map_err(backend)?;
        let sequence = system
            .get(SEQUENCE_KEY)
            .map_err(backend)?
            .map(|v| v.value())
            .unwrap_or(0);
        for kind in Kind::ALL {
            let t = txn.open_table(table(kind)).map_err(backend)?;
            for row in t.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                visit(kind, k.value(), v.value())?;
            }
        }
        Ok(sequence)
    }

    fn commit(&self, batch: WriteBatch) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        let seq;
        {
            for op in &batch.ops {
                match op {
                    Op::Put { kind, key, value } => {
                        let mut t = txn.open_table(table(*kind)).map_err(backend)?;
                        t.insert(key.as_str(), value.as_slice()).map_err(backend)?;
                    }
                    Op::Delete { kind, key } => {
                        let mut t = txn.open_table(table(*kind)).map_err(backend)?;
                        t.remove(key.as_str()).map_err(backend)?;
                    }
                }
            }
            let mut system = txn.open_table(SYSTEM).map_err(backend)?;
            seq = system
                .get(SEQUENCE_KEY)
                .map_err(backend)?
                .map(|v| v.value())
                .unwrap_or(0)
                + 1;
            system.insert(SEQUENCE_KEY, seq).map_err(backend)?;
        }
        Self::write_events(&txn, batch.events)?;
        txn.commit().map_err(backend)?;
        Ok(seq)
    }

    fn append_events(&self, events: Vec<Event>) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        Self::write_events(&txn, events)?;
        txn.commit().map_err(backend)?;
        Ok(())
    }

    fn query_events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(EVENTS).map_err(backend)?;
        let upper = query.before_id.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let scan = query.scan_limit.unwrap_or(usize::MAX);
        // Looking for one user's events with no time bound: an event whose stored text does not even contain the
        // name cannot match, and is skipped without being decoded. (With `since`, every event is decoded so the
        // scan can stop at the first older one.)
        let needle = query
            .user
            .as_deref()
            .filter(|u| {
                query.since.is_none()
                    && !u.is_empty()
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
            })
            .map(|u| u.to_ascii_lowercase().into_bytes());
        let finder = needle.as_deref().map(memchr::memmem::Finder::new);
        let mut folded = Vec::new();
        for row in t.range(..upper).map_err(backend)?.rev().take(scan) {
            let (k, v) = row.map_err(backend)?;
            if let Some(f) = &finder {
                folded.clear();
                folded.extend(v.value().iter().map(u8::to_ascii_lowercase));
                if f.find(&folded).is_none() {
                    continue;
                }
            }
            let event: Event =
                serde_json::from_slice(v.value()).map_err(|e| StoreError::Corrupt {
                    kind: "events",
                    key: k.value().to_string(),
                    reason: super::decode_failure(&e),
                })?;
            // Ids grow with time, so once we are before `since` nothing older can match.
            if query
                .since
                .is_some_and(|s| event.time < s - chrono::Duration::minutes(5))
            {
                break;
            }
            if query.matches(&event) {
                out.push(event);
                if out.len() >= query.limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        let mut doomed = Vec::new();
        {
            let t = txn.open_table(EVENTS).map_err(backend)?;
            for row in t.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let time = serde_json::from_slice::<Event>(v.value())
                    .map(|e| e.time)
                    .unwrap_or(before);
                if time >= before {
                    break;
                }
                doomed.push(k.value());
            }
        }
        {
            let mut t = txn.open_table(EVENTS).map_err(backend)?;
            for id in &doomed {
                t.remove(*id).map_err(backend)?;
            }
        }
        txn.commit().map_err(backend)?;
        Ok(doomed.len() as u64)
    }

    fn ephemeral_put(
        &self,
        space: &str,
        key: &str,
        value: &[u8],
        expires: DateTime<Utc>,
        only_if_absent: bool,
    ) -> Result<bool, StoreError> {
        let k = ephemeral_key(space, key);
        let txn = self.db.begin_write().map_err(backend)?;
        {
            let mut t = txn.open_table(EPHEMERAL).map_err(backend)?;
            if only_if_absent {
                let now = Utc::now().timestamp_millis();
                let live = t
                    .get(k.as_str())
                    .map_err(backend)?
                    .and_then(|v| ephemeral_parts(v.value()).map(|(exp, _)| exp > now))
                    .unwrap_or(false);
                if live {
                    return Ok(false);
                }
            }
            let mut bytes = expires.timestamp_millis().to_be_bytes().to_vec();
            bytes.extend_from_slice(value);
            t.insert(k.as_str(), bytes.as_slice()).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(true)
    }

    fn ephemeral_get(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(EPHEMERAL).map_err(backend)?;
        let now = Utc::now().timestamp_millis();
        Ok(t.get(ephemeral_key(space, key).as_str())
            .map_err(backend)?
            .and_then(|v| {
                ephemeral_parts(v.value())
                    .filter(|(exp, _)| *exp > now)
                    .map(|(_, value)| value.to_vec())
            }))
    }

    fn ephemeral_delete(&self, space: &str, key: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        {
            let mut t = txn.open_table(EPHEMERAL).map_err(backend)?;
            t.remove(ephemeral_key(space, key).as_str())
                .map_err(backend)?;
        }
        txn.commit().map_err(backend)
    }

    fn ephemeral_take(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = Utc::now().timestamp_millis();
        let txn = self.db.begin_write().map_err(backend)?;
        let found = {
            let mut t = txn.open_table(EPHEMERAL).map_err(backend)?;
            let removed = t
                .remove(ephemeral_key(space, key).as_str())
                .map_err(backend)?;
            removed.and_then(|v| {
                ephemeral_parts(v.value())
                    .filter(|(exp, _)| *exp > now)
                    .map(|(_, value)| value.to_vec())
            })
        };
        txn.commit().map_err(backend)?;
        Ok(found)
    }

    fn ephemeral_count(
        &self,
        space: &str,
        key: &str,
        add: u64,
        expires: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let k = ephemeral_key(space, key);
        let now = Utc::now().timestamp_millis();
        let txn = self.db.begin_write().map_err(backend)?;
        let count = {
            let mut t = txn.open_table(EPHEMERAL).map_err(backend)?;
            let current = t.get(k.as_str()).map_err(backend)?.and_then(|v| {
                let (exp, value) = ephemeral_parts(v.value())?;
                let n = u64::from_be_bytes(value.try_into().ok()?);
                (exp > now).then_some((exp, n))
            });
            let (exp, n) = match current {
                Some((exp, n)) => (exp, n.saturating_add(add)),
                None => (expires.timestamp_millis(), add),
            };
            let mut bytes = exp.to_be_bytes().to_vec();
            bytes.extend_from_slice(&n.to_be_bytes());
            t.insert(k.as_str(), bytes.as_slice()).map_err(backend)?;
            n
        };
        txn.commit().map_err(backend)?;
        Ok(count)
    }

    fn ephemeral_scan(
        &self,
        space: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let t = txn.open_table(EPHEMERAL).map_err(backend)?;
        let now = Utc::now().timestamp_millis();
        let start = ephemeral_key(space, prefix);
        let head = ephemeral_key(space, "");
        let mut out = Vec::new();
        for row in t.range(start.as_str()..).map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            let k = k.value();
            if !k.starts_with(start.as_str()) || out.len() >= limit {
                break;
            }
            if let Some((exp, value)) = ephemeral_parts(v.value()) {
                if exp > now {
                    out.push((k[head.len()..].to_string(), value.to_vec()));
                }
            }
        }
        Ok(out)
    }

    fn ephemeral_prune(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = now.timestamp_millis();
        let txn = self.db.begin_write().map_err(backend)?;
        let mut doomed = Vec::new();
        {
            let t = txn.open_table(EPHEMERAL).map_err(backend)?;
            for row in t.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                if ephemeral_parts(v.value()).is_none_or(|(exp, _)| exp <= now) {
                    doomed.push(k.value().to_string());
                }
            }
        }
        {
            let mut t = txn.open_table(EPHEMERAL).map_err(backend)?;
            for k in &doomed {
                t.remove(k.as_str()).map_err(backend)?;
            }
        }
        txn.commit().map_err(backend)?;
        Ok(doomed.len() as u64)
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let system = txn.open_table(SYSTEM).map_err(backend)?;
        Ok(system
            .get(SCHEMA_VERSION_KEY)
            .map_err(backend)?
            .map(|v| v.value() as u32)
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Service;

    #[test]
    fn short_lived_counters_and_prefix_scans() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let later = Utc::now() + chrono::Duration::minutes(5);
        let past = Utc::now() - chrono::Duration::seconds(1);
        assert_eq!(store.ephemeral_count("n", "k", 1, later).unwrap(), 1);
        assert_eq!(store.ephemeral_count("n", "k", 2, later).unwrap(), 3);
        assert_eq!(store.ephemeral_count("n", "other", 1, later).unwrap(), 1);
        // An expired counter starts again.
        assert_eq!(store.ephemeral_count("n", "old", 1, past).unwrap(), 1);
        assert_eq!(store.ephemeral_count("n", "old", 1, later).unwrap(), 1);
        for (k, exp) in [("a/1", later), ("a/2", later), ("a/3", past), ("ab", later)] {
            store
                .ephemeral_put("s", k, k.as_bytes(), exp, false)
                .unwrap();
        }
        store.ephemeral_put("t", "a/9", b"", later, false).unwrap();
        let keys = |limit| -> Vec<String> {
            store
                .ephemeral_scan("s", "a/", limit)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(
            keys(10),
            ["a/1", "a/2"],
            "unexpired, this space, this prefix"
        );
        assert_eq!(keys(1), ["a/1"]);
    }

    #[test]
    fn batch_commits_records_events_and_sequence_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(Kind::User, "a", b"{}".to_vec());
        batch.event(Event::new(Service::Directory, "user_create", true));
        assert_eq!(store.commit(batch).unwrap(), 1);
        drop(store);
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.sequence, 1);
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let q = EventQuery {
            limit: 10,
            ..Default::default()
        };
        let events = store.query_events(&q).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, 1);
    }

    #[test]
    fn a_user_s_events_are_found_by_name_in_any_case_and_the_scan_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        store
            .append_events(vec![
                Event::new(Service::Ldap, "ldap_bind", true).user("ann"),
                Event::new(Service::Ldap, "ldap_bind", true).user("bob"),
                Event::new(Service::Admin, "user_update", true).actor("ANN"),
                Event::new(Service::Ldap, "ldap_bind", false).user("annabel"),
            ])
            .unwrap();
        let ids = |q: &EventQuery| -> Vec<u64> {
            store
                .query_events(q)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect()
        };
        let mut q = EventQuery {
            user: Some("ann".into()),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(ids(&q), vec![3, 1]);
        q.scan_limit = Some(2);
        assert_eq!(ids(&q), vec![3], "only the two newest events are examined");
    }

    #[test]
    fn event_pages_are_newest_first_and_continue_from_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let events = (0..5)
            .map(|_| Event::new(Service::Ldap, "ldap_bind", true))
            .collect();
        store.append_events(events).unwrap();
        let mut q = EventQuery {
            limit: 2,
            ..Default::default()
        };
        let page: Vec<u64> = store
            .query_events(&q)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(page, vec![5, 4]);
        q.before_id = Some(4);
        let page: Vec<u64> = store
            .query_events(&q)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(page, vec![3, 2]);
    }

    #[test]
    fn prune_removes_only_older_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let mut old = Event::new(Service::Ldap, "ldap_bind", true);
        old.time = Utc::now() - chrono::Duration::days(40);
        store
            .append_events(vec![old, Event::new(Service::Ldap, "ldap_bind", true)])
            .unwrap();
        let gone = store
            .prune_events(Utc::now() - chrono::Duration::days(30))
            .unwrap();
        assert_eq!(gone, 1);
    }
}
