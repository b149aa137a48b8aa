//! `smoke`: smoke-test next to Hurl (`hurl --test`, installed by scripts/install-bench-deps.sh,
//! its columns left empty when absent) on the same requests, in the same run, on two backends:
//!
//! - a static nginx: 500 checks (50 files of 10, a status and a body assertion each), where
//!   process start and connection reuse dominate; a sequential curl loop is the third anchor;
//! - a backend with per-request latency: the harness's app (`/slow?ms=N`, 20–100 ms, every
//!   request answered concurrently), 200 checks in 20 files, where what counts is how well
//!   the requests overlap.
//!
//! Both with `--jobs 1` and `--jobs 16`. Also the time to load (parse and validate) a 40,000-check
//! suite with `--check-config`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use standby_e2e::app::AppBackend;
use standby_e2e::nginx::{Nginx, NginxOptions};

use super::{median_time, release_bin, Row};

const FILES: usize = 50;
const PER_FILE: usize = 10;
const RUNS: usize = 3;
/// The latency backend's suite: files × checks per file.
const SLOW_FILES: usize = 20;
const SLOW_PER_FILE: usize = 10;
/// Checks in the suite whose load time is measured.
const LOAD_CHECKS: usize = 40_000;

/// One check of a generated suite, written both ways.
struct Case {
    path: String,
    body: String,
}

pub fn run() -> anyhow::Result<Vec<Row>> {
    let mut rows = static_backend()?;
    rows.extend(latency_backend()?);
    rows.push(load_time()?);
    Ok(rows)
}

fn static_backend() -> anyhow::Result<Vec<Row>> {
    let nginx = Nginx::start(NginxOptions::default())?;
    let total = FILES * PER_FILE;
    for i in 0..total {
        nginx.write_file(&format!("p/{i}.html"), format!("<p>page {i} ok</p>\n").as_bytes())?;
    }
    let dir = bench_dir("smoke")?;
    let cases = |i: usize| Case { path: format!("/p/{i}.html"), body: format!("page {i} ok") };
    let (ours, hurl_files) = write_suites(&dir, &nginx.url(""), FILES, PER_FILE, cases)?;
    let base = nginx.url("");

    let jobs1 = median_time(RUNS, smoke(&ours, &base, 1))?.as_secs_f64();
    let jobs16 = median_time(RUNS, smoke(&ours, &base, 16))?.as_secs_f64();
    let hurl1 = hurl_time(&hurl_files, 1)?;
    let hurl16 = hurl_time(&hurl_files, 16)?;
    let curl_loop = median_time(1, || {
        let script =
            format!("for i in $(seq 0 {}); do curl -fsS -o /dev/null {base}/p/$i.html || exit 1; done", total - 1);
        let st = Command::new("sh").args(["-c", &script]).status()?;
        if !st.success() {
            bail!("curl loop failed");
        }
        Ok(())
    })?
    .as_secs_f64();

    let mut rows = vec![
        Row::at_most("smoke", "jobs1_s", jobs1, Some(curl_loop), "sequential curl loop, 500 requests", curl_loop, RUNS),
        Row::at_most("smoke", "jobs16_s", jobs16, hurl16, "hurl --test --jobs 16, same 500 requests", jobs1, RUNS),
    ];
    rows.extend(ratio_row("jobs1_vs_hurl_ratio", jobs1, hurl1, "hurl --test --jobs 1, static nginx, 500 checks"));
    rows.extend(ratio_row("jobs16_vs_hurl_ratio", jobs16, hurl16, "hurl --test --jobs 16, static nginx, 500 checks"));
    Ok(rows)
}

fn latency_backend() -> anyhow::Result<Vec<Row>> {
    let app = AppBackend::start("bench-slow")?;
    let dir = bench_dir("smoke-slow")?;
    // 20..=100 ms, spread over the suite so that files differ.
    let cases = |i: usize| Case { path: format!("/slow?ms={}", 20 + (i * 37) % 81), body: "slow ok".into() };
    let (ours, hurl_files) = write_suites(&dir, &app.url(""), SLOW_FILES, SLOW_PER_FILE, cases)?;
    let base = app.url("");
    let n = SLOW_FILES * SLOW_PER_FILE;

    let jobs1 = median_time(RUNS, smoke(&ours, &base, 1))?.as_secs_f64();
    let jobs16 = median_time(RUNS, smoke(&ours, &base, 16))?.as_secs_f64();
    let hurl1 = hurl_time(&hurl_files, 1)?;
    let hurl16 = hurl_time(&hurl_files, 16)?;
    let mut rows = vec![
        Row::at_most(
            "smoke",
            "latency_backend_jobs1_s",
            jobs1,
            hurl1,
            format!("hurl --test --jobs 1, {n} requests of 20-100 ms"),
            hurl1.unwrap_or(f64::INFINITY),
            RUNS,
        ),
        Row::at_most(
            "smoke",
            "latency_backend_jobs16_s",
            jobs16,
            hurl16,
            format!("hurl --test --jobs 16, {n} requests of 20-100 ms"),
            hurl16.unwrap_or(f64::INFINITY),
            RUNS,
        ),
    ];
    rows.extend(ratio_row("latency_backend_jobs1_vs_hurl_ratio", jobs1, hurl1, "hurl --test --jobs 1, app /slow"));
    rows.extend(ratio_row("latency_backend_jobs16_vs_hurl_ratio", jobs16, hurl16, "hurl --test --jobs 16, app /slow"));
    Ok(rows)
}

