//! What a run prints. A report goes to stdout, as human text (its `Display`) or, with
//! `--json`, as one JSON object per run (JSON lines in watch modes). Logs go to stderr through
//! `tracing`: warnings by default, `-v` info, `-vv` debug, `-vvv` trace, `-q` errors only,
//! `RUST_LOG` overrides all. Progress bars appear only when stderr is a terminal.

use std::fmt::Display;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::exit::Code;

/// How this run prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    /// Print a run's report. With `-q`, a healthy/successful run prints nothing (cron mails
    /// only when something is wrong); errors are printed by [`crate::exit::main`] regardless.
    pub fn report<R: Serialize + Display>(&self, report: &R, code: Code) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, report)?;
            writeln!(out)?;
        } else if !(self.quiet && code == Code::Ok) {
            let text = report.to_string();
            write!(out, "{text}")?;
            if !text.ends_with('\n') {
                writeln!(out)?;
            }
        }
        out.flush()?;
        Ok(())
    }

    /// One JSON line (watch modes) or one human line.
    pub fn line<R: Serialize + Display>(&self, item: &R) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, item)?;
            writeln!(out)?;
        } else if !self.quiet {
            writeln!(out, "{item}")?;
        }
        out.flush()?;
        Ok(())
    }

    /// A progress bar for `len` steps; hidden unless stderr is a terminal and the run is
    /// neither quiet nor JSON.
    pub fn progress(&self, len: u64, message: &str) -> ProgressBar {
        if self.json || self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.to_string());
        bar
    }
}

/// Start logging to stderr at the level the flags ask for (`RUST_LOG` wins when set).
/// Safe to call more than once (later calls are ignored), as tests do.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // Our crates at the asked level; dependencies one notch quieter so -vv stays readable.
    let default = format!("{level},hyper=warn,reqwest=warn,rustls=warn,h2=warn,tokio_postgres=warn");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, and never with NO_COLOR (no-color.org):
        // cron mail and CI logs get plain text.
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_progress_bar_when_stderr_is_not_a_terminal_or_output_is_json_or_quiet() {
        // Under the test runner stderr is captured, as it is under cron and CI.
        assert!(Output::default().progress(10, "x").is_hidden() || std::io::stderr().is_terminal());
        assert!(Output { json: true, quiet: false }.progress(10, "x").is_hidden());
        assert!(Output { json: false, quiet: true }.progress(10, "x").is_hidden());
    }
}
