//! A run: one contact's journey through one flow version.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::TimerKey;

/// The reserved run id of the contact's schedule timer.
pub const SCHEDULE_RUN: u64 = 0;
/// The reserved run id of the contact's pattern-window timer.
pub const WINDOW_RUN: u64 = 1;
/// The first id given to a real run; ids below are reserved for contact-level timers.
pub const FIRST_RUN_ID: u64 = 16;

/// What a waiting run waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitKind {
    /// Only its timer (`wait`).
    Timer,
    /// A reply in the run's session (`ask`); `attempts` invalid answers so far.
    Reply {
        /// Invalid answers so far.
        attempts: u32,
    },
    /// A yes/no reply (`consent`).
    Consent,
    /// The `function.result` / `ai.result` of the action sent at `step`.
    Result {
        /// The step whose action id the result must carry.
        step: u32,
    },
    /// The `flow.completed` / `flow.failed` of the child run.
    Child {
        /// The child's run id.
        child: u64,
    },
}

/// A run's wait: what for, and the timer guarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// What the run waits for.
    pub kind: WaitKind,
    /// When its timer is due (the wait's end, or its timeout), if it has one.
    pub due: Option<i64>,
    /// The step of the message whose delivery starts the timeout (asks), if any.
    pub sent_step: Option<u32>,
}

/// One active run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Unique within the contact; runs are kept sorted by it.
    pub id: u64,
    /// A stable 64-bit seed from the start (contact, input, flow, id): the public run id
    /// and the basis of action ids, unique even if the contact's state is recreated.
    pub seed: u64,
    /// The flow id.
    pub flow: Arc<str>,
    /// The pinned flow version.
    pub version: u32,
    /// The node the run is at (an index into the pinned version's arena).
    pub node: u32,
    /// Bumped at every wait; timers carry it, so older timers are stale.
    pub token: u32,
    /// Steps taken so far; action ids hash it.
    pub step: u32,
    /// When the run started, Unix ms.
    pub started_at: i64,
    /// What the run waits for; `None` while it is being advanced.
    pub wait: Option<Wait>,
    /// Run variables, sorted by name.
    pub vars: Vec<(Box<str>, Box<str>)>,
    /// The session the run belongs to (bot flows own it).
    pub session: Option<Box<str>>,
    /// Owns its session (a bot flow's run).
    pub bot: bool,
    /// What few runs have (boxed, so that the common run stays small).
    pub extra: Option<Box<RunExtra>>,
}

/// The parts of a run that most runs do not have.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunExtra {
    /// The calling run, for a sub-flow.
    pub parent: Option<u64>,
    /// The rendered `ref` of its trigger.
    pub dedupe_ref: Option<Box<str>>,
    /// The event that started the run, as JSON, kept only for flows whose templates
    /// read `event` after a wait (see [`FlowSet::remembers_trigger`](super::FlowSet::remembers_trigger)):
    /// a run resumed by its own timer sees it as `event`.
    pub trigger: Option<Box<str>>,
}

impl Run {
    /// The public run id (hex of the seed).
    pub fn public_id(&self) -> String {
        super::ids::hex64(self.seed)
    }

    /// The key of the timer guarding the current wait.
    pub fn timer_key(&self) -> TimerKey {
        TimerKey {
            run: self.id,
            token: self.token,
        }
    }

    /// A run variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .binary_search_by(|(k, _)| (**k).cmp(name))
            .ok()
            .map(|i| &*self.vars[i].1)
    }

    /// Sets a run variable.
    pub fn set_var(&mut self, name: &str, value: &str) {
        match self.vars.binary_search_by(|(k, _)| (**k).cmp(name)) {
            Ok(i) => self.vars[i].1 = Box::from(value),
            Err(i) => self.vars.insert(i, (Box::from(name), Box::from(value))),
        }
    }

    /// Heap bytes owned by the run.
    pub fn heap_size(&self) -> usize {
        let vars = self.vars.capacity() * std::mem::size_of::<(Box<str>, Box<str>)>()
            + self
                .vars
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        // The flow id is shared (Arc) between runs of a flow and with the flow set.
        let extra = self.extra.as_ref().map_or(0, |e| {
            std::mem::size_of::<RunExtra>()
                + e.trigger.as_ref().map_or(0, |s| s.len())
                + e.dedupe_ref.as_ref().map_or(0, |s| s.len())
        });
        vars + self.session.as_ref().map_or(0, |s| s.len()) + extra
    }

    /// The calling run, for a sub-flow.
    pub fn parent(&self) -> Option<u64> {
        self.extra.as_ref().and_then(|e| e.parent)
    }

    /// The rendered `ref` of its trigger.
    pub fn dedupe_ref(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.dedupe_ref.as_deref())
    }

    /// The remembered trigger event (JSON).
    pub fn trigger(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.trigger.as_deref())
    }

    /// The extras, created on first use.
    pub fn extra_mut(&mut self) -> &mut RunExtra {
        self.extra.get_or_insert_with(Default::default)
    }
}
