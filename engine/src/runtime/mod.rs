//! The runtime flows run on: embedded (`sluice dev`, `sluice flow test`) and, with
//! Kafka and CQL behind the same traits, distributed ([`crate::service`]).
//!
//! - An in-process bus partitioned by contact like Kafka (`MemoryBus`); one
//!   [`Runtime`] consumer routes `sluice.events` to one worker per partition, so
//!   a contact's events are processed strictly in order and partitions in parallel.
//! - Each input — an event, or a timer that came due — takes the same per-contact
//!   path ([`Processor`]): load the contact's state, [`evaluate`](crate::eval::evaluate),
//!   then commit the new state and the timer changes together and publish the
//!   actions to `sluice.actions`. A worker takes its ready inputs in batches
//!   ([`TimerConfig::batch`]): one load of the batch's contacts (those not in the
//!   partition's [`StateCache`]), one publish, one commit of states and netted
//!   timer changes, then the offsets ([`Processor::process_batch`]).
//! - The timer service has two tiers: every pending timer is durable in the
//!   [`TimerStore`](sluice_infra::store::TimerStore) (so a restart resumes them);
//!   each partition holds the timers due within a horizon in an in-memory wheel,
//!   loaded window by window, and fires them in order, once, at a bounded rate
//!   interleaved with live events ([`TimerConfig`]).
//! - Time comes from a [`Clock`]: the wall clock for `sluice dev`, a
//!   [`VirtualClock`] for scenario tests. The evaluator never reads a clock; the
//!   runtime passes `now`.

mod batch;
mod cache;
mod clock;
mod contact;
mod metrics;
mod net;
mod ownership;
mod partition;
mod pipeline;
mod service;
mod wheel;
mod worker;

pub use batch::{BatchInput, Staged};
pub use cache::{Cached, StateCache};
pub use clock::{Clock, VirtualClock, WallClock};
pub use contact::{Delivery, Processed, Processor};
pub use metrics::EngineMetrics;
pub use partition::{Partition, TimerConfig};
pub use service::{Runtime, RuntimeOptions, Stats};
pub use wheel::TimerWheel;

use sluice_infra::store::ContactKey;

use crate::eval::{self, ContactState, FlowSet, Input, Output};

/// What the runtime evaluates inputs with: the flow evaluator over a [`FlowSet`],
/// or a stand-in in tests of the runtime itself.
pub trait Evaluator: Send + Sync {
    /// Processes one input for one contact (see [`eval::evaluate`]).
    fn evaluate(&self, state: &mut ContactState, input: Input<'_>, now: i64) -> Output;

    /// Processes one input of `contact`. Evaluators that choose flows by tenant
    /// (the flow catalog) override this; by default it is [`Evaluator::evaluate`].
    fn evaluate_for(
        &self,
        contact: &ContactKey,
        state: &mut ContactState,
        input: Input<'_>,
        now: i64,
    ) -> Output {
        let _ = contact;
        self.evaluate(state, input, now)
    }
}

impl Evaluator for FlowSet {
    fn evaluate(&self, state: &mut ContactState, input: Input<'_>, now: i64) -> Output {
        eval::evaluate(self, state, input, now)
    }
}

#[cfg(test)]
mod tests;
