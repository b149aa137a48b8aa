//! `import --format seed-log`: the log the old cron script wrote, one line per failed check:
//!
//! ```text
//! Mon Jan 12 03:15:01 SAST 2026: VF Server DOWN
//! ```
//!
//! (`$(date): <name> DOWN`). What `date` prints in common locales is read: any order of
//! weekday, day, month (English or German), year and time, a 12-hour clock, a zone
//! abbreviation or a numeric zone (`+04`); a line that cannot be read is reported with its
//! number (`--skip-bad-lines` imports the rest). The script logged only failures, so
//! the import assumes that it ran every `--interval` (5 minutes in the seed's crontab) over
//! the whole span of the log and that every run without a line was a success. Lines closer
//! together than 1.5 intervals belong to one outage, which lasts from its first line to one
//! interval after its last.

use crate::clock::{self, HOUR_MS};

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub line: usize,
    pub at: i64,
    pub name: String,
}

/// Month names as `date` prints them in English and German (first three letters).
const MONTHS: [&[&str]; 12] = [
    &["jan"],
    &["feb"],
    &["mar", "mär", "mrz"],
    &["apr"],
    &["may", "mai"],
    &["jun"],
    &["jul"],
    &["aug"],
    &["sep"],
    &["oct", "okt"],
    &["nov"],
    &["dec", "dez"],
];

/// Weekday names (English and German), skipped.
const WEEKDAYS: [&str; 14] =
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "mo", "di", "mi", "do", "fr", "sa", "so"];

/// Zone abbreviations `date` prints whose offset we know (IST is India's).
fn zone_offset(zone: &str) -> Option<i64> {
    let h = |n: i64| n * HOUR_MS;
    Some(match zone {
        "UTC" | "GMT" | "Z" => 0,
        "WAT" | "CET" | "BST" | "MEZ" | "WEST" | "IST-IE" => h(1),
        "SAST" | "CAT" | "EET" | "CEST" | "MESZ" => h(2),
        "EAT" | "EEST" | "MSK" => h(3),
        "GST" => h(4),
        "PKT" => h(5),
        "IST" => h(5) + 30 * 60_000,
        "WIB" => h(7),
        "HKT" | "SGT" | "AWST" => h(8),
        "JST" | "KST" => h(9),
        "AEST" => h(10),
        "AEDT" => h(11),
        "NZST" => h(12),
        "NZDT" => h(13),
        "BRT" | "ART" => h(-3),
        "EDT" => h(-4),
        "EST" | "CDT" => h(-5),
        "CST" | "MDT" => h(-6),
        "MST" | "PDT" => h(-7),
        "PST" => h(-8),
        _ => return None,
    })
}

