//! The embedded runtime's moving parts on a wall clock: one consumer of
//! `sluice.events` that hands each record to its partition's worker, and one
//! worker task per partition — events of one contact strictly in order,
//! partitions in parallel, due timers interleaved with live events at a bounded
//! rate.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use sluice_infra::bus::{Delivered, EventBus, Position, Subscription, topics};
use sluice_schemas::Event;
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tracing::Instrument;

use super::{Clock, Partition};
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
    /// Workers in the middle of an input right now.
    pub busy: AtomicUsize,
}

/// The running embedded runtime.
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
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let (acks, acked) = mpsc::unbounded_channel();
        let mut senders = Vec::with_capacity(partitions.len());
        for (index, partition) in partitions.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel(1024);
            senders.push(tx);
            let worker = Worker {
                partition,
                inbox: rx,
                acks: acks.clone(),
                clock: Arc::clone(&clock),
                stats: Arc::clone(&stats),
                stopped: stopped.clone(),
            };
            tasks.spawn(
                worker
                    .run()
                    .instrument(tracing::info_span!("partition", partition = index)),
            );
        }
        let subscription = bus
            .subscribe(group, &[topics::EVENTS])
            .await
            .map_err(Error::Bus)?;
        let consumer = Consumer {
            subscription,
            senders,
            acked,
            stopped,
        };
        tasks.spawn(consumer.run().instrument(tracing::info_span!("consumer")));
        Ok(Runtime { stats, stop, tasks })
    }

    /// The runtime's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stops consuming, lets every worker finish the input in hand, and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Reads `sluice.events` and routes each record to its partition's worker;
/// commits offsets once the workers report them processed.
struct Consumer {
    subscription: Box<dyn Subscription>,
    senders: Vec<mpsc::Sender<Delivered>>,
    acked: mpsc::UnboundedReceiver<Position>,
    stopped: watch::Receiver<bool>,
}

impl Consumer {
    async fn run(mut self) {
        while !*self.stopped.borrow() {
            while let Ok(position) = self.acked.try_recv() {
                if let Err(error) = self.subscription.commit(topics::EVENTS, position) {
                    tracing::warn!(%error, "cannot commit {}", topics::EVENTS);
                }
            }
            let batch = match self.subscription.poll(512, Duration::from_millis(50)).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "cannot poll {}; retrying", topics::EVENTS);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            for record in batch {
                let index = usize::try_from(record.position.partition).unwrap_or(usize::MAX);
                let Some(sender) = self.senders.get(index % self.senders.len().max(1)) else {
                    continue;
                };
                if sender.send(record).await.is_err() {
                    return;
                }
            }
        }
        let _ = self.subscription.close().await;
    }
}

/// One partition's worker.
struct Worker {
    partition: Partition,
    inbox: mpsc::Receiver<Delivered>,
    acks: mpsc::UnboundedSender<Position>,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    stopped: watch::Receiver<bool>,
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
                self.event(record).await;
                events += 1;
            }
            let now = self.clock.now();
            if let Err(error) = self.partition.refill(now).await {
                tracing::warn!(%error, "cannot load timers; retrying");
            }
            let fired = self.timers(now, config.burst, &mut budget).await;
            if events > 0 || fired > 0 {
                continue;
            }
            // Idle: sleep until the next timer, the next window, an event or stop.
            let wake = self
                .partition
                .next_due()
                .unwrap_or(i64::MAX)
                .min(self.partition.loaded_until())
                .saturating_sub(now)
                .clamp(1, 1_000);
            let mut stopped = self.stopped.clone();
            tokio::select! {
                record = self.inbox.recv() => match record {
                    Some(record) => self.event(record).await,
                    None => return,
                },
                _ = tokio::time::sleep(Duration::from_millis(wake.unsigned_abs())) => {}
                _ = stopped.changed() => {}
            }
        }
    }

    async fn event(&mut self, record: Delivered) {
        self.stats.busy.fetch_add(1, Ordering::SeqCst);
        let position = record.position;
        match Event::decode(&record.payload) {
            Ok(event) => {
                let now = self.clock.now();
                match self.partition.handle_event(&event, now).await {
                    Ok(processed) => {
                        self.stats
                            .actions
                            .fetch_add(processed.output.actions.len() as u64, Ordering::SeqCst);
                    }
                    Err(error) => {
                        self.stats.failures.fetch_add(1, Ordering::SeqCst);
                        tracing::error!(event = event.id, %error, "event failed; skipped");
                    }
                }
            }
            Err(error) => {
                self.stats.failures.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(offset = position.offset, %error, "undecodable event; skipped");
            }
        }
        let _ = self.acks.send(position);
        self.stats.events.fetch_add(1, Ordering::SeqCst);
        self.stats.busy.fetch_sub(1, Ordering::SeqCst);
    }

    /// Fires up to `burst` due timers, as the rate budget allows.
    async fn timers(&mut self, now: i64, burst: usize, budget: &mut Budget) -> usize {
        let mut fired = 0;
        while fired < burst && self.partition.next_due().is_some_and(|due| due <= now) {
            if !budget.take(now) {
                break;
            }
            self.stats.busy.fetch_add(1, Ordering::SeqCst);
            let result = self.partition.fire_next(now).await;
            self.stats.busy.fetch_sub(1, Ordering::SeqCst);
            match result {
                Ok(Some(processed)) => {
                    fired += 1;
                    self.stats.timers.fetch_add(1, Ordering::SeqCst);
                    self.stats
                        .actions
                        .fetch_add(processed.output.actions.len() as u64, Ordering::SeqCst);
                }
                Ok(None) => break,
                Err(error) => {
                    fired += 1;
                    self.stats.failures.fetch_add(1, Ordering::SeqCst);
                    tracing::error!(%error, "timer failed; skipped");
                }
            }
        }
        fired
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
        self.last = self.last.max(now);
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
}
