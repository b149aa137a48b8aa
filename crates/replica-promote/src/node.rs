//! One node as PostgreSQL sees itself: reachable or why not, role (`pg_is_in_recovery()`),
//! version, timeline, WAL positions, its WAL receiver (a standby) or its standbys and slots
//! (a primary). Read with a few catalogue queries; nothing is changed.

use standby_common::pg::{BlockingClient, ConnectOptions};

use crate::lsn::{self, Lsn};
use crate::setup::Place;

/// What a node is, as it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Primary,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
        }
    }
}

/// A standby connected to a primary (`pg_stat_replication`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replica {
    pub application_name: String,
    pub client_addr: Option<String>,
    pub state: String,
    pub sync_state: String,
    pub slot: Option<String>,
    pub sent_lsn: Option<Lsn>,
    pub flush_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub replay_lag_seconds: Option<f64>,
}

/// A replication slot (`pg_replication_slots`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Slot {
    pub name: String,
    pub kind: String,
    pub active: bool,
    pub restart_lsn: Option<Lsn>,
    /// WAL kept for this slot, from its restart LSN to the node's current (or received) LSN.
    pub retained_bytes: Option<i64>,
}

/// A standby's WAL receiver (`pg_stat_wal_receiver`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receiver {
    pub status: String,
    pub sender_host: Option<String>,
    pub sender_port: Option<i32>,
    pub slot: Option<String>,
    pub received_tli: Option<i32>,
}

/// A reachable node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    pub role: Role,
    pub version: String,
    pub timeline: Option<u32>,
    /// A primary's current write position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_lsn: Option<Lsn>,
    /// A standby's last received (flushed) position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_lsn: Option<Lsn>,
    /// A standby's last replayed position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_lsn: Option<Lsn>,
    /// A standby: seconds since the last replayed transaction committed on the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_age_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_paused: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Receiver>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Replica>,
    pub slots: Vec<Slot>,
}

/// One node in a report: where, and what it said (or why it said nothing).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Node {
    pub place: Place,
    /// `host:port`, never the conninfo (it may hold a password).
    pub server: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub info: Option<NodeInfo>,
}

impl Node {
    /// Connect and read the node; an unreachable node is a `Node` that says why.
    pub fn read(place: Place, options: &ConnectOptions) -> Node {
        let server = options.server().to_string();
        let result = options.connect_blocking().and_then(|c| read_info(&c));
        match result {
            Ok(info) => Node { place, server, reachable: true, error: None, info: Some(info) },
            Err(e) => Node { place, server, reachable: false, error: Some(format!("{e:#}")), info: None },
        }
    }

    pub fn role(&self) -> Option<Role> {
        self.info.as_ref().map(|i| i.role)
    }

    /// "local (127.0.0.1:5432)", for messages.
    pub fn name(&self) -> String {
        format!("{} ({})", self.place.as_str(), self.server)
    }
}

fn lsn_opt(text: Option<String>) -> Option<Lsn> {
    text.and_then(|t| t.parse().ok())
}

/// Read everything `status` shows from a connected node.
pub fn read_info(c: &BlockingClient) -> anyhow::Result<NodeInfo> {
    let row = c.query_one(
        "SELECT pg_is_in_recovery(), current_setting('server_version'),
                CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
                CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
                pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
                extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
                CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
                (SELECT timeline_id FROM pg_control_checkpoint())",
        &[],
    )?;
    let in_recovery: bool = row.get(0);
    let walfile: Option<String> = row.get(3);
    let checkpoint_tli: Option<i32> = row.get(8);
    let mut info = NodeInfo {
        role: if in_recovery { Role::Standby } else { Role::Primary },
        version: row.get(1),
        timeline: walfile.as_deref().and_then(lsn::timeline_of_walfile),
        current_lsn: lsn_opt(row.get(2)),
        received_lsn: lsn_opt(row.get(4)),
        replayed_lsn: lsn_opt(row.get(5)),
        replay_age_seconds: if in_recovery { row.get(6) } else { None },
        replay_paused: row.get(7),
        receiver: None,
        replicas: Vec::new(),
        slots: Vec::new(),
    };
    if in_recovery {
        info.receiver = c
            .query_opt(
                "SELECT status, sender_host, sender_port, slot_name, received_tli FROM pg_stat_wal_receiver",
                &[],
            )?
            .map(|r| Receiver {
                status: r.get(0),
                sender_host: r.get(1),
                sender_port: r.get(2),
                slot: r.get(3),
                received_tli: r.get(4),
            });
        info.timeline =
            info.receiver.as_ref().and_then(|r| r.received_tli).or(checkpoint_tli).and_then(|t| u32::try_from(t).ok());
    } else {
        info.replicas = c
            .query(
                "SELECT r.application_name, r.client_addr::text, r.state, r.sync_state, s.slot_name::text,
                        r.sent_lsn::text, r.flush_lsn::text, r.replay_lsn::text,
                        extract(epoch FROM r.replay_lag)::float8
                 FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
                 ORDER BY r.application_name",
                &[],
            )?
            .into_iter()
            .map(|r| Replica {
                application_name: r.get(0),
                client_addr: r.get(1),
                state: r.get::<_, Option<String>>(2).unwrap_or_default(),
                sync_state: r.get::<_, Option<String>>(3).unwrap_or_default(),
                slot: r.get(4),
                sent_lsn: lsn_opt(r.get(5)),
                flush_lsn: lsn_opt(r.get(6)),
                replay_lsn: lsn_opt(r.get(7)),
                replay_lag_seconds: r.get(8),
            })
            .collect();
    }
    info.slots = c
        .query(
            "SELECT slot_name::text, slot_type, active, restart_lsn::text,
                    pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                                         ELSE pg_current_wal_lsn() END, restart_lsn)::int8
             FROM pg_replication_slots ORDER BY slot_name",
            &[],
        )?
        .into_iter()
        .map(|r| Slot {
            name: r.get(0),
            kind: r.get(1),
            active: r.get(2),
            restart_lsn: lsn_opt(r.get(3)),
            retained_bytes: r.get(4),
        })
        .collect();
    Ok(info)
}
