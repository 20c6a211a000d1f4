//! The HTTP surface on the in-memory bus: every fixture through its route, signatures,
//! status mapping, dedupe, back-pressure and metrics.

mod common;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{body::Body, http::Request};
use common::*;
use sluice_infra::{
    bus::{EventBus, MemoryBus, Position, Record, Subscription, TopicSpec, topics},
    telemetry::Telemetry,
};
use sluice_ingest::{IngestSettings, signature};
use sluice_schemas::Event;

async fn memory() -> Arc<MemoryBus> {
    let bus = Arc::new(MemoryBus::new(4));
    bus.ensure_topics(&TopicSpec::sluice_topics(4, 1))
        .await
        .unwrap();
    bus
}

async fn published(bus: &MemoryBus) -> Vec<(String, Event)> {
    let mut subscription = bus.subscribe("test", &[topics::EVENTS]).await.unwrap();
    let records = subscription
        .poll(1000, Duration::from_millis(50))
        .await
        .unwrap();
    records
        .into_iter()
        .map(|r| (r.key, Event::decode(&r.payload).unwrap()))
        .collect()
}

fn metric(telemetry: &Telemetry, line_start: &str) -> Option<f64> {
    telemetry
        .render()
        .lines()
        .find(|line| line.starts_with(line_start))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn every_fixture_is_published_with_the_contact_key() {
    let bus = memory().await;
    let (ingest, telemetry) = app(bus.clone(), settings());
    let router = ingest.router();
    let cases = [
        ("telegram", "telegram/message_text.json", 1),
        ("telegram", "telegram/forum_topic_reply.json", 1),
        ("whatsapp", "whatsapp/text.json", 1),
        ("whatsapp", "whatsapp/status_failed.json", 1),
        ("messenger", "messenger/message_quick_reply.json", 1),
        ("stripe", "stripe/payment_intent.succeeded.json", 1),
        ("helpdesk", "helpdesk/session_assigned.json", 1),
        ("events", "generic/batch_with_urn.json", 2),
    ];
    let mut total = 0;
    for (adapter, path, count) in cases {
        let (status, body, _) = send(&router, signed(adapter, fixture(path))).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["published"], count, "{path}: {body}");
        total += count;
    }
    let (status, body, _) = send(&router, twilio_request(&form("twilio/incoming_sms.json"))).await;
    assert_eq!(status, 200, "{body}");
    total += 1;
    let records = published(&bus).await;
    assert_eq!(records.len(), total);
    for (key, event) in &records {
        assert_eq!(key, &format!("{}/{}", event.tenant, event.contact_id));
        event.validate().unwrap();
    }
    assert_eq!(
        metric(
            &telemetry,
            r#"sluice_ingest_requests_total{adapter="telegram",status="200"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &telemetry,
            r#"sluice_ingest_events_published_total{type="message.received"}"#
        ),
        Some(4.0)
    );
    assert!(
        telemetry
            .render()
            .contains("sluice_ingest_publish_seconds_count")
    );
}

