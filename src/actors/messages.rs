//! Every message the actors exchange.

use actix::Message;
use tokio::sync::oneshot;

use crate::store::JournalEntry;

/// A verified webhook request to journal. Sent with `try_send` (a full queue is answered 503 at
/// once), so the reply travels on its own channel: the journal id once Redis has the entry.
pub struct Journal {
    pub entry: JournalEntry,
    pub reply: oneshot::Sender<Result<String, JournalError>>,
}

impl Message for Journal {
    type Result = ();
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("the journal queue is full")]
    Overloaded,
    #[error("the journal could not be written: {0}")]
    Unavailable(String),
}

/// Makes the `Normalizer` (or the `Dispatcher`) read its pending entries again: a crash left
/// some, or the `Reclaimer` just took some over.
pub struct ReadPending;

impl Message for ReadPending {
    type Result = ();
}

/// Asks the `Normalizer` to finish its current batch and stop (shutdown).
pub struct Drain;

impl Message for Drain {
    type Result = ();
}

/// The `Normalizer`'s own loop: read a batch, split it, commit it.
pub(crate) struct Poll;

impl Message for Poll {
    type Result = ();
}

/// A timer tick of the `Reclaimer` and the `Housekeeper`.
pub(crate) struct Tick;

impl Message for Tick {
    type Result = ();
}

/// Makes the `Router` reload the endpoint table now; answered once the new table is in use.
pub struct RefreshRoutes;

impl Message for RefreshRoutes {
    type Result = Result<(), crate::store::StoreError>;
}

/// Makes the `Dispatcher` finish its attempts in flight and stop (shutdown).
pub struct DrainDeliveries;

impl Message for DrainDeliveries {
    type Result = ();
}
