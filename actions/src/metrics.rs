//! The crate's metrics, declared in one place. Label values are bounded: action
//! types and outcomes are canonical names, channels a fixed set of connector names.

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

use sluice_schemas::ActionType;

use crate::{Result, connectors::router::CHANNELS, results::Status};

/// Every `reason` label of `sluice_actions_dead_letters_total`.
const DEAD_LETTER_REASONS: [&str; 4] = ["undecodable", "invalid", "rejected", "exhausted"];

/// Handles to every metric of the action workers.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `sluice_actions_total{type, outcome}`.
    pub(crate) actions: IntCounterVec,
    /// `sluice_actions_delivery_seconds{channel}`: one provider call, retries included.
    pub(crate) delivery: HistogramVec,
    /// `sluice_actions_end_to_end_seconds`: from the action's creation (or `not_before`) to done.
    pub(crate) end_to_end: Histogram,
    /// `sluice_actions_retries_total{channel}`.
    pub(crate) retries: IntCounterVec,
    /// `sluice_actions_rate_limit_waits_total{channel}`.
    pub(crate) rate_limit_waits: IntCounterVec,
    /// `sluice_actions_dead_letters_total{reason}`: `undecodable`, `invalid`, `rejected`, `exhausted`.
    pub(crate) dead_letters: IntCounterVec,
    /// `sluice_actions_in_flight`.
    pub(crate) in_flight: IntGauge,
    /// `sluice_actions_parked`: waiting for `not_before` or another worker's lease.
    pub(crate) parked: IntGauge,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self> {
        let metrics = Metrics {
            actions: IntCounterVec::new(
                Opts::new(
                    "sluice_actions_total",
                    "Actions handled, by type and outcome.",
                ),
                &["type", "outcome"],
            )?,
            delivery: HistogramVec::new(
                HistogramOpts::new(
                    "sluice_actions_delivery_seconds",
                    "Time of one provider call, retries included, by channel.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ]),
                &["channel"],
            )?,
            end_to_end: Histogram::with_opts(
                HistogramOpts::new(
                    "sluice_actions_end_to_end_seconds",
                    "From when an action was due (created_at, or not_before) until it was done.",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0,
                ]),
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "sluice_actions_retries_total",
                    "Provider calls retried, by channel.",
                ),
                &["channel"],
            )?,
            rate_limit_waits: IntCounterVec::new(
                Opts::new(
                    "sluice_actions_rate_limit_waits_total",
                    "Sends that waited for a rate limiter, by channel.",
                ),
                &["channel"],
            )?,
            dead_letters: IntCounterVec::new(
                Opts::new(
                    "sluice_actions_dead_letters_total",
                    "Actions sent to the dead-letter topic, by reason.",
                ),
                &["reason"],
            )?,
            in_flight: IntGauge::new(
                "sluice_actions_in_flight",
                "Actions read and not finished yet, parked ones included.",
            )?,
            parked: IntGauge::new(
                "sluice_actions_parked",
                "Actions waiting for not_before (quiet hours) or another worker's lease.",
            )?,
        };
        registry.register(Box::new(metrics.actions.clone()))?;
        registry.register(Box::new(metrics.delivery.clone()))?;
        registry.register(Box::new(metrics.end_to_end.clone()))?;
        registry.register(Box::new(metrics.retries.clone()))?;
        registry.register(Box::new(metrics.rate_limit_waits.clone()))?;
        registry.register(Box::new(metrics.dead_letters.clone()))?;
        registry.register(Box::new(metrics.in_flight.clone()))?;
        registry.register(Box::new(metrics.parked.clone()))?;
        metrics.preset_labels();
        Ok(metrics)
    }

    /// Shows every known label set at zero from the start, so that dashboards and
    /// alerts (deploy/) see each series before its first increment and `rate(...)`
    /// works from the first failure on.
    fn preset_labels(&self) {
        for action_type in ActionType::ALL {
            for status in [Status::Success, Status::Failed] {
                self.actions
                    .with_label_values(&[action_type.as_str(), status.as_str()]);
            }
        }
        for channel in CHANNELS {
            self.delivery.with_label_values(&[channel]);
            self.retries.with_label_values(&[channel]);
            self.rate_limit_waits.with_label_values(&[channel]);
        }
        for reason in DEAD_LETTER_REASONS {
            self.dead_letters.with_label_values(&[reason]);
        }
    }
}
