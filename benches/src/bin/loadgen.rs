//! `loadgen`: measures `sluice engine` end to end on the real Kafka and CQL server,
//! next to a raw Kafka consume→produce passthrough on the same broker, and prints a
//! Markdown table. `benches/engine/run.sh` builds it and runs it; BENCHMARKS.md
//! records the results.
//!
//! For each system: a warm-up, then a maximum-rate run (every event produced at
//! once; throughput = events ÷ time from the first send to the last output) and a
//! fixed-rate run at half that maximum (event→output latency percentiles). Every
//! run uses fresh topics, consumer groups and CQL keyspace, deleted afterwards
//! unless `--keep`.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use sluice_benches::{
    engine::{self, EngineProcess, EngineSetup, histogram_totals},
    kafka,
    passthrough::Passthrough,
    producer::{EventSender, Span},
    report::{self, EngineBreakdown, Latency, MachineCpu, Measured, Throughput},
    tracker::{Matcher, SendTimes, Tracker},
    workload::{Prepared, Workload},
};

/// At most this many events in one fixed-rate run (their send times are kept in memory).
const LATENCY_CAP: u64 = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    /// The passthrough, then the engine.
    Both,
    /// Only the Kafka passthrough.
    Passthrough,
    /// Only the engine.
    Engine,
}

/// Load generator: `sluice engine` on Kafka + CQL next to a raw Kafka passthrough.
#[derive(Debug, Parser)]
#[command(name = "loadgen", args_override_self = true)]
struct Args {
    /// Events of the maximum-rate run.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Contacts (Telegram users) the events come from, round robin.
    #[arg(long, default_value_t = 10_000)]
    contacts: u64,
    /// Partitions of the input and output topics.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Duration of the fixed-rate (latency) run.
    #[arg(long, default_value_t = 20)]
    latency_secs: u64,
    /// Rate of the latency runs, events/s (default: half of each system's maximum).
    #[arg(long)]
    latency_rate: Option<f64>,
    /// Events sent (and awaited) before measuring.
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Which systems to measure.
    #[arg(long, value_enum, default_value = "both")]
    only: Only,
    /// Kafka bootstrap servers.
    #[arg(long, env = "SLUICE_TEST_KAFKA", default_value = "127.0.0.1:9092")]
    kafka: String,
    /// CQL contact point.
    #[arg(long, env = "SLUICE_TEST_CQL", default_value = "127.0.0.1:9042")]
    cql: String,
    /// The `sluice` binary to run the engine with (a release build).
    #[arg(long, env = "SLUICE_BIN")]
    sluice_bin: Option<PathBuf>,
    /// Where the engine serves `/metrics` and `/readyz`.
    #[arg(long, default_value = "127.0.0.1:19465")]
    engine_metrics_addr: SocketAddr,
    /// The engine's log filter (its log goes to a file in the run's directory).
    #[arg(long, default_value = "warn")]
    engine_log: String,
    /// Longest wait for the outputs of one run, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
    /// Keep the run's topics, keyspace and directory.
    #[arg(long)]
    keep: bool,
}

