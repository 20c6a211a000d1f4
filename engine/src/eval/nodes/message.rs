//! `send_message`, `send_short`, `send_template`: frequency cap, quiet hours, and where a
//! message goes.

use sluice_schemas::{
    ActionPayload, ActionType, Button as OutButton, Event, OutboundMedia, SendMessage, SendShort,
    SendTemplate,
};

use super::{Cx, render};
use crate::eval::clock::end_of;
use crate::eval::machine::Machine;
use crate::eval::run::Run;
use crate::eval::state::ContactState;
use crate::eval::walk::Step;
use crate::flow::{Button, CompiledFlow, NodeKind, QuietMode, SendChannel, exits};

/// Where a message to the contact goes: channel type, channel id, address.
pub(crate) fn target(state: &ContactState, event: &Event) -> (String, String, String) {
    let to = || {
        event
            .origin
            .as_ref()
            .and_then(|o| o.urn.clone())
            .or_else(|| state.channel.as_ref().map(|c| c.to.to_string()))
            .unwrap_or_else(|| state.contact_id.to_string())
    };
    if let Some(s) = &event.session {
        return (s.channel_type.clone(), s.channel_id.clone(), to());
    }
    if let Some(o) = &event.origin {
        return (o.channel_type.clone(), o.channel_id.clone(), to());
    }
    default_target(state)
}

/// The contact's default channel, whatever the event.
fn default_target(state: &ContactState) -> (String, String, String) {
    match &state.channel {
        Some(c) => (
            c.channel_type.to_string(),
            c.channel_id.to_string(),
            c.to.to_string(),
        ),
        None => (String::new(), String::new(), state.contact_id.to_string()),
    }
}

/// Where a `send_message` goes: its `channel`, then its rendered `to`.
fn send_target(
    state: &ContactState,
    event: &Event,
    channel: &SendChannel,
    to: Option<String>,
) -> (String, String, String) {
    let (channel_type, channel_id, default_to) = match channel {
        SendChannel::Event => target(state, event),
        SendChannel::Contact => default_target(state),
        SendChannel::Type(t) => {
            let (_, channel_id, to) = target(state, event);
            (t.clone(), channel_id, to)
        }
    };
    (channel_type, channel_id, to.unwrap_or(default_to))
}

/// Renders buttons.
pub(crate) fn buttons(
    m: &Machine<'_, '_>,
    run: &Run,
    cx: &Cx<'_>,
    list: &[Button],
) -> Result<Vec<OutButton>, String> {
    list.iter()
        .map(|b| {
            Ok(OutButton {
                id: b.id.clone(),
                title: m.render(cx.flow, run, cx.event, &b.title)?,
            })
        })
        .collect()
}

/// A `message.send` payload with text and buttons for the run's session.
pub(crate) fn text_message(
    m: &Machine<'_, '_>,
    run: &Run,
    cx: &Cx<'_>,
    text: String,
    buttons: Vec<OutButton>,
) -> ActionPayload {
    let (channel_type, channel_id, to) = target(m.state, cx.event);
    ActionPayload::SendMessage(SendMessage {
        channel_type,
        channel_id,
        to,
        session_id: run.session.as_deref().map(str::to_owned),
        text: Some(text),
        media: None,
        buttons,
    })
}

/// When the flow's quiet hours hold `now`, the instant they end.
pub(super) fn quiet_until(m: &Machine<'_, '_>, flow: &CompiledFlow) -> Option<i64> {
    let quiet = flow.settings.quiet_hours.as_ref()?;
    end_of(m.now, m.tz(flow), &quiet.hours)
}

pub(super) fn send(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>) -> Step {
    let flow = cx.flow;
    if let Some(cap) = flow.settings.frequency_cap {
        let per = i64::try_from(cap.per.as_millis()).unwrap_or(i64::MAX);
        if m.state.sends_since(m.now.saturating_sub(per)) >= cap.count as usize {
            return Step::Next(exits::NEXT);
        }
    }
    let mut not_before = None;
    if let Some(quiet) = &flow.settings.quiet_hours
        && let Some(end) = quiet_until(m, flow)
    {
        match quiet.mode {
            QuietMode::Defer => not_before = Some(end),
            QuietMode::Skip => return Step::Next(exits::NEXT),
        }
    }
    let (ty, payload) = match &cx.node.kind {
        NodeKind::SendMessage {
            text,
            media,
            buttons: list,
            channel,
            to,
        } => {
            let text = match text {
                Some(t) => Some(render!(m, flow, run, cx.event, t)),
                None => None,
            };
            let media = match media {
                Some(md) => Some(OutboundMedia {
                    url: render!(m, flow, run, cx.event, &md.url),
                    mime_type: md.mime_type.clone(),
                    caption: match &md.caption {
                        Some(c) => Some(render!(m, flow, run, cx.event, c)),
                        None => None,
                    },
                }),
                None => None,
            };
            let list = match buttons(m, run, cx, list) {
                Ok(b) => b,
                Err(e) => return Step::Fail(format!("template failed: {e}")),
            };
            let to = match to {
                Some(t) => Some(render!(m, flow, run, cx.event, t)).filter(|t| !t.is_empty()),
                None => None,
            };
            let (channel_type, channel_id, to) = send_target(m.state, cx.event, channel, to);
            let payload = ActionPayload::SendMessage(SendMessage {
                channel_type,
                channel_id,
                to,
                session_id: run.session.as_deref().map(str::to_owned),
                text,
                media,
                buttons: list,
            });
            (ActionType::MessageSend, payload)
        }
        NodeKind::SendShort { shortcut, text } => {
            let text = render!(m, flow, run, cx.event, text);
            let (channel_type, channel_id, to) = target(m.state, cx.event);
            let payload = ActionPayload::SendShort(SendShort {
                channel_type,
                channel_id,
                to,
                session_id: run.session.as_deref().map(str::to_owned),
                shortcut: shortcut.clone(),
                text,
            });
            (ActionType::MessageSendShort, payload)
        }
        NodeKind::SendTemplate {
            template,
            language,
            parameters,
        } => {
            let mut params = Vec::with_capacity(parameters.len());
            for p in parameters {
                params.push(render!(m, flow, run, cx.event, p));
            }
            // The compiler keeps `language` as written; a template there is rendered ad hoc.
            let language = if language.contains("{{") {
                match m.render_str(flow, run, cx.event, language) {
                    Ok(l) => l,
                    Err(e) => return Step::Fail(format!("template failed: {e}")),
                }
            } else {
                language.clone()
            };
            let (channel_type, channel_id, to) = target(m.state, cx.event);
            let payload = ActionPayload::SendTemplate(SendTemplate {
                channel_type,
                channel_id,
                to,
                template: template.clone(),
                language,
                parameters: params,
            });
            (ActionType::MessageSendTemplate, payload)
        }
        _ => return Step::Fail("not a message node".into()),
    };
    m.action(run, &cx.node.id, ty, payload, not_before, cx.depth);
    m.state.record_send(m.now);
    Step::Next(exits::NEXT)
}
