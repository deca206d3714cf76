//! `chat-bench --cluster`: the REST and realtime scenarios against chatd on a local Redis Cluster
//! (issue 14, item 7), once per number of primaries (`--shards`, a fresh cluster each) and, on each
//! cluster, once per number of chatd instances (`--instances`, fresh instances each, the REST load
//! and the sockets spread over them). Beside the usual rows it reads what each primary did per
//! operation ([`crate::shards`]) and, for each realtime run, how many events each instance
//! received over sharded pub/sub against the deliveries its own sockets needed (item 3).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::Args;
use crate::cluster::Cluster;
use crate::cpu::Pids;
use crate::http::Connection;
use crate::platform::PlatformApi;
use crate::processes::Chatd;
use crate::realtime;
use crate::report::{Bus, BusInstance, ClusterRun, IdleSockets, Memory, Platform, Report, ShardedScenario};
use crate::rest::{self, Probes, Rest};
use crate::shards::Shards;
use crate::slowlog::SlowLog;
use crate::tokens;

/// The counters read from each instance's `/metrics` around a realtime run.
const RECEIVED: &str = "chatd_bus_events_received_total";
const DELIVERED: &str = "chatd_events_delivered_total";
const PUBLISHED: &str = "chatd_events_published_total";

/// Runs every configuration; `settings` are chatd's environment (the platform API's), to which
/// the cluster's seeds are added.
pub(crate) async fn run(
    args: &Args,
    chatd_binary: &Path,
    platform: Option<&PlatformApi>,
    settings: &[(String, String)],
) -> Result<Report, String> {
    let wanted = |name: &str| args.only.iter().any(|only| only == name);
    if let Some(other) =
        args.only.iter().find(|name| !["send", "history", "inbox", "read", "realtime"].contains(&name.as_str()))
    {
        return Err(format!("--cluster runs send, history, inbox, read and realtime, not {other}"));
    }
    let instance_counts = args.instances.clone().unwrap_or_else(|| vec![1, 2, 3]);
    let shard_counts = args.shards.clone().unwrap_or_else(|| vec![3]);
    let replicas = args.replicas.unwrap_or(0);
    if instance_counts.contains(&0) {
        return Err("--instances counts start at 1".into());
    }
    let kinds: Vec<Rest> =
        [(Rest::Send, "send"), (Rest::History, "history"), (Rest::Inbox, "inbox"), (Rest::Read, "read")]
            .into_iter()
            .filter(|(_, name)| wanted(name))
            .map(|(kind, _)| kind)
            .collect();
    let asked = || platform.map(|api| api.counts.read().0);
    let mut scenarios = Vec::new();
    let mut runs = Vec::new();
    let mut memory = Memory::default();
    for shards in shard_counts.into_iter().map(usize::from) {
        let progress = crate::bar(0, &format!("cluster of {shards}"));
        let cluster = Cluster::start(shards, replicas).await?;
        let ceiling = crate::ceiling::measure_cluster(cluster.primaries[0], shards, args.ceiling_requests)?;
        progress.finish_with_message(format!("cluster of {shards}: ceiling {ceiling:.0}/s"));
        let seeds = serde_json::to_string(&cluster.seeds()).map_err(|e| e.to_string())?;
        let mut settings = settings.to_vec();
        settings.push(("CHATD_REDIS__CLUSTER".to_owned(), seeds));
        let mut slowlog = SlowLog::connect(&cluster.ports()).await?;
        let mut primaries = Shards::connect(&cluster.primaries).await?;
        let mut seeded = false;
        for count in instance_counts.iter().copied() {
            let chatds = (0..count)
                .map(|_| Chatd::start(chatd_binary, cluster.primaries[0], tokens::SECRET, &settings))
                .collect::<Result<Vec<_>, _>>()?;
            let ports: Vec<u16> = chatds.iter().map(|chatd| chatd.port).collect();
            if !seeded && !kinds.is_empty() {
                rest::seed(ports[0]).await?;
                seeded = true;
            }
            let pids = Pids { servers: chatds.iter().map(Chatd::pid).collect(), redis: cluster.pids() };
            let label = format!("{shards} shard{}, {count} chatd", if shards == 1 { "" } else { "s" });
            let mut run = ClusterRun {
                shards,
                replicas,
                instances: count,
                ceiling_per_second: ceiling,
                scenarios: Vec::new(),
                bus: Vec::new(),
            };
            for kind in kinds.iter().copied() {
                let progress = crate::bar(0, &format!("{} ({label})", kind.name()));
                let mut stretch = rest::Stretch::new()?;
                let before = asked();
                let mut probes = Probes { pids: &pids, slowlog: &mut slowlog, shards: Some(&mut primaries) };
                let duration = Duration::from_secs(args.seconds);
                stretch.add(rest::run(&ports, &mut probes, kind, args.concurrency, duration, &progress).await?)?;
                let mut row = stretch.scenario(kind, args.concurrency, ceiling);
                row.platform_requests = asked().zip(before).map(|(after, before)| after - before);
                row.name = format!("{} ({label})", row.name);
                progress.finish_with_message(format!("{} {:.0}/s", row.name, row.per_second));
                let shard_rows = stretch.shard_rows().unwrap_or_default();
                run.scenarios.push(ShardedScenario::new(row.name.clone(), row.operations, row.per_second, shard_rows));
                scenarios.push(row);
            }
            if wanted("realtime") {
                for door in args.doors.iter().copied() {
                    let before = chatds[0].resident_kib();
                    let progress = crate::bar(args.sockets as u64, &format!("opening sockets ({})", door.label()));
                    let opened = realtime::open(&ports, door, args.sockets, &progress).await?;
                    progress.finish();
                    let after = chatds[0].resident_kib();
                    memory.idle.push(IdleSockets::measured(
                        format!("chatd, {} ({label})", door.label()),
                        args.sockets,
                        args.sockets.div_ceil(ports.len()),
                        (before, after),
                        opened.seconds,
                    ));
                    let counters_before = scrape_all(&ports).await?;
                    let (mut rows, usage) =
                        crate::realtime_load(args, &opened, Some(&pids), &mut slowlog, Some(&mut primaries), ceiling)
                            .await?;
                    let counters_after = scrape_all(&ports).await?;
                    for row in &mut rows {
                        row.name = format!("{} ({label})", row.name);
                    }
                    let deliveries: u64 = rows.iter().map(|row| row.operations).sum();
                    let name = format!("realtime {} ({label})", door.label());
                    if let Some(usage) = usage {
                        let seconds = args.realtime_seconds as f64;
                        let shard_rows = usage.rows(deliveries);
                        run.scenarios.push(ShardedScenario::new(
                            name.clone(),
                            deliveries,
                            deliveries as f64 / seconds,
                            shard_rows,
                        ));
                        run.bus.push(bus(
                            name,
                            &opened,
                            &counters_before,
                            &counters_after,
                            &usage.calls("spublish"),
                            cluster.ports().len(),
                            replicas,
                        ));
                    }
                    scenarios.extend(rows);
                }
            }
            runs.push(run);
        }
    }
    let platform =
        platform.map(|_| Platform { latency_ms: args.platform_latency_ms, cache_ttl_seconds: args.platform_cache_ttl });
    Ok(Report {
        cpus: crate::cpus(),
        redis_ceiling_per_second: runs.first().map_or(0.0, |run| run.ceiling_per_second),
        platform,
        scenarios,
        memory,
        storm: None,
        scale: None,
        cluster: runs,
    })
}

