//! Drawing a compiled flow: Graphviz dot and Mermaid flowcharts. Triggers are drawn as
//! ellipses pointing at their entry node; waiting nodes have a double border (dot) or
//! rounded shape (Mermaid); exits are labelled edges.

use std::fmt::Write as _;

use super::graph::CompiledFlow;
use super::trigger::{Schedule, TriggerKind};

fn node_label(flow: &CompiledFlow, i: usize) -> String {
    let n = &flow.nodes[i];
    let label = flow.labels.get(i).cloned().flatten();
    match label {
        Some(l) => format!("{l}\n({} {})", n.kind.type_name(), n.id),
        None => format!("{}\n{}", n.id, n.kind.type_name()),
    }
}

fn trigger_label(kind: &TriggerKind) -> String {
    match kind {
        TriggerKind::Event(m) => {
            let q = m.name.as_ref().or(m.field.as_ref()).or(m.flow.as_ref());
            q.map_or_else(|| m.event.to_string(), |q| format!("{} {q}", m.event))
        }
        TriggerKind::Schedule(Schedule::Cron(c)) => format!("cron {}", c.source),
        TriggerKind::Schedule(Schedule::Yearly { operand, time }) => {
            format!("yearly {operand} {}", time.format("%H:%M"))
        }
        TriggerKind::Pattern(_) => "pattern".to_owned(),
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Graphviz dot (`dot -Tsvg` renders it).
pub fn to_dot(flow: &CompiledFlow) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph \"{}\" {{", dot_escape(&flow.id));
    let _ = writeln!(
        s,
        "  rankdir=TB;\n  label=\"{} v{}\";\n  node [shape=box, fontname=\"Helvetica\"];",
        dot_escape(&flow.name),
        flow.version
    );
    for (i, t) in flow.triggers.iter().enumerate() {
        let _ = writeln!(
            s,
            "  t{i} [shape=ellipse, style=filled, fillcolor=\"#e8f0fe\", label=\"{}\"];",
            dot_escape(&trigger_label(&t.kind))
        );
        let _ = writeln!(s, "  t{i} -> n{};", t.entry.0);
    }
    for (i, n) in flow.nodes.iter().enumerate() {
        let shape = if n.kind.is_waiting() {
            ", peripheries=2"
        } else if n.exits.len() > 1 {
            ", shape=diamond"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  n{i} [label=\"{}\"{shape}];",
            dot_escape(&node_label(flow, i))
        );
        for (name, target) in n.kind.exit_names().iter().zip(&n.exits) {
            if let Some(t) = target {
                let _ = writeln!(s, "  n{i} -> n{} [label=\"{}\"];", t.0, dot_escape(name));
            }
        }
    }
    s.push_str("}\n");
    s
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', "<br/>")
}

/// A Mermaid flowchart.
pub fn to_mermaid(flow: &CompiledFlow) -> String {
    let mut s = String::from("flowchart TD\n");
    for (i, t) in flow.triggers.iter().enumerate() {
        let _ = writeln!(
            s,
            "  t{i}([\"{}\"]) --> n{}",
            mermaid_escape(&trigger_label(&t.kind)),
            t.entry.0
        );
    }
    for (i, n) in flow.nodes.iter().enumerate() {
        let label = mermaid_escape(&node_label(flow, i));
        let _ = if n.kind.is_waiting() {
            writeln!(s, "  n{i}([\"{label}\"])")
        } else if n.exits.len() > 1 {
            writeln!(s, "  n{i}{{\"{label}\"}}")
        } else {
            writeln!(s, "  n{i}[\"{label}\"]")
        };
        for (name, target) in n.kind.exit_names().iter().zip(&n.exits) {
            if let Some(t) = target {
                let _ = writeln!(s, "  n{i} -->|{}| n{}", mermaid_escape(name), t.0);
            }
        }
    }
    s
}
