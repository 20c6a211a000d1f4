//! Typed constants in conditions: text (with its case-folded form), numbers, booleans,
//! money with a currency, instants, dates and times of day.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime};

/// An amount of money in the currency's minor units (cents), like `PaymentPayload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// The amount in minor units.
    pub minor: i64,
    /// The ISO 4217 code, upper case.
    pub currency: [u8; 3],
}

/// How many minor-unit digits a currency has (ISO 4217); 2 unless listed.
pub fn currency_exponent(code: &str) -> u32 {
    match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

impl Money {
    /// Parses `"12.50 EUR"`: a decimal amount, a space, a three-letter ISO code. The amount
    /// may not have more decimals than the currency has minor units.
    pub fn parse(text: &str) -> Result<Money, String> {
        let bad = || {
            format!(
                "invalid money {text:?}: write an amount and an ISO currency, e.g. \"12.50 EUR\""
            )
        };
        let (amount, code) = text.trim().split_once(' ').ok_or_else(bad)?;
        Money::from_parts(amount, code.trim()).map_err(|e| if e.is_empty() { bad() } else { e })
    }

    /// Builds money from a decimal amount and a currency code.
    pub fn from_parts(amount: &str, code: &str) -> Result<Money, String> {
        let currency: [u8; 3] = code
            .as_bytes()
            .try_into()
            .map_err(|_| format!("invalid currency {code:?}: use a three-letter ISO 4217 code"))?;
        if !currency.iter().all(u8::is_ascii_uppercase) {
            return Err(format!(
                "invalid currency {code:?}: use a three-letter ISO 4217 code in upper case"
            ));
        }
        let exponent = currency_exponent(code);
        let (negative, digits) = amount
            .strip_prefix('-')
            .map_or((false, amount), |d| (true, d));
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) || whole.len() > 15 {
            return Err(String::new());
        }
        if frac.len() > exponent as usize {
            return Err(format!(
                "{amount} {code} has more decimals than {code} has minor units ({exponent})"
            ));
        }
        let scale = 10i64.pow(exponent);
        let whole: i64 = whole.parse().map_err(|_| String::new())?;
        let frac_value: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<width$}", width = exponent as usize)
                .parse()
                .map_err(|_| String::new())?
        };
        let minor = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(frac_value))
            .ok_or_else(String::new)?;
        Ok(Money {
            minor: if negative { -minor } else { minor },
            currency,
        })
    }

    /// The currency code.
    pub fn currency(&self) -> &str {
        std::str::from_utf8(&self.currency).unwrap_or("???")
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = currency_exponent(self.currency());
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exponent == 0 {
            return write!(f, "{sign}{abs} {}", self.currency());
        }
        let scale = 10u64.pow(exponent);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            abs / scale,
            abs % scale,
            self.currency(),
            width = exponent as usize
        )
    }
}

/// A constant a condition compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// Text; `folded` is the lower-cased form used for case-insensitive comparisons.
    Text {
        /// As written.
        value: String,
        /// Lower case.
        folded: String,
    },
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// Money with its currency.
    Money(Money),
    /// An instant, Unix milliseconds.
    Instant(i64),
}

impl Literal {
    /// A text literal.
    pub fn text(value: &str) -> Literal {
        Literal::Text {
            value: value.to_owned(),
            folded: value.to_lowercase(),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Text { value, .. } => write!(f, "{value:?}"),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Money(m) => write!(f, "{m}"),
            Literal::Instant(ms) => match DateTime::from_timestamp_millis(*ms) {
                Some(t) => write!(f, "{}", t.to_rfc3339()),
                None => write!(f, "{ms}ms"),
            },
        }
    }
}

/// What `before` / `after` compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRef {
    /// An instant (RFC 3339 with offset), Unix milliseconds.
    Instant(i64),
    /// A calendar date in the contact's zone.
    Date(NaiveDate),
    /// A time of day in the contact's zone.
    TimeOfDay(NaiveTime),
}

impl TimeRef {
    /// Parses `2026-01-31T09:00:00Z`, `2026-01-31` or `09:00`.
    pub fn parse(text: &str) -> Result<TimeRef, String> {
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(TimeRef::Instant(t.timestamp_millis()));
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(TimeRef::Date(d));
        }
        super::schedule::parse_time_of_day(text)
            .map(TimeRef::TimeOfDay)
            .map_err(|_| format!("invalid time {text:?}: write an RFC 3339 instant, a date \"YYYY-MM-DD\" or a time \"HH:MM\""))
    }
}

impl fmt::Display for TimeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeRef::Instant(ms) => Literal::Instant(*ms).fmt(f),
            TimeRef::Date(d) => write!(f, "{d}"),
            TimeRef::TimeOfDay(t) => write!(f, "{}", t.format("%H:%M")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_by_currency_exponent() {
        assert_eq!(Money::parse("12.50 EUR").unwrap().minor, 1250);
        assert_eq!(Money::parse("12 EUR").unwrap().minor, 1200);
        assert_eq!(Money::parse("12.5 EUR").unwrap().minor, 1250);
        assert_eq!(Money::parse("500 JPY").unwrap().minor, 500);
        assert_eq!(Money::parse("1.234 KWD").unwrap().minor, 1234);
        assert_eq!(Money::parse("-3.10 USD").unwrap().to_string(), "-3.10 USD");
        assert!(Money::parse("1.5 JPY").unwrap_err().contains("minor units"));
        assert!(Money::parse("12.50").is_err());
        assert!(Money::parse("12.50 eur").is_err());
        assert!(Money::parse("abc EUR").is_err());
        assert!(Money::parse("99999999999999999999 EUR").is_err());
    }

    #[test]
    fn time_refs() {
        assert!(matches!(
            TimeRef::parse("2026-01-31T09:00:00Z"),
            Ok(TimeRef::Instant(_))
        ));
        assert!(matches!(TimeRef::parse("2026-01-31"), Ok(TimeRef::Date(_))));
        assert!(matches!(TimeRef::parse("09:00"), Ok(TimeRef::TimeOfDay(_))));
        assert!(TimeRef::parse("tomorrow").is_err());
    }
}
