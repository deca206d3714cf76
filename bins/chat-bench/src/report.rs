//! The results: a table for the terminal, JSON for machines, and a latency chart (SVG) for people.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
    /// (quantile, ms) points for the chart.
    #[serde(skip)]
    pub(crate) curve: Vec<(f64, f64)>,
}

impl Latency {
    /// From a histogram of microseconds.
    pub(crate) fn from_micros(histogram: &Histogram<u64>) -> Self {
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        let curve =
            [0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999].iter().map(|q| (*q, ms(*q))).collect();
        Self { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), p999: ms(0.999), max: histogram.max() as f64 / 1000.0, curve }
    }
}

/// One scenario's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Scenario {
    pub(crate) name: String,
    pub(crate) concurrency: usize,
    pub(crate) seconds: f64,
    pub(crate) operations: u64,
    pub(crate) errors: u64,
    pub(crate) per_second: f64,
    /// `per_second` divided by the Redis ceiling.
    pub(crate) ratio: f64,
    pub(crate) latency: Latency,
    /// Realtime only: events that never arrived, and events that arrived twice.
    pub(crate) lost: Option<u64>,
    pub(crate) duplicated: Option<u64>,
    /// REST with the stand-in platform API: the requests it received during the scenario
    /// (warm-up included).
    pub(crate) platform_requests: Option<u64>,
    /// chatd's rate over the reference server's in the same scenario (send, history, inbox),
    /// both measured in alternating stretches of the same run.
    pub(crate) share_of_reference: Option<f64>,
    /// REST: CPU microseconds per operation of the server, Redis and chat-bench.
    pub(crate) cpu: Option<crate::cpu::PerOperation>,
    /// REST and realtime: the longest call in Redis's SLOWLOG over the measured time (none: every
    /// call took under `slowlog::THRESHOLD_MICROS`).
    pub(crate) slowest_redis: Option<crate::slowlog::Reading>,
}

/// Memory and connection figures.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Memory {
    pub(crate) resident_after_rest_kib: Option<u64>,
    /// Per server and door the realtime scenarios opened their idle sockets on.
    pub(crate) idle: Vec<IdleSockets>,
}

/// What a server's idle sockets cost: its resident memory before and after opening them, per
/// socket it holds, and the time it took to open them all.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IdleSockets {
    /// `chatd, /ws`, `chatd, socket.io` or the Node.js reference.
    pub(crate) server: String,
    pub(crate) sockets: usize,
    pub(crate) per_connection_kib: Option<f64>,
    pub(crate) open_seconds: f64,
}

impl IdleSockets {
    /// `sockets` opened in `open_seconds`, `held` of them by the process whose resident memory was
    /// `before` and `after` (KiB).
    pub(crate) fn measured(
        server: String,
        sockets: usize,
        held: usize,
        (before, after): (Option<u64>, Option<u64>),
        open_seconds: f64,
    ) -> Self {
        let per_connection_kib =
            before.zip(after).map(|(before, after)| after.saturating_sub(before) as f64 / held.max(1) as f64);
        Self { server, sockets, per_connection_kib, open_seconds }
    }
}

