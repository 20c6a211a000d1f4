//! Politeness and failure paths: 429 with Retry-After, 500 then success, a
//! permanent 400 to the dead-letter topic with `message.failed`, undecodable
//! input, quiet hours, redelivery.

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde_json::json;
use sluice_actions::{
    Stores,
    dedupe::{Claim, DedupeStore, MemoryDedupe},
};
use sluice_schemas::{EventType, Payload};
use support::{Answer, Harness, Provider, config, send};

#[tokio::test]
async fn too_many_requests_waits_as_told_by_retry_after() {
    let provider = Provider::start().await;
    provider.script(
        Answer::json(429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1"}))
            .with_header("retry-after", "1"),
    );
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[send("r1", "c1", "telegram", "telegram:1", "hi")])
        .await;
    let events = h.events(1).await;
    assert_eq!(events[0].event_type, EventType::MessageSent);
    let seen = provider.requests();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(
        h.telemetry
            .render()
            .contains(r#"sluice_actions_retries_total{channel="telegram"} 1"#)
    );
    h.stop().await;
}

#[tokio::test]
async fn retry_after_as_an_http_date_and_in_telegrams_body() {
    let provider = Provider::start().await;
    let date = httpdate_in(Duration::from_secs(2));
    provider.script(Answer::json(503, json!({})).with_header("retry-after", &date));
    provider.script(Answer::json(
        429,
        json!({"ok": false, "error_code": 429, "parameters": {"retry_after": 1}}),
    ));
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[send("r2", "c1", "telegram", "telegram:1", "hi")])
        .await;
    h.events(1).await;
    let seen = provider.requests();
    assert_eq!(seen.len(), 3);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_millis(900),
        "HTTP date honoured"
    );
    assert!(
        seen[2].at - seen[1].at >= Duration::from_millis(950),
        "body retry_after honoured"
    );
    h.stop().await;
}

fn httpdate_in(after: Duration) -> String {
    // HTTP dates have whole seconds; round up so the wait is at least `after - 1 s`.
    let at = std::time::SystemTime::now() + after;
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let at = std::time::UNIX_EPOCH + Duration::from_secs(secs);
    httpdate_fmt(at)
}

