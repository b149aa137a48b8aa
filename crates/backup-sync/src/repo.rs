//! The repository, through rustic_core: a local directory in restic's format that stock
//! restic (Debian's 0.14) reads too. Opening, init, backups of paths and of streams,
//! retention (forget + prune), integrity checks, restores and the snapshot list live here;
//! the commands only call them. rustic's errors become anyhow errors with their whole text.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rustic_backend::BackendOptions;
use rustic_core::repofile::SnapshotFile;
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, ForgetGroups, Grouped, IndexedFullStatus, KeepOptions,
    KeyOptions, LocalDestination, LsOptions, OpenStatus, PathList, PruneOptions, ReadSubsetOption, Repository,
    RepositoryOptions, RestoreOptions, RusticResult, SnapshotGroupCriterion, SnapshotOptions,
};
use standby_common::exit::{self, Code};
use standby_common::secret::Secret;

use crate::config::Keep;
use crate::dump::DumpSource;

/// Tag on snapshots of the configured sources.
pub const TAG_FILES: &str = "files";
/// Tag on snapshots of a database or command dump.
pub const TAG_DUMP: &str = "dump";

/// Where the repository is and how to unlock it.
#[derive(Debug, Clone)]
pub struct RepoSpec {
    pub path: PathBuf,
    pub password: Secret,
}

/// Turn a rustic result into an anyhow one, with its full message.
pub fn ok<T>(res: RusticResult<T>, what: &str) -> anyhow::Result<T> {
    res.map_err(|e| {
        let text = e.display_log();
        if text.contains("os error 28") {
            anyhow::anyhow!(
                "{what}: the disk holding the repository is full; free space and run again (the repository \
                 stays valid: nothing half-written is referenced). {text}"
            )
        } else {
            anyhow::anyhow!("{what}: {text}")
        }
    })
}

fn repository(spec: &RepoSpec) -> anyhow::Result<Repository<()>> {
    let location = spec
        .path
        .to_str()
        .ok_or_else(|| exit::error(Code::Usage, format!("repository path {} is not UTF-8", spec.path.display())))?;
    let backends = ok(BackendOptions::default().repository(location).to_backends(), "repository")?;
    // No cache: it would copy the index and trees of a local repository into ~/.cache.
    ok(Repository::new(&RepositoryOptions::default().no_cache(true), &backends), "repository")
}

fn credentials(spec: &RepoSpec) -> Credentials {
    Credentials::password(spec.password.expose())
}

/// Create a new repository; refuse when one is there already.
pub fn init(spec: &RepoSpec) -> anyhow::Result<String> {
    if spec.path.join("config").exists() {
        return Err(exit::error(
            Code::Usage,
            format!("{} is a repository already; nothing was changed", spec.path.display()),
        ));
    }
    std::fs::create_dir_all(&spec.path).with_context(|| format!("cannot create {}", spec.path.display()))?;
    let repo = ok(repository(spec)?.init(&credentials(spec), &KeyOptions::default(), &new_config()?), "init")?;
    crate::key::lighten(spec, &repo)?;
    Ok(repo.config().id.to_string())
}

/// The repository config of `init`: data packs of 4 MiB (restic's smallest), growing with the
/// square root of the repository's size to at most 64 MiB, instead of rustic's 32 MiB and up:
/// a backup holds up to seven packs in memory at once, so they set its peak memory (16 MiB
/// packs took 182 MB on the benchmark, 4 MiB 123 MB); no extra verification pass.
fn new_config() -> anyhow::Result<ConfigOptions> {
    let size = |s: &str| s.parse::<bytesize::ByteSize>().map_err(|e| anyhow::anyhow!("pack size {s}: {e}"));
    let mut opts = ConfigOptions::default();
    opts.set_datapack_size = Some(size("4 MiB")?);
    opts.set_datapack_size_limit = Some(size("64 MiB")?);
    // rustic decrypts and decompresses every blob again right after making it, before it is
    // written; restic does not. It cost a fifth of a first backup's time here. What is written
    // is read back by the check at the end of each run and by `verify`.
    opts.set_extra_verify = Some(false);
    Ok(opts)
}

