//! Running external programs (rclone, pg_dump, nginx, user hooks): an argv rather than a shell
//! line where possible, a timeout after which the whole process group is killed, captured
//! stdout/stderr, and exit code 4 naming the program when it is not installed.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
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
        tracing::debug!("running {name} {}", self.args.len());
        let start = Instant::now();
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
                let secs = self.timeout.unwrap_or_default().as_secs_f64();
                return Err(anyhow::anyhow!("{name}: timed out after {secs:.1}s and was killed"));
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
            let how = match (done.status.code(), done.status.signal()) {
                (Some(c), _) => format!("exited with status {c}"),
                (None, Some(s)) => format!("was killed by signal {s}"),
                _ => "failed".to_string(),
            };
            anyhow::bail!("{} {how}: {}", self.name(), done.stderr_tail().trim());
        }
        Ok(done)
    }
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
        assert!(format!("{err}").contains("timed out after 0.3s"), "{err}");
        // A hang would last the 600 s of `sleep`; the bound is generous for a loaded machine.
        assert!(start.elapsed() < Duration::from_secs(120));
    }
}
