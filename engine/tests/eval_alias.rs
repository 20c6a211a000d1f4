//! Identity linking: a linked identity's contact becomes an alias that forwards its
//! events to the primary, which runs the flows (engine/src/eval/alias.rs).

mod common;

use common::*;
use serde_json::{Value, json};
use sluice_engine::eval::{ContactState, Disposition, MAX_ALIAS_HOPS};
use sluice_schemas::identity::{ALIASED, FORWARDED, LINK_IDENTITY, contact_id};
use sluice_schemas::{
    Action, ActionPayload, ActionType, CustomPayload, Event, EventType, Origin, Payload, Scalar,
};

const WA: &str = "whatsapp:4915112345678";

fn flow(id: &str, trigger: Value, nodes: Value) -> Value {
    json!({ "id": id, "name": id, "version": 1, "kind": "event", "triggers": [trigger], "nodes": nodes })
}

/// A welcome on `contact.created` and an echo of every message.
fn welcome_and_echo() -> Vec<Value> {
    vec![
        flow(
            "welcome",
            json!({ "event": "contact.created", "reentry": "once" }),
            json!([ { "id": "hi", "type": "send_message", "text": "welcome" } ]),
        ),
        flow(
            "echo",
            json!({ "event": "message.received" }),
            json!([ { "id": "echo", "type": "send_message", "text": "echo {{ event.message.text }}" } ]),
        ),
    ]
}

/// What the action worker does with an `event.publish`: a custom event for the action's
/// contact, id `<action id>/event`.
fn deliver(action: &Action) -> Event {
    let ActionPayload::PublishEvent(p) = &action.payload else {
        panic!("not a publish: {action:?}")
    };
    Event {
        id: format!("{}/event", action.id),
        tenant: action.tenant.clone(),
        contact_id: action.contact_id.clone(),
        event_type: EventType::Custom,
        occurred_at: action.created_at,
        session: None,
        origin: None,
        chain_depth: action.chain_depth + 1,
        payload: Payload::Custom(CustomPayload {
            name: p.name.clone(),
            fields: p.fields.clone(),
        }),
    }
}

fn field<'a>(action: &'a Action, name: &str) -> &'a Scalar {
    let ActionPayload::PublishEvent(p) = &action.payload else {
        panic!("not a publish: {action:?}")
    };
    &p.fields[name]
}

fn name(action: &Action) -> &str {
    match &action.payload {
        ActionPayload::PublishEvent(p) => &p.name,
        _ => "",
    }
}

/// A WhatsApp message to the contact of [`WA`].
fn wa_msg(id: &str, text: &str, at: i64) -> Event {
    let mut e = msg(id, text, at);
    e.contact_id = contact_id("acme", WA);
    e.session = None;
    e.origin = Some(Origin {
        channel_type: "whatsapp".into(),
        channel_id: "wa-1".into(),
        urn: Some(WA.into()),
        username: None,
        provider_id: None,
    });
    e
}

fn aliased(primary: &str, to: &str, id: &str, at: i64) -> Event {
    let mut e = custom(
        id,
        ALIASED,
        &[("primary", Scalar::String(primary.into()))],
        at,
    );
    e.contact_id = to.into();
    e.origin = None;
    e
}

