//! Against the real Kafka (`deploy/local/servers.sh start kafka`): a webhook POSTed over
//! HTTP is on `sluice.events`, keyed `tenant/contact_id`, and decodes to the normalized
//! event.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sluice_infra::{
    bus::{self, TopicSpec, topics},
    testing,
};
use sluice_ingest::signature;
use sluice_schemas::{Event, EventType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_webhooks_land_on_sluice_events() {
    let Some(addr) = testing::kafka() else { return };
    let bus = bus::connect(&format!("kafka://{addr}")).await.unwrap();
    let (ingest, telemetry) = app(bus.clone(), settings());
    let spec = TopicSpec::sluice_topics(4, 1).remove(0);
    assert_eq!(spec.name, topics::EVENTS);
    let (bound, server) = ingest.serve(spec, std::future::pending()).await.unwrap();
    assert!(telemetry.is_ready(), "the start-up probe reached Kafka");

    let client = reqwest::Client::new();
    let marker = testing::unique_name("kafka_it");
    // A Telegram update with a fresh update_id and a generic event with a fresh id.
    let update_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        % 1_000_000_000_000;
    let mut update: serde_json::Value =
        serde_json::from_slice(&fixture("telegram/message_text.json")).unwrap();
    update["update_id"] = update_id.into();
    let response = client
        .post(format!("http://{bound}/v1/acme/telegram/support_bot"))
        .header("x-telegram-bot-api-secret-token", TG_SECRET)
        .body(serde_json::to_vec(&update).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let body = serde_json::to_vec(&serde_json::json!({
        "id": marker, "type": "custom", "occurred_at": 1_767_225_600_000_i64,
        "origin": {"channel_type": "web", "channel_id": "shop", "urn": "mailto:it@example.com"},
        "payload": {"custom": {"name": "it.ping", "fields": {}}}
    }))
    .unwrap();
    let response = client
        .post(format!("http://{bound}/v1/acme/events"))
        .header(
            "x-sluice-signature",
            signature::sign_sha256_header(EVENTS_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    let telegram_id = format!("telegram:support_bot:{update_id}");
    let found = consume_until(&*bus, &[&telegram_id, &marker]).await;
    let (key, event) = &found[&telegram_id];
    assert_eq!(key, &format!("acme/{}", event.contact_id));
    assert_eq!(event.event_type, EventType::MessageReceived);
    assert_eq!(
        event.contact_id,
        sluice_ingest::identity::contact_id("acme", "telegram:1111111")
    );
    let (key, event) = &found[&marker];
    assert_eq!(
        key,
        &format!(
            "acme/{}",
            sluice_ingest::identity::contact_id("acme", "mailto:it@example.com")
        )
    );
    assert_eq!(event.event_type, EventType::Custom);
    server.abort();
}

/// Reads `sluice.events` from the beginning with a fresh group until every id is seen.
pub async fn consume_until(
    bus: &dyn sluice_infra::bus::EventBus,
    ids: &[&str],
) -> std::collections::HashMap<String, (String, Event)> {
    let group = testing::unique_name("ingest_it");
    let mut subscription = bus.subscribe(&group, &[topics::EVENTS]).await.unwrap();
    let mut found = std::collections::HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while found.len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "not all of {ids:?} arrived; found {:?}",
            found.keys()
        );
        for record in subscription
            .poll(10_000, Duration::from_millis(500))
            .await
            .unwrap()
        {
            let Ok(event) = Event::decode(&record.payload) else {
                continue;
            };
            if ids.contains(&event.id.as_str()) {
                found.insert(event.id.clone(), (record.key, event));
            }
        }
    }
    found
}
