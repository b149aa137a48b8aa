//! `monitor`: downtime-monitor side by side with the stack a user would pick instead,
//! Prometheus + blackbox_exporter, in the same run:
//!
//! - `cpu_pct_5000_targets`, `rss_mb_5000_targets`: 5,000 HTTP targets (distinct paths on one
//!   local nginx) every 10 s; `downtime-monitor watch` against `prometheus` +
//!   `prometheus-blackbox-exporter` (installed by scripts/install-bench-deps.sh; the column
//!   stays empty when they are absent). Each runs 30 s of warm-up, then 60 s of measurement:
//!   CPU % of one core from utime+stime in /proc/PID/stat, peak RSS from VmRSS sampled every
//!   second and VmHWM at the end. Theirs is the two processes added together.
//! - `report_1y_s`: a year of one-minute samples for 10 targets (~5.26 million), written
//!   through the tool's own `Store` a day per transaction with failures and incidents, rolled
//!   up as the tool does with its default 30-day retention; then the median wall time of
//!   `downtime-monitor report --since 365d --json`. No anchor.
//! - `report_1y_100_targets_s`: the same for 100 targets: the 10 targets' year copied nine
//!   times under new names in SQL (the rows the tool keeps: 30 days raw, hourly before).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use downtime_monitor::config::Kind;
use downtime_monitor::machine::{self, TargetState};
use downtime_monitor::store::{IncidentChange, Store, Stored};
use downtime_monitor::target::{How, Sample, Target};
use standby_common::exec::which;
use standby_e2e::http_client;
use standby_e2e::nginx::{Nginx, NginxOptions};
use standby_e2e::ports::free_port;
use standby_e2e::process::{port_open, run_output, ServerProcess};

use super::{median_time, release_bin, Row};

const BENCH: &str = "monitor";
const TARGETS: usize = 5000;
const INTERVAL: &str = "10s";
const WARM_UP: Duration = Duration::from_secs(30);
const WINDOW: Duration = Duration::from_secs(60);
/// How long Prometheus may take, after the warm-up, to see all targets up.
const SETTLE: Duration = Duration::from_secs(30);
const VANTAGE: &str = "bench";

/// The report's sizes: 10 targets (`report_1y_s`) and 100 (`report_1y_100_targets_s`).
const REPORT_TARGETS: usize = 10;
const REPORT_TARGETS_LARGE: usize = 100;
const REPORT_DAYS: i64 = 365;
const REPORT_RUNS: usize = 3;
const RETENTION_DAYS: i64 = 30;
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

