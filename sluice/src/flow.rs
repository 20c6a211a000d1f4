//! `sluice flow …`: the flow authors' commands. The flow language lives in
//! `sluice_engine::flow`; this file reads files, calls the compiler and prints.

use std::{fs, path::Path, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::Subcommand;
use sluice_engine::flow::{self, Compilation, SourceFormat};

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
        /// Where to write the compiled artifact (JSON: source, content hash, summary).
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
    /// Run scenario files (events at virtual times, expected actions and state) on a
    /// virtual clock; print a diff per failing step; exit 1 when any fails.
    Test {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compile a flow, record its version in CQL and publish it to the running engines;
    /// a flow with errors, or a version not newer than the recorded one, is refused (exit 1).
    Submit(crate::flow_submit::SubmitArgs),
}

pub(crate) fn run(command: FlowCommand) -> anyhow::Result<ExitCode> {
    match command {
        FlowCommand::Validate { files } => validate(&files),
        FlowCommand::Compile { file, output } => compile(&file, &output),
        FlowCommand::Graph { file, format } => graph(&file, &format),
        FlowCommand::Test { files } => test(&files),
        FlowCommand::Submit(args) => crate::flow_submit::run(args),
    }
}

pub(crate) fn load(file: &Path) -> anyhow::Result<Compilation> {
    let text =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(flow::compile_str(&text, SourceFormat::from_path(file)))
}

/// Prints every diagnostic as `FILE: node <id>: <message> (at <path>)`; errors go to
/// stdout with the warnings so the list reads in order.
#[allow(clippy::print_stdout)]
pub(crate) fn report(file: &Path, compilation: &Compilation) {
    for d in &compilation.diagnostics {
        println!("{}: {d}", file.display());
    }
}

#[allow(clippy::print_stdout)]
fn validate(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for file in files {
        let compilation = load(file)?;
        report(file, &compilation);
        match &compilation.flow {
            Some(f) => println!(
                "{}: ok: flow {} v{} ({} nodes, {} triggers)",
                file.display(),
                f.id,
                f.version,
                f.nodes.len(),
                f.triggers.len()
            ),
            None => failed += 1,
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn compiled(file: &Path) -> anyhow::Result<Result<flow::CompiledFlow, ExitCode>> {
    let compilation = load(file)?;
    report(file, &compilation);
    Ok(compilation.flow.ok_or(ExitCode::FAILURE))
}

fn compile(file: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    let flow = match compiled(file)? {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let text = serde_json::to_string_pretty(&flow::artifact(&flow))?;
    fs::write(output, text + "\n").with_context(|| format!("cannot write {}", output.display()))?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)]
fn graph(file: &Path, format: &str) -> anyhow::Result<ExitCode> {
    let flow = match compiled(file)? {
        Ok(flow) => flow,
        Err(code) => return Ok(code),
    };
    let text = if format == "mermaid" {
        flow::to_mermaid(&flow)
    } else {
        flow::to_dot(&flow)
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Runs each scenario file on a virtual clock; prints `PASS`/`FAIL` per file with a
/// diff per failing step. Exit 1 when any scenario fails or cannot run.
#[allow(clippy::print_stdout)]
fn test(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    use sluice_engine::scenario::{self, Scenario};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (mut passed, mut failed) = (0, 0);
    for file in files {
        let outcome = Scenario::load(file).and_then(|s| runtime.block_on(scenario::run(&s)));
        match outcome {
            Ok(outcome) if outcome.passed() => {
                passed += 1;
                println!("PASS {}: {}", file.display(), outcome.name);
            }
            Ok(outcome) => {
                failed += 1;
                println!("FAIL {}: {}", file.display(), outcome.name);
                print!("{outcome}");
            }
            Err(error) => {
                failed += 1;
                println!("FAIL {}: {error}", file.display());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
