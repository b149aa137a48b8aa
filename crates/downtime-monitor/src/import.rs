//! `import --format seed-log`: the log the old cron script wrote, one line per failed check:
//!
//! ```text
//! Mon Jan 12 03:15:01 SAST 2026: VF Server DOWN
//! ```
//!
//! (`$(date): <name> DOWN`, the default `date` format). The script logged only failures, so
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

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Zone abbreviations `date` prints that we know the offset of.
fn zone_offset(zone: &str) -> Option<i64> {
    Some(match zone {
        "UTC" | "GMT" | "Z" => 0,
        "SAST" | "CAT" | "EET" | "CEST" => 2 * HOUR_MS,
        "EAT" | "EEST" => 3 * HOUR_MS,
        "WAT" | "CET" | "BST" => HOUR_MS,
        _ => return None,
    })
}

/// Parse the log. `offset_ms` overrides the zone printed in each line (for zones we do not
/// know). Blank lines are skipped; anything else that is not a `... DOWN` line is an error
/// naming its line.
pub fn parse(text: &str, offset_ms: Option<i64>) -> Result<Vec<Line>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let (date, rest) = split_date(raw).ok_or((line, "expected `<date>: <name> DOWN`".to_string()))?;
        let name = rest
            .trim()
            .strip_suffix("DOWN")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or((line, format!("expected `<name> DOWN` after the date, got {rest:?}")))?;
        let at = parse_date(date, offset_ms).map_err(|m| (line, m))?;
        out.push(Line { line, at, name: name.to_string() });
    }
    Ok(out)
}

/// The date ends at the first ": " after the year.
fn split_date(line: &str) -> Option<(&str, &str)> {
    let idx = line.find(": ")?;
    Some((&line[..idx], &line[idx + 2..]))
}

/// `Mon Jan 12 03:15:01 SAST 2026` (the zone may be missing).
fn parse_date(s: &str, offset_override: Option<i64>) -> Result<i64, String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let bad = || format!("cannot read the date {s:?}: expected e.g. `Mon Jan 12 03:15:01 SAST 2026`");
    let (month, day, time, zone, year) = match parts.as_slice() {
        [_, m, d, t, z, y] => (*m, *d, *t, Some(*z), *y),
        [_, m, d, t, y] => (*m, *d, *t, None, *y),
        _ => return Err(bad()),
    };
    let m = MONTHS.iter().position(|x| month.to_ascii_lowercase().starts_with(x)).ok_or_else(bad)? as u32 + 1;
    let d: u32 = day.parse().map_err(|_| bad())?;
    let y: i64 = year.parse().map_err(|_| bad())?;
    let hms: Vec<i64> = time.split(':').map(|p| p.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
    let [h, mi, se] = hms.as_slice() else {
        return Err(bad());
    };
    let offset = match (offset_override, zone) {
        (Some(o), _) => o,
        (None, None) => 0,
        (None, Some(z)) => zone_offset(z)
            .ok_or_else(|| format!("unknown time zone {z:?}: pass --utc-offset, e.g. --utc-offset +02:00"))?,
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
        let lines = parse(text, None).unwrap();
        let base = days_from_civil(2026, 1, 12) * clock::DAY_MS;
        assert_eq!(lines[0], Line { line: 1, at: base + HOUR_MS + 15 * 60_000 + 1000, name: "VF Server".into() });
        assert_eq!(lines[1].at, base + 3 * HOUR_MS + 20 * 60_000 + 1000);
        assert_eq!(lines[1].line, 3);
    }

    #[test]
    fn bad_lines_name_their_line() {
        let err = parse("Mon Jan 12 03:15:01 UTC 2026: VF Server DOWN\ngarbage\n", None).unwrap_err();
        assert_eq!(err.0, 2);
        let err = parse("Mon Jan 12 03:15:01 XYZT 2026: VF Server DOWN\n", None).unwrap_err();
        assert!(err.1.contains("--utc-offset"), "{err:?}");
        assert!(parse("Mon Jan 12 03:15:01 XYZT 2026: VF Server DOWN\n", Some(0)).is_ok());
        let err = parse("Mon Jan 12 03:15:01 UTC 2026: VF Server UP\n", None).unwrap_err();
        assert!(err.1.contains("DOWN"));
    }

    #[test]
    fn consecutive_lines_form_one_outage() {
        let i = 300_000;
        let o = outages(&[0, i, 2 * i, 10 * i, 11 * i], i);
        assert_eq!(o, vec![(0, 3 * i), (10 * i, 12 * i)]);
    }
}
