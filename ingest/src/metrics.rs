//! Every metric of the ingest service, declared in one place. Label values are bounded:
//! adapter names, HTTP status codes, canonical event types — never tenants or ids.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use sluice_schemas::EventType;

use crate::adapters::Adapter;
use crate::error::Result;

/// The ingest metrics, registered in the service's registry.
#[derive(Clone)]
pub struct Metrics {
    /// `sluice_ingest_requests_total{adapter, status}`.
    pub requests: IntCounterVec,
    /// `sluice_ingest_signature_failures_total{adapter}`.
    pub signature_failures: IntCounterVec,
    /// `sluice_ingest_malformed_total{adapter}`.
    pub malformed: IntCounterVec,
    /// `sluice_ingest_ignored_total{adapter}`: updates deliberately not published.
    pub ignored: IntCounterVec,
    /// `sluice_ingest_publish_seconds`: from handing events to the bus to the ack.
    pub publish_seconds: Histogram,
    /// `sluice_ingest_dedupe_hits_total`: events dropped as recently published repeats.
    pub dedupe_hits: IntCounter,
    /// `sluice_ingest_events_published_total{type}`.
    pub events_published: IntCounterVec,
    /// `sluice_ingest_publishes_in_flight`.
    pub in_flight: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "sluice_ingest_requests_total",
                "Webhook requests by adapter and HTTP status.",
            ),
            &["adapter", "status"],
        )?;
        let signature_failures = IntCounterVec::new(
            Opts::new(
                "sluice_ingest_signature_failures_total",
                "Requests rejected because their signature or secret token was missing or wrong.",
            ),
            &["adapter"],
        )?;
        let malformed = IntCounterVec::new(
            Opts::new(
                "sluice_ingest_malformed_total",
                "Verified requests whose payload could not be normalized.",
            ),
            &["adapter"],
        )?;
        let ignored = IntCounterVec::new(
            Opts::new(
                "sluice_ingest_ignored_total",
                "Updates acknowledged without publishing (kinds Sluice does not model).",
            ),
            &["adapter"],
        )?;
        let publish_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_ingest_publish_seconds",
                "Time from handing a request's events to the bus until Kafka acknowledged them.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        let dedupe_hits = IntCounter::new(
            "sluice_ingest_dedupe_hits_total",
            "Events dropped because the same event id was published moments ago (provider retries).",
        )?;
        let events_published = IntCounterVec::new(
            Opts::new(
                "sluice_ingest_events_published_total",
                "Events acknowledged by Kafka, by event type.",
            ),
            &["type"],
        )?;
        let in_flight = IntGauge::new(
            "sluice_ingest_publishes_in_flight",
            "Requests waiting for Kafka's acknowledgement.",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(signature_failures.clone()))?;
        registry.register(Box::new(malformed.clone()))?;
        registry.register(Box::new(ignored.clone()))?;
        registry.register(Box::new(publish_seconds.clone()))?;
        registry.register(Box::new(dedupe_hits.clone()))?;
        registry.register(Box::new(events_published.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        // Show every adapter's failure counters at zero from the start, so alerts on
        // `rate(...)` work before the first failure.
        // The same for the label sets dashboards and alerts (deploy/) divide by: every
        // adapter's accepted and unavailable answers, ignored updates, every event type.
        for adapter in Adapter::ALL {
            signature_failures.with_label_values(&[adapter.as_str()]);
            malformed.with_label_values(&[adapter.as_str()]);
            ignored.with_label_values(&[adapter.as_str()]);
            for status in ["200", "503"] {
                requests.with_label_values(&[adapter.as_str(), status]);
            }
        }
        for event_type in EventType::ALL {
            events_published.with_label_values(&[event_type.as_str()]);
        }
        Ok(Metrics {
            requests,
            signature_failures,
            malformed,
            ignored,
            publish_seconds,
            dedupe_hits,
            events_published,
            in_flight,
        })
    }
}
