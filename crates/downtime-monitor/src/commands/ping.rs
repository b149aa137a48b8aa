//! `ping NAME [--fail] [-m TEXT]`: a heartbeat from a script (cron job, backup) for a
//! `kind = "heartbeat"` target, written to the history; the next `check` (or `watch` round)
//! judges the target from it. `watch` takes the same pings over HTTP (`POST /ping/NAME`).

use standby_common::exit::{self, Code};

use crate::config::Kind;
use crate::heartbeat::Ping;
use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The heartbeat target (`kind = "heartbeat"` in the config)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The job failed: the target fails from the next check on
    #[arg(long)]
    pub fail: bool,
    /// A line kept with the ping (a failure's alert shows it)
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,
}

/// `name` as a configured heartbeat target, or a usage error naming what is wrong.
pub fn heartbeat_target(setup: &Setup, name: &str) -> Result<(), String> {
    match setup.targets.iter().find(|t| t.name == name) {
        Some(t) if t.kind == Kind::Heartbeat => Ok(()),
        Some(_) => Err(format!("{name} is not a heartbeat target (kind = \"heartbeat\")")),
        None => Err(format!("no target {name:?} in the config")),
    }
}

struct Pinged(Ping);

impl serde::Serialize for Pinged {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl std::fmt::Display for Pinged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.0;
        let what = if p.ok { "ok" } else { "FAIL" };
        write!(f, "pinged {} ({what}) at {}", p.target, crate::clock::fmt(p.at))?;
        if let Some(m) = &p.message {
            write!(f, ": {m}")?;
        }
        writeln!(f)
    }
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    heartbeat_target(setup, &args.name).map_err(|e| exit::error(Code::Usage, e))?;
    let message = args.message.as_deref().and_then(crate::heartbeat::message);
    let ping = setup.monitor().ping(&args.name, !args.fail, message)?;
    setup.ctx.output.report(&Pinged(ping), Code::Ok)?;
    Ok(Code::Ok)
}
