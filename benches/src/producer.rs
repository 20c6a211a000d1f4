//! Sends prepared events to the input topic — all at once (maximum rate) or at a
//! fixed rate — and records when each was sent in [`SendTimes`].
//!
//! At a fixed rate, event `i` is due at `start + i / rate` and its send time is that
//! due time, not the moment the generator got to it: a generator that falls behind
//! (both cores busy) cannot hide the delay from the latency figures.

use std::{
    sync::{Arc, atomic::Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rdkafka::{
    error::KafkaError,
    producer::{BaseRecord, Producer as _, ThreadedProducer},
    types::RDKafkaErrorCode,
};

use crate::{
    kafka::{Deliveries, counting_producer},
    tracker::SendTimes,
    workload::{Prepared, seq_headers},
};

/// Sends events to one topic.
pub struct EventSender {
    producer: ThreadedProducer<Deliveries>,
    topic: String,
    sent: Arc<SendTimes>,
}

impl std::fmt::Debug for EventSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSender")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Which events to send: `count` of them from sequence number `first`, event
/// `first + i` being `records[i % records.len()]` (records are reused when there
/// are fewer of them than events; the sequence number travels in a header).
#[derive(Debug, Clone, Copy)]
pub struct Span<'a> {
    /// The first sequence number.
    pub first: u64,
    /// How many events.
    pub count: u64,
    /// The encoded events.
    pub records: &'a [Prepared],
}

impl Span<'_> {
    fn record(&self, i: u64) -> &Prepared {
        let len = self.records.len().max(1) as u64;
        &self.records[usize::try_from(i % len).unwrap_or(0)]
    }
}

/// How a fixed-rate run kept to its schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paced {
    /// Events sent.
    pub sent: u64,
    /// Seconds from the first due time to the last send.
    pub seconds: f64,
    /// The most any event was sent after its due time, in milliseconds.
    pub max_behind_ms: f64,
}

impl EventSender {
    /// A sender to `topic` on `bootstrap`, recording into `sent`.
    pub fn new(bootstrap: &str, topic: &str, sent: Arc<SendTimes>) -> anyhow::Result<Self> {
        Ok(EventSender {
            producer: counting_producer(bootstrap)?,
            topic: topic.to_owned(),
            sent,
        })
    }

    fn send(&self, seq: u64, record: &Prepared, at_nanos: u64) -> anyhow::Result<()> {
        anyhow::ensure!(
            seq < self.sent.capacity(),
            "event {seq} is beyond the {} the run has room for",
            self.sent.capacity()
        );
        self.sent.set(seq, at_nanos);
        let mut pending = BaseRecord::to(&self.topic)
            .key(&record.key)
            .payload(&record.payload)
            .headers(seq_headers(seq));
        loop {
            match self.producer.send(pending) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    pending = back;
                    thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    return Err(error).with_context(|| format!("producing to {}", self.topic));
                }
            }
        }
    }

    /// Enqueues every event of `span` as fast as the producer takes them.
    pub fn send_all(&self, span: Span<'_>) -> anyhow::Result<()> {
        for i in 0..span.count {
            let now = self.sent.nanos_at(Instant::now());
            self.send(span.first + i, span.record(i), now)?;
        }
        Ok(())
    }

    /// Sends the events of `span` at `rate` per second.
    pub fn send_paced(&self, span: Span<'_>, rate: f64) -> anyhow::Result<Paced> {
        anyhow::ensure!(rate > 0.0, "the rate must be positive");
        let start = Instant::now();
        let mut next = 0u64;
        let mut max_behind = Duration::ZERO;
        while next < span.count {
            let now = Instant::now();
            let elapsed = now.duration_since(start).as_secs_f64();
            let due = ((elapsed * rate) as u64 + 1).min(span.count);
            while next < due {
                let at = start + Duration::from_secs_f64(next as f64 / rate);
                max_behind = max_behind.max(now.saturating_duration_since(at));
                self.send(span.first + next, span.record(next), self.sent.nanos_at(at))?;
                next += 1;
            }
            if next < span.count {
                let at = start + Duration::from_secs_f64(next as f64 / rate);
                thread::sleep(at.saturating_duration_since(Instant::now()));
            }
        }
        Ok(Paced {
            sent: span.count,
            seconds: start.elapsed().as_secs_f64(),
            max_behind_ms: max_behind.as_secs_f64() * 1e3,
        })
    }

    /// Waits until every enqueued event is acknowledged; fails if any delivery failed.
    pub fn flush(&self, timeout: Duration) -> anyhow::Result<u64> {
        self.producer
            .flush(timeout)
            .with_context(|| format!("flushing events to {}", self.topic))?;
        let deliveries = self.producer.context();
        let failed = deliveries.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = deliveries
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default();
            anyhow::bail!(
                "{failed} events were not delivered to {}: {first}",
                self.topic
            );
        }
        Ok(deliveries.delivered.load(Ordering::Relaxed))
    }
}
