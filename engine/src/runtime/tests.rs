//! The runtime's own guarantees, with a stand-in evaluator: per-contact order,
//! each timer fires once and in order, cancelled timers never fire, a restart
//! resumes pending timers, and the wall-clock runtime processes everything.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sluice_infra::{
    bus::{EventBus, MemoryBus, Record, TopicSpec, topics},
    store::{ContactKey, MemoryStore, TimerStore},
};
use sluice_schemas::{Action, ActionPayload, ActionType, Event, EventType, SendMessage};

use super::*;
use crate::eval::{Output, Timer, TimerKey};

/// Every event sets a timer `delay` ms later (run = event number, token 1); a
/// `cancel` custom event cancels the contact's previous timer. Each input emits
/// one action naming it.
#[derive(Default)]
struct StandIn {
    delay: i64,
    /// Adds a per-run pseudo-random 0–3 s to each delay.
    jitter: bool,
    contacts: Mutex<HashMap<u64, ContactKey>>,
}

fn action(contact: &ContactKey, text: String, now: i64) -> Action {
    Action {
        id: format!("{}:{text}", contact.contact_id),
        tenant: contact.tenant.clone(),
        contact_id: contact.contact_id.clone(),
        run_id: "r".into(),
        flow_id: "f".into(),
        flow_version: 1,
        node_id: "n".into(),
        action_type: ActionType::MessageSend,
        created_at: now,
        not_before: None,
        chain_depth: 0,
        payload: ActionPayload::SendMessage(SendMessage {
            channel_type: "web".into(),
            channel_id: "w".into(),
            to: "web:1".into(),
            session_id: None,
            text: Some(text.clone()),
            media: None,
            buttons: Vec::new(),
        }),
    }
}

impl Evaluator for StandIn {
    fn evaluate(&self, _state: &mut ContactState, input: Input<'_>, now: i64) -> Output {
        let mut contacts = self.contacts.lock().unwrap();
        match input {
            Input::Event(event) => {
                let contact = ContactKey::new(event.tenant.as_str(), event.contact_id.as_str());
                let run: u64 = event.id.trim_start_matches('e').parse().unwrap_or(0);
                contacts.insert(run, contact.clone());
                let jitter = if self.jitter {
                    (run * 7_919 % 3_001) as i64
                } else {
                    0
                };
                let mut output = Output {
                    actions: vec![action(&contact, format!("event {}", event.id), now)],
                    timers_set: vec![Timer {
                        due_at: event.occurred_at + self.delay + jitter,
                        key: TimerKey { run, token: 1 },
                    }],
                    ..Output::default()
                };
                if event.event_type == EventType::Custom {
                    output.timers_set.clear();
                    output.timers_cancelled.push(TimerKey {
                        run: run - 1,
                        token: 1,
                    });
                }
                output
            }
            Input::Timer(fired) => {
                let contact = contacts
                    .get(&fired.key.run)
                    .cloned()
                    .unwrap_or_else(|| ContactKey::new("acme", "seeded"));
                Output {
                    actions: vec![action(&contact, format!("timer {}", fired.key.run), now)],
                    ..Output::default()
                }
            }
        }
    }
}

fn event(n: u64, contact: &str, at: i64) -> Event {
    serde_json::from_value(serde_json::json!({
        "id": format!("e{n}"), "tenant": "acme", "contact_id": contact,
        "type": "contact.created", "occurred_at": at,
    }))
    .unwrap()
}

fn cancel(n: u64, contact: &str, at: i64) -> Event {
    serde_json::from_value(serde_json::json!({
        "id": format!("e{n}"), "tenant": "acme", "contact_id": contact,
        "type": "custom", "occurred_at": at,
        "payload": {"custom": {"name": "cancel", "fields": {}}},
    }))
    .unwrap()
}

fn texts(processed: &Processed) -> Vec<String> {
    processed
        .output
        .actions
        .iter()
        .filter_map(|a| match &a.payload {
            ActionPayload::SendMessage(m) => m.text.clone(),
            _ => None,
        })
        .collect()
}

async fn partition(evaluator: Arc<StandIn>, store: Arc<MemoryStore>) -> Partition {
    let bus = MemoryBus::new(1);
    let processor = Processor::new(evaluator, store, Arc::new(bus));
    let config = TimerConfig {
        page: 2,
        ..TimerConfig::default()
    };
    Partition::new(0, 1, processor, config)
}

