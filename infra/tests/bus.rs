//! One behaviour test for the event bus, run against every backend: the in-memory
//! bus and a real Kafka broker.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sluice_infra::{
    bus::{
        EventBus, KafkaBus, KafkaConfig, MemoryBus, Position, Record, Revocations, TopicSpec,
        partition_for,
    },
    testing,
};

const PARTITIONS: i32 = 4;

/// Publishes keyed records, consumes them in a group, and checks placement, order,
/// headers, commits and resumption.
async fn bus_behaviour(bus: Arc<dyn EventBus>) {
    let topic = testing::unique_name("sluice_test_bus");
    let group = testing::unique_name("group");
    bus.ensure_topics(&[TopicSpec {
        name: topic.clone(),
        partitions: PARTITIONS,
        replication: 1,
        compacted: false,
    }])
    .await
    .expect("creating the topic");
    // Creating it again is not an error.
    bus.ensure_topics(&[TopicSpec {
        name: topic.clone(),
        partitions: PARTITIONS,
        replication: 1,
        compacted: false,
    }])
    .await
    .expect("creating the topic twice");

    // 5 contacts × 20 events, interleaved.
    let records: Vec<Record> = (0..100)
        .map(|i| {
            Record::new(format!("acme/contact-{}", i % 5), format!("event-{i}"))
                .with_header("seq", i.to_string())
        })
        .collect();
    let positions = bus
        .publish(&topic, records.clone())
        .await
        .expect("publishing");
    assert_eq!(positions.len(), 100);
    for (record, position) in records.iter().zip(&positions) {
        assert_eq!(
            position.partition,
            partition_for(record.key.as_bytes(), PARTITIONS),
            "{} must land where Kafka's murmur2 partitioner puts it",
            record.key
        );
    }

    // End offsets count what was published, per partition.
    let ends = bus
        .end_offsets(&topic)
        .await
        .expect("reading end offsets")
        .expect("both backends know their end offsets");
    assert_eq!(ends.len(), PARTITIONS as usize);
    for (partition, end) in ends.iter().enumerate() {
        let published = positions
            .iter()
            .filter(|p| p.partition == partition as i32)
            .count() as i64;
        assert_eq!(*end, published, "end offset of partition {partition}");
    }

    let mut subscription = bus.subscribe(&group, &[&topic]).await.expect("subscribing");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 100 && tokio::time::Instant::now() < deadline {
        seen.extend(
            subscription
                .poll(64, Duration::from_millis(500))
                .await
                .expect("polling"),
        );
    }
    assert_eq!(seen.len(), 100, "every published record is consumed once");
    assert_eq!(
        subscription
            .assignment(&topic)
            .expect("reading the assignment"),
        (0..PARTITIONS).collect::<Vec<_>>(),
        "a lone member owns every partition"
    );
    assert!(
        subscription
            .assignment("not-subscribed")
            .unwrap()
            .is_empty()
    );

    // Per key, records come in the order they were published.
    let mut per_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for delivered in &seen {
        assert_eq!(delivered.topic, topic);
        let payload = std::str::from_utf8(&delivered.payload).unwrap();
        let seq: usize = payload.trim_start_matches("event-").parse().unwrap();
        assert_eq!(delivered.key, format!("acme/contact-{}", seq % 5));
        assert_eq!(delivered.header("seq"), Some(seq.to_string().as_bytes()));
        assert_eq!(delivered.position, positions[seq]);
        per_key.entry(&delivered.key).or_default().push(seq);
    }
    for (key, seqs) in per_key {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{key} out of order: {seqs:?}"
        );
    }

    // A paused partition delivers nothing while the others go on; resumed, it
    // continues where it stopped.
    let extra: Vec<Record> = (0..PARTITIONS * 4)
        .map(|i| Record::new(format!("acme/extra-{i}"), format!("extra-{i}")))
        .collect();
    let extra_positions = bus.publish(&topic, extra).await.expect("publishing more");
    subscription.pause(&topic, &[0]).expect("pausing");
    let mut during = Vec::new();
    let others = extra_positions.iter().filter(|p| p.partition != 0).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while during.len() < others && tokio::time::Instant::now() < deadline {
        during.extend(
            subscription
                .poll(64, Duration::from_millis(500))
                .await
                .unwrap(),
        );
    }
    during.extend(
        subscription
            .poll(64, Duration::from_millis(500))
            .await
            .unwrap(),
    );
    assert_eq!(during.len(), others, "everything but the paused partition");
    assert!(during.iter().all(|d| d.position.partition != 0));
    subscription.resume(&topic, &[0]).expect("resuming");
    let paused = extra_positions.len() - others;
    let mut after = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while after.len() < paused && tokio::time::Instant::now() < deadline {
        after.extend(
            subscription
                .poll(64, Duration::from_millis(500))
                .await
                .unwrap(),
        );
    }
    assert_eq!(after.len(), paused, "the paused partition's records, once");
    assert!(after.iter().all(|d| d.position.partition == 0));

    // Commit the first half of each partition, leave, and rejoin: the group
    // resumes after the committed offsets and sees exactly the rest.
    let mut last_kept: HashMap<i32, Position> = HashMap::new();
    let mut expected_rest = 0;
    for delivered in &seen {
        let position = delivered.position;
        let partition_len = positions
            .iter()
            .filter(|p| p.partition == position.partition)
            .count() as i64;
        if position.offset < partition_len / 2 {
            last_kept
                .entry(position.partition)
                .and_modify(|p| p.offset = p.offset.max(position.offset))
                .or_insert(position);
        } else {
            expected_rest += 1;
        }
    }
    // The extra records were never committed: they come again too.
    expected_rest += extra_positions.len();
    for position in last_kept.values() {
        subscription.commit(&topic, *position).expect("committing");
    }
    subscription.close().await.expect("closing");

    let mut subscription = bus
        .subscribe(&group, &[&topic])
        .await
        .expect("resubscribing");
    let mut rest = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while rest.len() < expected_rest && tokio::time::Instant::now() < deadline {
        rest.extend(
            subscription
                .poll(64, Duration::from_millis(500))
                .await
                .expect("polling after rejoin"),
        );
    }
    // Nothing more arrives.
    rest.extend(
        subscription
            .poll(64, Duration::from_millis(500))
            .await
            .unwrap(),
    );
    assert_eq!(
        rest.len(),
        expected_rest,
        "resumes exactly after the commits"
    );
    for delivered in &rest {
        let committed = last_kept[&delivered.position.partition].offset;
        assert!(delivered.position.offset > committed);
    }
    subscription.close().await.expect("closing again");
}