fn httpdate_fmt(at: std::time::SystemTime) -> String {
    // A tiny RFC 7231 IMF-fixdate formatter, to keep the test independent of the crate's parser.
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil-from-days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(month <= 2);
    let name = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {d:02} {name} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[tokio::test]
async fn server_error_then_success() {
    let provider = Provider::start().await;
    provider.script(Answer::json(
        500,
        json!({"error": {"message": "boom", "code": 1}}),
    ));
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[send("r3", "c1", "whatsapp", "whatsapp:+1555", "hi")])
        .await;
    let events = h.events(1).await;
    assert_eq!(events[0].event_type, EventType::MessageSent);
    assert_eq!(provider.requests().len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn permanent_rejection_goes_to_the_dlq_and_reports_message_failed() {
    let provider = Provider::start().await;
    provider.script(Answer::json(
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
    ));
    let mut h = Harness::start(config(&provider)).await;
    h.publish(&[send("r4", "c1", "telegram", "telegram:1", "hi")])
        .await;
    let events = h.events(1).await;
    assert_eq!(events[0].event_type, EventType::MessageFailed);
    let Payload::Delivery(d) = &events[0].payload else {
        panic!()
    };
    assert_eq!(d.error_code.as_deref(), Some("400"));
    assert!(
        d.error.as_deref().unwrap().contains("chat not found"),
        "{d:?}"
    );
    assert!(
        !d.error.as_deref().unwrap().contains("123:ABC"),
        "the bot token must not leak"
    );
    let dead = h.dead_letters(1).await;
    let reason = String::from_utf8(dead[0].header("sluice.error").unwrap().to_vec()).unwrap();
    assert!(reason.contains("HTTP 400"), "{reason}");
    let source = String::from_utf8(dead[0].header("sluice.source").unwrap().to_vec()).unwrap();
    assert!(source.starts_with("sluice.actions/"), "{source}");
    assert_eq!(provider.requests().len(), 1, "a 400 is not retried");
    assert!(
        h.telemetry
            .render()
            .contains(r#"sluice_actions_dead_letters_total{reason="rejected"} 1"#)
    );
    h.stop().await;
}

#[tokio::test]
async fn undecodable_actions_are_dead_lettered_and_the_rest_go_on() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    h.publish_raw("acme/c1", b"not avro".to_vec()).await;
    h.publish(&[send("ok-1", "c1", "web", "web:1", "after the bad one")])
        .await;
    let dead = h.dead_letters(1).await;
    assert_eq!(dead[0].payload, b"not avro");
    let reason = String::from_utf8(dead[0].header("sluice.error").unwrap().to_vec()).unwrap();
    assert!(reason.contains("bad magic"), "{reason}");
    let source = String::from_utf8(dead[0].header("sluice.source").unwrap().to_vec()).unwrap();
    assert!(source.ends_with("/0"), "{source}");
    assert_eq!(h.events(1).await[0].id, "ok-1/sent");
    h.stop().await;
}

#[tokio::test]
async fn quiet_hours_park_one_contact_without_blocking_others() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut later = send("q1", "sleepy", "web", "web:1", "good morning");
    later.not_before = Some(now + 1_500);
    let started = Instant::now();
    h.publish(&[later, send("q2", "awake", "web", "web:2", "right now")])
        .await;
    let events = h.events(2).await;
    assert_eq!(events[0].id, "q2/sent", "the other contact is not held up");
    let seen = provider.requests();
    assert_eq!(seen[1].json()["action_id"], "q1");
    assert!(
        seen[1].at - started >= Duration::from_millis(1_400),
        "not_before honoured"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_redelivered_action_is_not_executed_again() {
    let provider = Provider::start().await;
    let mut h = Harness::start(config(&provider)).await;
    let action = send("dup-1", "c1", "telegram", "telegram:1", "once");
    h.publish(std::slice::from_ref(&action)).await;
    let first = h.events(1).await;
    h.publish(&[action]).await;
    let second = h.events(1).await;
    assert_eq!(
        first, second,
        "the same result event is re-published from the record"
    );
    assert_eq!(provider.requests().len(), 1);
    assert!(
        h.telemetry
            .render()
            .contains(r#"sluice_actions_total{outcome="duplicate",type="message.send"} 1"#)
    );
    h.stop().await;
}

/// A dedupe store whose `complete` fails while the store is "down".
struct FlakyComplete {
    inner: MemoryDedupe,
    failures_left: AtomicU32,
}

#[async_trait]
impl DedupeStore for FlakyComplete {
    async fn claim(
        &self,
        action_id: &str,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> sluice_actions::Result<Claim> {
        self.inner.claim(action_id, owner, now, lease).await
    }

    async fn complete(
        &self,
        action_id: &str,
        owner: &str,
        outcome: &str,
    ) -> sluice_actions::Result<bool> {
        let down = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if down {
            return Err(sluice_actions::Error::Cql {
                operation: "complete action_claims".into(),
                message: "connection refused".into(),
            });
        }
        self.inner.complete(action_id, owner, outcome).await
    }
}

#[tokio::test]
async fn an_outcome_recorded_only_after_a_store_outage_does_not_call_the_provider_again() {
    let provider = Provider::start().await;
    // More failures than one attempt's own retries: the attempt gives up, the job is
    // parked and tried again once the store is back.
    let dedupe = Arc::new(FlakyComplete {
        inner: MemoryDedupe::new(),
        failures_left: AtomicU32::new(7),
    });
    let stores = Stores {
        dedupe: dedupe.clone(),
        ..Stores::memory()
    };
    let mut h = Harness::start_with(config(&provider), stores).await;
    h.publish(&[send("outage-1", "c1", "telegram", "telegram:1", "once")])
        .await;
    let events = h.events(1).await;
    assert_eq!(events[0].event_type, EventType::MessageSent);
    assert_eq!(
        dedupe.failures_left.load(Ordering::SeqCst),
        0,
        "the store was down"
    );
    assert_eq!(provider.requests().len(), 1, "the provider was called once");
    let recorded = dedupe
        .inner
        .claim(
            "outage-1",
            "another-worker",
            i64::MAX / 2,
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(
        matches!(recorded, Claim::Done { .. }),
        "the outcome was recorded: {recorded:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn one_contacts_actions_run_in_order() {
    let provider = Provider::start().await;
    let mut slow = Answer::json(200, json!({"message_id": "m"}));
    slow.delay = Duration::from_millis(200);
    provider.script(slow);
    let mut h = Harness::start(config(&provider)).await;
    let actions: Vec<_> = (0..5)
        .map(|i| send(&format!("o{i}"), "c1", "web", "web:1", &format!("{i}")))
        .collect();
    h.publish(&actions).await;
    h.events(5).await;
    let texts: Vec<String> = provider
        .requests()
        .iter()
        .map(|s| s.json()["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["0", "1", "2", "3", "4"]);
    h.stop().await;
}
