//! [`Store`] on Redis Streams. Layout: see [`super::keys`].
//!
//! Every call runs under one deadline (`redis.command_timeout`), so a Redis that stops
//! answering turns into an error quickly instead of a hung request.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::{Pool, Runtime};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, Value};

use super::keys::{DELIVERY_GROUP, Keys, NORMALIZER_GROUP};
use super::redis_checks::production_warnings;
use super::redis_reply::*;
use super::types::*;
use super::{Store, StoreError};
use crate::config::Settings;
use crate::meta::Event;
use crate::metrics as m;

const COMMIT_EVENTS_LUA: &str = include_str!("commit_events.lua");

/// The part of a stream a listing reads: received/dead time bounds (Unix ms), a cursor
/// (exclusive, newest first) and a page size.
pub(super) struct Window<'a> {
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub cursor: Option<&'a str>,
    pub limit: usize,
}

/// What a pool of connections for blocking reads is built from.
#[derive(Clone)]
pub(super) struct PoolSettings {
    info: redis::ConnectionInfo,
    connection: redis::AsyncConnectionConfig,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl PoolSettings {
    /// No connection is made until the first call, from the caller's thread.
    fn build(&self, size: usize) -> Result<Pool, StoreError> {
        let manager =
            deadpool_redis::Manager::new_with_config(self.info.clone(), self.connection.clone())?;
        Pool::builder(manager)
            .max_size(size)
            .wait_timeout(Some(self.command_timeout))
            .create_timeout(Some(self.connect_timeout))
            .recycle_timeout(Some(self.command_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }
}

pub struct RedisStore {
    /// Only for blocking reads (`XREADGROUP … BLOCK`).
    pub(super) pool: Pool,
    pub(super) pool_cfg: PoolSettings,
    pub(super) shared: ConnectionManager,
    pub(super) client: redis::Client,
    pub(super) shared_cfg: ConnectionManagerConfig,
    pub(super) keys: Keys,
    pub(super) timeout: Duration,
    pub(super) stream_max_age: Duration,
    pub(super) dedup_ttl: Duration,
    pub(super) rejected_keep: usize,
    pub(super) commit_events: redis::Script,
    pub(super) commit_attempts: redis::Script,
    pub(super) requeue: redis::Script,
    /// How long delivery states, statistics and attempt logs are kept.
    pub(super) delivery_state_ttl: Duration,
    pub(super) disable_after: Duration,
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
        // Nagle's algorithm would hold a pipeline's second write until the first is
        // acknowledged (up to the peer's delayed-ACK timer, 40 ms on Linux).
        let mut info = r
            .url
            .as_str()
            .into_connection_info()?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        if !r.tls_ca_file.is_empty() {
            // A private CA for `rediss://`: the connection info then carries it to every
            // connection made from it (shared, pooled and dedicated).
            let ca = std::fs::read(&r.tls_ca_file).map_err(|e| {
                StoreError::Unavailable(format!("redis.tls_ca_file {:?}: {e}", r.tls_ca_file))
            })?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca),
            };
            info = redis::Client::build_with_tls(info, certs)?
                .get_connection_info()
                .clone();
        }
        let pool_cfg = PoolSettings {
            info: info.clone(),
            connection: conn_cfg,
            connect_timeout: r.connect_timeout,
            command_timeout: r.command_timeout,
        };
        let pool = pool_cfg.build(r.pool_size)?;
        let shared_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(r.connect_timeout))
            .set_response_timeout(Some(r.command_timeout))
            // One connection attempt per reconnect: a Redis that refuses connections fails the
            // call at once (ingress answers 503 within milliseconds) instead of after a
            // series of retries; the next call tries again.
            .set_number_of_retries(0);
        let client = redis::Client::open(info)?;
        let shared = ConnectionManager::new_lazy_with_config(client.clone(), shared_cfg.clone())?;
        Ok(RedisStore {
            pool,
            pool_cfg,
            shared,
            client,
            shared_cfg,
            keys: Keys::new(&r.prefix),
            timeout: r.command_timeout,
            stream_max_age: settings.retention.stream_max_age,
            dedup_ttl: settings.retention.dedup_ttl,
            rejected_keep: settings.ingress.rejected_records_kept(),
            commit_events: redis::Script::new(COMMIT_EVENTS_LUA),
            commit_attempts: redis::Script::new(super::redis_delivery::COMMIT_ATTEMPTS_LUA),
            requeue: redis::Script::new(super::redis_delivery::REQUEUE_LUA),
            delivery_state_ttl: settings.delivery.log_retention,
            disable_after: settings.delivery.disable_after,
        })
    }

    /// Runs `f` under the deadline, timing it and counting failures by `op`.
    pub(super) async fn timed<T>(
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
    pub(super) fn conn(&self) -> ConnectionManager {
        self.shared.clone()
    }

    /// A connection of its own, for blocking reads that would stall a shared one.
    pub(super) async fn blocking_conn(&self) -> Result<deadpool_redis::Connection, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Entries older than the retention have ids below this.
    pub(super) fn min_id(&self) -> String {
        let age = self.stream_max_age.as_millis() as u64;
        format!("{}-0", crate::time::unix_ms().saturating_sub(age))
    }

    fn index_ttl_secs(&self) -> u64 {
        self.stream_max_age.as_secs().max(1)
    }

    pub(super) async fn range(
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

    /// One page of a stream, newest first, each entry read by `row`.
    pub(super) async fn newest_first<T>(
        &self,
        op: &'static str,
        key: String,
        cursor: Option<&str>,
        limit: usize,
        row: fn(String, &Fields) -> T,
    ) -> Result<Page<T>, StoreError> {
        let entries = self.range(op, key, cursor, "-".into(), limit).await?;
        let next_cursor = (entries.len() == limit)
            .then(|| entries.last().map(|(id, _)| id.clone()))
            .flatten();
        let items = entries
            .into_iter()
            .filter_map(|(id, f)| f.map(|f| row(id, &f)))
            .collect();
        Ok(Page { items, next_cursor })
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
            .key(self.keys.stats_types())
            .key(self.keys.deliveries());
        inv.arg(NORMALIZER_GROUP)
            .arg(self.dedup_ttl.as_secs().max(1))
            .arg(min_id)
            .arg(self.index_ttl_secs())
            .arg(split.len())
            .arg(self.keys.prefix())
            .arg(self.delivery_state_ttl.as_secs().max(1));
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

    /// One page of a stream, newest first, within a time window, of the entries `keep` turns
    /// into items (`id_of` gives an item's stream id, the cursor). A bounded number of rounds
    /// keeps a request's cost bounded however sparse the filter; a short page with a cursor
    /// means "more may follow". An entry may stand for several items (an index entry lists a
    /// batch's events), so items past a round's upper end are dropped and a page that would
    /// overflow ends at its last item.
    pub(super) async fn filtered_page<T, F, Fut>(
        &self,
        op: &'static str,
        key: String,
        w: Window<'_>,
        id_of: fn(&T) -> &str,
        mut keep: F,
    ) -> Result<Page<T>, StoreError>
    where
        F: FnMut(StreamEntries) -> Fut,
        Fut: Future<Output = Result<Vec<T>, StoreError>>,
    {
        const MAX_ROUNDS: usize = 4;
        let start = w
            .from_ms
            .map(|ms| format!("{ms}-0"))
            .unwrap_or_else(|| "-".to_string());
        // The newest end of the range: the cursor, else `to`.
        let mut cursor = match (w.cursor, w.to_ms) {
            (Some(c), _) => Some(c.to_string()),
            (None, Some(to)) => Some(format!("{}-0", to.saturating_add(1))),
            (None, None) => None,
        };
        let mut items = Vec::with_capacity(w.limit);
        for _ in 0..MAX_ROUNDS {
            let want = w.limit - items.len();
            let entries = self
                .range(op, key.clone(), cursor.as_deref(), start.clone(), want)
                .await?;
            let exhausted = entries.len() < want;
            let upper = cursor.as_deref().and_then(parse_stream_id);
            cursor = entries.last().map(|(id, _)| id.clone()).or(cursor);
            let mut found = keep(entries).await?;
            if let Some(upper) = upper {
                found.retain(|t| parse_stream_id(id_of(t)).is_some_and(|id| id < upper));
            }
            items.extend(found);
            if items.len() > w.limit {
                items.truncate(w.limit);
                let next_cursor = items.last().map(|t| id_of(t).to_string());
                return Ok(Page { items, next_cursor });
            }
            if exhausted {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
            if items.len() >= w.limit {
                break;
            }
        }
        Ok(Page {
            items,
            next_cursor: cursor,
        })
    }

    /// The same store with a connection of its own. Lazy: the connection is made by the first
    /// command, on the caller's thread, and its I/O is driven there from then on.
    pub(super) fn with_own_connection(&self) -> RedisStore {
        let own =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.shared_cfg.clone())
                .unwrap_or_else(|_| self.shared.clone());
        // Blocking reads get connections of their own too: a pooled connection's I/O is
        // driven by the thread that opened it, and a consumer must not do another's parsing.
        let pool = self.pool_cfg.build(2).unwrap_or_else(|_| self.pool.clone());
        RedisStore {
            pool,
            pool_cfg: self.pool_cfg.clone(),
            shared: own,
            client: self.client.clone(),
            shared_cfg: self.shared_cfg.clone(),
            keys: self.keys.clone(),
            timeout: self.timeout,
            stream_max_age: self.stream_max_age,
            dedup_ttl: self.dedup_ttl,
            rejected_keep: self.rejected_keep,
            commit_events: self.commit_events.clone(),
            commit_attempts: self.commit_attempts.clone(),
            requeue: self.requeue.clone(),
            delivery_state_ttl: self.delivery_state_ttl,
            disable_after: self.disable_after,
        }
    }

    /// Reads a consumer group's entries for `consumer`: new ones (blocking up to `block`), or
    /// those it holds unacknowledged.
    pub(super) async fn read_group(
        &self,
        op: &'static str,
        (key, group): (String, &str),
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<StreamEntries, StoreError> {
        self.timed(op, async {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(group)
                .arg(consumer)
                .arg("COUNT")
                .arg(count);
            let start = match from {
                // BLOCK 0 would wait forever: a zero block means "do not wait".
                ReadFrom::New if !block.is_zero() => {
                    cmd.arg("BLOCK").arg(block.as_millis() as u64);
                    ">"
                }
                ReadFrom::New => ">",
                ReadFrom::Pending => "0",
            };
            cmd.arg("STREAMS").arg(&key).arg(start);
            let read = |cmd: redis::Cmd| async move {
                let reply: Result<Value, redis::RedisError> = match from {
                    ReadFrom::New => cmd.query_async(&mut self.blocking_conn().await?).await,
                    ReadFrom::Pending => cmd.query_async(&mut self.conn()).await,
                };
                Ok::<_, StoreError>(reply.map_err(Lost::from))
            };
            let v: Value = match read(cmd.clone()).await? {
                Err(Lost::Group) => {
                    self.recreate_group(&key, group).await?;
                    read(cmd).await??
                }
                other => other?,
            };
            Ok(parse_read_reply(v)?
                .into_iter()
                .flat_map(|(_stream, entries)| entries)
                .collect())
        })
        .await
    }

    /// XAUTOCLAIM: takes over entries other consumers held longer than `min_idle`.
    pub(super) async fn claim_stale(
        &self,
        op: &'static str,
        key: String,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        self.timed(op, async {
            let mut conn = self.conn();
            let claimed: Result<Value, redis::RedisError> = redis::cmd("XAUTOCLAIM")
                .arg(&key)
                .arg(group)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(count)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await;
            let v = match claimed.map_err(Lost::from) {
                // A new group holds nothing to claim.
                Err(Lost::Group) => return self.recreate_group(&key, group).await.map(|()| 0),
                other => other?,
            };
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

    /// Creates a consumer group that should have existed: Redis lost it (restarted without
    /// its data, or flushed), and with it every entry it held. Reading must go on, and an
    /// operator must know.
    pub(super) async fn recreate_group(&self, key: &str, group: &str) -> Result<(), StoreError> {
        tracing::error!(
            stream = key,
            group,
            "storage lost data it had acknowledged: the consumer group is missing (Redis \
             restarted without its data or was flushed); recreating it. Check Redis persistence \
             (appendonly yes)."
        );
        metrics::counter!(m::STORAGE_DATA_LOST).increment(1);
        create_group(&mut self.conn(), key, group).await
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
impl Store for RedisStore {
    fn dedicated(&self) -> Arc<dyn Store> {
        Arc::new(self.with_own_connection())
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
        let groups = [
            (self.keys.inbound(), NORMALIZER_GROUP),
            (self.keys.deliveries(), DELIVERY_GROUP),
        ];
        self.timed("prepare", async {
            let mut conn = self.conn();
            for (key, group) in &groups {
                create_group(&mut conn, key, group).await?;
            }
            Ok(())
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
        let entries = self
            .read_group(
                "read_journal",
                (self.keys.inbound(), NORMALIZER_GROUP),
                consumer,
                from,
                count,
                block,
            )
            .await?;
        Ok(entries
            .into_iter()
            .map(|(id, fields)| JournalRecord {
                id,
                entry: fields.map(|f| journal_entry(&f)),
            })
            .collect())
    }

    async fn claim_stale_journal(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        let key = self.keys.inbound();
        self.claim_stale(
            "claim_journal",
            key,
            NORMALIZER_GROUP,
            consumer,
            min_idle,
            count,
        )
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
                // Exact, so the list's bound holds to the record.
                .arg("MAXLEN")
                .arg("=")
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

fn push_event_args(inv: &mut redis::ScriptInvocation<'_>, e: &Event, routing: Option<&Routing>) {
    let (eps, raw, tenants) = match routing {
        Some(r) => (
            r.endpoints.join(","),
            r.raw_endpoints.join(","),
            r.tenants.join(","),
        ),
        None => Default::default(),
    };
    inv.arg(&e.event_type)
        .arg(e.platform.as_str())
        .arg(&e.account_id)
        .arg(e.occurred_at_ms.map(|t| t.to_string()).unwrap_or_default())
        .arg(&e.data)
        .arg(eps)
        .arg(raw)
        .arg(tenants);
}

/// Creates `group` on stream `key` (and the stream), unless it exists. From "0", so entries
/// written before the group existed are read too.
async fn create_group(
    conn: &mut ConnectionManager,
    key: &str,
    group: &str,
) -> Result<(), StoreError> {
    let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A Redis error, telling a missing consumer group (`NOGROUP`) from the rest.
enum Lost {
    Group,
    Other(redis::RedisError),
}

impl From<redis::RedisError> for Lost {
    fn from(e: redis::RedisError) -> Lost {
        if e.code() == Some("NOGROUP") {
            Lost::Group
        } else {
            Lost::Other(e)
        }
    }
}

impl From<Lost> for StoreError {
    fn from(e: Lost) -> StoreError {
        match e {
            Lost::Group => StoreError::Unavailable("the consumer group is missing".into()),
            Lost::Other(e) => e.into(),
        }
    }
}
