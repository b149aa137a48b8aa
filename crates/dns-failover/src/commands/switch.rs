//! `switch --to primary|backup`: by hand, or chained (replica-promote's post-promote hook).
//! A switch to a side that fails its own check is refused unless `--force`.

use standby_common::exit::Code;

use crate::record::Side;
use crate::report::RoundReport;
use crate::round::{self, Decision, Outcome};
use crate::setup::Setup;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum To {
    Primary,
    Backup,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the records should point
    #[arg(long, value_enum)]
    pub to: To,
    /// Only these records (repeatable) [default: all]
    #[arg(long = "record", value_name = "NAME")]
    pub records: Vec<String>,
    /// Switch even when the target side fails its own check
    #[arg(long)]
    pub force: bool,
    /// Print what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    // Not the run lock: a switch by hand must work beside a running `watch` (at 3 a.m.,
    // with failback = "manual"); the host-wide switching lock still guards the write.
    let mut session = setup.session(&args.records, false)?;
    let to = match args.to {
        To::Primary => Side::Primary,
        To::Backup => Side::Backup,
    };
    let timeout = setup.config.timeout.get();
    let notifiers = &setup.ctx.notifiers;
    let (records, providers, memory) = (&session.records, &session.providers, &mut session.memory);
    let outcomes = standby_common::runtime()?.block_on(async {
        let mut out = Vec::new();
        for record in records {
            let health = round::probe(record, timeout).await;
            let mem = memory.records.entry(round::key(record)).or_default();
            let target_ok = match to {
                Side::Primary => health.primary.ok,
                _ => health.backup_ok(),
            };
            let mut outcome = Outcome::blank(record, health, mem.streak, args.dry_run);
            outcome.decision = Decision::Switch { to, why: "switched by hand".into() };
            if !target_ok && !args.force {
                if let Ok(set) = providers.read(record).await {
                    outcome.side = record.side_of(&set.values);
                    outcome.values = set.values;
                }
                outcome.decision = Decision::Refuse {
                    why: format!("the {} fails its own check: pass --force to switch anyway", to.as_str()),
                };
            } else {
                round::switch(record, to, "switched by hand", mem, providers, notifiers, args.dry_run, &mut outcome)
                    .await;
            }
            out.push(outcome);
        }
        out
    });
    session.save(&mut 0)?;
    let report = RoundReport::new(outcomes, session.providers.calls());
    let code = report.code();
    setup.ctx.output.report(&report, if report.changed { Code::Failed } else { code })?;
    Ok(code)
}
