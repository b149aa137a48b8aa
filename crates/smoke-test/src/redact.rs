//! What a report must never show: the password of a URL's userinfo, the values of
//! secret-looking query parameters (the shared default list, [`SENSITIVE_QUERY_KEYS`], plus
//! the `redact-query` key of `[smoke-test]`), and every value that came from `{{env.NAME}}`.
//! Applied to every string of every result, answered or not, before any format renders it.
//!
//! [`SENSITIVE_QUERY_KEYS`]: standby_common::secret::SENSITIVE_QUERY_KEYS

use std::collections::BTreeSet;

use crate::report::CheckResult;

/// The secrets of a run and the extra query keys to hide.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// Values to replace with `***` wherever they appear (longest first).
    secrets: Vec<String>,
    query_keys: Vec<String>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>, query_keys: &[String]) -> Redactor {
        let set: BTreeSet<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let mut secrets: Vec<String> = Vec::new();
        for s in set {
            // A body excerpt is escaped (`\n`, `\"`): hide the escaped form too.
            let escaped: String = s.chars().flat_map(char::escape_debug).collect();
            if escaped != s {
                secrets.push(escaped);
            }
            secrets.push(s);
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets, query_keys: query_keys.to_vec() }
    }

    /// A text with its secrets replaced by `***`.
    pub fn text(&self, text: &str) -> String {
        let mut out = standby_common::secret::redact_with(text, &self.query_keys);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }

    /// Every string of a result.
    pub fn result(&self, r: &mut CheckResult) {
        for field in [&mut r.suite, &mut r.name, &mut r.method, &mut r.url] {
            *field = self.text(field);
        }
        for f in &mut r.failures {
            *f = self.text(f);
        }
        if let Some(b) = &mut r.body_excerpt {
            *b = self.text(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_and_configured_keys_are_hidden() {
        let r = Redactor::new(["tok\"en".to_string(), "hunter2".to_string(), String::new()], &["sess".to_string()]);
        assert_eq!(r.text("http://h/p?sess=1&a=hunter2"), "http://h/p?sess=***&a=***");
        assert_eq!(r.text("body: {\\\"t\\\":\\\"tok\\\"en\\\"}"), "body: {\\\"t\\\":\\\"***\\\"}");
        assert_eq!(r.text("nothing here"), "nothing here");
    }
}
