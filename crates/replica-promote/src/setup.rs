//! What every command starts from: the run's [`Context`] and the `[replica-promote]` section
//! (flags already merged) become a [`Setup`]: how to reach `local` and `peer` (with the one
//! password, never printed), the limits, and where pg_ctl / pg_rewind are.

use std::time::Duration;

use standby_common::cli::Context;
use standby_common::exit::{self, Code};
use standby_common::pg::ConnectOptions;
use standby_common::secret::{self, Secret};

use crate::config::Config;
use crate::pgctl::PgCtl;

/// The two nodes by their place, never by their role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    Local,
    Peer,
}

impl Place {
    pub fn as_str(self) -> &'static str {
        match self {
            Place::Local => "local",
            Place::Peer => "peer",
        }
    }
}

/// Everything a command needs, from flags and config.
pub struct Setup {
    pub ctx: Context,
    pub config: Config,
    pub local: ConnectOptions,
    pub peer: Option<ConnectOptions>,
    /// The login password, if one was configured (never printed).
    pub password: Option<Secret>,
}

impl Setup {
    /// Parse both conninfos (exit 2 when one is malformed) and read the password.
    pub fn new(ctx: Context, config: Config) -> anyhow::Result<Setup> {
        let password = secret::resolve(
            "PostgreSQL password",
            config.password_env.as_deref(),
            config.password_file.as_deref(),
            "PGPASSWORD",
        )?;
        let timeout = config.connect_timeout.get();
        let options = |conninfo: &str| -> anyhow::Result<ConnectOptions> {
            Ok(ConnectOptions::parse(conninfo)?.password(password.clone()).timeout(timeout))
        };
        let local = options(&config.local)?;
        let peer = config.peer.as_deref().map(options).transpose()?;
        for check in &config.peer_checks {
            crate::peer::validate(check)?;
        }
        Ok(Setup { ctx, config, local, peer, password })
    }

    pub fn options(&self, place: Place) -> Option<&ConnectOptions> {
        match place {
            Place::Local => Some(&self.local),
            Place::Peer => self.peer.as_ref(),
        }
    }

    /// The peer's options, or a usage error for commands that need it.
    pub fn require_peer(&self, command: &str) -> anyhow::Result<&ConnectOptions> {
        self.peer.as_ref().ok_or_else(|| {
            exit::error(
                Code::Usage,
                format!("`{command}` needs the peer node: set `peer` in [replica-promote] or --peer"),
            )
        })
    }

    /// pg_ctl / pg_rewind for the local data directory, or a usage error when `data-dir` is unset.
    pub fn pgctl(&self, command: &str) -> anyhow::Result<PgCtl> {
        let data_dir = self.config.data_dir.clone().ok_or_else(|| {
            exit::error(
                Code::Usage,
                format!(
                    "`{command}` needs the local data directory: set `data-dir` in [replica-promote] or --data-dir"
                ),
            )
        })?;
        Ok(PgCtl::new(self.config.bin_dir.clone(), data_dir, self.config.system_user.clone()))
    }

    pub fn connect_timeout(&self) -> Duration {
        self.config.connect_timeout.get()
    }
}
