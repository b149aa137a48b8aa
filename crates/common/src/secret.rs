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

/// Query (and fragment) parameters whose values [`redact`] hides, compared case-insensitively.
pub const SENSITIVE_QUERY_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "auth",
];

/// A text with its secrets replaced by `***`, for printing. Every URL in it (an error from
/// reqwest holds one: `error sending request for url (http://u:p@h/x?api_key=abc)`) loses the
/// password of its userinfo (`u:***@`) and the values of the [`SENSITIVE_QUERY_KEYS`] in its
/// query and fragment; outside URLs, libpq-style `password=x` words become `password=***`.
/// Nothing else is changed (no re-encoding of the URL).
pub fn redact(text: &str) -> String {
    redact_with(text, &[])
}

/// [`redact`], also hiding the values of the query parameters named in `extra_keys`
/// (compared case-insensitively, like [`SENSITIVE_QUERY_KEYS`]): a tool's configurable list.
pub fn redact_with(text: &str, extra_keys: &[String]) -> String {
    static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>()`]+"#).expect("valid regex")
    });
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in URL.find_iter(text) {
        // Sentence punctuation after a URL is not part of it.
        let url = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?']);
        out.push_str(&redact_words(&text[last..m.start()]));
        out.push_str(&redact_url(url, extra_keys));
        last = m.start() + url.len();
    }
    out.push_str(&redact_words(&text[last..]));
    out
}

/// One URL: the password in the userinfo, sensitive query and fragment values.
fn redact_url(url: &str, extra_keys: &[String]) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = String::from(&url[..scheme_end]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => out.push_str(&format!("{user}:***")),
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_pairs(query, extra_keys));
        }
        None => out.push_str(before_fragment),
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(&redact_pairs(fragment, extra_keys));
    }
    out
}

/// `a=1&token=x` → `a=1&token=***`.
fn redact_pairs(query: &str, extra_keys: &[String]) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if sensitive_query_key(k, extra_keys) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn sensitive_query_key(key: &str, extra_keys: &[String]) -> bool {
    let decoded: String = url::form_urlencoded::parse(format!("{key}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_else(|| key.to_string());
    SENSITIVE_QUERY_KEYS.iter().any(|s| decoded.eq_ignore_ascii_case(s))
        || extra_keys.iter().any(|s| decoded.eq_ignore_ascii_case(s))
}

/// Outside URLs: `password=x` (libpq conninfo, env dumps) → `password=***`.
fn redact_words(text: &str) -> String {
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
    fn urls_inside_error_messages_are_redacted() {
        assert_eq!(
            redact("error sending request for url (http://u:p@127.0.0.1:1/x?api_key=abc): client error (Connect)"),
            "error sending request for url (http://u:***@127.0.0.1:1/x?api_key=***): client error (Connect)"
        );
        assert_eq!(
            redact("error sending request for url (https://admin:s3cr%40t@[::1]:8443/health?a=1&TOKEN=t0k&Sig=zz#access_token=xyz): \
                    tcp connect error: Connection refused (os error 111)"),
            "error sending request for url (https://admin:***@[::1]:8443/health?a=1&TOKEN=***&Sig=***#access_token=***): \
                    tcp connect error: Connection refused (os error 111)"
        );
        // Every documented key, any case; other keys and the rest of the text untouched.
        for key in SENSITIVE_QUERY_KEYS {
            let upper = key.to_uppercase();
            assert_eq!(
                redact(&format!("GET http://h:8080/p?{upper}=hunter2&page=2 failed.")),
                format!("GET http://h:8080/p?{upper}=***&page=2 failed."),
            );
        }
        assert_eq!(redact("see http://h/p?keyword=x&monkey=y, then"), "see http://h/p?keyword=x&monkey=y, then");
        // Several URLs, a redirect chain, an encoded key name.
        assert_eq!(
            redact("redirect from https://a/x?sig=1 to https://u:pw@b/y?api%5Fkey=2 refused"),
            "redirect from https://a/x?sig=*** to https://u:***@b/y?api%5Fkey=*** refused"
        );
        assert_eq!(redact("timed out: postgres://mon:hunter2@db:5432/x"), "timed out: postgres://mon:***@db:5432/x");
        assert_eq!(redact("user-only http://deploy@h/ stays"), "user-only http://deploy@h/ stays");
        assert_eq!(redact("no scheme u:p@host"), "no scheme u:p@host");
        let extra = ["Session".to_string()];
        assert_eq!(redact_with("http://h/p?session=s1&token=t&x=1", &extra), "http://h/p?session=***&token=***&x=1");
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
