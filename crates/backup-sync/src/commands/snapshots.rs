//! `snapshots`: the repository's snapshots, oldest first.

use standby_common::exit::Code;

use crate::repo;
use crate::setup::Setup;

#[derive(serde::Serialize)]
struct Snap {
    id: String,
    time: String,
    host: String,
    tags: String,
    paths: String,
    files: u64,
    bytes: u64,
}

#[derive(serde::Serialize)]
struct List {
    snapshots: Vec<Snap>,
}

impl std::fmt::Display for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.snapshots {
            writeln!(
                f,
                "{}  {}  {:<12} {:<16} {} ({} files, {} bytes)",
                s.id, s.time, s.host, s.tags, s.paths, s.files, s.bytes
            )?;
        }
        writeln!(f, "{} snapshot(s)", self.snapshots.len())
    }
}

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let repo = repo::open(&setup.repo()?)?;
    let snapshots = repo::snapshots(&repo)?
        .into_iter()
        .map(|s| {
            let summary = s.summary.clone().unwrap_or_default();
            Snap {
                id: s.id.to_string()[..8].to_string(),
                time: s.time.strftime("%Y-%m-%d %H:%M:%S").to_string(),
                host: s.hostname.clone(),
                tags: s.tags.to_string(),
                paths: s.paths.to_string(),
                files: summary.total_files_processed,
                bytes: summary.total_bytes_processed,
            }
        })
        .collect();
    setup.ctx.output.report(&List { snapshots }, Code::Ok)?;
    Ok(Code::Ok)
}