#[tokio::test]
async fn memory_bus_behaviour() {
    bus_behaviour(Arc::new(MemoryBus::new(PARTITIONS))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_bus_behaviour() {
    let Some(bootstrap) = testing::kafka() else {
        return;
    };
    let bus =
        KafkaBus::new(KafkaConfig::from_url(&format!("kafka://{bootstrap}")).unwrap()).unwrap();
    bus_behaviour(Arc::new(bus)).await;
}

/// Reports offset 4 of every revoked partition as the last one processed, and
/// remembers what it was asked.
#[derive(Default)]
struct ProcessedUpToFour {
    revoked: Mutex<Vec<(String, Vec<i32>)>>,
}

impl Revocations for ProcessedUpToFour {
    fn revoking(&self, topic: &str, partitions: &[i32]) -> Vec<Position> {
        self.revoked
            .lock()
            .unwrap()
            .push((topic.to_owned(), partitions.to_vec()));
        partitions
            .iter()
            .map(|&partition| Position {
                partition,
                offset: 4,
            })
            .collect()
    }
}

/// A member told of a revocation commits the positions it reports before the
/// partitions move: the member that joins reads on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_commits_what_a_member_reports_before_its_partitions_move() {
    let Some(bootstrap) = testing::kafka() else {
        return;
    };
    let bus: Arc<dyn EventBus> = Arc::new(
        KafkaBus::new(KafkaConfig::from_url(&format!("kafka://{bootstrap}")).unwrap()).unwrap(),
    );
    let topic = testing::unique_name("revoked");
    let group = testing::unique_name("group");
    bus.ensure_topics(&[TopicSpec {
        name: topic.clone(),
        partitions: 2,
        replication: 1,
        compacted: false,
    }])
    .await
    .unwrap();
    let records = (0..200)
        .map(|i| Record::new(format!("k{i}"), format!("v{i}")))
        .collect();
    bus.publish(&topic, records).await.unwrap();

    let hook = Arc::new(ProcessedUpToFour::default());
    let mut first = bus
        .subscribe_with(&group, &[&topic], Arc::clone(&hook) as Arc<dyn Revocations>)
        .await
        .unwrap();
    let mut read = 0;
    while read < 200 {
        read += first
            .poll(500, Duration::from_millis(200))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(first.assignment(&topic).unwrap(), [0, 1]);

    // The second member joins; the first one's polls run the revocation.
    let mut second = bus.subscribe(&group, &[&topic]).await.unwrap();
    let mut from: HashMap<i32, i64> = HashMap::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while from.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "partitions not read again after the rebalance: {from:?}"
        );
        for member in [&mut first, &mut second] {
            for record in member.poll(100, Duration::from_millis(100)).await.unwrap() {
                from.entry(record.position.partition)
                    .or_insert(record.position.offset);
            }
        }
    }
    assert_eq!(
        from,
        HashMap::from([(0, 5), (1, 5)]),
        "read on after the reported offsets"
    );
    let revoked = hook.revoked.lock().unwrap().clone();
    assert_eq!(revoked.first(), Some(&(topic.clone(), vec![0, 1])));
    first.close().await.unwrap();
    second.close().await.unwrap();
}