#[test]
fn linking_an_identity_tells_its_contact_whose_alias_it_is() {
    let mut h = Harness::new(welcome_and_echo());
    h.send(msg("m1", "hi", T0));
    h.actions.clear();
    h.send(custom(
        "link-1",
        LINK_IDENTITY,
        &[("urn", Scalar::String(WA.into()))],
        T0 + MIN,
    ));
    let urns: Vec<&str> = h.state.urns.iter().map(|u| &**u).collect();
    assert_eq!(urns, ["telegram:42", WA]);
    assert_eq!(h.actions.len(), 1, "{:#?}", h.actions);
    let a = &h.actions[0];
    assert_eq!(a.action_type, ActionType::EventPublish);
    assert_eq!(a.contact_id, contact_id("acme", WA));
    assert_eq!(name(a), ALIASED);
    assert_eq!(field(a, "primary"), &Scalar::String("c-1".into()));
    a.validate().unwrap();

    // The same input again is a duplicate; a replay of the state yields the same id.
    let id = a.id.clone();
    let mut replay = Harness::new(welcome_and_echo());
    replay.send(msg("m1", "hi", T0));
    replay.actions.clear();
    replay.send(custom(
        "link-1",
        LINK_IDENTITY,
        &[("urn", Scalar::String(WA.into()))],
        T0 + MIN,
    ));
    assert_eq!(replay.actions[0].id, id);
}

#[test]
fn linking_the_contacts_own_identity_aliases_nothing() {
    let mut h = Harness::new(welcome_and_echo());
    let me = contact_id("acme", "telegram:42");
    let mut first = msg("m1", "hi", T0);
    first.contact_id = me.clone();
    h.send(first);
    h.actions.clear();
    let mut link = custom(
        "link-1",
        LINK_IDENTITY,
        &[("urn", Scalar::String("telegram:42".into()))],
        T0 + MIN,
    );
    link.contact_id = me.clone();
    h.send(link);
    assert!(h.actions.is_empty(), "{:#?}", h.actions);

    // Nor does a `contact.aliased` naming the contact itself make it an alias.
    h.send(aliased(&me, &me, "self-1", T0 + 2 * MIN));
    assert_eq!(h.state.alias_of, None);
}

#[test]
fn an_alias_forwards_its_events_and_the_primary_runs_its_flows() {
    let wa = contact_id("acme", WA);
    let mut primary = Harness::new(welcome_and_echo());
    primary.send(msg("m1", "hi", T0));
    primary.send(custom(
        "link-1",
        LINK_IDENTITY,
        &[("urn", Scalar::String(WA.into()))],
        T0 + MIN,
    ));
    let link = primary.actions.pop().unwrap();
    primary.actions.clear();

    // The alias is created by `contact.aliased`: no welcome, no contact.created.
    let mut alias = Harness::new(welcome_and_echo());
    let out = alias.send(deliver(&link));
    assert!(applied(&out));
    assert_eq!(alias.state.alias_of.as_deref(), Some("c-1"));
    assert!(alias.state.created);
    assert!(alias.actions.is_empty(), "{:#?}", alias.actions);
    assert!(
        !alias
            .emitted_types()
            .contains(&"contact.created".to_owned())
    );

    // A WhatsApp message runs no flow on the alias: it is forwarded.
    alias.send(wa_msg("wa-1", "from whatsapp", T0 + 2 * MIN));
    assert_eq!(alias.actions.len(), 1, "{:#?}", alias.actions);
    let fwd = alias.actions[0].clone();
    assert_eq!(fwd.contact_id, "c-1");
    assert_eq!(name(&fwd), FORWARDED);
    assert_eq!(field(&fwd, "hops"), &Scalar::Long(1));
    assert_eq!(field(&fwd, "via"), &Scalar::String(wa.clone()));
    assert!(alias.state.runs.is_empty());
    // The alias dedupes its own events.
    let again = alias.send(wa_msg("wa-1", "from whatsapp", T0 + 2 * MIN));
    assert_eq!(again.disposition, Disposition::Duplicate);

    // The primary unwraps it and runs the echo, answering on WhatsApp.
    let forwarded = deliver(&fwd);
    let out = primary.send(forwarded.clone());
    assert!(applied(&out));
    assert_eq!(primary.take_texts(), ["echo from whatsapp"]);
    let ActionPayload::SendMessage(m) = &out.actions[0].payload else {
        panic!()
    };
    assert_eq!((m.channel_type.as_str(), m.to.as_str()), ("whatsapp", WA));
    assert_eq!(out.actions[0].contact_id, "c-1");
    // A redelivered forward is a duplicate.
    let again = primary.send(forwarded);
    assert_eq!(again.disposition, Disposition::Duplicate);
}

