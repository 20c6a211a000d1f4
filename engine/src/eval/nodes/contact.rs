//! Nodes that change the contact, the run or the session: `update_field`, `add_tag` /
//! `remove_tag`, `set_var`, `publish_event`, and the session actions. Field and tag
//! changes apply to the state at once (the next condition sees them) and are announced
//! as `contact.field_updated`.

use sluice_schemas::{
    ActionPayload, ActionType, EventType, Fields, Payload, ProfileChangePayload, PublishEvent,
    Scalar, SessionChange, Tag, UpdateField,
};

use super::{Cx, render};
use crate::eval::machine::Machine;
use crate::eval::run::Run;
use crate::eval::walk::Step;
use crate::flow::{FieldValue, NodeKind, exits};

/// The variable session nodes read the session id from when neither the run nor the
/// event has a session.
const SESSION_VAR: &str = "session_id";

/// Sets a profile field now and announces the change.
pub(crate) fn apply_field(m: &mut Machine<'_, '_>, field: &str, value: Option<&str>, depth: u32) {
    if let Some(old) = m.state.set_field(field, value) {
        m.profile_dirty = true;
        let payload = Payload::ProfileChange(ProfileChangePayload {
            field: field.to_owned(),
            old,
            new: value.map(str::to_owned),
        });
        let event = m.internal(EventType::ContactFieldUpdated, payload, None, depth + 1);
        m.raise(event, depth + 1);
    }
}

/// Adds or removes a tag now and announces it as a change of the field `tags`.
pub(crate) fn apply_tag(m: &mut Machine<'_, '_>, tag: &str, add: bool, depth: u32) {
    if m.state.set_tag(tag, add) {
        let (old, new) = if add {
            (None, Some(tag.to_owned()))
        } else {
            (Some(tag.to_owned()), None)
        };
        let payload = Payload::ProfileChange(ProfileChangePayload {
            field: "tags".into(),
            old,
            new,
        });
        let event = m.internal(EventType::ContactFieldUpdated, payload, None, depth + 1);
        m.raise(event, depth + 1);
    }
}

pub(super) fn change(m: &mut Machine<'_, '_>, run: &mut Run, cx: &Cx<'_>) -> Step {
    let (flow, event, node) = (cx.flow, cx.event, cx.node);
    // The run's session, else the event's, else the `session_id` variable (a run started
    // by an event without a session, such as a manager's reply, names it there).
    let session = || {
        run.session
            .as_deref()
            .map(str::to_owned)
            .or_else(|| event.session.as_ref().map(|s| s.id.clone()))
            .or_else(|| {
                run.var(SESSION_VAR)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            })
    };
    let (ty, payload) = match &node.kind {
        NodeKind::SetVar { var, value } => {
            let value = render!(m, flow, run, event, value);
            run.set_var(var, &value);
            return Step::Next(exits::NEXT);
        }
        NodeKind::UpdateField { field, value } => {
            let value = match value {
                Some(v) => Some(render!(m, flow, run, event, v)),
                None => None,
            };
            apply_field(m, field, value.as_deref(), cx.depth);
            let payload = ActionPayload::UpdateField(UpdateField {
                field: field.clone(),
                value,
            });
            (ActionType::ContactUpdateField, payload)
        }
        NodeKind::Tag { tag, add } => {
            apply_tag(m, tag, *add, cx.depth);
            let payload = ActionPayload::Tag(Tag {
                tag: tag.clone(),
                add: *add,
            });
            (ActionType::ContactTag, payload)
        }
        NodeKind::PublishEvent { name, fields } => {
            let mut out = Fields::new();
            for (k, v) in fields {
                let value = match v {
                    FieldValue::Text(t) => Scalar::String(render!(m, flow, run, event, t)),
                    FieldValue::Number(n) if n.fract() == 0.0 && n.abs() < 9e15 => {
                        Scalar::Long(*n as i64)
                    }
                    FieldValue::Number(n) => Scalar::Double(*n),
                    FieldValue::Bool(b) => Scalar::Bool(*b),
                    FieldValue::Null => Scalar::Null,
                };
                out.insert(k.clone(), value);
            }
            let payload = ActionPayload::PublishEvent(PublishEvent {
                name: name.clone(),
                fields: out,
            });
            (ActionType::EventPublish, payload)
        }
        kind => {
            let Some(session_id) = session() else {
                return Step::Fail(format!(
                    "{} needs a session, but the run has none",
                    kind.type_name()
                ));
            };
            let mut change = SessionChange {
                session_id,
                user: None,
                team: None,
                message: None,
            };
            let ty = match kind {
                NodeKind::AssignSession { user, team } => {
                    if let Some(u) = user {
                        change.user = Some(render!(m, flow, run, event, u));
                    }
                    if let Some(t) = team {
                        change.team = Some(render!(m, flow, run, event, t));
                    }
                    ActionType::SessionAssign
                }
                NodeKind::UnassignSession => ActionType::SessionUnassign,
                NodeKind::CloseSession { message } => {
                    if let Some(msg) = message {
                        change.message = Some(render!(m, flow, run, event, msg));
                    }
                    ActionType::SessionClose
                }
                NodeKind::SurveySession { survey } => {
                    change.message = Some(survey.clone());
                    ActionType::SessionSurvey
                }
                other => return Step::Fail(format!("{} is not a contact node", other.type_name())),
            };
            (ty, ActionPayload::SessionChange(change))
        }
    };
    m.action(run, &node.id, ty, payload, None, cx.depth);
    Step::Next(exits::NEXT)
}