/// A memory bus of one partition with the Sluice topics.
async fn one_partition_bus() -> MemoryBus {
    let bus = MemoryBus::new(1);
    bus.ensure_topics(&TopicSpec::sluice_topics(1, 1))
        .await
        .unwrap();
    bus
}

/// A one-partition runtime that sends actions before its commits, as on Kafka, with
/// a stand-in whose timers lie an hour ahead.
async fn actions_first_runtime(bus: Arc<dyn EventBus>, store: Arc<dyn TimerStore>) -> Runtime {
    let evaluator = Arc::new(StandIn {
        delay: 3_600_000,
        ..StandIn::default()
    });
    let processor = Processor::new(evaluator, store, Arc::clone(&bus)).with_actions_before_commit();
    let partitions = vec![Partition::new(0, 1, processor, TimerConfig::default())];
    Runtime::start(bus, "test", partitions, Arc::new(WallClock))
        .await
        .unwrap()
}

#[tokio::test]
async fn timers_fire_in_order_once_and_survive_a_restart() {
    let evaluator = Arc::new(StandIn {
        delay: 1_000,
        ..StandIn::default()
    });
    let store = Arc::new(MemoryStore::default());
    let mut p = partition(Arc::clone(&evaluator), Arc::clone(&store)).await;
    assert!(p.load(0, 10).await.unwrap());
    for (n, at) in [(1, 300), (2, 100), (3, 200), (4, 250)] {
        let out = p.handle_event(&event(n, "c", at), at).await.unwrap();
        assert_eq!(texts(&out), [format!("event e{n}")]);
    }
    // e5 cancels e4's timer.
    p.handle_event(&cancel(5, "c", 260), 260).await.unwrap();
    assert_eq!(store.due(None, i64::MAX, 10).await.unwrap().len(), 3);

    // Only part of the pending timers is in memory; a new partition on the same
    // store (a restart) loads them page by page and fires them in due order.
    let mut p = partition(evaluator, Arc::clone(&store)).await;
    let mut fired = Vec::new();
    while !p.load(10_000, 1).await.unwrap() {}
    while let Some(out) = p.fire_next(10_000).await.unwrap() {
        fired.extend(texts(&out));
    }
    assert_eq!(fired, ["timer 2", "timer 3", "timer 1"]);
    assert!(store.due(None, i64::MAX, 10).await.unwrap().is_empty());
    assert!(p.fire_next(i64::MAX).await.unwrap().is_none());
}

#[tokio::test]
async fn a_window_loaded_while_a_batch_commits_holds_that_batchs_timers() {
    let evaluator = Arc::new(StandIn {
        delay: 5_000,
        ..StandIn::default()
    });
    let store = Arc::new(MemoryStore::default());
    let mut p = partition(Arc::clone(&evaluator), Arc::clone(&store)).await;
    assert!(p.load(1_000, 10).await.unwrap());
    // A batch staged and published whose commit has not landed: its timer (due at
    // 5,100) is beyond the loaded window, so the wheel does not take it yet.
    let e1 = event(1, "c", 100);
    let contact = ContactKey::new("acme", "c");
    let input = BatchInput {
        contact: &contact,
        input: Input::Event(&e1),
        now: 100,
    };
    let (_, staged) = p.stage(&[input]).await.unwrap();
    let staged = Arc::new(staged);
    p.push_in_flight(Arc::clone(&staged));
    assert_eq!(p.next_due(), None);
    // The next window is read from the store before the commit lands.
    assert!(p.load(10_000, 10).await.unwrap());
    assert_eq!(p.next_due(), Some(5_100), "taken from the batch in flight");
    p.commit(std::slice::from_ref(&staged)).await.unwrap();
    p.committed(staged);
    let fired = p.fire_next(10_000).await.unwrap().expect("fires");
    assert_eq!(texts(&fired), ["timer 1"]);
    assert!(p.fire_next(i64::MAX).await.unwrap().is_none(), "once");
}

