//! Keeping the data file in shape: retention, gauges, checks.

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::audit::trim_audit;
use super::events::index_keys;
use super::records::*;
use super::tables::*;
use super::{EmbeddedStore, db_error, lock};
use crate::store::ids::EntryId;
use crate::store::types::*;
use crate::store::{DeliveryGauges, StoreError, Upkeep};

/// Entries removed per table per transaction, so trimming a large backlog never holds the
/// writer (and every request waiting on it) for long.
const TRIM_CHUNK: usize = 2_000;

/// Removes up to [`TRIM_CHUNK`] entries of `table` below `before`; true when more remain.
fn trim_entries(
    txn: &WriteTransaction,
    table: redb::TableDefinition<'static, u128, &'static [u8]>,
    before: EntryId,
) -> Result<bool, StoreError> {
    let mut t = txn.open_table(table).map_err(db_error)?;
    let mut n = 0;
    t.retain_in(..before.key(), |_, _| {
        n += 1;
        n > TRIM_CHUNK
    })
    .map_err(db_error)?;
    Ok(n > TRIM_CHUNK)
}

/// Removes old events with their index entries; true when more remain.
fn trim_events(txn: &WriteTransaction, before: EntryId) -> Result<bool, StoreError> {
    let mut events = txn.open_table(EVENTS).map_err(db_error)?;
    let mut index = txn.open_table(EVENT_INDEX).map_err(db_error)?;
    let mut old = Vec::new();
    for item in events
        .range(..before.key())
        .map_err(db_error)?
        .take(TRIM_CHUNK + 1)
    {
        let (k, v) = item.map_err(db_error)?;
        old.push((k.value(), decode_event(v.value()).ok()));
    }
    let more = old.len() > TRIM_CHUNK;
    for (key, rec) in old.into_iter().take(TRIM_CHUNK) {
        if let Some(rec) = rec {
            for k in index_keys(&rec, EntryId::from_key(key)) {
                index.remove(k.as_slice()).map_err(db_error)?;
            }
        }
        events.remove(key).map_err(db_error)?;
    }
    Ok(more)
}

/// Removes byte-keyed entries whose key is below `before`; true when more remain.
fn trim_below(
    txn: &WriteTransaction,
    table: redb::TableDefinition<'static, &'static [u8], &'static [u8]>,
    before: &[u8],
) -> Result<bool, StoreError> {
    let mut t = txn.open_table(table).map_err(db_error)?;
    let mut n = 0;
    t.retain_in(..before, |_, _| {
        n += 1;
        n > TRIM_CHUNK
    })
    .map_err(db_error)?;
    Ok(n > TRIM_CHUNK)
}

/// Removes expired dedup keys; true when more remain.
fn trim_dedup(txn: &WriteTransaction, now_ms: u64) -> Result<bool, StoreError> {
    let mut expiry = txn.open_table(DEDUP_EXPIRY).map_err(db_error)?;
    let mut dedup = txn.open_table(DEDUP).map_err(db_error)?;
    let end = now_ms.to_be_bytes();
    let mut expired = Vec::new();
    for item in expiry
        .range(..end.as_slice())
        .map_err(db_error)?
        .take(TRIM_CHUNK + 1)
    {
        let (k, _) = item.map_err(db_error)?;
        expired.push(k.value().to_vec());
    }
    let more = expired.len() > TRIM_CHUNK;
    for key in expired.into_iter().take(TRIM_CHUNK) {
        let digest = String::from_utf8_lossy(&key[8..]).into_owned();
        // A key seen again since is kept (its expiry moved on).
        let still = dedup
            .get(digest.as_str())
            .map_err(db_error)?
            .is_some_and(|v| v.value() > now_ms);
        if !still {
            dedup.remove(digest.as_str()).map_err(db_error)?;
        }
        expiry.remove(key.as_slice()).map_err(db_error)?;
    }
    Ok(more)
}

