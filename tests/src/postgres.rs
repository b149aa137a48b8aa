//! PostgreSQL 15: a primary, or a primary with a streaming standby, in temp dirs.
//!
//! The `postgres` binary runs in the foreground as a child of the test process (not through
//! `pg_ctl`), as the unprivileged user `standby-test` when the tests run as root.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::ports::{free_port, retry_on_clash};
use crate::process::{pid_alive, run_checked, wait_until, ServerProcess};
use crate::util;

/// The unprivileged user that runs postgres when the tests run as root.
pub const SERVER_USER: &str = "standby-test";

const PG_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of a PostgreSQL 15 program: `/usr/lib/postgresql/15/bin/<name>` when it exists,
/// else the first `<name>` on PATH, else just `<name>`.
pub fn pg_bin(name: &str) -> PathBuf {
    let versioned = Path::new(PG_BIN_DIR).join(name);
    if versioned.is_file() {
        return versioned;
    }
    standby_common::exec::which(name).unwrap_or_else(|| PathBuf::from(name))
}

/// `(uid, gid)` to run postgres as: `standby-test` when root, `None` (this user) otherwise.
pub fn server_user() -> anyhow::Result<Option<(u32, u32)>> {
    static USER: OnceLock<Result<Option<(u32, u32)>, String>> = OnceLock::new();
    USER.get_or_init(|| {
        if !util::is_root() {
            return Ok(None);
        }
        let id = |flag: &str| -> Result<u32, String> {
            let out =
                Command::new("id").args([flag, SERVER_USER]).output().map_err(|e| format!("cannot run `id`: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "postgres refuses to run as root and user {SERVER_USER} does not exist \
                     (create it with `useradd -m {SERVER_USER}`): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|e| format!("`id {flag} {SERVER_USER}`: {e}"))
        };
        Ok(Some((id("-u")?, id("-g")?)))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// The name of the user the servers run as (`standby-test` when root, else this user): what
/// a tool's `system-user` setting names for `pg_ctl` / `pg_rewind`.
pub fn server_user_name() -> String {
    if util::is_root() {
        return SERVER_USER.to_string();
    }
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_default())
}

/// One PostgreSQL server: its own temp dir (data dir, socket dir, log), port and process.
/// Dropping it stops the server (fast shutdown, then SIGKILL) and removes the temp dir.
pub struct PgServer {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// The data directory (mode 0700, owned by the server user).
    pub data_dir: PathBuf,
    /// `unix_socket_directories`.
    pub socket_dir: PathBuf,
    /// The server's stdout/stderr.
    pub log_path: PathBuf,
    user: Option<(u32, u32)>,
    process: Option<ServerProcess>,
    name: String,
    dir: Option<tempfile::TempDir>,
}

impl PgServer {
    /// A fresh temp dir with an empty data dir and socket dir owned by the server user.
    fn prepare(name: &str) -> anyhow::Result<PgServer> {
        let user = server_user()?;
        let dir = util::temp_dir(&format!("pg-{name}"))?;
        let data_dir = dir.path().join("data");
        let socket_dir = dir.path().join("sock");
        for (path, mode) in [(&data_dir, 0o700), (&socket_dir, 0o755)] {
            std::fs::create_dir(path).with_context(|| format!("mkdir {}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .with_context(|| format!("chown {}", path.display()))?;
            }
        }
        Ok(PgServer {
            port: 0,
            log_path: dir.path().join("postgres.log"),
            data_dir,
            socket_dir,
            user,
            process: None,
            name: name.to_string(),
            dir: Some(dir),
        })
    }

    /// A command for `program` that runs as the user owning the data dir (so `pg_ctl`,
    /// `pg_rewind`, `pg_basebackup` work when the tests run as root), in the temp dir, with
    /// `HOME` there and no `PG*` variables inherited from the environment (initdb and
    /// postgres read `PGPORT`, for one).
    pub fn owner_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir.path()).env("HOME", dir.path());
        }
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// libpq connection string for this server.
    pub fn conninfo(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    /// Runs one SQL string with psql (`-X -A -t -q -v ON_ERROR_STOP=1 -c`) and returns its
    /// trimmed stdout: rows one per line, columns separated by `|`.
    pub fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let mut cmd = Command::new(pg_bin("psql"));
        cmd.args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5");
        let out = run_checked(cmd, HELPER_TIMEOUT).with_context(|| format!("psql on port {}", self.port))?;
        Ok(out.trim().to_string())
    }

    /// `select pg_is_in_recovery()`.
    pub fn is_in_recovery(&self) -> anyhow::Result<bool> {
        match self.psql("select pg_is_in_recovery()")?.as_str() {
            "t" => Ok(true),
            "f" => Ok(false),
            other => bail!("unexpected pg_is_in_recovery() answer {other:?}"),
        }
    }

    /// PID of the postmaster while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// True while the postmaster runs.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ServerProcess::is_running)
    }

    /// Kills the postmaster and all its children with SIGKILL at once, like a power cut.
    pub fn stop_immediate(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Fast shutdown (SIGINT), SIGKILL after a few seconds.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Stops a postmaster that another program started on this data dir (a tool's
    /// `pg_ctl start`): SIGQUIT (immediate shutdown), SIGKILL if it is still there after a few
    /// seconds. Nothing happens when no live postmaster is named in `postmaster.pid`.
    pub fn stop_external(&mut self) {
        let pid_file = self.data_dir.join("postmaster.pid");
        let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
        else {
            return;
        };
        if self.pid() == Some(pid) || !pid_alive(pid) {
            return;
        }
        let _ = crate::sys::kill(pid, libc::SIGQUIT);
        if !wait_until(Duration::from_secs(5), || !pid_alive(pid)) {
            let _ = crate::sys::kill(pid, libc::SIGKILL);
            wait_until(Duration::from_secs(5), || !pid_alive(pid));
        }
    }

    /// Starts the server again on the same port and data dir; returns when it accepts
    /// connections (a standby: read-only connections).
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            bail!("postgres {} on port {} is already running", self.name, self.port);
        }
        let mut cmd = self.owner_command(pg_bin("postgres"));
        cmd.arg("-D").arg(&self.data_dir);
        let mut process = ServerProcess::spawn(cmd, &self.name, self.log_path.clone())?;
        process.set_stop_signal(libc::SIGINT);
        let pid = process.pid();
        let pid_file = self.data_dir.join("postmaster.pid");
        process.wait_ready(START_TIMEOUT, || postmaster_ready(&pid_file, pid))?;
        self.process = Some(process);
        Ok(())
    }

    /// Starts on a fresh port; on a port clash (another program took it), tries new ports.
    fn start_on_free_port(&mut self) -> anyhow::Result<()> {
        retry_on_clash("postgres", "could not bind", || {
            self.port = free_port();
            self.append_conf(&format!("port = {}\n", self.port))?;
            self.start()
        })
    }

    fn append_conf(&self, text: &str) -> anyhow::Result<()> {
        append(&self.data_dir.join("postgresql.conf"), text)
    }

    /// The settings every server gets (the standby inherits them through pg_basebackup and
    /// then gets its own socket dir and port appended).
    fn base_conf(&self) -> String {
        let mut conf = String::from("\n# standby-e2e\n");
        let _ = writeln!(conf, "listen_addresses = '127.0.0.1'");
        let _ = writeln!(conf, "unix_socket_directories = '{}'", self.socket_dir.display());
        conf.push_str(
            "wal_level = replica\n\
             max_wal_senders = 5\n\
             max_replication_slots = 5\n\
             wal_log_hints = on\n\
             hot_standby = on\n\
             fsync = off\n\
             synchronous_commit = off\n\
             shared_buffers = 16MB\n\
             max_connections = 30\n\
             wal_retrieve_retry_interval = 200ms\n\
             wal_receiver_status_interval = 1s\n\
             log_min_messages = warning\n",
        );
        conf
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        self.stop_external();
        // The temp dir goes only after the server has stopped writing to it.
        drop(self.dir.take());
    }
}

/// True when postmaster.pid names `pid` and says "ready" (primary) or "standby" (hot
/// standby accepting read-only connections). A file left by a killed server names another
/// PID and does not count.
fn postmaster_ready(pid_file: &Path, pid: u32) -> bool {
    let Ok(text) = std::fs::read_to_string(pid_file) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().and_then(|l| l.trim().parse::<u32>().ok()) == Some(pid)
        && lines.get(7).is_some_and(|status| matches!(status.trim(), "ready" | "standby"))
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file =
        std::fs::OpenOptions::new().append(true).open(path).with_context(|| format!("open {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("append to {}", path.display()))
}

/// initdb + start: a primary with `wal_level=replica`, replication allowed from
/// 127.0.0.1 and trust auth for user `postgres`.
pub fn start_primary() -> anyhow::Result<PgServer> {
    let mut server = PgServer::prepare("primary")?;
    let mut initdb = server.owner_command(pg_bin("initdb"));
    initdb
        .arg("-D")
        .arg(&server.data_dir)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
        .args(["--no-sync", "--no-instructions"]);
    run_checked(initdb, HELPER_TIMEOUT).context("initdb")?;
    server.append_conf(&server.base_conf())?;
    append(&server.data_dir.join("pg_hba.conf"), "\nhost replication postgres 127.0.0.1/32 trust\n")?;
    server.start_on_free_port()?;
    Ok(server)
}

/// A primary and a standby streaming from it through physical replication slot `s1`
/// (`pg_basebackup -R -S s1`); returns once `pg_stat_replication` on the primary shows the
/// standby streaming.
pub fn start_primary_with_standby() -> anyhow::Result<(PgServer, PgServer)> {
    let primary = start_primary()?;
    primary.psql("select pg_create_physical_replication_slot('s1')")?;
    let mut standby = PgServer::prepare("standby")?;
    let mut basebackup = standby.owner_command(pg_bin("pg_basebackup"));
    basebackup
        .args(["-h", "127.0.0.1", "-p", &primary.port.to_string(), "-U", "postgres"])
        .arg("-D")
        .arg(&standby.data_dir)
        .args(["-R", "-S", "s1", "-X", "stream", "--checkpoint=fast", "--no-sync"]);
    run_checked(basebackup, HELPER_TIMEOUT).context("pg_basebackup")?;
    standby.append_conf(&format!(
        "\n# standby-e2e standby\nunix_socket_directories = '{}'\n",
        standby.socket_dir.display()
    ))?;
    standby.start_on_free_port()?;
    let streaming = wait_until(START_TIMEOUT, || {
        primary.psql("select count(*) from pg_stat_replication where state = 'streaming'").is_ok_and(|n| n != "0")
    });
    if !streaming {
        bail!(
            "the standby on port {} is not streaming from the primary on port {}\n\
             --- standby log ---\n{}",
            standby.port,
            primary.port,
            crate::process::log_tail(&standby.log_path, 30)
        );
    }
    Ok((primary, standby))
}
