//! The Redis backend: hookd's capabilities on Redis Streams, one file per capability.
//! Layout of the keys: see [`keys`].
//!
//! Every call runs under one deadline (`redis.command_timeout`), so a Redis that stops
//! answering turns into an error quickly instead of a hung request.

mod audit;
mod catalogue;
mod checks;
mod connection;
mod corrections;
mod deliveries;
mod delivery_log;
mod events;
mod health;
mod journal;
pub mod keys;
mod page_tokens;
mod partitioned;
pub mod partitions;
mod reply;
mod streams;
mod test_suites;
mod upkeep;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::IntoConnectionInfo;
use redis::aio::ConnectionManagerConfig;
use redis::cluster::{ClusterClientBuilder, ClusterConfig};

use crate::config::Settings;
use crate::metrics as m;
use crate::secret_box::SecretBox;
use crate::store::{Backend, JournalLease, SharedWork, StoreError};
use connection::{Conn, Connector};
use keys::Keys;
use keys::{DELIVERY_GROUP, NORMALIZER_GROUP};
use partitions::Partition;

const COMMIT_EVENTS_LUA: &str = concat!(
    include_str!("scripts/grouped.lua"),
    include_str!("scripts/lanes.lua"),
    include_str!("scripts/conversation.lua"),
    include_str!("scripts/commit_events.lua")
);
const COMMIT_ATTEMPTS_LUA: &str = concat!(
    include_str!("scripts/grouped.lua"),
    include_str!("scripts/lanes.lua"),
    include_str!("scripts/conversation.lua"),
    include_str!("scripts/commit_attempts.lua")
);
const APPEND_LUA: &str = include_str!("scripts/append.lua");
/// Quarantines a body with its count and the acknowledgement of its journal entry.
/// KEYS[1] quarantine, KEYS[2] stats, KEYS[3] journal; ARGV[1] MINID, ARGV[2] group, ARGV[3]
/// the journal entry, then the record's field/value pairs.
const QUARANTINE_LUA: &str = r"
redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', unpack(ARGV, 4))
redis.call('HINCRBY', KEYS[2], 'quarantined', 1)
redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
return 1
";
const HEALTH_LUA: &str = include_str!("scripts/health.lua");
/// Notes an instance alive until ARGV[1] + ARGV[2] (ms), forgets those past their time, and
/// lists the rest. KEYS[1] the instances sorted set; ARGV[3] the instance.
const ALIVE_LUA: &str = r"
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
";
const LEASE_LUA: &str = include_str!("scripts/lease.lua");
const REQUEUE_LUA: &str = concat!(
    include_str!("scripts/audit.lua"),
    include_str!("scripts/lanes.lua"),
    include_str!("scripts/conversation.lua"),
    include_str!("scripts/requeue.lua")
);

/// The Lua scripts, each hashed once and run by its SHA.
pub(super) struct Scripts {
    pub commit_events: redis::Script,
    pub commit_attempts: redis::Script,
    pub requeue: redis::Script,
    pub lease: redis::Script,
    pub health: redis::Script,
    pub append: redis::Script,
    pub quarantine: redis::Script,
    pub alive: redis::Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            commit_events: redis::Script::new(COMMIT_EVENTS_LUA),
            commit_attempts: redis::Script::new(COMMIT_ATTEMPTS_LUA),
            requeue: redis::Script::new(REQUEUE_LUA),
            lease: redis::Script::new(LEASE_LUA),
            health: redis::Script::new(HEALTH_LUA),
            append: redis::Script::new(APPEND_LUA),
            quarantine: redis::Script::new(QUARANTINE_LUA),
            alive: redis::Script::new(ALIVE_LUA),
        }
    }
}

