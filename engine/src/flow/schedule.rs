//! Clock-related parameters, parsed once: time zones, times of day, weekday sets, time ranges,
//! working hours and cron expressions. All of them are interpreted in the contact's zone.

use std::fmt;

use chrono::{Datelike, NaiveDateTime, NaiveTime, Timelike, Weekday};
use chrono_tz::Tz;
use serde_json::Value;

use super::diagnostic::{Cx, join};
use super::params::{Obj, kind, strings};

/// Parses an IANA time zone name such as `Europe/Berlin`.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?} (use an IANA name such as \"Europe/Berlin\")")
    })
}

/// Parses a time of day, `HH:MM` or `HH:MM:SS`, 24-hour.
pub fn parse_time_of_day(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| format!("invalid time of day {text:?}: write \"HH:MM\", e.g. \"09:00\""))
}

/// Parses a weekday: `mon` … `sun` or the full English name, any case.
pub fn parse_weekday(text: &str) -> Result<Weekday, String> {
    let lower = text.to_ascii_lowercase();
    let short = lower.get(..3).unwrap_or("");
    let day = match short {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => {
            return Err(format!(
                "unknown weekday {text:?} (use mon, tue, wed, thu, fri, sat, sun)"
            ));
        }
    };
    let full = day_name(day);
    if lower.len() == 3 || full == lower {
        Ok(day)
    } else {
        Err(format!(
            "unknown weekday {text:?} (use mon, tue, wed, thu, fri, sat, sun)"
        ))
    }
}

fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// A set of weekdays, as a bit mask (bit 0 = Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeekdaySet(u8);

impl WeekdaySet {
    /// Every day of the week.
    pub const ALL: WeekdaySet = WeekdaySet(0x7f);

    /// Adds a day.
    pub fn insert(&mut self, day: Weekday) {
        self.0 |= 1 << day.num_days_from_monday();
    }

    /// True when the day is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

impl fmt::Display for WeekdaySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .filter(|d| self.contains(*d))
        .map(|d| &day_name(d)[..3])
        .collect();
        f.write_str(&days.join(","))
    }
}

/// A range of times of day; `to` at or before `from` wraps past midnight (`22:00`–`08:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Start, inclusive.
    pub from: NaiveTime,
    /// End, exclusive.
    pub to: NaiveTime,
}

impl TimeRange {
    /// True when `t` is inside the range.
    pub fn contains(self, t: NaiveTime) -> bool {
        if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.from.hour(),
            self.from.minute(),
            self.to.hour(),
            self.to.minute()
        )
    }
}

/// Weekly opening hours: on the given days, within the given time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    /// Windows; the hours are open when any window contains the instant.
    pub windows: Vec<(WeekdaySet, TimeRange)>,
}

