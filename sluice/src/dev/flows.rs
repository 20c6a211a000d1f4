//! Loading `--flows DIR`: every flow file in the directory, compiled; any error
//! refuses the start with every diagnostic listed.

use std::{path::Path, process::ExitCode, sync::Arc};

use anyhow::Context;
use sluice_engine::{
    eval::FlowSet,
    flow::{self, Severity, SourceFormat},
};

/// Whether a file in the flows directory is a flow definition.
fn is_flow_file(path: &Path) -> bool {
    path.is_file()
        && matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        )
}

/// Compiles every flow in `dir` (not recursing). `Ok(Err(code))` when a flow has
/// errors; they are printed to stderr as `FILE: node <id>: <message>`.
pub(super) fn load(dir: &Path) -> anyhow::Result<Result<FlowSet, ExitCode>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading flows directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| is_flow_file(path))
        .collect();
    files.sort();
    let mut flows = FlowSet::new();
    let mut invalid = 0;
    for path in &files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading flow {}", path.display()))?;
        let compilation = flow::compile_str(&text, SourceFormat::from_path(path));
        for diagnostic in &compilation.diagnostics {
            if diagnostic.severity == Severity::Error {
                report(path, diagnostic);
            } else {
                tracing::warn!(file = %path.display(), "{diagnostic}");
            }
        }
        match compilation.flow {
            Some(compiled) => {
                tracing::info!(file = %path.display(), flow = compiled.id, version = compiled.version, "flow loaded");
                flows.insert(Arc::new(compiled));
            }
            None => invalid += 1,
        }
    }
    if invalid > 0 {
        report_refusal(invalid, dir);
        return Ok(Err(ExitCode::FAILURE));
    }
    if files.is_empty() {
        tracing::warn!(dir = %dir.display(), "no flow files (*.json, *.yaml) found");
    }
    Ok(Ok(flows))
}

#[allow(clippy::print_stderr)]
fn report(path: &Path, diagnostic: &flow::Diagnostic) {
    eprintln!("{}: {diagnostic}", path.display());
}

#[allow(clippy::print_stderr)]
fn report_refusal(invalid: usize, dir: &Path) {
    eprintln!(
        "sluice dev: {invalid} flow(s) in {} have errors; fix them (see `sluice flow validate`) and start again",
        dir.display()
    );
}
