//! `chat-bench`: starts a private Redis and chatd, measures Redis's own ceiling, then drives chatd
//! with REST and WebSocket load, and reports every figure also as a ratio to that ceiling.

mod ceiling;
mod cluster;
mod clustered;
mod cpu;
mod http;
mod platform;
mod processes;
mod realtime;
mod reference;
mod report;
mod rest;
mod scale;
mod shards;
mod slowlog;
mod storm;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use crate::platform::PlatformApi;
use crate::processes::{Chatd, NodeReference, Redis, Reference};
use crate::report::{IdleSockets, Memory, Platform, Report};
use crate::rest::Rest;
use crate::storm::{Hangup, Target};

/// chatd's benchmark: REST, realtime and connection scale, against Redis's ceiling.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Seconds each REST scenario is measured (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections of the REST scenarios.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Idle WebSocket users of the realtime scenario.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Events per second the realtime senders post.
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Seconds the realtime senders post.
    #[arg(long, default_value_t = 10)]
    realtime_seconds: u64,
    /// SETs redis-benchmark sends to measure the ceiling.
    #[arg(long, default_value_t = 200_000)]
    ceiling_requests: u64,
    /// chatd instances the sockets are spread over: 1 or 2 (default 2). With `--cluster`, a list
    /// of counts each measured in turn, the REST load spread over the instances too (default
    /// `1,2,3`).
    #[arg(long, value_delimiter = ',')]
    instances: Option<Vec<usize>>,
    /// Run against a local Redis Cluster that chat-bench starts (`redis.cluster`), once per
    /// `--shards` count and, on each, once per `--instances` count: the send, history, inbox and
    /// read scenarios and the realtime scenario, with each primary's CPU and commands per
    /// operation and the events each instance received over sharded pub/sub.
    #[arg(long)]
    cluster: bool,
    /// With `--cluster`: primaries of the cluster, a list of counts each measured in turn (a fresh
    /// cluster each), the hash slots split evenly (default 3).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=16))]
    shards: Option<Vec<u16>>,
    /// With `--cluster`: replicas of each primary (default 0: they would take CPU from the
    /// primaries on a small machine).
    #[arg(long)]
    replicas: Option<usize>,
    /// The doors the realtime scenario runs on, one after the other, each on instances of its own:
    /// `ws` (`/ws`) and `socket-io` (`/socket.io/` over a WebSocket).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ws")]
    doors: Vec<realtime::Door>,
    /// Sockets of the reconnect storm (default: `--sockets`).
    #[arg(long)]
    storm_sockets: Option<usize>,
    /// Sends per second during the whole storm scenario.
    #[arg(long, default_value_t = 500)]
    storm_rate: u64,
    /// Seconds of sending before every socket drops.
    #[arg(long, default_value_t = 3)]
    storm_before: u64,
    /// Milliseconds every socket stays away once all have dropped (more missed events each).
    #[arg(long, default_value_t = 0)]
    storm_away_ms: u64,
    /// Seconds of sending once every socket is live again.
    #[arg(long, default_value_t = 3)]
    storm_after: u64,
    /// Seconds, at most, for the last events to arrive once sending stopped.
    #[arg(long, default_value_t = 5)]
    storm_drain: u64,
    /// How the sockets drop: a TCP reset with no close frame, or a WebSocket close.
    #[arg(long, value_enum, default_value_t = Hangup::Abrupt)]
    storm_hangup: Hangup,
    /// Where they reconnect: the same instance, or the next one.
    #[arg(long, value_enum, default_value_t = Target::Other)]
    storm_reconnect_to: Target,
    /// Milliseconds the stand-in platform API takes to answer a profile request.
    #[arg(long, default_value_t = 20)]
    platform_latency_ms: u64,
    /// chatd's profile cache TTL in seconds (`platform.cache_ttl_seconds`); short by default, so
    /// that profiles expire, and are refreshed, during every scenario.
    #[arg(long, default_value_t = 2)]
    platform_cache_ttl: u64,
    /// Profiles from chatd's built-in directory instead of a stand-in platform API.
    #[arg(long)]
    no_platform: bool,
    /// Skip the reference server (a bare actix-web + Redis server doing each REST scenario's
    /// Redis work and nothing else, measured in the same run).
    #[arg(long)]
    no_reference: bool,
    /// Stretches each REST scenario is cut into, chatd's alternating with the reference's, so
    /// that a machine whose speed drifts during the run weighs on both alike.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Internal: run as the reference server on this port.
    #[arg(long, hide = true)]
    reference_server: Option<u16>,
    /// Internal: the reference server's Redis port.
    #[arg(long, hide = true, default_value_t = 6379)]
    reference_redis: u16,
    /// The chatd binary (default: the one beside this binary).
    #[arg(long)]
    chatd: Option<PathBuf>,
    /// Messages of the large chat in the scale scenario.
    #[arg(long, default_value_t = 1_000_000)]
    scale_messages: u64,
    /// Chats of the large inbox in the scale scenario.
    #[arg(long, default_value_t = 100_000)]
    scale_chats: u64,
    /// Messages of the small chat, and chats of the small inbox, in the scale scenario (at least
    /// 8 × `--scale-samples`).
    #[arg(long, default_value_t = 1_000)]
    scale_small: u64,
    /// Timed runs of each operation, at each size, in the scale scenario.
    #[arg(long, default_value_t = 100)]
    scale_samples: usize,
    /// Which scenarios to run: any of send, history, inbox, read, realtime, storm (the reconnect
    /// storm), scale (operations at small and large sizes), node (the realtime scenario against a
    /// Node.js Socket.IO + redis-adapter server, installed from npm; skipped without Node.js).
    /// `--cluster` runs send, history, inbox, read and realtime only.
    #[arg(long, value_delimiter = ',', default_value = "send,history,inbox,read,realtime")]
    only: Vec<String>,
    /// Where results.json, table.txt and latency.svg go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

