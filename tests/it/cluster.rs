//! A Redis Cluster of the test's own: redis-servers in cluster mode on free ports, joined by
//! `redis-cli --cluster create`, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

pub struct RedisCluster {
    nodes: Vec<Node>,
}

struct Node {
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Node {
    /// On free ports; again on others when another process took one first.
    fn start() -> Node {
        for _ in 0..5 {
            if let Some(node) = Node::try_start() {
                return node;
            }
        }
        panic!("no redis-server cluster node would start");
    }

    fn try_start() -> Option<Node> {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        // The cluster bus gets a port of its own: port + 10000 may be taken or out of range.
        let bus = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            // Short, so that a test's failover happens within seconds.
            .args(["--cluster-node-timeout", "1000"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it: apt-get install redis-server")
            });
        let mut node = Node {
            port,
            child: Some(child),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = node.connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return Some(node);
            }
            let exited = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        node.kill();
        None
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://{}", self.address()))?.get_connection()
    }

    fn wait_for(&self, ready: impl Fn(&mut redis::Connection) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut c) = self.connection()
                && ready(&mut c)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("cluster node {} did not {what}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl RedisCluster {
    /// `masters` masters, each with `replicas` replicas.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        let nodes: Vec<Node> = (0..masters * (1 + replicas))
            .map(|_| Node::start())
            .collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(nodes.iter().map(Node::address))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli (from the redis-server package, or redis-tools)");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes };
        for node in &cluster.nodes {
            node.wait_for(
                |c| {
                    redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query::<String>(c)
                        .is_ok_and(|info| info.contains("cluster_state:ok"))
                },
                "see the cluster ready",
            );
        }
        cluster
    }

    /// Seed nodes as `redis.url` takes them with `redis.cluster = true`.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://{}", n.address()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A connection that follows the cluster's slots.
    pub fn client(&self) -> redis::cluster::ClusterClient {
        redis::cluster::ClusterClient::new(
            self.nodes
                .iter()
                .map(|n| format!("redis://{}", n.address()))
                .collect::<Vec<_>>(),
        )
        .expect("cluster client")
    }

    /// The port of the master serving `key`'s slot, as a live node sees it.
    pub fn master_of(&self, key: &str) -> u16 {
        let mut conn = self.client().get_connection().expect("cluster connection");
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .expect("CLUSTER KEYSLOT");
        // Each entry: start, end, then the master (host, port, id), then its replicas.
        type SlotRange = (u16, u16, (String, u16, String));
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut conn)
            .expect("CLUSTER SLOTS");
        for range in ranges {
            let redis::Value::Array(items) = range else {
                continue;
            };
            let head = redis::Value::Array(items.into_iter().take(3).collect());
            let (start, end, (_, port, _)): SlotRange =
                redis::from_redis_value(head).expect("slot range");
            if (start..=end).contains(&slot) {
                return port;
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// Kills (SIGKILL) the node on `port`; its replica is promoted after the node timeout.
    pub fn kill_node(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        node.kill();
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
