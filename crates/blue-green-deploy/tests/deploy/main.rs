//! blue-green-deploy against a real private nginx and two app colours from the harness.

mod fleet;
mod load;

use fleet::Fleet;

fn outcome(json: &serde_json::Value) -> &str {
    json["outcome"].as_str().unwrap_or_default()
}

#[test]
fn status_names_the_live_colour_from_the_upstream_file() {
    let fleet = Fleet::start("");
    let (code, json, stderr) = fleet.run(&["status"]);
    assert_eq!(code, 0, "{json} {stderr}");
    assert_eq!(json["live"], "blue");
    assert_eq!(json["colors"][0]["health"]["ok"], true);
    assert_eq!(json["colors"][1]["health"]["ok"], false, "green is stopped");
}

#[test]
fn a_deploy_switches_colour_and_stops_the_old_one_both_ways() {
    let fleet = Fleet::start("watch = \"1s\"");
    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-2"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!((outcome(&json), json["live"].as_str()), ("deployed", Some("green")));
    let steps: Vec<&str> = json["steps"].as_array().expect("steps").iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(steps, ["start", "health", "smoke", "switch", "verify", "watch", "drain", "stop-old"]);
    assert_eq!(json["smoke"]["passed"], 2, "the smoke report is part of the deploy's");
    assert_eq!(fleet.live_in_file(), "green");
    assert_eq!(fleet.through_nginx(), ("green".to_string(), "green release-2".to_string()));
    assert!(!fleet.running("blue"), "the old colour is stopped");

    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-3"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!(fleet.live_in_file(), "blue");
    assert_eq!(fleet.through_nginx(), ("blue".to_string(), "blue release-3".to_string()));
    assert!(!fleet.running("green"));

    let (code, json, _) = fleet.run(&["status"]);
    assert_eq!(code, 0);
    assert_eq!((json["live"].as_str(), json["last"]["outcome"].as_str()), (Some("blue"), Some("deployed")));
    assert_eq!(json["last"]["version"], "release-3");
}

fn assert_failed_before_switch(version: &str, failed_step: &str) {
    let fleet = Fleet::start("health-timeout = \"2s\"\nwatch = \"1s\"");
    let before = fleet.upstream();
    let (code, json, stderr) = fleet.run(&["deploy", "--version", version]);
    assert_eq!(code, 1, "{json:#} {stderr}");
    assert_eq!(outcome(&json), "failed");
    assert_eq!(json["changed"], false);
    let failed: Vec<&str> = json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["ok"] == false)
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(failed, [failed_step]);
    assert_eq!(fleet.upstream(), before, "the include is unchanged, byte for byte");
    assert_eq!(fleet.through_nginx().0, "blue");
    assert!(!fleet.running("green"), "the failed colour is stopped again");
    assert!(fleet.running("blue"));
}

#[test]
fn a_version_failing_health_never_receives_traffic() {
    assert_failed_before_switch("release-unhealthy", "health");
}

#[test]
fn a_version_failing_the_smoke_suite_never_receives_traffic() {
    assert_failed_before_switch("smoke-fails", "smoke");
}

#[test]
fn a_version_failing_during_the_watch_is_rolled_back() {
    let fleet = Fleet::start("watch = \"30s\"");
    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-flaky"]);
    assert_eq!(code, 1, "{json:#} {stderr}");
    assert_eq!(outcome(&json), "rolled-back", "{json:#}");
    assert_eq!((json["changed"].as_bool(), json["live"].as_str()), (Some(true), Some("blue")));
    assert_eq!(fleet.live_in_file(), "blue");
    assert_eq!(fleet.through_nginx().0, "blue");
    assert!(!fleet.running("green"));
    let (code, json, _) = fleet.run(&["status"]);
    assert_eq!((code, json["last"]["outcome"].as_str()), (0, Some("rolled-back")));
}

