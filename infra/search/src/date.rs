//! Dates as OpenSearch reads them: mapping formats (`strict_date_optional_time||epoch_millis`, the
//! default, and custom Java-style patterns such as `yyyy-MM-dd HH:mm:ss`) and date math in queries
//! (`now-15m`, `now/d`, `2026-12-01||+1M/d`).
//!
//! Values are epoch milliseconds in UTC; tantivy indexes dates at that precision. Parsing is
//! chrono's; the translation of OpenSearch's format names and Java pattern letters to chrono, and
//! date math, are written here because no crate offers them.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// OpenSearch's default date format.
pub const DEFAULT_FORMAT: &str = "strict_date_optional_time||epoch_millis";

/// One alternative of a `format`.
#[derive(Clone, Debug, PartialEq)]
enum Alternative {
    /// `strict_date_optional_time` / `date_optional_time`: ISO 8601 date, optional time and zone.
    DateOptionalTime,
    /// `epoch_millis`.
    EpochMillis,
    /// `epoch_second`.
    EpochSecond,
    /// A Java-style pattern translated to chrono's; `has_time` tells whether it carries a time.
    Pattern { chrono: String, has_time: bool },
}

/// A mapping's `format`: alternatives separated by `||`, tried in order.
#[derive(Clone, Debug, PartialEq)]
pub struct DateFormat {
    spec: String,
    alternatives: Vec<Alternative>,
}

impl Default for DateFormat {
    fn default() -> Self {
        Self::parse(DEFAULT_FORMAT).expect("the default format parses")
    }
}

impl DateFormat {
    /// Reads a `format` value.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let alternatives = spec
            .split("||")
            .map(|part| match part.trim() {
                "strict_date_optional_time"
                | "date_optional_time"
                | "strict_date_time"
                | "date_time"
                | "strict_date_optional_time_nanos" => Ok(Alternative::DateOptionalTime),
                "epoch_millis" => Ok(Alternative::EpochMillis),
                "epoch_second" => Ok(Alternative::EpochSecond),
                "strict_date" | "date" | "yyyy-MM-dd" => Ok(Alternative::Pattern {
                    chrono: "%Y-%m-%d".into(),
                    has_time: false,
                }),
                pattern => java_to_chrono(pattern),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            spec: spec.to_owned(),
            alternatives,
        })
    }

    /// The format as written in the mapping.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// A JSON value (string or number) as epoch milliseconds.
    pub fn parse_value(&self, value: &Value) -> Result<i64, String> {
        match value {
            Value::String(text) => self.parse_str(text),
            Value::Number(number) => {
                let millis = number
                    .as_i64()
                    .or_else(|| number.as_f64().map(|f| f as i64))
                    .ok_or_else(|| format!("failed to parse date field [{number}]"))?;
                if self.alternatives.contains(&Alternative::EpochSecond)
                    && !self.alternatives.contains(&Alternative::EpochMillis)
                {
                    Ok(millis.saturating_mul(1000))
                } else {
                    Ok(millis)
                }
            }
            other => Err(format!("failed to parse date field [{other}]")),
        }
    }

    /// A string as epoch milliseconds, trying each alternative.
    pub fn parse_str(&self, text: &str) -> Result<i64, String> {
        self.alternatives
            .iter()
            .find_map(|alternative| parse_with(alternative, text))
            .ok_or_else(|| {
                format!(
                    "failed to parse date field [{text}] with format [{}]",
                    self.spec
                )
            })
    }

    /// Milliseconds formatted with the first alternative (as OpenSearch's `key_as_string`).
    pub fn format(&self, millis: i64) -> String {
        let time = Utc
            .timestamp_millis_opt(millis)
            .single()
            .unwrap_or_default();
        match self.alternatives.first() {
            Some(Alternative::EpochMillis) => millis.to_string(),
            Some(Alternative::EpochSecond) => (millis / 1000).to_string(),
            Some(Alternative::Pattern { chrono, .. }) => time.format(chrono).to_string(),
            _ => time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        }
    }
}

fn parse_with(alternative: &Alternative, text: &str) -> Option<i64> {
    match alternative {
        Alternative::DateOptionalTime => parse_iso(text),
        Alternative::EpochMillis => text.parse::<i64>().ok(),
        Alternative::EpochSecond => text.parse::<i64>().ok().map(|s| s.saturating_mul(1000)),
        Alternative::Pattern { chrono, has_time } => {
            if *has_time {
                if let Ok(time) = DateTime::parse_from_str(text, chrono) {
                    return Some(time.timestamp_millis());
                }
                NaiveDateTime::parse_from_str(text, chrono)
                    .ok()
                    .map(|t| t.and_utc().timestamp_millis())
            } else {
                NaiveDate::parse_from_str(text, chrono)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|t| t.and_utc().timestamp_millis())
            }
        }
    }
}

