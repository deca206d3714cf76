//! chat-bench end to end at toy scale: it starts its own Redis and chatd, runs every scenario, and
//! writes results that hold what it measured (every scenario ran, nothing lost); and a small
//! reconnect storm, after which every socket has every message exactly once.

#![allow(clippy::unwrap_used)]
use std::path::PathBuf;
use std::process::Command;

/// Runs chat-bench with `args` (and a small ceiling measurement) into `out`; returns results.json.
fn bench(args: &[&str], out: &std::path::Path) -> serde_json::Value {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_chat-bench"));
    // `cargo test --workspace` builds chatd into the same folder.
    let chatd = bench.with_file_name("chatd");
    assert!(chatd.exists(), "build chatd first (cargo build -p chatd): {}", chatd.display());
    let status = Command::new(&bench)
        .args(args)
        .args(["--ceiling-requests", "5000", "--chatd"])
        .arg(&chatd)
        .arg("--out")
        .arg(out)
        .status()
        .expect("chat-bench runs");
    assert!(status.success());
    serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json")).expect("JSON")
}

fn scenario_names(results: &serde_json::Value) -> Vec<&str> {
    results["scenarios"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect()
}

#[test]
fn a_small_run_measures_every_scenario() {
    let out = tempfile::tempdir().expect("a temporary folder");
    let results = bench(
        &["--seconds", "1", "--realtime-seconds", "1", "--sockets", "40", "--rate", "64", "--concurrency", "4"],
        out.path(),
    );
    assert!(results["redis_ceiling_per_second"].as_f64().is_some_and(|rate| rate > 0.0));
    let names = scenario_names(&results);
    assert_eq!(
        names,
        [
            "send",
            "history page (10)",
            "inbox page (10)",
            "read (after a send)",
            "realtime same instance",
            "realtime across instances",
            "reference send",
            "reference history page (10)",
            "reference inbox page (10)"
        ]
    );
    for scenario in results["scenarios"].as_array().unwrap() {
        assert!(scenario["operations"].as_u64().is_some_and(|n| n > 0), "{scenario}");
        assert_eq!(scenario["errors"], 0, "{scenario}");
        assert!(scenario["latency"]["p99"].as_f64().is_some_and(|ms| ms > 0.0), "{scenario}");
        // Every REST and realtime row read Redis's SLOWLOG over its measured time.
        assert_eq!(scenario["slowest_redis"]["threshold_micros"], 1000, "{scenario}");
    }
    // REST rows have the CPU each process spent per operation.
    for at in [0, 1, 2, 3, 6, 7, 8] {
        let cpu = &results["scenarios"][at]["cpu"];
        assert!(cpu["server"].as_f64().is_some_and(|us| us > 0.0), "{}", results["scenarios"][at]);
    }
    // Profiles came from the stand-in platform API: history and inbox pages asked it (the first
    // time each profile was needed, at least), and sends need no profile.
    assert_eq!(results["platform"]["latency_ms"], 20);
    let asked = |at: usize| results["scenarios"][at]["platform_requests"].as_u64();
    assert!(asked(1).is_some_and(|n| n > 0) && asked(2).is_some_and(|n| n > 0), "{results:#}");
    assert_eq!(asked(0), Some(0), "sends need no profile");
    // The same-run reference server answered the same three REST scenarios.
    for at in 0..3 {
        let share = results["scenarios"][at]["share_of_reference"].as_f64();
        assert!(share.is_some_and(|share| share > 0.0), "{}", results["scenarios"][at]);
    }
    for realtime in &results["scenarios"].as_array().unwrap()[4..6] {
        assert_eq!((realtime["lost"].as_u64(), realtime["duplicated"].as_u64()), (Some(0), Some(0)), "{realtime}");
    }
    let memory = &results["memory"];
    assert!(memory["resident_after_rest_kib"].as_u64().is_some_and(|kib| kib > 0));
    assert_eq!(memory["idle"][0]["server"], "chatd, /ws");
    assert_eq!(memory["idle"][0]["sockets"], 40);
    let chart = std::fs::read_to_string(out.path().join("latency.svg")).expect("the chart");
    assert!(chart.contains("<svg") && chart.contains("inbox page (10)"));
    assert!(std::fs::read_to_string(out.path().join("table.txt")).expect("the table").contains("Redis ceiling"));
}

#[test]
fn a_small_storm_loses_nothing() {
    let out = tempfile::tempdir().expect("a temporary folder");
    let results = bench(
        &["--only", "storm", "--sockets", "40", "--storm-rate", "100", "--storm-before", "1", "--storm-after", "1"],
        out.path(),
    );
    let names = scenario_names(&results);
    assert_eq!(names, ["storm reconnect", "storm events"]);
    let storm = &results["storm"];
    assert_eq!(storm["ok"], true, "{storm:#}");
    assert_eq!((storm["lost"].as_u64(), storm["duplicated"].as_u64()), (Some(0), Some(0)), "{storm:#}");
    assert_eq!((storm["sockets"].as_u64(), storm["sockets_back"].as_u64()), (Some(40), Some(40)), "{storm:#}");
    assert!(storm["sent"].as_u64().is_some_and(|sent| sent > 100), "{storm:#}");
    assert_eq!(storm["protocol_violations"], 0, "{storm:#}");
    assert!(storm["all_live_seconds"].as_f64().is_some_and(|seconds| seconds > 0.0), "{storm:#}");
    assert!(std::fs::read_to_string(out.path().join("table.txt")).expect("the table").contains("OK: 0 lost"));
}

#[test]
fn a_small_scale_run_times_every_operation_at_both_sizes() {
    let out = tempfile::tempdir().expect("a temporary folder");
    let results = bench(
        &[
            "--only",
            "scale",
            "--scale-small",
            "160",
            "--scale-messages",
            "3000",
            "--scale-chats",
            "2000",
            "--scale-samples",
            "20",
        ],
        out.path(),
    );
    let rows = results["scale"]["rows"].as_array().expect("the growth rows");
    let operations: Vec<&str> = rows.iter().map(|row| row["operation"].as_str().unwrap()).collect();
    assert_eq!(
        operations,
        [
            "history page 1",
            "history before the middle",
            "send",
            "read (after the other's send)",
            "edit (from a quarter in)",
            "delete (from three quarters in)",
            "inbox page 1",
            "open /ws (to authenticated)"
        ]
    );
    for row in rows {
        let sizes = (row["small"].as_u64(), row["large"].as_u64());
        let inbox = row["operation"].as_str().is_some_and(|op| op.starts_with("inbox") || op.starts_with("open"));
        assert_eq!(sizes, if inbox { (Some(160), Some(2000)) } else { (Some(160), Some(3000)) }, "{row}");
        assert!(row["large_p50_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{row}");
    }
    assert!(std::fs::read_to_string(out.path().join("table.txt")).expect("the table").contains("p50 large/small"));
}

#[test]
fn both_doors_and_the_node_reference_in_one_run() {
    // Node.js and npm are on every machine `.ci/run` prepares (the Socket.IO client tests need
    // them too).
    let out = tempfile::tempdir().expect("a temporary folder");
    let results = bench(
        &[
            "--only",
            "realtime,node",
            "--doors",
            "ws,socket-io",
            "--instances",
            "1",
            "--sockets",
            "40",
            "--rate",
            "64",
            "--realtime-seconds",
            "1",
        ],
        out.path(),
    );
    assert_eq!(
        scenario_names(&results),
        [
            "realtime same instance",
            "realtime same instance (socket.io)",
            "node reference realtime same instance (socket.io)"
        ]
    );
    for scenario in results["scenarios"].as_array().unwrap() {
        assert!(scenario["operations"].as_u64().is_some_and(|n| n > 0), "{scenario}");
        assert_eq!((scenario["lost"].as_u64(), scenario["duplicated"].as_u64()), (Some(0), Some(0)), "{scenario}");
        // One server did all the work: its CPU per delivery is known.
        assert!(scenario["cpu"]["server"].as_f64().is_some_and(|us| us > 0.0), "{scenario}");
    }
    // Memory per idle socket for each server and door, measured on instances of their own.
    let idle = results["memory"]["idle"].as_array().unwrap();
    let servers: Vec<&str> = idle.iter().map(|idle| idle["server"].as_str().unwrap()).collect();
    assert_eq!(servers, ["chatd, /ws", "chatd, socket.io", "Node.js Socket.IO reference"]);
    for idle in idle {
        assert_eq!(idle["sockets"], 40, "{idle}");
        assert!(idle["per_connection_kib"].as_f64().is_some(), "{idle}");
    }
}

#[test]
fn a_small_cluster_run_reads_each_primary_and_the_events_each_instance_received() {
    let out = tempfile::tempdir().expect("a temporary folder");
    let results = bench(
        &[
            "--cluster",
            "--shards",
            "2",
            "--instances",
            "2",
            "--only",
            "send,realtime",
            "--seconds",
            "1",
            "--realtime-seconds",
            "1",
            "--sockets",
            "40",
            "--rate",
            "64",
            "--concurrency",
            "4",
        ],
        out.path(),
    );
    assert_eq!(
        scenario_names(&results),
        [
            "send (2 shards, 2 chatd)",
            "realtime same instance (2 shards, 2 chatd)",
            "realtime across instances (2 shards, 2 chatd)"
        ]
    );
    for scenario in results["scenarios"].as_array().unwrap() {
        assert!(scenario["operations"].as_u64().is_some_and(|n| n > 0), "{scenario}");
        assert_eq!(scenario["errors"], 0, "{scenario}");
        // Every chatd instance and every node of the cluster count in the CPU column.
        assert!(scenario["cpu"]["redis"].as_f64().is_some_and(|us| us > 0.0), "{scenario}");
    }
    for realtime in &results["scenarios"].as_array().unwrap()[1..] {
        assert_eq!((realtime["lost"].as_u64(), realtime["duplicated"].as_u64()), (Some(0), Some(0)), "{realtime}");
    }
    let run = &results["cluster"][0];
    assert_eq!((run["shards"].as_u64(), run["instances"].as_u64()), (Some(2), Some(2)), "{run:#}");
    assert!(run["ceiling_per_second"].as_f64().is_some_and(|rate| rate > 0.0), "{run:#}");
    let sharded: Vec<&str> = run["scenarios"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(sharded, ["send (2 shards, 2 chatd)", "realtime /ws (2 shards, 2 chatd)"]);
    for scenario in run["scenarios"].as_array().unwrap() {
        let shards = scenario["shards"].as_array().unwrap();
        assert_eq!(shards.len(), 2, "{scenario:#}");
        for shard in shards {
            // Both primaries did part of the work: a send's steps reach both users' slots.
            assert!(shard["cpu_micros_per_operation"].as_f64().is_some_and(|us| us > 0.0), "{shard:#}");
            assert!(shard["commands"].as_array().unwrap().iter().any(|c| c["name"] == "evalsha"), "{shard:#}");
        }
        assert!(scenario["redis_bound_per_second"].as_f64().is_some_and(|rate| rate > 0.0), "{scenario:#}");
    }
    // Issue 14, item 3: each instance received from the bus exactly the events its sockets needed.
    let bus = &run["bus"][0];
    let instances = bus["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{bus:#}");
    for instance in instances {
        assert!(instance["needed"].as_u64().is_some_and(|n| n > 0), "{bus:#}");
        assert_eq!(instance["received"], instance["needed"], "{bus:#}");
        assert_eq!(instance["delivered"], instance["needed"], "{bus:#}");
    }
    let spublished: u64 = bus["spublish_per_shard"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).sum();
    assert!(spublished > 0, "{bus:#}");
    assert_eq!(bus["classic_node_copies"].as_u64(), Some(2 * spublished), "{bus:#}");
    assert!(
        std::fs::read_to_string(out.path().join("table.txt"))
            .expect("the table")
            .contains("Redis Cluster, per primary")
    );
}
