//! Alerts on state changes, to every notifier in the config's `[[notify]]` list:
//!
//! ```toml
//! [[notify]]
//! kind = "webhook"        # POST the event as JSON
//! url-file = "/etc/standby/webhook.url"
//! [[notify]]
//! kind = "slack"          # POST {"text": ...} to a Slack-style incoming webhook
//! url-env = "SLACK_WEBHOOK_URL"
//! [[notify]]
//! kind = "ntfy"           # POST the message to an ntfy topic URL (Title/Priority/Tags headers)
//! url = "http://127.0.0.1:8080/standby"
//! token-env = "NTFY_TOKEN"
//! [[notify]]
//! kind = "healthchecks"   # ping URL: /start, success, /fail
//! url-env = "HC_PING_URL"
//! events = ["start", "success", "failure"]
//! [[notify]]
//! kind = "command"        # run a program with STANDBY_EVENT, STANDBY_SUBJECT, ... in its env
//! command = ["/usr/local/bin/page-me"]
//! ```
//!
//! Webhook URLs often embed a token, so every URL is treated as a secret: logs name the
//! notifier's kind and host only. Each delivery is retried a bounded number of times; a
//! notifier that still fails is logged and never fails the tool's own job.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::ConfigFile;
use crate::exec::Cmd;
use crate::exit::{self, Code};
use crate::retry::Backoff;
use crate::secret::{self, Secret};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A job started (healthchecks `/start`).
    Start,
    /// A job finished well.
    Success,
    /// A job failed.
    Failure,
    /// A target went down.
    Down,
    /// A target came back.
    Recovered,
    /// Something was changed on purpose (DNS switched, replica promoted, colour switched).
    Changed,
    /// A UPS went on battery (the mains are cut).
    OnBattery,
    /// A UPS's battery is low: the load will be cut soon.
    BatteryLow,
    /// The mains are back after a cut.
    PowerRestored,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Start => "start",
            EventKind::Success => "success",
            EventKind::Failure => "failure",
            EventKind::Down => "down",
            EventKind::Recovered => "recovered",
            EventKind::Changed => "changed",
            EventKind::OnBattery => "on-battery",
            EventKind::BatteryLow => "battery-low",
            EventKind::PowerRestored => "power-restored",
        }
    }

    fn is_bad(self) -> bool {
        matches!(self, EventKind::Failure | EventKind::Down | EventKind::BatteryLow)
    }
}

/// One event, as sent to webhooks.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub tool: String,
    pub kind: EventKind,
    /// What the event is about: a target, a record, a repository.
    pub subject: String,
    pub message: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// Tool-specific details (durations, old and new values).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Event {
    pub fn new(tool: &str, kind: EventKind, subject: &str, message: impl Into<String>) -> Self {
        Event {
            tool: tool.to_string(),
            kind,
            subject: subject.to_string(),
            message: message.into(),
            at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            details: serde_json::Value::Null,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    fn title(&self) -> String {
        format!("[{}] {} {}", self.tool, self.subject, self.kind.as_str().to_uppercase())
    }
}

/// Kinds of notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Webhook,
    Slack,
    Ntfy,
    Healthchecks,
    Command,
}

/// One `[[notify]]` entry as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotifierConfig {
    pub kind: Kind,
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub command: Option<Vec<String>>,
    /// Only these events (default: all).
    pub events: Option<Vec<EventKind>>,
    /// Only for these tools (default: all).
    pub tools: Option<Vec<String>>,
    pub timeout: Option<crate::duration::HumanDuration>,
}