/// A numeric zone as tzdata prints it where there is no abbreviation (`+04`, `-03`,
/// `+0530`, `+05:30`).
fn numeric_zone(z: &str) -> Option<i64> {
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = match digits.len() {
        2 => (digits.parse().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    (h <= 14 && m < 60).then_some(sign * (h * HOUR_MS + m * 60_000))
}

/// Parse the log. `offset_ms` is the zone of lines whose zone is missing or not known; a
/// known zone in a line wins. Blank lines are skipped; every other line that cannot be read
/// is returned with its number and why, after the lines that could.
pub fn parse(text: &str, offset_ms: Option<i64>) -> (Vec<Line>, Vec<(usize, String)>) {
    let (mut out, mut bad) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        match parse_line(raw, offset_ms) {
            Ok((at, name)) => out.push(Line { line, at, name }),
            Err(m) => bad.push((line, m)),
        }
    }
    (out, bad)
}

fn parse_line(raw: &str, offset_ms: Option<i64>) -> Result<(i64, String), String> {
    let (date, rest) = split_date(raw).ok_or("expected `<date>: <name> DOWN`")?;
    let name = rest
        .trim()
        .strip_suffix("DOWN")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or(format!("expected `<name> DOWN` after the date, got {rest:?}"))?;
    Ok((parse_date(date, offset_ms)?, name.to_string()))
}

/// The date ends at the first ": " (a time's colons are followed by digits).
fn split_date(line: &str) -> Option<(&str, &str)> {
    let idx = line.find(": ")?;
    Some((&line[..idx], &line[idx + 2..]))
}

/// What `date` prints in common locales, in any order: `Mon Jan 12 03:15:01 SAST 2026`,
/// `Tue 24 Nov 2026 02:05:01 PM SAST`, `Tue 24 Nov 14:05:01 SAST 2026`, `Di 24. Nov
/// 14:05:01 SAST 2026`, with a 12-hour clock (AM/PM), a numeric zone (`+04`) or none.
fn parse_date(s: &str, offset_override: Option<i64>) -> Result<i64, String> {
    let bad = |why: &str| format!("cannot read the date {s:?} ({why}): expected e.g. `Mon Jan 12 03:15:01 SAST 2026`");
    let (mut month, mut day, mut year, mut time, mut pm, mut zone) = (None, None, None, None, None, None);
    let mut zone_name = None;
    for tok in s.split_whitespace() {
        let t = tok.trim_end_matches([',', '.']);
        let lower = t.to_lowercase();
        if t.contains(':') && t.chars().all(|c| c.is_ascii_digit() || c == ':') {
            time = Some(t);
        } else if lower == "am" || lower == "pm" {
            pm = Some(lower == "pm");
        } else if t.len() == 4 && t.chars().all(|c| c.is_ascii_digit()) {
            year = t.parse::<i64>().ok();
        } else if !t.is_empty() && t.len() <= 2 && t.chars().all(|c| c.is_ascii_digit()) {
            day = t.parse::<u32>().ok();
        } else if let Some(o) = numeric_zone(t) {
            zone = Some(Some(o));
        } else if let Some(m) = MONTHS.iter().position(|names| names.iter().any(|n| lower.starts_with(n))) {
            if month.is_none() {
                month = Some(m as u32 + 1);
            }
        } else if WEEKDAYS.iter().any(|w| lower.starts_with(w)) && month.is_none() && day.is_none() {
            // A weekday: not needed.
        } else if t.chars().all(|c| c.is_ascii_alphabetic()) {
            zone = Some(zone_offset(&t.to_ascii_uppercase()));
            zone_name = Some(t);
        } else {
            return Err(bad(&format!("unexpected {tok:?}")));
        }
    }
    let (Some(m), Some(d), Some(y), Some(time)) = (month, day, year, time) else {
        return Err(bad("a month, day, year and time are needed"));
    };
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().map_err(|_| bad("time"))).collect::<Result<_, _>>()?;
    let (h, mi, se) = match hms.as_slice() {
        [h, m, s] => (*h, *m, *s),
        [h, m] => (*h, *m, 0),
        _ => return Err(bad("time")),
    };
    let h = match pm {
        Some(_) if !(1..=12).contains(&h) => return Err(bad("a 12-hour clock runs from 1 to 12")),
        Some(true) => h % 12 + 12,
        Some(false) => h % 12,
        None => h,
    };
    if !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad("out of range"));
    }
    let offset = match (zone, offset_override) {
        (Some(Some(o)), _) => o,
        (_, Some(o)) => o,
        (None, None) => 0,
        (Some(None), None) => {
            let z = zone_name.unwrap_or("?");
            return Err(format!("unknown time zone {z:?}: pass --utc-offset, e.g. --utc-offset +02:00"));
        }
    };
    let local = clock::days_from_civil(y, m, d) * clock::DAY_MS + (h * 3600 + mi * 60 + se) * 1000;
    Ok(local - offset)
}

