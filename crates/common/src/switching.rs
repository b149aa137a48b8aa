//! The host-wide switching lock: replica-promote and dns-failover hold it while they switch
//! (promote a standby, point DNS at the backup); blue-green-deploy and backup-sync's prune
//! check it and refuse to start while it is held, with exit 3 and a message naming the holder
//! (tool, pid, what it does, since when — written into the lock file by the holder).
//!
//! It is an `flock` on `switching.lock` in the run dir: `$STANDBY_RUN_DIR` when set (tests,
//! non-root users), else `/run/standby` when it exists or we are root, else
//! `$XDG_RUNTIME_DIR/standby`. The kernel drops an `flock` when its holder dies, so a killed
//! switch never leaves a stale lock. Checking takes a shared lock for a moment and lets it go:
//! a deploy never delays a failover.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::exit::{self, Code, CodedResult};

/// The env var that overrides the run dir.
pub const RUN_DIR_ENV: &str = "STANDBY_RUN_DIR";
/// The system run dir (created by root, or by systemd's `RuntimeDirectory=standby`).
pub const SYSTEM_RUN_DIR: &str = "/run/standby";
/// The lock file's name in the run dir.
pub const LOCK_FILE: &str = "switching.lock";
/// Set by a holder on the programs it runs (hooks): a tool started that way (dns-failover
/// switch run by replica-promote's post-promote hook) works under its parent's lock instead
/// of refusing. Its value is the holder's pid.
pub const HOLDER_ENV: &str = "STANDBY_SWITCHING_HOLDER";

/// Who holds the lock: written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub tool: String,
    pub pid: u32,
    /// What it does, as a phrase: `promoting the standby db2`.
    pub action: String,
    /// When it took the lock (RFC 3339, UTC).
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {}) is {} since {}", self.tool, self.pid, self.action, self.since)
    }
}

/// The run dir holding the lock, from the environment; `None` when there is none.
pub fn run_dir() -> Option<PathBuf> {
    let system = Path::new(SYSTEM_RUN_DIR);
    let system_usable = system.is_dir() || crate::state::running_as_root();
    resolve_run_dir(std::env::var_os(RUN_DIR_ENV), std::env::var_os("XDG_RUNTIME_DIR"), system_usable)
}

/// The choice [`run_dir`] makes, without looking at the environment.
pub fn resolve_run_dir(
    standby_run_dir: Option<OsString>,
    xdg_runtime_dir: Option<OsString>,
    system_usable: bool,
) -> Option<PathBuf> {
    if let Some(dir) = standby_run_dir.filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if system_usable {
        return Some(PathBuf::from(SYSTEM_RUN_DIR));
    }
    xdg_runtime_dir.filter(|d| !d.is_empty()).map(|d| PathBuf::from(d).join("standby"))
}

/// The switching lock, held until dropped (or until the process dies).
#[derive(Debug)]
pub struct SwitchLock {
    /// `None` when held by the parent that started us (see [`HOLDER_ENV`]).
    file: Option<File>,
    path: PathBuf,
}

impl SwitchLock {
    /// Take the lock in the run dir for `tool` doing `action` (`switching DNS record db to
    /// backup`). Held by another: exit 3 naming it. No run dir: exit 2.
    pub fn acquire(tool: &str, action: &str) -> anyhow::Result<SwitchLock> {
        let dir = run_dir().ok_or_else(|| {
            exit::error(
                Code::Usage,
                format!("no run dir for the switching lock: {SYSTEM_RUN_DIR} does not exist, XDG_RUNTIME_DIR is not set; set {RUN_DIR_ENV}"),
            )
        })?;
        Self::acquire_in(&dir, tool, action)
    }