/// A notifier ready to send.
#[derive(Debug, Clone)]
pub struct Notifier {
    kind: Kind,
    target: Target,
    token: Option<Secret>,
    events: Option<Vec<EventKind>>,
    tools: Option<Vec<String>>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Target {
    Url(Secret),
    Command(Vec<String>),
}

/// All notifiers configured, ready to send events.
#[derive(Debug, Clone, Default)]
pub struct Notifiers {
    list: Vec<Notifier>,
    backoff: Backoff,
}

impl Notifiers {
    /// Read the `[[notify]]` list of the config file; errors name file:line:col.
    pub fn from_config(file: &ConfigFile) -> anyhow::Result<Self> {
        let entries: Vec<toml::Spanned<NotifierConfig>> = file.section("notify")?.unwrap_or_default();
        let list = entries
            .iter()
            .map(|e| Notifier::build(e.get_ref()).map_err(|msg| file.error_at(e.span().start, msg)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Notifiers { list, backoff: Backoff::default() })
    }

    pub fn new(list: Vec<Notifier>) -> Self {
        Notifiers { list, backoff: Backoff::default() }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Deliver `event` to every notifier that wants it. Failures are logged, never returned:
    /// returns how many deliveries succeeded.
    pub async fn send(&self, event: &Event) -> usize {
        let mut delivered = 0;
        for n in self.list.iter().filter(|n| n.wants(event)) {
            let result = self.backoff.run(|_| n.deliver(event), |_| true).await;
            match result {
                Ok(()) => delivered += 1,
                Err(e) => tracing::warn!("notifier {} failed for {} event: {e:#}", n.describe(), event.kind.as_str()),
            }
        }
        delivered
    }

    /// [`Notifiers::send`] from synchronous code.
    pub fn send_blocking(&self, event: &Event) -> usize {
        if self.list.is_empty() {
            return 0;
        }
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(self.send(event)),
            Err(e) => {
                tracing::warn!("cannot start notifier runtime: {e}");
                0
            }
        }
    }
}

impl Notifier {
    /// Validate one entry; the error text is placed at the entry by the caller.
    pub fn build(c: &NotifierConfig) -> Result<Notifier, String> {
        let target = if c.kind == Kind::Command {
            match &c.command {
                Some(argv) if !argv.is_empty() => Target::Command(argv.clone()),
                _ => return Err("a command notifier needs `command = [\"program\", \"arg\", ...]`".into()),
            }
        } else {
            let sources = [c.url.is_some(), c.url_env.is_some(), c.url_file.is_some()];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(
                    format!("a {:?} notifier needs exactly one of `url`, `url-env`, `url-file`", c.kind).to_lowercase()
                );
            }
            let url = match &c.url {
                Some(u) => Secret::new(u.clone()),
                None => secret::resolve("notify url", c.url_env.as_deref(), c.url_file.as_deref(), "")
                    .map_err(|e| format!("{e:#}"))?
                    .ok_or("notify url not set")?,
            };
            if url::Url::parse(url.expose()).is_err() {
                return Err("the notifier URL is not a valid URL (it is not shown: it may hold a token)".into());
            }
            Target::Url(url)
        };
        let token = match (&c.token_env, &c.token_file) {
            (None, None) => None,
            (env, file) => {
                secret::resolve("notify token", env.as_deref(), file.as_deref(), "").map_err(|e| format!("{e:#}"))?
            }
        };
        Ok(Notifier {
            kind: c.kind,
            target,
            token,
            events: c.events.clone(),
            tools: c.tools.clone(),
            timeout: c.timeout.map(|d| d.get()).unwrap_or(Duration::from_secs(10)),
        })
    }

    fn wants(&self, event: &Event) -> bool {
        self.events.as_ref().is_none_or(|e| e.contains(&event.kind))
            && self.tools.as_ref().is_none_or(|t| t.contains(&event.tool))
    }

    /// Kind and host, never the full URL.
    fn describe(&self) -> String {
        match &self.target {
            Target::Url(u) => {
                let host = url::Url::parse(u.expose()).ok().and_then(|u| u.host_str().map(String::from));
                format!("{:?} ({})", self.kind, host.unwrap_or_default()).to_lowercase()
            }
            Target::Command(argv) => format!("command ({})", argv[0]),
        }
    }

    async fn deliver(&self, event: &Event) -> anyhow::Result<()> {
        let url = match &self.target {
            Target::Command(argv) => return self.run_command(argv, event).await,
            Target::Url(u) => u.expose(),
        };
        let client = reqwest::Client::builder().timeout(self.timeout).build()?;
        let request = match self.kind {
            // Command notifiers returned above; they never get here.
            Kind::Webhook | Kind::Command => client.post(url).json(event),
            Kind::Slack => client.post(url).json(&serde_json::json!({
                "text": format!("{}: {}", event.title(), event.message)
            })),
            Kind::Ntfy => client
                .post(url)
                .header("Title", event.title())
                .header("Priority", if event.kind.is_bad() { "high" } else { "default" })
                .header("Tags", format!("{},{}", event.tool, event.kind.as_str()))
                .body(event.message.clone()),
            Kind::Healthchecks => {
                let base = url.trim_end_matches('/');
                let ping = match event.kind {
                    EventKind::Start => format!("{base}/start"),
                    k if k.is_bad() => format!("{base}/fail"),
                    _ => base.to_string(),
                };
                client.post(ping).body(event.message.clone())
            }
        };
        let request = match &self.token {
            Some(t) => request.bearer_auth(t.expose()),
            None => request,
        };
        // Errors from reqwest include the URL: keep only the kind of failure.
        let resp = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            anyhow::anyhow!("{what}")
        })?;
        if !resp.status().is_success() {
            anyhow::bail!("answered HTTP {}", resp.status().as_u16());
        }
        Ok(())
    }

    async fn run_command(&self, argv: &[String], event: &Event) -> anyhow::Result<()> {
        let json = serde_json::to_string(event)?;
        let cmd = Cmd::new(&argv[0])
            .args(&argv[1..])
            .env("STANDBY_EVENT", event.kind.as_str())
            .env("STANDBY_TOOL", &event.tool)
            .env("STANDBY_SUBJECT", &event.subject)
            .env("STANDBY_MESSAGE", &event.message)
            .env("STANDBY_AT", &event.at)
            .env("STANDBY_EVENT_JSON", json)
            .timeout(self.timeout);
        tokio::task::spawn_blocking(move || cmd.run_ok()).await??;
        Ok(())
    }
}

