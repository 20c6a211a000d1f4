//! Flow settings: default time zone, quiet and working hours, goal and exit events, the
//! frequency cap and the step limit.

use std::time::Duration;

use chrono_tz::Tz;
use serde_json::Value;

use super::diagnostic::{Cx, join};
use super::duration::parse_duration;
use super::params::Obj;
use super::schedule::{Hours, read_hours, timezone_at};
use super::trigger::{EventMatch, read_event_match_at};

/// The default step limit: nodes one event may visit in one run before the run fails.
pub const DEFAULT_STEP_LIMIT: u32 = 100;

/// What happens to a message that falls into quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietMode {
    /// Send it when the quiet hours end (`Action.not_before`).
    Defer,
    /// Do not send it.
    Skip,
}

/// Hours in which messages are not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuietHours {
    /// When it is quiet.
    pub hours: Hours,
    /// What happens to messages then.
    pub mode: QuietMode,
}

/// At most `count` messages per contact per `per`, counted across all flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    /// How many messages.
    pub count: u32,
    /// In what period.
    pub per: Duration,
}

/// A flow's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The zone used when the contact has none.
    pub timezone: Tz,
    /// Quiet hours for message actions.
    pub quiet_hours: Option<QuietHours>,
    /// Working hours for `working_hours` nodes and `wait until_working_hours`.
    pub working_hours: Option<Hours>,
    /// Events that complete an active run as `goal`.
    pub goal_events: Vec<EventMatch>,
    /// Events that end an active run as `exited`.
    pub exit_events: Vec<EventMatch>,
    /// The frequency cap on message actions.
    pub frequency_cap: Option<FrequencyCap>,
    /// How many nodes one event may visit in one run.
    pub step_limit: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timezone: Tz::UTC,
            quiet_hours: None,
            working_hours: None,
            goal_events: Vec::new(),
            exit_events: Vec::new(),
            frequency_cap: None,
            step_limit: DEFAULT_STEP_LIMIT,
        }
    }
}

/// Reads `settings`; problems are reported and the defaults used in their place.
pub(crate) fn read_settings(value: &Value, path: &str, cx: Cx<'_>) -> Settings {
    let mut s = Settings::default();
    let Some(mut o) = Obj::new(value, path, "settings", cx) else {
        return s;
    };
    if let Some(tz) = o
        .get("timezone")
        .and_then(|v| timezone_at(v, &join(path, "timezone"), cx))
    {
        s.timezone = tz;
    }
    if let Some(v) = o.get("working_hours") {
        s.working_hours = read_hours(v, &join(path, "working_hours"), cx);
    }
    if let Some(v) = o.get("quiet_hours") {
        s.quiet_hours = read_quiet(v, &join(path, "quiet_hours"), cx);
    }
    for (key, list) in [
        ("goal_events", &mut s.goal_events),
        ("exit_events", &mut s.exit_events),
    ] {
        if let Some(items) = o.opt_array(key) {
            let at = join(path, key);
            list.extend(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| read_event_match_at(v, &join(&at, i), cx)),
            );
        }
    }
    if let Some(v) = o.get("frequency_cap") {
        s.frequency_cap = read_cap(v, &join(path, "frequency_cap"), cx);
    }
    if let Some(n) = o.opt_u32("step_limit", 1, 10_000) {
        s.step_limit = n;
    }
    o.finish();
    s
}

fn read_quiet(value: &Value, path: &str, cx: Cx<'_>) -> Option<QuietHours> {
    let mut o = Obj::new(value, path, "quiet hours", cx)?;
    let hours = o
        .req("hours")
        .and_then(|v| read_hours(v, &join(path, "hours"), cx));
    let mode = match o.opt_str("mode") {
        None | Some("defer") => Some(QuietMode::Defer),
        Some("skip") => Some(QuietMode::Skip),
        Some(other) => {
            cx.error(
                &o.at("mode"),
                format!("unknown quiet-hours mode {other:?} (use \"defer\" or \"skip\")"),
            );
            None
        }
    };
    o.finish();
    Some(QuietHours {
        hours: hours?,
        mode: mode?,
    })
}

fn read_cap(value: &Value, path: &str, cx: Cx<'_>) -> Option<FrequencyCap> {
    let mut o = Obj::new(value, path, "frequency cap", cx)?;
    let count = o.opt_u32("count", 1, 1_000_000);
    if !o.has("count") {
        cx.error(path, "frequency cap is missing required parameter `count`");
    }
    let per = o.req_str("per").and_then(|p| {
        parse_duration(p)
            .map_err(|e| cx.error(&join(path, "per"), e))
            .ok()
    });
    o.finish();
    Some(FrequencyCap {
        count: count?,
        per: per?,
    })
}
