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
    bus: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Node {
    /// On free ports; again on others when another process took one first.
    fn start() -> Node {
        for _ in 0..5 {
            let mut node = Node {
                port: free_port(),
                // The cluster bus gets a port of its own: port + 10000 may be taken.
                bus: free_port(),
                child: None,
                dir: tempfile::tempdir().expect("tempdir"),
            };
            if node.spawn() {
                return node;
            }
        }
        panic!("no redis-server cluster node would start");
    }

    /// Starts the server (again, with the cluster state it saved); whether it answers.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-port", &self.bus.to_string()])
            // Short, so that a test's failover happens within seconds.
            .args(["--cluster-node-timeout", "1000"])
            // As the README advises: the other masters' slots stay served while one fails over.
            .args(["--cluster-require-full-coverage", "no"])
            // A replica's first sync starts at once rather than after 5 s.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); install it: apt-get install redis-server")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = self.connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://{}", self.address()))?.get_connection()
    }

    fn info(&self, section: &str) -> String {
        self.connection()
            .and_then(|mut c| redis::cmd("INFO").arg(section).query::<String>(&mut c))
            .unwrap_or_default()
    }

    fn wait_for(&self, ready: impl Fn(&Node) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ready(self) {
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

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a node sees the cluster serving every slot, and, as a replica, is in sync.
fn ready(node: &Node) -> bool {
    let cluster = node
        .connection()
        .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
        .unwrap_or_default();
    let replication = node.info("replication");
    cluster.contains("cluster_state:ok")
        && (replication.contains("role:master") || replication.contains("master_link_status:up"))
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
            node.wait_for(ready, "see the cluster ready");
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
        // Each entry: start, end, then the master (host, port, id, …), then its replicas.
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut conn)
            .expect("CLUSTER SLOTS");
        for range in ranges {
            let redis::Value::Array(items) = range else {
                continue;
            };
            let (Some(redis::Value::Int(start)), Some(redis::Value::Int(end))) =
                (items.first(), items.get(1))
            else {
                continue;
            };
            let Some(redis::Value::Array(master)) = items.get(2) else {
                continue;
            };
            let Some(redis::Value::Int(port)) = master.get(1) else {
                continue;
            };
            if (*start..=*end).contains(&i64::from(slot)) {
                return u16::try_from(*port).expect("a port");
            }
        }
        panic!("no master serves slot {slot}");
    }

    fn node(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    /// Kills (SIGKILL) the node on `port`; its replica is promoted after the node timeout.
    pub fn kill_node(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// Starts the node on `port` again: a master that failed over comes back as a replica of
    /// the one that replaced it. Returns once it is in sync.
    pub fn restart_node(&mut self, port: u16) {
        let node = self.node(port);
        assert!(node.spawn(), "cluster node {port} restarts");
        node.wait_for(ready, "rejoin the cluster");
    }
}
