//! Nodes that ask something outside and wait for the answer: `http` and `ai_complete`
//! (the correlated `function.result` / `ai.result`), and `start_flow` (the child's
//! `flow.completed` / `flow.failed` when called with `wait`).
//!
//! A sub-flow of the same contact starts inside the evaluator (deterministically, in the
//! same evaluation), so no `flow.start` action is emitted for it.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_schemas::{ActionPayload, ActionType, AiComplete, HttpCall};

use super::{Cx, render};
use crate::eval::machine::{MAX_CHAIN_DEPTH, Machine};
use crate::eval::run::{Run, Wait, WaitKind};
use crate::eval::walk::{Start, Step};
use crate::flow::{NodeKind, exits};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn request(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>) -> Step {
    let (flow, event) = (cx.flow, cx.event);
    let (ty, payload, timeout) = match &cx.node.kind {
        NodeKind::Http {
            method,
            url,
            headers,
            body,
            timeout,
            ..
        } => {
            let url = render!(m, flow, run, event, url);
            let mut rendered = BTreeMap::new();
            for (k, v) in headers {
                rendered.insert(k.clone(), render!(m, flow, run, event, v));
            }
            let body = match body {
                Some(b) => Some(render!(m, flow, run, event, b)),
                None => None,
            };
            let payload = ActionPayload::HttpCall(HttpCall {
                method: method.clone(),
                url,
                headers: rendered,
                body,
                timeout_ms: ms(*timeout),
            });
            (ActionType::HttpCall, payload, *timeout)
        }
        NodeKind::AiComplete {
            model,
            system,
            prompt,
            timeout,
            ..
        } => {
            let system = match system {
                Some(s) => Some(render!(m, flow, run, event, s)),
                None => None,
            };
            let payload = ActionPayload::AiComplete(AiComplete {
                model: model.clone(),
                system,
                prompt: render!(m, flow, run, event, prompt),
                timeout_ms: ms(*timeout),
            });
            (ActionType::AiComplete, payload, *timeout)
        }
        other => return Step::Fail(format!("{} is not a call node", other.type_name())),
    };
    let step = run.step;
    m.action(run, &cx.node.id, ty, payload, None, cx.depth);
    Step::Wait(Wait {
        kind: WaitKind::Result { step },
        due: Some(m.now.saturating_add(ms(timeout))),
        sent_step: None,
    })
}

pub(super) fn start_flow(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>) -> Step {
    let NodeKind::StartFlow {
        flow: child_id,
        wait,
        params,
        timeout,
        ..
    } = &cx.node.kind
    else {
        return Step::Fail("not a start_flow node".into());
    };
    if m.base_depth + cx.depth + 1 > MAX_CHAIN_DEPTH {
        return Step::Fail(format!(
            "chain depth limit of {MAX_CHAIN_DEPTH} reached: not starting flow {child_id}"
        ));
    }
    let flows = m.flows;
    let Some(child_flow) = flows.newest(child_id) else {
        return Step::Fail(format!("flow {child_id} is not loaded"));
    };
    let mut vars: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(params.len());
    for (k, v) in params {
        let value = render!(m, cx.flow, run, cx.event, v);
        vars.push((Box::from(k.as_str()), Box::from(value)));
    }
    vars.sort();
    vars.dedup_by(|a, b| a.0 == b.0);
    let start = Start {
        entry: child_flow.start,
        session: run.session.clone(),
        parent: wait.then_some(run.id),
        vars,
    };
    let child = m.new_run(child_flow, start);
    let seed = child.seed;
    // The parent is out of the state while it walks; its id is still known to the child.
    m.begin(child, child_flow, cx.event, cx.depth + 1, false);
    if !*wait {
        return Step::Next(exits::NEXT);
    }
    Step::Wait(Wait {
        kind: WaitKind::Child { child: seed },
        due: timeout.map(|t| m.now.saturating_add(ms(t))),
        sent_step: None,
    })
}
