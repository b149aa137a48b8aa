//! One declaration per config section, read by clap and by serde, merged one way for every
//! tool: **flag, then env var, then the file, then the default**.
//!
//! A tool declares its `[tool]` section once with [`section!`](crate::section): each field is
//! a config key (kebab-case in TOML), a flag (`--key`, from `#[arg(long)]`), and an env var
//! (`STANDBY_<TOOL>_<KEY>`, added here, not written per field). Defaults are clap's
//! (`default_value`/`default_value_t`), so `--help` shows them and the file's serde defaults
//! are the same values. Lists of tables (`[[downtime-monitor.target]]`) and sub-tables
//! (`[dns-failover.cloudflare]`) are `#[arg(skip)]`: file only, and `--help` says so. Booleans take `--key` (true), `--key=false`, and the env
//! var takes `true/false/1/0/yes/no/on/off`.
//!
//! ```
//! use standby_common::section;
//! section! {
//!     /// Settings of a tool.
//!     pub struct Demo {
//!         /// Requests in flight at most
//!         #[arg(long, default_value_t = 4)]
//!         pub jobs: usize,
//!         /// Base URL
//!         #[arg(long)]
//!         pub base_url: Option<String>,
//!     }
//! }
//! let demo = Demo::default();
//! assert_eq!(demo.jobs, 4);
//! ```
//!
//! [`parse`] builds the tool's clap command with those env vars and returns the parsed CLI
//! with the [`Sources`] of each section value; [`resolve`] merges the file's section with
//! them and records where each value came from, which `--check-config` prints.

use std::collections::BTreeMap;
use std::fmt;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, CommandFactory, FromArgMatches};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Serialize;

use crate::config::{line_col, ConfigFile};
use crate::exit::{self, Code};

/// A config section declared with [`section!`](crate::section).
pub trait Section: Args + FromArgMatches + Serialize + DeserializeOwned + Clone + Default {
    /// The struct's field names, in declaration order (clap ids, snake_case).
    const FIELDS: &'static [&'static str];
    /// Move field `field` of `from` into `self`.
    fn take_field(&mut self, field: &str, from: &mut Self);
}

/// Declare a config section: the struct gets clap's `Args`, serde's `Deserialize` (unknown
/// keys refused, kebab-case, missing keys take clap's defaults) and `Serialize`, `Default`
/// from clap's defaults, and [`Section`]. Write `#[arg(long)]` (and a default) on each key,
/// `#[arg(skip)]` on lists of tables.
#[macro_export]
macro_rules! section {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fattr:meta])*
                $fvis:vis $field:ident : $fty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, ::clap::Args, ::serde::Deserialize, ::serde::Serialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
        $vis struct $name {
            $( $(#[$fattr])* $fvis $field: $fty, )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                $crate::settings::defaults::<Self>()
            }
        }

        impl $crate::settings::Section for $name {
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
            fn take_field(&mut self, field: &str, from: &mut Self) {
                match field {
                    $( stringify!($field) => ::std::mem::swap(&mut self.$field, &mut from.$field), )*
                    _ => {}
                }
            }
        }
    };
}

/// The section with every key at its default (clap's parse of no arguments).
pub fn defaults<S: Section>() -> S {
    let matches = S::augment_args(Command::new("defaults").no_binary_name(true))
        .try_get_matches_from(std::iter::empty::<String>())
        .unwrap_or_else(|e| panic!("a section key has neither a default nor Option: {e}"));
    S::from_arg_matches(&matches).unwrap_or_else(|e| panic!("section defaults: {e}"))
}

/// `STANDBY_<TOOL>_<KEY>`: the env var of a key.
pub fn env_var(tool: &str, key: &str) -> String {
    format!("STANDBY_{}_{}", tool.replace('-', "_"), key.replace('-', "_")).to_uppercase()
}

/// The kebab-case key of a field name.
pub fn key_of(field: &str) -> String {
    field.replace('_', "-")
}