/// The reconnect storm's own figures (its latencies are the `storm reconnect` and `storm events`
/// rows). Times are seconds from the moment every socket was told to drop.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Storm {
    pub(crate) sockets: usize,
    pub(crate) instances: usize,
    /// `abrupt` (TCP reset, no close frame) or `clean` (a close frame).
    pub(crate) hangup: String,
    /// `same` or `other` instance.
    pub(crate) reconnect_to: String,
    /// How long the sockets stayed away once all had dropped.
    pub(crate) away_seconds: f64,
    /// Sends per second asked for, and reached over the whole run.
    pub(crate) send_rate: u64,
    pub(crate) sent_per_second: f64,
    /// Messages chatd accepted (201), each owed to one socket.
    pub(crate) sent: u64,
    pub(crate) send_errors: u64,
    pub(crate) delivered: u64,
    /// Owed, never received by the end of the drain (sockets answered `recovered: false` apart).
    pub(crate) lost: u64,
    /// Second and later arrivals of one message on one socket.
    pub(crate) duplicated: u64,
    /// Messages a socket received that were not sent to it (or whose send was not answered 201).
    pub(crate) unexpected: u64,
    /// Resumes answered `recovered: false`, and the messages their sockets did not get (theirs to
    /// reload over REST).
    pub(crate) recovered_false: u64,
    pub(crate) left_to_rest: u64,
    /// The `missed` of every `recovered: true` answer after the storm, added up.
    pub(crate) missed_replayed: u64,
    /// Replays that delivered fewer durable events than their `missed` said.
    pub(crate) incomplete_replays: u64,
    pub(crate) sockets_back: usize,
    pub(crate) failed_attempts: u64,
    /// Connections chatd ended (the client resumes those too).
    pub(crate) server_closes: u64,
    /// Until the last socket had hung up (the bench's own speed at waking 10,000 tasks).
    pub(crate) all_dropped_seconds: f64,
    /// When the bench let them reconnect (all at once), once every socket had dropped.
    pub(crate) reconnect_from_seconds: f64,
    /// Until the last socket was authenticated again; none if some never came back.
    pub(crate) all_live_seconds: Option<f64>,
    /// Until the last replayed (missed) event arrived; none if nothing was missed.
    pub(crate) last_missed_seconds: Option<f64>,
    /// Replays after which the socket's position was not the one `authenticated` announced.
    pub(crate) position_mismatches: u64,
    /// Frames against the contract (a durable event without a position, `authenticated` without
    /// `recovered` after `since`, …).
    pub(crate) protocol_violations: u64,
    /// Lost and duplicated are both 0, every socket came back, none was refused recovery.
    pub(crate) ok: bool,
    pub(crate) verdict: String,
    /// What was sent and what the socket received, for the first few things that went wrong.
    pub(crate) examples: Vec<String>,
}

impl Storm {
    /// Sets `ok` and `verdict` from the counts.
    pub(crate) fn judge(&mut self) {
        let mut failures = Vec::new();
        if self.lost > 0 || self.duplicated > 0 {
            failures.push(format!("{} lost, {} duplicated (both must be 0)", self.lost, self.duplicated));
        }
        if self.sockets_back < self.sockets {
            failures.push(format!("{} of {} sockets never came back", self.sockets - self.sockets_back, self.sockets));
        }
        if self.recovered_false > 0 {
            failures.push(format!("{} resumes answered recovered: false", self.recovered_false));
        }
        self.ok = failures.is_empty();
        self.verdict = if self.ok {
            "OK: 0 lost, 0 duplicated, every socket resumed".to_owned()
        } else {
            format!("FAILED: {}", failures.join("; "))
        };
    }

    fn lines(&self) -> String {
        let secs = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{s:.2} s"));
        let mut out = format!(
            "\nreconnect storm: {} sockets on {} instance(s) dropped at once ({}) and reconnected `since` their last \
             position ({} instance), {} sends/s asked, {:.0}/s reached\n",
            self.sockets, self.instances, self.hangup, self.reconnect_to, self.send_rate, self.sent_per_second
        );
        out.push_str(&format!(
            "  all dropped after {:.2} s, all reconnecting from {:.2} s, all live again after {}; last missed event \
             delivered after {}; {} missed events replayed\n",
            self.all_dropped_seconds,
            self.reconnect_from_seconds,
            secs(self.all_live_seconds),
            secs(self.last_missed_seconds),
            self.missed_replayed
        ));
        out.push_str(&format!(
            "  sent {}, delivered {}, lost {}, duplicated {}, unexpected {}; recovered: false {} ({} left to REST)\n",
            self.sent,
            self.delivered,
            self.lost,
            self.duplicated,
            self.unexpected,
            self.recovered_false,
            self.left_to_rest
        ));
        out.push_str(&format!(
            "  sockets back {}/{}, failed connection attempts {}, closed by chatd {}, incomplete replays {}, \
             position mismatches {}, contract violations {}\n",
            self.sockets_back,
            self.sockets,
            self.failed_attempts,
            self.server_closes,
            self.incomplete_replays,
            self.position_mismatches,
            self.protocol_violations
        ));
        out.push_str(&format!("  {}\n", self.verdict));
        for example in &self.examples {
            out.push_str(&format!("  - {example}\n"));
        }
        out
    }
}

