//! `rejoin`: run on the old primary. `local` becomes a standby of `peer`: the peer must be a
//! primary; a replication slot for this node is made there (before the rewind, so the WAL it
//! needs is kept); `local` is stopped if it runs; `wal_log_hints` or data checksums are
//! checked (with how to fix it if neither); `pg_rewind --source-server` (the node's own config
//! files kept); `standby.signal` and `primary_conninfo` (no password) + `primary_slot_name`
//! written; started; and it must stream before we say so.

use std::fmt;
use std::time::{Duration, Instant};

use standby_common::exit::{self, Code};
use standby_common::pg::BlockingClient;

use crate::lsn;
use crate::pgctl::{conninfo_without_password, PgCtl};
use crate::setup::Setup;
use crate::syncrep::{self, Restored};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The physical replication slot on the peer for this node [default: standby_<host name>]
    #[arg(long, value_name = "NAME")]
    pub slot: Option<String>,
    /// How long to wait for the rejoined node to stream
    #[arg(long, value_name = "DUR", default_value = "60s")]
    pub timeout: standby_common::duration::HumanDuration,
}

/// What `rejoin` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Rejoined {
    pub server: String,
    pub primary: String,
    /// True once anything on the node changed (stopped, rewound, reconfigured).
    pub changed: bool,
    pub stopped: bool,
    pub rewound: bool,
    pub slot: String,
    pub slot_created: bool,
    pub streaming: bool,
    /// Each step done, in order.
    pub steps: Vec<String>,
    /// Synchronous mode turned back on at the primary (this node's own config had
    /// `synchronous_standby_names` set and the primary had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synchronous: Option<Restored>,
}

impl fmt::Display for Rejoined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "  {s}")?;
        }
        if self.streaming {
            writeln!(f, "REJOINED {} as a standby of {} (slot {}), streaming", self.server, self.primary, self.slot)
        } else {
            writeln!(f, "NOT STREAMING: {} (changed: {})", self.server, self.changed)
        }
    }
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let peer = setup.require_peer("rejoin")?;
    let pgctl = setup.pgctl("rejoin")?;
    let _lock = setup.ctx.state()?.lock("rejoin")?;
    let slot = args.slot.clone().unwrap_or_else(default_slot);
    let mut report = Rejoined {
        server: setup.local.server().to_string(),
        primary: peer.server().to_string(),
        slot: slot.clone(),
        ..Rejoined::default()
    };
    match rejoin(setup, &pgctl, args, &mut report) {
        Ok(()) => {
            setup.ctx.output.report(&report, Code::Ok)?;
            Ok(Code::Ok)
        }
        Err(e) if report.changed => {
            setup.ctx.output.report(&report, Code::Failed)?;
            Err(e.context(format!(
                "rejoin of {} stopped part-way (`replica-promote status` shows where it stands)",
                report.server
            )))
        }
        Err(e) => Err(e),
    }
}

/// The steps; `report` says how far they got.
pub fn rejoin(setup: &Setup, pgctl: &PgCtl, args: &Args, report: &mut Rejoined) -> anyhow::Result<()> {
    let peer = setup.require_peer("rejoin")?;
    pgctl.require_all()?;
    let primary = peer.connect_blocking()?;
    let in_recovery: bool = primary.query_value("SELECT pg_is_in_recovery()", &[])?;
    if in_recovery {
        return Err(exit::error(
            Code::Failed,
            format!(
                "peer {} is not a primary (it is in recovery): nothing to rejoin; nothing was changed",
                peer.server()
            ),
        ));
    }
    // pg_rewind reads the source's timeline from its control file, which a fresh promotion
    // updates only at its next checkpoint (see the pg_rewind docs): make it now.
    primary.batch_execute("CHECKPOINT")?;
    let walfile: String = primary.query_value("SELECT pg_walfile_name(pg_current_wal_lsn())", &[])?;
    let timeline = lsn::timeline_of_walfile(&walfile).unwrap_or(0);
    let running = pgctl.is_running()?;
    if running {
        if let Ok(local) = setup.local.connect_blocking() {
            if streaming(&local, timeline)? {
                report.streaming = true;
                report.steps.push("already a standby streaming from its primary: nothing to do".into());
                restore_synchronous(&primary, &local, args.timeout.get(), report);
                return Ok(());
            }
        }
    }
    pgctl.check_rewindable()?;
    report.slot_created = ensure_slot(&primary, &report.slot)?;
    if report.slot_created {
        report.steps.push(format!("created replication slot {} on {}", report.slot, peer.server()));
    }
    drop(primary);
    if running {
        report.changed = true;
        pgctl.stop("fast")?;
        report.stopped = true;
        report.steps.push(format!("stopped {} (fast)", report.server));
    }
    let state = pgctl.cluster_state()?;
    if !state.starts_with("shut down") {
        report.changed = true;
        pgctl.crash_recover()?;
        report.steps.push(format!("crash recovery of {} (it was {state:?})", report.server));
    }
    let source = conninfo_without_password(setup.config.peer.as_deref().unwrap_or_default());
    report.changed = true;
    let done = pgctl.rewind(&source, setup.password.as_ref())?;
    report.rewound = true;
    let said = done.stdout_text() + &String::from_utf8_lossy(&done.stderr);
    tracing::info!("pg_rewind said:\n{said}");
    let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("done").trim().to_string();
    report.steps.push(format!("pg_rewind from {}: {last}", peer.server()));
    pgctl.write_standby_config(&source, &report.slot)?;
    report.steps.push("wrote standby.signal, primary_conninfo and primary_slot_name".into());
    pgctl.start()?;
    report.steps.push(format!("started {}", report.server));
    wait_streaming(setup, timeline, args.timeout.get())?;
    report.streaming = true;
    match (peer.connect_blocking(), setup.local.connect_blocking()) {
        (Ok(primary), Ok(local)) => restore_synchronous(&primary, &local, args.timeout.get(), report),
        (Err(e), _) | (_, Err(e)) => {
            report.steps.push(format!("synchronous mode not checked: {e:#}"));
        }
    }
    Ok(())
}

