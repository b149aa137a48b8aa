//! The PostgreSQL server programs on the local node — `pg_ctl`, `pg_rewind`,
//! `pg_controldata` from `bin-dir` — run as the data directory's owner (`system-user`,
//! through `runuser` when we are root; postgres refuses to run as root), with argv only:
//! a password reaches `pg_rewind` through `PGPASSWORD` in its environment, never its argv.
//! Also the files a standby needs (`standby.signal`, `primary_conninfo`), written with the
//! data directory's owner.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use standby_common::exec::{self, Cmd, Finished};
use standby_common::exit::{self, Code};
use standby_common::secret::Secret;
use standby_common::state::running_as_root;

/// How long pg_ctl may wait for a start or stop, and pg_rewind for its work.
const PG_CTL_WAIT: Duration = Duration::from_secs(120);

/// The local node's server programs and data directory.
#[derive(Debug, Clone)]
pub struct PgCtl {
    pub bin_dir: PathBuf,
    pub data_dir: PathBuf,
    pub system_user: String,
}

/// Config files a rewind must not take from the source (port, socket dir, ALTER SYSTEM
/// settings and access rules are the node's own), restored after it.
const OWN_FILES: [&str; 4] = ["postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"];

impl PgCtl {
    pub fn new(bin_dir: PathBuf, data_dir: PathBuf, system_user: String) -> PgCtl {
        PgCtl { bin_dir, data_dir, system_user }
    }

    /// `program` from bin-dir (else PATH), or exit 4 naming where it was looked for.
    fn program(&self, name: &str) -> anyhow::Result<PathBuf> {
        let in_bin = self.bin_dir.join(name);
        if in_bin.is_file() {
            return Ok(in_bin);
        }
        exec::which(name).ok_or_else(|| {
            exit::error(
                Code::Unavailable,
                format!(
                    "{name}: not found in bin-dir {} nor on PATH (install postgresql-15 or set bin-dir)",
                    self.bin_dir.display()
                ),
            )
        })
    }

    /// Every program a rejoin may run is there (exit 4 naming the first missing one): checked
    /// before anything changes, not when the rewind is half done.
    pub fn require_all(&self) -> anyhow::Result<()> {
        for name in ["pg_ctl", "pg_controldata", "pg_rewind", "postgres"] {
            self.program(name)?;
        }
        Ok(())
    }

    /// A command for `name` run as the system user, in `/` (its home may be unreadable to it).
    fn cmd(&self, name: &str) -> anyhow::Result<Cmd> {
        let program = self.program(name)?;
        let cmd = if running_as_root() && self.system_user != "root" {
            let runuser = exec::require("runuser")?;
            Cmd::new(runuser).args(["-u", &self.system_user, "--"]).arg(program)
        } else {
            Cmd::new(program)
        };
        Ok(cmd.cwd("/").timeout(PG_CTL_WAIT))
    }

    fn pgdata(&self) -> &Path {
        &self.data_dir
    }

    /// True while a postmaster runs on the data directory (`pg_ctl status`: 0 running, 3 not).
    pub fn is_running(&self) -> anyhow::Result<bool> {
        let done = self.cmd("pg_ctl")?.arg("status").arg("-D").arg(self.pgdata()).run()?;
        match done.status.code() {
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => {
                Err(exit::error(Code::Failed, format!("pg_ctl status -D {}: {}", self.data_dir.display(), tail(&done))))
            }
        }
    }

    /// `pg_ctl stop -m <mode> -w`.
    pub fn stop(&self, mode: &str) -> anyhow::Result<()> {
        let done = self.cmd("pg_ctl")?.args(["stop", "-w", "-m", mode, "-t", "120", "-D"]).arg(self.pgdata()).run()?;
        if !done.success() {
            return Err(exit::error(
                Code::Failed,
                format!("pg_ctl stop -D {}: {}", self.data_dir.display(), tail(&done)),
            ));
        }
        Ok(())
    }