/// The bus figures of one realtime run: per instance, the counters' growth from `before` to
/// `after` beside the deliveries its sockets needed; for the nodes, the copies of each event
/// sharded pub/sub made against those classic `PUBLISH` would have made.
fn bus(
    name: String,
    opened: &realtime::Opened,
    before: &[HashMap<String, u64>],
    after: &[HashMap<String, u64>],
    spublish_per_shard: &[u64],
    nodes: usize,
    replicas: usize,
) -> Bus {
    let grown = |at: usize, counter: &str| {
        let read =
            |all: &[HashMap<String, u64>]| all.get(at).and_then(|counters| counters.get(counter)).copied().unwrap_or(0);
        read(after).saturating_sub(read(before))
    };
    let instances: Vec<BusInstance> = opened
        .needed()
        .into_iter()
        .zip(opened.instances())
        .enumerate()
        .map(|(at, ((sockets, needed), port))| BusInstance {
            instance: at + 1,
            port: *port,
            sockets,
            needed,
            received: grown(at, RECEIVED),
            delivered: grown(at, DELIVERED),
            published: grown(at, PUBLISHED),
        })
        .collect();
    let published = instances.iter().map(|instance| instance.published).sum();
    let spublished: u64 = spublish_per_shard.iter().sum();
    Bus {
        name,
        instances,
        published,
        spublish_per_shard: spublish_per_shard.to_vec(),
        nodes,
        sharded_node_copies: spublished * (1 + replicas as u64),
        classic_node_copies: spublished * nodes as u64,
    }
}

/// Every instance's counters.
async fn scrape_all(ports: &[u16]) -> Result<Vec<HashMap<String, u64>>, String> {
    let mut all = Vec::with_capacity(ports.len());
    for port in ports {
        all.push(scrape(*port).await?);
    }
    Ok(all)
}

/// The counters without labels in the instance's `/metrics` (Prometheus text).
async fn scrape(port: u16) -> Result<HashMap<String, u64>, String> {
    let reply = Connection::open(port).await?.get("/metrics", "").await?;
    if reply.status != 200 {
        return Err(format!("GET /metrics on {port}: {}", reply.status));
    }
    Ok(counters(&String::from_utf8_lossy(&reply.body)))
}

fn counters(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.contains('{'))
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_without_labels_are_read_from_prometheus_text() {
        let text = "# TYPE chatd_bus_events_received_total counter\nchatd_bus_events_received_total 1234\n\
                    chatd_http_requests_total{route=\"/ws\",method=\"GET\",status=\"101\"} 5\nchatd_events_delivered_total 1230\n";
        let read = counters(text);
        assert_eq!(read.get(RECEIVED), Some(&1234));
        assert_eq!(read.get(DELIVERED), Some(&1230));
        assert_eq!(read.len(), 2);
    }
}
