//! dns-failover through its binary against real PowerDNS (answers checked with `dig`) and the
//! harness's Cloudflare v4 fake, with app backends whose health the tests flip.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use standby_e2e::{AppBackend, PowerDns};
use standby_e2e::{FakeCloudflare, Fault};

const PRIMARY: &str = "192.0.2.10";
const BACKUP: &str = "198.51.100.20";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    secret_env: (String, String),
}

impl Env {
    fn new(body: &str, secret_env: (&str, &str)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("standby.toml");
        std::fs::write(&config, body).unwrap();
        Env { dir, config, secret_env: (secret_env.0.to_string(), secret_env.1.to_string()) }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dns-failover"));
        c.arg("--config").arg(&self.config).arg("--state-dir").arg(self.dir.path().join("state"));
        c.args(args).env_remove("STANDBY_CONFIG").env_remove("RUST_LOG");
        c.env(&self.secret_env.0, &self.secret_env.1);
        c.env("STANDBY_RUN_DIR", self.dir.path().join("run"));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Run and expect exit `code`; returns stdout.
    fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
        stdout
    }
}

fn pdns_config(pdns: &PowerDns, primary: &AppBackend, backup: &AppBackend, extra: &str) -> String {
    format!(
        r#"[dns-failover]
failure-threshold = 3
recovery-threshold = 2
timeout = "2s"
{extra}

[dns-failover.powerdns]
api-url = "http://127.0.0.1:{api}"
api-key-env = "TEST_PDNS_KEY"

[[dns-failover.record]]
name = "app.example.com"
zone = "example.com"
type = "A"
provider = "powerdns"
primary = ["{PRIMARY}"]
backup = ["{BACKUP}"]
check = "{check}"
backup-check = "{backup_check}"
"#,
        api = pdns.api_port,
        check = primary.url("/health"),
        backup_check = backup.url("/health"),
    )
}

fn start_pdns() -> PowerDns {
    let pdns = PowerDns::start().unwrap();
    pdns.create_zone("example.com", &[("app", "A", PRIMARY, 60)]).unwrap();
    pdns
}

#[test]
fn powerdns_fails_over_after_exactly_the_threshold_and_back_after_recovery() {
    let pdns = start_pdns();
    let mut primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    let env = Env::new(&pdns_config(&pdns, &primary, &backup, ""), ("TEST_PDNS_KEY", &pdns.api_key));

    env.expect(&["check"], 0);
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY]);

    primary.stop();
    for _ in 0..2 {
        let out = env.expect(&["check"], 0);
        assert!(!out.contains("SWITCHED"), "{out}");
        assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY], "not before the third failure");
    }
    let out = env.expect(&["check"], 0);
    assert!(out.contains("SWITCHED to the backup"), "{out}");
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![BACKUP]);
    let ttl = pdns.api("GET", "/servers/localhost/zones/example.com.", None).unwrap().json().unwrap();
    let rrset = ttl["rrsets"].as_array().unwrap().iter().find(|r| r["name"] == "app.example.com.").cloned().unwrap();
    assert_eq!(rrset["ttl"], 60, "the TTL is kept as found");

    // Already on the backup: no more writes, exit 0.
    let out = env.expect(&["check", "--json"], 0);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["records"][0]["side"], "backup");
    assert_eq!(json["changed"], false);

    primary.start_again().unwrap();
    let out = env.expect(&["check"], 0);
    assert!(!out.contains("SWITCHED"), "one good check is not enough: {out}");
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![BACKUP]);
    let out = env.expect(&["check"], 0);
    assert!(out.contains("SWITCHED to the primary"), "{out}");
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY]);

    let status = env.expect(&["status", "--json"], 0);
    let json: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(json["records"][0]["side"], "primary");
    assert_eq!(json["records"][0]["last_switch"]["to"], "primary");
    assert!(json["api_calls_last_hour"].as_u64().unwrap() > 0);
}

