//! The Apache Kafka bus, through `rdkafka` (librdkafka).
//!
//! Producer: idempotent, `acks=all`, lingering a few milliseconds to batch; every
//! record of a `publish` is enqueued before any delivery report is awaited, and
//! `send` returns once they are enqueued (librdkafka keeps them in order).
//! Consumer: `BaseConsumer` polled on a blocking thread, offsets stored only when
//! the caller commits (after its effects are durable) and committed in the
//! background by librdkafka; `close` commits synchronously. Before the group
//! revokes partitions, the subscriber's [`Revocations`] finishes its work on them
//! and the offsets it reports are committed synchronously; records of those
//! partitions read by the poll in progress are dropped (their next owner reads
//! them from the committed offset).
//!
//! A client that knows no broker any more — librdkafka forgets them all when a fenced
//! broker answers a metadata request ([`stranding`]) — is replaced: the producer
//! before its next use, a consumer at its next poll once it holds no partition.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use futures::future::try_join_all;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::{ClientContext, DefaultClientContext},
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance},
    error::KafkaError,
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer as _},
    types::RDKafkaErrorCode,
};

use super::{Delivered, EventBus, Position, Record, Revocations, Sending, Subscription, TopicSpec};
use crate::{Error, Result};

mod stranding;

use stranding::{STATISTICS_INTERVAL_MS, Stranding};

/// How long [`EventBus::ensure_topics`] waits for new topics' partition leaders.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to reach the Kafka cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties (e.g. `security.protocol`), applied to every client.
    pub properties: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Parses `kafka://host:port[,host:port][?librdkafka.property=value&…]`.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| Error::config(url, "expected kafka://host:port"))?;
        let (servers, query) = rest.split_once('?').unwrap_or((rest, ""));
        let servers = servers.trim_end_matches('/');
        if servers.is_empty() {
            return Err(Error::config(url, "no bootstrap servers"));
        }
        let properties = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(KafkaConfig {
            bootstrap_servers: servers.to_owned(),
            properties,
        })
    }

    fn client_config(&self) -> ClientConfig {
        self.client_config_with(&[])
    }

    /// A client's configuration: `defaults`, then the URL's properties, which
    /// override them.
    fn client_config_with(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// A [`EventBus`] on Apache Kafka.
pub struct KafkaBus {
    config: KafkaConfig,
    /// Replaced when it knows no broker any more ([`stranding`]).
    producer: RwLock<Producer>,
    admin: AdminClient<DefaultClientContext>,
}

/// The producer and what its statistics say.
struct Producer {
    client: FutureProducer<Watched>,
    stranding: Arc<Stranding>,
}

impl Producer {
    fn new(config: &KafkaConfig) -> Result<Self> {
        let stranding = Arc::new(Stranding::default());
        let client = config
            .client_config_with(&[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "5"),
                ("compression.type", "lz4"),
                ("partitioner", "murmur2_random"),
                ("message.timeout.ms", "30000"),
                ("statistics.interval.ms", STATISTICS_INTERVAL_MS),
            ])
            .create_with_context(Watched(Arc::clone(&stranding)))
            .map_err(kafka_error("creating producer"))?;
        Ok(Producer { client, stranding })
    }
}

/// A client's context that watches its statistics for [`Stranding`].
struct Watched(Arc<Stranding>);

impl ClientContext for Watched {
    fn stats_raw(&self, statistics: &[u8]) {
        self.0.observe(statistics);
    }
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn kafka_error(operation: impl Into<String>) -> impl FnOnce(KafkaError) -> Error {
    let operation = operation.into();
    move |source| Error::Kafka { operation, source }
}

impl KafkaBus {
    fn subscription(
        &self,
        group: &str,
        topics: &[&str],
        revocations: Option<Arc<dyn Revocations>>,
    ) -> Result<Box<dyn Subscription>> {
        let topics: Vec<String> = topics.iter().map(|&t| t.to_owned()).collect();
        let consumer = consumer(&self.config, group, &topics, revocations.clone())?;
        Ok(Box::new(KafkaSubscription {
            consumer: Arc::new(consumer),
            group: group.to_owned(),
            config: self.config.clone(),
            topics,
            revocations,
        }))
    }

    /// The producer; first replaced when it knows no broker any more.
    fn producer(&self) -> Result<FutureProducer<Watched>> {
        {
            let producer = self.producer.read().unwrap_or_else(PoisonError::into_inner);
            if !producer.stranding.is_stranded() {
                return Ok(producer.client.clone());
            }
        }
        let mut producer = self
            .producer
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if producer.stranding.is_stranded() {
            tracing::warn!(
                "the Kafka producer knows no broker any more (confluentinc/librdkafka#5301); \
                 replacing it"
            );
            let stranded = std::mem::replace(&mut *producer, Producer::new(&self.config)?);
            // Dropping it fails what it still holds (their senders retry) and joins its
            // polling thread: not on an async worker thread.
            std::thread::spawn(move || drop(stranded));
        }
        Ok(producer.client.clone())
    }

