//! Placeholders for the templated webhook (`body-template`, `headers`): `{tool}`, `{event}`,
//! `{EVENT}`, `{target}` (= `{subject}`), `{message}`, `{title}`, `{time}` (= `{at}`) and
//! `{env.NAME}`. Values are escaped for the body's format (JSON string, form field, text);
//! other braces (a JSON object's) are left alone, and an unknown `{word}` is a config error.

use super::Event;

/// How the body's placeholder values are escaped, and the default `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// Values escaped as JSON string contents (the template writes the quotes).
    #[default]
    Json,
    /// Values percent-encoded, as in `application/x-www-form-urlencoded` (Twilio).
    Form,
    /// Values as they are.
    Text,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Text => "text/plain; charset=utf-8",
        }
    }

    fn escape(self, value: &str) -> String {
        match self {
            BodyFormat::Json => {
                let quoted = serde_json::Value::String(value.to_string()).to_string();
                quoted[1..quoted.len() - 1].to_string()
            }
            BodyFormat::Form => url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
            BodyFormat::Text => value.to_string(),
        }
    }
}

/// The value of one placeholder, `None` when the name is unknown or its variable unset.
fn value(name: &str, event: &Event) -> Option<String> {
    Some(match name {
        "tool" => event.tool.clone(),
        "event" => event.kind.as_str().to_string(),
        "EVENT" => event.kind.as_str().to_uppercase(),
        "target" | "subject" => event.subject.clone(),
        "message" => event.message.clone(),
        "title" => event.title(),
        "time" | "at" => event.at.clone(),
        _ => return name.strip_prefix("env.").and_then(|var| std::env::var(var).ok()),
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Fill `template`'s placeholders from `event`, each value escaped by `format`. Errors name the
/// unknown placeholder or unset variable (never a value).
pub fn render(template: &str, event: &Event, format: BodyFormat) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| &after[..close]) {
            Some(name) if is_name(name) => {
                let v = value(name, event).ok_or_else(|| match name.strip_prefix("env.") {
                    Some(var) => format!("template: environment variable {var} is not set"),
                    None => format!(
                        "template: unknown placeholder {{{name}}} (known: {{tool}} {{event}} {{EVENT}} \
                         {{target}} {{message}} {{title}} {{time}} {{env.NAME}})"
                    ),
                })?;
                out.push_str(&format.escape(&v));
                rest = &after[name.len() + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::EventKind;

    #[test]
    fn placeholders_are_escaped_for_the_format_and_json_braces_stay() {
        let e = Event::new("downtime-monitor", EventKind::Down, "app", "said \"no\" & left");
        let json = render(r#"{"text": "{title}: {message}", "n": {}}"#, &e, BodyFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["text"], "[downtime-monitor] app DOWN: said \"no\" & left");
        let form = render("Body={EVENT}+{message}&To=x", &e, BodyFormat::Form).unwrap();
        assert_eq!(form, "Body=DOWN+said+%22no%22+%26+left&To=x");
        assert!(render("{mesage}", &e, BodyFormat::Text).unwrap_err().contains("unknown placeholder {mesage}"));
        let unset = render("{env.STANDBY_TEST_SURELY_UNSET}", &e, BodyFormat::Text).unwrap_err();
        assert!(unset.contains("STANDBY_TEST_SURELY_UNSET is not set"), "{unset}");
    }
}
