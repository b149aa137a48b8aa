//! downtime-monitor's `kind = "ups"` targets against a real upsd with Debian's dummy-ups
//! driver: a power cut written into the dummy's file is ON BATTERY (not DOWN) with one
//! `on-battery` alert, a runtime under `low-runtime` one `battery-low`, LB is DOWN, mains back
//! is `power-restored`; the readings are kept with the samples; upsd stopped is DOWN.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use standby_e2e::webhook::Webhook;
use standby_e2e::Nut;

const NUT_PATIENCE: Duration = Duration::from_secs(30);

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new(body: &str, hook: &Webhook) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[downtime-monitor]\nvantage = \"test\"\n{body}\n\n[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\n",
            hook.url("/alert")
        );
        let config = dir.path().join("standby.toml");
        std::fs::write(&config, text).unwrap();
        Env { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_downtime-monitor"));
        c.arg("--config").arg(&self.config).arg("--state-dir").arg(self.dir.path().join("state"));
        c.args(args).env_remove("STANDBY_CONFIG").env_remove("RUST_LOG").env("UPSD_PW", "pw-never-shown");
        c.output().unwrap()
    }

    /// `check --json`: exit code and the one target's line.
    fn check(&self) -> (i32, serde_json::Value) {
        let out = self.run(&["check", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        });
        (out.status.code().unwrap_or(-1), json["targets"][0].clone())
    }
}

fn ups_target(nut: &Nut, extra: &str) -> String {
    format!(
        "\n[[downtime-monitor.target]]\nname = \"mains\"\nkind = \"ups\"\naddress = \"{}\"\nups = \"apc\"\ninterval = \"10s\"\ntimeout = \"3s\"\nfailure-threshold = 1\nrecovery-threshold = 1\n{extra}\n",
        nut.address()
    )
}

