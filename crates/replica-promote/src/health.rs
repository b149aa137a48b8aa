//! Judging a pair from what its nodes said: which is the primary and which the standby,
//! whether the standby streams, how far its replay is behind (bytes and seconds), and the
//! problems that make `check` exit 1. Pure: no I/O, tested on hand-made [`Node`]s.

use crate::lsn::Lsn;
use crate::node::{Node, NodeInfo, Role};
use crate::size::human;

/// Lag limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_lag_bytes: u64,
    pub max_lag_seconds: u64,
}

/// The verdict on a pair.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdict {
    /// `local` or `peer`, the node that is the primary (when exactly one is).
    pub primary: Option<String>,
    pub standby: Option<String>,
    pub streaming: bool,
    /// The primary's current LSN minus the standby's replayed LSN (or, without a primary, the
    /// standby's received minus replayed).
    pub lag_bytes: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub healthy: bool,
    /// One line each; the first is what `check` prints.
    pub problems: Vec<String>,
}

/// Judge the nodes read (local first, then the peer when configured).
pub fn judge(nodes: &[Node], limits: Limits) -> Verdict {
    let mut v = Verdict::default();
    let with_role = |role: Role| nodes.iter().filter(move |n| n.role() == Some(role)).collect::<Vec<_>>();
    let primaries = with_role(Role::Primary);
    let standbys = with_role(Role::Standby);
    for n in nodes.iter().filter(|n| !n.reachable) {
        v.problems.push(format!("{} unreachable: {}", n.name(), n.error.as_deref().unwrap_or("no answer")));
    }
    if primaries.len() > 1 {
        v.problems.push("split brain: local and peer are both primaries (both accept writes)".to_string());
    }
    let primary = (primaries.len() == 1).then(|| primaries[0]);
    v.primary = primary.map(|p| p.place.as_str().to_string());
    let (Some(standby), Some(s)) = (standbys.first(), standbys.first().and_then(|s| s.info.as_ref())) else {
        // No standby among the nodes read: a primary alone may still have one (peer unset).
        match primary.and_then(|p| p.info.as_ref().map(|i| (p, i))) {
            Some((p, info)) if nodes.len() == 1 => judge_from_primary(&mut v, p, info, limits),
            _ if v.problems.is_empty() => v.problems.push("no standby: neither node is in recovery".to_string()),
            _ => {}
        }
        v.healthy = v.problems.is_empty();
        return v;
    };
    if standbys.len() > 1 && primaries.is_empty() {
        v.problems.push("no primary: local and peer are both standbys".to_string());
    }
    v.standby = Some(standby.place.as_str().to_string());
    let receiver = s.receiver.as_ref().map(|r| r.status.as_str());
    v.streaming = receiver == Some("streaming");
    if !v.streaming {
        v.problems.push(format!(
            "standby {} is not streaming (WAL receiver: {})",
            standby.name(),
            receiver.unwrap_or("not running")
        ));
    }
    let replayed = s.replayed_lsn.unwrap_or_default();
    let (bytes, lag_from_primary) = match primary.and_then(|p| p.info.as_ref()) {
        Some(p) => {
            let bytes = p.current_lsn.unwrap_or_default().bytes_after(replayed);
            let replica = matching_replica(p, s);
            (bytes, replica.and_then(|r| r.replay_lag_seconds))
        }
        None => (s.received_lsn.unwrap_or(replayed).bytes_after(replayed), None),
    };
    v.lag_bytes = Some(bytes);
    v.lag_seconds = Some(if bytes == 0 { 0.0 } else { lag_from_primary.or(s.replay_age_seconds).unwrap_or(0.0) });
    limit_problems(&mut v, &standby.name(), limits);
    v.healthy = v.problems.is_empty();
    v
}

/// Only a primary was read (no peer configured): its standbys as `pg_stat_replication` shows them.
fn judge_from_primary(v: &mut Verdict, p: &Node, info: &NodeInfo, limits: Limits) {
    let Some(r) = info.replicas.iter().find(|r| r.state == "streaming") else {
        v.problems.push(format!("no standby is streaming from primary {}", p.name()));
        return;
    };
    v.streaming = true;
    v.standby = Some(format!("{} ({})", r.application_name, r.client_addr.as_deref().unwrap_or("local socket")));
    let bytes = info.current_lsn.unwrap_or_default().bytes_after(r.replay_lsn.unwrap_or_default());
    v.lag_bytes = Some(bytes);
    v.lag_seconds = Some(if bytes == 0 { 0.0 } else { r.replay_lag_seconds.unwrap_or(0.0) });
    let name = v.standby.clone().unwrap_or_default();
    limit_problems(v, &name, limits);
}

