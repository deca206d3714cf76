//! A private Redis Cluster for this test binary — three primaries with a replica each, on free
//! ports of the loopback, with a short `cluster-node-timeout` so that a failover takes about a
//! second — started on first use the way `redis_server.rs` starts its server (each node dies with
//! the test process), and made with `redis-cli --cluster create`.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::redis_server;

/// Nodes: three primaries, each with one replica.
const NODES: usize = 6;

/// The running cluster.
pub struct RedisCluster {
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// The shared cluster of this test binary, made on first use.
    pub fn shared() -> &'static RedisCluster {
        static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
        CLUSTER.get_or_init(RedisCluster::start)
    }

    /// A cluster of its own, for a test that breaks it (kills a node); its nodes live as long as
    /// the test process.
    pub fn private() -> RedisCluster {
        RedisCluster::start()
    }

    /// Kills the node on `port` with SIGKILL, as a crash of its host would.
    pub fn kill(&self, port: u16) {
        let info: String = redis::cmd("INFO").arg("server").query(&mut self.node(port)).expect("INFO");
        let pid: i32 = info
            .lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
            .expect("the node's process id");
        #[allow(unsafe_code)]
        // SAFETY: kill(2) with a pid and a signal number touches no memory.
        let killed = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(killed, 0, "the node on {port} is killed");
    }

    /// A connection to some node that is up.
    fn answering(&self) -> redis::Connection {
        self.ports
            .iter()
            .find_map(|port| {
                redis::Client::open(format!("redis://127.0.0.1:{port}")).and_then(|client| client.get_connection()).ok()
            })
            .expect("some node answers")
    }

    /// Starts the node on `port` again after [`Self::kill`]: it rejoins the cluster (as a replica,
    /// once its replica was promoted in its place), and is back when it answers.
    pub fn revive(&self, port: u16) {
        redis_server::spawn(node_args(self._dir.path(), port));
        wait_for(&format!("node {port} to rejoin"), || {
            redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|client| client.get_connection())
                .and_then(|mut connection| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut connection))
                .is_ok_and(|info| info.contains("cluster_state:ok"))
        });
    }

    /// Adds an empty primary (a new shard, holding no slot yet) and returns its port.
    pub fn add_primary(&self) -> u16 {
        let port = free_ports(1)[0];
        std::fs::create_dir(self._dir.path().join(port.to_string())).expect("a folder for the node");
        redis_server::spawn(node_args(self._dir.path(), port));
        wait_for(&format!("node {port} to answer"), || self.answers(port));
        let added = Command::new("redis-cli")
            .args([
                "--cluster",
                "add-node",
                &format!("127.0.0.1:{port}"),
                &format!("127.0.0.1:{}", self.primaries()[0]),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(added.success(), "redis-cli --cluster add-node failed");
        let address = format!("127.0.0.1:{port}@");
        wait_for(&format!("every node to know node {port}"), || {
            self.ports.iter().all(|known| {
                let nodes: String =
                    redis::cmd("CLUSTER").arg("NODES").query(&mut self.node(*known)).unwrap_or_default();
                nodes.contains(&address)
            })
        });
        wait_for(&format!("node {port} to see the cluster ok"), || {
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut self.node(port)).unwrap_or_default();
            info.contains("cluster_state:ok")
        });
        port
    }

    /// Moves `slot`, keys and all, to the primary on `to` — what `redis-cli --cluster reshard`
    /// does slot by slot: importing/migrating marks, `MIGRATE` of every key, then the new owner.
    pub fn move_slot(&self, slot: u16, to: u16) {
        let from = self.owner(slot);
        let id =
            |port: u16| -> String { redis::cmd("CLUSTER").arg("MYID").query(&mut self.node(port)).expect("an id") };
        let (from_id, to_id) = (id(from), id(to));
        let setslot = |port: u16, how: &str, node: &str| {
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(how)
                .arg(node)
                .query::<()>(&mut self.node(port))
                .expect("CLUSTER SETSLOT");
        };
        setslot(to, "IMPORTING", &from_id);
        setslot(from, "MIGRATING", &to_id);
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query(&mut self.node(from))
                .expect("keys");
            if keys.is_empty() {
                break;
            }
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query::<()>(&mut self.node(from))
                .expect("MIGRATE");
        }
        // The new owner first, then the old one; the others learn it by gossip.
        setslot(to, "NODE", &to_id);
        setslot(from, "NODE", &to_id);
        wait_for(&format!("slot {slot} to be served by {to}"), || self.owner(slot) == to);
    }

    fn answers(&self, port: u16) -> bool {
        redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .and_then(|client| client.get_connection())
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
            .is_ok()
    }

    /// The nodes' URLs, as chatd's `redis.cluster` takes them.
    pub fn seeds(&self) -> Vec<String> {
        self.ports.iter().map(|port| format!("redis://127.0.0.1:{port}")).collect()
    }

    /// A connection to the node on `port`.
    pub fn node(&self, port: u16) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .and_then(|client| client.get_connection())
            .expect("a cluster node answers")
    }

    /// The slot of `key` (or of a channel name), as Redis computes it.
    pub fn slot(&self, key: &str) -> u16 {
        redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut self.answering()).expect("a slot")
    }

    /// The port of the primary that serves `slot` now (asking a node that is up).
    pub fn owner(&self, slot: u16) -> u16 {
        let ranges: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut self.answering())
            .expect("the slot map")
            .into_iter()
            .map(|range| {
                let redis::Value::Array(parts) = range else { panic!("a slot range: {range:?}") };
                let number = |value: &redis::Value| redis::from_redis_value::<u16>(value.clone()).expect("a number");
                let redis::Value::Array(primary) = &parts[2] else { panic!("a primary: {parts:?}") };
                let host = redis::from_redis_value::<String>(primary[0].clone()).expect("a host");
                (number(&parts[0]), number(&parts[1]), (host, number(&primary[1])))
            })
            .collect();
        ranges
            .into_iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, (_, port))| port)
            .expect("every slot is served")
    }

    /// The ports of the primaries.
    pub fn primaries(&self) -> Vec<u16> {
        self.ports
            .iter()
            .copied()
            .filter(|port| {
                let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut self.node(*port)).expect("a role");
                redis::from_redis_value::<String>(role[0].clone()).is_ok_and(|role| role == "master")
            })
            .collect()
    }

    fn start() -> RedisCluster {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let ports = free_ports(NODES);
        for port in &ports {
            std::fs::create_dir(dir.path().join(port.to_string())).expect("a folder per node");
            redis_server::spawn(node_args(dir.path(), *port));
        }
        let cluster = RedisCluster { ports, _dir: dir };
        for port in &cluster.ports {
            wait_for(&format!("node {port} to answer"), || {
                redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .and_then(|client| client.get_connection())
                    .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection))
                    .is_ok()
            });
        }
        let nodes: Vec<String> = cluster.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs (Debian's redis-tools, which redis-server depends on)");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in &cluster.ports {
            wait_for(&format!("node {port} to see the cluster ok"), || {
                let info: String =
                    redis::cmd("CLUSTER").arg("INFO").query(&mut cluster.node(*port)).unwrap_or_default();
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
        }
        cluster
    }
}

/// How a node of a cluster in `dir` is started on `port` (its `nodes.conf` in a folder of its own,
/// so that a node started again rejoins as it was).
fn node_args(dir: &std::path::Path, port: u16) -> Vec<String> {
    let node_dir = dir.join(port.to_string());
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "1000",
        "--dir",
        &node_dir.display().to_string(),
    ]
    .map(String::from)
    .into()
}

/// `count` distinct ports of the loopback that are free, each with its cluster bus port (10,000
/// above it) free too.
fn free_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::new();
    while ports.len() < count {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("an address").port();
        let bus_free = port <= u16::MAX - 10_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
        if bus_free && !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// Waits (polling, at most 30 s) until `ready`.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
