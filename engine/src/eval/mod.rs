//! The evaluator: `evaluate(flows, contact state, input, now) -> output`, a pure,
//! deterministic function — no I/O, no clock reads, no randomness — that the
//! embedded runtime (`sluice dev`, `sluice flow test`) and the distributed engine
//! both call, so they run exactly the same semantics (DESIGN.md, "Flow semantics").
//!
//! The caller owns everything around it: it loads the contact's [`ContactState`],
//! calls [`evaluate`] with one [`Input`] (an event, or a timer that came due), and
//! then makes the [`Output`] durable all together — the new state, the timers to
//! set and cancel, the actions to publish — before it acknowledges the input.
//!
//! Contract for callers (runtime, engine, scenario runner):
//! - Inputs of one contact are fed strictly in order; timers are fed through the
//!   same path as events, never beside it.
//! - A timer is identified by its [`TimerKey`]; the evaluator ignores a fired timer
//!   whose run has moved on (stale-timer guard), so callers need not cancel eagerly,
//!   but they should honour `timers_cancelled` to keep the timer index small.
//! - Output is byte-for-byte deterministic for the same (flows, state, input, now).
//!
//! Semantics decided here (see DESIGN.md, "Flow semantics"):
//! - **Dedupe**: a contact remembers the 64-bit hashes of its last [`DEDUPE_WINDOW`]
//!   (32) applied event ids; a repeat is [`Disposition::Duplicate`] and changes nothing.
//! - **Offer order**: waiting runs (a reply goes to the session's bot run first, else the
//!   oldest run asking in that session; results by action id; sub-flow ends by run id;
//!   `message.sent`/`delivered` of a question restarts its timeout from delivery) → goal /
//!   exit events and `session.closed` for bot runs → triggers (newest versions, flow-id
//!   order, one new run per flow per event; a message a run consumed starts no bot run)
//!   → pattern windows.
//! - **Internal events** (`contact.created`, `contact.field_updated`, `flow.started`,
//!   `flow.completed`, `flow.failed`, and `wait.expired` when a flow triggers on it) are
//!   processed in order inside the same call and listed in [`Output::emitted`]; a start
//!   at chain depth [`MAX_CHAIN_DEPTH`] (input `chain_depth` + internal depth) is refused
//!   with an emitted `flow.failed` naming the limit.
//! - **Timers**: run timers are keyed by (run id, wait token); contact-level timers use
//!   reserved run ids: [`SCHEDULE_RUN`] (one timer at the earliest scheduled trigger) and
//!   [`WINDOW_RUN`] (one timer at the earliest pattern-window deadline). Timers fire
//!   in order with the contact's events: before an event is processed at `now`, every
//!   deadline of the contact due at or before `now` fires first, earliest first, as its
//!   [`TimerFired`] would (so a reply processed at 10:05 sees the timeout due at 10:00,
//!   however late the timer service is); its key is listed in `timers_cancelled`, and
//!   the durable timer arriving later is [`Disposition::StaleTimer`], so it fires once.
//! - **Sub-flows** of the same contact start inside the evaluation (no `flow.start`
//!   action); the parent resumes on the child's `flow.completed` with its variables as
//!   `vars.<result_var>.<name>`.
//! - **Identity linking** (see `alias.rs`): `contact.link_identity {urn}` makes the
//!   contact of that URN an alias (an `event.publish` of `contact.aliased` addressed to
//!   it); an alias forwards every event as `contact.forwarded` to its primary, which
//!   processes the original; at most [`MAX_ALIAS_HOPS`] forwards, never in a cycle.
//! - **Action ids**: BLAKE3 of tenant, contact, the run's seed and its step counter; the
//!   seed hashes contact, input and flow, so ids are stable under replay and unique even
//!   if a contact's state is recreated.

mod alias;
mod clock;
mod conditions;
mod context;
mod flows;
mod ids;
mod machine;
mod nodes;
mod offer;
mod run;
mod schedules;
mod state;
mod triggers;
mod walk;
mod windows;

pub use alias::MAX_ALIAS_HOPS;
pub use flows::FlowSet;
pub use machine::MAX_CHAIN_DEPTH;
pub use run::{FIRST_RUN_ID, Run, RunExtra, SCHEDULE_RUN, WINDOW_RUN, Wait, WaitKind};
pub use sluice_schemas::identity::LINK_IDENTITY;
pub use state::{
    Channel, Clocks, ContactState, DEDUPE_WINDOW, FlowHistory, MAX_URNS, SEND_HISTORY,
    ScheduleEntry, TimerSlot,
};
pub use windows::{WindowData, WindowState};

use sluice_schemas::{Action, Event};

mod evaluate;
use evaluate::{on_event, on_timer};

/// What the evaluator is asked to process for one contact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// An event from the bus (or from a scenario file).
    Event(&'a Event),
    /// A timer that came due.
    Timer(TimerFired),
}

/// Identifies one timer of one contact: the run it belongs to and the wait it
/// guards. A run that moves on bumps its wait token, which makes older timers stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    /// The run, unique within the contact.
    pub run: u64,
    /// The run's wait token when the timer was set.
    pub token: u32,
}

/// A timer to set: fire `key` at `due_at` (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timer {
    /// When it is due, Unix milliseconds.
    pub due_at: i64,
    /// Which timer it is.
    pub key: TimerKey,
}

/// A timer that came due, as fed back to [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerFired {
    /// Which timer.
    pub key: TimerKey,
    /// When it was due (the evaluator uses this, not `now`, for what the timer means).
    pub due_at: i64,
}

/// What became of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disposition {
    /// It was processed (it may have changed nothing).
    #[default]
    Applied,
    /// The contact had already applied this event id: dropped, nothing changed.
    Duplicate,
    /// A timer whose run has moved on or ended: ignored, nothing changed.
    StaleTimer,
}

/// Everything one evaluation produced. The caller makes it durable all together.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output {
    /// What became of the input.
    pub disposition: Disposition,
    /// Actions for the workers, in order, with deterministic ids.
    pub actions: Vec<Action>,
    /// Events the evaluation produced and already processed itself
    /// (`contact.created`, `contact.field_updated`, `flow.started`, …), for
    /// observers downstream; they must not be fed back.
    pub emitted: Vec<Event>,
    /// Timers to set.
    pub timers_set: Vec<Timer>,
    /// Timers no longer needed.
    pub timers_cancelled: Vec<TimerKey>,
    /// Deadlines this evaluation fired: the timer input itself when it applied, and
    /// the overdue ones an event fires before it is processed.
    pub timers_fired: u32,
}

/// Processes one input for one contact. See the module docs for the contract.
pub fn evaluate(flows: &FlowSet, state: &mut ContactState, input: Input<'_>, now: i64) -> Output {
    match input {
        Input::Event(event) => on_event(flows, state, event, now),
        Input::Timer(fired) => {
            let mut out = on_timer(flows, state, fired, now);
            if out.disposition == Disposition::Applied {
                out.timers_fired += 1;
            }
            out
        }
    }
}
