//! The engine's metrics, declared in one place and registered on the service's
//! registry (`/metrics`). Names follow `sluice_engine_<what>_<unit>[_total]`; the
//! alert rules in `deploy/kubernetes/base/alerts-engine.yaml` rely on them. Label
//! values are bounded: event and action types, store operations, DLQ reasons,
//! partition numbers.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use sluice_schemas::{ActionType, EventType};

use crate::{Error, Result};

/// Why the engine dead-letters an input (`sluice_engine_dead_letters_total{reason}`).
const DEAD_LETTER_REASONS: [&str; 2] = ["undecodable", "unprocessable"];

/// The store calls timed in `sluice_engine_store_seconds{operation}`.
const STORE_OPERATIONS: [&str; 2] = ["load", "commit"];

/// What the runtime records while it runs.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    /// `sluice_engine_events_total{type}`: events consumed, by event type.
    pub events: IntCounterVec,
    /// `sluice_engine_actions_total{type}`: actions published, by action type.
    pub actions: IntCounterVec,
    /// `sluice_engine_processing_seconds`: one input through the per-contact path.
    pub processing: Histogram,
    /// `sluice_engine_dead_letters_total{reason}`: records sent to the dead-letter topic.
    pub dead_letters: IntCounterVec,
    /// `sluice_engine_timers_pending{partition}`: timers held in a partition's wheel.
    pub timers_pending: IntGaugeVec,
    /// `sluice_engine_timers_fired_total`: deadlines fired — timers that came due and
    /// applied, and overdue ones an event fired first (a stale timer is not counted).
    pub timers_fired: IntCounter,
    /// `sluice_engine_timer_lateness_seconds`: how late a timer fired after its due time.
    pub timer_lateness: Histogram,
    /// `sluice_engine_store_seconds{operation}`: state loads and commits.
    pub store: HistogramVec,
    /// `sluice_engine_consumer_lag_records{topic}`: records not yet processed.
    pub consumer_lag: IntGaugeVec,
}

fn metric_error(error: prometheus::Error) -> Error {
    Error::State(format!("registering engine metrics: {error}"))
}

impl EngineMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<Self> {
        let seconds = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramOpts::new(name, help).buckets(buckets)
        };
        let fast = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let metrics = EngineMetrics {
            events: IntCounterVec::new(
                Opts::new("sluice_engine_events_total", "Events consumed, by type"),
                &["type"],
            )
            .map_err(metric_error)?,
            actions: IntCounterVec::new(
                Opts::new("sluice_engine_actions_total", "Actions published, by type"),
                &["type"],
            )
            .map_err(metric_error)?,
            processing: Histogram::with_opts(seconds(
                "sluice_engine_processing_seconds",
                "One input (event or timer) through load, evaluate, commit and publish",
                fast.clone(),
            ))
            .map_err(metric_error)?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "sluice_engine_dead_letters_total",
                    "Input records sent to the dead-letter topic, by reason",
                ),
                &["reason"],
            )
            .map_err(metric_error)?,
            timers_pending: IntGaugeVec::new(
                Opts::new(
                    "sluice_engine_timers_pending",
                    "Timers held in memory (due within the horizon), by partition",
                ),
                &["partition"],
            )
            .map_err(metric_error)?,
            timers_fired: IntCounter::new(
                "sluice_engine_timers_fired_total",
                "Deadlines fired: due timers that applied, and overdue ones an event fired first",
            )
            .map_err(metric_error)?,
            timer_lateness: Histogram::with_opts(seconds(
                "sluice_engine_timer_lateness_seconds",
                "How long after its due time a timer fired",
                vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0],
            ))
            .map_err(metric_error)?,
            store: HistogramVec::new(
                seconds(
                    "sluice_engine_store_seconds",
                    "State store calls, by operation",
                    fast,
                ),
                &["operation"],
            )
            .map_err(metric_error)?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "sluice_engine_consumer_lag_records",
                    "Records of the input topic not yet processed by this replica's partitions",
                ),
                &["topic"],
            )
            .map_err(metric_error)?,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 9] = [
            Box::new(metrics.events.clone()),
            Box::new(metrics.actions.clone()),
            Box::new(metrics.processing.clone()),
            Box::new(metrics.dead_letters.clone()),
            Box::new(metrics.timers_pending.clone()),
            Box::new(metrics.timers_fired.clone()),
            Box::new(metrics.timer_lateness.clone()),
            Box::new(metrics.store.clone()),
            Box::new(metrics.consumer_lag.clone()),
        ];
        for collector in collectors {
            registry.register(collector).map_err(metric_error)?;
        }
        Ok(metrics)
    }

    /// Creates every series a replica consuming `events_topic` with `partitions`
    /// partitions can report, at zero, so that dashboards and alerts see them from
    /// the start rather than after their first sample.
    pub fn initialize(&self, events_topic: &str, partitions: i32) {
        for event_type in EventType::ALL {
            self.events.with_label_values(&[event_type.as_str()]);
        }
        for action_type in ActionType::ALL {
            self.actions.with_label_values(&[action_type.as_str()]);
        }
        for reason in DEAD_LETTER_REASONS {
            self.dead_letters.with_label_values(&[reason]);
        }
        for operation in STORE_OPERATIONS {
            self.store.with_label_values(&[operation]);
        }
        for partition in 0..partitions {
            self.timers_pending
                .with_label_values(&[partition.to_string().as_str()]);
        }
        self.consumer_lag.with_label_values(&[events_topic]);
    }
}
