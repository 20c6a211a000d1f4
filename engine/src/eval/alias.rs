//! Identity linking: one person, several channel identities, one contact that runs the
//! flows.
//!
//! Ingest maps every identity (URN) to its own contact id
//! ([`sluice_schemas::identity::contact_id`]), with no shared state. Linking makes one
//! contact the *primary* and the others its *aliases*:
//!
//! 1. The primary receives `contact.link_identity {urn}` (a `custom` event): it records
//!    the URN and emits an `event.publish` action carrying `contact.aliased {primary:
//!    <its id>}`, addressed to the contact of that URN (the action's `contact_id` is the
//!    alias's, so the worker publishes the event to the alias).
//! 2. The alias records `alias_of` in its state. A contact that is created by
//!    `contact.aliased` announces no `contact.created`: it is not a new person.
//! 3. From then on the alias runs no flows: each event it receives (after its dedupe
//!    check and its own overdue timers) becomes an `event.publish` action carrying
//!    `contact.forwarded {event: <the event's JSON>, hops, via}` to its primary.
//! 4. The primary unwraps the original event and processes it as its own (the event's
//!    `contact_id` becomes the primary's; its id is deduped too).
//!
//! Loop rules: a contact never becomes an alias of itself; an event is forwarded at
//! most [`MAX_ALIAS_HOPS`] times, and never to a contact it already passed through
//! (`via`). A contact that may not forward an event processes it itself, so nothing is
//! lost. Custom events never move a contact's default channel (see `learn`), so a
//! manager's reply from a forum topic does not redirect the contact's messages there.

use sluice_schemas::identity::{ALIASED, FORWARDED, LINK_IDENTITY, contact_id};
use sluice_schemas::{
    Action, ActionPayload, ActionType, Event, EventType, Fields, Payload, PublishEvent, Scalar,
};

use super::ids::{action_id, stable_hash};
use super::machine::Machine;
use super::state::ContactState;

/// How many times one event may be forwarded from an alias to its primary.
pub const MAX_ALIAS_HOPS: i64 = 4;

/// What a contact does with an incoming event.
#[derive(Debug)]
pub(super) enum Route {
    /// Process it here.
    Local,
    /// Send it on to the primary.
    Forward(Forward),
    /// A forwarded event this contact processes: the original, readdressed here.
    Unwrap(Box<Event>),
}

/// A forward to make.
#[derive(Debug)]
pub(super) struct Forward {
    primary: Box<str>,
    /// The original event's JSON.
    original: String,
    /// Forwards so far, this one included.
    hops: i64,
    /// The contacts the event passed through, this one included, comma-separated.
    via: String,
}

/// The fields of a `custom` event named `name`.
fn custom<'e>(event: &'e Event, name: &str) -> Option<&'e Fields> {
    match (&event.event_type, &event.payload) {
        (EventType::Custom, Payload::Custom(c)) if c.name == name => Some(&c.fields),
        _ => None,
    }
}

/// A non-empty string field.
fn text<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    match fields.get(name) {
        Some(Scalar::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The primary named by a `contact.aliased` event.
pub(super) fn aliased_to(event: &Event) -> Option<&str> {
    custom(event, ALIASED).and_then(|f| text(f, "primary"))
}

/// The URN a `contact.link_identity` event links.
pub(super) fn linked_urn(event: &Event) -> Option<&str> {
    custom(event, LINK_IDENTITY).and_then(|f| text(f, "urn"))
}

/// Decides what `state`'s contact does with `event`.
pub(super) fn route(state: &ContactState, event: &Event) -> Route {
    let me = if state.created {
        &*state.contact_id
    } else {
        event.contact_id.as_str()
    };
    // Being told whose alias this is never travels on.
    if aliased_to(event).is_some() {
        return Route::Local;
    }
    let forwarded = custom(event, FORWARDED).and_then(|fields| {
        let raw = text(fields, "event")?;
        let original: Event = serde_json::from_str(raw).ok()?;
        let hops = match fields.get("hops") {
            Some(Scalar::Long(h)) => *h,
            _ => 1,
        };
        let via = text(fields, "via").unwrap_or_default().to_owned();
        Some((original, raw, hops, via))
    });
    let Some((mut original, raw, hops, via)) = forwarded else {
        // An event of this contact's own identity.
        return match state.alias_of.as_deref() {
            Some(primary) if primary != me => Route::Forward(Forward {
                primary: primary.into(),
                original: serde_json::to_string(event).unwrap_or_default(),
                hops: 1,
                via: me.to_owned(),
            }),
            _ => Route::Local,
        };
    };
    // Tenants never write into each other's contacts.
    if original.tenant != event.tenant {
        return Route::Local;
    }
    let passed = |id: &str| via.split(',').any(|v| v == id);
    if let Some(primary) = state.alias_of.as_deref()
        && primary != me
        && hops < MAX_ALIAS_HOPS
        && !passed(primary)
        && !passed(me)
    {
        return Route::Forward(Forward {
            primary: primary.into(),
            original: raw.to_owned(),
            hops: hops + 1,
            via: format!("{via},{me}"),
        });
    }
    original.contact_id = event.contact_id.clone();
    original.chain_depth = original.chain_depth.max(event.chain_depth);
    Route::Unwrap(Box::new(original))
}

/// An `event.publish` action of no run, addressed to `to_contact`, with an id derived
/// from the input and what it is for (stable under replay).
fn publish(
    state: &ContactState,
    to_contact: &str,
    input: &Event,
    name: &str,
    fields: Fields,
    now: i64,
) -> Action {
    let seed = stable_hash(&[name.as_bytes(), input.id.as_bytes()]);
    Action {
        id: action_id(&state.tenant, &state.contact_id, seed, 0),
        tenant: state.tenant.to_string(),
        contact_id: to_contact.to_owned(),
        run_id: String::new(),
        flow_id: String::new(),
        flow_version: 0,
        node_id: String::new(),
        action_type: ActionType::EventPublish,
        created_at: now,
        not_before: None,
        chain_depth: input.chain_depth.max(0),
        payload: ActionPayload::PublishEvent(PublishEvent {
            name: name.to_owned(),
            fields,
        }),
    }
}

/// The action that forwards `event` to the primary.
pub(super) fn forward_action(
    state: &ContactState,
    event: &Event,
    forward: Forward,
    now: i64,
) -> Action {
    let mut fields = Fields::new();
    fields.insert("event".into(), Scalar::String(forward.original));
    fields.insert("hops".into(), Scalar::Long(forward.hops));
    fields.insert("via".into(), Scalar::String(forward.via));
    publish(state, &forward.primary, event, FORWARDED, fields, now)
}

impl Machine<'_, '_> {
    /// Applies the linking events: `contact.aliased` makes this contact an alias;
    /// `contact.link_identity` records the URN and tells its contact whose alias it is.
    pub(super) fn learn_links(&mut self, event: &Event) {
        if let Some(primary) = aliased_to(event) {
            if primary != &*self.state.contact_id {
                self.state.alias_of = Some(primary.into());
            }
            return;
        }
        let Some(urn) = linked_urn(event) else {
            return;
        };
        self.state.add_urn(urn);
        let other = contact_id(&self.state.tenant, urn);
        if other == *self.state.contact_id {
            return;
        }
        let mut fields = Fields::new();
        fields.insert(
            "primary".into(),
            Scalar::String(self.state.contact_id.to_string()),
        );
        fields.insert("urn".into(), Scalar::String(urn.to_owned()));
        let action = publish(self.state, &other, event, ALIASED, fields, self.now);
        self.out.actions.push(action);
    }
}
