//! restic-format repository locks, so that backup-sync is safe beside stock restic.
//!
//! rustic_core is lock-free; stock restic is not: every restic command puts a lock file in
//! the repository's `locks/` (JSON `{time, exclusive, hostname, username, pid, uid, gid}`,
//! encrypted with the repository key like any restic file and named by the SHA-256 of the
//! encrypted bytes), refreshes it every 5 minutes, and refuses to start while a conflicting
//! one is there (an exclusive lock conflicts with every other lock). backup-sync does the same
//! while it writes: a non-exclusive lock for a run (so a stock `restic prune` refuses to run
//! beside it), an exclusive one for forget + prune (refused, exit 3, while any foreign lock is
//! present). A lock is stale by restic's rules (`restic unlock`): older than 30 minutes, or
//! made on this host by a process that is gone; stale locks are removed, never obeyed.
//!
//! A kill -9 cannot run destructors, so a guard process (`sh`, reading a pipe only this
//! process writes) removes the current lock file once that pipe closes, whatever ended the
//! process; should the guard die too, the lock is stale by the rules above and the next run
//! (or `restic unlock`) removes it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use aes256ctr_poly1305aes::aead::{Aead, AeadInPlace};
use aes256ctr_poly1305aes::{Aes256CtrPoly1305Aes, Key, Nonce};
use anyhow::Context;
use rustic_core::{OpenStatus, Repository};
use sha2::{Digest, Sha256};
use standby_common::exit::{self, Code};

/// restic refreshes its locks this often.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);
/// restic treats a lock older than this as stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// One lock file's content, field for field as restic writes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LockRecord {
    pub time: String,
    pub exclusive: bool,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    pub pid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// This host's name as restic compares it (Go's `os.Hostname`, the kernel's node name).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl LockRecord {
    /// A record for this process, now.
    pub fn ours(exclusive: bool) -> Self {
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = std::fs::metadata("/proc/self").map(|m| (m.uid(), m.gid())).unwrap_or((0, 0));
        let username = std::env::var("USER").unwrap_or_else(|_| if uid == 0 { "root".into() } else { String::new() });
        LockRecord {
            time: jiff::Timestamp::now().to_string(),
            exclusive,
            hostname: hostname(),
            username,
            pid: std::process::id(),
            uid,
            gid,
        }
    }

    /// Made by this very process (one run's locks never conflict with each other).
    fn is_ours(&self) -> bool {
        self.pid == std::process::id() && self.hostname == hostname()
    }

    /// Stale by restic's rules: too old, or from this host and its process is gone.
    pub fn is_stale(&self) -> bool {
        let too_old = match self.time.parse::<jiff::Timestamp>() {
            Ok(t) => jiff::Timestamp::now().duration_since(t).unsigned_abs() > STALE_AFTER,
            Err(_) => false,
        };
        too_old || (self.hostname == hostname() && !process_alive(self.pid))
    }

    fn describe(&self) -> String {
        format!(
            "{}lock of PID {} on {} by {} since {}",
            if self.exclusive { "an exclusive " } else { "a " },
            self.pid,
            self.hostname,
            if self.username.is_empty() { "?" } else { &self.username },
            self.time
        )
    }
}

/// Fill `buf` from /dev/urandom.
pub fn random(buf: &mut [u8]) -> anyhow::Result<()> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, buf))
        .context("reading /dev/urandom")
}

/// The repository key, to write and read restic's encrypted files.
#[derive(Clone)]
pub struct RepoKey(Key);

impl std::fmt::Debug for RepoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepoKey(..)")
    }
}

impl RepoKey {
    /// The key the repository was opened with.
    pub fn of(repo: &Repository<OpenStatus>) -> anyhow::Result<Self> {
        let master = repo.key();
        anyhow::ensure!(
            master.encrypt.len() == 32 && master.mac.k.len() == 16 && master.mac.r.len() == 16,
            "the repository key has an unexpected shape"
        );
        let mut key = Key::default();
        key[..32].copy_from_slice(&master.encrypt);
        key[32..48].copy_from_slice(&master.mac.k);
        key[48..].copy_from_slice(&master.mac.r);
        Ok(RepoKey(key))
    }

