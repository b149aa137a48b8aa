//! `maintenance add | list | end`: ad-hoc maintenance windows, kept in the history database.
//! (The weekly windows of the config and what a window means are in [`crate::maintenance`].)

use standby_common::duration::{millis, HumanDuration};
use standby_common::exit::{self, Code};

use crate::clock;
use crate::setup::Setup;
use crate::store::Window;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start a window now (or at --start) for --for
    Add {
        #[arg(long, value_name = "NAME|*")]
        target: String,
        #[arg(long = "for", value_name = "DUR")]
        duration: HumanDuration,
        #[arg(long, value_name = "WHEN")]
        start: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Windows that are open or coming
    List,
    /// End a window now
    End { id: i64 },
}

#[derive(serde::Serialize)]
struct Windows(Vec<Window>);

impl std::fmt::Display for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no maintenance windows open or coming");
        }
        for w in &self.0 {
            writeln!(
                f,
                "#{:<4} {:<20} {} .. {}  {}",
                w.id,
                w.target,
                clock::fmt(w.start),
                clock::fmt(w.end),
                w.reason
            )?;
        }
        Ok(())
    }
}

pub fn run(setup: &Setup, cmd: &Command) -> anyhow::Result<Code> {
    let mut store = setup.store()?;
    let now = clock::now_ms();
    match cmd {
        Command::Add { target, duration, start, reason } => {
            if target != "*" && !setup.targets.iter().any(|t| &t.name == target) {
                return Err(exit::error(
                    Code::Usage,
                    format!("--target {target}: no such target in the config (use * for all)"),
                ));
            }
            let start = match start {
                Some(s) => clock::parse_when(s, now).map_err(|e| exit::error(Code::Usage, format!("--start: {e}")))?,
                None => now,
            };
            if duration.get().is_zero() {
                return Err(exit::error(Code::Usage, "--for must be more than 0s"));
            }
            let end = start.saturating_add(millis(duration.get())).min(clock::MAX_MS);
            if end <= now {
                return Err(exit::error(Code::Usage, "the window would already be over: check --start and --for"));
            }
            let id = store.add_window(target, start, end, reason)?;
            let w = Window { id, target: target.clone(), start, end, reason: reason.clone() };
            setup.ctx.output.report(&Windows(vec![w]), Code::Ok)?;
        }
        Command::List => setup.ctx.output.report(&Windows(store.windows(now)?), Code::Ok)?,
        Command::End { id } => {
            if !store.end_window(*id, now)? {
                return Err(exit::error(Code::Usage, format!("no open maintenance window #{id}")));
            }
            setup.ctx.output.report(&Windows(Vec::new()), Code::Ok)?;
        }
    }
    Ok(Code::Ok)
}