#[tokio::test]
async fn memory_poll_times_out_empty_and_wakes_on_publish() {
    let bus = MemoryBus::new(2);
    bus.ensure_topics(&TopicSpec::sluice_topics(2, 1))
        .await
        .unwrap();
    let mut subscription = bus.subscribe("g", &["sluice.events"]).await.unwrap();
    let empty = subscription
        .poll(10, Duration::from_millis(20))
        .await
        .unwrap();
    assert!(empty.is_empty());
    let publisher = bus.clone();
    let wake = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        publisher
            .publish("sluice.events", vec![Record::new("t/c", "x")])
            .await
            .unwrap();
    });
    let batch = subscription
        .poll(10, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    wake.await.unwrap();
}

#[tokio::test]
async fn unknown_topic_is_a_clear_error() {
    let bus = MemoryBus::new(2);
    let error = bus.subscribe("g", &["nope"]).await.err().unwrap();
    assert!(error.to_string().contains("\"nope\""), "{error}");
    let error = bus.end_offsets("nope").await.err().unwrap();
    assert!(error.to_string().contains("\"nope\""), "{error}");
}

#[test]
fn bus_urls_are_checked() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (url, needle) in [
        ("nonsense", "expected memory:// or kafka://"),
        ("redis://x", "unknown bus scheme \"redis\""),
        ("kafka://", "no bootstrap servers"),
    ] {
        let error = runtime
            .block_on(sluice_infra::bus::connect(url))
            .err()
            .unwrap();
        assert!(error.to_string().contains(needle), "{url}: {error}");
    }
    let config = KafkaConfig::from_url("kafka://a:1,b:2?security.protocol=SSL").unwrap();
    assert_eq!(config.bootstrap_servers, "a:1,b:2");
    assert_eq!(
        config.properties,
        vec![("security.protocol".to_owned(), "SSL".to_owned())]
    );
}
