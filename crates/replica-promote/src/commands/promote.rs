//! `promote`: make `local` (a standby) the primary, safely.
//!
//! Refused (exit 1, nothing changed) when `local` is not in recovery, while the peer still
//! answers (as a primary, or at all without saying its role) or any `peer-checks` path
//! answers — unless `--force`, which first requires the `fence` command to succeed. Then:
//! wait (bounded) until replay has reached what was received, `pg_promote(true, N)`, prove
//! the node takes writes (an XID is assigned), report the new timeline, the last replayed LSN
//! and the estimated data loss against the primary's last seen LSN (zero acknowledged commits
//! in synchronous mode), run the `post-promote` hooks with the result in `REPLICA_PROMOTE_*`
//! env vars, and notify.

use std::fmt;
use std::time::{Duration, Instant};

use standby_common::exec::Cmd;
use standby_common::exit::{self, Code};
use standby_common::notify::{Event, EventKind};
use standby_common::pg::BlockingClient;
use standby_common::switching::{self, SwitchLock};

use crate::cli::TOOL;
use crate::lsn::{self, Lsn};
use crate::peer::{self, Sighting};
use crate::record;
use crate::setup::Setup;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Promote even though the old primary may answer: runs `fence` first and refuses unless
    /// it succeeds
    #[arg(long)]
    pub force: bool,
    /// How long to wait for replay to reach the last received WAL before promoting
    #[arg(long, value_name = "DUR", default_value = "30s")]
    pub replay_timeout: standby_common::duration::HumanDuration,
    /// How long pg_promote() may take
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub promote_timeout: u32,
}

/// How long replay must stand still, short of the received WAL, with the startup process
/// waiting for more, before the rest counts as an incomplete record that will never come.
const INCOMPLETE_TAIL_SETTLE: Duration = Duration::from_millis(200);

/// A post-promote hook that ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hook {
    pub command: String,
    pub ok: bool,
    pub detail: String,
}

/// What `promote` did (or why it did nothing).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Promotion {
    /// The promoted node, `host:port`.
    pub server: String,
    /// True once pg_promote() was called: the cluster changed.
    pub changed: bool,
    pub promoted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub sightings: Vec<Sighting>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fenced: Option<bool>,
    pub received_lsn: Option<Lsn>,
    pub replayed_lsn: Option<Lsn>,
    pub old_timeline: Option<u32>,
    pub new_timeline: Option<u32>,
    /// The primary's position as `status`/`check` last saw it.
    pub last_primary_lsn: Option<Lsn>,
    /// WAL the old primary had written and this node never replayed (an upper bound on lost
    /// commits; `None` without a recorded position).
    pub estimated_loss_bytes: Option<u64>,
    /// The standby was synchronous when last seen: no acknowledged commit is lost.
    pub synchronous: Option<bool>,
    /// Replay was paused on the standby and was resumed, so that nothing received is lost.
    pub replay_resumed: bool,
    /// Received WAL that can never be replayed: the tail of a record the old primary had not
    /// finished sending when it died (replay waits for its end). Part of the loss estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_tail_bytes: Option<u64>,
    /// `synchronous_standby_names` the promoted node had (from its old life) and that was
    /// cleared because no standby streams to it: every commit would have waited forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared_synchronous_standby_names: Option<String>,
    pub hooks: Vec<Hook>,
    /// From the start of the command until the first successful write.
    pub to_writable_ms: Option<u64>,
}

