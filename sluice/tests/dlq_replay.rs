//! `sluice dlq replay` against the real Kafka: dead letters go back to their topic
//! with their key and without `sluice.error`, `--max` bounds a run, `--source`
//! filters by origin, and a second run continues where the first stopped.

use std::{collections::BTreeMap, process::Command, time::Duration};

use sluice_infra::{
    bus::{self, Record, TopicSpec},
    testing,
};

fn replay(kafka: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["dlq", "replay", "--bus"])
        .arg(format!("kafka://{kafka}"))
        .args(["--idle-secs", "2"])
        .args(args)
        .env("SLUICE_LOG", "warn")
        .output()
        .expect("running sluice dlq replay");
    assert!(
        output.status.success(),
        "sluice dlq replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_dead_letters_with_their_keys_bounded_and_resumable() {
    let Some(kafka) = testing::kafka() else {
        return;
    };
    let unique = testing::unique_name("dlq").to_lowercase();
    let (dlq, target, group) = (
        format!("{unique}_dlq"),
        format!("{unique}_target"),
        format!("{unique}_replay"),
    );
    let bus = bus::connect(&format!("kafka://{kafka}")).await.unwrap();
    // One partition, so that which records a bounded run takes is deterministic.
    let spec = |name: &str| TopicSpec {
        name: name.to_owned(),
        partitions: 1,
        replication: 1,
        compacted: false,
    };
    bus.ensure_topics(&[spec(&dlq), spec(&target)])
        .await
        .unwrap();
    let dead: Vec<Record> = (0..5)
        .map(|i| {
            let source = if i == 4 {
                "sluice.events"
            } else {
                "sluice.actions"
            };
            Record::new(format!("acme/c{i}"), format!("action {i}"))
                .with_header("sluice.error", "exhausted")
                .with_header("sluice.source", format!("{source}/0/{i}"))
        })
        .collect();
    bus.publish(&dlq, dead).await.unwrap();

    let first = replay(
        &kafka,
        &[
            "--from",
            &dlq,
            "--to",
            &target,
            "--group",
            &group,
            "--max",
            "2",
            "--source",
            "sluice.actions",
        ],
    );
    assert!(first.starts_with("replayed 2 records"), "{first}");
    let second = replay(
        &kafka,
        &[
            "--from",
            &dlq,
            "--to",
            &target,
            "--group",
            &group,
            "--source",
            "sluice.actions",
        ],
    );
    assert!(second.starts_with("replayed 2 records"), "{second}");
    assert!(second.contains("(1 skipped by --source)"), "{second}");

    let mut reader = bus
        .subscribe(&format!("{unique}_check"), &[&target])
        .await
        .unwrap();
    let mut replayed = BTreeMap::new();
    for _ in 0..60 {
        for record in reader.poll(100, Duration::from_millis(500)).await.unwrap() {
            assert!(record.header("sluice.error").is_none(), "{record:?}");
            assert!(record.header("sluice.source").is_some(), "{record:?}");
            replayed.insert(
                record.key.clone(),
                String::from_utf8(record.payload).unwrap(),
            );
        }
        if replayed.len() >= 4 {
            break;
        }
    }
    let expected: BTreeMap<String, String> = (0..4)
        .map(|i| (format!("acme/c{i}"), format!("action {i}")))
        .collect();
    assert_eq!(replayed, expected);
}