/// A contact that is an alias of `primary`.
fn alias_of(me: &str, primary: &str) -> Harness {
    let mut h = Harness::new(welcome_and_echo());
    h.send(aliased(primary, me, "aliased-1", T0));
    assert_eq!(h.state.alias_of.as_deref(), Some(primary));
    h.actions.clear();
    h
}

fn forwarded(to: &str, original: &Event, hops: i64, via: &str, id: &str) -> Event {
    let mut e = custom(
        id,
        FORWARDED,
        &[
            (
                "event",
                Scalar::String(serde_json::to_string(original).unwrap()),
            ),
            ("hops", Scalar::Long(hops)),
            ("via", Scalar::String(via.into())),
        ],
        original.occurred_at,
    );
    e.contact_id = to.into();
    e.origin = None;
    e
}

#[test]
fn a_chain_of_aliases_forwards_at_most_the_hop_limit() {
    let original = wa_msg("wa-1", "hops", T0 + MIN);
    // Below the limit, an alias passes a forwarded event on, one hop more.
    let mut b = alias_of("b", "c");
    b.send(forwarded(
        "b",
        &original,
        MAX_ALIAS_HOPS - 1,
        "x,y,a",
        "f-1",
    ));
    assert_eq!(b.actions.len(), 1);
    assert_eq!(b.actions[0].contact_id, "c");
    assert_eq!(field(&b.actions[0], "hops"), &Scalar::Long(MAX_ALIAS_HOPS));
    assert_eq!(
        field(&b.actions[0], "via"),
        &Scalar::String("x,y,a,b".into())
    );

    // At the limit, it processes the event itself.
    let mut b = alias_of("b", "c");
    b.send(forwarded("b", &original, MAX_ALIAS_HOPS, "w,x,y,a", "f-1"));
    assert_eq!(b.take_texts(), ["echo hops"]);
    assert!(
        b.actions
            .iter()
            .all(|a| a.action_type != ActionType::EventPublish)
    );
}

#[test]
fn an_event_is_never_forwarded_in_a_cycle() {
    let original = wa_msg("wa-1", "loop", T0 + MIN);
    // a and b are aliases of each other: a forwards to b, b would forward back to a.
    let mut a = alias_of("a", "b");
    a.send(wa_msg("wa-1", "loop", T0 + MIN));
    let to_b = a.actions[0].clone();
    assert_eq!(to_b.contact_id, "b");
    let mut b = alias_of("b", "a");
    b.send(deliver(&to_b));
    assert_eq!(b.take_texts(), ["echo loop"], "b processes it itself");

    // An alias never forwards an event that already passed its primary.
    let mut b = alias_of("b", "c");
    b.send(forwarded("b", &original, 1, "c", "f-2"));
    assert_eq!(b.take_texts(), ["echo loop"]);
}

#[test]
fn a_forward_from_another_tenant_is_not_unwrapped() {
    let mut original = wa_msg("wa-1", "sneaky", T0 + MIN);
    original.tenant = "globex".into();
    let mut h = Harness::new(welcome_and_echo());
    h.send(msg("m1", "hi", T0));
    h.actions.clear();
    h.send(forwarded("c-1", &original, 1, "x", "f-1"));
    assert!(h.texts().is_empty(), "{:?}", h.texts());
    assert!(!h.state.urns.iter().any(|u| &**u == WA));
}

