//! Conversation ordering: events waiting for an endpoint that takes each conversation in
//! order, one delivery at a time. Only a conversation's head is queued; when it is resolved
//! for good (delivered, dead, dropped), the next one is queued in the same transaction.

use redb::ReadableTable;

use super::db_error;
use super::deliveries::{enqueue, put_state};
use super::events::Totals;
use super::events::state_rec;
use super::records::RetryRec;
use super::tables::*;
use super::writer::Tx;
use crate::meta::conversation::StatusStep;
use crate::model::delivery::{DeliveryKind, DeliveryState, DeliveryStatus};
use crate::store::StoreError;
use crate::store::ids::EntryId;

/// Conversations longer than this are reported as "at least" this many when their head dies.
const COUNT_MAX: usize = 10_000;

/// One new event for the endpoints that order its conversation.
pub(super) struct Ordered<'a> {
    pub id: EntryId,
    pub event_type: &'a str,
    pub conversation: &'a str,
    pub status_step: Option<&'a StatusStep>,
    pub endpoints: &'a [String],
}

/// Queues the event behind its conversation at each endpoint (and for delivery at once where
/// the conversation was idle), or marks it stale where a later status of its message came
/// first.
pub(super) fn order(
    tx: &mut Tx<'_>,
    o: &Ordered<'_>,
    dedup_ttl_ms: u64,
    totals: &mut Totals,
) -> Result<(), StoreError> {
    if o.endpoints.is_empty() {
        return Ok(());
    }
    if let Some(step) = o.status_step
        && stale(tx, step, dedup_ttl_ms)?
    {
        for ep in o.endpoints {
            let state = DeliveryState {
                status: DeliveryStatus::Stale,
                ..DeliveryState::pending(ep.clone())
            };
            put_state(tx.txn, o.id, ep, &state_rec(&state, None))?;
        }
        *totals.entry("stale_statuses".into()).or_default() += 1;
        return Ok(());
    }
    for ep in o.endpoints {
        let prefix = conversation_prefix(ep, o.conversation);
        let idle = {
            let mut table = tx.txn.open_table(CONVERSATIONS).map_err(db_error)?;
            let idle = first_in(&table, &prefix)?.is_none();
            let mut key = prefix.clone();
            key.extend_from_slice(&o.id.key().to_be_bytes());
            table.insert(key.as_slice(), ()).map_err(db_error)?;
            idle
        };
        if idle {
            queue_head(tx, o.id, ep, o.conversation, o.event_type)?;
        }
    }
    Ok(())
}

/// Queues `id` as its conversation's head at `endpoint`.
fn queue_head(
    tx: &mut Tx<'_>,
    id: EntryId,
    endpoint: &str,
    conversation: &str,
    event_type: &str,
) -> Result<(), StoreError> {
    let mut heads = tx.txn.open_table(CONVERSATION_HEADS).map_err(db_error)?;
    heads
        .insert(state_key(id, endpoint).as_slice(), conversation)
        .map_err(db_error)?;
    drop(heads);
    enqueue(tx, &first_attempt(id, endpoint, event_type), false)?;
    Ok(())
}

/// A delivery to `endpoint` whose event is gone (retention, or an operator deleted it) was
/// dropped: when it was a conversation's head, the next goes.
pub(super) fn release_gone(
    tx: &mut Tx<'_>,
    endpoint: &str,
    subject: EntryId,
) -> Result<(), StoreError> {
    let conversation = {
        let heads = tx.txn.open_table(CONVERSATION_HEADS).map_err(db_error)?;
        let found = heads
            .get(state_key(subject, endpoint).as_slice())
            .map_err(db_error)?;
        found.map(|v| v.value().to_string())
    };
    if let Some(conversation) = conversation {
        release(tx, endpoint, &conversation, subject)?;
    }
    Ok(())
}

