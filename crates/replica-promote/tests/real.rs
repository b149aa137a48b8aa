//! replica-promote against the harness's real PostgreSQL 15 primary + streaming standby
//! (run as an unprivileged user; the tool's `system-user` names it): status, check,
//! promote, rejoin, switchover, driven through the binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use standby_e2e::postgres::{pg_bin, server_user_name, start_primary_with_standby, PgServer};

const BIN: &str = env!("CARGO_BIN_EXE_replica-promote");

/// A config file and a state dir for one scenario: `local` is the node this "machine" runs.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Site {
    fn new(local: &PgServer, peer: &PgServer, extra: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("standby.toml");
        let bin_dir = pg_bin("pg_ctl").parent().map(Path::to_path_buf).unwrap_or_default();
        let text = format!(
            "[replica-promote]\nlocal = {:?}\npeer = {:?}\ndata-dir = {:?}\nbin-dir = {:?}\nsystem-user = {:?}\n\
             connect-timeout = \"3s\"\n{extra}\n",
            local.conninfo(),
            peer.conninfo(),
            local.data_dir.display().to_string(),
            bin_dir.display().to_string(),
            server_user_name(),
        );
        std::fs::write(&config, text).expect("write config");
        Site { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config).arg("--state-dir").arg(self.dir.path().join("state")).args(args);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("STANDBY_") || k.starts_with("PG") || k == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        cmd.output().expect("run replica-promote")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(out)))
}

#[test]
fn status_and_check_on_a_healthy_pair() {
    let (primary, standby) = start_primary_with_standby().expect("pair");
    let site = Site::new(&standby, &primary, "");
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["nodes"][0]["place"], "local");
    assert_eq!(doc["nodes"][0]["role"], "standby");
    assert_eq!(doc["nodes"][0]["receiver"]["status"], "streaming");
    assert_eq!(doc["nodes"][1]["role"], "primary");
    assert_eq!(doc["nodes"][1]["slots"][0]["name"], "s1");
    assert_eq!(doc["nodes"][1]["replicas"][0]["slot"], "s1");
    assert_eq!((doc["primary"].as_str(), doc["standby"].as_str()), (Some("peer"), Some("local")));
    assert!(doc["lag_bytes"].is_u64(), "{doc}");
    assert!(site.dir.path().join("state/last-primary.json").is_file(), "the primary's position is recorded");

    let out = site.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(text(&out.stdout).contains("OK"), "{}", show(&out));

    let out = site.run(&["check", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn check_fails_with_one_line_when_the_standby_lags_or_stops() {
    let (primary, mut standby) = start_primary_with_standby().expect("pair");
    let site = Site::new(&primary, &standby, "max-lag-bytes = \"16kB\"\n");
    standby.psql("select pg_wal_replay_pause()").expect("pause replay");
    primary
        .psql("create table filler as select g, repeat('x', 100) as pad from generate_series(1, 5000) g")
        .expect("write");
    let out = site.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(err.contains("behind (max-lag-bytes 16kB)") && err.trim().lines().count() == 1, "{}", show(&out));
    // The flag beats the file.
    let out = site.run(&["check", "--max-lag-bytes", "1GB"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    standby.stop();
    let out = site.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(text(&out.stderr).contains("peer") && text(&out.stderr).contains("unreachable"), "{}", show(&out));
    let out = site.run(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let doc = json(&out);
    assert_eq!(doc["nodes"][1]["reachable"], false, "{doc}");
    assert_eq!(doc["nodes"][0]["role"], "primary", "{doc}");
}
