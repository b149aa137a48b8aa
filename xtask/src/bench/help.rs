//! `help`: cron starts our binaries every minute, so their start-up must cost next to
//! nothing. Wall time of `<tool> --help` (parse, print, exit), next to `/bin/true`.

use std::process::{Command, Stdio};

use super::{median_time, release_bin, Row, TOOLS};

const RUNS: usize = 50;

pub fn run() -> anyhow::Result<Vec<Row>> {
    let spawn = |program: &std::path::Path, arg: Option<&str>| {
        let path = program.to_path_buf();
        let arg = arg.map(String::from);
        move || -> anyhow::Result<()> {
            let mut cmd = Command::new(&path);
            cmd.args(arg.iter()).stdout(Stdio::null()).stderr(Stdio::null());
            cmd.status()?;
            Ok(())
        }
    };
    let true_ms = median_time(RUNS, spawn(std::path::Path::new("/bin/true"), None))?.as_secs_f64() * 1e3;
    let mut rows = Vec::new();
    for tool in TOOLS {
        let ours = median_time(RUNS, spawn(&release_bin(tool), Some("--help")))?.as_secs_f64() * 1e3;
        rows.push(Row::at_most(
            "help",
            format!("{}_help_ms", tool.replace('-', "_")),
            ours,
            Some(true_ms),
            "/bin/true, same run",
            10.0,
            RUNS,
        ));
    }
    Ok(rows)
}