fn limit_problems(v: &mut Verdict, standby: &str, limits: Limits) {
    if let Some(bytes) = v.lag_bytes.filter(|b| *b > limits.max_lag_bytes) {
        v.problems.push(format!(
            "standby {standby} replay is {} behind (max-lag-bytes {})",
            human(bytes),
            human(limits.max_lag_bytes)
        ));
    }
    if let Some(secs) = v.lag_seconds.filter(|s| *s > limits.max_lag_seconds as f64) {
        v.problems.push(format!(
            "standby {standby} replay is {secs:.1} s behind (max-lag-seconds {})",
            limits.max_lag_seconds
        ));
    }
}

/// The primary's `pg_stat_replication` row of this standby: by slot, else the only one.
fn matching_replica<'a>(p: &'a NodeInfo, s: &NodeInfo) -> Option<&'a crate::node::Replica> {
    let slot = s.receiver.as_ref().and_then(|r| r.slot.as_deref());
    p.replicas
        .iter()
        .find(|r| slot.is_some() && r.slot.as_deref() == slot)
        .or_else(|| (p.replicas.len() == 1).then(|| &p.replicas[0]))
}

/// The position the standby has: replayed, else received.
pub fn standby_position(s: &NodeInfo) -> Option<Lsn> {
    s.replayed_lsn.or(s.received_lsn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Receiver, Replica};
    use crate::setup::Place;

    const LIMITS: Limits = Limits { max_lag_bytes: 1 << 20, max_lag_seconds: 60 };

    fn info(role: Role) -> NodeInfo {
        NodeInfo {
            role,
            version: "15.8".into(),
            timeline: Some(1),
            current_lsn: None,
            received_lsn: None,
            replayed_lsn: None,
            replay_age_seconds: None,
            replay_paused: None,
            receiver: None,
            replicas: Vec::new(),
            slots: Vec::new(),
        }
    }

    fn node(place: Place, info: Option<NodeInfo>) -> Node {
        Node {
            place,
            server: "127.0.0.1:5432".into(),
            reachable: info.is_some(),
            error: info.is_none().then(|| "cannot connect".to_string()),
            info,
        }
    }

    fn primary(lsn: u64, replay_lag: Option<f64>) -> NodeInfo {
        let mut p = info(Role::Primary);
        p.current_lsn = Some(Lsn(lsn));
        p.replicas.push(Replica {
            application_name: "walreceiver".into(),
            client_addr: Some("127.0.0.1".into()),
            state: "streaming".into(),
            sync_state: "async".into(),
            slot: Some("s1".into()),
            sent_lsn: None,
            flush_lsn: None,
            replay_lsn: None,
            replay_lag_seconds: replay_lag,
        });
        p
    }

    fn standby(replayed: u64, status: &str) -> NodeInfo {
        let mut s = info(Role::Standby);
        s.replayed_lsn = Some(Lsn(replayed));
        s.received_lsn = Some(Lsn(replayed));
        s.replay_age_seconds = Some(500.0);
        s.receiver = Some(Receiver {
            status: status.into(),
            sender_host: None,
            sender_port: None,
            slot: Some("s1".into()),
            received_tli: Some(1),
        });
        s
    }

    #[test]
    fn a_caught_up_pair_is_healthy_even_when_the_primary_is_idle() {
        let v = judge(
            &[node(Place::Local, Some(standby(100, "streaming"))), node(Place::Peer, Some(primary(100, None)))],
            LIMITS,
        );
        assert!(v.healthy, "{:?}", v.problems);
        assert_eq!((v.lag_bytes, v.lag_seconds), (Some(0), Some(0.0)));
        assert_eq!((v.primary.as_deref(), v.standby.as_deref()), (Some("peer"), Some("local")));
    }

    #[test]
    fn lag_over_either_limit_is_a_problem() {
        let nodes =
            [node(Place::Local, Some(primary(3 << 20, Some(2.0)))), node(Place::Peer, Some(standby(0, "streaming")))];
        let v = judge(&nodes, LIMITS);
        assert!(!v.healthy);
        assert!(v.problems[0].contains("3MB behind"), "{:?}", v.problems);
        let v = judge(&nodes, Limits { max_lag_bytes: 4 << 20, max_lag_seconds: 1 });
        assert!(v.problems[0].contains("2.0 s behind"), "{:?}", v.problems);
    }

    #[test]
    fn a_stopped_node_a_broken_receiver_and_two_primaries_are_problems() {
        let v = judge(&[node(Place::Local, None), node(Place::Peer, Some(primary(1, None)))], LIMITS);
        assert!(v.problems[0].starts_with("local (127.0.0.1:5432) unreachable"), "{:?}", v.problems);
        let v = judge(&[node(Place::Local, Some(standby(1, "waiting"))), node(Place::Peer, None)], LIMITS);
        assert!(v.problems.iter().any(|p| p.contains("not streaming (WAL receiver: waiting)")), "{:?}", v.problems);
        let v = judge(&[node(Place::Local, Some(primary(1, None))), node(Place::Peer, Some(primary(1, None)))], LIMITS);
        assert!(v.problems[0].starts_with("split brain"), "{:?}", v.problems);
    }
}
