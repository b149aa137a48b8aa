//! Response times for the HTML report: p50 and p95 latency per target per day (UTC), from
//! the successful checks' raw samples (a failed check's latency is its timeout, not a
//! response time). Raw samples are kept for `retention`, so older days have no row.

use serde::Serialize;

use crate::clock::{self, DAY_MS};

/// One day of a target's response times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyDay {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub day_ms: i64,
    /// Successful checks that day.
    pub samples: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// The `p`-th percentile (0 < p ≤ 100) of sorted values, by the nearest-rank method: the
/// smallest value with at least p % of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Per-day p50/p95 from (time, latency ms) pairs of successful checks.
pub fn per_day(samples: &[(i64, f64)]) -> Vec<LatencyDay> {
    let mut days: std::collections::BTreeMap<i64, Vec<f64>> = std::collections::BTreeMap::new();
    for &(at, ms) in samples {
        if ms.is_finite() {
            days.entry(at.div_euclid(DAY_MS) * DAY_MS).or_default().push(ms);
        }
    }
    days.into_iter()
        .filter_map(|(day_ms, mut v)| {
            v.sort_by(f64::total_cmp);
            Some(LatencyDay {
                day: clock::fmt(day_ms).chars().take(10).collect(),
                day_ms,
                samples: v.len(),
                p50_ms: percentile(&v, 50.0)?,
                p95_ms: percentile(&v, 95.0)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_per_day() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!((percentile(&v, 50.0), percentile(&v, 95.0)), (Some(10.0), Some(19.0)));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        let mut s: Vec<(i64, f64)> = (1..=20).map(|i| (i64::from(i) * 1000, f64::from(21 - i))).collect();
        s.push((DAY_MS + 5, 100.0));
        let days = per_day(&s);
        assert_eq!(days.len(), 2);
        assert_eq!((days[0].samples, days[0].p50_ms, days[0].p95_ms), (20, 10.0, 19.0));
        assert_eq!((days[1].day.as_str(), days[1].p50_ms, days[1].p95_ms), ("1970-01-02", 100.0, 100.0));
    }

    /// Through the store and the report: the successful checks' latencies of two days give
    /// the nearest-rank p50/p95 of each day; failures and clock steps are left out.
    #[test]
    fn the_html_report_gives_p50_p95_per_day_from_the_stored_checks() {
        use crate::store::{Store, Stored};
        use crate::target::Sample;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store = Store::open(&dir.path().join("h.db"), "v").unwrap_or_else(|e| panic!("{e}"));
        let day0 = (clock::now_ms() - 3 * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
        let sample = |at: i64, ok: bool, latency_ms: f64| Sample {
            target: "app".into(),
            at,
            ok,
            latency_ms,
            error: None,
            interval_ms: 60_000,
            power: None,
        };
        let mut rows: Vec<Stored> = Vec::new();
        // Day 0: 1..=100 ms (shuffled by a stride), plus a failed check at 10 s.
        for i in 0..100i64 {
            rows.push(Stored::new(&sample(day0 + i * 60_000, true, ((i * 37) % 100 + 1) as f64), false));
        }
        rows.push(Stored::new(&sample(day0 + 101 * 60_000, false, 10_000.0), false));
        // Day 1: 19 checks at 5 ms and one at 50 ms, and a clock-step sample at 999 ms.
        for i in 0..20i64 {
            rows.push(Stored::new(&sample(day0 + DAY_MS + i * 60_000, true, if i == 7 { 50.0 } else { 5.0 }), false));
        }
        let mut stepped = Stored::new(&sample(day0 + DAY_MS + 60_000, true, 999.0), false);
        stepped.clock_step = true;
        rows.push(stepped);
        store.save_round(&rows, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
        let scope = crate::report::Scope {
            targets: vec!["app".into()],
            from: day0,
            to: day0 + 2 * DAY_MS,
            thresholds: crate::config::DecisionThresholds {
                do_nothing_above: 95.0,
                watch_above: 85.0,
                ups_above: 80.0,
            },
            monthly: false,
            quorum: None,
            zone: clock::Zone::new(None).unwrap_or_else(|e| panic!("{e}")),
            ups: Vec::new(),
            latency: true,
        };
        let maint = crate::maintenance::Maintenance { recurring: Vec::new(), windows: Vec::new() };
        let report = crate::report::build(&mut store, &maint, &scope).unwrap_or_else(|e| panic!("{e}"));
        let days = &report.targets[0].latency;
        assert_eq!(days.len(), 2, "{days:?}");
        assert_eq!((days[0].samples, days[0].p50_ms, days[0].p95_ms), (100, 50.0, 95.0));
        assert_eq!((days[1].samples, days[1].p50_ms, days[1].p95_ms), (20, 5.0, 5.0));
        assert_eq!(days[0].day, clock::fmt(day0)[..10]);
        let html = crate::render::html(&report).unwrap_or_else(|e| panic!("{e}"));
        assert!(html.contains("<h2>app response times</h2>"), "{html}");
        assert!(html.contains("<td>100</td><td>50.0 ms</td><td>95.0 ms</td>"), "{html}");
        // Without asking (human, JSON), the raw samples are not read.
        let report = crate::report::build(&mut store, &maint, &crate::report::Scope { latency: false, ..scope })
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.targets[0].latency.is_empty());
    }
}
