//! `sluice dev`: everything in one process on embedded backends, no servers.
//!
//! Loads and compiles every flow in `--flows` (refusing to start when one has
//! errors), feeds JSON Lines events into the in-process bus (`sluice.events`,
//! partitioned by contact like Kafka; invalid lines to `sluice.dlq` with the
//! reason), runs them through the embedded runtime and prints every action as
//! one JSON line on stdout (logs go to stderr). It keeps running so that waits
//! fire in wall-clock time until interrupted, or with `--exit-when-idle` until
//! nothing is left to do. With `--data DIR` contact states and timers live in a
//! `redb` file there, so a restart on the same directory resumes runs and timers.

mod feed;
mod flows;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Args;
use prometheus::{IntCounter, IntCounterVec, Opts};
use sluice_engine::runtime::{Partition, Processor, Runtime, TimerConfig, WallClock};
use sluice_infra::{
    bus::{EventBus, MemoryBus, TopicSpec, topics},
    store::{FileStore, MemoryStore, TimerStore},
    telemetry::Telemetry,
};
use sluice_schemas::Action;

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// JSON Lines file of events to feed in (`-` for standard input).
    #[arg(long, value_name = "FILE|-")]
    events: Option<PathBuf>,

    /// Directory of flow definitions (`*.json`, `*.yaml`, `*.yml`) to run.
    #[arg(long, env = "SLUICE_FLOWS", value_name = "DIR")]
    flows: Option<PathBuf>,

    /// Directory for the embedded durable store (`sluice.redb`: contact states and
    /// pending timers). Default: kept in memory, lost on exit.
    #[arg(long, env = "SLUICE_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Exit once every event is processed and no timer is pending, instead of
    /// running until interrupted (for scripts and tests).
    #[arg(long, env = "SLUICE_EXIT_WHEN_IDLE")]
    exit_when_idle: bool,

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
}

/// Partitions of the embedded `sluice.events` and `sluice.actions`, and workers.
const PARTITIONS: i32 = 8;

pub(crate) fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let flows = match &args.flows {
        Some(dir) => match flows::load(dir)? {
            Ok(flows) => flows,
            Err(code) => return Ok(code),
        },
        None => {
            tracing::warn!("no --flows given: events are processed, but no flow runs");
            sluice_engine::eval::FlowSet::new()
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(serve(args, flows))
}

async fn serve(args: DevArgs, flows: sluice_engine::eval::FlowSet) -> anyhow::Result<ExitCode> {
    let telemetry = Telemetry::new("dev")?;
    let events_total = IntCounterVec::new(
        Opts::new(
            "sluice_dev_events_total",
            "Events fed to `sluice dev`, by outcome.",
        ),
        &["outcome"],
    )?;
    let actions_total =
        IntCounter::new("sluice_dev_actions_total", "Actions `sluice dev` printed.")?;
    telemetry
        .registry()
        .register(Box::new(events_total.clone()))?;
    telemetry
        .registry()
        .register(Box::new(actions_total.clone()))?;

    let store: Arc<dyn TimerStore> = match &args.data {
        Some(dir) => {
            let path = dir.join("sluice.redb");
            Arc::new(FileStore::open(&path).with_context(|| format!("opening {}", path.display()))?)
        }
        None => Arc::new(MemoryStore::default()),
    };
    let bus = MemoryBus::new(PARTITIONS);
    bus.ensure_topics(&TopicSpec::sluice_topics(PARTITIONS, 1))
        .await?;
    let bus: Arc<dyn EventBus> = Arc::new(bus);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = telemetry
        .serve(args.metrics_addr, async {
            let _ = stopped.await;
        })
        .await?;

    let printer = tokio::spawn(print_actions(Arc::clone(&bus), actions_total));
    let processor = Processor::new(Arc::new(flows), Arc::clone(&store), Arc::clone(&bus));
    let partitions = (0..PARTITIONS)
        .map(|i| Partition::new(i, PARTITIONS, processor.clone(), TimerConfig::default()))
        .collect();
    let runtime = Runtime::start(
        Arc::clone(&bus),
        "sluice-dev",
        partitions,
        Arc::new(WallClock),
    )
    .await?;
    telemetry.set_ready(true);
    tracing::info!(%addr, bus = "memory://", data = ?args.data, "sluice dev is up");

    let mut fed = feed::Fed::default();
    if let Some(path) = &args.events {
        fed = feed::feed_source(bus.as_ref(), path).await?;
        events_total
            .with_label_values(&["published"])
            .inc_by(fed.published);
        events_total
            .with_label_values(&["dead_lettered"])
            .inc_by(fed.dead_lettered);
        tracing::info!(
            published = fed.published,
            dead_lettered = fed.dead_lettered,
            "events fed to {}",
            topics::EVENTS
        );
    }
    if args.exit_when_idle {
        wait_until_idle(&runtime, store.as_ref(), fed.published).await?;
        tracing::info!("idle: every event processed, no timer pending; exiting");
    } else {
        interrupted().await?;
        tracing::info!("interrupted; shutting down");
    }
    runtime.shutdown().await;
    printer.abort();
    // Print what the workers published before they stopped.
    let _ = drain_actions(bus.as_ref()).await;
    let _ = stop.send(());
    server.await.context("telemetry endpoint")?;
    Ok(ExitCode::SUCCESS)
}

async fn interrupted() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// Waits until every fed event is processed, no worker is busy and no timer is
/// pending, twice in a row 100 ms apart.
async fn wait_until_idle(
    runtime: &Runtime,
    store: &dyn TimerStore,
    fed: u64,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::SeqCst;
    let mut quiet = 0;
    while quiet < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stats = runtime.stats();
        let idle = stats.events.load(SeqCst) >= fed
            && stats.busy.load(SeqCst) == 0
            && store.due(None, i64::MAX, 1).await?.is_empty();
        quiet = if idle { quiet + 1 } else { 0 };
    }
    Ok(())
}

const PRINTER_GROUP: &str = "sluice-dev-printer";

/// Prints each action on `sluice.actions` as one JSON line, until aborted.
async fn print_actions(bus: Arc<dyn EventBus>, printed: IntCounter) -> anyhow::Result<()> {
    let mut actions = bus.subscribe(PRINTER_GROUP, &[topics::ACTIONS]).await?;
    loop {
        let batch = actions.poll(256, Duration::from_millis(200)).await?;
        for record in &batch {
            print_action(&record.payload);
            printed.inc();
            actions.commit(topics::ACTIONS, record.position)?;
        }
    }
}

/// Prints what is left on `sluice.actions` after the printer stopped.
async fn drain_actions(bus: &dyn EventBus) -> anyhow::Result<()> {
    let mut actions = bus.subscribe(PRINTER_GROUP, &[topics::ACTIONS]).await?;
    loop {
        let batch = actions.poll(256, Duration::from_millis(50)).await?;
        if batch.is_empty() {
            return Ok(());
        }
        for record in &batch {
            print_action(&record.payload);
            actions.commit(topics::ACTIONS, record.position)?;
        }
    }
}

#[allow(clippy::print_stdout)]
fn print_action(payload: &[u8]) {
    use std::io::Write;
    match Action::decode(payload).map(|a| serde_json::to_string(&a)) {
        Ok(Ok(line)) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        Ok(Err(error)) => tracing::error!(%error, "cannot render an action as JSON"),
        Err(error) => tracing::error!(%error, "undecodable action on {}", topics::ACTIONS),
    }
}