/// Open the repository: exit 2 when there is none (run `init`), exit 1 on a wrong password.
pub fn open(spec: &RepoSpec) -> anyhow::Result<Repository<OpenStatus>> {
    if !spec.path.join("config").exists() {
        return Err(exit::error(
            Code::Usage,
            format!("no repository at {}: run `backup-sync init` first", spec.path.display()),
        ));
    }
    repository(spec)?.open(&credentials(spec)).map_err(|e| {
        let text = e.display_log();
        if text.to_lowercase().contains("password") || text.to_lowercase().contains("key") {
            exit::error(Code::Failed, format!("cannot open {}: wrong password? ({text})", spec.path.display()))
        } else {
            anyhow::anyhow!("cannot open {}: {text}", spec.path.display())
        }
    })
}

/// Open again with the master key of `opened` (no key derivation): for each phase of a run.
pub fn reopen(spec: &RepoSpec, opened: &Repository<OpenStatus>) -> anyhow::Result<Repository<OpenStatus>> {
    ok(repository(spec)?.open(&Credentials::Masterkey(opened.key())), "reopening the repository")
}

/// What one backup added.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Saved {
    pub snapshot: String,
    pub files: u64,
    pub bytes: u64,
    pub added_bytes: u64,
}

fn saved(snap: &SnapshotFile) -> Saved {
    let s = snap.summary.clone().unwrap_or_default();
    Saved {
        snapshot: snap.id.to_string()[..8].to_string(),
        files: s.total_files_processed,
        bytes: s.total_bytes_processed,
        added_bytes: s.data_added_packed,
    }
}

fn snapshot(tags: &str) -> anyhow::Result<SnapshotFile> {
    let opts = ok(SnapshotOptions::default().add_tags(tags), "snapshot")?;
    ok(opts.to_snapshot(), "snapshot")
}

/// Back up `sources` (absolute paths), leaving out `exclude` globs, using the previous
/// snapshot of the same paths as parent. A source that does not exist fails, naming it.
pub fn backup_paths(
    repo: Repository<OpenStatus>,
    sources: &[PathBuf],
    exclude: &[String],
    one_file_system: bool,
) -> anyhow::Result<Saved> {
    for source in sources {
        std::fs::symlink_metadata(source).with_context(|| format!("source {}", source.display()))?;
    }
    let repo = ok(repo.to_indexed_ids(), "reading the index")?;
    let mut opts = BackupOptions::default();
    opts.ignore_filter_opts.one_file_system = one_file_system;
    opts.excludes.globs = exclude.iter().map(|g| format!("!{g}")).collect();
    let paths: PathList = sources.iter().cloned().collect();
    let paths = paths.sanitize().map_err(|e| anyhow::anyhow!("sources: {e}"))?;
    // Not `repo.backup`: the same archiver, but the sources' own directories keep their
    // metadata (see `crate::rooted`).
    let backup_paths = paths.paths();
    let src = ok(
        rustic_core::LocalSource::new(opts.ignore_save_opts, &opts.excludes, &opts.ignore_filter_opts, &backup_paths),
        "reading the sources",
    )?;
    let src = crate::rooted::RootedSource::new(src, &backup_paths);
    let snap = ok(repo.archive(&opts, &src, snapshot(TAG_FILES)?, &backup_paths), "backup")?;
    Ok(saved(&snap))
}

/// Tag on the first, size-less pass of a streamed dump; such a snapshot never outlives its
/// run (one left behind by a killed run is removed by the next dump).
pub const TAG_PARTIAL: &str = "backup-sync-partial";

