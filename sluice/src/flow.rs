//! `sluice flow …`: the flow authors' commands.

use std::{path::PathBuf, process::ExitCode};

use clap::Subcommand;

use crate::not_yet;

#[derive(Debug, Subcommand)]
pub(crate) enum FlowCommand {
    /// Check flow files; print one line per problem as `FILE: node <id>: <message>`.
    Validate {
        /// Flow definitions (JSON or YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compile a flow into its immutable, versioned graph.
    Compile {
        /// Flow definition (JSON or YAML).
        file: PathBuf,
        /// Where to write the compiled graph.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Draw a flow as Graphviz dot or Mermaid.
    Graph {
        /// Flow definition (JSON or YAML).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_parser = ["dot", "mermaid"], default_value = "dot")]
        format: String,
    },
    /// Run scenario files (events at virtual times, expected actions) on a virtual clock.
    Test {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compile a flow and publish it to the running engines.
    Submit {
        /// Flow definition (JSON or YAML).
        file: PathBuf,
        /// Event bus to publish to.
        #[arg(long, env = "SLUICE_BUS", default_value = "kafka://127.0.0.1:9092")]
        bus: String,
    },
}

pub(crate) fn run(command: FlowCommand) -> anyhow::Result<ExitCode> {
    match command {
        FlowCommand::Validate { .. } => not_yet("`sluice flow validate`", 3),
        FlowCommand::Compile { .. } => not_yet("`sluice flow compile`", 3),
        FlowCommand::Graph { .. } => not_yet("`sluice flow graph`", 3),
        FlowCommand::Test { .. } => not_yet("`sluice flow test`", 4),
        FlowCommand::Submit { .. } => not_yet("`sluice flow submit`", 5),
    }
}
