//! What a load-generator run measured, and the Markdown table it prints.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// The maximum-rate run: everything produced at once, timed until the last output.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// Events sent (and outputs that arrived, when complete).
    pub events: u64,
    /// Outputs that arrived.
    pub arrived: u64,
    /// Seconds from the first event sent to the last output observed.
    pub seconds: f64,
    /// The whole machine's CPU over the run (every process: Kafka, Cassandra,
    /// the system under test and the load generator), when `/proc/stat` is there.
    pub machine: Option<MachineCpu>,
}

/// CPU time of the whole machine over a span, from `/proc/stat`.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineCpu {
    /// CPUs.
    pub cores: usize,
    /// Seconds of CPU spent busy (not idle, not waiting for I/O), all CPUs summed.
    pub busy_seconds: f64,
    /// Wall-clock seconds of the span.
    pub wall_seconds: f64,
    /// CPU seconds of the processes that take part (Kafka, Cassandra, the engine,
    /// the load generator), most first.
    pub processes: Vec<(String, f64)>,
}

impl MachineCpu {
    /// Busy share of all CPUs, 0..=1.
    pub fn busy(&self) -> f64 {
        if self.wall_seconds > 0.0 && self.cores > 0 {
            self.busy_seconds / (self.wall_seconds * self.cores as f64)
        } else {
            0.0
        }
    }
}

/// The `cpu` line of `/proc/stat`: (busy, total) in clock ticks.
pub fn parse_proc_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal (guest time is in user already).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

impl Throughput {
    /// Outputs per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.arrived as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The fixed-rate run: event→output latency percentiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// Events per second asked for.
    pub rate: f64,
    /// Events sent.
    pub sent: u64,
    /// Distinct events whose output arrived.
    pub arrived: u64,
    /// Outputs for an event that had one already.
    pub duplicates: u64,
    /// The most the generator ran behind its schedule, in milliseconds.
    pub max_behind_ms: f64,
    /// Percentiles in milliseconds: p50, p90, p99, p99.9, max.
    pub percentiles_ms: [f64; 5],
}

impl Latency {
    /// Reads the percentiles off a histogram of microseconds.
    pub fn from_histogram(
        rate: f64,
        sent: u64,
        duplicates: u64,
        max_behind_ms: f64,
        micros: &Histogram<u64>,
    ) -> Self {
        let ms = |v: u64| v as f64 / 1e3;
        Latency {
            rate,
            sent,
            arrived: micros.len(),
            duplicates,
            max_behind_ms,
            percentiles_ms: [
                ms(micros.value_at_quantile(0.50)),
                ms(micros.value_at_quantile(0.90)),
                ms(micros.value_at_quantile(0.99)),
                ms(micros.value_at_quantile(0.999)),
                ms(micros.max()),
            ],
        }
    }
}

/// One system under test.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// The maximum-rate run.
    pub throughput: Option<Throughput>,
    /// The fixed-rate run.
    pub latency: Option<Latency>,
}

/// Where the engine's time went during the maximum-rate run (from its `/metrics`
/// and `/proc`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineBreakdown {
    /// Inputs processed in the run (`sluice_engine_processing_seconds_count`).
    pub inputs: f64,
    /// Mean time of an input from the start of its processing until its effects
    /// were durable, ms (with batching: its batch's time).
    pub processing_ms: f64,
    /// State loads (`sluice_engine_store_seconds{operation="load"}` calls).
    pub loads: f64,
    /// Mean state load, ms.
    pub load_ms: f64,
    /// Store commits (state and timers).
    pub commits: f64,
    /// Mean store commit, ms.
    pub commit_ms: f64,
    /// CPU seconds the engine process used.
    pub cpu_seconds: f64,
    /// Wall-clock seconds of the run.
    pub wall_seconds: f64,
    /// Partitions (one worker each).
    pub partitions: i32,
}

