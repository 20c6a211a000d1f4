//! The embedded runtime's moving parts on a wall clock: one consumer of
//! `sluice.events` that hands each record to its partition's worker, and one
//! worker task per partition — events of one contact strictly in order,
//! partitions in parallel, due timers interleaved with live events at a bounded
//! rate, both taken in batches of up to [`TimerConfig::batch`](super::TimerConfig)
//! inputs.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize},
    },
    time::{Duration, Instant},
};

use sluice_infra::bus::{Delivered, EventBus, Position, Subscription, topics};
use tokio::{
    sync::{mpsc, watch},
    task::{JoinHandle, JoinSet},
};
use tracing::Instrument;

use super::{
    Clock, EngineMetrics, Partition,
    ownership::{Acked, Assignment, Fence, Polled, SETTLE_TIMEOUT, Settlement},
    worker::Worker,
};
use crate::{Error, Result};

/// Counters the runtime keeps while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events processed (applied, duplicate or failed).
    pub events: AtomicU64,
    /// Timers fired.
    pub timers: AtomicU64,
    /// Actions published.
    pub actions: AtomicU64,
    /// Inputs that failed (logged; the runtime goes on).
    pub failures: AtomicU64,
    /// Records sent to the dead-letter topic.
    pub dead_letters: AtomicU64,
    /// Workers in the middle of a batch right now.
    pub busy: AtomicUsize,
    /// Records dropped because their partition changed hands after they were
    /// polled (the group delivers them again).
    pub stale: AtomicU64,
}

/// Where a [`Runtime`] reads and where bad input goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// The topic events are consumed from.
    pub events_topic: String,
    /// Where undecodable or unprocessable events go, with headers `sluice.error`
    /// (the reason) and `sluice.source` (`topic/partition/offset`). `None`: they
    /// are logged and skipped.
    pub dlq_topic: Option<String>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            events_topic: topics::EVENTS.to_owned(),
            dlq_topic: None,
        }
    }
}