pub struct RedisStore {
    /// Only for blocking reads (`XREADGROUP … BLOCK`), which would hold up every other
    /// command on a shared connection. A connection of its own rather than a pooled one: a
    /// pool checks each connection out with a round trip of its own (`PING`, `UNWATCH`).
    pub(super) blocking: Conn,
    pub(super) shared: Conn,
    pub(super) connector: Connector,
    pub(super) keys: Keys,
    /// Which partition of how many this store is.
    pub(super) partition: Partition,
    /// `redis.prefix`, from which each partition's keys are made.
    pub(super) settings_prefix: String,
    pub(super) timeout: Duration,
    pub(super) stream_max_age: Duration,
    pub(super) dedup_ttl: Duration,
    pub(super) rejected_keep: usize,
    /// Replicas a journal append waits for, and for how long (`redis.wait_replicas`).
    pub(super) wait_replicas: u32,
    pub(super) wait_timeout: Duration,
    pub(super) scripts: Arc<Scripts>,
    /// The consumer whose journal lease this handle holds: its commits of split entries are
    /// refused once another consumer holds the lease.
    pub(super) lease_holder: std::sync::Mutex<Option<String>>,
    /// When the lease (and this instance's share of partitions) was last confirmed with
    /// Redis: a holder asks again only after a quarter of the lease, not every batch (its
    /// commits are fenced meanwhile, see `commit_events.lua`).
    pub(super) lease_confirmed: std::sync::Mutex<Option<Instant>>,
    /// The deliveries lanes as last read, and when.
    pub(super) lanes_cache: LanesCache,
    /// How long delivery states, statistics and attempt logs are kept.
    pub(super) delivery_state_ttl: Duration,
    pub(super) disable_after: Duration,
    pub(super) audit_retention: Duration,
    /// Seals endpoint secrets before they are stored, opens them when read.
    pub(super) secrets: Arc<SecretBox>,
    /// Per stream, the last entry of the current pass of pending reads (see
    /// [`crate::store::ReadFrom::Pending`]); each consumer's handle has its own.
    pub(super) pending_pass: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Deliveries lanes by tenant, as read at an instant.
pub(super) type LanesCache = std::sync::Mutex<Option<(std::time::Instant, Vec<String>)>>;

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl RedisStore {
    /// No connection is made until the first call.
    pub fn new(settings: &Settings, secrets: Arc<SecretBox>) -> Result<RedisStore, StoreError> {
        let r = &settings.redis;
        let connector = connector(r)?;
        Ok(RedisStore {
            blocking: connector.connect()?,
            shared: connector.connect()?,
            connector,
            keys: Keys::for_partition(&r.prefix, r.tagged_keys(), 0),
            partition: Partition {
                index: 0,
                count: r.partitions.max(1),
            },
            settings_prefix: r.prefix.clone(),
            timeout: r.command_timeout,
            stream_max_age: settings.retention.stream_max_age,
            dedup_ttl: settings.retention.dedup_ttl,
            rejected_keep: settings.ingress.rejected_records_kept(),
            wait_replicas: r.wait_replicas,
            wait_timeout: r.wait_timeout,
            scripts: Arc::new(Scripts::new()),
            lease_holder: Default::default(),
            lease_confirmed: Default::default(),
            lanes_cache: Default::default(),
            delivery_state_ttl: settings.delivery.log_retention,
            disable_after: settings.delivery.disable_after,
            audit_retention: settings.audit.retention,
            secrets,
            pending_pass: Default::default(),
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
        metrics::histogram!(m::STORAGE_DURATION, "op" => op)
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!(m::STORAGE_ERRORS, "op" => op).increment(1);
        }
        result
    }

    /// The shared connection: multiplexed, so concurrent callers' commands are pipelined on
    /// one socket, and reconnected by itself after Redis comes back.
    pub(super) fn conn(&self) -> Conn {
        self.shared.clone()
    }

    /// The connection for blocking reads, which would stall a shared one.
    pub(super) fn blocking_conn(&self) -> Conn {
        self.blocking.clone()
    }

    /// Entries older than the retention have ids below this.
    pub(super) fn min_id(&self) -> String {
        let age = self.stream_max_age.as_millis() as u64;
        format!("{}-0", crate::time::unix_ms().saturating_sub(age))
    }

    fn index_ttl_secs(&self) -> u64 {
        self.stream_max_age.as_secs().max(1)
    }

    /// The same store with a connection of its own. Lazy: the connection is made by the first
    /// command, on the caller's thread, and its I/O is driven there from then on.
    pub(super) fn with_own_connection(&self) -> RedisStore {
        let own = || self.connector.connect();
        // Blocking reads get a connection of their own too: a connection's I/O is driven by
        // the thread that opened it, and a consumer must not do another's parsing.
        self.derived(
            own().unwrap_or_else(|_| self.shared.clone()),
            own().unwrap_or_else(|_| self.blocking.clone()),
            self.partition,
        )
    }

    /// Partition `index` of this store's partitions, on this store's connections.
    pub(crate) fn partition(&self, index: usize) -> RedisStore {
        let partition = Partition {
            index,
            count: self.partition.count,
        };
        self.derived(self.shared.clone(), self.blocking.clone(), partition)
    }

    fn derived(&self, shared: Conn, blocking: Conn, partition: Partition) -> RedisStore {
        RedisStore {
            shared,
            blocking,
            connector: self.connector.clone(),
            keys: if partition == self.partition {
                self.keys.clone()
            } else {
                Keys::for_partition(&self.settings_prefix, true, partition.index)
            },
            partition,
            settings_prefix: self.settings_prefix.clone(),
            timeout: self.timeout,
            stream_max_age: self.stream_max_age,
            dedup_ttl: self.dedup_ttl,
            rejected_keep: self.rejected_keep,
            wait_replicas: self.wait_replicas,
            wait_timeout: self.wait_timeout,
            scripts: self.scripts.clone(),
            lease_holder: Default::default(),
            lease_confirmed: Default::default(),
            lanes_cache: Default::default(),
            delivery_state_ttl: self.delivery_state_ttl,
            disable_after: self.disable_after,
            audit_retention: self.audit_retention,
            secrets: self.secrets.clone(),
            pending_pass: Default::default(),
        }
    }
}

impl RedisStore {
    /// Runs one of the scripts by its SHA; Redis is sent the script itself only when it
    /// answers that it does not know it (restarted, flushed).
    async fn run_script<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.timed(op, async {
            Ok(invocation.invoke_async(&mut self.conn()).await?)
        })
        .await
    }
}

/// The Redis backend `settings` describe: one store, or one over its partitions.
pub fn open(settings: &Settings, secrets: Arc<SecretBox>) -> Result<Arc<dyn Backend>, StoreError> {
    let first = RedisStore::new(settings, secrets)?;
    Ok(if first.partition.count > 1 {
        Arc::new(partitioned::PartitionedStore::new(first))
    } else {
        Arc::new(first)
    })
}

/// Connections to `redis.url`: one server, or the cluster whose seed nodes it lists.
fn connector(r: &crate::config::RedisSettings) -> Result<Connector, StoreError> {
    // Nagle's algorithm would hold a pipeline's second write until the first is
    // acknowledged (up to the peer's delayed-ACK timer, 40 ms on Linux).
    let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
    let ca = if r.tls_ca_file.is_empty() {
        None
    } else {
        Some(std::fs::read(&r.tls_ca_file).map_err(|e| {
            StoreError::Unavailable(format!("redis.tls_ca_file {:?}: {e}", r.tls_ca_file))
        })?)
    };
    let certs = |root_cert| redis::TlsCertificates {
        client_tls: None,
        root_cert,
    };
    if r.cluster {
        let seeds = r.url.split(',').map(str::trim).filter(|s| !s.is_empty());
        let mut builder = ClusterClientBuilder::new(seeds.map(str::to_string))
            .tcp_settings(tcp)
            .connection_timeout(r.connect_timeout)
            .response_timeout(r.command_timeout);
        if let Some(ca) = ca {
            builder = builder.certs(certs(Some(ca)));
        }
        let config = ClusterConfig::new()
            .set_connection_timeout(r.connect_timeout)
            .set_response_timeout(r.command_timeout);
        return Ok(Connector::Cluster {
            client: builder.build()?,
            config,
        });
    }
    let mut info = r.url.as_str().into_connection_info()?.set_tcp_settings(tcp);
    if let Some(ca) = ca {
        // A private CA for `rediss://`: the connection info then carries it to every
        // connection made from it.
        info = redis::Client::build_with_tls(info, certs(Some(ca)))?
            .get_connection_info()
            .clone();
    }
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(r.connect_timeout))
        .set_response_timeout(Some(r.command_timeout))
        // One connection attempt per reconnect: a Redis that refuses connections fails the
        // call at once (ingress answers 503 within milliseconds) instead of after a
        // series of retries; the next call tries again.
        .set_number_of_retries(0);
    Ok(Connector::Single {
        client: redis::Client::open(info)?,
        config,
    })
}

