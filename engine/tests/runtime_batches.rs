//! Batch-split equivalence: processing any sequence of inputs in arbitrary batches
//! (through the partition's state cache, of any capacity, with store commits that
//! fail and are retried; and, as `sluice engine` does, with each batch evaluated
//! and published while the previous one's commit has not run yet) publishes the
//! same actions — ids and content — and leaves the same contact states and pending
//! timers as processing them one by one.

mod common;

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sluice_engine::runtime::{BatchInput, Partition, Processed, Processor, Staged, TimerConfig};
use sluice_engine::{eval::Input, eval::TimerFired, eval::TimerKey};
use sluice_infra::{
    bus::{EventBus, MemoryBus, TopicSpec, topics},
    store::{
        ContactKey, MemoryStore, StateStore, StoredState, TimerChanges, TimerEntry, TimerStore,
    },
};
use sluice_schemas::Event;

/// Asks with a 30 min timeout.
fn ask_flow() -> Value {
    json!({
        "id": "ask", "name": "ask", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "go", "reentry": "always" } ],
        "nodes": [
            { "id": "q", "type": "ask", "text": "How many?", "expect": "number", "var": "n",
              "timeout": "30m", "exits": { "answered": "ok", "invalid": "bad", "timeout": "late" } },
            { "id": "ok", "type": "send_message", "text": "got {{ vars.n }}" },
            { "id": "late", "type": "send_message", "text": "too late" },
            { "id": "bad", "type": "end", "outcome": "invalid" }
        ],
    })
}

/// Answers, waits 10 min, answers again.
fn wait_flow() -> Value {
    json!({
        "id": "wait", "name": "wait", "version": 1, "kind": "event",
        "triggers": [ { "event": "custom", "name": "ping", "reentry": "always" } ],
        "nodes": [
            { "id": "pong", "type": "send_message", "text": "pong", "exits": { "next": "pause" } },
            { "id": "pause", "type": "wait", "duration": "10m", "exits": { "next": "later" } },
            { "id": "later", "type": "send_message", "text": "later" }
        ],
    })
}

/// A [`MemoryStore`] whose next commit fails (as a store that is briefly down) when
/// asked to.
#[derive(Default)]
struct Flaky {
    inner: MemoryStore,
    fail: AtomicBool,
}

#[async_trait]
impl StateStore for Flaky {
    async fn load(&self, key: &ContactKey) -> sluice_infra::Result<Option<StoredState>> {
        self.inner.load(key).await
    }

    async fn load_many(
        &self,
        keys: &[ContactKey],
    ) -> sluice_infra::Result<Vec<Option<StoredState>>> {
        self.inner.load_many(keys).await
    }

    async fn save(&self, batch: &[(ContactKey, StoredState)]) -> sluice_infra::Result<()> {
        self.inner.save(batch).await
    }
}

#[async_trait]
impl TimerStore for Flaky {
    async fn commit(
        &self,
        states: &[(ContactKey, StoredState)],
        timers: &TimerChanges,
    ) -> sluice_infra::Result<()> {
        if self.fail.swap(false, Ordering::SeqCst) {
            return Err(sluice_infra::Error::Cql {
                operation: "committing".into(),
                message: "unreachable".into(),
                retryable: true,
            });
        }
        self.inner.commit(states, timers).await
    }

    async fn due(
        &self,
        after: Option<&TimerEntry>,
        before: i64,
        limit: usize,
    ) -> sluice_infra::Result<Vec<TimerEntry>> {
        self.inner.due(after, before, limit).await
    }

    async fn contains(&self, timer: &TimerEntry) -> sluice_infra::Result<bool> {
        self.inner.contains(timer).await
    }
}

/// One recorded input.
#[derive(Debug, Clone)]
enum Step {
    Event(ContactKey, Box<Event>, i64),
    Timer(TimerEntry, i64),
}

impl Step {
    fn input(&self) -> BatchInput<'_> {
        match self {
            Step::Event(contact, event, now) => BatchInput {
                contact,
                input: Input::Event(event),
                now: *now,
            },
            Step::Timer(timer, now) => BatchInput {
                contact: &timer.contact,
                input: Input::Timer(TimerFired {
                    key: TimerKey {
                        run: timer.run,
                        token: timer.token,
                    },
                    due_at: timer.due_at,
                }),
                now: *now,
            },
        }
    }
}

