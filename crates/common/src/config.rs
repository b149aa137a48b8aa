//! The one configuration file, shared by all tools: `--config PATH`, else `$STANDBY_CONFIG`,
//! else `/etc/standby/standby.toml` if it exists, else built-in defaults.
//!
//! The file has one section per tool (`[smoke-test]`, `[dns-failover]`, ...) plus the shared
//! `[[notify]]` list; keys are kebab-case. A tool reads its own section into a struct with
//! `#[serde(deny_unknown_fields)]`; every error — syntax, wrong type, unknown key, unknown
//! section — is a usage error (exit 2) that starts with `file:line:col`, and an unknown key
//! or section gets a "did you mean" suggestion. Secrets never sit in the file: they are named
//! by `*-env` or `*-file` keys (see [`crate::secret`]).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use crate::exit::{self, Code};

/// The system-wide default location.
pub const DEFAULT_PATH: &str = "/etc/standby/standby.toml";
/// The env var that names the config file when `--config` is not given.
pub const ENV_VAR: &str = "STANDBY_CONFIG";
/// Top-level sections a standby config file may hold.
pub const SECTIONS: &[&str] = &[
    "backup-sync",
    "dns-failover",
    "replica-promote",
    "blue-green-deploy",
    "smoke-test",
    "downtime-monitor",
    "notify",
];

/// A config file read into memory (or none: every tool works from flags and defaults).
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: Option<PathBuf>,
    pub text: String,
}

impl ConfigFile {
    /// No file: every section is absent.
    pub fn empty() -> Self {
        ConfigFile { path: None, text: String::new() }
    }

