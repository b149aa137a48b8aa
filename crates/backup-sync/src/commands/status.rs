//! `status`: the newest snapshot's age against `rpo`, each offsite copy's newest snapshot
//! file (asked of the copy itself through rclone) and its last result, and the repository's
//! size. Exit 1 when stale or when an offsite copy failed: a downtime-monitor
//! `kind = "command"` target.

use std::collections::BTreeMap;
use std::time::SystemTime;

use standby_common::exit::Code;

use crate::commands::age;
use crate::commands::offsite::{LastCopy, STATE_FILE};
use crate::offsite;
use crate::repo;
use crate::setup::Setup;

#[derive(serde::Serialize)]
struct Remote {
    remote: String,
    newest_snapshot_age_s: Option<u64>,
    last_ok: Option<bool>,
    last_error: Option<String>,
    problem: Option<String>,
}

#[derive(serde::Serialize)]
struct Status {
    ok: bool,
    repository: String,
    snapshots: usize,
    last_snapshot_age_s: Option<u64>,
    rpo_s: u64,
    repository_bytes: u64,
    offsite: Vec<Remote>,
    problems: Vec<String>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let age = |s: Option<u64>| s.map(|s| format!("{:.1}h", s as f64 / 3600.0)).unwrap_or_else(|| "never".into());
        writeln!(
            f,
            "{} {}: {} snapshot(s), last {} ago (rpo {:.1}h), {} bytes",
            if self.ok { "OK  " } else { "STALE" },
            self.repository,
            self.snapshots,
            age(self.last_snapshot_age_s),
            self.rpo_s as f64 / 3600.0,
            self.repository_bytes
        )?;
        for r in &self.offsite {
            write!(f, "  offsite {}: newest snapshot {} ago", r.remote, age(r.newest_snapshot_age_s))?;
            match r.last_ok {
                Some(true) => write!(f, ", last copy ok")?,
                Some(false) => write!(f, ", last copy FAILED: {}", r.last_error.as_deref().unwrap_or("?"))?,
                None => write!(f, ", never copied by this host")?,
            }
            writeln!(f)?;
        }
        for p in &self.problems {
            writeln!(f, "  problem: {p}")?;
        }
        Ok(())
    }
}

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let spec = setup.repo()?;
    let repo = repo::open(&spec)?;
    let snaps = repo::snapshots(&repo)?;
    let rpo = setup.config.rpo.get();
    let mut problems = Vec::new();
    let last = snaps.iter().map(|s| SystemTime::from(s.time.timestamp())).max();
    let last_age = last.map(age);
    match last_age {
        None => problems.push("no snapshot yet".to_string()),
        Some(a) if a > rpo => {
            problems.push(format!("last snapshot is {:.1}h old, older than rpo", a.as_secs_f64() / 3600.0))
        }
        _ => {}
    }
    let state = setup.ctx.state()?;
    let remembered: BTreeMap<String, LastCopy> = state.read_json(STATE_FILE).ok().flatten().unwrap_or_default();
    let mut remotes = Vec::new();
    for spec_remote in &setup.config.offsite {
        let r = spec_remote.get_ref();
        let mut problem = None;
        let newest = match offsite::newest_snapshot(r) {
            Ok(t) => t.map(age),
            Err(e) => {
                problem = Some(format!("{e:#}"));
                None
            }
        };
        match newest {
            Some(a) if a > rpo => problem = problem.or(Some("newest snapshot there is older than rpo".to_string())),
            None => problem = problem.or(Some("no snapshot there".to_string())),
            _ => {}
        }
        let last = remembered.get(&r.remote);
        if last.is_some_and(|l| !l.ok) {
            problem = problem.or(Some("the last copy failed".to_string()));
        }
        if let Some(p) = &problem {
            problems.push(format!("offsite {}: {p}", r.remote));
        }
        remotes.push(Remote {
            remote: r.remote.clone(),
            newest_snapshot_age_s: newest.map(|a| a.as_secs()),
            last_ok: last.map(|l| l.ok),
            last_error: last.and_then(|l| l.error.clone()),
            problem,
        });
    }
    let status = Status {
        ok: problems.is_empty(),
        repository: spec.path.display().to_string(),
        snapshots: snaps.len(),
        last_snapshot_age_s: last_age.map(|a| a.as_secs()),
        rpo_s: rpo.as_secs(),
        repository_bytes: repo::size_on_disk(&spec.path),
        offsite: remotes,
        problems,
    };
    let code = if status.ok { Code::Ok } else { Code::Failed };
    setup.ctx.output.report(&status, code)?;
    Ok(code)
}
