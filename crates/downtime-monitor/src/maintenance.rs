//! Maintenance windows: ad-hoc ones (`maintenance add --for 2h`, kept in the database) and
//! weekly recurring ones from the config. A failure inside a window is recorded but is
//! neither downtime nor an incident, and raises no alert.

use standby_common::config::ConfigFile;

use crate::clock::{self, DAY_MS};
use crate::config::Config;
use crate::intervals::Spans;
use crate::store::Window;

/// A weekly window, validated.
#[derive(Debug, Clone)]
pub struct Recurring {
    /// None = every target.
    pub target: Option<String>,
    /// 0 = Monday .. 6 = Sunday.
    pub days: Vec<u32>,
    /// Start, in ms after local midnight.
    pub start_ms: i64,
    pub duration_ms: i64,
    /// Local time minus UTC.
    pub offset_ms: i64,
    pub reason: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Validate the recurring windows of the config; errors name file:line:col.
pub fn recurring(file: &ConfigFile, config: &Config) -> anyhow::Result<Vec<Recurring>> {
    config
        .maintenance
        .iter()
        .map(|spanned| {
            let spec = spanned.get_ref();
            let err = |m: String| file.error_at(spanned.span().start, format!("maintenance window: {m}"));
            if let Some(t) = spec.target.as_deref().filter(|t| *t != "*") {
                if !config.targets.iter().any(|x| x.get_ref().name == t) {
                    let names = config.targets.iter().map(|x| x.get_ref().name.as_str());
                    let hint = standby_common::config::suggest(t, names)
                        .map(|s| format!(" (did you mean {s:?}?)"))
                        .unwrap_or_default();
                    return Err(err(format!("target {t:?} is not a configured target{hint}")));
                }
            }
            let days = match &spec.days {
                None => (0..7).collect(),
                Some(list) => list
                    .iter()
                    .map(|d| {
                        let d3: String = d.to_ascii_lowercase().chars().take(3).collect();
                        DAYS.iter()
                            .position(|x| *x == d3)
                            .map(|i| i as u32)
                            .ok_or_else(|| err(format!("invalid day {d:?}: expected one of {}", DAYS.join(", "))))
                    })
                    .collect::<anyhow::Result<_>>()?,
            };
            let (h, m) = spec
                .start
                .split_once(':')
                .and_then(|(h, m)| Some((h.parse::<i64>().ok()?, m.parse::<i64>().ok()?)))
                .filter(|(h, m)| (0..24).contains(h) && (0..60).contains(m))
                .ok_or_else(|| err(format!("invalid start {:?}: expected HH:MM", spec.start)))?;
            let offset_ms = match &spec.utc_offset {
                Some(o) => clock::parse_offset(o).map_err(err)?,
                None => 0,
            };
            let duration_ms = standby_common::duration::millis(spec.duration.get());
            if duration_ms <= 0 || duration_ms > 7 * DAY_MS {
                return Err(err("duration must be between 1s and 7d".into()));
            }
            Ok(Recurring {
                target: spec.target.clone().filter(|t| t != "*"),
                days,
                start_ms: (h * 60 + m) * 60_000,
                duration_ms,
                offset_ms,
                reason: spec.reason.clone().unwrap_or_else(|| "recurring maintenance".into()),
            })
        })
        .collect()
}

impl Recurring {
    fn applies(&self, target: &str) -> bool {
        self.target.as_deref().is_none_or(|t| t == target)
    }

    /// The occurrences that overlap `[from, to)`.
    pub fn spans(&self, target: &str, from: i64, to: i64) -> Vec<(i64, i64)> {
        if !self.applies(target) {
            return Vec::new();
        }
        let mut out = Vec::new();
        // Local days from the day before `from` (a window can cross midnight) to `to`.
        let first_day = (from + self.offset_ms - self.duration_ms).div_euclid(DAY_MS) - 1;
        let last_day = (to + self.offset_ms).div_euclid(DAY_MS);
        for day in first_day..=last_day {
            let local_midnight = day * DAY_MS;
            if !self.days.contains(&clock::weekday(local_midnight)) {
                continue;
            }
            let start = local_midnight + self.start_ms - self.offset_ms;
            let end = start + self.duration_ms;
            if start < to && end > from {
                out.push((start, end));
            }
        }
        out
    }
}

/// All maintenance known for a run: recurring windows plus the database's ad-hoc ones.
#[derive(Debug, Clone, Default)]
pub struct Maintenance {
    pub recurring: Vec<Recurring>,
    pub windows: Vec<Window>,
}

impl Maintenance {
    /// Is `target` in maintenance at `at`?
    pub fn active(&self, target: &str, at: i64) -> bool {
        self.spans(target, at, at + 1).total() > 0
    }

    /// Maintenance time of `target` within `[from, to)`.
    pub fn spans(&self, target: &str, from: i64, to: i64) -> Spans {
        let mut all: Vec<(i64, i64)> = self.recurring.iter().flat_map(|r| r.spans(target, from, to)).collect();
        all.extend(self.windows.iter().filter(|w| w.target == "*" || w.target == target).map(|w| (w.start, w.end)));
        Spans::new(all).clip(from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{days_from_civil, HOUR_MS};

    #[test]
    fn weekly_window_with_offset_crossing_midnight() {
        // Sundays 23:30 local (+02:00) for 1h = 21:30–22:30 UTC on Sunday.
        let r = Recurring {
            target: None,
            days: vec![6],
            start_ms: (23 * 60 + 30) * 60_000,
            duration_ms: HOUR_MS,
            offset_ms: 2 * HOUR_MS,
            reason: "x".into(),
        };
        let sunday = days_from_civil(2026, 11, 29) * DAY_MS; // a Sunday
        let spans = r.spans("app", sunday - 7 * DAY_MS, sunday + 2 * DAY_MS);
        assert_eq!(
            spans.last().copied(),
            Some((sunday + 21 * HOUR_MS + 30 * 60_000, sunday + 22 * HOUR_MS + 30 * 60_000))
        );
        assert_eq!(spans.len(), 2, "two Sundays in nine days: {spans:?}");
        let m = Maintenance { recurring: vec![r], windows: vec![] };
        assert!(m.active("app", sunday + 22 * HOUR_MS));
        assert!(!m.active("app", sunday + 23 * HOUR_MS));
    }
}