impl RedisStore {
    /// Notes that `consumer`'s instance is alive for `lease`, and says whether this partition
    /// is in its share: partitions go round the instances alive, by name, so that each splits
    /// about as many journals; one that stops living (no note for `lease`) leaves its share
    /// to the others.
    /// Lets this partition's journal lease go, if `consumer` holds it.
    async fn give_up_lease(&self, consumer: &str) -> Result<(), StoreError> {
        let mut inv = self.scripts.lease.prepare_invoke();
        inv.key(self.keys.journal_lease())
            .arg(consumer)
            .arg("release")
            .arg(0);
        let _: i64 = self.run_script("journal_lease", inv).await?;
        *lock_holder(&self.lease_holder) = None;
        *lock_holder(&self.lease_confirmed) = None;
        Ok(())
    }

    async fn in_my_share(&self, consumer: &str, lease: Duration) -> Result<bool, StoreError> {
        let now = crate::time::unix_ms();
        let mut inv = self.scripts.alive.prepare_invoke();
        inv.key(self.keys.instances())
            .arg(now)
            .arg(lease.as_millis() as u64)
            .arg(consumer);
        let mut alive: Vec<String> = self.run_script("instances", inv).await?;
        alive.sort();
        Ok(share_owner(&alive, self.partition.index) == Some(consumer))
    }
}

