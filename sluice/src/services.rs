//! The three distributed services: flags → config, then the service until SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Args;
use sluice_infra::{
    bus::{TopicSpec, topics},
    telemetry::Telemetry,
};
use sluice_ingest::{Ingest, IngestConfig, IngestSettings};

mod actions;
mod debug_clock;
mod engine;

pub(crate) use actions::ActionsArgs;
pub(crate) use engine::EngineArgs;

/// Flags every service shares.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Event bus: `kafka://host:port[,host:port][?librdkafka.property=value]` or `memory://`.
    #[arg(long, env = "SLUICE_BUS", default_value = "kafka://127.0.0.1:9092")]
    pub(crate) bus: String,

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    pub(crate) metrics_addr: SocketAddr,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// Where provider webhooks are received.
    #[arg(long, env = "SLUICE_INGEST_ADDR", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,

    /// Tenants, channels and their secrets: a YAML or JSON file (see the README).
    #[arg(long, env = "SLUICE_INGEST_CONFIG")]
    config: PathBuf,

    /// The public base URL providers call (e.g. `https://hooks.example.com`); Twilio signs it.
    #[arg(long, env = "SLUICE_INGEST_PUBLIC_URL")]
    public_url: Option<String>,

    /// Largest accepted request body, in bytes; larger ones get 413.
    #[arg(long, env = "SLUICE_INGEST_BODY_LIMIT", default_value_t = 1024 * 1024)]
    body_limit: usize,

    /// How long a request waits for Kafka's acknowledgement before answering 503 (`250ms`, `5s`).
    #[arg(long, env = "SLUICE_INGEST_PUBLISH_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    publish_timeout: Duration,

    /// Requests waiting for Kafka beyond which new ones get 429.
    #[arg(long, env = "SLUICE_INGEST_MAX_IN_FLIGHT", default_value_t = 10_000)]
    max_in_flight: usize,

    /// Recently published event ids remembered to drop provider retries (0 disables).
    #[arg(long, env = "SLUICE_INGEST_DEDUPE_CAPACITY", default_value_t = 100_000)]
    dedupe_capacity: usize,

    /// How far a Stripe signature's timestamp may be from now.
    #[arg(long, env = "SLUICE_INGEST_STRIPE_TOLERANCE", default_value = "300s", value_parser = parse_duration)]
    stripe_tolerance: Duration,

    /// Topic events are published to.
    #[arg(long, env = "SLUICE_EVENTS_TOPIC", default_value = topics::EVENTS)]
    events_topic: String,

    /// Partitions of `sluice.events` if ingest has to create it (production creates topics in deploy/).
    #[arg(long, env = "SLUICE_EVENTS_PARTITIONS", default_value_t = 12)]
    events_partitions: i32,

    /// Replication factor of `sluice.events` if ingest has to create it.
    #[arg(long, env = "SLUICE_EVENTS_REPLICATION", default_value_t = 1)]
    events_replication: i32,
}

/// Parses `250ms`, `5s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 250ms, 5s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}; use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

pub(crate) fn engine(args: EngineArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(engine::run(args))
}

pub(crate) fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let config = IngestConfig::load(&args.config)?;
    let settings = IngestSettings {
        listen: args.listen,
        body_limit: args.body_limit,
        publish_timeout: args.publish_timeout,
        max_in_flight: args.max_in_flight,
        public_url: args.public_url,
        dedupe_capacity: args.dedupe_capacity,
        stripe_tolerance: args.stripe_tolerance,
        events_topic: args.events_topic.clone(),
        ..IngestSettings::default()
    };
    let mut events_topic =
        TopicSpec::sluice_topics(args.events_partitions, args.events_replication)
            .into_iter()
            .find(|spec| spec.name == topics::EVENTS)
            .context("the events topic spec")?;
    events_topic.name.clone_from(&args.events_topic);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let telemetry = Telemetry::new("ingest")?;
        let bus = sluice_infra::bus::connect(&args.common.bus).await?;
        let ingest = Ingest::new(config, settings, bus, &telemetry)?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let (metrics_addr, metrics) = telemetry
            .serve(args.common.metrics_addr, until_stopped(stopped.clone()))
            .await?;
        let (addr, server) = ingest
            .serve(events_topic, until_stopped(stopped))
            .await?;
        tracing::info!(%addr, %metrics_addr, bus = %args.common.bus, topic = %args.events_topic, "sluice ingest is up");
        shutdown_signal().await?;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop.send(true);
        server.await.context("webhook server")?;
        metrics.await.context("telemetry endpoint")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what Kubernetes sends).
pub(crate) async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

pub(crate) fn actions(args: ActionsArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(actions::run(args))?;
    Ok(ExitCode::SUCCESS)
}
