//! The audit log: records in id order, and an index of each tenant's. A change appends its
//! record in the transaction that makes the change ([`append`]).

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

use super::events::{Window, newest_first, newest_first_indexed};
use super::records::{from_json, to_json};
use super::tables::*;
use super::writer::Tx;
use super::{EmbeddedStore, db_error};
use crate::model::audit::AuditRecord;
use crate::store::ids::EntryId;
use crate::store::{AuditLog, AuditQuery, Page, StoreError};

/// Writes `record` in the transaction of `tx`; returns its id.
pub(super) fn append(tx: &mut Tx<'_>, record: &AuditRecord) -> Result<String, StoreError> {
    let id = tx.next_id();
    let json = to_json("audit record", record)?;
    let mut log = tx.txn.open_table(AUDIT).map_err(db_error)?;
    log.insert(id.key(), json.as_bytes()).map_err(db_error)?;
    if !record.tenant_id.is_empty() {
        let mut index = tx.txn.open_table(AUDIT_BY_TENANT).map_err(db_error)?;
        index
            .insert(named_id(&record.tenant_id, id).as_slice(), ())
            .map_err(db_error)?;
    }
    Ok(id.to_string())
}

fn record_of(id: EntryId, bytes: &[u8]) -> Result<AuditRecord, StoreError> {
    let json = std::str::from_utf8(bytes)
        .map_err(|e| StoreError::Protocol(format!("stored audit record unreadable: {e}")))?;
    let mut record: AuditRecord = from_json("audit record", json)?;
    record.id = id.to_string();
    Ok(record)
}

/// Removes up to `chunk` records older than `before` with their index entries; true when
/// more remain.
pub(super) fn trim_audit(
    txn: &WriteTransaction,
    before: EntryId,
    chunk: usize,
) -> Result<bool, StoreError> {
    let mut log = txn.open_table(AUDIT).map_err(db_error)?;
    let mut index = txn.open_table(AUDIT_BY_TENANT).map_err(db_error)?;
    let mut old = Vec::new();
    for item in log.range(..before.key()).map_err(db_error)?.take(chunk + 1) {
        let (k, v) = item.map_err(db_error)?;
        let id = EntryId::from_key(k.value());
        // A record that no longer parses still goes; its index entry (if any) with it when
        // its tenant can be read.
        let tenant = record_of(id, v.value())
            .map(|r| r.tenant_id)
            .unwrap_or_default();
        old.push((id, tenant));
    }
    let more = old.len() > chunk;
    for (id, tenant) in old.into_iter().take(chunk) {
        if !tenant.is_empty() {
            index
                .remove(named_id(&tenant, id).as_slice())
                .map_err(db_error)?;
        }
        log.remove(id.key()).map_err(db_error)?;
    }
    Ok(more)
}

#[async_trait]
impl AuditLog for EmbeddedStore {
    async fn record_audit(&self, record: &AuditRecord) -> Result<String, StoreError> {
        let record = record.clone();
        self.write("record_audit", true, move |tx| append(tx, &record))
            .await
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditRecord>, StoreError> {
        let w = Window::new(
            query.cursor.as_deref(),
            query.from_ms,
            query.to_ms,
            query.limit,
        )?;
        let q = query.clone();
        self.read("list_audit", move |txn| {
            let item = |id, bytes: &[u8]| {
                let record = record_of(id, bytes)?;
                Ok(q.matches(&record).then_some(record))
            };
            match &q.tenant_id {
                Some(tenant) => newest_first_indexed(txn, AUDIT_BY_TENANT, AUDIT, tenant, &w, item),
                None => newest_first(txn, AUDIT, &w, item),
            }
        })
        .await
    }
}
