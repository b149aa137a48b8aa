//! Running external programs (rclone, pg_dump, nginx, user hooks): an argv rather than a shell
//! line where possible, a timeout after which the whole process group is killed, captured
//! stdout/stderr, and exit code 4 naming the program when it is not installed.
//!
//! Two forms: [`Cmd::run`] buffers the whole output; [`Cmd::stream`] hands stdout to the caller
//! as a [`Read`]er (`pg_dump` of gigabytes piped into a repository) with the same rules, and
//! keeps only the tail of stderr.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::exit::{self, Code};

/// A program to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

/// A program that ran to the end (whatever its exit status).
#[derive(Debug, Clone)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// The last lines of stderr, for an error message.
    pub fn stderr_tail(&self) -> String {
        tail(&String::from_utf8_lossy(&self.stderr), 20)
    }
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            timeout: None,
        }
    }

    /// A user-written hook line, run by `/bin/sh -c`.
    pub fn shell(line: &str) -> Self {
        Cmd::new("/bin/sh").arg("-c").arg(line)
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Set an env var for the child (use this for secrets such as `PGPASSWORD`: they are
    /// never part of the argv, which other users can see in `ps`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The program's name, for messages.
    pub fn name(&self) -> String {
        Path::new(&self.program).file_name().unwrap_or(&self.program).to_string_lossy().into_owned()
    }

    /// Run to the end. Errors: not installed (exit 4), timed out (exit 1, the process group
    /// killed). A non-zero exit status is not an error here; see [`Cmd::run_ok`].
    pub fn run(&self) -> anyhow::Result<Finished> {
        let name = self.name();
        let start = Instant::now();
        let mut child = self.spawn()?;
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        let deadline = self.timeout.map(|t| start + t);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                kill_group(child.id());
                let _ = child.wait();
                return Err(timed_out(&name, self.timeout.unwrap_or_default()));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(Finished {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
            elapsed: start.elapsed(),
        })
    }

    /// Run, and turn a non-zero exit status into an error carrying the end of stderr.
    pub fn run_ok(&self) -> anyhow::Result<Finished> {
        let done = self.run()?;
        if !done.success() {
            return Err(failed(&self.name(), done.status, &done.stderr_tail()));
        }
        Ok(done)
    }

    /// Start the program and hand its stdout to the caller as a reader, for output too large
    /// to hold in memory. Read it to the end, then call [`Streaming::finish`] for the status:
    /// a non-zero exit is an error carrying the tail of stderr. stderr is drained by a thread
    /// (only its last [`STDERR_TAIL_BYTES`] kept), so the child never blocks on a full pipe.
    /// The timeout covers the whole run, reading included: when it passes, the process group is
    /// killed, the reader reports an error and `finish` says the program timed out. Errors at
    /// start: not installed (exit 4).
    pub fn stream(&self) -> anyhow::Result<Streaming> {
        let name = self.name();
        let start = Instant::now();
        let mut child = self.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("{name}: no stdout pipe"))?;
        let stderr = drain_tail(child.stderr.take(), STDERR_TAIL_BYTES);
        let timed_out = Arc::new(AtomicBool::new(false));
        let watchdog = self.timeout.map(|timeout| {
            let (stop, stopped) = mpsc::channel::<()>();
            let flag = Arc::clone(&timed_out);
            let pid = child.id();
            // The child is reaped only after this thread is stopped (see `Streaming::reap`), so
            // its pid, and with it the process group id, cannot be reused while we may kill it.
            let thread = std::thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
                    flag.store(true, Ordering::SeqCst);
                    kill_group(pid);
                }
            });
            (stop, thread)
        });
        Ok(Streaming {
            name,
            timeout: self.timeout.unwrap_or_default(),
            start,
            child: Some(child),
            stdout: Some(stdout),
            stderr: Some(stderr),
            watchdog,
            timed_out,
            has_timeout: self.timeout.is_some(),
            bytes: 0,
        })
    }

    /// Spawn with piped stdout/stderr in a new process group; exit 4 when not installed.
    fn spawn(&self) -> anyhow::Result<Child> {
        let name = self.name();
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        tracing::debug!("running {name} with {} argument(s)", self.args.len());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(exit::error(
                    Code::Unavailable,
                    format!("{name}: not installed (not found on PATH); install it and retry"),
                ));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot start {name}")),
        };
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || pipe.write_all(&bytes));
        }
        Ok(child)
    }
}

/// How much of stderr a streamed program keeps for its error message.
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// A running program whose stdout is read through this value ([`Read`]). Dropping it before
/// [`Streaming::finish`] kills the process group and reaps the child.
pub struct Streaming {
    name: String,
    timeout: Duration,
    start: Instant,
    child: Option<Child>,
    stdout: Option<ChildStdout>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    watchdog: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    timed_out: Arc<AtomicBool>,
    has_timeout: bool,
    bytes: u64,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming").field("name", &self.name).field("bytes", &self.bytes).finish_non_exhaustive()
    }
}