/// Once streaming: synchronous mode back on at the primary if this node's config had it (see
/// [`syncrep::restore`]). It never fails the rejoin: the node streams either way.
fn restore_synchronous(primary: &BlockingClient, local: &BlockingClient, timeout: Duration, report: &mut Rejoined) {
    match syncrep::restore(primary, local, timeout) {
        Ok(Some(done)) => {
            report.steps.push(if done.synchronous {
                format!(
                    "set synchronous_standby_names = {:?} on {}: this node is a synchronous standby",
                    done.names, report.primary
                )
            } else {
                done.detail.clone()
            });
            report.synchronous = Some(done);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!("synchronous mode not restored: {e:#}");
            report.steps.push(format!("synchronous mode not restored: {e:#}"));
        }
    }
}

/// Make the physical slot on the primary (reserving WAL now); true when it was created.
/// An active slot of that name belongs to another standby: refused.
pub fn ensure_slot(primary: &BlockingClient, slot: &str) -> anyhow::Result<bool> {
    let row = primary
        .query_opt("SELECT active, restart_lsn IS NOT NULL FROM pg_replication_slots WHERE slot_name = $1", &[&slot])?;
    match row {
        Some(r) if r.get::<_, bool>(0) => Err(exit::error(
            Code::Failed,
            format!("replication slot {slot} on {} is in use by another standby (use --slot)", primary.server()),
        )),
        Some(r) if r.get::<_, bool>(1) => Ok(false),
        Some(_) => {
            primary.execute("SELECT pg_drop_replication_slot($1)", &[&slot])?;
            primary.execute("SELECT pg_create_physical_replication_slot($1, true)", &[&slot])?;
            Ok(true)
        }
        None => {
            primary.execute("SELECT pg_create_physical_replication_slot($1, true)", &[&slot])?;
            Ok(true)
        }
    }
}

/// In recovery, the WAL receiver streaming on the primary's `timeline` (a receiver on an
/// older timeline streams for a moment, then finds it has forked off).
fn streaming(local: &BlockingClient, timeline: u32) -> anyhow::Result<bool> {
    let row = local.query_one(
        "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver),
                (SELECT received_tli FROM pg_stat_wal_receiver)",
        &[],
    )?;
    let in_recovery: bool = row.get(0);
    let status: Option<String> = row.get(1);
    let tli: Option<i32> = row.get(2);
    Ok(in_recovery
        && status.as_deref() == Some("streaming")
        && tli.and_then(|t| u32::try_from(t).ok()) == Some(timeline))
}

/// Poll the local node until its WAL receiver streams on `timeline`, or fail after `timeout`.
pub fn wait_streaming(setup: &Setup, timeline: u32, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match setup.local.connect_blocking().and_then(|c| streaming(&c, timeline)) {
            Ok(true) => return Ok(()),
            Ok(false) => last = format!("in recovery, WAL receiver not streaming on timeline {timeline} yet"),
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(exit::error(
        Code::Failed,
        format!("{} does not stream after {}: {last}", setup.local.server(), humantime_secs(timeout)),
    ))
}

fn humantime_secs(d: Duration) -> String {
    format!("{} s", d.as_secs())
}

/// `standby_<host name>`, lower-case, other characters as `_` (slot names allow [a-z0-9_]).
pub fn default_slot() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "node".into());
    let clean: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .take(50)
        .collect();
    format!("standby_{clean}")
}
