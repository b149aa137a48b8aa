//! What `check`, `watch`, `switch` and `status` print: one report, human (`Display`) or
//! `--json` (serde). The exit code follows from it: 1 when a needed switch failed or was
//! refused, else 0.

use std::fmt;

use serde::Serialize;
use standby_common::exit::Code;

use crate::memory::{RecordMemory, SwitchNote};
use crate::round::{Decision, Outcome};

/// A round (check, watch's each round, switch).
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    pub ok: bool,
    /// Some record was switched (also when the exit code is 1 for another record).
    pub changed: bool,
    pub records: Vec<Outcome>,
    pub api_calls: u64,
}

impl RoundReport {
    pub fn new(records: Vec<Outcome>, api_calls: u64) -> Self {
        RoundReport {
            ok: !records.iter().any(Outcome::failed),
            changed: records.iter().any(|r| r.switched),
            records,
            api_calls,
        }
    }

    pub fn code(&self) -> Code {
        if self.ok {
            Code::Ok
        } else {
            Code::Failed
        }
    }
}

impl fmt::Display for RoundReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.records {
            let backup = match &o.health.backup {
                Some(b) if b.ok => "backup ok".to_string(),
                Some(b) => format!("backup FAIL ({})", b.error.as_deref().unwrap_or("failed")),
                None => "backup unchecked".to_string(),
            };
            let primary = if o.health.primary.ok {
                "primary ok".to_string()
            } else {
                format!("primary FAIL ({})", o.health.primary.error.as_deref().unwrap_or("failed"))
            };
            // A provider that could not be read says nothing about the side.
            let place = if o.error.is_some() && o.values.is_empty() {
                "provider not read".to_string()
            } else {
                format!("on the {} [{}]", o.side.as_str(), o.values.join(", "))
            };
            writeln!(
                f,
                "{} {}: {place}; {primary}, {backup}; streak {} failed / {} ok",
                o.record, o.rtype, o.streak.fails, o.streak.oks
            )?;
            match (&o.decision, o.switched, o.dry_run) {
                (Decision::Switch { to, why }, true, _) => writeln!(f, "  SWITCHED to the {}: {why}", to.as_str())?,
                (Decision::Switch { to, why }, false, true) => {
                    writeln!(f, "  would switch to the {} (dry run): {why}", to.as_str())?
                }
                (Decision::Switch { to, .. }, false, false) => writeln!(f, "  switch to the {} FAILED", to.as_str())?,
                (Decision::Refuse { why }, _, _) => writeln!(f, "  NOT SWITCHING: {why}")?,
                (Decision::Stay { note: Some(note) }, _, _) => writeln!(f, "  {note}")?,
                (Decision::Stay { note: None }, _, _) => {}
            }
            if let Some(e) = &o.error {
                writeln!(f, "  error: {e}")?;
            }
        }
        Ok(())
    }
}

/// `status`: a round's view without acting, plus what is remembered.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub records: Vec<StatusLine>,
    /// API requests sent in the last hour (all commands of this host).
    pub api_calls_last_hour: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusLine {
    #[serde(flatten)]
    pub now: Outcome,
    pub last_switch: Option<SwitchNote>,
}

impl StatusLine {
    pub fn new(now: Outcome, memory: Option<&RecordMemory>) -> Self {
        StatusLine { now, last_switch: memory.and_then(|m| m.last_switch.clone()) }
    }
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<Outcome> = self.records.iter().map(|l| l.now.clone()).collect();
        write!(f, "{}", RoundReport::new(lines, 0))?;
        for l in &self.records {
            if let Some(s) = &l.last_switch {
                let result =
                    if s.ok { "done".to_string() } else { format!("FAILED: {}", s.error.as_deref().unwrap_or("")) };
                writeln!(f, "{}: last switch {} to the {} ({}): {result}", l.now.record, s.at, s.to.as_str(), s.why)?;
            }
        }
        writeln!(f, "API calls in the last hour: {}", self.api_calls_last_hour)
    }
}
