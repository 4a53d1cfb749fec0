//! Copying a directory from one store to another: online backups (a running store into a new redb file),
//! restores, and moves between redb and PostgreSQL. Checked by counts and a checksum of every record.

use super::{Kind, LoadedRecords, Store, StoreError, WriteBatch};
use crate::events::EventQuery;
use serde::Serialize;

/// What a copy moved, and the checksum both sides agree on.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CopyReport {
    /// Records per kind (table name).
    pub records: std::collections::BTreeMap<String, usize>,
    pub events: usize,
    /// SHA-256 over every record (kind, key, value) in key order: equal on both sides after a good copy.
    pub checksum: String,
}

/// The checksum of a set of records, independent of the order a store lists them in.
pub fn checksum(loaded: &LoadedRecords) -> String {
    let mut rows: Vec<(&str, &str, &[u8])> = loaded
        .records
        .iter()
        .map(|(k, key, v)| (k.table_name(), key.as_str(), v.as_slice()))
        .collect();
    rows.sort();
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (kind, key, value) in rows {
        for part in [kind.as_bytes(), key.as_bytes(), value] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    data_encoding::HEXLOWER.encode(ctx.finish().as_ref())
}

fn counts(loaded: &LoadedRecords) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for kind in Kind::ALL {
        out.insert(kind.table_name().to_string(), 0);
    }
    for (kind, _, _) in &loaded.records {
        *out.entry(kind.table_name().to_string()).or_default() += 1;
    }
    out
}

/// Copy every record (as one consistent reading of `from`, so writes may go on meanwhile) and every event into
/// `to`, which must hold no record yet; then read `to` back and check it holds the same records.
pub fn copy(from: &dyn Store, to: &dyn Store) -> Result<CopyReport, StoreError> {
    if !to.load()?.records.is_empty() {
        return Err(StoreError::Backend(
            "the target store already holds a directory; copy only into an empty one".into(),
        ));
    }
    let source = from.load()?;
    let expected = checksum(&source);
    let records = counts(&source);
    let mut batch = WriteBatch::default();
    for (kind, key, value) in source.records {
        batch.put(kind, key, value);
    }
    to.commit(batch)?;
    // Events, oldest first, a page at a time.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = from.query_events(&EventQuery {
            before_id: before,
            limit: 1000,
            ..EventQuery::default()
        })?;
        let Some(last) = page.last() else {
            break;
        };
        before = Some(last.id);
        let n = page.len();
        pages.push(page);
        if n < 1000 {
            break;
        }
    }
    let mut events = 0;
    for page in pages.into_iter().rev() {
        let mut page = page;
        page.reverse();
        events += page.len();
        to.append_events(page)?;
    }
    let copied = to.load()?;
    let found = checksum(&copied);
    if found != expected || counts(&copied) != records {
        return Err(StoreError::Backend(format!(
            "the copy does not match its source (checksum {found}, expected {expected})"
        )));
    }
    Ok(CopyReport {
        records,
        events,
        checksum: expected,
    })
}
