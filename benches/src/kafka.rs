//! Kafka clients of the load generator, configured like Sluice's own
//! (`sluice_infra::bus::KafkaBus`): idempotent producers with `acks=all`, a 5 ms
//! linger, lz4 and the murmur2 partitioner; topics created and deleted through the
//! admin API.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::{
    ClientConfig, ClientContext, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer as _},
    error::KafkaError,
    producer::{DeliveryResult, FutureProducer, ProducerContext, ThreadedProducer},
    types::RDKafkaErrorCode,
};
use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

/// Settings of every producer: those of `KafkaBus`.
fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "60000")
        .set("queue.buffering.max.messages", "500000");
    config
}

/// Counts delivery reports of a [`ThreadedProducer`].
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Records acknowledged.
    pub delivered: AtomicU64,
    /// Records that failed.
    pub failed: AtomicU64,
    /// The first failure.
    pub first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// A producer that counts its delivery reports (for sending events).
pub fn counting_producer(bootstrap: &str) -> anyhow::Result<ThreadedProducer<Deliveries>> {
    producer_config(bootstrap)
        .create_with_context(Deliveries::default())
        .context("creating the event producer")
}

/// A producer whose sends return futures (for the passthrough, which awaits each batch).
pub fn future_producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    producer_config(bootstrap)
        .create()
        .context("creating the passthrough producer")
}

/// A consumer that reads every partition of `topic` from the beginning, without a
/// group (nothing to rebalance, nothing committed).
pub fn reader(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}.reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .with_context(|| format!("creating a reader of {topic}"))?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer
        .assign(&list)
        .with_context(|| format!("assigning {topic}"))?;
    Ok(consumer)
}

/// A consumer-group member configured like the engine's: offsets stored only after
/// processing, committed in the background.
pub fn group_member(bootstrap: &str, group: &str, topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .with_context(|| format!("creating consumer group {group}"))?;
    consumer
        .subscribe(&[topic])
        .with_context(|| format!("subscribing {group} to {topic}"))?;
    Ok(consumer)
}

fn admin(bootstrap: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating the admin client")
}

/// Creates `topics` (name, partitions), replication 1.
pub async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) -> anyhow::Result<()> {
    let admin = admin(bootstrap)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::AdminOp(code)).context(format!("creating topic {topic}"));
            }
        }
    }
    Ok(())
}

/// Deletes `topics`; a missing one is not an error.
pub async fn delete_topics(bootstrap: &str, topics: &[&str]) -> anyhow::Result<()> {
    let admin = admin(bootstrap)?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.delete_topics(topics, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::AdminOp(code)).context(format!("deleting topic {topic}"));
            }
        }
    }
    Ok(())
}
