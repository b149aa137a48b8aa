//! Command line: `check`, `watch`, `status`, `report`, `maintenance`, `import`. Flags and the
//! `[downtime-monitor]` section become a [`Setup`]; the commands live in their modules.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use standby_common::cli::{print_effective_config, Context, GlobalArgs};
use standby_common::duration::{millis, HumanDuration};
use standby_common::exit::{self, Code};
use standby_common::settings::{self, Sources};
use standby_common::state::write_atomic;

use crate::clock;
use crate::config::Config;
use crate::maintenance::{self, Maintenance, Recurring};
use crate::monitor::Monitor;
use crate::store::{IncidentChange, Location, Spool, Store, Stored};
use crate::target::{self, Sample, Target};

const EXAMPLES: &str = "Examples:
  # cron, every minute: one round over all targets; exit 1 while any target is DOWN
  * * * * *  downtime-monitor check -q || dns-failover check -q
  # as a daemon with a Prometheus endpoint
  downtime-monitor watch --metrics-listen 127.0.0.1:9310
  # the monthly review: uptime per month and what to do about it
  downtime-monitor report --since 90d --monthly
  downtime-monitor report --since 30d --format html -o uptime.html
  # planned work: failures for the next 2 hours are not outages and raise no alert
  downtime-monitor maintenance add --target vf-server --for 2h --reason 'UPS battery swap'
  # keep the history of the old cron script
  downtime-monitor import --format seed-log ~/vf-downtime.log --target vf-server --interval 5m

Exit codes: 0 all targets up, 1 a target is DOWN (or a round could not be recorded),
2 bad flags or config, 3 another check holds the lock.";

