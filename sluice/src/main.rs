//! `sluice`: one binary that starts each Sluice service (`ingest`, `engine`,
//! `actions`), runs everything in one process on embedded backends (`dev`), and
//! serves flow authors (`flow …`). It parses flags, wires libraries together and
//! starts them; the logic lives in the library crates.

mod dev;
mod dlq;
mod flow;
mod flow_submit;
mod logging;
mod services;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc, not the system allocator: the evaluator allocates small, short-lived
/// objects per event, and its throughput in BENCHMARKS.md was measured with mimalloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sluice: a distributed event-streaming pipeline that runs customer-messaging
/// flows (triggers, conditions, waits, actions) for every contact in real time.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    logging: logging::LoggingArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run everything in one process on embedded backends: no servers needed.
    Dev(dev::DevArgs),
    /// Run the flow engine: consume events, evaluate flows, keep state and timers, emit actions.
    Engine(services::EngineArgs),
    /// Run the webhook ingest service: verify, normalize and publish channel events.
    Ingest(services::IngestArgs),
    /// Run the action workers: deliver messages and calls, each action once.
    Actions(Box<services::ActionsArgs>),
    /// Work with flow definitions: validate, compile, draw, test and submit them.
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// Work with the dead-letter topic: replay records once their cause is fixed.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = logging::init(&cli.logging) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("sluice: {error:#}");
        }
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Engine(args) => services::engine(args),
        Command::Ingest(args) => services::ingest(args),
        Command::Actions(args) => services::actions(*args),
        Command::Flow(command) => flow::run(command),
        Command::Dlq(command) => dlq::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "sluice failed");
            #[allow(clippy::print_stderr)]
            {
                eprintln!("sluice: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}