/// Whether a status of `step`'s rank or later of the same message was received already;
/// marks this one received if not.
fn stale(tx: &mut Tx<'_>, step: &StatusStep, ttl_ms: u64) -> Result<bool, StoreError> {
    let mut dedup = tx.txn.open_table(DEDUP).map_err(db_error)?;
    for rank in step.rank..=StatusStep::LAST {
        let mark = status_step_mark(&step.message_id, rank);
        if dedup
            .get(mark.as_str())
            .map_err(db_error)?
            .is_some_and(|v| v.value() > tx.now_ms)
        {
            return Ok(true);
        }
    }
    let mark = status_step_mark(&step.message_id, step.rank);
    let expires = tx.now_ms + ttl_ms;
    dedup.insert(mark.as_str(), expires).map_err(db_error)?;
    let mut expiry = tx.txn.open_table(DEDUP_EXPIRY).map_err(db_error)?;
    expiry
        .insert(dedup_expiry_key(expires, &mark).as_slice(), ())
        .map_err(db_error)?;
    Ok(false)
}

/// After the delivery of `subject` to `endpoint` was resolved for good: when it was its
/// conversation's head, takes it off and queues the next event still stored. Returns how
/// many events of the conversation were waiting behind it (`None` when it was not the head).
pub(super) fn release(
    tx: &mut Tx<'_>,
    endpoint: &str,
    conversation: &str,
    subject: EntryId,
) -> Result<Option<usize>, StoreError> {
    let prefix = conversation_prefix(endpoint, conversation);
    let (waiting, next) = {
        let mut table = tx.txn.open_table(CONVERSATIONS).map_err(db_error)?;
        if first_in(&table, &prefix)? != Some(subject) {
            return Ok(None);
        }
        let mut key = prefix.clone();
        key.extend_from_slice(&subject.key().to_be_bytes());
        table.remove(key.as_slice()).map_err(db_error)?;
        let mut heads = tx.txn.open_table(CONVERSATION_HEADS).map_err(db_error)?;
        heads
            .remove(state_key(subject, endpoint).as_slice())
            .map_err(db_error)?;
        let end = after_prefix(&prefix);
        let mut rest = Vec::new();
        for item in table
            .range(prefix.as_slice()..end.as_slice())
            .map_err(db_error)?
            .take(COUNT_MAX)
        {
            let (k, _) = item.map_err(db_error)?;
            rest.extend(id_of_named(k.value()));
        }
        (rest.len(), rest)
    };
    // Events retention already removed cannot be delivered: they leave the queue.
    let events = tx.txn.open_table(EVENTS).map_err(db_error)?;
    let mut gone = Vec::new();
    let mut head = None;
    for id in next {
        match events.get(id.key()).map_err(db_error)? {
            Some(v) => {
                let e = super::records::decode_event(v.value())?;
                head = Some((id, e.event_type));
                break;
            }
            None => gone.push(id),
        }
    }
    drop(events);
    if !gone.is_empty() {
        let mut table = tx.txn.open_table(CONVERSATIONS).map_err(db_error)?;
        for id in &gone {
            let mut key = prefix.clone();
            key.extend_from_slice(&id.key().to_be_bytes());
            table.remove(key.as_slice()).map_err(db_error)?;
        }
    }
    if let Some((id, event_type)) = head {
        queue_head(tx, id, endpoint, conversation, &event_type)?;
    }
    Ok(Some(waiting - gone.len()))
}

/// What [`release`]'s count says in a dead letter's reason.
pub(super) fn released_note(waiting: usize) -> String {
    let plus = if waiting >= COUNT_MAX { "+" } else { "" };
    format!("; {waiting}{plus} later events of its conversation released after it")
}

fn first_attempt(id: EntryId, endpoint: &str, event_type: &str) -> RetryRec {
    RetryRec {
        kind: DeliveryKind::Event,
        subject: id.to_string(),
        endpoint_id: endpoint.to_string(),
        attempt: 1,
        event_type: event_type.to_string(),
    }
}

/// The first event waiting under `prefix`.
fn first_in(
    table: &impl ReadableTable<&'static [u8], ()>,
    prefix: &[u8],
) -> Result<Option<EntryId>, StoreError> {
    let end = after_prefix(prefix);
    let first = table
        .range(prefix..end.as_slice())
        .map_err(db_error)?
        .next();
    match first {
        Some(item) => Ok(id_of_named(item.map_err(db_error)?.0.value())),
        None => Ok(None),
    }
}
