//! The compiled, immutable flow: nodes in an arena, exits as indices, triggers indexed by
//! event type, settings, templates, the content hash and the version.

use serde_json::Value;
use sluice_schemas::EventType;

use super::node::{Node, NodeIndex};
use super::settings::Settings;
use super::template::{Templates, Text};
use super::trigger::Trigger;
use crate::{Error, Result};

/// Whether a flow owns a conversation session or runs in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// Owns a session, like a chatbot: at most one active run per session.
    Bot,
    /// Runs in the background, any number per contact.
    Event,
}

impl FlowKind {
    /// `bot` or `event`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Bot => "bot",
            FlowKind::Event => "event",
        }
    }
}

/// An index into [`CompiledFlow::triggers`].
pub type TriggerId = u32;

/// A flow compiled for evaluation. Immutable; share it behind an `Arc`.
#[derive(Debug)]
pub struct CompiledFlow {
    /// The flow's id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// Its version; runs stay on the version they started on.
    pub version: u32,
    /// Bot or event flow.
    pub kind: FlowKind,
    /// The nodes; [`NodeIndex`] indexes this.
    pub nodes: Vec<Node>,
    /// Display labels, parallel to `nodes`.
    pub labels: Vec<Option<String>>,
    /// The triggers; [`TriggerId`] indexes this.
    pub triggers: Vec<Trigger>,
    /// Where runs start unless their trigger names another node.
    pub start: NodeIndex,
    /// Variables a caller passes in (`start_flow` params); set when a run starts.
    pub params: Vec<String>,
    /// Settings.
    pub settings: Settings,
    /// BLAKE3 of the canonical JSON of the source, hex.
    pub content_hash: String,
    /// The definition as written (JSON value), which is what gets published and stored.
    pub source: Value,
    pub(crate) templates: Templates,
    pub(crate) by_event: Vec<Vec<TriggerId>>,
    pub(crate) pattern_inputs: Vec<Vec<TriggerId>>,
    pub(crate) schedules: Vec<TriggerId>,
}

impl CompiledFlow {
    /// The node at an index.
    ///
    /// Indices come from this flow's own exits and triggers, so they are always in range;
    /// an index from another flow panics.
    pub fn node(&self, index: NodeIndex) -> &Node {
        &self.nodes[index.get()]
    }

    /// Finds a node by id (to resume a stored run, which records node ids).
    pub fn node_index(&self, id: &str) -> Option<NodeIndex> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .and_then(|i| u32::try_from(i).ok())
            .map(NodeIndex)
    }

    /// Event triggers listening to this event type, in definition order.
    pub fn triggers_for(&self, event: EventType) -> &[TriggerId] {
        self.by_event.get(event as usize).map_or(&[], Vec::as_slice)
    }

    /// Pattern triggers that observe this event type (feed their windows).
    pub fn patterns_observing(&self, event: EventType) -> &[TriggerId] {
        self.pattern_inputs
            .get(event as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Schedule triggers.
    pub fn scheduled(&self) -> &[TriggerId] {
        &self.schedules
    }

    /// The flow's compiled templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// Renders a text of this flow with a context holding `contact`, `vars`, `event`,
    /// `session`, `flow` and `now`.
    pub fn render(&self, text: &Text, context: &minijinja::Value) -> Result<String> {
        self.templates
            .render(text, context)
            .map_err(|e| Error::Template {
                flow_id: self.id.clone(),
                template: match text {
                    Text::Template { name, .. } => name.to_string(),
                    Text::Literal(_) => String::new(),
                },
                message: e.to_string(),
            })
    }
}

/// The canonical JSON of a value: object keys sorted, no insignificant whitespace. The
/// content hash is computed over this, so key order and formatting do not change it.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
