//! `deploy [--version V]`: start the idle colour, wait for its health, smoke-test it
//! in-process, switch the proxy (validated, restored when rejected), verify through the
//! proxy, watch; on a failure after the switch, switch back (rollback); on success drain
//! and stop the old colour. A failure before the switch never moves traffic.

use std::time::Duration;

use standby_common::exit::Code;

use crate::color::Color;
use crate::commands::Run;
use crate::record::{self, Outcome};
use crate::setup::Setup;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The version to deploy: the {version} of the start and stop templates
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
}

/// Steps a deploy may show: resync, start, health, smoke, switch, verify, watch, drain, stop.
const STEPS: u64 = 9;

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let _lock = setup.state.lock("deploy")?;
    // No deploy in the middle of a failover: exit 3 naming the holder, nothing changed.
    standby_common::switching::ensure_not_switching("blue-green-deploy deploy")?;
    if setup.config.start.is_none() || setup.config.stop.is_none() {
        return Err(standby_common::exit::error(
            Code::Usage,
            "deploy needs both start and stop (the commands that start and stop a colour)",
        ));
    }
    // We hold the run lock: a record still marked running was interrupted.
    let interrupted = record::load(&setup.state)?.filter(|r| r.outcome == Outcome::Running);
    let from = setup.live()?;
    let to = from.map(Color::other).unwrap_or(Color::Blue);
    let mut run = Run::begin(setup, "deploy", from, to, args.version.clone(), STEPS)?;
    // Socket mode: a link that disagrees with the file (a run killed between the two).
    let mismatch = setup.mismatch()?;
    if let Some(left) = &interrupted {
        run.report.interrupted_before = Some(left.left_behind());
    }
    let stopped_after_switch =
        interrupted.as_ref().is_some_and(|l| matches!(l.step.as_str(), "switch" | "verify" | "watch" | "rollback"));
    // It may have written the upstream file without reloading (or relinking): make the proxy
    // serve what the file says (a colour that was healthy when written) first.
    if stopped_after_switch || mismatch.is_some() {
        let resynced = run.step("resync", |s| {
            s.proxy.apply().map_err(|e| format!("{e:#}"))?;
            Ok(((), format!("{} applied as it stands", s.proxy.describe())))
        });
        if let Err(e) = resynced {
            return run.finish(Outcome::Failed, format!("the interrupted run's proxy state could not be applied: {e}"));
        }
    }
    let version = args.version.clone();

    // Before the switch: a failure leaves traffic where it is and stops the new colour.
    let started = run.step("start", |s| {
        let line = s.run_template("start", to, version.as_deref()).map_err(|e| format!("{e:#}"))?;
        Ok(((), format!("{to}: {line}")))
    });
    let before = started.and_then(|()| run.health(to)).and_then(|()| run.smoke(to));
    if let Err(e) = before {
        let _ = run.stop("stop-new", to);
        let live = from.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
        return run.finish(Outcome::Failed, format!("{to} was not switched to: {e}; traffic unchanged (live: {live})"));
    }

    if let Err(e) = run.switch("switch", to) {
        let _ = run.stop("stop-new", to);
        return run.finish(Outcome::Failed, format!("switch to {to} refused: {e}"));
    }

    let after = run.verify(to).and_then(|()| watch(&mut run, to));
    if let Err(e) = after {
        let Some(old) = from else {
            return run
                .finish(Outcome::Failed, format!("{to} misbehaved after the switch and no colour ran before: {e}"));
        };
        if let Err(back) = run.switch("rollback", old) {
            return run
                .finish(Outcome::Failed, format!("{to} misbehaved ({e}) and the rollback to {old} failed: {back}"));
        }
        // The reload is asynchronous: stop the bad colour only once the old one answers.
        let _ = run.verify(old);
        drain(&mut run, to);
        let _ = run.stop("stop-new", to);
        return run
            .finish(Outcome::RolledBack, format!("{to} misbehaved after the switch ({e}); rolled back to {old}"));
    }

    if let Some(old) = from {
        drain(&mut run, old);
        if let Err(e) = run.stop("stop-old", old) {
            return run.finish(Outcome::Deployed, format!("{to} is live; stopping {old} failed: {e}"));
        }
    }
    let version = args.version.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default();
    run.finish(Outcome::Deployed, format!("{to}{version} is live"))
}

/// Give requests still in flight to `color` (old nginx workers finish theirs) time to end.
fn drain(run: &mut Run<'_>, color: Color) {
    let _ = run.step("drain", |s| {
        std::thread::sleep(s.config.drain.get());
        Ok(((), format!("{color}: {} for requests in flight", s.config.drain)))
    });
}

/// Health through the proxy for `watch`; the first failure ends it.
fn watch(run: &mut Run<'_>, to: Color) -> Result<(), String> {
    run.step("watch", |s| {
        let period = s.config.watch.get();
        let interval = (period / 20).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let url = s.public_health_url().unwrap_or_else(|| s.health_url(to));
        match s.prober.watch(&url, Some(to.as_str()), period, interval) {
            Ok(n) => Ok(((), format!("{url}: {n} probes passed over {}", s.config.watch))),
            Err(p) => Err(format!("{url}: {p}")),
        }
    })
}
