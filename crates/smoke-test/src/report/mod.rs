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
    /// Not sent: a check whose captures it uses failed. Neither passed nor failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
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

/// A text safe on one line of any report: every control character (newline, carriage
/// return, the escape that starts a terminal sequence, NUL) shown escaped, `\u{1b}`.
/// Check names come from suite files and bodies from servers: neither may add lines to a
/// TAP stream, break XML or drive the terminal.
pub fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_control() { c.escape_debug().collect() } else { c.to_string() }).collect()
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    /// Not sent because a check they need failed.
    pub skipped: usize,
    /// Nothing answered at all: every check failed as unreachable (exit 4).
    pub unreachable: bool,
    pub duration_ms: f64,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn new(checks: Vec<CheckResult>, duration: Duration) -> Report {
        let passed = checks.iter().filter(|c| c.ok).count();
        let skipped = checks.iter().filter(|c| c.skipped).count();
        let failed = checks.len() - passed - skipped;
        let unreachable = passed == 0
            && checks.iter().any(|c| c.failure == Some(Failure::Unreachable))
            && checks.iter().all(|c| c.failure == Some(Failure::Unreachable) || c.failure.is_none());
        Report {
            ok: failed == 0,
            total: checks.len(),
            passed,
            failed,
            skipped,
            unreachable,
            duration_ms: standby_common::probe::ms_of(duration),
            checks,
        }
    }
}

impl Report {
    /// The human report with only the failed checks and the summary line (`-q`).
    pub fn failures_only(&self) -> FailuresOnly<'_> {
        FailuresOnly(self)
    }

    fn write_human(&self, f: &mut fmt::Formatter<'_>, passed_too: bool) -> fmt::Result {
        for c in self.checks.iter().filter(|c| passed_too || !c.ok) {
            let mark = match (c.ok, c.skipped) {
                (true, _) => "PASS",
                (false, true) => "SKIP",
                (false, false) => "FAIL",
            };
            let status = c.status.map(|s| s.to_string()).unwrap_or_else(|| "---".into());
            write!(f, "{mark} {:<40} {status} {:>8.1} ms", one_line(&c.name), c.latency_ms)?;
            if c.attempts > 1 {
                write!(f, "  ({} attempts)", c.attempts)?;
            }
            writeln!(f)?;
            if !c.ok {
                let at = if c.line > 0 { format!("{}:{}", c.suite, c.line) } else { c.suite.clone() };
                writeln!(f, "     {} {}  [{}]", c.method, one_line(&c.url), one_line(&at))?;
                for why in &c.failures {
                    writeln!(f, "     - {}", one_line(why))?;
                }
                if let Some(body) = &c.body_excerpt {
                    writeln!(f, "     body: {}", one_line(body))?;
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
        let skipped = if self.skipped > 0 { format!(", {} skipped", self.skipped) } else { String::new() };
        writeln!(
            f,
            "{} checks: {} passed, {} failed{skipped} in {:.0} ms — {verdict}",
            self.total, self.passed, self.failed, self.duration_ms
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_human(f, true)
    }
}

/// See [`Report::failures_only`].
#[derive(Debug)]
pub struct FailuresOnly<'r>(&'r Report);

impl fmt::Display for FailuresOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_human(f, false)
    }
}
