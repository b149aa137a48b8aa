//! What every command starts from: the [`Context`] of the run and the `[downtime-monitor]`
//! section (with the command-line flags already applied) become a [`Setup`] — the validated
//! targets and recurring windows, this monitor's vantage, where the history lives (SQLite or
//! a shared PostgreSQL) and the spool beside it — which hands out the [`Store`] and the
//! [`Monitor`].

use std::path::PathBuf;

use standby_common::cli::Context;
use standby_common::duration::millis;

use crate::config::Config;
use crate::maintenance::Recurring;
use crate::monitor::Monitor;
use crate::store::{Location, Spool, Store};
use crate::target::Target;

/// Everything a command needs, from flags and config.
pub struct Setup {
    pub ctx: Context,
    pub config: Config,
    /// Shared with the daemon's probe loops and its [`Monitor`].
    pub targets: std::sync::Arc<Vec<Target>>,
    pub recurring: Vec<Recurring>,
    pub vantage: String,
    pub location: Location,
    pub spool: PathBuf,
}

impl Setup {
    /// Resolve the vantage (default: the host name), the history's location (`store`, else
    /// `database`, else `<state dir>/monitor.db`) and its spool. `config` already carries
    /// the command-line flags; `targets` and `recurring` were validated from it.
    pub fn new(ctx: Context, config: Config, targets: Vec<Target>, recurring: Vec<Recurring>) -> anyhow::Result<Setup> {
        let vantage = config.vantage.clone().unwrap_or_else(hostname);
        let state_dir = ctx.state()?.path().to_path_buf();
        let (location, spool) = match config.store.clone() {
            Some(conninfo) => {
                // A malformed store is a usage error now, not a round spooled for ever.
                if let Err(e) = standby_common::pg::ConnectOptions::parse(&conninfo) {
                    return Err(standby_common::exit::with_code(
                        standby_common::exit::Code::Usage,
                        e.context("`store` is not a PostgreSQL URL (postgres://user@host/db) or conninfo (\"host=... dbname=...\")"),
                    ));
                }
                let password = standby_common::secret::resolve(
                    "store password",
                    config.store_password_env.as_deref(),
                    config.store_password_file.as_deref(),
                    "PGPASSWORD",
                )?;
                let ca_file = config.store_cacert.clone();
                (Location::Postgres { conninfo, password, ca_file }, state_dir.join("spool.jsonl"))
            }
            None => {
                let db = config.database.clone().unwrap_or_else(|| state_dir.join("monitor.db"));
                let spool = db.with_extension("spool.jsonl");
                (Location::Sqlite(db), spool)
            }
        };
        Ok(Setup { ctx, config, targets: std::sync::Arc::new(targets), recurring, vantage, location, spool })
    }

    pub fn monitor(&self) -> Monitor {
        Monitor {
            tool: "downtime-monitor",
            targets: self.targets.clone(),
            location: self.location.clone(),
            vantage: self.vantage.clone(),
            spool: Spool::new(self.spool.clone()),
            notifiers: self.ctx.notifiers.clone(),
            recurring: self.recurring.clone(),
            reminder_ms: self.config.reminder.map(|d| millis(d.get())),
            retention_ms: millis(self.config.retention.get()),
            store: Default::default(),
            delivering: Default::default(),
        }
    }

    pub fn store(&self) -> anyhow::Result<Store> {
        Store::connect(&self.location, &self.vantage)
    }

    /// Probes at once.
    pub fn concurrency(&self) -> usize {
        self.config.concurrency.max(1)
    }

    /// The probing commands (`check`, `watch`) need at least one target.
    pub fn require_targets(&self) -> anyhow::Result<()> {
        if self.targets.is_empty() {
            return Err(standby_common::exit::error(
                standby_common::exit::Code::Usage,
                "no targets: add [[downtime-monitor.target]] entries to the config",
            ));
        }
        Ok(())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "local".into())
}
