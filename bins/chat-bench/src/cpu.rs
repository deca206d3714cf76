//! CPU time of the processes under test, read from `/proc`, so that each REST figure can also be
//! told as CPU per operation of the server, Redis and the load generator: a measure that moves
//! far less than a rate when the machine is shared.

use serde::Serialize;

/// The processes a REST scenario's CPU is read from: the server (one, or several chatd instances
/// behind the load) and Redis (one server, or every node of a cluster); each side's CPU is summed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pids {
    pub(crate) servers: Vec<u32>,
    pub(crate) redis: Vec<u32>,
}

impl Pids {
    /// One server process on one Redis.
    pub(crate) fn one(server: u32, redis: u32) -> Self {
        Self { servers: vec![server], redis: vec![redis] }
    }
}

/// CPU seconds (user + system, all threads) each process had used at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    server: f64,
    redis: f64,
    bench: f64,
}

impl Sample {
    /// Now, for `pids` and this process; a process whose figures cannot be read counts 0.
    pub(crate) fn now(pids: &Pids) -> Self {
        let read = |pid: &str| seconds(pid).unwrap_or(0.0);
        let sum = |pids: &[u32]| pids.iter().map(|pid| read(&pid.to_string())).sum();
        Self { server: sum(&pids.servers), redis: sum(&pids.redis), bench: read("self") }
    }

    /// What each used from `earlier` to `self`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            server: self.server - earlier.server,
            redis: self.redis - earlier.redis,
            bench: self.bench - earlier.bench,
        }
    }

    /// Adds another stretch's use.
    pub(crate) fn add(&mut self, other: Self) {
        self.server += other.server;
        self.redis += other.redis;
        self.bench += other.bench;
    }

    /// Microseconds per operation, over `operations`.
    pub(crate) fn per_operation(self, operations: u64) -> Option<PerOperation> {
        let micros = |seconds: f64| seconds * 1e6 / operations as f64;
        (operations > 0).then(|| PerOperation {
            server: micros(self.server),
            redis: micros(self.redis),
            bench: micros(self.bench),
        })
    }
}

/// CPU microseconds per operation of the server (chatd or the reference), Redis and chat-bench.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct PerOperation {
    pub(crate) server: f64,
    pub(crate) redis: f64,
    pub(crate) bench: f64,
}

impl PerOperation {
    /// All three together.
    pub(crate) fn total(self) -> f64 {
        self.server + self.redis + self.bench
    }
}

/// User + system CPU seconds of `/proc/<pid>` (all its threads).
fn seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields from the `)` that closes it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / USER_HZ)
}

/// The unit of those ticks: `USER_HZ`, 100 on every Linux architecture whatever the kernel's own
/// tick rate (the kernel converts).
const USER_HZ: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_read_from_proc_and_divided_per_operation() {
        assert!(seconds("self").is_some_and(|own| own >= 0.0), "/proc/self/stat reads");
        assert!(seconds("0").is_none(), "no process 0 in /proc");
        let sample = Sample { server: 2.0, redis: 1.0, bench: 0.5 };
        let per = sample.per_operation(1_000_000).expect("operations");
        assert!((per.server - 2.0).abs() < 1e-9 && (per.redis - 1.0).abs() < 1e-9 && (per.total() - 3.5).abs() < 1e-9);
        assert!(sample.per_operation(0).is_none());
    }
}
