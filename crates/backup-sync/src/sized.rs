//! The second pass of a streamed dump, which gives its file node the real size. rustic_core
//! 0.13 learns a stream's length only while storing it and never writes it back into the
//! node: the file is recorded with size 0, and stock restic (0.14) restores such a file as an
//! empty one. Once the stream is stored and its length known, [`SizedCopy`] offers the same
//! file again, now with that size, its content read back from the repository. The chunker
//! cuts the very same blobs, all already stored, so only a new tree and snapshot are written;
//! memory and temp disk stay bounded whatever the dump's size, and the read-back doubles as a
//! check that the stored dump reads back to the length that was streamed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustic_core::repofile::Node;
use rustic_core::vfs::OpenFile;
use rustic_core::{IndexedFullStatus, ReadSource, ReadSourceEntry, Repository, RusticResult};

/// How much is read back from the repository at a time.
const READ_AT_ONCE: usize = 4 << 20;

/// The stored stream `node` at `path`, offered again with `size` as its node's size.
pub struct SizedCopy {
    path: PathBuf,
    node: Node,
    reader: Mutex<Option<ReadBack>>,
}

impl SizedCopy {
    /// `stored` is the node the first pass wrote (with its content); `size` the bytes streamed.
    pub fn new(
        repo: &Arc<Repository<IndexedFullStatus>>,
        path: &Path,
        stored: &Node,
        size: u64,
    ) -> anyhow::Result<Self> {
        let file = repo
            .open_file(stored)
            .map_err(|e| anyhow::anyhow!("reading back {}: {}", path.display(), e.display_log()))?;
        let mut node = stored.clone();
        node.content = None;
        node.meta.size = size;
        let reader = ReadBack {
            repo: Arc::clone(repo),
            file,
            offset: 0,
            size,
            buf: Vec::new(),
            pos: 0,
            path: path.to_path_buf(),
        };
        Ok(SizedCopy { path: path.to_path_buf(), node, reader: Mutex::new(Some(reader)) })
    }
}

impl ReadSource for SizedCopy {
    type Open = ReadBack;
    type Iter = std::option::IntoIter<RusticResult<ReadSourceEntry<ReadBack>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(Some(self.node.meta.size))
    }

    fn entries(&self) -> Self::Iter {
        let open = self.reader.lock().ok().and_then(|mut r| r.take());
        Some(Ok(ReadSourceEntry { path: self.path.clone(), node: self.node.clone(), open })).into_iter()
    }
}

/// The stored file's content, read back in pieces; a length other than the streamed one is
/// an error (and the second pass fails).
pub struct ReadBack {
    repo: Arc<Repository<IndexedFullStatus>>,
    file: OpenFile,
    offset: u64,
    size: u64,
    buf: Vec<u8>,
    pos: usize,
    path: PathBuf,
}

impl Read for ReadBack {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            let offset = usize::try_from(self.offset).map_err(std::io::Error::other)?;
            let bytes = self.repo.read_file_at(&self.file, offset, READ_AT_ONCE).map_err(|e| {
                std::io::Error::other(format!("reading back {}: {}", self.path.display(), e.display_log()))
            })?;
            self.buf = bytes.to_vec();
            self.pos = 0;
            self.offset += self.buf.len() as u64;
            if self.offset > self.size || (self.buf.is_empty() && self.offset != self.size) {
                return Err(std::io::Error::other(format!(
                    "{} reads back as {} bytes, but {} were streamed",
                    self.path.display(),
                    self.offset,
                    self.size
                )));
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
