//! The per-target state machine: UNKNOWN until the first answer, DOWN after
//! `failure-threshold` consecutive failures, back UP after `recovery-threshold` consecutive
//! successes. An incident starts at the first failure of the streak that brought the target
//! down and ends at the first success of the streak that brought it back, so reports measure
//! the outage, not the detection delay. Samples inside a maintenance window change nothing.
//! The counting itself is `standby_common::threshold`, shared with dns-failover.

use serde::{Deserialize, Serialize};
use standby_common::threshold::{Streak, Thresholds, Transition as Switch};

use crate::target::{Sample, Target};

/// Health of a target as the monitor believes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }

    pub fn parse(s: &str) -> Health {
        match s {
            "up" => Health::Up,
            "down" => Health::Down,
            _ => Health::Unknown,
        }
    }
}

/// What the monitor remembers about a target between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetState {
    pub target: String,
    pub health: Health,
    /// Since when the target has had this health (Unix ms).
    pub since: i64,
    /// Consecutive failures / successes (stored as `fails` and `oks`).
    #[serde(flatten)]
    pub streak: Streak,
    /// Time of the first sample of the current streak.
    pub streak_start: i64,
    /// Time of the last sample (never goes backwards, even if the clock does).
    pub last_at: i64,
    pub last_error: Option<String>,
    /// The open incident, while DOWN.
    pub incident_id: Option<i64>,
    pub incident_started: Option<i64>,
    /// When the last DOWN alert (or reminder) was sent.
    pub last_alert: Option<i64>,
    /// `kind = "ups"`: mains or battery (see [`crate::power`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<crate::power::PowerState>,
}

impl TargetState {
    pub fn new(target: &str) -> TargetState {
        TargetState {
            target: target.to_string(),
            health: Health::Unknown,
            since: 0,
            streak: Streak::default(),
            streak_start: 0,
            last_at: 0,
            last_error: None,
            incident_id: None,
            incident_started: None,
            last_alert: None,
            power: None,
        }
    }
}

/// A change worth an alert (and, for Down/Recovered, an incident record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Transition {
    Down {
        started: i64,
        error: String,
    },
    Recovered {
        started: i64,
        ended: i64,
    },
    Reminder {
        started: i64,
        error: String,
    },
    /// A UPS target went on battery (the cut began at `started`).
    OnBattery {
        started: i64,
        reading: standby_common::nut::Reading,
    },
    /// Its battery is low (LB, or runtime under `low-runtime`), once per cut.
    BatteryLow {
        started: i64,
        reading: standby_common::nut::Reading,
    },
    /// Mains are back after a cut from `started` to `ended`.
    PowerRestored {
        started: i64,
        ended: i64,
        reading: standby_common::nut::Reading,
    },
}

/// Whether `sample` was taken while the clock was behind the target's last sample (the clock
/// stepped back): its time is not after the previous one. The machine still counts it (at
/// the last time, see [`apply`]); the store keeps it flagged and reports leave its time out,
/// so a clock step never turns into uptime.
pub fn clock_stepped(state: &TargetState, sample: &Sample) -> bool {
    state.last_at > 0 && sample.at <= state.last_at
}