#[tokio::test]
async fn wall_clock_runtime_processes_events_and_fires_timers() {
    const PARTITIONS: i32 = 4;
    let evaluator = Arc::new(StandIn {
        delay: 50,
        ..StandIn::default()
    });
    let store = Arc::new(MemoryStore::default());
    let bus = MemoryBus::new(PARTITIONS);
    bus.ensure_topics(&TopicSpec::sluice_topics(PARTITIONS, 1))
        .await
        .unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(bus);
    let processor = Processor::new(evaluator, store.clone(), Arc::clone(&bus));
    let partitions = (0..PARTITIONS)
        .map(|i| Partition::new(i, PARTITIONS, processor.clone(), TimerConfig::default()))
        .collect();
    let runtime = Runtime::start(Arc::clone(&bus), "test", partitions, Arc::new(WallClock))
        .await
        .unwrap();
    let now = WallClock.now();
    let records = (0..40)
        .map(|n| {
            let e = event(n + 1, &format!("c-{}", n % 10), now);
            Record::new(e.key(), e.encode().unwrap())
        })
        .collect();
    bus.publish(topics::EVENTS, records).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runtime
        .stats()
        .timers
        .load(std::sync::atomic::Ordering::SeqCst)
        < 40
    {
        assert!(std::time::Instant::now() < deadline, "timers did not fire");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runtime.shutdown().await;

    let mut actions = bus.subscribe("check", &[topics::ACTIONS]).await.unwrap();
    let mut by_contact: HashMap<String, Vec<String>> = HashMap::new();
    loop {
        let batch = actions.poll(1000, Duration::from_millis(20)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for record in batch {
            let action = Action::decode(&record.payload).unwrap();
            let ActionPayload::SendMessage(m) = action.payload else {
                unreachable!()
            };
            by_contact
                .entry(action.contact_id)
                .or_default()
                .push(m.text.unwrap_or_default());
        }
    }
    assert_eq!(by_contact.len(), 10);
    for (contact, texts) in by_contact {
        assert_eq!(texts.len(), 8, "{contact}: {texts:?}");
        let events: Vec<_> = texts.iter().filter(|t| t.starts_with("event")).collect();
        let mut sorted = events.clone();
        sorted.sort_by_key(|t| t[7..].parse::<u64>().unwrap());
        assert_eq!(events, sorted, "{contact}: events in order");
    }
    assert!(store.due(None, i64::MAX, 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_backlog_of_due_timers_drains_at_a_bounded_rate_beside_live_events() {
    use sluice_infra::store::{TimerChanges, TimerEntry};
    use std::sync::atomic::Ordering::SeqCst;
    let store = Arc::new(MemoryStore::default());
    let now = WallClock.now();
    let backlog: Vec<TimerEntry> = (0..3_000)
        .map(|i| TimerEntry {
            due_at: now - 60_000 + i,
            contact: ContactKey::new("acme", format!("old-{}", i % 50)),
            run: 100_000 + i as u64,
            token: 1,
        })
        .collect();
    let changes = TimerChanges {
        set: backlog,
        cancel: Vec::new(),
    };
    store.commit(&[], &changes).await.unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(one_partition_bus().await);
    let evaluator = Arc::new(StandIn {
        delay: 3_600_000,
        ..StandIn::default()
    });
    let processor = Processor::new(evaluator, store.clone(), Arc::clone(&bus));
    let config = TimerConfig {
        rate: 1_000,
        burst: 16,
        ..TimerConfig::default()
    };
    let partitions = vec![Partition::new(0, 1, processor, config)];
    let runtime = Runtime::start(Arc::clone(&bus), "t", partitions, Arc::new(WallClock))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = event(1, "live", now);
    bus.publish(
        topics::EVENTS,
        vec![Record::new(e.key(), e.encode().unwrap())],
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while runtime.stats().events.load(SeqCst) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the live event waited"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fired = runtime.stats().timers.load(SeqCst);
    // ~1000/s for ~0.2 s, plus the first burst: far from the whole backlog.
    assert!(
        (16..1_500).contains(&fired),
        "fired {fired} of 3000 before the live event"
    );
    runtime.shutdown().await;
}

/// Fires every timer due up to `to`, each at its due time; returns the fired runs
/// with their due times.
async fn drain(p: &mut Partition, to: i64, fired: &mut Vec<(i64, String)>) {
    loop {
        assert!(p.load(to + 1, usize::MAX).await.unwrap());
        match p.next_due() {
            Some(due) if due <= to => {
                if let Some(out) = p.fire_next(due).await.unwrap() {
                    fired.extend(texts(&out).into_iter().map(|t| (due, t)));
                }
            }
            _ => return,
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the timing and wherever the process restarts, every timer fires
    /// exactly once, in due order, and none is left behind.
    #[test]
    fn every_timer_fires_once_in_order_across_restarts(
        steps in proptest::collection::vec((0u8..4, 0i64..2_500, proptest::bool::ANY), 1..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let evaluator = Arc::new(StandIn { delay: 500, jitter: true, ..StandIn::default() });
            let store = Arc::new(MemoryStore::default());
            let mut p = partition(Arc::clone(&evaluator), Arc::clone(&store)).await;
            let mut fired = Vec::new();
            let mut now = 1_000_000;
            for (n, (contact, gap, restart)) in steps.iter().enumerate() {
                now += gap;
                drain(&mut p, now, &mut fired).await;
                let e = event(n as u64 + 1, &format!("c-{contact}"), now);
                p.handle_event(&e, now).await.unwrap();
                if *restart {
                    p = partition(Arc::clone(&evaluator), Arc::clone(&store)).await;
                }
            }
            drain(&mut p, i64::MAX - 1, &mut fired).await;
            let mut runs: Vec<u64> = fired
                .iter()
                .map(|(_, t)| t.trim_start_matches("timer ").parse().unwrap())
                .collect();
            assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "in due order: {fired:?}");
            runs.sort_unstable();
            let expected: Vec<u64> = (1..=steps.len() as u64).collect();
            assert_eq!(runs, expected, "each timer exactly once");
            assert!(store.due(None, i64::MAX, 1).await.unwrap().is_empty());
        });
    }
}

/// A store that cannot load one contact's state while `down` is set, as if its
/// replica were unreachable.
struct Stuck {
    inner: MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl sluice_infra::store::StateStore for Stuck {
    async fn load(
        &self,
        key: &ContactKey,
    ) -> sluice_infra::Result<Option<sluice_infra::store::StoredState>> {
        if key.contact_id == "stuck" && self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(sluice_infra::Error::Cql {
                operation: "loading".into(),
                message: "unreachable".into(),
                retryable: true,
            });
        }
        self.inner.load(key).await
    }

    async fn save(
        &self,
        batch: &[(ContactKey, sluice_infra::store::StoredState)],
    ) -> sluice_infra::Result<()> {
        self.inner.save(batch).await
    }
}

/// `TimerStore` for a test wrapper of the in-memory store: everything goes to `inner`.
/// With a second argument, a function of the wrapper giving how long each commit
/// waits first.
macro_rules! timers_through_inner {
    ($wrapper:ty) => {
        timers_through_inner!($wrapper, |_: &$wrapper| Duration::ZERO);
    };
    ($wrapper:ty, $commit_delay:expr) => {
        #[async_trait::async_trait]
        impl TimerStore for $wrapper {
            async fn commit(
                &self,
                states: &[(ContactKey, sluice_infra::store::StoredState)],
                timers: &sluice_infra::store::TimerChanges,
            ) -> sluice_infra::Result<()> {
                let delay: Duration = ($commit_delay)(self);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                self.inner.commit(states, timers).await
            }

            async fn due(
                &self,
                after: Option<&sluice_infra::store::TimerEntry>,
                before: i64,
                limit: usize,
            ) -> sluice_infra::Result<Vec<sluice_infra::store::TimerEntry>> {
                self.inner.due(after, before, limit).await
            }

            async fn contains(
                &self,
                timer: &sluice_infra::store::TimerEntry,
            ) -> sluice_infra::Result<bool> {
                self.inner.contains(timer).await
            }
        }
    };
}

timers_through_inner!(Stuck);

#[tokio::test]
async fn a_partition_stuck_on_its_store_does_not_stop_the_others() {
    use std::sync::atomic::Ordering::SeqCst;
    const PARTITIONS: i32 = 2;
    let stuck_partition = sluice_infra::bus::partition_for(b"acme/stuck", PARTITIONS);
    let other = (0..)
        .map(|i| format!("c-{i}"))
        .find(|c| {
            sluice_infra::bus::partition_for(format!("acme/{c}").as_bytes(), PARTITIONS)
                != stuck_partition
        })
        .unwrap();
    let store = Arc::new(Stuck {
        inner: MemoryStore::default(),
        down: true.into(),
    });
    let bus = MemoryBus::new(PARTITIONS);
    bus.ensure_topics(&TopicSpec::sluice_topics(PARTITIONS, 1))
        .await
        .unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(bus);
    // More than a worker's inbox and a poll hold.
    let now = WallClock.now() + 3_600_000;
    let records: Vec<Record> = (0..1_600)
        .map(|n| {
            let e = event(n + 1, "stuck", now);
            Record::new(e.key(), e.encode().unwrap())
        })
        .collect();
    bus.publish(topics::EVENTS, records).await.unwrap();

    let evaluator = Arc::new(StandIn {
        delay: 3_600_000,
        ..StandIn::default()
    });
    let processor = Processor::new(evaluator, store.clone(), Arc::clone(&bus));
    let partitions = (0..PARTITIONS)
        .map(|i| Partition::new(i, PARTITIONS, processor.clone(), TimerConfig::default()))
        .collect();
    let runtime = Runtime::start(Arc::clone(&bus), "test", partitions, Arc::new(WallClock))
        .await
        .unwrap();
    let wait_for = |count: u64| {
        let stats = runtime.stats();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while stats.events.load(SeqCst) < count {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} of {count} events processed",
                    stats.events.load(SeqCst)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // Once the stuck worker's inbox is full, the other partition's events arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let records: Vec<Record> = (0..20)
        .map(|n| {
            let e = event(2_000 + n, &other, now);
            Record::new(e.key(), e.encode().unwrap())
        })
        .collect();
    bus.publish(topics::EVENTS, records).await.unwrap();
    wait_for(20).await;
    assert_eq!(
        runtime.stats().events.load(SeqCst),
        20,
        "the stuck partition waits"
    );
    store.down.store(false, SeqCst);
    wait_for(1_620).await;
    runtime.shutdown().await;
}

/// A memory store that counts the states it loads.
#[derive(Default)]
struct Counting {
    inner: MemoryStore,
    loaded: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl sluice_infra::store::StateStore for Counting {
    async fn load(
        &self,
        key: &ContactKey,
    ) -> sluice_infra::Result<Option<sluice_infra::store::StoredState>> {
        self.loaded
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.load(key).await
    }

    async fn save(
        &self,
        batch: &[(ContactKey, sluice_infra::store::StoredState)],
    ) -> sluice_infra::Result<()> {
        self.inner.save(batch).await
    }
}

timers_through_inner!(Counting);

#[tokio::test]
async fn a_batch_loads_each_contact_once_and_the_cache_spares_later_loads() {
    use sluice_infra::store::StateStore;
    use std::sync::atomic::Ordering::SeqCst;
    let store = Arc::new(Counting::default());
    let processor = Processor::new(
        Arc::new(StandIn::default()),
        Arc::clone(&store) as Arc<dyn TimerStore>,
        Arc::new(MemoryBus::new(1)),
    );
    let mut p = Partition::new(0, 1, processor, TimerConfig::default());
    let events: Vec<(ContactKey, Event)> = (1..=6)
        .map(|n| {
            let e = event(n, &format!("c-{}", n % 3), 100);
            (ContactKey::new("acme", format!("c-{}", n % 3)), e)
        })
        .collect();
    let inputs: Vec<BatchInput<'_>> = events
        .iter()
        .map(|(contact, e)| BatchInput {
            contact,
            input: Input::Event(e),
            now: 100,
        })
        .collect();
    let processed = p.process(&inputs).await.unwrap();
    assert_eq!(processed.len(), 6);
    assert_eq!(store.loaded.load(SeqCst), 3, "one load per contact");
    let version = |c: &str| {
        let store = Arc::clone(&store);
        let key = ContactKey::new("acme", c);
        async move { store.inner.load(&key).await.unwrap().unwrap().version }
    };
    assert_eq!(version("c-0").await, 2, "one version per applied input");

    p.handle_event(&event(7, "c-1", 100), 100).await.unwrap();
    assert_eq!(store.loaded.load(SeqCst), 3, "cached");
    assert_eq!(version("c-1").await, 3);

    // After a change of hands, states are read from the store again.
    p.reset();
    p.handle_event(&event(8, "c-1", 100), 100).await.unwrap();
    assert_eq!(store.loaded.load(SeqCst), 4);
    assert_eq!(version("c-1").await, 4);
}

#[tokio::test]
async fn one_unprocessable_input_goes_to_the_dead_letters_and_its_batch_goes_on() {
    use sluice_infra::store::{StateStore, StoredState};
    use std::sync::atomic::Ordering::SeqCst;
    let store = Arc::new(MemoryStore::default());
    // The stored state of one contact cannot be read.
    let broken = ContactKey::new("acme", "broken");
    store
        .save(&[(
            broken,
            StoredState {
                version: 1,
                data: bytes::Bytes::from_static(b"\xffgarbage"),
            },
        )])
        .await
        .unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(one_partition_bus().await);
    let records: Vec<Record> = (1..=9)
        .map(|n| {
            let contact = if n == 5 {
                "broken".to_owned()
            } else {
                format!("c-{}", n % 4)
            };
            let e = event(n, &contact, WallClock.now() + 3_600_000);
            Record::new(e.key(), e.encode().unwrap())
        })
        .collect();
    bus.publish(topics::EVENTS, records).await.unwrap();
    let evaluator = Arc::new(StandIn {
        delay: 3_600_000,
        ..StandIn::default()
    });
    let processor = Processor::new(evaluator, store, Arc::clone(&bus));
    let runtime = Runtime::start_with(
        Arc::clone(&bus),
        "test",
        vec![Partition::new(0, 1, processor, TimerConfig::default())],
        Arc::new(WallClock),
        RuntimeOptions {
            dlq_topic: Some(topics::DLQ.to_owned()),
            ..RuntimeOptions::default()
        },
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runtime.stats().events.load(SeqCst) < 9 {
        assert!(std::time::Instant::now() < deadline, "events not processed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runtime.stats().dead_letters.load(SeqCst), 1);
    assert_eq!(runtime.stats().actions.load(SeqCst), 8);
    runtime.shutdown().await;
    let mut dlq = bus.subscribe("check", &[topics::DLQ]).await.unwrap();
    let letters = dlq.poll(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].key, "acme/broken");
    let reason = String::from_utf8_lossy(letters[0].header("sluice.error").unwrap());
    assert!(reason.starts_with("unprocessable: "), "{reason}");
}

/// A memory store whose commits take `delay`, as if the CQL store were slow.
struct SlowCommits {
    inner: MemoryStore,
    delay: Duration,
}

timers_through_inner!(SlowCommits, |store: &SlowCommits| store.delay);

#[async_trait::async_trait]
impl sluice_infra::store::StateStore for SlowCommits {
    async fn load(
        &self,
        key: &ContactKey,
    ) -> sluice_infra::Result<Option<sluice_infra::store::StoredState>> {
        self.inner.load(key).await
    }

    async fn save(
        &self,
        batch: &[(ContactKey, sluice_infra::store::StoredState)],
    ) -> sluice_infra::Result<()> {
        tokio::time::sleep(self.delay).await;
        self.inner.save(batch).await
    }
}

/// With actions before commits, an event that arrives while the previous batch's
/// commit runs is evaluated and its action published at once: it does not wait
/// behind that commit (which here takes 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_arriving_during_a_commit_is_acted_on_before_that_commit_ends() {
    use sluice_infra::store::StateStore;
    let store = Arc::new(SlowCommits {
        inner: MemoryStore::default(),
        delay: Duration::from_secs(5),
    });
    let bus: Arc<dyn EventBus> = Arc::new(one_partition_bus().await);
    let runtime = actions_first_runtime(Arc::clone(&bus), store.clone()).await;
    let mut actions = bus.subscribe("check", &[topics::ACTIONS]).await.unwrap();
    let mut seen = Vec::new();
    let now = WallClock.now();
    for (n, contact) in [(1, "first"), (2, "second")] {
        let e = event(n, contact, now);
        bus.publish(
            topics::EVENTS,
            vec![Record::new(e.key(), e.encode().unwrap())],
        )
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while seen.len() < n as usize {
            assert!(std::time::Instant::now() < deadline, "no action for e{n}");
            seen.extend(actions.poll(10, Duration::from_millis(10)).await.unwrap());
        }
    }
    assert!(
        store
            .inner
            .load(&ContactKey::new("acme", "first"))
            .await
            .unwrap()
            .is_none(),
        "both actions went out while the first commit still ran"
    );
    runtime.shutdown().await;
    assert!(
        store
            .inner
            .load(&ContactKey::new("acme", "second"))
            .await
            .unwrap()
            .is_some(),
        "shutdown finished the commits in flight"
    );
}

/// A memory bus whose producer gives up on the first batch of actions sent to it
/// (as Kafka's does after `message.timeout.ms`): the send is accepted, its delivery
/// fails, and nothing is stored.
struct LosesFirstDelivery {
    inner: MemoryBus,
    lost: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EventBus for LosesFirstDelivery {
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> sluice_infra::Result<()> {
        self.inner.ensure_topics(specs).await
    }

    async fn publish(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> sluice_infra::Result<Vec<sluice_infra::bus::Position>> {
        self.inner.publish(topic, records).await
    }

    async fn send(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> sluice_infra::Result<sluice_infra::bus::Sending> {
        if topic == topics::ACTIONS && !self.lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(Box::pin(std::future::ready(Err(
                sluice_infra::Error::Kafka {
                    operation: format!("delivering to {topic}"),
                    source: rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::MessageTimedOut,
                    ),
                },
            ))));
        }
        let stored = self.inner.publish(topic, records).await;
        Ok(Box::pin(std::future::ready(stored)))
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
    ) -> sluice_infra::Result<Box<dyn sluice_infra::bus::Subscription>> {
        self.inner.subscribe(group, topics).await
    }
}

/// An action the producer gave up on is sent again, and the state that follows from
/// it is committed only after that: the action is not lost, nor sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_the_producer_gave_up_on_are_sent_again_before_their_states_commit() {
    use sluice_infra::store::StateStore;
    let store = Arc::new(MemoryStore::default());
    let bus = Arc::new(LosesFirstDelivery {
        inner: one_partition_bus().await,
        lost: std::sync::atomic::AtomicBool::new(false),
    });
    let runtime = actions_first_runtime(bus.clone(), store.clone()).await;
    let e = event(1, "c", WallClock.now());
    bus.inner
        .publish(
            topics::EVENTS,
            vec![Record::new(e.key(), e.encode().unwrap())],
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while runtime
        .stats()
        .events
        .load(std::sync::atomic::Ordering::SeqCst)
        < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the events were not processed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runtime.shutdown().await;
    assert!(bus.lost.load(std::sync::atomic::Ordering::SeqCst));

    let mut actions = bus
        .inner
        .subscribe("check", &[topics::ACTIONS])
        .await
        .unwrap();
    let texts: Vec<String> = actions
        .poll(100, Duration::from_millis(100))
        .await
        .unwrap()
        .into_iter()
        .map(
            |record| match Action::decode(&record.payload).unwrap().payload {
                ActionPayload::SendMessage(m) => m.text.unwrap_or_default(),
                _ => unreachable!(),
            },
        )
        .collect();
    assert_eq!(
        texts,
        ["event e1"],
        "the action went out once, after the loss"
    );
    let state = store
        .load(&ContactKey::new("acme", "c"))
        .await
        .unwrap()
        .expect("the contact's state is committed");
    assert!(state.version > 0);
}

/// Two replicas on the real Kafka share a consumer group and a store whose commits
/// take 3 s. The first fires 40 overdue timers and publishes their actions; the
/// second joins while those commits still run. The first replica's revocation
/// waits for them, so the second loads a store without those timers: each timer's
/// action is published once. (Without the wait, the second replica would load the
/// timers the first had fired but not yet committed, and fire them again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_changes_hands_only_after_its_fired_timers_are_durable() {
    use sluice_infra::{
        bus::{KafkaBus, KafkaConfig},
        store::{TimerChanges, TimerEntry},
        testing,
    };
    use std::sync::atomic::Ordering::SeqCst;
    const PARTITIONS: i32 = 4;
    const TIMERS: u64 = 40;
    let Some(kafka) = testing::kafka() else {
        return;
    };
    let bus: Arc<dyn EventBus> = Arc::new(
        KafkaBus::new(KafkaConfig::from_url(&format!("kafka://{kafka}")).unwrap()).unwrap(),
    );
    let events = testing::unique_name("events");
    let actions = testing::unique_name("actions");
    let group = testing::unique_name("engine");
    let spec = |name: &str| TopicSpec {
        name: name.to_owned(),
        partitions: PARTITIONS,
        replication: 1,
        compacted: false,
    };
    bus.ensure_topics(&[spec(&events), spec(&actions)])
        .await
        .unwrap();
    let store = Arc::new(SlowCommits {
        inner: MemoryStore::default(),
        delay: Duration::from_secs(3),
    });
    let now = WallClock.now();
    let overdue = (0..TIMERS)
        .map(|i| TimerEntry {
            due_at: now - 1_000,
            contact: ContactKey::new("acme", format!("c-{i}")),
            run: 1_000 + i,
            token: 1,
        })
        .collect();
    store
        .inner
        .commit(
            &[],
            &TimerChanges {
                set: overdue,
                cancel: Vec::new(),
            },
        )
        .await
        .unwrap();
    let replica = || {
        let evaluator = Arc::new(StandIn {
            delay: 3_600_000,
            ..StandIn::default()
        });
        let processor = Processor::new(
            evaluator,
            Arc::clone(&store) as Arc<dyn TimerStore>,
            Arc::clone(&bus),
        )
        .with_actions_topic(actions.clone())
        .with_actions_before_commit();
        let partitions = (0..PARTITIONS)
            .map(|i| Partition::new(i, PARTITIONS, processor.clone(), TimerConfig::default()))
            .collect();
        Runtime::start_with(
            Arc::clone(&bus),
            &group,
            partitions,
            Arc::new(WallClock),
            RuntimeOptions {
                events_topic: events.clone(),
                dlq_topic: None,
            },
        )
    };
    let mut published = bus
        .subscribe(&testing::unique_name("check"), &[&actions])
        .await
        .unwrap();
    let mut texts: Vec<String> = Vec::new();
    // Reads actions until `until`, or until every timer's action is in when `enough`.
    let mut read = async |texts: &mut Vec<String>, until: std::time::Instant, enough: bool| {
        while std::time::Instant::now() < until {
            for record in published
                .poll(1_000, Duration::from_millis(100))
                .await
                .unwrap()
            {
                let action = Action::decode(&record.payload).unwrap();
                let ActionPayload::SendMessage(m) = action.payload else {
                    unreachable!()
                };
                texts.push(m.text.unwrap_or_default());
            }
            if enough && texts.iter().filter(|t| t.starts_with("timer")).count() >= TIMERS as usize
            {
                return;
            }
        }
    };

    let first = replica().await.unwrap();
    read(
        &mut texts,
        std::time::Instant::now() + Duration::from_secs(30),
        true,
    )
    .await;
    assert_eq!(
        texts.len(),
        TIMERS as usize,
        "the first replica fired every timer"
    );
    // Their commits run for 3 s: the second replica joins meanwhile.
    let second = replica().await.unwrap();
    // Both replicas process events once the group settled: the second one has
    // partitions, loaded from the store after the revocation. (Events published
    // before the rebalance may all go to the first replica, which goes on taking
    // records while its commits run: a round of events goes out every second.)
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut round = 0;
    while second.stats().events.load(SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second replica took no partition"
        );
        let records: Vec<Record> = (0..40)
            .map(|n| {
                let e = event(round * 40 + n + 1, &format!("live-{round}-{n}"), now);
                Record::new(e.key(), e.encode().unwrap())
            })
            .collect();
        bus.publish(&events, records).await.unwrap();
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    read(
        &mut texts,
        std::time::Instant::now() + Duration::from_secs(3),
        false,
    )
    .await;
    let fired = texts.iter().filter(|t| t.starts_with("timer")).count();
    assert_eq!(
        fired,
        TIMERS as usize,
        "each timer's action published once: {:?}",
        texts
            .iter()
            .filter(|t| t.starts_with("timer"))
            .collect::<Vec<_>>()
    );
    assert!(
        second.stats().timers.load(SeqCst) == 0,
        "the second replica fired no timer again"
    );
    first.shutdown().await;
    second.shutdown().await;
}
