//! Watches an output topic (the passthrough's output, or `sluice.actions`) and
//! matches each record to the event that caused it, by sequence number.
//!
//! Times are nanoseconds since one [`Instant`] shared with the producer
//! ([`SendTimes`]). Events are grouped in [`Phase`]s (warm-up, maximum rate, fixed
//! rate), each a range of sequence numbers with its own arrival count and
//! event→output latency histogram.

use std::{
    ops::Range,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use rdkafka::{
    Message as _,
    consumer::BaseConsumer,
    message::{BorrowedMessage, Headers as _},
};
use sluice_schemas::{Action, ActionPayload};

use crate::workload::{SEQ_HEADER, Workload, seq_of_header};

/// When each event was sent: nanoseconds since `epoch`, 0 while unsent.
#[derive(Debug)]
pub struct SendTimes {
    epoch: Instant,
    nanos: Vec<AtomicU64>,
}

impl SendTimes {
    /// Room for sequence numbers `0..capacity`.
    pub fn new(epoch: Instant, capacity: u64) -> Self {
        SendTimes {
            epoch,
            nanos: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Nanoseconds from the epoch to `at` (at least 1, so that 0 means unsent).
    pub fn nanos_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Records that event `seq` was sent at `nanos`.
    pub fn set(&self, seq: u64, nanos: u64) {
        if let Some(slot) = usize::try_from(seq).ok().and_then(|i| self.nanos.get(i)) {
            slot.store(nanos, Ordering::Relaxed);
        }
    }

    fn get(&self, seq: u64) -> u64 {
        usize::try_from(seq)
            .ok()
            .and_then(|i| self.nanos.get(i))
            .map_or(0, |slot| slot.load(Ordering::Relaxed))
    }

    /// The sequence numbers there is room for.
    pub fn capacity(&self) -> u64 {
        self.nanos.len() as u64
    }
}

/// How an output record names its event.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The passthrough copies the event's [`SEQ_HEADER`].
    Header,
    /// The engine's action is a `message.send` whose text is the event id.
    ActionText(Workload),
}

impl Matcher {
    fn seq(&self, message: &BorrowedMessage<'_>) -> Option<u64> {
        match self {
            Matcher::Header => {
                let headers = message.headers()?;
                headers
                    .iter()
                    .find(|h| h.key == SEQ_HEADER)
                    .and_then(|h| seq_of_header(h.value?))
            }
            Matcher::ActionText(workload) => {
                let action = Action::decode(message.payload()?).ok()?;
                match &action.payload {
                    ActionPayload::SendMessage(send) => {
                        workload.seq_of_event_id(send.text.as_deref()?)
                    }
                    _ => None,
                }
            }
        }
    }
}

/// One group of events and what became of them.
#[derive(Debug)]
pub struct Phase {
    /// The events' sequence numbers.
    pub seqs: Range<u64>,
    seen: Vec<bool>,
    /// Distinct events whose output arrived.
    pub arrived: u64,
    /// Outputs for an event that already had one.
    pub duplicates: u64,
    /// When the last first output arrived (nanoseconds since the epoch).
    pub last_arrival: u64,
    /// Event→output latency of each first output, in microseconds.
    pub latency: Histogram<u64>,
}

impl Phase {
    fn new(seqs: Range<u64>) -> anyhow::Result<Self> {
        let len = usize::try_from(seqs.end.saturating_sub(seqs.start))?;
        Ok(Phase {
            seqs,
            seen: vec![false; len],
            arrived: 0,
            duplicates: 0,
            last_arrival: 0,
            // 1 µs to 1 hour, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .context("creating a latency histogram")?,
        })
    }

    /// Whether every event of the phase has its output.
    pub fn complete(&self) -> bool {
        self.arrived == self.seqs.end - self.seqs.start
    }
}

#[derive(Debug, Default)]
struct Recorded {
    phases: Vec<Phase>,
    /// Outputs that match no phase (or could not be matched at all).
    strays: u64,
}

/// The running tracker: a thread polling the output topic.
#[derive(Debug)]
pub struct Tracker {
    recorded: Arc<Mutex<Recorded>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tracker {
    /// Starts following `consumer` (see [`crate::kafka::reader`]).
    pub fn start(consumer: BaseConsumer, matcher: Matcher, sent: Arc<SendTimes>) -> Self {
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let recorded = Arc::clone(&recorded);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || follow(&consumer, &matcher, &sent, &recorded, &stop))
        };
        Tracker {
            recorded,
            stop,
            thread: Some(thread),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts counting the outputs of events `seqs`; returns the phase's index.
    /// Add a phase before sending its events.
    pub fn add_phase(&self, seqs: Range<u64>) -> anyhow::Result<usize> {
        let phase = Phase::new(seqs)?;
        let mut recorded = self.lock();
        recorded.phases.push(phase);
        Ok(recorded.phases.len() - 1)
    }

    /// Outputs of phase `index` so far.
    pub fn arrived(&self, index: usize) -> u64 {
        self.lock().phases.get(index).map_or(0, |p| p.arrived)
    }

    /// Outputs that matched no phase.
    pub fn strays(&self) -> u64 {
        self.lock().strays
    }

    /// Waits until phase `index` is complete or `timeout` passed; returns whether it
    /// completed. Calls `check` every 20 ms, and gives up with its error.
    pub fn wait(
        &self,
        index: usize,
        timeout: Duration,
        mut check: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.lock().phases.get(index).is_some_and(Phase::complete) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            check()?;
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `read` on phase `index`.
    pub fn with_phase<T>(&self, index: usize, read: impl FnOnce(&Phase) -> T) -> Option<T> {
        self.lock().phases.get(index).map(read)
    }

    /// Stops the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn follow(
    consumer: &BaseConsumer,
    matcher: &Matcher,
    sent: &SendTimes,
    recorded: &Mutex<Recorded>,
    stop: &AtomicBool,
) {
    let mut batch: Vec<(Option<u64>, Instant)> = Vec::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let mut wait = Duration::from_millis(50);
        while batch.len() < 1024 {
            match consumer.poll(wait) {
                Some(Ok(message)) => batch.push((matcher.seq(&message), Instant::now())),
                // Transient broker errors are retried by librdkafka; keep polling.
                Some(Err(_)) | None => break,
            }
            wait = Duration::ZERO;
        }
        if batch.is_empty() {
            continue;
        }
        let mut recorded = recorded.lock().unwrap_or_else(|p| p.into_inner());
        for (seq, at) in batch.drain(..) {
            record(&mut recorded, seq, sent, sent.nanos_at(at));
        }
    }
}

fn record(recorded: &mut Recorded, seq: Option<u64>, sent: &SendTimes, at: u64) {
    let Some(seq) = seq else {
        recorded.strays += 1;
        return;
    };
    let Some(phase) = recorded.phases.iter_mut().find(|p| p.seqs.contains(&seq)) else {
        recorded.strays += 1;
        return;
    };
    let slot = usize::try_from(seq - phase.seqs.start).unwrap_or(usize::MAX);
    if phase.seen[slot] {
        phase.duplicates += 1;
        return;
    }
    phase.seen[slot] = true;
    phase.arrived += 1;
    phase.last_arrival = phase.last_arrival.max(at);
    let sent_at = sent.get(seq);
    if sent_at != 0 {
        let micros = at.saturating_sub(sent_at) / 1_000;
        phase.latency.saturating_record(micros.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_first_outputs_per_phase_and_their_latency() {
        let epoch = Instant::now();
        let sent = SendTimes::new(epoch, 10);
        let mut recorded = Recorded {
            phases: vec![Phase::new(0..2).unwrap(), Phase::new(2..10).unwrap()],
            strays: 0,
        };
        sent.set(0, 1_000_000);
        sent.set(1, 1_000_000);
        record(&mut recorded, Some(0), &sent, 3_000_000);
        record(&mut recorded, Some(0), &sent, 4_000_000);
        record(&mut recorded, Some(1), &sent, 6_000_000);
        record(&mut recorded, Some(5), &sent, 7_000_000);
        record(&mut recorded, Some(99), &sent, 7_000_000);
        record(&mut recorded, None, &sent, 7_000_000);
        let warm = &recorded.phases[0];
        assert!(warm.complete());
        assert_eq!((warm.arrived, warm.duplicates), (2, 1));
        assert_eq!(warm.last_arrival, 6_000_000);
        assert_eq!(warm.latency.len(), 2);
        assert!(warm.latency.equivalent(warm.latency.max(), 5_000));
        assert!(warm.latency.equivalent(warm.latency.min(), 2_000));
        // Seq 5 arrived but was never sent: counted, no latency.
        assert_eq!(recorded.phases[1].arrived, 1);
        assert_eq!(recorded.phases[1].latency.len(), 0);
        assert_eq!(recorded.strays, 2);
    }
}
