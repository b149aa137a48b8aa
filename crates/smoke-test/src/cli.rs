//! Command line: suite files or the ad-hoc `--url` form, flags merged with the `[smoke-test]`
//! config section into [`RunOptions`], the report printed or written, the exit code.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use standby_common::cli::{print_effective_config, GlobalArgs};
use standby_common::duration::HumanDuration;
use standby_common::exit::{self, Code};
use standby_common::probe::StatusSet;
use standby_common::settings::{self, Origin, Sources};
use standby_common::state::write_atomic;

use crate::config::Config;
use crate::suite::{Check, Suite};
use crate::{exit_code, Format, RunOptions};

const EXAMPLES: &str = "Examples:
  # after a deploy, check the idle colour before switching nginx to it
  smoke-test deploy/smoke.toml --base-url http://127.0.0.1:3002
  # in CI: 8 checks at a time, a JUnit report for the test tab, retries while the app warms up
  smoke-test smoke.toml --base-url https://staging.example.com --jobs 8 --retries 3 \\
      --format junit --output smoke-junit.xml
  # one URL, no suite file
  smoke-test --url https://example.com/health --expect-status 200 --expect-body ok --max-latency 500ms
  # the origin behind Cloudflare, by IP, with its real host name and certificate
  smoke-test smoke.toml --base-url https://app.example.com --resolve app.example.com:203.0.113.10

Exit codes: 0 all checks passed, 1 a check failed, 2 bad suite file or flags (nothing was sent),
4 nothing answered at all (connection refused, name not resolved).";

/// Declarative HTTP checks after a deploy, with CI-friendly reports.
#[derive(Debug, clap::Parser)]
#[command(name = "smoke-test", version, after_help = EXAMPLES, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Suite files ([[check]] entries); checks of all files share one --jobs pool
    #[arg(value_name = "SUITE.toml")]
    pub suites: Vec<PathBuf>,

    #[command(flatten)]
    pub settings: Config,

    /// Write the report to FILE (a summary still goes to stdout unless -q)
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Set a {{variable}} (repeatable): --var user=demo
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,

    /// Connect to IP for HOST, keeping the name for TLS and Host (repeatable): HOST:IP
    #[arg(long, value_name = "HOST:IP", value_parser = parse_resolve)]
    pub resolve: Vec<(String, IpAddr)>,

    /// Ad-hoc check of one URL instead of suite files
    #[arg(long, value_name = "URL", conflicts_with = "suites")]
    pub url: Option<String>,

    /// Ad-hoc: accepted status (200, 2xx, 200-299, lists) [default: 2xx]
    #[arg(long, value_name = "STATUS", requires = "url")]
    pub expect_status: Option<StatusSet>,

    /// Ad-hoc: the body must contain this text
    #[arg(long, value_name = "TEXT", requires = "url")]
    pub expect_body: Option<String>,

    /// Ad-hoc: the answer must come within this time
    #[arg(long, value_name = "DUR", requires = "url")]
    pub max_latency: Option<HumanDuration>,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected K=V, got {s:?}"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

fn parse_resolve(s: &str) -> Result<(String, IpAddr), String> {
    let (host, ip) = s.rsplit_once(':').ok_or_else(|| format!("expected HOST:IP, got {s:?}"))?;
    let ip = ip.trim_matches(['[', ']']).parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok((host.to_string(), ip))
}

/// The tool's name: its config section and env var prefix.
pub const TOOL: &str = "smoke-test";

/// Parse the process arguments and run.
pub fn main() -> anyhow::Result<Code> {
    let (cli, sources) = settings::parse::<Cli, Config>(TOOL);
    run(cli, &sources)
}

/// Run with parsed arguments.
pub fn run(cli: Cli, sources: &Sources) -> anyhow::Result<Code> {
    let ctx = cli.global.start(TOOL)?;
    let resolved = ctx.resolve(cli.settings.clone(), sources)?;
    if ctx.check_config {
        // The suite files given are loaded and validated too (exit 2 on a bad one); nothing is sent.
        let vars: BTreeMap<String, String> = cli.vars.iter().cloned().collect();
        for path in &cli.suites {
            Suite::load(path, &vars)?;
        }
        return print_effective_config(&ctx, &resolved);
    }
    let config = resolved.value;
    let format_given = matches!(resolved.origins.get("format"), Some(Origin::Flag | Origin::Env { .. }));
    let format = match config.format {
        Some(format) if format_given || !cli.global.json => format,
        _ if cli.global.json => Format::Json,
        _ => Format::Human,
    };
    let opts = RunOptions { resolve: cli.resolve.clone(), ..RunOptions::from_config(&config)? };
    if let Some(dir) = cli.output.as_deref().and_then(std::path::Path::parent).filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(exit::error(Code::Usage, format!("--output: directory {} does not exist", dir.display())));
        }
    }
    let vars: BTreeMap<String, String> = cli.vars.iter().cloned().collect();
    let suites = match &cli.url {
        Some(url) => vec![Suite::single(ad_hoc(&cli, url)?)],
        None if cli.suites.is_empty() => {
            return Err(exit::error(Code::Usage, "no suite file given: pass SUITE.toml... or --url URL"));
        }
        None => cli.suites.iter().map(|p| Suite::load(p, &vars)).collect::<anyhow::Result<_>>()?,
    };
    let total = suites.iter().map(|s| s.checks.len() as u64).sum();
    // -vv: each request and answer on stderr, redacted, as `hurl --verbose` shows them.
    let opts = RunOptions { progress: ctx.output.progress(total, "checks"), trace: cli.global.verbose >= 2, ..opts };
    let report = crate::run_blocking(&suites, &opts)?;
    let code = exit_code(&report);
    let rendered = format.render(&report);
    match &cli.output {
        Some(path) => {
            write_atomic(path, rendered.as_bytes())?;
            if ctx.output.quiet {
                if code != Code::Ok {
                    print!("{}", report.failures_only());
                }
            } else {
                print!("{report}");
            }
        }
        // -q: only the failed checks and the summary, nothing when all passed.
        None if format == Format::Human && ctx.output.quiet => {
            if code != Code::Ok {
                print!("{}", report.failures_only());
            }
        }
        None if format == Format::Human => ctx.output.report(&report, code)?,
        None => print!("{rendered}"),
    }
    Ok(code)
}

fn ad_hoc(cli: &Cli, url: &str) -> anyhow::Result<Check> {
    crate::suite::check_url(url).map_err(|e| exit::error(Code::Usage, format!("--url: {e}")))?;
    let mut check = Check::get(&standby_common::secret::redact(url), url).map_err(|e| exit::error(Code::Usage, e))?;
    if let Some(s) = &cli.expect_status {
        check.expect.status = s.clone();
    }
    check.expect.body_contains.extend(cli.expect_body.clone());
    check.expect.max_latency = cli.max_latency.map(HumanDuration::get);
    Ok(check)
}
