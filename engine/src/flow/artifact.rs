//! The compiled artifact `sluice flow compile` writes and `sluice flow submit` publishes:
//! the source with its content hash, plus the summary for people. Engines recompile the
//! source ([`from_artifact`]) and check the hash.

use serde_json::{Value, json};

use super::compile::compile_value;
use super::diagnostic::{Diagnostic, Severity};
use super::graph::{CompiledFlow, canonical_json};
use super::summary::summary;
use crate::{Error, Result};

/// The artifact's format tag.
pub const ARTIFACT_FORMAT: &str = "sluice.flow.compiled/1";

/// The artifact for a compiled flow.
pub fn artifact(flow: &CompiledFlow) -> Value {
    json!({
        "format": ARTIFACT_FORMAT,
        "id": flow.id,
        "version": flow.version,
        "kind": flow.kind.as_str(),
        "content_hash": flow.content_hash,
        "nodes": flow.nodes.len(),
        "triggers": flow.triggers.len(),
        "summary": summary(flow).lines().collect::<Vec<_>>(),
        "source": flow.source,
    })
}

/// Compiles an artifact's source and checks its format and content hash.
pub fn from_artifact(artifact: &Value) -> Result<CompiledFlow> {
    let invalid = |message: String| Error::InvalidFlow {
        flow_id: artifact
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        errors: vec![Diagnostic {
            severity: Severity::Error,
            flow_id: String::new(),
            node_id: None,
            path: String::new(),
            message,
        }],
    };
    if artifact.get("format").and_then(Value::as_str) != Some(ARTIFACT_FORMAT) {
        return Err(invalid(format!(
            "not a compiled flow artifact (format must be {ARTIFACT_FORMAT:?})"
        )));
    }
    let source = artifact.get("source").cloned().unwrap_or(Value::Null);
    let expected = artifact
        .get("content_hash")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let actual = blake3::hash(canonical_json(&source).as_bytes())
        .to_hex()
        .to_string();
    if expected != actual {
        return Err(invalid(format!(
            "content hash mismatch: the artifact says {expected}, the source hashes to {actual}"
        )));
    }
    compile_value(source).into_result()
}
