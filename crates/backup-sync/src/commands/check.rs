//! `check`: the repository's structure, and with `--read-data` (all) or
//! `--read-data-subset P` (else the configured `check-read-data-subset`) its pack data read
//! back and verified. Exit 1 on any error.

use standby_common::exit::{self, Code};

use crate::config::Subset;
use crate::repo;
use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Read back all pack data
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read back this part of the pack data: 5%, 1/10 or 500M [default: check-read-data-subset]
    #[arg(long, value_name = "SUBSET")]
    pub read_data_subset: Option<Subset>,
}

#[derive(serde::Serialize)]
struct Checked {
    ok: bool,
    read_data: String,
    error: Option<String>,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            None => writeln!(f, "check ok (read data: {})", self.read_data),
            Some(e) => writeln!(f, "check FAILED: {e}"),
        }
    }
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let repo = repo::open(&setup.repo()?)?;
    let subset = if args.read_data {
        "100%".parse::<Subset>().map_err(|e| exit::error(Code::Usage, e))?
    } else {
        args.read_data_subset.clone().unwrap_or_else(|| setup.config.check_read_data_subset.clone())
    };
    let res = repo::check(&repo, Some(subset.option()));
    let report = Checked { ok: res.is_ok(), read_data: subset.to_string(), error: res.err().map(|e| format!("{e:#}")) };
    let code = if report.ok { Code::Ok } else { Code::Failed };
    setup.ctx.output.report(&report, code)?;
    Ok(code)
}
