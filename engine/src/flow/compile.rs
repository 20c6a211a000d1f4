//! The compiler: source text → JSON value → every node, trigger and setting read and
//! checked → graph analysis → [`CompiledFlow`], or the complete list of diagnostics.

use std::collections::HashMap;

use serde_json::Value;
use sluice_schemas::EventType;

use super::analysis::{self, GraphNode};
use super::condition::{Condition, read_condition};
use super::diagnostic::{Cx, Diagnostic, Severity, Sink, join};
use super::graph::{CompiledFlow, FlowKind, TriggerId, canonical_json};
use super::node::{ExitRule, Node, NodeIndex, NodeKind, WaitSpec};
use super::operand::{Operand, is_identifier};
use super::params::{Obj, kind, strings};
use super::read_node::{NODE_TYPES, ReadNode, read_node};
use super::settings::{Settings, read_settings};
use super::template::{Templates, Text};
use super::trigger::{
    Reentry, Trigger, TriggerKind, read_event_match, read_pattern, read_reentry, read_schedule,
};
use crate::{Error, Result};

/// Which syntax a definition is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// JSON.
    Json,
    /// YAML (a superset of JSON; parsed into the same JSON value).
    Yaml,
}

impl SourceFormat {
    /// YAML for `.yaml` / `.yml` file names, JSON otherwise.
    pub fn from_path(path: &std::path::Path) -> SourceFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => SourceFormat::Yaml,
            _ => SourceFormat::Json,
        }
    }
}

/// The result of compiling one definition: the flow when there were no errors, and every
/// diagnostic (errors and warnings) in a stable order.
#[derive(Debug)]
pub struct Compilation {
    /// The compiled flow; `None` when any diagnostic is an error.
    pub flow: Option<CompiledFlow>,
    /// Everything found, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
}

impl Compilation {
    /// The flow, or [`Error::InvalidFlow`] with every error.
    pub fn into_result(self) -> Result<CompiledFlow> {
        match self.flow {
            Some(flow) => Ok(flow),
            None => Err(Error::InvalidFlow {
                flow_id: self
                    .diagnostics
                    .first()
                    .map(|d| d.flow_id.clone())
                    .unwrap_or_default(),
                errors: self
                    .diagnostics
                    .into_iter()
                    .filter(Diagnostic::is_error)
                    .collect(),
            }),
        }
    }
}

/// Parses and compiles a definition written as text.
pub fn compile_str(text: &str, format: SourceFormat) -> Compilation {
    let parsed = match format {
        SourceFormat::Json => serde_json::from_str::<Value>(text).map_err(|e| e.to_string()),
        SourceFormat::Yaml => serde_saphyr::from_str::<Value>(text)
            .map_err(|e| e.to_string().lines().next().unwrap_or("").to_owned()),
    };
    match parsed {
        Ok(value) => compile_value(value),
        Err(message) => Compilation {
            flow: None,
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                flow_id: String::new(),
                node_id: None,
                path: String::new(),
                message: format!(
                    "not valid {}: {message}",
                    if format == SourceFormat::Json {
                        "JSON"
                    } else {
                        "YAML"
                    }
                ),
            }],
        },
    }
}

/// Compiles a definition already parsed into a JSON value.
pub fn compile_value(source: Value) -> Compilation {
    let mut sink = Sink::default();
    if let Some(id) = source.get("id").and_then(Value::as_str) {
        sink.set_flow_id(id);
    }
    let flow = Compiler {
        sink: &sink,
        templates: Templates::default(),
    }
    .run(&source);
    let flow = flow.filter(|_| !sink.has_errors());
    let hash = blake3::hash(canonical_json(&source).as_bytes())
        .to_hex()
        .to_string();
    Compilation {
        flow: flow.map(|parts| parts.finish(source, hash)),
        diagnostics: sink.finish(),
    }
}

struct Compiler<'s> {
    sink: &'s Sink,
    templates: Templates,
}

struct Parts {
    id: String,
    name: String,
    version: u32,
    kind: FlowKind,
    nodes: Vec<Node>,
    labels: Vec<Option<String>>,
    triggers: Vec<Trigger>,
    start: NodeIndex,
    params: Vec<String>,
    settings: Settings,
    templates: Templates,
}

/// A trigger as read, before its entry is resolved.
struct ReadTrigger {
    trigger: Option<(TriggerKind, Reentry, Option<Text>, Option<Condition>)>,
    entry: Option<(String, String)>,
    reads: Vec<(String, String)>,
}

