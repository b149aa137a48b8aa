//! `check`: one round over all targets (for cron) — probe, record, update states, alert on
//! changes; exit 1 while any target is DOWN.

use std::path::PathBuf;

use standby_common::exit::{self, Code};
use standby_common::state::write_atomic;

use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also write the node-exporter textfile format here
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    setup.require_targets()?;
    let _lock = setup.ctx.state()?.lock("check")?;
    let rt = standby_common::runtime()?;
    let samples = rt.block_on(crate::monitor::probe_all(&setup.targets, setup.concurrency()));
    let monitor = setup.monitor();
    let (mut round, _transitions) = match monitor.record(samples.clone()) {
        Ok(r) => r,
        Err(e) => {
            // Each target's result is still printed; the error (and its exit code) follows.
            let mut round = crate::monitor::Round::unrecorded(&samples, &setup.vantage);
            round.quiet = setup.ctx.output.quiet;
            setup.ctx.output.report(&round, exit::code_of(&e))?;
            return Err(e);
        }
    };
    round.quiet = setup.ctx.output.quiet;
    rt.block_on(monitor.deliver());
    if let Some(path) = &args.metrics_file {
        let mut m = crate::metrics::Metrics::default();
        m.update(&round);
        write_atomic(path, m.render().as_bytes())?;
    }
    let code = if round.down > 0 { Code::Failed } else { Code::Ok };
    setup.ctx.output.report(&round, code)?;
    Ok(code)
}