fn thousands(value: f64) -> String {
    let whole = value.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cell<T>(value: Option<&T>, show: impl Fn(&T) -> String) -> String {
    value.map_or_else(|| "—".to_owned(), show)
}

/// The side-by-side table of a run.
pub fn markdown(passthrough: &Measured, engine: &Measured) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| | Kafka passthrough (consume→produce) | sluice engine (Kafka + CQL) | engine ÷ passthrough |"
    );
    let _ = writeln!(out, "|---|---|---|---|");
    let (pt, en) = (passthrough.throughput.as_ref(), engine.throughput.as_ref());
    let ratio = match (pt, en) {
        (Some(p), Some(e)) if p.rate() > 0.0 => format!("{:.3}×", e.rate() / p.rate()),
        _ => "—".to_owned(),
    };
    let throughput = |t: &Throughput| {
        let incomplete = if t.arrived < t.events {
            format!(
                ", only {} of {} arrived",
                thousands(t.arrived as f64),
                thousands(t.events as f64)
            )
        } else {
            String::new()
        };
        format!(
            "**{}/s** ({} in {:.1} s{incomplete})",
            thousands(t.rate()),
            thousands(t.events as f64),
            t.seconds
        )
    };
    let _ = writeln!(
        out,
        "| max throughput | {} | {} | {ratio} |",
        cell(pt, throughput),
        cell(en, throughput)
    );
    let cpu = |t: &Throughput| match &t.machine {
        Some(m) if t.arrived > 0 => format!(
            "{:.0}% of {} CPUs; {:.1} µs of CPU per event",
            100.0 * m.busy(),
            m.cores,
            1e6 * m.busy_seconds / t.arrived as f64
        ),
        _ => "—".to_owned(),
    };
    let _ = writeln!(
        out,
        "| machine CPU in that run (all processes) | {} | {} | |",
        cell(pt, cpu),
        cell(en, cpu)
    );
    let by_process = |t: &Throughput| match &t.machine {
        Some(m) if t.arrived > 0 && !m.processes.is_empty() => m
            .processes
            .iter()
            .map(|(name, seconds)| format!("{name} {:.1} µs", 1e6 * seconds / t.arrived as f64))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "—".to_owned(),
    };
    let _ = writeln!(
        out,
        "| CPU per event by process | {} | {} | |",
        cell(pt, by_process),
        cell(en, by_process)
    );
    let (pl, el) = (passthrough.latency.as_ref(), engine.latency.as_ref());
    let rate = |l: &Latency| {
        format!(
            "{}/s, {} events (generator ≤ {:.1} ms behind)",
            thousands(l.rate),
            thousands(l.sent as f64),
            l.max_behind_ms
        )
    };
    let _ = writeln!(
        out,
        "| latency run at half the max | {} | {} | |",
        cell(pl, rate),
        cell(el, rate)
    );
    for (i, name) in ["p50", "p90", "p99", "p99.9", "max"].iter().enumerate() {
        let ms = |l: &Latency| format!("{:.1} ms", l.percentiles_ms[i]);
        let bold = |l: &Latency| format!("**{:.1} ms**", l.percentiles_ms[i]);
        let show: &dyn Fn(&Latency) -> String = if *name == "p99" { &bold } else { &ms };
        let _ = writeln!(
            out,
            "| event→output {name} | {} | {} | |",
            cell(pl, show),
            cell(el, show)
        );
    }
    let arrived = |l: &Latency| {
        format!(
            "{} of {}, {} duplicates",
            thousands(l.arrived as f64),
            thousands(l.sent as f64),
            l.duplicates
        )
    };
    let _ = writeln!(
        out,
        "| outputs arrived | {} | {} | |",
        cell(pl, arrived),
        cell(el, arrived)
    );
    out
}

/// Lines explaining where the engine's time went.
pub fn breakdown(b: &EngineBreakdown) -> String {
    let per_input = |total: f64| {
        if b.inputs > 0.0 {
            total / b.inputs
        } else {
            0.0
        }
    };
    let per_commit = if b.commits > 0.0 {
        b.inputs / b.commits
    } else {
        0.0
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "- engine, maximum-rate run: {} inputs on {} partitions in {:.1} s; an input took {:.2} ms \
         on average from the start of its processing until its effects were durable \
         (`sluice_engine_processing_seconds`); store: {} state loads of {:.2} ms and {} commits \
         of {:.2} ms on average ({:.1} inputs per commit); the rest is evaluation and publishing \
         the actions with acks=all",
        thousands(b.inputs),
        b.partitions,
        b.wall_seconds,
        b.processing_ms,
        thousands(b.loads),
        b.load_ms,
        thousands(b.commits),
        b.commit_ms,
        per_commit,
    );
    let _ = writeln!(
        out,
        "- engine CPU: {:.1} s over {:.1} s wall ({:.0}% of one core), {:.0} µs of CPU per input",
        b.cpu_seconds,
        b.wall_seconds,
        if b.wall_seconds > 0.0 {
            100.0 * b.cpu_seconds / b.wall_seconds
        } else {
            0.0
        },
        per_input(b.cpu_seconds) * 1e6,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_puts_both_side_by_side() {
        let mut micros = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            micros.record(v * 100).unwrap();
        }
        let passthrough = Measured {
            throughput: Some(Throughput {
                events: 200_000,
                arrived: 200_000,
                seconds: 4.0,
                machine: Some(MachineCpu {
                    cores: 2,
                    busy_seconds: 7.6,
                    wall_seconds: 4.0,
                    processes: vec![("Kafka".into(), 2.0), ("load generator".into(), 1.5)],
                }),
            }),
            latency: Some(Latency::from_histogram(25_000.0, 1000, 0, 1.5, &micros)),
        };
        let engine = Measured {
            throughput: Some(Throughput {
                events: 200_000,
                arrived: 200_000,
                seconds: 200.0,
                machine: None,
            }),
            latency: None,
        };
        let table = markdown(&passthrough, &engine);
        assert!(table.contains("| max throughput | **50,000/s** (200,000 in 4.0 s) | **1,000/s** (200,000 in 200.0 s) | 0.020× |"), "{table}");
        assert!(
            table.contains("| event→output p99 | **99.0 ms** | — | |"),
            "{table}"
        );
        assert!(
            table.contains("| outputs arrived | 1,000 of 1,000, 0 duplicates | — | |"),
            "{table}"
        );
        assert!(
            table.contains("| machine CPU in that run (all processes) | 95% of 2 CPUs; 38.0 µs of CPU per event | — | |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| CPU per event by process | Kafka 10.0 µs, load generator 7.5 µs | — | |"
            ),
            "{table}"
        );
        assert_eq!(
            parse_proc_stat("cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"),
            Some((160, 980))
        );
        assert_eq!(parse_proc_stat("intr 1 2 3"), None);
        let lines = breakdown(&EngineBreakdown {
            inputs: 20_000.0,
            processing_ms: 16.74,
            loads: 20_000.0,
            load_ms: 1.8,
            commits: 2_000.0,
            commit_ms: 3.0,
            cpu_seconds: 6.9,
            wall_seconds: 44.0,
            partitions: 8,
        });
        assert!(
            lines.contains("20,000 inputs on 8 partitions in 44.0 s"),
            "{lines}"
        );
        assert!(lines.contains("(10.0 inputs per commit)"), "{lines}");
        assert!(lines.contains("345 µs of CPU per input"), "{lines}");
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(12.0), "12");
    }
}
