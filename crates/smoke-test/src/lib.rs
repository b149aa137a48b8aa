//! smoke-test: declarative HTTP checks after a deploy, with CI-friendly reports.
//!
//! Planned: `smoke-test SUITE.toml...` and the ad-hoc `--url` form.
//! Today the binary reads and validates its section of the standby config
//! (`--check-config`); the commands land with the tool's own issue.

pub mod cli;
pub mod config;
