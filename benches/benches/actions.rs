//! Action workers' throughput: signed web-chat webhooks dispatched to a local HTTP
//! sink through the whole worker path — in-memory bus, Avro decode, in-memory
//! dedupe claim and record, rate limiter, HTTP call, `message.sent` published —
//! first with the limiter set high enough not to bind, then at a lower limit to
//! show it holds at the sink.
//!
//! `cargo bench -p sluice-benches --bench actions` (`-- N` for N actions; default 100000).

#![allow(clippy::print_stdout, missing_docs)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, routing::post};
use sluice_actions::{ActionsConfig, RateLimit, Secret, SignedEndpoint, Stores};
use sluice_infra::{
    bus::{EventBus, MemoryBus, Record},
    telemetry::Telemetry,
};
use sluice_schemas::{Action, ActionPayload, ActionType, SendMessage};

fn action(i: usize) -> Action {
    Action {
        id: format!("bench-{i}"),
        tenant: "acme".into(),
        contact_id: format!("c{}", i % 10_000),
        run_id: "r".into(),
        flow_id: "f".into(),
        flow_version: 1,
        node_id: "n".into(),
        action_type: ActionType::MessageSend,
        created_at: 1_767_225_600_000,
        not_before: None,
        chain_depth: 0,
        payload: ActionPayload::SendMessage(SendMessage {
            channel_type: "web".into(),
            channel_id: "widget".into(),
            to: format!("web:{i}"),
            session_id: None,
            text: Some("Your order has shipped".into()),
            media: None,
            buttons: vec![],
        }),
    }
}

/// Runs `n` actions with the web channel limited to `limit`/s; returns (elapsed
/// from the first to the last request at the sink, requests).
async fn run(
    n: usize,
    limit: u32,
    sink_url: &str,
    count: &Arc<AtomicU64>,
    first_last: &Arc<std::sync::Mutex<(Option<Instant>, Option<Instant>)>>,
) -> (Duration, u64) {
    count.store(0, Ordering::SeqCst);
    *first_last.lock().unwrap() = (None, None);
    let bus = MemoryBus::new(8);
    let mut config = ActionsConfig {
        channel_concurrency: 256,
        max_in_flight: 50_000,
        batch_size: 2_000,
        worker_id: Some("bench".into()),
        webhook: Some(SignedEndpoint {
            url: sink_url.to_owned(),
            secret: Some(Secret("bench-secret".into())),
        }),
        ..ActionsConfig::default()
    };
    config
        .rate_limits
        .insert("web".into(), RateLimit::per_second(limit, 0));
    let telemetry = Telemetry::new("actions").unwrap();
    let worker = config
        .build(Arc::new(bus.clone()), Stores::memory(), &telemetry)
        .await
        .unwrap();
    worker.ensure_topics(8, 1).await.unwrap();
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let a = action(i);
            Record::new(a.key(), a.encode().unwrap())
        })
        .collect();
    bus.publish("sluice.actions", records).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    while count.load(Ordering::SeqCst) < n as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let (first, last) = *first_last.lock().unwrap();
    (last.unwrap() - first.unwrap(), count.load(Ordering::SeqCst))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let count = Arc::new(AtomicU64::new(0));
    let first_last = Arc::new(std::sync::Mutex::new((None::<Instant>, None::<Instant>)));
    let (c, fl) = (Arc::clone(&count), Arc::clone(&first_last));
    let app = Router::new().route(
        "/hook",
        post(move || {
            let (c, fl) = (Arc::clone(&c), Arc::clone(&fl));
            async move {
                let now = Instant::now();
                {
                    let mut fl = fl.lock().unwrap();
                    fl.0.get_or_insert(now);
                    fl.1 = Some(now);
                }
                c.fetch_add(1, Ordering::SeqCst);
                "{\"message_id\":\"m\"}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    println!(
        "sluice-actions throughput: signed webhooks to a local sink, in-memory bus and dedupe"
    );
    println!("command: cargo bench -p sluice-benches --bench actions -- {n}");
    let (elapsed, done) = run(n, 1_000_000, &url, &count, &first_last).await;
    println!(
        "limit 1000000/s: {done} actions in {:.2} s = {:.0} actions/s",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    let limited = 10_000.min(n);
    let (elapsed, done) = run(limited, 2_000, &url, &count, &first_last).await;
    // The bucket starts full (2000 tokens); the rest arrive at the limit.
    let steady = (done - 2_000.min(done)) as f64 / elapsed.as_secs_f64();
    println!(
        "limit 2000/s: {done} actions in {:.2} s; rate after the initial burst of 2000 = {steady:.0}/s",
        elapsed.as_secs_f64()
    );
}
