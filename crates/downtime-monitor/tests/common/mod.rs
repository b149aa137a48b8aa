//! What the downtime-monitor binary tests share: a temp dir with a config (`Env`), the
//! binary run in it, a `watch` daemon killed on drop, and deadlines for events.

#![allow(dead_code)] // each test file uses its own part

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use standby_e2e::webhook::Webhook;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    /// A config with `body` (targets etc.) under [downtime-monitor] and an optional webhook.
    pub fn new(body: &str, webhook: Option<&Webhook>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("[downtime-monitor]\nvantage = \"test\"\n{body}\n");
        if let Some(w) = webhook {
            text.push_str(&format!("\n[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\n", w.url("/alert")));
        }
        let config = dir.path().join("standby.toml");
        std::fs::write(&config, text).unwrap();
        Env { dir, config }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_downtime-monitor"));
        c.arg("--config").arg(&self.config).arg("--state-dir").arg(self.dir.path().join("state"));
        c.args(args).env_remove("STANDBY_CONFIG").env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn code(&self, args: &[&str]) -> i32 {
        let out = self.run(args);
        out.status.code().unwrap_or(-1)
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.code().is_some(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        })
    }

    /// `watch` in the background; its log goes to `watch.log` in the temp dir.
    pub fn watch(&self, extra: &[&str]) -> Daemon {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("watch.log")).unwrap();
        let child = self.cmd(&[&["watch"], extra].concat()).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        Daemon(Some(child))
    }

    /// `status --json`, or None while it cannot answer (no database yet).
    pub fn status(&self) -> Option<serde_json::Value> {
        let out = self.run(&["status", "--json"]);
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The target `name` in `status --json`, once there is one.
    pub fn status_of(&self, name: &str) -> Option<serde_json::Value> {
        let out = self.run(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["targets"].as_array()?.iter().find(|t| t["target"] == name).cloned()
    }

    /// The health of the first target in `status`, once there is one.
    pub fn health(&self) -> Option<String> {
        self.status()?["targets"][0]["health"].as_str().map(str::to_string)
    }
}

/// A `watch` daemon started by a test: killed on drop, so a failed assertion leaves none
/// running.
pub struct Daemon(Option<Child>);

impl Daemon {
    /// SIGTERM, then how it exited.
    pub fn terminate(self) -> std::process::ExitStatus {
        let pid = self.0.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.wait()
    }

    /// How it exited by itself (`--stop-after`).
    pub fn wait(mut self) -> std::process::ExitStatus {
        wait_exit(self.0.take().unwrap(), PATIENCE)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How long a test waits for an event before it fails: generous, for a loaded machine. It
/// is a deadline, never a measurement.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `condition` every 100 ms until it holds; fails the test after [`PATIENCE`].
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn wait_exit(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("watch did not stop in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
