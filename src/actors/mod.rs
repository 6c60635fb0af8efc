//! The engine's actors. Each owns a mailbox, a timer or a connection and calls plain functions
//! for its logic. Every mailbox is bounded; hot paths use `try_send`.

pub mod dispatcher;
pub mod engine;
pub mod housekeeper;
pub mod ingress_writer;
pub mod messages;
pub mod normalizer;
pub mod reclaimer;
pub mod retry_timer;
pub mod router;

pub use engine::Engine;
