//! The template context: `contact`, `vars`, `event`, `session`, `flow` and `now`. Built
//! only when a node renders a real template (literal texts are never rendered).

use serde_json::{Map, Value, json};
use sluice_schemas::{Event, Payload, Scalar};

use super::clock::rfc3339;
use super::run::Run;
use super::state::ContactState;
use crate::flow::{CompiledFlow, Money};

/// Builds the context for rendering one template of `flow` for `run`.
pub(crate) fn context(
    state: &ContactState,
    flow: &CompiledFlow,
    run: &Run,
    event: &Event,
    now: i64,
) -> minijinja::Value {
    let fields: Map<String, Value> = state
        .fields
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(&**v)))
        .collect();
    let channels: Vec<&str> = state
        .urns
        .iter()
        .map(|u| u.split_once(':').map_or(&**u, |(c, _)| c))
        .collect();
    let session = match &event.session {
        Some(s) => serde_json::to_value(s).unwrap_or(Value::Null),
        None => run
            .session
            .as_deref()
            .map_or(Value::Null, |id| json!({ "id": id })),
    };
    let ctx = json!({
        "contact": {
            "id": &*state.contact_id,
            "fields": fields,
            "tags": state.tags.iter().map(|t| &**t).collect::<Vec<_>>(),
            "urns": state.urns.iter().map(|t| &**t).collect::<Vec<_>>(),
            "channels": channels,
            "username": state.username.as_deref(),
            "language": state.language.as_deref(),
            "timezone": state.timezone.as_deref(),
        },
        "vars": vars(run),
        "event": event_view(event),
        "session": session,
        "flow": { "id": &flow.id, "name": &flow.name, "version": flow.version, "run_id": run.public_id() },
        "now": rfc3339(now),
    });
    minijinja::Value::from(minijinja::value::Serde(ctx))
}

/// Run variables; a dotted name (`result.ticket`, set from a sub-flow's outputs) nests.
fn vars(run: &Run) -> Value {
    let mut root = Map::new();
    for (k, v) in &run.vars {
        let mut parts = k.split('.').peekable();
        let mut map = &mut root;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                map.entry(part.to_owned())
                    .or_insert_with(|| Value::from(&**v));
                break;
            }
            let entry = map
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                break;
            }
            match entry {
                Value::Object(m) => map = m,
                _ => break,
            }
        }
    }
    Value::Object(root)
}

fn scalar(s: &Scalar) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::from(*b),
        Scalar::Long(n) => Value::from(*n),
        Scalar::Double(n) => Value::from(*n),
        Scalar::String(t) => Value::from(t.as_str()),
    }
}

/// The event as templates see it: `event.message.text`, `event.payment.amount` (a
/// decimal such as `12.50`), `event.fields.X`, …
pub(crate) fn event_view(e: &Event) -> Value {
    let mut v = json!({
        "id": &e.id,
        "type": e.event_type.as_str(),
        "occurred_at": e.occurred_at,
    });
    let (key, body) = match &e.payload {
        Payload::None => return v,
        Payload::Message(m) => ("message", serde_json::to_value(m).unwrap_or(Value::Null)),
        Payload::Delivery(d) => ("delivery", serde_json::to_value(d).unwrap_or(Value::Null)),
        Payload::Reaction(r) => ("reaction", serde_json::to_value(r).unwrap_or(Value::Null)),
        Payload::Payment(p) => {
            let amount = Money {
                minor: p.amount_minor,
                currency: p.currency.as_bytes().try_into().unwrap_or(*b"XXX"),
            }
            .to_string();
            let decimal = amount.split(' ').next().unwrap_or_default().to_owned();
            let body = json!({
                "payment_id": &p.payment_id,
                "amount": decimal,
                "amount_minor": p.amount_minor,
                "currency": &p.currency,
                "description": &p.description,
            });
            ("payment", body)
        }
        Payload::ProfileChange(p) => ("profile", serde_json::to_value(p).unwrap_or(Value::Null)),
        Payload::Flow(f) => (
            "flow",
            json!({
                "id": &f.flow_id, "version": f.flow_version, "run_id": &f.run_id,
                "outcome": &f.outcome, "error": &f.error, "outputs": &f.outputs,
            }),
        ),
        Payload::Custom(c) => {
            v["name"] = Value::from(c.name.as_str());
            let fields: Map<String, Value> = c
                .fields
                .iter()
                .map(|(k, s)| (k.clone(), scalar(s)))
                .collect();
            ("fields", Value::Object(fields))
        }
        Payload::Result(r) => ("result", serde_json::to_value(r).unwrap_or(Value::Null)),
        Payload::Timer(t) => ("timer", serde_json::to_value(t).unwrap_or(Value::Null)),
    };
    v[key] = body;
    v
}
