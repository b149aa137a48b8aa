//! dns-failover: switch a DNS record to the standby after N failed health checks, and back after M successes.
//!
//! Planned: `check` (cron), `switch --to`, `status`; Cloudflare and PowerDNS providers.
//! Today the binary reads and validates its section of the standby config
//! (`--check-config`); the commands land with the tool's own issue.

pub mod cli;
pub mod config;