    /// `pg_ctl start -w`, the server's output in `<data-dir>/replica-promote-start.log`.
    pub fn start(&self) -> anyhow::Result<()> {
        let log = self.data_dir.join("replica-promote-start.log");
        let done = self
            .cmd("pg_ctl")?
            .args(["start", "-w", "-t", "120", "-D"])
            .arg(self.pgdata())
            .arg("-l")
            .arg(&log)
            .run()?;
        if !done.success() {
            let log_tail = std::fs::read_to_string(&log).map(|t| last_lines(&t, 10)).unwrap_or_default();
            return Err(exit::error(
                Code::Failed,
                format!("pg_ctl start -D {}: {}\n{log_tail}", self.data_dir.display(), tail(&done)),
            ));
        }
        Ok(())
    }

    /// Whether pg_rewind can work on this data directory: `wal_log_hints` on or data checksums
    /// (from `pg_controldata`). An error that says how to fix it otherwise.
    pub fn check_rewindable(&self) -> anyhow::Result<()> {
        let done = self.cmd("pg_controldata")?.arg("-D").arg(self.pgdata()).run()?;
        if !done.success() {
            return Err(exit::error(
                Code::Failed,
                format!("pg_controldata -D {}: {}", self.data_dir.display(), tail(&done)),
            ));
        }
        let text = done.stdout_text();
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_string()))
        };
        let hints = field("wal_log_hints setting").is_some_and(|v| v == "on");
        let checksums = field("Data page checksum version").is_some_and(|v| v != "0");
        if hints || checksums {
            return Ok(());
        }
        Err(exit::error(
            Code::Failed,
            format!(
                "pg_rewind cannot work on {}: neither wal_log_hints nor data checksums are on. Fix: set \
                 `wal_log_hints = on` in postgresql.conf on both nodes and restart them (or enable \
                 checksums with `pg_checksums --enable` while stopped); until then rebuild this node \
                 with pg_basebackup",
                self.data_dir.display()
            ),
        ))
    }

    /// `Database cluster state` from `pg_controldata` ("shut down", "in production", ...).
    pub fn cluster_state(&self) -> anyhow::Result<String> {
        let done = self.cmd("pg_controldata")?.arg("-D").arg(self.pgdata()).run_ok()?;
        Ok(done
            .stdout_text()
            .lines()
            .find_map(|l| l.strip_prefix("Database cluster state:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_default())
    }

    /// Crash recovery of a node that was not shut down cleanly (pg_rewind needs a clean
    /// shutdown): a single-user run that replays its WAL and stops. Unlike pg_rewind's own
    /// run it keeps every WAL segment (`wal_keep_size`): its end-of-recovery checkpoint would
    /// otherwise recycle the segment holding the last checkpoint common with the new
    /// primary, which pg_rewind then needs.
    pub fn crash_recover(&self) -> anyhow::Result<()> {
        let done = self
            .cmd("postgres")?
            .args(["--single", "-F", "-c", "wal_keep_size=1000000GB", "-c", "archive_mode=off", "-D"])
            .arg(self.pgdata())
            .arg("template1")
            .run()?;
        if !done.success() {
            return Err(exit::error(
                Code::Failed,
                format!("crash recovery of {} failed: {}", self.data_dir.display(), tail(&done)),
            ));
        }
        Ok(())
    }

    /// `pg_rewind --target-pgdata <data-dir> --source-server <conninfo>`, keeping the node's
    /// own config files. The password goes through `PGPASSWORD`.
    pub fn rewind(&self, source_conninfo: &str, password: Option<&Secret>) -> anyhow::Result<Finished> {
        let kept: Vec<(PathBuf, Vec<u8>)> = OWN_FILES
            .iter()
            .map(|f| self.data_dir.join(f))
            .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
            .collect();
        let mut cmd = self
            .cmd("pg_rewind")?
            .arg("--target-pgdata")
            .arg(self.pgdata())
            .arg("--source-server")
            .arg(source_conninfo)
            .arg("--progress")
            .arg("--no-ensure-shutdown");
        if let Some(p) = password {
            cmd = cmd.env("PGPASSWORD", p.expose());
        }
        let result = cmd.run();
        for (path, bytes) in &kept {
            self.write_owned(path, bytes)?;
        }
        let done = result?;
        if !done.success() {
            return Err(exit::error(
                Code::Failed,
                format!("pg_rewind of {} failed: {}", self.data_dir.display(), tail(&done)),
            ));
        }
        Ok(done)
    }

    /// Make the node a standby of `primary_conninfo` through slot `slot`: `standby.signal`,
    /// and `primary_conninfo` / `primary_slot_name` in `postgresql.auto.conf` (other lines kept).
    pub fn write_standby_config(&self, primary_conninfo: &str, slot: &str) -> anyhow::Result<()> {
        self.write_owned(&self.data_dir.join("standby.signal"), b"")?;
        let auto = self.data_dir.join("postgresql.auto.conf");
        let old = std::fs::read_to_string(&auto).unwrap_or_default();
        let mut text: String = old
            .lines()
            .filter(|l| {
                let key = l.split('=').next().unwrap_or("").trim();
                key != "primary_conninfo" && key != "primary_slot_name"
            })
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!("primary_conninfo = '{}'\n", quote(primary_conninfo)));
        text.push_str(&format!("primary_slot_name = '{}'\n", quote(slot)));
        self.write_owned(&auto, text.as_bytes())
    }

    /// Write a file in the data directory, owned by the data directory's owner.
    fn write_owned(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        let meta = std::fs::metadata(&self.data_dir).with_context(|| format!("{}", self.data_dir.display()))?;
        if running_as_root() {
            std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()))
                .with_context(|| format!("cannot chown {}", path.display()))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        Ok(())
    }

    /// `Latest checkpoint location` of a stopped (or running) node, from `pg_controldata`.
    pub fn latest_checkpoint(&self) -> anyhow::Result<crate::lsn::Lsn> {
        let done = self.cmd("pg_controldata")?.arg("-D").arg(self.pgdata()).run_ok()?;
        let text = done.stdout_text();
        text.lines()
            .find_map(|l| l.strip_prefix("Latest checkpoint location:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| exit::error(Code::Failed, "pg_controldata shows no latest checkpoint location"))
    }
}

/// A value inside single quotes in postgresql.conf.
fn quote(value: &str) -> String {
    value.replace('\'', "''")
}

fn tail(done: &Finished) -> String {
    let err = done.stderr_tail();
    let text = if err.trim().is_empty() { last_lines(&done.stdout_text(), 10) } else { err };
    format!("{} ({})", text.trim(), done.status)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A conninfo for `primary_conninfo`: the peer's, without any password (the standby's
/// password comes from the system user's `~/.pgpass`, not from a file we write).
pub fn conninfo_without_password(conninfo: &str) -> String {
    if let Ok(mut url) = url::Url::parse(conninfo) {
        if url.has_host() || conninfo.starts_with("postgres") {
            let _ = url.set_password(None);
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != "password")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.set_query(None);
            if !pairs.is_empty() {
                url.query_pairs_mut().extend_pairs(pairs);
            }
            return url.to_string();
        }
    }
    conninfo.split_whitespace().filter(|w| !w.starts_with("password=")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_conninfo_never_holds_the_password() {
        assert_eq!(
            conninfo_without_password("host=192.0.2.5 password=hunter2 user=postgres"),
            "host=192.0.2.5 user=postgres"
        );
        let url =
            conninfo_without_password("postgres://postgres:hunter2@192.0.2.5:5432/postgres?password=x&sslmode=require");
        assert!(!url.contains("hunter2") && !url.contains("password"), "{url}");
        assert!(url.contains("sslmode=require"), "{url}");
        assert_eq!(quote("it's"), "it''s");
    }
}