#[test]
fn a_version_1_state_decodes_without_an_alias() {
    let mut h = Harness::new(welcome_and_echo());
    h.send(msg("m1", "hi", T0));
    let bytes = h.state.encode();
    assert_eq!(bytes[0], 2, "format 2 is written");
    // Format 1 is format 2 without the `alias_of` trailer (`None`, one 0 byte).
    let mut v1 = bytes[..bytes.len() - 1].to_vec();
    v1[0] = 1;
    let decoded = ContactState::decode(&v1).unwrap();
    assert_eq!(decoded, h.state);
    assert_eq!(decoded.alias_of, None);
    let mut aliased = h.state.clone();
    aliased.alias_of = Some("c-9".into());
    assert_eq!(ContactState::decode(&aliased.encode()).unwrap(), aliased);
}

#[test]
fn custom_events_do_not_move_the_default_channel() {
    let mut h = Harness::new(welcome_and_echo());
    h.send(msg("m1", "hi", T0));
    let before = h.state.channel.clone().unwrap();
    let mut reply = custom(
        "r1",
        "support.manager_reply",
        &[("text", Scalar::String("hello from a manager".into()))],
        T0 + MIN,
    );
    reply.origin = Some(Origin {
        channel_type: "telegram".into(),
        channel_id: "-1001234567890".into(),
        urn: Some("telegram-topic:-1001234567890:7".into()),
        username: Some("anna".into()),
        provider_id: None,
    });
    h.send(reply);
    assert_eq!(h.state.channel.as_ref(), Some(&before));
}

#[test]
fn send_message_goes_to_its_channel_and_to() {
    let nodes = json!([
        { "id": "to_contact", "type": "send_message", "channel": "contact",
          "text": "{{ event.fields.text }}", "exits": { "next": "to_desk" } },
        { "id": "to_desk", "type": "send_message", "channel": "telegram_desk",
          "to": "{{ contact.username or 'someone' }}", "text": "mirrored",
          "exits": { "next": "to_topic" } },
        { "id": "to_topic", "type": "send_message", "channel": "telegram",
          "to": "telegram-topic:{{ event.fields.chat }}:{{ event.fields.thread }}", "text": "note" }
    ]);
    let mut h = Harness::new(vec![flow(
        "relay",
        json!({ "event": "custom", "name": "support.manager_reply" }),
        nodes,
    )]);
    h.send(msg("m1", "hi", T0));
    let mut reply = custom(
        "r1",
        "support.manager_reply",
        &[
            ("text", Scalar::String("on our way".into())),
            ("chat", Scalar::Long(-100)),
            ("thread", Scalar::Long(7)),
        ],
        T0 + MIN,
    );
    reply.origin = Some(Origin {
        channel_type: "telegram".into(),
        channel_id: "-100".into(),
        urn: Some("telegram-topic:-100:7".into()),
        username: None,
        provider_id: None,
    });
    let out = h.send(reply);
    let sent: Vec<(String, String, String)> = out
        .actions
        .iter()
        .map(|a| match &a.payload {
            ActionPayload::SendMessage(m) => {
                (m.channel_type.clone(), m.channel_id.clone(), m.to.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let want = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        sent,
        [
            want("telegram", "bot-1", "telegram:42"),
            want("telegram_desk", "-100", "someone"),
            want("telegram", "-100", "telegram-topic:-100:7"),
        ]
    );
}

#[test]
fn session_nodes_fall_back_to_the_session_id_variable() {
    let nodes = json!([
        { "id": "remember", "type": "set_var", "var": "session_id", "value": "{{ contact.fields.desk_session }}",
          "exits": { "next": "close" } },
        { "id": "close", "type": "close_session", "message": "done" }
    ]);
    let mut h = Harness::new(vec![flow(
        "closer",
        json!({ "event": "custom", "name": "support.manager_reply" }),
        nodes,
    )]);
    h.send(msg("m1", "hi", T0));
    h.state.set_field("desk_session", Some("s-77"));
    let out = h.send(custom("r1", "support.manager_reply", &[], T0 + MIN));
    assert_eq!(out.actions.len(), 1, "{:?}", h.outcomes());
    let ActionPayload::SessionChange(c) = &out.actions[0].payload else {
        panic!()
    };
    assert_eq!(c.session_id, "s-77");
}
