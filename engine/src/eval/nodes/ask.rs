//! `ask` and `consent`: send the question, wait for a reply in the run's session,
//! validate it, ask again on an invalid answer while retries last, time out.
//!
//! The timeout counts from delivery: the timer is first set from when the question was
//! queued (or, during the flow's quiet hours, from when they end: a question is always
//! deferred, never skipped, since the run waits for its answer), and re-armed from
//! `message.sent` / `message.delivered` of the question's action id (see `offer.rs`).

use std::time::Duration;

use sluice_schemas::{ActionType, Button as OutButton, Event, Payload};

use super::message::{buttons, quiet_until, text_message};
use super::{Cx, render};
use crate::eval::clock::parse_date;
use crate::eval::conditions::{fold, number};
use crate::eval::machine::Machine;
use crate::eval::run::{Run, Wait, WaitKind};
use crate::eval::walk::Step;
use crate::flow::{AnswerType, Button, CompiledFlow, NodeKind, Text, exits};

fn due(now: i64, timeout: Option<Duration>) -> Option<i64> {
    timeout.map(|t| now.saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)))
}

/// Sends the question; returns its step and when it is expected to go out (after the
/// flow's quiet hours, if they hold now).
fn question(
    m: &mut Machine<'_, '_>,
    run: &mut Run,
    cx: &Cx<'_>,
    text: String,
    list: Vec<OutButton>,
) -> (u32, i64) {
    let step = run.step;
    let not_before = quiet_until(m, cx.flow);
    let payload = text_message(m, run, cx, text, list);
    m.action(
        run,
        &cx.node.id,
        ActionType::MessageSend,
        payload,
        not_before,
        cx.depth,
    );
    (step, not_before.unwrap_or(m.now))
}

pub(super) fn ask(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>) -> Step {
    let NodeKind::Ask {
        text,
        choices,
        timeout,
        ..
    } = &cx.node.kind
    else {
        return Step::Fail("not an ask node".into());
    };
    let text = render!(m, cx.flow, run, cx.event, text);
    let list = match buttons(m, run, cx, choices) {
        Ok(b) => b,
        Err(e) => return Step::Fail(format!("template failed: {e}")),
    };
    let (step, sent_at) = question(m, run, cx, text, list);
    Step::Wait(Wait {
        kind: WaitKind::Reply { attempts: 0 },
        due: due(sent_at, *timeout),
        sent_step: Some(step),
    })
}

pub(super) fn consent(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>) -> Step {
    let NodeKind::Consent { text, timeout, .. } = &cx.node.kind else {
        return Step::Fail("not a consent node".into());
    };
    let text = render!(m, cx.flow, run, cx.event, text);
    let list = vec![
        OutButton {
            id: "yes".into(),
            title: "Yes".into(),
        },
        OutButton {
            id: "no".into(),
            title: "No".into(),
        },
    ];
    let (step, sent_at) = question(m, run, cx, text, list);
    Step::Wait(Wait {
        kind: WaitKind::Consent,
        due: due(sent_at, *timeout),
        sent_step: Some(step),
    })
}

/// The reply's text: the chosen button's payload, else the message text.
fn reply(event: &Event) -> Option<(&str, Option<&str>)> {
    match &event.payload {
        Payload::Message(msg) => Some((
            msg.text.as_deref().unwrap_or(""),
            msg.reply_payload.as_deref(),
        )),
        _ => None,
    }
}

/// Validates an answer; `Some(value)` is what the variable receives.
pub(crate) fn validate(expect: AnswerType, choices: &[Button], event: &Event) -> Option<String> {
    let (text, payload) = reply(event)?;
    let text = text.trim();
    match expect {
        AnswerType::Choice => {
            let by_payload = payload.and_then(|p| choices.iter().find(|c| fold(&c.id) == fold(p)));
            let by_text = || {
                choices.iter().enumerate().find(|(i, c)| {
                    fold(&c.id) == fold(text)
                        || fold(c.title.source()) == fold(text)
                        || text.parse::<usize>().ok() == Some(i + 1)
                })
            };
            by_payload
                .or_else(|| by_text().map(|(_, c)| c))
                .map(|c| c.id.clone())
        }
        AnswerType::Text => (!text.is_empty()).then(|| text.to_owned()),
        AnswerType::Number => number(text).map(|n| {
            if n.fract() == 0.0 && n.abs() < 1e15 {
                format!("{}", n as i64)
            } else {
                format!("{n}")
            }
        }),
        AnswerType::Email => {
            let (local, domain) = text.split_once('@')?;
            let ok = !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(char::is_whitespace)
                && !domain.contains('@');
            ok.then(|| text.to_lowercase())
        }
        AnswerType::Phone => {
            let allowed = text
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c));
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            (allowed && (7..=15).contains(&digits.len())).then_some(digits)
        }
        AnswerType::Date => parse_date(text).map(|d| d.format("%Y-%m-%d").to_string()),
    }
}

