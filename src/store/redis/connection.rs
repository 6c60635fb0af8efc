//! One Redis server or a Redis Cluster, behind one connection type: the rest of the backend
//! sends its commands, pipelines and scripts through [`Conn`] without knowing which.
//!
//! On a cluster every pipeline and script must touch keys of one slot; the key layout
//! ([`super::keys`]) puts all of hookd's keys under one hash tag there.

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, Slot, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::store::StoreError;

/// A multiplexed connection that reconnects by itself: to one server, or to every master of
/// a cluster, following its slots as they move.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// How many replicas acknowledged this connection's writes so far on the node holding
    /// `key`, waiting up to `timeout` for `replicas` of them (Redis `WAIT`).
    pub(super) async fn wait_for_replicas(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: std::time::Duration,
    ) -> Result<u32, StoreError> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        let acked: u32 = match self {
            Conn::Single(c) => wait.query_async(c).await?,
            Conn::Cluster(c) => {
                // Left to itself the cluster client would ask every master; only the one
                // that took the writes knows about them.
                let node = Route::with_slot(Slot::for_key(key), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node));
                redis::from_redis_value(c.route_command(wait, routing).await?)
                    .map_err(|e| StoreError::Protocol(format!("WAIT: {e}")))?
            }
        };
        Ok(acked)
    }
}

/// Makes connections, each lazily: nothing is dialled until its first command.
#[derive(Clone)]
pub(crate) enum Connector {
    Single {
        client: redis::Client,
        config: ConnectionManagerConfig,
    },
    Cluster {
        client: ClusterClient,
        config: ClusterConfig,
    },
}

impl Connector {
    pub(super) fn connect(&self) -> Result<Conn, StoreError> {
        Ok(match self {
            Connector::Single { client, config } => Conn::Single(
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?,
            ),
            Connector::Cluster { client, config } => {
                Conn::Cluster(client.get_pending_async_connection_with_config(config.clone()))
            }
        })
    }
}