impl fmt::Display for Promotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sightings {
            writeln!(f, "{} {}: {}", if s.answers { "ANSWERS" } else { "silent " }, s.what, s.detail)?;
        }
        if let Some(why) = &self.refused {
            return writeln!(f, "REFUSED: {why}; nothing was changed");
        }
        if !self.promoted {
            return writeln!(f, "FAILED to promote {} (changed: {})", self.server, self.changed);
        }
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        writeln!(
            f,
            "PROMOTED {}: timeline {} -> {}, last replayed {}, writable after {} ms",
            self.server,
            opt(self.old_timeline.map(|t| t.to_string())),
            opt(self.new_timeline.map(|t| t.to_string())),
            opt(self.replayed_lsn.map(|l| l.to_string())),
            opt(self.to_writable_ms.map(|t| t.to_string())),
        )?;
        match (self.estimated_loss_bytes, self.synchronous) {
            (_, Some(true)) => writeln!(f, "data loss: none acknowledged (the standby was synchronous)")?,
            (Some(b), _) => writeln!(
                f,
                "data loss: at most {} of WAL (primary last seen at {})",
                crate::size::human(b),
                opt(self.last_primary_lsn.map(|l| l.to_string()))
            )?,
            (None, _) => writeln!(f, "data loss: unknown (no recorded primary position; run `status` from cron)")?,
        }
        if self.replay_resumed {
            writeln!(f, "replay was paused: resumed it before promoting")?;
        }
        if let Some(tail) = self.incomplete_tail_bytes {
            writeln!(f, "the last {tail} bytes received were an incomplete record (the primary died mid-send)")?;
        }
        if let Some(names) = &self.cleared_synchronous_standby_names {
            writeln!(
                f,
                "cleared synchronous_standby_names (was {names:?}): no standby streams to {}, commits would wait forever; \
                 `rejoin` of the old primary turns synchronous mode back on",
                self.server
            )?;
        }
        for h in &self.hooks {
            writeln!(f, "hook {}: {} {}", if h.ok { "ok" } else { "FAILED" }, h.command, h.detail)?;
        }
        Ok(())
    }
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let start = Instant::now();
    let peer_options = setup.require_peer("promote")?;
    let state = setup.ctx.state()?;
    let _lock = state.lock("promote")?;
    // Host-wide, until the post-promote hooks have run: no deploy or prune meanwhile, and a
    // hook that switches DNS works under this lock.
    let switching = switching::hold(TOOL, "promoting the standby")?;
    let local = setup.local.connect_blocking()?;
    let mut report = Promotion { server: setup.local.server().to_string(), ..Promotion::default() };

    let in_recovery: bool = local.query_value("SELECT pg_is_in_recovery()", &[])?;
    if !in_recovery {
        return refuse(setup, report, "local is not in recovery: it is already a primary".into());
    }

    // The old primary, by every path at once.
    let timeout = setup.connect_timeout();
    report.sightings = std::thread::scope(|s| {
        let asked = s.spawn(|| peer::ask_peer(peer_options));
        let mut all = peer::run_checks(&setup.config.peer_checks, timeout);
        let peer = asked.join().unwrap_or_else(|_| Sighting {
            what: format!("peer ({})", peer_options.server()),
            answers: true,
            detail: "the check failed".into(),
        });
        all.insert(0, peer);
        all
    });
    let answering: Vec<String> =
        report.sightings.iter().filter(|s| s.answers).map(|s| format!("{} {}", s.what, s.detail)).collect();
    if !answering.is_empty() && !args.force {
        let why = format!(
            "the old primary still answers: {}; promoting now would make two primaries \
             (stop it, or use --force with a `fence` command that stops it)",
            answering.join("; ")
        );
        return refuse(setup, report, why);
    }
    if args.force {
        let Some(fence) = &setup.config.fence else {
            return refuse(setup, report, "--force needs a `fence` command that stops the old primary".into());
        };
        let done = Cmd::shell(fence).timeout(Duration::from_secs(120)).run();
        let ok = matches!(&done, Ok(d) if d.success());
        report.fenced = Some(ok);
        if !ok {
            let why = match done {
                Ok(d) => format!("the fence command failed ({}): {}", d.status, d.stderr_tail().trim()),
                Err(e) => format!("the fence command failed: {e:#}"),
            };
            return refuse(setup, report, why);
        }
    }

    // Replay what was received before promoting: nothing received is thrown away (a paused
    // replay is resumed; PostgreSQL would end the pause at promotion anyway).
    let paused: bool = local.query_value("SELECT pg_is_wal_replay_paused()", &[])?;
    if paused {
        local.batch_execute("SELECT pg_wal_replay_resume()")?;
        report.replay_resumed = true;
    }
    let deadline = start + args.replay_timeout.get();
    // Replay is done when it reaches what was received, or when it stands still while the
    // startup process waits for more WAL: what remains is the start of a record whose end
    // never arrived (the primary died mid-send), which no amount of waiting replays.
    let mut stalled_since: Option<(Lsn, Instant)> = None;
    loop {
        let row = local.query_one(
            "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
                    (SELECT timeline_id FROM pg_control_checkpoint()),
                    (SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup' LIMIT 1)",
            &[],
        )?;
        report.received_lsn = row.get::<_, Option<String>>(0).and_then(|t| t.parse().ok());
        report.replayed_lsn = row.get::<_, Option<String>>(1).and_then(|t| t.parse().ok());
        report.old_timeline = row.get::<_, Option<i32>>(2).and_then(|t| u32::try_from(t).ok());
        let waiting_for_wal = matches!(
            row.get::<_, Option<String>>(3).as_deref(),
            Some("RecoveryWalStream" | "RecoveryRetrieveRetryInterval")
        );
        let (received, replayed) = match (report.received_lsn, report.replayed_lsn) {
            (Some(received), Some(replayed)) if replayed < received => (received, replayed),
            _ => break,
        };
        stalled_since = match stalled_since {
            Some((at, since)) if at == replayed && waiting_for_wal => Some((at, since)),
            _ if waiting_for_wal => Some((replayed, Instant::now())),
            _ => None,
        };
        if let Some((_, since)) = stalled_since {
            if since.elapsed() >= INCOMPLETE_TAIL_SETTLE {
                report.incomplete_tail_bytes = Some(received.0.saturating_sub(replayed.0));
                break;
            }
        }
        if Instant::now() >= deadline {
            let why = format!(
                "replay did not reach the received WAL within {} (replayed {}, received {}); is replay paused?",
                args.replay_timeout,
                report.replayed_lsn.map(|l| l.to_string()).unwrap_or_default(),
                report.received_lsn.map(|l| l.to_string()).unwrap_or_default()
            );
            return refuse(setup, report, why);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    estimate_loss(&mut report, record::load(&state), peer_options.server());

    report.changed = true;
    let promoted: bool = match local.query_value("SELECT pg_promote(true, $1)", &[&(args.promote_timeout as i32)]) {
        Ok(p) => p,
        Err(e) => return failed(setup, report, format!("pg_promote() on {} failed: {e:#}", setup.local.server())),
    };
    if !promoted {
        let why = format!(
            "pg_promote() did not finish within {} s on {}; `replica-promote status` shows where it stands",
            args.promote_timeout,
            setup.local.server()
        );
        return failed(setup, report, why);
    }
    match crate::syncrep::relax(&local) {
        Ok(cleared) => report.cleared_synchronous_standby_names = cleared,
        Err(e) => {
            let why = format!(
                "promoted {}, but it keeps synchronous_standby_names with no standby (commits would wait): {e:#}",
                setup.local.server()
            );
            return failed(setup, report, why);
        }
    }
    match prove_writable(&local) {
        Ok(timeline) => report.new_timeline = timeline,
        Err(e) => {
            return failed(setup, report, format!("promoted, but {} takes no writes: {e:#}", setup.local.server()))
        }
    }
    report.promoted = true;
    report.to_writable_ms = Some(start.elapsed().as_millis() as u64);
    drop(local);

    run_hooks(setup, &mut report, peer_options.server(), switching.as_ref());
    let event = Event::new(
        TOOL,
        EventKind::Changed,
        &report.server,
        format!(
            "promoted to primary (timeline {}), estimated loss {}",
            report.new_timeline.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            report.estimated_loss_bytes.map(crate::size::human).unwrap_or_else(|| "unknown".into())
        ),
    )
    .with_details(serde_json::to_value(&report).unwrap_or_default());
    setup.ctx.notifiers.send_blocking(&event);

    let code = if report.hooks.iter().all(|h| h.ok) { Code::Ok } else { Code::Failed };
    setup.ctx.output.report(&report, code)?;
    if code != Code::Ok {
        return Err(exit::error(code, "promoted, but a post-promote hook failed (see above)"));
    }
    Ok(code)
}

/// Estimate the WAL lost against the primary's last recorded position (when it was the peer).
fn estimate_loss(report: &mut Promotion, last: Option<record::LastPrimary>, peer_server: &str) {
    let Some(last) = last.filter(|l| l.server == peer_server) else { return };
    let have = report.replayed_lsn.or(report.received_lsn).unwrap_or_default();
    report.last_primary_lsn = Some(last.lsn);
    report.estimated_loss_bytes = Some(last.lsn.bytes_after(have));
    report.synchronous = Some(last.synchronous);
}

/// An XID is assigned (only a primary can) and the new timeline read from the WAL file name.
fn prove_writable(local: &BlockingClient) -> anyhow::Result<Option<u32>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match local.query_one("SELECT pg_current_xact_id()::text, pg_walfile_name(pg_current_wal_lsn())", &[]) {
            Ok(row) => return Ok(lsn::timeline_of_walfile(&row.get::<_, String>(1))),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn run_hooks(setup: &Setup, report: &mut Promotion, old_primary: &str, switching: Option<&SwitchLock>) {
    let text = |v: Option<String>| v.unwrap_or_default();
    for line in &setup.config.post_promote {
        let cmd = Cmd::shell(line)
            .env("REPLICA_PROMOTE_SERVER", &report.server)
            .env("REPLICA_PROMOTE_OLD_PRIMARY", old_primary)
            .env("REPLICA_PROMOTE_TIMELINE", text(report.new_timeline.map(|t| t.to_string())))
            .env("REPLICA_PROMOTE_REPLAYED_LSN", text(report.replayed_lsn.map(|l| l.to_string())))
            .env("REPLICA_PROMOTE_LOSS_BYTES", text(report.estimated_loss_bytes.map(|b| b.to_string())));
        let cmd = match switching.map(SwitchLock::env) {
            Some((name, value)) => cmd.env(name, value),
            None => cmd,
        }
        .timeout(Duration::from_secs(300));
        let hook = match cmd.run() {
            Ok(d) if d.success() => Hook { command: line.clone(), ok: true, detail: String::new() },
            Ok(d) => {
                Hook { command: line.clone(), ok: false, detail: format!("{}: {}", d.status, d.stderr_tail().trim()) }
            }
            Err(e) => Hook { command: line.clone(), ok: false, detail: format!("{e:#}") },
        };
        if !hook.ok {
            tracing::error!("post-promote hook {:?} failed: {}", hook.command, hook.detail);
        }
        report.hooks.push(hook);
    }
}

/// Nothing changed: print the report, exit 1 with the reason.
fn refuse(setup: &Setup, mut report: Promotion, why: String) -> anyhow::Result<Code> {
    report.refused = Some(why.clone());
    if setup.ctx.output.json {
        setup.ctx.output.report(&report, Code::Failed)?;
    }
    for s in report.sightings.iter().filter(|s| s.answers) {
        tracing::warn!("{} answers: {}", s.what, s.detail);
    }
    Err(exit::error(Code::Failed, format!("promote refused: {why}; nothing was changed")))
}

/// Something changed (or may have): print the report, exit 1.
fn failed(setup: &Setup, report: Promotion, why: String) -> anyhow::Result<Code> {
    setup.ctx.output.report(&report, Code::Failed)?;
    Err(exit::error(Code::Failed, why))
}
