# chatd's everyday commands; CI (.ci/run) runs the same checks as `just ci`.

# Run chatd on the embedded defaults (in-memory store, built-in directory, development secret).
run:
    cargo run --release -p chatd

# Run every test (the behaviour tests start their own redis-server).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# What CI runs.
ci:
    .ci/run

# Fuzz the REST API against its own OpenAPI document with schemathesis, every check, in memory and
# on a private Redis (`examples` cases per operation; `seed="random"` for a fresh seed).
api-fuzz examples="300" seed="1":
    SCHEMATHESIS_MAX_EXAMPLES={{examples}} SCHEMATHESIS_SEED={{seed}} .ci/schemathesis

# The benchmark: a private Redis and chatd, REST and realtime load, results in target/bench.
bench:
    cargo build --release -p chatd -p chat-bench
    target/release/chat-bench --out target/bench

# The benchmark on a local Redis Cluster (issue 14): 1, 2 and 3 primaries, each with 1, 2 and 3
# chatd instances, each primary's CPU per operation; results in target/bench-cluster.
bench-cluster:
    cargo build --release -p chatd -p chat-bench
    target/release/chat-bench --cluster --shards 1,2,3 --instances 1,2,3 --out target/bench-cluster

# Fuzz the realtime protocol decoders (Engine.IO, Socket.IO, /ws frames), `seconds` each.
fuzz seconds="30":
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    for target in engineio socketio ws_frame; do RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time={{seconds}} || exit 1; done