    /// Find and read the file: an explicit path (flag, then env var) must exist; the system
    /// default is used only when present.
    pub fn locate(explicit: Option<&Path>) -> anyhow::Result<Self> {
        let from_env = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()).map(PathBuf::from);
        match explicit.map(Path::to_path_buf).or(from_env) {
            Some(path) => Self::read(&path),
            None if Path::new(DEFAULT_PATH).exists() => Self::read(Path::new(DEFAULT_PATH)),
            None => Ok(Self::empty()),
        }
    }

    /// Read a file that must exist.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| exit::error(Code::Usage, format!("{}: cannot read config file: {e}", path.display())))?;
        Ok(ConfigFile { path: Some(path.to_path_buf()), text })
    }

    /// A config from a string (tests, `--config -` in the future).
    pub fn from_str(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        ConfigFile { path: Some(path.into()), text: text.into() }
    }

    fn display_path(&self) -> String {
        self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<none>".into())
    }

    /// Deserialize section `name` into `T` (absent section = `None`). Checks the whole
    /// file's syntax and its top-level section names too.
    pub fn section<T: DeserializeOwned>(&self, name: &'static str) -> anyhow::Result<Option<T>> {
        let unknown_at = Cell::new(None);
        let seed = SectionSeed::<T> { name, unknown_at: &unknown_at, _t: PhantomData };
        let de = toml::Deserializer::new(&self.text);
        seed.deserialize(de).map_err(|e| match unknown_at.get() {
            Some(offset) => self.error_at(offset, e.message().trim_end()),
            None => self.error(&e),
        })
    }

    /// Like [`ConfigFile::section`], with `T::default()` for an absent section.
    pub fn section_or_default<T: DeserializeOwned + Default>(&self, name: &'static str) -> anyhow::Result<T> {
        Ok(self.section(name)?.unwrap_or_default())
    }

    /// Deserialize any whole document (a smoke-test suite, say) with the same error rules.
    pub fn document<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        toml::from_str(&self.text).map_err(|e| self.error(&e))
    }

    /// A usage error at a byte offset of this file, for checks done after parsing.
    pub fn error_at(&self, offset: usize, message: impl fmt::Display) -> anyhow::Error {
        let (line, col) = line_col(&self.text, offset);
        exit::error(Code::Usage, format!("{}:{line}:{col}: {message}", self.display_path()))
    }

    fn error(&self, e: &toml::de::Error) -> anyhow::Error {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        self.error_at(offset, explain(e.message()))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// The closest of `candidates` to `word`, if close enough to be a plausible typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Make serde's "unknown field `x`, expected one of `a`, `b`" friendlier: say it is a key
/// and suggest the closest known one.
fn explain(message: &str) -> String {
    let message = message.trim_end().replace('\n', "; ");
    let message = message.as_str();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((key, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match suggest(key, known.iter().copied()) {
        Some(best) => format!("unknown key `{key}`: did you mean `{best}`?"),
        None if known.is_empty() => format!("unknown key `{key}`"),
        None => format!("unknown key `{key}`; expected one of: {}", known.join(", ")),
    }
}

/// Walks the top-level table: deserializes the wanted section, skips the other known ones,
/// rejects unknown ones (with their position, taken from a spanned key).
struct SectionSeed<'c, T> {
    name: &'static str,
    unknown_at: &'c Cell<Option<usize>>,
    _t: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for SectionSeed<'_, T> {
    type Value = Option<T>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for SectionSeed<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of sections")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<toml::Spanned<String>>()? {
            let name = key.get_ref().as_str();
            if name == self.name {
                found = Some(map.next_value::<T>()?);
            } else if SECTIONS.contains(&name) {
                map.next_value::<IgnoredAny>()?;
            } else {
                self.unknown_at.set(Some(key.span().start));
                let hint = match suggest(name, SECTIONS.iter().copied()) {
                    Some(best) => format!("did you mean [{best}]?"),
                    None => format!("expected one of: {}", SECTIONS.join(", ")),
                };
                return Err(serde::de::Error::custom(format!("unknown section `{name}`: {hint}")));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "kebab-case")]
    struct Demo {
        timeout: Option<HumanDuration>,
        retries: Option<u32>,
    }

    fn err_text(cfg: &ConfigFile) -> (Code, String) {
        let e = cfg.section::<Demo>("smoke-test").unwrap_err();
        (exit::code_of(&e), format!("{e:#}"))
    }

    #[test]
    fn reads_its_section_and_ignores_other_tools() {
        let cfg = ConfigFile::from_str(
            "s.toml",
            "[dns-failover]\nanything = 1\n\n[smoke-test]\ntimeout = \"5s\"\nretries = 2\n",
        );
        let d: Demo = cfg.section_or_default("smoke-test").unwrap();
        assert_eq!(d.timeout, Some(HumanDuration::from_secs(5)));
        assert_eq!(d.retries, Some(2));
        assert!(cfg.section::<Demo>("backup-sync").unwrap().is_none());
    }

    #[test]
    fn syntax_error_names_file_line_col() {
        let cfg = ConfigFile::from_str("/etc/s.toml", "[smoke-test]\nretries = 2\ntimeout = \"5s\n");
        let (code, msg) = err_text(&cfg);
        assert_eq!(code, Code::Usage);
        assert!(msg.starts_with("/etc/s.toml:3:"), "{msg}");
    }

    #[test]
    fn unknown_key_is_named_with_a_suggestion() {
        let cfg = ConfigFile::from_str("s.toml", "[smoke-test]\n\ntimout = \"5s\"\n");
        let (code, msg) = err_text(&cfg);
        assert_eq!(code, Code::Usage);
        assert!(msg.starts_with("s.toml:3:1: unknown key `timout`: did you mean `timeout`?"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let cfg = ConfigFile::from_str("s.toml", "[smoke-test]\nretries = \"two\"\n");
        let (_, msg) = err_text(&cfg);
        assert!(msg.starts_with("s.toml:2:"), "{msg}");
        assert!(msg.contains("integer") || msg.contains("u32"), "{msg}");
    }

    #[test]
    fn bad_duration_explains_the_expected_form() {
        let cfg = ConfigFile::from_str("s.toml", "[smoke-test]\ntimeout = \"soon\"\n");
        let (_, msg) = err_text(&cfg);
        assert!(msg.starts_with("s.toml:2:") && msg.contains("expected e.g. 500ms"), "{msg}");
    }

    #[test]
    fn unknown_section_is_named_with_a_suggestion() {
        let cfg = ConfigFile::from_str("s.toml", "[smoke-test]\nretries = 1\n\n[dns-failvoer]\n");
        let (code, msg) = err_text(&cfg);
        assert_eq!(code, Code::Usage);
        assert!(msg.contains("4:2") && msg.contains("did you mean [dns-failover]?"), "{msg}");
    }

    #[test]
    fn explicit_missing_file_is_a_usage_error() {
        let e = ConfigFile::locate(Some(Path::new("/nonexistent/standby.toml"))).unwrap_err();
        assert_eq!(exit::code_of(&e), Code::Usage);
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
