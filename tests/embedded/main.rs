//! Integration tests on the embedded backend: every backend-neutral module of `tests/it`,
//! each test with a data directory of its own, and what only the embedded backend promises.

/// The backend [`helpers::Storage`] starts for backend-neutral tests.
pub const BACKEND: hookd::config::StorageBackend = hookd::config::StorageBackend::Embedded;

#[path = "../it/api.rs"]
mod api;
#[path = "../it/api_input.rs"]
mod api_input;
#[path = "../it/audit.rs"]
mod audit;
mod browser;
mod dashboard;
#[path = "../it/dedup.rs"]
mod dedup;
#[path = "../it/delivery.rs"]
mod delivery;
mod durability;
#[path = "../it/fairness.rs"]
mod fairness;
#[path = "../it/fake_graph.rs"]
mod fake_graph;
#[path = "../it/fixtures.rs"]
mod fixtures;
#[path = "../it/graph.rs"]
mod graph;
// The harness is shared with tests/it, which uses parts this binary does not.
#[allow(dead_code)]
#[path = "../it/helpers.rs"]
mod helpers;
#[path = "../it/identity.rs"]
mod identity;
#[path = "../it/ingress.rs"]
mod ingress;
#[path = "../it/ingress_bounds.rs"]
mod ingress_bounds;
#[allow(dead_code)]
#[path = "../it/load.rs"]
mod load;
#[path = "../it/observability.rs"]
mod observability;
#[path = "../it/ordering.rs"]
mod ordering;
#[path = "../it/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../it/receiver.rs"]
mod receiver;
#[path = "../it/routes.rs"]
mod routes;
#[path = "../it/secrets_at_rest.rs"]
mod secrets_at_rest;
#[path = "../it/stream.rs"]
mod stream;
#[path = "../it/tenancy.rs"]
mod tenancy;
#[path = "../it/test_suites.rs"]
mod test_suites;
