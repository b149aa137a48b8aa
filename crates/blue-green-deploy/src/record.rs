//! What the tool remembers between runs, in its state dir: the last deploy, switch or
//! rollback (`last.json`), rewritten at every step. A record still marked `running` whose
//! process is gone is an interrupted run: `status` and the next `deploy` say what it left.

use serde::{Deserialize, Serialize};
use standby_common::state::StateDir;

use crate::color::Color;

const FILE: &str = "last.json";

/// How a run ended (or that it has not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// In progress (or interrupted, when its process is gone).
    Running,
    /// The new colour is live and the old one stopped.
    Deployed,
    /// Traffic moved by `switch` or `rollback`.
    Switched,
    /// Nothing reached users: the new colour failed before the switch, traffic unchanged.
    Failed,
    /// The new colour took traffic, misbehaved, and traffic went back.
    RolledBack,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Deployed => "deployed",
            Outcome::Switched => "switched",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled-back",
        }
    }
}

/// One run, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Record {
    pub command: String,
    pub pid: u32,
    pub from: Option<Color>,
    pub to: Color,
    pub version: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The step in progress, or the last one.
    pub step: String,
    pub outcome: Outcome,
    pub message: Option<String>,
}

impl Record {
    pub fn new(command: &str, from: Option<Color>, to: Color, version: Option<String>) -> Record {
        Record {
            command: command.to_string(),
            pid: std::process::id(),
            from,
            to,
            version,
            started_at: now(),
            finished_at: None,
            step: "start".into(),
            outcome: Outcome::Running,
            message: None,
        }
    }

    /// A run marked running whose process no longer exists.
    pub fn interrupted(&self) -> bool {
        self.outcome == Outcome::Running && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// What an interrupted run left, in one sentence.
    pub fn left_behind(&self) -> String {
        let version = self.version.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default();
        format!(
            "an interrupted {} (pid {}, started {}) stopped at step `{}`: {}{version} may still be running",
            self.command, self.pid, self.started_at, self.step, self.to
        )
    }
}

/// The last record, if any.
pub fn load(state: &StateDir) -> anyhow::Result<Option<Record>> {
    state.read_json(FILE)
}

pub fn save(state: &StateDir, record: &Record) -> anyhow::Result<()> {
    state.write_json(FILE, record)
}

/// RFC 3339, UTC, seconds.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
