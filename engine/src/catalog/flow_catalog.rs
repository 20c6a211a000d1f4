//! [`FlowCatalog`]: every flow of every tenant, loaded at start and followed live.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use serde_json::Value;
use sluice_infra::bus::{Delivered, EventBus, Subscription, TopicSpec};
use tokio::{sync::watch, task::JoinHandle};

use super::{headers, store::FlowStore};
use crate::{
    Error, Result,
    eval::FlowSet,
    flow::{CompiledFlow, from_artifact},
};

/// Each tenant's flows, every version: what the hot path reads.
pub type TenantFlows = HashMap<String, Arc<FlowSet>>;

/// How a [`FlowCatalog`] reads flows.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// The flows topic (compacted, one partition); created if missing.
    pub topic: TopicSpec,
    /// How long one poll waits for new records.
    pub poll_timeout: Duration,
    /// How long the topic may stay quiet, while its end offsets say records are still
    /// to come, before the catalog declares itself loaded anyway (compaction can leave
    /// the last offsets empty); also how long to wait when the bus cannot tell its end.
    pub settle: Duration,
}

impl CatalogConfig {
    /// Reads the given flows topic with default timings.
    pub fn new(topic: TopicSpec) -> Self {
        CatalogConfig {
            topic,
            poll_timeout: Duration::from_millis(500),
            settle: Duration::from_secs(10),
        }
    }
}

/// Where a catalog is: whether it has read everything that existed when it started,
/// and how many changes it has applied (to wait for a change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatalogStatus {
    /// Everything on the topic (and in the store) when the catalog started is loaded.
    pub loaded: bool,
    /// Bumped on every applied batch of new flow versions.
    pub generation: u64,
    /// Flow versions skipped because they could not be decoded or compiled, or
    /// conflicted with a loaded one (each is logged with its reason).
    pub skipped: u64,
}

struct Shared {
    flows: ArcSwap<TenantFlows>,
    status: watch::Sender<CatalogStatus>,
}

/// Every flow of every tenant, all versions, as the engine replicas see them.
///
/// At start it loads every recorded version from the [`FlowStore`] (when given: the
/// compacted topic keeps only each flow's newest record, but runs stay pinned to older
/// versions), then reads the flows topic from the beginning in a consumer group of its
/// own (unique per process, never committed), and is [loaded](Self::is_loaded) once it
/// has reached the topic's end offsets as they were at start. It then follows the topic
/// live. An artifact that does not compile is logged and skipped. Readers take
/// [`snapshot`](Self::snapshot)s: an `Arc` swapped atomically per change.
pub struct FlowCatalog {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FlowCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowCatalog")
            .field("status", &*self.shared.status.borrow())
            .finish_non_exhaustive()
    }
}

impl FlowCatalog {
    /// Loads the store's versions, subscribes to the topic and starts following it.
    /// Returns once subscribed; wait for [`loaded`](Self::loaded) before serving.
    pub async fn start(
        bus: Arc<dyn EventBus>,
        store: Option<Arc<dyn FlowStore>>,
        config: CatalogConfig,
    ) -> Result<Self> {
        let topic = config.topic.name.clone();
        bus.ensure_topics(std::slice::from_ref(&config.topic))
            .await
            .map_err(Error::Bus)?;
        let mut loader = Loader::default();
        if let Some(store) = &store {
            for stored in store.all().await? {
                let origin = format!("store {}/{}", stored.tenant, stored.flow_id);
                match stored.artifact() {
                    Ok(artifact) => {
                        loader.apply(&origin, &stored.tenant, &stored.flow_id, &artifact);
                    }
                    Err(error) => loader.skip(&origin, &error.to_string()),
                }
            }
        }
        let ends = bus.end_offsets(&topic).await.map_err(Error::Bus)?;
        let group = unique_group();
        let subscription = bus.subscribe(&group, &[&topic]).await.map_err(Error::Bus)?;
        let loaded = ends.as_ref().is_some_and(|e| e.iter().all(|&end| end <= 0));
        let (status, _) = watch::channel(CatalogStatus {
            loaded,
            generation: 0,
            skipped: loader.skipped,
        });
        let shared = Arc::new(Shared {
            flows: ArcSwap::from_pointee(loader.snapshot()),
            status,
        });
        if loaded {
            log_loaded(&topic, &shared.flows.load(), loader.seen.len());
        }
        let (stop, stopped) = watch::channel(false);
        tracing::info!(topic = %topic, group = %group, end_offsets = ?ends, "flow catalog started");
        let follower = Follower {
            shared: Arc::clone(&shared),
            loader,
            topic,
            ends,
            next: Vec::new(),
            config,
        };
        let task = tokio::spawn(follower.run(subscription, stopped));
        Ok(FlowCatalog {
            shared,
            stop,
            task: Some(task),
        })
    }

