//! The worker loop: poll `sluice.actions`, decode, run each contact's actions in
//! order (different contacts concurrently), park what must wait, commit each
//! partition up to its lowest unfinished action.
//!
//! The loop itself never waits on a provider: actions run on spawned tasks that
//! report back over a channel, and the loop polls at least every few seconds even
//! when the in-flight cap is reached, so `max.poll.interval.ms` is never exceeded.
//! Actions that must wait — `not_before` in the future (quiet hours), or a claim
//! another worker holds — are *parked* in memory with their wake-up time; they
//! keep their partition's commit below them, so a restart reads them again.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::FutureExt;
use sluice_infra::{
    bus::{Delivered, EventBus, Subscription, TopicSpec},
    telemetry::Telemetry,
};
use sluice_schemas::Action;
use tokio::sync::mpsc;

use crate::{
    ActionsConfig, Result,
    connectors::{Http, router::Connectors},
    dispatch::{Dispatcher, Step, now_ms},
    metrics::Metrics,
    offsets::Offsets,
    rate_limit::RateLimiters,
    results::{Outcome, Publisher},
    stores::Stores,
};

/// Poll at least this often, whatever the in-flight count.
const MAX_STALL: Duration = Duration::from_secs(5);

/// An action read from the bus, on its way.
struct Job {
    action: Arc<Action>,
    source: Arc<Delivered>,
    /// Infrastructure failures so far, for the backoff.
    failures: u32,
    /// The provider's answer, once it was called: a retry after a failure to record
    /// it records and publishes this instead of calling the provider again.
    executed: Option<Outcome>,
}

struct Completion {
    job: Job,
    step: Result<Step>,
}

/// A running action worker; see [`ActionsConfig::build`].
pub struct Worker {
    config: ActionsConfig,
    bus: Arc<dyn EventBus>,
    dispatcher: Arc<Dispatcher>,
    telemetry: Telemetry,
    metrics: Metrics,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("group", &self.config.group)
            .field("actions_topic", &self.config.actions_topic)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub(crate) async fn new(
        config: ActionsConfig,
        bus: Arc<dyn EventBus>,
        stores: Stores,
        telemetry: &Telemetry,
    ) -> Result<Self> {
        let metrics = Metrics::register(telemetry.registry())?;
        let http = Http::new(config.retry, metrics.clone())?;
        let limits = RateLimiters::new(config.rate_limits.clone(), metrics.clone());
        let connectors = Connectors::new(&config, http, limits, &stores);
        let publisher = Publisher {
            bus: Arc::clone(&bus),
            events_topic: config.events_topic.clone(),
            dlq_topic: config.dlq_topic.clone(),
        };
        let owner = config.worker_id();
        tracing::info!(worker_id = %owner, lease_ms = config.lease().as_millis() as u64, "action worker built");
        let dispatcher = Dispatcher::new(
            stores.dedupe,
            connectors,
            publisher,
            metrics.clone(),
            config.channel_concurrency,
            owner,
            config.lease(),
        );
        Ok(Worker {
            config,
            bus,
            dispatcher: Arc::new(dispatcher),
            telemetry: telemetry.clone(),
            metrics,
        })
    }

    /// Creates the worker's topics where they do not exist (for the embedded bus
    /// and development; production creates them from its manifests).
    pub async fn ensure_topics(&self, partitions: i32, replication: i32) -> Result<()> {
        let spec = |name: &str, partitions: i32| TopicSpec {
            name: name.to_owned(),
            partitions,
            replication,
            compacted: false,
        };
        self.bus
            .ensure_topics(&[
                spec(&self.config.actions_topic, partitions),
                spec(&self.config.events_topic, partitions),
                spec(&self.config.dlq_topic, 1),
            ])
            .await?;
        Ok(())
    }

    /// Runs until `shutdown` resolves, then finishes the actions under way (up to
    /// `grace`), commits and leaves the group. Parked actions are left for the
    /// next owner of their partitions.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> Result<()> {
        let subscription = self
            .bus
            .subscribe(&self.config.group, &[&self.config.actions_topic])
            .await?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let mut state = Loop {
            worker: &self,
            subscription,
            offsets: Offsets::default(),
            lanes: HashMap::new(),
            parked: BinaryHeap::new(),
            parked_jobs: HashMap::new(),
            next_park: 0,
            running: 0,
            done_tx,
            done_rx,
        };
        self.telemetry.set_ready(true);
        tracing::info!(group = %self.config.group, topic = %self.config.actions_topic, "action worker running");
        let result = state.run(shutdown, grace).await;
        self.telemetry.set_ready(false);
        let closed = state.subscription.close().await;
        result.and(closed.map_err(Into::into))
    }
}

struct Loop<'w> {
    worker: &'w Worker,
    subscription: Box<dyn Subscription>,
    offsets: Offsets,
    /// Per contact key, the actions waiting behind the one under way.
    lanes: HashMap<String, VecDeque<Job>>,
    parked: BinaryHeap<Reverse<(i64, u64)>>,
    parked_jobs: HashMap<u64, Job>,
    next_park: u64,
    running: usize,
    done_tx: mpsc::UnboundedSender<Completion>,
    done_rx: mpsc::UnboundedReceiver<Completion>,
}