/// The clap ids of the section's flags (its fields minus `#[arg(skip)]` ones).
pub fn flag_fields<S: Section>() -> Vec<String> {
    S::augment_args(Command::new("s")).get_arguments().map(|a| a.get_id().to_string()).collect()
}

/// Keys that only the file can set (lists of tables), as serde names them.
pub fn file_only_keys<S: Section>() -> Vec<String> {
    let flags: Vec<String> = flag_fields::<S>().iter().map(|f| key_of(f)).collect();
    match serde_json::to_value(defaults::<S>()) {
        Ok(serde_json::Value::Object(map)) => map.keys().filter(|k| !flags.contains(k)).cloned().collect(),
        _ => Vec::new(),
    }
}

/// The tool's clap command with its section's flags made global (usable after a
/// subcommand), given their env var, grouped under one heading, booleans taking `=false`.
pub fn command<C: CommandFactory, S: Section>(tool: &str) -> Command {
    let fields = flag_fields::<S>();
    let heading = format!("Settings (also `[{tool}]` keys in the config file and STANDBY_* env vars)");
    let mut cmd = C::command().mut_args(|arg| {
        if !fields.iter().any(|f| arg.get_id() == f.as_str()) {
            return arg;
        }
        let env = env_var(tool, arg.get_long().unwrap_or(arg.get_id().as_str()));
        let arg = arg.env(env).global(true).help_heading(heading.clone());
        if matches!(arg.get_action(), ArgAction::Append) {
            // A list key: the flag is repeated, the env var is comma-separated.
            arg.value_delimiter(',')
        } else if is_bool(&arg) {
            arg.action(ArgAction::Set)
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .default_value("false")
                .value_name("BOOL")
                .value_parser(clap::builder::BoolishValueParser::new())
        } else {
            arg
        }
    });
    let file_only = file_only_keys::<S>();
    if !file_only.is_empty() {
        let defaults = serde_json::to_value(defaults::<S>()).unwrap_or_default();
        let lists: Vec<String> = file_only
            .iter()
            .map(|k| match defaults.get(k) {
                Some(serde_json::Value::Array(_)) => format!("[[{tool}.{k}]]"),
                _ => format!("[{tool}.{k}]"),
            })
            .collect();
        let note = format!("File only (no flag or env var): {}.", lists.join(", "));
        let after = match cmd.get_after_help() {
            Some(text) => format!("{text}\n\n{note}"),
            None => note,
        };
        cmd = cmd.after_help(after);
    }
    cmd
}

fn is_bool(arg: &Arg) -> bool {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return true;
    }
    let values: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
    values == ["true", "false"]
}

/// Where each section value given on the command line came from (flag, env, default).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    tool: String,
    by_field: BTreeMap<String, ValueSource>,
}

impl Sources {
    /// Read the sources of the section's flags from parsed matches.
    pub fn of<S: Section>(tool: &str, matches: &ArgMatches) -> Self {
        let by_field =
            flag_fields::<S>().into_iter().filter_map(|f| matches.value_source(&f).map(|s| (f, s))).collect();
        Sources { tool: tool.to_string(), by_field }
    }
}

/// Parse the process arguments (clap prints help/errors and exits 2 on a bad flag).
pub fn parse<C: CommandFactory + FromArgMatches, S: Section>(tool: &str) -> (C, Sources) {
    match try_parse_from::<C, S, _>(tool, std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => e.exit(),
    }
}

