//! One partition's worker: takes its records and due timers in batches of up to
//! [`TimerConfig::batch`](super::TimerConfig) inputs — timers at most half a batch
//! and at a bounded rate, so neither starves the other — and runs each batch
//! through the [`Partition`]. A store or bus that is down holds the partition
//! (retried with backoff, nothing acknowledged); a batch that fails on one input is
//! retried one input at a time, so that only that input is dead-lettered.

use std::{
    collections::VecDeque,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use sluice_infra::{
    bus::{Delivered, EventBus, Position, Record},
    store::{ContactKey, TimerEntry},
};
use sluice_schemas::Event;
use tokio::sync::{mpsc, watch};

use super::{
    BatchInput, Clock, Delivery, Partition, Processed, RuntimeOptions, Stats,
    ownership::{Assignment, Polled, Settlement},
    partition::fired,
    pipeline::{Committed, Committer, DEPTH, Published},
};
use crate::{Error, eval::Input};

/// One partition's worker.
pub(super) struct Worker {
    pub(super) partition: Partition,
    /// How many workers share the partitions (`partition % workers` routes).
    pub(super) workers: i32,
    pub(super) inbox: mpsc::Receiver<Polled>,
    pub(super) acks: mpsc::UnboundedSender<Position>,
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) options: RuntimeOptions,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) stats: Arc<Stats>,
    pub(super) stopped: watch::Receiver<bool>,
    pub(super) assignment: watch::Receiver<Assignment>,
    /// The assignment as this worker last read it.
    pub(super) view: Assignment,
    /// Whether the group assigns this worker's partition here: only then do its
    /// timers fire.
    pub(super) owned: bool,
    /// The generations of this worker's partitions, summed ([`Assignment::epoch`]).
    pub(super) epoch: u64,
    /// Where the worker reports the epoch it has settled, for revocations to wait on.
    pub(super) settlement: Arc<Settlement>,
    /// A record received while idle, for the next batch.
    pub(super) carried: Option<Polled>,
    /// The batches whose commits run in the background while the next ones are
    /// evaluated and published (when actions go out before commits), oldest first.
    pub(super) in_flight: VecDeque<Published>,
    /// Commits the batches in flight, in order (started with the first one).
    pub(super) committer: Option<Committer>,
}

/// How settling the oldest batch in flight ended.
enum Settled {
    /// Durable (or there was none): its inputs are acknowledged.
    Done,
    /// The runtime stopped first: its inputs are not acknowledged.
    Stopped,
    /// Its commit failed for a reason a retry cannot fix: its inputs and those of
    /// every later batch in flight (evaluated on its states) are to be processed
    /// again, one batch at a time, from the store.
    Failed(Vec<(Vec<Delivered>, Vec<TimerEntry>)>),
}

/// One event of a batch.
struct Decoded<'a> {
    record: &'a Delivered,
    event: Event,
    contact: ContactKey,
}

