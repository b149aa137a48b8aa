//! `cargo xtask bench [NAME...]`: each benchmark runs side by side with the tool a user would
//! pick instead, in the same run, and every figure becomes one row of
//! `target/bench/report.json` (a JSON array, rewritten each run) and of the printed table.

mod backup;
mod deploy;
mod failover;
mod help;
mod monitor;
mod power;
mod promote;
mod smoke;

use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use crate::run::{cargo, root, step};

/// The six binaries.
pub const TOOLS: &[&str] =
    &["backup-sync", "dns-failover", "replica-promote", "blue-green-deploy", "smoke-test", "downtime-monitor"];

/// One measured figure, in the schema of DESIGN.md.
#[derive(Debug, Serialize)]
pub struct Row {
    pub bench: &'static str,
    pub metric: String,
    pub ours: f64,
    pub theirs: Option<f64>,
    pub anchor: String,
    pub ratio: Option<f64>,
    pub goal: String,
    pub met: bool,
    pub runs: usize,
    pub machine: String,
}

impl Row {
    /// A row whose goal is "ours <= limit" (lower is better).
    pub fn at_most(
        bench: &'static str,
        metric: impl Into<String>,
        ours: f64,
        theirs: Option<f64>,
        anchor: impl Into<String>,
        limit: f64,
        runs: usize,
    ) -> Row {
        Row {
            bench,
            metric: metric.into(),
            ours: round(ours),
            theirs: theirs.map(round),
            anchor: anchor.into(),
            ratio: theirs.filter(|t| *t > 0.0).map(|t| round(ours / t)),
            goal: format!("<= {}", round(limit)),
            met: ours <= limit,
            runs,
            machine: machine(),
        }
    }
}

impl Row {
    /// A figure shown for comparison, with no goal of its own.
    pub fn info(
        bench: &'static str,
        metric: impl Into<String>,
        ours: f64,
        anchor: impl Into<String>,
        runs: usize,
    ) -> Row {
        Row {
            bench,
            metric: metric.into(),
            ours: round(ours),
            theirs: None,
            anchor: anchor.into(),
            ratio: None,
            goal: "-".into(),
            met: true,
            runs,
            machine: machine(),
        }
    }

    /// A row whose goal is "ours >= floor" (higher is better), measured once, no anchor.
    pub fn at_least(
        bench: &'static str,
        metric: impl Into<String>,
        ours: f64,
        anchor: impl Into<String>,
        floor: f64,
    ) -> Row {
        Row {
            bench,
            metric: metric.into(),
            ours: round(ours),
            theirs: None,
            anchor: anchor.into(),
            ratio: None,
            goal: format!(">= {}", round(floor)),
            met: ours >= floor,
            runs: 1,
            machine: machine(),
        }
    }
}

type Bench = fn() -> anyhow::Result<Vec<Row>>;

/// Each benchmark, and the packages whose release binaries it runs (empty: all of them).
const BENCHES: &[(&str, Bench, &[&str])] = &[
    ("help", help::run, &[]),
    ("smoke", smoke::run, &["smoke-test"]),
    ("monitor", monitor::run, &["downtime-monitor"]),
    ("failover", failover::run, &["dns-failover"]),
    ("promote", promote::run, &["replica-promote"]),
    ("deploy", deploy::run, &["blue-green-deploy"]),
    ("backup", backup::run, &["backup-sync"]),
    ("power", power::run, &["downtime-monitor", "replica-promote", "dns-failover"]),
];

pub fn bench(names: &[String]) -> anyhow::Result<()> {
    for n in names {
        if !BENCHES.iter().any(|(b, _, _)| b == n) {
            let known: Vec<&str> = BENCHES.iter().map(|(b, _, _)| *b).collect();
            bail!("unknown benchmark {n:?}; known: {}", known.join(", "));
        }
    }
    let chosen: Vec<_> = BENCHES.iter().filter(|(b, _, _)| names.is_empty() || names.iter().any(|n| n == b)).collect();
    // Build only what the chosen benchmarks run (a release build of the whole workspace is
    // large); a benchmark that lists no package needs them all.
    let mut build = cargo();
    build.args(["build", "--bins"]);
    if profile() == "release" {
        build.arg("--release");
    }
    if chosen.iter().any(|(_, _, pkgs)| pkgs.is_empty()) {
        build.args(["--workspace", "--exclude", "xtask"]);
    } else {
        for pkg in chosen.iter().flat_map(|(_, _, pkgs)| pkgs.iter()) {
            build.args(["-p", pkg]);
        }
    }
    step(build)?;
    let mut rows = Vec::new();
    // A benchmark that fails is named at the end; the others still run and are written.
    let mut failed = Vec::new();
    for (name, run, _) in chosen {
        eprintln!("xtask: bench {name}");
        match run() {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("xtask: benchmark {name} FAILED: {e:#}");
                failed.push(*name);
            }
        }
    }
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")?;
    print_table(&rows);
    eprintln!("xtask: wrote {}", path.display());
    if !failed.is_empty() {
        bail!("benchmarks failed: {}", failed.join(", "));
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<8} {:<34} {:>10} {:>10} {:>8} {:<10} {:<4} anchor",
        "bench", "metric", "ours", "theirs", "ratio", "goal", "met"
    );
    let opt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_else(|| "-".into());
    for r in rows {
        println!(
            "{:<8} {:<34} {:>10} {:>10} {:>8} {:<10} {:<4} {}",
            r.bench,
            r.metric,
            r.ours,
            opt(r.theirs),
            opt(r.ratio),
            r.goal,
            if r.met { "yes" } else { "NO" },
            r.anchor
        );
    }
}

/// The build of one of our binaries that `bench` made: `<target dir>/release/NAME`
/// (`debug/` with `STANDBY_BENCH_PROFILE=debug`).
pub fn release_bin(name: &str) -> std::path::PathBuf {
    target_dir().join(profile()).join(name)
}

/// Where cargo builds: `$CARGO_TARGET_DIR` (relative to the workspace root) or `target/`.
pub fn target_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// `release`, or `debug` when `STANDBY_BENCH_PROFILE=debug` (a quick run; say so with the figures).
fn profile() -> &'static str {
    match std::env::var("STANDBY_BENCH_PROFILE").as_deref() {
        Ok("debug") => "debug",
        _ => "release",
    }
}

/// Median wall time of `runs` runs of `f`.
pub fn median_time(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} cores, loopback")
}
