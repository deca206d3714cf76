//! The slowest Redis call of a scenario, from Redis's own SLOWLOG: one long script or command
//! stalls every client of that Redis, so a benchmark shows it beside the latencies it causes.

use redis::{Value, aio::MultiplexedConnection};
use serde::Serialize;

/// Calls at least this long are logged (`slowlog-log-slower-than`, µs), set when chat-bench starts
/// its Redis.
pub(crate) const THRESHOLD_MICROS: u64 = 1_000;
/// Entries Redis keeps (`slowlog-max-len`): enough for a scenario of many slow calls.
pub(crate) const MAX_ENTRIES: u64 = 10_000;

/// What a scenario's SLOWLOG showed: the longest call of at least `threshold_micros`, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Reading {
    pub(crate) threshold_micros: u64,
    pub(crate) slowest: Option<Slowest>,
}

impl Reading {
    pub(crate) fn new(slowest: Option<Slowest>) -> Self {
        Self { threshold_micros: THRESHOLD_MICROS, slowest }
    }
}

impl std::fmt::Display for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.slowest {
            Some(slowest) => write!(f, "{:.2} ms {}", slowest.micros as f64 / 1000.0, slowest.command),
            None => write!(f, "< {} ms", self.threshold_micros as f64 / 1000.0),
        }
    }
}

/// The longest call Redis logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Slowest {
    pub(crate) micros: u64,
    /// The command (`EVALSHA`, `ZADD`, …) and, for a script, its number of keys.
    pub(crate) command: String,
}

impl Slowest {
    /// The longer of two.
    pub(crate) fn max(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.micros > a.micros { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// Connections to the benchmark's Redis (or to every node of its cluster) for reading the SLOWLOG.
pub(crate) struct SlowLog(Vec<MultiplexedConnection>);

impl SlowLog {
    /// Connects to the Redis servers on `ports`: the one server, or every node of a cluster.
    pub(crate) async fn connect(ports: &[u16]) -> Result<Self, String> {
        let mut connections = Vec::with_capacity(ports.len());
        for port in ports {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
            connections.push(client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?);
        }
        Ok(Self(connections))
    }

    /// Forgets what was logged so far.
    pub(crate) async fn reset(&mut self) -> Result<(), String> {
        for connection in &mut self.0 {
            redis::cmd("SLOWLOG").arg("RESET").query_async::<()>(connection).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The longest call logged since the last reset, on any of the servers (none: every call took
    /// under [`THRESHOLD_MICROS`]).
    pub(crate) async fn slowest(&mut self) -> Result<Option<Slowest>, String> {
        let mut slowest = None;
        for connection in &mut self.0 {
            let entries: Value = redis::cmd("SLOWLOG")
                .arg("GET")
                .arg(MAX_ENTRIES)
                .query_async(connection)
                .await
                .map_err(|e| e.to_string())?;
            slowest = Slowest::max(slowest, longest(&entries));
        }
        Ok(slowest)
    }
}

/// The longest of SLOWLOG GET's entries: `[id, time, duration µs, [argument, …], client, name]`.
fn longest(entries: &Value) -> Option<Slowest> {
    let Value::Array(entries) = entries else { return None };
    entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(fields) = entry else { return None };
            let Value::Int(micros) = fields.get(2)? else { return None };
            let Value::Array(arguments) = fields.get(3)? else { return None };
            let text = |value: Option<&Value>| match value {
                Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
                _ => String::new(),
            };
            let mut command = text(arguments.first()).to_uppercase();
            if command == "EVALSHA" || command == "EVAL" {
                command = format!("{command} ({} keys)", text(arguments.get(2)));
            }
            Some(Slowest { micros: u64::try_from(*micros).ok()?, command })
        })
        .max_by_key(|slowest| slowest.micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn the_longest_entry_is_named_with_its_command_and_a_scripts_keys() {
        let entry = |micros: i64, arguments: Vec<Value>| {
            Value::Array(vec![Value::Int(1), Value::Int(1_700_000_000), Value::Int(micros), Value::Array(arguments)])
        };
        let log = Value::Array(vec![
            entry(1_500, vec![bulk("zadd"), bulk("k"), bulk("1"), bulk("m")]),
            entry(92_000, vec![bulk("evalsha"), bulk("abc"), bulk("20001"), bulk("k1")]),
            entry(3_000, vec![bulk("XADD")]),
        ]);
        assert_eq!(longest(&log), Some(Slowest { micros: 92_000, command: "EVALSHA (20001 keys)".into() }));
        assert_eq!(longest(&Value::Array(vec![])), None);
        let (short, long) =
            (Slowest { micros: 5, command: "GET".into() }, Slowest { micros: 9, command: "SET".into() });
        assert_eq!(Slowest::max(Some(short.clone()), Some(long.clone())), Some(long.clone()));
        assert_eq!(Slowest::max(None, Some(short.clone())), Some(short));
        assert_eq!(Slowest::max(None, None), None);
        assert_eq!(Reading::new(None).to_string(), "< 1 ms");
        assert_eq!(Reading::new(Some(Slowest { micros: 92_350, command: "ZADD".into() })).to_string(), "92.35 ms ZADD");
    }
}
