//! `rollback`: send traffic back to the other colour, only while it still runs and answers
//! its health check (nothing is started); `nginx -t` guards the reload as in a deploy.

use standby_common::exit::{self, Code};

use crate::commands::Run;
use crate::record::Outcome;
use crate::setup::Setup;

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let _lock = setup.state.lock("deploy")?;
    // No deploy in the middle of a failover: exit 3 naming the holder, nothing changed.
    standby_common::switching::ensure_not_switching("blue-green-deploy rollback")?;
    let Some(from) = setup.live()? else {
        return Err(exit::error(Code::Failed, "no colour is live yet: nothing to roll back from"));
    };
    let to = from.other();
    let mut run = Run::begin(setup, "rollback", Some(from), to, None, 3)?;
    let healthy = run.step("health", |s| {
        let url = s.health_url(to);
        let probe = s.prober.probe(&url, None);
        if probe.ok {
            Ok(((), format!("{to} {url}: {probe}")))
        } else {
            Err(format!("{to} {url}: {probe} (rollback does not start it: run `deploy` instead)"))
        }
    });
    if let Err(e) = healthy {
        return run.finish(Outcome::Failed, format!("not rolling back to {to}: {e}; traffic unchanged"));
    }
    if let Err(e) = run.switch("switch", to) {
        return run.finish(Outcome::Failed, format!("rollback to {to} refused: {e}"));
    }
    if let Err(e) = run.verify(to) {
        return run.finish(Outcome::Failed, format!("{to} is live but does not answer through the proxy: {e}"));
    }
    run.finish(Outcome::Switched, format!("rolled back: {to} is live"))
}