/// The running runtime: embedded (`sluice dev`) or distributed (`sluice engine`).
#[derive(Debug)]
pub struct Runtime {
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Runtime {
    /// Starts a worker per partition and the consumer of `sluice.events` (consumer
    /// group `group`). `partitions` are the workers' [`Partition`]s in index order,
    /// one per partition of `sluice.events`, so that the worker that receives a
    /// contact's events is the one that owns the contact's timers.
    pub async fn start(
        bus: Arc<dyn EventBus>,
        group: &str,
        partitions: Vec<Partition>,
        clock: Arc<dyn Clock>,
    ) -> Result<Runtime> {
        Self::start_with(bus, group, partitions, clock, RuntimeOptions::default()).await
    }

    /// [`start`](Self::start) with explicit topics. A worker fires its partition's
    /// timers only while the group assigns that partition to this member, and
    /// reloads them from the store when it is assigned again.
    pub async fn start_with(
        bus: Arc<dyn EventBus>,
        group: &str,
        partitions: Vec<Partition>,
        clock: Arc<dyn Clock>,
        options: RuntimeOptions,
    ) -> Result<Runtime> {
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = watch::channel(false);
        let (assign, assignment) = watch::channel(Assignment::default());
        let assign = Arc::new(assign);
        let mut tasks = JoinSet::new();
        let (acks, acked) = mpsc::unbounded_channel();
        let acked = Arc::new(Acked::new(acked));
        let workers = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        let settlement = Arc::new(Settlement::new(partitions.len()));
        let metrics = partitions.first().and_then(|p| p.metrics().cloned());
        let mut senders = Vec::with_capacity(partitions.len());
        for partition in partitions {
            // Room for a few batches: the worker takes its next batch from here while
            // the consumer polls, and a full inbox pauses the partition (which drops
            // what librdkafka prefetched for it).
            let (tx, rx) = mpsc::channel((4 * partition.config().batch).max(1024));
            senders.push(tx);
            let index = partition.index();
            let worker = Worker {
                partition,
                workers,
                inbox: rx,
                acks: acks.clone(),
                bus: Arc::clone(&bus),
                options: options.clone(),
                clock: Arc::clone(&clock),
                stats: Arc::clone(&stats),
                stopped: stopped.clone(),
                assignment: assignment.clone(),
                view: Assignment::default(),
                owned: false,
                epoch: 0,
                settlement: Arc::clone(&settlement),
                carried: None,
                in_flight: std::collections::VecDeque::new(),
                committer: None,
            };
            tasks.spawn(
                worker
                    .run()
                    .instrument(tracing::info_span!("partition", partition = index)),
            );
        }
        drop(acks);
        let fence = Fence {
            topic: options.events_topic.clone(),
            workers,
            assign: Arc::clone(&assign),
            settlement,
            acked: Arc::clone(&acked),
            stopped: stopped.clone(),
            timeout: SETTLE_TIMEOUT,
        };
        let subscription = bus
            .subscribe_with(group, &[&options.events_topic], Arc::new(fence))
            .await
            .map_err(Error::Bus)?;
        let consumer = Consumer {
            subscription,
            bus,
            topic: options.events_topic.clone(),
            senders,
            acked,
            assign,
            assignment: Assignment::default(),
            stopped,
            next: HashMap::new(),
            held: HashMap::new(),
            metrics,
        };
        tasks.spawn(consumer.run().instrument(tracing::info_span!("consumer")));
        Ok(Runtime { stats, stop, tasks })
    }

    /// The runtime's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stops consuming, lets every worker finish the batch in hand, commits what
    /// was processed, leaves the group, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Reads the events topic and routes each record to its partition's worker;
/// commits offsets once the workers report them processed; publishes the group's
/// assignment to the workers (which the [`Fence`] revokes from before the group
/// reassigns partitions).
struct Consumer {
    subscription: Box<dyn Subscription>,
    bus: Arc<dyn EventBus>,
    topic: String,
    senders: Vec<mpsc::Sender<Polled>>,
    /// The workers' acknowledgements, shared with the [`Fence`].
    acked: Arc<Acked>,
    assign: Arc<watch::Sender<Assignment>>,
    /// The assignment as last published, with the partitions' generations.
    assignment: Assignment,
    stopped: watch::Receiver<bool>,
    /// The next offset to process, per partition (from the workers' acks).
    next: HashMap<i32, i64>,
    /// Records of paused partitions waiting for room in their worker's inbox.
    held: HashMap<i32, VecDeque<Polled>>,
    metrics: Option<EngineMetrics>,
}

impl Consumer {
    /// Stores the offsets the workers acknowledged so far: per partition, only the
    /// last one (a worker acknowledges its partition's records in order).
    /// Returns `false` once every worker has hung up and everything is stored.
    fn commit_acked(&mut self) -> bool {
        let (last, open) = self.acked.take();
        for position in last {
            self.commit(position);
        }
        open
    }

    fn commit(&mut self, position: Position) {
        self.next.insert(position.partition, position.offset + 1);
        if let Err(error) = self.subscription.commit(&self.topic, position) {
            tracing::warn!(%error, topic = %self.topic, "cannot commit");
        }
    }

    fn follow_assignment(&mut self) {
        match self.subscription.assignment(&self.topic) {
            // Published before any record polled under the new assignment is routed.
            Ok(partitions) => {
                if self.assign.send_if_modified(|a| a.update(partitions)) {
                    tracing::info!(
                        partitions = ?self.assign.borrow().partitions(),
                        topic = %self.topic,
                        "assignment changed"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the assignment"),
        }
        // The fence may have revoked partitions during the poll, too.
        if *self.assign.borrow() != self.assignment {
            self.assignment = self.assign.borrow().clone();
        }
    }

    /// Sets `sluice_engine_consumer_lag_records`: end offsets minus the next offset
    /// to process, over the assigned partitions this member has processed.
    fn record_lag(&self) -> impl Future<Output = ()> + Send + 'static {
        let metrics = self.metrics.clone();
        let bus = Arc::clone(&self.bus);
        let topic = self.topic.clone();
        let assigned = self.assignment.partitions().to_vec();
        let next = self.next.clone();
        async move {
            let Some(metrics) = metrics else { return };
            let Ok(Some(ends)) = bus.end_offsets(&topic).await else {
                return;
            };
            let lag: i64 = assigned
                .iter()
                .filter_map(|&p| {
                    let end = *ends.get(usize::try_from(p).ok()?)?;
                    let next = *next.get(&p)?;
                    Some((end - next).max(0))
                })
                .sum();
            metrics
                .consumer_lag
                .with_label_values(&[topic.as_str()])
                .set(lag);
        }
    }

    /// Hands a record to its partition's worker without waiting. When the worker's
    /// inbox is full (it is slow, or retrying a store that is down), the record is
    /// held and the partition paused, so polling goes on and the member keeps its
    /// place in the group.
    fn route(&mut self, record: Delivered) {
        let partition = record.position.partition;
        let record = Polled {
            generation: self.assignment.generation(partition),
            record,
        };
        if let Some(held) = self.held.get_mut(&partition) {
            held.push_back(record);
            return;
        }
        let index = usize::try_from(partition).unwrap_or(usize::MAX);
        let Some(sender) = self.senders.get(index % self.senders.len().max(1)) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(record)) = sender.try_send(record) {
            tracing::debug!(partition, "worker busy; pausing the partition");
            if let Err(error) = self.subscription.pause(&self.topic, &[partition]) {
                tracing::warn!(%error, partition, "cannot pause");
            }
            self.held.insert(partition, VecDeque::from([record]));
        }
    }

    /// Moves held records into their workers' inboxes as room frees up, and resumes
    /// a partition once nothing of it is held.
    fn release(&mut self) {
        let senders = &self.senders;
        let mut resumed = Vec::new();
        for (&partition, held) in &mut self.held {
            let index = usize::try_from(partition).unwrap_or(usize::MAX);
            let Some(sender) = senders.get(index % senders.len().max(1)) else {
                held.clear();
                resumed.push(partition);
                continue;
            };
            while let Some(record) = held.pop_front() {
                match sender.try_send(record) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(record)) => {
                        held.push_front(record);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => held.clear(),
                }
            }
            if held.is_empty() {
                resumed.push(partition);
            }
        }
        for partition in resumed {
            self.held.remove(&partition);
            if let Err(error) = self.subscription.resume(&self.topic, &[partition]) {
                tracing::warn!(%error, partition, "cannot resume");
            }
        }
    }

    async fn run(mut self) {
        let mut lag_at = Instant::now();
        let mut lag: Option<JoinHandle<()>> = None;
        while !*self.stopped.borrow() {
            self.commit_acked();
            self.release();
            // While records wait for room in an inbox, poll briefly so they are
            // handed over as soon as the worker takes its next batch.
            let wait = if self.held.is_empty() { 50 } else { 2 };
            let batch = match self
                .subscription
                .poll(2_048, Duration::from_millis(wait))
                .await
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, topic = %self.topic, "cannot poll; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            self.follow_assignment();
            if lag_at.elapsed() >= Duration::from_secs(10)
                && lag.as_ref().is_none_or(JoinHandle::is_finished)
            {
                // Reading the end offsets takes broker round trips: not on the
                // polling path, where it would hold every partition's records.
                lag_at = Instant::now();
                lag = Some(tokio::spawn(self.record_lag()));
            }
            for record in batch {
                self.route(record);
            }
        }
        // Stopping: the workers finish the batch in hand and hang up; commit what
        // they processed, then leave the group.
        self.senders.clear();
        while self.commit_acked() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Err(error) = self.subscription.close().await {
            tracing::warn!(%error, topic = %self.topic, "cannot commit on close");
        }
    }
}
