//! downtime-monitor: uptime checks from cron or as a daemon, outage history, reports and alerts.
//!
//! Planned: `check`, `watch`, `status`, `report`, `maintenance`, `import`.
//! Today the binary reads and validates its section of the standby config
//! (`--check-config`); the commands land with the tool's own issue.

pub mod cli;
pub mod config;
