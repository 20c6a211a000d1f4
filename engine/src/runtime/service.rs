//! The embedded runtime's moving parts on a wall clock: one consumer of
//! `sluice.events` that hands each record to its partition's worker, and one
//! worker task per partition — events of one contact strictly in order,
//! partitions in parallel, due timers interleaved with live events at a bounded
//! rate.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sluice_infra::bus::{Delivered, EventBus, Position, Record, Subscription, topics};
use sluice_schemas::Event;
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tracing::Instrument;

use super::{Clock, EngineMetrics, Partition};
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
    /// Workers in the middle of an input right now.
    pub busy: AtomicUsize,
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
        let (assign, assignment) = watch::channel(Vec::new());
        let mut tasks = JoinSet::new();
        let (acks, acked) = mpsc::unbounded_channel();
        let workers = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        let metrics = partitions.first().and_then(|p| p.metrics().cloned());
        let mut senders = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let (tx, rx) = mpsc::channel(1024);
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
                owned: false,
            };
            tasks.spawn(
                worker
                    .run()
                    .instrument(tracing::info_span!("partition", partition = index)),
            );
        }
        drop(acks);
        let subscription = bus
            .subscribe(group, &[&options.events_topic])
            .await
            .map_err(Error::Bus)?;
        let consumer = Consumer {
            subscription,
            bus,
            topic: options.events_topic.clone(),
            senders,
            acked,
            assign,
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

    /// Stops consuming, lets every worker finish the input in hand, commits what
    /// was processed, leaves the group, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Reads the events topic and routes each record to its partition's worker;
/// commits offsets once the workers report them processed; publishes the group's
/// assignment to the workers.
struct Consumer {
    subscription: Box<dyn Subscription>,
    bus: Arc<dyn EventBus>,
    topic: String,
    senders: Vec<mpsc::Sender<Delivered>>,
    acked: mpsc::UnboundedReceiver<Position>,
    assign: watch::Sender<Vec<i32>>,
    stopped: watch::Receiver<bool>,
    /// The next offset to process, per partition (from the workers' acks).
    next: HashMap<i32, i64>,
    /// Records of paused partitions waiting for room in their worker's inbox.
    held: HashMap<i32, VecDeque<Delivered>>,
    metrics: Option<EngineMetrics>,
}

impl Consumer {
    fn commit(&mut self, position: Position) {
        self.next.insert(position.partition, position.offset + 1);
        if let Err(error) = self.subscription.commit(&self.topic, position) {
            tracing::warn!(%error, topic = %self.topic, "cannot commit");
        }
    }

    fn follow_assignment(&mut self) {
        match self.subscription.assignment(&self.topic) {
            Ok(partitions) => {
                self.assign.send_if_modified(|current| {
                    if *current == partitions {
                        return false;
                    }
                    tracing::info!(?partitions, topic = %self.topic, "assignment changed");
                    *current = partitions;
                    true
                });
            }
            Err(error) => tracing::warn!(%error, "cannot read the assignment"),
        }
    }

    /// Sets `sluice_engine_consumer_lag_records`: end offsets minus the next offset
    /// to process, over the assigned partitions this member has processed.
    fn record_lag(&self) -> impl Future<Output = ()> + Send + 'static {
        let metrics = self.metrics.clone();
        let bus = Arc::clone(&self.bus);
        let topic = self.topic.clone();
        let assigned = self.assign.borrow().clone();
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
        while !*self.stopped.borrow() {
            while let Ok(position) = self.acked.try_recv() {
                self.commit(position);
            }
            self.release();
            let batch = match self.subscription.poll(512, Duration::from_millis(50)).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, topic = %self.topic, "cannot poll; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            self.follow_assignment();
            if lag_at.elapsed() >= Duration::from_secs(10) {
                lag_at = Instant::now();
                self.record_lag().await;
            }
            for record in batch {
                self.route(record);
            }
        }
        // Stopping: the workers finish the input in hand and hang up; commit what
        // they processed, then leave the group.
        self.senders.clear();
        while let Some(position) = self.acked.recv().await {
            self.commit(position);
        }
        if let Err(error) = self.subscription.close().await {
            tracing::warn!(%error, topic = %self.topic, "cannot commit on close");
        }
    }
}

/// One partition's worker.
struct Worker {
    partition: Partition,
    /// How many workers share the partitions (`partition % workers` routes).
    workers: i32,
    inbox: mpsc::Receiver<Delivered>,
    acks: mpsc::UnboundedSender<Position>,
    bus: Arc<dyn EventBus>,
    options: RuntimeOptions,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    stopped: watch::Receiver<bool>,
    assignment: watch::Receiver<Vec<i32>>,
    /// Whether the group assigns this worker's partition here: only then do its
    /// timers fire.
    owned: bool,
}

