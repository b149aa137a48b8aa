//! A real SMTP server on loopback: aiosmtpd (from PyPI; `scripts/install-deps.sh` installs it)
//! with its Maildir handler, optionally offering STARTTLS with a self-signed certificate —
//! for the email notifier's tests. Messages land as files in a Maildir the test reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, ServerProcess};

/// A running aiosmtpd; stopped when dropped.
pub struct Smtp {
    pub port: u16,
    /// The certificate the server presents when it offers STARTTLS.
    pub cert: Option<PathBuf>,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
    _server: ServerProcess,
}

impl Smtp {
    /// Plain SMTP (no STARTTLS offered).
    pub fn start() -> anyhow::Result<Smtp> {
        Smtp::launch(false)
    }

    /// SMTP that offers STARTTLS and requires it before any mail (aiosmtpd's default).
    pub fn start_tls() -> anyhow::Result<Smtp> {
        Smtp::launch(true)
    }

    fn launch(tls: bool) -> anyhow::Result<Smtp> {
        let dir = tempfile::tempdir()?;
        let maildir = dir.path().join("mail");
        let port = crate::ports::free_port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        let cert = if tls {
            let (cert, key) = crate::tls::self_signed(dir.path(), "localhost", 30)?;
            cmd.arg("--tlscert").arg(&cert).arg("--tlskey").arg(&key);
            Some(cert)
        } else {
            None
        };
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(&maildir);
        let mut server = ServerProcess::spawn(cmd, "aiosmtpd", dir.path().join("aiosmtpd.log"))?;
        server.wait_ready(Duration::from_secs(60), || process::port_open(port))?;
        Ok(Smtp { port, cert, maildir, _dir: dir, _server: server })
    }

    /// `127.0.0.1:PORT`.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The messages delivered so far, raw (headers and body), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .flat_map(|d| std::fs::read_dir(self.maildir.join(d)).into_iter().flatten().flatten())
            .map(|e| e.path())
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
    }

    /// Wait until at least `n` messages arrived; returns them.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        process::wait_until(Duration::from_secs(60), || self.messages().len() >= n);
        self.messages()
    }

    pub fn maildir(&self) -> &Path {
        &self.maildir
    }
}