fn bar(length: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(length).with_message(message.to_owned());
    if let Ok(style) = ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} {per_sec}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Raises the open-file limit of chat-bench and of the processes it starts: chatd holds two
/// descriptors per connection, so 10,000 sockets on one instance need over 20,000 and 50,000 over
/// 100,000. The hard limit too where allowed (as root: up to the kernel's `fs.nr_open`), else the
/// soft limit up to the hard one.
fn raise_open_file_limit() -> Result<(), String> {
    let most = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|text| text.trim().parse().ok());
    if let Some(most) = most
        && rlimit::setrlimit(rlimit::Resource::NOFILE, most, most).is_ok()
    {
        return Ok(());
    }
    rlimit::increase_nofile_limit(u64::MAX).map(|_| ()).map_err(|e| format!("cannot raise the open-file limit: {e}"))
}

async fn run(args: Args) -> Result<Report, String> {
    raise_open_file_limit()?;
    let chatd_binary = args.chatd.clone().unwrap_or_else(processes::default_chatd_binary);
    let platform = if args.no_platform {
        None
    } else {
        Some(PlatformApi::start(Duration::from_millis(args.platform_latency_ms)).await?)
    };
    let settings: Vec<(String, String)> = platform
        .iter()
        .flat_map(|api| {
            [
                ("CHATD_PLATFORM__API_URL".to_owned(), api.url.clone()),
                ("CHATD_PLATFORM__CACHE_TTL_SECONDS".to_owned(), args.platform_cache_ttl.to_string()),
            ]
        })
        .collect();
    if args.cluster {
        return clustered::run(&args, &chatd_binary, platform.as_ref(), &settings).await;
    }
    if args.shards.is_some() || args.replicas.is_some() {
        return Err("--shards and --replicas go with --cluster".into());
    }
    let instance_count = match args.instances.as_deref() {
        None => 2,
        Some([count @ (1 | 2)]) => *count,
        Some(_) => return Err("--instances takes 1 or 2 (a list only with --cluster)".into()),
    };
    let redis = Redis::start()?;
    let progress = bar(0, "Redis ceiling");
    let ceiling = ceiling::measure(redis.port, args.ceiling_requests)?;
    progress.finish_with_message(format!("Redis ceiling {ceiling:.0}/s"));
    let first = Chatd::start(&chatd_binary, redis.port, tokens::SECRET, &settings)?;
    rest::seed(first.port).await?;
    let asked = || platform.as_ref().map(|api| api.counts.read().0);
    let wanted = |name: &str| args.only.iter().any(|only| only == name);
    let kinds = [(Rest::Send, "send"), (Rest::History, "history"), (Rest::Inbox, "inbox"), (Rest::Read, "read")];
    let compared = |kind: Rest| kind != Rest::Read;
    let reference = match args.no_reference || !kinds.iter().any(|(kind, name)| compared(*kind) && wanted(name)) {
        true => None,
        false => {
            let server = Reference::start(redis.port)?;
            rest::seed(server.port).await?;
            Some(server)
        }
    };
    let chatd_pids = cpu::Pids::one(first.pid(), redis.pid());
    let mut slowlog = slowlog::SlowLog::connect(&[redis.port]).await?;
    let mut scenarios = Vec::new();
    let mut reference_rows = Vec::new();
    let stretch = Duration::from_secs(args.seconds) / args.rounds;
    for kind in kinds.into_iter().filter(|(_, name)| wanted(name)).map(|(kind, _)| kind) {
        let progress = bar(0, kind.name());
        let against = reference.as_ref().filter(|_| compared(kind));
        let (mut ours, mut platform_requests) = (rest::Stretch::new()?, 0);
        let mut theirs = against.map(|_| rest::Stretch::new()).transpose()?;
        for _ in 0..args.rounds {
            let before = asked();
            let mut probes = rest::Probes { pids: &chatd_pids, slowlog: &mut slowlog, shards: None };
            ours.add(rest::run(&[first.port], &mut probes, kind, args.concurrency, stretch, &progress).await?)?;
            // Counted over chatd's stretches only.
            platform_requests += asked().zip(before).map_or(0, |(after, before)| after - before);
            if let (Some(server), Some(theirs)) = (against, theirs.as_mut()) {
                let pids = cpu::Pids::one(server.pid(), redis.pid());
                let mut probes = rest::Probes { pids: &pids, slowlog: &mut slowlog, shards: None };
                theirs
                    .add(rest::run(&[server.port], &mut probes, kind, args.concurrency, stretch, &progress).await?)?;
            }
        }
        let mut result = ours.scenario(kind, args.concurrency, ceiling);
        result.platform_requests = platform.is_some().then_some(platform_requests);
        if let Some(theirs) = theirs {
            let mut row = theirs.scenario(kind, args.concurrency, ceiling);
            result.share_of_reference = Some(result.per_second / row.per_second);
            row.name = format!("reference {}", row.name);
            reference_rows.push(row);
        }
        progress.finish_with_message(format!("{} {:.0}/s", kind.name(), result.per_second));
        scenarios.push(result);
    }
    let mut memory = Memory { resident_after_rest_kib: first.resident_kib(), ..Memory::default() };
    let mut scaled = None;
    if wanted("scale") {
        if args.scale_small < 8 * args.scale_samples as u64 || args.scale_messages < args.scale_small {
            return Err("--scale-small must be at least 8 × --scale-samples, and --scale-messages at least that".into());
        }
        let settings = scale::Settings {
            messages: args.scale_messages,
            chats: args.scale_chats,
            small: args.scale_small,
            samples: args.scale_samples,
        };
        let progress = bar(0, "scale");
        scaled = Some(scale::run(first.port, redis.port, settings, &progress).await?);
        progress.finish_with_message("scale");
    }
    let mut storm = None;
    if wanted("realtime") {
        for door in args.doors.iter().copied() {
            // Instances of their own for each door: memory per socket from a clean start, with
            // nothing left of the REST scenarios or of the other door's sockets.
            let instances = (0..instance_count)
                .map(|_| Chatd::start(&chatd_binary, redis.port, tokens::SECRET, &settings))
                .collect::<Result<Vec<_>, _>>()?;
            let ports: Vec<u16> = instances.iter().map(|chatd| chatd.port).collect();
            let measured = &instances[0];
            let before = measured.resident_kib();
            let progress = bar(args.sockets as u64, &format!("opening sockets ({})", door.label()));
            let opened = realtime::open(&ports, door, args.sockets, &progress).await?;
            progress.finish();
            let after = measured.resident_kib();
            memory.idle.push(IdleSockets::measured(
                format!("chatd, {}", door.label()),
                args.sockets,
                args.sockets.div_ceil(ports.len()),
                (before, after),
                opened.seconds,
            ));
            // CPU per delivery when one instance did all of chatd's work.
            let pids = (ports.len() == 1).then(|| cpu::Pids::one(measured.pid(), redis.pid()));
            scenarios.extend(realtime_load(&args, &opened, pids.as_ref(), &mut slowlog, None, ceiling).await?.0);
        }
    }
    if wanted("storm") {
        let second = if instance_count > 1 {
            Some(Chatd::start(&chatd_binary, redis.port, tokens::SECRET, &settings)?)
        } else {
            None
        };
        let mut ports = vec![first.port];
        ports.extend(second.as_ref().map(|chatd| chatd.port));
        let settings = storm::Settings {
            sockets: args.storm_sockets.unwrap_or(args.sockets),
            rate: args.storm_rate,
            before: Duration::from_secs(args.storm_before),
            away: Duration::from_millis(args.storm_away_ms),
            after: Duration::from_secs(args.storm_after),
            drain: Duration::from_secs(args.storm_drain),
            hangup: args.storm_hangup,
            reconnect_to: args.storm_reconnect_to,
        };
        let progress = bar(0, "storm");
        let (rows, figures) = storm::run(&ports, &settings, ceiling, &progress).await?;
        progress.finish_with_message(format!("storm: {}", figures.verdict));
        scenarios.extend(rows);
        storm = Some(figures);
    }
    if wanted("node") {
        match NodeReference::start(redis.port, tokens::SECRET) {
            Err(why) => bar(0, "node").abandon_with_message(format!("Node.js reference skipped: {why}")),
            Ok(node) => {
                let before = processes::resident_kib(node.pid());
                let progress = bar(args.sockets as u64, "opening sockets on the Node.js reference");
                let opened = realtime::open(&[node.port], realtime::Door::SocketIo, args.sockets, &progress).await?;
                progress.finish();
                let after = processes::resident_kib(node.pid());
                memory.idle.push(IdleSockets::measured(
                    "Node.js Socket.IO reference".to_owned(),
                    args.sockets,
                    args.sockets,
                    (before, after),
                    opened.seconds,
                ));
                let pids = cpu::Pids::one(node.pid(), redis.pid());
                for mut row in realtime_load(&args, &opened, Some(&pids), &mut slowlog, None, ceiling).await?.0 {
                    row.name = format!("node reference {}", row.name);
                    scenarios.push(row);
                }
            }
        }
    }
    scenarios.extend(reference_rows);
    let platform =
        platform.map(|_| Platform { latency_ms: args.platform_latency_ms, cache_ttl_seconds: args.platform_cache_ttl });
    Ok(Report {
        cpus: cpus(),
        redis_ceiling_per_second: ceiling,
        platform,
        scenarios,
        memory,
        storm,
        scale: scaled,
        cluster: Vec::new(),
    })
}

