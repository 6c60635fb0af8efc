//! Storage: the only part of hookd that speaks Redis.
//!
//! [`Store`] is the small interface the engine and the API use; [`RedisStore`] implements it
//! on Redis Streams. A second, embedded backend can implement the same trait.

mod keys;
mod redis_checks;
mod redis_reply;
mod redis_store;
mod types;

pub use keys::{Keys, NORMALIZER_GROUP};
pub use redis_reply::is_stream_id;
pub use redis_store::RedisStore;
pub use types::*;

use async_trait::async_trait;
use std::time::Duration;

/// Why a storage call failed. Every variant means "not done": callers answer 503 or retry.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected storage reply: {0}")]
    Protocol(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A handle on the same data with a connection of its own, for a hot path that should
    /// neither wait behind other callers' commands nor be driven from another thread.
    fn dedicated(&self) -> std::sync::Arc<dyn Store>;

    /// Round trip to the backend.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Things an operator should fix in the backend's configuration (persistence, eviction,
    /// version). Empty when all is well.
    async fn production_warnings(&self) -> Result<Vec<String>, StoreError>;

    /// Creates consumer groups; idempotent.
    async fn prepare(&self) -> Result<(), StoreError>;

    /// Journals a batch of requests in one atomic write: all are durable, or none is.
    /// Returns each entry's journal id, in order.
    async fn append_journal(&self, batch: &[JournalEntry]) -> Result<Vec<String>, StoreError>;

    /// Reads journal entries for `consumer`: new ones, or those it holds unacknowledged.
    async fn read_journal(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalRecord>, StoreError>;

    /// Takes over journal entries other consumers have held longer than `min_idle`; returns
    /// how many were taken (they are then read with [`ReadFrom::Pending`]).
    async fn claim_stale_journal(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError>;

    /// Stores the outcome of splitting journal entries, each atomically with its
    /// acknowledgement.
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

    /// Trims streams past their retention.
    async fn trim(&self) -> Result<(), StoreError>;

    /// Lengths and backlog of the streams, for gauges.
    async fn stream_gauges(&self) -> Result<StreamGauges, StoreError>;
}
