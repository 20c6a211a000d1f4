//! Evaluator benchmarks.
//!
//! `cargo bench -p sluice-engine --bench evaluate`
//!
//! - `evaluate/five_node_flow_100k_contacts`: a five-node flow (trigger → if → send →
//!   wait → send) over 100 000 contacts held in memory; each iteration feeds every
//!   contact one `message.received` (the run starts, sends, waits) and then fires its
//!   timer (the run sends again and ends): 200 000 inputs per iteration.
//! - `state/encode`, `state/decode`: a contact state with one waiting run.
//! - It also prints the memory a contact with one waiting run takes: encoded bytes and
//!   an in-memory estimate (struct sizes plus owned heap blocks).

use std::hint::black_box;

// The allocator decides much of this benchmark (an evaluation allocates the actions and
// events it returns, and glibc's malloc spends ~40% of the time consolidating). It runs
// with mimalloc, as a service binary should; BENCHMARKS.md also has glibc's numbers.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_engine::eval::{ContactState, FlowSet, Input, TimerFired, evaluate};
use sluice_engine::flow::{SourceFormat, compile_str};
use sluice_schemas::{Event, EventType, MessagePayload, Origin, Payload};

const CONTACTS: usize = 100_000;
const T0: i64 = 1_772_445_600_000;

const FLOW: &str = r#"{
  "id": "bench", "name": "bench", "version": 1, "kind": "event",
  "triggers": [ { "event": "message.received", "reentry": "always" } ],
  "nodes": [
    { "id": "check", "type": "if",
      "condition": { "left": "event.message.text", "op": "contains", "right": "hi" },
      "exits": { "true": "hello", "false": "bye" } },
    { "id": "hello", "type": "send_message", "text": "Hello! We will write again in an hour.",
      "exits": { "next": "wait" } },
    { "id": "wait", "type": "wait", "duration": "1h", "exits": { "next": "bye" } },
    { "id": "bye", "type": "send_message", "text": "An hour later: still there?" }
  ]
}"#;

fn flows() -> FlowSet {
    let flow = compile_str(FLOW, SourceFormat::Json)
        .into_result()
        .unwrap_or_else(|e| panic!("bench flow: {e}"));
    let mut set = FlowSet::new();
    set.insert(Arc::new(flow));
    set
}

fn message(contact: &str, id: String, at: i64) -> Event {
    Event {
        id,
        tenant: "acme".into(),
        contact_id: contact.into(),
        event_type: EventType::MessageReceived,
        occurred_at: at,
        session: None,
        origin: Some(Origin {
            channel_type: "telegram".into(),
            channel_id: "bot-1".into(),
            urn: Some(format!("telegram:{contact}")),
            username: None,
            provider_id: None,
        }),
        chain_depth: 0,
        payload: Payload::Message(MessagePayload {
            text: Some("hi there".into()),
            kind: "text".into(),
            media: None,
            reply_payload: None,
            edited: false,
        }),
    }
}

/// One contact's state with one waiting run (after its first message).
fn waiting_state(flows: &FlowSet) -> ContactState {
    let mut state = ContactState::default();
    let e = message("c-000042", "tg-1".into(), T0);
    evaluate(flows, &mut state, Input::Event(&e), T0);
    state
}

#[allow(clippy::print_stderr)] // A benchmark prints what it measured.
fn report_memory(flows: &FlowSet) {
    let state = waiting_state(flows);
    let encoded = state.encode().len();
    let memory = state.memory_size();
    let idle = {
        let mut s = state.clone();
        s.runs.clear();
        s.runs.shrink_to_fit();
        s.memory_size()
    };
    eprintln!(
        "memory per waiting run: contact state with one waiting run = {encoded} bytes encoded, \
         ~{memory} bytes in memory ({} of them the run: {} inline + heap); \
         `cargo bench -p sluice-engine --bench evaluate`",
        memory - idle,
        std::mem::size_of::<sluice_engine::eval::Run>(),
    );
}

fn bench(c: &mut Criterion) {
    let flows = flows();
    report_memory(&flows);
    let contacts: Vec<String> = (0..CONTACTS).map(|i| format!("c-{i:06}")).collect();
    let mut states: Vec<ContactState> = vec![ContactState::default(); CONTACTS];
    // Warm up: create every contact (contact.created) and finish one run each.
    let mut round = 0u64;
    let pass = |states: &mut Vec<ContactState>, events: &[Event], at: i64| {
        let mut n = 0usize;
        for (state, event) in states.iter_mut().zip(events) {
            let out = evaluate(&flows, state, Input::Event(event), at);
            n += out.actions.len();
            if let Some(t) = out.timers_set.first() {
                let fired = TimerFired {
                    key: t.key,
                    due_at: t.due_at,
                };
                n += evaluate(&flows, state, Input::Timer(fired), t.due_at)
                    .actions
                    .len();
            }
        }
        n
    };
    let make = |round: u64| -> Vec<Event> {
        contacts
            .iter()
            .map(|c| message(c, format!("tg-{round}-{c}"), T0))
            .collect()
    };
    pass(&mut states, &make(round), T0);

    let mut group = c.benchmark_group("evaluate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2 * CONTACTS as u64));
    group.bench_function("five_node_flow_100k_contacts", |b| {
        b.iter_batched(
            || {
                round += 1;
                make(round)
            },
            // The events are returned so that dropping them is not measured.
            |events| {
                let n = pass(&mut states, &events, T0 + 1);
                (events, black_box(n))
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let state = waiting_state(&flows);
    let bytes = state.encode();
    let mut group = c.benchmark_group("state");
    group.bench_function("encode", |b| b.iter(|| black_box(state.encode())));
    group.bench_function("decode", |b| {
        b.iter(|| black_box(ContactState::decode(&bytes).is_ok()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
