//! What each shard of a Redis Cluster did during a measured stretch, from Redis's own figures:
//! `INFO cpu` (the node's user + system CPU seconds) and `INFO commandstats` (calls and
//! microseconds per command), read on every primary when the stretch starts and when it ends.
//! Divided by the stretch's operations, they say what one send (history page, inbox page,
//! delivery) costs each shard, and so how many of them a shard carries at full CPU.

use std::collections::BTreeMap;
use std::time::Instant;

use redis::aio::MultiplexedConnection;
use serde::Serialize;

/// Commands chat-bench itself sends to the nodes (reading these figures, the SLOWLOG), left out
/// of the rows.
const OWN_COMMANDS: [&str; 4] = ["info", "slowlog|get", "slowlog|reset", "ping"];

/// One node's counters at one moment.
#[derive(Debug, Clone, Default)]
struct Counters {
    cpu_seconds: f64,
    /// Calls and microseconds per command (`evalsha`, `spublish`, `cluster|slots`, …).
    commands: BTreeMap<String, (u64, u64)>,
}

impl Counters {
    /// From the text of `INFO cpu commandstats`.
    fn parse(text: &str) -> Self {
        let mut counters = Self::default();
        for line in text.lines().map(str::trim) {
            let Some((key, value)) = line.split_once(':') else { continue };
            match key {
                "used_cpu_sys" | "used_cpu_user" => counters.cpu_seconds += value.parse::<f64>().unwrap_or(0.0),
                _ => {
                    let Some(command) = key.strip_prefix("cmdstat_") else { continue };
                    let field = |name: &str| {
                        value
                            .split(',')
                            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok())
                    };
                    counters
                        .commands
                        .insert(command.to_owned(), (field("calls").unwrap_or(0), field("usec").unwrap_or(0)));
                }
            }
        }
        counters
    }

    /// What happened from `earlier` to `self` (a command first seen now counts from 0).
    fn since(&self, earlier: &Self) -> Self {
        let commands = self
            .commands
            .iter()
            .filter_map(|(name, (calls, usec))| {
                let (calls_before, usec_before) = earlier.commands.get(name).copied().unwrap_or_default();
                let calls = calls.saturating_sub(calls_before);
                (calls > 0).then(|| (name.clone(), (calls, usec.saturating_sub(usec_before))))
            })
            .collect();
        Self { cpu_seconds: (self.cpu_seconds - earlier.cpu_seconds).max(0.0), commands }
    }

    fn add(&mut self, other: &Self) {
        self.cpu_seconds += other.cpu_seconds;
        for (name, (calls, usec)) in &other.commands {
            let entry = self.commands.entry(name.clone()).or_default();
            entry.0 += calls;
            entry.1 += usec;
        }
    }
}

/// Connections to every primary of the cluster, for reading their figures.
pub(crate) struct Shards {
    nodes: Vec<(u16, MultiplexedConnection)>,
    started: Option<(Instant, Vec<Counters>)>,
}

impl Shards {
    /// Connects to the primaries on `ports`.
    pub(crate) async fn connect(ports: &[u16]) -> Result<Self, String> {
        let mut nodes = Vec::new();
        for port in ports {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
            nodes.push((*port, client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?));
        }
        Ok(Self { nodes, started: None })
    }

    async fn read(&mut self) -> Result<Vec<Counters>, String> {
        let mut all = Vec::with_capacity(self.nodes.len());
        for (port, connection) in &mut self.nodes {
            let text: String = redis::cmd("INFO")
                .arg("cpu")
                .arg("commandstats")
                .query_async(connection)
                .await
                .map_err(|e| format!("INFO on the node on {port}: {e}"))?;
            all.push(Counters::parse(&text));
        }
        Ok(all)
    }

    /// Starts a stretch.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        let counters = self.read().await?;
        self.started = Some((Instant::now(), counters));
        Ok(())
    }

    /// Ends the stretch started last: what each primary did meanwhile.
    pub(crate) async fn stop(&mut self) -> Result<Usage, String> {
        let after = self.read().await?;
        let (at, before) = self.started.take().ok_or("a stretch of the shards' figures ended before it started")?;
        let seconds = at.elapsed().as_secs_f64();
        let nodes = after.iter().zip(&before).map(|(after, before)| after.since(before)).collect();
        Ok(Usage { seconds, ports: self.nodes.iter().map(|(port, _)| *port).collect(), nodes })
    }
}

/// What every primary did over one or more stretches.
#[derive(Debug, Clone, Default)]
pub(crate) struct Usage {
    seconds: f64,
    ports: Vec<u16>,
    nodes: Vec<Counters>,
}

impl Usage {
    /// Adds a later stretch on the same primaries.
    pub(crate) fn add(&mut self, other: &Self) {
        if self.nodes.is_empty() {
            *self = other.clone();
            return;
        }
        self.seconds += other.seconds;
        for (mine, theirs) in self.nodes.iter_mut().zip(&other.nodes) {
            mine.add(theirs);
        }
    }