impl Compiler<'_> {
    fn run(mut self, source: &Value) -> Option<Parts> {
        let cx = Cx::flow(self.sink);
        let mut o = Obj::new(source, "", "flow", cx)?;
        o.allow(&["description"]);
        let id = o.req_str("id").filter(|id| {
            let ok = !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if !ok {
                cx.error(
                    "/id",
                    format!("invalid flow id {id:?}: use letters, digits, _, - and ."),
                );
            }
            ok
        });
        let name = o.req_str("name");
        let version = o.opt_u32("version", 1, u32::MAX);
        if !o.has("version") {
            cx.error("", "flow is missing required parameter `version`");
        }
        let flow_kind = match o.req_str("kind") {
            Some("bot") => Some(FlowKind::Bot),
            Some("event") => Some(FlowKind::Event),
            Some(other) => {
                cx.error(
                    "/kind",
                    format!("unknown flow kind {other:?} (use \"bot\" or \"event\")"),
                );
                None
            }
            None => None,
        };
        let params = o
            .opt_array("params")
            .map(|items| self.read_params(items))
            .unwrap_or_default();
        let settings = o
            .get("settings")
            .map(|v| read_settings(v, "/settings", cx))
            .unwrap_or_default();
        let nodes_value = o.req_array("nodes");
        let triggers_value = o.req_array("triggers");
        let start = o.opt_str("start");
        o.finish();

        // Nodes: ids first, so exits and triggers can point anywhere.
        let nodes_value = nodes_value.map(Vec::as_slice).unwrap_or_default();
        if nodes_value.is_empty() && source.get("nodes").is_some_and(Value::is_array) {
            cx.error("/nodes", "a flow needs at least one node");
        }
        let ids = self.node_ids(nodes_value);
        let read: Vec<Option<ReadNode>> = nodes_value
            .iter()
            .enumerate()
            .map(|(i, v)| self.read_one(i, v))
            .collect();

        let start = match start {
            Some(s) => match ids.get(s) {
                Some(&i) => Some(i),
                None => {
                    cx.error("/start", format!("`start` names unknown node {s:?}"));
                    None
                }
            },
            None => (!nodes_value.is_empty()).then_some(0),
        };
        let read_triggers: Vec<ReadTrigger> = triggers_value
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.read_trigger(i, v, flow_kind))
                    .collect()
            })
            .unwrap_or_default();

        // Resolve exits and trigger entries.
        let mut graph: Vec<GraphNode> = Vec::with_capacity(read.len());
        let mut nodes = Vec::with_capacity(read.len());
        for (i, r) in read.iter().enumerate() {
            let node_id = nodes_value
                .get(i)
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str);
            let (g, n) = self.resolve_exits(i, node_id, r.as_ref(), &ids);
            graph.push(g);
            nodes.push(n);
        }
        let mut triggers = Vec::new();
        let mut entries: Vec<usize> = start.into_iter().collect();
        let mut trigger_reads = Vec::new();
        for (i, t) in read_triggers.into_iter().enumerate() {
            let entry = match &t.entry {
                Some((name, at)) => match ids.get(name.as_str()) {
                    Some(&e) => Some(e),
                    None => {
                        cx.error(at, format!("trigger entry names unknown node {name:?}"));
                        None
                    }
                },
                None => start,
            };
            if let Some(e) = entry {
                entries.push(e);
            }
            trigger_reads.extend(t.reads);
            if let (Some((kind, reentry, dedupe_ref, filter)), Some(entry)) = (t.trigger, entry) {
                let entry = NodeIndex(u32::try_from(entry).ok()?);
                triggers.push((
                    i,
                    Trigger {
                        kind,
                        reentry,
                        dedupe_ref,
                        filter,
                        entry,
                    },
                ));
            }
        }
        if settings.working_hours.is_none() {
            for (i, r) in read.iter().enumerate() {
                let needs = matches!(
                    r.as_ref().and_then(|r| r.kind.as_ref()),
                    Some(
                        NodeKind::WorkingHours { hours: None }
                            | NodeKind::Wait(WaitSpec::UntilOpen(None))
                    )
                );
                if needs {
                    let node_id = nodes_value
                        .get(i)
                        .and_then(|v| v.get("id"))
                        .and_then(Value::as_str);
                    cx.with_node(node_id).error(&join("/nodes", i), "this node uses the flow's working hours, but settings.working_hours is not set");
                }
            }
        }
        let all_read = read
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.kind.is_some()));
        analysis::check(&graph, &entries, &params, &trigger_reads, all_read, cx);

        let labels = read
            .iter()
            .map(|r| r.as_ref().and_then(|r| r.label.clone()))
            .collect();
        let nodes: Option<Vec<Node>> = nodes.into_iter().collect();
        Some(Parts {
            id: id?.to_owned(),
            name: name?.to_owned(),
            version: version?,
            kind: flow_kind?,
            nodes: nodes?,
            labels,
            triggers: triggers.into_iter().map(|(_, t)| t).collect(),
            start: NodeIndex(u32::try_from(start?).ok()?),
            params,
            settings,
            templates: self.templates,
        })
    }

    fn read_params(&self, items: &[Value]) -> Vec<String> {
        let cx = Cx::flow(self.sink);
        let mut out: Vec<String> = Vec::new();
        for (i, p) in strings(items, "/params", cx).into_iter().enumerate() {
            if !is_identifier(p) || out.iter().any(|q| q == p) {
                cx.error(
                    &join("/params", i),
                    format!("invalid or duplicate parameter name {p:?}"),
                );
            } else {
                out.push(p.to_owned());
            }
        }
        out
    }

    fn node_ids<'v>(&self, nodes: &'v [Value]) -> HashMap<&'v str, usize> {
        let mut ids = HashMap::new();
        for (i, v) in nodes.iter().enumerate() {
            let path = join("/nodes", i);
            let Some(id) = v.get("id") else { continue };
            let cx = Cx::flow(self.sink);
            match id.as_str() {
                Some(s) if !is_node_id(s) => cx.error(
                    &join(&path, "id"),
                    format!("invalid node id {s:?}: use letters, digits, _ and -"),
                ),
                Some(s) => {
                    if ids.contains_key(s) {
                        cx.with_node(Some(s))
                            .error(&join(&path, "id"), format!("duplicate node id {s:?}"));
                    } else {
                        ids.insert(s, i);
                    }
                }
                None => cx.error(
                    &join(&path, "id"),
                    format!("a node id must be a string, not {}", kind(id)),
                ),
            }
        }
        ids
    }

    fn read_one(&mut self, i: usize, value: &Value) -> Option<ReadNode> {
        let path = join("/nodes", i);
        let node_id = value.get("id").and_then(Value::as_str);
        let cx = Cx::flow(self.sink).with_node(node_id);
        let mut o = Obj::new(value, &path, "node", cx)?;
        if !o.has("id") {
            cx.error(&path, "node is missing required parameter `id`");
        }
        let ty = o.req_str("type")?;
        if !NODE_TYPES.contains(&ty) {
            cx.error(
                &o.at("type"),
                format!(
                    "unknown node type {ty:?} (use one of: {})",
                    NODE_TYPES.join(", ")
                ),
            );
            return None;
        }
        let node = read_node(&mut o, ty, &mut self.templates);
        o.finish();
        Some(node)
    }

    fn read_trigger(
        &mut self,
        i: usize,
        value: &Value,
        flow_kind: Option<FlowKind>,
    ) -> ReadTrigger {
        let path = join("/triggers", i);
        let cx = Cx::flow(self.sink);
        let mut out = ReadTrigger {
            trigger: None,
            entry: None,
            reads: Vec::new(),
        };
        let Some(mut o) = Obj::new(value, &path, "trigger", cx) else {
            return out;
        };
        let given: Vec<&str> = ["event", "schedule", "pattern"]
            .into_iter()
            .filter(|k| o.has(k))
            .collect();
        if let Some(entry) = o.opt_str("entry") {
            out.entry = Some((entry.to_owned(), o.at("entry")));
        }
        let default_reentry = if flow_kind == Some(FlowKind::Bot) {
            Reentry::NotWhileActive
        } else {
            Reentry::Always
        };
        let reentry = o.get("reentry").map_or(Some(default_reentry), |v| {
            read_reentry(v, &join(&path, "reentry"), cx)
        });
        let dedupe_ref = match o.opt_str("ref") {
            Some(src) => {
                let at = o.at("ref");
                let compiled = self.templates.add(src, &at, cx);
                if let Some((_, vars)) = &compiled {
                    out.reads
                        .extend(vars.iter().map(|v| (v.clone(), at.clone())));
                }
                compiled.map(|(t, _)| Some(t))
            }
            None => (!o.has("ref")).then_some(None),
        };
        let kind = match given.as_slice() {
            ["event"] => read_event_match(&mut o, &mut out.reads).map(|mut m| {
                let filter = m.filter.take();
                (TriggerKind::Event(m), filter)
            }),
            [one @ ("schedule" | "pattern")] => {
                let v = o.get(one).unwrap_or(&Value::Null);
                let at = o.at(one);
                let kind = if *one == "schedule" {
                    read_schedule(v, &at, cx).map(TriggerKind::Schedule)
                } else {
                    read_pattern(v, &at, cx).map(|p| TriggerKind::Pattern(Box::new(p)))
                };
                let filter = match o.get("filter") {
                    Some(f) => read_condition(f, &o.at("filter"), cx).map(Some),
                    None => Some(None),
                };
                kind.zip(filter)
            }
            _ => {
                cx.error(
                    &path,
                    "a trigger needs exactly one of `event`, `schedule` and `pattern`",
                );
                o.allow(&[
                    "event", "schedule", "pattern", "filter", "name", "field", "flow",
                ]);
                None
            }
        };
        o.finish();
        if let (Some((kind, filter)), Some(reentry), Some(dedupe_ref)) = (kind, reentry, dedupe_ref)
        {
            if let Some(f) = &filter {
                f.for_each_operand(&mut |op| {
                    if let Operand::Var(v) = op {
                        out.reads.push((v.clone(), join(&path, "filter")));
                    }
                });
            }
            out.trigger = Some((kind, reentry, dedupe_ref, filter));
        }
        out
    }

    fn resolve_exits(
        &self,
        i: usize,
        node_id: Option<&str>,
        read: Option<&ReadNode>,
        ids: &HashMap<&str, usize>,
    ) -> (GraphNode, Option<Node>) {
        let path = join("/nodes", i);
        let cx = Cx::flow(self.sink).with_node(node_id);
        let mut g = GraphNode {
            id: node_id.map(str::to_owned),
            edges: Vec::new(),
            waiting: true,
            reads: Vec::new(),
            sets: Vec::new(),
        };
        let Some(read) = read else { return (g, None) };
        let names: Vec<String> = read
            .kind
            .as_ref()
            .map(|k| k.exit_names().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut slots: Vec<Option<NodeIndex>> = vec![None; names.len()];
        for (name, target, at) in &read.exits {
            let slot = names.iter().position(|n| n == name);
            if read.kind.is_some() && slot.is_none() {
                let ty = read.kind.as_ref().map_or("", NodeKind::type_name);
                let expected = if names.is_empty() {
                    "it has no exits".to_owned()
                } else {
                    format!("exits: {}", names.join(", "))
                };
                cx.error(at, format!("unknown exit `{name}` for {ty} ({expected})"));
                continue;
            }
            match ids.get(target.as_str()) {
                Some(&t) => {
                    g.edges.push((slot.unwrap_or(usize::MAX), t));
                    if let Some(slot) = slot {
                        slots[slot] = u32::try_from(t).ok().map(NodeIndex);
                    }
                }
                None => cx.error(
                    at,
                    format!("exit `{name}` points to unknown node {target:?}"),
                ),
            }
        }
        let Some(kind) = &read.kind else {
            return (g, None);
        };
        for (slot, name) in names.iter().enumerate() {
            match (kind.exit_required(slot), slots[slot].is_some()) {
                (ExitRule::Required, false) => cx.error(
                    &join(&path, "exits"),
                    format!("required exit `{name}` is not connected"),
                ),
                (ExitRule::Forbidden, true) => cx.error(
                    &join(&join(&path, "exits"), name),
                    format!("exit `{name}` needs the node's `timeout` to be set"),
                ),
                _ => {}
            }
        }
        g.waiting = kind.is_waiting();
        g.reads.clone_from(&read.reads);
        g.sets.clone_from(&read.sets);
        let node = node_id.map(|id| Node {
            id: id.to_owned(),
            kind: kind.clone(),
            exits: slots,
        });
        (g, node)
    }
}

fn is_node_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Parts {
    fn finish(self, source: Value, content_hash: String) -> CompiledFlow {
        let mut by_event: Vec<Vec<TriggerId>> = vec![Vec::new(); EventType::ALL.len()];
        let mut pattern_inputs: Vec<Vec<TriggerId>> = vec![Vec::new(); EventType::ALL.len()];
        let mut schedules = Vec::new();
        for (i, t) in self.triggers.iter().enumerate() {
            let i = TriggerId::try_from(i).unwrap_or(TriggerId::MAX);
            match &t.kind {
                TriggerKind::Event(m) => by_event[m.event as usize].push(i),
                TriggerKind::Schedule(_) => schedules.push(i),
                TriggerKind::Pattern(p) => {
                    for m in p.inputs() {
                        let list = &mut pattern_inputs[m.event as usize];
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        CompiledFlow {
            id: self.id,
            name: self.name,
            version: self.version,
            kind: self.kind,
            nodes: self.nodes,
            labels: self.labels,
            triggers: self.triggers,
            start: self.start,
            params: self.params,
            settings: self.settings,
            content_hash,
            source,
            templates: self.templates,
            by_event,
            pattern_inputs,
            schedules,
        }
    }
}
