//! A real SMTP server on loopback: aiosmtpd (from PyPI; `scripts/install-deps.sh` installs it)
//! with its Maildir handler, optionally offering STARTTLS with a self-signed certificate —
//! for the email notifier's tests. Messages land as files in a Maildir the test reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, ServerProcess};

/// aiosmtpd with STARTTLS required and a login checked against `$SMTP_USER`/`$SMTP_PASSWORD`;
/// argv: port, maildir, certificate, key.
const LOGIN_SERVER: &str = r#"
import os, ssl, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) \
        and data.login == os.environ["SMTP_USER"].encode() \
        and data.password == os.environ["SMTP_PASSWORD"].encode()
    return AuthResult(success=ok, handled=False, message=None if ok else "535 5.7.8 Authentication credentials invalid")

tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(cert, key)
Controller(Mailbox(maildir), hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
           authenticator=authenticator, auth_required=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

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

    /// SMTPS: TLS from the first byte (port 465 style).
    pub fn start_smtps() -> anyhow::Result<Smtp> {
        Smtp::launch_with("--smtpscert", "--smtpskey")
    }

    /// SMTP that requires STARTTLS and then a login (`AUTH PLAIN`/`LOGIN`) as `user`/`password`
    /// before any mail: aiosmtpd's `Controller` with an authenticator (Python below).
    pub fn start_with_login(user: &str, password: &str) -> anyhow::Result<Smtp> {
        let dir = tempfile::tempdir()?;
        let maildir = dir.path().join("mail");
        let port = crate::ports::free_port();
        let (cert, key) = crate::tls::self_signed(dir.path(), "localhost", 30)?;
        let mut cmd = Command::new("python3");
        cmd.args(["-c", LOGIN_SERVER, &port.to_string()]).arg(&maildir).arg(&cert).arg(&key);
        cmd.env("SMTP_USER", user).env("SMTP_PASSWORD", password);
        let mut server = ServerProcess::spawn(cmd, "aiosmtpd", dir.path().join("aiosmtpd.log"))?;
        server.wait_ready(Duration::from_secs(60), || process::port_open(port))?;
        Ok(Smtp { port, cert: Some(cert), maildir, _dir: dir, _server: server })
    }

    fn launch(tls: bool) -> anyhow::Result<Smtp> {
        if tls {
            Smtp::launch_with("--tlscert", "--tlskey")
        } else {
            Smtp::launch_with("", "")
        }
    }

    /// aiosmtpd's CLI; with a certificate given by the flags `cert_flag` and `key_flag`.
    fn launch_with(cert_flag: &str, key_flag: &str) -> anyhow::Result<Smtp> {
        let tls = !cert_flag.is_empty();
        let dir = tempfile::tempdir()?;
        let maildir = dir.path().join("mail");
        let port = crate::ports::free_port();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        let cert = if tls {
            let (cert, key) = crate::tls::self_signed(dir.path(), "localhost", 30)?;
            cmd.arg(cert_flag).arg(&cert).arg(key_flag).arg(&key);
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
