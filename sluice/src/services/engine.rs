//! `sluice engine`: flags → [`EngineConfig`], then the engine until SIGINT/SIGTERM;
//! `sluice engine migrate` creates or migrates the CQL keyspace and exits.

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use clap::{Args, Subcommand};
use sluice_engine::{
    runtime::{Clock, TimerConfig, WallClock},
    service::EngineConfig,
};
use sluice_infra::{
    bus::{self, topics},
    cql::{Cql, CqlConfig},
    telemetry::Telemetry,
};

use super::{CommonArgs, debug_clock::ClockHook, shutdown_signal};

#[derive(Debug, Args)]
pub(crate) struct EngineArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// State store: `cql://host:port[,host:port]/keyspace[?replication_factor=N]` or `memory://`.
    #[arg(
        long,
        env = "SLUICE_STORE",
        default_value = "cql://127.0.0.1:9042/sluice"
    )]
    store: String,

    /// Consumer group.
    #[arg(long, env = "SLUICE_ENGINE_GROUP", default_value = "sluice-engine")]
    group: String,
    /// Topic events are read from.
    #[arg(long, env = "SLUICE_EVENTS_TOPIC", default_value = topics::EVENTS)]
    events_topic: String,
    /// Topic actions are written to.
    #[arg(long, env = "SLUICE_ACTIONS_TOPIC", default_value = topics::ACTIONS)]
    actions_topic: String,
    /// Compacted topic flows are read from.
    #[arg(long, env = "SLUICE_FLOWS_TOPIC", default_value = topics::FLOWS)]
    flows_topic: String,
    /// Dead-letter topic.
    #[arg(long, env = "SLUICE_DLQ_TOPIC", default_value = topics::DLQ)]
    dlq_topic: String,
    /// Partitions of the events topic when the bus cannot tell, and when creating topics.
    #[arg(long, env = "SLUICE_PARTITIONS_HINT", default_value_t = 12)]
    partitions_hint: i32,
    /// Create missing topics (replication 1; for development).
    #[arg(long, env = "SLUICE_CREATE_TOPICS")]
    create_topics: bool,
    /// Timers due within this many seconds are held in memory.
    #[arg(long, env = "SLUICE_TIMER_HORIZON_SECS", default_value_t = 60)]
    timer_horizon_secs: u64,
    /// At most this many due timers fire per second per partition while catching up.
    #[arg(long, env = "SLUICE_TIMER_RATE", default_value_t = 2_000)]
    timer_rate: u32,
    /// Test hook: run on a virtual clock starting at START (RFC 3339 or Unix ms),
    /// moved through `/debug/clock` on the metrics address. Refused unless
    /// `SLUICE_TEST_HOOKS=1`.
    #[arg(long, env = "SLUICE_VIRTUAL_CLOCK", value_name = "START")]
    virtual_clock: Option<String>,

    #[command(subcommand)]
    command: Option<EngineCommand>,
}

#[derive(Debug, Subcommand)]
enum EngineCommand {
    /// Create or migrate the CQL keyspace and tables, idempotently, then exit.
    Migrate,
}

impl EngineArgs {
    fn config(&self) -> EngineConfig {
        EngineConfig {
            group: self.group.clone(),
            events_topic: self.events_topic.clone(),
            actions_topic: self.actions_topic.clone(),
            flows_topic: self.flows_topic.clone(),
            dlq_topic: self.dlq_topic.clone(),
            partitions_hint: self.partitions_hint,
            create_topics: self.create_topics,
            timers: TimerConfig {
                horizon: Duration::from_secs(self.timer_horizon_secs.max(1)),
                rate: self.timer_rate.max(1),
                ..TimerConfig::default()
            },
        }
    }
}

pub(crate) async fn run(args: EngineArgs) -> anyhow::Result<ExitCode> {
    if let Some(EngineCommand::Migrate) = args.command {
        let config = CqlConfig::from_url(&args.store)?;
        let cql = Cql::connect(&config).await?;
        let versions = cql.applied_migrations().await?;
        tracing::info!(store = %args.store, ?versions, "CQL schema is current");
        return Ok(ExitCode::SUCCESS);
    }
    let hook = ClockHook::from_flag(args.virtual_clock.as_deref())?;
    let telemetry = Telemetry::new("engine")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let extra = hook.as_ref().map_or_else(Router::new, ClockHook::routes);
    let (addr, server) = telemetry
        .serve_with(args.common.metrics_addr, extra, async {
            let _ = stopped.await;
        })
        .await?;
    let bus = bus::connect(&args.common.bus).await?;
    let engine = args
        .config()
        .build_with_clock(
            bus,
            &args.store,
            telemetry.registry(),
            hook.as_ref()
                .map_or_else(|| Arc::new(WallClock) as Arc<dyn Clock>, ClockHook::clock),
        )
        .await
        .with_context(|| {
            format!(
                "starting the engine on {} and {}",
                args.common.bus, args.store
            )
        })?;
    if let Some(hook) = &hook {
        hook.attach(Arc::clone(engine.timers()));
    }
    telemetry.set_ready(true);
    tracing::info!(
        %addr,
        bus = %args.common.bus,
        store = %args.store,
        partitions = engine.partitions(),
        "sluice engine is up"
    );
    shutdown_signal().await?;
    tracing::info!("shutting down: finishing the inputs in hand, committing, leaving the group");
    telemetry.set_ready(false);
    engine.shutdown().await;
    let _ = stop.send(());
    let _ = server.await;
    Ok(ExitCode::SUCCESS)
}
