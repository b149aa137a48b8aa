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

/// A time zone for calendar months: UTC, or an IANA zone from the system's tzdata.
#[derive(Debug, Clone, Default)]
pub struct Zone(Option<jiff::tz::TimeZone>);

impl Zone {
    /// `None` is UTC; a name not in tzdata is an error.
    pub fn new(name: Option<&str>) -> Result<Zone, String> {
        match name {
            None => Ok(Zone(None)),
            Some(n) => jiff::tz::TimeZone::get(n)
                .map(|tz| Zone(Some(tz)))
                .map_err(|e| format!("timezone {n:?} is not a known time zone (e.g. Africa/Johannesburg): {e}")),
        }
    }

    fn zoned(&self, ms: i64) -> Option<jiff::Zoned> {
        let tz = self.0.as_ref()?;
        jiff::Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned(tz.clone()))
    }

    /// Start of the calendar month containing `ms`, in this zone.
    pub fn month_start(&self, ms: i64) -> i64 {
        match self.zoned(ms).and_then(|z| z.first_of_month().and_then(|z| z.start_of_day()).ok()) {
            Some(z) => z.timestamp().as_millisecond(),
            None => month_start(ms),
        }
    }

    /// Start of the month after the one containing `ms`, in this zone.
    pub fn next_month(&self, ms: i64) -> i64 {
        let next = self.zoned(self.month_start(ms)).and_then(|z| {
            z.checked_add(jiff::Span::new().months(1))
                .and_then(|z| z.first_of_month())
                .and_then(|z| z.start_of_day())
                .ok()
        });
        match next {
            Some(z) => z.timestamp().as_millisecond(),
            None if self.0.is_some() => MAX_MS,
            None => next_month(ms),
        }
    }

    /// "2026-03" for the month containing `ms`, in this zone.
    pub fn month_label(&self, ms: i64) -> String {
        match self.zoned(ms) {
            Some(z) => format!("{:04}-{:02}", z.year(), z.month()),
            None => month_label(ms),
        }
    }

    /// The zone's name ("UTC" without one).
    pub fn name(&self) -> String {
        self.0.as_ref().and_then(|tz| tz.iana_name().map(str::to_string)).unwrap_or_else(|| "UTC".into())
    }
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
    fn months_in_a_time_zone_start_at_local_midnight() {
        let sast = Zone::new(Some("Africa/Johannesburg")).unwrap();
        // 2026-03-31T23:30:00Z is already 1 April in Johannesburg (UTC+2).
        let ms = days_from_civil(2026, 3, 31) * DAY_MS + 23 * HOUR_MS + 30 * 60_000;
        assert_eq!(sast.month_label(ms), "2026-04");
        assert_eq!(sast.month_start(ms), days_from_civil(2026, 3, 31) * DAY_MS + 22 * HOUR_MS);
        assert_eq!(sast.next_month(ms), days_from_civil(2026, 4, 30) * DAY_MS + 22 * HOUR_MS);
        let utc = Zone::default();
        assert_eq!(
            (utc.month_label(ms), utc.month_start(ms)),
            ("2026-03".into(), days_from_civil(2026, 3, 1) * DAY_MS)
        );
        assert!(Zone::new(Some("Mars/Olympus")).is_err());
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
