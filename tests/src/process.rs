//! Server child processes that die with the test process, and polling helpers.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::sys;

/// How long [`ServerProcess::stop`] waits after the stop signal before it kills the group.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// A server running as a child of the test process.
///
/// It runs in its own process group and gets SIGKILL if the test process dies
/// (`PR_SET_PDEATHSIG`). Because PDEATHSIG reaches only the server's main process (nginx
/// workers would survive their master), a watchdog `sh` waits on a pipe from the test
/// process and SIGKILLs the whole group when that pipe closes, i.e. when the test process
/// dies in any way. So a crashed or killed test leaves no server behind.
///
/// Dropping it stops the server: the stop signal (SIGTERM unless
/// [`ServerProcess::set_stop_signal`] changed it), up to [`STOP_TIMEOUT`], then SIGKILL to
/// the whole group, and the child is reaped.
pub struct ServerProcess {
    child: Child,
    watchdog: Option<Child>,
    pid: u32,
    name: String,
    log: PathBuf,
    stop_signal: i32,
}

impl ServerProcess {
    /// Starts `cmd` with stdin from /dev/null and stdout + stderr appended to `log`.
    pub fn spawn(mut cmd: Command, name: &str, log: PathBuf) -> anyhow::Result<ServerProcess> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("{name}: cannot open log file {}", log.display()))?;
        let err = out.try_clone().with_context(|| format!("{name}: cannot duplicate log file handle"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        sys::kill_when_parent_dies(&mut cmd);
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = spawn_from_spawner_thread(cmd).with_context(|| format!("{name}: cannot start {program}"))?;
        let pid = child.id();
        Ok(ServerProcess {
            pid,
            child,
            watchdog: start_watchdog(pid),
            name: name.to_string(),
            log,
            stop_signal: libc::SIGTERM,
        })
    }

    /// Process id of the server (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given to [`ServerProcess::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that receives the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The signal [`ServerProcess::stop`] sends first (postgres wants SIGINT: fast shutdown).
    pub fn set_stop_signal(&mut self, signal: i32) {
        self.stop_signal = signal;
    }

    /// True while the server process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the server: stop signal, wait up to [`STOP_TIMEOUT`], then SIGKILL to the group;
    /// reaps it and kills anything still left in its process group. Idempotent.
    pub fn stop(&mut self) {
        if self.is_running() {
            let _ = sys::kill(self.pid, self.stop_signal);
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match self.child.try_wait() {
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Ok(None) => {
                        let _ = sys::kill_group(self.pid, libc::SIGKILL);
                        let _ = self.child.wait();
                        break;
                    }
                    Ok(Some(_)) | Err(_) => break,
                }
            }
        }
        self.kill_stragglers();
    }

    /// SIGKILL to the whole process group at once, like a power cut; reaps the server.
    pub fn kill(&mut self) {
        if self.is_running() {
            let _ = sys::kill_group(self.pid, libc::SIGKILL);
            let _ = self.child.wait();
        }
        self.kill_stragglers();
    }

    fn kill_stragglers(&mut self) {
        // While any process still has this process group, Linux does not hand out the PID
        // again, so the group is still ours.
        if group_alive(self.pid) {
            let _ = sys::kill_group(self.pid, libc::SIGKILL);
            wait_until(Duration::from_secs(2), || !group_alive(self.pid));
        }
        // Kill the watchdog before its pipe closes (wait() closes it), so it never signals
        // a process group id that might be reused later.
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// The last `lines` lines of the log file.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// An error that names the server and carries the tail of its log.
    pub fn error(&self, what: &str) -> anyhow::Error {
        anyhow!("{}: {what}\n--- last lines of {} ---\n{}", self.name, self.log.display(), self.log_tail(40))
    }

    /// Polls `ready` until it returns true. Fails, with the tail of the log, when the
    /// process exits first or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.error(&format!("exited during start-up ({status})")));
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.error(&format!("not ready after {timeout:?}")));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns every server from one thread that lives as long as the process: PDEATHSIG fires
/// when the *thread* that forked the child exits, and test threads (or a tokio blocking
/// pool thread) end long before the servers they started are meant to.
fn spawn_from_spawner_thread(cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("standby-e2e-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(spawner) = spawner else {
        return Err(std::io::Error::other("cannot start the spawner thread"));
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner.send((cmd, reply_tx)).map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    reply_rx.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// `sh` in its own process group, reading a pipe whose write end only this process holds:
/// when the test process dies the read ends and the watchdog SIGKILLs group `pgid`.
/// Best effort: without it the server still gets PDEATHSIG.
fn start_watchdog(pgid: u32) -> Option<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read _ignored; kill -9 -{pgid} 2>/dev/null"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
}

/// The last `lines` lines (at most 16 KiB) of a file; a note when it cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let mut text = Vec::new();
    let read = File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))?;
        f.read_to_end(&mut text)
    });
    if let Err(e) = read {
        return format!("(cannot read {}: {e})", path.display());
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `condition` (quickly at first, then every 25 ms) until it is true or `timeout`
/// passes. Returns whether it became true.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// True when a TCP connection to 127.0.0.1:`port` succeeds.
pub fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    if wait_until(timeout, || port_open(port)) {
        Ok(())
    } else {
        bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}")
    }
}

/// True when process `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

/// True when any live (non-zombie) process is in process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| parse_stat(&stat))
            .is_some_and(|(state, pgrp)| pgrp == pgid && !matches!(state, 'Z' | 'X'))
    })
}

/// (state, pgrp) from /proc/PID/stat; the command name may contain spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// Runs a short-lived helper command, capturing its output; kills it after `timeout`.
/// The exit status is not checked (see [`run_checked`]).
pub fn run_output(mut cmd: Command, timeout: Duration) -> anyhow::Result<Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.with_context(|| format!("waiting for {program}")),
        Err(_) => {
            let _ = sys::kill(pid, libc::SIGKILL);
            let output = rx.recv().ok().and_then(Result::ok);
            let stderr = output.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
            bail!("{program} did not finish within {timeout:?}; stderr: {stderr}")
        }
    }
}

/// Runs a helper command like [`run_output`] and returns its stdout; fails with its stderr
/// and stdout when it exits non-zero.
pub fn run_checked(cmd: Command, timeout: Duration) -> anyhow::Result<String> {
    let line = describe(&cmd);
    let output = run_output(cmd, timeout)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("`{line}` failed ({}):\n{}{}", output.status, String::from_utf8_lossy(&output.stderr), stdout);
    }
    Ok(stdout)
}

/// The command line, for error messages.
pub fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
