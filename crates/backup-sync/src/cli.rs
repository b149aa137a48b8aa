//! Command line: the global flags, the `[backup-sync]` section's keys as flags that apply to
//! every command, and the subcommands, each in its module under [`crate::commands`].

use clap::Subcommand;
use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::exit::{self, Code};
use standby_common::settings::{self, Sources};

use crate::commands;
use crate::config::Config;
use crate::setup::Setup;

const EXAMPLES: &str = "Examples:
  # once: create the repository (keep the password file safe: without it nothing restores)
  backup-sync init
  # nightly from cron: hooks, dumps, backup, retention, offsite copies, check; exit 1 names the phase
  30 2 * * *  backup-sync run -q && backup-sync verify -q
  # a downtime-monitor `kind = \"command\"` target: exit 1 when the last snapshot is older than rpo
  backup-sync status
  # get files back
  backup-sync restore latest --target /tmp/restore --include '/etc/nginx/**'
  # the emergency path without backup-sync: stock restic reads the same repository
  restic -r /srv/backup/repo restore latest --target /tmp/restore

Exit codes: 0 ok, 1 a phase failed or the backup is stale, 2 bad flags or config,
3 another run holds the lock, 4 rclone/pg_dump missing.";

/// Encrypted, deduplicated backups (restic format) with database dumps, retention, verified
/// offsite copies and test restores.
#[derive(Debug, clap::Parser)]
#[command(name = "backup-sync", version, after_help = EXAMPLES, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub settings: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the repository
    Init,
    /// The nightly run: hooks, dumps, backup, retention, offsite copies, check
    Run,
    /// List the snapshots
    Snapshots,
    /// Check the repository's integrity, reading back some or all of its data
    Check(commands::check::Args),
    /// Restore a snapshot into a directory
    Restore(commands::restore::Args),
    /// Copy the repository to each offsite remote and verify the copy (the rclone step alone)
    Offsite,
    /// Age of the last snapshot against rpo, the offsite copies, the repository size
    Status,
    /// A test restore of the latest snapshots, every file checked against the repository
    Verify(commands::verify::Args),
}

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = "backup-sync";

/// Parse the process arguments and run.
pub fn main() -> anyhow::Result<Code> {
    let (cli, sources) = settings::parse::<Cli, Config>(TOOL);
    run(cli, &sources)
}

/// Run with parsed arguments.
pub fn run(cli: Cli, sources: &Sources) -> anyhow::Result<Code> {
    let ctx = cli.global.start(TOOL)?;
    let resolved = ctx.resolve(cli.settings.clone(), sources)?;
    if ctx.check_config {
        Setup::new(ctx.clone(), resolved.value.clone())?;
        return print_effective_config(&ctx, &resolved);
    }
    let Some(command) = cli.command else {
        return Err(exit::error(Code::Usage, "no command given: try `backup-sync --help`"));
    };
    let setup = Setup::new(ctx, resolved.value)?;
    match &command {
        Command::Init => commands::init::run(&setup),
        Command::Run => commands::run::run(&setup),
        Command::Snapshots => commands::snapshots::run(&setup),
        Command::Check(args) => commands::check::run(&setup, args),
        Command::Restore(args) => commands::restore::run(&setup, args),
        Command::Offsite => commands::offsite::run(&setup),
        Command::Status => commands::status::run(&setup),
        Command::Verify(args) => commands::verify::run(&setup, args),
    }
}
