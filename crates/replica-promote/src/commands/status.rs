//! `status`: both nodes — reachable, role, version, timeline, WAL positions, lag in bytes and
//! seconds, slots, sync state, WAL receiver — and the verdict `check` uses. Records the
//! primary's last seen position in the state dir (for `promote`'s data-loss estimate).
//! Exit 0 healthy, 1 unhealthy (a node down, not streaming, lagging).

use std::fmt;

use standby_common::exit::Code;

use crate::health::{self, Limits, Verdict};
use crate::node::Node;
use crate::record;
use crate::setup::{Place, Setup};
use crate::size::human;

/// What `status` prints (and `--json` shows).
#[derive(Debug, serde::Serialize)]
pub struct Status {
    pub nodes: Vec<Node>,
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Read both nodes (the peer only when configured), judge them, record the primary's LSN.
pub fn read(setup: &Setup, limits: Limits) -> Status {
    let mut nodes = vec![];
    // Both at once: an unreachable node costs one timeout, not two.
    std::thread::scope(|s| {
        let peer = setup.peer.as_ref().map(|o| s.spawn(move || Node::read(Place::Peer, o)));
        nodes.push(Node::read(Place::Local, &setup.local));
        if let Some(p) = peer {
            if let Ok(node) = p.join() {
                nodes.push(node);
            }
        }
    });
    match setup.ctx.state() {
        Ok(state) => record::save(&state, &nodes),
        Err(e) => tracing::warn!("no state dir, the primary's position is not recorded: {e:#}"),
    }
    let verdict = health::judge(&nodes, limits);
    Status { nodes, verdict }
}

pub fn limits(setup: &Setup) -> Limits {
    Limits { max_lag_bytes: setup.config.max_lag_bytes.0, max_lag_seconds: setup.config.max_lag_seconds }
}

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let status = read(setup, limits(setup));
    let code = if status.verdict.healthy { Code::Ok } else { Code::Failed };
    setup.ctx.output.report(&status, code)?;
    Ok(code)
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_else(|| "-".into())
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.nodes {
            let Some(i) = &n.info else {
                writeln!(
                    f,
                    "{:<5} {:<22} UNREACHABLE  {}",
                    n.place.as_str(),
                    n.server,
                    n.error.as_deref().unwrap_or("")
                )?;
                continue;
            };
            write!(
                f,
                "{:<5} {:<22} {:<8} PostgreSQL {}  timeline {}",
                n.place.as_str(),
                n.server,
                i.role.as_str(),
                i.version,
                opt(&i.timeline)
            )?;
            match i.role {
                crate::node::Role::Primary => writeln!(f, "  current {}", opt(&i.current_lsn))?,
                crate::node::Role::Standby => {
                    write!(f, "  received {}  replayed {}", opt(&i.received_lsn), opt(&i.replayed_lsn))?;
                    if i.replay_paused == Some(true) {
                        write!(f, "  REPLAY PAUSED")?;
                    }
                    match &i.receiver {
                        Some(r) => writeln!(
                            f,
                            "  receiver {} from {}:{}",
                            r.status,
                            r.sender_host.as_deref().unwrap_or("?"),
                            opt(&r.sender_port)
                        )?,
                        None => writeln!(f, "  no WAL receiver")?,
                    }
                }
            }
            for r in &i.replicas {
                writeln!(
                    f,
                    "      standby {} from {} {} {} replayed {} slot {}",
                    r.application_name,
                    r.client_addr.as_deref().unwrap_or("socket"),
                    r.state,
                    r.sync_state,
                    opt(&r.replay_lsn),
                    r.slot.as_deref().unwrap_or("-")
                )?;
            }
            for s in &i.slots {
                let kept = s.retained_bytes.map(|b| human(b.max(0) as u64)).unwrap_or_else(|| "-".into());
                writeln!(
                    f,
                    "      slot {} ({}) {} retains {kept}",
                    s.name,
                    s.kind,
                    if s.active { "active" } else { "INACTIVE" }
                )?;
            }
        }
        match (self.verdict.lag_bytes, self.verdict.lag_seconds) {
            (Some(b), Some(s)) => writeln!(f, "lag: {} / {s:.1} s", human(b))?,
            _ => writeln!(f, "lag: unknown")?,
        }
        if self.verdict.healthy {
            writeln!(f, "OK")?;
        }
        for p in &self.verdict.problems {
            writeln!(f, "PROBLEM: {p}")?;
        }
        Ok(())
    }
}