    /// Waits until every topic of `names` is in the cluster's metadata with a leader
    /// for each partition: a topic just created is not usable at once, and callers
    /// of [`EventBus::ensure_topics`] read or write it right away.
    async fn await_leaders(&self, names: Vec<String>) -> Result<()> {
        let producer = self.producer()?;
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + TOPIC_READY_TIMEOUT;
            for name in &names {
                loop {
                    let metadata = producer
                        .client()
                        .fetch_metadata(Some(name), Duration::from_secs(5))
                        .map_err(kafka_error(format!("reading metadata of {name}")))?;
                    let ready = metadata.topics().iter().any(|topic| {
                        topic.name() == name
                            && topic.error().is_none()
                            && !topic.partitions().is_empty()
                            && topic
                                .partitions()
                                .iter()
                                .all(|p| p.error().is_none() && p.leader() >= 0)
                    });
                    if ready {
                        break;
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(Error::UnknownTopic(name.clone()));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Ok(())
        })
        .await
        .map_err(|join| Error::Kafka {
            operation: format!("waiting for new topics: {join}"),
            source: KafkaError::Canceled,
        })?
    }

    /// Creates the producer and admin clients (connections are made lazily).
    pub fn new(config: KafkaConfig) -> Result<Self> {
        let producer = RwLock::new(Producer::new(&config)?);
        let admin = config
            .client_config()
            .create()
            .map_err(kafka_error("creating admin client"))?;
        Ok(KafkaBus {
            config,
            producer,
            admin,
        })
    }
}

/// A consumer of `topics` in `group`, subscribed.
fn consumer(
    config: &KafkaConfig,
    group: &str,
    topics: &[String],
    revocations: Option<Arc<dyn Revocations>>,
) -> Result<BaseConsumer<GroupContext>> {
    let context = GroupContext {
        group: group.to_owned(),
        revocations,
        revocation_count: AtomicU64::new(0),
        revoked: Mutex::new(Vec::new()),
        stranding: Stranding::default(),
    };
    let consumer: BaseConsumer<GroupContext> = config
        .client_config_with(&[("statistics.interval.ms", STATISTICS_INTERVAL_MS)])
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create_with_context(context)
        .map_err(kafka_error(format!("creating consumer for group {group}")))?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).map_err(kafka_error(format!(
        "subscribing group {group} to {topics:?}"
    )))?;
    Ok(consumer)
}

#[async_trait]
impl EventBus for KafkaBus {
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<()> {
        let new_topics: Vec<NewTopic<'_>> = specs
            .iter()
            .map(|spec| {
                let topic = NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication),
                );
                if spec.compacted {
                    topic.set("cleanup.policy", "compact")
                } else {
                    topic
                }
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = self
            .admin
            .create_topics(&new_topics, &options)
            .await
            .map_err(kafka_error("creating topics"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::Kafka {
                        operation: format!("creating topic {topic}"),
                        source: KafkaError::AdminOp(code),
                    });
                }
            }
        }
        let names = specs.iter().map(|spec| spec.name.clone()).collect();
        self.await_leaders(names).await
    }

    async fn publish(&self, topic: &str, records: Vec<Record>) -> Result<Vec<Position>> {
        self.send(topic, records).await?.await
    }

    async fn send(&self, topic: &str, records: Vec<Record>) -> Result<Sending> {
        let producer = self.producer()?;
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let mut pending = FutureRecord::to(topic)
                .key(&record.key)
                .payload(&record.payload)
                .headers(headers);
            // Enqueue without awaiting delivery; when librdkafka's queue is full, wait
            // for it to drain a little and try again.
            let delivery = loop {
                match producer.send_result(pending) {
                    Ok(delivery) => break delivery,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        pending = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((source, _)) => {
                        return Err(Error::Kafka {
                            operation: format!("producing to {topic}"),
                            source,
                        });
                    }
                }
            };
            deliveries.push(delivery);
        }
        let topic = topic.to_owned();
        Ok(Box::pin(async move {
            let reports = try_join_all(deliveries)
                .await
                .map_err(|_canceled| Error::Kafka {
                    operation: format!("producing to {topic}: producer shut down before delivery"),
                    source: KafkaError::Canceled,
                })?;
            reports
                .into_iter()
                .map(|report| match report {
                    Ok(delivery) => Ok(Position {
                        partition: delivery.partition,
                        offset: delivery.offset,
                    }),
                    Err((source, _)) => Err(Error::Kafka {
                        operation: format!("delivering to {topic}"),
                        source,
                    }),
                })
                .collect()
        }))
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        self.subscription(group, topics, None)
    }

    async fn subscribe_with(
        &self,
        group: &str,
        topics: &[&str],
        revocations: Arc<dyn Revocations>,
    ) -> Result<Box<dyn Subscription>> {
        self.subscription(group, topics, Some(revocations))
    }

    async fn end_offsets(&self, topic: &str) -> Result<Option<Vec<i64>>> {
        let producer = self.producer()?;
        let topic = topic.to_owned();
        // Metadata and watermark requests block; keep them off the async worker threads.
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(10);
            let client = producer.client();
            let metadata = client
                .fetch_metadata(Some(&topic), timeout)
                .map_err(kafka_error(format!("reading metadata of {topic}")))?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .filter(|t| t.error().is_none())
                .map(|t| t.partitions().len())
                .ok_or_else(|| Error::UnknownTopic(topic.clone()))?;
            (0..partitions as i32)
                .map(|partition| {
                    client
                        .fetch_watermarks(&topic, partition, timeout)
                        .map(|(_low, high)| high)
                        .map_err(kafka_error(format!(
                            "reading the end offset of {topic}[{partition}]"
                        )))
                })
                .collect::<Result<Vec<i64>>>()
                .map(Some)
        })
        .await
        .map_err(|join| Error::Kafka {
            operation: format!("reading end offsets: {join}"),
            source: KafkaError::Canceled,
        })?
    }
}

