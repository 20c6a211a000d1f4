//! `sluice dlq replay`: re-publishes dead letters once their cause is fixed.
//!
//! Records are read from the dead-letter topic through a consumer group, so a second
//! run continues after what the first one replayed. Each is published to the target
//! topic with its original key, payload and headers, minus `sluice.error`; the count is
//! bounded by `--max`. Offsets are committed only after the target acknowledged the
//! records, so a crash replays a batch twice rather than losing it — harmless, since
//! actions keep their ids and the workers dedupe them.

use std::{
    collections::HashMap,
    io::Write,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_infra::bus::{self, Delivered, Record, topics};

/// The header naming why a record was dead-lettered; dropped on replay.
const ERROR_HEADER: &str = "sluice.error";
/// The header naming where a dead letter was read from: `topic/partition/offset`.
const SOURCE_HEADER: &str = "sluice.source";

/// Work with the dead-letter topic.
#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// Re-publish dead letters to a topic with their original key, without `sluice.error`.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// Event bus: `kafka://host:port[,host:port]`.
    #[arg(long, env = "SLUICE_BUS", default_value = "kafka://127.0.0.1:9092")]
    bus: String,
    /// Dead-letter topic to read.
    #[arg(long, default_value = topics::DLQ)]
    from: String,
    /// Topic to re-publish to (e.g. `sluice.actions`).
    #[arg(long)]
    to: String,
    /// Replay only dead letters whose `sluice.source` header names this topic; others
    /// are skipped (and count as done for this group).
    #[arg(long)]
    source: Option<String>,
    /// At most this many records are re-published.
    #[arg(long, default_value_t = 1000)]
    max: usize,
    /// Consumer group remembering what was replayed; use a new one to start over.
    #[arg(long, default_value = "sluice-dlq-replay")]
    group: String,
    /// Stop once no record arrived for this long (after the first one), in seconds.
    #[arg(long, default_value_t = 3)]
    idle_secs: u64,
}

pub(crate) fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    let DlqCommand::Replay(args) = command;
    anyhow::ensure!(args.max > 0, "--max must be at least 1");
    anyhow::ensure!(
        args.from != args.to,
        "--from and --to are both {:?}: replaying a topic into itself loops",
        args.from
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let summary = runtime.block_on(replay(&args))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "replayed {} records from {} to {} ({} skipped by --source)",
        summary.replayed, args.from, args.to, summary.skipped
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Default)]
struct Summary {
    replayed: usize,
    skipped: usize,
}

/// The record to publish for a dead letter, or `None` when `--source` excludes it.
fn restore(dead: &Delivered, source: Option<&str>) -> Option<Record> {
    if let Some(wanted) = source {
        let from = dead
            .header(SOURCE_HEADER)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.rsplitn(3, '/').nth(2));
        if from != Some(wanted) {
            return None;
        }
    }
    Some(Record {
        key: dead.key.clone(),
        payload: dead.payload.clone(),
        headers: dead
            .headers
            .iter()
            .filter(|(name, _)| name != ERROR_HEADER)
            .cloned()
            .collect(),
    })
}

async fn replay(args: &ReplayArgs) -> anyhow::Result<Summary> {
    let bus = bus::connect(&args.bus).await?;
    // Partitions' end offsets when we start: reaching all of them means caught up.
    let ends = bus.end_offsets(&args.from).await?;
    if ends
        .as_ref()
        .is_some_and(|ends| ends.iter().all(|&end| end == 0))
    {
        return Ok(Summary::default());
    }
    let mut subscription = bus.subscribe(&args.group, &[&args.from]).await?;
    let started = Instant::now();
    let mut last_record = None::<Instant>;
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    let mut summary = Summary::default();
    // Joining the group can take a few seconds before the first record arrives.
    let join_timeout = Duration::from_secs(15).max(Duration::from_secs(args.idle_secs));
    while summary.replayed < args.max {
        let want = (args.max - summary.replayed).min(500);
        let batch = subscription.poll(want, Duration::from_millis(500)).await?;
        if batch.is_empty() {
            let idle = match last_record {
                Some(at) => at.elapsed() >= Duration::from_secs(args.idle_secs),
                None => started.elapsed() >= join_timeout,
            };
            if idle {
                break;
            }
            continue;
        }
        last_record = Some(Instant::now());
        // The batch's prefix that is handled now: re-published or skipped by --source.
        let mut records = Vec::with_capacity(batch.len());
        let mut handled = 0;
        for dead in &batch {
            match restore(dead, args.source.as_deref()) {
                Some(_) if summary.replayed + records.len() >= args.max => break,
                Some(record) => records.push(record),
                None => summary.skipped += 1,
            }
            handled += 1;
        }
        let count = records.len();
        if count > 0 {
            bus.publish(&args.to, records)
                .await
                .with_context(|| format!("re-publishing {count} dead letters to {}", args.to))?;
        }
        for dead in &batch[..handled] {
            subscription.commit(&dead.topic, dead.position)?;
            next_offsets.insert(dead.position.partition, dead.position.offset + 1);
        }
        summary.replayed += count;
        tracing::info!(topic = %args.to, replayed = summary.replayed, skipped = summary.skipped, "replaying dead letters");
        if let Some(ends) = &ends {
            let caught_up = ends.iter().enumerate().all(|(partition, &end)| {
                let partition = i32::try_from(partition).unwrap_or(i32::MAX);
                end == 0
                    || next_offsets
                        .get(&partition)
                        .is_some_and(|&next| next >= end)
            });
            if caught_up {
                break;
            }
        }
    }
    subscription.close().await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use sluice_infra::bus::Position;

    use super::*;

    fn dead(source: &str) -> Delivered {
        Delivered {
            topic: "sluice.dlq".into(),
            position: Position {
                partition: 0,
                offset: 7,
            },
            key: "acme/c1".into(),
            payload: b"action".to_vec(),
            headers: vec![
                ("sluice.error".into(), b"exhausted".to_vec()),
                ("sluice.source".into(), source.as_bytes().to_vec()),
                ("other".into(), b"kept".to_vec()),
            ],
        }
    }

    #[test]
    fn restore_keeps_key_payload_and_headers_but_the_error() {
        let record = restore(&dead("sluice.actions/3/42"), None).unwrap();
        assert_eq!(record.key, "acme/c1");
        assert_eq!(record.payload, b"action");
        let names: Vec<_> = record.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sluice.source", "other"]);
    }

    #[test]
    fn source_filter_matches_the_topic_of_sluice_source() {
        let dead = dead("sluice.actions/3/42");
        assert!(restore(&dead, Some("sluice.actions")).is_some());
        assert!(restore(&dead, Some("sluice.events")).is_none());
        // Topic names may contain '/'-free dots and dashes; the last two fields are numbers.
        assert!(restore(&self::dead("a.b-c/0/1"), Some("a.b-c")).is_some());
    }
}
