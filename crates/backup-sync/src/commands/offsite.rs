//! `offsite`: the rclone step alone — each `[[backup-sync.offsite]]` synced and verified, its
//! outcome remembered in the state dir (`offsite.json`) for `status`. A failed copy is simply
//! tried again by the next run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use standby_common::exit::Code;
use standby_common::retry::Backoff;
use standby_common::state::StateDir;

use crate::offsite;
use crate::repo::RepoSpec;
use crate::report::RunReport;
use crate::setup::Setup;

/// The state file of the last offsite copies.
pub const STATE_FILE: &str = "offsite.json";

/// The last attempt to copy to one remote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastCopy {
    /// Unix seconds.
    pub at: i64,
    pub ok: bool,
    pub error: Option<String>,
}

/// Copy to every remote, one phase each, and remember the outcomes.
pub fn copy_all(setup: &Setup, spec: &RepoSpec, state: &StateDir, report: &mut RunReport) {
    let backoff =
        Backoff { attempts: 4, base: std::time::Duration::from_secs(5), max: std::time::Duration::from_secs(120) };
    let mut last: BTreeMap<String, LastCopy> = state.read_json(STATE_FILE).ok().flatten().unwrap_or_default();
    for remote in &setup.config.offsite {
        let remote = remote.get_ref();
        let name = format!("offsite {}", remote.remote);
        let ok = report.phase(&name, || offsite::copy(&spec.path, remote, &backoff)).is_some();
        let error = report.phases.last().and_then(|p| p.error.clone());
        let at = jiff::Timestamp::now().as_second();
        last.insert(remote.remote.clone(), LastCopy { at, ok, error });
    }
    if !setup.config.offsite.is_empty() {
        if let Err(e) = state.write_json(STATE_FILE, &last) {
            tracing::warn!("cannot remember the offsite outcome: {e:#}");
        }
    }
}

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let spec = setup.repo()?;
    let state = setup.ctx.state()?;
    let _lock = state.lock("run")?;
    let mut report = RunReport::default();
    copy_all(setup, &spec, &state, &mut report);
    let report = report.finish();
    let code = if report.ok { Code::Ok } else { Code::Failed };
    setup.ctx.output.report(&report, code)?;
    Ok(code)
}