/// How the stand-in platform API was set up.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Platform {
    /// Milliseconds it takes to answer.
    pub(crate) latency_ms: u64,
    /// chatd's `platform.cache_ttl_seconds` in the run.
    pub(crate) cache_ttl_seconds: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) cpus: usize,
    /// `redis-benchmark -q -c 32 -t set` against the same redis-server, requests per second.
    pub(crate) redis_ceiling_per_second: f64,
    /// The stand-in platform API chatd's profiles came from, when one was used.
    pub(crate) platform: Option<Platform>,
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) memory: Memory,
    /// When the reconnect storm ran.
    pub(crate) storm: Option<Storm>,
    /// When the scale scenario ran: each operation's cost at a small and a large size.
    pub(crate) scale: Option<crate::scale::Scale>,
    /// `--cluster`: one entry per cluster size and number of chatd instances (their rows are in
    /// `scenarios`, named with both).
    pub(crate) cluster: Vec<ClusterRun>,
}

/// One configuration of `--cluster`: a cluster of `shards` primaries and `instances` chatd.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClusterRun {
    pub(crate) shards: usize,
    /// Replicas per primary.
    pub(crate) replicas: usize,
    pub(crate) instances: usize,
    /// `redis-benchmark --cluster -c 32 -t set` against this cluster, requests per second.
    pub(crate) ceiling_per_second: f64,
    /// What each primary did in each scenario.
    pub(crate) scenarios: Vec<ShardedScenario>,
    /// Per realtime run: the events each instance received from the bus.
    pub(crate) bus: Vec<Bus>,
}

/// One scenario of a cluster run, seen from the primaries.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ShardedScenario {
    /// The row's name in `scenarios`.
    pub(crate) name: String,
    /// Requests (REST) or deliveries (realtime) over the measured time.
    pub(crate) operations: u64,
    pub(crate) per_second: f64,
    pub(crate) shards: Vec<crate::shards::ShardRow>,
    /// The lowest `per_second_at_full_cpu` of the shards: the rate at which the busiest primary's
    /// CPU would be full, with the same mix of keys.
    pub(crate) redis_bound_per_second: Option<f64>,
}

impl ShardedScenario {
    pub(crate) fn new(name: String, operations: u64, per_second: f64, shards: Vec<crate::shards::ShardRow>) -> Self {
        let redis_bound_per_second =
            shards.iter().filter_map(|shard| shard.per_second_at_full_cpu).min_by(|a, b| a.total_cmp(b));
        Self { name, operations, per_second, shards, redis_bound_per_second }
    }
}

/// Issue 14, item 3: the events chatd instances received over sharded pub/sub during a realtime
/// run, against the deliveries their own sockets needed and against what classic `PUBLISH` would
/// have cost the nodes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bus {
    /// The realtime row's name (door and configuration).
    pub(crate) name: String,
    pub(crate) instances: Vec<BusInstance>,
    /// Events all instances published (`chatd_events_published_total`), and `SPUBLISH` calls per
    /// primary (`INFO commandstats`) meanwhile.
    pub(crate) published: u64,
    pub(crate) spublish_per_shard: Vec<u64>,
    /// Nodes of the cluster (primaries and replicas).
    pub(crate) nodes: usize,
    /// Copies of published events the nodes handled: with `SPUBLISH`, the owning primary and its
    /// replicas; with classic `PUBLISH`, every node (Redis Cluster broadcasts it on the cluster bus).
    pub(crate) sharded_node_copies: u64,
    pub(crate) classic_node_copies: u64,
}

/// One chatd instance during a realtime run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BusInstance {
    pub(crate) instance: usize,
    pub(crate) port: u16,
    pub(crate) sockets: usize,
    /// Events chat-bench sent (answered 201) to a user whose socket is on this instance.
    pub(crate) needed: u64,
    /// `chatd_bus_events_received_total`: events this instance received from pub/sub.
    pub(crate) received: u64,
    /// `chatd_events_delivered_total`: events queued to its connections.
    pub(crate) delivered: u64,
    /// `chatd_events_published_total`: events it published (its writes, presence).
    pub(crate) published: u64,
}

