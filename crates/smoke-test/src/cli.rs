//! Command line of smoke-test: the shared global flags; the tool's commands come with its issue.

use clap::Parser;
use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::Code;

use crate::config::Config;

const EXAMPLES: &str = "Examples:
  # check the config file a cron job will use, before it runs at 3 a.m.
  smoke-test --check-config --config /etc/standby/standby.toml
  # the same, as JSON, for a CI step
  smoke-test --check-config --json";

/// declarative HTTP checks after a deploy, with CI-friendly reports.
#[derive(Debug, Parser)]
#[command(name = "smoke-test", version, after_help = EXAMPLES, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Parse the process arguments and run.
pub fn main() -> anyhow::Result<Code> {
    run(Cli::parse())
}

/// Run with parsed arguments.
pub fn run(cli: Cli) -> anyhow::Result<Code> {
    let ctx = cli.global.start("smoke-test")?;
    let config: Config = ctx.section()?;
    print_effective_config(&ctx, &config)
}
