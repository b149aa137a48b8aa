//! backup-sync: encrypted, deduplicated backups with database dumps, retention, offsite copy and test restores.
//!
//! Planned: `run` (dumps, rustic_core backup, retention, rclone copy), `verify`, `status`.
//! Today the binary reads and validates its section of the standby config
//! (`--check-config`); the commands land with the tool's own issue.

pub mod cli;
pub mod config;
