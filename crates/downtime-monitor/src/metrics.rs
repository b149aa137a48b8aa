//! Prometheus text exposition: `check --metrics-file` writes the node-exporter textfile
//! format (atomically), `watch --metrics-listen` serves the same on `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::machine::Health;
use crate::monitor::Round;

/// What is exported per target.
#[derive(Debug, Clone, Default)]
pub struct TargetMetrics {
    pub up: bool,
    pub latency_ms: f64,
    pub health: Option<Health>,
    pub ok_total: u64,
    pub fail_total: u64,
}

/// Metrics for all targets, updated round by round.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub targets: BTreeMap<String, TargetMetrics>,
}

impl Metrics {
    pub fn update(&mut self, round: &Round) {
        for l in &round.targets {
            let m = self.targets.entry(l.target.clone()).or_default();
            m.up = l.ok;
            m.latency_ms = l.latency_ms;
            m.health = Some(l.health);
            if l.ok {
                m.ok_total += 1;
            } else {
                m.fail_total += 1;
            }
        }
    }

    /// The text format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(&mut out, "standby_monitor_up", "gauge", "1 if the last check of the target passed.");
        for (t, m) in &self.targets {
            let _ = writeln!(out, "standby_monitor_up{{target=\"{}\"}} {}", esc(t), u8::from(m.up));
        }
        family(&mut out, "standby_monitor_latency_seconds", "gauge", "Duration of the last check.");
        for (t, m) in &self.targets {
            let _ = writeln!(out, "standby_monitor_latency_seconds{{target=\"{}\"}} {}", esc(t), m.latency_ms / 1000.0);
        }
        family(&mut out, "standby_monitor_checks_total", "counter", "Checks run by this process, by result.");
        for (t, m) in &self.targets {
            let _ = writeln!(out, "standby_monitor_checks_total{{target=\"{}\",result=\"ok\"}} {}", esc(t), m.ok_total);
            let _ =
                writeln!(out, "standby_monitor_checks_total{{target=\"{}\",result=\"fail\"}} {}", esc(t), m.fail_total);
        }
        family(&mut out, "standby_monitor_state", "gauge", "1 for the target's current state (after thresholds).");
        for (t, m) in &self.targets {
            for h in [Health::Up, Health::Down, Health::Unknown] {
                let v = u8::from(m.health.unwrap_or(Health::Unknown) == h);
                let _ = writeln!(out, "standby_monitor_state{{target=\"{}\",state=\"{}\"}} {v}", esc(t), h.as_str());
            }
        }
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