impl Report {
    /// The table printed at the end.
    pub(crate) fn table(&self) -> String {
        let mut out = if self.cluster.is_empty() {
            format!(
                "Redis ceiling (redis-benchmark -c 32 -t set): {:.0}/s on {} CPUs\n\n",
                self.redis_ceiling_per_second, self.cpus
            )
        } else {
            let mut ceilings: Vec<(usize, f64)> =
                self.cluster.iter().map(|run| (run.shards, run.ceiling_per_second)).collect();
            ceilings.dedup_by_key(|(shards, _)| *shards);
            let ceilings: Vec<String> = ceilings
                .iter()
                .map(|(shards, rate)| format!("{shards} shard{} {rate:.0}/s", if *shards == 1 { "" } else { "s" }))
                .collect();
            format!(
                "Redis Cluster ceiling (redis-benchmark --cluster -c 32 -t set): {} on {} CPUs\n\n",
                ceilings.join(", "),
                self.cpus
            )
        };
        match &self.platform {
            Some(p) => out.push_str(&format!(
                "Profiles from a stand-in platform API answering in {} ms, cached {} s by chatd\n\n",
                p.latency_ms, p.cache_ttl_seconds
            )),
            None => out.push_str("Profiles from chatd's built-in directory\n\n"),
        }
        let width = self.scenarios.iter().map(|s| s.name.chars().count()).max().unwrap_or(0).max(28);
        out.push_str(&format!(
            "{:<width$} {:>5} {:>10} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>5} {:>5} {:>7} {:>24} {}\n",
            "scenario",
            "conc",
            "ops/s",
            "ratio",
            "of ref",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9",
            "max ms",
            "errors",
            "lost",
            "dup",
            "api req",
            "cpu µs srv+redis+bench",
            "slowest Redis call"
        ));
        for s in &self.scenarios {
            let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
            out.push_str(&format!(
                "{:<width$} {:>5} {:>10.0} {:>6.2}x {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>6} {:>5} {:>5} {:>7} {:>24} {}\n",
                s.name,
                s.concurrency,
                s.per_second,
                s.ratio,
                s.share_of_reference.map_or("-".to_owned(), |share| format!("{share:.2}x")),
                s.latency.p50,
                s.latency.p90,
                s.latency.p99,
                s.latency.p999,
                s.latency.max,
                s.errors,
                opt(s.lost),
                opt(s.duplicated),
                opt(s.platform_requests),
                s.cpu.map_or("-".to_owned(), |c| format!(
                    "{:.0} = {:.1}+{:.1}+{:.1}",
                    c.total(),
                    c.server,
                    c.redis,
                    c.bench
                )),
                slowest(s)
            ));
        }
        let m = &self.memory;
        out.push('\n');
        if self.cluster.is_empty() {
            out.push_str(&format!(
                "chatd resident after the REST scenarios: {}\n",
                m.resident_after_rest_kib.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
            ));
        }
        for idle in &m.idle {
            out.push_str(&format!(
                "{}: {} idle sockets, {} per connection, opened in {:.2} s\n",
                idle.server,
                idle.sockets,
                idle.per_connection_kib.map_or("-".to_owned(), |k| format!("{k:.1} KiB")),
                idle.open_seconds
            ));
        }
        if let Some(storm) = &self.storm {
            out.push_str(&storm.lines());
        }
        if let Some(scale) = &self.scale {
            out.push_str(&scale.lines());
        }
        if !self.cluster.is_empty() {
            out.push_str(&cluster_lines(&self.cluster));
        }
        out
    }

