//! Command line of replica-promote: the shared global flags; the tool's commands come with its issue.

use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::settings::{self, Sources};
use standby_common::Code;

use crate::config::Config;

const EXAMPLES: &str = "Examples:
  # check the config file a cron job will use, before it runs at 3 a.m.
  replica-promote --check-config --config /etc/standby/standby.toml
  # the same, as JSON, for a CI step
  replica-promote --check-config --json";

/// PostgreSQL standby status and lag checks, safe promotion, rejoin of the old primary.
#[derive(Debug, clap::Parser)]
#[command(name = "replica-promote", version, after_help = EXAMPLES, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub settings: Config,
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
    print_effective_config(&ctx, &resolved)
}