    /// The calls of `command` on every primary together.
    pub(crate) fn calls(&self, command: &str) -> Vec<u64> {
        self.nodes.iter().map(|node| node.commands.get(command).map_or(0, |(calls, _)| *calls)).collect()
    }

    /// One row per primary, its figures divided by the stretches' `operations`.
    pub(crate) fn rows(&self, operations: u64) -> Vec<ShardRow> {
        let per = |value: f64| if operations == 0 { 0.0 } else { value / operations as f64 };
        self.nodes
            .iter()
            .zip(&self.ports)
            .enumerate()
            .map(|(index, (node, port))| {
                let cpu_micros_per_operation = per(node.cpu_seconds * 1e6);
                let mut commands: Vec<CommandUse> = node
                    .commands
                    .iter()
                    .filter(|(name, _)| !OWN_COMMANDS.contains(&name.as_str()))
                    .map(|(name, (calls, usec))| CommandUse {
                        name: name.clone(),
                        calls: *calls,
                        calls_per_operation: per(*calls as f64),
                        usec_per_call: *usec as f64 / (*calls).max(1) as f64,
                    })
                    .collect();
                commands
                    .sort_by(|a, b| (b.calls as f64 * b.usec_per_call).total_cmp(&(a.calls as f64 * a.usec_per_call)));
                ShardRow {
                    shard: index + 1,
                    port: *port,
                    seconds: self.seconds,
                    cpu_seconds: node.cpu_seconds,
                    cpu_share: if self.seconds > 0.0 { node.cpu_seconds / self.seconds } else { 0.0 },
                    cpu_micros_per_operation,
                    per_second_at_full_cpu: (cpu_micros_per_operation > 0.0).then(|| 1e6 / cpu_micros_per_operation),
                    commands,
                }
            })
            .collect()
    }
}

/// One primary's share of a scenario.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShardRow {
    /// 1 to the number of primaries, in slot order.
    pub(crate) shard: usize,
    pub(crate) port: u16,
    /// The measured time, and the CPU the node used in it (`INFO cpu`: user + system, all its
    /// threads).
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    /// `cpu_seconds / seconds`: 1.0 is one core busy all the time.
    pub(crate) cpu_share: f64,
    /// The node's CPU per operation of the scenario (every operation, whichever shard it reached).
    pub(crate) cpu_micros_per_operation: f64,
    /// The scenario's rate at which this node's CPU would be full (the same mix of keys), i.e.
    /// `1e6 / cpu_micros_per_operation`; the lowest over the shards bounds the cluster's rate.
    pub(crate) per_second_at_full_cpu: Option<f64>,
    /// Every command the node ran (chat-bench's own left out), most time first. Commands a script
    /// runs are counted both in the script's (`evalsha`) time and on their own.
    pub(crate) commands: Vec<CommandUse>,
}

/// One command on one node over a scenario (`INFO commandstats`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CommandUse {
    pub(crate) name: String,
    pub(crate) calls: u64,
    pub(crate) calls_per_operation: f64,
    pub(crate) usec_per_call: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.000000\r\nused_cpu_sys_children:0.0\r\n\r\n\
        # Commandstats\r\ncmdstat_evalsha:calls=100,usec=1000,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n";
    const AFTER: &str = "# CPU\r\nused_cpu_sys:2.000000\r\nused_cpu_user:3.500000\r\n\r\n# Commandstats\r\n\
        cmdstat_evalsha:calls=1100,usec=31000,usec_per_call=28.18,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_spublish:calls=500,usec=1500,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_cluster|slots:calls=2,usec=40,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=4,usec=120,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn a_shards_cpu_and_commands_are_divided_per_operation() {
        let (before, after) = (Counters::parse(BEFORE), Counters::parse(AFTER));
        assert!((before.cpu_seconds - 3.5).abs() < 1e-9);
        let delta = after.since(&before);
        assert!((delta.cpu_seconds - 2.0).abs() < 1e-9);
        assert_eq!(delta.commands.get("evalsha"), Some(&(1000, 30_000)));
        assert_eq!(delta.commands.get("spublish"), Some(&(500, 1_500)));
        let usage = Usage { seconds: 4.0, ports: vec![7000], nodes: vec![delta] };
        let mut twice = Usage::default();
        twice.add(&usage);
        twice.add(&usage);
        assert_eq!(twice.calls("evalsha"), [2000]);
        let rows = twice.rows(2000);
        let row = &rows[0];
        assert_eq!((row.shard, row.port), (1, 7000));
        assert!((row.cpu_share - 0.5).abs() < 1e-9, "{row:?}");
        assert!((row.cpu_micros_per_operation - 2000.0).abs() < 1e-9, "{row:?}");
        assert!(row.per_second_at_full_cpu.is_some_and(|rate| (rate - 500.0).abs() < 1e-9));
        let names: Vec<&str> = row.commands.iter().map(|command| command.name.as_str()).collect();
        assert_eq!(names, ["evalsha", "spublish", "cluster|slots"], "most time first, chat-bench's INFO left out");
        assert!(
            (row.commands[0].usec_per_call - 30.0).abs() < 1e-9
                && (row.commands[0].calls_per_operation - 1.0).abs() < 1e-9
        );
    }
}
