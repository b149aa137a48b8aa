//! The alert channels of `[[notify]]` against real servers on loopback: PagerDuty Events v2,
//! Telegram, Discord, Teams and templated webhooks (WhatsApp Cloud API, Twilio) against the
//! harness's webhook receiver, each checked for the request shape the service documents; email
//! against aiosmtpd, plain and with STARTTLS.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use standby_common::config::ConfigFile;
use standby_common::notify::{Event, EventKind, Notifiers};
use standby_common::retry::Backoff;
use standby_e2e::smtp::Smtp;
use standby_e2e::webhook::{Received, Webhook};

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn notifiers(toml: &str) -> Notifiers {
    Notifiers::from_config(&ConfigFile::from_str("n.toml", toml)).unwrap().with_backoff(Backoff::none())
}

fn down() -> Event {
    Event::new("downtime-monitor", EventKind::Down, "app", "connection refused")
}

fn recovered() -> Event {
    Event::new("downtime-monitor", EventKind::Recovered, "app", "RECOVERED after 8s")
}

fn only<'a>(got: &'a [Received], path: &str) -> Vec<&'a Received> {
    got.iter().filter(|r| r.path == path).collect()
}

#[test]
fn pagerduty_triggers_on_down_and_resolves_on_recovered_with_one_dedup_key() {
    let r = Webhook::start(202).unwrap();
    std::env::set_var("STANDBY_TEST_PD_KEY", "R0UTINGKEY0123456789abcdef012345");
    let n = notifiers(&format!(
        "[[notify]]\nkind = \"pagerduty\"\nurl = \"{}\"\nrouting-key-env = \"STANDBY_TEST_PD_KEY\"\n",
        r.url("/v2/enqueue")
    ));
    assert_eq!(block(n.send(&down())), 1);
    assert_eq!(block(n.send(&Event::new("backup-sync", EventKind::Start, "nightly", "starting"))), 0);
    assert_eq!(block(n.send(&recovered())), 1);
    let got = only(&r.received(), "/v2/enqueue").into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(got.len(), 2, "a start opens no incident: {got:?}");
    assert!(got.iter().all(|g| g.method == "POST" && g.header("content-type") == Some("application/json")));
    let (t, s) = (got[0].json(), got[1].json());
    assert_eq!(t["routing_key"], "R0UTINGKEY0123456789abcdef012345");
    assert_eq!(t["event_action"], "trigger");
    assert_eq!(t["dedup_key"], "standby/downtime-monitor/app");
    assert_eq!(t["payload"]["severity"], "critical");
    assert_eq!(t["payload"]["source"], "app");
    assert!(t["payload"]["summary"].as_str().unwrap().contains("app DOWN: connection refused"), "{t}");
    assert!(t["payload"]["timestamp"].as_str().unwrap().ends_with('Z'), "{t}");
    assert_eq!(s["event_action"], "resolve");
    assert_eq!(s["dedup_key"], t["dedup_key"], "the resolve closes the same alert");
    assert!(s.get("payload").is_none(), "a resolve carries no payload: {s}");
}

