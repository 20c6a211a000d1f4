//! The rate limiter holds, measured at the provider.

mod support;

use std::time::Duration;

use sluice_actions::RateLimit;
use support::{Harness, Provider, config, send};

#[tokio::test]
async fn per_channel_rate_holds_at_the_sink() {
    let provider = Provider::start().await;
    let mut cfg = config(&provider);
    cfg.rate_limits
        .insert("web".into(), RateLimit::per_second(20, 0));
    let mut h = Harness::start(cfg).await;
    // 60 contacts, so only the channel's bucket limits them.
    let actions: Vec<_> = (0..60)
        .map(|i| send(&format!("rl{i}"), &format!("c{i}"), "web", "web:1", "x"))
        .collect();
    h.publish(&actions).await;
    h.events(60).await;
    let seen = provider.requests();
    let span = seen.last().unwrap().at - seen[0].at;
    // A bucket of 20 starts full: 20 at once, then 40 more at 20/s take ≥ 2 s.
    assert!(
        span >= Duration::from_millis(1_900),
        "60 sends took {span:?}"
    );
    assert!(
        span <= Duration::from_millis(4_000),
        "60 sends took {span:?}"
    );
    let text = h.telemetry.render();
    assert!(
        text.contains(r#"sluice_actions_rate_limit_waits_total{channel="web"}"#),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test]
async fn telegram_sends_one_message_a_second_per_chat() {
    let provider = Provider::start().await;
    let mut cfg = config(&provider);
    cfg.rate_limits = sluice_actions::default_limits();
    let mut h = Harness::start(cfg).await;
    let mut actions: Vec<_> = (0..3)
        .map(|i| send(&format!("tg{i}"), "c1", "telegram", "telegram:1", "x"))
        .collect();
    actions.push(send("tg-other", "c2", "telegram", "telegram:2", "y"));
    h.publish(&actions).await;
    h.events(4).await;
    let seen = provider.requests();
    let to_chat_1: Vec<_> = seen
        .iter()
        .filter(|s| s.json()["chat_id"] == 1)
        .map(|s| s.at)
        .collect();
    assert_eq!(to_chat_1.len(), 3);
    for pair in to_chat_1.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(900),
            "{:?}",
            pair[1] - pair[0]
        );
    }
    let other = seen.iter().find(|s| s.json()["chat_id"] == 2).unwrap().at;
    assert!(
        other - seen[0].at < Duration::from_millis(500),
        "another chat is not held up"
    );
    h.stop().await;
}
