//! Wall-clock arithmetic in the contact's zone, DST-correct through the tz database:
//! next time of day, next opening of working hours, end of quiet hours, yearly dates.
//!
//! A local time that does not exist (spring forward) maps to the first instant after the
//! gap; one that exists twice (fall back) maps to the earlier instant.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
};
use chrono_tz::Tz;

use crate::flow::{Hours, WeekdaySet};

/// Days looked ahead for weekly rules (a full week plus a day for wrapping windows).
const LOOKAHEAD_DAYS: u64 = 8;

/// The local date-time of an instant.
pub(crate) fn local(ms: i64, tz: Tz) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .naive_local()
}

/// The instant of a local date-time (see the module docs for gaps and overlaps).
pub(crate) fn instant(local: NaiveDateTime, tz: Tz) -> i64 {
    let mut t = local;
    for _ in 0..16 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => return d.timestamp_millis(),
            LocalResult::Ambiguous(a, _) => return a.timestamp_millis(),
            LocalResult::None => match t.checked_add_signed(chrono::Duration::minutes(15)) {
                Some(next) => t = next,
                None => break,
            },
        }
    }
    t.and_utc().timestamp_millis()
}

fn day(now_local: NaiveDateTime, offset: u64) -> Option<NaiveDate> {
    now_local.date().checked_add_days(Days::new(offset))
}

/// The next instant after `now` when the local clock shows `time` on one of `weekdays`.
pub(crate) fn next_time_of_day(now: i64, tz: Tz, time: NaiveTime, weekdays: WeekdaySet) -> i64 {
    let today = local(now, tz);
    (0..=LOOKAHEAD_DAYS)
        .filter_map(|d| day(today, d))
        .filter(|date| weekdays.contains(date.weekday()))
        .map(|date| instant(date.and_time(time), tz))
        .find(|t| *t > now)
        .unwrap_or(now + 7 * 86_400_000)
}

/// `now` when the hours are open, else the next instant they open.
pub(crate) fn next_open(now: i64, tz: Tz, hours: &Hours) -> i64 {
    if hours.contains(local(now, tz)) {
        return now;
    }
    let today = local(now, tz);
    (0..=LOOKAHEAD_DAYS)
        .filter_map(|d| day(today, d))
        .flat_map(|date| {
            hours
                .windows
                .iter()
                .filter(move |(days, _)| days.contains(date.weekday()))
                .map(move |(_, range)| instant(date.and_time(range.from), tz))
        })
        .filter(|t| *t > now)
        .min()
        .unwrap_or(now)
}

/// When `now` is inside the hours, the first instant after it that is outside.
pub(crate) fn end_of(now: i64, tz: Tz, hours: &Hours) -> Option<i64> {
    if !hours.contains(local(now, tz)) {
        return None;
    }
    let today = local(now, tz);
    let mut ends: Vec<i64> = (0..=LOOKAHEAD_DAYS)
        .filter_map(|d| day(today, d))
        .flat_map(|date| {
            hours
                .windows
                .iter()
                .map(move |(_, range)| instant(date.and_time(range.to), tz))
        })
        .filter(|t| *t > now)
        .collect();
    ends.sort_unstable();
    ends.into_iter().find(|t| !hours.contains(local(*t, tz)))
}

/// The next instant after `now` that is `month`-`day_of_month` at `time`, yearly; the 29th
/// of February falls on the 28th in other years.
pub(crate) fn next_yearly(now: i64, tz: Tz, month: u32, day_of_month: u32, time: NaiveTime) -> i64 {
    let year = local(now, tz).year();
    (year..=year + 1)
        .filter_map(|y| {
            NaiveDate::from_ymd_opt(y, month, day_of_month)
                .or_else(|| NaiveDate::from_ymd_opt(y, month, day_of_month - 1))
        })
        .map(|date| instant(date.and_time(time), tz))
        .find(|t| *t > now)
        .unwrap_or(now + 366 * 86_400_000)
}

/// Reads a date as people and systems write it: `2026-01-31`, `31.01.2026`, `31/01/2026`,
/// or an RFC 3339 instant (its date).
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    ["%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
        .or_else(|| DateTime::parse_from_rfc3339(t).ok().map(|d| d.date_naive()))
}

/// Reads an instant: RFC 3339, Unix milliseconds, or a date (midnight in `tz`).
pub(crate) fn parse_instant(text: &str, tz: Tz) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    if let Ok(ms) = t.parse::<i64>() {
        return Some(ms);
    }
    parse_date(t).map(|d| instant(d.and_time(NaiveTime::MIN), tz))
}

/// An instant as RFC 3339 in UTC (what templates see as `now`).
pub(crate) fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{TimeRange, parse_time_of_day, parse_timezone};

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn time_of_day_is_dst_correct() {
        let berlin = parse_timezone("Europe/Berlin").unwrap();
        let nine = parse_time_of_day("09:00").unwrap();
        // The day before the spring change: 09:00 CET is 08:00Z, the next day 07:00Z.
        let due = next_time_of_day(ms("2026-03-28T10:00:00Z"), berlin, nine, WeekdaySet::ALL);
        assert_eq!(due, ms("2026-03-29T07:00:00Z"));
        // 02:30 does not exist on 2026-03-29 in Berlin: first instant after the gap.
        let t = parse_time_of_day("02:30").unwrap();
        let due = next_time_of_day(ms("2026-03-28T12:00:00Z"), berlin, t, WeekdaySet::ALL);
        assert_eq!(due, ms("2026-03-29T01:00:00Z"));
    }

    #[test]
    fn hours_open_and_quiet_end() {
        let tz = parse_timezone("Europe/Moscow").unwrap();
        let hours = Hours {
            windows: vec![(
                WeekdaySet::ALL,
                TimeRange {
                    from: parse_time_of_day("22:00").unwrap(),
                    to: parse_time_of_day("08:00").unwrap(),
                },
            )],
        };
        // 23:30 Moscow = 20:30Z; quiet ends at 08:00 Moscow = 05:00Z next day.
        assert_eq!(
            end_of(ms("2026-06-01T20:30:00Z"), tz, &hours),
            Some(ms("2026-06-02T05:00:00Z"))
        );
        assert_eq!(end_of(ms("2026-06-01T10:00:00Z"), tz, &hours), None);
        assert_eq!(
            next_open(ms("2026-06-01T10:00:00Z"), tz, &hours),
            ms("2026-06-01T19:00:00Z")
        );
        assert_eq!(
            next_yearly(
                ms("2026-06-01T10:00:00Z"),
                tz,
                2,
                29,
                parse_time_of_day("09:00").unwrap()
            ),
            ms("2027-02-28T06:00:00Z")
        );
        assert_eq!(
            parse_date("31.01.2026"),
            NaiveDate::from_ymd_opt(2026, 1, 31)
        );
    }
}