#[tokio::test]
async fn bad_signatures_are_401_counted_and_never_published() {
    let bus = memory().await;
    let (ingest, telemetry) = app(bus.clone(), settings());
    let router = ingest.router();
    let body = fixture("whatsapp/text.json");
    let mut tampered = body.clone();
    tampered[40] ^= 1;
    let cases: Vec<(&str, Request<Body>)> = vec![
        (
            "telegram",
            Request::post("/v1/acme/telegram/support_bot")
                .header("x-telegram-bot-api-secret-token", "wrong")
                .body(Body::from(fixture("telegram/message_text.json")))
                .unwrap(),
        ),
        (
            "telegram",
            Request::post("/v1/acme/telegram/support_bot")
                .body(Body::from(fixture("telegram/message_text.json")))
                .unwrap(),
        ),
        (
            "whatsapp",
            Request::post("/v1/acme/whatsapp")
                .header(
                    "x-hub-signature-256",
                    signature::sign_sha256_header(META_SECRET, &body),
                )
                .body(Body::from(tampered))
                .unwrap(),
        ),
        (
            "whatsapp",
            Request::post("/v1/acme/whatsapp")
                .header(
                    "x-hub-signature-256",
                    signature::sign_sha256_header("other", &body),
                )
                .body(Body::from(body.clone()))
                .unwrap(),
        ),
        (
            "stripe",
            Request::post("/v1/acme/stripe")
                .header(
                    "stripe-signature",
                    signature::sign_stripe_header(
                        STRIPE_SECRET,
                        now_secs() - 301,
                        &fixture("stripe/payment_intent.succeeded.json"),
                    ),
                )
                .body(Body::from(fixture("stripe/payment_intent.succeeded.json")))
                .unwrap(),
        ),
        (
            "events",
            Request::post("/v1/acme/events")
                .header(
                    "x-sluice-signature",
                    signature::sign_sha256_header("globex-secret", &fixture("generic/custom.json")),
                )
                .body(Body::from(fixture("generic/custom.json")))
                .unwrap(),
        ),
    ];
    for (adapter, request) in cases {
        let (status, body, _) = send(&router, request).await;
        assert_eq!(status, 401, "{adapter}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("signature"),
            "{body}"
        );
    }
    // Twilio signs the URL too: the same parameters posted to another URL fail.
    let params = form("twilio/incoming_sms.json");
    let mut request = twilio_request(&params);
    *request.uri_mut() = "/v1/acme/twilio?extra=1".parse().unwrap();
    assert_eq!(send(&router, request).await.0, 401);

    assert!(published(&bus).await.is_empty());
    for (adapter, count) in [
        ("telegram", 2.0),
        ("whatsapp", 2.0),
        ("stripe", 1.0),
        ("twilio", 1.0),
    ] {
        assert_eq!(
            metric(
                &telemetry,
                &format!(r#"sluice_ingest_signature_failures_total{{adapter="{adapter}"}}"#)
            ),
            Some(count),
            "{adapter}"
        );
    }
}

#[tokio::test]
async fn statuses_for_unknown_oversized_malformed_ignored_and_foreign() {
    let bus = memory().await;
    let (ingest, telemetry) = app(bus.clone(), settings());
    let router = ingest.router();
    for uri in [
        "/v1/nobody/events",
        "/v1/globex/stripe",
        "/v1/acme/telegram/other_bot",
    ] {
        let request = Request::post(uri).body(Body::from("{}")).unwrap();
        assert_eq!(send(&router, request).await.0, 404, "{uri}");
    }
    let huge = vec![b' '; 65 * 1024];
    assert_eq!(send(&router, signed("events", huge)).await.0, 413);

    let (status, body, _) = send(&router, signed("whatsapp", b"{\"object\":1}".to_vec())).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("whatsapp: malformed"),
        "{body}"
    );
    assert_eq!(
        metric(
            &telemetry,
            r#"sluice_ingest_malformed_total{adapter="whatsapp"}"#
        ),
        Some(1.0)
    );

    let (status, body, _) = send(&router, signed("telegram", fixture("telegram/poll.json"))).await;
    assert_eq!(
        (status, body["published"].as_u64(), body["ignored"].as_u64()),
        (200, Some(0), Some(1))
    );

    // acme's secret cannot publish globex's events.
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture("generic/custom.json")).unwrap();
    event["tenant"] = "globex".into();
    let (status, body, _) = send(
        &router,
        signed("events", serde_json::to_vec(&event).unwrap()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(published(&bus).await.is_empty());
}

#[tokio::test]
async fn provider_retries_are_answered_without_publishing_again() {
    let bus = memory().await;
    let (ingest, telemetry) = app(bus.clone(), settings());
    let router = ingest.router();
    let body = fixture("whatsapp/status_failed.json");
    let (_, first, _) = send(&router, signed("whatsapp", body.clone())).await;
    let (status, retry, _) = send(&router, signed("whatsapp", body)).await;
    assert_eq!(first["published"], 1);
    assert_eq!(
        (
            status,
            retry["published"].as_u64(),
            retry["duplicates"].as_u64()
        ),
        (200, Some(0), Some(1))
    );
    assert_eq!(published(&bus).await.len(), 1);
    assert_eq!(
        metric(&telemetry, "sluice_ingest_dedupe_hits_total"),
        Some(1.0)
    );
}

#[tokio::test]
async fn meta_verification_handshake() {
    let (ingest, _) = app(memory().await, settings());
    let router = ingest.router();
    let ok = Request::get("/v1/acme/whatsapp?hub.mode=subscribe&hub.verify_token=meta-verify&hub.challenge=1158201444")
        .body(Body::empty())
        .unwrap();
    let (status, body, _) = send(&router, ok).await;
    assert_eq!((status, body), (200, serde_json::json!(1158201444)));
    let wrong =
        Request::get("/v1/acme/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1")
            .body(Body::empty())
            .unwrap();
    assert_eq!(send(&router, wrong).await.0, 403);
    let unconfigured =
        Request::get("/v1/acme/messenger?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1")
            .body(Body::empty())
            .unwrap();
    assert_eq!(send(&router, unconfigured).await.0, 403);
}

/// A bus whose publish waits, then succeeds or fails.
struct SlowBus {
    delay: Duration,
    fail: bool,
}

#[async_trait]
impl EventBus for SlowBus {
    async fn ensure_topics(&self, _: &[TopicSpec]) -> sluice_infra::Result<()> {
        Ok(())
    }

    async fn publish(
        &self,
        topic: &str,
        records: Vec<Record>,
    ) -> sluice_infra::Result<Vec<Position>> {
        tokio::time::sleep(self.delay).await;
        if self.fail {
            return Err(sluice_infra::Error::UnknownTopic(topic.to_owned()));
        }
        Ok(records
            .iter()
            .map(|_| Position {
                partition: 0,
                offset: 0,
            })
            .collect())
    }

    async fn subscribe(&self, _: &str, _: &[&str]) -> sluice_infra::Result<Box<dyn Subscription>> {
        Err(sluice_infra::Error::UnknownTopic("none".into()))
    }
}

#[tokio::test]
async fn slow_or_failing_kafka_gets_503_and_saturation_429() {
    let slow = Arc::new(SlowBus {
        delay: Duration::from_millis(500),
        fail: false,
    });
    let (ingest, telemetry) = app(
        slow,
        IngestSettings {
            publish_timeout: Duration::from_millis(50),
            ..settings()
        },
    );
    telemetry.set_ready(true);
    let (status, body, response) = send(
        &ingest.router(),
        signed("events", fixture("generic/custom.json")),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(response.headers()["retry-after"], "5");
    assert!(
        !telemetry.is_ready(),
        "a timed-out publish marks the service not ready"
    );

    let failing = Arc::new(SlowBus {
        delay: Duration::ZERO,
        fail: true,
    });
    let (ingest, _) = app(failing, settings());
    assert_eq!(
        send(
            &ingest.router(),
            signed("events", fixture("generic/custom.json"))
        )
        .await
        .0,
        503
    );

    let slow = Arc::new(SlowBus {
        delay: Duration::from_millis(300),
        fail: false,
    });
    let (ingest, _) = app(
        slow,
        IngestSettings {
            max_in_flight: 1,
            ..settings()
        },
    );
    let router = ingest.router();
    let first = tokio::spawn({
        let router = router.clone();
        async move {
            send(
                &router,
                signed("telegram", fixture("telegram/message_text.json")),
            )
            .await
            .0
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, response) =
        send(&router, signed("whatsapp", fixture("whatsapp/text.json"))).await;
    assert_eq!(status, 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(first.await.unwrap(), 200);
}