impl Worker {
    async fn run(mut self) {
        let config = self.partition.config();
        let mut budget = Budget::new(config.rate, config.burst, self.clock.now());
        loop {
            if *self.stopped.borrow() {
                return;
            }
            // Live events first, a bounded batch at a time.
            let mut events = 0;
            while events < 256 {
                let Ok(record) = self.inbox.try_recv() else {
                    break;
                };
                if !self.event(record).await {
                    return;
                }
                events += 1;
            }
            self.follow_assignment();
            let now = self.clock.now();
            let mut fired = 0;
            if self.owned {
                if let Err(error) = self.partition.refill(now).await {
                    tracing::warn!(%error, "cannot load timers; retrying");
                }
                fired = self.timers(now, config.burst, &mut budget).await;
                self.record_pending();
            }
            if events > 0 || fired > 0 {
                continue;
            }
            // Idle: sleep until the next timer, the next window, an event or stop.
            let wake = if self.owned {
                self.partition
                    .next_due()
                    .unwrap_or(i64::MAX)
                    .min(self.partition.loaded_until())
                    .saturating_sub(now)
                    .clamp(1, 1_000)
            } else {
                200
            };
            let mut stopped = self.stopped.clone();
            let mut assignment = self.assignment.clone();
            tokio::select! {
                record = self.inbox.recv() => match record {
                    Some(record) => {
                        if !self.event(record).await {
                            return;
                        }
                    }
                    None => return,
                },
                _ = tokio::time::sleep(Duration::from_millis(wake.unsigned_abs())) => {}
                _ = stopped.changed() => {}
                _ = assignment.changed() => {}
            }
        }
    }

    /// Takes the group's assignment: timers fire only for an owned partition, and
    /// are reloaded from the store whenever ownership changes.
    fn follow_assignment(&mut self) {
        let index = self.partition.index();
        let workers = self.workers.max(1);
        let owned = self
            .assignment
            .borrow_and_update()
            .iter()
            .any(|p| p.rem_euclid(workers) == index);
        if owned != self.owned {
            tracing::info!(owned, "partition ownership changed; timers reloaded");
            self.owned = owned;
            self.partition.reset();
            self.record_pending();
        }
    }

    fn record_pending(&self) {
        if let Some(metrics) = self.partition.metrics() {
            let pending = i64::try_from(self.partition.in_memory()).unwrap_or(i64::MAX);
            metrics
                .timers_pending
                .with_label_values(&[self.partition.index().to_string().as_str()])
                .set(pending);
        }
    }

    /// Processes one record; returns `false` when the runtime stopped before the
    /// record's effects were durable (it is then not acknowledged, and the group
    /// delivers it again).
    async fn event(&mut self, record: Delivered) -> bool {
        self.stats.busy.fetch_add(1, Ordering::SeqCst);
        let done = self.process(&record).await;
        self.stats.busy.fetch_sub(1, Ordering::SeqCst);
        if done {
            let _ = self.acks.send(record.position);
            self.stats.events.fetch_add(1, Ordering::SeqCst);
        }
        done
    }

