//! `import --format seed-log FILE`: history written by another tool, stored as samples (one
//! per `--interval`, DOWN where the log has a line) and imported incidents. Importing the same
//! period again replaces it. Reading the log is [`crate::import`].

use std::path::PathBuf;

use clap::ValueEnum;
use standby_common::duration::{millis, HumanDuration};
use standby_common::exit::{self, Code};

use crate::clock;
use crate::setup::Setup;
use crate::store::{IncidentChange, Stored};
use crate::target::Sample;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The format of FILE
    #[arg(long, value_enum)]
    pub format: ImportFormat,
    pub file: PathBuf,
    /// The target the history belongs to [default: the name in the log]
    #[arg(long)]
    pub target: Option<String>,
    /// How often the old script ran
    #[arg(long, default_value = "5m")]
    pub interval: HumanDuration,
    /// Offset of the log's times from UTC, for lines whose zone is missing or not known
    /// (+02:00, -05:00); a known zone in a line wins
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    pub utc_offset: Option<String>,
    /// Warn about lines that cannot be read (with file:line) and import the rest
    #[arg(long)]
    pub skip_bad_lines: bool,
    /// When the old script started running [default: midnight UTC before the first line]
    #[arg(long, value_name = "WHEN")]
    pub from: Option<String>,
    /// When it stopped [default: midnight UTC after the last line]
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Import only the lines of this name (a log with several names needs it)
    #[arg(long, value_name = "NAME")]
    pub only: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    SeedLog,
}

#[derive(serde::Serialize)]
struct Imported {
    target: String,
    lines: usize,
    outages: usize,
    from: String,
    to: String,
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "imported {} DOWN line(s) as {} outage(s) of {} between {} and {}",
            self.lines, self.outages, self.target, self.from, self.to
        )
    }
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    let ImportFormat::SeedLog = args.format;
    let file = &args.file;
    let usage = |m: String| exit::error(Code::Usage, m);
    let text = std::fs::read_to_string(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let offset = args
        .utc_offset
        .as_deref()
        .map(clock::parse_offset)
        .transpose()
        .map_err(|e| usage(format!("--utc-offset: {e}")))?;
    let (mut lines, bad) = crate::import::parse(&text, offset);
    if let Some((line, msg)) = bad.first() {
        if !args.skip_bad_lines {
            let more = if bad.len() > 1 { format!(" (and {} more bad line(s))", bad.len() - 1) } else { String::new() };
            return Err(usage(format!("{}:{line}: {msg}{more}; --skip-bad-lines imports the rest", file.display())));
        }
        for (line, msg) in &bad {
            tracing::warn!("{}:{line}: skipped: {msg}", file.display());
        }
    }
    let mut names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    match &args.only {
        Some(only) => {
            let only = only.clone();
            lines.retain(|l| l.name == only);
        }
        None if names.len() > 1 => {
            return Err(usage(format!(
                "{}: the log names several servers ({}): pick one with --only NAME",
                file.display(),
                names.join(", ")
            )));
        }
        None => {}
    }
    let Some(first) = lines.first() else {
        return Err(usage(format!("{}: no DOWN lines to import", file.display())));
    };
    let target = args.target.clone().unwrap_or_else(|| first.name.clone());
    let interval_ms = millis(args.interval.get());
    if interval_ms < 1000 {
        return Err(usage("--interval must be at least 1s".into()));
    }
    let times: Vec<i64> = lines.iter().map(|l| l.at).collect();
    let outages = crate::import::outages(&times, interval_ms);
    // The period the old script ran: given, or the whole UTC days the log covers.
    let now = clock::now_ms();
    let first_line = times.iter().copied().min().unwrap_or(0);
    let last_end = outages.last().map(|o| o.1).unwrap_or(first_line);
    let from = match &args.from {
        Some(w) => clock::parse_when(w, now).map_err(|e| usage(format!("--from: {e}")))?,
        None => first_line.div_euclid(clock::DAY_MS) * clock::DAY_MS,
    };
    let to = match &args.until {
        Some(w) => clock::parse_when(w, now).map_err(|e| usage(format!("--until: {e}")))?,
        None => (last_end + clock::DAY_MS - 1).div_euclid(clock::DAY_MS) * clock::DAY_MS,
    };
    if from > first_line || to < last_end {
        return Err(usage(format!(
            "the log runs from {} to {}: --from/--until must include it",
            clock::fmt(first_line),
            clock::fmt(last_end)
        )));
    }
    // One sample per interval over the period: DOWN where a line was, up elsewhere.
    let mut samples = Vec::new();
    let mut at = from;
    while at < to {
        let down = outages.iter().any(|(s, e)| at >= *s && at < *e);
        let s = Sample {
            target: target.clone(),
            at,
            ok: !down,
            latency_ms: 0.0,
            error: down.then(|| "DOWN (imported)".to_string()),
            interval_ms,
            power: None,
        };
        samples.push(Stored::new(&s, false));
        at += interval_ms;
    }
    let mut store = setup.store()?;
    let history: Vec<IncidentChange> = outages
        .iter()
        .map(|&(started, ended)| IncidentChange::Imported { target: target.clone(), started, ended })
        .collect();
    // Importing the same period again replaces it instead of counting it twice.
    store.replace_history(&target, from, to, &samples, &history)?;
    let report =
        Imported { target, lines: lines.len(), outages: outages.len(), from: clock::fmt(from), to: clock::fmt(to) };
    setup.ctx.output.report(&report, Code::Ok)?;
    Ok(Code::Ok)
}
