//! A private Redis Cluster for `--cluster`: `shards` primaries (each with `replicas` replicas, none
//! by default, to leave the CPU to the primaries) on free ports of the loopback, persisting
//! nothing, stopped again whatever happens. The slots are split evenly between the primaries by
//! hand (`CLUSTER ADDSLOTSRANGE`, `CLUSTER MEET`, `CLUSTER REPLICATE`) rather than by
//! `redis-cli --cluster create`, which wants three primaries at least: one and two are measured too.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::processes::Owned;

/// Hash slots of every Redis Cluster.
const SLOTS: usize = 16_384;

/// A running cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    nodes: Vec<Owned>,
    /// Ports of the primaries, in slot order (the first serves slot 0).
    pub(crate) primaries: Vec<u16>,
    replicas: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts the nodes and joins them into one cluster with every slot served.
    pub(crate) async fn start(shards: usize, replicas: usize) -> Result<Self, String> {
        if shards == 0 {
            return Err("a cluster needs one primary at least".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let ports = free_ports(shards * (1 + replicas))?;
        let mut nodes = Vec::with_capacity(ports.len());
        for port in &ports {
            let node_dir = dir.path().join(port.to_string());
            std::fs::create_dir(&node_dir).map_err(|e| e.to_string())?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "5000", "--maxclients", "20000", "--loglevel", "warning"])
                .arg("--slowlog-log-slower-than")
                .arg(crate::slowlog::THRESHOLD_MICROS.to_string())
                .arg("--slowlog-max-len")
                .arg(crate::slowlog::MAX_ENTRIES.to_string())
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start redis-server (is it installed?): {e}"))?;
            nodes.push(Owned::listening(child, *port, "a cluster node")?);
        }
        let cluster =
            Self { nodes, primaries: ports[..shards].to_vec(), replicas: ports[shards..].to_vec(), _dir: dir };
        cluster.join(replicas).await?;
        Ok(cluster)
    }

    /// Gives each primary its share of the slots, makes the nodes meet, and the replicas follow
    /// their primaries; returns once every node sees the cluster whole.
    async fn join(&self, replicas: usize) -> Result<(), String> {
        let shards = self.primaries.len();
        for (index, port) in self.primaries.iter().enumerate() {
            let mut node = connect(*port).await?;
            let (first, last) = (index * SLOTS / shards, (index + 1) * SLOTS / shards - 1);
            query(&mut node, redis::cmd("CLUSTER").arg("SET-CONFIG-EPOCH").arg(index + 1)).await?;
            query(&mut node, redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(first).arg(last)).await?;
        }
        let mut first = connect(self.primaries[0]).await?;
        for port in self.primaries.iter().chain(&self.replicas).skip(1) {
            query(&mut first, redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(*port)).await?;
        }
        let total = self.primaries.len() + self.replicas.len();
        self.wait_until_whole(total).await?;
        for (index, replica) in self.replicas.iter().enumerate() {
            let primary = self.primaries[index / replicas.max(1)];
            let id: String = redis::cmd("CLUSTER")
                .arg("MYID")
                .query_async(&mut connect(primary).await?)
                .await
                .map_err(|e| e.to_string())?;
            let mut node = connect(*replica).await?;
            query(&mut node, redis::cmd("CLUSTER").arg("REPLICATE").arg(id)).await?;
            wait_for(&format!("replica {replica} to follow {primary}"), || {
                let mut node = node.clone();
                async move {
                    let info: String =
                        redis::cmd("INFO").arg("replication").query_async(&mut node).await.unwrap_or_default();
                    info.contains("master_link_status:up")
                }
            })
            .await?;
        }
        self.wait_until_whole(total).await
    }

    /// Waits until every node says `cluster_state:ok` and knows `total` nodes.
    async fn wait_until_whole(&self, total: usize) -> Result<(), String> {
        for port in self.primaries.iter().chain(&self.replicas) {
            let node = connect(*port).await?;
            wait_for(&format!("node {port} to see the cluster whole"), || {
                let mut node = node.clone();
                async move {
                    let info: String =
                        redis::cmd("CLUSTER").arg("INFO").query_async(&mut node).await.unwrap_or_default();
                    info.contains("cluster_state:ok")
                        && info.contains(&format!("cluster_slots_ok:{SLOTS}"))
                        && info.contains(&format!("cluster_known_nodes:{total}"))
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Every node's URL, as chatd's `redis.cluster` takes them.
    pub(crate) fn seeds(&self) -> Vec<String> {
        self.primaries.iter().chain(&self.replicas).map(|port| format!("redis://127.0.0.1:{port}")).collect()
    }

    /// Every node's port, primaries first.
    pub(crate) fn ports(&self) -> Vec<u16> {
        self.primaries.iter().chain(&self.replicas).copied().collect()
    }

    /// Every node's process id.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Owned::pid).collect()
    }
}

async fn connect(port: u16) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    client.get_multiplexed_async_connection().await.map_err(|e| format!("the cluster node on {port}: {e}"))
}

async fn query(node: &mut MultiplexedConnection, command: &redis::Cmd) -> Result<(), String> {
    command.query_async::<()>(node).await.map_err(|e| format!("setting up the cluster: {e}"))
}

/// Polls `ready` every 50 ms, for 30 s at most.
async fn wait_for<F: Future<Output = bool>>(what: &str, mut ready: impl FnMut() -> F) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready().await {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// `count` distinct free ports of the loopback, each with its cluster bus port (10,000 above it)
/// free too.
fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    let mut tries = 0;
    while ports.len() < count {
        tries += 1;
        if tries > 1_000 {
            return Err("cannot find free ports for the cluster's nodes".into());
        }
        let port = crate::processes::free_port().map_err(|e| e.to_string())?;
        let bus_free = port <= u16::MAX - 10_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
        if bus_free && !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}