#[test]
fn an_upstream_nginx_rejects_is_restored_and_nothing_is_reloaded() {
    let fleet = Fleet::start("");
    fleet.start_color("green", "release-2");
    let before = fleet.upstream();
    // Someone else's broken file makes `nginx -t` fail whatever we write.
    std::fs::write(fleet.nginx.prefix.join("extra-broken.conf"), "this is not nginx;\n").expect("write");
    let (code, json, stderr) = fleet.run(&["switch", "--to", "green"]);
    assert_eq!(code, 1, "{json:#} {stderr}");
    let detail = json["steps"].as_array().expect("steps").last().expect("a step")["detail"].to_string();
    assert!(detail.contains("nginx -t") && detail.contains("restored"), "{detail}");
    assert_eq!(fleet.upstream(), before, "the previous include is back");
    assert_eq!(fleet.through_nginx().0, "blue");

    std::fs::remove_file(fleet.nginx.prefix.join("extra-broken.conf")).expect("rm");
    let (code, json, stderr) = fleet.run(&["switch", "--to", "green"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!(fleet.through_nginx().0, "green");
    // blue still runs: rollback goes back to it.
    let (code, json, stderr) = fleet.run(&["rollback"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!((fleet.live_in_file(), fleet.through_nginx().0.as_str()), ("blue", "blue"));
}

#[test]
fn rollback_refuses_when_the_previous_colour_is_not_running() {
    let fleet = Fleet::start("");
    let before = fleet.upstream();
    let (code, json, _) = fleet.run(&["rollback"]);
    assert_eq!((code, outcome(&json)), (1, "failed"));
    assert_eq!(fleet.upstream(), before);
}

#[test]
fn a_second_deploy_exits_3_while_one_holds_the_lock() {
    let fleet = Fleet::start("");
    std::fs::create_dir_all(fleet.state_dir()).expect("mkdir");
    let _held = standby_common::state::RunLock::acquire(&fleet.state_dir().join("deploy.lock")).expect("lock");
    let out = fleet.command(&["deploy", "--version", "release-2"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!fleet.running("green"), "nothing was started");
}

#[test]
fn no_deploy_starts_while_a_failover_holds_the_switching_lock() {
    let fleet = Fleet::start("");
    let before = fleet.upstream();
    let _held =
        standby_common::switching::SwitchLock::acquire_in(&fleet.run_dir(), "replica-promote", "promoting the standby")
            .expect("lock");
    for args in [&["deploy", "--version", "release-2"][..], &["switch", "--to", "green"], &["rollback"]] {
        let out = fleet.command(args).output().expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("replica-promote") && err.contains("promoting the standby"), "names the holder: {err}");
    }
    assert!(!fleet.running("green"), "nothing was started");
    assert_eq!(fleet.upstream(), before, "nothing was switched");
}

#[test]
fn missing_keys_are_usage_errors_before_anything_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[blue-green-deploy]\nupstream-file = \"/nonexistent/up.conf\"\n").expect("write");
    let out = std::process::Command::new(fleet::BIN)
        .arg("--config")
        .arg(&config)
        .args(["--state-dir"])
        .arg(dir.path())
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[blue-green-deploy.blue] address"));
}

#[test]
fn under_load_a_deploy_and_a_rollback_fail_no_request_for_browser_like_clients() {
    use std::sync::atomic::Ordering::SeqCst;
    let fleet = Fleet::start("watch = \"3s\"\ndrain = \"2s\"");
    let mut load = load::Load::start(fleet.nginx.port, 4);
    // Traffic flows before the deploy starts (an event, not a sleep).
    assert!(standby_e2e::process::wait_until(std::time::Duration::from_secs(30), || load.answered() > 200));
    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-2"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-flaky"]);
    assert_eq!((code, outcome(&json)), (1, "rolled-back"), "{json:#} {stderr}");
    let before_end = load.answered();
    assert!(standby_e2e::process::wait_until(std::time::Duration::from_secs(30), || load.answered() > before_end + 200));
    load.stop();
    let (ka, cl) = (&load.keepalive, &load.close);
    let report = format!(
        "keep-alive (retrying once on a connection closed before any answer byte): {} ok, {} failed, {} retried \
         (= failures of a keep-alive client that does not retry); Connection: close: {} ok, {} failed",
        ka.ok.load(SeqCst),
        ka.failed.load(SeqCst),
        ka.retried.load(SeqCst),
        cl.ok.load(SeqCst),
        cl.failed.load(SeqCst),
    );
    eprintln!("{report}");
    assert_eq!(ka.failed.load(SeqCst), 0, "{report}");
    assert_eq!(cl.failed.load(SeqCst), 0, "{report}");
}

