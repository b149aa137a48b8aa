//! `run`: the nightly chain under the run lock — `run-before`; each dump streamed into the
//! repository; the backup of the sources; forget + prune per `keep`; each offsite copy
//! (sync + verify); the check with `check-read-data-subset`; then `run-after` or `run-failed`,
//! and `run-finally`. Every phase's outcome, duration and sizes are reported; exit 1 names the
//! phases that failed (exit 3 when the only failure was retention refused during a failover or
//! beside a stock restic's lock, see `repo::forget_and_prune`). The whole run holds a
//! restic-format lock in the repository (`crate::lock`). Notifiers get start, then success or failure.

use standby_common::exit::Code;
use standby_common::notify::{Event, EventKind};

use crate::cli::TOOL;
use crate::commands::offsite;
use crate::dump::DumpSource;
use crate::hooks;
use crate::lock;
use crate::repo;
use crate::report::RunReport;
use crate::setup::Setup;

pub fn run(setup: &Setup) -> anyhow::Result<Code> {
    let cfg = &setup.config;
    let spec = setup.repo()?;
    let state = setup.ctx.state()?;
    let _lock = state.lock("run")?;
    // Fail early and plainly (exit 2 / 1) when the repository is missing or the password wrong.
    // restic's lock, so that a stock `restic prune` does not run beside this run (exit 3 when a
    // stock restic holds the repository exclusively: nothing was changed).
    // The password is checked (and the key derived: the costly part) once; each phase
    // reopens with the master key.
    let opened = repo::open(&spec)?;
    let _repo_lock = lock::RepoLock::acquire(&spec.path, &opened, false, "backup-sync run")?;
    let subject = spec.path.display().to_string();
    let notify = |kind: EventKind, message: String| {
        if !setup.ctx.notifiers.is_empty() {
            setup.ctx.notifiers.send_blocking(&Event::new(TOOL, kind, &subject, message));
        }
    };
    notify(EventKind::Start, "backup run started".to_string());

    let mut report = RunReport::default();
    if report.phase("run-before", || hooks::run("run-before", &cfg.run_before)).is_some() {
        for dump in &setup.dumps {
            report.phase(&format!("dump {}", dump.name), || {
                let source = DumpSource::start(dump)?;
                repo::backup_stream(repo::reopen(&spec, &opened)?, source)
            });
        }
        let backed_up = cfg.sources.is_empty()
            || report
                .phase("backup", || {
                    repo::backup_paths(repo::reopen(&spec, &opened)?, &cfg.sources, &cfg.exclude, cfg.one_file_system)
                })
                .is_some();
        if let Some(keep) = &cfg.keep {
            // Retention only after a good backup: a failing night must not thin out the old ones.
            if backed_up && report.failed.is_empty() {
                report.phase("forget+prune", || repo::forget_and_prune(&spec, &opened, keep));
            }
        }
        offsite::copy_all(setup, &spec, &state, &mut report);
        let subset = cfg.check_read_data_subset.option();
        report.phase("check", || repo::check(&opened, Some(subset)));
    }
    if report.failed.is_empty() {
        report.phase("run-after", || hooks::run("run-after", &cfg.run_after));
    } else {
        report.phase("run-failed", || hooks::run("run-failed", &cfg.run_failed));
    }
    report.phase("run-finally", || hooks::run("run-finally", &cfg.run_finally));
    let report = report.finish();
    if report.ok {
        notify(EventKind::Success, "backup run ok".to_string());
    } else {
        notify(EventKind::Failure, format!("backup run failed in: {}", report.failed.join(", ")));
    }
    let code = report.code();
    setup.ctx.output.report(&report, code)?;
    Ok(code)
}
