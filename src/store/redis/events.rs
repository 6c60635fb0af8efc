//! The event log: events, their indexes and dedup keys, quarantine, rejected requests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use redis::Value;

use super::RedisStore;
use super::keys::{EVENTS_PER_SPAN, NORMALIZER_GROUP};
use super::reply::*;
use super::streams::Window;
use crate::meta::Event;
use crate::store::types::*;
use crate::store::{EventLog, StoreError};

impl RedisStore {
    /// The commit script's call for the split entries of a batch.
    fn events_invocation(
        &self,
        split: &[&Normalized],
        min_id: &str,
    ) -> redis::ScriptInvocation<'_> {
        let mut inv = self.scripts.commit_events.prepare_invoke();
        inv.key(self.keys.inbound())
            .key(self.keys.events())
            .key(self.keys.stats())
            .key(self.keys.stats_types())
            .key(self.keys.deliveries())
            .key(self.keys.journal_lease());
        let holder = super::lock_holder(&self.lease_holder).clone();
        inv.arg(NORMALIZER_GROUP)
            .arg(self.dedup_ttl.as_secs().max(1))
            .arg(min_id)
            .arg(self.index_ttl_secs())
            .arg(split.len())
            .arg(self.keys.prefix())
            .arg(self.delivery_state_ttl.as_secs().max(1))
            .arg(EVENTS_PER_SPAN)
            .arg(holder.unwrap_or_default());
        let owners: std::collections::BTreeSet<&(String, String)> = split
            .iter()
            .filter_map(|n| match n {
                Normalized::Events { routing, .. } => Some(routing),
                _ => None,
            })
            .flatten()
            .flat_map(|r| &r.owners)
            .collect();
        inv.arg(owners.len());
        for (endpoint, tenant) in owners {
            inv.arg(endpoint).arg(tenant);
        }
        for item in split {
            let Normalized::Events {
                journal_id,
                source,
                received_at_ms,
                object,
                request_id,
                events,
                routing,
            } = item
            else {
                continue;
            };
            inv.arg(journal_id)
                .arg(source)
                .arg(received_at_ms)
                .arg(object)
                .arg(request_id)
                .arg(if crate::suites::is_test(request_id) {
                    "1"
                } else {
                    ""
                })
                .arg(events.len());
            for (i, e) in events.iter().enumerate() {
                inv.key(self.keys.dedup(&e.dedup_key.digest_hex()))
                    .key(self.keys.index_type(&e.event_type))
                    .key(self.keys.index_platform(e.platform.as_str()))
                    .key(self.keys.index_account(&e.account_id));
                push_event_args(&mut inv, e, routing.get(i));
            }
        }
        inv
    }

    pub(super) async fn fetch_events(
        &self,
        ids: &[String],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keys.events();
        self.timed("fetch_events", async {
            let mut conn = self.conn();
            let mut pipe = redis::pipe();
            for id in ids {
                pipe.cmd("XRANGE").arg(&key).arg(id).arg(id);
            }
            let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
            let mut out = Vec::with_capacity(ids.len());
            for reply in replies {
                for (id, fields) in parse_entries(reply)? {
                    if let Some(fields) = fields {
                        out.push(stored_event(id, &fields)?);
                    }
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl EventLog for RedisStore {
    async fn commit_normalized(
        &self,
        batch: &[Normalized],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let min_id = self.min_id();
        self.timed("commit_normalized", async {
            let mut conn = self.conn();
            // The events of every entry in one script call, by SHA (Redis gets the script
            // itself only if it forgot it). Each part is atomic with its acknowledgement.
            let split: Vec<&Normalized> = batch
                .iter()
                .filter(|n| matches!(n, Normalized::Events { .. }))
                .collect();
            let committed: Option<Value> = if split.is_empty() {
                None
            } else {
                let invocation = self.events_invocation(&split, &min_id);
                let committed = invocation.invoke_async(&mut conn).await;
                if committed.is_err() {
                    // Refused for the lease, maybe: the next batch asks Redis who holds it.
                    *super::lock_holder(&self.lease_confirmed) = None;
                }
                Some(committed?)
            };
            // Each quarantine atomic with its acknowledgement (a script: see append.lua for why
            // not MULTI); entries the journal no longer holds are only acknowledged.
            let mut missing = Vec::new();
            for item in batch {
                match item {
                    Normalized::Events { .. } => {}
                    Normalized::Quarantine {
                        journal_id,
                        entry,
                        error,
                    } => {
                        let mut inv = self.scripts.quarantine.prepare_invoke();
                        inv.key(self.keys.quarantine())
                            .key(self.keys.stats())
                            .key(self.keys.inbound())
                            .arg(&min_id)
                            .arg(NORMALIZER_GROUP)
                            .arg(journal_id)
                            .arg("source")
                            .arg(&entry.source)
                            .arg("received_at")
                            .arg(entry.received_at_ms)
                            .arg("journal_id")
                            .arg(journal_id)
                            .arg("request_id")
                            .arg(&entry.request_id)
                            .arg("error")
                            .arg(error)
                            .arg("signature")
                            .arg(&entry.signature)
                            .arg("body")
                            .arg(entry.body.as_ref());
                        let _: i64 = inv.invoke_async(&mut conn).await?;
                    }
                    Normalized::Missing { journal_id } => missing.push(journal_id),
                }
            }
            if !missing.is_empty() {
                let _: i64 = redis::cmd("XACK")
                    .arg(self.keys.inbound())
                    .arg(NORMALIZER_GROUP)
                    .arg(&missing)
                    .query_async(&mut conn)
                    .await?;
            }
            let mut per_entry = match committed {
                None => Vec::new(),
                Some(Value::Array(lists)) => lists,
                Some(other) => {
                    return Err(StoreError::Protocol(format!("commit reply: {other:?}")));
                }
            }
            .into_iter();
            batch
                .iter()
                .map(|item| match item {
                    Normalized::Events { events, .. } => event_ids(per_entry.next(), events.len())
                        .map(|event_ids| CommitOutcome {
                            event_ids,
                            quarantined: false,
                        }),
                    Normalized::Quarantine { .. } => Ok(CommitOutcome {
                        quarantined: true,
                        ..CommitOutcome::default()
                    }),
                    Normalized::Missing { .. } => Ok(CommitOutcome::default()),
                })
                .collect()
        })
        .await
    }

    async fn record_rejection(&self, r: &Rejection) -> Result<(), StoreError> {
        let mut inv = self.scripts.append.prepare_invoke();
        inv.key(self.keys.rejected())
            .key(self.keys.stats())
            // Exact, so the list's bound holds to the record.
            .arg("MAXLEN")
            .arg(self.rejected_keep)
            .arg("rejected")
            .arg(1)
            .arg(8)
            .arg("source")
            .arg(&r.source)
            .arg("reason")
            .arg(&r.reason)
            .arg("received_at")
            .arg(r.received_at_ms)
            .arg("request_id")
            .arg(&r.request_id)
            .arg("remote_addr")
            .arg(&r.remote_addr)
            .arg("signature")
            .arg(&r.signature)
            .arg("body_len")
            .arg(r.body_len)
            .arg("body_prefix")
            .arg(&r.body_prefix);
        let _: Vec<String> = self.run_script("record_rejection", inv).await?;
        Ok(())
    }

    async fn list_events(&self, q: &EventQuery) -> Result<Page<StoredEvent>, StoreError> {
        // Scan the most selective stream; the remaining filters are applied to what it yields.
        let (key, filtered) = if let Some(t) = &q.tenant_id {
            (self.keys.index_tenant(t), true)
        } else if let Some(a) = &q.account_id {
            (self.keys.index_account(a), true)
        } else if let Some(t) = &q.event_type {
            (self.keys.index_type(t), true)
        } else if let Some(p) = &q.platform {
            (self.keys.index_platform(p), true)
        } else {
            (self.keys.events(), false)
        };
        let matches = |e: &StoredEvent| {
            q.event_type.as_ref().is_none_or(|t| &e.event_type == t)
                && q.platform.as_ref().is_none_or(|p| &e.platform == p)
                && q.account_id.as_ref().is_none_or(|a| &e.account_id == a)
        };
        let window = Window {
            from_ms: q.from_ms,
            to_ms: q.to_ms,
            cursor: q.cursor.as_deref(),
            limit: q.limit,
        };
        let id_of: fn(&StoredEvent) -> &str = |e| &e.id;
        self.filtered_page("list_events", key, window, id_of, |entries| async move {
            let found = if filtered {
                let ids: Vec<String> = entries.into_iter().flat_map(index_entry_ids).collect();
                self.fetch_events(&ids).await?
            } else {
                entries
                    .into_iter()
                    .filter_map(|(id, f)| f.map(|f| stored_event(id, &f)))
                    .collect::<Result<Vec<_>, _>>()?
            };
            Ok(found.into_iter().filter(|e| matches(e)).collect())
        })
        .await
    }

    async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        if !is_stream_id(id) {
            return Err(StoreError::InvalidInput {
                parameter: "id",
                problem: format!("{id:?} is not an event id such as 1700000000000-0"),
            });
        }
        Ok(self
            .fetch_events(&[id.to_string()])
            .await?
            .into_iter()
            .next())
    }

    async fn list_quarantine(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<QuarantinedBody>, StoreError> {
        let key = self.keys.quarantine();
        self.newest_first("list_quarantine", key, cursor, limit, quarantined_body)
            .await
    }

    async fn list_rejected(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RejectedRequest>, StoreError> {
        let key = self.keys.rejected();
        self.newest_first("list_rejected", key, cursor, limit, rejected_request)
            .await
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        let stats_key = self.keys.stats();
        let types_key = self.keys.stats_types();
        self.timed("stats", async {
            let mut conn = self.conn();
            let (counters, types): (BTreeMap<String, u64>, BTreeMap<String, u64>) = redis::pipe()
                .cmd("HGETALL")
                .arg(&stats_key)
                .cmd("HGETALL")
                .arg(&types_key)
                .query_async(&mut conn)
                .await?;
            let get = |k: &str| counters.get(k).copied().unwrap_or(0);
            Ok(Stats {
                received: get("received"),
                rejected: get("rejected"),
                duplicates: get("duplicates"),
                quarantined: get("quarantined"),
                events: get("events"),
                events_by_type: types,
                test_events: get("test_events"),
                stale_statuses: get("stale_statuses"),
            })
        })
        .await
    }
}

fn push_event_args(inv: &mut redis::ScriptInvocation<'_>, e: &Event, routing: Option<&Routing>) {
    let (eps, raw, tenants, ordered) = match routing {
        Some(r) => (
            r.endpoints.join(","),
            r.raw_endpoints.join(","),
            r.tenants.join(","),
            r.ordered.join(","),
        ),
        None => Default::default(),
    };
    let (message, rank) = match &e.status_step {
        Some(s) => (s.message_id.as_str(), s.rank),
        None => ("", 0),
    };
    inv.arg(&e.event_type)
        .arg(e.platform.as_str())
        .arg(&e.account_id)
        .arg(e.occurred_at_ms.map(|t| t.to_string()).unwrap_or_default())
        .arg(&e.data)
        .arg(eps)
        .arg(raw)
        .arg(tenants)
        .arg(&e.identity)
        .arg(ordered)
        .arg(&e.conversation)
        .arg(message)
        .arg(rank);
}
