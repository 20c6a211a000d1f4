//! One partition of the embedded runtime: its contacts' inputs in order and its
//! share of the timer service — the near-term timers in a [`TimerWheel`], loaded
//! window by window from the durable [`TimerStore`](sluice_infra::store::TimerStore).
//!
//! Timers are fed through the same per-contact path as events ([`Processor`]),
//! in batches with them. A popped timer is checked against the store (and its
//! batch's earlier changes) first, so a timer that was cancelled, moved or already
//! fired never fires (again). The partition also keeps its contacts' recently
//! used states ([`StateCache`]), valid while it owns the partition.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use sluice_infra::{
    bus::partition_for,
    store::{ContactKey, TimerEntry},
};
use sluice_schemas::Event;

use super::{
    BatchInput, Staged, StateCache,
    contact::{Delivery, Processed, Processor},
    wheel::TimerWheel,
};
use crate::{
    Error, Result,
    eval::{Input, TimerFired, TimerKey},
};

/// How a partition batches its inputs, caches states, and pages and paces timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// Timers due within this much of now are held in memory.
    pub horizon: Duration,
    /// Timers read from the store per page.
    pub page: usize,
    /// At most this many due timers fire per turn before the partition takes live
    /// events again, so a backlog after downtime cannot starve live traffic.
    pub burst: usize,
    /// At most this many timers fire per second per partition while draining.
    pub rate: u32,
    /// At most this many inputs (events and due timers) are processed as one batch.
    pub batch: usize,
    /// Contact states cached per partition (0: none).
    pub cache: usize,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            horizon: Duration::from_secs(60),
            page: 4096,
            burst: 64,
            rate: 2_000,
            batch: 512,
            cache: super::cache::DEFAULT_CAPACITY,
        }
    }
}

/// One partition's contacts: events in order, and their timers.
#[derive(Debug)]
pub struct Partition {
    index: i32,
    count: i32,
    processor: Processor,
    config: TimerConfig,
    wheel: TimerWheel,
    /// Every pending timer of this partition due before this is in the wheel.
    loaded_until: i64,
    /// The last timer read from the store: everything up to it is in the wheel.
    cursor: Option<TimerEntry>,
    cache: StateCache,
    /// The batches whose commits have not finished, oldest first
    /// ([`stage`](Self::stage), [`push_in_flight`](Self::push_in_flight),
    /// [`committed`](Self::committed)): later batches read their states from here.
    in_flight: VecDeque<Arc<Staged>>,
}

/// The input of a timer that came due.
pub(crate) fn fired(timer: &TimerEntry) -> TimerFired {
    TimerFired {
        key: TimerKey {
            run: timer.run,
            token: timer.token,
        },
        due_at: timer.due_at,
    }
}

impl Partition {
    /// Partition `index` of `count`. Its wheel fills on the first [`Partition::load`].
    pub fn new(index: i32, count: i32, processor: Processor, config: TimerConfig) -> Self {
        Partition {
            index,
            count,
            processor,
            config,
            wheel: TimerWheel::default(),
            loaded_until: i64::MIN,
            cursor: None,
            cache: StateCache::new(config.cache),
            in_flight: VecDeque::new(),
        }
    }

    fn owns(&self, contact: &ContactKey) -> bool {
        partition_for(contact.to_string().as_bytes(), self.count) == self.index
    }

    fn loaded(&self, timer: &TimerEntry) -> bool {
        timer.due_at < self.loaded_until || self.cursor.as_ref().is_some_and(|c| timer <= c)
    }

    fn remember(&mut self, processed: &Processed) {
        for timer in &processed.timers_set {
            if self.loaded(timer) {
                self.wheel.insert(timer);
            }
        }
    }

