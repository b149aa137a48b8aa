//! The alert channels of `[[notify]]` through the real binary: a target goes DOWN and the
//! alert goes to PagerDuty, Telegram, Discord and a templated webhook (the harness's webhook
//! receiver, answering errors) and to email (aiosmtpd with a login it refuses). No secret —
//! routing key, bot token, webhook URL, header value, SMTP password — appears in `check -vv`'s
//! output, its errors, or `--check-config` (human and `--json`).

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::process::Command;

use base64::Engine;
use standby_e2e::smtp::Smtp;
use standby_e2e::webhook::Webhook;
use standby_e2e::AppBackend;

const SECRETS: [&str; 5] =
    ["pd-routing-SECRET-1", "tg-bot-SECRET-2", "discord-SECRET-3", "header-SECRET-4", "smtp-pass-SECRET-5"];

#[test]
fn secrets_of_every_channel_stay_out_of_output_logs_and_errors() {
    let app = AppBackend::start("app").unwrap();
    app.set_healthy(false);
    let hook = Webhook::start(500).unwrap();
    let smtp = Smtp::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("standby.toml");
    std::fs::write(
        &config,
        format!(
            r#"[downtime-monitor]
vantage = "test"

[[downtime-monitor.target]]
name = "app"
kind = "http"
address = "{app}"
interval = "60s"
timeout = "2s"
failure-threshold = 1

[[notify]]
kind = "pagerduty"
url = "{base}/v2/enqueue"
routing-key-env = "T_PD_KEY"

[[notify]]
kind = "telegram"
url = "{base}"
token-env = "T_TG_TOKEN"
chat-id = "42"

[[notify]]
kind = "discord"
url-env = "T_DISCORD_URL"

[[notify]]
kind = "webhook"
url = "{base}/hook"
headers = {{ Authorization = "Bearer {{env.T_HEADER}}" }}
body-template = '{{"text": "{{title}}"}}'

[[notify]]
kind = "email"
server = "{smtp}"
tls = "none"
from = "standby@example.org"
to = ["ops@example.org"]
username = "standby"
password-env = "T_SMTP_PASSWORD"
"#,
            app = app.url("/health"),
            base = hook.url(""),
            smtp = smtp.server(),
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_downtime-monitor"))
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .env_remove("STANDBY_CONFIG")
            .env_remove("RUST_LOG")
            .env("T_PD_KEY", SECRETS[0])
            .env("T_TG_TOKEN", SECRETS[1])
            .env("T_DISCORD_URL", hook.url(&format!("/api/webhooks/1/{}", SECRETS[2])))
            .env("T_HEADER", SECRETS[3])
            .env("T_SMTP_PASSWORD", SECRETS[4])
            .output()
            .unwrap();
        (
            out.status.code(),
            format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("\0standby\0{}", SECRETS[4]));
    let clean = |what: &str, text: &str| {
        for s in SECRETS.iter().chain([&auth.as_str()]) {
            assert!(!text.contains(s), "{what} shows a secret ({s}):\n{text}");
        }
    };

    let (code, text) = run(&["check", "-vv"]);
    assert_eq!(code, Some(1), "{text}");
    clean("check -vv", &text);
    // Every HTTP channel was tried (and refused with 500, so each failure was logged).
    let got = hook.received();
    for path in ["/v2/enqueue", &format!("/bot{}/sendMessage", SECRETS[1]), "/hook"] {
        assert!(got.iter().any(|r| r.path == path), "nothing sent to {path}: {got:?}");
    }
    assert!(text.contains("notifier pagerduty (127.0.0.1) failed") && text.contains("HTTP 500"), "{text}");
    assert!(text.contains("notifier email (127.0.0.1:"), "the refused login is logged: {text}");
    assert!(smtp.messages().is_empty(), "no mail without the login");

    for args in [&["--check-config"][..], &["--check-config", "--json"], &["--check-config", "-vv"]] {
        let (code, text) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {text}");
        clean(&format!("{args:?}"), &text);
    }
}
