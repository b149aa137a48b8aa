//! backup-sync: encrypted, deduplicated backups in restic's repository format (through
//! rustic_core) with database dumps streamed into the repository, retention, verified rclone
//! offsite copies and test restores. Stock restic reads the repository: it is the emergency
//! path. One cron line: `backup-sync run -q && backup-sync verify -q`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod dump;
pub mod hooks;
pub mod key;
pub mod lock;
pub mod offsite;
pub mod repo;
pub mod report;
pub mod rooted;
pub mod setup;
pub mod sized;
