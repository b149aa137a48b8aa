//! replica-promote: PostgreSQL standby status and lag checks, safe promotion, rejoin of the old primary.
//!
//! Planned: `check`, `promote`, `rejoin`.
//! Today the binary reads and validates its section of the standby config
//! (`--check-config`); the commands land with the tool's own issue.

pub mod cli;
pub mod config;
