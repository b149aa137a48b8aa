//! `switchover`: planned and lossless, run on the primary (`local`). The standby (`peer`)
//! must be streaming; `local` is checkpointed and stopped cleanly (its WAL senders ship every
//! record up to the shutdown checkpoint before they exit); the peer must replay past that
//! checkpoint (else `local` is started again as the primary and nothing else changes); the
//! peer is promoted and must take writes; `local` rejoins as its standby and must stream.
//! A step that fails leaves both nodes running where it can, in a state `status` describes.

use std::fmt;
use std::time::{Duration, Instant};

use standby_common::exit::{self, Code};
use standby_common::switching;

use crate::commands::rejoin::{self, Rejoined};
use crate::lsn::{self, Lsn};
use crate::setup::Setup;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How long the standby may take to replay the old primary's last WAL
    #[arg(long, value_name = "DUR", default_value = "60s")]
    pub catch_up_timeout: standby_common::duration::HumanDuration,
    /// The replication slot on the new primary for this node [default: standby_<host name>]
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
}

/// What `switchover` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Switched {
    pub old_primary: String,
    pub new_primary: String,
    pub changed: bool,
    pub final_lsn: Option<Lsn>,
    pub new_timeline: Option<u32>,
    /// `synchronous_standby_names` the new primary had and that was cleared while it had no
    /// standby (the rejoin turns synchronous mode back on once the old primary streams).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared_synchronous_standby_names: Option<String>,
    pub rejoin: Option<Rejoined>,
    pub done: bool,
    pub took_ms: u64,
}

impl fmt::Display for Switched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(names) = &self.cleared_synchronous_standby_names {
            writeln!(
                f,
                "  cleared synchronous_standby_names (was {names:?}) on {} while it had no standby",
                self.new_primary
            )?;
        }
        if let Some(r) = &self.rejoin {
            write!(f, "{r}")?;
        }
        if self.done {
            writeln!(
                f,
                "SWITCHED OVER: {} is the primary (timeline {}), {} streams from it; final LSN {} replayed, in {} ms",
                self.new_primary,
                self.new_timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
                self.old_primary,
                self.final_lsn.map(|l| l.to_string()).unwrap_or_else(|| "?".into()),
                self.took_ms
            )
        } else {
            writeln!(f, "SWITCHOVER NOT COMPLETE (changed: {})", self.changed)
        }
    }
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let start = Instant::now();
    let peer = setup.require_peer("switchover")?;
    let pgctl = setup.pgctl("switchover")?;
    pgctl.require_all()?;
    let _lock = setup.ctx.state()?.lock("switchover")?;
    let _switching = switching::hold(crate::cli::TOOL, "switching the primary over to the standby")?;
    let mut report = Switched {
        old_primary: setup.local.server().to_string(),
        new_primary: peer.server().to_string(),
        ..Switched::default()
    };
    let result = switch(setup, &pgctl, args, &mut report, start);
    report.took_ms = start.elapsed().as_millis() as u64;
    match result {
        Ok(()) => {
            setup.ctx.output.report(&report, Code::Ok)?;
            Ok(Code::Ok)
        }
        Err(e) if report.changed => {
            setup.ctx.output.report(&report, Code::Failed)?;
            Err(e.context("switchover stopped part-way (`replica-promote status` shows where it stands)"))
        }
        Err(e) => Err(e),
    }
}

fn switch(
    setup: &Setup,
    pgctl: &crate::pgctl::PgCtl,
    args: &Args,
    report: &mut Switched,
    start: Instant,
) -> anyhow::Result<()> {
    let peer = setup.require_peer("switchover")?;
    let local = setup.local.connect_blocking()?;
    let standby = peer.connect_blocking()?;
    if local.query_value::<bool, _>("SELECT pg_is_in_recovery()", &[])? {
        return Err(exit::error(
            Code::Failed,
            "switchover runs on the primary: local is in recovery; nothing was changed",
        ));
    }
    let receiver: Option<String> = standby
        .query_opt("SELECT status FROM pg_stat_wal_receiver WHERE pg_is_in_recovery()", &[])?
        .and_then(|r| r.get(0));
    if receiver.as_deref() != Some("streaming") {
        return Err(exit::error(
            Code::Failed,
            format!("peer {} is not a streaming standby; nothing was changed", peer.server()),
        ));
    }
    local.batch_execute("CHECKPOINT")?;
    drop(local);
    report.changed = true;
    pgctl.stop("fast")?;
    let final_lsn = pgctl.latest_checkpoint()?;
    report.final_lsn = Some(final_lsn);

    // The standby must replay past the old primary's shutdown checkpoint: then it has all.
    let deadline = start + args.catch_up_timeout.get();
    loop {
        let replayed: Option<String> = standby.query_value("SELECT pg_last_wal_replay_lsn()::text", &[])?;
        if replayed.and_then(|t| t.parse::<Lsn>().ok()).is_some_and(|l| l > final_lsn) {
            break;
        }
        if Instant::now() >= deadline {
            let restarted = pgctl.start().is_ok();
            return Err(exit::error(
                Code::Failed,
                format!(
                    "the standby did not replay the final LSN {final_lsn} within {}; {} was {}",
                    args.catch_up_timeout,
                    report.old_primary,
                    if restarted { "started again as the primary" } else { "left stopped (pg_ctl start failed)" }
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let promoted: bool = standby.query_value("SELECT pg_promote(true, 60)", &[])?;
    if !promoted {
        return Err(exit::error(Code::Failed, format!("pg_promote() on {} did not finish within 60 s", peer.server())));
    }
    // Before the first write: a commit would wait forever on a setting from its old life.
    report.cleared_synchronous_standby_names = crate::syncrep::relax(&standby)?;
    let walfile: String =
        standby.query_one("SELECT pg_current_xact_id()::text, pg_walfile_name(pg_current_wal_lsn())", &[])?.get(1);
    report.new_timeline = lsn::timeline_of_walfile(&walfile);
    drop(standby);

    let rejoin_args = rejoin::Args { slot: args.slot.clone(), timeout: args.catch_up_timeout };
    let mut rejoined = Rejoined {
        server: report.old_primary.clone(),
        primary: report.new_primary.clone(),
        slot: args.slot.clone().unwrap_or_else(rejoin::default_slot),
        ..Rejoined::default()
    };
    let result = rejoin::rejoin(setup, pgctl, &rejoin_args, &mut rejoined);
    report.rejoin = Some(rejoined);
    result?;
    report.done = true;
    Ok(())
}