/// Store one stream (a dump) as the file `path` of a new snapshot. The stream is read as the
/// repository writes it: memory and temp disk stay bounded whatever its size. rustic_core
/// records a streamed file with size 0, which stock restic restores as an empty file, so the
/// stream is stored in two passes: first as it comes (a snapshot tagged [`TAG_PARTIAL`]),
/// then, its length now known, once more with that size, its content read back from the
/// repository (see [`crate::sized`]: only a tree is written). The first snapshot is removed.
pub fn backup_stream(repo: Repository<OpenStatus>, source: DumpSource) -> anyhow::Result<Saved> {
    let repo = ok(repo.to_indexed_ids(), "reading the index")?;
    let leftovers: Vec<_> = ok(repo.get_all_snapshots(), "listing snapshots")?
        .into_iter()
        .filter(|s| s.tags.contains(TAG_PARTIAL))
        .map(|s| s.id)
        .collect();
    ok(repo.delete_snapshots(&leftovers), "removing a killed run's partial dump snapshot")?;
    let path = source.path().to_path_buf();
    let outcome = source.outcome();
    let mut opts = BackupOptions::default();
    opts.parent_opts.force = true;
    let res = repo.archive(&opts, &source, snapshot(TAG_PARTIAL)?, std::slice::from_ref(&path));
    let first = match (res, outcome.take()) {
        // The dump program's own error explains more than the archiver's.
        (res, Some(Err(e))) => {
            if let Ok(snap) = res {
                ok(repo.delete_snapshots(&[snap.id]), "removing the failed dump's snapshot")?;
            }
            return Err(e);
        }
        (Err(e), _) => return Err(anyhow::anyhow!("storing {}: {}", source.name(), e.display_log())),
        (Ok(snap), None) => {
            ok(repo.delete_snapshots(&[snap.id]), "removing the failed dump's snapshot")?;
            return Err(anyhow::anyhow!("storing {}: the dump was not read to its end", source.name()));
        }
        (Ok(snap), Some(Ok(streamed))) => (snap, streamed.bytes),
    };
    let (first, bytes) = first;
    // Re-read the index: it now holds the blobs the first pass wrote. (Should this fail, the
    // first pass's snapshot stays until the next dump removes it.)
    let repo = std::sync::Arc::new(ok(repo.drop_index().to_indexed(), "reading the index")?);
    let result = store_sized(&repo, &first, &path, bytes, source.name());
    // The size-less first pass goes whatever the second did; its data stays referenced by
    // the second snapshot.
    ok(repo.delete_snapshots(&[first.id]), "removing the dump's first pass")?;
    let second = result?;
    let mut out = saved(&second);
    out.added_bytes += first.summary.as_ref().map_or(0, |s| s.data_added_packed);
    Ok(out)
}

/// The second pass of [`backup_stream`]: the stored stream again, with its size `bytes`.
fn store_sized(
    repo: &std::sync::Arc<Repository<IndexedFullStatus>>,
    first: &SnapshotFile,
    path: &Path,
    bytes: u64,
    name: &str,
) -> anyhow::Result<SnapshotFile> {
    let what = format!("storing {name}");
    let stored = ok(repo.node_from_path(first.tree, path), &what)?;
    let copy = crate::sized::SizedCopy::new(repo, path, &stored, bytes)?;
    let mut opts = BackupOptions::default();
    opts.parent_opts.force = true;
    let tags = format!("{TAG_DUMP},{name}");
    let second = ok(repo.archive(&opts, &copy, snapshot(&tags)?, &[path.to_path_buf()]), &what)?;
    // rustic's archiver drops a file it could not read with only a warning: make sure the
    // dump is in, with all of its bytes.
    let summary = second.summary.clone().unwrap_or_default();
    if summary.total_files_processed == 1 && summary.total_bytes_processed == bytes {
        return Ok(second);
    }
    ok(repo.delete_snapshots(&[second.id]), "removing the dump's broken snapshot")?;
    Err(anyhow::anyhow!(
        "{what}: the stored dump does not read back ({} file(s), {} bytes stored; {bytes} bytes streamed)",
        summary.total_files_processed,
        summary.total_bytes_processed
    ))
}

/// All snapshots, oldest first.
pub fn snapshots(repo: &Repository<OpenStatus>) -> anyhow::Result<Vec<SnapshotFile>> {
    let mut snaps = ok(repo.get_all_snapshots(), "listing snapshots")?;
    snaps.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(snaps)
}

/// What forget + prune did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Pruned {
    pub forgotten: usize,
    pub kept: usize,
    pub packs_removed: u64,
}

