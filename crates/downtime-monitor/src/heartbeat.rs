//! `kind = "heartbeat"`: push monitors for cron jobs and backups, as healthchecks.io does.
//! A script pings (`downtime-monitor ping NAME [--fail]`, or `POST /ping/NAME` on `watch`'s
//! listener); pings are rows in the history (`pings`), so any monitor sharing the history sees
//! them. Each round judges the target from its last ping: healthy while the last ping was a
//! success no older than `period + grace`; failing after a `--fail` ping or once the deadline
//! passed. A target never pinged is given one `period + grace` from its first check.

use std::time::Duration;

use standby_common::duration::millis;

use crate::clock;
use crate::machine::{Health, TargetState};
use crate::target::Sample;

/// How late a ping may be when `grace` is not given.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// Longest message kept with a ping, in characters.
pub const MESSAGE_MAX: usize = 500;

/// A heartbeat target's deadline.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatCheck {
    pub period: Duration,
    pub grace: Duration,
}

/// One ping as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Ping {
    pub target: String,
    pub at: i64,
    pub ok: bool,
    pub message: Option<String>,
}

impl HeartbeatCheck {
    /// The longest a healthy target may go without a ping (ms).
    pub fn deadline_ms(&self) -> i64 {
        millis(self.period).saturating_add(millis(self.grace))
    }

    /// Judge `sample` (a placeholder from the probe) from the target's last ping at or
    /// before the sample's time and what the monitor remembers of the target.
    pub fn judge(&self, sample: &Sample, last: Option<&Ping>, state: &TargetState) -> Sample {
        let deadline = self.deadline_ms();
        let within = clock::fmt_duration(deadline);
        let (ok, error) = match last {
            Some(p) if !p.ok => {
                let why = p.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
                (false, Some(format!("the last ping, at {}, reported a failure{why}", clock::fmt(p.at))))
            }
            Some(p) if sample.at.saturating_sub(p.at) <= deadline => (true, None),
            Some(p) => (false, Some(format!("no ping since {} (expected within {within})", clock::fmt(p.at)))),
            // Never pinged: one deadline from the first check, then failing.
            None if state.last_at == 0
                || (state.health != Health::Down && sample.at.saturating_sub(state.since) <= deadline) =>
            {
                (true, None)
            }
            None => (false, Some(format!("no ping received yet (expected within {within} of the first check)"))),
        };
        Sample { ok, error, latency_ms: 0.0, ..sample.clone() }
    }
}

/// A ping's message fit for the history: one line, bounded.
pub fn message(text: &str) -> Option<String> {
    let line = crate::target::one_line(text);
    let line: String = line.chars().take(MESSAGE_MAX).collect();
    (!line.is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64) -> Sample {
        Sample { target: "job".into(), at, ok: false, latency_ms: 0.0, error: None, interval_ms: 60_000, power: None }
    }

    fn ping(at: i64, ok: bool) -> Ping {
        Ping { target: "job".into(), at, ok, message: (!ok).then(|| "disk full".into()) }
    }

    #[test]
    fn a_ping_is_good_until_period_plus_grace_and_a_fail_ping_fails_at_once() {
        let hb = HeartbeatCheck { period: Duration::from_secs(600), grace: Duration::from_secs(60) };
        let mut st = TargetState::new("job");
        st.last_at = 1;
        st.health = Health::Up;
        assert!(hb.judge(&sample(660_000), Some(&ping(0, true)), &st).ok);
        let late = hb.judge(&sample(660_001), Some(&ping(0, true)), &st);
        assert!(!late.ok && late.error.unwrap().contains("no ping since"));
        let failed = hb.judge(&sample(1_000), Some(&ping(0, false)), &st);
        assert!(!failed.ok && failed.error.unwrap().contains("disk full"));
    }

    #[test]
    fn a_target_never_pinged_gets_one_deadline_from_its_first_check() {
        let hb = HeartbeatCheck { period: Duration::from_secs(60), grace: Duration::ZERO };
        let mut st = TargetState::new("job");
        assert!(hb.judge(&sample(5_000), None, &st).ok, "first check");
        st.last_at = 5_000;
        st.since = 5_000;
        st.health = Health::Up;
        assert!(hb.judge(&sample(65_000), None, &st).ok);
        assert!(!hb.judge(&sample(65_001), None, &st).ok);
    }
}
