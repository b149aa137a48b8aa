//! downtime-monitor through its binary, against real servers that are stopped and started on
//! a schedule: thresholds and alerts (received by a local webhook server), reports that match
//! the scripted outages, unknown time, maintenance, command targets, the seed-log import, the
//! spool when the database is unusable, Prometheus metrics, HTML/SVG reports.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use standby_e2e::webhook::Webhook;
use standby_e2e::AppBackend;

mod common;
use common::{wait_for, Env, PATIENCE};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn target(name: &str, url: &str, fail: u32, recover: u32, interval: &str) -> String {
    format!(
        "\n[[downtime-monitor.target]]\nname = \"{name}\"\nkind = \"http\"\naddress = \"{url}\"\ninterval = \"{interval}\"\ntimeout = \"2s\"\nfailure-threshold = {fail}\nrecovery-threshold = {recover}\n"
    )
}

fn now_rfc3339() -> String {
    downtime_monitor::clock::fmt(now_ms())
}

#[test]
fn down_after_exactly_the_threshold_recovered_after_the_threshold_one_alert_each() {
    let app = AppBackend::start("app").unwrap();
    let hook = Webhook::start(200).unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 3, 2, "60s"), Some(&hook));
    assert_eq!(env.code(&["check"]), 0);
    app.set_healthy(false);
    assert_eq!(env.code(&["check"]), 0, "1 failure: not down yet");
    assert_eq!(env.code(&["check"]), 0, "2 failures: not down yet");
    assert!(hook.received().is_empty());
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "3 failures: DOWN");
    assert!(String::from_utf8_lossy(&out.stdout).contains("went DOWN"));
    assert_eq!(env.code(&["check"]), 1);
    assert_eq!(hook.received().len(), 1, "one alert for the transition, no repeats");
    let down = hook.received()[0].json();
    assert_eq!((down["kind"].as_str(), down["subject"].as_str()), (Some("down"), Some("app")));
    assert!(down["message"].as_str().unwrap().contains("expected status 2xx, got 503"), "{down}");

    app.set_healthy(true);
    assert_eq!(env.code(&["check"]), 1, "1 success: still down");
    assert_eq!(env.code(&["check"]), 0, "2 successes: recovered");
    let alerts = hook.received();
    assert_eq!(alerts.len(), 2);
    let rec = alerts[1].json();
    assert_eq!(rec["kind"], "recovered");
    let secs = rec["details"]["duration_s"].as_i64().unwrap();
    let message = rec["message"].as_str().unwrap();
    if secs < 60 {
        assert!(message.contains(&format!("RECOVERED after {secs}s ")), "the message and duration_s agree: {rec}");
    }

    let status = env.json(&["status", "--json"]);
    assert_eq!(status["targets"][0]["health"], "up");
    let report = env.json(&["report", "--since", "1h", "--json"]);
    assert_eq!(report["targets"][0]["incidents"], 1);
    assert!(report["targets"][0]["incident_list"][0]["ended"].is_string());
}

#[test]
fn a_second_monitor_run_exits_3_while_one_holds_the_lock() {
    let app = AppBackend::start("lock").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "1s"), None);
    let watch = env.watch(&[]);
    // The daemon takes the lock before its first probe, so once a round is recorded it holds it.
    wait_for("the daemon's first round", || env.health().is_some());
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another run holds the lock"));
    assert!(watch.terminate().success());
    assert_eq!(env.code(&["check"]), 0, "the lock is gone with the daemon");
}

#[test]
fn report_matches_a_scripted_outage_and_shows_unknown_time() {
    let mut app = AppBackend::start("sched").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 2, 1, "250ms"), None);
    let from = now_rfc3339();
    let watch = env.watch(&[]);
    wait_for("the first round", || env.health().as_deref() == Some("up"));
    // The outage: from the stop until the app answers again, with the DOWN and RECOVERED the
    // daemon records in between as the events to wait for.
    let stopped = now_ms();
    app.stop();
    wait_for("DOWN after 2 failures", || env.health().as_deref() == Some("down"));
    let seen_down = now_ms();
    let restarted = now_ms();
    app.start_again().unwrap();
    wait_for("RECOVERED after a success", || env.health().as_deref() == Some("up"));
    let seen_up = now_ms();
    assert!(watch.terminate().success());
    let exited = now_ms();
    // The monitor itself is off for a while (time passes: no assertion on how much), then
    // runs until it has recorded a round again.
    std::thread::sleep(Duration::from_secs(2));
    let restarted_monitor = now_ms();
    let watch = env.watch(&[]);
    let last_at = |env: &Env| env.status().and_then(|s| s["targets"][0]["last_at"].as_i64()).unwrap_or(0);
    wait_for("a round of the second run", || last_at(&env) >= restarted_monitor);
    assert!(watch.terminate().success());

    let r = env.json(&["report", "--since", &from, "--until", "now", "--json"]);
    let t = &r["targets"][0];
    let ms = |k: &str| t[k].as_i64().unwrap();
    assert_eq!(t["incidents"], 1, "{t}");
    let incident = &t["incident_list"][0];
    let (started, ended) = (incident["started_ms"].as_i64().unwrap(), incident["ended_ms"].as_i64().unwrap());
    // A probe lasts at most its timeout (2 s): a failure comes from a probe that was running
    // when the app stopped or later, a success from one running when it was back.
    let timeout = 2000;
    assert!(started >= stopped - timeout && started <= seen_down, "{stopped} <= {started} <= {seen_down}");
    assert!(ended >= restarted - timeout && ended <= seen_up, "{restarted} <= {ended} <= {seen_up}");
    assert_eq!(ms("downtime_ms"), ended - started, "the downtime is the incident: {t}");
    // The last sample of the first run counts for one interval (250 ms) at most; the second
    // run's first sample comes after it started.
    let gap = restarted_monitor - exited - 250;
    assert!(ms("unknown_ms") >= gap, "the {gap} ms the monitor was off are unknown: {t}");
    let (observed, down) = (ms("observed_ms") as f64, ms("downtime_ms") as f64);
    let uptime = t["uptime_pct"].as_f64().unwrap();
    assert!((uptime - (observed - down) / observed * 100.0).abs() < 0.001, "{t}");
    assert!(uptime > 0.0 && uptime < 100.0, "{uptime}");
    let kinds: Vec<&str> = t["timeline"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"down") && kinds.contains(&"unknown") && kinds.contains(&"up"), "{kinds:?}");
}