#[test]
fn manual_failback_waits_for_switch_to_primary() {
    let pdns = start_pdns();
    let primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    let body = pdns_config(&pdns, &primary, &backup, "failback = \"manual\"")
        .replace("failure-threshold = 3", "failure-threshold = 1");
    let env = Env::new(&body, ("TEST_PDNS_KEY", &pdns.api_key));
    primary.set_healthy(false);
    assert!(env.expect(&["check"], 0).contains("SWITCHED to the backup"));
    primary.set_healthy(true);
    for i in 1..=4 {
        let out = env.expect(&["check"], 0);
        assert!(!out.contains("SWITCHED"), "{out}");
        // From the recovery threshold (2) on, the report says what to do.
        assert_eq!(out.contains("failback is manual"), i >= 2, "check {i}: {out}");
    }
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![BACKUP]);
    let dry = env.expect(&["switch", "--to", "primary", "--dry-run"], 0);
    assert!(dry.contains("dry run"), "{dry}");
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![BACKUP], "--dry-run writes nothing");
    assert!(env.expect(&["switch", "--to", "primary"], 0).contains("SWITCHED to the primary"));
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY]);
}

#[test]
fn no_switch_when_flapping_when_the_backup_is_unhealthy_or_when_isolated() {
    let pdns = start_pdns();
    let primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    let env = Env::new(&pdns_config(&pdns, &primary, &backup, ""), ("TEST_PDNS_KEY", &pdns.api_key));

    // Flapping: down, up, down, up... never three failures in a row.
    for i in 0..8 {
        primary.set_healthy(i % 2 == 1);
        let out = env.expect(&["check"], 0);
        assert!(!out.contains("SWITCHED"), "flap {i}: {out}");
    }
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY]);

    // The backup fails its own check: refuse, exit 1, record untouched.
    primary.set_healthy(false);
    backup.set_healthy(false);
    env.expect(&["check"], 0);
    env.expect(&["check"], 0);
    let out = env.expect(&["check"], 1);
    assert!(out.contains("NOT SWITCHING") && out.contains("backup fails its own check"), "{out}");
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY]);

    // Isolated: no control target answers, so failures do not count.
    backup.set_healthy(true);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let body = pdns_config(&pdns, &primary, &backup, &format!("control = [\"tcp://127.0.0.1:{port}\"]"));
    std::fs::write(&env.config, body).unwrap();
    for _ in 0..4 {
        let out = env.expect(&["check"], 0);
        assert!(out.contains("monitor isolated") && !out.contains("SWITCHED"), "{out}");
    }
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY]);
}

fn cloudflare_config(cf: &FakeCloudflare, primary: &AppBackend, backup: &AppBackend) -> String {
    format!(
        r#"[dns-failover]
failure-threshold = 1
recovery-threshold = 1

[dns-failover.cloudflare]
api-url = "{base}"
token-env = "TEST_CF_TOKEN"

[[dns-failover.record]]
name = "app.example.com"
zone = "example.com"
type = "A"
provider = "cloudflare"
primary = ["192.0.2.10", "192.0.2.11"]
backup = ["{BACKUP}"]
check = "{check}"
backup-check = "{backup_check}"
"#,
        base = cf.base_url(),
        check = primary.url("/health"),
        backup_check = backup.url("/health"),
    )
}

