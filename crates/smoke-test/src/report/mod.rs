//! One result type, several renderings: human text ([`std::fmt::Display`]), JSON (serde),
//! JUnit XML ([`junit`]) and TAP ([`tap`]).

pub mod junit;
pub mod tap;

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use standby_common::probe::Failure;

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    #[serde(skip)]
    pub order: usize,
    pub suite: String,
    pub name: String,
    /// Line of the check in its suite file (0 for the ad-hoc form).
    pub line: usize,
    pub method: String,
    pub url: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub attempts: u32,
    /// The kind of failure: `unreachable` means nothing answered at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Each unmet expectation, "expected …, got …".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// A bounded excerpt of the body, for a failed check that got an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_excerpt: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    /// Nothing answered at all: every check failed as unreachable (exit 4).
    pub unreachable: bool,
    pub duration_ms: f64,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn new(checks: Vec<CheckResult>, duration: Duration) -> Report {
        let passed = checks.iter().filter(|c| c.ok).count();
        let failed = checks.len() - passed;
        let unreachable = passed == 0
            && checks.iter().any(|c| c.failure == Some(Failure::Unreachable))
            && checks.iter().all(|c| c.failure == Some(Failure::Unreachable) || c.failure.is_none());
        Report {
            ok: failed == 0,
            total: checks.len(),
            passed,
            failed,
            unreachable,
            duration_ms: standby_common::probe::ms_of(duration),
            checks,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            let mark = if c.ok { "PASS" } else { "FAIL" };
            let status = c.status.map(|s| s.to_string()).unwrap_or_else(|| "---".into());
            write!(f, "{mark} {:<40} {status} {:>8.1} ms", c.name, c.latency_ms)?;
            if c.attempts > 1 {
                write!(f, "  ({} attempts)", c.attempts)?;
            }
            writeln!(f)?;
            if !c.ok {
                let at = if c.line > 0 { format!("{}:{}", c.suite, c.line) } else { c.suite.clone() };
                writeln!(f, "     {} {}  [{at}]", c.method, c.url)?;
                for why in &c.failures {
                    writeln!(f, "     - {why}")?;
                }
                if let Some(body) = &c.body_excerpt {
                    writeln!(f, "     body: {body}")?;
                }
            }
        }
        let verdict = if self.ok {
            "all passed"
        } else if self.unreachable {
            "UNREACHABLE: nothing answered"
        } else {
            "FAILED"
        };
        writeln!(
            f,
            "{} checks: {} passed, {} failed in {:.0} ms — {verdict}",
            self.total, self.passed, self.failed, self.duration_ms
        )
    }
}
