//! Time as the monitor keeps it: Unix milliseconds (UTC), printed as RFC 3339; calendar
//! arithmetic for `--monthly` and weekly maintenance windows; `--since 30d`-style arguments.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use standby_common::calendar::{civil_from_days, days_from_civil};
use standby_common::duration::millis;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// 9999-12-31T23:59:59Z, the last time a report can name.
pub const MAX_MS: i64 = 253_402_300_799_000;

/// Now, in Unix ms.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

/// RFC 3339 in UTC, to the second.
pub fn fmt(ms: i64) -> String {
    // RFC 3339 ends with year 9999.
    let t = UNIX_EPOCH + Duration::from_millis(ms.clamp(0, MAX_MS) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A duration in ms as "1h 5m" (seconds only under a minute).
pub fn fmt_duration(ms: i64) -> String {
    let secs = (ms.max(0) + 500) / 1000;
    if secs < 60 {
        return format!("{secs}s");
    }
    let rounded = Duration::from_secs(((secs / 60) * 60) as u64);
    humantime::format_duration(rounded).to_string()
}

/// Start of the UTC calendar month containing `ms`.
pub fn month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    days_from_civil(y, m, 1) * DAY_MS
}

/// Start of the next UTC calendar month after the one containing `ms`.
pub fn next_month(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1) * DAY_MS
}

/// "2026-03" for the month containing `ms`.
pub fn month_label(ms: i64) -> String {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}")
}

/// Day of the week, 0 = Monday.
pub fn weekday(ms: i64) -> u32 {
    // 1970-01-01 was a Thursday (3).
    ((ms.div_euclid(DAY_MS) + 3).rem_euclid(7)) as u32
}

/// A point in time from the command line: `30d` / `2h` (that long ago), `2026-01-31`
/// (midnight UTC), `2026-01-31T12:00:00Z`, or `now`.
pub fn parse_when(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now.saturating_sub(millis(d)));
    }
    let ms = match parse_date(s) {
        Some((y, m, d)) => days_from_civil(y, m, d) * DAY_MS,
        None => humantime::parse_rfc3339_weak(s)
            .map(|t| t.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0))
            .map_err(|_| format!("invalid time {s:?}: expected e.g. 30d, 2026-01-31 or 2026-01-31T12:00:00Z"))?,
    };
    if !(0..=MAX_MS).contains(&ms) {
        return Err(format!("time {s:?} is out of range (1970..9999)"));
    }
    Ok(ms)
}

fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let mut parts = s.split('-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok().filter(|m| (1..=12).contains(m))?;
    let d = parts.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
    parts.next().is_none().then_some((y, m, d))
}

/// "+02:00" / "-05:30" / "Z" as an offset in ms.
pub fn parse_offset(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid UTC offset {s:?}: expected e.g. +02:00");
    if s == "Z" || s == "UTC" {
        return Ok(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let h: i64 = h.parse().map_err(|_| bad())?;
    let m: i64 = m.parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * HOUR_MS + m * 60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 26), 20_783);
        for z in [-1000, 0, 59, 365, 20_783, 100_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(weekday(days_from_civil(2026, 11, 26) * DAY_MS), 3, "a Thursday");
        let mid_feb = days_from_civil(2024, 2, 15) * DAY_MS + 5 * HOUR_MS;
        assert_eq!(month_start(mid_feb), days_from_civil(2024, 2, 1) * DAY_MS);
        assert_eq!(next_month(mid_feb), days_from_civil(2024, 3, 1) * DAY_MS);
        assert_eq!(month_label(mid_feb), "2024-02");
        assert_eq!(next_month(days_from_civil(2025, 12, 31) * DAY_MS), days_from_civil(2026, 1, 1) * DAY_MS);
    }

    #[test]
    fn command_line_times() {
        let now = days_from_civil(2026, 11, 26) * DAY_MS;
        assert_eq!(parse_when("30d", now).unwrap(), now - 30 * DAY_MS);
        assert_eq!(parse_when("2026-01-31", now).unwrap(), days_from_civil(2026, 1, 31) * DAY_MS);
        assert_eq!(
            parse_when("2026-01-31T12:00:00Z", now).unwrap(),
            days_from_civil(2026, 1, 31) * DAY_MS + 12 * HOUR_MS
        );
        assert!(parse_when("last tuesday", now).unwrap_err().contains("expected e.g. 30d"));
        assert_eq!(parse_offset("+02:00").unwrap(), 2 * HOUR_MS);
        assert_eq!(parse_offset("-05:30").unwrap(), -(5 * HOUR_MS + 30 * 60_000));
        assert!(parse_offset("2").is_err());
        assert_eq!(fmt_duration(90_000), "1m");
        assert_eq!(fmt_duration(3_720_000), "1h 2m");
        assert_eq!(fmt_duration(-5), "0s");
    }
}