/// `yyyy-MM-dd['T'HH:mm[:ss[.fraction]]][Z|±HH:mm|±HHmm]`; no zone means UTC.
fn parse_iso(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    if date.len() != 10 {
        return None;
    }
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let Some(time) = time else {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    };
    let (clock, offset_seconds) = split_zone(time)?;
    let naive = ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|format| chrono::NaiveTime::parse_from_str(clock, format).ok())?;
    let utc = date.and_time(naive).and_utc().timestamp_millis();
    Some(utc - offset_seconds * 1000)
}

/// Splits `HH:mm:ss.fff+01:00` into the clock and the zone's offset in seconds.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(at) = time.rfind(['+', '-']) else {
        return Some((time, 0));
    };
    let (clock, zone) = time.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 && digits.len() != 2 {
        return None;
    }
    let hours: i64 = digits.get(0..2)?.parse().ok()?;
    let minutes: i64 = digits.get(2..4).unwrap_or("00").parse().ok()?;
    Some((clock, sign * (hours * 3600 + minutes * 60)))
}

/// Literal text in a chrono format: `%` escaped, so no literal can form a specifier.
fn push_literal(chrono: &mut String, literal: &[char]) {
    for c in literal {
        if *c == '%' {
            chrono.push_str("%%");
        } else {
            chrono.push(*c);
        }
    }
}

/// Java's `DateTimeFormatter` letters (the ones mappings use) → chrono's.
fn java_to_chrono(pattern: &str) -> Result<Alternative, String> {
    let mut chrono = String::new();
    let mut has_time = false;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or_else(|| format!("Invalid format: [{pattern}]: unclosed quote"))?;
            push_literal(&mut chrono, &chars[i + 1..i + 1 + end]);
            i += end + 2;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let piece = match (c, run) {
            ('y' | 'u', 4) => "%Y",
            ('y' | 'u', 2) => "%y",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('d', 2) => "%d",
            ('H', 2) => {
                has_time = true;
                "%H"
            }
            ('m', 2) => "%M",
            ('s', 2) => "%S",
            ('S', 3) => "%3f",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('Z', 1) | ('X', 2) => "%z",
            ('X', 3) | ('Z', 3) => "%:z",
            ('X', 1) => "%#z",
            (letter, _) if letter.is_ascii_alphabetic() => {
                return Err(format!(
                    "Invalid format: [{pattern}]: unsupported pattern letters [{}]",
                    chars[i..i + run].iter().collect::<String>()
                ))
            }
            _ => {
                push_literal(&mut chrono, &chars[i..i + run]);
                i += run;
                continue;
            }
        };
        chrono.push_str(piece);
        i += run;
    }
    Ok(Alternative::Pattern { chrono, has_time })
}

/// Evaluates date math: `now`, or `<date>||`, then `+N<unit>` / `-N<unit>` and `/<unit>`.
/// `round_up` (for `lte` and `gt`) rounds to the last millisecond of the unit, as OpenSearch does.
pub fn date_math(
    expression: &str,
    now_millis: i64,
    format: &DateFormat,
    round_up: bool,
) -> Result<i64, String> {
    let (anchor, mut ops) = if let Some(rest) = expression.strip_prefix("now") {
        (now_millis, rest)
    } else if let Some((date, rest)) = expression.split_once("||") {
        (format.parse_str(date)?, rest)
    } else {
        return format.parse_str(expression);
    };
    let mut time = Utc
        .timestamp_millis_opt(anchor)
        .single()
        .ok_or_else(|| format!("date out of range [{expression}]"))?;
    let bad = || format!("operation not supported on date math [{expression}]");
    while let Some(op) = ops.chars().next() {
        ops = &ops[op.len_utf8()..];
        match op {
            '+' | '-' => {
                let digits = ops.chars().take_while(char::is_ascii_digit).count();
                let amount: i64 = if digits == 0 {
                    1
                } else {
                    ops[..digits].parse().map_err(|_| bad())?
                };
                let unit = ops[digits..].chars().next().ok_or_else(bad)?;
                ops = &ops[digits + unit.len_utf8()..];
                let signed = if op == '-' { -amount } else { amount };
                time = shift(time, signed, unit).ok_or_else(bad)?;
            }
            '/' => {
                let unit = ops.chars().next().ok_or_else(bad)?;
                ops = &ops[unit.len_utf8()..];
                time = round(time, unit, round_up).ok_or_else(bad)?;
            }
            _ => return Err(bad()),
        }
    }
    Ok(time.timestamp_millis())
}

