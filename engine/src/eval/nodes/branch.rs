//! Nodes that choose an exit: `if`, `switch`, `split` (a stable hash of contact, flow
//! and node — the same contact always takes the same branch), `working_hours`, `end`.

use super::Cx;
use crate::eval::clock::local;
use crate::eval::ids::stable_hash;
use crate::eval::machine::Machine;
use crate::eval::run::Run;
use crate::eval::walk::Step;
use crate::flow::{NodeKind, exits};

pub(super) fn branch(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>) -> Step {
    let flow = cx.flow;
    match &cx.node.kind {
        NodeKind::If { condition } => {
            if m.scope(flow, cx.event, &run.vars).holds(condition) {
                Step::Next(exits::TRUE)
            } else {
                Step::Next(exits::FALSE)
            }
        }
        NodeKind::Switch { cases } => {
            let scope = m.scope(flow, cx.event, &run.vars);
            Step::Next(
                cases
                    .iter()
                    .position(|(_, c)| scope.holds(c))
                    .unwrap_or(cases.len()),
            )
        }
        NodeKind::Split { branches } => Step::Next(split(
            &m.state.contact_id,
            &flow.id,
            &cx.node.id,
            branches.iter().map(|(_, w)| *w),
        )),
        NodeKind::WorkingHours { hours } => {
            let open = hours
                .as_ref()
                .or(flow.settings.working_hours.as_ref())
                .is_none_or(|h| h.contains(local(m.now, m.tz(flow))));
            Step::Next(if open { exits::TRUE } else { exits::FALSE })
        }
        NodeKind::End { outcome } => Step::End(outcome.clone()),
        other => Step::Fail(format!("{} is not a branching node", other.type_name())),
    }
}

/// The branch a contact takes in a weighted split.
pub(crate) fn split(
    contact: &str,
    flow: &str,
    node: &str,
    weights: impl Iterator<Item = u32> + Clone,
) -> usize {
    let total: u64 = weights.clone().map(u64::from).sum();
    if total == 0 {
        return 0;
    }
    let mut pick = stable_hash(&[contact.as_bytes(), flow.as_bytes(), node.as_bytes()]) % total;
    for (i, w) in weights.enumerate() {
        if pick < u64::from(w) {
            return i;
        }
        pick -= u64::from(w);
    }
    0
}
