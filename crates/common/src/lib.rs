//! standby-common: the concerns that two or more standby tools share, each in one place.
//!
//! | module | owns |
//! |---|---|
//! | [`calendar`] | civil dates from day numbers and back (UTC, no time-zone database) |
//! | [`exit`] | the exit-code contract (0/1/2/3/4) and an error that carries its code |
//! | [`config`] | the one TOML file, a section per tool, secrets from env or `*-file` keys |
//! | [`cli`] | the global flags every binary shares |
//! | [`output`] | human text or `--json`, logs on stderr, progress bars only on a TTY |
//! | [`pg`] | the PostgreSQL client: bounded connect, verified TLS, `.pgpass`, coded errors |
//! | [`probe`] | HTTP(S), TCP and PostgreSQL checks with timeouts and expectations |
//! | [`state`] | the per-tool state dir, atomic writes, the run lock |
//! | [`daemon`] | a clean stop on SIGTERM/SIGINT, Prometheus `/metrics` for `watch` modes |
//! | [`exec`] | running external programs with a timeout |
//! | [`nut`] | NUT's upsd protocol: UPS status flags, battery charge and runtime, bounded timeouts |
//! | [`notify`] | alerts to webhooks, Slack, ntfy, healthchecks pings or a command |
//! | [`retry`] | bounded retries with exponential backoff and jitter |
//! | [`settings`] | one declaration per config section: flag, env var and key, merged one way |
//! | [`switching`] | the host-wide switching lock: promote/failover hold it, deploy/prune refuse while held |
//! | [`threshold`] | N consecutive failures to switch to DOWN, M successes to switch back, persisted per key |
//! | [`duration`] | human durations (`500ms`, `30s`, `2h`) in config and flags |
//! | [`markup`] | escaping text for the HTML and XML reports |

pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod duration;
pub mod exec;
pub mod exit;
pub mod markup;
pub mod notify;
pub mod nut;
pub mod output;
pub mod pg;
pub mod probe;
pub mod retry;
pub mod secret;
pub mod settings;
pub mod state;
pub mod switching;
pub mod threshold;

pub use exit::{Code, CodedResult};

/// The tokio runtime the tools run their network work on: two workers (the machines are
/// small), timers and I/O enabled.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// This machine's name (the default vantage of monitors that share a history).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into())
}