#[test]
fn an_outage_inside_a_maintenance_window_is_maintenance_not_downtime() {
    let app = AppBackend::start("maint").unwrap();
    let hook = Webhook::start(200).unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), Some(&hook));
    assert_eq!(env.code(&["check"]), 0);
    let added = env.run(&["maintenance", "add", "--target", "app", "--for", "1h", "--reason", "UPS battery swap"]);
    assert_eq!(added.status.code(), Some(0), "{}", String::from_utf8_lossy(&added.stderr));
    app.set_healthy(false);
    for _ in 0..3 {
        assert_eq!(env.code(&["check"]), 0, "failures in maintenance do not bring the target down");
    }
    assert!(hook.received().is_empty(), "no alert during maintenance");
    let listed = String::from_utf8_lossy(&env.run(&["maintenance", "list"]).stdout).to_string();
    assert!(listed.contains("UPS battery swap"), "{listed}");
    let r = env.json(&["report", "--since", "1h", "--json"]);
    let t = &r["targets"][0];
    assert_eq!((t["incidents"].as_i64(), t["downtime_ms"].as_i64()), (Some(0), Some(0)), "{t}");
    assert!(t["maintenance_ms"].as_i64().unwrap() > 0);
    assert_eq!(env.code(&["maintenance", "end", "1"]), 0);
    assert_eq!(env.code(&["maintenance", "end", "1"]), 2, "already ended");
    assert_eq!(env.code(&["check"]), 1, "after the window, the failure counts");
}

#[test]
fn a_command_target_uses_the_exit_code_as_health() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("replication-ok");
    std::fs::write(&flag, "").unwrap();
    let env = Env::new(
        &format!(
            "[[downtime-monitor.target]]\nname = \"replication\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"test -f {} || {{ echo 'lag 120s' >&2; exit 1; }}\"]\nfailure-threshold = 1\n",
            flag.display()
        ),
        None,
    );
    assert_eq!(env.code(&["check"]), 0);
    std::fs::remove_file(&flag).unwrap();
    let out = env.json(&["check", "--json"]);
    assert_eq!(out["targets"][0]["health"], "down");
    assert_eq!(out["targets"][0]["error"], "exit 1: lag 120s");
    let silent = Env::new(
        "[[downtime-monitor.target]]\nname = \"quiet\"\nkind = \"command\"\ncommand = [\"false\"]\nfailure-threshold = 1\n",
        None,
    );
    let out = silent.json(&["check", "--json"]);
    assert_eq!(out["targets"][0]["error"], "exit 1", "no dangling colon without output: {out}");
}

