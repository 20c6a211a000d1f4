//! Durations as flow authors write them: `90s`, `15m`, `2h`, `7d`, `1w`, combinations such as
//! `1h30m`, and ISO 8601 `PT2H`, `P7D`, `P1DT12H`.

use std::time::Duration;

/// The longest duration a flow may use: ten years (longer waits are mistakes).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 86_400);

/// Parses a flow duration; the error says what is wrong in words.
///
/// ```
/// use std::time::Duration;
/// use sluice_engine::flow::parse_duration;
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_duration("PT2H"), Ok(Duration::from_secs(7200)));
/// assert!(parse_duration("2 hours").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: write e.g. \"90s\", \"15m\", \"2h\", \"7d\" or \"PT2H\""
        )
    };
    let total = if let Some(iso) = text.strip_prefix('P') {
        iso_seconds(iso).ok_or_else(bad)?
    } else {
        units_seconds(text, |u| match u {
            "ms" => Some(0),
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3_600),
            "d" => Some(86_400),
            "w" => Some(7 * 86_400),
            _ => None,
        })
        .ok_or_else(bad)?
    };
    let duration = Duration::from_millis(total);
    if duration.is_zero() {
        return Err(format!("duration {text:?} must be longer than zero"));
    }
    if duration > MAX_DURATION {
        return Err(format!("duration {text:?} is longer than ten years"));
    }
    Ok(duration)
}

/// `1h30m` → milliseconds; `scale` gives seconds per unit (0 for milliseconds).
fn units_seconds(text: &str, scale: impl Fn(&str) -> Option<u64>) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 || digits > 12 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms = match scale(unit)? {
            0 => n,
            secs => n.checked_mul(secs)?.checked_mul(1_000)?,
        };
        total = total.checked_add(ms)?;
    }
    Some(total)
}

/// The part of an ISO 8601 duration after `P`: `7D`, `T2H`, `1DT12H30M`, `1W`.
fn iso_seconds(text: &str) -> Option<u64> {
    let (date, time) = match text.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (text, None),
    };
    let mut total = 0u64;
    if !date.is_empty() {
        total = units_seconds(date, |u| match u {
            "D" => Some(86_400),
            "W" => Some(7 * 86_400),
            _ => None,
        })?;
    }
    if let Some(time) = time {
        total = total.checked_add(units_seconds(time, |u| match u {
            "H" => Some(3_600),
            "M" => Some(60),
            "S" => Some(1),
            _ => None,
        })?)?;
    }
    (!date.is_empty() || time.is_some()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
    }

    #[test]
    fn iso_forms() {
        assert_eq!(parse_duration("PT2H"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("P7D"), Ok(Duration::from_secs(604_800)));
        assert_eq!(
            parse_duration("P1DT12H30M"),
            Ok(Duration::from_secs(131_400))
        );
        assert!(parse_duration("P").is_err());
        assert!(parse_duration("PT").is_err());
        assert!(parse_duration("P1H").is_err());
    }

    #[test]
    fn rejects_nonsense_zero_and_huge() {
        for bad in [
            "",
            "h",
            "2",
            "2 h",
            "2hours",
            "-1h",
            "1.5h",
            "99999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(
            parse_duration("0s")
                .unwrap_err()
                .contains("longer than zero")
        );
        assert!(parse_duration("4000d").unwrap_err().contains("ten years"));
    }
}
