//! `check`: one round over all targets (for cron) — probe, record, update states, alert on
//! changes; exit 1 while any target is DOWN.

use std::path::PathBuf;

use standby_common::exit::Code;
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
    let (round, _transitions) = monitor.record(samples)?;
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
