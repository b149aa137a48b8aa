//! Database and command dumps, streamed into the repository: the dump program runs through
//! `standby_common::exec::Cmd::stream` and its stdout is handed to rustic's archiver as one
//! file's content, so a 5 GB dump needs neither 5 GB of memory nor of temp disk. When the
//! stream ends, the program's exit status is checked; a failing dump fails its snapshot
//! (none is saved) and its error, with the tail of stderr, is what the run reports.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{ReadSource, ReadSourceEntry, RusticResult};
use standby_common::exec::{Cmd, Streamed, Streaming};
use standby_common::exit::{self, Code};

use crate::config::{DumpKind, DumpSpec};

/// Where dumps live inside their snapshots.
pub const DUMP_DIR: &str = "/backup-sync/dumps";

/// A dump as planned from its config entry.
#[derive(Debug, Clone)]
pub struct Dump {
    pub name: String,
    pub kind: DumpKind,
    pub cmd: Cmd,
}

/// Plan a `[[backup-sync.dump]]` entry; errors are config errors (exit 2).
pub fn plan(spec: &DumpSpec) -> anyhow::Result<Dump> {
    let timeout = spec.timeout.map(|t| t.get()).unwrap_or(Duration::from_secs(6 * 3600));
    let usage = |m: &str| exit::error(Code::Usage, m.to_string());
    let (name, cmd) = match spec.kind {
        DumpKind::Postgres => {
            let database = spec.database.as_deref().ok_or_else(|| usage("a postgres dump needs `database`"))?;
            let conninfo = spec.conninfo.clone().unwrap_or_default();
            let dsn = format!("{conninfo} dbname={}", quote_conninfo(database));
            let name = spec.name.clone().unwrap_or_else(|| format!("{database}.pgdump"));
            (name, Cmd::new(pg_program("pg_dump")).args(["--format=custom", "--no-password", "--dbname"]).arg(dsn))
        }
        DumpKind::Command => {
            let line = spec.command.as_deref().ok_or_else(|| usage("a command dump needs `command`"))?;
            let name = spec.name.clone().ok_or_else(|| usage("a command dump needs `name` (its file name)"))?;
            (name, Cmd::shell(line))
        }
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(usage(&format!("dump name {name:?} must be a plain file name")));
    }
    Ok(Dump { name, kind: spec.kind, cmd: cmd.timeout(timeout) })
}

fn quote_conninfo(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A PostgreSQL client program: on PATH, else Debian's versioned directory.
pub fn pg_program(name: &str) -> PathBuf {
    if let Some(p) = standby_common::exec::which(name) {
        return p;
    }
    for version in ["17", "16", "15", "14", "13"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin/{name}"));
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// The outcome of the dump program, known once its stream ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome(Arc<Mutex<Option<anyhow::Result<Streamed>>>>);

impl Outcome {
    fn set(&self, value: anyhow::Result<Streamed>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(value);
        }
    }
    /// Take the outcome (`None` when the stream was never read to its end).
    pub fn take(&self) -> Option<anyhow::Result<Streamed>> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// stdout of a running dump; at its end the program's status becomes the read's result.
pub struct DumpReader {
    stream: Option<Streaming>,
    outcome: Outcome,
}

impl Read for DumpReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(stream) = self.stream.as_mut() else { return Ok(0) };
        let n = match stream.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let name = stream.name().to_string();
                if let Some(s) = self.stream.take() {
                    let res = s.finish();
                    self.outcome.set(Err(res.err().unwrap_or_else(|| anyhow::anyhow!("{name}: {e}"))));
                }
                return Err(e);
            }
        };
        if n == 0 {
            if let Some(s) = self.stream.take() {
                match s.finish() {
                    Ok(done) => self.outcome.set(Ok(done)),
                    Err(e) => {
                        let text = format!("{e:#}");
                        self.outcome.set(Err(e));
                        return Err(std::io::Error::other(text));
                    }
                }
            }
        }
        Ok(n)
    }
}

/// One dump as a rustic `ReadSource`: a single file at `/backup-sync/dumps/<name>`.
pub struct DumpSource {
    name: String,
    path: PathBuf,
    reader: Mutex<Option<DumpReader>>,
    outcome: Outcome,
}

impl DumpSource {
    /// Start the dump program (exit 4 when it is not installed).
    pub fn start(dump: &Dump) -> anyhow::Result<Self> {
        let stream = dump.cmd.stream()?;
        let outcome = Outcome::default();
        Ok(DumpSource {
            name: dump.name.clone(),
            path: Path::new(DUMP_DIR).join(&dump.name),
            reader: Mutex::new(Some(DumpReader { stream: Some(stream), outcome: outcome.clone() })),
            outcome,
        })
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn outcome(&self) -> Outcome {
        self.outcome.clone()
    }
}

impl ReadSource for DumpSource {
    type Open = DumpReader;
    type Iter = std::option::IntoIter<RusticResult<ReadSourceEntry<DumpReader>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let open = self.reader.lock().ok().and_then(|mut r| r.take());
        let meta = Metadata { mode: Some(0o600), mtime: Some(jiff::Timestamp::now()), ..Metadata::default() };
        let node = Node::new_node(std::ffi::OsStr::new(&self.name), NodeType::File, meta);
        Some(Ok(ReadSourceEntry { path: self.path.clone(), node, open })).into_iter()
    }
}
