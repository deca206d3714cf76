//! Redis's own ceiling on this machine, measured in the same run: `redis-benchmark -q -c 32 -t set`
//! against the same redis-server. A chatd send is one Redis round trip, so this bounds it.

use std::process::Command;

/// Requests per second that `redis-benchmark` reaches over `requests` SETs.
pub(crate) fn measure(redis_port: u16, requests: u64) -> Result<f64, String> {
    run(redis_port, requests, &[])
}

/// The same against a Redis Cluster of `primaries`, through the primary on `seed_port`
/// (`redis-benchmark --cluster`: each SET goes to the primary of its key's slot). redis-benchmark
/// refuses a cluster of one node; one primary serves every slot, so it is measured directly.
pub(crate) fn measure_cluster(seed_port: u16, primaries: usize, requests: u64) -> Result<f64, String> {
    run(seed_port, requests, if primaries > 1 { &["--cluster"] } else { &[] })
}

fn run(redis_port: u16, requests: u64, extra: &[&str]) -> Result<f64, String> {
    let output = Command::new("redis-benchmark")
        .args(extra)
        .args(["-h", "127.0.0.1", "-p", &redis_port.to_string(), "-q", "-c", "32", "-t", "set"])
        .args(["-n", &requests.to_string()])
        .output()
        .map_err(|e| format!("cannot run redis-benchmark (part of redis-tools): {e}"))?;
    parse(&String::from_utf8_lossy(&output.stdout))
        .map_err(|error| format!("{error}{}", String::from_utf8_lossy(&output.stderr).trim()))
}

/// Reads the rate from `redis-benchmark -q` output: `SET: 71428.57 requests per second, p50=…`,
/// possibly after progress lines ending in `\r`.
fn parse(text: &str) -> Result<f64, String> {
    text.rsplit(['\r', '\n'])
        .filter_map(|line| line.strip_prefix("SET: "))
        .find_map(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .ok_or_else(|| format!("unexpected redis-benchmark output: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_final_rate() {
        let output = "SET: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\rSET: 71428.57 requests per second, p50=0.239 msec\n\n";
        assert_eq!(parse(output), Ok(71428.57));
        assert!(parse("ERROR: connection refused").is_err());
    }
}