    /// The current flows of every tenant: cheap (an atomic load and a reference count).
    pub fn snapshot(&self) -> Arc<TenantFlows> {
        self.shared.flows.load_full()
    }

    /// The current flows of one tenant.
    pub fn flows(&self, tenant: &str) -> Option<Arc<FlowSet>> {
        self.shared.flows.load().get(tenant).cloned()
    }

    /// Whether everything that existed at start is loaded.
    pub fn is_loaded(&self) -> bool {
        self.shared.status.borrow().loaded
    }

    /// Follows the catalog's status (loaded, generation of changes).
    pub fn status(&self) -> watch::Receiver<CatalogStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until loaded.
    pub async fn loaded(&self) {
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = self.status().wait_for(|s| s.loaded).await;
    }

    /// Waits up to `timeout` until the flows satisfy `ready`; returns whether they did.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        ready: impl Fn(&TenantFlows) -> bool,
    ) -> bool {
        let mut status = self.status();
        let check = async {
            loop {
                if ready(&self.shared.flows.load()) {
                    return;
                }
                if status.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, check).await.is_ok() && ready(&self.shared.flows.load())
    }

    /// Stops following the topic and leaves the consumer group.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::error!(%error, "flow catalog task failed");
        }
    }
}

impl Drop for FlowCatalog {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn unique_group() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "sluice-flow-catalog-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn log_loaded(topic: &str, flows: &TenantFlows, versions: usize) {
    tracing::info!(
        topic,
        tenants = flows.len(),
        flows = flows
            .values()
            .map(|s| s.newest_all().count())
            .sum::<usize>(),
        versions,
        "flow catalog loaded"
    );
}

/// The working copy the follower task updates; snapshots share its `Arc`s.
#[derive(Default)]
struct Loader {
    tenants: HashMap<String, Arc<FlowSet>>,
    /// Content hash of every applied (tenant, flow, version): versions are immutable,
    /// so a repeat is skipped and a conflicting one is refused.
    seen: HashMap<(String, String, u32), String>,
    /// Versions skipped so far (undecodable, not compiling, conflicting).
    skipped: u64,
}

impl Loader {
    fn skip(&mut self, origin: &str, reason: &str) {
        self.skipped += 1;
        tracing::warn!(origin, reason, "flow version skipped");
    }

