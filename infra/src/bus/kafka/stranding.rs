//! Telling when a Kafka client knows no broker any more.
//!
//! librdkafka (since 2.10) forgets every broker that a metadata response leaves out,
//! configured bootstrap brokers included. A broker that is fenced — in controlled
//! shutdown, or just started and not yet unfenced — answers with no broker at all,
//! and a client that asked it then has none left: it never connects again and never
//! re-bootstraps, because re-bootstrapping is triggered by a broker going down or by a
//! metadata request, and it has no broker for either (confluentinc/librdkafka#5301,
//! open in 2.12.1, the version `rdkafka` bundles). With one broker, or a whole
//! cluster restarting, that strands producers and consumers for good.
//!
//! Each client reports its statistics every [`STATISTICS_INTERVAL_MS`]; their broker
//! list says when it is empty, and the bus then replaces the client
//! ([`super::KafkaBus`], [`super::KafkaSubscription`]). Replacing is the only cure
//! within safe code: librdkafka's `rd_kafka_brokers_add` is not wrapped by `rdkafka`,
//! and this workspace forbids `unsafe`.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicBool, Ordering},
};

use serde::Deserialize;

/// How often clients report their statistics (librdkafka's `statistics.interval.ms`;
/// a URL property overrides it, and 0 turns the watch off).
pub(super) const STATISTICS_INTERVAL_MS: &str = "1000";

/// Whether a client's last statistics listed no broker it can connect to.
#[derive(Debug, Default)]
pub(super) struct Stranding(AtomicBool);

impl Stranding {
    /// Takes in a client's statistics (librdkafka's JSON); ignores what it cannot read.
    pub(super) fn observe(&self, statistics: &[u8]) {
        if let Some(stranded) = knows_no_broker(statistics) {
            self.0.store(stranded, Ordering::Relaxed);
        }
    }

    /// The client knows no broker (as of its last statistics).
    pub(super) fn is_stranded(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `Some(true)` when `statistics` list no broker learned from metadata or configured
/// in `bootstrap.servers` (only librdkafka's internal and logical ones, which never
/// connect on their own); `None` when they cannot be read.
fn knows_no_broker(statistics: &[u8]) -> Option<bool> {
    #[derive(Deserialize)]
    struct Statistics {
        brokers: HashMap<String, Broker>,
    }
    #[derive(Deserialize)]
    struct Broker {
        source: String,
    }
    let statistics: Statistics = serde_json::from_slice(statistics).ok()?;
    Some(
        !statistics
            .brokers
            .values()
            .any(|broker| broker.source == "learned" || broker.source == "configured"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// librdkafka's statistics with brokers of the given sources (other fields cut).
    fn statistics(sources: &[(&str, &str)]) -> Vec<u8> {
        let brokers: serde_json::Map<String, serde_json::Value> = sources
            .iter()
            .map(|(name, source)| {
                (
                    (*name).to_owned(),
                    serde_json::json!({"name": name, "nodeid": -1, "source": source,
                                       "state": "UP", "rtt": {"avg": 0}}),
                )
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "name": "rdkafka#consumer-1", "type": "consumer", "ts": 1, "brokers": brokers,
            "topics": {"sluice.events": {"partitions": {"0": {"partition": 0}}}},
        }))
        .unwrap()
    }

    #[test]
    fn a_client_with_a_learned_or_configured_broker_is_not_stranded() {
        let stranding = Stranding::default();
        stranding.observe(&statistics(&[
            (":0/internal", "internal"),
            ("127.0.0.1:9092/1", "learned"),
            ("GroupCoordinator", "logical"),
        ]));
        assert!(!stranding.is_stranded());
        stranding.observe(&statistics(&[
            (":0/internal", "internal"),
            ("127.0.0.1:9092/bootstrap", "configured"),
        ]));
        assert!(!stranding.is_stranded());
    }

    #[test]
    fn a_client_left_with_internal_and_logical_brokers_only_is_stranded() {
        let stranding = Stranding::default();
        stranding.observe(&statistics(&[
            (":0/internal", "internal"),
            ("GroupCoordinator", "logical"),
        ]));
        assert!(stranding.is_stranded());
        // And no longer once it learns a broker again.
        stranding.observe(&statistics(&[("127.0.0.1:9092/1", "learned")]));
        assert!(!stranding.is_stranded());
    }

    #[test]
    fn unreadable_statistics_change_nothing() {
        let stranding = Stranding::default();
        stranding.observe(&statistics(&[(":0/internal", "internal")]));
        stranding.observe(b"{not json");
        stranding.observe(br#"{"brokers": 3}"#);
        assert!(stranding.is_stranded());
    }
}