#[test]
fn a_deploy_killed_during_the_watch_leaves_a_healthy_live_colour_and_is_reported() {
    let fleet = Fleet::start("watch = \"60s\"");
    let mut child = fleet.command(&["deploy", "--version", "release-2"]).spawn().expect("spawn");
    let last = fleet.state_dir().join("last.json");
    let in_watch = || std::fs::read_to_string(&last).is_ok_and(|t| t.contains("\"step\": \"watch\""));
    assert!(standby_e2e::process::wait_until(std::time::Duration::from_secs(60), in_watch), "deploy reached the watch");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    // The include names a colour that answers through nginx.
    let live = fleet.live_in_file();
    assert_eq!(fleet.through_nginx().0, live);
    let (code, json, stderr) = fleet.run(&["status"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    let said = json["interrupted"].as_str().unwrap_or_default().to_string();
    assert!(said.contains("step `watch`") && said.contains("green"), "{json:#}");
    // The next deploy says so, re-applies the include, and deploys.
    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-3", "--watch=1s"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert!(json["interrupted_before"].as_str().is_some_and(|s| s.contains("watch")), "{json:#}");
    assert_eq!(json["steps"][0]["step"], "resync");
}

/// Socket mode: the switch is a symlink renamed over `live.sock`, with no nginx reload, so a
/// keep-alive client that never retries loses nothing either. Load runs from before the
/// first deploy to after the rollback, until at least 10,000 requests were answered.
#[test]
fn in_socket_mode_a_deploy_and_a_rollback_fail_no_request_even_for_clients_that_never_retry() {
    use std::sync::atomic::Ordering::SeqCst;
    use std::time::{Duration, Instant};
    let fleet = Fleet::start_sockets("watch = \"3s\"\ndrain = \"2s\"");
    let nginx_pid = fleet.nginx.pid().expect("nginx runs");
    let workers =
        || std::fs::read_to_string(format!("/proc/{nginx_pid}/task/{nginx_pid}/children")).unwrap_or_default();
    let workers_before = workers();
    assert!(!workers_before.trim().is_empty(), "nginx's workers are listed");
    let log_before = std::fs::metadata(fleet.nginx.log_path()).map_or(0, |m| m.len() as usize);
    assert!(
        String::from_utf8_lossy(&std::fs::read(fleet.nginx.log_path()).unwrap_or_default()).contains("reconfiguring"),
        "nginx's log shows reloads (the fleet's own, to the socket form)"
    );
    let started = Instant::now();
    let mut load = load::Load::start(fleet.nginx.port, 4);
    assert!(standby_e2e::process::wait_until(Duration::from_secs(30), || load.answered() > 200));

    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-2"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert!(fleet.link_target().ends_with("green.sock"));
    assert_eq!(fleet.through_nginx().0, "green");
    // An automatic rollback (the version turns unhealthy during the watch)...
    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-flaky"]);
    assert_eq!((code, outcome(&json)), (1, "rolled-back"), "{json:#} {stderr}");
    assert!(fleet.link_target().ends_with("green.sock"));
    // ...and a `rollback` by hand to a colour started by hand.
    fleet.start_color("blue", "release-4");
    let (code, json, stderr) = fleet.run(&["rollback"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!((fleet.live_in_file(), fleet.through_nginx().0.as_str()), ("blue", "blue"));

    assert!(standby_e2e::process::wait_until(Duration::from_secs(60), || load.answered() >= 10_000));
    load.stop();
    let seconds = started.elapsed().as_secs_f64();
    let (ka, cl) = (&load.keepalive, &load.close);
    let never_retrying = ka.failed.load(SeqCst) + ka.retried.load(SeqCst);
    let report = format!(
        "{:.0} requests/s over {seconds:.1} s; keep-alive: {} ok, {} failed, {} closed before an answer \
         (failures of a client that never retries: {never_retrying}); Connection: close: {} ok, {} failed",
        load.answered() as f64 / seconds,
        ka.ok.load(SeqCst),
        ka.failed.load(SeqCst),
        ka.retried.load(SeqCst),
        cl.ok.load(SeqCst),
        cl.failed.load(SeqCst),
    );
    eprintln!("{report}");
    assert_eq!(never_retrying, 0, "{report}");
    assert_eq!(cl.failed.load(SeqCst), 0, "{report}");
    // nginx logs at `notice`: a reload is a "reconfiguring" line, a crashed worker an
    // "exited on signal" one.
    let log = std::fs::read(fleet.nginx.log_path()).unwrap_or_default();
    let during = String::from_utf8_lossy(log.get(log_before..).unwrap_or_default());
    assert!(
        !during.contains("reconfiguring") && !during.contains("exited on signal"),
        "nginx was reloaded or lost a worker during the deploys (workers {workers_before:?} then {:?}):\n{during}",
        workers()
    );
}

#[test]
fn in_socket_mode_status_reports_a_link_that_disagrees_with_the_file_and_deploy_repairs_it() {
    let fleet = Fleet::start_sockets("watch = \"1s\"");
    fleet.start_color("green", "release-2");
    // As if a switch to green was killed after writing the file, before renaming the link.
    let text = fleet.upstream().replace("/blue.sock", "/green.sock");
    std::fs::write(fleet.nginx.upstream_path(), text).expect("write");
    let (code, json, stderr) = fleet.run(&["status"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!(json["live"], "green");
    let said = json["mismatch"].as_str().unwrap_or_default();
    assert!(said.contains("names green") && said.contains("go to blue"), "{json:#}");
    assert_eq!(fleet.through_nginx().0, "blue", "traffic still follows the link");

    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-3"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!(json["steps"][0]["step"], "resync", "{json:#}");
    assert_eq!((fleet.live_in_file(), fleet.through_nginx().0.as_str()), ("blue", "blue"));
    assert!(fleet.link_target().ends_with("blue.sock"));
    let (_, json, _) = fleet.run(&["status"]);
    assert!(json.get("mismatch").is_none(), "{json:#}");
}

/// kill -9 of `deploy` inside each step (held there by the fleet's hold files, a health check
/// that does not pass, a smoke suite that hangs before or after the switch, or a long watch or
/// drain): afterwards nginx sends traffic to a colour that runs and is healthy,
/// `status` exits 0 and names the step the run stopped at, and the next deploy recovers.
fn killed_at_each_step_leaves_a_healthy_live_colour(fleet: &Fleet, sockets: bool) {
    let last = fleet.state_dir().join("last.json");
    let step_is =
        |step: &str| std::fs::read_to_string(&last).is_ok_and(|t| t.contains(&format!("\"step\": \"{step}\"")));
    // (step, hold file, version marker, flags)
    let cases: [(&str, Option<&str>, &str, &[&str]); 8] = [
        ("start", Some("start"), "", &[]),
        ("health", None, "-unhealthy", &[]),
        ("smoke", None, "-slow-smoke", &[]),
        ("switch", Some("nginx-t"), "", &[]),
        ("verify", None, "-slow-verify", &[]),
        ("watch", None, "", &["--watch=60s"]),
        ("drain", None, "", &["--watch=1s", "--drain=60s"]),
        ("stop-old", Some("stop"), "", &["--watch=1s"]),
    ];
    for (i, (step, hold, marker, flags)) in cases.into_iter().enumerate() {
        let live_before = fleet.live_in_file();
        let to = if live_before == "blue" { "green" } else { "blue" };
        let upstream_before = fleet.upstream();
        let held = hold.map(|h| fleet.hold(h));
        let version = format!("release-k{i}{marker}");
        let mut args = vec!["deploy", "--version", version.as_str()];
        args.extend_from_slice(flags);
        let mut child = fleet
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // Inside the step: for the held ones, past the point the step holds at.
        let inside = || {
            step_is(step)
                && match step {
                    "start" => fleet.running(to),
                    "switch" => fleet.upstream() != upstream_before,
                    "stop-old" => !fleet.running(live_before),
                    _ => true,
                }
        };
        assert!(standby_e2e::process::wait_until(std::time::Duration::from_secs(60), inside), "deploy reached {step}");
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        drop(held);
        for app in fleet.apps.lock().expect("apps").iter() {
            app.set_body_delay(std::time::Duration::ZERO);
        }

        let resp = standby_e2e::http_client::get(&fleet.nginx.url("/app/")).expect("GET through nginx");
        let answered = resp.header("x-backend").unwrap_or_default().to_string();
        assert_eq!(resp.status, 200, "killed in {step}: {}", resp.text());
        assert!(fleet.running(&answered), "killed in {step}: traffic goes to {answered}, which runs");
        let (code, json, stderr) = fleet.run(&["status"]);
        assert_eq!(code, 0, "killed in {step}: {json:#} {stderr}");
        let said = json["interrupted"].as_str().unwrap_or_default();
        assert!(said.contains(&format!("step `{step}`")), "killed in {step}: {json:#}");
        if sockets && step == "switch" {
            // Killed between writing the file and renaming the link.
            assert_eq!(fleet.live_in_file(), to);
            assert!(json["mismatch"].is_string(), "{json:#}");
        }
    }
    // The next deploy repairs what was left and deploys.
    let (code, json, stderr) = fleet.run(&["deploy", "--version", "release-9", "--watch=1s"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    let (code, json, _) = fleet.run(&["status"]);
    assert_eq!(code, 0);
    assert!(json.get("mismatch").is_none() && json.get("interrupted").is_none(), "{json:#}");
    assert_eq!(fleet.through_nginx().0, fleet.live_in_file());
}

#[test]
fn a_deploy_killed_at_each_step_leaves_a_healthy_live_colour() {
    killed_at_each_step_leaves_a_healthy_live_colour(&Fleet::start(""), false);
}

#[test]
fn in_socket_mode_a_deploy_killed_at_each_step_leaves_a_healthy_live_colour() {
    killed_at_each_step_leaves_a_healthy_live_colour(&Fleet::start_sockets(""), true);
}

#[test]
fn the_first_switch_in_socket_mode_moves_an_address_include_to_the_link_with_one_reload() {
    let fleet = Fleet::start_sockets("");
    // An include written before socket mode was configured.
    let blue_port = fleet.apps.lock().unwrap_or_else(|p| p.into_inner())[0].port;
    std::fs::write(fleet.nginx.upstream_path(), format!("server 127.0.0.1:{blue_port};\n")).expect("write");
    fleet.nginx.reload().expect("reload");
    let (code, json, _) = fleet.run(&["status"]);
    assert_eq!((code, json["live"].as_str()), (0, Some("blue")), "{json:#}");

    fleet.start_color("green", "release-2");
    let (code, json, stderr) = fleet.run(&["switch", "--to", "green"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert!(fleet.upstream().contains("server unix:"), "{}", fleet.upstream());
    assert!(fleet.link_target().ends_with("green.sock"));
    assert_eq!(fleet.through_nginx().0, "green");
    // From now on a switch is the rename alone: the same nginx worker serves on.
    let pid = fleet.nginx.pid().expect("nginx runs");
    let workers = || std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let settled = standby_e2e::process::wait_until(std::time::Duration::from_secs(30), || {
        workers().split_whitespace().count() == 1
    });
    assert!(settled, "the reload's old worker exits");
    let before = workers();
    let (code, json, stderr) = fleet.run(&["switch", "--to", "blue"]);
    assert_eq!(code, 0, "{json:#} {stderr}");
    assert_eq!((fleet.live_in_file(), fleet.through_nginx().0.as_str()), ("blue", "blue"));
    assert_eq!(workers(), before, "no reload");
}
