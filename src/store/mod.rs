//! Storage: the only part of hookd that knows how things are kept.
//!
//! The engine and the API see storage as a [`Backend`]: a handful of capabilities, each a
//! small trait named for what it keeps, not for how a backend keeps it ([`Journal`],
//! [`EventLog`], [`Catalogue`], [`DeliveryQueue`], [`DeliveryLog`], [`AuditLog`], [`Upkeep`]),
//! and one that only a backend shared by several instances has ([`SharedWork`]).
//!
//! A method that changes something on an operator's behalf takes the [`AuditRecord`] of the
//! change and writes it in the same atomic step, only when the change is made: there is no
//! change without its record, nor a record of a change that was not made. [`EmbeddedStore`] keeps
//! them in a data file on one machine; [`RedisStore`] on Redis Streams.

mod embedded;
pub mod ids;
mod redis;
mod types;

pub use crate::model::delivery::*;
pub use embedded::{EmbeddedStore, OpenError};
pub use redis::keys::{DELIVERY_GROUP, Keys, NORMALIZER_GROUP};
pub use redis::{RedisStore, open as open_redis, partitions};
pub use types::*;

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::model::audit::AuditRecord;
use crate::model::test_suite::TestSuite;
use crate::model::{AccountOwners, ApiKey, Endpoint, LiveEndpoint, PageToken, Tenant};

/// Why a storage call failed. Every variant means "not done": callers answer 503 or retry,
/// except [`StoreError::InvalidInput`], which is the caller's to fix (a 400).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// An id or cursor that this backend never made: refused before any storage call.
    #[error("{parameter}: {problem}")]
    InvalidInput {
        parameter: &'static str,
        problem: String,
    },
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected storage reply: {0}")]
    Protocol(String),
    /// A stored secret that the configured keys cannot open.
    #[error("{0}")]
    Secret(String),
}

impl From<crate::secret_box::SecretBoxError> for StoreError {
    fn from(e: crate::secret_box::SecretBoxError) -> StoreError {
        StoreError::Secret(e.to_string())
    }
}

/// Verified webhook requests, durable before they are answered, read by the normalizer.
#[async_trait]
pub trait Journal: Send + Sync {
    /// Journals a batch of requests in one atomic write: all are durable, or none is.
    /// Returns each entry's journal id, in order.
    async fn append_journal(&self, batch: &[JournalEntry]) -> Result<Vec<String>, StoreError>;

    /// Reads journal entries for `consumer`: new ones (waiting up to `block` for some; zero
    /// does not wait), or those it holds unacknowledged.
    async fn read_journal(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalRecord>, StoreError>;

    /// A journaled request (raw mode forwards its body).
    async fn journal_entry(&self, journal_id: &str) -> Result<Option<JournalEntry>, StoreError>;
}

/// Split, deduplicated events; bodies that could not be split; refused requests.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Stores the outcome of splitting journal entries, each atomically with its dedup keys,
    /// its deliveries and its acknowledgement.
    async fn commit_normalized(
        &self,
        batch: &[Normalized],
    ) -> Result<Vec<CommitOutcome>, StoreError>;

    /// Records a refused request (bounded list).
    async fn record_rejection(&self, rejection: &Rejection) -> Result<(), StoreError>;