pub fn run() -> anyhow::Result<Vec<Row>> {
    let base = crate::run::root().join("target/bench");
    std::fs::create_dir_all(&base).context("creating target/bench")?;
    let work =
        tempfile::Builder::new().prefix("monitor-").tempdir_in(&base).context("creating a temp dir in target/bench")?;

    let (ours, theirs) = {
        let nginx = Nginx::start(NginxOptions::default())?;
        let mut urls = Vec::with_capacity(TARGETS);
        for i in 0..TARGETS {
            nginx.write_file(&format!("t/{i}.html"), format!("<p>t{i} ok</p>\n").as_bytes())?;
            urls.push(nginx.url(&format!("/t/{i}.html")));
        }
        let ours = measure_ours(&work.path().join("ours"), &urls)?;
        eprintln!("xtask: monitor: downtime-monitor watch: {:.2} % CPU, {:.1} MB peak RSS", ours.cpu_pct, ours.rss_mb);
        let theirs = match prometheus_bins() {
            Some((prom, bb)) => {
                let t = measure_theirs(&work.path().join("theirs"), &urls, &prom, &bb)?;
                eprintln!(
                    "xtask: monitor: prometheus + blackbox_exporter: {:.2} % CPU ({:.2} + {:.2}), \
                     {:.1} MB peak RSS ({:.1} + {:.1})",
                    t.cpu_pct, t.parts[0].0, t.parts[1].0, t.rss_mb, t.parts[0].1, t.parts[1].1
                );
                Some(t)
            }
            None => {
                eprintln!(
                    "xtask: prometheus / prometheus-blackbox-exporter not installed \
                     (scripts/install-bench-deps.sh): the theirs column stays empty"
                );
                None
            }
        };
        (ours, theirs)
    };

    let small = work.path().join("report");
    let (db, names, stats) = year_db(&small, REPORT_TARGETS)?;
    let report_s = report_bench(&small, &db, &names, &stats)?;
    let large = work.path().join("report-100");
    let copies = REPORT_TARGETS_LARGE / REPORT_TARGETS;
    let (db, names, stats) = fanned_db(&db, REPORT_TARGETS, &stats, &large, copies)?;
    let report_large_s = report_bench(&large, &db, &names, &stats)?;

    let stack = "prometheus + prometheus-blackbox-exporter (http_2xx, scrape 10s), same 5,000 \
                 targets on local nginx, 60 s after 30 s warm-up";
    let cpu = Row::at_most(
        BENCH,
        "cpu_pct_5000_targets",
        ours.cpu_pct,
        theirs.as_ref().map(|t| t.cpu_pct),
        format!("{stack}; % of one core, both processes added"),
        5.0,
        1,
    );
    Ok(vec![
        cpu,
        Row::at_most(
            BENCH,
            "rss_mb_5000_targets",
            ours.rss_mb,
            theirs.as_ref().map(|t| t.rss_mb),
            format!("{stack}; peak RSS of both processes added"),
            40.0,
            1,
        ),
        Row::at_most(
            BENCH,
            "report_1y_s",
            report_s,
            None,
            "no anchor ran; report --since 365d --json over 10 targets x 1 y of 1-min samples \
             (11 months hourly roll-ups + 30 d raw)",
            1.0,
            REPORT_RUNS,
        ),
        Row::at_most(
            BENCH,
            "report_1y_100_targets_s",
            report_large_s,
            None,
            "no anchor ran; report --since 365d --json over 100 targets x 1 y of 1-min samples \
             (11 months hourly roll-ups + 30 d raw)",
            1.0,
            REPORT_RUNS,
        ),
    ])
}

/// CPU and peak RSS of a process (or a set of processes, added together).
struct Usage {
    cpu_pct: f64,
    rss_mb: f64,
    /// (cpu %, rss MB) of each process.
    parts: Vec<(f64, f64)>,
}

fn measure_ours(dir: &Path, urls: &[String]) -> anyhow::Result<Usage> {
    std::fs::create_dir_all(dir)?;
    let mut toml = String::with_capacity(urls.len() * 160);
    for (i, url) in urls.iter().enumerate() {
        toml.push_str(&format!(
            "[[downtime-monitor.target]]\nname = \"t{i}\"\nkind = \"http\"\naddress = \"{url}\"\n\
             interval = \"{INTERVAL}\"\ntimeout = \"5s\"\n\n"
        ));
    }
    let config = dir.join("monitor.toml");
    std::fs::write(&config, toml)?;
    let common = |cmd: &mut Command| {
        cmd.arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--database")
            .arg(dir.join("monitor.db"))
            .args(["--vantage", VANTAGE]);
    };
    let mut cmd = Command::new(release_bin("downtime-monitor"));
    common(&mut cmd);
    cmd.args(["watch", "-q"]);
    let watch = ServerProcess::spawn(cmd, "downtime-monitor watch", dir.join("watch.log"))?;
    let mut procs = vec![watch];
    pause(&mut procs, WARM_UP)?;
    let usage = measure(&mut procs)?;

    // All targets up, each checked within the last two intervals.
    let mut cmd = Command::new(release_bin("downtime-monitor"));
    common(&mut cmd);
    cmd.args(["status", "--json"]);
    let out = run_output(cmd, Duration::from_secs(30))?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("downtime-monitor status --json: {}", String::from_utf8_lossy(&out.stderr)))?;
    let now = now_ms();
    let targets = status["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let up = targets.iter().filter(|t| t["health"] == "up").count();
    let fresh = targets.iter().filter(|t| t["last_at"].as_i64().is_some_and(|at| now - at <= 20_000)).count();
    if up != urls.len() || fresh != urls.len() {
        bail!(
            "downtime-monitor status: {up} of {} targets up, {fresh} checked in the last 20 s \
             (log: {})",
            urls.len(),
            procs[0].log_tail(20)
        );
    }
    drop(procs);
    Ok(usage)
}

