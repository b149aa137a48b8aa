//! `{{name}}` placeholders in suite strings: a `--var`/`[vars]` value, a capture from an
//! earlier check, or `{{env.NAME}}` for an environment variable named explicitly. Parsed
//! when the suite loads, so an unknown name is an error before any request is sent.

use std::collections::BTreeMap;

/// One piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var(String),
    Env(String),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parse `text`; an unclosed `{{` or an empty/invalid name is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close =
                after.find("}}").ok_or_else(|| format!("unclosed `{{{{` in {text:?}: expected `{{{{name}}}}`"))?;
            let name = after[..close].trim();
            let valid = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            match name.strip_prefix("env.") {
                Some(var) if valid(var) => pieces.push(Piece::Env(var.to_string())),
                None if valid(name) => pieces.push(Piece::Var(name.to_string())),
                _ => {
                    return Err(format!(
                        "invalid placeholder `{{{{{name}}}}}`: expected `{{{{name}}}}` or `{{{{env.NAME}}}}`"
                    ))
                }
            }
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template { pieces })
    }

    /// The `{{name}}` variables used (not env vars).
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// The `{{env.NAME}}` variables used.
    pub fn env_vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Env(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Fill in a URL: values placed after the template's own `?` are percent-encoded as
    /// query components (`a&b=c#d` stays one value), values before it are pasted as they are
    /// (a captured path or a whole URL keeps its `/` and `?`).
    pub fn render_url(&self, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut in_query = false;
        for p in &self.pieces {
            let value = match p {
                Piece::Text(t) => {
                    out.push_str(t);
                    in_query |= t.contains('?');
                    continue;
                }
                Piece::Var(v) => vars.get(v).cloned().unwrap_or_default(),
                Piece::Env(v) => std::env::var(v).unwrap_or_default(),
            };
            if in_query {
                out.extend(url::form_urlencoded::byte_serialize(value.as_bytes()));
            } else {
                out.push_str(&value);
            }
        }
        out
    }

    /// Fill in the values; every name was checked at load time, a missing one becomes empty.
    pub fn render(&self, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(vars.get(v).map(String::as_str).unwrap_or("")),
                Piece::Env(v) => out.push_str(&std::env::var(v).unwrap_or_default()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_vars_and_env() {
        std::env::set_var("SMOKE_TEMPLATE_TEST", "e");
        let t = Template::parse("/u/{{ user }}?t={{token}}&e={{env.SMOKE_TEMPLATE_TEST}}").unwrap();
        let vars = BTreeMap::from([("user".to_string(), "ann".to_string()), ("token".to_string(), "x1".to_string())]);
        assert_eq!(t.render(&vars), "/u/ann?t=x1&e=e");
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["user", "token"]);
        assert_eq!(t.env_vars().collect::<Vec<_>>(), vec!["SMOKE_TEMPLATE_TEST"]);
    }

    #[test]
    fn values_in_the_query_are_encoded_and_paths_kept() {
        let t = Template::parse("{{base}}/s?q={{q}}&n=1").unwrap();
        let vars = BTreeMap::from([
            ("base".to_string(), "http://h/a?x=1".to_string()),
            ("q".to_string(), "a&b=c#d é".to_string()),
        ]);
        assert_eq!(t.render_url(&vars), "http://h/a?x=1/s?q=a%26b%3Dc%23d+%C3%A9&n=1");
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        assert!(Template::parse("{{user").unwrap_err().contains("unclosed"));
        assert!(Template::parse("{{}}").unwrap_err().contains("invalid placeholder"));
        assert!(Template::parse("{{a b}}").unwrap_err().contains("invalid placeholder"));
        assert_eq!(Template::parse("plain").unwrap().render(&BTreeMap::new()), "plain");
    }
}
