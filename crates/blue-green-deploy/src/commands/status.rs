//! `status`: the live colour (read from the proxy's configuration, the one source of truth),
//! both colours' health, and the last deploy, switch or rollback with its outcome, or what an
//! interrupted one left running, and (socket mode) a link that disagrees with the file. Exit 0 when the live colour is healthy, 1 otherwise.

use std::fmt;

use serde::Serialize;
use standby_common::exit::Code;

use crate::color::Color;
use crate::health::Probe;
use crate::record::{self, Record};
use crate::setup::Setup;

#[derive(Debug, Serialize)]
struct ColorStatus {
    color: Color,
    address: String,
    /// Socket mode: the colour's unix socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<String>,
    live: bool,
    health: Probe,
}

#[derive(Debug, Serialize)]
struct Status {
    /// Where the truth was read.
    source: String,
    live: Option<Color>,
    colors: Vec<ColorStatus>,
    last: Option<Record>,
    /// Set when the last run was interrupted: what it may have left running.
    #[serde(skip_serializing_if = "Option::is_none")]
    interrupted: Option<String>,
    /// Socket mode: set when the link and the file disagree (the file is the truth).
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatch: Option<String>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.live {
            Some(c) => writeln!(f, "live: {c} (from {})", self.source)?,
            None => writeln!(f, "live: none ({} names no server)", self.source)?,
        }
        for c in &self.colors {
            let mark = if c.live { "*" } else { " " };
            let health = if c.health.ok { "healthy".to_string() } else { format!("not healthy: {}", c.health) };
            let socket = c.socket.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            writeln!(f, "{mark} {:<6} {:<22} {health}{socket}", c.color.as_str(), c.address)?;
        }
        if let Some(m) = &self.mismatch {
            writeln!(f, "warning: {m}")?;
        }
        if let Some(left) = &self.interrupted {
            writeln!(f, "warning: {left}")?;
        } else if let Some(r) = &self.last {
            let version = r.version.as_deref().map(|v| format!(" version {v}")).unwrap_or_default();
            let at = r.finished_at.as_deref().unwrap_or(&r.started_at);
            writeln!(
                f,
                "last {}: {}{version} at {at}: {}",
                r.command,
                r.outcome.as_str(),
                r.message.as_deref().unwrap_or("")
            )?;
        }
        Ok(())
    }
}

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let live = setup.live()?;
    let colors: Vec<ColorStatus> = Color::ALL
        .into_iter()
        .map(|c| ColorStatus {
            color: c,
            address: setup.backend(c).address.clone(),
            socket: setup.backend(c).socket.as_ref().map(|p| p.display().to_string()),
            live: live == Some(c),
            health: setup.prober.probe(&setup.health_url(c), None),
        })
        .collect();
    let last = record::load(&setup.state)?;
    let interrupted = last.as_ref().filter(|r| r.interrupted()).map(Record::left_behind);
    let healthy = colors.iter().any(|c| c.live && c.health.ok);
    let mismatch = setup.mismatch()?;
    let status = Status { source: setup.proxy.describe(), live, colors, last, interrupted, mismatch };
    let code = if healthy { Code::Ok } else { Code::Failed };
    setup.ctx.output.report(&status, code)?;
    Ok(code)
}