/// Parse `args` (the first is the program name).
pub fn try_parse_from<C, S, I>(tool: &str, args: I) -> Result<(C, Sources), clap::Error>
where
    C: CommandFactory + FromArgMatches,
    S: Section,
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command::<C, S>(tool);
    let matches = cmd.try_get_matches_from_mut(args)?;
    let cli = C::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    Ok((cli, Sources::of::<S>(tool, &matches)))
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum Origin {
    /// `--key` on the command line.
    Flag,
    /// `STANDBY_<TOOL>_<KEY>`.
    Env { name: String },
    /// The config file, at this line.
    File { path: String, line: usize },
    /// Nobody set it.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag => f.write_str("flag"),
            Origin::Env { name } => write!(f, "env {name}"),
            Origin::File { path, line } => write!(f, "{path}:{line}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A section after merging, and where each key's value came from.
#[derive(Debug, Clone)]
pub struct Resolved<S> {
    pub tool: String,
    pub value: S,
    /// Kebab-case key → origin, for every key.
    pub origins: BTreeMap<String, Origin>,
}

/// Merge the file's `[tool]` section with the command line's: a flag or env var wins, then
/// the file, then the default. Errors in the file exit 2 with file:line:col.
pub fn resolve<S: Section>(
    file: &ConfigFile,
    tool: &'static str,
    cli: S,
    sources: &Sources,
) -> anyhow::Result<Resolved<S>> {
    let mut value: S = file.section_or_default(tool)?;
    let positions = key_positions(file, tool)?;
    let path = file.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let mut cli = cli;
    let mut origins = BTreeMap::new();
    for field in S::FIELDS {
        let key = key_of(field);
        let in_file = positions.get(&key).copied();
        let origin = match (sources.by_field.get(*field), in_file) {
            (Some(ValueSource::CommandLine), _) => Origin::Flag,
            (Some(ValueSource::EnvVariable), _) => Origin::Env { name: env_var(&sources.tool, &key) },
            (_, Some(offset)) => Origin::File { path: path.clone(), line: line_col(&file.text, offset).0 },
            _ => Origin::Default,
        };
        if matches!(origin, Origin::Flag | Origin::Env { .. }) {
            value.take_field(field, &mut cli);
        }
        origins.insert(key, origin);
    }
    // Lists of tables are renamed (`target` for `targets`): take their origin from the file.
    for key in file_only_keys::<S>() {
        if let Some(offset) = positions.get(&key) {
            origins.insert(key, Origin::File { path: path.clone(), line: line_col(&file.text, *offset).0 });
        }
    }
    origins.retain(|k, _| serde_key_exists::<S>(k));
    Ok(Resolved { tool: tool.to_string(), value, origins })
}

fn serde_key_exists<S: Section>(key: &str) -> bool {
    match serde_json::to_value(defaults::<S>()) {
        Ok(serde_json::Value::Object(map)) => map.contains_key(key),
        _ => true,
    }
}

/// Byte offset of each key of `[tool]` in the file.
fn key_positions(file: &ConfigFile, tool: &'static str) -> anyhow::Result<BTreeMap<String, usize>> {
    let keys: Option<BTreeMap<toml::Spanned<String>, IgnoredAny>> = file.section(tool)?;
    Ok(keys.unwrap_or_default().into_keys().map(|k| (k.get_ref().clone(), k.span().start)).collect())
}

impl<S: Section> Resolved<S> {
    /// `--check-config`'s document: the effective settings (secrets and passwords in URLs as
    /// `***`) with each value's origin.
    pub fn effective(&self) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
        let mut settings = serde_json::to_value(&self.value)?;
        redact_strings(&mut settings);
        match settings {
            serde_json::Value::Object(map) => Ok(map),
            _ => Err(exit::error(Code::Failed, "a config section must be a table")),
        }
    }

    /// The effective settings as commented TOML, one key a line with its origin.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let settings = self.effective()?;
        let mut scalars = String::new();
        let mut lists = String::new();
        for (key, value) in &settings {
            let origin = self.origins.get(key).map(ToString::to_string).unwrap_or_else(|| "default".into());
            match value {
                serde_json::Value::Null => scalars.push_str(&format!("# {key} = (not set)\n")),
                serde_json::Value::Array(items) if items.iter().all(|i| i.is_object()) && !items.is_empty() => {
                    // `[[tool.key]]` with its fields, as the user wrote it.
                    lists.push_str(&format!("\n# {key}: {origin}\n"));
                    for item in items {
                        let body = toml::to_string(&toml_value(item)?)?;
                        lists.push_str(&format!("[[{}.{key}]]\n{body}\n", self.tool));
                    }
                }
                _ => {
                    let rendered = toml_value(value)?.to_string();
                    scalars.push_str(&format!("{key} = {rendered}  # {origin}\n"));
                }
            }
        }
        Ok(format!("[{}]\n{scalars}{lists}", self.tool))
    }
}