fn kinds(hook: &Webhook) -> Vec<String> {
    hook.received().iter().map(|r| r.json()["kind"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn a_power_cut_is_on_battery_then_battery_low_then_down_then_restored_one_alert_each() {
    let nut = Nut::start().unwrap();
    let hook = Webhook::start(200).unwrap();
    let env = Env::new(&ups_target(&nut, "low-runtime = \"15m\""), &hook);

    let (code, line) = env.check();
    assert_eq!((code, line["health"].as_str(), line["power"].as_str()), (0, Some("up"), Some("mains")), "{line}");
    assert_eq!(line["reading"]["runtime_s"], 5400.0);
    assert!(kinds(&hook).is_empty());

    nut.on_battery(60, 1800).unwrap();
    nut.wait_status("OB DISCHRG", NUT_PATIENCE).unwrap();
    let (code, line) = env.check();
    assert_eq!((code, line["health"].as_str(), line["power"].as_str()), (0, Some("up"), Some("on-battery")), "{line}");
    assert_eq!(kinds(&hook), ["on-battery"]);
    let alert = hook.received()[0].json();
    assert_eq!((alert["subject"].as_str(), alert["details"]["runtime_s"].as_f64()), (Some("mains"), Some(1800.0)));
    assert!(alert["message"].as_str().unwrap().contains("ON BATTERY"), "{alert}");
    assert_eq!(env.check().0, 0);
    assert_eq!(kinds(&hook), ["on-battery"], "no repeat while the cut lasts");

    // Runtime under low-runtime (15 min): battery-low, still up (the UPS carries the load).
    nut.on_battery(35, 600).unwrap();
    nut.wait_status("OB DISCHRG", NUT_PATIENCE).unwrap();
    let mut line = serde_json::Value::Null;
    for _ in 0..60 {
        let (code, l) = env.check();
        assert_eq!(code, 0, "{l}");
        line = l;
        if line["reading"]["runtime_s"] == 600.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(line["power"], "battery-low", "{line}");
    assert_eq!(kinds(&hook), ["on-battery", "battery-low"]);

    // LB: DOWN, and no second battery-low.
    nut.low_battery(8, 120).unwrap();
    nut.wait_status("OB DISCHRG LB", NUT_PATIENCE).unwrap();
    let (code, line) = env.check();
    assert_eq!((code, line["health"].as_str()), (1, Some("down")), "{line}");
    assert!(line["error"].as_str().unwrap().contains("battery low"), "{line}");
    assert_eq!(kinds(&hook), ["on-battery", "battery-low", "down"]);

    nut.on_line(20).unwrap();
    nut.wait_status("OL CHRG", NUT_PATIENCE).unwrap();
    let (code, line) = env.check();
    assert_eq!((code, line["health"].as_str(), line["power"].as_str()), (0, Some("up"), Some("mains")), "{line}");
    assert_eq!(kinds(&hook), ["on-battery", "battery-low", "down", "recovered", "power-restored"]);
    let restored = hook.received()[4].json();
    assert!(restored["details"]["duration_s"].as_i64().unwrap() >= 0, "{restored}");
    assert!(restored["message"].as_str().unwrap().contains("POWER RESTORED after"), "{restored}");

    // The readings are kept with the samples.
    let db = env.dir.path().join("state").join("monitor.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let on_battery: i64 =
        conn.query_row("SELECT count(*) FROM samples WHERE power LIKE '%\"OB\"%'", [], |r| r.get(0)).unwrap();
    let all: i64 = conn.query_row("SELECT count(*) FROM samples WHERE power IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert!(on_battery >= 4 && all > on_battery, "{on_battery} of {all}");
}

#[test]
fn an_unreachable_upsd_or_unknown_ups_is_down_and_secrets_stay_hidden() {
    let mut nut = Nut::start().unwrap();
    let hook = Webhook::start(200).unwrap();
    let body = ups_target(&nut, "username = \"monitor\"\npassword-env = \"UPSD_PW\"")
        + &ups_target(&nut, "").replace("\"mains\"", "\"other\"").replace("\"apc\"", "\"nosuch\"");
    let env = Env::new(&body, &hook);
    let out = env.run(&["check", "--json"]);
    assert_eq!(out.status.code(), Some(1), "the unknown UPS is DOWN");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["targets"][0]["health"], "up", "{json}");
    assert_eq!(json["targets"][1]["health"], "down", "{json}");
    assert!(json["targets"][1]["error"].as_str().unwrap().contains("UNKNOWN-UPS"), "{json}");

    nut.stop_upsd();
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unreachable"), "{text}");
    assert!(!format!("{text}{}", String::from_utf8_lossy(&out.stderr)).contains("pw-never-shown"));
    assert!(kinds(&hook).iter().filter(|k| *k == "down").count() == 2, "{:?}", kinds(&hook));
}

#[test]
fn a_ups_target_without_its_name_is_a_config_error() {
    let hook = Webhook::start(200).unwrap();
    let env = Env::new(
        "\n[[downtime-monitor.target]]\nname = \"mains\"\nkind = \"ups\"\naddress = \"127.0.0.1:3493\"\n",
        &hook,
    );
    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs `ups"), "{out:?}");
}

/// `check` until the UPS's reading shows `runtime_s` (the dummy driver re-reads its file on
/// its own time).
fn check_until_runtime(env: &Env, runtime_s: f64) -> serde_json::Value {
    for _ in 0..100 {
        let (_, line) = env.check();
        if line["reading"]["runtime_s"] == runtime_s {
            return line;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the UPS never reported runtime {runtime_s}");
}

#[test]
fn the_report_counts_cuts_hours_on_battery_the_lowest_runtime_and_cuts_that_outlasted_the_battery() {
    let nut = Nut::start().unwrap();
    let hook = Webhook::start(200).unwrap();
    let env = Env::new(&ups_target(&nut, ""), &hook);
    check_until_runtime(&env, 5400.0);

    // A short cut, carried to the end.
    nut.on_battery(90, 3000).unwrap();
    nut.wait_status("OB DISCHRG", NUT_PATIENCE).unwrap();
    check_until_runtime(&env, 3000.0);
    env.check();
    nut.on_line(85).unwrap();
    nut.wait_status("OL CHRG", NUT_PATIENCE).unwrap();
    assert_eq!(check_until_runtime(&env, 5400.0)["power"], "mains");

    // A long one that reaches LB.
    nut.on_battery(40, 900).unwrap();
    nut.wait_status("OB DISCHRG", NUT_PATIENCE).unwrap();
    check_until_runtime(&env, 900.0);
    nut.low_battery(8, 120).unwrap();
    nut.wait_status("OB DISCHRG LB", NUT_PATIENCE).unwrap();
    check_until_runtime(&env, 120.0);
    nut.on_line(20).unwrap();
    nut.wait_status("OL CHRG", NUT_PATIENCE).unwrap();
    assert_eq!(check_until_runtime(&env, 5400.0)["power"], "mains");
    assert_eq!(kinds(&hook).iter().filter(|k| *k == "on-battery").count(), 2, "{:?}", kinds(&hook));

    // What the figures must be, from the samples themselves: each cut runs from its first
    // on-battery sample to the first on-line one after it.
    let db = env.dir.path().join("state").join("monitor.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn.prepare("SELECT at, power FROM samples ORDER BY at").unwrap();
    let rows: Vec<(i64, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    let mut cuts: Vec<(i64, i64)> = Vec::new();
    let mut open = None;
    for (at, power) in &rows {
        let ob = power.contains("\"OB\"");
        match (open, ob) {
            (None, true) => open = Some(*at),
            (Some(s), false) => {
                cuts.push((s, *at));
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!(cuts.len(), 2, "{rows:?}");

    let out = env.run(&["report", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &json["targets"][0]["power"];
    assert_eq!(p["cuts"], 2, "{p}");
    assert_eq!(p["cuts_outlasted_battery"], 1, "{p}");
    assert_eq!(p["lowest_runtime_s"], 120.0, "{p}");
    assert_eq!(p["cut_list"][0]["started_ms"], cuts[0].0, "{p}");
    assert_eq!(p["cut_list"][0]["duration_ms"], cuts[0].1 - cuts[0].0, "{p}");
    assert_eq!(p["cut_list"][1]["duration_ms"], cuts[1].1 - cuts[1].0, "{p}");
    assert_eq!(p["cut_list"][0]["lowest_runtime_s"], 3000.0, "{p}");
    assert!(p["cut_list"][0].get("outlasted_battery").is_none(), "{p}");
    assert_eq!(p["cut_list"][1]["outlasted_battery"], "LB", "{p}");
    let longest = (cuts[0].1 - cuts[0].0).max(cuts[1].1 - cuts[1].0);
    assert_eq!(p["longest_cut_ms"], longest, "{p}");
    // The samples come less than 1.5 intervals apart, so the UPS carried every cut whole.
    let total = (cuts[0].1 - cuts[0].0) + (cuts[1].1 - cuts[1].0);
    assert_eq!(p["on_battery_ms"], total, "{p}");
    let band = json["targets"][0]["power_timeline"].as_array().unwrap();
    assert_eq!(band.len(), 2, "{band:?}");
    assert_eq!((band[1]["start"].as_i64(), band[1]["kind"].as_str()), (Some(cuts[1].0), Some("on-battery")));
    // Not a UPS: no power figures.
    assert!(json["targets"].as_array().unwrap().iter().all(|t| t["name"] == "mains"));

    let out = env.run(&["report"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("in 2 cut(s)") && text.contains("1 cut(s) outlasted the battery"), "{text}");
    assert!(text.contains("outlasted the battery (LB)"), "{text}");
    let out = env.run(&["report", "--format", "html"]);
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(html.contains("<h2>Power (UPS)</h2>") && html.contains("mains power cuts"), "{html}");
    assert!(html.contains("on battery (UPS)"), "the legend names the band");
    assert!(html.contains("#BF8700") || html.contains("191,135,0") || html.contains("rgb(191"), "the band is drawn");
}