/// A streamed program that exited with status 0.
#[derive(Debug, Clone)]
pub struct Streamed {
    pub status: ExitStatus,
    /// The bytes the caller read from stdout.
    pub bytes: u64,
    /// The last [`STDERR_TAIL_BYTES`] of stderr (warnings a successful program printed).
    pub stderr_tail: Vec<u8>,
    pub elapsed: Duration,
}

impl Streaming {
    /// The program's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes read from stdout so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Wait for the program after reading its output. Closes stdout first, so a program whose
    /// output was not read to the end gets a broken pipe instead of blocking. Errors: timed out
    /// (naming the program and the timeout), a non-zero exit status or a signal (with the tail
    /// of stderr).
    pub fn finish(mut self) -> anyhow::Result<Streamed> {
        let (status, stderr) = self.reap()?;
        if self.timed_out.load(Ordering::SeqCst) {
            return Err(timed_out(&self.name, self.timeout));
        }
        if !status.success() {
            return Err(failed(&self.name, status, &tail(&String::from_utf8_lossy(&stderr), 20)));
        }
        Ok(Streamed { status, bytes: self.bytes, stderr_tail: stderr, elapsed: self.start.elapsed() })
    }

    /// Alias of [`Streaming::finish`].
    pub fn wait(self) -> anyhow::Result<Streamed> {
        self.finish()
    }

    fn reap(&mut self) -> anyhow::Result<(ExitStatus, Vec<u8>)> {
        drop(self.stdout.take());
        let mut child = self.child.take().ok_or_else(|| anyhow::anyhow!("{}: already finished", self.name))?;
        // From here on this thread is the only one that kills, and it kills only before the
        // child is reaped, so the process group id cannot have been reused.
        self.stop_watchdog();
        let deadline = self.deadline();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.timed_out.store(true, Ordering::SeqCst);
                kill_group(child.id());
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        Ok((status, stderr))
    }

    fn deadline(&self) -> Option<Instant> {
        self.has_timeout.then(|| self.start + self.timeout)
    }

    fn stop_watchdog(&mut self) {
        if let Some((stop, thread)) = self.watchdog.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Read for Streaming {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(0);
        };
        let n = stdout.read(buf)?;
        if n == 0 && self.timed_out.load(Ordering::SeqCst) {
            let secs = self.timeout.as_secs_f64();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{}: timed out after {secs:.1}s and was killed", self.name),
            ));
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Not finished: the caller gave up on the program. Kill it before reaping.
            kill_group(child.id());
            self.stop_watchdog();
            let _ = child.wait();
        }
    }
}

fn timed_out(name: &str, timeout: Duration) -> anyhow::Error {
    let secs = timeout.as_secs_f64();
    anyhow::anyhow!("{name}: timed out after {secs:.1}s and was killed")
}

fn failed(name: &str, status: ExitStatus, stderr_tail: &str) -> anyhow::Error {
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "failed".to_string(),
    };
    anyhow::anyhow!("{name} {how}: {}", stderr_tail.trim())
}

/// Find a program on PATH (or check an explicit path): exit 4 naming it when missing.
pub fn require(program: &str) -> anyhow::Result<PathBuf> {
    which(program)
        .ok_or_else(|| exit::error(Code::Unavailable, format!("{program}: not installed (not found on PATH)")))
}

/// The full path of `program` if it can be run.
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = PathBuf::from(program);
        return runnable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(program)).find(|p| runnable(p))
}

/// Read a pipe to its end in a thread, keeping only its last `keep` bytes.
fn drain_tail(pipe: Option<impl Read + Send + 'static>, keep: usize) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 8192];
        if let Some(mut p) = pipe {
            loop {
                match p.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&chunk[..n]);
                        if kept.len() > 2 * keep {
                            kept.drain(..kept.len() - keep);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        if kept.len() > keep {
            kept.drain(..kept.len() - keep);
        }
        kept
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

#[allow(unsafe_code)]
fn kill_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for the child
    // (process_group(0) above); it touches no memory of ours.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_is_code_4_and_named() {
        let err = Cmd::new("standby-no-such-program").run().unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Unavailable);
        assert!(format!("{err}").starts_with("standby-no-such-program: not installed"));
        let err = require("standby-no-such-program").unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Unavailable);
        assert!(require("sh").is_ok());
    }

    #[test]
    fn captures_output_env_and_stdin() {
        let done = Cmd::shell("read x; echo \"$x-$GREETING\"; echo oops >&2; exit 3")
            .env("GREETING", "hi")
            .stdin("in\n")
            .run()
            .unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(done.stdout_text(), "in-hi\n");
        assert_eq!(done.stderr_tail(), "oops");
        let err = Cmd::shell("echo bad >&2; exit 3").run_ok().unwrap_err();
        assert_eq!(format!("{err}"), "sh exited with status 3: bad");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let start = Instant::now();
        // The grandchild `sleep` holds stdout open: without killing the group we would hang.
        let err = Cmd::shell("sleep 600 & sleep 600").timeout(Duration::from_millis(300)).run().unwrap_err();
        assert!(format!("{err}").contains("sh: timed out after 0.3s"), "{err}");
        // A hang would last the 600 s of `sleep`; the bound is generous for a loaded machine.
        assert!(start.elapsed() < Duration::from_secs(120));
    }
}
