//! What every command starts from: the context (output, config file, notifiers), the merged
//! `[backup-sync]` section, the planned dumps, and the repository with its password.

use standby_common::cli::Context;
use standby_common::exit::{self, Code};
use standby_common::secret;

use crate::cli::TOOL;
use crate::config::Config;
use crate::dump::{self, Dump};
use crate::repo::RepoSpec;

/// A validated configuration.
#[derive(Debug)]
pub struct Setup {
    pub ctx: Context,
    pub config: Config,
    pub dumps: Vec<Dump>,
}

impl Setup {
    /// Validate what needs no repository: dump entries (exit 2 with file:line on a bad one).
    pub fn new(ctx: Context, config: Config) -> anyhow::Result<Self> {
        let mut dumps = Vec::new();
        for spec in &config.dump {
            let planned = dump::plan(spec.get_ref()).map_err(|e| ctx.config.error_at(spec.span().start, e))?;
            dumps.push(planned);
        }
        let mut names: Vec<&str> = dumps.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(exit::error(Code::Usage, format!("two dumps are named {:?}: give one a `name`", w[0])));
        }
        Ok(Setup { ctx, config, dumps })
    }

    /// The repository and its password: exit 2 when either is not configured.
    pub fn repo(&self) -> anyhow::Result<RepoSpec> {
        let path = self.config.repository.clone().ok_or_else(|| {
            exit::error(Code::Usage, "no repository: set `repository` in [backup-sync] or --repository")
        })?;
        let password = secret::resolve(
            "repository password",
            self.config.password_env.as_deref(),
            self.config.password_file.as_deref(),
            &standby_common::settings::env_var(TOOL, "password"),
        )?
        .ok_or_else(|| {
            exit::error(Code::Usage, "no repository password: set `password-file` or `password-env` in [backup-sync]")
        })?;
        Ok(RepoSpec { path, password })
    }
}
