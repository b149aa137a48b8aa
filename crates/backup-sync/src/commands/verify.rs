//! `verify`: a test restore. The latest snapshot of the sources and of each dump is restored
//! into a temp dir; every restored file is compared, byte for byte, with the snapshot's
//! content read from the repository (size, type and symlink targets too); PostgreSQL dumps
//! are listed with `pg_restore --list`. Reports files and bytes verified and the time the
//! restore took — the real RTO. Exit 1 on any mismatch.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rustic_core::repofile::{Node, NodeType, SnapshotFile};
use rustic_core::{IndexedFullStatus, LsOptions, Repository};
use standby_common::exec::Cmd;
use standby_common::exit::Code;

use crate::config::DumpKind;
use crate::dump::pg_program;
use crate::repo::{self, ok};
use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Restore into a temp dir below this directory [default: the system temp dir]
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
}

#[derive(Debug, Default, serde::Serialize)]
struct Verified {
    ok: bool,
    snapshots: Vec<String>,
    files: u64,
    bytes: u64,
    dumps_listed: u64,
    restore_seconds: f64,
    mismatches: Vec<String>,
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for m in &self.mismatches {
            writeln!(f, "MISMATCH {m}")?;
        }
        writeln!(
            f,
            "{} test restore of {} snapshot(s): {} files, {} bytes verified, {} dump(s) listed; restore took {:.2}s (RTO)",
            if self.ok { "ok  " } else { "FAIL" },
            self.snapshots.len(),
            self.files,
            self.bytes,
            self.dumps_listed,
            self.restore_seconds
        )
    }
}

/// The newest snapshot of each path set (sources, each dump).
fn latest_per_paths(snaps: Vec<SnapshotFile>) -> Vec<SnapshotFile> {
    let mut newest: BTreeMap<String, SnapshotFile> = BTreeMap::new();
    for s in snaps {
        let key = s.paths.to_string();
        if newest.get(&key).is_none_or(|n| n.time < s.time) {
            newest.insert(key, s);
        }
    }
    newest.into_values().collect()
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let repo = repo::open_indexed(&setup.repo()?)?;
    let snaps = latest_per_paths(ok(repo.get_all_snapshots(), "listing snapshots")?);
    let tmp = match &args.temp_dir {
        Some(dir) => tempfile::tempdir_in(dir)?,
        None => tempfile::tempdir()?,
    };
    let mut report = Verified::default();
    let start = Instant::now();
    let mut restored = Vec::new();
    for (i, snap) in snaps.iter().enumerate() {
        let target = tmp.path().join(i.to_string());
        repo::restore(&repo, snap, &target, &[])?;
        restored.push(target);
        report.snapshots.push(snap.id.to_string()[..8].to_string());
    }
    report.restore_seconds = (start.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    let pg_dumps: Vec<&str> =
        setup.dumps.iter().filter(|d| d.kind == DumpKind::Postgres).map(|d| d.name.as_str()).collect();
    for (snap, target) in snaps.iter().zip(&restored) {
        compare(&repo, snap, target, &mut report)?;
        for name in &pg_dumps {
            let file = target.join(crate::dump::DUMP_DIR.trim_start_matches('/')).join(name);
            if file.exists() {
                match Cmd::new(pg_program("pg_restore")).arg("--list").arg(&file).run_ok() {
                    Ok(_) => report.dumps_listed += 1,
                    Err(e) => report.mismatches.push(format!("{name}: pg_restore --list: {e:#}")),
                }
            }
        }
    }
    report.ok = report.mismatches.is_empty();
    let code = if report.ok { Code::Ok } else { Code::Failed };
    setup.ctx.output.report(&report, code)?;
    Ok(code)
}

/// Compare every node of `snap` with what was restored under `target`.
fn compare(
    repo: &Repository<IndexedFullStatus>,
    snap: &SnapshotFile,
    target: &Path,
    report: &mut Verified,
) -> anyhow::Result<()> {
    let root = ok(repo.node_from_snapshot_and_path(snap, ""), "reading the snapshot")?;
    let mut ls = LsOptions::default();
    ls.recursive = true;
    for item in ok(repo.ls(&root, &ls), "ls")? {
        let (path, node) = ok(item, "ls")?;
        let restored = target.join(&path);
        if let Err(problem) = compare_node(repo, &node, &restored, report) {
            report.mismatches.push(format!("{}: {problem}", path.display()));
        }
    }
    Ok(())
}

fn compare_node(
    repo: &Repository<IndexedFullStatus>,
    node: &Node,
    restored: &Path,
    report: &mut Verified,
) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(restored).map_err(|e| format!("not restored ({e})"))?;
    match &node.node_type {
        NodeType::Dir if !meta.is_dir() => Err("should be a directory".into()),
        NodeType::Symlink { .. } => {
            let link = std::fs::read_link(restored).map_err(|e| format!("should be a symlink ({e})"))?;
            if link != node.node_type.to_link() {
                return Err(format!(
                    "symlink points to {} instead of {}",
                    link.display(),
                    node.node_type.to_link().display()
                ));
            }
            Ok(())
        }
        NodeType::File => {
            if !meta.is_file() {
                return Err("should be a file".into());
            }
            // Streamed dumps too carry their size (see `repo::backup_stream`): stock restic
            // restores a file by it.
            if meta.len() != node.meta.size {
                return Err(format!("{} bytes instead of {}", meta.len(), node.meta.size));
            }
            let len = compare_content(repo, node, restored)?;
            if len != meta.len() {
                return Err(format!("{} bytes instead of {len}", meta.len()));
            }
            report.files += 1;
            report.bytes += len;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Compare the restored file with the snapshot's content; the content's length.
fn compare_content(repo: &Repository<IndexedFullStatus>, node: &Node, restored: &Path) -> Result<u64, String> {
    const CHUNK: usize = 4 << 20;
    let open = repo.open_file(node).map_err(|e| e.display_log())?;
    let mut file = std::fs::File::open(restored).map_err(|e| e.to_string())?;
    let mut offset = 0usize;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let want = repo.read_file_at(&open, offset, CHUNK).map_err(|e| e.display_log())?;
        if want.is_empty() {
            break;
        }
        file.read_exact(&mut buf[..want.len()]).map_err(|e| format!("short file at byte {offset} ({e})"))?;
        if buf[..want.len()] != want[..] {
            return Err(format!("content differs from the snapshot near byte {offset}"));
        }
        offset += want.len();
    }
    Ok(offset as u64)
}
