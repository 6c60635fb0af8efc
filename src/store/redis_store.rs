//! [`Store`] on Redis Streams. Layout: see [`super::keys`].
//!
//! Every call runs under one deadline (`redis.command_timeout`), so a Redis that stops
//! answering turns into an error quickly instead of a hung request.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_redis::{Pool, Runtime};
use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::value::RawValue;

use super::keys::{Keys, NORMALIZER_GROUP};
use super::types::*;
use super::{Store, StoreError};
use crate::config::Settings;
use crate::meta::Event;
use crate::metrics as m;

const COMMIT_EVENTS_LUA: &str = include_str!("commit_events.lua");

pub struct RedisStore {
    /// Only for blocking reads (`XREADGROUP … BLOCK`).
    pool: Pool,
    shared: ConnectionManager,
    client: redis::Client,
    shared_cfg: ConnectionManagerConfig,
    keys: Keys,
    timeout: Duration,
    stream_max_age: Duration,
    dedup_ttl: Duration,
    rejected_keep: usize,
    commit_events: redis::Script,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<deadpool_redis::PoolError> for StoreError {
    fn from(e: deadpool_redis::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl RedisStore {
    /// Builds the pool; no connection is made until the first call.
    pub fn new(settings: &Settings) -> Result<RedisStore, StoreError> {
        let r = &settings.redis;
        let conn_cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(r.connect_timeout))
            .set_response_timeout(Some(r.command_timeout));
        let manager = deadpool_redis::Manager::new_with_config(r.url.as_str(), conn_cfg)?;
        let shared_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(r.connect_timeout))
            .set_response_timeout(Some(r.command_timeout))
            .set_min_delay(std::time::Duration::from_millis(50))
            .set_max_delay(std::time::Duration::from_secs(1));
        let client = redis::Client::open(r.url.as_str())?;
        let shared = ConnectionManager::new_lazy_with_config(client.clone(), shared_cfg.clone())?;
        let pool = Pool::builder(manager)
            .max_size(r.pool_size)
            .wait_timeout(Some(r.command_timeout))
            .create_timeout(Some(r.connect_timeout))
            .recycle_timeout(Some(r.command_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(RedisStore {
            pool,
            shared,
            client,
            shared_cfg,
            keys: Keys::new(&r.prefix),
            timeout: r.command_timeout,
            stream_max_age: settings.retention.stream_max_age,
            dedup_ttl: settings.retention.dedup_ttl,
            rejected_keep: settings.ingress.rejected_keep,
            commit_events: redis::Script::new(COMMIT_EVENTS_LUA),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Runs `f` under the deadline, timing it and counting failures by `op`.
    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        metrics::histogram!(m::REDIS_DURATION, "op" => op).record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!(m::REDIS_ERRORS, "op" => op).increment(1);
        }
        result
    }

    /// The shared connection: multiplexed, so concurrent callers' commands are pipelined on
    /// one socket, and reconnected by itself after Redis comes back.
    fn conn(&self) -> ConnectionManager {
        self.shared.clone()
    }

    /// A connection of its own, for blocking reads that would stall a shared one.
    async fn blocking_conn(&self) -> Result<deadpool_redis::Connection, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Entries older than the retention have ids below this.
    fn min_id(&self) -> String {
        let age = self.stream_max_age.as_millis() as u64;
        format!("{}-0", now_ms().saturating_sub(age))
    }

    fn index_ttl_secs(&self) -> u64 {
        self.stream_max_age.as_secs().max(1)
    }

    async fn range(
        &self,
        op: &'static str,
        key: String,
        cursor: Option<&str>,
        start: String,
        count: usize,
    ) -> Result<Vec<(String, Option<Fields>)>, StoreError> {
        let end = match cursor {
            Some(c) => format!("({c}"),
            None => "+".to_string(),
        };
        self.timed(op, async {
            let mut conn = self.conn();
            let v: Value = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg(&end)
                .arg(&start)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await?;
            parse_entries(v)
        })
        .await
    }

    /// The commit script's call for the split entries of a batch.
    fn events_invocation(
        &self,
        split: &[&Normalized],
        min_id: &str,
    ) -> redis::ScriptInvocation<'_> {
        let mut inv = self.commit_events.prepare_invoke();
        inv.key(self.keys.inbound())
            .key(self.keys.events())
            .key(self.keys.stats())
            .key(self.keys.stats_types());
        inv.arg(NORMALIZER_GROUP)
            .arg(self.dedup_ttl.as_secs().max(1))
            .arg(min_id)
            .arg(self.index_ttl_secs())
            .arg(split.len());
        for item in split {
            let Normalized::Events {
                journal_id,
                source,
                received_at_ms,
                object,
                events,
            } = item
            else {
                continue;
            };
            inv.arg(journal_id)
                .arg(source)
                .arg(received_at_ms)
                .arg(object)
                .arg(events.len());
            for e in events {
                inv.key(self.keys.dedup(&e.dedup_key.digest_hex()))
                    .key(self.keys.index_type(&e.event_type))
                    .key(self.keys.index_platform(e.platform.as_str()))
                    .key(self.keys.index_account(&e.account_id));
                push_event_args(&mut inv, e);
            }
        }
        inv
    }

    async fn fetch_events(&self, ids: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
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
impl Store for RedisStore {
    fn dedicated(&self) -> Arc<dyn Store> {
        // Lazy: the connection is made by the first command, on the caller's thread, and its
        // I/O is driven there from then on.
        let own =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.shared_cfg.clone())
                .unwrap_or_else(|_| self.shared.clone());
        Arc::new(RedisStore {
            pool: self.pool.clone(),
            shared: own,
            client: self.client.clone(),
            shared_cfg: self.shared_cfg.clone(),
            keys: self.keys.clone(),
            timeout: self.timeout,
            stream_max_age: self.stream_max_age,
            dedup_ttl: self.dedup_ttl,
            rejected_keep: self.rejected_keep,
            commit_events: self.commit_events.clone(),
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", async {
            let mut conn = self.conn();
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn production_warnings(&self) -> Result<Vec<String>, StoreError> {
        self.timed("info", async {
            let mut conn = self.conn();
            let info: String = redis::cmd("INFO")
                .arg("server")
                .arg("persistence")
                .query_async(&mut conn)
                .await?;
            // Managed Redis services often disable CONFIG; then the policy is unknown.
            let policy: Option<Vec<String>> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query_async(&mut conn)
                .await
                .ok();
            Ok(production_warnings(&info, policy.as_deref()))
        })
        .await
    }

    async fn prepare(&self) -> Result<(), StoreError> {
        let inbound = self.keys.inbound();
        self.timed("prepare", async {
            let mut conn = self.conn();
            // From "0", so entries journaled before the group existed are split too.
            let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&inbound)
                .arg(NORMALIZER_GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match created {
                Ok(()) => Ok(()),
                Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn append_journal(&self, batch: &[JournalEntry]) -> Result<Vec<String>, StoreError> {
        let inbound = self.keys.inbound();
        let stats = self.keys.stats();
        let min_id = self.min_id();
        self.timed("append_journal", async {
            let mut conn = self.conn();
            let mut pipe = redis::pipe();
            pipe.atomic();
            for e in batch {
                pipe.cmd("XADD")
                    .arg(&inbound)
                    .arg("MINID")
                    .arg("~")
                    .arg(&min_id)
                    .arg("*")
                    .arg("source")
                    .arg(&e.source)
                    .arg("received_at")
                    .arg(e.received_at_ms)
                    .arg("request_id")
                    .arg(&e.request_id)
                    .arg("signature")
                    .arg(&e.signature)
                    .arg("user_agent")
                    .arg(&e.user_agent)
                    .arg("body")
                    .arg(e.body.as_ref());
            }
            pipe.cmd("HINCRBY")
                .arg(&stats)
                .arg("received")
                .arg(batch.len())
                .ignore();
            let ids: Vec<String> = pipe.query_async(&mut conn).await?;
            if ids.len() != batch.len() {
                return Err(StoreError::Protocol(format!(
                    "journal pipeline returned {} ids for {} entries",
                    ids.len(),
                    batch.len()
                )));
            }
            Ok(ids)
        })
        .await
    }

    async fn read_journal(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalRecord>, StoreError> {
        let inbound = self.keys.inbound();
        self.timed("read_journal", async {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(NORMALIZER_GROUP)
                .arg(consumer)
                .arg("COUNT")
                .arg(count);
            let start = match from {
                ReadFrom::New => {
                    cmd.arg("BLOCK").arg(block.as_millis() as u64);
                    ">"
                }
                ReadFrom::Pending => "0",
            };
            cmd.arg("STREAMS").arg(&inbound).arg(start);
            let v: Value = match from {
                ReadFrom::New => cmd.query_async(&mut self.blocking_conn().await?).await?,
                ReadFrom::Pending => cmd.query_async(&mut self.conn()).await?,
            };
            let mut out = Vec::new();
            for (_stream, entries) in parse_read_reply(v)? {
                for (id, fields) in entries {
                    let entry = fields.map(|f| journal_entry(&f));
                    out.push(JournalRecord { id, entry });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn claim_stale_journal(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        let inbound = self.keys.inbound();
        self.timed("claim_journal", async {
            let mut conn = self.conn();
            let v: Value = redis::cmd("XAUTOCLAIM")
                .arg(&inbound)
                .arg(NORMALIZER_GROUP)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(count)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await?;
            match v {
                Value::Array(parts) if parts.len() >= 2 => match &parts[1] {
                    Value::Array(ids) => Ok(ids.len()),
                    other => Err(StoreError::Protocol(format!("XAUTOCLAIM ids: {other:?}"))),
                },
                other => Err(StoreError::Protocol(format!("XAUTOCLAIM: {other:?}"))),
            }
        })
        .await
    }

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
            // One round trip for the whole batch: the events of every entry in one script
            // call, each quarantine in its own MULTI. The script is (re)loaded in the same
            // round trip: a restarted or flushed Redis has forgotten it, and EVALSHA in a
            // pipeline cannot fall back to EVAL.
            let mut pipe = redis::pipe();
            pipe.cmd("SCRIPT")
                .arg("LOAD")
                .arg(COMMIT_EVENTS_LUA)
                .ignore();
            let split: Vec<&Normalized> = batch
                .iter()
                .filter(|n| matches!(n, Normalized::Events { .. }))
                .collect();
            if !split.is_empty() {
                pipe.invoke_script(&self.events_invocation(&split, &min_id));
            }
            for item in batch {
                match item {
                    Normalized::Events { .. } => {}
                    Normalized::Quarantine {
                        journal_id,
                        entry,
                        error,
                    } => {
                        pipe.cmd("MULTI").ignore();
                        pipe.cmd("XADD")
                            .arg(self.keys.quarantine())
                            .arg("MINID")
                            .arg("~")
                            .arg(&min_id)
                            .arg("*")
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
                            .arg(entry.body.as_ref())
                            .ignore();
                        pipe.cmd("HINCRBY")
                            .arg(self.keys.stats())
                            .arg("quarantined")
                            .arg(1)
                            .ignore();
                        pipe.cmd("XACK")
                            .arg(self.keys.inbound())
                            .arg(NORMALIZER_GROUP)
                            .arg(journal_id)
                            .ignore();
                        pipe.cmd("EXEC").ignore();
                    }
                    Normalized::Missing { journal_id } => {
                        pipe.cmd("XACK")
                            .arg(self.keys.inbound())
                            .arg(NORMALIZER_GROUP)
                            .arg(journal_id)
                            .ignore();
                    }
                }
            }
            let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
            let mut per_entry = match (split.is_empty(), replies.into_iter().next()) {
                (true, _) => Vec::new(),
                (false, Some(Value::Array(lists))) => lists,
                (false, other) => {
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
        let key = self.keys.rejected();
        let stats = self.keys.stats();
        self.timed("record_rejection", async {
            let mut conn = self.conn();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.rejected_keep)
                .arg("*")
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
                .arg(&r.body_prefix)
                .ignore()
                .cmd("HINCRBY")
                .arg(&stats)
                .arg("rejected")
                .arg(1)
                .ignore();
            let _: () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn list_events(&self, q: &EventQuery) -> Result<Page<StoredEvent>, StoreError> {
        let start = q
            .from_ms
            .map(|ms| format!("{ms}-0"))
            .unwrap_or_else(|| "-".to_string());
        // The newest end of the range: the cursor, else `to`.
        let first_cursor = match (&q.cursor, q.to_ms) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(to)) => Some(format!("{}-0", to.saturating_add(1))),
            (None, None) => None,
        };
        // Scan the most selective stream; the remaining filters are applied to what it yields.
        let (key, filtered) = if let Some(a) = &q.account_id {
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

        // A bounded number of rounds keeps a request's cost bounded however the filters
        // combine; a short page with a cursor means "more may follow".
        const MAX_ROUNDS: usize = 4;
        let mut items = Vec::with_capacity(q.limit);
        let mut cursor = first_cursor;
        for _ in 0..MAX_ROUNDS {
            let want = q.limit - items.len();
            let entries = self
                .range(
                    "list_events",
                    key.clone(),
                    cursor.as_deref(),
                    start.clone(),
                    want,
                )
                .await?;
            let exhausted = entries.len() < want;
            cursor = entries.last().map(|(id, _)| id.clone()).or(cursor);
            let found = if filtered {
                let ids: Vec<String> = entries.into_iter().map(|(id, _)| id).collect();
                self.fetch_events(&ids).await?
            } else {
                entries
                    .into_iter()
                    .filter_map(|(id, f)| f.map(|f| stored_event(id, &f)))
                    .collect::<Result<Vec<_>, _>>()?
            };
            items.extend(found.into_iter().filter(|e| matches(e)));
            if exhausted {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            if items.len() >= q.limit {
                break;
            }
        }
        Ok(Page {
            items,
            next_cursor: cursor,
        })
    }

    async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        if !is_stream_id(id) {
            return Ok(None);
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
        let entries = self
            .range(
                "list_quarantine",
                self.keys.quarantine(),
                cursor,
                "-".into(),
                limit,
            )
            .await?;
        let next_cursor = (entries.len() == limit)
            .then(|| entries.last().map(|(id, _)| id.clone()))
            .flatten();
        let items = entries
            .into_iter()
            .filter_map(|(id, f)| f.map(|f| quarantined_body(id, &f)))
            .collect();
        Ok(Page { items, next_cursor })
    }

    async fn list_rejected(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RejectedRequest>, StoreError> {
        let entries = self
            .range(
                "list_rejected",
                self.keys.rejected(),
                cursor,
                "-".into(),
                limit,
            )
            .await?;
        let next_cursor = (entries.len() == limit)
            .then(|| entries.last().map(|(id, _)| id.clone()))
            .flatten();
        let items = entries
            .into_iter()
            .filter_map(|(id, f)| f.map(|f| rejected_request(id, &f)))
            .collect();
        Ok(Page { items, next_cursor })
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
            })
        })
        .await
    }

    async fn trim(&self) -> Result<(), StoreError> {
        // Exact trimming here: `~` on every XADD keeps busy streams in check cheaply but never
        // trims a stream smaller than one radix-tree node (about 100 entries).
        let min_id = self.min_id();
        let keys = [
            self.keys.inbound(),
            self.keys.events(),
            self.keys.quarantine(),
        ];
        self.timed("trim", async {
            let mut conn = self.conn();
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.cmd("XTRIM")
                    .arg(key)
                    .arg("MINID")
                    .arg("=")
                    .arg(&min_id)
                    .ignore();
            }
            let _: () = pipe.query_async(&mut conn).await?;
            Ok(())
        })
        .await
    }

    async fn stream_gauges(&self) -> Result<StreamGauges, StoreError> {
        let inbound = self.keys.inbound();
        let events = self.keys.events();
        let quarantine = self.keys.quarantine();
        self.timed("stream_gauges", async {
            let mut conn = self.conn();
            let (inbound_length, events_length, quarantine_length, groups): (u64, u64, u64, Value) =
                redis::pipe()
                    .cmd("XLEN")
                    .arg(&inbound)
                    .cmd("XLEN")
                    .arg(&events)
                    .cmd("XLEN")
                    .arg(&quarantine)
                    .cmd("XINFO")
                    .arg("GROUPS")
                    .arg(&inbound)
                    .query_async(&mut conn)
                    .await?;
            let (inbound_pending, inbound_lag) = group_backlog(groups, NORMALIZER_GROUP);
            Ok(StreamGauges {
                inbound_length,
                inbound_lag,
                inbound_pending,
                events_length,
                quarantine_length,
            })
        })
        .await
    }
}

fn push_event_args(inv: &mut redis::ScriptInvocation<'_>, e: &Event) {
    inv.arg(&e.event_type)
        .arg(e.platform.as_str())
        .arg(&e.account_id)
        .arg(e.occurred_at_ms.map(|t| t.to_string()).unwrap_or_default())
        .arg(&e.data);
}

/// The script's answer for one entry: per event its new id, or `None` for a duplicate.
fn event_ids(reply: Option<Value>, expected: usize) -> Result<Vec<Option<String>>, StoreError> {
    let items = match reply {
        Some(Value::Array(items)) if items.len() == expected => items,
        other => {
            return Err(StoreError::Protocol(format!(
                "commit entry reply: {other:?}"
            )));
        }
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::Int(0) => Ok(None),
            other => value_string(&other)
                .map(Some)
                .ok_or_else(|| StoreError::Protocol(format!("commit event id: {other:?}"))),
        })
        .collect()
}

/// Warnings for a Redis unfit for production, from `INFO server persistence` and the
/// `maxmemory-policy` (`None` when CONFIG is not allowed).
pub(crate) fn production_warnings(info: &str, policy: Option<&[String]>) -> Vec<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let mut warnings = Vec::new();
    if let Some(version) = field("redis_version") {
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 7 {
            warnings.push(format!(
                "Redis {version} is older than 7: hookd needs Redis 7 or newer"
            ));
        }
    }
    if field("aof_enabled") != Some("1") {
        warnings.push(
            "Redis AOF persistence is off: a Redis restart loses journaled webhooks that were \
             already answered 200 (set appendonly yes, appendfsync everysec or always)"
                .to_string(),
        );
    }
    if let Some([_, policy]) = policy
        && policy != "noeviction"
    {
        warnings.push(format!(
            "Redis maxmemory-policy is {policy}: under memory pressure Redis evicts journal \
             and dedup keys (set maxmemory-policy noeviction)"
        ));
    }
    warnings
}

/// (pending, lag) of `group` from an `XINFO GROUPS` reply.
fn group_backlog(groups: Value, group: &str) -> (u64, u64) {
    let Value::Array(groups) = groups else {
        return (0, 0);
    };
    for g in groups {
        let pairs: Vec<(String, Value)> = match g {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|kv| Some((value_string(&kv[0])?, kv.get(1)?.clone())))
                .collect(),
            Value::Map(map) => map
                .into_iter()
                .filter_map(|(k, v)| Some((value_string(&k)?, v)))
                .collect(),
            _ => continue,
        };
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if get("name").and_then(value_string).as_deref() != Some(group) {
            continue;
        }
        let num = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => *n as u64,
            _ => 0,
        };
        return (num(get("pending")), num(get("lag")));
    }
    (0, 0)
}

/// A stream entry's fields, as received.
pub(crate) struct Fields(Vec<(Vec<u8>, Vec<u8>)>);

impl Fields {
    fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    fn text(&self, name: &str) -> String {
        self.bytes(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    fn number(&self, name: &str) -> u64 {
        self.bytes(name)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn value_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

/// `[[id, [field, value, …] | nil], …]` (XRANGE, XREVRANGE, one stream of XREADGROUP).
/// A nil field list means the entry was deleted while still pending.
fn parse_entries(v: Value) -> Result<Vec<(String, Option<Fields>)>, StoreError> {
    let items = match v {
        Value::Array(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(StoreError::Protocol(format!("stream entries: {other:?}"))),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else {
            return Err(StoreError::Protocol("stream entry is not a pair".into()));
        };
        if pair.len() != 2 {
            return Err(StoreError::Protocol("stream entry is not a pair".into()));
        }
        let fields_value = pair.pop().unwrap_or(Value::Nil);
        let id = pair
            .pop()
            .and_then(|v| value_string(&v))
            .ok_or_else(|| StoreError::Protocol("stream entry id".into()))?;
        let fields = match fields_value {
            Value::Array(flat) => {
                let mut fields = Vec::with_capacity(flat.len() / 2);
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    if let (Some(k), Some(v)) = (value_bytes(k), value_bytes(v)) {
                        fields.push((k, v));
                    }
                }
                Some(Fields(fields))
            }
            _ => None,
        };
        out.push((id, fields));
    }
    Ok(out)
}

/// `[[stream, entries], …]` or a map of stream to entries (XREADGROUP); nil on timeout.
type StreamEntries = Vec<(String, Option<Fields>)>;

fn parse_read_reply(v: Value) -> Result<Vec<(String, StreamEntries)>, StoreError> {
    let streams: Vec<(Value, Value)> = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop()?;
                    let key = kv.pop()?;
                    Some((key, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(map) => map,
        other => return Err(StoreError::Protocol(format!("XREADGROUP: {other:?}"))),
    };
    streams
        .into_iter()
        .map(|(k, entries)| {
            Ok((
                value_string(&k).unwrap_or_default(),
                parse_entries(entries)?,
            ))
        })
        .collect()
}

/// A journal entry from its fields. One written by something else than hookd may lack its body:
/// it is then read with an empty one, so it ends in the quarantine instead of wedging the
/// consumer.
fn journal_entry(f: &Fields) -> JournalEntry {
    JournalEntry {
        source: f.text("source"),
        received_at_ms: f.number("received_at"),
        request_id: f.text("request_id"),
        signature: f.text("signature"),
        user_agent: f.text("user_agent"),
        body: Bytes::copy_from_slice(f.bytes("body").unwrap_or_default()),
    }
}

fn stored_event(id: String, f: &Fields) -> Result<StoredEvent, StoreError> {
    let data = RawValue::from_string(f.text("data"))
        .map_err(|e| StoreError::Protocol(format!("event {id} data: {e}")))?;
    let occurred = f.number("occurred_at");
    Ok(StoredEvent {
        event_type: f.text("type"),
        platform: f.text("platform"),
        account_id: f.text("account"),
        source: f.text("source"),
        object: f.text("object"),
        received_at: f.number("received_at"),
        occurred_at: (occurred > 0).then_some(occurred),
        journal_id: f.text("journal_id"),
        data,
        id,
    })
}

fn quarantined_body(id: String, f: &Fields) -> QuarantinedBody {
    let body = f.bytes("body").unwrap_or_default();
    QuarantinedBody {
        source: f.text("source"),
        received_at: f.number("received_at"),
        journal_id: f.text("journal_id"),
        request_id: f.text("request_id"),
        error: f.text("error"),
        body_len: body.len(),
        body: String::from_utf8_lossy(body).into_owned(),
        id,
    }
}

fn rejected_request(id: String, f: &Fields) -> RejectedRequest {
    RejectedRequest {
        id,
        rejection: Rejection {
            source: f.text("source"),
            reason: f.text("reason"),
            received_at_ms: f.number("received_at"),
            request_id: f.text("request_id"),
            remote_addr: f.text("remote_addr"),
            signature: f.text("signature"),
            body_len: f.number("body_len") as usize,
            body_prefix: f.text("body_prefix"),
        },
    }
}

/// `<ms>-<seq>`: anything else cannot name an entry and is not sent to Redis.
pub fn is_stream_id(s: &str) -> bool {
    let Some((ms, seq)) = s.split_once('-') else {
        return false;
    };
    !ms.is_empty()
        && !seq.is_empty()
        && ms.bytes().all(|b| b.is_ascii_digit())
        && seq.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_without_aof_or_with_eviction_is_warned_about() {
        let info = "# Server\r\nredis_version:7.2.4\r\n# Persistence\r\naof_enabled:0\r\n";
        let policy = ["maxmemory-policy".to_string(), "allkeys-lru".to_string()];
        let w = production_warnings(info, Some(&policy));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("AOF"));
        assert!(w[1].contains("allkeys-lru"));
    }

    #[test]
    fn a_production_ready_redis_gets_no_warning() {
        let info = "redis_version:7.0.15\r\naof_enabled:1\r\n";
        let policy = ["maxmemory-policy".to_string(), "noeviction".to_string()];
        assert!(production_warnings(info, Some(&policy)).is_empty());
    }

    #[test]
    fn an_old_redis_is_warned_about() {
        let w = production_warnings("redis_version:6.2.1\r\naof_enabled:1\r\n", None);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("older than 7"));
    }

    #[test]
    fn only_stream_ids_name_entries() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("1700000000000"));
        assert!(!is_stream_id("-0"));
        assert!(!is_stream_id("+"));
        assert!(!is_stream_id("1-x"));
    }
}