impl Loop<'_> {
    async fn run(
        &mut self,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> Result<()> {
        let config = &self.worker.config;
        let poll_timeout = Duration::from_millis(config.poll_timeout_ms.max(1));
        let mut shutdown = std::pin::pin!(shutdown);
        let mut last_poll = Instant::now();
        loop {
            if shutdown.as_mut().now_or_never().is_some() {
                break;
            }
            if self.running < config.max_in_flight || last_poll.elapsed() >= MAX_STALL {
                last_poll = Instant::now();
                match self
                    .subscription
                    .poll(config.batch_size, poll_timeout)
                    .await
                {
                    Ok(batch) => {
                        for record in batch {
                            self.accept(record).await?;
                        }
                    }
                    Err(error) if error.is_retryable() => {
                        tracing::warn!(%error, "polling actions failed; trying again");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(error) => return Err(error.into()),
                }
            } else if let Ok(Some(completion)) =
                tokio::time::timeout(poll_timeout, self.done_rx.recv()).await
            {
                self.complete(completion);
            }
            while let Ok(completion) = self.done_rx.try_recv() {
                self.complete(completion);
            }
            self.wake_parked();
            self.commit();
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.running > 0 {
            match tokio::time::timeout_at(deadline, self.done_rx.recv()).await {
                Ok(Some(completion)) => drop(self.complete_only(completion)),
                _ => break,
            }
        }
        self.commit();
        tracing::info!(
            running = self.running,
            parked = self.parked_jobs.len(),
            "action worker stopped"
        );
        Ok(())
    }

    async fn accept(&mut self, record: Delivered) -> Result<()> {
        if !self.offsets.track(record.position) {
            return Ok(());
        }
        let action = match Action::decode(&record.payload).and_then(|a| a.validate().map(|()| a)) {
            Ok(action) => action,
            Err(error) => {
                let reason = error.to_string();
                let kind = if Action::decode(&record.payload).is_ok() {
                    "invalid"
                } else {
                    "undecodable"
                };
                tracing::warn!(topic = %record.topic, partition = record.position.partition, offset = record.position.offset, %reason, "action dead-lettered");
                self.worker
                    .dispatcher
                    .publisher
                    .dead_letter(&record, &reason)
                    .await?;
                self.worker
                    .metrics
                    .dead_letters
                    .with_label_values(&[kind])
                    .inc();
                self.worker
                    .metrics
                    .actions
                    .with_label_values(&["unknown", kind])
                    .inc();
                self.offsets.finish(record.position);
                return Ok(());
            }
        };
        self.worker.metrics.in_flight.inc();
        let job = Job {
            action: Arc::new(action),
            source: Arc::new(record),
            failures: 0,
            executed: None,
        };
        match self.lanes.get_mut(&job.source.key) {
            Some(lane) => lane.push_back(job),
            None => {
                self.lanes.insert(job.source.key.clone(), VecDeque::new());
                self.start(job);
            }
        }
        Ok(())
    }

    /// Starts `job` now, or parks it until its `not_before`.
    fn start(&mut self, job: Job) {
        match job.action.not_before {
            Some(at) if at > now_ms() => self.park(job, at),
            _ => self.spawn(job),
        }
    }

    fn spawn(&mut self, job: Job) {
        self.running += 1;
        let dispatcher = Arc::clone(&self.worker.dispatcher);
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            let mut job = job;
            let step = dispatcher
                .handle(&job.action, &job.source, &mut job.executed)
                .await;
            // The loop outlives every task it spawned, except on a fatal error.
            let _ = done.send(Completion { job, step });
        });
    }

    fn park(&mut self, job: Job, until: i64) {
        self.next_park += 1;
        self.parked.push(Reverse((until, self.next_park)));
        self.parked_jobs.insert(self.next_park, job);
        self.worker.metrics.parked.inc();
    }

    fn wake_parked(&mut self) {
        let now = now_ms();
        while let Some(Reverse((at, id))) = self.parked.peek().copied() {
            if at > now {
                break;
            }
            self.parked.pop();
            if let Some(job) = self.parked_jobs.remove(&id) {
                self.worker.metrics.parked.dec();
                self.spawn(job);
            }
        }
    }

    /// Handles a finished attempt; returns the job when it must run again.
    fn complete_only(&mut self, completion: Completion) -> Option<Job> {
        self.running -= 1;
        let Completion { mut job, step } = completion;
        match step {
            Ok(Step::Done) => {
                self.offsets.finish(job.source.position);
                self.worker.metrics.in_flight.dec();
                let next = self
                    .lanes
                    .get_mut(&job.source.key)
                    .and_then(VecDeque::pop_front);
                if next.is_none() {
                    self.lanes.remove(&job.source.key);
                }
                return next;
            }
            Ok(Step::RetryAt(at)) => self.park(job, at),
            Err(error) => {
                job.failures += 1;
                let pause = 250u64 << job.failures.min(7);
                tracing::warn!(action_id = %job.action.id, %error, retry_in_ms = pause, "action failed on our side; will try again");
                self.park(job, now_ms().saturating_add(pause as i64));
            }
        }
        None
    }

    fn complete(&mut self, completion: Completion) {
        if let Some(next) = self.complete_only(completion) {
            self.start(next);
        }
    }

    fn commit(&mut self) {
        let topic = self.worker.config.actions_topic.clone();
        for position in self.offsets.committable() {
            if let Err(error) = self.subscription.commit(&topic, position) {
                // After a rebalance the partition may belong to someone else now.
                tracing::debug!(%error, partition = position.partition, "commit refused");
            }
        }
    }
}
