//! Graph checks over the resolved nodes: unreachable nodes (warning), loops with no
//! waiting node (error: a run would spin until the step limit), and run variables read
//! before every path to the reader has set them (warning).

use std::collections::BTreeSet;

use super::diagnostic::{Cx, join};

/// A node as the analysis sees it.
#[derive(Debug)]
pub(crate) struct GraphNode {
    pub(crate) id: Option<String>,
    /// (exit slot, target position); slot `usize::MAX` when the node's kind is unknown.
    pub(crate) edges: Vec<(usize, usize)>,
    /// Whether a run stops here (unknown kinds count as waiting, to avoid false alarms).
    pub(crate) waiting: bool,
    /// Variables read, with the JSON path of the reading parameter.
    pub(crate) reads: Vec<(String, String)>,
    /// Variables set, by exit slot.
    pub(crate) sets: Vec<(usize, String)>,
}

/// Runs every check; the variable check only when `check_vars` (it is noise while the
/// graph itself is broken).
pub(crate) fn check(
    nodes: &[GraphNode],
    entries: &[usize],
    params: &[String],
    trigger_reads: &[(String, String)],
    check_vars: bool,
    cx: Cx<'_>,
) {
    let reachable = reachable(nodes, entries);
    for (i, n) in nodes.iter().enumerate() {
        if !reachable[i] && !entries.is_empty() && n.id.is_some() {
            cx.with_node(n.id.as_deref()).warning(
                &join("/nodes", i),
                "node is not reachable from the start node or any trigger",
            );
        }
    }
    spinning_loops(nodes, cx);
    for (var, at) in trigger_reads {
        if !params.contains(var) {
            cx.warning(at, format!("reads vars.{var}, which no trigger sets (declare it in `params` if a caller passes it)"));
        }
    }
    if check_vars {
        unset_reads(nodes, entries, params, &reachable, cx);
    }
}

fn reachable(nodes: &[GraphNode], entries: &[usize]) -> Vec<bool> {
    let mut seen = vec![false; nodes.len()];
    let mut stack: Vec<usize> = entries.to_vec();
    while let Some(i) = stack.pop() {
        if i >= nodes.len() || std::mem::replace(&mut seen[i], true) {
            continue;
        }
        stack.extend(nodes[i].edges.iter().map(|(_, t)| *t));
    }
    seen
}

/// Strongly connected components of the non-waiting subgraph (Tarjan, iterative); each
/// component with a cycle is a loop that never waits.
fn spinning_loops(nodes: &[GraphNode], cx: Cx<'_>) {
    let n = nodes.len();
    let succ = |v: usize| -> Vec<usize> {
        if nodes[v].waiting {
            return Vec::new();
        }
        nodes[v]
            .edges
            .iter()
            .map(|(_, t)| *t)
            .filter(|t| *t < n && !nodes[*t].waiting)
            .collect()
    };
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    for root in 0..n {
        if index[root] != usize::MAX || nodes[root].waiting {
            continue;
        }
        let mut work: Vec<(usize, Vec<usize>, usize)> = vec![(root, succ(root), 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some((v, children, pos)) = work.last_mut() {
            let v = *v;
            if let Some(&w) = children.get(*pos) {
                *pos += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, succ(w), 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _, _)) = work.last() {
                low[*parent] = low[*parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                let self_loop = component.len() == 1 && succ(v).contains(&v);
                if component.len() > 1 || self_loop {
                    component.sort_unstable();
                    let first = component[0];
                    let ids: Vec<&str> = component
                        .iter()
                        .map(|&i| nodes[i].id.as_deref().unwrap_or("?"))
                        .collect();
                    cx.with_node(nodes[first].id.as_deref()).error(
                        &join("/nodes", first),
                        format!(
                            "loop without a waiting node ({}) would spin until the step limit: add an ask, wait, consent, http, ai_complete or start_flow call",
                            ids.join(" -> ")
                        ),
                    );
                }
            }
        }
    }
}

/// Must-be-set analysis: a variable is set at a node when every path from an entry sets it.
fn unset_reads(
    nodes: &[GraphNode],
    entries: &[usize],
    params: &[String],
    reachable: &[bool],
    cx: Cx<'_>,
) {
    let n = nodes.len();
    let start: BTreeSet<String> = params.iter().cloned().collect();
    // None = not reached yet (top of the lattice).
    let mut set_in: Vec<Option<BTreeSet<String>>> = vec![None; n];
    for &e in entries {
        if e < n {
            set_in[e] = Some(start.clone());
        }
    }
    let mut changed = true;
    let mut rounds = 0;
    while changed && rounds <= n + 1 {
        changed = false;
        rounds += 1;
        for v in 0..n {
            let Some(inn) = set_in[v].clone() else {
                continue;
            };
            for (slot, t) in &nodes[v].edges {
                if *t >= n {
                    continue;
                }
                let mut out = inn.clone();
                out.extend(
                    nodes[v]
                        .sets
                        .iter()
                        .filter(|(s, _)| s == slot)
                        .map(|(_, var)| var.clone()),
                );
                let merged = match &set_in[*t] {
                    None => out,
                    Some(cur) => cur.intersection(&out).cloned().collect(),
                };
                if set_in[*t].as_ref() != Some(&merged) {
                    set_in[*t] = Some(merged);
                    changed = true;
                }
            }
        }
    }
    for (v, node) in nodes.iter().enumerate() {
        let Some(inn) = set_in[v].as_ref().filter(|_| reachable[v]) else {
            continue;
        };
        for (var, at) in &node.reads {
            if !inn.contains(var) {
                cx.with_node(node.id.as_deref()).warning(
                    at,
                    format!("reads vars.{var}, which is not set on every path to this node"),
                );
            }
        }
    }
}
