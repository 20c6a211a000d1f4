//! Golden tests: every example flow's compiled summary, and every broken flow's exact
//! diagnostics, pinned in files. Regenerate with `UPDATE_GOLDEN=1 cargo test -p sluice-engine --test golden`.

use std::fs;
use std::path::{Path, PathBuf};

use sluice_engine::flow::{SourceFormat, compile_str, summary};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    out.sort();
    out
}

/// Compares `actual` with the golden file, or rewrites it under `UPDATE_GOLDEN=1`.
fn check(golden: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(golden, actual).unwrap();
        return None;
    }
    let expected = fs::read_to_string(golden).unwrap_or_default();
    (expected != actual).then(|| format!("{} differs (run with UPDATE_GOLDEN=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}", golden.display()))
}

#[test]
fn every_example_compiles_to_its_pinned_summary() {
    let examples = files(&root().join("../examples/flows"), &["json", "yaml", "yml"]);
    assert!(examples.len() >= 7, "examples missing: {examples:?}");
    let mut failures = Vec::new();
    for path in examples {
        let text = fs::read_to_string(&path).unwrap();
        let compilation = compile_str(&text, SourceFormat::from_path(&path));
        assert!(
            compilation.diagnostics.is_empty(),
            "{}: {:#?}",
            path.display(),
            compilation.diagnostics
        );
        let flow = compilation.flow.unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        failures.extend(check(
            &root().join("tests/golden").join(format!("{name}.summary")),
            &summary(&flow),
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_broken_flow_reports_its_pinned_diagnostics() {
    let broken = files(&root().join("tests/broken"), &["json", "yaml"]);
    assert!(broken.len() >= 8, "broken flows missing: {broken:?}");
    let mut failures = Vec::new();
    for path in broken {
        let text = fs::read_to_string(&path).unwrap();
        let compilation = compile_str(&text, SourceFormat::from_path(&path));
        assert!(
            compilation.flow.is_none(),
            "{} compiled but should not",
            path.display()
        );
        let actual: String = compilation
            .diagnostics
            .iter()
            .map(|d| format!("{d}\n"))
            .collect();
        failures.extend(check(&path.with_extension("expected"), &actual));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
