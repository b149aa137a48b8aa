//! downtime-monitor: uptime checks from cron or as a daemon, an outage history in SQLite,
//! reports that drive decisions (uptime %, incidents, MTTR/MTBF, unknown time, maintenance,
//! monthly rows), and alerts on DOWN / RECOVERED (and a UPS's on-battery / battery-low /
//! power-restored) through standby-common's notifiers.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod dns;
pub mod heartbeat;
pub mod import;
pub mod intervals;
pub mod machine;
pub mod maintenance;
pub mod metrics;
pub mod monitor;
pub mod power;
pub mod render;
pub mod report;
pub mod report_latency;
pub mod report_power;
pub mod setup;
pub mod status_page;
pub mod store;
pub mod target;
