//! The distributed engine (`sluice engine`): the embedded [`Runtime`] on Kafka and
//! CQL. Flows come from the [`FlowCatalog`], contact state from a
//! [`CqlStore`](sluice_infra::store::CqlStore) and timers from a
//! [`CqlTimerStore`](sluice_infra::store::CqlTimerStore); every input takes the
//! same per-contact path as in `sluice dev` ([`Processor`]).
//!
//! [`EngineConfig::build`] wires it and returns once the catalog has loaded every
//! flow, so a caller can mark the replica ready then.

mod evaluator;

use std::{sync::Arc, time::Duration};

use prometheus::Registry;
use sluice_infra::{
    bus::{EventBus, TopicSpec, topics},
    cql::{Cql, CqlConfig},
    store::{CqlTimerStore, MemoryStore, TimerStore},
};

pub use evaluator::CatalogEvaluator;

use crate::{
    Error, Result,
    catalog::{self, CatalogConfig, CqlFlowStore, FlowCatalog, FlowStore},
    runtime::{
        Clock, EngineMetrics, Partition, Processor, Runtime, RuntimeOptions, Stats, TimerConfig,
        WallClock,
    },
};

/// How `sluice engine` consumes, where it writes, and how it paces timers.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Consumer group of the events topic.
    pub group: String,
    /// Where events are read.
    pub events_topic: String,
    /// Where actions are written.
    pub actions_topic: String,
    /// The compacted flows topic.
    pub flows_topic: String,
    /// Where undecodable and unprocessable events go.
    pub dlq_topic: String,
    /// Partitions of the events topic when the bus cannot tell (and when topics are created).
    pub partitions_hint: i32,
    /// Create missing topics (replication 1; for development and tests).
    pub create_topics: bool,
    /// Timer paging and pacing.
    pub timers: TimerConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            group: "sluice-engine".to_owned(),
            events_topic: topics::EVENTS.to_owned(),
            actions_topic: topics::ACTIONS.to_owned(),
            flows_topic: topics::FLOWS.to_owned(),
            dlq_topic: topics::DLQ.to_owned(),
            partitions_hint: 12,
            create_topics: false,
            timers: TimerConfig::default(),
        }
    }
}

/// A running engine replica.
pub struct Engine {
    runtime: Runtime,
    catalog: Arc<FlowCatalog>,
    timers: Arc<dyn TimerStore>,
    partitions: i32,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("runtime", &self.runtime)
            .field("catalog", &self.catalog)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl EngineConfig {
    /// Connects the stores (`store`: `cql://…` or `memory://`), loads the flow
    /// catalog, and starts consuming. Returns once every flow is loaded.
    pub async fn build(
        self,
        bus: Arc<dyn EventBus>,
        store: &str,
        registry: &Registry,
    ) -> Result<Engine> {
        self.build_with_clock(bus, store, registry, Arc::new(WallClock))
            .await
    }

    /// [`build`](Self::build) on another clock than the wall clock: a virtual one
    /// that a test moves (`sluice engine --virtual-clock`).
    pub async fn build_with_clock(
        self,
        bus: Arc<dyn EventBus>,
        store: &str,
        registry: &Registry,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine> {
        if self.create_topics {
            let spec = |name: &str, partitions: i32| TopicSpec {
                name: name.to_owned(),
                partitions,
                replication: 1,
                compacted: false,
            };
            bus.ensure_topics(&[
                spec(&self.events_topic, self.partitions_hint),
                spec(&self.actions_topic, self.partitions_hint),
                spec(&self.dlq_topic, 1),
            ])
            .await
            .map_err(Error::Bus)?;
        }
        let partitions = match partition_count(bus.as_ref(), &self.events_topic).await? {
            Some(count) => count,
            None => self.partitions_hint.max(1),
        };
        let (timers, flows): (Arc<dyn TimerStore>, Option<Arc<dyn FlowStore>>) =
            if store.starts_with("memory://") {
                (Arc::new(MemoryStore::default()), None)
            } else {
                let cql = Cql::connect(&CqlConfig::from_url(store).map_err(Error::Store)?)
                    .await
                    .map_err(Error::Store)?;
                let timers = CqlTimerStore::new(cql.clone(), partitions)
                    .await
                    .map_err(Error::Store)?;
                (
                    Arc::new(timers),
                    Some(Arc::new(CqlFlowStore::new(cql).await?)),
                )
            };
        let catalog = FlowCatalog::start(
            Arc::clone(&bus),
            flows,
            CatalogConfig::new(catalog::flows_topic(&self.flows_topic, 1)),
        )
        .await?;
        catalog.loaded().await;
        let catalog = Arc::new(catalog);
        let metrics = EngineMetrics::register(registry)?;
        metrics.initialize(&self.events_topic, partitions);
        let processor = Processor::new(
            Arc::new(CatalogEvaluator::new(Arc::clone(&catalog))),
            Arc::clone(&timers),
            Arc::clone(&bus),
        )
        .with_actions_topic(self.actions_topic.clone())
        .with_actions_before_commit()
        .with_metrics(metrics);
        let workers = (0..partitions)
            .map(|i| Partition::new(i, partitions, processor.clone(), self.timers))
            .collect();
        let runtime = Runtime::start_with(
            bus,
            &self.group,
            workers,
            clock,
            RuntimeOptions {
                events_topic: self.events_topic.clone(),
                dlq_topic: Some(self.dlq_topic.clone()),
            },
        )
        .await?;
        tracing::info!(
            group = %self.group,
            topic = %self.events_topic,
            partitions,
            "engine consuming"
        );
        Ok(Engine {
            runtime,
            catalog,
            timers,
            partitions,
        })
    }
}

/// The events topic's partition count, as the bus tells it; retried for a while,
/// since a topic just created may not have its partition leaders yet.
async fn partition_count(bus: &dyn EventBus, topic: &str) -> Result<Option<i32>> {
    let mut attempt = 0;
    loop {
        match bus.end_offsets(topic).await {
            Ok(Some(ends)) if !ends.is_empty() => {
                return Ok(Some(i32::try_from(ends.len()).unwrap_or(i32::MAX)));
            }
            Ok(_) => return Ok(None),
            Err(error) if error.is_retryable() && attempt < 30 => {
                attempt += 1;
                tracing::info!(%error, topic, attempt, "cannot read partitions yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(Error::Bus(error)),
        }
    }
}

impl Engine {
    /// The runtime's counters.
    pub fn stats(&self) -> &Stats {
        self.runtime.stats()
    }

    /// Partitions of the events topic (one worker each).
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// The store of contact states and pending timers.
    pub fn timers(&self) -> &Arc<dyn TimerStore> {
        &self.timers
    }

    /// The flows this replica runs.
    pub fn catalog(&self) -> &FlowCatalog {
        &self.catalog
    }

    /// Finishes the inputs in hand, commits what was processed, leaves the group
    /// and stops following flows.
    pub async fn shutdown(self) {
        self.runtime.shutdown().await;
        if let Ok(catalog) = Arc::try_unwrap(self.catalog) {
            catalog.stop().await;
        }
    }
}
