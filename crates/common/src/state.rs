//! A tool's state dir and what it guarantees: files are replaced atomically (temp file +
//! fsync + rename + fsync of the dir), so a crash or power cut leaves the old or the new
//! content, never half; and one run at a time holds the run lock, an `flock` on a file in the
//! dir, so overlapping cron runs never interleave. The kernel drops an `flock` when its
//! holder dies, so a lock left by a killed run never blocks the next one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::exit::{self, Code, CodedResult};

/// The state directory of one tool.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// The default location: `/var/lib/standby/<tool>` for root, else
    /// `$XDG_STATE_HOME/standby/<tool>` (`~/.local/state/standby/<tool>`).
    pub fn default_path(tool: &str) -> PathBuf {
        if running_as_root() {
            return PathBuf::from("/var/lib/standby").join(tool);
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        base.join("standby").join(tool)
    }

    /// Open (and create) the state dir: `override_dir` if given, else the default.
    pub fn open(tool: &str, override_dir: Option<&Path>) -> anyhow::Result<Self> {
        let path = override_dir.map(Path::to_path_buf).unwrap_or_else(|| Self::default_path(tool));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create state dir {}", path.display()))
            .code(Code::Usage)?;
        Ok(StateDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read a state file; `None` if it does not exist yet.
    pub fn read(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let path = self.path.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Read a JSON state file; `None` if it does not exist yet.
    pub fn read_json<T: DeserializeOwned>(&self, name: &str) -> anyhow::Result<Option<T>> {
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&bytes)
            .with_context(|| format!("corrupt state file {}", self.path.join(name).display()))?;
        Ok(Some(value))
    }

    /// Replace a state file atomically.
    pub fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        write_atomic(&self.path.join(name), bytes)
    }

    /// Replace a JSON state file atomically.
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        self.write(name, &bytes)
    }

    /// Take the run lock `<name>.lock` without waiting: if another run holds it, fail at once
    /// with exit code 3, naming the holder's PID.
    pub fn lock(&self, name: &str) -> anyhow::Result<RunLock> {
        RunLock::acquire(&self.path.join(format!("{name}.lock")))
    }
}

/// An exclusive lock held until dropped (or until the process dies).
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Take an exclusive, non-blocking lock on `path` (created if missing).
    pub fn acquire(path: &Path) -> anyhow::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open lock file {}", path.display()))
            .code(Code::Usage)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
                return Err(exit::error(
                    Code::Locked,
                    format!("another run holds the lock {}{who}; nothing was changed", path.display()),
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // Record who holds it, for the message a concurrent run prints.
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(RunLock { file, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Replace `path` with `bytes` atomically: write a temp file in the same dir, fsync it, keep
/// the old file's permissions, rename over the target, fsync the dir. Readers see the old or
/// the new content, never a mix; a crash leaves at most a stray `.tmp` file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective uid).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_at_once_with_code_3_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open("t", Some(dir.path())).unwrap();
        let held = state.lock("run").unwrap();
        let err = state.lock("run").unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Locked);
        assert!(format!("{err:#}").contains(&format!("pid {}", std::process::id())), "{err:#}");
        drop(held);
        state.lock("run").expect("released lock can be taken again");
    }

    #[test]
    fn atomic_write_replaces_content_and_keeps_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upstream.conf");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn failed_atomic_write_leaves_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("is-a-dir");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(std::fs::read_to_string(target.join("keep")).unwrap(), "x");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "temp file cleaned up: {names:?}");
    }

    #[test]
    fn json_state_round_trips_and_absent_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open("t", Some(&dir.path().join("nested/dir"))).unwrap();
        assert!(state.read_json::<Vec<u32>>("x.json").unwrap().is_none());
        state.write_json("x.json", &vec![1, 2, 3]).unwrap();
        assert_eq!(state.read_json::<Vec<u32>>("x.json").unwrap(), Some(vec![1, 2, 3]));
    }
}
