//! The in-process bus: Kafka's model (partitioned topics, keyed placement, consumer
//! groups with committed offsets) without a server, for `sluice dev` and tests.
//!
//! Each group has one member, which is assigned every partition: the embedded
//! runtime runs one consumer per group and does its own per-partition fan-out.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Delivered, EventBus, Position, Record, Subscription, TopicSpec, partition_for};
use crate::{Error, Result};

/// An in-memory [`EventBus`]. Clones share the same topics.
#[derive(Clone, Default)]
pub struct MemoryBus {
    shared: Arc<Shared>,
    default_partitions: i32,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    published: Notify,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    /// Next offset to read, per (group, topic), one entry per partition.
    committed: HashMap<(String, String), Vec<i64>>,
}

struct Topic {
    partitions: Vec<Vec<StoredRecord>>,
}

struct StoredRecord {
    key: String,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
}

impl MemoryBus {
    /// A bus whose topics, when created implicitly by `publish`, get
    /// `default_partitions` partitions.
    pub fn new(default_partitions: i32) -> Self {
        MemoryBus {
            shared: Arc::default(),
            default_partitions: default_partitions.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated: every
        // critical section below is a push or an assignment.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("default_partitions", &self.default_partitions)
            .finish_non_exhaustive()
    }
}

fn new_topic(partitions: i32) -> Topic {
    Topic {
        partitions: (0..partitions.max(1)).map(|_| Vec::new()).collect(),
    }
}

#[async_trait]
impl EventBus for MemoryBus {
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        let mut state = self.lock();
        for spec in specs {
            state
                .topics
                .entry(spec.name.clone())
                .or_insert_with(|| new_topic(spec.partitions));
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, records: Vec<Record>) -> Result<Vec<Position>> {
        let positions = {
            let mut state = self.lock();
            let topic = state
                .topics
                .entry(topic.to_owned())
                .or_insert_with(|| new_topic(self.default_partitions));
            let partition_count = topic.partitions.len() as i32;
            records
                .into_iter()
                .map(|record| {
                    let partition = partition_for(record.key.as_bytes(), partition_count);
                    let log = &mut topic.partitions[partition as usize];
                    log.push(StoredRecord {
                        key: record.key,
                        payload: record.payload,
                        headers: record.headers,
                    });
                    Position {
                        partition,
                        offset: log.len() as i64 - 1,
                    }
                })
                .collect()
        };
        self.shared.published.notify_waiters();
        Ok(positions)
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        let mut state = self.lock();
        let mut assigned = Vec::new();
        for &topic in topics {
            let partitions = state
                .topics
                .get(topic)
                .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?
                .partitions
                .len();
            let committed = state
                .committed
                .entry((group.to_owned(), topic.to_owned()))
                .or_insert_with(|| vec![0; partitions]);
            assigned.extend(
                committed
                    .iter()
                    .enumerate()
                    .map(|(partition, &next)| Assigned {
                        topic: topic.to_owned(),
                        partition,
                        next,
                        paused: false,
                    }),
            );
        }
        Ok(Box::new(MemorySubscription {
            bus: self.clone(),
            group: group.to_owned(),
            assigned,
            round_robin: 0,
        }))
    }

    async fn end_offsets(&self, topic: &str) -> Result<Option<Vec<i64>>> {
        let state = self.lock();
        let topic = state
            .topics
            .get(topic)
            .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        Ok(Some(
            topic
                .partitions
                .iter()
                .map(|log| log.len() as i64)
                .collect(),
        ))
    }
}

/// One assigned partition and the next offset to read from it.
struct Assigned {
    topic: String,
    partition: usize,
    next: i64,
    paused: bool,
}

struct MemorySubscription {
    bus: MemoryBus,
    group: String,
    assigned: Vec<Assigned>,
    /// Where the next poll starts, so one busy partition cannot starve the others.
    round_robin: usize,
}

impl MemorySubscription {
    fn set_paused(&mut self, topic: &str, partitions: &[i32], paused: bool) {
        for assigned in &mut self.assigned {
            let listed = i32::try_from(assigned.partition).is_ok_and(|p| partitions.contains(&p));
            if assigned.topic == topic && listed {
                assigned.paused = paused;
            }
        }
    }

    fn take(&mut self, max: usize) -> Vec<Delivered> {
        let state = self.bus.lock();
        let mut out = Vec::new();
        let count = self.assigned.len();
        for step in 0..count {
            let remaining = max.saturating_sub(out.len());
            if remaining == 0 {
                break;
            }
            let assigned = &mut self.assigned[(self.round_robin + step) % count];
            if assigned.paused {
                continue;
            }
            let Some(log) = state
                .topics
                .get(&assigned.topic)
                .and_then(|t| t.partitions.get(assigned.partition))
            else {
                continue;
            };
            let from = assigned.next as usize;
            let records = log.get(from..).unwrap_or_default();
            for (i, record) in records.iter().take(remaining).enumerate() {
                out.push(Delivered {
                    topic: assigned.topic.clone(),
                    position: Position {
                        partition: assigned.partition as i32,
                        offset: (from + i) as i64,
                    },
                    key: record.key.clone(),
                    payload: record.payload.clone(),
                    headers: record.headers.clone(),
                });
            }
            assigned.next += records.len().min(remaining) as i64;
        }
        self.round_robin = (self.round_robin + 1) % count.max(1);
        out
    }
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Delivered>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let shared = Arc::clone(&self.bus.shared);
            let published = shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let batch = self.take(max);
            if !batch.is_empty() {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    fn commit(&mut self, topic: &str, position: Position) -> Result<()> {
        let mut state = self.bus.lock();
        let committed = state
            .committed
            .get_mut(&(self.group.clone(), topic.to_owned()))
            .ok_or_else(|| Error::UnknownTopic(topic.to_owned()))?;
        let slot = committed
            .get_mut(position.partition as usize)
            .ok_or_else(|| Error::UnknownTopic(format!("{topic}[{}]", position.partition)))?;
        *slot = (*slot).max(position.offset + 1);
        Ok(())
    }

    fn pause(&mut self, topic: &str, partitions: &[i32]) -> Result<()> {
        self.set_paused(topic, partitions, true);
        Ok(())
    }

    fn resume(&mut self, topic: &str, partitions: &[i32]) -> Result<()> {
        self.set_paused(topic, partitions, false);
        Ok(())
    }

    fn assignment(&self, topic: &str) -> Result<Vec<i32>> {
        let mut partitions: Vec<i32> = self
            .assigned
            .iter()
            .filter(|a| a.topic == topic)
            .filter_map(|a| i32::try_from(a.partition).ok())
            .collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    async fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
