//! The power-aware switchover end to end, with real programs only: a dummy UPS behind a real
//! upsd, downtime-monitor watching it (`kind = "ups"`, `low-runtime = "15m"`), its `command`
//! notifier running scripts/power-switchover.sh, which chains `replica-promote switchover`
//! (the harness's PostgreSQL primary + asynchronous standby, under write load) and
//! `dns-failover switch` (real PowerDNS, answers checked with dig). A cut whose runtime falls
//! under the threshold ends with the standby promoted, every acknowledged row on it and the
//! record on the backup, before the UPS reaches LB; the mains back, it all goes back.
//!
//! The tools run as this test binary under their own names (symlinks on PATH, `harness =
//! false`), so the test needs no other package's build.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::path::Path;
use std::process::{ExitCode, Output};
use std::time::Duration;

use standby_e2e::postgres::start_primary_with_standby;
use standby_e2e::process::wait_until;
use standby_e2e::scenario::{
    clean_command, dns_config, replica_config, rows, script_command, ups_monitor_config, DnsRecord, Writer,
};
use standby_e2e::{AppBackend, Nut, PowerDns};

const PRIMARY_IP: &str = "192.0.2.10";
const BACKUP_IP: &str = "198.51.100.20";
const WAIT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let me = std::env::args().next().unwrap_or_default();
    let name = Path::new(&me).file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
    match name.as_str() {
        "replica-promote" => standby_common::exit::main(replica_promote::cli::main),
        "dns-failover" => standby_common::exit::main(dns_failover::cli::main),
        "downtime-monitor" => standby_common::exit::main(downtime_monitor::cli::main),
        _ => {
            // `cargo test -- --list` and filters: one test, named as libtest would.
            let args: Vec<String> = std::env::args().skip(1).collect();
            if args.iter().any(|a| a == "--list") {
                if !args.iter().any(|a| a == "--ignored") {
                    println!("a_power_cut_is_a_lossless_planned_switchover_and_back: test");
                }
                return ExitCode::SUCCESS;
            }
            if args.iter().any(|a| a == "--ignored") {
                return ExitCode::SUCCESS;
            }
            let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
            if !filters.is_empty()
                && !filters.iter().any(|f| "a_power_cut_is_a_lossless_planned_switchover_and_back".contains(f.as_str()))
            {
                return ExitCode::SUCCESS;
            }
            a_power_cut_is_a_lossless_planned_switchover_and_back();
            println!("test a_power_cut_is_a_lossless_planned_switchover_and_back ... ok");
            ExitCode::SUCCESS
        }
    }
}

fn monitor(bin: &Path, config: &Path, state: &Path, path_env: &str, pdns_key: &str) -> Output {
    let mut cmd = clean_command(bin.join("downtime-monitor"));
    cmd.arg("--config").arg(config).arg("--state-dir").arg(state).arg("check");
    cmd.env("PATH", path_env).env("TEST_PDNS_KEY", pdns_key).output().unwrap()
}

