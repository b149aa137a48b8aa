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
//! [[notify]]
//! kind = "email"          # SMTP with STARTTLS (tls = "implicit" for 465, "none" on loopback)
//! server = "127.0.0.1:2525"
//! tls = "none"
//! from = "standby@example.org"
//! to = ["ops@example.org"]
//! [[notify]]
//! kind = "pagerduty"      # Events API v2: trigger on down, resolve on recovered (dedup per target)
//! routing-key-env = "PD_ROUTING_KEY"
//! [[notify]]
//! kind = "telegram"       # Bot API sendMessage
//! token-env = "TELEGRAM_BOT_TOKEN"
//! chat-id = "-1001234567890"
//! [[notify]]
//! kind = "discord"        # webhook: {"content": ...}
//! url-env = "DISCORD_WEBHOOK_URL"
//! [[notify]]
//! kind = "teams"          # Workflows webhook: an Adaptive Card
//! url-env = "TEAMS_WEBHOOK_URL"
//! [[notify]]
//! kind = "webhook"        # templated: WhatsApp Cloud API
//! url = "https://graph.facebook.com/v21.0/123456789/messages"
//! headers = { Authorization = "Bearer {env.WHATSAPP_TOKEN}" }
//! body-template = """{"messaging_product": "whatsapp", "to": "27820000000", "type": "text",
//!   "text": {"body": "{title}: {message}"}}"""
//! ```
//!
//! Webhook URLs often embed a token, so every URL is treated as a secret: logs name the
//! notifier's kind and host only. Each delivery is retried a bounded number of times; a
//! notifier that still fails is logged and never fails the tool's own job.

mod smtp;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use smtp::Tls as SmtpTls;
pub use template::BodyFormat;

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
    Email,
    Pagerduty,
    Telegram,
    Discord,
    Teams,
}

/// Where PagerDuty's Events API v2 and Telegram's Bot API are, unless `url` says otherwise.
const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
const TELEGRAM_URL: &str = "https://api.telegram.org";

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
    /// Templated webhook: HTTP method (default POST).
    pub method: Option<String>,
    /// Templated webhook: extra headers; values may hold placeholders such as `{env.TOKEN}`.
    pub headers: Option<BTreeMap<String, String>>,
    /// Templated webhook: the body, with `{tool}`, `{event}`, `{target}`, `{message}`, ...
    pub body_template: Option<String>,
    /// How placeholder values are escaped in `body-template`: json (default), form, text.
    pub body_format: Option<BodyFormat>,
    /// Email: recipients, sender, `host[:port]`, TLS mode, login, extra trusted certificates.
    pub to: Option<Vec<String>>,
    pub from: Option<String>,
    pub server: Option<String>,
    pub tls: Option<SmtpTls>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// PagerDuty: the integration's routing key.
    pub routing_key_env: Option<String>,
    pub routing_key_file: Option<PathBuf>,
    /// Telegram: the chat (a number, or `@channel`).
    pub chat_id: Option<String>,
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
    /// A bearer token (webhook, ntfy, ...), PagerDuty's routing key or Telegram's bot token.
    token: Option<Secret>,
    /// The templated webhook's method, headers and body.
    request: Option<Box<RequestTemplate>>,
    chat_id: Option<String>,
    events: Option<Vec<EventKind>>,
    tools: Option<Vec<String>>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Target {
    Url(Secret),
    Command(Vec<String>),
    Email(Box<smtp::Email>),
}

