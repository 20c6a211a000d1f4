//! `sluice dev`: everything in one process on embedded backends, no servers.
//!
//! Today it runs the embedded bus with Sluice's topics and the telemetry endpoint,
//! and feeds JSON Lines events into `sluice.events` — each one validated and
//! Avro-encoded exactly as the distributed pipeline does, invalid ones to
//! `sluice.dlq` with the reason. Flow evaluation arrives with issue #4.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
};

use anyhow::Context;
use clap::Args;
use prometheus::{IntCounterVec, Opts};
use sluice_infra::{
    bus::{EventBus, MemoryBus, Record, TopicSpec, topics},
    telemetry::Telemetry,
};
use sluice_schemas::Event;

use crate::not_yet;

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// JSON Lines file of events to feed in (`-` for standard input). Without it,
    /// `sluice dev` serves until interrupted.
    #[arg(long, value_name = "FILE|-")]
    events: Option<PathBuf>,

    /// Directory of flow definitions to run.
    #[arg(long, env = "SLUICE_FLOWS", value_name = "DIR")]
    flows: Option<PathBuf>,

    /// Directory for the embedded durable store (default: state kept in memory).
    #[arg(long, env = "SLUICE_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
}

/// Partitions of the embedded `sluice.events` and `sluice.actions`.
const PARTITIONS: i32 = 8;

pub(crate) fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    if let Some(flows) = &args.flows {
        return not_yet(
            &format!("running the flows in {} (flow evaluation)", flows.display()),
            4,
        );
    }
    if let Some(data) = &args.data {
        return not_yet(
            &format!("the embedded durable store in {}", data.display()),
            4,
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: DevArgs) -> anyhow::Result<ExitCode> {
    let telemetry = Telemetry::new("dev")?;
    let events_total = IntCounterVec::new(
        Opts::new(
            "sluice_dev_events_total",
            "Events fed to `sluice dev`, by outcome.",
        ),
        &["outcome"],
    )?;
    telemetry
        .registry()
        .register(Box::new(events_total.clone()))?;

    let bus = MemoryBus::new(PARTITIONS);
    bus.ensure_topics(&TopicSpec::sluice_topics(PARTITIONS, 1))
        .await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = telemetry
        .serve(args.metrics_addr, async {
            let _ = stopped.await;
        })
        .await?;
    telemetry.set_ready(true);
    tracing::info!(%addr, bus = "memory://", "sluice dev is up; flow evaluation is not implemented yet (issue #4), so no actions are produced");

    match &args.events {
        Some(path) => {
            let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                Box::new(BufReader::new(std::io::stdin()))
            } else {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("opening events file {}", path.display()))?;
                Box::new(BufReader::new(file))
            };
            let source = path.display().to_string();
            let fed = feed(&bus, reader, &source).await?;
            events_total
                .with_label_values(&["published"])
                .inc_by(fed.published);
            events_total
                .with_label_values(&["dead_lettered"])
                .inc_by(fed.dead_lettered);
            tracing::info!(
                source,
                published = fed.published,
                dead_lettered = fed.dead_lettered,
                "events fed to {}",
                topics::EVENTS
            );
        }
        None => {
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            tracing::info!("interrupted; shutting down");
        }
    }
    let _ = stop.send(());
    server.await.context("telemetry endpoint")?;
    Ok(ExitCode::SUCCESS)
}

/// What became of the fed events.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fed {
    published: u64,
    dead_lettered: u64,
}

/// Reads JSON Lines events and publishes each valid one to `sluice.events` (Avro,
/// key `tenant/contact_id`); a line that is not a valid event goes to `sluice.dlq`
/// as is, with the reason and the line in headers. Blank lines are skipped.
async fn feed(bus: &dyn EventBus, reader: impl BufRead, source: &str) -> anyhow::Result<Fed> {
    let mut fed = Fed::default();
    for (index, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {source}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let line_number = index + 1;
        let decoded = serde_json::from_str::<Event>(&line)
            .map_err(|e| format!("not an event: {e}"))
            .and_then(|event| {
                event.validate().map_err(|e| e.to_string())?;
                let bytes = event.encode().map_err(|e| e.to_string())?;
                Ok((event.key(), bytes))
            });
        match decoded {
            Ok((key, bytes)) => {
                bus.publish(topics::EVENTS, vec![Record::new(key, bytes)])
                    .await?;
                fed.published += 1;
            }
            Err(reason) => {
                tracing::warn!(
                    source,
                    line = line_number,
                    reason,
                    "invalid event sent to {}",
                    topics::DLQ
                );
                let record = Record::new("", line)
                    .with_header("sluice.error", reason)
                    .with_header("sluice.source", format!("{source}:{line_number}"));
                bus.publish(topics::DLQ, vec![record]).await?;
                fed.dead_lettered += 1;
            }
        }
    }
    Ok(fed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn valid_events_are_published_and_invalid_ones_dead_lettered() {
        let bus = MemoryBus::new(PARTITIONS);
        bus.ensure_topics(&TopicSpec::sluice_topics(PARTITIONS, 1))
            .await
            .unwrap();
        let input = include_str!("../../examples/events/quickstart.jsonl").to_owned()
            + "\n{\"id\": \"broken\"}\nnot json at all\n";
        let fed = feed(&bus, input.as_bytes(), "test").await.unwrap();
        let valid = include_str!("../../examples/events/quickstart.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count() as u64;
        assert_eq!(
            fed,
            Fed {
                published: valid,
                dead_lettered: 2
            }
        );

        let mut events = bus.subscribe("t", &[topics::EVENTS]).await.unwrap();
        let delivered = events.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(delivered.len() as u64, valid);
        for record in delivered {
            let event = Event::decode(&record.payload).unwrap();
            assert_eq!(record.key, event.key());
        }
        let mut dlq = bus.subscribe("t", &[topics::DLQ]).await.unwrap();
        let dead = dlq.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(dead.len(), 2);
        let reason = String::from_utf8(dead[0].header("sluice.error").unwrap().to_vec()).unwrap();
        assert!(reason.starts_with("not an event:"), "{reason}");
        assert_eq!(
            dead[1].header("sluice.source"),
            Some(format!("test:{}", valid + 3).as_bytes())
        );
    }
}
