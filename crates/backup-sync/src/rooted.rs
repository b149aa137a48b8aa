//! The sources' own directories, with their metadata. rustic_core 0.13's `LocalSource` skips
//! each source's root entry, and the archiver then records that directory and its parents as
//! mode 0755 with no owner and no mtime: a 0700 `/var/lib/postgresql` would come back 0755,
//! readable by everyone. [`RootedSource`] wraps `LocalSource` and yields those directories
//! (the sources and their parents, as restic records them) with their real mode, owner and
//! times, each just before the first entry below it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{LocalSource, ReadSource, ReadSourceEntry, RusticResult};

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

/// A directory's node as restic records it (Go's file mode bits).
fn dir_node(path: &Path) -> Option<Node> {
    let m = std::fs::metadata(path).ok()?;
    if !m.is_dir() {
        return None;
    }
    let mut mode = m.mode() & 0o777 | GO_MODE_DIR;
    for (unix, go) in [(0o4000, GO_MODE_SETUID), (0o2000, GO_MODE_SETGID), (0o1000, GO_MODE_STICKY)] {
        if m.mode() & unix != 0 {
            mode |= go;
        }
    }
    #[allow(clippy::cast_possible_truncation)]
    let ts = |s: i64, ns: i64| jiff::Timestamp::new(s, ns as i32).ok();
    let meta = Metadata {
        mode: Some(mode),
        mtime: ts(m.mtime(), m.mtime_nsec()),
        atime: ts(m.atime(), m.atime_nsec()),
        ctime: ts(m.ctime(), m.ctime_nsec()),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        inode: m.ino(),
        device_id: m.dev(),
        ..Metadata::default()
    };
    Some(Node::new_node(path.file_name()?, NodeType::Dir, meta))
}

/// `LocalSource` plus the sources' directories and their parents.
pub struct RootedSource {
    inner: LocalSource,
    dirs: Vec<(PathBuf, Node)>,
}

impl std::fmt::Debug for RootedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootedSource").field("dirs", &self.dirs.len()).finish()
    }
}

impl RootedSource {
    pub fn new(inner: LocalSource, sources: &[PathBuf]) -> Self {
        let mut paths: Vec<PathBuf> = sources.iter().flat_map(|s| s.ancestors().map(Path::to_path_buf)).collect();
        paths.sort();
        paths.dedup();
        let dirs = paths.into_iter().filter_map(|p| dir_node(&p).map(|n| (p, n))).collect();
        RootedSource { inner, dirs }
    }
}

type Inner = <LocalSource as ReadSource>::Iter;
type Open = <LocalSource as ReadSource>::Open;

/// The walk, with the directories slotted in before their first entry.
pub struct RootedIter {
    inner: Inner,
    dirs: std::iter::Peekable<std::vec::IntoIter<(PathBuf, Node)>>,
    pending: Option<RusticResult<ReadSourceEntry<Open>>>,
}

impl Iterator for RootedIter {
    type Item = RusticResult<ReadSourceEntry<Open>>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match self.pending.take() {
            Some(item) => Some(item),
            None => self.inner.next(),
        };
        let before = match &next {
            Some(Ok(entry)) => self.dirs.peek().is_some_and(|(p, _)| *p < entry.path),
            Some(Err(_)) => false,
            None => self.dirs.peek().is_some(),
        };
        if before {
            self.pending = next;
            let (path, node) = self.dirs.next()?;
            return Some(Ok(ReadSourceEntry { path, node, open: None }));
        }
        // A directory the walk yields itself (never: rustic skips roots) is not yielded twice.
        if let Some(Ok(entry)) = &next {
            while self.dirs.peek().is_some_and(|(p, _)| *p == entry.path) {
                self.dirs.next();
            }
        }
        next
    }
}

impl ReadSource for RootedSource {
    type Open = Open;
    type Iter = RootedIter;

    fn size(&self) -> RusticResult<Option<u64>> {
        self.inner.size()
    }

    fn entries(&self) -> Self::Iter {
        RootedIter { inner: self.inner.entries(), dirs: self.dirs.clone().into_iter().peekable(), pending: None }
    }
}
