//! The flags every standby binary shares, flattened into each tool's clap parser, and the
//! start of every run: logging, the config file, the state dir.

use std::path::PathBuf;

use crate::config::ConfigFile;
use crate::exit::Code;
use crate::notify::Notifiers;
use crate::output::{self, Output};
use crate::settings::{self, Resolved, Section, Sources};
use crate::state::StateDir;

/// Global flags: `--config`, `--json`, `-v`/`-q`, `--state-dir`, `--check-config`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Config file [default: $STANDBY_CONFIG, else /etc/standby/standby.toml if present]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print the result as JSON on stdout (one object per run; JSON lines in watch modes)
    #[arg(long, global = true)]
    pub json: bool,

    /// More log detail on stderr: -v info, -vv debug, -vvv trace (secrets are never logged)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print nothing on success (for cron); failures are still reported on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Where this tool keeps its state and lock
    /// [default: /var/lib/standby/<tool> as root, else $XDG_STATE_HOME/standby/<tool>]
    #[arg(long, global = true, value_name = "DIR", env = "STANDBY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Check the config file, print the effective settings (secrets hidden) and exit
    #[arg(long, global = true)]
    pub check_config: bool,
}

/// What a run starts from: how to print, the config file, where state lives.
#[derive(Debug, Clone)]
pub struct Context {
    pub tool: &'static str,
    pub output: Output,
    pub config: ConfigFile,
    pub state_dir_override: Option<PathBuf>,
    pub check_config: bool,
    /// The `[[notify]]` list, validated (and its secrets read) at start.
    pub notifiers: Notifiers,
}

impl GlobalArgs {
    /// Start logging and read the config file (a bad file is a usage error, exit 2, before
    /// anything else happens).
    pub fn start(&self, tool: &'static str) -> anyhow::Result<Context> {
        output::init_logging(self.verbose, self.quiet);
        let config = ConfigFile::locate(self.config.as_deref())?;
        if let Some(path) = &config.path {
            tracing::debug!("config file: {}", path.display());
        }
        let notifiers = Notifiers::from_config(&config)?;
        Ok(Context {
            notifiers,
            tool,
            output: Output { json: self.json, quiet: self.quiet },
            config,
            state_dir_override: self.state_dir.clone(),
            check_config: self.check_config,
        })
    }
}

impl Context {
    /// This tool's section: the file's, with flags and env vars (their [`Sources`]) merged
    /// over it.
    pub fn resolve<S: Section>(&self, cli: S, sources: &Sources) -> anyhow::Result<Resolved<S>> {
        settings::resolve(&self.config, self.tool, cli, sources)
    }

    /// This tool's state dir, created if needed.
    pub fn state(&self) -> anyhow::Result<StateDir> {
        StateDir::open(self.tool, self.state_dir_override.as_deref())
    }
}

/// `--check-config`: the tool's effective settings (flags, env, file and defaults merged,
/// secrets shown as `***`), each with where it came from, as commented TOML or, with
/// `--json`, as `{"config", "tool", "settings", "origins"}`. The config was validated when
/// this runs; it is rendered before `-q` is looked at, so `-q` never hides an error.
pub fn print_effective_config<S: Section>(ctx: &Context, resolved: &Resolved<S>) -> anyhow::Result<Code> {
    let source = ctx.config.path.as_ref().map(|p| p.display().to_string());
    let text = if ctx.output.json {
        let doc = serde_json::json!({
            "config": source,
            "tool": ctx.tool,
            "settings": resolved.effective()?,
            "origins": resolved.origins,
        });
        format!("{doc}\n")
    } else {
        let head = match &source {
            Some(path) => format!("# {path}: ok"),
            None => "# no config file: defaults, env vars and flags only".to_string(),
        };
        format!("{head}\n{}", resolved.to_toml()?)
    };
    if !ctx.output.quiet {
        print!("{text}");
    }
    Ok(Code::Ok)
}