struct Setup {
    store: Arc<Flaky>,
    bus: Arc<MemoryBus>,
    partition: Partition,
}

async fn setup(cache: usize, actions_first: bool) -> Setup {
    let store = Arc::new(Flaky::default());
    let bus = Arc::new(MemoryBus::new(1));
    bus.ensure_topics(&TopicSpec::sluice_topics(1, 1))
        .await
        .unwrap();
    let mut processor = Processor::new(
        Arc::new(flows(vec![ask_flow(), wait_flow()])),
        Arc::clone(&store) as Arc<dyn TimerStore>,
        Arc::clone(&bus) as Arc<dyn EventBus>,
    );
    if actions_first {
        processor = processor.with_actions_before_commit();
    }
    let config = TimerConfig {
        cache,
        ..TimerConfig::default()
    };
    Setup {
        store,
        bus,
        partition: Partition::new(0, 1, processor, config),
    }
}

/// Every action on the bus, as `(id, encoded record)`, in order.
async fn published(bus: &MemoryBus) -> Vec<(String, Vec<u8>)> {
    let mut subscription = bus.subscribe("check", &[topics::ACTIONS]).await.unwrap();
    let mut out = Vec::new();
    loop {
        let batch = subscription
            .poll(10_000, std::time::Duration::from_millis(1))
            .await
            .unwrap();
        if batch.is_empty() {
            return out;
        }
        for record in batch {
            let action = sluice_schemas::Action::decode(&record.payload).unwrap();
            out.push((action.id, record.payload));
        }
    }
}

/// Final states of the contacts, and the pending timers.
async fn outcome(store: &Flaky) -> (Vec<Option<StoredState>>, Vec<TimerEntry>) {
    let contacts: Vec<ContactKey> = (0..3)
        .map(|c| ContactKey::new("acme", contact(c)))
        .collect();
    (
        store.load_many(&contacts).await.unwrap(),
        store.due(None, i64::MAX, 10_000).await.unwrap(),
    )
}

fn contact(c: u8) -> String {
    format!("c-{c}")
}

/// Runs `plan` one input at a time, firing the due timers at each "fire" step;
/// returns the inputs it processed, in order, with their results.
async fn one_by_one(s: &mut Setup, plan: &[(u8, u8, i64)]) -> (Vec<Step>, Vec<Processed>) {
    let mut steps: Vec<Step> = Vec::new();
    let mut results = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut set: Vec<TimerEntry> = Vec::new();
    let mut now = T0;
    for (n, &(kind, c, gap)) in plan.iter().enumerate() {
        now += gap * MIN;
        let id = format!("e{n}");
        let mut event = match kind {
            0 => custom(&id, "go", &[], now),
            1 => msg(&id, "12", now),
            2 => msg(&id, "abc", now),
            3 => custom(&id, "ping", &[], now),
            4 if !events.is_empty() => events[n % events.len()].clone(),
            _ => {
                // Every timer set so far that is due — also those cancelled or moved
                // since, as a wheel may still hold them — once each, in due order.
                let mut due: Vec<TimerEntry> =
                    set.iter().filter(|t| t.due_at <= now).cloned().collect();
                set.retain(|t| t.due_at > now);
                due.sort();
                for timer in due {
                    let step = Step::Timer(timer, now);
                    let processed = s.partition.process(&[step.input()]).await.unwrap();
                    set.extend(processed.iter().flat_map(|p| p.timers_set.clone()));
                    results.extend(processed);
                    steps.push(step);
                }
                continue;
            }
        };
        if kind != 4 {
            event.contact_id = contact(c);
            events.push(event.clone());
        }
        let key = ContactKey::new(event.tenant.as_str(), event.contact_id.as_str());
        let step = Step::Event(key, Box::new(event), now);
        let processed = s.partition.process(&[step.input()]).await.unwrap();
        set.extend(processed.iter().flat_map(|p| p.timers_set.clone()));
        results.extend(processed);
        steps.push(step);
    }
    (steps, results)
}

