//! `cargo xtask demo`: a disaster-recovery drill on this machine, in a sandbox on loopback with
//! the harness's real servers (nginx, app processes, a PostgreSQL primary with a synchronous
//! standby, PowerDNS). Each step calls our binaries as a user would; the summary gives each
//! step's result and the measured times next to their goals. `--json`: the summary as one
//! JSON object on the last line of stdout (the narrative goes to stderr). Exit 1 when a step
//! failed; everything started is stopped and removed, also on Ctrl-C.

mod fleet;
mod sandbox;
mod story;
mod summary;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::run::{cargo, step};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once Ctrl-C (SIGINT) or SIGTERM arrived: the drill stops at its next wait.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Catch SIGINT/SIGTERM instead of dying, so the drill can unwind and every server's `Drop`
/// stops its process and removes its temp dir.
fn catch_signals() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                let _ = ready_tx.send(false);
                return;
            };
            let _ = ready_tx.send(true);
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            INTERRUPTED.store(true, Ordering::SeqCst);
            eprintln!("\nxtask demo: interrupted; stopping every server and removing the sandbox");
        });
    });
    if !ready_rx.recv().unwrap_or(false) {
        anyhow::bail!("cannot install the SIGINT/SIGTERM handler");
    }
    Ok(())
}

pub fn demo(args: &[String]) -> anyhow::Result<()> {
    let json = match args {
        [] => false,
        [flag] if flag == "--json" => true,
        _ => anyhow::bail!("usage: cargo xtask demo [--json]"),
    };
    catch_signals()?;
    let mut build = cargo();
    build.args(["build", "--workspace", "--bins", "--exclude", "xtask"]);
    if json {
        build.stdout(std::process::Stdio::null());
    }
    step(build)?;
    let outcome = story::run(json, sandbox::bin_dir());
    if interrupted() {
        anyhow::bail!("interrupted");
    }
    let summary = outcome?;
    summary.print(json);
    if !summary.all_ok() {
        anyhow::bail!("the drill failed: {}", summary.failed_steps().join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The drill as CI runs it: every step through our debug binaries and the chain scripts
    //! (nightly-backup.sh, deploy.sh, failover.sh), against the real servers. Times are the
    //! drill's own report, not asserted here (CI's machine is shared); what users rely on is.

    use std::path::Path;

    #[test]
    fn the_drill_runs_every_chain_script_and_loses_nothing() {
        let exe = std::env::current_exe().expect("test exe");
        let bins = exe.parent().and_then(Path::parent).expect("target/debug").to_path_buf();
        assert!(bins.join("replica-promote").is_file(), "build the workspace's binaries first ({})", bins.display());
        let summary = super::story::run(true, bins).expect("the drill");
        let failed: Vec<String> =
            summary.steps.iter().filter(|s| !s.ok).map(|s| format!("{}: {}", s.name, s.detail)).collect();
        assert!(failed.is_empty(), "failed steps: {failed:#?}");
        assert_eq!(
            summary.steps.len(),
            13,
            "every step ran: {:?}",
            summary.steps.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        assert_eq!(summary.rpo_bytes, Some(0), "a synchronous standby loses nothing");
        assert_eq!(summary.rows_lost, Some(0));
        assert_eq!(summary.deploy_failed_requests, Some(0));
        assert!(summary.deploy_requests.unwrap_or(0) > 100, "the deploy ran under load: {:?}", summary.deploy_requests);
        assert!(summary.backup_verified_files.unwrap_or(0) > 0, "the test restore verified files");
        assert!(summary.detect_s.is_some() && summary.dns_switch_s.is_some() && summary.db_writable_s.is_some());
        let timeline = summary.timeline.expect("a timeline");
        let html = std::fs::read_to_string(&timeline).expect("timeline written");
        assert!(html.contains("<svg"), "the timeline has its chart");
    }
}