/// Forget snapshots outside `keep` (per host and path set, as restic groups them), then
/// prune the data no snapshot references. Refused (exit 3, nothing changed) while a failover
/// holds the host-wide switching lock, or while another program (a stock restic) holds a
/// lock on the repository: it runs under an exclusive restic-format lock (see [`crate::lock`]).
pub fn forget_and_prune(spec: &RepoSpec, repo: &Repository<OpenStatus>, keep: &Keep) -> anyhow::Result<Pruned> {
    standby_common::switching::ensure_not_switching("backup-sync forget+prune")?;
    let _exclusive = crate::lock::RepoLock::acquire(&spec.path, repo, true, "forget+prune")?;
    let mut opts = KeepOptions::default();
    let n = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
    opts.keep_last = n(keep.last);
    opts.keep_hourly = n(keep.hourly);
    opts.keep_daily = n(keep.daily);
    opts.keep_weekly = n(keep.weekly);
    opts.keep_monthly = n(keep.monthly);
    opts.keep_yearly = n(keep.yearly);
    let snaps = ok(repo.get_all_snapshots(), "listing snapshots")?;
    let total = snaps.len();
    let grouped = Grouped::from_items(snaps, SnapshotGroupCriterion::default());
    let now = jiff::Zoned::now();
    let groups = ok(ForgetGroups::from_grouped_snapshots_with_retention(grouped, &opts, &now), "forget")?;
    let ids = groups.into_forget_ids();
    ok(repo.delete_snapshots(&ids), "forget")?;
    let prune_opts = PruneOptions::default();
    let plan = ok(repo.prune_plan(&prune_opts), "prune")?;
    let packs_removed = plan.stats.packs.unused + plan.stats.packs.partly_used;
    ok(repo.prune(&prune_opts, plan), "prune")?;
    Ok(Pruned { forgotten: ids.len(), kept: total - ids.len(), packs_removed })
}

/// Check the repository's structure and read back `subset` of its pack data (`None`: only
/// the structure). Errors name every problem rustic found.
pub fn check(repo: &Repository<OpenStatus>, subset: Option<ReadSubsetOption>) -> anyhow::Result<()> {
    let mut opts = CheckOptions::default();
    if let Some(subset) = subset {
        opts.read_data = true;
        opts.read_data_subset = subset;
    }
    let results = ok(repo.check(opts), "check")?;
    ok(results.is_ok(), "check found errors")
}

/// The snapshot `id` (or `latest`) among those of the configured sources (tag `files`).
pub fn find(repo: &Repository<IndexedFullStatus>, id: &str, only_files: bool) -> anyhow::Result<SnapshotFile> {
    let filter = move |s: &SnapshotFile| !only_files || s.tags.contains(TAG_FILES);
    ok(repo.get_snapshot_from_str(id, filter), "finding the snapshot")
}

/// Restore `snap` into `target`, only paths matching `include` globs if any.
pub fn restore(
    repo: &Repository<IndexedFullStatus>,
    snap: &SnapshotFile,
    target: &Path,
    include: &[String],
) -> anyhow::Result<rustic_core::RestoreStats> {
    let node = ok(repo.node_from_snapshot_and_path(snap, ""), "reading the snapshot")?;
    let mut ls = LsOptions::default();
    ls.excludes.globs = include.to_vec();
    ls.recursive = true;
    std::fs::create_dir_all(target).with_context(|| format!("cannot create {}", target.display()))?;
    let dest_text = format!("{}/", target.display());
    let dest = ok(LocalDestination::new(&dest_text, true, false), "restore target")?;
    let opts = RestoreOptions::default();
    let plan = ok(repo.prepare_restore(&opts, ok(repo.ls(&node, &ls), "ls")?, &dest, false), "restore plan")?;
    let stats = plan.stats;
    ok(repo.restore(plan, &opts, ok(repo.ls(&node, &ls), "ls")?, &dest), "restore")?;
    Ok(stats)
}

/// Open and index for reading data (restore, verify).
pub fn open_indexed(spec: &RepoSpec) -> anyhow::Result<Repository<IndexedFullStatus>> {
    ok(open(spec)?.to_indexed(), "reading the index")
}

/// Bytes the repository takes on disk.
pub fn size_on_disk(path: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path()),
                Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => 0,
            })
            .sum()
    }
    walk(path)
}