fn a_power_cut_is_a_lossless_planned_switchover_and_back() {
    let dir = tempfile::tempdir().unwrap();
    // The tools, under their names, first on PATH.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let me = std::env::current_exe().unwrap();
    for tool in ["replica-promote", "dns-failover", "downtime-monitor"] {
        std::os::unix::fs::symlink(&me, bin.join(tool)).unwrap();
    }
    let path_env = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let nut = Nut::start().unwrap();
    let (primary, standby) = start_primary_with_standby().unwrap();
    let pdns = PowerDns::start().unwrap();
    pdns.create_zone("example.com", &[("db", "A", PRIMARY_IP, 60)]).unwrap();
    let (app_a, app_b) = (AppBackend::start("primary").unwrap(), AppBackend::start("backup").unwrap());

    let on_a = replica_config(dir.path(), "a.toml", &primary, &standby).unwrap();
    let on_b = replica_config(dir.path(), "b.toml", &standby, &primary).unwrap();
    let record = DnsRecord {
        name: "db.example.com",
        zone: "example.com",
        primary_ip: PRIMARY_IP,
        backup_ip: BACKUP_IP,
        check: app_a.url("/health"),
        backup_check: app_b.url("/health"),
    };
    let dns = dns_config(dir.path(), &pdns, &record, "TEST_PDNS_KEY", "timeout = \"2s\"").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/power-switchover.sh");
    let power_state = dir.path().join("power");
    let log = power_state.join("power-switchover.log");
    let env_pairs = [
        ("POWER_STATE_DIR", power_state.display().to_string()),
        (
            "POWER_SWITCHOVER_CMD",
            format!(
                "replica-promote --config {} --state-dir {} switchover",
                on_a.display(),
                dir.path().join("sa").display()
            ),
        ),
        (
            "POWER_SWITCHBACK_CMD",
            format!(
                "replica-promote --config {} --state-dir {} switchover",
                on_b.display(),
                dir.path().join("sb").display()
            ),
        ),
        (
            "POWER_DNS_CMD",
            format!("dns-failover --config {} --state-dir {}", dns.display(), dir.path().join("sd").display()),
        ),
        ("POWER_RECORDS", "db.example.com".into()),
        ("POWER_RESTORE_HOLD", "1".into()),
        // This host's switching lock, not the machine's /run/standby (other tests run beside).
        ("STANDBY_RUN_DIR", dir.path().join("run").display().to_string()),
        ("POWER_MIN_CHARGE", "50".into()),
        ("POWER_UPS", format!("apc@{}", nut.address())),
    ];
    let command = script_command(&env_pairs, &script);
    let monitor_config = ups_monitor_config(dir.path(), &nut.address(), &command).unwrap();
    let mstate = dir.path().join("monitor-state");
    let check = || monitor(&bin, &monitor_config, &mstate, &path_env, &pdns.api_key);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    let out = check();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Write load on the primary (asynchronous standby).
    primary.psql("CREATE TABLE load (id bigint PRIMARY KEY)").unwrap();
    let load = Writer::start(primary.conninfo());
    assert!(wait_until(WAIT, || load.acked() > 200), "the writer writes");

    // The cut: on battery, 10 minutes left (under low-runtime = 15m), not LB.
    nut.on_battery(45, 600).unwrap();
    nut.wait_status("OB DISCHRG", WAIT).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(0), "on battery is not DOWN: {out:?}");
    assert!(
        wait_until(WAIT, || log_text().contains("SWITCHED to the backup") || log_text().contains("FAILED")),
        "{}",
        log_text()
    );
    assert!(log_text().contains("SWITCHED to the backup"), "{}", log_text());
    let acked = load.stop();
    assert!(!standby.is_in_recovery().unwrap() && primary.is_in_recovery().unwrap(), "the standby is the primary");
    let (count, max) = rows(&standby).unwrap();
    assert!(
        max >= acked && count == max,
        "0 rows lost: {acked} acknowledged, {count} rows up to {max} on the new primary"
    );
    standby.psql(&format!("INSERT INTO load VALUES ({})", max + 1)).unwrap();
    assert_eq!(pdns.dig("db.example.com", "A").unwrap(), vec![BACKUP_IP]);
    assert_eq!(nut.status().unwrap().as_deref(), Some("OB DISCHRG"), "all before the UPS reached LB");

    // A second battery-low (flapping mains) does nothing more.
    let out = std::process::Command::new("bash")
        .arg(&script)
        .args(["run", "battery-low"])
        .envs(env_pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", &path_env)
        .output()
        .unwrap();
    // Either the first run still holds the lock (exit 3) or it is done and the side remembered.
    let said = String::from_utf8_lossy(&out.stdout);
    let nothing = (out.status.code() == Some(0) && said.contains("already switched"))
        || (out.status.code() == Some(3) && said.contains("another power switchover is running"));
    assert!(nothing, "{out:?}");
    assert_eq!(log_text().matches("step switchover:").count(), 2, "one switchover: {}", log_text());

    // Mains back, charged: after the hold, a switchover back and DNS to the primary.
    nut.on_line(80).unwrap();
    nut.wait_status("OL CHRG", WAIT).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        wait_until(WAIT, || log_text().contains("SWITCHED BACK") || log_text().contains("FAILED")),
        "{}",
        log_text()
    );
    assert!(log_text().contains("SWITCHED BACK to the primary"), "{}", log_text());
    assert!(!primary.is_in_recovery().unwrap() && standby.is_in_recovery().unwrap());
    assert_eq!(primary.psql("SELECT count(*) FROM load").unwrap(), (max + 1).to_string(), "nothing lost going back");
    assert_eq!(pdns.dig("db.example.com", "A").unwrap(), vec![PRIMARY_IP]);
    for step in
        ["step switchover: exit 0", "step dns-backup: exit 0", "step switchback: exit 0", "step dns-primary: exit 0"]
    {
        assert!(log_text().contains(step), "every step and its time logged: {}", log_text());
    }
}