/// Uptime checks from cron or as a daemon, outage history, uptime reports and alerts.
#[derive(Debug, clap::Parser)]
#[command(name = "downtime-monitor", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub settings: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One round over all targets (for cron): record, update states, alert on changes
    Check {
        /// Also write the node-exporter textfile format here
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>,
    },
    /// Run as a daemon: each target on its own interval, until SIGTERM/SIGINT
    Watch {
        /// Serve Prometheus metrics on this address (GET /metrics)
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Stop after this long (tests, benchmarks)
        #[arg(long, value_name = "DUR", hide = true)]
        stop_after: Option<HumanDuration>,
    },
    /// Current state of each target, since when, last error
    Status,
    /// Uptime, downtime, incidents, MTTR, MTBF and the decision they point to
    Report {
        /// Start: 30d (ago), 2026-01-01, or an RFC 3339 time
        #[arg(long, default_value = "30d")]
        since: String,
        /// End: a time as for --since, or now
        #[arg(long, default_value = "now")]
        until: String,
        /// Only these targets (repeatable)
        #[arg(long = "target", value_name = "NAME")]
        targets: Vec<String>,
        /// Report format (html and svg draw a timeline per target)
        #[arg(long, value_enum, default_value = "human")]
        format: ReportFormat,
        /// One row per calendar month too
        #[arg(long)]
        monthly: bool,
        /// Write the report here instead of stdout
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Count a target down only while at least N vantages saw it down (shared store)
        #[arg(long, value_name = "N")]
        quorum: Option<usize>,
    },
    /// Planned work: add, list, end maintenance windows
    #[command(subcommand)]
    Maintenance(MaintenanceCommand),
    /// Import history written by another tool
    Import {
        /// The format of FILE
        #[arg(long, value_enum)]
        format: ImportFormat,
        file: PathBuf,
        /// The target the history belongs to [default: the name in the log]
        #[arg(long)]
        target: Option<String>,
        /// How often the old script ran
        #[arg(long, default_value = "5m")]
        interval: HumanDuration,
        /// Offset of the log's times from UTC, when its zone is not known (+02:00)
        #[arg(long, value_name = "OFFSET")]
        utc_offset: Option<String>,
        /// When the old script started running [default: midnight UTC before the first line]
        #[arg(long, value_name = "WHEN")]
        from: Option<String>,
        /// When it stopped [default: midnight UTC after the last line]
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Import only the lines of this name (a log with several names needs it)
        #[arg(long, value_name = "NAME")]
        only: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// Start a window now (or at --start) for --for
    Add {
        #[arg(long, value_name = "NAME|*")]
        target: String,
        #[arg(long = "for", value_name = "DUR")]
        duration: HumanDuration,
        #[arg(long, value_name = "WHEN")]
        start: Option<String>,
        #[arg(long)]
        reason: String,
    },
    /// Windows that are open or coming
    List,
    /// End a window now
    End { id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
    Html,
    Svg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    SeedLog,
}

/// Everything a command needs, from flags and config.
pub struct Setup {
    pub ctx: Context,
    pub config: Config,
    pub targets: Vec<Target>,
    pub recurring: Vec<Recurring>,
    pub vantage: String,
    pub location: Location,
    pub spool: PathBuf,
}

impl Setup {
    pub fn monitor(&self) -> Monitor {
        Monitor {
            tool: "downtime-monitor",
            targets: self.targets.clone(),
            location: self.location.clone(),
            vantage: self.vantage.clone(),
            spool: Spool::new(self.spool.clone()),
            notifiers: self.ctx.notifiers.clone(),
            recurring: self.recurring.clone(),
            reminder_ms: self.config.reminder.map(|d| millis(d.get())),
            retention_ms: self.config.retention.map(|d| millis(d.get())).unwrap_or(30 * clock::DAY_MS),
            store: Default::default(),
        }
    }

    pub fn store(&self) -> anyhow::Result<Store> {
        Store::connect(&self.location, &self.vantage)
    }

    fn concurrency(&self) -> usize {
        self.config.concurrency.unwrap_or(64)
    }
}

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = "downtime-monitor";

/// Parse the process arguments and run.
pub fn main() -> anyhow::Result<Code> {
    let (cli, sources) = settings::parse::<Cli, Config>(TOOL);
    run(cli, &sources)
}

/// Run with parsed arguments.
pub fn run(cli: Cli, sources: &Sources) -> anyhow::Result<Code> {
    let ctx = cli.global.start(TOOL)?;
    let resolved = ctx.resolve(cli.settings.clone(), sources)?;
    let targets = target::targets(&ctx.config, &resolved.value)?;
    let recurring = maintenance::recurring(&ctx.config, &resolved.value)?;
    if ctx.check_config {
        return print_effective_config(&ctx, &resolved);
    }
    let config = resolved.value;
    let Some(command) = cli.command else {
        return Err(exit::error(Code::Usage, "no command given: try `downtime-monitor --help`"));
    };
    let vantage = config.vantage.clone().unwrap_or_else(hostname);
    let state_dir = ctx.state()?.path().to_path_buf();
    let (location, spool) = match config.store.clone() {
        Some(conninfo) => {
            let password = standby_common::secret::resolve(
                "store password",
                config.store_password_env.as_deref(),
                config.store_password_file.as_deref(),
                "PGPASSWORD",
            )?;
            let ca_file = config.store_cacert.clone();
            (Location::Postgres { conninfo, password, ca_file }, state_dir.join("spool.jsonl"))
        }
        None => {
            let db = config.database.clone().unwrap_or_else(|| state_dir.join("monitor.db"));
            let spool = db.with_extension("spool.jsonl");
            (Location::Sqlite(db), spool)
        }
    };
    let setup = Setup { ctx, config, targets, recurring, vantage, location, spool };
    match command {
        Command::Check { metrics_file } => check(&setup, metrics_file.as_deref()),
        Command::Watch { metrics_listen, stop_after } => {
            crate::watch::run(&setup, metrics_listen, stop_after.map(HumanDuration::get))
        }
        Command::Status => status(&setup),
        Command::Report { since, until, targets, format, monthly, output, quorum } => {
            report(&setup, &Period { since, until, monthly, quorum }, targets, format, output.as_deref())
        }
        Command::Maintenance(m) => maintenance_cmd(&setup, m),
        Command::Import { format: ImportFormat::SeedLog, file, target, interval, utc_offset, from, until, only } => {
            let args = ImportArgs { target, interval, utc_offset, from, until, only };
            import(&setup, &file, &args)
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "local".into())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    standby_common::runtime()
}

fn check(setup: &Setup, metrics_file: Option<&std::path::Path>) -> anyhow::Result<Code> {
    if setup.targets.is_empty() {
        return Err(exit::error(Code::Usage, "no targets: add [[downtime-monitor.target]] entries to the config"));
    }
    let _lock = setup.ctx.state()?.lock("check")?;
    let rt = runtime()?;
    let samples = rt.block_on(crate::monitor::probe_all(&setup.targets, setup.concurrency()));
    let monitor = setup.monitor();
    let (round, transitions) = monitor.record(samples)?;
    rt.block_on(monitor.alert(&transitions));
    if let Some(path) = metrics_file {
        let mut m = crate::metrics::Metrics::default();
        m.update(&round);
        write_atomic(path, m.render().as_bytes())?;
    }
    let code = if round.down > 0 { Code::Failed } else { Code::Ok };
    setup.ctx.output.report(&round, code)?;
    Ok(code)
}

#[derive(serde::Serialize)]
struct Status {
    vantage: String,
    targets: Vec<crate::machine::TargetState>,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.targets.is_empty() {
            return writeln!(f, "no checks recorded yet (vantage {})", self.vantage);
        }
        for t in &self.targets {
            write!(f, "{:<24} {:<7} since {}", t.target, t.health.as_str().to_uppercase(), clock::fmt(t.since))?;
            write!(f, "  last check {}", clock::fmt(t.last_at))?;
            if let Some(e) = &t.last_error {
                write!(f, "  last error: {e}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

fn status(setup: &Setup) -> anyhow::Result<Code> {
    let mut store = setup.store()?;
    let status = Status { vantage: setup.vantage.clone(), targets: store.states()? };
    let down = status.targets.iter().any(|t| t.health == crate::machine::Health::Down);
    let code = if down { Code::Failed } else { Code::Ok };
    setup.ctx.output.report(&status, code)?;
    Ok(code)
}

/// What a report covers.
struct Period {
    since: String,
    until: String,
    monthly: bool,
    quorum: Option<usize>,
}

fn report(
    setup: &Setup,
    period: &Period,
    only: Vec<String>,
    format: ReportFormat,
    output: Option<&std::path::Path>,
) -> anyhow::Result<Code> {
    let (since, until) = (period.since.as_str(), period.until.as_str());
    if period.quorum == Some(0) {
        return Err(exit::error(Code::Usage, "--quorum must be at least 1"));
    }
    let now = clock::now_ms();
    let from = clock::parse_when(since, now).map_err(|e| exit::error(Code::Usage, format!("--since: {e}")))?;
    let to = clock::parse_when(until, now).map_err(|e| exit::error(Code::Usage, format!("--until: {e}")))?;
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
    if !only.is_empty() {
        if let Some(missing) = only.iter().find(|o| !names.contains(o)) {
            return Err(exit::error(
                Code::Usage,
                format!("--target {missing}: no such target in the config or the history"),
            ));
        }
        names = only;
    }
    let maint = Maintenance { recurring: setup.recurring.clone(), windows: store.windows(from)? };
    let thresholds = setup.config.decision.unwrap_or_default();
    let scope =
        crate::report::Scope { targets: names, from, to, thresholds, monthly: period.monthly, quorum: period.quorum };
    let report = crate::report::build(&mut store, &maint, &scope)?;
    let format = if setup.ctx.output.json { ReportFormat::Json } else { format };
    let text = match format {
        ReportFormat::Human => report.to_string(),
        ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReportFormat::Html => crate::render::html(&report)?,
        ReportFormat::Svg => crate::render::svg(&report)?,
    };
    match output {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(Code::Ok)
}

#[derive(serde::Serialize)]
struct Windows(Vec<crate::store::Window>);

impl std::fmt::Display for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no maintenance windows open or coming");
        }
        for w in &self.0 {
            writeln!(
                f,
                "#{:<4} {:<20} {} .. {}  {}",
                w.id,
                w.target,
                clock::fmt(w.start),
                clock::fmt(w.end),
                w.reason
            )?;
        }
        Ok(())
    }
}

fn maintenance_cmd(setup: &Setup, cmd: MaintenanceCommand) -> anyhow::Result<Code> {
    let mut store = setup.store()?;
    let now = clock::now_ms();
    match cmd {
        MaintenanceCommand::Add { target, duration, start, reason } => {
            if target != "*" && !setup.targets.iter().any(|t| t.name == target) {
                return Err(exit::error(
                    Code::Usage,
                    format!("--target {target}: no such target in the config (use * for all)"),
                ));
            }
            let start = match start {
                Some(s) => clock::parse_when(&s, now).map_err(|e| exit::error(Code::Usage, format!("--start: {e}")))?,
                None => now,
            };
            if duration.get().is_zero() {
                return Err(exit::error(Code::Usage, "--for must be more than 0s"));
            }
            let end = start.saturating_add(standby_common::duration::millis(duration.get())).min(clock::MAX_MS);
            if end <= now {
                return Err(exit::error(Code::Usage, "the window would already be over: check --start and --for"));
            }
            let id = store.add_window(&target, start, end, &reason)?;
            let w = crate::store::Window { id, target, start, end, reason };
            setup.ctx.output.report(&Windows(vec![w]), Code::Ok)?;
        }
        MaintenanceCommand::List => setup.ctx.output.report(&Windows(store.windows(now)?), Code::Ok)?,
        MaintenanceCommand::End { id } => {
            if !store.end_window(id, now)? {
                return Err(exit::error(Code::Usage, format!("no open maintenance window #{id}")));
            }
            setup.ctx.output.report(&Windows(Vec::new()), Code::Ok)?;
        }
    }
    Ok(Code::Ok)
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

/// How to read an imported log.
struct ImportArgs {
    target: Option<String>,
    interval: HumanDuration,
    utc_offset: Option<String>,
    from: Option<String>,
    until: Option<String>,
    only: Option<String>,
}

fn import(setup: &Setup, file: &std::path::Path, args: &ImportArgs) -> anyhow::Result<Code> {
    let usage = |m: String| exit::error(Code::Usage, m);
    let text = std::fs::read_to_string(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let offset = args
        .utc_offset
        .as_deref()
        .map(clock::parse_offset)
        .transpose()
        .map_err(|e| usage(format!("--utc-offset: {e}")))?;
    let mut lines = crate::import::parse(&text, offset)
        .map_err(|(line, msg)| usage(format!("{}:{line}: {msg}", file.display())))?;
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
