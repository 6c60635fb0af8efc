//! Delivery: everything between a stored event and a subscriber's endpoint, as plain functions
//! the actors call — endpoint rules, routing, Standard Webhooks signing, the retry schedule,
//! the outbound HTTP client and its SSRF guard, statistics.

pub mod client;
pub mod endpoint;
pub mod outcome;
pub mod payload;
pub mod raw_view;
pub mod request;
pub mod routes;
pub mod schedule;
pub mod signing;
pub mod ssrf;
pub mod stats;
pub mod throughput;

use std::time::Duration;

/// The longest timeout an endpoint may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Response bodies are kept in attempt logs up to this many bytes.
pub const RESPONSE_KEEP_BYTES: usize = 4096;