/// The instance (of those alive, sorted) whose share holds partition `index`.
fn share_owner(alive: &[String], index: usize) -> Option<&str> {
    if alive.is_empty() {
        return None;
    }
    alive.get(index % alive.len()).map(String::as_str)
}

/// The lease holder's locks; a panic elsewhere cannot leave them in a state worth refusing.
pub(super) fn lock_holder<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn json_error(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Protocol(format!("{what}: {e}"))
}

impl Backend for RedisStore {
    fn for_consumer(&self) -> Arc<dyn Backend> {
        Arc::new(self.with_own_connection())
    }

    fn shared_work(&self) -> Option<&dyn SharedWork> {
        Some(self)
    }

    fn keep_own_share(&self, item: &mut crate::store::Normalized) {
        partitions::keep_own(item, self.partition);
    }
}

/// Consumer groups let another instance take over what a stopped one held.
#[async_trait::async_trait]
impl SharedWork for RedisStore {
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

    async fn hold_journal_lease(
        &self,
        consumer: &str,
        lease: Duration,
    ) -> Result<JournalLease, StoreError> {
        let confirmed = *lock_holder(&self.lease_confirmed);
        if confirmed.is_some_and(|at| at.elapsed() < lease / 4)
            && lock_holder(&self.lease_holder).as_deref() == Some(consumer)
        {
            return Ok(JournalLease::Kept);
        }
        if self.partition.count > 1 && !self.in_my_share(consumer, lease).await? {
            // Its instance takes it once this one lets go (the takeover reads what this
            // one had read first).
            if lock_holder(&self.lease_holder).is_some() {
                self.give_up_lease(consumer).await?;
            }
            return Ok(JournalLease::HeldElsewhere);
        }
        let mut inv = self.scripts.lease.prepare_invoke();
        inv.key(self.keys.journal_lease())
            .arg(consumer)
            .arg("hold")
            .arg(lease.as_millis() as u64);
        let answer: i64 = self.run_script("journal_lease", inv).await?;
        let state = match answer {
            1 => JournalLease::Kept,
            2 => JournalLease::Taken,
            _ => JournalLease::HeldElsewhere,
        };
        let held = (state != JournalLease::HeldElsewhere).then(|| consumer.to_string());
        *lock_holder(&self.lease_confirmed) = held.is_some().then(Instant::now);
        *lock_holder(&self.lease_holder) = held;
        Ok(state)
    }

    async fn release_journal_lease(&self, consumer: &str) -> Result<(), StoreError> {
        self.give_up_lease(consumer).await?;
        if self.partition.count > 1 {
            // Stopping: its share goes to the others now, not when its note runs out.
            let key = self.keys.instances();
            self.timed("instances", async {
                let _: i64 = redis::cmd("ZREM")
                    .arg(&key)
                    .arg(consumer)
                    .query_async(&mut self.conn())
                    .await?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    async fn claim_stale_deliveries(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        let mut claimed = 0;
        for key in self.lane_keys().await? {
            claimed += self
                .claim_stale(
                    "claim_deliveries",
                    key,
                    DELIVERY_GROUP,
                    consumer,
                    min_idle,
                    count,
                )
                .await?;
        }
        Ok(claimed)
    }
}