/// The realtime load on sockets already `opened`: its rows, each with the slowest Redis call and,
/// given the servers' and Redis's `pids`, the CPU per delivery; on a cluster, what each primary
/// did meanwhile.
async fn realtime_load(
    args: &Args,
    opened: &realtime::Opened,
    pids: Option<&cpu::Pids>,
    slowlog: &mut slowlog::SlowLog,
    mut shards: Option<&mut shards::Shards>,
    ceiling: f64,
) -> Result<(Vec<report::Scenario>, Option<shards::Usage>), String> {
    let progress = bar(args.rate * args.realtime_seconds, "realtime events");
    slowlog.reset().await?;
    if let Some(shards) = shards.as_deref_mut() {
        shards.start().await?;
    }
    let started = pids.map(cpu::Sample::now);
    let mut rows =
        realtime::run(opened, args.rate, Duration::from_secs(args.realtime_seconds), ceiling, &progress).await?;
    let deliveries = rows.iter().map(|row| row.operations).sum();
    let per_delivery =
        pids.zip(started).and_then(|(pids, started)| cpu::Sample::now(pids).since(started).per_operation(deliveries));
    let usage = match shards {
        Some(shards) => Some(shards.stop().await?),
        None => None,
    };
    let reading = slowlog::Reading::new(slowlog.slowest().await?);
    for row in &mut rows {
        row.slowest_redis = Some(reading.clone());
        row.cpu = per_delivery;
    }
    progress.finish();
    Ok((rows, usage))
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The reference server runs its own (actix) runtime, so it is chosen before any other starts.
    let outcome = match args.reference_server {
        Some(port) => reference::serve(port, args.reference_redis).map_err(|e| format!("reference server: {e}")),
        None => tokio::runtime::Runtime::new()
            .map_err(|e| format!("cannot start a runtime: {e}"))
            .and_then(|runtime| runtime.block_on(benchmark(args))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("chat-bench: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark, prints the table and writes the results.
async fn benchmark(args: Args) -> Result<(), String> {
    let out = args.out.clone();
    let report = run(args).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("\n{}", report.table());
    }
    report.write(&out).map_err(|error| format!("cannot write the results: {error}"))?;
    #[allow(clippy::print_stdout)]
    {
        println!("results: {}", out.display());
    }
    Ok(())
}
