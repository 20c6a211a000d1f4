//! Problems found in a flow definition, collected all at once.

use std::cell::RefCell;
use std::fmt;

use serde::Serialize;

/// How bad a problem is: errors refuse the flow, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow cannot be compiled.
    Error,
    /// The flow compiles, but probably does not do what its author meant.
    Warning,
}

/// One problem in a flow definition, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The flow's `id` as written (empty when it has none).
    pub flow_id: String,
    /// The node the problem is in; `None` for flow-level problems (triggers, settings).
    pub node_id: Option<String>,
    /// A JSON pointer (RFC 6901) into the definition, e.g. `/nodes/3/exits/yes`.
    pub path: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl Diagnostic {
    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `node <id>: [warning: ]<message> (at <path>)`, or `flow: …` for flow-level problems.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node_id {
            Some(id) => write!(f, "node {id}: ")?,
            None => f.write_str("flow: ")?,
        }
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(f, "{}", self.message)?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        Ok(())
    }
}

/// Collects diagnostics while a flow is compiled; shared by reference everywhere.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    flow_id: String,
    diagnostics: RefCell<Vec<Diagnostic>>,
}

impl Sink {
    pub(crate) fn set_flow_id(&mut self, id: &str) {
        self.flow_id = id.to_owned();
    }

    pub(crate) fn push(&self, severity: Severity, node: Option<&str>, path: &str, message: String) {
        self.diagnostics.borrow_mut().push(Diagnostic {
            severity,
            flow_id: self.flow_id.clone(),
            node_id: node.map(str::to_owned),
            path: path.to_owned(),
            message,
        });
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics.borrow().iter().any(Diagnostic::is_error)
    }

    /// The diagnostics in a stable order: by JSON path as written, errors before warnings.
    pub(crate) fn finish(self) -> Vec<Diagnostic> {
        let flow_id = self.flow_id;
        let mut all = self.diagnostics.into_inner();
        for d in &mut all {
            d.flow_id.clone_from(&flow_id);
        }
        all.sort_by(|a, b| {
            (path_key(&a.path), a.severity, &a.message).cmp(&(
                path_key(&b.path),
                b.severity,
                &b.message,
            ))
        });
        all.dedup();
        all
    }
}

/// Sorts `/nodes/10` after `/nodes/9`: numeric segments compare as numbers.
fn path_key(path: &str) -> Vec<(u64, &str)> {
    path.split('/')
        .map(|seg| match seg.parse::<u64>() {
            Ok(n) => (n, ""),
            Err(_) => (u64::MAX, seg),
        })
        .collect()
}

/// Where diagnostics go while one part of a flow is read: the sink, the node (if any) and
/// the JSON path of the value being read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub(crate) sink: &'a Sink,
    pub(crate) node: Option<&'a str>,
}

impl<'a> Cx<'a> {
    pub(crate) fn flow(sink: &'a Sink) -> Self {
        Cx { sink, node: None }
    }

    pub(crate) fn with_node(self, node: Option<&'a str>) -> Self {
        Cx {
            sink: self.sink,
            node,
        }
    }

    pub(crate) fn error(&self, path: &str, message: impl Into<String>) {
        self.sink
            .push(Severity::Error, self.node, path, message.into());
    }

    pub(crate) fn warning(&self, path: &str, message: impl Into<String>) {
        self.sink
            .push(Severity::Warning, self.node, path, message.into());
    }
}

/// Appends one segment to a JSON pointer, escaping `~` and `/` as RFC 6901 says.
pub(crate) fn join(path: &str, segment: impl fmt::Display) -> String {
    let seg = segment.to_string().replace('~', "~0").replace('/', "~1");
    format!("{path}/{seg}")
}
