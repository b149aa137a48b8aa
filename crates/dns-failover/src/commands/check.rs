//! `check`: one round for cron. Exit 0 when nothing needed doing or a needed switch worked
//! (the output says it switched), 1 when a switch was needed and failed or was refused.

use std::time::Duration;

use standby_common::exit::Code;

use crate::report::RoundReport;
use crate::round::{self, RoundOptions, World};
use crate::setup::Setup;
use crate::vantage::SharedViews;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these records (repeatable)
    #[arg(long = "record", value_name = "NAME")]
    pub records: Vec<String>,
    /// Decide and print, but write nothing to the DNS provider
    #[arg(long)]
    pub dry_run: bool,
    /// Switch even when the backup fails its own check
    #[arg(long)]
    pub force: bool,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let mut session = setup.session(&args.records, true)?;
    let opts = RoundOptions {
        timeout: setup.config.timeout.get(),
        dry_run: args.dry_run,
        force: args.force,
        reread_after: Duration::ZERO,
    };
    let outcomes = standby_common::runtime()?.block_on(async {
        let views = SharedViews::connect(&setup.config).await?;
        let world = World {
            control: &setup.control,
            providers: &session.providers,
            notifiers: &setup.ctx.notifiers,
            views: views.as_ref(),
        };
        anyhow::Ok(round::run(&session.records, &world, &mut session.memory, opts).await)
    })?;
    session.save(&mut 0)?;
    let report = RoundReport::new(outcomes, session.providers.calls());
    let code = report.code();
    // A switch is news even with -q: report it as a cron job would mail it.
    setup.ctx.output.report(&report, if report.changed { Code::Failed } else { code })?;
    Ok(code)
}