fn a_records(cf: &FakeCloudflare, zone: &str) -> Vec<(String, u64, bool)> {
    let mut out: Vec<(String, u64, bool)> = cf
        .records(zone)
        .iter()
        .filter(|r| r["name"] == "app.example.com" && r["type"] == "A")
        .map(|r| {
            (r["content"].as_str().unwrap().to_string(), r["ttl"].as_u64().unwrap(), r["proxied"].as_bool().unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn cloudflare_replaces_a_two_record_set_across_pages_keeping_ttl_and_proxied() {
    let cf = FakeCloudflare::start().unwrap();
    let zone = cf.add_zone("example.com");
    // More records of the same name than fit on one page: the A records come last.
    for i in 0..120 {
        cf.add_record(&zone, "app.example.com", "TXT", &format!("filler {i}"), 300, false);
    }
    cf.add_record(&zone, "app.example.com", "A", "192.0.2.10", 300, true);
    cf.add_record(&zone, "app.example.com", "A", "192.0.2.11", 300, true);
    let primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    let env = Env::new(&cloudflare_config(&cf, &primary, &backup), ("TEST_CF_TOKEN", &cf.token));

    let out = env.expect(&["status"], 0);
    assert!(out.contains("on the primary [192.0.2.10, 192.0.2.11]"), "the set is found across pages: {out}");

    primary.set_healthy(false);
    // One 429 (with Retry-After: 1) on the way: honoured, then the switch goes through.
    cf.inject(Fault::Status(429), 1);
    assert!(env.expect(&["check"], 0).contains("SWITCHED to the backup"));
    assert_eq!(a_records(&cf, &zone), vec![(BACKUP.to_string(), 300, true)]);

    primary.set_healthy(true);
    assert!(env.expect(&["check"], 0).contains("SWITCHED to the primary"));
    assert_eq!(
        a_records(&cf, &zone),
        vec![("192.0.2.10".to_string(), 300, true), ("192.0.2.11".to_string(), 300, true)]
    );
    let txt = cf.records(&zone).iter().filter(|r| r["type"] == "TXT").count();
    assert_eq!(txt, 120, "other records of the name are untouched");

    // Idempotent: already on the primary, no write.
    cf.clear_requests();
    env.expect(&["switch", "--to", "primary"], 0);
    assert!(cf.requests().iter().all(|(method, _)| method == "GET"), "{:?}", cf.requests());
}

#[test]
fn cloudflare_errors_leave_the_record_unchanged_and_never_show_the_token() {
    let cf = FakeCloudflare::start().unwrap();
    let zone = cf.add_zone("example.com");
    cf.add_record(&zone, "app.example.com", "A", "192.0.2.10", 120, false);
    cf.add_record(&zone, "app.example.com", "A", "192.0.2.11", 120, false);
    let primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    primary.set_healthy(false);

    // A persistent 500: exit 1, nothing changed.
    let env = Env::new(&cloudflare_config(&cf, &primary, &backup), ("TEST_CF_TOKEN", &cf.token));
    cf.inject(Fault::Status(500), 1000);
    let out = env.expect(&["check"], 1);
    assert!(out.contains("HTTP 500"), "{out}");
    let before = a_records(&cf, &zone);
    assert_eq!(before.len(), 2);

    // A wrong token: a clear message, exit 1 (the file is valid), the token nowhere.
    let cf2 = FakeCloudflare::start().unwrap();
    let zone2 = cf2.add_zone("example.com");
    cf2.add_record(&zone2, "app.example.com", "A", "192.0.2.10", 120, false);
    let wrong = "wrong-token-do-not-print-0123456789";
    let env = Env::new(&cloudflare_config(&cf2, &primary, &backup), ("TEST_CF_TOKEN", wrong));
    for args in [&["check", "-vv"][..], &["check", "--json", "-vv"], &["status", "-vv"], &["--check-config", "-vv"]] {
        let out = env.run(args);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains(wrong), "{args:?} shows the token: {all}");
        if args[0] == "check" {
            assert_eq!(out.status.code(), Some(1), "{all}");
            assert!(all.contains("refused the API token"), "{all}");
        }
    }
}

#[test]
fn a_bad_record_is_a_usage_error_naming_the_line() {
    let env = Env::new(
        "[dns-failover]\n\n[[dns-failover.record]]\nname = \"app.example.com\"\nzone = \"example.com\"\ntype = \"A\"\nprovider = \"powerdns\"\nprimary = [\"192.0.2.300\"]\nbackup = [\"198.51.100.20\"]\ncheck = \"http://192.0.2.10/\"\n",
        ("X", "y"),
    );
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("standby.toml:3:") && err.contains("not an IPv4 address"), "{err}");
}

#[test]
fn two_vantages_with_a_quorum_of_two_switch_once_and_never_alone() {
    let pg = standby_e2e::start_primary().unwrap();
    let cf = FakeCloudflare::start().unwrap();
    let zone = cf.add_zone("example.com");
    cf.add_record(&zone, "app.example.com", "A", PRIMARY, 120, false);
    let primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let vantage = |name: &str, control: &str| {
        let body = cloudflare_config(&cf, &primary, &backup)
            .replace("primary = [\"192.0.2.10\", \"192.0.2.11\"]", &format!("primary = [\"{PRIMARY}\"]"))
            .replace(
                "failure-threshold = 1",
                &format!(
                    "failure-threshold = 2\ninterval = \"60s\"\nquorum = 2\nvantage = \"{name}\"\nstore = \"{}\"\n{control}",
                    pg.conninfo()
                ),
            );
        Env::new(&body, ("TEST_CF_TOKEN", &cf.token))
    };
    let office = vantage("office", &format!("control = [\"tcp://127.0.0.1:{dead_port}\"]"));
    let vps = vantage("vps", "");
    let writes = || cf.requests().iter().filter(|(method, _)| method != "GET").count();

    primary.set_healthy(false);
    // The office monitor is isolated: its failures do not count; the VPS alone is no quorum.
    for _ in 0..3 {
        assert!(!office.expect(&["check"], 0).contains("SWITCHED"));
        assert!(!vps.expect(&["check"], 0).contains("SWITCHED"));
    }
    assert_eq!(writes(), 0);
    assert_eq!(a_records(&cf, &zone), vec![(PRIMARY.to_string(), 120, false)]);

    // The office's link comes back: both see the primary down, one of them switches, once.
    let office = vantage("office", "");
    let first = office.expect(&["check"], 0);
    let second = vps.expect(&["check"], 0);
    let third = office.expect(&["check"], 0);
    let switched = [&first, &second, &third].iter().filter(|o| o.contains("SWITCHED")).count();
    assert_eq!(switched, 1, "{first}\n{second}\n{third}");
    assert_eq!(writes(), 1, "one API write: {:?}", cf.requests());
    assert_eq!(a_records(&cf, &zone), vec![(BACKUP.to_string(), 120, false)]);
}

#[test]
fn no_switch_while_another_tool_holds_the_switching_lock() {
    let pdns = start_pdns();
    let primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    let body = pdns_config(&pdns, &primary, &backup, "").replace("failure-threshold = 3", "failure-threshold = 1");
    let env = Env::new(&body, ("TEST_PDNS_KEY", &pdns.api_key));
    let run_dir = env.dir.path().join("run");
    let held = standby_common::switching::SwitchLock::acquire_in(&run_dir, "replica-promote", "promoting the standby")
        .unwrap();
    primary.set_healthy(false);
    let out = env.expect(&["check"], 1);
    assert!(out.contains("replica-promote") && out.contains("promoting the standby"), "names the holder: {out}");
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![PRIMARY]);
    // Run as the holder's hook (replica-promote's post-promote), the switch goes through.
    let mut hook = env.cmd(&["switch", "--to", "backup"]);
    let (name, value) = held.env();
    hook.env(name, value);
    let out = hook.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![BACKUP]);
    drop(held);
}

#[test]
fn a_switch_by_hand_works_beside_a_running_watch_and_logs_plain_text() {
    let pdns = start_pdns();
    let primary = AppBackend::start("primary").unwrap();
    let backup = AppBackend::start("backup").unwrap();
    let env =
        Env::new(&pdns_config(&pdns, &primary, &backup, "failback = \"manual\""), ("TEST_PDNS_KEY", &pdns.api_key));
    let mut watch = env.cmd(&["watch", "--stop-after", "60s"]).spawn().unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut watch);
    // The watch holds the run lock once its state file exists.
    let memory = env.dir.path().join("state/records.json");
    let started = std::time::Instant::now();
    while !memory.exists() && started.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(env.run(&["check"]).status.code(), Some(3), "check and watch do not overlap");
    let out = env.run(&["switch", "--to", "backup"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(pdns.dig("app.example.com", "A").unwrap(), vec![BACKUP]);
    assert!(!stderr.contains('\u{1b}'), "no colour codes in captured logs: {stderr:?}");
}
