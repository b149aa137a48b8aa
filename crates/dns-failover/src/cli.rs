//! Command line of dns-failover: the global flags, the `[dns-failover]` section's keys as
//! flags, and the commands (each in [`crate::commands`]).

use clap::Subcommand;
use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::exit::{self, Code};
use standby_common::settings::{self, Sources};

use crate::commands;
use crate::config::Config;
use crate::setup::Setup;
use crate::TOOL;

const EXAMPLES: &str = "Examples:
  # cron, every minute: fail over after 3 failed checks, back after 3 good ones
  * * * * *  dns-failover check -q
  # as a daemon: a check every second, Prometheus metrics
  dns-failover watch --interval 1s --metrics-listen 127.0.0.1:9311
  # what the provider holds now, both sides' health, the last switch
  dns-failover status
  # by hand, or chained after promoting the database standby
  dns-failover switch --to backup --record db.example.com
  dns-failover switch --to primary --dry-run

Exit codes: 0 nothing to do or a needed switch done (the output says so), 1 a needed switch
failed or was refused (the backup fails its own check), 2 bad flags or config, 3 another run
holds the lock.";

/// Switch a DNS record to the standby after N failed health checks, and back after M successes.
#[derive(Debug, clap::Parser)]
#[command(name = "dns-failover", version, after_help = EXAMPLES, arg_required_else_help = true)]
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
    /// One round for cron: check, count, switch when a threshold is crossed
    Check(commands::check::Args),
    /// Run as a daemon: a round every `interval` until SIGTERM
    Watch(commands::watch::Args),
    /// Values at the provider, which side that is, health, counters, the last switch
    Status(commands::status::Args),
    /// Point records at the primary or the backup now
    Switch(commands::switch::Args),
}

/// Parse the process arguments and run.
pub fn main() -> anyhow::Result<Code> {
    let (cli, sources) = settings::parse::<Cli, Config>(TOOL);
    run(cli, &sources)
}

/// Run with parsed arguments.
pub fn run(cli: Cli, sources: &Sources) -> anyhow::Result<Code> {
    let ctx = cli.global.start(TOOL)?;
    let resolved = ctx.resolve(cli.settings.clone(), sources)?;
    let check_config = ctx.check_config;
    let setup = Setup::new(ctx, resolved.value.clone())?;
    if check_config {
        return print_effective_config(&setup.ctx, &resolved);
    }
    let Some(command) = cli.command else {
        return Err(exit::error(Code::Usage, "no command given: try `dns-failover --help`"));
    };
    match &command {
        Command::Check(args) => commands::check::run(&setup, args),
        Command::Watch(args) => commands::watch::run(&setup, args),
        Command::Status(args) => commands::status::run(&setup, args),
        Command::Switch(args) => commands::switch::run(&setup, args),
    }
}
