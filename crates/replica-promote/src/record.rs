//! What replica-promote remembers between runs, in its state dir: the primary's last seen WAL
//! position (written by `status` and `check`), against which `promote` estimates the data a
//! promotion loses, and whether the standby was synchronous then (no acknowledged commit lost).

use standby_common::state::StateDir;

use crate::lsn::Lsn;
use crate::node::{Node, Role};

const FILE: &str = "last-primary.json";

/// The primary as last seen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LastPrimary {
    /// `host:port` of the primary then.
    pub server: String,
    pub lsn: Lsn,
    pub timeline: Option<u32>,
    /// A standby was synchronous (`sync`/`quorum`) when it was seen.
    pub synchronous: bool,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// Record the primary among `nodes`, if one was reachable. Failures only warn: a status
/// that cannot write its state still reports.
pub fn save(state: &StateDir, nodes: &[Node]) {
    let Some((node, info)) =
        nodes.iter().find_map(|n| n.info.as_ref().filter(|i| i.role == Role::Primary).map(|i| (n, i)))
    else {
        return;
    };
    let Some(lsn) = info.current_lsn else { return };
    let record = LastPrimary {
        server: node.server.clone(),
        lsn,
        timeline: info.timeline,
        synchronous: info.replicas.iter().any(|r| matches!(r.sync_state.as_str(), "sync" | "quorum")),
        at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    };
    if let Err(e) = state.write_json(FILE, &record) {
        tracing::warn!("cannot record the primary's position: {e:#}");
    }
}

pub fn load(state: &StateDir) -> Option<LastPrimary> {
    state.read_json(FILE).unwrap_or_else(|e| {
        tracing::warn!("cannot read the primary's last position: {e:#}");
        None
    })
}
