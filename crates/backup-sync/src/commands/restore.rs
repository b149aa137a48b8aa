//! `restore [SNAPSHOT] --target DIR [--include PATTERN]`: get files back (the latest snapshot
//! of the configured sources unless an id is given).

use std::path::PathBuf;

use standby_common::exit::Code;

use crate::repo;
use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot id (a prefix is enough) or `latest`
    #[arg(default_value = "latest")]
    pub snapshot: String,
    /// Directory to restore into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub target: PathBuf,
    /// Only paths matching this glob (repeat for several)
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,
}

#[derive(serde::Serialize)]
struct Restored {
    snapshot: String,
    target: String,
    files: u64,
    bytes: u64,
}

impl std::fmt::Display for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "restored snapshot {} into {}: {} files, {} bytes",
            self.snapshot, self.target, self.files, self.bytes
        )
    }
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let repo = repo::open_indexed(&setup.repo()?)?;
    let snap = repo::find(&repo, &args.snapshot, args.snapshot == "latest")?;
    let plan = repo::restore(&repo, &snap, &args.target, &args.include)?;
    let report = Restored {
        snapshot: snap.id.to_string()[..8].to_string(),
        target: args.target.display().to_string(),
        files: plan.files.restore,
        bytes: snap.summary.map(|s| s.total_bytes_processed).unwrap_or_default(),
    };
    setup.ctx.output.report(&report, Code::Ok)?;
    Ok(Code::Ok)
}
