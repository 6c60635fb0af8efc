//! The audit log: a stream of records (`j`: the record as JSON), and a copy of each tenant's
//! records under the same ids in a stream of its own. Every script that changes something on
//! an operator's behalf starts with `scripts/audit.lua` and takes the audit keys first
//! ([`RedisStore::audited`]), so the change and its record are one atomic step.

use async_trait::async_trait;

use super::RedisStore;
use super::reply::Fields;
use super::streams::checked_cursor;
use crate::model::audit::AuditRecord;
use crate::store::ids::EntryId;
use crate::store::{AuditLog, AuditQuery, Page, StoreError};

/// Writes a record on its own. KEYS and ARGV as every audited script takes them first.
const RECORD_LUA: &str = concat!(
    include_str!("scripts/audit.lua"),
    "return audit(KEYS[1], KEYS[2], ARGV[1])\n"
);

/// Entries one round of a listing reads.
const ROUND: usize = 500;

impl RedisStore {
    /// `script` invoked with the audit keys as KEYS[1] and KEYS[2] and the record as ARGV[1];
    /// the script's own keys and arguments follow.
    pub(super) fn audited<'a>(
        &self,
        script: &'a redis::Script,
        record: &AuditRecord,
    ) -> Result<redis::ScriptInvocation<'a>, StoreError> {
        let json = audit_json(record)?;
        let mut inv = script.prepare_invoke();
        let (stream, tenant_stream) = self.audit_keys(record);
        inv.key(stream).key(tenant_stream).arg(json);
        Ok(inv)
    }

    /// The audit stream and the stream of the record's tenant (the audit stream again when it
    /// concerns none).
    pub(super) fn audit_keys(&self, record: &AuditRecord) -> (String, String) {
        let stream = self.keys.audit();
        let tenant_stream = if record.tenant_id.is_empty() {
            stream.clone()
        } else {
            self.keys.audit_of_tenant(&record.tenant_id)
        };
        (stream, tenant_stream)
    }

    /// The audit stream and every tenant's (`tenants`: the ids of every tenant).
    pub(super) fn audit_streams<'a>(
        &'a self,
        tenants: &'a [String],
    ) -> impl Iterator<Item = String> + 'a {
        std::iter::once(self.keys.audit())
            .chain(tenants.iter().map(|t| self.keys.audit_of_tenant(t)))
    }
}

/// A record as the scripts take it.
pub(super) fn audit_json(record: &AuditRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| super::json_error("audit record", e))
}

/// A stored record; its id and time are the entry's.
fn record_of(id: &str, fields: &Fields) -> Result<AuditRecord, StoreError> {
    let mut record: AuditRecord = serde_json::from_slice(fields.bytes("j").unwrap_or_default())
        .map_err(|e| StoreError::Protocol(format!("stored audit record {id}: {e}")))?;
    if let Some(entry) = EntryId::parse(id) {
        record.at = entry.ms;
    }
    record.id = id.to_string();
    Ok(record)
}

#[async_trait]
impl AuditLog for RedisStore {
    async fn record_audit(&self, record: &AuditRecord) -> Result<String, StoreError> {
        let script = redis::Script::new(RECORD_LUA);
        let inv = self.audited(&script, record)?;
        self.run_script("record_audit", inv).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Page<AuditRecord>, StoreError> {
        checked_cursor(q.cursor.as_deref())?;
        let key = match &q.tenant_id {
            Some(t) => self.keys.audit_of_tenant(t),
            None => self.keys.audit(),
        };
        let start = q.from_ms.map_or("-".to_string(), |ms| format!("{ms}-0"));
        // The newest end: the cursor (exclusive), else `to` (inclusive of its millisecond).
        let mut end = match (&q.cursor, q.to_ms) {
            (Some(c), _) => format!("({c}"),
            (None, Some(to)) => format!("({}-0", to.saturating_add(1)),
            (None, None) => "+".to_string(),
        };
        let limit = q.limit.max(1);
        let mut items = Vec::with_capacity(limit);
        let mut scanned = 0;
        while scanned < AuditQuery::SCAN_MAX {
            let want = ROUND.min(AuditQuery::SCAN_MAX - scanned);
            let entries = self
                .range_between("list_audit", key.clone(), end.clone(), start.clone(), want)
                .await?;
            let exhausted = entries.len() < want;
            for (id, fields) in entries {
                scanned += 1;
                end = format!("({id}");
                let Some(fields) = fields else { continue };
                let record = record_of(&id, &fields)?;
                if q.matches(&record) {
                    items.push(record);
                    if items.len() == limit {
                        return Ok(Page {
                            items,
                            next_cursor: Some(id),
                        });
                    }
                }
            }
            if exhausted {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
        }
        // The scan budget ran out: the page ends early and says where to go on.
        let next_cursor = end.strip_prefix('(').map(str::to_string);
        Ok(Page { items, next_cursor })
    }
}
