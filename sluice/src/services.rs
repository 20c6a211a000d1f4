//! The three distributed services. Their flags are fixed now so that manifests and
//! docs can name them; the services themselves arrive with their issues.

use std::{net::SocketAddr, process::ExitCode};

use anyhow::Context;
use clap::{Args, Subcommand};
use sluice_infra::{
    bus::topics,
    cql::{Cql, CqlConfig},
};

use crate::not_yet;

/// Flags every service shares.
#[derive(Debug, Args)]
pub(crate) struct CommonArgs {
    /// Event bus: `kafka://host:port[,host:port][?librdkafka.property=value]` or `memory://`.
    #[arg(long, env = "SLUICE_BUS", default_value = "kafka://127.0.0.1:9092")]
    bus: String,

    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "0.0.0.0:9464")]
    metrics_addr: SocketAddr,
}

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

    #[command(subcommand)]
    command: Option<EngineCommand>,
}

#[derive(Debug, Subcommand)]
enum EngineCommand {
    /// Create or migrate the CQL keyspace and tables, idempotently, then exit.
    Migrate,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// Where provider webhooks are received.
    #[arg(long, env = "SLUICE_INGEST_ADDR", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

#[derive(Debug, Args)]
pub(crate) struct ActionsArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// State store for the action dedupe table: `cql://…` or `memory://`.
    #[arg(
        long,
        env = "SLUICE_STORE",
        default_value = "cql://127.0.0.1:9042/sluice"
    )]
    store: String,
}

pub(crate) fn engine(args: EngineArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(EngineCommand::Migrate) => {
            let config = CqlConfig::from_url(&args.store)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let cql = runtime.block_on(Cql::connect(&config))?;
            let versions = runtime.block_on(cql.applied_migrations())?;
            tracing::info!(store = %args.store, ?versions, "CQL schema is current");
            Ok(ExitCode::SUCCESS)
        }
        None => not_yet(
            &format!(
                "`sluice engine` (consuming {} from {}, state in {}, metrics on {})",
                topics::EVENTS,
                args.common.bus,
                args.store,
                args.common.metrics_addr
            ),
            5,
        ),
    }
}

pub(crate) fn ingest(args: IngestArgs) -> anyhow::Result<ExitCode> {
    not_yet(
        &format!(
            "`sluice ingest` (webhooks on {}, publishing to {} on {}, metrics on {})",
            args.listen,
            topics::EVENTS,
            args.common.bus,
            args.common.metrics_addr
        ),
        6,
    )
}

pub(crate) fn actions(args: ActionsArgs) -> anyhow::Result<ExitCode> {
    not_yet(
        &format!(
            "`sluice actions` (consuming {} from {}, dedupe in {}, metrics on {})",
            topics::ACTIONS,
            args.common.bus,
            args.store,
            args.common.metrics_addr
        ),
        7,
    )
}
