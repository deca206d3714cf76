//! Redis's own ceiling on this machine, measured in the same run: `redis-benchmark -q -c 32 -t set`
//! against the same redis-server. A chatd send is one Redis round trip, so this bounds it.

use std::process::Command;

/// Requests per second that `redis-benchmark` reaches.
pub(crate) fn measure(redis_port: u16) -> Result<f64, String> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &redis_port.to_string(), "-q", "-c", "32", "-n", "200000", "-t", "set"])
        .output()
        .map_err(|e| format!("cannot run redis-benchmark (part of redis-tools): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "SET: 71428.57 requests per second, p50=0.239 msec"; -q may print progress with \r first.
    text.rsplit(['\r', '\n'])
        .filter_map(|line| line.strip_prefix("SET: "))
        .find_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .ok_or_else(|| format!("unexpected redis-benchmark output: {text}"))
}