/// Apply one sample. `reminder_ms` repeats the DOWN alert while down.
pub fn apply(
    state: &mut TargetState,
    sample: &Sample,
    target: &Target,
    in_maintenance: bool,
    reminder_ms: Option<i64>,
) -> Option<Transition> {
    // A clock that jumps backwards must not produce negative durations.
    let at = sample.at.max(state.last_at);
    state.last_at = at;
    if state.since == 0 {
        state.since = at;
    }
    if !sample.ok {
        state.last_error = sample.error.clone();
    }
    if in_maintenance {
        return None;
    }
    let thresholds = Thresholds { failures: target.failure_threshold, successes: target.recovery_threshold };
    if state.streak.starts_new(sample.ok) {
        state.streak_start = at;
    }
    let switch = state.streak.observe(sample.ok, state.health == Health::Down, thresholds);
    if sample.ok {
        match (state.health, switch) {
            (Health::Unknown, _) => {
                state.health = Health::Up;
                state.since = at;
                None
            }
            (Health::Down, Some(Switch::Up)) => {
                let started = state.incident_started.unwrap_or(state.since);
                state.health = Health::Up;
                state.since = state.streak_start;
                state.incident_started = None;
                state.last_alert = None;
                Some(Transition::Recovered { started, ended: state.streak_start })
            }
            _ => None,
        }
    } else {
        let error = sample.error.clone().unwrap_or_else(|| "failed".into());
        if switch == Some(Switch::Down) {
            state.health = Health::Down;
            state.since = state.streak_start;
            state.incident_started = Some(state.streak_start);
            state.last_alert = Some(at);
            return Some(Transition::Down { started: state.streak_start, error });
        }
        match (state.health, reminder_ms, state.last_alert) {
            (Health::Down, Some(every), Some(last)) if at - last >= every => {
                state.last_alert = Some(at);
                Some(Transition::Reminder { started: state.incident_started.unwrap_or(state.since), error })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;
    use crate::target::How;
    use std::time::Duration;

    fn target(fail: u32, recover: u32) -> Target {
        Target {
            name: "app".into(),
            kind: Kind::Tcp,
            how: How::Tcp("127.0.0.1:1".into()),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
            failure_threshold: fail,
            recovery_threshold: recover,
        }
    }

    fn sample(at: i64, ok: bool) -> Sample {
        Sample {
            target: "app".into(),
            at,
            ok,
            latency_ms: 1.0,
            error: (!ok).then(|| "refused".into()),
            interval_ms: 60_000,
            power: None,
        }
    }

    fn run(t: &Target, st: &mut TargetState, pattern: &str, start: i64) -> Vec<(i64, Transition)> {
        pattern
            .chars()
            .enumerate()
            .filter_map(|(i, c)| {
                let at = start + i as i64 * 60_000;
                apply(st, &sample(at, c == '+'), t, false, None).map(|tr| (at, tr))
            })
            .collect()
    }

    #[test]
    fn down_after_exactly_threshold_failures_and_recovered_after_threshold_successes() {
        let t = target(3, 2);
        let mut st = TargetState::new("app");
        let events = run(&t, &mut st, "++--+---++", 0);
        // index:                      0123456789
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], (7 * 60_000, Transition::Down { started: 5 * 60_000, error: "refused".into() }));
        assert_eq!(events[1], (9 * 60_000, Transition::Recovered { started: 5 * 60_000, ended: 8 * 60_000 }));
        assert_eq!((st.health, st.since), (Health::Up, 8 * 60_000));
    }

    #[test]
    fn maintenance_samples_change_nothing_and_clock_going_back_is_clamped() {
        let t = target(1, 1);
        let mut st = TargetState::new("app");
        apply(&mut st, &sample(1000, true), &t, false, None);
        assert_eq!(apply(&mut st, &sample(2000, false), &t, true, None), None);
        assert_eq!(st.health, Health::Up);
        assert!(clock_stepped(&st, &sample(500, false)) && clock_stepped(&st, &sample(2000, false)));
        assert!(
            !clock_stepped(&st, &sample(2001, false)) && !clock_stepped(&TargetState::new("app"), &sample(1, true))
        );
        let tr = apply(&mut st, &sample(500, false), &t, false, None);
        assert_eq!(tr, Some(Transition::Down { started: 2000, error: "refused".into() }), "clamped to the last time");
    }

    #[test]
    fn reminders_repeat_only_when_asked() {
        let t = target(1, 1);
        let mut st = TargetState::new("app");
        let tr: Vec<_> =
            (0..5).filter_map(|i| apply(&mut st, &sample(i * 60_000, false), &t, false, Some(120_000))).collect();
        assert_eq!(tr.len(), 3, "down at 0, reminders at 2m and 4m: {tr:?}");
        let mut quiet = TargetState::new("app");
        let tr: Vec<_> =
            (0..5).filter_map(|i| apply(&mut quiet, &sample(i * 60_000, false), &t, false, None)).collect();
        assert_eq!(tr.len(), 1);
    }

    #[test]
    fn stored_state_keeps_its_json_shape() {
        let t = target(3, 2);
        let mut st = TargetState::new("app");
        run(&t, &mut st, "+--", 0);
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!((json["fails"].clone(), json["oks"].clone()), (serde_json::json!(2), serde_json::json!(0)));
        let back: TargetState = serde_json::from_value(json).unwrap();
        assert_eq!(back, st);
        // A row written before the counting moved to standby-common still loads and continues.
        let mut old: TargetState = serde_json::from_str(
            r#"{"target":"app","health":"up","since":0,"fails":2,"oks":0,"streak_start":60000,"last_at":120000,
                "last_error":"refused","incident_id":null,"incident_started":null,"last_alert":null}"#,
        )
        .unwrap();
        let tr = apply(&mut old, &sample(180_000, false), &t, false, None);
        assert_eq!(tr, Some(Transition::Down { started: 60_000, error: "refused".into() }));
    }
}