/// Group DOWN times into outages `[first, last + interval)`.
pub fn outages(times: &[i64], interval_ms: i64) -> Vec<(i64, i64)> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for t in sorted {
        match out.last_mut() {
            Some((_, end)) if t - (*end - interval_ms) <= interval_ms * 3 / 2 => *end = t + interval_ms,
            _ => out.push((t, t + interval_ms)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::days_from_civil;

    #[test]
    fn parses_date_output_lines() {
        let text = "Mon Jan 12 03:15:01 SAST 2026: VF Server DOWN\n\nMon Jan 12 03:20:01 UTC 2026: VF Server DOWN\n";
        let (lines, bad) = parse(text, None);
        assert!(bad.is_empty());
        let base = days_from_civil(2026, 1, 12) * clock::DAY_MS;
        assert_eq!(lines[0], Line { line: 1, at: base + HOUR_MS + 15 * 60_000 + 1000, name: "VF Server".into() });
        assert_eq!(lines[1].at, base + 3 * HOUR_MS + 20 * 60_000 + 1000);
        assert_eq!(lines[1].line, 3);
    }

    #[test]
    fn bad_lines_name_their_line() {
        let one = |text: &str, o| parse(text, o).1.into_iter().next();
        assert_eq!(one("Mon Jan 12 03:15:01 UTC 2026: VF Server DOWN\ngarbage\n", None).unwrap().0, 2);
        let err = one("Mon Jan 12 03:15:01 XYZT 2026: VF Server DOWN\n", None).unwrap();
        assert!(err.1.contains("--utc-offset"), "{err:?}");
        assert!(one("Mon Jan 12 03:15:01 XYZT 2026: VF Server DOWN\n", Some(0)).is_none());
        assert!(one("Mon Jan 12 03:15:01 UTC 2026: VF Server UP\n", None).unwrap().1.contains("DOWN"));
    }

    #[test]
    fn what_date_prints_in_common_locales() {
        // 2026-11-24 12:05:01 UTC, as written in different zones and locales.
        let utc = days_from_civil(2026, 11, 24) * clock::DAY_MS + 12 * HOUR_MS + 5 * 60_000 + 1000;
        for (text, want) in [
            ("Tue 24 Nov 2026 02:05:01 PM SAST", utc),
            ("Tue 24 Nov 14:05:01 SAST 2026", utc),
            ("Tue Nov 24 14:05:01 SAST 2026", utc),
            ("Di 24. Nov 14:05:01 SAST 2026", utc),
            ("Di 24. Nov 13:05:01 MEZ 2026", utc),
            ("Tue Nov 24 16:05:01 +04 2026", utc),
            ("Tue Nov 24 09:05:01 -03 2026", utc),
            ("Tue Nov 24 07:05:01 AM EST 2026", utc),
            ("Tue Nov 24 05:35:01 PM IST 2026", utc),
            ("Tue 24 Nov 2026 12:05:01 PM UTC", utc),
            ("Tue 24 Nov 2026 12:05:01 AM UTC", utc - 12 * HOUR_MS),
        ] {
            assert_eq!(parse_date(text, None), Ok(want), "{text}");
        }
        // --utc-offset applies only where the zone is missing or unknown.
        assert_eq!(parse_date("Tue Nov 24 14:05:01 SAST 2026", Some(-5 * HOUR_MS)), Ok(utc));
        assert_eq!(parse_date("Tue Nov 24 14:05:01 XYZT 2026", Some(2 * HOUR_MS)), Ok(utc));
        assert_eq!(parse_date("Tue Nov 24 14:05:01 2026", Some(2 * HOUR_MS)), Ok(utc));
        assert!(parse_date("Tue Nov 24 13:05:01 PM UTC 2026", None).is_err());
    }

    #[test]
    fn consecutive_lines_form_one_outage() {
        let i = 300_000;
        let o = outages(&[0, i, 2 * i, 10 * i, 11 * i], i);
        assert_eq!(o, vec![(0, 3 * i), (10 * i, 12 * i)]);
    }
}
