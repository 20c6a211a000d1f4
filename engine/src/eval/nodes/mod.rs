//! What each node type does when a run reaches it.

mod ask;
mod branch;
mod call;
mod contact;
mod message;
mod wait;

pub(crate) use ask::{answer_consent, answer_reply};

use sluice_schemas::Event;

use super::machine::Machine;
use super::run::Run;
use super::walk::Step;
use crate::flow::{CompiledFlow, Node, NodeKind};

/// Renders a text or fails the run with the template's error.
macro_rules! render {
    ($m:expr, $flow:expr, $run:expr, $event:expr, $text:expr) => {
        match $m.render($flow, $run, $event, $text) {
            Ok(t) => t,
            Err(e) => return Step::Fail(format!("template failed: {e}")),
        }
    };
}
pub(crate) use render;

/// Executes `node` for `run`.
pub(crate) fn exec(
    m: &mut Machine<'_, '_>,
    run: &mut Run,
    flow: &CompiledFlow,
    node: &Node,
    event: &Event,
    depth: u32,
) -> Step {
    let cx = Cx {
        flow,
        node,
        event,
        depth,
    };
    match &node.kind {
        NodeKind::SendMessage { .. }
        | NodeKind::SendShort { .. }
        | NodeKind::SendTemplate { .. } => message::send(m, run, &cx),
        NodeKind::Ask { .. } => ask::ask(m, run, &cx),
        NodeKind::Consent { .. } => ask::consent(m, run, &cx),
        NodeKind::AiComplete { .. } | NodeKind::Http { .. } => call::request(m, run, &cx),
        NodeKind::StartFlow { .. } => call::start_flow(m, run, &cx),
        NodeKind::Wait(spec) => wait::wait(m, run, &cx, spec),
        NodeKind::If { .. }
        | NodeKind::Switch { .. }
        | NodeKind::Split { .. }
        | NodeKind::WorkingHours { .. }
        | NodeKind::End { .. } => branch::branch(m, run, &cx),
        _ => contact::change(m, run, &cx),
    }
}

/// The node being executed and what it executes for.
pub(crate) struct Cx<'a> {
    pub(crate) flow: &'a CompiledFlow,
    pub(crate) node: &'a Node,
    pub(crate) event: &'a Event,
    pub(crate) depth: u32,
}