fn node_of<'f>(m: &Machine<'f, '_>, run: &Run) -> Option<&'f CompiledFlow> {
    m.flows.version(&run.flow, run.version).map(|f| &**f)
}

/// A reply reached a run waiting at an `ask`.
pub(crate) fn answer_reply(m: &mut Machine<'_, '_>, index: usize, event: &Event, depth: u32) {
    let Some(flow) = node_of(m, &m.state.runs[index]) else {
        let run = m.state.runs.remove(index);
        return m.version_missing(run, depth);
    };
    let Some(node) = flow.nodes.get(m.state.runs[index].node as usize) else {
        return m.resume(index, exits::FAILED, event, depth, false);
    };
    let NodeKind::Ask {
        expect,
        choices,
        retries,
        retry_text,
        var,
        text,
        ..
    } = &node.kind
    else {
        return m.resume(index, exits::FAILED, event, depth, false);
    };
    if let Some(value) = validate(*expect, choices, event) {
        m.state.runs[index].set_var(var, &value);
        return m.resume(index, exits::OK, event, depth, false);
    }
    let attempts = match m.state.runs[index].wait {
        Some(Wait {
            kind: WaitKind::Reply { attempts },
            ..
        }) => attempts + 1,
        _ => u32::MAX,
    };
    if attempts > *retries {
        return m.resume(index, exits::FAILED, event, depth, false);
    }
    let mut run = m.state.runs.remove(index);
    if let Some(w) = &mut run.wait {
        w.kind = WaitKind::Reply { attempts };
    }
    let cx = Cx {
        flow,
        node,
        event,
        depth,
    };
    let again: &Text = retry_text.as_ref().unwrap_or(text);
    let sent = m
        .render(flow, &run, event, again)
        .and_then(|t| Ok((t, buttons(m, &run, &cx, choices)?)));
    match sent {
        Ok((t, list)) => {
            question(m, &mut run, &cx, t, list);
            m.state.insert_run(run);
        }
        Err(e) => {
            let reason = format!("flow {}: node {}: template failed: {e}", flow.id, node.id);
            m.finish(run, crate::eval::walk::Ending::Failed(reason), depth);
        }
    }
}

/// A reply reached a run waiting at a `consent`: yes grants (and tags
/// `consent:<topic>`), anything else denies.
pub(crate) fn answer_consent(m: &mut Machine<'_, '_>, index: usize, event: &Event, depth: u32) {
    let Some(flow) = node_of(m, &m.state.runs[index]) else {
        let run = m.state.runs.remove(index);
        return m.version_missing(run, depth);
    };
    let Some(node) = flow.nodes.get(m.state.runs[index].node as usize) else {
        return m.resume(index, exits::FAILED, event, depth, false);
    };
    let NodeKind::Consent { topic, .. } = &node.kind else {
        return m.resume(index, exits::FAILED, event, depth, false);
    };
    let yes = reply(event).is_some_and(|(text, payload)| {
        let answer = fold(payload.unwrap_or(text).trim()).into_owned();
        matches!(
            answer.as_str(),
            "yes" | "y" | "ok" | "agree" | "i agree" | "true" | "да" | "si" | "sí" | "ja" | "oui"
        )
    });
    if yes {
        let tag = format!("consent:{topic}");
        crate::eval::nodes::contact::apply_tag(m, &tag, true, depth);
        m.resume(index, exits::OK, event, depth, false);
    } else {
        m.resume(index, exits::FAILED, event, depth, false);
    }
}