/// Passwords inside URLs or conninfo strings (a store, a target address) become `***`.
fn redact_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = crate::secret::redact(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

/// A JSON value as TOML, without nulls (TOML has none).
fn toml_value(value: &serde_json::Value) -> anyhow::Result<toml::Value> {
    let mut value = value.clone();
    strip_nulls(&mut value);
    Ok(toml::Value::try_from(value)?)
}

fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;

    crate::section! {
        /// A test section.
        pub struct Demo {
            /// Requests in flight
            #[arg(long, default_value_t = 4)]
            pub jobs: usize,
            /// Base URL
            #[arg(long)]
            pub base_url: Option<String>,
            /// Timeout
            #[arg(long, default_value = "10s")]
            pub timeout: HumanDuration,
            /// Accept any certificate
            #[arg(long)]
            pub insecure: bool,
            /// Targets
            #[arg(skip)]
            #[serde(rename = "target")]
            pub targets: Vec<toml::Spanned<Item>>,
        }
    }

    #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
    pub struct Item {
        name: String,
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        demo: Demo,
    }

    fn parse(args: &[&str]) -> (Demo, Sources) {
        let (cli, sources) =
            try_parse_from::<Cli, Demo, _>("demo-tool", std::iter::once("demo-tool").chain(args.iter().copied()))
                .expect("parses");
        (cli.demo, sources)
    }

    #[test]
    fn defaults_come_from_clap() {
        let d = Demo::default();
        assert_eq!((d.jobs, d.base_url, d.timeout, d.insecure), (4, None, HumanDuration::from_secs(10), false));
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let file = ConfigFile::from_str(
            "s.toml",
            "[smoke-test]\njobs = 8\ninsecure = true\n\n[[smoke-test.target]]\nname = \"a\"\n",
        );
        let (cli, sources) = parse(&["--base-url", "http://127.0.0.1:1", "--insecure=false"]);
        let r = resolve(&file, "smoke-test", cli, &sources).expect("resolves");
        assert_eq!(r.value.jobs, 8);
        assert!(!r.value.insecure, "--insecure=false turns off the file's true");
        assert_eq!(r.value.base_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(r.value.timeout, HumanDuration::from_secs(10));
        assert_eq!(r.value.targets.len(), 1, "lists of tables stay the file's");
        assert_eq!(r.origins["jobs"], Origin::File { path: "s.toml".into(), line: 2 });
        assert_eq!(r.origins["insecure"], Origin::Flag);
        assert_eq!(r.origins["timeout"], Origin::Default);
        assert_eq!(r.origins["target"], Origin::File { path: "s.toml".into(), line: 5 });
        let text = r.to_toml().expect("renders");
        assert!(text.contains("jobs = 8  # s.toml:2"), "{text}");
        assert!(text.contains("[[smoke-test.target]]"), "{text}");
    }

    #[test]
    fn bare_boolean_flag_is_true() {
        let (cli, sources) = parse(&["--insecure"]);
        let r = resolve(&ConfigFile::empty(), "smoke-test", cli, &sources).expect("resolves");
        assert!(r.value.insecure);
    }

    #[test]
    fn env_names_follow_the_tool_and_key() {
        assert_eq!(env_var("smoke-test", "base-url"), "STANDBY_SMOKE_TEST_BASE_URL");
        let cmd = command::<Cli, Demo>("smoke-test");
        let arg = cmd.get_arguments().find(|a| a.get_id() == "retry_delay" || a.get_id() == "base_url");
        assert_eq!(arg.and_then(|a| a.get_env()).and_then(|e| e.to_str()), Some("STANDBY_SMOKE_TEST_BASE_URL"));
        assert_eq!(file_only_keys::<Demo>(), vec!["target".to_string()]);
    }
}