    /// Writes `results.json` and `latency.svg` into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("results.json"), json).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("table.txt"), self.table()).map_err(|e| e.to_string())?;
        self.chart(&dir.join("latency.svg")).map_err(|e| e.to_string())
    }

    /// Latency by percentile, one line per scenario: the x axis counts "nines" (50 %, 90 %, 99 %,
    /// 99.9 %, 99.99 %) so that the tail gets the room it deserves, the y axis is logarithmic.
    fn chart(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let top =
            self.scenarios.iter().flat_map(|s| s.latency.curve.iter().map(|(_, ms)| *ms)).fold(1.0_f64, f64::max) * 1.5;
        let mut chart = ChartBuilder::on(&root)
            .caption("chatd latency by percentile", ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(nines(0.5)..nines(0.9999), (0.1..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .x_labels(5)
            .x_label_formatter(&|x| format!("{}%", 100.0 * (1.0 - 10f64.powf(-x))))
            .y_desc("latency (ms, log scale)")
            .draw()?;
        for (index, scenario) in self.scenarios.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            let points = scenario.latency.curve.iter().map(|(q, ms)| (nines(*q), ms.max(0.1)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(&scenario.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw()?;
        root.present()?;
        Ok(())
    }
}

/// The `--cluster` sections: each primary's CPU and commands per operation, and the events over
/// the bus per instance.
fn cluster_lines(runs: &[ClusterRun]) -> String {
    let mut out = String::from(
        "\nRedis Cluster, per primary (INFO cpu and INFO commandstats over each measured time; commands a script runs \
         count in its evalsha and on their own):\n",
    );
    let width = runs.iter().flat_map(|run| &run.scenarios).map(|s| s.name.chars().count()).max().unwrap_or(0).max(28);
    out.push_str(&format!(
        "{:<width$} {:>10} {:>10} {:>6} {:>6} {:>7} {:>10} {:>12}  {}\n",
        "scenario",
        "ops/s",
        "redis-bound",
        "shard",
        "port",
        "cpu %",
        "cpu µs/op",
        "ops/s @100%",
        "commands per op (µs per call)"
    ));
    for run in runs {
        for scenario in &run.scenarios {
            for (index, shard) in scenario.shards.iter().enumerate() {
                let (name, rate, bound) = if index == 0 {
                    (
                        scenario.name.as_str(),
                        format!("{:.0}", scenario.per_second),
                        scenario.redis_bound_per_second.map_or("-".to_owned(), |rate| format!("{rate:.0}")),
                    )
                } else {
                    ("", String::new(), String::new())
                };
                let commands: Vec<String> = shard
                    .commands
                    .iter()
                    .take(5)
                    .map(|c| format!("{} {:.2} ({:.1})", c.name, c.calls_per_operation, c.usec_per_call))
                    .collect();
                out.push_str(&format!(
                    "{:<width$} {:>10} {:>10} {:>6} {:>6} {:>6.1}% {:>10.1} {:>12}  {}\n",
                    name,
                    rate,
                    bound,
                    format!("{}/{}", shard.shard, scenario.shards.len()),
                    shard.port,
                    shard.cpu_share * 100.0,
                    shard.cpu_micros_per_operation,
                    shard.per_second_at_full_cpu.map_or("-".to_owned(), |rate| format!("{rate:.0}")),
                    commands.join(", ")
                ));
            }
        }
    }
    let buses: Vec<&Bus> = runs.iter().flat_map(|run| &run.bus).collect();
    if !buses.is_empty() {
        out.push_str(
            "\nEvents over sharded pub/sub per chatd instance (needed: sent to its sockets' users; received: \
             chatd_bus_events_received_total; delivered: chatd_events_delivered_total):\n",
        );
    }
    for bus in buses {
        let spublish: Vec<String> = bus.spublish_per_shard.iter().map(u64::to_string).collect();
        out.push_str(&format!(
            "{}: chatd published {} events in {} SPUBLISH (per primary {}); copies on the {} nodes: {} sharded, {} \
             with classic PUBLISH\n",
            bus.name,
            bus.published,
            bus.spublish_per_shard.iter().sum::<u64>(),
            spublish.join(" / "),
            bus.nodes,
            bus.sharded_node_copies,
            bus.classic_node_copies
        ));
        for instance in &bus.instances {
            out.push_str(&format!(
                "  instance {} (port {}): {} sockets, needed {}, received {}, delivered {}, published {}\n",
                instance.instance,
                instance.port,
                instance.sockets,
                instance.needed,
                instance.received,
                instance.delivered,
                instance.published
            ));
        }
    }
    out
}

/// The slowest Redis call column (`-` for a scenario that does not read the SLOWLOG).
fn slowest(scenario: &Scenario) -> String {
    scenario.slowest_redis.as_ref().map_or("-".to_owned(), ToString::to_string)
}

/// How many nines a quantile has: 0.9 → 1, 0.99 → 2, 0.999 → 3.
fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storm_verdict_says_plainly_what_failed() {
        let mut storm = Storm { sockets: 10, sockets_back: 10, ..Storm::default() };
        storm.judge();
        assert!(storm.ok);
        assert_eq!(storm.verdict, "OK: 0 lost, 0 duplicated, every socket resumed");

        let mut storm = Storm { sockets: 10, sockets_back: 9, lost: 2, ..Storm::default() };
        storm.judge();
        assert!(!storm.ok);
        assert_eq!(storm.verdict, "FAILED: 2 lost, 0 duplicated (both must be 0); 1 of 10 sockets never came back");
        assert!(storm.lines().contains("lost 2, duplicated 0"));
    }
}
