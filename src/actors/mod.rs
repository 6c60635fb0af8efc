//! The engine's actors. Each owns a mailbox, a timer or a connection and calls plain functions
//! for its logic. Every mailbox is bounded; hot paths use `try_send`.

pub mod engine;
pub mod housekeeper;
pub mod ingress_writer;
pub mod messages;
pub mod normalizer;
pub mod reclaimer;

pub use engine::Engine;