impl Worker {
    /// Runs until the runtime stops (or the consumer hangs up).
    pub(super) async fn run(mut self) {
        let config = self.partition.config();
        let size = config.batch.max(1);
        // Timers take at most half a batch, so live events always get the rest.
        let timer_room = config.burst.min(size.div_ceil(2)).max(1);
        let mut budget = Budget::new(config.rate, config.burst, self.clock.now());
        loop {
            if *self.stopped.borrow() {
                // Finish the batch in hand: its commit, then its acknowledgements.
                self.settle_all().await;
                return;
            }
            if !self.in_flight.is_empty()
                && self.assignment.has_changed().unwrap_or(false)
                && !self.settle_all().await
            {
                return;
            }
            self.follow_assignment();
            if self.in_flight.is_empty() {
                // Nothing taken under an earlier assignment is left undone.
                self.settlement.report(self.settlement_index(), self.epoch);
            }
            let epoch = self.epoch;
            let now = self.clock.now();
            let mut timers = Vec::new();
            if self.owned {
                if let Err(error) = self.partition.refill(now).await {
                    tracing::warn!(%error, "cannot load timers; retrying");
                }
                while timers.len() < timer_room
                    && self.partition.next_due().is_some_and(|due| due <= now)
                    && budget.take(now)
                {
                    match self.partition.pop_due(now) {
                        Some(timer) => timers.push(timer),
                        None => break,
                    }
                }
                self.record_pending();
            }
            let mut polled = Vec::new();
            let room = size.saturating_sub(timers.len()).max(1);
            while polled.len() < room {
                let Some(next) = self.carried.take().or_else(|| self.inbox.try_recv().ok()) else {
                    break;
                };
                if self.current(&next) {
                    polled.push(next);
                }
            }
            if self.epoch != epoch {
                // The partition changed hands while the batch was taken: its timers
                // are reloaded from the store, and records polled before are dropped.
                timers.clear();
                polled.retain(|p| self.current(p));
            }
            let records: Vec<Delivered> = polled.into_iter().map(|p| p.record).collect();
            if !records.is_empty() || !timers.is_empty() {
                if !self.batch(records, timers).await {
                    return;
                }
                continue;
            }
            if !self.in_flight.is_empty() {
                // Nothing new: settle the oldest commit when it finishes, unless a
                // record arrives first — it is not held up behind the commits.
                if !self.settle_oldest_or_next_record().await {
                    return;
                }
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
                    Some(record) => self.carried = Some(record),
                    None => return,
                },
                _ = tokio::time::sleep(Duration::from_millis(wake.unsigned_abs())) => {}
                _ = stopped.changed() => {}
                _ = assignment.changed() => {}
            }
        }
    }

    /// Takes the group's assignment: timers fire only for an owned partition; timers
    /// and cached states are reloaded from the store whenever ownership changes.
    fn follow_assignment(&mut self) {
        {
            let current = self.assignment.borrow_and_update();
            if *current == self.view {
                return;
            }
            self.view = current.clone();
        }
        let index = self.partition.index();
        let workers = self.workers.max(1);
        let serves = |p: i32| p.rem_euclid(workers) == index;
        let owned = self.view.partitions().iter().any(|&p| serves(p));
        let epoch = self.view.epoch(serves);
        if owned != self.owned || epoch != self.epoch {
            tracing::info!(
                owned,
                epoch,
                "partition ownership changed; timers and states reloaded"
            );
            self.owned = owned;
            self.epoch = epoch;
            self.partition.reset();
            self.record_pending();
        }
    }

    fn settlement_index(&self) -> usize {
        usize::try_from(self.partition.index()).unwrap_or(usize::MAX)
    }

    /// Whether the record's partition is still in the generation it was polled in
    /// (the assignment is read again first if it changed); counts the records dropped.
    fn current(&mut self, polled: &Polled) -> bool {
        let partition = polled.record.position.partition;
        if self.assignment.has_changed().unwrap_or(false)
            || polled.generation > self.view.generation(partition)
        {
            self.follow_assignment();
        }
        if polled.generation < self.view.generation(partition) {
            tracing::debug!(
                partition,
                offset = polled.record.position.offset,
                "dropping a record polled before the partition changed hands"
            );
            self.stats.stale.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        true
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

    /// Processes a batch of records and due timers; returns `false` when the runtime
    /// stopped before the batch's effects were durable (its records are then not
    /// acknowledged, and the group delivers them again).
    ///
    /// When actions go out before commits, the batch is evaluated and its actions
    /// sent while earlier batches' actions and commits are still in flight (at most
    /// [`DEPTH`] batches), and its own commit starts in the background after theirs,
    /// once its actions are acknowledged (see [`pipeline`]). A contact's next batch
    /// reads the states those commits write, not the store's. Anything unusual — an
    /// error, a change of hands — first waits for the running commits, then takes
    /// the one-batch-at-a-time path.
    async fn batch(&mut self, records: Vec<Delivered>, timers: Vec<TimerEntry>) -> bool {
        self.stats.busy.fetch_add(1, Ordering::SeqCst);
        let done = self.batch_inner(records, timers).await;
        self.stats.busy.fetch_sub(1, Ordering::SeqCst);
        done
    }

    async fn batch_inner(&mut self, records: Vec<Delivered>, timers: Vec<TimerEntry>) -> bool {
        let Some(events) = self.decode(&records).await else {
            return false;
        };
        if self.partition.pipelines() {
            let started = Instant::now();
            let now = self.clock.now();
            let staged = match self.partition.stage(&inputs(&events, &timers, now)).await {
                Ok((processed, mut staged)) => match self.partition.send(&mut staged).await {
                    Ok(delivery) => Some((processed, staged, delivery)),
                    Err(error) => {
                        tracing::warn!(%error, "cannot send a batch's actions; retrying it");
                        None
                    }
                },
                Err(error) => {
                    tracing::debug!(%error, "batch failed; retrying it after the running commits");
                    None
                }
            };
            drop(events);
            if let Some((processed, staged, delivery)) = staged {
                return self
                    .commit_in_background(
                        Published {
                            staged: Arc::new(staged),
                            records,
                            timers,
                            processed,
                            started,
                            now,
                        },
                        delivery,
                    )
                    .await;
            }
            if !self.settle_all().await {
                return false;
            }
            return self.process_records(&records, &timers).await;
        }
        let done = self.process(&events, &timers).await;
        drop(events);
        if done {
            self.acknowledge(&records);
        }
        done
    }

    /// Queues a staged batch's commit after the commits in flight, to start once
    /// its actions are delivered, first settling the batches whose commits
    /// finished, and the oldest one while [`DEPTH`] batches are in flight.
    async fn commit_in_background(&mut self, batch: Published, delivery: Delivery) -> bool {
        loop {
            let ready = match self.committer.as_mut() {
                Some(committer) if !self.in_flight.is_empty() => committer.ready(),
                _ => None,
            };
            let settled = match ready {
                Some(outcome) => self.settle_oldest_with(Some(outcome)),
                None if self.in_flight.len() >= DEPTH => self.settle_oldest().await,
                None => break,
            };
            match settled {
                Settled::Done => {}
                Settled::Stopped => return false,
                Settled::Failed(mut redo) => {
                    // This batch was evaluated on the failed ones' states too.
                    redo.push((batch.records, batch.timers));
                    return self.redo(redo).await;
                }
            }
        }
        self.partition.push_in_flight(Arc::clone(&batch.staged));
        let committer = self.committer.get_or_insert_with(|| {
            Committer::start(self.partition.processor().clone(), self.stopped.clone())
        });
        committer.push(Arc::clone(&batch.staged), delivery);
        self.in_flight.push_back(batch);
        true
    }

    /// Waits for the oldest batch in flight and settles it.
    async fn settle_oldest(&mut self) -> Settled {
        let outcome = match self.committer.as_mut() {
            Some(committer) if !self.in_flight.is_empty() => committer.next().await,
            _ => None,
        };
        self.settle_oldest_with(outcome)
    }

    /// Settles the oldest batch in flight given its commit's outcome (`None`: not
    /// committed, as an earlier commit did not succeed): once its commit succeeded,
    /// its states join the cache and its inputs are acknowledged.
    fn settle_oldest_with(&mut self, outcome: Option<Committed>) -> Settled {
        let Some(batch) = self.in_flight.pop_front() else {
            return Settled::Done;
        };
        match outcome {
            Some(Committed::Done) => {
                self.partition.committed(batch.staged);
                self.acknowledge(&batch.records);
                self.record(&batch.processed, &batch.timers, batch.started, batch.now);
                Settled::Done
            }
            Some(Committed::Stopped) => {
                self.in_flight.clear();
                self.committer = None;
                Settled::Stopped
            }
            Some(Committed::Failed(_) | Committed::Undelivered(_)) | None => {
                match &outcome {
                    Some(Committed::Failed(error)) => tracing::warn!(
                        %error,
                        "commit failed; processing the batches in flight again"
                    ),
                    Some(Committed::Undelivered(error)) => tracing::warn!(
                        %error,
                        "actions not delivered; processing the batches in flight again"
                    ),
                    _ => {}
                }
                let mut redo = vec![(batch.records, batch.timers)];
                redo.extend(self.in_flight.drain(..).map(|b| (b.records, b.timers)));
                self.committer = None;
                Settled::Failed(redo)
            }
        }
    }

    /// Settles the oldest batch in flight, processing the batches again when its
    /// commit failed; `false` when the runtime stopped first.
    async fn settle_oldest_or_redo(&mut self) -> bool {
        match self.settle_oldest().await {
            Settled::Done => true,
            Settled::Stopped => false,
            Settled::Failed(redo) => self.redo(redo).await,
        }
    }

    /// Waits for the oldest batch in flight to settle or for the next record
    /// (carried to the next batch), whichever comes first; `false` when the runtime
    /// stopped first, or the consumer hung up.
    async fn settle_oldest_or_next_record(&mut self) -> bool {
        let Some(committer) = self.committer.as_mut() else {
            return self.settle_oldest_or_redo().await;
        };
        let next = tokio::select! {
            biased;
            outcome = committer.next() => Ok(outcome),
            record = self.inbox.recv() => Err(record),
        };
        match next {
            Ok(outcome) => match self.settle_oldest_with(outcome) {
                Settled::Done => true,
                Settled::Stopped => false,
                Settled::Failed(redo) => self.redo(redo).await,
            },
            Err(Some(record)) => {
                self.carried = Some(record);
                true
            }
            Err(None) => {
                // The consumer hung up: finish what is in hand.
                self.settle_all().await;
                false
            }
        }
    }

    /// Settles every batch in flight; `false` when the runtime stopped first.
    async fn settle_all(&mut self) -> bool {
        while !self.in_flight.is_empty() {
            if !self.settle_oldest_or_redo().await {
                return false;
            }
        }
        true
    }

    /// Processes again, one batch at a time and from the store, batches whose
    /// commits failed (their actions went out already: the same ones go out again).
    async fn redo(&mut self, batches: Vec<(Vec<Delivered>, Vec<TimerEntry>)>) -> bool {
        self.partition.reset();
        for (records, timers) in &batches {
            if !self.process_records(records, timers).await {
                return false;
            }
        }
        true
    }

    /// Decodes, dead-letters and processes `records` and `timers` one batch at a
    /// time (no background commit), acknowledging them when done.
    async fn process_records(&mut self, records: &[Delivered], timers: &[TimerEntry]) -> bool {
        let events = decode_again(records);
        let done = self.process(&events, timers).await;
        if done {
            self.acknowledge(records);
        }
        done
    }

    fn acknowledge(&self, records: &[Delivered]) {
        for record in records {
            let _ = self.acks.send(record.position);
        }
        self.stats
            .events
            .fetch_add(records.len() as u64, Ordering::SeqCst);
    }

    /// Decodes a batch's records; an undecodable one has no other effect: it goes
    /// to the dead-letter topic now, and is acknowledged with the batch. `None` when
    /// the runtime stopped first.
    async fn decode<'a>(&mut self, records: &'a [Delivered]) -> Option<Vec<Decoded<'a>>> {
        let mut events = Vec::with_capacity(records.len());
        for record in records {
            match Event::decode(&record.payload) {
                Ok(event) => events.push(Decoded {
                    record,
                    contact: ContactKey::new(event.tenant.as_str(), event.contact_id.as_str()),
                    event,
                }),
                Err(error) => {
                    tracing::warn!(offset = record.position.offset, %error, "undecodable event");
                    if !self
                        .dead_letter(record, "undecodable", &error.to_string())
                        .await
                    {
                        return None;
                    }
                }
            }
        }
        if let Some(metrics) = self.partition.metrics() {
            for decoded in &events {
                metrics
                    .events
                    .with_label_values(&[decoded.event.event_type.as_str()])
                    .inc();
            }
        }
        Some(events)
    }

    /// Processes a batch's events and timers and makes their effects durable before
    /// returning (retried while the store or bus is unavailable; one input at a time
    /// when one of them cannot be processed); `false` when the runtime stopped first.
    async fn process(&mut self, events: &[Decoded<'_>], timers: &[TimerEntry]) -> bool {
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let now = self.clock.now();
            let inputs = inputs(events, timers, now);
            match self.partition.process(&inputs).await {
                Ok(processed) => {
                    self.record(&processed, timers, started, now);
                    return true;
                }
                Err(error) if retryable(&error) => {
                    // The store or the bus is down: hold this partition (nothing
                    // after this batch is processed or committed) and retry.
                    tracing::warn!(inputs = inputs.len(), %error, ?backoff, "batch failed; retrying");
                    if !self.pause(backoff).await {
                        return false;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) if inputs.len() > 1 => {
                    tracing::warn!(
                        inputs = inputs.len(),
                        %error,
                        "batch failed; processing its inputs one by one"
                    );
                    return self.one_by_one(events, timers).await;
                }
                Err(error) => return self.unprocessable(events, timers, &error).await,
            }
        }
    }

    /// Processes a failed batch's inputs one at a time, so that only the input that
    /// cannot be processed goes to the dead-letter topic.
    async fn one_by_one(&mut self, events: &[Decoded<'_>], timers: &[TimerEntry]) -> bool {
        let singles = events
            .iter()
            .map(|e| (std::slice::from_ref(e), &[][..]))
            .chain(timers.iter().map(|t| (&[][..], std::slice::from_ref(t))));
        for (events, timers) in singles {
            let mut backoff = Duration::from_millis(100);
            loop {
                let started = Instant::now();
                let now = self.clock.now();
                match self.partition.process(&inputs(events, timers, now)).await {
                    Ok(processed) => {
                        self.record(&processed, timers, started, now);
                        break;
                    }
                    Err(error) if retryable(&error) => {
                        tracing::warn!(%error, ?backoff, "input failed; retrying");
                        if !self.pause(backoff).await {
                            return false;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    Err(error) => {
                        if !self.unprocessable(events, timers, &error).await {
                            return false;
                        }
                        break;
                    }
                }
            }
        }
        true
    }

    /// Gives up on one input: an event goes to the dead-letter topic; a timer stays
    /// in the store, and the wheel is reloaded from there.
    async fn unprocessable(
        &mut self,
        events: &[Decoded<'_>],
        timers: &[TimerEntry],
        error: &Error,
    ) -> bool {
        self.stats.failures.fetch_add(1, Ordering::SeqCst);
        for decoded in events {
            tracing::error!(event = decoded.event.id, %error, "event failed");
            if !self
                .dead_letter(decoded.record, "unprocessable", &error.to_string())
                .await
            {
                return false;
            }
        }
        if !timers.is_empty() {
            tracing::warn!(%error, "timer failed; reloading timers from the store");
            self.partition.reset();
        }
        true
    }

    /// Waits `backoff` before a retry; `false` when the runtime stops meanwhile.
    async fn pause(&self, backoff: Duration) -> bool {
        let mut stopped = self.stopped.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => true,
            _ = stopped.wait_for(|stop| *stop) => false,
        }
    }

    /// Counts a processed batch: actions, fired timers (the inputs after the
    /// events), latency per input, and timer lateness.
    fn record(&self, processed: &[Processed], timers: &[TimerEntry], started: Instant, now: i64) {
        let actions: usize = processed.iter().map(|p| p.output.actions.len()).sum();
        self.stats
            .actions
            .fetch_add(actions as u64, Ordering::SeqCst);
        self.stats
            .timers
            .fetch_add(timers.len() as u64, Ordering::SeqCst);
        if let Some(metrics) = self.partition.metrics() {
            let elapsed = started.elapsed().as_secs_f64();
            for _ in processed {
                metrics.processing.observe(elapsed);
            }
            let fired: u64 = processed
                .iter()
                .map(|p| u64::from(p.output.timers_fired))
                .sum();
            metrics.timers_fired.inc_by(fired);
            for timer in timers {
                let late = now.saturating_sub(timer.due_at).max(0) as f64 / 1000.0;
                metrics.timer_lateness.observe(late);
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
}

/// Decodes records already dead-lettered and counted once (a batch processed
/// again): the undecodable ones are skipped.
fn decode_again(records: &[Delivered]) -> Vec<Decoded<'_>> {
    records
        .iter()
        .filter_map(|record| {
            let event = Event::decode(&record.payload).ok()?;
            Some(Decoded {
                record,
                contact: ContactKey::new(event.tenant.as_str(), event.contact_id.as_str()),
                event,
            })
        })
        .collect()
}

/// A batch's inputs at `now`: its events, then its timers.
fn inputs<'a>(
    events: &'a [Decoded<'_>],
    timers: &'a [TimerEntry],
    now: i64,
) -> Vec<BatchInput<'a>> {
    events
        .iter()
        .map(|e| BatchInput {
            contact: &e.contact,
            input: Input::Event(&e.event),
            now,
        })
        .chain(timers.iter().map(|t| BatchInput {
            contact: &t.contact,
            input: Input::Timer(fired(t)),
            now,
        }))
        .collect()
}

/// Whether an error of the per-contact path is worth retrying (the store or the
/// bus is unavailable) rather than dead-lettering the input.
pub(super) fn retryable(error: &Error) -> bool {
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
mod tests {
    use sluice_infra::{
        bus::{MemoryBus, Position},
        store::MemoryStore,
    };

    use super::*;
    use crate::{
        eval::FlowSet,
        runtime::{Processor, TimerConfig, WallClock},
    };

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

    fn polled(generation: u64, offset: i64) -> Polled {
        Polled {
            generation,
            record: Delivered {
                topic: "events".into(),
                position: Position {
                    partition: 0,
                    offset,
                },
                key: String::new(),
                payload: Vec::new(),
                headers: Vec::new(),
            },
        }
    }

    #[tokio::test]
    async fn a_change_of_hands_drops_older_records_and_the_cached_states() {
        let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::new(1));
        let processor = Processor::new(
            Arc::new(FlowSet::new()),
            Arc::new(MemoryStore::default()),
            Arc::clone(&bus),
        );
        let (_inbox_tx, inbox) = mpsc::channel(1);
        let (acks, _acked) = mpsc::unbounded_channel();
        let (_stop, stopped) = watch::channel(false);
        let (assign, assignment) = watch::channel(Assignment::default());
        let mut worker = Worker {
            partition: Partition::new(0, 1, processor, TimerConfig::default()),
            workers: 1,
            inbox,
            acks,
            bus,
            options: RuntimeOptions::default(),
            clock: Arc::new(WallClock),
            stats: Arc::new(Stats::default()),
            stopped,
            assignment,
            view: Assignment::default(),
            owned: false,
            epoch: 0,
            settlement: Arc::new(Settlement::new(1)),
            carried: None,
            in_flight: VecDeque::new(),
            committer: None,
        };
        let mut group = Assignment::default();
        group.update(vec![0]);
        assign.send_replace(group.clone());
        let before = polled(group.generation(0), 7);
        assert!(
            worker.current(&before),
            "polled under the current assignment"
        );
        assert!(worker.owned);

        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "e1", "tenant": "acme", "contact_id": "c",
            "type": "contact.created", "occurred_at": 0,
        }))
        .unwrap();
        worker.partition.handle_event(&event, 0).await.unwrap();
        assert_eq!(worker.partition.cached(), 1);

        // Revoked and assigned back before the worker looked: a new generation.
        group.update(Vec::new());
        group.update(vec![0]);
        assign.send_replace(group.clone());
        assert!(
            !worker.current(&before),
            "polled before the change of hands"
        );
        assert_eq!(worker.stats.stale.load(Ordering::SeqCst), 1);
        assert_eq!(worker.partition.cached(), 0, "states are read again");
        assert!(worker.current(&polled(group.generation(0), 7)));
        assert!(worker.owned);

        // Revoked: no timers fire here any more.
        group.update(Vec::new());
        assign.send_replace(group);
        worker.follow_assignment();
        assert!(!worker.owned);
    }
}
