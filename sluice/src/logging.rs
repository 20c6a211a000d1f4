//! Log output: `tracing` events as text for people or JSON for log pipelines.

use clap::{Args, ValueEnum};
use tracing_subscriber::{EnvFilter, fmt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (production).
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct LoggingArgs {
    /// Log format.
    #[arg(
        long,
        env = "SLUICE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,

    /// Log filter in `RUST_LOG` syntax, e.g. `info,sluice_engine=debug`.
    #[arg(long, env = "SLUICE_LOG", default_value = "info", global = true)]
    log: String,
}

/// Installs the global subscriber; logs go to standard error so that standard
/// output stays free for command results (actions, JSON Lines).
pub(crate) fn init(args: &LoggingArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log)
        .map_err(|e| anyhow::anyhow!("invalid --log filter {:?}: {e}", args.log))?;
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
