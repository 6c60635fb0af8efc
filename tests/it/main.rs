//! Integration tests on the Redis backend: hookd against real redis-servers started per
//! test. The backend-neutral modules run again on the embedded backend in `tests/embedded`;
//! the storage contract runs on both from here.

/// The backend [`helpers::Storage`] starts for backend-neutral tests.
pub const BACKEND: hookd::config::StorageBackend = hookd::config::StorageBackend::Redis;

mod api;
mod api_docs;
mod api_input;
mod api_limits;
mod audit;
mod audit_atomicity;
mod chaos;
mod cluster;
mod cluster_instances;
mod contract;
mod dedup;
mod delivery;
mod delivery_chaos;
mod deploy;
mod engine;
mod fairness;
mod fake_graph;
mod fixtures;
mod graph;
mod helpers;
mod https;
mod identity;
mod ingress;
mod ingress_bounds;
mod lanes_contract;
mod load;
mod observability;
mod ordering;
mod ordering_contract;
mod ordering_instances;
mod partitioned_app;
mod partitions_contract;
mod process;
mod receiver;
mod redis_gauges;
mod redis_tls;
mod routes;
mod secrets_at_rest;
mod secrets_migration;
mod storage_loss;
mod stream;
mod tenancy;
mod test_suites;
