//! `switch --to blue|green`: move traffic to a colour that already runs, with the deploy's
//! guards: its health, the smoke suite against it, `nginx -t` before the reload, then a
//! check through the proxy. Nothing is started or stopped.

use standby_common::exit::Code;

use crate::color::Color;
use crate::commands::Run;
use crate::record::Outcome;
use crate::setup::Setup;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The colour to send traffic to
    #[arg(long, value_enum)]
    pub to: Color,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let _lock = setup.state.lock("deploy")?;
    // No deploy in the middle of a failover: exit 3 naming the holder, nothing changed.
    standby_common::switching::ensure_not_switching("blue-green-deploy switch")?;
    let from = setup.live()?;
    let to = args.to;
    let mut run = Run::begin(setup, "switch", from, to, None, 4)?;
    if from == Some(to) {
        return run.finish(Outcome::Switched, format!("{to} is already live; nothing changed"));
    }
    if let Err(e) = run.health(to).and_then(|()| run.smoke(to)) {
        return run.finish(Outcome::Failed, format!("not switching to {to}: {e}; traffic unchanged"));
    }
    if let Err(e) = run.switch("switch", to) {
        return run.finish(Outcome::Failed, format!("switch to {to} refused: {e}"));
    }
    if let Err(e) = run.verify(to) {
        return run.finish(Outcome::Failed, format!("{to} is live but does not answer through the proxy: {e}"));
    }
    run.finish(Outcome::Switched, format!("{to} is live"))
}
