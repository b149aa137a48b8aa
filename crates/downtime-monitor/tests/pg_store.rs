//! downtime-monitor's PostgreSQL history store through the binary, when that PostgreSQL is
//! unreachable: every command that opens the store exits 4 (not 1), names the server, and
//! never prints the password; `check` keeps its round in the spool.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::process::Command;

#[test]
fn an_unreachable_store_exits_4_from_every_command_that_opens_it() {
    let app = standby_e2e::AppBackend::start("pg-store").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = standby_e2e::ports::free_port();
    let config = dir.path().join("standby.toml");
    std::fs::write(
        &config,
        format!(
            "[downtime-monitor]\nvantage = \"test\"\nstore = \"postgres://mon@127.0.0.1:{port}/history\"\n\n\
             [[downtime-monitor.target]]\nname = \"app\"\nkind = \"http\"\naddress = \"{}\"\ninterval = \"60s\"\n",
            app.url("/health")
        ),
    )
    .unwrap();
    let log = dir.path().join("seed.log");
    std::fs::write(&log, "Mon Jan 12 05:00:01 SAST 2026: app DOWN\n").unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_downtime-monitor"))
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .env_remove("STANDBY_CONFIG")
            .env("PGPASSWORD", "hunter2-store")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    for args in [
        &["check"][..],
        &["status"],
        &["report", "--since", "1h"],
        &["import", "--format", "seed-log", log.to_str().unwrap(), "--target", "app"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(4), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{args:?} names the server: {stderr}");
        assert!(!stderr.contains("hunter2-store"), "{args:?}: {stderr}");
    }
    assert!(state.join("spool.jsonl").exists(), "check kept its round for the next run");
}

#[test]
fn a_malformed_store_is_a_usage_error_not_a_spooled_round() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("standby.toml");
    std::fs::write(
        &config,
        "[downtime-monitor]\nvantage = \"test\"\n\n[[downtime-monitor.target]]\nname = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    for store in ["not-a-url", "mysql://mon@127.0.0.1/history"] {
        for args in [&["check"][..], &["report"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_downtime-monitor"))
                .arg("--config")
                .arg(&config)
                .arg("--state-dir")
                .arg(&state)
                .args(["--store", store])
                .args(args)
                .env_remove("STANDBY_CONFIG")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{store} {args:?}: {stderr}");
            assert!(stderr.contains("`store` is not a PostgreSQL URL"), "{stderr}");
        }
    }
    assert!(!state.join("spool.jsonl").exists(), "nothing spooled");
}
