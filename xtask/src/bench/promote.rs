//! `promote`: from `replica-promote promote` starting to the first successful write on the
//! new primary, next to a bare `pg_ctl promote` + poll on an identical pair (the floor:
//! 0.115 s in REAL-SERVERS.md), 10 runs each on fresh pairs from the harness (primary stopped
//! with `pg_ctl -m immediate` first, as when the power is cut); and one `switchover`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use standby_e2e::postgres::{pg_bin, server_user_name, start_primary_with_standby, PgServer};

use super::{release_bin, Row};

const RUNS: usize = 10;
const ANCHOR: &str = "bare pg_ctl promote + poll until an INSERT succeeds, identical pair";

pub fn run() -> anyhow::Result<Vec<Row>> {
    let mut ours = Vec::new();
    let mut bare = Vec::new();
    for _ in 0..RUNS {
        ours.push(promote_with_tool()?.as_secs_f64());
        bare.push(promote_bare()?.as_secs_f64());
    }
    let switchover = switchover()?.as_secs_f64();
    let (ours, bare) = (median(&mut ours), median(&mut bare));
    Ok(vec![
        Row::at_most("promote", "promote_to_writable_s", ours, Some(bare), ANCHOR, bare + 0.25, RUNS),
        Row::at_most(
            "promote",
            "bare_promote_to_writable_s",
            bare,
            None,
            "the floor (REAL-SERVERS.md: 0.115 s)",
            1.0,
            RUNS,
        ),
        Row::at_most("promote", "promote_overhead_s", ours - bare, None, "ours - bare", 0.25, RUNS),
        Row::at_most("promote", "switchover_s", switchover, None, "planned, lossless (no anchor)", 30.0, 1),
    ])
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn write_works(node: &PgServer) -> bool {
    node.psql("create table if not exists bench_w(x int); insert into bench_w values (1)").is_ok()
}

fn config(dir: &Path, local: &PgServer, peer: &PgServer) -> anyhow::Result<std::path::PathBuf> {
    let bin_dir = pg_bin("pg_ctl").parent().map(Path::to_path_buf).unwrap_or_default();
    let path = dir.join("standby.toml");
    std::fs::write(
        &path,
        format!(
            "[replica-promote]\nlocal = {:?}\npeer = {:?}\ndata-dir = {:?}\nbin-dir = {:?}\nsystem-user = {:?}\nconnect-timeout = \"1s\"\n",
            local.conninfo(),
            peer.conninfo(),
            local.data_dir.display().to_string(),
            bin_dir.display().to_string(),
            server_user_name(),
        ),
    )?;
    Ok(path)
}

fn tool(dir: &Path, config: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(release_bin("replica-promote"))
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env("STANDBY_RUN_DIR", dir.join("run"))
        .output()
        .context("run replica-promote")?;
    if !out.status.success() {
        bail!(
            "replica-promote {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn poll_writable(node: &PgServer) -> anyhow::Result<()> {
    let start = Instant::now();
    while !write_works(node) {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the promoted node never took a write");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn promote_with_tool() -> anyhow::Result<Duration> {
    let (mut primary, standby) = start_primary_with_standby()?;
    let dir = tempfile::tempdir()?;
    let config = config(dir.path(), &standby, &primary)?;
    primary.stop_immediate();
    let start = Instant::now();
    tool(dir.path(), &config, &["promote", "-q"])?;
    poll_writable(&standby)?;
    Ok(start.elapsed())
}

fn promote_bare() -> anyhow::Result<Duration> {
    let (mut primary, standby) = start_primary_with_standby()?;
    primary.stop_immediate();
    let start = Instant::now();
    let mut cmd = standby.owner_command(pg_bin("pg_ctl"));
    cmd.arg("promote").arg("-D").arg(&standby.data_dir);
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("pg_ctl promote: {}", String::from_utf8_lossy(&out.stderr));
    }
    poll_writable(&standby)?;
    Ok(start.elapsed())
}

fn switchover() -> anyhow::Result<Duration> {
    let (primary, standby) = start_primary_with_standby()?;
    let dir = tempfile::tempdir()?;
    let config = config(dir.path(), &primary, &standby)?;
    let start = Instant::now();
    tool(dir.path(), &config, &["switchover", "-q"])?;
    poll_writable(&standby)?;
    Ok(start.elapsed())
}
