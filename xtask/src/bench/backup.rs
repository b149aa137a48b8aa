//! `backup`: `backup-sync run` next to `restic backup` (Debian's 0.14), each on its own
//! repository, in the same run, on a generated ~1 GiB dataset (20,000 files of 1–40 KB, half
//! text and half random, plus four 150 MiB random files, as in REAL-SERVERS.md): the first
//! backup, an unchanged re-run and a run after 5 % of the files changed. Wall time and peak
//! RSS come from GNU time (`/usr/bin/time -f '%e %M'`). Our time leaves out the `check` phase
//! that `run` adds after its backup (restic's `backup` does not check), read from `--json`.
//! Then `backup-sync verify` (a full test restore) is timed: the user's real RTO.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::{machine, release_bin, round, Row};

const SMALL_FILES: usize = 20_000;
const LARGE_FILES: usize = 4;
const LARGE_BYTES: usize = 150 << 20;

struct Measured {
    seconds: f64,
    rss_mb: f64,
}

pub fn run() -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::Builder::new().prefix("bench-backup").tempdir_in(super::root().join("target"))?;
    let data = dir.path().join("data");
    generate(&data)?;
    std::fs::write(dir.path().join("pw"), "bench password\n")?;
    let config = dir.path().join("standby.toml");
    std::fs::write(
        &config,
        format!(
            "[backup-sync]\nrepository = {:?}\npassword-file = {:?}\nsources = [{:?}]\n",
            dir.path().join("ours").display().to_string(),
            dir.path().join("pw").display().to_string(),
            data.display().to_string()
        ),
    )?;
    ours(dir.path(), &config, &["init"])?;
    restic(dir.path(), &["init"])?;

    let first = (ours(dir.path(), &config, &["--json", "run"])?, restic(dir.path(), &["backup", "-q", &path(&data)])?);
    let again = (ours(dir.path(), &config, &["--json", "run"])?, restic(dir.path(), &["backup", "-q", &path(&data)])?);
    change_5pct(&data)?;
    let changed =
        (ours(dir.path(), &config, &["--json", "run"])?, restic(dir.path(), &["backup", "-q", &path(&data)])?);
    let verify = ours(dir.path(), &config, &["verify"])?;

    let ratio_row = |metric: &str, pair: &(Measured, Measured), limit: f64| Row {
        bench: "backup",
        metric: metric.to_string(),
        ours: round(pair.0.seconds),
        theirs: Some(round(pair.1.seconds)),
        anchor: "restic 0.14 backup, own repository, same run (seconds)".to_string(),
        ratio: Some(round(pair.0.seconds / pair.1.seconds)),
        goal: format!("ratio <= {limit}"),
        met: pair.0.seconds / pair.1.seconds <= limit,
        runs: 1,
        machine: machine(),
    };
    let our_rss = first.0.rss_mb.max(again.0.rss_mb).max(changed.0.rss_mb);
    let their_rss = first.1.rss_mb.max(again.1.rss_mb).max(changed.1.rss_mb);
    Ok(vec![
        ratio_row("first_backup_ratio", &first, 1.0),
        ratio_row("unchanged_rerun_ratio", &again, 1.0),
        ratio_row("changed_5pct_ratio", &changed, 1.0),
        Row {
            bench: "backup",
            metric: "peak_rss_ratio".to_string(),
            ours: round(our_rss),
            theirs: Some(round(their_rss)),
            anchor: "peak RSS in MB over the three runs, restic 0.14 backup".to_string(),
            ratio: Some(round(our_rss / their_rss)),
            goal: "ratio <= 1".to_string(),
            met: our_rss <= their_rss,
            runs: 3,
            machine: machine(),
        },
        Row::at_most(
            "backup",
            "unchanged_rerun_vs_first",
            again.0.seconds / first.0.seconds,
            None,
            "our unchanged re-run / our first backup",
            0.1,
            1,
        ),
        Row::at_most("backup", "verify_s", verify.seconds, None, "full test restore of ~1 GiB (no anchor)", 600.0, 1),
    ])
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Run `cmd` under GNU time; wall seconds and peak RSS, and its stdout.
fn timed(cmd: Command, what: &str, out_file: &Path) -> anyhow::Result<(Measured, String)> {
    let time_file = out_file.with_extension("time");
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-f").arg("%e %M").arg("-o").arg(&time_file).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        timed.current_dir(dir);
    }
    let out = timed.output().with_context(|| format!("cannot run {what} under /usr/bin/time"))?;
    if !out.status.success() {
        bail!("{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(&time_file)?;
    let mut fields = text.split_whitespace();
    let seconds: f64 = fields.next().context("time: no wall time")?.parse()?;
    let kb: f64 = fields.next().context("time: no RSS")?.parse()?;
    Ok((Measured { seconds, rss_mb: kb / 1024.0 }, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn ours(dir: &Path, config: &Path, args: &[&str]) -> anyhow::Result<Measured> {
    let mut cmd = Command::new(release_bin("backup-sync"));
    cmd.arg("-q").arg("--config").arg(config).arg("--state-dir").arg(dir.join("state")).args(args);
    cmd.env("STANDBY_RUN_DIR", dir.join("run"));
    let (mut m, stdout) = timed(cmd, &format!("backup-sync {args:?}"), &dir.join("ours-out"))?;
    if args.contains(&"--json") {
        // `run` checks the repository after the backup; restic's `backup` does not.
        let doc: serde_json::Value = serde_json::from_str(&stdout).context("backup-sync --json")?;
        let check = doc["phases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["phase"] == "check")
            .filter_map(|p| p["seconds"].as_f64())
            .sum::<f64>();
        m.seconds -= check;
    }
    Ok(m)
}

fn restic(dir: &Path, args: &[&str]) -> anyhow::Result<Measured> {
    let mut cmd = Command::new("restic");
    cmd.arg("-r").arg(dir.join("theirs")).args(args);
    cmd.env("RESTIC_PASSWORD_FILE", dir.join("pw")).env("RESTIC_CACHE_DIR", dir.join("restic-cache"));
    Ok(timed(cmd, &format!("restic {args:?}"), &dir.join("restic-out"))?.0)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    fastrand::fill(&mut v);
    v
}

fn text_bytes(n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &["standby", "backup", "restic", "primary", "replica", "nginx", "cron", "dump", "the", "a"];
    let mut s = String::with_capacity(n + 16);
    while s.len() < n {
        s.push_str(WORDS[fastrand::usize(..WORDS.len())]);
        s.push(if fastrand::u8(..10) == 0 { '\n' } else { ' ' });
    }
    s.truncate(n);
    s.into_bytes()
}

fn small_file(i: usize) -> PathBuf {
    PathBuf::from(format!("small/{:03}/f{i}", i / 200))
}

fn generate(data: &Path) -> anyhow::Result<()> {
    fastrand::seed(12);
    for i in 0..SMALL_FILES {
        let p = data.join(small_file(i));
        if i % 200 == 0 {
            std::fs::create_dir_all(p.parent().context("parent")?)?;
        }
        let n = fastrand::usize(1024..40 * 1024);
        std::fs::write(&p, if i % 2 == 0 { text_bytes(n) } else { random_bytes(n) })?;
    }
    std::fs::create_dir_all(data.join("large"))?;
    for i in 0..LARGE_FILES {
        std::fs::write(data.join(format!("large/l{i}.bin")), random_bytes(LARGE_BYTES))?;
    }
    Ok(())
}

/// Rewrite every 20th small file and the first 5 % of each large one.
fn change_5pct(data: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileExt;
    for i in (0..SMALL_FILES).step_by(20) {
        let n = fastrand::usize(1024..40 * 1024);
        std::fs::write(data.join(small_file(i)), random_bytes(n))?;
    }
    for i in 0..LARGE_FILES {
        let f = std::fs::OpenOptions::new().write(true).open(data.join(format!("large/l{i}.bin")))?;
        f.write_all_at(&random_bytes(LARGE_BYTES / 20), 0)?;
    }
    Ok(())
}