    async fn list_events(&self, query: &EventQuery) -> Result<Page<StoredEvent>, StoreError>;
    async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError>;
    async fn list_quarantine(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<QuarantinedBody>, StoreError>;
    async fn list_rejected(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RejectedRequest>, StoreError>;
    async fn stats(&self) -> Result<Stats, StoreError>;
}

/// What a saved endpoint does to hookd's own disabling of it (410, failing too long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledByHookd {
    Keep,
    /// Clear it: the owner turned the endpoint on again.
    Clear,
}

/// Tenants, their keys and accounts, and endpoints. Every change is audited (see the module).
#[async_trait]
pub trait Catalogue: Send + Sync {
    async fn put_tenant(&self, tenant: &Tenant, audit: &AuditRecord) -> Result<(), StoreError>;
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// Stores a key under the SHA-256 (hex) of its secret.
    async fn put_api_key(
        &self,
        key_hash: &str,
        key: &ApiKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError>;
    /// Revokes a tenant's key by its public id; false when there is none.
    async fn delete_api_key(
        &self,
        tenant_id: &str,
        key_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// Which tenant owns which Meta account.
    async fn account_owners(&self) -> Result<AccountOwners, StoreError>;
    /// Gives `accounts` to `tenant_id`, all or none, and tells every instance's router. An
    /// account another tenant owns is a conflict: it is returned and nothing is written.
    async fn assign_accounts(
        &self,
        tenant_id: &str,
        accounts: &[String],
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError>;
    /// Takes `account` from `tenant_id`; false when the tenant did not own it.
    async fn release_account(
        &self,
        tenant_id: &str,
        account: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;

    /// Creates or replaces an endpoint and tells every instance's router.
    async fn put_endpoint(
        &self,
        endpoint: &Endpoint,
        disabled: DisabledByHookd,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn delete_endpoint(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError>;
    /// Every endpoint with its health.
    async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, StoreError>;
    async fn get_endpoint(&self, id: &str) -> Result<Option<LiveEndpoint>, StoreError>;
    /// Changes whenever any endpoint, its health or an account's owner changes.
    async fn catalogue_version(&self) -> Result<u64, StoreError>;

    /// Claims `key` (already scoped to the caller and route) for `ttl`, atomically: only one
    /// request gets [`IdempotencyClaim::Fresh`].
    async fn claim_idempotency(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError>;
    /// Keeps the answer of the request that claimed `key`, for `ttl`.
    async fn settle_idempotency(
        &self,
        key: &str,
        status: u16,
        body: &str,
        ttl: Duration,
    ) -> Result<(), StoreError>;
    /// Frees `key` after its request failed, so that a retry can go ahead.
    async fn release_idempotency(&self, key: &str) -> Result<(), StoreError>;
}

/// Deliveries waiting for an attempt, and what the dispatcher decided about them.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Reads deliveries for `consumer`: new ones, or those it holds unacknowledged; at most
    /// `count` records, or one entry's if it holds more. An entry's records come together.
    async fn read_deliveries(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Writes a round of outcomes and acknowledges the finished deliveries, atomically.
    async fn commit_attempts(&self, commit: &AttemptCommit) -> Result<(), StoreError>;
    /// Makes up to `max` retries due at `now_ms` deliverable again; returns (moved, dropped).
    async fn promote_due_retries(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<(usize, usize), StoreError>;
    /// Queues dead deliveries again for a fresh schedule.
    async fn requeue_dead(&self, ids: &[String]) -> Result<usize, StoreError>;
    /// Attempts one delivery again now; false when there is no such delivery.
    async fn retry_delivery(
        &self,
        kind: DeliveryKind,
        subject: &str,
        endpoint_id: &str,
        event_type: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;
}

/// What became of deliveries: attempt logs, per-event states, dead letters, statistics.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn list_attempts(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AttemptEntry>, StoreError>;
    async fn get_attempt(
        &self,
        endpoint_id: &str,
        id: &str,
    ) -> Result<Option<AttemptEntry>, StoreError>;
    /// The recorded states of `subject`'s deliveries. `routed` names the endpoints an event
    /// was routed to (its deliveries only ever go there), which the caller has already read:
    /// a backend may look up only those.
    async fn delivery_states(
        &self,
        kind: DeliveryKind,
        subject: &str,
        routed: &[String],
    ) -> Result<Vec<DeliveryState>, StoreError>;
    async fn list_dead(&self, query: &DeadQuery) -> Result<Page<DeadDelivery>, StoreError>;
    /// The statistics buckets of `scope` (an endpoint id or [`ALL_ENDPOINTS`]) in a period.
    async fn stats_buckets(
        &self,
        scope: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<BTreeMap<String, u64>>, StoreError>;
    /// Deletes attempt log entries older than `before_ms` of the given endpoints.
    async fn purge_attempt_logs(
        &self,
        endpoint_ids: &[String],
        before_ms: u64,
    ) -> Result<u64, StoreError>;
}

/// Who changed what through the management API, kept for `audit.retention`.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Writes a record on its own: a refused request, or the start and the end of work that
    /// cannot be atomic with a record. Returns its id.
    async fn record_audit(&self, record: &AuditRecord) -> Result<String, StoreError>;
    /// Records matching `query`, newest first, reading at most [`AuditQuery::SCAN_MAX`].
    async fn list_audit(&self, query: &AuditQuery) -> Result<Page<AuditRecord>, StoreError>;
}

/// Keeping the backend in shape: checks, set-up, retention, gauges.
#[async_trait]
pub trait Upkeep: Send + Sync {
    /// Round trip to the backend.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Things an operator should fix in the backend's configuration (persistence, eviction,
    /// version). Empty when all is well.
    async fn production_warnings(&self) -> Result<Vec<String>, StoreError>;

    /// Creates what reading needs (idempotent).
    async fn prepare(&self) -> Result<(), StoreError>;

    /// Trims the journal, events, quarantine and audit log past their retention.
    async fn trim(&self) -> Result<(), StoreError>;
    /// Trims what delivery no longer needs: finished deliveries, old dead letters.
    async fn trim_deliveries(&self) -> Result<(), StoreError>;

    /// Sizes and backlog of the journal, events and quarantine, for gauges.
    async fn stream_gauges(&self) -> Result<StreamGauges, StoreError>;
    async fn delivery_gauges(&self, now_ms: u64) -> Result<DeliveryGauges, StoreError>;
}

/// Work several instances share: taking over what a stopped one held. Only a backend that
/// several instances use at once has it.
#[async_trait]
pub trait SharedWork: Send + Sync {
    /// Takes over journal entries other consumers have held longer than `min_idle`; returns
    /// how many were taken (they are then read with [`ReadFrom::Pending`]).
    async fn claim_stale_journal(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError>;

    /// Takes or keeps the journal lease for `lease` more: one instance splits the journal at
    /// a time, so that events are stored (and their conversations queued) in the order they
    /// were received. While this handle holds it, its commits of split entries are refused
    /// once another consumer holds it.
    async fn hold_journal_lease(
        &self,
        consumer: &str,
        lease: Duration,
    ) -> Result<JournalLease, StoreError>;

    /// Gives the lease up (when stopping), so another instance takes over at once.
    async fn release_journal_lease(&self, consumer: &str) -> Result<(), StoreError>;

    /// Takes over deliveries other consumers held longer than `min_idle`; returns how many.
    async fn claim_stale_deliveries(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError>;
}

/// Where the journal lease stands for a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalLease {
    /// It held the lease and still does.
    Kept,
    /// It holds the lease from now on: what the previous holder read and did not commit is
    /// to be taken over before anything new.
    Taken,
    /// Another consumer holds it.
    HeldElsewhere,
}

/// What an operator corrects in the event log: a quarantined body put back in the journal
/// (after a fix, or to try again) or deleted, an event deleted. Each is one atomic step with
/// its audit record.
#[async_trait]
pub trait Corrections: Send + Sync {
    /// Moves a quarantined body back into the journal as it was received (source, time,
    /// request id, signature): the normalizer splits it again, and what it already stored is
    /// recognised as Meta's duplicate. The new journal id; `None` when there is no such body.
    async fn requeue_quarantined(
        &self,
        id: &str,
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError>;
    /// Deletes a quarantined body; false when there is none (and nothing is recorded).
    async fn delete_quarantined(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError>;
    /// Deletes an event with its index entries and delivery states, for every instance: a
    /// delivery of it still queued or waiting for a retry finds it gone and is dropped. Its
    /// dedup keys stay, so Meta's resend is still a duplicate. False when there is none.
    async fn delete_event(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError>;
}

/// Page access tokens, kept for the Graph calls on a source's Pages. The token is sealed at
/// rest like endpoint secrets, and every change is written with its audit record.
#[async_trait]
pub trait PageTokens: Send + Sync {
    async fn put_page_token(
        &self,
        token: &PageToken,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn page_token(
        &self,
        source: &str,
        page_id: &str,
    ) -> Result<Option<PageToken>, StoreError>;
    /// Every stored token of `source`, or of every source.
    async fn page_tokens(&self, source: Option<&str>) -> Result<Vec<PageToken>, StoreError>;
    /// False when there was none (and nothing is recorded).
    async fn delete_page_token(
        &self,
        source: &str,
        page_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError>;
}

/// Test suites with their latest runs. A change made through the API is written with its
/// audit record.
#[async_trait]
pub trait TestSuites: Send + Sync {
    /// Creates or replaces the suite (a run is recorded by storing the suite with it).
    async fn put_test_suite(
        &self,
        suite: &TestSuite,
        audit: &AuditRecord,
    ) -> Result<(), StoreError>;
    async fn test_suite(&self, id: &str) -> Result<Option<TestSuite>, StoreError>;
    /// Every suite, oldest first.
    async fn test_suites(&self) -> Result<Vec<TestSuite>, StoreError>;
    /// False when there was none (and nothing is recorded).
    async fn delete_test_suite(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError>;
}

/// Everything hookd keeps, as one handle.
pub trait Backend:
    Journal
    + EventLog
    + Catalogue
    + DeliveryQueue
    + DeliveryLog
    + AuditLog
    + PageTokens
    + TestSuites
    + Corrections
    + Upkeep
    + 'static
{
    /// A handle on the same data for one long-running consumer (a journal writer, the
    /// normalizer, the dispatcher), with resources of its own: its calls neither wait behind
    /// other callers' nor are driven from another thread.
    fn for_consumer(&self) -> Arc<dyn Backend>;

    /// Work shared with other instances; `None` for a backend only one instance uses.
    fn shared_work(&self) -> Option<&dyn SharedWork> {
        None
    }

    /// The journals to split, one normalizer each: one handle per partition (each a consumer
    /// handle as [`Backend::for_consumer`] makes), or just one.
    fn journal_partitions(&self) -> Vec<Arc<dyn Backend>> {
        vec![self.for_consumer()]
    }

    /// Drops from a split entry what another partition stores: a request speaking of accounts
    /// of several partitions is journaled in each, and each keeps its own accounts' events.
    fn keep_own_share(&self, _item: &mut Normalized) {}
}
