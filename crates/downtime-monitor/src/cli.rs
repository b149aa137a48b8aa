//! Command line: the global flags, the `[downtime-monitor]` section's keys as flags that
//! apply to every command, and the subcommands. Flags, env vars and the section merge into
//! one [`Config`] and become a [`Setup`]; each command lives in its module under
//! [`crate::commands`].

use clap::Subcommand;
use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::exit::{self, Code};
use standby_common::settings::{self, Sources};

use crate::commands;
use crate::config::Config;
use crate::maintenance;
use crate::setup::Setup;
use crate::target;

const EXAMPLES: &str = "Examples:
  # cron, every minute: one round over all targets; exit 1 while any target is DOWN
  * * * * *  downtime-monitor check -q || dns-failover check -q
  # as a daemon with a Prometheus endpoint
  downtime-monitor watch --metrics-listen 127.0.0.1:9310
  # the monthly review: uptime per month and what to do about it
  downtime-monitor report --since 90d --monthly
  downtime-monitor report --since 30d --format html -o uptime.html
  # planned work: failures for the next 2 hours are not outages and raise no alert
  downtime-monitor maintenance add --target vf-server --for 2h --reason 'UPS battery swap'
  # keep the history of the old cron script
  downtime-monitor import --format seed-log ~/vf-downtime.log --target vf-server --interval 5m
  # a cron job says it ran (a kind = \"heartbeat\" target is DOWN when pings stop)
  backup-sync run && downtime-monitor ping nightly-backup || downtime-monitor ping nightly-backup --fail

Exit codes: 0 all targets up, 1 a target is DOWN (or a round could not be recorded),
2 bad flags or config, 3 another check holds the lock.";

/// Uptime checks from cron or as a daemon, outage history, uptime reports and alerts.
#[derive(Debug, clap::Parser)]
#[command(name = "downtime-monitor", version, after_help = EXAMPLES)]
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
    /// One round over all targets (for cron): record, update states, alert on changes
    Check(commands::check::Args),
    /// Run as a daemon: each target on its own interval, until SIGTERM/SIGINT
    Watch(commands::watch::Args),
    /// Current state of each target, since when, last error
    Status,
    /// Uptime, downtime, incidents, MTTR, MTBF and the decision they point to
    Report(commands::report::Args),
    /// Planned work: add, list, end maintenance windows
    #[command(subcommand)]
    Maintenance(commands::maintenance::Command),
    /// Import history written by another tool
    Import(commands::import::Args),
    /// A heartbeat from a script for a `kind = "heartbeat"` target (--fail: the job failed)
    Ping(commands::ping::Args),
}

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = "downtime-monitor";

/// Parse the process arguments and run.
pub fn main() -> anyhow::Result<Code> {
    let (cli, sources) = settings::parse::<Cli, Config>(TOOL);
    run(cli, &sources)
}

/// Run with parsed arguments.
pub fn run(cli: Cli, sources: &Sources) -> anyhow::Result<Code> {
    let ctx = cli.global.start(TOOL)?;
    let resolved = ctx.resolve(cli.settings.clone(), sources)?;
    let targets = target::targets(&ctx.config, &resolved.value)?;
    let recurring = maintenance::recurring(&ctx.config, &resolved.value)?;
    if ctx.check_config {
        return print_effective_config(&ctx, &resolved);
    }
    let Some(command) = cli.command else {
        return Err(exit::error(Code::Usage, "no command given: try `downtime-monitor --help`"));
    };
    let mut config = resolved.value;
    // The targets are built: their specs are not needed again (5,000 of them are megabytes).
    config.targets = Vec::new();
    let setup = Setup::new(ctx, config, targets, recurring)?;
    match &command {
        Command::Check(args) => commands::check::run(&setup, args),
        Command::Watch(args) => commands::watch::run(&setup, args),
        Command::Status => commands::status::run(&setup),
        Command::Report(args) => commands::report::run(&setup, args),
        Command::Maintenance(cmd) => commands::maintenance::run(&setup, cmd),
        Command::Import(args) => commands::import::run(&setup, args),
        Command::Ping(args) => commands::ping::run(&setup, args),
    }
}
