//! `status`: the current state of each target, since when, and its last error (only while it
//! matters: the target is not UP or its last check failed; one line, bounded); exit 1 while
//! any target is DOWN.

use standby_common::exit::Code;

use crate::clock;
use crate::machine::{Health, TargetState};
use crate::setup::Setup;

#[derive(serde::Serialize)]
struct Status {
    vantage: String,
    targets: Vec<TargetState>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.targets.is_empty() {
            return writeln!(f, "no checks recorded yet (vantage {})", self.vantage);
        }
        for t in &self.targets {
            write!(f, "{:<24} {:<7} since {}", t.target, t.health.as_str().to_uppercase(), clock::fmt(t.since))?;
            write!(f, "  last check {}", clock::fmt(t.last_at))?;
            if let Some(e) = &t.last_error {
                write!(f, "  last error: {e}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let mut store = setup.store()?;
    let mut targets = store.states()?;
    for t in &mut targets {
        // An UP target's old error (often a response body) is history, not status.
        let relevant = t.health != Health::Up || t.streak.fails > 0;
        t.last_error = t.last_error.take().filter(|_| relevant).map(|e| crate::target::one_line(&e));
    }
    let status = Status { vantage: setup.vantage.clone(), targets };
    let down = status.targets.iter().any(|t| t.health == Health::Down);
    let code = if down { Code::Failed } else { Code::Ok };
    setup.ctx.output.report(&status, code)?;
    Ok(code)
}