    /// Processes a batch of this partition's inputs, in order, with one round of
    /// store and bus I/O ([`Processor::process_batch`]), through the state cache.
    pub async fn process(&mut self, inputs: &[BatchInput<'_>]) -> Result<Vec<Processed>> {
        let processed = self
            .processor
            .process_batch(&mut self.cache, inputs)
            .await?;
        for one in &processed {
            self.remember(one);
        }
        Ok(processed)
    }

    /// Processes an event of one of this partition's contacts at `now` (a batch of one).
    pub async fn handle_event(&mut self, event: &Event, now: i64) -> Result<Processed> {
        let contact = ContactKey::new(event.tenant.as_str(), event.contact_id.as_str());
        let input = BatchInput {
            contact: &contact,
            input: Input::Event(event),
            now,
        };
        Ok(self.process(&[input]).await?.pop().unwrap_or_default())
    }

    /// Reads at most `pages` pages of pending timers due before `until` into the
    /// wheel. Returns whether everything due before `until` is loaded.
    pub async fn load(&mut self, until: i64, pages: usize) -> Result<bool> {
        for _ in 0..pages {
            if self.loaded_until >= until {
                return Ok(true);
            }
            let page = self
                .processor
                .store()
                .due_in(
                    self.index,
                    self.count,
                    self.cursor.as_ref(),
                    until,
                    self.config.page,
                )
                .await
                .map_err(Error::Store)?;
            let full = page.len() >= self.config.page;
            for timer in &page {
                if self.owns(&timer.contact) {
                    self.wheel.insert(timer);
                }
            }
            if let Some(last) = page.into_iter().last() {
                self.cursor = Some(last);
            }
            if !full {
                // Timers set by batches whose commits have not landed yet are not in
                // the store's page; the wheel takes them from the batches.
                let from = self.loaded_until;
                let staged: Vec<TimerEntry> = self
                    .in_flight
                    .iter()
                    .flat_map(|b| b.changes.set.iter())
                    .filter(|t| t.due_at >= from && t.due_at < until)
                    .cloned()
                    .collect();
                for timer in &staged {
                    if self.owns(&timer.contact) {
                        self.wheel.insert(timer);
                    }
                }
                self.loaded_until = until;
            }
        }
        Ok(self.loaded_until >= until)
    }

    /// Loads the window the horizon asks for at `now` (a bounded number of pages).
    pub async fn refill(&mut self, now: i64) -> Result<bool> {
        let horizon = i64::try_from(self.config.horizon.as_millis()).unwrap_or(i64::MAX);
        if self.loaded_until > now.saturating_add(horizon / 2) {
            return Ok(true);
        }
        self.load(now.saturating_add(horizon), 4).await
    }

    /// When the earliest timer in memory is due.
    pub fn next_due(&self) -> Option<i64> {
        self.wheel.next_due()
    }

    /// Until when the wheel is known to be complete.
    pub fn loaded_until(&self) -> i64 {
        self.loaded_until
    }

    /// Takes the earliest timer out of memory if it is due at `now`, for a batch.
    pub fn pop_due(&mut self, now: i64) -> Option<TimerEntry> {
        self.wheel.pop_due(now)
    }

    /// Fires the earliest timer if it is due at `now`, through the contact's path
    /// (a batch of one). `Ok(None)` when none is due; a popped timer that is no
    /// longer pending is skipped (and reported as `Some` with an empty output).
    pub async fn fire_next(&mut self, now: i64) -> Result<Option<Processed>> {
        let Some(timer) = self.wheel.pop_due(now) else {
            return Ok(None);
        };
        let input = BatchInput {
            contact: &timer.contact,
            input: Input::Timer(fired(&timer)),
            now,
        };
        Ok(self.process(&[input]).await?.pop())
    }

    /// Evaluates a batch on top of the batches whose commits have not finished, if
    /// any, without publishing or committing it (see [`Processor::stage`]); the
    /// timers it sets join the wheel.
    pub async fn stage(&mut self, inputs: &[BatchInput<'_>]) -> Result<(Vec<Processed>, Staged)> {
        let before: &[Arc<Staged>] = self.in_flight.make_contiguous();
        let (processed, staged) = self
            .processor
            .stage(&mut self.cache, before, inputs)
            .await?;
        for one in &processed {
            self.remember(one);
        }
        Ok((processed, staged))
    }

    /// Hands a staged batch's actions to the bus (taking them out of it), in order
    /// after the batches sent before; the [`Delivery`] resolves once they are
    /// acknowledged.
    pub async fn send(&self, staged: &mut Staged) -> Result<Delivery> {
        let records = std::mem::take(&mut staged.records);
        let types = std::mem::take(&mut staged.types);
        self.processor.send(records, types).await
    }

    /// Commits staged batches' states and timer changes together, as the
    /// background commits do with the batches that queued up: each contact's last
    /// state, the timer changes netted across the batches in order.
    pub async fn commit(&self, group: &[Arc<Staged>]) -> Result<()> {
        let (states, changes) = super::pipeline::merge(group);
        self.processor.commit(&states, &changes).await
    }

    /// Records a staged batch whose commit is starting: until it is
    /// [`committed`](Self::committed) (or the partition [`reset`](Self::reset)),
    /// later batches are staged on top of it.
    pub fn push_in_flight(&mut self, staged: Arc<Staged>) {
        self.in_flight.push_back(staged);
    }

    /// A batch in flight is committed: when it is the oldest one the partition holds
    /// (and not one from before a [`reset`](Self::reset)), its states join the cache.
    pub fn committed(&mut self, staged: Arc<Staged>) {
        if !self
            .in_flight
            .front()
            .is_some_and(|oldest| Arc::ptr_eq(oldest, &staged))
        {
            return;
        }
        self.in_flight.pop_front();
        match Arc::try_unwrap(staged) {
            Ok(staged) => staged.into_cache(&mut self.cache),
            Err(shared) => {
                for (key, cached) in shared.states_after() {
                    self.cache.put(key.clone(), cached.clone());
                }
            }
        }
    }

    /// The processor, to commit staged batches in the background.
    pub fn processor(&self) -> &Processor {
        &self.processor
    }

    /// Whether batches may be evaluated while earlier ones commit: only when
    /// actions go out before commits (a replaying bus), since a batch's actions are
    /// published before the commits of the batches it was evaluated on.
    pub fn pipelines(&self) -> bool {
        self.processor.actions_first
    }

    /// Forgets the timers and the states in memory (the cache, and the batches whose
    /// commits have not finished), so that they are read from the store again: after
    /// the partition was revoked and assigned back, another replica may have changed
    /// them; after a background commit failed, part of it may be missing.
    pub fn reset(&mut self) {
        self.wheel = TimerWheel::default();
        self.loaded_until = i64::MIN;
        self.cursor = None;
        self.cache.clear();
        self.in_flight.clear();
    }

    /// Contact states held in the cache.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The partition's number.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The metrics its processor records on, if any.
    pub fn metrics(&self) -> Option<&super::EngineMetrics> {
        self.processor.metrics()
    }

    /// How timers are paged and paced.
    pub fn config(&self) -> TimerConfig {
        self.config
    }

    /// Timers held in memory.
    pub fn in_memory(&self) -> usize {
        self.wheel.len()
    }
}