impl Hours {
    /// True when the local date-time falls into a window. A window that wraps midnight
    /// belongs to the day it starts on.
    pub fn contains(&self, local: NaiveDateTime) -> bool {
        let t = local.time();
        let day = local.weekday();
        self.windows.iter().any(|(days, range)| {
            if !range.contains(t) {
                return false;
            }
            let started_yesterday = range.from >= range.to && t < range.to;
            days.contains(if started_yesterday { day.pred() } else { day })
        })
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .windows
            .iter()
            .map(|(d, r)| format!("{d} {r}"))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

/// Reads `{"days": ["mon", …], "from": "09:00", "to": "18:00"}` or an array of such windows.
pub(crate) fn read_hours(value: &Value, path: &str, cx: Cx<'_>) -> Option<Hours> {
    let one = |v: &Value, p: &str| -> Option<(WeekdaySet, TimeRange)> {
        let mut o = Obj::new(v, p, "hours window", cx)?;
        let days = match o.opt_array("days") {
            Some(list) => read_weekdays(list, &o.at("days"), cx),
            None => Some(WeekdaySet::ALL),
        };
        let from = o
            .req_str("from")
            .and_then(|s| time_at(s, &o.at("from"), cx));
        let to = o.req_str("to").and_then(|s| time_at(s, &o.at("to"), cx));
        o.finish();
        Some((
            days?,
            TimeRange {
                from: from?,
                to: to?,
            },
        ))
    };
    let windows = match value {
        Value::Array(items) => {
            let read: Vec<_> = items
                .iter()
                .enumerate()
                .map(|(i, v)| one(v, &join(path, i)))
                .collect();
            if items.is_empty() {
                cx.error(path, "hours need at least one window");
                return None;
            }
            read.into_iter().collect::<Option<Vec<_>>>()?
        }
        other => vec![one(other, path)?],
    };
    Some(Hours { windows })
}

/// Reads a list of weekday names.
pub(crate) fn read_weekdays(items: &[Value], path: &str, cx: Cx<'_>) -> Option<WeekdaySet> {
    let mut set = WeekdaySet::default();
    let mut ok = true;
    for (i, name) in strings(items, path, cx).into_iter().enumerate() {
        match parse_weekday(name) {
            Ok(day) => set.insert(day),
            Err(e) => {
                cx.error(&join(path, i), e);
                ok = false;
            }
        }
    }
    if set == WeekdaySet::default() && ok {
        cx.error(path, "name at least one weekday");
        ok = false;
    }
    (ok && items.iter().all(Value::is_string)).then_some(set)
}

/// Parses a time of day, reporting an error at `path`.
pub(crate) fn time_at(text: &str, path: &str, cx: Cx<'_>) -> Option<NaiveTime> {
    parse_time_of_day(text).map_err(|e| cx.error(path, e)).ok()
}

/// Parses a time zone value, reporting an error at `path`.
pub(crate) fn timezone_at(value: &Value, path: &str, cx: Cx<'_>) -> Option<Tz> {
    let Some(name) = value.as_str() else {
        cx.error(
            path,
            format!("a time zone must be a string, not {}", kind(value)),
        );
        return None;
    };
    parse_timezone(name).map_err(|e| cx.error(path, e)).ok()
}

/// A parsed cron expression (5 fields, or 6 with seconds), evaluated in the contact's zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// The expression as written.
    pub source: String,
    /// The parsed pattern.
    pub cron: croner::Cron,
}

/// Parses a cron expression.
pub fn parse_cron(text: &str) -> Result<CronSchedule, String> {
    text.parse::<croner::Cron>()
        .map(|cron| CronSchedule {
            source: text.to_owned(),
            cron,
        })
        .map_err(|e| format!("invalid cron expression {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(d: u32, h: u32, m: u32) -> NaiveDateTime {
        // 2026-03-02 is a Monday.
        NaiveDate::from_ymd_opt(2026, 3, d)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    #[test]
    fn parses_clock_values() {
        assert_eq!(
            parse_time_of_day("09:00").unwrap(),
            NaiveTime::from_hms_opt(9, 0, 0).unwrap()
        );
        assert!(parse_time_of_day("25:00").is_err());
        assert_eq!(parse_weekday("Friday"), Ok(Weekday::Fri));
        assert_eq!(parse_weekday("sat"), Ok(Weekday::Sat));
        assert!(parse_weekday("fry").is_err());
        assert!(parse_weekday("monkey").is_err());
        assert!(parse_timezone("Europe/Berlin").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
        assert!(parse_cron("0 9 * * *").is_ok());
        assert!(parse_cron("0 99 * * *").is_err());
    }

    #[test]
    fn ranges_wrap_midnight_and_hours_respect_days() {
        let night = TimeRange {
            from: parse_time_of_day("22:00").unwrap(),
            to: parse_time_of_day("08:00").unwrap(),
        };
        assert!(night.contains(parse_time_of_day("23:30").unwrap()));
        assert!(night.contains(parse_time_of_day("07:59").unwrap()));
        assert!(!night.contains(parse_time_of_day("08:00").unwrap()));
        let mut weekdays = WeekdaySet::default();
        for d in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
        ] {
            weekdays.insert(d);
        }
        assert_eq!(weekdays.to_string(), "mon,tue,wed,thu,fri");
        let office = Hours {
            windows: vec![(
                weekdays,
                TimeRange {
                    from: parse_time_of_day("09:00").unwrap(),
                    to: parse_time_of_day("18:00").unwrap(),
                },
            )],
        };
        assert!(office.contains(at(2, 10, 0)));
        assert!(!office.contains(at(2, 18, 0)));
        assert!(!office.contains(at(7, 10, 0)), "Saturday");
        let fri_night = Hours {
            windows: vec![(
                {
                    let mut s = WeekdaySet::default();
                    s.insert(Weekday::Fri);
                    s
                },
                night,
            )],
        };
        assert!(
            fri_night.contains(at(7, 3, 0)),
            "Saturday 03:00 belongs to Friday's night"
        );
        assert!(
            !fri_night.contains(at(6, 3, 0)),
            "Friday 03:00 belongs to Thursday's night"
        );
    }
}
