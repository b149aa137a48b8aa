//! blue-green-deploy: start the idle colour, health-check, smoke-test, switch nginx, watch, roll back.
//!
//! Planned: `deploy`, `switch`, `rollback`, `status`.
//! Today the binary reads and validates its section of the standby config
//! (`--check-config`); the commands land with the tool's own issue.

pub mod cli;
pub mod config;