    /// Take the lock in `dir` (created if missing).
    pub fn acquire_in(dir: &Path, tool: &str, action: &str) -> anyhow::Result<SwitchLock> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create run dir {}", dir.display()))
            .code(Code::Usage)?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the switching lock {}", path.display()))
            .code(Code::Usage)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let parent = std::env::var(HOLDER_ENV).ok().and_then(|v| v.trim().parse::<u32>().ok());
                if parent.is_some() && read_holder(&mut file).map(|h| h.pid) == parent {
                    return Ok(SwitchLock { file: None, path });
                }
                return Err(held(&mut file, &path, &format!("{tool} cannot start")));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let holder = Holder {
            tool: tool.to_string(),
            pid: std::process::id(),
            action: action.to_string(),
            since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        // Written in place: replacing the file would give a checker a different inode to lock.
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            file.write_all(&serde_json::to_vec(&holder)?)?;
            file.write_all(b"\n")?;
            file.flush()
        };
        write(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(SwitchLock { file: Some(file), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The env var to give the programs run while the lock is held ([`HOLDER_ENV`]).
    pub fn env(&self) -> (&'static str, String) {
        let pid = match &self.file {
            Some(_) => std::process::id().to_string(),
            None => std::env::var(HOLDER_ENV).unwrap_or_default(),
        };
        (HOLDER_ENV, pid)
    }
}

impl Drop for SwitchLock {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}

/// Take the lock for a switch. Held by another: exit 3 naming it. No usable run dir (a
/// non-root cron job without `XDG_RUNTIME_DIR`): a warning and `None`, because a failover must
/// never be blocked by a missing directory.
pub fn hold(tool: &str, action: &str) -> anyhow::Result<Option<SwitchLock>> {
    match SwitchLock::acquire(tool, action) {
        Ok(lock) => Ok(Some(lock)),
        Err(e) if exit::code_of(&e) == Code::Locked => Err(e),
        Err(e) => {
            tracing::warn!("going on without the host-wide switching lock: {e:#}");
            Ok(None)
        }
    }
}

/// Refuse to start while a switch is in progress: exit 3 naming the holder. `who` is the
/// refused operation (`blue-green-deploy switch`). Nothing in the run dir means no switch.
pub fn ensure_not_switching(who: &str) -> anyhow::Result<()> {
    match run_dir() {
        Some(dir) => ensure_not_switching_in(&dir, who),
        None => Ok(()),
    }
}

/// [`ensure_not_switching`] for the lock in `dir`.
pub fn ensure_not_switching_in(dir: &Path, who: &str) -> anyhow::Result<()> {
    let path = dir.join(LOCK_FILE);
    // Read-only is enough for flock, so a non-root deploy can check a root-held lock.
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot open the switching lock {}", path.display())),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(())
        }
        Err(TryLockError::WouldBlock) => Err(held(&mut file, &path, &format!("{who} refused to start"))),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot check {}", path.display())),
    }
}

/// Who holds the lock in `dir`, when it is held.
pub fn holder_in(dir: &Path) -> anyhow::Result<Option<Holder>> {
    let path = dir.join(LOCK_FILE);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => Ok(read_holder(&mut file)),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot check {}", path.display())),
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// The exit-3 error for a held lock, naming the holder.
fn held(file: &mut File, path: &Path, refused: &str) -> anyhow::Error {
    let who = match read_holder(file) {
        Some(holder) => holder.to_string(),
        None => "another process is switching (it has not recorded its name yet)".to_string(),
    };
    exit::error(Code::Locked, format!("{refused}: {who} (lock {}); nothing was changed", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_prefers_the_env_then_the_system_dir_then_xdg() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(resolve_run_dir(os("/tmp/x"), os("/run/user/1"), true), Some(PathBuf::from("/tmp/x")));
        assert_eq!(resolve_run_dir(os(""), os("/run/user/1"), true), Some(PathBuf::from(SYSTEM_RUN_DIR)));
        assert_eq!(resolve_run_dir(None, os("/run/user/1"), false), Some(PathBuf::from("/run/user/1/standby")));
        assert_eq!(resolve_run_dir(None, None, false), None);
    }

    #[test]
    fn held_in_process_then_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        ensure_not_switching_in(dir.path(), "deploy").expect("no lock file: not switching");
        let lock = SwitchLock::acquire_in(dir.path(), "replica-promote", "promoting the standby db2").unwrap();
        let holder = holder_in(dir.path()).unwrap().expect("held");
        assert_eq!((holder.tool.as_str(), holder.pid), ("replica-promote", std::process::id()));
        let err = ensure_not_switching_in(dir.path(), "blue-green-deploy switch").unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Locked);
        let msg = format!("{err}");
        assert!(msg.starts_with("blue-green-deploy switch refused to start: replica-promote (pid "), "{msg}");
        assert!(msg.contains("is promoting the standby db2 since 20"), "{msg}");
        let err = SwitchLock::acquire_in(dir.path(), "dns-failover", "switching").unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Locked);
        drop(lock);
        assert_eq!(holder_in(dir.path()).unwrap(), None);
        ensure_not_switching_in(dir.path(), "deploy").expect("released");
    }
}