    async fn process(&mut self, record: &Delivered) -> bool {
        let event = match Event::decode(&record.payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(offset = record.position.offset, %error, "undecodable event");
                return self
                    .dead_letter(record, "undecodable", &error.to_string())
                    .await;
            }
        };
        let metrics = self.partition.metrics().cloned();
        if let Some(metrics) = &metrics {
            metrics
                .events
                .with_label_values(&[event.event_type.as_str()])
                .inc();
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let now = self.clock.now();
            match self.partition.handle_event(&event, now).await {
                Ok(processed) => {
                    if let Some(metrics) = &metrics {
                        metrics.processing.observe(started.elapsed().as_secs_f64());
                    }
                    self.stats
                        .actions
                        .fetch_add(processed.output.actions.len() as u64, Ordering::SeqCst);
                    return true;
                }
                Err(error) if retryable(&error) => {
                    // The store or the bus is down: hold this partition (nothing
                    // after this record is processed or committed) and retry.
                    tracing::warn!(event = event.id, %error, ?backoff, "event failed; retrying");
                    let mut stopped = self.stopped.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped.wait_for(|stop| *stop) => return false,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    self.stats.failures.fetch_add(1, Ordering::SeqCst);
                    tracing::error!(event = event.id, %error, "event failed");
                    return self
                        .dead_letter(record, "unprocessable", &error.to_string())
                        .await;
                }
            }
        }
    }

    /// Sends a record to the dead-letter topic (when there is one) with the reason
    /// and its source; retries until the bus takes it or the runtime stops.
    async fn dead_letter(&mut self, record: &Delivered, reason: &str, detail: &str) -> bool {
        self.stats.failures.fetch_add(1, Ordering::SeqCst);
        let Some(topic) = self.options.dlq_topic.clone() else {
            tracing::warn!(offset = record.position.offset, reason, "skipped");
            return true;
        };
        let source = format!(
            "{}/{}/{}",
            record.topic, record.position.partition, record.position.offset
        );
        let mut letter = Record::new(record.key.clone(), record.payload.clone());
        letter.headers.clone_from(&record.headers);
        let letter = letter
            .with_header("sluice.error", format!("{reason}: {detail}"))
            .with_header("sluice.source", source.clone());
        loop {
            match self.bus.publish(&topic, vec![letter.clone()]).await {
                Ok(_) => {
                    self.stats.dead_letters.fetch_add(1, Ordering::SeqCst);
                    if let Some(metrics) = self.partition.metrics() {
                        metrics.dead_letters.with_label_values(&[reason]).inc();
                    }
                    tracing::warn!(%source, reason, %topic, "dead-lettered");
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, %topic, "cannot dead-letter; retrying");
                    let mut stopped = self.stopped.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stopped.wait_for(|stop| *stop) => return false,
                    }
                }
            }
        }
    }

    /// Fires up to `burst` due timers, as the rate budget allows.
    async fn timers(&mut self, now: i64, burst: usize, budget: &mut Budget) -> usize {
        let mut fired = 0;
        while fired < burst && self.partition.next_due().is_some_and(|due| due <= now) {
            if !budget.take(now) {
                break;
            }
            let due = self.partition.next_due().unwrap_or(now);
            self.stats.busy.fetch_add(1, Ordering::SeqCst);
            let started = Instant::now();
            let result = self.partition.fire_next(now).await;
            self.stats.busy.fetch_sub(1, Ordering::SeqCst);
            match result {
                Ok(Some(processed)) => {
                    fired += 1;
                    self.stats.timers.fetch_add(1, Ordering::SeqCst);
                    self.stats
                        .actions
                        .fetch_add(processed.output.actions.len() as u64, Ordering::SeqCst);
                    if let Some(metrics) = self.partition.metrics() {
                        metrics.timers_fired.inc();
                        metrics.processing.observe(started.elapsed().as_secs_f64());
                        let late = now.saturating_sub(due).max(0) as f64 / 1000.0;
                        metrics.timer_lateness.observe(late);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // The timer is still in the store: reload the wheel from there
                    // once the store answers again.
                    self.stats.failures.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(%error, "timer failed; reloading timers from the store");
                    self.partition.reset();
                    break;
                }
            }
        }
        fired
    }
}

/// Whether an error of the per-contact path is worth retrying (the store or the
/// bus is unavailable) rather than dead-lettering the input.
fn retryable(error: &Error) -> bool {
    match error {
        Error::Store(inner) | Error::Bus(inner) => inner.is_retryable(),
        _ => false,
    }
}

/// A token bucket: at most `rate` timers per second, bursts of at most `burst`.
struct Budget {
    per_ms: f64,
    capacity: f64,
    tokens: f64,
    last: i64,
}

impl Budget {
    fn new(rate: u32, burst: usize, now: i64) -> Self {
        let capacity = burst.max(1) as f64;
        Budget {
            per_ms: f64::from(rate.max(1)) / 1000.0,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn take(&mut self, now: i64) -> bool {
        let elapsed = now.saturating_sub(self.last).max(0) as f64;
        // A clock that stepped back (NTP, a test's virtual clock) restarts the
        // reference; keeping the later time would starve the budget until the
        // clock caught up with it again.
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_ms).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod budget_tests {
    use super::Budget;

    #[test]
    fn the_drain_budget_allows_bursts_then_the_rate() {
        let mut budget = Budget::new(1_000, 5, 0);
        assert_eq!((0..10).filter(|_| budget.take(0)).count(), 5);
        assert!(budget.take(1), "one per millisecond at 1000/s");
        assert!(!budget.take(1));
        assert_eq!(
            (0..10).filter(|_| budget.take(100)).count(),
            5,
            "capped at the burst"
        );
    }

    #[test]
    fn a_clock_stepping_back_does_not_starve_the_budget() {
        let mut budget = Budget::new(1_000, 1, 10_000);
        assert!(budget.take(10_000));
        assert!(!budget.take(0), "no time passed going back");
        assert!(budget.take(1), "refills from the new reference");
    }
}
