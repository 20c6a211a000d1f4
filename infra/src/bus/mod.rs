//! The event bus: partitioned, ordered, keyed topics with consumer groups — Kafka's
//! model, which the in-memory backend reproduces for `sluice dev` and tests.
//!
//! Records with the same key always land on the same partition (Kafka's murmur2
//! partitioner, in both backends), so one contact's events are consumed in order.

#[cfg(feature = "kafka")]
mod kafka;
mod memory;
mod partition;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{Error, Result};

#[cfg(feature = "kafka")]
pub use kafka::{KafkaBus, KafkaConfig};
pub use memory::MemoryBus;
pub use partition::{murmur2, partition_for};

/// The topics Sluice uses (see DESIGN.md, "Canonical names").
pub mod topics {
    /// Normalized events, key `tenant/contact_id`.
    pub const EVENTS: &str = "sluice.events";
    /// Actions for the workers, key `tenant/contact_id`.
    pub const ACTIONS: &str = "sluice.actions";
    /// Flow definitions, compacted, key `tenant/flow_id`.
    pub const FLOWS: &str = "sluice.flows";
    /// Dead letters: input that could not be processed, with the reason in headers.
    pub const DLQ: &str = "sluice.dlq";
}

/// How a topic is created when it does not exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (ignored by the in-memory bus).
    pub replication: i32,
    /// Keep only the newest record per key (Kafka `cleanup.policy=compact`).
    pub compacted: bool,
}

impl TopicSpec {
    /// The four Sluice topics with the given partition count and replication.
    pub fn sluice_topics(partitions: i32, replication: i32) -> Vec<TopicSpec> {
        let spec = |name: &str, partitions: i32, compacted: bool| TopicSpec {
            name: name.to_owned(),
            partitions,
            replication,
            compacted,
        };
        vec![
            spec(topics::EVENTS, partitions, false),
            spec(topics::ACTIONS, partitions, false),
            spec(topics::FLOWS, 1, true),
            spec(topics::DLQ, 1, false),
        ]
    }
}

/// A record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The partitioning key, e.g. `tenant/contact_id`.
    pub key: String,
    /// The encoded value.
    pub payload: Vec<u8>,
    /// Headers, e.g. the reason a record went to the dead-letter topic.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// A record without headers.
    pub fn new(key: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Record {
            key: key.into(),
            payload: payload.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Where a published record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Partition number.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
}

/// A record read from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Topic it was read from.
    pub topic: String,
    /// Where it is stored.
    pub position: Position,
    /// Its key (empty when it had none).
    pub key: String,
    /// Its value.
    pub payload: Vec<u8>,
    /// Its headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Delivered {
    /// The value of the first header with this name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A partitioned, ordered log of keyed records with consumer groups.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Creates the topics that do not exist yet; existing ones are left alone.
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<()>;

    /// Publishes records and returns once every one of them is durably stored
    /// (for Kafka: acknowledged with `acks=all`), with their positions in order.
    /// Sends are pipelined, never awaited one by one.
    async fn publish(&self, topic: &str, records: Vec<Record>) -> Result<Vec<Position>>;

    /// Hands records to the bus without waiting for them to be stored: the returned
    /// [`Sending`] resolves as [`publish`](Self::publish) does. Records sent through
    /// one bus are stored in the order they were sent, across calls, so a caller can
    /// send its next records before the previous ones are acknowledged. Backends
    /// that cannot split the two store the records first (the default).
    async fn send(&self, topic: &str, records: Vec<Record>) -> Result<Sending> {
        let stored = self.publish(topic, records).await;
        Ok(Box::pin(std::future::ready(stored)))
    }

    /// Joins consumer group `group` on `topics`. Reading starts after the group's
    /// committed offsets, or at the beginning when it has none.
    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>>;

    /// [`subscribe`](Self::subscribe), telling `revocations` before the group takes
    /// partitions away from this member. Backends whose groups never rebalance (the
    /// in-memory bus: one member per group) ignore it.
    async fn subscribe_with(
        &self,
        group: &str,
        topics: &[&str],
        revocations: Arc<dyn Revocations>,
    ) -> Result<Box<dyn Subscription>> {
        let _ = revocations;
        self.subscribe(group, topics).await
    }

    /// The next offset to be written in each partition of `topic`, indexed by partition
    /// (Kafka's high watermarks): a reader that has consumed everything below them has
    /// seen every record published before the call. `None` when the backend cannot tell;
    /// callers then fall back to polling until the topic is quiet.
    async fn end_offsets(&self, topic: &str) -> Result<Option<Vec<i64>>> {
        let _ = topic;
        Ok(None)
    }
}

/// Records handed to the bus by [`EventBus::send`]: resolves once every one of them
/// is durably stored, with their positions in order.
pub type Sending = Pin<Box<dyn Future<Output = Result<Vec<Position>>> + Send>>;

/// Told before the group takes partitions away from a member, so that it can
/// finish what it has in hand and commit it first: the partitions' next owner
/// then starts where this member's work became durable, and does none of it again.
pub trait Revocations: Send + Sync {
    /// Called before the group reassigns `partitions` of `topic`, on the thread that
    /// polls — which it may block, briefly: the group's rebalance waits for it.
    /// Returns the last processed position of each partition it has one for (revoked
    /// or not), which are committed before the partitions go. Records of the
    /// revoked partitions that were read but not yet returned by a poll are
    /// dropped: their next owner reads them again.
    fn revoking(&self, topic: &str, partitions: &[i32]) -> Vec<Position>;
}

/// One group member's view of its assigned partitions.
#[async_trait]
pub trait Subscription: Send {
    /// Waits up to `timeout` for records and returns at most `max` of them, in
    /// partition order (an empty batch when none arrived in time).
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Delivered>>;

    /// Marks everything up to and including `position` on `topic` as processed;
    /// the group resumes after it. Call only once the records' effects are durable.
    fn commit(&mut self, topic: &str, position: Position) -> Result<()>;

    /// Stops delivering records of these partitions of `topic` until
    /// [`resume`](Self::resume)d, while polling goes on — so a member whose
    /// processing is stuck keeps its place in the group (Kafka's
    /// `max.poll.interval.ms`) instead of blocking its poll loop.
    fn pause(&mut self, topic: &str, partitions: &[i32]) -> Result<()>;

    /// Delivers records of these partitions again, from where delivery stopped.
    fn resume(&mut self, topic: &str, partitions: &[i32]) -> Result<()>;

    /// The partitions of `topic` currently assigned to this member, ascending (empty
    /// before the group's first assignment). Changes on rebalance.
    fn assignment(&self, topic: &str) -> Result<Vec<i32>>;

    /// Commits synchronously and leaves the group.
    async fn close(self: Box<Self>) -> Result<()>;
}

/// Connects to the bus a URL names: `memory://` or `kafka://host:port[,host:port]`.
pub async fn connect(url: &str) -> Result<Arc<dyn EventBus>> {
    let (scheme, _) = url
        .split_once("://")
        .ok_or_else(|| Error::config(url, "expected memory:// or kafka://host:port"))?;
    match scheme {
        "memory" => Ok(Arc::new(MemoryBus::new(8))),
        #[cfg(feature = "kafka")]
        "kafka" => Ok(Arc::new(KafkaBus::new(KafkaConfig::from_url(url)?)?)),
        #[cfg(not(feature = "kafka"))]
        "kafka" => Err(Error::NotCompiled {
            scheme: scheme.to_owned(),
            feature: "kafka",
        }),
        other => Err(Error::config(
            url,
            format!("unknown bus scheme {other:?}; expected memory or kafka"),
        )),
    }
}