/// `smoke-test --check-config` on one file of 40,000 checks: reading, parsing and validating.
fn load_time() -> anyhow::Result<Row> {
    let dir = bench_dir("smoke-load")?;
    let mut toml = String::with_capacity(LOAD_CHECKS * 100);
    for i in 0..LOAD_CHECKS {
        toml.push_str(&format!(
            "[[check]]\nname = \"page {i}\"\npath = \"/p/{i}.html\"\nexpect = {{ status = 200, body-contains = \"page {i} ok\" }}\n\n"
        ));
    }
    let file = dir.join("big.toml");
    std::fs::write(&file, toml)?;
    let secs = median_time(RUNS, || {
        let out = Command::new(release_bin("smoke-test"))
            .arg(&file)
            .args(["--check-config", "--base-url", "http://127.0.0.1:9"])
            .stdout(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("smoke-test --check-config failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    })?
    .as_secs_f64();
    Ok(Row::at_most(
        "smoke",
        "load_40k_checks_s",
        secs,
        None,
        "smoke-test --check-config, one 40k-check file",
        1.0,
        RUNS,
    ))
}

/// A run of smoke-test on `suites` with `jobs`.
fn smoke(suites: &[PathBuf], base: &str, jobs: usize) -> impl FnMut() -> anyhow::Result<()> {
    let suites = suites.to_vec();
    let base = base.to_string();
    move || {
        let out = Command::new(release_bin("smoke-test"))
            .args(&suites)
            .args(["--base-url", &base, "--jobs", &jobs.to_string(), "-q"])
            .stdout(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("smoke-test failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

/// Median seconds of `hurl --test --jobs N` on `files`, or None when hurl is not installed.
fn hurl_time(files: &[PathBuf], jobs: usize) -> anyhow::Result<Option<f64>> {
    let Some(hurl) = hurl_path() else {
        eprintln!("xtask: hurl not installed (scripts/install-bench-deps.sh): its column stays empty");
        return Ok(None);
    };
    let secs = median_time(RUNS, || {
        let out = Command::new(&hurl).args(["--test", "--jobs", &jobs.to_string()]).args(files).output()?;
        if !out.status.success() {
            bail!("hurl failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    })?;
    Ok(Some(secs.as_secs_f64()))
}

fn ratio_row(metric: &str, ours: f64, theirs: Option<f64>, anchor: &str) -> Option<Row> {
    let theirs = theirs.filter(|t| *t > 0.0)?;
    Some(Row::at_most("smoke", metric.to_string(), ours / theirs, None, anchor, 1.0, RUNS))
}

/// `files` suite files of `per_file` checks each, for smoke-test (paths joined with
/// `--base-url`) and for Hurl (whole URLs), both asserting the status and a body text.
fn write_suites(
    dir: &Path,
    base: &str,
    files: usize,
    per_file: usize,
    case: impl Fn(usize) -> Case,
) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let base = base.trim_end_matches('/');
    let mut ours = Vec::new();
    let mut hurl = Vec::new();
    for f in 0..files {
        let mut toml = String::new();
        let mut h = String::new();
        for c in 0..per_file {
            let i = f * per_file + c;
            let Case { path, body } = case(i);
            toml.push_str(&format!(
                "[[check]]\nname = \"check {i}\"\npath = \"{path}\"\nexpect = {{ status = 200, body-contains = \"{body}\" }}\n\n"
            ));
            h.push_str(&format!("GET {base}{path}\nHTTP 200\n[Asserts]\nbody contains \"{body}\"\n\n"));
        }
        let p = dir.join(format!("suite{f}.toml"));
        std::fs::write(&p, toml)?;
        ours.push(p);
        let p = dir.join(format!("suite{f}.hurl"));
        std::fs::write(&p, h)?;
        hurl.push(p);
    }
    Ok((ours, hurl))
}

fn hurl_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/hurl"));
    standby_common::exec::which("hurl").or_else(|| home.filter(|p| p.is_file()))
}

fn bench_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = crate::run::root().join("target/bench").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
