//! dns-failover: point a DNS record at the standby when the primary fails its health check
//! `failure-threshold` times in a row, and back after `recovery-threshold` good checks —
//! never to a backup that fails its own check, never while this monitor reaches none of its
//! control targets (its own network is down, not the primary).
//!
//! [`round`] is the engine (probe, count, decide, act) with its pure [`round::decide`];
//! [`provider`] holds Cloudflare and PowerDNS behind one interface; [`memory`] is what a
//! cron run remembers in the state dir; [`commands`] holds `check`, `watch`, `status` and
//! `switch`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod health;
pub mod memory;
pub mod provider;
pub mod record;
pub mod report;
pub mod round;
pub mod setup;
pub mod vantage;

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = "dns-failover";
