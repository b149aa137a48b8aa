//! The report of a deploy, switch or rollback: one row per step with its duration (a row in
//! `--json`, a line on stdout, a progress message on a terminal), what changed, and the
//! smoke-test report of the idle colour.

use std::fmt;
use std::time::Instant;

use serde::Serialize;

use crate::color::Color;
use crate::record::Outcome;

/// One step of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: String,
    pub ok: bool,
    pub duration_s: f64,
    pub detail: String,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub command: String,
    pub ok: bool,
    pub outcome: Outcome,
    /// The live colour before and after.
    pub from: Option<Color>,
    pub to: Color,
    pub live: Option<Color>,
    pub version: Option<String>,
    /// Traffic moved at some point (true also when it moved back).
    pub changed: bool,
    pub message: String,
    /// What an interrupted earlier run left behind, seen at the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_before: Option<String>,
    pub steps: Vec<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<smoke_test::Report>,
}

impl RunReport {
    pub fn new(command: &str, from: Option<Color>, to: Color, version: Option<String>) -> RunReport {
        RunReport {
            command: command.to_string(),
            ok: false,
            outcome: Outcome::Running,
            from,
            to,
            live: from,
            version,
            changed: false,
            message: String::new(),
            interrupted_before: None,
            steps: Vec::new(),
            smoke: None,
        }
    }

    /// Record a finished step that began at `started`.
    pub fn push(&mut self, step: &str, started: Instant, result: Result<String, String>) {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.steps.push(Step {
            step: step.to_string(),
            ok,
            duration_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            detail,
        });
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(left) = &self.interrupted_before {
            writeln!(f, "note: {left}")?;
        }
        for s in &self.steps {
            let mark = if s.ok { "ok  " } else { "FAIL" };
            writeln!(f, "{mark} {:<10} {:>8.3}s  {}", s.step, s.duration_s, s.detail)?;
        }
        let live = self.live.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
        writeln!(
            f,
            "{}: {} (live: {live}{})",
            self.command,
            self.message,
            if self.changed { ", traffic moved" } else { "" }
        )
    }
}