fn shift(time: DateTime<Utc>, amount: i64, unit: char) -> Option<DateTime<Utc>> {
    // Out-of-range amounts are `None` (an error to the caller), never an overflow.
    let months = |n: Option<i64>| {
        let n = n?;
        let count = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
        if n >= 0 {
            time.checked_add_months(count)
        } else {
            time.checked_sub_months(count)
        }
    };
    let add = |delta: Option<Duration>| time.checked_add_signed(delta?);
    match unit {
        'y' => months(amount.checked_mul(12)),
        'M' => months(Some(amount)),
        'w' => add(Duration::try_weeks(amount)),
        'd' => add(Duration::try_days(amount)),
        'h' | 'H' => add(Duration::try_hours(amount)),
        'm' => add(Duration::try_minutes(amount)),
        's' => add(Duration::try_seconds(amount)),
        _ => None,
    }
}

fn round(time: DateTime<Utc>, unit: char, round_up: bool) -> Option<DateTime<Utc>> {
    let date = time.date_naive();
    let start = match unit {
        'y' => NaiveDate::from_ymd_opt(date.year(), 1, 1)?.and_hms_opt(0, 0, 0)?,
        'M' => NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?.and_hms_opt(0, 0, 0)?,
        'w' => (date - Duration::days(date.weekday().num_days_from_monday() as i64))
            .and_hms_opt(0, 0, 0)?,
        'd' => date.and_hms_opt(0, 0, 0)?,
        'h' | 'H' => {
            let t = time.naive_utc();
            t.date()
                .and_hms_opt(t.time().format("%H").to_string().parse().ok()?, 0, 0)?
        }
        'm' => {
            let t = time.naive_utc();
            let seconds = t.and_utc().timestamp();
            DateTime::from_timestamp(seconds - seconds.rem_euclid(60), 0)?.naive_utc()
        }
        's' => DateTime::from_timestamp(time.timestamp(), 0)?.naive_utc(),
        _ => return None,
    };
    let start = start.and_utc();
    if !round_up {
        return Some(start);
    }
    let next = shift(start, 1, unit)?;
    Some(next - Duration::milliseconds(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_796_120_130_500; // 2026-12-01T10:15:30.500Z

    #[test]
    fn default_format_reads_iso_dates_and_epoch_millis() {
        let format = DateFormat::default();
        assert_eq!(
            format.parse_value(&json!("2026-12-01T10:15:30.500Z")),
            Ok(NOW)
        );
        assert_eq!(
            format.parse_value(&json!("2026-12-01T11:15:30.500+01:00")),
            Ok(NOW)
        );
        assert_eq!(
            format.parse_value(&json!("2026-12-01")),
            Ok(NOW - 36_930_500)
        );
        assert_eq!(format.parse_value(&json!(NOW)), Ok(NOW));
        assert_eq!(format.parse_value(&json!(NOW.to_string())), Ok(NOW));
        assert!(format.parse_value(&json!("-")).is_err());
        assert!(format.parse_value(&json!("2026-13-01")).is_err());
        assert_eq!(format.format(NOW), "2026-12-01T10:15:30.500Z");
    }

    #[test]
    fn custom_patterns_translate_to_chrono() {
        let format = DateFormat::parse("yyyy-MM-dd HH:mm:ss").unwrap();
        assert_eq!(
            format.parse_value(&json!("2026-12-01 10:15:30")),
            Ok(NOW - 500)
        );
        assert!(format.parse_value(&json!("2026-12-01T10:15:30Z")).is_err());
        assert_eq!(format.format(NOW), "2026-12-01 10:15:30");
        assert!(DateFormat::parse("yyyy-MM-dd QQ").is_err());
        // A literal percent stays literal (it would otherwise be a chrono specifier).
        let format = DateFormat::parse("yyyy'%q'MM").unwrap();
        assert_eq!(format.format(NOW), "2026%q12");
        assert_eq!(format.parse_str("2026%q12").ok(), None);
    }

    #[test]
    fn date_math_shifts_and_rounds() {
        let format = DateFormat::default();
        assert_eq!(date_math("now-15m", NOW, &format, false), Ok(NOW - 900_000));
        assert_eq!(date_math("now", NOW, &format, false), Ok(NOW));
        let day_start = NOW - 36_930_500;
        assert_eq!(date_math("now/d", NOW, &format, false), Ok(day_start));
        assert_eq!(
            date_math("now/d", NOW, &format, true),
            Ok(day_start + 86_400_000 - 1)
        );
        assert_eq!(
            date_math("2026-12-01||+1M/d", NOW, &format, false),
            Ok(day_start + 31 * 86_400_000)
        );
        assert_eq!(
            date_math("now-1h/h", NOW, &format, false),
            Ok(NOW - 30_500 - 15 * 60_000 - 3_600_000)
        );
        assert!(date_math("now-15q", NOW, &format, false).is_err());
        // Any character is an error, never a panic.
        for bad in [
            "now×",
            "now-1é",
            "now/é",
            "now+",
            "now-",
            "now/",
            "now+99999999999999999y",
            "now-9999999999999999w",
        ] {
            assert!(date_math(bad, NOW, &format, false).is_err(), "{bad}");
        }
    }
}
