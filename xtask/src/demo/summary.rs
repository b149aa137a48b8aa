//! The drill's result: each step's name, outcome and duration, and the measured figures next
//! to their goals; printed for a person (ten seconds to read) or as one JSON line.

use std::path::PathBuf;

use serde::Serialize;

/// One step of the drill.
#[derive(Debug, Serialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub duration_s: f64,
    /// What it showed, or why it failed (one line).
    pub detail: String,
}

/// What the drill measured; `None` when the step that measures it did not run (or failed).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub detect_s: Option<f64>,
    pub dns_switch_s: Option<f64>,
    pub db_writable_s: Option<f64>,
    pub rpo_bytes: Option<u64>,
    pub rows_lost: Option<i64>,
    pub deploy_failed_requests: Option<u64>,
    pub deploy_requests: Option<u64>,
    pub backup_verified_files: Option<u64>,
    pub timeline: Option<PathBuf>,
    pub steps: Vec<Step>,
}

const GOAL_DETECT_S: f64 = 3.0;
const GOAL_DNS_S: f64 = 3.5;
const GOAL_WRITABLE_S: f64 = 4.0;

impl Summary {
    pub fn all_ok(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    pub fn failed_steps(&self) -> Vec<String> {
        self.steps.iter().filter(|s| !s.ok).map(|s| s.name.clone()).collect()
    }

    pub fn print(&self, json: bool) {
        if json {
            match serde_json::to_string(self) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("xtask demo: cannot write the JSON summary: {e}"),
            }
            return;
        }
        println!("\n== drill summary (times from the power cut)");
        let secs = |v: Option<f64>| v.map_or("not measured".to_string(), |s| format!("{s:.2} s"));
        let met = |v: Option<f64>, goal: f64| match v {
            Some(s) if s <= goal => "met",
            Some(_) => "MISSED",
            None => "-",
        };
        let row = |what: &str, value: String, goal: &str, met: &str| {
            println!("  {what:<30} {value:<16} goal {goal:<10} {met}");
        };
        row("time to detect", secs(self.detect_s), "<= 3 s", met(self.detect_s, GOAL_DETECT_S));
        row("time to DNS switched", secs(self.dns_switch_s), "<= 3.5 s", met(self.dns_switch_s, GOAL_DNS_S));
        row("time to writable database", secs(self.db_writable_s), "<= 4 s", met(self.db_writable_s, GOAL_WRITABLE_S));
        let rpo = match (self.rpo_bytes, self.rows_lost) {
            (Some(b), Some(r)) => format!("{b} bytes, {r} rows"),
            (Some(b), None) => format!("{b} bytes"),
            _ => "not measured".into(),
        };
        let rpo_met = match (self.rpo_bytes, self.rows_lost) {
            (Some(0), Some(0) | None) => "met",
            (Some(_), _) => "MISSED",
            _ => "-",
        };
        row("data lost (RPO)", rpo, "0 bytes", rpo_met);
        let deploy = match (self.deploy_failed_requests, self.deploy_requests) {
            (Some(f), Some(n)) => format!("{f} of {n}"),
            _ => "not run".into(),
        };
        let deploy_met = match self.deploy_failed_requests {
            Some(0) => "met",
            Some(_) => "MISSED",
            None => "-",
        };
        row("failed requests in the deploy", deploy, "0", deploy_met);
        let verified = self.backup_verified_files.map_or("not run".into(), |n| n.to_string());
        row(
            "files verified by test restore",
            verified,
            "> 0",
            if self.backup_verified_files.unwrap_or(0) > 0 { "met" } else { "-" },
        );
        let timeline = self.timeline.as_ref().map_or("not written".into(), |p| p.display().to_string());
        println!("  {:<30} {timeline}", "timeline");
        println!("  steps:");
        for s in &self.steps {
            println!("    {} {:<34} {:>6.2} s  {}", if s.ok { "ok  " } else { "FAIL" }, s.name, s.duration_s, s.detail);
        }
        println!("  (for scale: Patroni fails over in 15-30 s, repmgrd in about 60 s)");
    }
}
