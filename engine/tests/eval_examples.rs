//! The example flows driven through their scenario files (`examples/flows/tests/`), on
//! the embedded runtime's virtual clock, as `sluice flow test` runs them.

use std::path::Path;

use sluice_engine::scenario::{Scenario, run};

#[test]
fn every_example_scenario_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/flows/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/flows/tests")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "a scenario per example flow");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut report = Vec::new();
    for path in &files {
        let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = rt
            .block_on(run(&scenario))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for f in &outcome.failures {
            report.push(format!(
                "{}: step {} ({}): {:?}\n  actual: {:?}",
                path.display(),
                f.step,
                f.label,
                f.problems,
                f.actual_actions
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}
