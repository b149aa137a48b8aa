//! `power`: a power cut turned into a planned switchover, next to the unplanned failover it
//! replaces. Both on a fresh harness pair with an *asynchronous* standby under the same write
//! load (a writer committing numbered rows).
//!
//! - Planned: a dummy UPS behind a real upsd goes on battery with 10 minutes left (under the
//!   target's `low-runtime = "15m"`). From upsd reporting it, the clock runs through
//!   `downtime-monitor check` (the round that sees it), its `command` notifier,
//!   scripts/power-switchover.sh, `replica-promote switchover` and `dns-failover switch`, until
//!   the new primary takes a write and PowerDNS answers the backup address.
//! - Unplanned: the battery ran out: the primary stopped with `pg_ctl -m immediate`, then
//!   `replica-promote promote` on the standby. Rows lost = acknowledged ids missing there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use standby_e2e::postgres::{start_primary_with_standby, PgServer};
use standby_e2e::process::wait_until;
use standby_e2e::scenario::{
    clean_command, dns_config, replica_config, script_command, ups_monitor_config, DnsRecord, Writer,
};
use standby_e2e::{AppBackend, Nut, PowerDns};

use super::{release_bin, Row};

const RUNS: usize = 3;
const WAIT: Duration = Duration::from_secs(120);
const PRIMARY_IP: &str = "192.0.2.10";
const BACKUP_IP: &str = "198.51.100.20";
const KEY_ENV: &str = "BENCH_PDNS_KEY";

pub fn run() -> anyhow::Result<Vec<Row>> {
    let (mut planned, mut planned_lost, mut unplanned_lost) = (Vec::new(), 0i64, Vec::new());
    for _ in 0..RUNS {
        let (took, lost) = planned_switchover()?;
        planned.push(took.as_secs_f64());
        planned_lost = planned_lost.max(lost);
        unplanned_lost.push(unplanned_failover()? as f64);
    }
    let planned_s = median(&mut planned);
    let unplanned = median(&mut unplanned_lost);
    Ok(vec![
        Row::at_most(
            "power",
            "planned_switchover_s",
            planned_s,
            None,
            "none does this: upsmon/apcupsd only shut down",
            10.0,
            RUNS,
        ),
        Row::at_most(
            "power",
            "planned_rows_lost",
            planned_lost as f64,
            Some(unplanned),
            "unplanned failover after a hard cut, same load",
            0.0,
            RUNS,
        ),
        Row::info("power", "unplanned_rows_lost", unplanned, "what the planned switchover removes (median)", RUNS),
    ])
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// PATH with our release binaries first.
fn path_env() -> String {
    let bins = release_bin("replica-promote").parent().map(Path::to_path_buf).unwrap_or_default();
    format!("{}:{}", bins.display(), std::env::var("PATH").unwrap_or_default())
}

/// Acknowledged ids (1..=acked) missing on `node`.
fn lost(node: &PgServer, acked: i64) -> anyhow::Result<i64> {
    let present: i64 = node.psql(&format!("SELECT count(*) FROM load WHERE id <= {acked}"))?.trim().parse()?;
    Ok(acked - present)
}

/// The `load` table (replicated before the clock starts) and a writer on `primary`, past
/// its first 1,000 commits.
fn start_load(primary: &PgServer, standby: &PgServer) -> anyhow::Result<Writer> {
    primary.psql("CREATE TABLE load (id bigint PRIMARY KEY)")?;
    if !wait_until(WAIT, || standby.psql("SELECT 1 FROM load LIMIT 1").is_ok()) {
        bail!("the standby never saw the load table");
    }
    let load = Writer::start(primary.conninfo());
    if !wait_until(WAIT, || load.acked() > 1000) {
        bail!("the writer does not write");
    }
    Ok(load)
}

fn planned_switchover() -> anyhow::Result<(Duration, i64)> {
    let dir = tempfile::tempdir()?;
    let nut = Nut::start()?;
    let (primary, standby) = start_primary_with_standby()?;
    let pdns = PowerDns::start()?;
    pdns.create_zone("example.com", &[("db", "A", PRIMARY_IP, 60)])?;
    let (app_a, app_b) = (AppBackend::start("primary")?, AppBackend::start("backup")?);
    let on_a = replica_config(dir.path(), "a.toml", &primary, &standby)?;
    let record = DnsRecord {
        name: "db.example.com",
        zone: "example.com",
        primary_ip: PRIMARY_IP,
        backup_ip: BACKUP_IP,
        check: app_a.url("/health"),
        backup_check: app_b.url("/health"),
    };
    let dns = dns_config(dir.path(), &pdns, &record, KEY_ENV, "timeout = \"2s\"")?;
    let state = |name: &str| dir.path().join(name).display().to_string();
    let power_state = dir.path().join("power");
    let env = [
        ("POWER_STATE_DIR", power_state.display().to_string()),
        (
            "POWER_SWITCHOVER_CMD",
            format!("replica-promote --config {} --state-dir {} switchover", on_a.display(), state("sa")),
        ),
        ("POWER_DNS_CMD", format!("dns-failover --config {} --state-dir {}", dns.display(), state("sd"))),
        ("POWER_RECORDS", "db.example.com".into()),
        ("STANDBY_RUN_DIR", state("run")),
    ];
    let script = crate::run::root().join("scripts/power-switchover.sh");
    let config = ups_monitor_config(dir.path(), &nut.address(), &script_command(&env, &script))?;
    let path = path_env();
    let check = || -> anyhow::Result<()> {
        let mut cmd = clean_command(release_bin("downtime-monitor"));
        cmd.arg("--config").arg(&config).arg("--state-dir").arg(state("monitor")).arg("check");
        let out = cmd.env("PATH", &path).env(KEY_ENV, &pdns.api_key).output()?;
        if out.status.code() != Some(0) {
            bail!("downtime-monitor check: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    check()?;
    let load = start_load(&primary, &standby)?;

    nut.on_battery(45, 600)?;
    nut.wait_status("OB DISCHRG", WAIT)?;
    let cut = Instant::now();
    check()?;
    let log: PathBuf = power_state.join("power-switchover.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    if !wait_until(WAIT, || log_text().contains("SWITCHED to the backup") || log_text().contains("FAILED")) {
        bail!("no switchover within {WAIT:?}: {}", log_text());
    }
    if !log_text().contains("SWITCHED to the backup") {
        bail!("the switchover failed: {}", log_text());
    }
    if !wait_until(WAIT, || standby.psql("INSERT INTO load VALUES (-1)").is_ok()) {
        bail!("the new primary takes no write");
    }
    let took = cut.elapsed();
    let acked = load.stop();
    if pdns.dig("db.example.com", "A")? != vec![BACKUP_IP] {
        bail!("the record is not on the backup");
    }
    Ok((took, lost(&standby, acked)?))
}

fn unplanned_failover() -> anyhow::Result<i64> {
    let dir = tempfile::tempdir()?;
    let (mut primary, standby) = start_primary_with_standby()?;
    let on_b = replica_config(dir.path(), "b.toml", &standby, &primary)?;
    let load = start_load(&primary, &standby)?;
    primary.stop_immediate();
    let acked = load.stop();
    let out = clean_command(release_bin("replica-promote"))
        .arg("--config")
        .arg(&on_b)
        .arg("--state-dir")
        .arg(dir.path().join("sb"))
        .arg("promote")
        .env("STANDBY_RUN_DIR", dir.path().join("run"))
        .output()?;
    if !out.status.success() {
        bail!("replica-promote promote: {}", String::from_utf8_lossy(&out.stderr));
    }
    lost(&standby, acked)
}