/// Commits the `count` oldest staged batches together (again while the store fails,
/// as the worker's background commits do), then hands their states to the cache.
async fn commit_oldest(
    partition: &mut Partition,
    in_flight: &mut VecDeque<Arc<Staged>>,
    count: usize,
) {
    let group: Vec<Arc<Staged>> = in_flight.drain(..count.min(in_flight.len())).collect();
    while let Err(error) = partition.commit(&group).await {
        assert!(error.to_string().contains("unreachable"), "{error}");
    }
    for staged in group {
        partition.committed(staged);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_split_into_batches_has_the_same_effects_as_one_by_one(
        plan in proptest::collection::vec((0u8..6, 0u8..3, 0i64..25), 1..40),
        sizes in proptest::collection::vec(1usize..12, 1..8),
        failures in proptest::collection::vec(proptest::bool::weighted(0.25), 1..8),
        cache in prop_oneof![Just(0usize), Just(2), Just(8_192)],
        actions_first in proptest::bool::ANY,
        pipelined in proptest::bool::ANY,
        depth in 1usize..5,
        groups in proptest::collection::vec(1usize..4, 1..8),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut single = setup(0, actions_first).await;
            let (steps, expected) = one_by_one(&mut single, &plan).await;
            let expected_actions = published(&single.bus).await;

            let mut batched = setup(cache, actions_first).await;
            let mut results = Vec::new();
            let mut rest: &[Step] = &steps;
            let mut chunk = 0;
            let mut in_flight: VecDeque<Arc<Staged>> = VecDeque::new();
            while !rest.is_empty() {
                let size = sizes[chunk % sizes.len()].min(rest.len());
                let (batch, tail) = rest.split_at(size);
                let inputs: Vec<BatchInput<'_>> = batch.iter().map(Step::input).collect();
                if actions_first && pipelined {
                    // Staged on up to `depth` earlier batches whose commits have not
                    // run yet; commits in order, several batches at once (a group
                    // commit), some failing once first.
                    let (processed, mut staged) = batched.partition.stage(&inputs).await.unwrap();
                    batched.partition.send(&mut staged).await.unwrap().await.unwrap();
                    let staged = Arc::new(staged);
                    batched.partition.push_in_flight(Arc::clone(&staged));
                    in_flight.push_back(staged);
                    if in_flight.len() > depth {
                        if failures[chunk % failures.len()] {
                            batched.store.fail.store(true, Ordering::SeqCst);
                        }
                        let count = groups[chunk % groups.len()];
                        commit_oldest(&mut batched.partition, &mut in_flight, count).await;
                        batched.store.fail.store(false, Ordering::SeqCst);
                    }
                    results.extend(processed);
                    rest = tail;
                    chunk += 1;
                    continue;
                }
                let mut attempt = Vec::new();
                if failures[chunk % failures.len()] {
                    // The commit fails (after the actions went out, in Kafka's order);
                    // the batch is processed again, as after a crash. A batch that
                    // commits nothing cannot fail there.
                    batched.store.fail.store(true, Ordering::SeqCst);
                    match batched.partition.process(&inputs).await {
                        Ok(done) => {
                            assert!(batched.store.fail.swap(false, Ordering::SeqCst));
                            attempt = done;
                        }
                        Err(error) => assert!(error.to_string().contains("unreachable")),
                    }
                }
                if attempt.is_empty() {
                    attempt = batched.partition.process(&inputs).await.unwrap();
                }
                results.extend(attempt);
                rest = tail;
                chunk += 1;
            }
            while !in_flight.is_empty() {
                let count = groups[in_flight.len() % groups.len()];
                commit_oldest(&mut batched.partition, &mut in_flight, count).await;
            }
            assert_eq!(results, expected, "same outputs per input");
            assert_eq!(outcome(&batched.store).await, outcome(&single.store).await);

            // Actions: the same ones, in the same order, once duplicates from the
            // retried batches are dropped by id — and every duplicate is identical.
            let mut seen = std::collections::HashMap::new();
            let mut deduped = Vec::new();
            for (id, payload) in published(&batched.bus).await {
                match seen.get(&id) {
                    Some(first) => assert_eq!(first, &payload, "a replay re-emits {id} as it was"),
                    None => {
                        seen.insert(id.clone(), payload.clone());
                        deduped.push((id, payload));
                    }
                }
            }
            assert_eq!(deduped, expected_actions);
        });
    }
}