fn measure_theirs(dir: &Path, urls: &[String], prom: &Path, bb: &Path) -> anyhow::Result<Usage> {
    std::fs::create_dir_all(dir)?;
    let (bb_port, prom_port) = (free_port(), free_port());
    std::fs::write(
        dir.join("bb.yml"),
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      \
         preferred_ip_protocol: ip4\n",
    )?;
    let mut prom_yml = format!(
        "global:\n  scrape_interval: 10s\n  scrape_timeout: 5s\n  evaluation_interval: 1m\n\
         scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    params:\n      \
         module: [http_2xx]\n    relabel_configs:\n      - source_labels: [__address__]\n        \
         target_label: __param_target\n      - source_labels: [__param_target]\n        \
         target_label: instance\n      - target_label: __address__\n        \
         replacement: 127.0.0.1:{bb_port}\n    static_configs:\n      - targets:\n"
    );
    for url in urls {
        prom_yml.push_str(&format!("          - {url}\n"));
    }
    std::fs::write(dir.join("prom.yml"), prom_yml)?;

    let mut cmd = Command::new(bb);
    cmd.arg(format!("--config.file={}", dir.join("bb.yml").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{bb_port}"));
    let mut exporter = ServerProcess::spawn(cmd, "blackbox_exporter", dir.join("bb.log"))?;
    exporter.wait_ready(Duration::from_secs(15), || port_open(bb_port))?;
    let mut cmd = Command::new(prom);
    cmd.arg(format!("--config.file={}", dir.join("prom.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let mut prometheus = ServerProcess::spawn(cmd, "prometheus", dir.join("prometheus.log"))?;
    let ready = format!("http://127.0.0.1:{prom_port}/-/ready");
    prometheus.wait_ready(Duration::from_secs(30), || http_client::get(&ready).is_ok_and(|r| r.status == 200))?;
    let mut procs = vec![prometheus, exporter];
    pause(&mut procs, WARM_UP)?;

    // Before measuring: Prometheus sees all targets up (bounded wait).
    let query = format!("http://127.0.0.1:{prom_port}/api/v1/query?query=count(probe_success%3D%3D1)");
    let deadline = Instant::now() + SETTLE;
    let mut seen = up_count(&query);
    while seen != Some(urls.len()) && Instant::now() < deadline {
        pause(&mut procs, Duration::from_secs(2))?;
        seen = up_count(&query);
    }
    if seen != Some(urls.len()) {
        bail!(
            "prometheus: count(probe_success==1) = {seen:?} after {:?}, want {}\n{}",
            WARM_UP + SETTLE,
            urls.len(),
            procs[0].log_tail(20)
        );
    }
    measure(&mut procs)
}

/// `count(probe_success==1)` from Prometheus' HTTP API.
fn up_count(query: &str) -> Option<usize> {
    let r = http_client::get(query).ok()?;
    let v = r.json().ok()?;
    let n = v["data"]["result"][0]["value"][1].as_str()?;
    n.parse().ok()
}

/// Sleep `d` in steps of at most one second, failing if a process exits.
fn pause(procs: &mut [ServerProcess], d: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + d;
    for _ in 0..=d.as_secs() + 1 {
        alive(procs)?;
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_secs(1)));
    }
    alive(procs)
}

fn alive(procs: &mut [ServerProcess]) -> anyhow::Result<()> {
    for p in procs.iter_mut() {
        if !p.is_running() {
            return Err(p.error("exited during the benchmark"));
        }
    }
    Ok(())
}

/// CPU over [`WINDOW`] and peak RSS (VmRSS every second, VmHWM at the end) of each process.
fn measure(procs: &mut [ServerProcess]) -> anyhow::Result<Usage> {
    let tck = clock_ticks();
    let pids: Vec<u32> = procs.iter().map(ServerProcess::pid).collect();
    let start = Instant::now();
    let ticks0 = pids.iter().map(|p| cpu_ticks(*p)).collect::<Result<Vec<_>, _>>()?;
    let mut peak_kb = vec![0u64; pids.len()];
    for k in 1..=WINDOW.as_secs() {
        for (i, pid) in pids.iter().enumerate() {
            peak_kb[i] = peak_kb[i].max(status_kb(*pid, "VmRSS")?);
        }
        let next = start + Duration::from_secs(k);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        alive(procs)?;
    }
    let ticks1 = pids.iter().map(|p| cpu_ticks(*p)).collect::<Result<Vec<_>, _>>()?;
    let secs = start.elapsed().as_secs_f64();
    let mut parts = Vec::new();
    for (i, pid) in pids.iter().enumerate() {
        let rss = status_kb(*pid, "VmRSS")?.max(status_kb(*pid, "VmHWM")?);
        peak_kb[i] = peak_kb[i].max(rss);
        let cpu = (ticks1[i].saturating_sub(ticks0[i])) as f64 / tck / secs * 100.0;
        parts.push((cpu, peak_kb[i] as f64 / 1024.0));
    }
    Ok(Usage { cpu_pct: parts.iter().map(|p| p.0).sum(), rss_mb: parts.iter().map(|p| p.1).sum(), parts })
}

/// utime + stime of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    let rest = stat.rfind(')').map(|i| &stat[i + 1..]).context("malformed /proc/PID/stat")?;
    // After the command name: state is field 3, utime field 14, stime field 15.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field =
        |i: usize| -> anyhow::Result<u64> { f.get(i).and_then(|v| v.parse().ok()).context("malformed /proc/PID/stat") };
    Ok(field(11)? + field(12)?)
}

/// A `kB` line of /proc/PID/status (VmRSS, VmHWM).
fn status_kb(pid: u32, key: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn prometheus_bins() -> Option<(PathBuf, PathBuf)> {
    let blackbox = which("prometheus-blackbox-exporter").or_else(|| which("blackbox_exporter"))?;
    Some((which("prometheus")?, blackbox))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A year of `targets` targets in `dir/monitor.db`, through the tool's own `Store`.
fn year_db(dir: &Path, targets: usize) -> anyhow::Result<(PathBuf, Vec<String>, GenStats)> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join("monitor.db");
    let names: Vec<String> = (0..targets).map(|i| format!("site-{i}")).collect();
    let started = Instant::now();
    let stats = generate_year(&db, &names, now_ms())?;
    eprintln!(
        "xtask: monitor: generated {} samples ({} failed, {} incidents) for {} targets in {:.1} s",
        stats.samples,
        stats.failures,
        stats.incidents,
        names.len(),
        started.elapsed().as_secs_f64()
    );
    Ok((db, names, stats))
}

/// `copies` times the year of `src` (targets site-0 … site-(n-1)) in `dir/monitor.db`: every
/// table's rows copied under the names site-n … site-(copies·n - 1), in SQL. The rows are
/// those the generator wrote and the tool rolled up (raw samples for the retention, hourly
/// rows before); writing 52 million samples through `Store` again would take half an hour.
fn fanned_db(
    src: &Path,
    n: usize,
    stats: &GenStats,
    dir: &Path,
    copies: usize,
) -> anyhow::Result<(PathBuf, Vec<String>, GenStats)> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join("monitor.db");
    let _ = std::fs::remove_file(&db);
    sqlite(src, &format!(".backup '{}'", db.display()))?;
    let tables = sqlite(&db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?;
    let mut sql = String::from("BEGIN;\n");
    for table in tables.lines().map(str::trim).filter(|t| !t.is_empty()) {
        let columns = sqlite(&db, &format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let columns: Vec<&str> = columns.lines().map(str::trim).filter(|c| !c.is_empty() && *c != "id").collect();
        if !columns.contains(&"target") {
            continue;
        }
        for k in 1..copies {
            let select: Vec<String> = columns
                .iter()
                .map(|c| {
                    if *c == "target" {
                        format!("'site-' || (CAST(substr(target, 6) AS INTEGER) + {})", k * n)
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            sql.push_str(&format!(
                "INSERT INTO {table} ({}) SELECT {} FROM {table} WHERE CAST(substr(target, 6) AS INTEGER) < {n};\n",
                columns.join(", "),
                select.join(", ")
            ));
        }
    }
    sql.push_str("COMMIT;\n");
    sqlite(&db, &sql)?;
    let names = (0..n * copies).map(|i| format!("site-{i}")).collect();
    let stats = GenStats {
        samples: stats.samples * copies,
        failures: stats.failures * copies,
        incidents: stats.incidents * copies,
    };
    Ok((db, names, stats))
}

/// `sqlite3 DB SQL`, its stdout.
fn sqlite(db: &Path, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().context("sqlite3 (Debian package sqlite3)")?;
    if !out.status.success() {
        bail!("sqlite3 {}: {}", db.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The median wall time of `report --since 365d --json` over the year in `db`, after checking
/// once what it says (every target, every incident, a year observed).
fn report_bench(dir: &Path, db: &Path, names: &[String], stats: &GenStats) -> anyhow::Result<f64> {
    let mut toml = String::new();
    for n in names {
        toml.push_str(&format!(
            "[[downtime-monitor.target]]\nname = \"{n}\"\nkind = \"http\"\n\
             address = \"http://127.0.0.1:9/{n}\"\ninterval = \"60s\"\n\n"
        ));
    }
    let config = dir.join("monitor.toml");
    std::fs::write(&config, toml)?;
    let report = || {
        let mut cmd = Command::new(release_bin("downtime-monitor"));
        cmd.arg("--config").arg(&config).arg("--state-dir").arg(dir.join("state")).arg("--database").arg(db).args([
            "--vantage",
            VANTAGE,
            "report",
            "--since",
            "365d",
            "--json",
        ]);
        cmd
    };

    // Once, untimed, to check what it says.
    let out = run_output(report(), Duration::from_secs(120))?;
    if !out.status.success() {
        bail!("downtime-monitor report failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("downtime-monitor report --json output")?;
    let targets = json["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let incidents: u64 = targets.iter().filter_map(|t| t["incidents"].as_u64()).sum();
    let observed_days =
        targets.iter().filter_map(|t| t["observed_ms"].as_i64()).min().unwrap_or(0) as f64 / DAY_MS as f64;
    if targets.len() != names.len() || incidents != stats.incidents as u64 || observed_days < 360.0 {
        bail!(
            "downtime-monitor report: {} targets, {incidents} incidents (generated {}), \
             observed {observed_days:.1} days",
            targets.len(),
            stats.incidents
        );
    }
    let uptimes: Vec<String> =
        targets.iter().filter_map(|t| t["uptime_pct"].as_f64()).map(|u| format!("{u:.2}")).collect();
    eprintln!(
        "xtask: monitor: report: {} targets, {incidents} incidents, uptime % {}",
        targets.len(),
        uptimes.join(" ")
    );

    let t = median_time(REPORT_RUNS, || {
        let mut cmd = report();
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let out = run_output(cmd, Duration::from_secs(120))?;
        if !out.status.success() {
            bail!("downtime-monitor report failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    })?;
    Ok(t.as_secs_f64())
}

struct GenStats {
    samples: usize,
    failures: usize,
    incidents: usize,
}

/// A year of one-minute samples ending at `now`, written as the tool writes them: a day per
/// transaction through `Store::save_round` (samples, states, incident changes), each day
/// followed by the roll-up the tool runs after every round (30-day retention), and a last
/// roll-up at `now`. Failures: isolated ones (~0.2 %), short blips that stay under the
/// failure threshold, and a few outages per target of 5 min to 6 h that become incidents.
fn generate_year(db: &Path, names: &[String], now: i64) -> anyhow::Result<GenStats> {
    let _ = std::fs::remove_file(db);
    let mut store = Store::open(db, VANTAGE)?;
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let minutes = REPORT_DAYS * 1440;
    let start = (now - REPORT_DAYS * DAY_MS).div_euclid(MINUTE_MS) * MINUTE_MS;

    // Outages (first minute, last minute) per target, sorted, clear of the last day.
    let outages: Vec<Vec<(i64, i64)>> = names
        .iter()
        .map(|_| {
            let mut v: Vec<(i64, i64)> = (0..rng.i64(2..=8))
                .map(|_| {
                    let at = rng.i64(0..minutes - 1440);
                    let len = if rng.bool() { rng.i64(5..=30) } else { rng.i64(30..=360) };
                    (at, at + len)
                })
                .collect();
            v.sort_unstable();
            v
        })
        .collect();
    let mut sims: Vec<Sim> = names.iter().map(|n| Sim::new(n)).collect();
    let mut stats = GenStats { samples: 0, failures: 0, incidents: 0 };
    let per_day = 1440 * names.len();
    for day in 0..REPORT_DAYS {
        let mut samples = Vec::with_capacity(per_day);
        let mut changes = Vec::new();
        for m in day * 1440..(day + 1) * 1440 {
            for (t, sim) in sims.iter_mut().enumerate() {
                let at = start + m * MINUTE_MS + rng.i64(0..1500);
                let outage = outages[t].iter().any(|(a, b)| m >= *a && m < *b);
                let error = if outage {
                    Some(if rng.u8(..) < 200 {
                        "connect: connection refused".to_string()
                    } else {
                        "timeout after 10s".to_string()
                    })
                } else if rng.u32(..1000) < 2 {
                    Some("timeout after 10s".to_string())
                } else if rng.u32(..20_000) < 1 {
                    // a blip: this and the next minute fail (under the failure threshold)
                    sim.blip = 1;
                    Some("HTTP 502 Bad Gateway".to_string())
                } else if sim.blip > 0 {
                    sim.blip -= 1;
                    Some("HTTP 502 Bad Gateway".to_string())
                } else {
                    None
                };
                let ok = error.is_none();
                let latency_ms = match (&error, ok) {
                    (_, true) => 2.0 + rng.f64() * 8.0 + if rng.u8(..) == 0 { 200.0 } else { 0.0 },
                    (Some(e), _) if e.starts_with("timeout") => 10_000.0,
                    _ => rng.f64() * 3.0,
                };
                if let Some(c) = sim.apply(at, ok, error.as_deref()) {
                    if matches!(c, IncidentChange::Open { .. }) {
                        stats.incidents += 1;
                    }
                    changes.push(c);
                }
                stats.failures += usize::from(!ok);
                // save_round writes the store's own vantage ("bench")
                let sample = Sample {
                    target: sim.state.target.clone(),
                    at,
                    ok,
                    latency_ms,
                    error,
                    interval_ms: MINUTE_MS,
                    power: None,
                };
                samples.push(Stored::new(&sample, false));
            }
        }
        stats.samples += samples.len();
        let states: Vec<TargetState> = sims.iter().map(|s| s.state.clone()).collect();
        store.save_round(&samples, &states, &changes)?;
        let day_end = start + (day + 1) * DAY_MS;
        store.roll_up(day_end - RETENTION_DAYS * DAY_MS)?;
    }
    store.roll_up(now - RETENTION_DAYS * DAY_MS)?;
    Ok(stats)
}

/// One generated target, driven through the tool's own state machine (failure threshold 3,
/// recovery threshold 2, no maintenance), so the history looks like what `check` writes.
struct Sim {
    state: TargetState,
    target: Target,
    blip: u32,
}

impl Sim {
    fn new(name: &str) -> Sim {
        let target = Target {
            name: name.to_string(),
            kind: Kind::Http,
            how: How::Tcp("127.0.0.1:1".into()),
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            failure_threshold: 3,
            recovery_threshold: 2,
        };
        Sim { state: TargetState::new(name), target, blip: 0 }
    }

    fn apply(&mut self, at: i64, ok: bool, error: Option<&str>) -> Option<IncidentChange> {
        let sample = Sample {
            target: self.target.name.clone(),
            at,
            ok,
            latency_ms: 0.0,
            error: error.map(str::to_string),
            interval_ms: MINUTE_MS,
            power: None,
        };
        let transition = machine::apply(&mut self.state, &sample, &self.target, false, None)?;
        IncidentChange::from_transition(&self.target.name, &transition)
    }
}