/// Removes attempts older than `before_ms` of every endpoint; true when more remain.
fn trim_attempts(txn: &WriteTransaction, before_ms: u64) -> Result<bool, StoreError> {
    let mut t = txn.open_table(ATTEMPTS).map_err(db_error)?;
    // Walk the endpoints: each one's attempts sit together, oldest first.
    let mut old = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let Some(first) = t.range(from.as_slice()..).map_err(db_error)?.next() else {
            break;
        };
        let key = first.map_err(db_error)?.0.value().to_vec();
        let Some(name_len) = key
            .get(..2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            break;
        };
        let prefix = &key[..(2 + name_len).min(key.len())];
        let mut cutoff = prefix.to_vec();
        cutoff.extend_from_slice(&EntryId::at(before_ms).key().to_be_bytes());
        for item in t
            .range(key.as_slice()..cutoff.as_slice())
            .map_err(db_error)?
        {
            old.push(item.map_err(db_error)?.0.value().to_vec());
            if old.len() > TRIM_CHUNK {
                break;
            }
        }
        if old.len() > TRIM_CHUNK {
            break;
        }
        from = after_prefix(prefix);
    }
    let more = old.len() > TRIM_CHUNK;
    for k in old.into_iter().take(TRIM_CHUNK) {
        t.remove(k.as_slice()).map_err(db_error)?;
    }
    Ok(more)
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
fn free_space(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stat` is written by statvfs before it is read.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    // The field types differ between platforms (u64 on 64-bit Linux).
    #[allow(clippy::useless_conversion)]
    Some(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

#[async_trait]
impl Upkeep for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read("ping", |_| Ok(())).await
    }

    async fn production_warnings(&self) -> Result<Vec<String>, StoreError> {
        let mut warnings = Vec::new();
        if !self.inner.shared.sync_each_commit {
            warnings.push(format!(
                "storage.sync = \"interval\": requests are answered before they are fsynced; \
                 a power loss or kernel crash may lose the last {:?}",
                self.inner.shared.sync_interval
            ));
        }
        Ok(warnings)
    }

    async fn prepare(&self) -> Result<(), StoreError> {
        // The tables were made when the file was opened.
        Ok(())
    }

    async fn trim(&self) -> Result<(), StoreError> {
        let age = self.limits().stream_max_age.as_millis() as u64;
        let audit_age = self.limits().audit_retention.as_millis() as u64;
        loop {
            let more = self
                .write("trim", false, move |tx| {
                    let before = EntryId::at(tx.now_ms.saturating_sub(age));
                    let audit_before = EntryId::at(tx.now_ms.saturating_sub(audit_age));
                    let mut more = trim_audit(tx.txn, audit_before, TRIM_CHUNK)?;
                    more |= trim_entries(tx.txn, JOURNAL, before)?;
                    more |= trim_events(tx.txn, before)?;
                    more |= trim_entries(tx.txn, QUARANTINE, before)?;
                    more |= trim_dedup(tx.txn, tx.now_ms)?;
                    // Idempotency keys are few (one per create request a day): a scan is cheap.
                    let mut idem = tx.txn.open_table(IDEMPOTENCY).map_err(db_error)?;
                    let now = tx.now_ms;
                    idem.retain(|_, v| {
                        decode::<IdempotencyRec>("idempotency key", v)
                            .is_ok_and(|r| r.expires_ms > now)
                    })
                    .map_err(db_error)?;
                    Ok(more)
                })
                .await?;
            if !more {
                return Ok(());
            }
        }
    }

    async fn trim_deliveries(&self) -> Result<(), StoreError> {
        let limits = self.limits();
        let age = limits.stream_max_age.as_millis() as u64;
        let log_age = limits.delivery_state_ttl.as_millis() as u64;
        loop {
            let more = self
                .write("trim_deliveries", false, move |tx| {
                    let dead_before = EntryId::at(tx.now_ms.saturating_sub(age));
                    let log_before = tx.now_ms.saturating_sub(log_age);
                    let mut more = trim_entries(tx.txn, DEAD, dead_before)?;
                    let states_before = EntryId::at(log_before).key().to_be_bytes();
                    more |= trim_below(tx.txn, STATES, &states_before)?;
                    more |= trim_attempts(tx.txn, log_before)?;
                    let mut stats = tx.txn.open_table(STATS).map_err(db_error)?;
                    let stats_before = log_before.to_be_bytes();
                    stats
                        .retain_in(..stats_before.as_slice(), |_, _| false)
                        .map_err(db_error)?;
                    Ok(more)
                })
                .await?;
            if !more {
                return Ok(());
            }
        }
    }

    async fn stream_gauges(&self) -> Result<StreamGauges, StoreError> {
        let storage_bytes = std::fs::metadata(&self.inner.shared.file).map_or(0, |m| m.len());
        let free_bytes = free_space(self.dir());
        let this = self.clone();
        self.read("stream_gauges", move |txn| {
            let (inbound_length, inbound_lag, inbound_pending) = this.journal_gauges(txn)?;
            let len = |t| -> Result<u64, StoreError> {
                txn.open_table(t).map_err(db_error)?.len().map_err(db_error)
            };
            Ok(StreamGauges {
                inbound_length,
                inbound_lag,
                inbound_pending,
                events_length: len(EVENTS)?,
                quarantine_length: len(QUARANTINE)?,
                storage_bytes,
                free_bytes,
            })
        })
        .await
    }

    async fn delivery_gauges(&self, now_ms: u64) -> Result<DeliveryGauges, StoreError> {
        let start = *lock(&self.inner.delivery_cursor);
        let cursors = self.lane_cursors();
        self.read("delivery_gauges", move |txn| {
            let queue = txn.open_table(DELIVERIES).map_err(db_error)?;
            let index = txn.open_table(DELIVERY_LANES).map_err(db_error)?;
            let retries = txn.open_table(RETRIES).map_err(db_error)?;
            let dead = txn.open_table(DEAD).map_err(db_error)?;
            let total = queue.len().map_err(db_error)?;
            let pending = super::lanes::pending_count(&index, &cursors, start)?;
            let due = retries
                .range(..first_retry_key(now_ms.saturating_add(1)))
                .map_err(db_error)?
                .count() as u64;
            Ok(DeliveryGauges {
                lag: total - pending.min(total),
                pending,
                scheduled: retries.len().map_err(db_error)?,
                due,
                dead: dead.len().map_err(db_error)?,
            })
        })
        .await
    }
}
