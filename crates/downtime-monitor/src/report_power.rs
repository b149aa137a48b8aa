//! The power figures of a `kind = "ups"` target's report: what the seeds' "should we buy a
//! UPS" decision needs once the UPS is bought. From the readings kept with the samples: the
//! power cuts (first on-battery reading to the first on-line one), the time the UPS carried
//! the load, the longest cut, the lowest runtime left seen, and the cuts that outlasted the
//! battery (the UPS reported LB or OFF, or could not be read, during the cut).

use serde::Serialize;

use crate::clock;
use crate::store::Stored;

/// One power cut as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Cut {
    pub started: String,
    pub started_ms: i64,
    /// None while the cut is still going on at the end of what was seen.
    pub ended_ms: Option<i64>,
    /// From the first on-battery reading to mains back (or the last sample seen).
    pub duration_ms: i64,
    /// The part of it the UPS carried the load (readable, on battery, not OFF).
    pub carried_ms: i64,
    /// The lowest `battery.runtime` the UPS reported during the cut (seconds).
    pub lowest_runtime_s: Option<f64>,
    /// Why the battery did not last: `LB`, `OFF` or `unreachable` (the first seen), if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlasted_battery: Option<&'static str>,
}

/// The power figures of one UPS target over the period.
#[derive(Debug, Clone, Serialize)]
pub struct PowerFigures {
    /// Time the UPS carried the load on battery in the period.
    pub on_battery_ms: i64,
    pub on_battery_hours: f64,
    /// Cuts that overlap the period.
    pub cuts: usize,
    pub longest_cut_ms: i64,
    pub lowest_runtime_s: Option<f64>,
    /// Cuts during which the UPS reached LB or OFF or became unreachable.
    pub cuts_outlasted_battery: usize,
    pub cut_list: Vec<Cut>,
}

struct Open {
    started: i64,
    last: i64,
    last_interval: i64,
    carried: Vec<(i64, i64)>,
    lowest: Option<f64>,
    outlasted: Option<&'static str>,
}

/// The figures over `[from, to)` from `samples` (one vantage, oldest first; those taken with
/// the clock stepped back are left out).
pub fn figures(samples: &[Stored], from: i64, to: i64) -> PowerFigures {
    let trusted: Vec<&Stored> = samples.iter().filter(|s| !s.clock_step).collect();
    let mut cuts: Vec<(Open, Option<i64>)> = Vec::new();
    let mut open: Option<Open> = None;
    for (i, s) in trusted.iter().enumerate() {
        let s = &s.sample;
        // How long this sample vouches for: until the next one if it came within 1.5
        // intervals, else one interval (as the uptime coverage counts it).
        let until = match trusted.get(i + 1) {
            Some(n) if n.sample.at - s.at <= s.interval_ms + s.interval_ms / 2 => n.sample.at,
            _ => s.at + s.interval_ms,
        };
        match &s.power {
            Some(r) if r.status.on_battery() || (r.status.low_battery() && !r.status.on_line()) => {
                let c = open.get_or_insert(Open {
                    started: s.at,
                    last: s.at,
                    last_interval: s.interval_ms,
                    carried: Vec::new(),
                    lowest: None,
                    outlasted: None,
                });
                c.last = s.at;
                c.last_interval = s.interval_ms;
                if let Some(rt) = r.runtime_s {
                    c.lowest = Some(c.lowest.map_or(rt, |l: f64| l.min(rt)));
                }
                if r.status.off() {
                    c.outlasted.get_or_insert("OFF");
                } else {
                    c.carried.push((s.at, until));
                    if r.status.low_battery() {
                        c.outlasted.get_or_insert("LB");
                    }
                }
            }
            Some(r) if r.status.on_line() => {
                if let Some(c) = open.take() {
                    cuts.push((c, Some(s.at)));
                }
            }
            other => {
                if let Some(c) = open.as_mut() {
                    c.last = s.at;
                    c.last_interval = s.interval_ms;
                    c.outlasted.get_or_insert(if other.is_some() { "OFF" } else { "unreachable" });
                }
            }
        }
    }
    if let Some(c) = open.take() {
        cuts.push((c, None));
    }
    let clip = |(a, b): (i64, i64)| (a.max(from), b.min(to));
    let mut list = Vec::new();
    for (c, ended) in cuts {
        let end = ended.unwrap_or(c.last + c.last_interval);
        let (a, b) = clip((c.started, end));
        if b <= a {
            continue;
        }
        let carried = c.carried.iter().map(|&span| clip((span.0, span.1.min(end)))).map(|(a, b)| (b - a).max(0)).sum();
        list.push(Cut {
            started: clock::fmt(c.started),
            started_ms: c.started,
            ended_ms: ended,
            duration_ms: b - a,
            carried_ms: carried,
            lowest_runtime_s: c.lowest,
            outlasted_battery: c.outlasted,
        });
    }
    let on_battery_ms: i64 = list.iter().map(|c| c.carried_ms).sum();
    PowerFigures {
        on_battery_ms,
        on_battery_hours: (on_battery_ms as f64 / clock::HOUR_MS as f64 * 100.0).round() / 100.0,
        cuts: list.len(),
        longest_cut_ms: list.iter().map(|c| c.duration_ms).max().unwrap_or(0),
        lowest_runtime_s: list.iter().filter_map(|c| c.lowest_runtime_s).reduce(f64::min),
        cuts_outlasted_battery: list.iter().filter(|c| c.outlasted_battery.is_some()).count(),
        cut_list: list,
    }
}