fn partition_list(topic: &str, partitions: &[i32]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for &partition in partitions {
        list.add_partition(topic, partition);
    }
    list
}

/// A consumer's side of its group's rebalances.
struct GroupContext {
    group: String,
    /// Told before partitions are revoked; the positions it reports are committed.
    revocations: Option<Arc<dyn Revocations>>,
    /// Revocations so far: a poll that sees this change drops what it read of the
    /// partitions revoked meanwhile.
    revocation_count: AtomicU64,
    /// The partitions the last revocation took, with their topics.
    revoked: Mutex<Vec<(String, i32)>>,
    stranding: Stranding,
}

impl GroupContext {
    /// Lets the subscriber finish its work on the revoked partitions, then commits
    /// the positions it reports.
    fn finish_revoked(&self, consumer: &BaseConsumer<Self>, revoked: &[(String, i32)]) {
        let Some(revocations) = &self.revocations else {
            return;
        };
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in revoked {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let mut offsets = TopicPartitionList::new();
        for (topic, partitions) in by_topic {
            for position in revocations.revoking(topic, &partitions) {
                let added = offsets.add_partition_offset(
                    topic,
                    position.partition,
                    Offset::Offset(position.offset + 1),
                );
                if let Err(error) = added {
                    tracing::warn!(%error, topic, partition = position.partition, "cannot commit on revocation");
                }
            }
        }
        if offsets.count() == 0 {
            return;
        }
        if let Err(error) = consumer.store_offsets(&offsets) {
            tracing::warn!(%error, group = %self.group, "cannot store offsets on revocation");
        }
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => {
                tracing::warn!(%error, group = %self.group, "cannot commit on revocation");
            }
        }
    }
}