#[test]
fn quiet_prints_only_the_failing_targets_and_a_summary() {
    let good = AppBackend::start("q-good").unwrap();
    let bad = AppBackend::start("q-bad").unwrap();
    bad.set_healthy(false);
    let env = Env::new(
        &format!(
            "{}{}",
            target("good-app", &good.url("/health"), 3, 1, "60s"),
            target("bad-app", &bad.url("/health"), 3, 1, "60s")
        ),
        None,
    );
    let out = env.run(&["-q", "check"]);
    assert_eq!(out.status.code(), Some(0), "1 failure of 3: not DOWN yet");
    assert!(out.stdout.is_empty(), "exit 0 under -q prints nothing");
    for _ in 0..2 {
        env.run(&["-q", "check"]);
    }
    let out = env.run(&["-q", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad-app") && !text.contains("good-app"), "{text}");
    assert!(text.contains("1 of 2 target(s) failed this round, 1 DOWN"), "{text}");
}

#[test]
fn seed_log_history_is_imported_with_its_outages() {
    let env = Env::new("", None);
    let log = env.dir.path().join("vf-downtime.log");
    // Two outages: 03:00–03:15 (three lines) and 14:00–14:05 (one line), SAST = UTC+2.
    std::fs::write(
        &log,
        "Mon Jan 12 05:00:01 SAST 2026: VF Server DOWN\nMon Jan 12 05:05:01 SAST 2026: VF Server DOWN\nMon Jan 12 05:10:01 SAST 2026: VF Server DOWN\nMon Jan 12 16:00:01 SAST 2026: VF Server DOWN\n",
    )
    .unwrap();
    let out = env.run(&["import", "--format", "seed-log", log.to_str().unwrap(), "--target", "vf-server"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 4 DOWN line(s) as 2 outage(s)"));
    let r = env.json(&["report", "--since", "2026-01-12", "--until", "2026-01-13", "--json"]);
    let t = &r["targets"][0];
    assert_eq!(t["name"], "vf-server");
    assert_eq!(t["incidents"], 2);
    assert_eq!(t["downtime_ms"], 20 * 60_000, "15 min + 5 min");
    assert_eq!(t["longest_ms"], 15 * 60_000);
    // By default the old script is taken to have run over the whole UTC day(s) of the log.
    assert_eq!(t["observed_ms"], 24 * 3_600_000);
    assert_eq!(t["unknown_ms"], 0);
    // Importing again replaces the period instead of counting it twice.
    assert_eq!(env.code(&["import", "--format", "seed-log", log.to_str().unwrap(), "--target", "vf-server"]), 0);
    let again = env.json(&["report", "--since", "2026-01-12", "--until", "2026-01-13", "--json"]);
    assert_eq!(again["targets"][0]["incidents"], 2);
    assert_eq!(again["targets"][0]["downtime_ms"], 20 * 60_000);
    // A declared run period: the script ran from 02:00 to 20:00 UTC only.
    let out = env.run(&[
        "import",
        "--format",
        "seed-log",
        log.to_str().unwrap(),
        "--target",
        "vf-two",
        "--from",
        "2026-01-12T02:00:00Z",
        "--until",
        "2026-01-12T20:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let two = env.json(&["report", "--target", "vf-two", "--since", "2026-01-12", "--until", "2026-01-13", "--json"]);
    assert_eq!(two["targets"][0]["observed_ms"], 18 * 3_600_000);
    // A log that names two servers needs --only.
    let mixed = env.dir.path().join("mixed.log");
    std::fs::write(&mixed, "Mon Jan 12 05:00:01 UTC 2026: VF Server DOWN\nMon Jan 12 05:00:01 UTC 2026: NAS DOWN\n")
        .unwrap();
    let out = env.run(&["import", "--format", "seed-log", mixed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--only"));
    let out = env.run(&["import", "--format", "seed-log", mixed.to_str().unwrap(), "--only", "NAS"]);
    assert_eq!(out.status.code(), Some(0));
    let bad = env.dir.path().join("bad.log");
    std::fs::write(&bad, "Mon Jan 12 05:00:01 SAST 2026: VF Server DOWN\nhello\n").unwrap();
    let out = env.run(&["import", "--format", "seed-log", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.log:2:"));
}

#[test]
fn an_unusable_database_spools_the_samples_and_the_next_run_writes_them() {
    let app = AppBackend::start("spool").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    std::fs::write(&db, "this is not a database, it is garbage ".repeat(200)).unwrap();
    let env = Env::new(
        &format!("database = \"{}\"\n{}", db.display(), target("app", &app.url("/health"), 1, 1, "60s")),
        None,
    );
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 sample(s) kept in") && err.contains("spool"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("app") && stdout.contains(" ok ") && stdout.contains("not recorded"), "{stdout}");
    let out = env.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "still broken: spooled again");
    let round: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (round["targets"][0]["ok"].as_bool(), round["unrecorded"].as_bool()),
        (Some(true), Some(true)),
        "{round}"
    );
    std::fs::remove_file(&db).unwrap(); // the operator moves the broken file away
    let out = env.json(&["check", "--json"]);
    assert_eq!(out["replayed"], 2, "{out}");
    let r = env.json(&["report", "--since", "1h", "--json"]);
    assert!(r["targets"][0]["observed_ms"].as_i64().unwrap() > 0);
}

#[test]
fn metrics_are_served_while_watching_and_written_by_check() {
    let app = AppBackend::start("metrics").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "200ms"), None);
    let port = standby_e2e::ports::free_port();
    let watch = env.watch(&["--metrics-listen", &format!("127.0.0.1:{port}")]);
    let mut body = String::new();
    let found = standby_e2e::process::wait_until(PATIENCE, || {
        body = standby_e2e::http_client::get(&format!("http://127.0.0.1:{port}/metrics"))
            .map(|r| r.text())
            .unwrap_or_default();
        body.contains("standby_monitor_up{target=\"app\"} 1")
    });
    assert!(found, "{body}");
    let value = |name: &str| -> f64 {
        body.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).unwrap().parse().unwrap()
    };
    assert!(value("standby_monitor_checks_total{target=\"app\",result=\"ok\"}") >= 1.0);
    assert_eq!(value("standby_monitor_state{target=\"app\",state=\"up\"}"), 1.0);
    assert!(body.contains("# TYPE standby_monitor_latency_seconds gauge"));
    assert!(watch.terminate().success());

    let file = env.dir.path().join("monitor.prom");
    assert_eq!(env.code(&["check", "--metrics-file", file.to_str().unwrap()]), 0);
    assert!(std::fs::read_to_string(&file).unwrap().contains("standby_monitor_up{target=\"app\"} 1"));
}

#[test]
fn html_and_svg_reports_draw_a_timeline() {
    let app = AppBackend::start("svg").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    assert_eq!(env.code(&["check"]), 0);
    app.set_healthy(false);
    assert_eq!(env.code(&["check"]), 1);
    let svg_path = env.dir.path().join("r.svg");
    assert_eq!(env.code(&["report", "--since", "10m", "--format", "svg", "-o", svg_path.to_str().unwrap()]), 0);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("valid SVG (XML)");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let fills: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("rect")).filter_map(|n| n.attribute("fill")).collect();
    assert!(fills.iter().any(|f| f.eq_ignore_ascii_case("#CF222E")), "a down segment is drawn: {fills:?}");
    let html = String::from_utf8_lossy(&env.run(&["report", "--since", "10m", "--format", "html"]).stdout).to_string();
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg") && html.contains("<td>app</td>"));
}

#[test]
fn bad_targets_are_config_errors_with_file_and_line() {
    let env = Env::new("\n[[downtime-monitor.target]]\nname = \"db\"\nkind = \"postgres\"\n", None);
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("standby.toml:4:") && err.contains("needs `address`"), "{err}");
    let env = Env::new("\n[[downtime-monitor.target]]\nname = \"x\"\nkind = \"ping\"\naddress = \"a\"\n", None);
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standby.toml:6:"));
}

#[test]
fn two_vantages_share_a_postgres_history_and_a_quorum_ignores_one_monitors_own_outage() {
    let pg = standby_e2e::start_primary().unwrap();
    let app = AppBackend::start("shared").unwrap();
    let dead = format!("http://127.0.0.1:{}/health", standby_e2e::ports::free_port());
    // The office monitor's own network is broken: it cannot reach the app. The VPS can.
    let office = Env::new(&target("app", &dead, 1, 1, "60s"), None);
    let vps = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    let store = pg.conninfo();
    let run = |env: &Env, vantage: &str| env.code(&["--store", &store, "--vantage", vantage, "check"]);
    let from = now_rfc3339();
    for _ in 0..2 {
        assert_eq!(run(&office, "office"), 1);
        assert_eq!(run(&vps, "vps"), 0);
    }
    let report = |env: &Env, extra: &[&str]| {
        env.json(&[&["--store", &store, "--vantage", "office", "report", "--since", &from, "--json"], extra].concat())
    };
    let alone = report(&office, &[]);
    assert_eq!(alone["targets"][0]["incidents"], 1, "the office alone saw an outage");
    let quorum = report(&office, &["--quorum", "2"]);
    assert_eq!(quorum["targets"][0]["incidents"], 0, "one vantage is not a quorum: {}", quorum["targets"][0]);
    assert_eq!(quorum["targets"][0]["downtime_ms"], 0);

    // Now the app really goes down: both vantages see it.
    let mut app = app;
    app.stop();
    let vps_dead = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    assert_eq!(run(&vps_dead, "vps"), 1);
    assert_eq!(run(&office, "office"), 1);
    std::thread::sleep(Duration::from_millis(300));
    let quorum = report(&office, &["--quorum", "2"]);
    let t = &quorum["targets"][0];
    assert_eq!(t["incidents"], 1, "{t}");
    assert!(t["downtime_ms"].as_i64().unwrap() > 0);
    assert!(t["incident_list"][0]["cause"].as_str().unwrap().contains("vps"), "{t}");
    let rows = pg.psql("SELECT count(DISTINCT vantage) FROM samples").unwrap();
    assert_eq!(rows.trim(), "2");
}

#[test]
fn old_samples_are_rolled_up_and_reports_stay_exact_about_incidents() {
    let app = AppBackend::start("rollup").unwrap();
    let env = Env::new(&format!("retention = \"7d\"\n{}", target("app", &app.url("/health"), 1, 1, "60s")), None);
    let log = env.dir.path().join("old.log");
    std::fs::write(
        &log,
        "Mon Jan 12 05:00:01 SAST 2026: app DOWN\nMon Jan 12 05:05:01 SAST 2026: app DOWN\nMon Jan 12 16:00:01 SAST 2026: app DOWN\n",
    )
    .unwrap();
    assert_eq!(env.code(&["import", "--format", "seed-log", log.to_str().unwrap(), "--target", "app"]), 0);
    let day = ["report", "--since", "2026-01-12", "--until", "2026-01-13", "--json"];
    let before = env.json(&day);
    // A check rolls samples older than the retention (7 days) into hourly rows.
    assert_eq!(env.code(&["check"]), 0);
    let db = env.dir.path().join("state/monitor.db");
    let raw: i64 = rusqlite_count(&db, "SELECT count(*) FROM samples WHERE at < 1768262400000");
    assert_eq!(raw, 0, "old raw samples are gone");
    assert!(rusqlite_count(&db, "SELECT count(*) FROM hourly") >= 11);
    let after = env.json(&day);
    let (b, a) = (&before["targets"][0], &after["targets"][0]);
    assert_eq!(a["incidents"], b["incidents"]);
    assert_eq!(a["downtime_ms"], 15 * 60_000, "incidents stay exact: {a}");
    assert_eq!(a["longest_ms"], b["longest_ms"]);
    let observed = |t: &serde_json::Value| t["observed_ms"].as_i64().unwrap();
    assert!(
        (observed(a) - observed(b)).abs() <= 3_600_000,
        "coverage within an hour: {} vs {}",
        observed(a),
        observed(b)
    );
}

fn rusqlite_count(db: &std::path::Path, sql: &str) -> i64 {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn tcp_https_and_postgres_targets_against_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = standby_e2e::tls::self_signed(dir.path(), "localhost", 30).unwrap();
    let nginx =
        standby_e2e::Nginx::start(standby_e2e::NginxOptions { tls: Some((cert.clone(), key)), ..Default::default() })
            .unwrap();
    let mut pg = standby_e2e::start_primary().unwrap();
    let body = format!(
        "[[downtime-monitor.target]]\nname = \"web-tls\"\nkind = \"https\"\naddress = \"https://localhost:{port}/\"\nresolve = \"127.0.0.1\"\ncacert = \"{cert}\"\nfailure-threshold = 1\n\n\
         [[downtime-monitor.target]]\nname = \"web-untrusted\"\nkind = \"https\"\naddress = \"https://localhost:{port}/\"\nresolve = \"127.0.0.1\"\nfailure-threshold = 1\n\n\
         [[downtime-monitor.target]]\nname = \"port\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nfailure-threshold = 1\n\n\
         [[downtime-monitor.target]]\nname = \"db\"\nkind = \"postgres\"\naddress = \"{conninfo}\"\nfailure-threshold = 1\n",
        port = nginx.port,
        cert = cert.display(),
        conninfo = pg.conninfo()
    );
    let env = Env::new(&body, None);
    let health = |out: &serde_json::Value, name: &str| {
        out["targets"].as_array().unwrap().iter().find(|t| t["target"] == name).unwrap()["health"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let out = env.json(&["check", "--json"]);
    assert_eq!(health(&out, "web-tls"), "up", "{out}");
    assert_eq!(health(&out, "web-untrusted"), "down", "TLS is verified by default");
    assert_eq!(health(&out, "port"), "up");
    assert_eq!(health(&out, "db"), "up");
    pg.stop_immediate();
    let out = env.json(&["check", "--json"]);
    assert_eq!(health(&out, "db"), "down");
}

#[test]
fn sigterm_stops_the_daemon_cleanly_and_keeps_what_it_collected() {
    let app = AppBackend::start("term").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "200ms"), None);
    let watch = env.watch(&[]);
    wait_for("a recorded round", || env.health().is_some());
    let observed = |env: &Env| env.json(&["report", "--since", "1h", "--json"])["targets"][0]["observed_ms"].as_i64();
    let before = observed(&env).unwrap();
    assert!(watch.terminate().success(), "exit 0 on SIGTERM");
    let after = observed(&env).unwrap();
    assert!(before > 0 && after >= before, "nothing recorded is lost: {before} ms, then {after} ms");
}

#[test]
fn a_torn_spool_line_does_not_stop_monitoring() {
    let app = AppBackend::start("torn").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    std::fs::create_dir_all(env.dir.path().join("state")).unwrap();
    let spool = env.dir.path().join("state/monitor.spool.jsonl");
    let good = r#"{"target":"app","at":1000,"ok":true,"latency_ms":1.0,"error":null,"interval_ms":60000}"#;
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"{\"target\":\"app\",\"error\":\"caf\xc3");
    std::fs::write(&spool, bytes).unwrap();
    let out = env.json(&["check", "--json"]);
    assert_eq!(out["replayed"], 1, "the good line is written, the torn one skipped: {out}");
    assert!(!spool.exists());
}

#[test]
fn nonsense_durations_and_times_are_usage_errors_not_panics() {
    let app = AppBackend::start("odd").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    assert_eq!(env.code(&["maintenance", "add", "--target", "app", "--for", "0s", "--reason", "x"]), 2);
    assert_eq!(env.code(&["maintenance", "add", "--target", "app", "--for", "3000000d", "--reason", "x"]), 2);
    assert_eq!(env.code(&["report", "--until", "10000-01-01"]), 2);
    let huge = Env::new(&target("app", &app.url("/health"), 1, 1, "18446744073709551615s"), None);
    assert_eq!(huge.code(&["check"]), 2);
    let zero = Env::new(
        &format!(
            "{}timeout = \"0s\"\n",
            target("app", &app.url("/health"), 1, 1, "60s").replace("timeout = \"2s\"\n", "")
        ),
        None,
    );
    assert_eq!(zero.code(&["check"]), 2);
}

#[test]
fn check_config_hides_passwords_in_store_urls() {
    let env = Env::new("store = \"postgres://mon:hunter2@127.0.0.1:1/history\"\n", None);
    let out = env.run(&["--check-config", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains("hunter2") && text.contains("mon:***@"), "{text}");
}

#[test]
fn a_weekly_window_from_the_config_covers_failures_and_reminders_repeat_when_asked() {
    let app = AppBackend::start("weekly").unwrap();
    let hook = Webhook::start(200).unwrap();
    // A daily window that started a minute ago (UTC) and lasts an hour.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 60;
    let (h, m) = ((now / 3600) % 24, (now / 60) % 60);
    let window = format!(
        "\n[[downtime-monitor.maintenance]]\ntarget = \"*\"\nstart = \"{h:02}:{m:02}\"\nduration = \"1h\"\nreason = \"nightly job\"\n"
    );
    let env = Env::new(&format!("{}{window}", target("app", &app.url("/health"), 1, 1, "60s")), Some(&hook));
    app.set_healthy(false);
    for _ in 0..2 {
        let out = env.json(&["check", "--json"]);
        assert_eq!(out["targets"][0]["maintenance"], true, "{out}");
        assert_ne!(out["targets"][0]["health"], "down");
    }
    assert!(hook.received().is_empty());

    // Without a window, with a reminder: one DOWN alert, then one per check while down.
    let env =
        Env::new(&format!("reminder = \"1ms\"\n{}", target("app", &app.url("/health"), 1, 1, "60s")), Some(&hook));
    for _ in 0..3 {
        assert_eq!(env.code(&["check"]), 1);
        std::thread::sleep(Duration::from_millis(5));
    }
    let alerts = hook.received();
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    assert!(alerts[2].json()["message"].as_str().unwrap().contains("still DOWN"));
}

#[test]
fn a_locked_database_keeps_the_round_in_the_spool() {
    let app = AppBackend::start("locked").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    assert_eq!(env.code(&["check"]), 0, "creates the database");
    let db = env.dir.path().join("state/monitor.db");
    // Another program holds the write lock for longer than the monitor waits (5 s): until the
    // test kills it (or drops it, failing). It prints 1 once it holds the lock.
    let mut holder_cmd = Command::new("sh");
    holder_cmd
        .arg("-c")
        .arg(format!("(echo 'BEGIN EXCLUSIVE;'; echo 'SELECT 1;'; sleep 600) | sqlite3 {}", db.display()));
    let log = env.dir.path().join("holder.log");
    let mut holder = standby_e2e::ServerProcess::spawn(holder_cmd, "sqlite3 lock holder", log.clone()).unwrap();
    holder
        .wait_ready(PATIENCE, || std::fs::read_to_string(&log).is_ok_and(|l| l.lines().any(|l| l.trim() == "1")))
        .unwrap();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked") && err.contains("kept in"), "{err}");
    // The whole group at once (sh, sqlite3 and sleep), reaped: the lock is free.
    holder.kill();
    let out = env.json(&["check", "--json"]);
    assert_eq!(out["replayed"], 1, "{out}");
}

/// The kinds of a report target's timeline segments.
fn segment_kinds(t: &serde_json::Value) -> Vec<String> {
    t["timeline"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_quorum_never_counts_missing_vantages_as_up() {
    let pg = standby_e2e::start_primary().unwrap();
    let dead = format!("http://127.0.0.1:{}/health", standby_e2e::ports::free_port());
    // Both monitors see the target fail every time; their sample windows start and end at
    // different times (one runs before the other).
    let office = Env::new(&target("app", &dead, 1, 1, "60s"), None);
    let vps = Env::new(&target("app", &dead, 1, 1, "60s"), None);
    let store = pg.conninfo();
    let from = now_rfc3339();
    for (env, vantage) in [(&office, "office"), (&office, "office"), (&vps, "vps"), (&vps, "vps")] {
        assert_eq!(env.code(&["--store", &store, "--vantage", vantage, "check"]), 1);
    }
    let report = |q: &str| office.run(&["--store", &store, "report", "--since", &from, "--quorum", q, "--json"]);
    let out = report("3");
    assert_eq!(out.status.code(), Some(2), "a quorum of 3 with 2 vantages: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only 2 vantage(s)") && err.contains("office, vps"), "{err}");
    for q in ["1", "2"] {
        let out = report(q);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let t = &r["targets"][0];
        assert!(t["observed_ms"].as_i64().unwrap() > 0, "quorum {q}: {t}");
        assert_eq!(t["downtime_ms"], t["observed_ms"], "quorum {q}: every known moment is down: {t}");
        assert_eq!(t["uptime_pct"].as_f64(), Some(0.0), "quorum {q}: {t}");
        assert!(!segment_kinds(t).contains(&"up".to_string()), "quorum {q}: nothing drawn as up: {t}");
    }
    // With a quorum of 2, the time only one monitor watched (before the VPS's first check)
    // is unknown, not up.
    let r = office.json(&["--store", &store, "report", "--since", &from, "--quorum", "2", "--json"]);
    let one = office.json(&["--store", &store, "--vantage", "office", "report", "--since", &from, "--json"]);
    assert!(
        r["targets"][0]["unknown_ms"].as_i64().unwrap() > one["targets"][0]["unknown_ms"].as_i64().unwrap(),
        "quorum 2: {}\noffice alone: {}",
        r["targets"][0],
        one["targets"][0]
    );
}

#[test]
fn a_clock_stepping_back_never_turns_failures_into_uptime() {
    let dead = format!("http://127.0.0.1:{}/health", standby_e2e::ports::free_port());
    let env = Env::new(&target("app", &dead, 3, 1, "60s"), None);
    let from = downtime_monitor::clock::fmt(now_ms() - 2 * 3_600_000);
    assert_eq!(env.code(&["check"]), 0, "1 failure of 3");
    // The second check runs with the clock one hour back (faketime, as an NTP step would).
    let mut stepped = Command::new("faketime");
    stepped.arg("-f").arg("-1h").arg(env!("CARGO_BIN_EXE_downtime-monitor"));
    stepped.arg("--config").arg(&env.config).arg("--state-dir").arg(env.dir.path().join("state"));
    let out = stepped.args(["check", "--json"]).env_remove("STANDBY_CONFIG").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "2 failures of 3: {}", String::from_utf8_lossy(&out.stderr));
    let round: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(round["targets"][0]["clock_step"], true, "{round}");
    assert_eq!(env.code(&["check"]), 1, "3 failures: DOWN");
    let r = env.json(&["report", "--since", &from, "--json"]);
    let t = &r["targets"][0];
    assert_eq!(t["uptime_pct"].as_f64(), Some(0.0), "a target that always failed: {t}");
    assert_eq!(t["downtime_ms"], t["observed_ms"], "{t}");
    assert!(!segment_kinds(t).contains(&"up".to_string()), "{t}");
    assert_eq!(t["clock_steps"], 1, "{t}");
    assert!(t["notes"][0].as_str().unwrap().contains("clock stepped back"), "{t}");
    let human = String::from_utf8_lossy(&env.run(&["report", "--since", &from]).stdout).to_string();
    assert!(human.contains("uptime 0.00%") && human.contains("note: the clock stepped back"), "{human}");
    // The sample is kept, flagged.
    let db = env.dir.path().join("state/monitor.db");
    assert_eq!(rusqlite_count(&db, "SELECT count(*) FROM samples WHERE clock_step = 1"), 1);
    assert_eq!(rusqlite_count(&db, "SELECT count(*) FROM samples"), 3);
}

/// An SVG timeline as the test reads it: the first row's plot area (from its segments), its
/// axis labels with their x, the outage rectangles' widths, and the smallest font size.
struct Timeline {
    left: f64,
    right: f64,
    labels: Vec<(f64, String)>,
    down_widths: Vec<f64>,
    smallest_font: f64,
}

fn read_timeline(svg: &str) -> Timeline {
    let doc = roxmltree::Document::parse(svg).expect("valid SVG (XML)");
    let num = |n: &roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    // The segment rectangles of the first row: the legend's swatches are 14 px high.
    let segs: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && num(n, "height") > 20.0 && num(n, "width") < 999.0)
        .collect();
    let top = segs.iter().map(|n| num(n, "y")).fold(f64::MAX, f64::min);
    let row: Vec<&roxmltree::Node> = segs.iter().filter(|n| num(n, "y") == top).collect();
    let left = row.iter().map(|n| num(n, "x")).fold(f64::MAX, f64::min);
    let right = row.iter().map(|n| num(n, "x") + num(n, "width")).fold(f64::MIN, f64::max);
    let down_widths = row
        .iter()
        .filter(|n| n.attribute("fill").unwrap().eq_ignore_ascii_case("#CF222E"))
        .map(|n| num(n, "width"))
        .collect();
    let label = regex::Regex::new(r"^(\d\d:\d\d|\d\d-\d\d|\d{4}-\d\d)$").unwrap();
    let texts: Vec<roxmltree::Node> = doc.descendants().filter(|n| n.has_tag_name("text")).collect();
    let labels = texts
        .iter()
        .filter_map(|n| {
            let t = n.text().unwrap_or("").trim().to_string();
            label.is_match(&t).then(|| (num(n, "x"), t))
        })
        .filter(|(x, _)| *x >= left && *x <= right)
        .collect();
    let smallest_font = texts.iter().map(|n| num(n, "font-size")).fold(f64::MAX, f64::min);
    Timeline { left, right, labels, down_widths, smallest_font }
}

/// Each axis label names the time at its position, to within a pixel and a half: the time
/// under the label is formatted as the label would be and compared.
fn assert_labels_match_positions(tl: &Timeline, from: i64, to: i64) {
    assert!(tl.labels.len() >= 2, "ticks are labelled: {:?}", tl.labels);
    let per_px = (to - from) as f64 / (tl.right - tl.left);
    for (x, text) in &tl.labels {
        let at = from + ((x - tl.left) * per_px) as i64;
        let near: Vec<String> = [-1.5, 0.0, 1.5]
            .iter()
            .map(|dx| {
                let t = downtime_monitor::clock::fmt(at + (dx * per_px) as i64);
                match text.len() {
                    5 if text.contains(':') => t[11..16].to_string(),
                    5 => t[5..10].to_string(),
                    _ => t[..7].to_string(),
                }
            })
            .collect();
        assert!(near.contains(text), "the label {text} at x={x} stands at {}", downtime_monitor::clock::fmt(at));
        if text.contains(':') {
            // A round time: a whole multiple of minutes within a pixel and a half.
            let off = (at.rem_euclid(60_000)).min(60_000 - at.rem_euclid(60_000)) as f64;
            assert!(off <= 1.5 * per_px, "the label {text} is {off} ms off a whole minute");
        }
    }
}

#[test]
fn a_5_minute_outage_stays_visible_on_a_30_day_timeline_with_round_labelled_ticks() {
    let env = Env::new("", None);
    let log = env.dir.path().join("vf.log");
    std::fs::write(&log, "Mon Jan 12 05:00:01 SAST 2026: VF Server DOWN\n").unwrap();
    let (since, until) = ("2026-01-01", "2026-01-31");
    // The old script ran all month.
    let import = ["import", "--format", "seed-log", log.to_str().unwrap(), "--target", "vf", "--interval", "5m"];
    let out = env.run(&[&import[..], &["--from", since, "--until", until]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let svg = env.dir.path().join("30d.svg");
    let args = ["report", "--since", since, "--until", until, "--format", "svg", "-o", svg.to_str().unwrap()];
    assert_eq!(env.code(&args), 0);
    let tl = read_timeline(&std::fs::read_to_string(&svg).unwrap());
    assert_eq!(tl.down_widths.len(), 1, "one outage drawn");
    assert!(tl.down_widths[0] >= 2.0, "the outage is at least 2 px wide: {:?}", tl.down_widths);
    let day = 86_400_000;
    let from = downtime_monitor::clock::parse_when(since, 0).unwrap();
    let to = from + 30 * day;
    assert_labels_match_positions(&tl, from, to);
    // 30 days: one tick a week (Mondays 5, 12, 19, 26 January 2026), labelled with the date.
    let texts: Vec<&str> = tl.labels.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["01-05", "01-12", "01-19", "01-26"]);
    assert!(tl.smallest_font >= 11.0, "readable labels: {} px", tl.smallest_font);
    // The HTML lists the incident next to the timeline.
    let html =
        String::from_utf8_lossy(&env.run(&["report", "--since", since, "--until", until, "--format", "html"]).stdout)
            .to_string();
    assert!(html.contains("<h2>vf incidents</h2>") && html.contains("<td>2026-01-12T03:00:01Z</td>"), "{html}");
}

#[test]
fn a_2_hour_timeline_has_ticks_on_round_minutes_labelled_with_their_time() {
    let app = AppBackend::start("ticks").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    assert_eq!(env.code(&["check"]), 0);
    // The period starts after the one sample (on a whole second, as --since is written), so
    // the report keeps it rather than starting at the history's first record.
    let from = (now_ms() / 1000 + 1) * 1000;
    let to = from + 2 * 3_600_000 + 17_000;
    let (since, until) = (downtime_monitor::clock::fmt(from), downtime_monitor::clock::fmt(to));
    let svg = env.dir.path().join("2h.svg");
    let args = ["report", "--since", &since, "--until", &until, "--format", "svg", "-o", svg.to_str().unwrap()];
    assert_eq!(env.code(&args), 0);
    let tl = read_timeline(&std::fs::read_to_string(&svg).unwrap());
    assert_labels_match_positions(&tl, from, to);
    assert!(tl.labels.iter().all(|(_, t)| t.contains(':') || t.contains('-')), "{:?}", tl.labels);
    assert!(tl
        .labels
        .iter()
        .any(|(_, t)| t.ends_with(":00") || t.ends_with(":15") || t.ends_with(":30") || t.ends_with(":45")));
}

#[test]
fn a_report_starts_at_the_first_sample_and_withholds_its_decision_while_most_is_unknown() {
    let app = AppBackend::start("withheld").unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), None);
    let before = now_ms();
    assert_eq!(env.code(&["check"]), 0);
    let r = env.json(&["report", "--since", "365d", "--json"]);
    let first = r["from_ms"].as_i64().unwrap();
    assert!(first >= before - 1000 && first <= now_ms(), "the report starts at the first sample: {r}");
    let t = &r["targets"][0];
    assert_eq!(t["unknown_ms"], 0, "{t}");
    assert_eq!(t["decision"], "do nothing", "{t}");
    // Old history a day long, then nothing until today's check: most of the period is unknown.
    let log = env.dir.path().join("old.log");
    std::fs::write(&log, "Mon Jan 12 05:00:01 SAST 2026: app DOWN\n").unwrap();
    assert_eq!(env.code(&["import", "--format", "seed-log", log.to_str().unwrap(), "--target", "app"]), 0);
    let r = env.json(&["report", "--since", "2025-06-01", "--json"]);
    assert_eq!(r["from"], "2026-01-12T00:00:00Z", "{r}");
    let t = &r["targets"][0];
    assert!(t["uptime_pct"].as_f64().is_some(), "{t}");
    assert!(t["decision"].is_null(), "no decision from a day of data in months: {t}");
    assert!(t["decision_withheld"].as_str().unwrap().contains("unknown"), "{t}");
    let human = String::from_utf8_lossy(&env.run(&["report", "--since", "2025-06-01"]).stdout).to_string();
    assert!(human.contains("decision withheld") && !human.contains("decision: "), "{human}");
}

#[test]
fn monthly_rows_follow_the_configured_time_zone() {
    let env = Env::new("timezone = \"Africa/Johannesburg\"\n", None);
    let log = env.dir.path().join("vf.log");
    // 01:30 on 1 April in Johannesburg is 23:30 on 31 March in UTC.
    std::fs::write(&log, "Wed Apr  1 01:30:01 SAST 2026: VF Server DOWN\n").unwrap();
    let out = env.run(&["import", "--format", "seed-log", log.to_str().unwrap(), "--target", "vf"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let months = |extra: &[&str]| {
        let r = env.json(
            &[extra, &["report", "--since", "2026-03-01", "--until", "2026-05-01", "--monthly", "--json"]].concat(),
        );
        let rows: Vec<(String, i64)> = r["targets"][0]["months"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["month"].as_str().unwrap().to_string(), m["incidents"].as_i64().unwrap()))
            .collect();
        (r["timezone"].as_str().unwrap().to_string(), rows)
    };
    let (zone, rows) = months(&[]);
    assert_eq!(zone, "Africa/Johannesburg");
    // (--until is UTC midnight: 02:00 on 1 May locally, so a short May row follows.)
    assert_eq!(rows[..2], [("2026-03".to_string(), 0), ("2026-04".to_string(), 1)], "the outage is in April locally");
    let (zone, rows) = months(&["--timezone", "UTC"]);
    assert_eq!(zone, "UTC");
    assert_eq!(rows[0], ("2026-03".to_string(), 1), "and in March in UTC: {rows:?}");
    let out = env.run(&["--timezone", "Mars/Olympus", "report"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Mars/Olympus"));
}

#[test]
fn an_alert_that_failed_is_kept_in_the_outbox_and_delivered_on_a_later_round() {
    let app = AppBackend::start("outbox").unwrap();
    let hook = Webhook::start(500).unwrap();
    let env = Env::new(&target("app", &app.url("/health"), 1, 1, "60s"), Some(&hook));
    assert_eq!(env.code(&["check"]), 0);
    app.set_healthy(false);
    assert_eq!(env.code(&["check"]), 1, "DOWN");
    assert_eq!(hook.received().len(), 1, "one try, answered 500");
    let db = env.dir.path().join("state/monitor.db");
    assert_eq!(rusqlite_count(&db, "SELECT count(*) FROM outbox WHERE delivered IS NULL"), 1, "kept");
    assert_eq!(env.code(&["check"]), 1);
    assert_eq!(hook.received().len(), 2, "tried again on the next round");
    hook.set_status(200);
    assert_eq!(env.code(&["check"]), 1);
    let got = hook.received();
    assert_eq!(got.len(), 3, "delivered");
    let down = got[2].json();
    assert_eq!((down["kind"].as_str(), down["subject"].as_str()), (Some("down"), Some("app")), "{down}");
    assert!(down["message"].as_str().unwrap().contains("delayed"), "{down}");
    assert_eq!(rusqlite_count(&db, "SELECT count(*) FROM outbox WHERE delivered IS NULL"), 0);
    assert_eq!(env.code(&["check"]), 1);
    assert_eq!(hook.received().len(), 3, "a delivered alert is not sent again");
    app.set_healthy(true);
    assert_eq!(env.code(&["check"]), 0);
    let got = hook.received();
    assert_eq!((got.len(), got[3].json()["kind"].as_str()), (4, Some("recovered")));
}

#[test]
fn thresholds_of_0_empty_names_disordered_decisions_and_windows_for_unknown_targets_are_exit_2() {
    let app = AppBackend::start("bad-input").unwrap();
    let ok = target("app", &app.url("/health"), 1, 1, "60s");
    for (body, at, says) in [
        (target("app", &app.url("/health"), 0, 1, "60s"), "[[downtime-monitor.target]]", "at least 1"),
        (target("app", &app.url("/health"), 1, 0, "60s"), "[[downtime-monitor.target]]", "at least 1"),
        (target("", &app.url("/health"), 1, 1, "60s"), "[[downtime-monitor.target]]", "the name is empty"),
        (
            format!("decision = {{ do-nothing-above = 80.0, watch-above = 85.0, ups-above = 95.0 }}\n{ok}"),
            "decision",
            "must go down",
        ),
        (
            format!("decision = {{ do-nothing-above = 195.0, watch-above = 85.0, ups-above = 80.0 }}\n{ok}"),
            "decision",
            "0-100",
        ),
        (
            format!("{ok}\n[[downtime-monitor.maintenance]]\ntarget = \"ap\"\nstart = \"02:00\"\nduration = \"1h\"\n"),
            "[[downtime-monitor.maintenance]]",
            "did you mean \"app\"",
        ),
    ] {
        // The file is "[downtime-monitor]", "vantage = ...", then the body: the error names the
        // line that starts with `at`.
        let n = body.lines().position(|l| l.starts_with(at)).unwrap() + 3;
        let line = format!("standby.toml:{n}:1:");
        let env = Env::new(&body, None);
        let out = env.run(&["check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(&line) && err.contains(says), "{line}: {body}: {err}");
    }
    let env = Env::new(&ok, None);
    assert_eq!(env.code(&["--decision", "80,85,95", "check"]), 2, "the flag is checked too");
    assert_eq!(env.code(&["--decision", "96,86,81", "check"]), 0);
}

#[test]
fn seed_log_lines_written_by_real_date_in_many_zones_and_formats_are_read() {
    let env = Env::new("", None);
    // One instant, 2026-11-24T12:05:01Z, as `date` prints it in several zones and formats.
    let ts = "2026-11-24T12:05:01Z";
    let mut log = String::new();
    for tz in ["Africa/Johannesburg", "Asia/Dubai", "America/Sao_Paulo", "America/New_York", "Asia/Kolkata", "UTC"] {
        for format in [None, Some("+%a %d %b %Y %I:%M:%S %p %Z"), Some("+%a %d %b %H:%M:%S %Z %Y")] {
            let mut date = Command::new("date");
            date.env("TZ", tz).env("LC_ALL", "C").args(["-d", ts]);
            if let Some(f) = format {
                date.arg(f);
            }
            let out = date.output().unwrap();
            assert!(out.status.success());
            log.push_str(&format!("{}: VF Server DOWN\n", String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    let path = env.dir.path().join("vf.log");
    std::fs::write(&path, &log).unwrap();
    let out = env.run(&["import", "--format", "seed-log", path.to_str().unwrap(), "--target", "vf"]);
    assert_eq!(out.status.code(), Some(0), "{log}{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 18 DOWN line(s) as 1 outage(s)"), "{log}");
    let r = env.json(&["report", "--since", "2026-11-24", "--until", "2026-11-25", "--json"]);
    assert_eq!(r["targets"][0]["incident_list"][0]["started"], "2026-11-24T12:05:01Z", "{log}");
    // An offset that starts with '-' is a value; it applies to lines without a known zone.
    std::fs::write(&path, "Tue Nov 24 07:05:01 2026: VF Server DOWN\nnot a line\n").unwrap();
    let import =
        ["import", "--format", "seed-log", path.to_str().unwrap(), "--target", "vf2", "--utc-offset", "-05:00"];
    let out = env.run(&import);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vf.log:2:"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env.run(&[&import[..], &["--skip-bad-lines"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vf.log:2: skipped"));
    let r = env.json(&["report", "--target", "vf2", "--since", "2026-11-24", "--until", "2026-11-25", "--json"]);
    assert_eq!(r["targets"][0]["incident_list"][0]["started"], "2026-11-24T12:05:01Z");
}
