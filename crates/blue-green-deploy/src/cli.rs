//! Command line of blue-green-deploy: the global flags, the `[blue-green-deploy]` keys as
//! flags for every command, the subcommands, and dispatch to [`crate::commands`].

use clap::Subcommand;
use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::exit::{self, Code};
use standby_common::settings::{self, Sources};

use crate::commands;
use crate::config::Config;
use crate::setup::Setup;

const EXAMPLES: &str = "Examples:
  # from CI: deploy version 1.4.2 to the idle colour; exit 1 (and nothing live changed, or
  # rolled back) when it fails health, smoke tests or the watch
  blue-green-deploy deploy --version 1.4.2
  # which colour is live, both colours' health, the last deploy
  blue-green-deploy status
  # move traffic by hand, with the same guards (health, smoke, nginx -t)
  blue-green-deploy switch --to blue
  # back to the previous colour while it still runs
  blue-green-deploy rollback
  # check the config file a CI step will use
  blue-green-deploy --check-config --config /etc/standby/standby.toml

Exit codes: 0 done / live colour healthy, 1 failed (rolled back or nothing changed), 2 bad
flags or config, 3 another deploy holds the lock, 4 nginx or a required program missing.";

/// Start the idle colour, health-check, smoke-test, switch nginx, watch, roll back.
#[derive(Debug, clap::Parser)]
#[command(name = "blue-green-deploy", version, after_help = EXAMPLES, arg_required_else_help = true)]
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
    /// Deploy to the idle colour: start, health, smoke, switch, verify, watch, drain, stop
    Deploy(commands::deploy::Args),
    /// Live colour, both colours' health, the last deploy and its outcome
    Status,
    /// Send traffic to a running colour (health, smoke and nginx -t first)
    Switch(commands::switch::Args),
    /// Back to the previous colour while it still runs and is healthy
    Rollback,
}

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = crate::setup::TOOL;

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
        return print_effective_config(&ctx, &resolved);
    }
    let Some(command) = cli.command else {
        return Err(exit::error(Code::Usage, "no command given: try `blue-green-deploy --help`"));
    };
    let setup = Setup::new(ctx, resolved.value)?;
    match &command {
        Command::Deploy(args) => commands::deploy::run(&setup, args),
        Command::Status => commands::status::run(&setup),
        Command::Switch(args) => commands::switch::run(&setup, args),
        Command::Rollback => commands::rollback::run(&setup),
    }
}
