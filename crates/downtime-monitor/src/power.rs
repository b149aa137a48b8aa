//! The power state of a `kind = "ups"` target, beside its health: on mains, on battery, or
//! battery low. Health says whether the UPS can be read and still carries the load (DOWN only
//! when upsd/the UPS is unreachable or the status is LB/OFF); this says where the power comes
//! from. Each change is one event: `on-battery` when OB first shows, `battery-low` once per
//! cut (LB, or runtime under the target's `low-runtime`), `power-restored` when OL is back.
//! A sample without a reading (upsd unreachable) changes nothing here.

use serde::{Deserialize, Serialize};
use standby_common::nut::Reading;

use crate::machine::{TargetState, Transition};
use crate::target::{How, Sample, Target};

/// Where the load's power comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Power {
    #[default]
    Mains,
    OnBattery,
    BatteryLow,
}

impl Power {
    pub fn as_str(self) -> &'static str {
        match self {
            Power::Mains => "mains",
            Power::OnBattery => "on-battery",
            Power::BatteryLow => "battery-low",
        }
    }
}

/// What the monitor remembers of a UPS target's power between runs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PowerState {
    pub power: Power,
    /// When the present cut began (the first OB sample), while on battery.
    pub since: Option<i64>,
}

/// Apply one sample's reading; returns the power events it causes (at most two: a cut seen
/// first with LB is `on-battery` then `battery-low`).
pub fn apply(state: &mut TargetState, sample: &Sample, target: &Target) -> Vec<Transition> {
    let (Some(reading), How::Ups(check)) = (&sample.power, &target.how) else {
        return Vec::new();
    };
    let at = sample.at.max(state.last_at);
    let ps = state.power.get_or_insert_with(PowerState::default);
    let mut out = Vec::new();
    let on_battery = reading.status.on_battery() || (reading.status.low_battery() && !reading.status.on_line());
    if on_battery {
        let started = *ps.since.get_or_insert(at);
        if ps.power == Power::Mains {
            ps.power = Power::OnBattery;
            out.push(Transition::OnBattery { started, reading: reading.clone() });
        }
        let low_runtime = check.low_runtime.map(|d| d.as_secs_f64());
        let low =
            reading.status.low_battery() || matches!((reading.runtime_s, low_runtime), (Some(r), Some(l)) if r < l);
        if low && ps.power == Power::OnBattery {
            ps.power = Power::BatteryLow;
            out.push(Transition::BatteryLow { started, reading: reading.clone() });
        }
    } else if reading.status.on_line() && ps.power != Power::Mains {
        let started = ps.since.unwrap_or(at);
        *ps = PowerState::default();
        out.push(Transition::PowerRestored { started, ended: at, reading: reading.clone() });
    }
    out
}

/// A reading in a few words for alerts: `OB DISCHRG, 55% charge, 10m runtime`.
pub fn describe(r: &Reading) -> String {
    let mut parts = vec![format!("ups.status {}", r.status)];
    if let Some(c) = r.charge {
        parts.push(format!("{c:.0}% charge"));
    }
    if let Some(s) = r.runtime_s {
        parts.push(format!("{} runtime", crate::clock::fmt_duration((s * 1000.0) as i64)));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;
    use crate::target::UpsCheck;
    use standby_common::nut::Status;
    use std::time::Duration;

    fn target(low_runtime: Option<u64>) -> Target {
        Target {
            name: "ups".into(),
            kind: Kind::Ups,
            how: How::Ups(Box::new(UpsCheck {
                address: "127.0.0.1:1".into(),
                ups: "apc".into(),
                auth: None,
                low_runtime: low_runtime.map(Duration::from_secs),
            })),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            failure_threshold: 1,
            recovery_threshold: 1,
        }
    }

    fn sample(at: i64, status: &str, runtime: f64) -> Sample {
        Sample {
            target: "ups".into(),
            at,
            ok: true,
            latency_ms: 1.0,
            error: None,
            interval_ms: 10_000,
            power: Some(Reading { status: Status::parse(status), charge: Some(50.0), runtime_s: Some(runtime) }),
        }
    }

    fn names(trs: &[Transition]) -> Vec<&'static str> {
        trs.iter()
            .map(|t| match t {
                Transition::OnBattery { .. } => "on-battery",
                Transition::BatteryLow { .. } => "battery-low",
                Transition::PowerRestored { .. } => "power-restored",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn one_event_per_change_and_low_runtime_counts_as_low() {
        let t = target(Some(900));
        let mut st = TargetState::new("ups");
        let mut all = Vec::new();
        for (i, (status, runtime)) in [
            ("OL", 5400.0),
            ("OB DISCHRG", 3000.0),
            ("OB DISCHRG", 2000.0),
            ("OB DISCHRG", 600.0),
            ("OB DISCHRG LB", 100.0),
            ("OL CHRG", 5000.0),
            ("OL", 5400.0),
        ]
        .iter()
        .enumerate()
        {
            all.extend(apply(&mut st, &sample(i as i64 * 1000, status, *runtime), &t));
        }
        assert_eq!(names(&all), ["on-battery", "battery-low", "power-restored"]);
        assert!(matches!(all[2], Transition::PowerRestored { started: 1000, ended: 5000, .. }), "{all:?}");
        assert_eq!(st.power, Some(PowerState::default()));
    }

    #[test]
    fn a_cut_seen_first_at_lb_and_unreadable_samples() {
        let t = target(None);
        let mut st = TargetState::new("ups");
        let trs = apply(&mut st, &sample(0, "OB LB", 60.0), &t);
        assert_eq!(names(&trs), ["on-battery", "battery-low"]);
        let unreadable = Sample { power: None, ok: false, ..sample(1000, "OL", 0.0) };
        assert!(apply(&mut st, &unreadable, &t).is_empty());
        assert_eq!(st.power.map(|p| p.power), Some(Power::BatteryLow));
        // Without low-runtime, a short runtime alone is not low.
        let mut st = TargetState::new("ups");
        assert_eq!(names(&apply(&mut st, &sample(0, "OB", 10.0), &t)), ["on-battery"]);
    }
}
