//! The Kafka bus's clients find the broker again after it restarts.
//!
//! librdkafka (since 2.10) forgets every broker that a metadata response leaves out.
//! A broker that is fenced — in controlled shutdown, or just started and not yet
//! unfenced — leaves itself out. A client that asks it for metadata in that window
//! knows no broker any more: it never connects again and never re-bootstraps
//! (confluentinc/librdkafka#5301). With one broker, or a whole cluster restarting,
//! the producer and the consumers would stop for good; the bus replaces a client
//! that knows no broker (`sluice_infra::bus::kafka`).
//!
//! Here the clients ask for metadata every 10 ms and the topic has 48 partitions
//! (they make the broker's controlled shutdown last longer), so the restarts catch
//! some clients in that window (without the replacement, 2 of 4 restarts stranded
//! one). After each restart a record published must reach the consumer group.

mod support;

use std::time::{Duration, Instant};

use sluice_infra::bus::{self, EventBus, Record, Subscription, TopicSpec};
use support::servers::{PrivateServers, Server};

const TOPIC: &str = "restart.records";
const RESTARTS: usize = 5;

/// Publishes `payload`, retrying while the broker comes back; panics after a minute.
async fn publish(bus: &dyn EventBus, payload: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let record = Record::new("key", payload.as_bytes().to_vec());
        match bus.publish(TOPIC, vec![record]).await {
            Ok(_) => return,
            Err(error) => assert!(Instant::now() < deadline, "publishing {payload:?}: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls until `payload` arrives; panics after a minute.
async fn receive(subscription: &mut dyn Subscription, payload: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "{payload:?} did not reach the consumer group within 60 s"
        );
        match subscription.poll(100, Duration::from_millis(200)).await {
            Ok(records) => {
                if let Some(record) = records.iter().find(|r| r.payload == payload.as_bytes()) {
                    subscription
                        .commit(TOPIC, record.position)
                        .expect("committing");
                    return;
                }
            }
            // The broker is still down or the group is rejoining.
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_group_work_after_every_broker_restart() {
    let Some(servers) = PrivateServers::start_only(&[Server::Kafka]) else {
        return;
    };
    let bus = bus::connect(&format!(
        "kafka://{}?topic.metadata.refresh.interval.ms=10&session.timeout.ms=6000\
         &heartbeat.interval.ms=1000",
        servers.kafka()
    ))
    .await
    .expect("a Kafka bus");
    let topic = TopicSpec {
        name: TOPIC.to_owned(),
        partitions: 48,
        replication: 1,
        compacted: false,
    };
    bus.ensure_topics(&[topic])
        .await
        .expect("creating the topic");
    let mut subscription = bus
        .subscribe("restart-group", &[TOPIC])
        .await
        .expect("subscribing");

    publish(bus.as_ref(), "before").await;
    receive(subscription.as_mut(), "before").await;
    for restart in 1..=RESTARTS {
        servers.stop(Server::Kafka);
        servers.start_again(Server::Kafka);
        let payload = format!("after restart {restart}");
        publish(bus.as_ref(), &payload).await;
        receive(subscription.as_mut(), &payload).await;
    }
}