impl ClientContext for GroupContext {
    fn stats_raw(&self, statistics: &[u8]) {
        self.stranding.observe(statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let revoked: Vec<(String, i32)> = list
            .elements()
            .iter()
            .map(|element| (element.topic().to_owned(), element.partition()))
            .collect();
        tracing::info!(group = %self.group, partitions = ?revoked, "partitions revoked");
        self.finish_revoked(consumer, &revoked);
        *self.revoked.lock().unwrap_or_else(PoisonError::into_inner) = revoked;
        self.revocation_count.fetch_add(1, Ordering::SeqCst);
    }
}

struct KafkaSubscription {
    /// Replaced when it knows no broker any more ([`stranding`]).
    consumer: Arc<BaseConsumer<GroupContext>>,
    group: String,
    config: KafkaConfig,
    topics: Vec<String>,
    revocations: Option<Arc<dyn Revocations>>,
}

impl KafkaSubscription {
    /// Replaces the consumer when it knows no broker any more and holds no partition.
    /// One that still holds partitions revokes them first, through the
    /// [`Revocations`], when its session times out (which it tells by itself).
    fn replace_if_stranded(&mut self) -> Result<()> {
        if !self.consumer.context().stranding.is_stranded()
            || self.consumer.assignment().is_ok_and(|a| a.count() > 0)
        {
            return Ok(());
        }
        tracing::warn!(
            group = %self.group,
            "a Kafka consumer knows no broker any more (confluentinc/librdkafka#5301); \
             replacing it"
        );
        let fresh = consumer(
            &self.config,
            &self.group,
            &self.topics,
            self.revocations.clone(),
        )?;
        let stranded = std::mem::replace(&mut self.consumer, Arc::new(fresh));
        // Closing it waits for its group's coordinator, which it cannot reach: not on
        // an async worker thread.
        std::thread::spawn(move || drop(stranded));
        Ok(())
    }
}

fn to_delivered(message: &rdkafka::message::BorrowedMessage<'_>) -> Delivered {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    Delivered {
        topic: message.topic().to_owned(),
        position: Position {
            partition: message.partition(),
            offset: message.offset(),
        },
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        payload: message.payload().unwrap_or_default().to_vec(),
        headers,
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Delivered>> {
        self.replace_if_stranded()?;
        let consumer = Arc::clone(&self.consumer);
        let group = self.group.clone();
        // librdkafka's poll blocks; keep it off the async worker threads.
        tokio::task::spawn_blocking(move || {
            let context = consumer.context();
            let mut batch: Vec<Delivered> = Vec::new();
            let mut wait = timeout;
            while batch.len() < max {
                let revocations = context.revocation_count.load(Ordering::SeqCst);
                let polled = consumer.poll(wait);
                if context.revocation_count.load(Ordering::SeqCst) != revocations {
                    // Partitions were revoked inside that poll: what this batch read
                    // of them before is their next owner's to process.
                    let revoked = context
                        .revoked
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    batch.retain(|record| {
                        !revoked
                            .iter()
                            .any(|(t, p)| *t == record.topic && *p == record.position.partition)
                    });
                }
                match polled {
                    None => break,
                    Some(Ok(message)) => batch.push(to_delivered(&message)),
                    Some(Err(source)) => {
                        return Err(Error::Kafka {
                            operation: format!("consuming for group {group}"),
                            source,
                        });
                    }
                }
                wait = Duration::ZERO;
            }
            Ok(batch)
        })
        .await
        .map_err(|join| Error::Kafka {
            operation: format!(
                "consuming for group {}: poll thread failed: {join}",
                self.group
            ),
            source: KafkaError::Canceled,
        })?
    }

    fn commit(&mut self, topic: &str, position: Position) -> Result<()> {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(
                topic,
                position.partition,
                Offset::Offset(position.offset + 1),
            )
            .map_err(kafka_error(format!(
                "committing {topic}[{}]",
                position.partition
            )))?;
        self.consumer
            .store_offsets(&offsets)
            .map_err(kafka_error(format!(
                "storing offset {} of {topic}[{}] for group {}",
                position.offset, position.partition, self.group
            )))
    }

    fn pause(&mut self, topic: &str, partitions: &[i32]) -> Result<()> {
        let list = partition_list(topic, partitions);
        self.consumer.pause(&list).map_err(kafka_error(format!(
            "pausing {topic}{partitions:?} for group {}",
            self.group
        )))
    }

    fn resume(&mut self, topic: &str, partitions: &[i32]) -> Result<()> {
        let list = partition_list(topic, partitions);
        self.consumer.resume(&list).map_err(kafka_error(format!(
            "resuming {topic}{partitions:?} for group {}",
            self.group
        )))
    }

    fn assignment(&self, topic: &str) -> Result<Vec<i32>> {
        let assigned = self.consumer.assignment().map_err(kafka_error(format!(
            "reading the assignment of group {}",
            self.group
        )))?;
        let mut partitions: Vec<i32> = assigned
            .elements_for_topic(topic)
            .iter()
            .map(|element| element.partition())
            .collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    async fn close(self: Box<Self>) -> Result<()> {
        let consumer = Arc::clone(&self.consumer);
        let group = self.group.clone();
        tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                // Nothing was stored since the last commit.
                Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(source) => {
                    return Err(Error::Kafka {
                        operation: format!("committing offsets of group {group} on close"),
                        source,
                    });
                }
            }
            consumer.unsubscribe();
            Ok(())
        })
        .await
        .map_err(|join| Error::Kafka {
            operation: format!("closing consumer: {join}"),
            source: KafkaError::Canceled,
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_properties_override_the_clients_defaults() {
        let config =
            KafkaConfig::from_url("kafka://127.0.0.1:9092?linger.ms=1&client.id=x").unwrap();
        let producer = config.client_config_with(&[("linger.ms", "5"), ("acks", "all")]);
        assert_eq!(producer.get("linger.ms"), Some("1"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("client.id"), Some("x"));
        assert_eq!(producer.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }
}
