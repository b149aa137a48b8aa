//! replica-promote: PostgreSQL standby status and lag checks, safe promotion, rejoin of the
//! old primary, planned switchover.
//!
//! Roles are discovered at run time (`pg_is_in_recovery()`), never configured. `cli` parses;
//! `setup` turns flags and config into a [`setup::Setup`]; `commands/` has one module per
//! command. `node` reads a node, `health` judges a pair (pure), `peer` looks for the old
//! primary by every path, `pgctl` runs the server programs as the data directory's owner,
//! `record` keeps the primary's last seen position, `syncrep` handles `synchronous_standby_names`
//! across role changes, `lsn` and `size` are value types.

pub mod cli;
pub mod commands;
pub mod config;
pub mod health;
pub mod lsn;
pub mod node;
pub mod peer;
pub mod pgctl;
pub mod record;
pub mod setup;
pub mod size;
pub mod syncrep;
