//! `sluice flow submit`: compile a flow, record its version in CQL, publish it to the
//! flows topic. The rules live in `sluice_engine::catalog`; this file wires backends.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use clap::Args;
use sluice_engine::{
    Error,
    catalog::{self, CqlFlowStore, FlowStore, MemoryFlowStore},
};
use sluice_infra::{
    bus::topics,
    cql::{Cql, CqlConfig},
};

use crate::flow::{load, report};

/// Flags of `sluice flow submit`.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// Flow definition (JSON or YAML).
    file: PathBuf,
    /// The tenant the flow belongs to (no `/`).
    #[arg(long, env = "SLUICE_TENANT")]
    tenant: String,
    /// Event bus to publish to: `kafka://host:port[,host:port]` or `memory://`.
    #[arg(long, env = "SLUICE_BUS", default_value = "kafka://127.0.0.1:9092")]
    bus: String,
    /// Where flow versions are recorded: `cql://host:port[,host:port]/keyspace` or `memory://`.
    #[arg(
        long,
        env = "SLUICE_STORE",
        default_value = "cql://127.0.0.1:9042/sluice"
    )]
    store: String,
    /// The flows topic (compacted, key `tenant/flow_id`).
    #[arg(long, env = "SLUICE_FLOWS_TOPIC", default_value = topics::FLOWS)]
    flows_topic: String,
    /// Replication factor of the flows topic if submit has to create it.
    #[arg(long, env = "SLUICE_FLOWS_REPLICATION", default_value_t = 1)]
    flows_replication: i32,
}

/// Compiles (printing every diagnostic; exit 1 on errors, nothing published), then
/// records and publishes; prints one summary line. A refused version exits 1.
pub(crate) fn run(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let compilation = load(&args.file)?;
    report(&args.file, &compilation);
    let Some(flow) = compilation.flow else {
        return Ok(ExitCode::FAILURE);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let topic = catalog::flows_topic(&args.flows_topic, args.flows_replication);
    let outcome = runtime.block_on(async {
        let bus = sluice_infra::bus::connect(&args.bus).await?;
        let store: Arc<dyn FlowStore> = if args.store.starts_with("memory://") {
            Arc::new(MemoryFlowStore::new())
        } else {
            let cql = Cql::connect(&CqlConfig::from_url(&args.store)?).await?;
            Arc::new(CqlFlowStore::new(cql).await?)
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        anyhow::Ok(catalog::submit(&*bus, &*store, &topic, &args.tenant, &flow, now_ms).await)
    })?;
    match outcome {
        Ok(submitted) => {
            #[allow(clippy::print_stdout)]
            {
                println!("{}: {submitted}", args.file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ Error::FlowRefused { .. }) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{}: refused: {error}", args.file.display());
            }
            Ok(ExitCode::FAILURE)
        }
        Err(error) => Err(error).with_context(|| {
            format!(
                "submitting {} to {} and {}",
                args.file.display(),
                args.bus,
                args.store
            )
        }),
    }
}
