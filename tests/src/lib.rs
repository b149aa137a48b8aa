//! standby-e2e: the test harness. It starts real servers on loopback ports in temp dirs —
//! PostgreSQL 15 (primary + streaming standby), nginx, PowerDNS with its HTTP API — plus
//! in-process app backends and a fake Cloudflare v4 API, and stops them when dropped.
//!
//! The API is synchronous; in-process servers run on their own thread with their own tokio
//! runtime, so tests may use it from sync or async code. Servers that are child processes
//! die with the test process (`PR_SET_PDEATHSIG`) and are killed by PID on drop.

pub mod app;
pub mod cli_contract;
pub mod cloudflare;
pub mod http_client;
pub mod nginx;
pub mod nut;
pub mod pdns;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod scenario;
pub mod smtp;
pub mod tls;
pub mod webhook;

mod serve;
mod sys;
mod util;

pub use app::AppBackend;
pub use cloudflare::{FakeCloudflare, Fault};
pub use nginx::{Nginx, NginxOptions};
pub use nut::Nut;
pub use pdns::PowerDns;
pub use postgres::{start_primary, start_primary_with_standby, PgServer};
pub use process::ServerProcess;
