//! Integration tests: hookd against real redis-servers started per test.

mod api;
mod api_input;
mod chaos;
mod contract;
mod dedup;
mod delivery;
mod delivery_chaos;
mod engine;
mod fixtures;
mod helpers;
mod ingress;
mod ingress_bounds;
mod observability;
mod receiver;
mod redis_tls;
mod routes;
mod storage_loss;
mod tenancy;
