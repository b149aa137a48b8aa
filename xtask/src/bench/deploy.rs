//! `deploy`: blue-green-deploy under load through a private nginx, during [`CYCLES`] rounds of
//! a `deploy` (blue → green, the old colour stopped after the drain) and a `rollback` (back to
//! blue, started by hand), with two kinds of client run by wrk at once: keep-alive (wrk never retries) and
//! `Connection: close`. Socket mode (a symlink renamed over `live.sock`, no reload) is ours;
//! the naive include swap + `nginx -s reload` runs under the same load in the same run.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use standby_e2e::{AppBackend, Nginx, NginxOptions};

use super::{release_bin, Row};

/// Seconds of load per mode; the cycles take about 15 of them.
const LOAD_S: u64 = 25;
/// Deploy + rollback cycles under the load (each: two switches).
const CYCLES: usize = 3;
/// wrk connections per client kind.
const CONNECTIONS: u32 = 8;

/// What one wrk run saw.
#[derive(Debug, Default, Clone, Copy)]
struct Wrk {
    requests: u64,
    failed: u64,
}

/// One mode's figures.
struct Outcome {
    keepalive: Wrk,
    close: Wrk,
    switch_s: f64,
}

pub fn run() -> anyhow::Result<Vec<Row>> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("wrk is not installed (scripts/install-bench-deps.sh, or apt-get install wrk)");
    }
    let ours = under_load(true)?;
    let naive = under_load(false)?;
    let requests = ours.keepalive.requests + ours.close.requests;
    let failed = ours.keepalive.failed + ours.close.failed;
    let naive_failed = naive.keepalive.failed + naive.close.failed;
    let rps = requests as f64 / LOAD_S as f64;
    let anchor = format!(
        "naive include swap + nginx -s reload, same load: {} of {} failed (keep-alive {}, close {})",
        naive_failed,
        naive.keepalive.requests + naive.close.requests,
        naive.keepalive.failed,
        naive.close.failed
    );
    let clients = format!("wrk -c{CONNECTIONS} keep-alive (never retries) + wrk -c{CONNECTIONS} Connection: close");
    Ok(vec![
        Row::at_least("deploy", "requests", requests as f64, &clients, 10_000.0),
        Row::at_most("deploy", "failed_requests", failed as f64, Some(naive_failed as f64), &anchor, 0.0, 1),
        Row::at_most(
            "deploy",
            "failed_requests_keepalive",
            ours.keepalive.failed as f64,
            Some(naive.keepalive.failed as f64),
            format!("of {} keep-alive requests; theirs: naive reload", ours.keepalive.requests),
            0.0,
            1,
        ),
        Row::at_most(
            "deploy",
            "failed_requests_close",
            ours.close.failed as f64,
            Some(naive.close.failed as f64),
            format!("of {} Connection: close requests; theirs: naive reload", ours.close.requests),
            0.0,
            1,
        ),
        Row {
            goal: "none: the anchor".into(),
            met: true,
            ..Row::at_most("deploy", "naive_failed_requests", naive_failed as f64, None, &anchor, 0.0, 1)
        },
        Row::at_least("deploy", "rps", rps, &clients, 500.0),
        Row::at_most(
            "deploy",
            "switch_s",
            ours.switch_s,
            Some(naive.switch_s),
            "healthy -> switched (no smoke suite), median of the deploys; theirs: include swap + reload",
            1.0,
            CYCLES,
        ),
    ])
}

/// Both colours behind nginx, the tool's start/stop through a small control server.
fn under_load(sockets: bool) -> anyhow::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let sock = |name: &str| dir.path().join(format!("{name}.sock"));
    let mut blue = AppBackend::start("blue")?;
    let mut green = AppBackend::start("green")?;
    if sockets {
        blue.listen_unix(&sock("blue"))?;
        green.listen_unix(&sock("green"))?;
    }
    green.stop();
    let nginx = Nginx::start(NginxOptions { upstream: Some(blue.port), ..NginxOptions::default() })?;
    if sockets {
        std::os::unix::fs::symlink(sock("blue"), sock("live"))?;
        let text = format!("# live-socket: {}\nserver unix:{};\n", sock("blue").display(), sock("live").display());
        std::fs::write(nginx.upstream_path(), text)?;
        nginx.reload()?;
    }
    let ports = [blue.port, green.port];
    let apps = Arc::new(Mutex::new([blue, green]));
    let control = control_server(apps.clone())?;
    let keys = |name: &str| if sockets { format!("socket = {:?}\n", sock(name)) } else { String::new() };
    let config = dir.path().join("standby.toml");
    std::fs::write(
        &config,
        format!(
            "[blue-green-deploy]\n\
             upstream-file = {upstream:?}\n\
             nginx = [\"nginx\", \"-p\", {prefix:?}, \"-c\", {conf:?}]\n\
             start = \"curl -fsS http://127.0.0.1:{control}/start/{{color}}\"\n\
             stop = \"curl -fsS http://127.0.0.1:{control}/stop/{{color}}\"\n\
             public-url = \"{public}\"\n\
             color-header = \"X-Backend\"\n\
             watch = \"1s\"\n\
             drain = \"1s\"\n\
             {live}\n\
             [blue-green-deploy.blue]\naddress = \"127.0.0.1:{b}\"\n{bs}\
             [blue-green-deploy.green]\naddress = \"127.0.0.1:{g}\"\n{gs}",
            upstream = nginx.upstream_path(),
            prefix = nginx.prefix,
            conf = nginx.conf_path(),
            public = nginx.url("/app"),
            live = if sockets { format!("live-socket = {:?}", sock("live")) } else { String::new() },
            b = ports[0],
            g = ports[1],
            bs = keys("blue"),
            gs = keys("green"),
        ),
    )?;

    let url = nginx.url("/app/");
    let keepalive = wrk(&url, false)?;
    let close = wrk(&url, true)?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let mut switch_s = Vec::new();
    for cycle in 0..CYCLES {
        let deploy = tool(dir.path(), &config, &["deploy", "--version", &format!("v{}", cycle + 2)])?;
        switch_s.push(healthy_to_switched(&deploy));
        apps.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[0].start_again()?;
        tool(dir.path(), &config, &["rollback"])?;
    }
    switch_s.sort_by(f64::total_cmp);
    let switch_s = switch_s[switch_s.len() / 2];
    if started.elapsed() > Duration::from_secs(LOAD_S - 2) {
        bail!("the deploy and the rollback took longer than the load ({LOAD_S} s)");
    }
    let (keepalive, close) = (keepalive.finish()?, close.finish()?);
    eprintln!(
        "xtask: deploy ({}): keep-alive {keepalive:?}, close {close:?}, switch {switch_s:.3} s (median)",
        if sockets { "socket link" } else { "naive reload" }
    );
    Ok(Outcome { keepalive, close, switch_s })
}