/// The on-battery spans of the cuts, for the timeline's power band.
pub fn spans(p: &PowerFigures, to: i64) -> Vec<(i64, i64)> {
    p.cut_list.iter().map(|c| (c.started_ms, c.started_ms + c.duration_ms)).map(|(a, b)| (a, b.min(to))).collect()
}

/// One line for the human report.
pub fn summary(p: &PowerFigures) -> String {
    format!(
        "power: on battery {} ({:.2} h) in {} cut(s), longest {}, lowest runtime left {}, {} cut(s) outlasted the battery",
        clock::fmt_duration(p.on_battery_ms),
        p.on_battery_hours,
        p.cuts,
        clock::fmt_duration(p.longest_cut_ms),
        p.lowest_runtime_s.map(|s| clock::fmt_duration((s * 1000.0) as i64)).unwrap_or_else(|| "-".into()),
        p.cuts_outlasted_battery
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Sample;
    use standby_common::nut::{Reading, Status};

    fn s(at: i64, status: Option<&str>, runtime: f64) -> Stored {
        Stored::new(
            &Sample {
                target: "ups".into(),
                at,
                ok: status.is_some(),
                latency_ms: 1.0,
                error: None,
                interval_ms: 10,
                power: status.map(|st| Reading { status: Status::parse(st), charge: None, runtime_s: Some(runtime) }),
            },
            false,
        )
    }

    #[test]
    fn cuts_carried_time_lowest_runtime_and_outlasted() {
        let samples = [
            s(0, Some("OL"), 5400.0),
            s(10, Some("OB DISCHRG"), 3000.0),
            s(20, Some("OB DISCHRG"), 2500.0),
            s(30, Some("OL CHRG"), 5000.0),
            s(40, Some("OB DISCHRG"), 900.0),
            s(50, Some("OB DISCHRG LB"), 100.0),
            s(60, None, 0.0),
            s(70, None, 0.0),
            s(80, Some("OL CHRG"), 100.0),
        ];
        let p = figures(&samples, 0, 100);
        assert_eq!((p.cuts, p.cuts_outlasted_battery, p.on_battery_ms, p.longest_cut_ms), (2, 1, 40, 40));
        assert_eq!(p.lowest_runtime_s, Some(100.0));
        assert_eq!(p.cut_list[0].outlasted_battery, None);
        assert_eq!(p.cut_list[1].outlasted_battery, Some("LB"));
        assert_eq!(spans(&p, 100), [(10, 30), (40, 80)]);
        // Clipped to a period.
        let p = figures(&samples, 15, 45);
        assert_eq!((p.cuts, p.on_battery_ms, p.longest_cut_ms), (2, 20, 15));
    }
}