/// A config with an invalid `[[notify]]` entry is a usage error; helper for tools that
/// only need to validate.
pub fn validate(file: &ConfigFile) -> anyhow::Result<()> {
    Notifiers::from_config(file).map(|_| ()).map_err(|e| exit::with_code(Code::Usage, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_validated_with_their_position() {
        let cfg = ConfigFile::from_str(
            "n.toml",
            "[[notify]]\nkind = \"slack\"\nurl = \"http://127.0.0.1:9/x\"\n\n[[notify]]\nkind = \"webhook\"\n",
        );
        let err = Notifiers::from_config(&cfg).unwrap_err();
        assert_eq!(exit::code_of(&err), Code::Usage);
        let msg = format!("{err:#}");
        assert!(msg.starts_with("n.toml:5:") || msg.starts_with("n.toml:6:"), "{msg}");
        assert!(msg.contains("exactly one of `url`"), "{msg}");
    }

    #[test]
    fn unknown_kind_is_a_usage_error() {
        let cfg = ConfigFile::from_str("n.toml", "[[notify]]\nkind = \"pager\"\n");
        let err = Notifiers::from_config(&cfg).unwrap_err();
        assert!(format!("{err:#}").contains("pager"), "{err:#}");
    }

    #[test]
    fn filters_by_event_and_tool() {
        let cfg = ConfigFile::from_str(
            "n.toml",
            "[[notify]]\nkind = \"command\"\ncommand = [\"true\"]\nevents = [\"down\"]\ntools = [\"downtime-monitor\"]\n",
        );
        let n = Notifiers::from_config(&cfg).unwrap();
        let e = |tool, kind| Event::new(tool, kind, "app", "x");
        assert!(n.list[0].wants(&e("downtime-monitor", EventKind::Down)));
        assert!(!n.list[0].wants(&e("downtime-monitor", EventKind::Recovered)));
        assert!(!n.list[0].wants(&e("backup-sync", EventKind::Down)));
    }

    #[test]
    fn description_never_shows_the_url_path() {
        let c = NotifierConfig {
            kind: Kind::Slack,
            url: Some("https://hooks.example.invalid/services/T000/B000/SECRETTOKEN".into()),
            url_env: None,
            url_file: None,
            token_env: None,
            token_file: None,
            command: None,
            events: None,
            tools: None,
            timeout: None,
        };
        let n = Notifier::build(&c).unwrap();
        let d = n.describe();
        assert!(!d.contains("SECRETTOKEN") && d.contains("hooks.example.invalid"), "{d}");
        assert!(!format!("{n:?}").contains("SECRETTOKEN"));
    }

    #[tokio::test]
    async fn command_notifier_gets_the_event_in_its_env_and_failures_are_swallowed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("event");
        let cfg = ConfigFile::from_str(
            "n.toml",
            format!(
                "[[notify]]\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"echo $STANDBY_EVENT $STANDBY_SUBJECT > {}\"]\n\n[[notify]]\nkind = \"command\"\ncommand = [\"false\"]\n",
                out.display()
            ),
        );
        let n = Notifiers::from_config(&cfg).unwrap().with_backoff(Backoff {
            attempts: 2,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        });
        let delivered = n.send(&Event::new("downtime-monitor", EventKind::Down, "app", "refused")).await;
        assert_eq!(delivered, 1, "the failing notifier is logged, not fatal");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "down app\n");
    }
}
