//! `smoke`: a 500-check suite (50 files of 10 checks, each with a status and a body
//! assertion) against a local nginx, with `--jobs 1` and `--jobs 16`, side by side in the same
//! run with Hurl (`hurl --test --jobs 16` on the same 500 requests in 50 files; installed by
//! scripts/install-bench-deps.sh, skipped when absent) and a sequential curl loop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use standby_e2e::nginx::{Nginx, NginxOptions};

use super::{median_time, release_bin, Row};

const FILES: usize = 50;
const PER_FILE: usize = 10;
const RUNS: usize = 3;

pub fn run() -> anyhow::Result<Vec<Row>> {
    let nginx = Nginx::start(NginxOptions::default())?;
    for i in 0..FILES * PER_FILE {
        nginx.write_file(&format!("p/{i}.html"), format!("<p>page {i} ok</p>\n").as_bytes())?;
    }
    let dir = tempfile_dir()?;
    let (ours, hurl_files) = write_suites(&dir, &nginx)?;
    let total = FILES * PER_FILE;

    let smoke = |jobs: &str| {
        let ours = ours.clone();
        let base = nginx.url("");
        let jobs = jobs.to_string();
        move || -> anyhow::Result<()> {
            let out = Command::new(release_bin("smoke-test"))
                .args(&ours)
                .args(["--base-url", &base, "--jobs", &jobs, "-q"])
                .stdout(Stdio::null())
                .output()?;
            if !out.status.success() {
                bail!("smoke-test failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        }
    };
    let jobs1 = median_time(RUNS, smoke("1"))?.as_secs_f64();
    let jobs16 = median_time(RUNS, smoke("16"))?.as_secs_f64();

    let hurl = hurl_path();
    let hurl16 = match &hurl {
        Some(h) => Some(
            median_time(RUNS, || {
                let out = Command::new(h).args(["--test", "--jobs", "16"]).args(&hurl_files).output()?;
                if !out.status.success() {
                    bail!("hurl failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                Ok(())
            })?
            .as_secs_f64(),
        ),
        None => {
            eprintln!("xtask: hurl not installed (scripts/install-bench-deps.sh): its column stays empty");
            None
        }
    };
    let curl_loop = median_time(1, || {
        let script = format!(
            "for i in $(seq 0 {}); do curl -fsS -o /dev/null {}/p/$i.html || exit 1; done",
            total - 1,
            nginx.url("")
        );
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
    if let Some(h) = hurl16 {
        rows.push(Row::at_most("smoke", "jobs16_vs_hurl_ratio", jobs16 / h, None, "hurl --test --jobs 16", 1.0, RUNS));
    }
    Ok(rows)
}

fn write_suites(dir: &Path, nginx: &Nginx) -> anyhow::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut ours = Vec::new();
    let mut hurl = Vec::new();
    for f in 0..FILES {
        let mut toml = String::new();
        let mut h = String::new();
        for c in 0..PER_FILE {
            let i = f * PER_FILE + c;
            toml.push_str(&format!(
                "[[check]]\nname = \"page {i}\"\npath = \"/p/{i}.html\"\nexpect = {{ status = 200, body-contains = \"page {i} ok\" }}\n\n"
            ));
            h.push_str(&format!(
                "GET {}\nHTTP 200\n[Asserts]\nbody contains \"page {i} ok\"\n\n",
                nginx.url(&format!("/p/{i}.html"))
            ));
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

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = crate::run::root().join("target/bench/smoke");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).context("creating target/bench/smoke")?;
    Ok(dir)
}