#[test]
fn telegram_discord_and_teams_get_their_documented_bodies() {
    let r = Webhook::start(200).unwrap();
    std::env::set_var("STANDBY_TEST_TG_TOKEN", "123456:ABC-tg-secret");
    std::env::set_var("STANDBY_TEST_DISCORD_URL", r.url("/api/webhooks/42/discord-secret"));
    let dir = tempfile::tempdir().unwrap();
    let teams_file = dir.path().join("teams.url");
    std::fs::write(&teams_file, r.url("/workflows/teams-secret/triggers/manual/paths/invoke") + "\n").unwrap();
    let n = notifiers(&format!(
        r#"
[[notify]]
kind = "telegram"
url = "{base}"
token-env = "STANDBY_TEST_TG_TOKEN"
chat-id = "-1001234567890"
[[notify]]
kind = "discord"
url-env = "STANDBY_TEST_DISCORD_URL"
[[notify]]
kind = "teams"
url-file = "{teams}"
"#,
        base = r.url(""),
        teams = teams_file.display()
    ));
    assert_eq!(block(n.send(&down())), 3);
    let got = r.received();

    let tg = only(&got, "/bot123456:ABC-tg-secret/sendMessage");
    assert_eq!(tg.len(), 1, "{got:?}");
    let tg = tg[0].json();
    assert_eq!(tg["chat_id"], "-1001234567890");
    assert_eq!(tg["text"], "[downtime-monitor] app DOWN: connection refused");
    assert!(tg.get("parse_mode").is_none(), "plain text: a target name never breaks Markdown");

    let dc = only(&got, "/api/webhooks/42/discord-secret");
    assert_eq!(dc.len(), 1, "{got:?}");
    assert_eq!(dc[0].json()["content"], "[downtime-monitor] app DOWN: connection refused");
    assert_eq!(dc[0].json()["allowed_mentions"]["parse"], serde_json::json!([]));

    let teams = only(&got, "/workflows/teams-secret/triggers/manual/paths/invoke");
    assert_eq!(teams.len(), 1, "{got:?}");
    let card = teams[0].json();
    assert_eq!(card["type"], "message");
    assert_eq!(card["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    let content = &card["attachments"][0]["content"];
    assert_eq!(content["type"], "AdaptiveCard");
    assert_eq!(content["body"][0]["text"], "[downtime-monitor] app DOWN");
    assert_eq!(content["body"][1]["text"], "connection refused");
}

#[test]
fn templated_webhooks_configure_whatsapp_and_twilio_without_code() {
    let r = Webhook::start(200).unwrap();
    std::env::set_var("STANDBY_TEST_WA_TOKEN", "EAAG-wa-secret");
    std::env::set_var("STANDBY_TEST_TWILIO_BASIC", "Basic QUMxOnR3aWxpby1zZWNyZXQ=");
    let n = notifiers(&format!(
        r#"
[[notify]]
kind = "webhook"
url = "{base}/v21.0/1234567890/messages"
headers = {{ Authorization = "Bearer {{env.STANDBY_TEST_WA_TOKEN}}" }}
body-template = """{{"messaging_product": "whatsapp", "to": "27820000000", "type": "text",
  "text": {{"body": "{{title}}: {{message}}"}}}}"""

[[notify]]
kind = "webhook"
method = "post"
url = "{base}/2010-04-01/Accounts/AC1/Messages.json"
headers = {{ Authorization = "{{env.STANDBY_TEST_TWILIO_BASIC}}" }}
body-format = "form"
body-template = "To=+27820000000&From=+15005550006&Body={{EVENT}} {{target}} at {{time}}: {{message}}"

[[notify]]
kind = "webhook"
method = "PUT"
url = "{base}/plain"
headers = {{ X-Event = "{{event}}" }}
"#,
        base = r.url("")
    ));
    let event = Event::new("downtime-monitor", EventKind::Down, "app & db", "said \"no\"");
    assert_eq!(block(n.send(&event)), 3);
    let got = r.received();

    let wa = only(&got, "/v21.0/1234567890/messages");
    assert_eq!(wa.len(), 1, "{got:?}");
    assert_eq!(wa[0].header("authorization"), Some("Bearer EAAG-wa-secret"));
    assert_eq!(wa[0].header("content-type"), Some("application/json"));
    let body = wa[0].json();
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], "27820000000");
    assert_eq!(body["text"]["body"], "[downtime-monitor] app & db DOWN: said \"no\"");

    let tw = only(&got, "/2010-04-01/Accounts/AC1/Messages.json");
    assert_eq!(tw.len(), 1, "{got:?}");
    assert_eq!(tw[0].method, "POST");
    assert_eq!(tw[0].header("authorization"), Some("Basic QUMxOnR3aWxpby1zZWNyZXQ="));
    assert_eq!(tw[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(tw[0].body.as_bytes()).into_owned().collect();
    assert_eq!(form[0], ("To".into(), " 27820000000".into()), "a literal + in the template is form syntax");
    assert_eq!(form[2].0, "Body");
    assert!(form[2].1.starts_with("DOWN app & db at ") && form[2].1.ends_with(": said \"no\""), "{form:?}");

    let plain = only(&got, "/plain");
    assert_eq!(plain.len(), 1, "{got:?}");
    assert_eq!(plain[0].method, "PUT");
    assert_eq!(plain[0].header("x-event"), Some("down"));
    assert_eq!(plain[0].json()["subject"], "app & db", "no body-template: the event as JSON");
}

#[test]
fn bad_channel_entries_are_config_errors_that_never_show_a_secret() {
    std::env::set_var("STANDBY_TEST_HDR_SECRET", "hdr-secret-value");
    for (toml, want) in [
        ("kind = \"telegram\"\ntoken-env = \"STANDBY_TEST_HDR_SECRET\"\n", "needs `chat-id`"),
        ("kind = \"pagerduty\"\n", "routing-key-env"),
        ("kind = \"email\"\nserver = \"127.0.0.1:25\"\nfrom = \"a@b.c\"\n", "needs `to"),
        ("kind = \"email\"\nserver = \"127.0.0.1:25\"\nfrom = \"Ops <a@b.c>\"\nto = [\"x@y.z\"]\n", "write it bare"),
        (
            "kind = \"email\"\nserver = \"mail.example.org\"\ntls = \"none\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\n\
             username = \"u\"\npassword-env = \"STANDBY_TEST_HDR_SECRET\"\n",
            "in clear",
        ),
        ("kind = \"slack\"\nurl = \"http://127.0.0.1:9/\"\nchat-id = \"1\"\n", "`chat-id` does not apply"),
        (
            "kind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nheaders = { A = \"{env.STANDBY_TEST_NOT_SET_X}\" }\n",
            "STANDBY_TEST_NOT_SET_X is not set",
        ),
        (
            "kind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nheaders = { A = \"hdr-secret-value\" }\nbody-template = \"{mesage}\"\n",
            "unknown placeholder {mesage}",
        ),
    ] {
        let err = Notifiers::from_config(&ConfigFile::from_str("n.toml", format!("[[notify]]\n{toml}"))).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.starts_with("n.toml:") && msg.contains(want), "{toml}: {msg}");
        assert!(!msg.contains("hdr-secret-value"), "{msg}");
    }
    let ok = notifiers(
        "[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nheaders = { A = \"hdr-secret-value\" }\n",
    );
    assert!(!format!("{ok:?}").contains("hdr-secret-value"));
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    let head = message.split("\n\n").next().unwrap_or("");
    head.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
}

#[test]
fn email_arrives_at_a_real_smtp_server_plain_and_with_starttls() {
    let plain = Smtp::start().unwrap();
    let n = notifiers(&format!(
        "[[notify]]\nkind = \"email\"\nserver = \"{}\"\ntls = \"none\"\nfrom = \"standby@example.org\"\n\
         to = [\"ops@example.org\", \"oncall@example.org\"]\n",
        plain.server()
    ));
    let event = down().with_details(serde_json::json!({"consecutive_failures": 3}));
    assert_eq!(block(n.send(&event)), 1);
    let got = plain.wait_for(1);
    assert_eq!(got.len(), 1, "one message for both recipients");
    let m = got[0].replace("\r\n", "\n");
    assert_eq!(header(&m, "Subject"), Some("[downtime-monitor] app DOWN"), "{m}");
    assert_eq!(header(&m, "From"), Some("<standby@example.org>"));
    assert_eq!(header(&m, "To"), Some("<ops@example.org>, <oncall@example.org>"));
    assert_eq!(header(&m, "X-RcptTo"), Some("ops@example.org, oncall@example.org"), "{m}");
    let body = m.split_once("\n\n").unwrap().1;
    assert!(body.starts_with("connection refused\n"), "{body}");
    assert!(body.contains("target: app\n") && body.contains("\"consecutive_failures\": 3"), "{body}");

    // STARTTLS is the default; this server requires it and presents a self-signed certificate.
    let tls = Smtp::start_tls().unwrap();
    let config = |extra: &str| {
        format!(
            "[[notify]]\nkind = \"email\"\nserver = \"{}\"\nfrom = \"standby@example.org\"\nto = [\"ops@example.org\"]\n{extra}",
            tls.server()
        )
    };
    let untrusted = notifiers(&config(""));
    assert_eq!(block(untrusted.send(&recovered())), 0, "an unknown certificate is refused");
    let n = notifiers(&config(&format!("ca-file = \"{}\"\n", tls.cert.as_ref().unwrap().display())));
    assert_eq!(block(n.send(&recovered())), 1);
    let got = tls.wait_for(1);
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0].replace("\r\n", "\n"), "Subject"), Some("[downtime-monitor] app RECOVERED"));

    // Implicit TLS (SMTPS).
    let smtps = Smtp::start_smtps().unwrap();
    let n = notifiers(&format!(
        "[[notify]]\nkind = \"email\"\nserver = \"{}\"\ntls = \"implicit\"\nca-file = \"{}\"\n\
         from = \"standby@example.org\"\nto = [\"ops@example.org\"]\n",
        smtps.server(),
        smtps.cert.as_ref().unwrap().display()
    ));
    assert_eq!(block(n.send(&down())), 1);
    assert_eq!(smtps.wait_for(1).len(), 1);

    // A server without STARTTLS is never sent the alert in clear when STARTTLS was asked for.
    let n = notifiers(&format!(
        "[[notify]]\nkind = \"email\"\nserver = \"{}\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n",
        plain.server()
    ));
    assert_eq!(block(n.send(&down())), 0);
    assert_eq!(plain.messages().len(), 1);
}

#[test]
fn email_logs_in_over_starttls_and_a_wrong_password_delivers_nothing() {
    let smtp = Smtp::start_with_login("standby", "s3cret-pass").unwrap();
    let config = |password: &str| {
        std::env::set_var("STANDBY_TEST_SMTP_PASSWORD", password);
        notifiers(&format!(
            "[[notify]]\nkind = \"email\"\nserver = \"{}\"\nca-file = \"{}\"\nfrom = \"standby@example.org\"\n\
             to = [\"ops@example.org\"]\nusername = \"standby\"\npassword-env = \"STANDBY_TEST_SMTP_PASSWORD\"\n",
            smtp.server(),
            smtp.cert.as_ref().unwrap().display()
        ))
    };
    assert_eq!(block(config("wrong").send(&down())), 0, "a refused login sends nothing");
    assert!(smtp.messages().is_empty());
    assert_eq!(block(config("s3cret-pass").send(&down())), 1);
    let got = smtp.wait_for(1);
    assert_eq!(got.len(), 1);
    assert_eq!(header(&got[0].replace("\r\n", "\n"), "Subject"), Some("[downtime-monitor] app DOWN"));
}
