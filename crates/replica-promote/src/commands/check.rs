//! `check`: for cron and downtime-monitor's `kind = "command"` targets. Exit 0 when the
//! standby streams within the lag limits; else exit 1 with one line saying why.

use standby_common::exit::{self, Code};

use crate::commands::status;
use crate::health::Limits;
use crate::setup::Setup;
use crate::size::ByteSize;

#[derive(Debug, clap::Args)]
pub struct Args {
    // The section's `--max-lag-bytes` / `--max-lag-seconds` flags are global and apply here.
}

#[derive(serde::Serialize)]
struct Checked<'a> {
    healthy: bool,
    lag_bytes: Option<u64>,
    lag_seconds: Option<f64>,
    problems: &'a [String],
}

impl std::fmt::Display for Checked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.lag_bytes, self.lag_seconds) {
            (Some(b), Some(s)) => write!(f, "OK: standby streaming, {} / {s:.1} s behind", ByteSize(b)),
            _ => write!(f, "OK"),
        }
    }
}

pub fn run(setup: &Setup, _args: &Args) -> anyhow::Result<Code> {
    let limits: Limits = status::limits(setup);
    let s = status::read(setup, limits);
    let v = &s.verdict;
    if !v.healthy {
        if setup.ctx.output.json {
            let checked =
                Checked { healthy: false, lag_bytes: v.lag_bytes, lag_seconds: v.lag_seconds, problems: &v.problems };
            setup.ctx.output.report(&checked, Code::Failed)?;
        }
        let why = v.problems.first().cloned().unwrap_or_else(|| "unhealthy".into());
        return Err(exit::error(Code::Failed, why));
    }
    let checked = Checked { healthy: true, lag_bytes: v.lag_bytes, lag_seconds: v.lag_seconds, problems: &v.problems };
    setup.ctx.output.report(&checked, Code::Ok)?;
    Ok(Code::Ok)
}
