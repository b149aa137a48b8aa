//! `report`: uptime, downtime, incidents, MTTR, MTBF and the decision they point to, over a
//! period, as text, JSON, HTML or SVG. The figures are built by [`crate::report`] and drawn by
//! [`crate::render`].

use std::path::PathBuf;

use clap::ValueEnum;
use standby_common::exit::{self, Code};
use standby_common::state::write_atomic;

use crate::clock;
use crate::maintenance::Maintenance;
use crate::setup::Setup;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start: 30d (ago), 2026-01-01, or an RFC 3339 time
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// End: a time as for --since, or now
    #[arg(long, default_value = "now")]
    pub until: String,
    /// Only these targets (repeatable)
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Report format (html and svg draw a timeline per target; status-page writes a
    /// directory, -o DIR: index.html and badges/NAME.svg)
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    /// One row per calendar month too
    #[arg(long)]
    pub monthly: bool,
    /// Write the report here instead of stdout (the directory, for status-page)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Count a target down only while at least N vantages saw it down (shared store)
    #[arg(long, value_name = "N")]
    pub quorum: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
    Html,
    Svg,
    StatusPage,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    if args.format == ReportFormat::StatusPage && args.output.is_none() {
        return Err(exit::error(Code::Usage, "--format status-page writes a directory: give it with -o DIR"));
    }
    if args.quorum == Some(0) {
        return Err(exit::error(Code::Usage, "--quorum must be at least 1"));
    }
    let zone = clock::Zone::new(setup.config.timezone.as_deref()).map_err(|e| exit::error(Code::Usage, e))?;
    let now = clock::now_ms();
    let from = clock::parse_when(&args.since, now).map_err(|e| exit::error(Code::Usage, format!("--since: {e}")))?;
    let to = clock::parse_when(&args.until, now).map_err(|e| exit::error(Code::Usage, format!("--until: {e}")))?;
    if to <= from {
        return Err(exit::error(Code::Usage, "--until must be after --since"));
    }
    let mut store = setup.store()?;
    let mut names: Vec<String> = setup.targets.iter().map(|t| t.name.clone()).collect();
    for known in store.known_targets()? {
        if !names.contains(&known) {
            names.push(known);
        }
    }
    if !args.targets.is_empty() {
        if let Some(missing) = args.targets.iter().find(|o| !names.contains(o)) {
            return Err(exit::error(
                Code::Usage,
                format!("--target {missing}: no such target in the config or the history"),
            ));
        }
        names = args.targets.clone();
    }
    // A period that starts long before the history does would be mostly unknown: it starts
    // at the first record of the targets instead.
    let mut first: Option<i64> = None;
    for name in &names {
        if let Some(t) = store.first_at(name, args.quorum.is_some())? {
            first = Some(first.map_or(t, |f| f.min(t)));
        }
    }
    let from = match first {
        Some(f) if f > from && f < to => {
            tracing::info!("the history begins at {}: the report starts there", clock::fmt(f));
            f
        }
        _ => from,
    };
    if let Some(q) = args.quorum {
        let seen = store.vantages(from, to)?;
        if q > seen.len() {
            return Err(exit::error(
                Code::Usage,
                format!(
                    "--quorum {q}: only {} vantage(s) reported in this period ({}); a quorum larger than that can never be met",
                    seen.len(),
                    if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
                ),
            ));
        }
    }
    let maint = Maintenance { recurring: setup.recurring.clone(), windows: store.windows(from)? };
    let thresholds = setup.config.decision;
    let ups = setup.targets.iter().filter(|t| t.kind == crate::config::Kind::Ups).map(|t| t.name.clone()).collect();
    let scope = crate::report::Scope {
        targets: names,
        from,
        to,
        thresholds,
        monthly: args.monthly,
        quorum: args.quorum,
        zone,
        ups,
        latency: args.format == ReportFormat::Html && !setup.ctx.output.json,
    };
    let report = crate::report::build(&mut store, &maint, &scope)?;
    if args.format == ReportFormat::StatusPage {
        let states = store.states()?;
        let dir = args.output.as_deref().unwrap_or(std::path::Path::new("status"));
        crate::status_page::write(dir, &crate::status_page::files(&report, &states))?;
        return Ok(Code::Ok);
    }
    let format = if setup.ctx.output.json { ReportFormat::Json } else { args.format };
    let text = match format {
        ReportFormat::Human => report.to_string(),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Html => crate::render::html(&report)?,
        ReportFormat::Svg => crate::render::svg(&report)?,
        ReportFormat::StatusPage => return Ok(Code::Ok), // written above
    };
    match &args.output {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(Code::Ok)
}
