//! Scenario tests for flow authors (`sluice flow test FILE...`): a YAML or JSON
//! file names the flows (paths relative to the file), the contact's initial state,
//! and steps — events at virtual times, `advance` to fire due timers — each with
//! the actions, emitted events and state it must produce. It runs on a
//! [`VirtualClock`](crate::runtime::VirtualClock) through the embedded runtime's
//! own per-contact path, so what passes here is what `sluice dev` does.
//!
//! ```yaml
//! name: a new contact is greeted and tagged
//! flows: [../welcome.json]
//! start: "2026-01-05T10:00:00Z"
//! steps:
//!   - event: { type: contact.created }
//!     actions:
//!       - { type: message.send, node: greet, payload: { text: "Hi there!" } }
//! final: { tags: [new], runs: [] }
//! ```
//!
//! Matching is by subset: an expected object matches when each of its keys does
//! (`null` also matches an absent key), arrays match element by element with equal
//! lengths. Actions are matched on their JSON form with the payload unwrapped
//! (`payload.text`), `flow` and `node` for `flow_id` and `node_id`, and times
//! (`not_before`, `created_at`) as RFC 3339 or `+2h` from the step's time. The
//! state view is the contact's state with `fields` and run `vars` as maps and each
//! run's `node` as its id. In an event, the text `${last_action_id}` stands for the
//! newest action's id (to answer an `http` node with a `function.result`).
//!
//! The steps run on a [`Driver`]: [`run`] uses the embedded runtime
//! ([`EmbeddedDriver`]); [`run_with`] takes any other, such as the end-to-end
//! test's driver of the distributed pipeline (`sluice/tests/scenarios_e2e`), so
//! one runner holds both to the same expectations. The [`Outcome`] lists each
//! step's actions, so two pipelines can also be compared with each other.

mod driver;
mod file;
mod matching;
mod run;

pub use driver::{Driver, EmbeddedDriver, Produced};
pub use file::{ContactSpec, DEFAULT_START, Scenario, ScenarioFile, Step, format_time, parse_time};
pub use run::{LAST_ACTION_ID, Outcome, StepActions, StepFailure, run, run_with};