    /// A key from its 64 bytes (AES-256 key, then Poly1305's k and r), as restic lays them out.
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        RepoKey(*Key::from_slice(bytes))
    }

    /// Encrypt as restic does: a random nonce, the ciphertext, the MAC.
    pub fn encrypt(&self, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = Nonce::default();
        random(&mut nonce)?;
        let mut out = Vec::with_capacity(plain.len() + 32);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = Aes256CtrPoly1305Aes::new(&self.0)
            .encrypt_in_place_detached(&nonce, &[], &mut out[16..])
            .map_err(|_| anyhow::anyhow!("encrypting failed"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypt a restic file that is not a pack (version-2 files may be zstd-compressed).
    fn decrypt(&self, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(data.len() >= 32, "too short");
        let plain = Aes256CtrPoly1305Aes::new(&self.0)
            .decrypt(Nonce::from_slice(&data[..16]), &data[16..])
            .map_err(|_| anyhow::anyhow!("MAC check failed"))?;
        match plain.first() {
            Some(b'{' | b'[') | None => Ok(plain),
            Some(2) => zstd::decode_all(&plain[1..]).context("decompressing"),
            Some(v) => anyhow::bail!("unknown encoding {v}"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `record` as a new lock file; returns its path. `before` is told the path before the
/// file is written (the guard: a kill -9 at any point leaves nothing it does not remove).
pub fn write_lock(
    repo_path: &Path,
    key: &RepoKey,
    record: &LockRecord,
    before: impl FnOnce(&Path),
) -> anyhow::Result<PathBuf> {
    let dir = repo_path.join("locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let data = key.encrypt(&serde_json::to_vec(record)?)?;
    let path = dir.join(hex(&Sha256::digest(&data)));
    before(&path);
    // Written in place: restic skips a lock file it cannot read (one cut short), as we do.
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        f.write_all(&data)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        return Err(anyhow::anyhow!("cannot write a lock file in {}: {e}", dir.display()));
    }
    Ok(path)
}

/// Every lock file that reads with `key`, with its path. Files that do not read are skipped,
/// as restic skips them.
pub fn list_locks(repo_path: &Path, key: &RepoKey) -> Vec<(PathBuf, LockRecord)> {
    let Ok(entries) = std::fs::read_dir(repo_path.join("locks")) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let read = std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|d| key.decrypt(&d))
            .and_then(|p| Ok(serde_json::from_slice::<LockRecord>(&p)?));
        match read {
            Ok(record) => out.push((path, record)),
            Err(e) => tracing::debug!("ignoring lock file {}: {e:#}", path.display()),
        }
    }
    out
}

/// Remove stale locks (restic's `unlock` rules); the foreign live ones that conflict with a
/// lock of kind `exclusive` are returned.
fn conflicts(repo_path: &Path, key: &RepoKey, exclusive: bool) -> Vec<LockRecord> {
    let mut found = Vec::new();
    for (path, record) in list_locks(repo_path, key) {
        if record.is_ours() {
            continue;
        }
        if record.is_stale() {
            tracing::info!("removing a stale lock: {}", record.describe());
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if exclusive || record.exclusive {
            found.push(record);
        }
    }
    found
}

/// A held restic-format lock: refreshed every [`REFRESH`] by a thread, removed on drop, and by
/// a guard process should this one be killed.
#[derive(Debug)]
pub struct RepoLock {
    current: Arc<Mutex<PathBuf>>,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
    guard: Option<(Child, Arc<Mutex<ChildStdin>>)>,
}

impl RepoLock {
    /// Take a lock of kind `exclusive` on the repository at `repo_path` for `what`; exit 3
    /// (nothing changed) when a live foreign lock conflicts.
    pub fn acquire(
        repo_path: &Path,
        repo: &Repository<OpenStatus>,
        exclusive: bool,
        what: &str,
    ) -> anyhow::Result<Self> {
        Self::acquire_refreshing(repo_path, repo, exclusive, what, REFRESH)
    }

    /// [`RepoLock::acquire`], refreshed every `refresh` (tests use a short one).
    pub fn acquire_refreshing(
        repo_path: &Path,
        repo: &Repository<OpenStatus>,
        exclusive: bool,
        what: &str,
        refresh: Duration,
    ) -> anyhow::Result<Self> {
        let key = RepoKey::of(repo)?;
        let refuse = |found: &[LockRecord]| {
            let held: Vec<String> = found.iter().map(LockRecord::describe).collect();
            exit::error(
                Code::Locked,
                format!(
                    "{what} refused: the repository {} is locked by another program ({}); nothing was changed. \
                     If that program is gone, `restic unlock` removes its lock.",
                    repo_path.display(),
                    held.join("; ")
                ),
            )
        };
        let found = conflicts(repo_path, &key, exclusive);
        if !found.is_empty() {
            return Err(refuse(&found));
        }
        let guard = spawn_guard();
        let guard_in = guard.as_ref().map(|(_, stdin)| Arc::clone(stdin));
        let tell = move |p: &Path| {
            if let Some(stdin) = &guard_in {
                tell_guard(stdin, p);
            }
        };
        // From here on, dropping `held` cleans up whatever was done.
        let mut held = RepoLock { current: Arc::new(Mutex::new(PathBuf::new())), stop: None, refresher: None, guard };
        let path = write_lock(repo_path, &key, &LockRecord::ours(exclusive), &tell)?;
        if let Ok(mut cur) = held.current.lock() {
            *cur = path;
        }
        // Both may have written at once: look again, as restic does, and step back on a conflict.
        let found = conflicts(repo_path, &key, exclusive);
        if !found.is_empty() {
            return Err(refuse(&found));
        }
        let (stop, rx) = mpsc::channel::<()>();
        let current = Arc::clone(&held.current);
        let repo_path = repo_path.to_path_buf();
        held.refresher = Some(std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(refresh) {
                let Ok(mut cur) = current.lock() else { return };
                match write_lock(&repo_path, &key, &LockRecord::ours(exclusive), &tell) {
                    Ok(new) => {
                        let _ = std::fs::remove_file(&*cur);
                        *cur = new;
                    }
                    Err(e) => tracing::warn!("cannot refresh the repository lock: {e:#}"),
                }
            }
        }));
        held.stop = Some(stop);
        Ok(held)
    }

    /// The lock file held now.
    pub fn path(&self) -> PathBuf {
        self.current.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

fn tell_guard(stdin: &Mutex<ChildStdin>, path: &Path) {
    if let Ok(mut w) = stdin.lock() {
        let _ = writeln!(w, "{}", path.display());
    }
}

/// A `sh` that remembers every path it was told and removes them once its stdin closes,
/// that is when this process ends, however it ends. It ignores the terminal's signals so a
/// Ctrl-C that ends this process still lets it clean up.
fn spawn_guard() -> Option<(Child, Arc<Mutex<ChildStdin>>)> {
    let script = "trap '' INT HUP TERM QUIT; set --; while IFS= read -r l; do set -- \"$@\" \"$l\"; done; \
                  [ $# -eq 0 ] || rm -f -- \"$@\"";
    let spawned = Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            let stdin = Arc::new(Mutex::new(child.stdin.take()?));
            Some((child, stdin))
        }
        Err(e) => {
            tracing::warn!("no lock guard (a kill -9 would leave a stale lock): {e}");
            None
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let path = self.path();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound && !path.as_os_str().is_empty() => {
                tracing::warn!("cannot remove the lock file {}: {e}", path.display());
            }
            _ => {}
        }
        if let Some((mut child, stdin)) = self.guard.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}