fn say(message: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("loadgen: {message}");
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// The machine's (busy, total) CPU ticks so far, when `/proc/stat` is readable.
fn cpu_ticks() -> Option<(u64, u64)> {
    report::parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The processes that take part in a run, by pid: Kafka and Cassandra (found by
/// their main classes), `sluice engine` processes, and this load generator (which
/// runs the passthrough).
fn taking_part() -> Vec<(u32, &'static str)> {
    let mut found = vec![(std::process::id(), "load generator")];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let has = |arg: &str| args.contains(&arg.as_bytes());
        let name = if has("kafka.Kafka") {
            "Kafka"
        } else if has("org.apache.cassandra.service.CassandraDaemon") {
            "Cassandra"
        } else if args.first().is_some_and(|a| a.ends_with(b"/sluice")) && has("engine") {
            "sluice engine"
        } else {
            continue;
        };
        found.push((pid, name));
    }
    found
}

/// A process taking part: pid, name, CPU seconds so far.
type ProcessCpu = (u32, &'static str, f64);

/// CPU seconds so far of each process [`taking_part`].
fn process_cpu() -> Vec<ProcessCpu> {
    taking_part()
        .into_iter()
        .filter_map(|(pid, name)| Some((pid, name, engine::cpu_seconds(pid).ok()?)))
        .collect()
}

/// The machine's CPU use between two readings of [`cpu_ticks`] and of
/// [`process_cpu`].
fn machine_cpu(
    before: Option<(u64, u64)>,
    after: Option<(u64, u64)>,
    processes: (&[ProcessCpu], &[ProcessCpu]),
    wall: Duration,
) -> Option<MachineCpu> {
    let ((busy0, total0), (busy1, total1)) = (before?, after?);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let ticks = (total1 - total0) as f64;
    if ticks <= 0.0 {
        return None;
    }
    // The ticks of all CPUs sum to wall time × CPUs.
    let wall_seconds = wall.as_secs_f64();
    let mut spent: Vec<(String, f64)> = Vec::new();
    for &(pid, name, end) in processes.1 {
        let start = processes
            .0
            .iter()
            .find(|(p, n, _)| *p == pid && *n == name)
            .map_or(0.0, |(_, _, s)| *s);
        match spent.iter_mut().find(|(n, _)| n == name) {
            Some((_, seconds)) => *seconds += end - start,
            None => spent.push((name.to_owned(), end - start)),
        }
    }
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(MachineCpu {
        cores,
        busy_seconds: (busy1 - busy0) as f64 / ticks * wall_seconds * cores as f64,
        wall_seconds,
        processes: spent,
    })
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What the load generator looks at besides the outputs while a system runs.
trait Probe {
    /// Fails when the system under test has failed (called while waiting).
    fn check(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called right before the maximum-rate run's first send and right after its
    /// last output arrived.
    fn mark(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The passthrough runs in this process; its failures surface when it stops.
struct NoProbe;

impl Probe for NoProbe {}

/// Engine counters and CPU time at each mark.
struct EngineProbe<'a> {
    engine: &'a mut EngineProcess,
    marks: Vec<(String, f64, Instant)>,
}

impl Probe for EngineProbe<'_> {
    fn check(&mut self) -> anyhow::Result<()> {
        self.engine.check()
    }

    fn mark(&mut self) -> anyhow::Result<()> {
        let metrics = self.engine.metrics()?;
        let cpu = self.engine.cpu_seconds()?;
        self.marks.push((metrics, cpu, Instant::now()));
        Ok(())
    }
}

/// The run's shared pieces.
struct Run<'a> {
    args: &'a Args,
    id: String,
    dir: PathBuf,
    workload: Workload,
    /// Events `0..warmup + events`.
    events: Vec<Prepared>,
    runtime: tokio::runtime::Runtime,
}

impl Run<'_> {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.args.timeout_secs)
    }

    fn name(&self, what: &str) -> String {
        format!("bench_{what}_{}", self.id)
    }

    /// Waits for phase `index`, printing progress every 10 s.
    fn wait(
        &self,
        tracker: &Tracker,
        index: usize,
        expected: u64,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let mut next_report = Instant::now() + Duration::from_secs(10);
        tracker.wait(index, timeout, || {
            if Instant::now() >= next_report {
                next_report += Duration::from_secs(10);
                say(&format!(
                    "{what}: {} of {expected} outputs (load {})",
                    tracker.arrived(index),
                    load_average()
                ));
            }
            check()
        })
    }

    /// Warm-up, maximum rate and fixed rate through `tracker` by `sender`.
    /// `fresh(range)` gives the events of the fixed-rate run.
    fn measure(
        &self,
        what: &str,
        tracker: &Tracker,
        sender: &EventSender,
        sent: &SendTimes,
        fresh: &dyn Fn(std::ops::Range<u64>) -> anyhow::Result<Vec<Prepared>>,
        probe: &mut dyn Probe,
    ) -> anyhow::Result<Measured> {
        let (warmup, events) = (self.args.warmup, self.args.events);
        let warm = tracker.add_phase(0..warmup)?;
        sender.send_all(Span {
            first: 0,
            count: warmup,
            records: &self.events[..usize::try_from(warmup)?],
        })?;
        sender.flush(Duration::from_secs(60))?;
        let warmed = self.wait(
            tracker,
            warm,
            warmup,
            what,
            Duration::from_secs(300),
            || probe.check(),
        )?;
        anyhow::ensure!(
            warmed,
            "{what}: only {} of {warmup} warm-up outputs arrived",
            tracker.arrived(warm)
        );
        say(&format!(
            "{what}: warmed up; sending {events} events at once"
        ));

        let max = tracker.add_phase(warmup..warmup + events)?;
        probe.mark()?;
        let ticks = cpu_ticks();
        let processes = process_cpu();
        let start = Instant::now();
        let started = sent.nanos_at(start);
        sender.send_all(Span {
            first: warmup,
            count: events,
            records: &self.events[usize::try_from(warmup)?..],
        })?;
        sender.flush(self.timeout())?;
        let complete = self.wait(tracker, max, events, what, self.timeout(), || probe.check())?;
        let machine = machine_cpu(
            ticks,
            cpu_ticks(),
            (&processes, &process_cpu()),
            start.elapsed(),
        );
        probe.mark()?;
        let (arrived, last) = tracker
            .with_phase(max, |p| (p.arrived, p.last_arrival))
            .unwrap_or_default();
        let throughput = Throughput {
            events,
            arrived,
            seconds: last.saturating_sub(started) as f64 / 1e9,
            machine,
        };
        say(&format!(
            "{what}: {arrived} of {events} outputs in {:.1} s = {:.0}/s{}",
            throughput.seconds,
            throughput.rate(),
            if complete { "" } else { " (timed out)" }
        ));
        if !complete {
            return Ok(Measured {
                throughput: Some(throughput),
                latency: None,
            });
        }

        let rate = self.args.latency_rate.unwrap_or(throughput.rate() / 2.0);
        let count = ((rate * self.args.latency_secs as f64) as u64).clamp(1, LATENCY_CAP);
        let first = warmup + events;
        let records = fresh(first..first + count)?;
        say(&format!(
            "{what}: latency run, {count} events at {rate:.0}/s"
        ));
        let fixed = tracker.add_phase(first..first + count)?;
        let paced = sender.send_paced(
            Span {
                first,
                count,
                records: &records,
            },
            rate,
        )?;
        sender.flush(Duration::from_secs(60))?;
        // Outputs still missing a minute after the last send are counted as missing.
        self.wait(tracker, fixed, count, what, Duration::from_secs(60), || {
            probe.check()
        })?;
        let latency = tracker
            .with_phase(fixed, |p| {
                Latency::from_histogram(rate, count, p.duplicates, paced.max_behind_ms, &p.latency)
            })
            .context("the latency phase is missing")?;
        say(&format!(
            "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {count} arrived)",
            latency.percentiles_ms[0],
            latency.percentiles_ms[2],
            latency.percentiles_ms[4],
            latency.arrived
        ));
        Ok(Measured {
            throughput: Some(throughput),
            latency: Some(latency),
        })
    }

    fn capacity(&self) -> u64 {
        self.args.warmup + self.args.events + LATENCY_CAP
    }

    fn passthrough(&self) -> anyhow::Result<Measured> {
        let (input, output) = (self.name("pt_in"), self.name("pt_out"));
        let p = self.args.partitions;
        self.runtime.block_on(kafka::create_topics(
            &self.args.kafka,
            &[(&input, p), (&output, p)],
        ))?;
        let sent = Arc::new(SendTimes::new(Instant::now(), self.capacity()));
        let tracker = Tracker::start(
            kafka::reader(&self.args.kafka, &output, p)?,
            Matcher::Header,
            Arc::clone(&sent),
        );
        let passthrough =
            Passthrough::start(&self.args.kafka, &self.name("pt_group"), &input, &output)?;
        let sender = EventSender::new(&self.args.kafka, &input, Arc::clone(&sent))?;
        // The fixed-rate run reuses the prepared events (the sequence number travels
        // in a header): the passthrough's rate would need too many distinct ones.
        let reuse = |range: std::ops::Range<u64>| -> anyhow::Result<Vec<Prepared>> {
            let _ = range;
            Ok(self.events.clone())
        };
        let measured = self.measure(
            "passthrough",
            &tracker,
            &sender,
            &sent,
            &reuse,
            &mut NoProbe,
        );
        say(&format!(
            "passthrough: forwarded {} records, {} outputs matched no event",
            passthrough.forwarded(),
            tracker.strays()
        ));
        let stopped = passthrough.stop();
        tracker.stop();
        if !self.args.keep {
            self.runtime
                .block_on(kafka::delete_topics(&self.args.kafka, &[&input, &output]))?;
        }
        let measured = measured?;
        stopped?;
        Ok(measured)
    }

    fn engine(&self, binary: &Path) -> anyhow::Result<(Measured, Option<EngineBreakdown>)> {
        let setup = EngineSetup {
            binary: binary.to_owned(),
            bus: format!("kafka://{}", self.args.kafka),
            store: format!(
                "cql://{}/{}?replication_factor=1",
                self.args.cql,
                self.name("ks")
            ),
            tenant: self.workload.tenant().to_owned(),
            group: self.name("engine"),
            events_topic: self.name("events"),
            actions_topic: self.name("actions"),
            flows_topic: self.name("flows"),
            dlq_topic: self.name("dlq"),
            metrics_addr: self.args.engine_metrics_addr,
            log: self.args.engine_log.clone(),
        };
        let p = self.args.partitions;
        self.runtime.block_on(kafka::create_topics(
            &self.args.kafka,
            &[
                (&setup.events_topic, p),
                (&setup.actions_topic, p),
                (&setup.dlq_topic, 1),
            ],
        ))?;
        say("engine: submitting the flow (creates the keyspace)");
        setup.submit_flow(&self.dir)?;
        let log = self.dir.join("engine.log");
        let mut engine = setup.spawn(&log)?;
        say(&format!("engine: started, log in {}", log.display()));
        let outcome = self.drive_engine(&setup, &mut engine);
        let stopped = engine.stop(Duration::from_secs(60));
        if !self.args.keep {
            let topics = [
                setup.events_topic.as_str(),
                &setup.actions_topic,
                &setup.flows_topic,
                &setup.dlq_topic,
            ];
            self.runtime
                .block_on(kafka::delete_topics(&self.args.kafka, &topics))?;
            self.runtime.block_on(setup.drop_keyspace())?;
        }
        let outcome = outcome?;
        stopped?;
        Ok(outcome)
    }

    fn drive_engine(
        &self,
        setup: &EngineSetup,
        engine: &mut EngineProcess,
    ) -> anyhow::Result<(Measured, Option<EngineBreakdown>)> {
        engine.wait_ready(Duration::from_secs(180))?;
        let sent = Arc::new(SendTimes::new(Instant::now(), self.capacity()));
        let tracker = Tracker::start(
            kafka::reader(&self.args.kafka, &setup.actions_topic, self.args.partitions)?,
            Matcher::ActionText(self.workload.clone()),
            Arc::clone(&sent),
        );
        let sender = EventSender::new(&self.args.kafka, &setup.events_topic, Arc::clone(&sent))?;
        let now_ms = unix_millis();
        let fresh = |range: std::ops::Range<u64>| self.workload.prepare(range, now_ms);
        let mut probe = EngineProbe {
            engine,
            marks: Vec::new(),
        };
        let measured = self.measure("engine", &tracker, &sender, &sent, &fresh, &mut probe);
        say(&format!(
            "engine: {} actions matched no event",
            tracker.strays()
        ));
        tracker.stop();
        let measured = measured?;
        let breakdown = match probe.marks.as_slice() {
            [before, after] => Some(breakdown(before, after, self.args.partitions)),
            _ => None,
        };
        Ok((measured, breakdown))
    }
}

fn breakdown(
    before: &(String, f64, Instant),
    after: &(String, f64, Instant),
    partitions: i32,
) -> EngineBreakdown {
    let delta = |name: &str, label: &str| {
        let (s0, c0) = histogram_totals(&before.0, name, label);
        let (s1, c1) = histogram_totals(&after.0, name, label);
        (s1 - s0, c1 - c0)
    };
    let mean_ms = |(sum, count): (f64, f64)| if count > 0.0 { 1e3 * sum / count } else { 0.0 };
    let processing = delta("sluice_engine_processing_seconds", "");
    let load = delta("sluice_engine_store_seconds", "operation=\"load\"");
    let commit = delta("sluice_engine_store_seconds", "operation=\"commit\"");
    EngineBreakdown {
        inputs: processing.1,
        processing_ms: mean_ms(processing),
        loads: load.1,
        load_ms: mean_ms(load),
        commits: commit.1,
        commit_ms: mean_ms(commit),
        cpu_seconds: after.1 - before.1,
        wall_seconds: after.2.duration_since(before.2).as_secs_f64(),
        partitions,
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let id = unix_millis().to_string();
    let dir = std::env::temp_dir().join(format!("sluice-loadgen-{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let workload = Workload::new("bench", "bench_bot", args.contacts)?;
    let load_before = load_average();
    say(&format!(
        "run {id}: {} events for {} contacts, {} partitions; load average {load_before}",
        args.events, args.contacts, args.partitions
    ));
    let events = workload.prepare(0..args.warmup + args.events, unix_millis())?;
    let run = Run {
        args,
        id,
        dir,
        workload,
        events,
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?,
    };
    let passthrough = match args.only {
        Only::Both | Only::Passthrough => run.passthrough()?,
        Only::Engine => Measured::default(),
    };
    let (engine, breakdown) = match args.only {
        Only::Both | Only::Engine => {
            let binary = args
                .sluice_bin
                .as_deref()
                .context("--sluice-bin (or SLUICE_BIN) is needed to run the engine")?;
            run.engine(binary)?
        }
        Only::Passthrough => (Measured::default(), None),
    };
    let mut out = report::markdown(&passthrough, &engine);
    out.push('\n');
    if let Some(breakdown) = &breakdown {
        out.push_str(&report::breakdown(breakdown));
    }
    out.push_str(&format!(
        "- {} events for {} contacts on {} partitions, {} s latency runs; load average {load_before} before, {} after\n",
        args.events,
        args.contacts,
        args.partitions,
        args.latency_secs,
        load_average()
    ));
    #[allow(clippy::print_stdout)]
    {
        println!("{out}");
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&run.dir);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            say(&format!("failed: {error:#}"));
            ExitCode::FAILURE
        }
    }
}
