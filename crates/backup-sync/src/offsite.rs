//! Offsite copies of the repository with rclone (run through `standby_common::exec`):
//! `rclone sync` with its final `--stats` parsed into files, bytes and duration, rclone's
//! exit codes classified (5 temporary: retried with backoff; 1, 3, 4 configuration or missing
//! paths and 7 fatal: not retried), then `rclone check` so the copy is verified, not assumed.
//! `newest_snapshot` asks the copy itself how old its newest snapshot file is.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use standby_common::exec::{Cmd, Finished};
use standby_common::retry::Backoff;

use crate::config::OffsiteSpec;

/// What one offsite copy did.
#[derive(Debug, Clone, Serialize)]
pub struct Copied {
    pub remote: String,
    pub files: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub attempts: u32,
    /// `rclone check` found the copy identical.
    pub verified: bool,
}

/// What an rclone exit code means, in one line; and whether to retry.
pub fn classify(code: Option<i32>) -> (&'static str, bool) {
    match code {
        Some(1) => ("syntax or usage error (check the remote and flags)", false),
        Some(2) => ("error not otherwise categorised", false),
        Some(3) => ("directory not found (the repository or the remote path is missing)", false),
        Some(4) => ("file not found", false),
        Some(5) => ("temporary error (network, rate limit): retried", true),
        Some(6) => ("less serious errors (NoRetry errors)", false),
        Some(7) => ("fatal error (bad credentials, quota, permission): not retried", false),
        Some(8) => ("transfer limit exceeded", false),
        Some(9) => ("no files transferred", false),
        _ => ("killed or did not start", false),
    }
}

/// The rclone stats of a run's JSON log: (files, bytes, seconds).
pub fn parse_stats(stderr: &str) -> Option<(u64, u64, f64)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("stats").cloned())
        .next_back()
        .map(|s| {
            (
                s["transfers"].as_u64().unwrap_or(0),
                s["bytes"].as_u64().unwrap_or(0),
                s["elapsedTime"].as_f64().unwrap_or(0.0),
            )
        })
}

fn rclone_error(what: &str, remote: &str, done: &Finished) -> anyhow::Error {
    let (meaning, _) = classify(done.status.code());
    let tail: Vec<String> = done
        .stderr_text_lines()
        .into_iter()
        .filter_map(|l| match serde_json::from_str::<serde_json::Value>(&l) {
            Ok(v) if v["level"] == "error" || v["level"] == "critical" => v["msg"].as_str().map(str::to_string),
            Ok(_) => None,
            Err(_) => Some(l),
        })
        .collect();
    let code = done.status.code().map(|c| c.to_string()).unwrap_or_else(|| "-".into());
    anyhow::anyhow!("rclone {what} to {remote}: exit {code}, {meaning}: {}", tail.join("; ").trim())
}

trait Lines {
    fn stderr_text_lines(&self) -> Vec<String>;
}

impl Lines for Finished {
    fn stderr_text_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.stderr).lines().map(str::to_string).collect()
    }
}

/// The repository's lock files, as an rclone filter: never copied.
const LOCKS: &str = "/locks/**";

/// Sync the repository to the remote (retrying temporary failures), then verify the copy.
pub fn copy(repository: &Path, spec: &OffsiteSpec, backoff: &Backoff) -> anyhow::Result<Copied> {
    let mut sync = Cmd::new("rclone").arg("sync").arg(repository).arg(&spec.remote).args([
        "--use-json-log",
        "--stats-log-level",
        "NOTICE",
        "--stats",
        "1h",
        "--retries",
        "1",
        // The run's own restic lock (crate::lock) stays home: copied, it would be a lock of a
        // gone process that blocks restic on the copy.
        "--exclude",
        LOCKS,
    ]);
    if let Some(limit) = &spec.bwlimit {
        sync = sync.arg("--bwlimit").arg(limit);
    }
    sync = sync.args(&spec.flags);
    let mut attempts = 0;
    let done = loop {
        attempts += 1;
        let done = sync.run()?;
        if done.success() {
            break done;
        }
        let (_, retry) = classify(done.status.code());
        if !retry || attempts >= backoff.attempts.max(1) {
            return Err(rclone_error("sync", &spec.remote, &done));
        }
        let wait = backoff.delay(attempts);
        tracing::warn!("rclone sync to {}: temporary error, retrying in {wait:?}", spec.remote);
        std::thread::sleep(wait);
    };
    let (files, bytes, seconds) = parse_stats(&String::from_utf8_lossy(&done.stderr)).unwrap_or_default();
    let check = Cmd::new("rclone")
        .arg("check")
        .arg(repository)
        .arg(&spec.remote)
        .args(["--exclude", LOCKS])
        .args(&spec.flags)
        .run()?;
    if !check.success() {
        return Err(anyhow::anyhow!(
            "rclone check {}: the copy differs from the repository (exit {}): {}",
            spec.remote,
            check.status.code().unwrap_or(-1),
            check.stderr_tail().trim()
        ));
    }
    Ok(Copied { remote: spec.remote.clone(), files, bytes, seconds, attempts, verified: true })
}

/// The modification time of the newest snapshot file on the remote (`None`: none there).
pub fn newest_snapshot(spec: &OffsiteSpec) -> anyhow::Result<Option<SystemTime>> {
    let remote = format!("{}/snapshots", spec.remote.trim_end_matches('/'));
    let done =
        Cmd::new("rclone").arg("lsjson").arg(&remote).args(&spec.flags).timeout(Duration::from_secs(300)).run()?;
    if !done.success() {
        if done.status.code() == Some(3) {
            return Ok(None);
        }
        return Err(rclone_error("lsjson", &remote, &done));
    }
    let list: Vec<serde_json::Value> = serde_json::from_slice(&done.stdout).unwrap_or_default();
    Ok(list
        .iter()
        .filter_map(|e| e["ModTime"].as_str())
        .filter_map(|t| t.parse::<jiff::Timestamp>().ok())
        .max()
        .map(SystemTime::from))
}
