//! `promote`: not yet built.

use standby_common::exit::{self, Code};

use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_setup: &Setup, _args: &Args) -> anyhow::Result<Code> {
    Err(exit::error(Code::Usage, "`promote` is not built yet"))
}
