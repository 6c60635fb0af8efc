//! hookd: a durable webhook engine for Meta platforms.
//!
//! ```text
//!  Meta ──POST──▶ http::ingress ──▶ IngressWriter ──XADD (group commit)──▶ stream `inbound`
//!                 verify HMAC        batches many requests                 (raw body + headers)
//!                 200 only after     into one pipeline                          │
//!                 Redis acked                                                   │ XREADGROUP
//!                                                                               ▼
//!                      Normalizer: split (simd-json) into events, dedup key per event;
//!                      one atomic step per entry: SET NX dedup keys, XADD `events`, XACK
//!                      unparseable ──▶ `quarantine`          Reclaimer: XAUTOCLAIM stalled
//! ```
//!
//! Module map: [`meta`] (signature, envelope split, dedup keys: plain functions), [`store`]
//! (the only Redis speaker), [`actors`] (mailboxes and timers), [`http`] (routes), [`graph`]
//! (Meta's Graph API, for subscription management),
//! [`startup`] (wiring), [`config`], [`metrics`].

pub mod actors;
pub mod config;
pub mod delivery;
pub mod graph;
pub mod http;
pub mod meta;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod secret_box;
pub mod stage_health;
pub mod startup;
pub mod store;
pub mod suites;
pub mod telemetry;
pub mod time;
