//! chat-bench end to end at toy scale: it starts its own Redis and chatd, runs every scenario, and
//! writes results that hold what it measured (every scenario ran, nothing lost).

#![allow(clippy::unwrap_used)]
use std::path::PathBuf;
use std::process::Command;

#[test]
fn a_small_run_measures_every_scenario() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_chat-bench"));
    // `cargo test --workspace` builds chatd into the same folder.
    let chatd = bench.with_file_name("chatd");
    assert!(chatd.exists(), "build chatd first (cargo build -p chatd): {}", chatd.display());
    let out = tempfile::tempdir().expect("a temporary folder");
    let status = Command::new(&bench)
        .args(["--seconds", "1", "--realtime-seconds", "1", "--sockets", "40", "--rate", "64", "--concurrency", "4"])
        .args(["--ceiling-requests", "5000", "--chatd"])
        .arg(&chatd)
        .arg("--out")
        .arg(out.path())
        .status()
        .expect("chat-bench runs");
    assert!(status.success());

    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("results.json")).expect("results.json")).expect("JSON");
    assert!(results["redis_ceiling_per_second"].as_f64().is_some_and(|rate| rate > 0.0));
    let names: Vec<&str> =
        results["scenarios"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["send", "history page (10)", "inbox page (10)", "realtime same instance", "realtime across instances"]
    );
    for scenario in results["scenarios"].as_array().unwrap() {
        assert!(scenario["operations"].as_u64().is_some_and(|n| n > 0), "{scenario}");
        assert_eq!(scenario["errors"], 0, "{scenario}");
        assert!(scenario["latency"]["p99"].as_f64().is_some_and(|ms| ms > 0.0), "{scenario}");
    }
    for realtime in &results["scenarios"].as_array().unwrap()[3..] {
        assert_eq!((realtime["lost"].as_u64(), realtime["duplicated"].as_u64()), (Some(0), Some(0)), "{realtime}");
    }
    let memory = &results["memory"];
    assert!(memory["resident_after_rest_kib"].as_u64().is_some_and(|kib| kib > 0));
    assert_eq!(memory["idle_connections"], 40);
    let chart = std::fs::read_to_string(out.path().join("latency.svg")).expect("the chart");
    assert!(chart.contains("<svg") && chart.contains("inbox page (10)"));
    assert!(std::fs::read_to_string(out.path().join("table.txt")).expect("the table").contains("Redis ceiling"));
}
