//! Feeding JSON Lines events into `sluice.events`: each line validated and
//! Avro-encoded exactly as the distributed pipeline does, invalid ones to
//! `sluice.dlq` with the reason and the source line in headers.

use std::{
    io::{BufRead, BufReader},
    path::Path,
};

use anyhow::Context;
use sluice_infra::bus::{EventBus, Record, topics};
use sluice_schemas::Event;

/// What became of the fed events.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Fed {
    pub(super) published: u64,
    pub(super) dead_lettered: u64,
}

/// Feeds a file, or standard input for `-`. Lines are read on a blocking thread
/// and published as they arrive, so a pipe can stream events in.
pub(super) async fn feed_source(bus: &dyn EventBus, path: &Path) -> anyhow::Result<Fed> {
    let reader: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = std::fs::File::open(path)
            .with_context(|| format!("opening events file {}", path.display()))?;
        Box::new(BufReader::new(file))
    };
    let source = path.display().to_string();
    let (lines, mut incoming) = tokio::sync::mpsc::channel::<std::io::Result<String>>(256);
    let reading = tokio::task::spawn_blocking(move || {
        for line in reader.lines() {
            if lines.blocking_send(line).is_err() {
                break;
            }
        }
    });
    let mut fed = Fed::default();
    let mut line_number = 0;
    while let Some(line) = incoming.recv().await {
        line_number += 1;
        let line = line.with_context(|| format!("reading {source}"))?;
        feed_line(bus, &line, &format!("{source}:{line_number}"), &mut fed).await?;
    }
    reading.await.context("reading events")?;
    Ok(fed)
}

/// Publishes one line: a valid event to `sluice.events` (key `tenant/contact_id`),
/// anything else to `sluice.dlq` as is. Blank lines are skipped.
async fn feed_line(bus: &dyn EventBus, line: &str, at: &str, fed: &mut Fed) -> anyhow::Result<()> {
    if line.trim().is_empty() {
        return Ok(());
    }
    let decoded = serde_json::from_str::<Event>(line)
        .map_err(|e| format!("not an event: {e}"))
        .and_then(|event| {
            event.validate().map_err(|e| e.to_string())?;
            let bytes = event.encode().map_err(|e| e.to_string())?;
            Ok((event.key(), bytes))
        });
    match decoded {
        Ok((key, bytes)) => {
            bus.publish(topics::EVENTS, vec![Record::new(key, bytes)])
                .await?;
            fed.published += 1;
        }
        Err(reason) => {
            tracing::warn!(source = at, reason, "invalid event sent to {}", topics::DLQ);
            let record = Record::new("", line)
                .with_header("sluice.error", reason)
                .with_header("sluice.source", at);
            bus.publish(topics::DLQ, vec![record]).await?;
            fed.dead_lettered += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_infra::bus::{MemoryBus, TopicSpec};

    use super::*;

    #[tokio::test]
    async fn valid_events_are_published_and_invalid_ones_dead_lettered() {
        let bus = MemoryBus::new(8);
        bus.ensure_topics(&TopicSpec::sluice_topics(8, 1))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let input = include_str!("../../../examples/events/quickstart.jsonl").to_owned()
            + "\n{\"id\": \"broken\"}\nnot json at all\n";
        std::fs::write(&path, &input).unwrap();
        let fed = feed_source(&bus, &path).await.unwrap();
        let valid = include_str!("../../../examples/events/quickstart.jsonl")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count() as u64;
        assert_eq!(
            fed,
            Fed {
                published: valid,
                dead_lettered: 2
            }
        );

        let mut events = bus.subscribe("t", &[topics::EVENTS]).await.unwrap();
        let delivered = events.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(delivered.len() as u64, valid);
        for record in delivered {
            let event = Event::decode(&record.payload).unwrap();
            assert_eq!(record.key, event.key());
        }
        let mut dlq = bus.subscribe("t", &[topics::DLQ]).await.unwrap();
        let dead = dlq.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(dead.len(), 2);
        let reason = String::from_utf8(dead[0].header("sluice.error").unwrap().to_vec()).unwrap();
        assert!(reason.starts_with("not an event:"), "{reason}");
        let source = format!("{}:{}", path.display(), valid + 3);
        assert_eq!(dead[1].header("sluice.source"), Some(source.as_bytes()));
    }
}
