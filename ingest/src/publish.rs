//! Publishing a request's events and waiting for Kafka's acknowledgement.
//!
//! Each request hands its events to [`EventBus::publish`] on `sluice.events` (key
//! `tenant/contact_id`) and waits for the ack (`acks=all`); concurrent requests are
//! batched together by the producer's linger, so no request waits for another's batch to
//! fill. The wait is bounded: after the publish timeout the request gets 503 with
//! `Retry-After`, and the provider retries. A record that was still queued may reach
//! Kafka after that 503; the retry then carries the same event id and the engine drops
//! the second copy. Beyond `max_in_flight` waiting requests new ones get 429.
//!
//! Readiness (`/readyz`): ready after a successful publish or probe; not ready after a
//! failed or timed-out one. When no publish succeeded within the probe interval a
//! background probe asks the bus to ensure `sluice.events` exists — one small admin
//! request, only while idle or failing.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sluice_infra::{
    bus::{EventBus, Record, TopicSpec, topics},
    telemetry::Telemetry,
};
use sluice_schemas::Event;
use tokio::sync::Semaphore;

use crate::{
    dedupe::RecentIds,
    error::{Error, Result},
    metrics::Metrics,
};

/// What happened to a request's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Published {
    /// Events acknowledged by Kafka.
    pub published: usize,
    /// Events dropped as repeats of recently published ones.
    pub duplicates: usize,
}

/// Publishes events with bounded waiting and concurrency, and tracks readiness.
pub struct Publisher {
    bus: Arc<dyn EventBus>,
    topic: Arc<str>,
    timeout: Duration,
    max_in_flight: usize,
    permits: Semaphore,
    recent: RecentIds,
    metrics: Metrics,
    telemetry: Telemetry,
    started: Instant,
    /// Milliseconds since `started` of the last successful publish or probe (0: never).
    last_ok: AtomicU64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher on `bus`.
    pub fn new(
        bus: Arc<dyn EventBus>,
        timeout: Duration,
        max_in_flight: usize,
        dedupe_capacity: usize,
        metrics: Metrics,
        telemetry: Telemetry,
    ) -> Self {
        Publisher {
            bus,
            topic: Arc::from(topics::EVENTS),
            timeout,
            max_in_flight,
            permits: Semaphore::new(max_in_flight.max(1)),
            recent: RecentIds::new(dedupe_capacity),
            metrics,
            telemetry,
            started: Instant::now(),
            last_ok: AtomicU64::new(0),
        }
    }

    /// Publishes to `topic` instead of `sluice.events`.
    #[must_use]
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Arc::from(topic.into());
        self
    }

    fn mark_ok(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ok.store(now.max(1), Ordering::Relaxed);
        self.telemetry.set_ready(true);
    }

    fn mark_failed(&self) {
        self.telemetry.set_ready(false);
    }

    /// Publishes `events` and returns once Kafka acknowledged every one of them.
    pub async fn publish(&self, mut events: Vec<Event>) -> Result<Published> {
        let before = events.len();
        events.retain(|event| !self.recent.contains(&dedupe_key(event)));
        let duplicates = before - events.len();
        if duplicates > 0 {
            self.metrics.dedupe_hits.inc_by(duplicates as u64);
        }
        if events.is_empty() {
            return Ok(Published {
                published: 0,
                duplicates,
            });
        }
        let _permit = self.permits.try_acquire().map_err(|_| Error::Busy {
            in_flight: self.max_in_flight,
        })?;
        let records = events
            .iter()
            .map(|event| {
                event
                    .encode()
                    .map(|bytes| Record::new(event.key(), bytes))
                    .map_err(|source| Error::Encode {
                        id: event.id.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        self.metrics.in_flight.inc();
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.timeout, self.bus.publish(&self.topic, records)).await;
        self.metrics.in_flight.dec();
        match outcome {
            Ok(Ok(_positions)) => {
                self.metrics
                    .publish_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.mark_ok();
                for event in &events {
                    self.metrics
                        .events_published
                        .with_label_values(&[event.event_type.as_str()])
                        .inc();
                }
                let published = events.len();
                for event in events {
                    self.recent.insert(dedupe_key(&event));
                }
                Ok(Published {
                    published,
                    duplicates,
                })
            }
            Ok(Err(source)) => {
                self.mark_failed();
                Err(Error::Publish {
                    topic: Arc::clone(&self.topic),
                    source,
                })
            }
            Err(_elapsed) => {
                self.mark_failed();
                Err(Error::PublishTimeout {
                    topic: Arc::clone(&self.topic),
                    millis: self.timeout.as_millis(),
                })
            }
        }
    }

    /// Checks that the bus answers: ensures `spec` (the events topic) exists.
    pub async fn probe(&self, spec: &TopicSpec) -> bool {
        let outcome = tokio::time::timeout(
            self.timeout,
            self.bus.ensure_topics(std::slice::from_ref(spec)),
        )
        .await;
        match outcome {
            Ok(Ok(())) => {
                self.mark_ok();
                true
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, topic = %spec.name, "readiness probe failed");
                self.mark_failed();
                false
            }
            Err(_) => {
                tracing::warn!(topic = %spec.name, timeout_ms = self.timeout.as_millis() as u64, "readiness probe timed out");
                self.mark_failed();
                false
            }
        }
    }

    /// Probes every `interval` unless a publish succeeded within it, until dropped.
    pub async fn probe_loop(self: Arc<Self>, spec: TopicSpec, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let last_ok = self.last_ok.load(Ordering::Relaxed);
            let recent = last_ok != 0
                && now.saturating_sub(last_ok)
                    < u64::try_from(interval.as_millis()).unwrap_or(u64::MAX)
                && self.telemetry.is_ready();
            if !recent {
                self.probe(&spec).await;
            }
        }
    }
}

fn dedupe_key(event: &Event) -> String {
    format!("{}/{}", event.tenant, event.id)
}
