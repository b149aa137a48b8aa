//! Secrets (API tokens, repository passwords, DB passwords): read from an env var or a file,
//! never from the config file itself, and never printed — `Debug`, `Display` and `Serialize`
//! all show `***`, so a secret cannot leak through `-vv` logs or `--json`.

use std::fmt;
use std::path::Path;

use anyhow::Context;

use crate::exit::{Code, CodedResult};

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it (a header, a password field).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// A URL or libpq conninfo with its password replaced by `***`, for printing:
/// `postgres://mon:hunter2@db/x` → `postgres://mon:***@db/x`, `password=x` → `password=***`,
/// and `?token=`/`?password=`-style query values.
pub fn redact(text: &str) -> String {
    if let Ok(mut url) = url::Url::parse(text) {
        if url.has_host() {
            let mut changed = false;
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
                changed = true;
            }
            let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            if pairs.iter().any(|(k, _)| sensitive(k)) {
                let mut q = url.query_pairs_mut();
                q.clear();
                for (k, v) in &pairs {
                    q.append_pair(k, if sensitive(k) { "***" } else { v });
                }
                changed = true;
            }
            if changed {
                return url.to_string();
            }
        }
        return text.to_string();
    }
    text.split(' ')
        .map(|word| match word.split_once('=') {
            Some((k, _)) if sensitive(k) => format!("{k}=***"),
            _ => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "token", "secret", "apikey", "api_key", "key"].iter().any(|s| k == *s || k.ends_with(s))
}

/// Where a secret comes from, in order: the env var named by `env_key` (a `*-env` config key),
/// the file `file` (a `*-file` key), the tool's default env var (`STANDBY_<TOOL>_<KEY>`).
/// Returns `None` when none is set. A missing file or an unset named env var is a usage error.
pub fn resolve(
    what: &str,
    env_key: Option<&str>,
    file: Option<&Path>,
    default_env: &str,
) -> anyhow::Result<Option<Secret>> {
    if let Some(var) = env_key {
        let value = std::env::var(var)
            .with_context(|| format!("{what}: environment variable {var} is not set"))
            .code(Code::Usage)?;
        return Ok(Some(Secret(value)));
    }
    if let Some(path) = file {
        return read_file(what, path).map(Some);
    }
    Ok(std::env::var(default_env).ok().map(Secret))
}

/// Read a secret file (trailing newline removed); warn when others can read it.
pub fn read_file(what: &str, path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{what}: cannot read secret file {}", path.display()))
        .code(Code::Usage)?;
    warn_if_readable_by_others(path);
    let value = text.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(crate::exit::error(Code::Usage, format!("{what}: secret file {} is empty", path.display())));
    }
    Ok(Secret(value))
}

/// Log a warning when a file that holds secrets can be read by group or others.
pub fn warn_if_readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o044 != 0 => {
            tracing::warn!(
                "{} holds a secret and is readable by others (mode {:o}); run: chmod 600 {}",
                path.display(),
                meta.permissions().mode() & 0o777,
                path.display()
            );
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn file_secret_is_trimmed_and_world_readable_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(warn_if_readable_by_others(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!warn_if_readable_by_others(&path));
        let s = resolve("token", None, Some(&path), "STANDBY_TEST_UNSET_VAR").unwrap();
        assert_eq!(s.unwrap().expose(), "abc123");
    }

    #[test]
    fn urls_and_conninfo_are_redacted() {
        assert_eq!(redact("postgres://mon:hunter2@db.example/x"), "postgres://mon:***@db.example/x");
        assert_eq!(redact("host=db user=mon password=hunter2 dbname=x"), "host=db user=mon password=*** dbname=x");
        assert_eq!(redact("https://h.example/p?token=abc&x=1"), "https://h.example/p?token=***&x=1");
        assert_eq!(redact("https://h.example/health"), "https://h.example/health");
        assert_eq!(redact("plain text"), "plain text");
    }

    #[test]
    fn missing_sources_are_usage_errors() {
        let err = resolve("token", Some("STANDBY_TEST_SURELY_UNSET"), None, "X").unwrap_err();
        assert_eq!(crate::exit::code_of(&err), Code::Usage);
        assert!(format!("{err:#}").contains("STANDBY_TEST_SURELY_UNSET"));
        let err = resolve("token", None, Some(Path::new("/nonexistent/t")), "X").unwrap_err();
        assert_eq!(crate::exit::code_of(&err), Code::Usage);
    }
}
