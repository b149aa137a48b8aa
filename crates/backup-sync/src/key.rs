//! The key file of a new repository. rustic_core writes keys with scrypt's N = 2^17, r = 8,
//! p = 1: 128 MiB of memory on every open, which alone sets backup-sync's peak memory near a
//! whole restic backup's. After `init`, that key is replaced by one in the same restic format
//! with N = 2^15, r = 8, p = 1 (32 MiB): what restic 0.14's own calibration gives on a small
//! server. The master key, and so the repository, stays the same; stock restic opens it.
//! Repositories made before keep their key (`restic key add` / `key remove` changes it).

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use rustic_core::{OpenStatus, Repository};
use sha2::{Digest, Sha256};

use crate::lock::{random, RepoKey};
use crate::repo::RepoSpec;

/// scrypt's cost parameters of the key written by `init`.
pub const LOG_N: u8 = 15;
pub const R: u32 = 8;
pub const P: u32 = 1;

/// Replace the key files of the freshly made `repo` with one key of [`LOG_N`], [`R`], [`P`]
/// for the same password. The new key is written (atomically) before the old ones go, and
/// the repository is opened with it to prove it; should that fail, the old keys come back.
pub fn lighten(spec: &RepoSpec, repo: &Repository<OpenStatus>) -> anyhow::Result<()> {
    let dir = spec.path.join("keys");
    let old: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| {
            let path = e?.path();
            let bytes = std::fs::read(&path)?;
            Ok((path, bytes))
        })
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    let file = key_file(spec.password.expose().as_bytes(), &repo.key())?;
    let name = hex(&Sha256::digest(&file));
    let mode = old.first().and_then(|(path, _)| std::fs::metadata(path).ok()).map(|m| m.permissions());
    write_atomically(&dir, &name, &file, mode)?;
    for (path, _) in &old {
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    if let Err(e) = crate::repo::open(spec) {
        for (path, bytes) in &old {
            let _ = std::fs::write(path, bytes);
        }
        let _ = std::fs::remove_file(dir.join(&name));
        return Err(e.context("the new key does not open the repository; the old key was put back"));
    }
    Ok(())
}

/// A restic key file (JSON, not encrypted): the master key encrypted with the key scrypt
/// derives from the password.
fn key_file(password: &[u8], master: &rustic_core::repofile::MasterKey) -> anyhow::Result<Vec<u8>> {
    let mut salt = [0u8; 64];
    random(&mut salt)?;
    let params = scrypt::Params::new(LOG_N, R, P).map_err(|e| anyhow::anyhow!("scrypt parameters: {e}"))?;
    let mut derived = [0u8; 64];
    scrypt::scrypt(password, &salt, &params, &mut derived).map_err(|e| anyhow::anyhow!("scrypt: {e}"))?;
    let data = RepoKey::from_bytes(&derived).encrypt(&serde_json::to_vec(master)?)?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let json = serde_json::json!({
        "created": jiff::Timestamp::now().to_string(),
        "username": std::env::var("USER").unwrap_or_default(),
        "hostname": standby_common::hostname(),
        "kdf": "scrypt",
        "N": 1u32 << LOG_N,
        "r": R,
        "p": P,
        "salt": b64(&salt),
        "data": b64(&data),
    });
    Ok(serde_json::to_vec(&json)?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `dir/name` whole or not at all: a temp file in the same directory, synced, renamed.
/// With `mode`, the permissions of the key it replaces.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8], mode: Option<std::fs::Permissions>) -> anyhow::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    if let Some(mode) = mode {
        tmp.as_file().set_permissions(mode)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(name))
        .map_err(|e| e.error)
        .with_context(|| format!("writing the key in {}", dir.display()))?;
    Ok(())
}
