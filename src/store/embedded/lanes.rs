//! Deliveries lanes: one queue per owner of endpoints (the admin's, "", or a tenant's), read
//! a share of each in turn, so one tenant's backlog never stands in front of another
//! tenant's deliveries. A queued delivery is kept in [`DELIVERIES`] by its id and listed in
//! [`DELIVERY_LANES`] under its lane; each lane has its own read cursor.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadableTable, WriteTransaction};
use serde::Deserialize;

use super::records::{QueuedRec, encode};
use super::tables::*;
use super::writer::Tx;
use super::{db_error, read_range};
use crate::store::ids::EntryId;
use crate::store::{ReadFrom, StoreError};

/// Where a lane's reads are: the last entry handed out (later ones are new) and where the
/// current pass of pending reads goes on.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LaneCursor {
    pub cursor: u128,
    pub pass: u128,
}

pub(super) type LaneCursors = HashMap<String, LaneCursor>;

/// Where `lane` is read from: its own cursor, or `start` for a lane not read yet.
pub(super) fn cursor_of(cursors: &LaneCursors, lane: &str, start: u128) -> LaneCursor {
    cursors.get(lane).copied().unwrap_or(LaneCursor {
        cursor: start,
        pass: 0,
    })
}

/// The owner of each endpoint, read once per transaction.
#[derive(Default)]
pub(super) struct Owners(BTreeMap<String, String>);

#[derive(Deserialize)]
struct Owned {
    #[serde(default)]
    tenant_id: String,
}

impl Owners {
    /// The tenant owning `endpoint` ("" for the admin's, or an endpoint no longer stored).
    pub fn of(&mut self, txn: &WriteTransaction, endpoint: &str) -> Result<String, StoreError> {
        if let Some(owner) = self.0.get(endpoint) {
            return Ok(owner.clone());
        }
        let table = txn.open_table(ENDPOINTS).map_err(db_error)?;
        let owner = match table.get(endpoint).map_err(db_error)? {
            Some(json) => serde_json::from_str::<Owned>(json.value())
                .map(|o| o.tenant_id)
                .unwrap_or_default(),
            None => String::new(),
        };
        self.0.insert(endpoint.to_string(), owner.clone());
        Ok(owner)
    }

    /// `endpoints` by owner, owners in first-seen order.
    pub fn group(
        &mut self,
        txn: &WriteTransaction,
        endpoints: &[String],
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let mut lanes: Vec<(String, Vec<String>)> = Vec::new();
        for ep in endpoints {
            let owner = self.of(txn, ep)?;
            match lanes.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, eps)) => eps.push(ep.clone()),
                None => lanes.push((owner, vec![ep.clone()])),
            }
        }
        Ok(lanes)
    }
}

/// Queues `rec` in `lane`.
pub(super) fn queue(tx: &mut Tx<'_>, lane: &str, rec: &QueuedRec) -> Result<(), StoreError> {
    let id = tx.next_id();
    let mut queue = tx.txn.open_table(DELIVERIES).map_err(db_error)?;
    queue
        .insert(id.key(), encode("delivery", rec)?.as_slice())
        .map_err(db_error)?;
    let mut lanes = tx.txn.open_table(DELIVERY_LANES).map_err(db_error)?;
    lanes
        .insert(named_id(lane, id).as_slice(), ())
        .map_err(db_error)?;
    tx.wake_deliveries = true;
    Ok(())
}

/// Takes a queued delivery off its lane (acknowledged, or unreadable).
pub(super) fn remove(txn: &WriteTransaction, lane: &str, id: EntryId) -> Result<(), StoreError> {
    let mut queue = txn.open_table(DELIVERIES).map_err(db_error)?;
    queue.remove(id.key()).map_err(db_error)?;
    let mut lanes = txn.open_table(DELIVERY_LANES).map_err(db_error)?;
    lanes
        .remove(named_id(lane, id).as_slice())
        .map_err(db_error)?;
    Ok(())
}

/// Every lane with deliveries queued, in key order (the admin's, "", first).
pub(super) fn lanes_in(
    table: &impl ReadableTable<&'static [u8], ()>,
) -> Result<Vec<String>, StoreError> {
    let mut lanes = Vec::new();
    let mut from: Vec<u8> = Vec::new();
    loop {
        let next = table.range(from.as_slice()..).map_err(db_error)?.next();
        let Some(item) = next else {
            return Ok(lanes);
        };
        let (key, _) = item.map_err(db_error)?;
        let Some(lane) = name_of(key.value()) else {
            return Err(StoreError::Protocol(
                "a deliveries lane key without a name".into(),
            ));
        };
        let mut prefix = Vec::new();
        name(&mut prefix, &lane);
        from = after_prefix(&prefix);
        lanes.push(lane);
    }
}

/// The ids a read of `from` covers in `lane`, given its cursor: at most `count`.
pub(super) fn ids_to_read(
    table: &impl ReadableTable<&'static [u8], ()>,
    lane: &str,
    from: ReadFrom,
    at: LaneCursor,
    count: usize,
) -> Result<Vec<EntryId>, StoreError> {
    let range = read_range(from, at.cursor, at.pass);
    if range.is_empty() {
        return Ok(Vec::new());
    }
    let lo = named_id(lane, EntryId::from_key(*range.start()));
    let hi = named_id(lane, EntryId::from_key(*range.end()));
    let mut ids = Vec::new();
    for item in table
        .range(lo.as_slice()..=hi.as_slice())
        .map_err(db_error)?
        .take(count)
    {
        let (key, _) = item.map_err(db_error)?;
        ids.extend(id_of_named(key.value()));
    }
    Ok(ids)
}

/// Whether some lane holds an entry after its cursor.
pub(super) fn any_new(
    table: &impl ReadableTable<&'static [u8], ()>,
    cursors: &LaneCursors,
    start: u128,
) -> Result<bool, StoreError> {
    for lane in lanes_in(table)? {
        let at = cursor_of(cursors, &lane, start);
        if !ids_to_read(table, &lane, ReadFrom::New, at, 1)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Entries handed out and not acknowledged, in every lane.
pub(super) fn pending_count(
    table: &impl ReadableTable<&'static [u8], ()>,
    cursors: &LaneCursors,
    start: u128,
) -> Result<u64, StoreError> {
    let mut pending = 0;
    for lane in lanes_in(table)? {
        let at = cursor_of(cursors, &lane, start);
        let lo = named_id(&lane, EntryId::default());
        let hi = named_id(&lane, EntryId::from_key(at.cursor));
        pending += table
            .range(lo.as_slice()..=hi.as_slice())
            .map_err(db_error)?
            .count() as u64;
    }
    Ok(pending)
}