/// What `method`, `headers` and `body-template` make of a webhook request.
#[derive(Debug, Clone)]
struct RequestTemplate {
    method: reqwest::Method,
    /// Values may embed secrets (`Bearer {env.TOKEN}` or written out): never printed.
    headers: Vec<(String, Secret)>,
    body: Option<Secret>,
    format: BodyFormat,
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
        let kind_name = format!("{:?}", c.kind).to_lowercase();
        let misplaced = |key: &str, set: bool, kinds: &[Kind]| -> Result<(), String> {
            if set && !kinds.contains(&c.kind) {
                return Err(format!("`{key}` does not apply to a {kind_name} notifier"));
            }
            Ok(())
        };
        use Kind::*;
        misplaced("command", c.command.is_some(), &[Command])?;
        misplaced("method", c.method.is_some(), &[Webhook])?;
        misplaced("headers", c.headers.is_some(), &[Webhook])?;
        misplaced("body-template", c.body_template.is_some(), &[Webhook])?;
        misplaced("body-format", c.body_format.is_some(), &[Webhook])?;
        for (key, set) in [
            ("to", c.to.is_some()),
            ("from", c.from.is_some()),
            ("server", c.server.is_some()),
            ("tls", c.tls.is_some()),
            ("username", c.username.is_some()),
            ("password-env", c.password_env.is_some()),
            ("password-file", c.password_file.is_some()),
            ("ca-file", c.ca_file.is_some()),
        ] {
            misplaced(key, set, &[Email])?;
        }
        misplaced("routing-key-env", c.routing_key_env.is_some(), &[Pagerduty])?;
        misplaced("routing-key-file", c.routing_key_file.is_some(), &[Pagerduty])?;
        misplaced("chat-id", c.chat_id.is_some(), &[Telegram])?;
        let has_url = c.url.is_some() || c.url_env.is_some() || c.url_file.is_some();
        let resolve = |what: &str, env: &Option<String>, file: &Option<PathBuf>| {
            secret::resolve(what, env.as_deref(), file.as_deref(), "").map_err(|e| format!("{e:#}"))
        };
        let target = match c.kind {
            Command => match &c.command {
                Some(argv) if !argv.is_empty() => Target::Command(argv.clone()),
                _ => return Err("a command notifier needs `command = [\"program\", \"arg\", ...]`".into()),
            },
            Email => {
                if has_url {
                    return Err("an email notifier takes `server`, not a URL".into());
                }
                Target::Email(Box::new(Self::email(c)?))
            }
            // These have a public default endpoint; `url` points them elsewhere (a test, a proxy).
            Pagerduty | Telegram if !has_url => {
                Target::Url(Secret::new(if c.kind == Pagerduty { PAGERDUTY_URL } else { TELEGRAM_URL }.to_string()))
            }
            _ => Target::Url(Self::url(c, &kind_name)?),
        };
        let token = match c.kind {
            Pagerduty => Some(
                resolve("pagerduty routing key", &c.routing_key_env, &c.routing_key_file)?
                    .ok_or("a pagerduty notifier needs `routing-key-env` or `routing-key-file`")?,
            ),
            Telegram => Some(
                resolve("telegram bot token", &c.token_env, &c.token_file)?
                    .ok_or("a telegram notifier needs the bot token in `token-env` or `token-file`")?,
            ),
            _ => resolve("notify token", &c.token_env, &c.token_file)?,
        };
        let chat_id = match (c.kind, &c.chat_id) {
            (Telegram, None) => return Err("a telegram notifier needs `chat-id`".into()),
            (_, id) => id.clone(),
        };
        let request = if c.method.is_some() || c.headers.is_some() || c.body_template.is_some() {
            Some(Box::new(Self::request_template(c)?))
        } else {
            None
        };
        Ok(Notifier {
            kind: c.kind,
            target,
            token,
            request,
            chat_id,
            events: c.events.clone(),
            tools: c.tools.clone(),
            timeout: c.timeout.map(|d| d.get()).unwrap_or(Duration::from_secs(10)),
        })
    }

    /// Exactly one of `url`, `url-env`, `url-file`, and a valid URL.
    fn url(c: &NotifierConfig, kind_name: &str) -> Result<Secret, String> {
        let sources = [c.url.is_some(), c.url_env.is_some(), c.url_file.is_some()];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(format!("a {kind_name} notifier needs exactly one of `url`, `url-env`, `url-file`"));
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
        Ok(url)
    }

    fn email(c: &NotifierConfig) -> Result<smtp::Email, String> {
        let tls = c.tls.unwrap_or_default();
        let (host, port) = smtp::parse_server(c.server.as_deref().ok_or("an email notifier needs `server`")?, tls)?;
        let from = c.from.clone().ok_or("an email notifier needs `from`")?;
        smtp::check_address(&from)?;
        let to = c.to.clone().unwrap_or_default();
        if to.is_empty() {
            return Err("an email notifier needs `to = [\"ops@example.org\"]`".into());
        }
        to.iter().try_for_each(|a| smtp::check_address(a))?;
        let password = secret::resolve("smtp password", c.password_env.as_deref(), c.password_file.as_deref(), "")
            .map_err(|e| format!("{e:#}"))?;
        if password.is_some() != c.username.is_some() {
            return Err("`username` and `password-env`/`password-file` go together".into());
        }
        if password.is_some() && tls == smtp::Tls::None && !smtp::is_loopback(&host) {
            return Err(
                "`tls = \"none\"` would send the SMTP password in clear: only allowed to a loopback server".into()
            );
        }
        Ok(smtp::Email {
            host,
            port,
            tls,
            from,
            to,
            username: c.username.clone(),
            password,
            ca_file: c.ca_file.clone(),
        })
    }

    fn request_template(c: &NotifierConfig) -> Result<RequestTemplate, String> {
        let method = match &c.method {
            Some(m) => reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("`method = \"{m}\"` is not an HTTP method"))?,
            None => reqwest::Method::POST,
        };
        let format = c.body_format.unwrap_or_default();
        // Render once with a sample event so a typo or an unset variable fails at start.
        let sample = Event::new("tool", EventKind::Down, "target", "message");
        let mut headers = Vec::new();
        for (name, value) in c.headers.iter().flatten() {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("`headers`: `{name}` is not a header name"));
            }
            template::render(value, &sample, BodyFormat::Text).map_err(|e| format!("header {name}: {e}"))?;
            headers.push((name.clone(), Secret::new(value.clone())));
        }
        if let Some(body) = &c.body_template {
            template::render(body, &sample, format).map_err(|e| format!("body-template: {e}"))?;
        }
        Ok(RequestTemplate { method, headers, body: c.body_template.clone().map(Secret::new), format })
    }

    fn wants(&self, event: &Event) -> bool {
        // PagerDuty opens and closes incidents: a start or a deliberate change is neither.
        let kind_takes = self.kind != Kind::Pagerduty || pagerduty_action(event.kind).is_some();
        kind_takes
            && self.events.as_ref().is_none_or(|e| e.contains(&event.kind))
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
            Target::Email(e) => format!("email ({}:{})", e.host, e.port),
        }
    }

    async fn deliver(&self, event: &Event) -> anyhow::Result<()> {
        let url = match &self.target {
            Target::Command(argv) => return self.run_command(argv, event).await,
            Target::Email(mail) => {
                return tokio::time::timeout(self.timeout, mail.send(&event.title(), &email_body(event)))
                    .await
                    .map_err(|_| anyhow::anyhow!("timed out"))?;
            }
            Target::Url(u) => u.expose(),
        };
        let client = reqwest::Client::builder().timeout(self.timeout).build()?;
        let text = format!("{}: {}", event.title(), event.message);
        let request = match self.kind {
            // Command and email notifiers returned above; they never get here.
            Kind::Webhook | Kind::Command | Kind::Email => match &self.request {
                Some(t) => self.templated(&client, url, t, event)?,
                None => client.post(url).json(event),
            },
            Kind::Slack => client.post(url).json(&serde_json::json!({ "text": text })),
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
            Kind::Pagerduty => client.post(url).json(&self.pagerduty_body(event)),
            Kind::Telegram => {
                let token = self.token.as_ref().map(|t| t.expose()).unwrap_or_default();
                client.post(format!("{}/bot{token}/sendMessage", url.trim_end_matches('/'))).json(&serde_json::json!({
                    "chat_id": self.chat_id,
                    "text": text,
                    "disable_web_page_preview": true,
                }))
            }
            // Discord caps `content` at 2000 characters; mentions in a message never ping.
            Kind::Discord => client.post(url).json(&serde_json::json!({
                "content": text.chars().take(2000).collect::<String>(),
                "allowed_mentions": { "parse": [] },
            })),
            Kind::Teams => client.post(url).json(&teams_card(event)),
        };
        let bearer = matches!(self.kind, Kind::Webhook | Kind::Slack | Kind::Ntfy | Kind::Healthchecks);
        let request = match &self.token {
            Some(t) if bearer => request.bearer_auth(t.expose()),
            _ => request,
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

    /// The templated webhook's request; a placeholder whose variable went away since start
    /// fails this delivery (named, never its value).
    fn templated(
        &self,
        client: &reqwest::Client,
        url: &str,
        t: &RequestTemplate,
        event: &Event,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let mut request = client.request(t.method.clone(), url);
        let mut content_type = false;
        for (name, value) in &t.headers {
            let v = template::render(value.expose(), event, BodyFormat::Text).map_err(|e| anyhow::anyhow!("{e}"))?;
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            content_type |= name.eq_ignore_ascii_case("content-type");
            request = request.header(name.as_str(), v);
        }
        let body = match &t.body {
            Some(b) => template::render(b.expose(), event, t.format).map_err(|e| anyhow::anyhow!("{e}"))?,
            None => serde_json::to_string(event)?,
        };
        if !content_type {
            let ct = if t.body.is_some() { t.format.content_type() } else { "application/json" };
            request = request.header("Content-Type", ct);
        }
        Ok(request.body(body))
    }

    /// An Events API v2 event: trigger on bad news, resolve on good, one alert per tool and
    /// subject (`dedup_key`), so a target's RECOVERED closes its DOWN.
    fn pagerduty_body(&self, event: &Event) -> serde_json::Value {
        let action = pagerduty_action(event.kind).unwrap_or("trigger");
        let mut body = serde_json::json!({
            "routing_key": self.token.as_ref().map(|t| t.expose()).unwrap_or_default(),
            "event_action": action,
            "dedup_key": format!("standby/{}/{}", event.tool, event.subject),
        });
        if action == "trigger" {
            let severity = match event.kind {
                EventKind::OnBattery => "warning",
                EventKind::Failure => "error",
                _ => "critical",
            };
            body["payload"] = serde_json::json!({
                "summary": format!("{}: {}", event.title(), event.message).chars().take(1024).collect::<String>(),
                "source": event.subject,
                "severity": severity,
                "timestamp": event.at,
                "component": event.subject,
                "class": event.kind.as_str(),
                "custom_details": {"tool": event.tool, "message": event.message, "details": event.details},
            });
            body["client"] = serde_json::json!("standby");
        }
        body
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

/// PagerDuty's `event_action` for an event; `None` for events that neither open nor close one.
fn pagerduty_action(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::Down | EventKind::Failure | EventKind::OnBattery | EventKind::BatteryLow => Some("trigger"),
        EventKind::Recovered | EventKind::Success | EventKind::PowerRestored => Some("resolve"),
        EventKind::Start | EventKind::Changed => None,
    }
}

/// The text of an alert email.
fn email_body(event: &Event) -> String {
    let mut body = format!(
        "{}\n\ntool:   {}\nevent:  {}\ntarget: {}\ntime:   {}\n",
        event.message,
        event.tool,
        event.kind.as_str(),
        event.subject,
        event.at
    );
    if !event.details.is_null() {
        body.push_str(&format!("\n{}\n", serde_json::to_string_pretty(&event.details).unwrap_or_default()));
    }
    body
}

/// A message for a Teams Workflows ("Post to a channel when a webhook request is received")
/// webhook: one Adaptive Card.
fn teams_card(event: &Event) -> serde_json::Value {
    serde_json::json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": event.title(), "weight": "Bolder", "size": "Medium",
                     "color": if event.kind.is_bad() { "Attention" } else { "Good" }, "wrap": true},
                    {"type": "TextBlock", "text": event.message, "wrap": true},
                    {"type": "FactSet", "facts": [
                        {"title": "Tool", "value": event.tool},
                        {"title": "Event", "value": event.kind.as_str()},
                        {"title": "Time", "value": event.at},
                    ]},
                ],
            },
        }],
    })
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
        let cfg = ConfigFile::from_str(
            "n.toml",
            "[[notify]]\nkind = \"slack\"\nurl = \"https://hooks.example.invalid/services/T000/B000/SECRETTOKEN\"\n",
        );
        let c: Vec<NotifierConfig> = cfg.section("notify").unwrap().unwrap();
        let c = c[0].clone();
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
