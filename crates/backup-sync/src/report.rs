//! What `run` reports: one line per phase (hooks, each dump, the backup, retention, each
//! offsite copy, the check) with its outcome, duration and sizes; the same as `--json`.

use std::fmt;
use std::time::Instant;

use serde::Serialize;
use standby_common::exit::{self, Code};

/// One phase of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub phase: String,
    pub ok: bool,
    pub seconds: f64,
    /// Sizes and ids, as the phase knows them.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub ok: bool,
    pub phases: Vec<Phase>,
    /// The phases that failed, by name.
    pub failed: Vec<String>,
    /// The exit code each failed phase's error carries, in the order of `failed`.
    #[serde(skip)]
    pub failed_codes: Vec<Code>,
}

impl RunReport {
    /// Run `f` as phase `name`, record its outcome and return its value if it succeeded.
    pub fn phase<T: Serialize>(&mut self, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> Option<T> {
        let start = Instant::now();
        // rustic_core 0.13 can panic ("index still in use") when its index threads are slow
        // to stop on a loaded machine: a panic fails this phase, not the whole run.
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(anyhow::anyhow!("internal error in the repository library: {text}"))
        });
        let seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        match res {
            Ok(value) => {
                let details = serde_json::to_value(&value).unwrap_or_default();
                self.phases.push(Phase { phase: name.to_string(), ok: true, seconds, details, error: None });
                Some(value)
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::error!("{name}: {error}");
                self.phases.push(Phase {
                    phase: name.to_string(),
                    ok: false,
                    seconds,
                    details: serde_json::Value::Null,
                    error: Some(error),
                });
                self.failed.push(name.to_string());
                self.failed_codes.push(exit::code_of(&e));
                None
            }
        }
    }

    pub fn finish(mut self) -> Self {
        self.ok = self.failed.is_empty();
        self
    }

    /// The run's exit code: 0 when every phase succeeded, 3 when the only failures were
    /// refusals because a lock was held (retention during a failover), else 1.
    pub fn code(&self) -> Code {
        if self.failed.is_empty() {
            Code::Ok
        } else if self.failed_codes.iter().all(|c| *c == Code::Locked) {
            Code::Locked
        } else {
            Code::Failed
        }
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.phases {
            let mark = if p.ok { "ok  " } else { "FAIL" };
            write!(f, "{mark} {:<32} {:>8.2}s", p.phase, p.seconds)?;
            if let serde_json::Value::Object(map) = &p.details {
                for (k, v) in map {
                    write!(f, "  {k}={v}")?;
                }
            }
            if let Some(e) = &p.error {
                write!(f, "  {e}")?;
            }
            writeln!(f)?;
        }
        if self.ok {
            writeln!(f, "backup run ok")
        } else {
            writeln!(f, "backup run FAILED in: {}", self.failed.join(", "))
        }
    }
}