/// `/start/{color}` and `/stop/{color}` on a loopback port.
fn control_server(apps: Arc<Mutex<[AppBackend; 2]>>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
            let mut guard = apps.lock().unwrap_or_else(|p| p.into_inner());
            let i = usize::from(path.ends_with("/green"));
            let ok = if path.starts_with("/start/") {
                guard[i].start_again().is_ok()
            } else {
                guard[i].stop();
                true
            };
            let status = if ok { "200 OK" } else { "500 Internal Server Error" };
            let _ = (&stream)
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        }
    });
    Ok(port)
}

/// Run blue-green-deploy with `--json`; its report.
fn tool(dir: &Path, config: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(release_bin("blue-green-deploy"))
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--json")
        .args(args)
        .env("STANDBY_RUN_DIR", dir.join("run"))
        .env_remove("RUST_LOG")
        .output()
        .context("run blue-green-deploy")?;
    if !out.status.success() {
        bail!(
            "blue-green-deploy {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("blue-green-deploy's --json")
}

/// The steps after `health` up to and including `switch`.
fn healthy_to_switched(report: &serde_json::Value) -> f64 {
    let steps = report["steps"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap_or_default()).collect();
    let from = names.iter().position(|n| *n == "health").map_or(0, |i| i + 1);
    let to = names.iter().position(|n| *n == "switch").unwrap_or(from);
    steps[from..=to.max(from).min(steps.len().saturating_sub(1))].iter().filter_map(|s| s["duration_s"].as_f64()).sum()
}

struct WrkRun(Option<Child>, PathBuf);

fn wrk(url: &str, close: bool) -> anyhow::Result<WrkRun> {
    let out = tempfile::NamedTempFile::new()?.into_temp_path().keep()?;
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{LOAD_S}s")]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(url).stdout(std::fs::File::create(&out)?).stderr(Stdio::null());
    Ok(WrkRun(Some(cmd.spawn().context("run wrk")?), out))
}

impl WrkRun {
    fn finish(mut self) -> anyhow::Result<Wrk> {
        if let Some(mut child) = self.0.take() {
            child.wait()?;
        }
        let text = std::fs::read_to_string(&self.1)?;
        let _ = std::fs::remove_file(&self.1);
        parse_wrk(&text).with_context(|| format!("wrk's output:\n{text}"))
    }
}

impl Drop for WrkRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `N requests in ...`, `Socket errors: connect a, read b, write c, timeout d`,
/// `Non-2xx or 3xx responses: n`.
fn parse_wrk(text: &str) -> anyhow::Result<Wrk> {
    let mut result = Wrk::default();
    let numbers = |s: &str| -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).filter_map(|w| w.parse().ok()).collect()
    };
    let mut seen = false;
    for line in text.lines().map(str::trim) {
        if line.contains("requests in") {
            result.requests = numbers(line).first().copied().context("request count")?;
            seen = true;
        } else if line.starts_with("Socket errors:") || line.starts_with("Non-2xx or 3xx responses:") {
            // The figures after the colon ("Non-2xx" has digits of its own).
            let figures = line.split_once(':').map_or("", |(_, rest)| rest);
            result.failed += numbers(figures).iter().sum::<u64>();
        }
    }
    if !seen {
        bail!("no request count");
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_output_is_read() {
        let text =
            "  30000 requests in 20.00s, 4.1MB read\n  Socket errors: connect 0, read 12, write 3, timeout 0\n  \
                    Non-2xx or 3xx responses: 5\n";
        let w = super::parse_wrk(text).expect("parsed");
        assert_eq!((w.requests, w.failed), (30000, 20));
    }
}
