//! The scenario file format (YAML or JSON) and its loading: flows compiled from
//! paths relative to the scenario file, times parsed, events completed.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::DateTime;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    Error, Result,
    eval::FlowSet,
    flow::{self, SourceFormat, parse_duration},
};

/// The default start of virtual time, when a scenario names none.
pub const DEFAULT_START: &str = "2026-01-01T00:00:00Z";

/// A scenario as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// What the scenario checks.
    pub name: String,
    /// Flow files, relative to the scenario file.
    pub flows: Vec<PathBuf>,
    /// Virtual time at the start (RFC 3339); default [`DEFAULT_START`].
    #[serde(default)]
    pub start: Option<String>,
    /// The contact the events are about.
    #[serde(default)]
    pub contact: ContactSpec,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The expected state at the end (a subset of the state view).
    #[serde(default, rename = "final")]
    pub final_state: Option<Value>,
}

/// The scenario's contact and its initial state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSpec {
    /// The tenant (default `acme`).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// The contact id (default `c-1`).
    #[serde(default = "default_contact")]
    pub id: String,
    /// The contact's initial state, in the state view's form (`fields` as a map,
    /// `tags`, `timezone`, …); without it the contact is new.
    #[serde(default)]
    pub state: Option<Map<String, Value>>,
}

impl Default for ContactSpec {
    fn default() -> Self {
        ContactSpec {
            tenant: default_tenant(),
            id: default_contact(),
            state: None,
        }
    }
}

fn default_tenant() -> String {
    "acme".into()
}

fn default_contact() -> String {
    "c-1".into()
}

/// One step: move virtual time (firing due timers), optionally feed an event, and
/// check what happened.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Move to this time first: RFC 3339, or `+2h` relative to the current time.
    #[serde(default)]
    pub at: Option<String>,
    /// Or move forward by this long (`2h`, `30m`, `PT2H`).
    #[serde(default)]
    pub advance: Option<String>,
    /// The event to feed at the (new) current time: an event's JSON form; `id`,
    /// `tenant`, `contact_id` and `occurred_at` are filled in when missing.
    #[serde(default)]
    pub event: Option<Map<String, Value>>,
    /// Every action the step must produce, in order (subset match on each); leave
    /// it out to not check actions.
    #[serde(default)]
    pub actions: Option<Vec<Value>>,
    /// Events the evaluation must have emitted (each matched against some emitted
    /// event, in order).
    #[serde(default)]
    pub emitted: Option<Vec<Value>>,
    /// The expected state after the step (a subset of the state view).
    #[serde(default)]
    pub state: Option<Value>,
}

/// A loaded scenario: the file, its compiled flows and its start time.
#[derive(Debug)]
pub struct Scenario {
    /// Where it was read from.
    pub path: PathBuf,
    /// What it says.
    pub file: ScenarioFile,
    /// Its flows, compiled.
    pub flows: Arc<FlowSet>,
    /// Virtual time at the start, Unix ms.
    pub start: i64,
}

pub(super) fn scenario_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Scenario {
        file: path.display().to_string(),
        message: message.into(),
    }
}

impl Scenario {
    /// Reads a scenario file and compiles its flows; an invalid flow is refused
    /// with every error it has.
    pub fn load(path: &Path) -> Result<Scenario> {
        let fail = |m: String| scenario_error(path, m);
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let file: ScenarioFile = match SourceFormat::from_path(path) {
            SourceFormat::Json => serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?,
            SourceFormat::Yaml => serde_saphyr::from_str(&text).map_err(|e| fail(e.to_string()))?,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut flows = FlowSet::new();
        for relative in &file.flows {
            let flow_path = base.join(relative);
            let source = std::fs::read_to_string(&flow_path)
                .map_err(|e| fail(format!("cannot read flow {}: {e}", flow_path.display())))?;
            let compilation = flow::compile_str(&source, SourceFormat::from_path(&flow_path));
            let Some(compiled) = compilation.flow else {
                let errors: Vec<String> = compilation
                    .diagnostics
                    .iter()
                    .map(|d| format!("  {}: {d}", flow_path.display()))
                    .collect();
                return Err(fail(format!("invalid flow:\n{}", errors.join("\n"))));
            };
            flows.insert(Arc::new(compiled));
        }
        let start = parse_time(file.start.as_deref().unwrap_or(DEFAULT_START), 0)
            .map_err(|e| fail(format!("start: {e}")))?;
        Ok(Scenario {
            path: path.to_owned(),
            file,
            flows: Arc::new(flows),
            start,
        })
    }
}

/// Parses an RFC 3339 time, or `+<duration>` relative to `now`, to Unix ms.
pub fn parse_time(text: &str, now: i64) -> std::result::Result<i64, String> {
    if let Some(relative) = text.strip_prefix('+') {
        return Ok(now.saturating_add(parse_millis(relative)?));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("invalid time {text:?} ({e}): write e.g. \"2026-01-01T10:00:00Z\" or \"+2h\"")
        })
}

/// Parses a duration to milliseconds.
pub(super) fn parse_millis(text: &str) -> std::result::Result<i64, String> {
    let duration = parse_duration(text)?;
    Ok(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

/// Formats Unix ms as RFC 3339 (UTC), for reports.
pub fn format_time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}
