//! Meta's side of the wire: signatures, the webhook envelope, and what one event is.
//! Plain functions only; no actors, no Redis.

mod canonical;
pub mod catalogue;
mod changes;
pub mod conversation;
pub mod envelope;
pub mod event;
mod identity;
mod messaging;
pub mod signature;
mod whatsapp;

pub use envelope::{Split, SplitError, split};
pub use event::{DedupKey, Event, Platform, type_label};
pub use signature::SignatureError;
