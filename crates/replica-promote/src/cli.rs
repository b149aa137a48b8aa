//! Command line of replica-promote: the global flags, the `[replica-promote]` section's keys
//! as flags that apply to every command, and the subcommands (one module each under
//! [`crate::commands`]).

use clap::Subcommand;
use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::exit::{self, Code};
use standby_common::settings::{self, Sources};

use crate::commands;
use crate::config::Config;
use crate::setup::Setup;

const EXAMPLES: &str = "Examples:
  # cron, every minute: exit 1 with one line when the standby is not streaming or lags
  * * * * *  replica-promote check -q
  # both nodes: roles, timelines, WAL positions, lag, slots
  replica-promote status
  # the primary is gone: promote this standby (refused while the old primary answers)
  replica-promote promote
  # the old primary is back: make it a standby of the new one (run on the old primary)
  replica-promote rejoin
  # planned work (run on the primary): hand over to the standby without losing a commit
  replica-promote switchover
  # check the config file a cron job will use
  replica-promote --check-config --config /etc/standby/standby.toml

Exit codes: 0 ok/healthy, 1 unhealthy or the operation failed/was refused, 2 bad flags or
config, 3 another run holds the lock, 4 a node or program is unreachable/missing before
anything changed.";

/// PostgreSQL standby status and lag checks, safe promotion, rejoin of the old primary.
#[derive(Debug, clap::Parser)]
#[command(name = "replica-promote", version, after_help = EXAMPLES, arg_required_else_help = true)]
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
    /// Both nodes: role, version, timeline, WAL positions, lag, slots, WAL receiver
    Status,
    /// For cron: exit 1 with one line when the standby is not streaming or lags too much
    Check(commands::check::Args),
    /// Promote `local` (a standby) when the old primary is gone
    Promote(commands::promote::Args),
    /// Make `local` (the old primary) a standby of `peer`: pg_rewind, standby.signal, start
    Rejoin(commands::rejoin::Args),
    /// Planned, lossless: stop `local` (the primary) cleanly, promote `peer`, rejoin `local`
    Switchover(commands::switchover::Args),
}

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = "replica-promote";

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
        for check in &resolved.value.peer_checks {
            crate::peer::validate(check)?;
        }
        return print_effective_config(&ctx, &resolved);
    }
    let Some(command) = cli.command else {
        return Err(exit::error(Code::Usage, "no command given: try `replica-promote --help`"));
    };
    let setup = Setup::new(ctx, resolved.value)?;
    match &command {
        Command::Status => commands::status::run(&setup),
        Command::Check(args) => commands::check::run(&setup, args),
        Command::Promote(args) => commands::promote::run(&setup, args),
        Command::Rejoin(args) => commands::rejoin::run(&setup, args),
        Command::Switchover(args) => commands::switchover::run(&setup, args),
    }
}