    /// Compiles an artifact and adds it; returns whether anything changed.
    fn apply(&mut self, origin: &str, tenant: &str, flow_id: &str, artifact: &Value) -> bool {
        let version = artifact
            .get("version")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok());
        let hash = artifact.get("content_hash").and_then(Value::as_str);
        if let (Some(version), Some(hash)) = (version, hash) {
            let key = (tenant.to_owned(), flow_id.to_owned(), version);
            if let Some(known) = self.seen.get(&key).cloned() {
                if known != hash {
                    self.skip(
                        origin,
                        &format!(
                            "v{version} is already loaded with content {known}, this one has {hash}"
                        ),
                    );
                }
                return false;
            }
        }
        let flow: CompiledFlow = match from_artifact(artifact) {
            Ok(flow) => flow,
            Err(error) => {
                self.skip(origin, &error.to_string());
                return false;
            }
        };
        if flow.id != flow_id {
            self.skip(
                origin,
                &format!("the artifact holds flow {:?}, not {flow_id:?}", flow.id),
            );
            return false;
        }
        self.seen.insert(
            (tenant.to_owned(), flow.id.clone(), flow.version),
            flow.content_hash.clone(),
        );
        tracing::info!(
            tenant,
            flow_id,
            version = flow.version,
            origin,
            "flow version loaded"
        );
        let set = self.tenants.entry(tenant.to_owned()).or_default();
        Arc::make_mut(set).insert(Arc::new(flow));
        true
    }

    fn apply_record(&mut self, record: &Delivered) -> bool {
        let origin = format!(
            "{}[{}]@{}",
            record.topic, record.position.partition, record.position.offset
        );
        let Some((tenant, flow_id)) = record.key.split_once('/') else {
            self.skip(
                &origin,
                &format!("key {:?} is not tenant/flow_id", record.key),
            );
            return false;
        };
        if let Some(header) = record.header(headers::TENANT)
            && header != tenant.as_bytes()
        {
            self.skip(
                &origin,
                &format!(
                    "tenant header {:?} does not match key {:?}",
                    String::from_utf8_lossy(header),
                    record.key
                ),
            );
            return false;
        }
        match serde_json::from_slice::<Value>(&record.payload) {
            Ok(artifact) => self.apply(&origin, tenant, flow_id, &artifact),
            Err(error) => {
                self.skip(&origin, &format!("the value is not an artifact: {error}"));
                false
            }
        }
    }

    fn snapshot(&self) -> TenantFlows {
        self.tenants.clone()
    }
}

/// The task that follows the topic.
struct Follower {
    shared: Arc<Shared>,
    loader: Loader,
    topic: String,
    /// The topic's end offsets at start, when the bus can tell.
    ends: Option<Vec<i64>>,
    /// The next offset to read, per partition, from what was consumed.
    next: Vec<i64>,
    config: CatalogConfig,
}

impl Follower {
    async fn run(
        mut self,
        mut subscription: Box<dyn Subscription>,
        stopped: watch::Receiver<bool>,
    ) {
        let mut quiet = Duration::ZERO;
        while !*stopped.borrow() {
            let batch = match subscription.poll(256, self.config.poll_timeout).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(topic = %self.topic, %error, "reading flows failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                quiet += self.config.poll_timeout;
            } else {
                quiet = Duration::ZERO;
            }
            let mut changed = false;
            for record in &batch {
                changed |= self.loader.apply_record(record);
                let partition = usize::try_from(record.position.partition).unwrap_or_default();
                if self.next.len() <= partition {
                    self.next.resize(partition + 1, 0);
                }
                self.next[partition] = self.next[partition].max(record.position.offset + 1);
            }
            let was_loaded = self.shared.status.borrow().loaded;
            let loaded = was_loaded || self.reached_end(batch.is_empty(), quiet);
            if changed {
                self.shared.flows.store(Arc::new(self.loader.snapshot()));
            }
            let skipped = self.loader.skipped;
            if changed || loaded != was_loaded || skipped != self.shared.status.borrow().skipped {
                self.shared.status.send_modify(|status| {
                    status.loaded = loaded;
                    status.generation += u64::from(changed);
                    status.skipped = skipped;
                });
            }
            if loaded && !was_loaded {
                log_loaded(
                    &self.topic,
                    &self.shared.flows.load(),
                    self.loader.seen.len(),
                );
            }
        }
        if let Err(error) = subscription.close().await {
            tracing::warn!(topic = %self.topic, %error, "leaving the flow catalog's group failed");
        }
    }

    fn reached_end(&self, idle: bool, quiet: Duration) -> bool {
        match &self.ends {
            Some(ends) => {
                let reached = ends
                    .iter()
                    .enumerate()
                    .all(|(p, &end)| end <= 0 || self.next.get(p).is_some_and(|&n| n >= end));
                if !reached && quiet >= self.config.settle {
                    tracing::warn!(
                        topic = %self.topic,
                        end_offsets = ?ends,
                        read_up_to = ?self.next,
                        "the flows topic stayed quiet before its end offsets; treating it as loaded"
                    );
                    return true;
                }
                reached
            }
            None => idle && quiet >= self.config.settle,
        }
    }
}
