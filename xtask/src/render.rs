//! `cargo xtask render`: downtime-monitor's pages as a person sees them. Builds a history of
//! 30 days for two targets (one 5-minute outage, one 3-hour one, imported the way a user
//! brings in the old script's log), writes the HTML report and the status page with the real
//! binary, and has headless Chromium (Debian's `chromium`) take a screenshot of each into
//! `target/render/*.png`, to be looked at: every incident visible on the 30-day timeline,
//! ticks on round days, labels readable, badges in place.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::run::{cargo, step};

const DAY: i64 = 86_400;

pub fn render(args: &[String]) -> anyhow::Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask render");
    }
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
        .context("no chromium: `apt-get install chromium` (Debian's package) and run it again")?;
    let mut build = cargo();
    build.args(["build", "-p", "downtime-monitor"]);
    step(build)?;
    let bin = crate::dist::target_dir().join("debug/downtime-monitor");
    let out = crate::dist::target_dir().join("render");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let config = out.join("monitor.toml");
    std::fs::write(
        &config,
        "[downtime-monitor]\nvantage = \"render\"\n\n\
         [[downtime-monitor.target]]\nname = \"app\"\nkind = \"http\"\naddress = \"http://127.0.0.1:9/health\"\n\n\
         [[downtime-monitor.target]]\nname = \"db\"\nkind = \"tcp\"\naddress = \"127.0.0.1:9\"\n",
    )?;
    let now = unix_now();
    let start = (now - 30 * DAY) / DAY * DAY;
    // A 5-minute outage of app 12 days ago, a 3-hour one of db 4 days ago.
    import(&bin, &out, &config, "app", &[now - 12 * DAY + 3_600], start, now)?;
    let db_lines: Vec<i64> = (0..36).map(|i| now - 4 * DAY + i * 300).collect();
    import(&bin, &out, &config, "db", &db_lines, start, now)?;

    let report = out.join("report.html");
    monitor(&bin, &out, &config, &["report", "--since", "30d", "--format", "html", "-o", path(&report)])?;
    let status = out.join("status");
    monitor(&bin, &out, &config, &["report", "--since", "30d", "--format", "status-page", "-o", path(&status)])?;

    for (page, png) in [(report, out.join("report.png")), (status.join("index.html"), out.join("status-page.png"))] {
        screenshot(chromium, &out, &page, &png)?;
        eprintln!("xtask: {}", png.display());
    }
    Ok(())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `date -u -d @T` as the old script wrote it.
fn date_line(t: i64) -> anyhow::Result<String> {
    let out = Command::new("date").args(["-u", "-d", &format!("@{t}")]).env("LC_ALL", "C").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn rfc3339(t: i64) -> anyhow::Result<String> {
    let out = Command::new("date").args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%SZ"]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[allow(clippy::too_many_arguments)]
fn import(
    bin: &Path,
    out: &Path,
    config: &Path,
    name: &str,
    downs: &[i64],
    from: i64,
    until: i64,
) -> anyhow::Result<()> {
    let mut log = String::new();
    for t in downs {
        log.push_str(&format!("{}: {name} DOWN\n", date_line(*t)?));
    }
    let file = out.join(format!("{name}.log"));
    std::fs::write(&file, log)?;
    let (from, until) = (rfc3339(from)?, rfc3339(until)?);
    let args = ["import", "--format", "seed-log", path(&file), "--target", name, "--from", &from, "--until", &until];
    monitor(bin, out, config, &args)
}

fn monitor(bin: &Path, out: &Path, config: &Path, args: &[&str]) -> anyhow::Result<()> {
    let done = Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(out.join("state"))
        .args(args)
        .env_remove("STANDBY_CONFIG")
        .output()?;
    if !done.status.success() {
        bail!("downtime-monitor {}: {}", args.join(" "), String::from_utf8_lossy(&done.stderr));
    }
    Ok(())
}

fn screenshot(chromium: &str, out: &Path, page: &Path, png: &Path) -> anyhow::Result<()> {
    let profile = tempfile::tempdir()?;
    let done = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .current_dir(out)
        .output()?;
    if !done.status.success() || !png.is_file() {
        bail!("chromium could not render {}: {}", page.display(), String::from_utf8_lossy(&done.stderr));
    }
    Ok(())
}
