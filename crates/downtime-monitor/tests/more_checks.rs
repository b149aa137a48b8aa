//! The second pass's checks through the binary against real servers: `status`'s last error
//! (only while it matters, one line), heartbeat targets pinged by `ping` and by `watch`'s
//! `POST /ping/NAME`, `cert-valid-days` against nginx with a short-lived certificate, `dns`
//! targets against PowerDNS, and the static status page with its badges.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use standby_e2e::webhook::Webhook;
use standby_e2e::AppBackend;

mod common;
use common::{wait_for, Env};

/// A target's entry in a `check --json` round.
fn line<'a>(round: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    round["targets"].as_array().unwrap().iter().find(|t| t["target"] == name).unwrap()
}

#[test]
fn status_shows_the_last_error_only_while_it_matters_on_one_bounded_line() {
    let app = AppBackend::start("status").unwrap();
    let body = format!(
        "[[downtime-monitor.target]]\nname = \"app\"\nkind = \"http\"\naddress = \"{}\"\nbody-contains = \"ready\"\nfailure-threshold = 1\nrecovery-threshold = 1\n",
        app.url("/")
    );
    let env = Env::new(&body, None);
    app.set_body(&format!("<html>\r\n<body>\r\n{}starting\r\n</body>\r\n</html>\r\n", "padding ".repeat(100)));
    assert_eq!(env.code(&["check"]), 1);
    let out = env.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text.lines().count(), 1, "one line per target: {text:?}");
    assert!(text.contains("last error: expected body to contain"), "{text}");
    assert!(!text.contains('\r') && text.trim_end().chars().count() < 400, "{text:?}");

    app.set_body("ready");
    assert_eq!(env.code(&["check"]), 0);
    let text = String::from_utf8_lossy(&env.run(&["status"]).stdout).into_owned();
    assert!(text.contains("UP") && !text.contains("last error"), "an UP target's old error is not status: {text}");
    assert!(env.status_of("app").unwrap()["last_error"].is_null());
}

#[test]
fn heartbeats_from_ping_and_from_post_ping_drive_down_and_recovered() {
    let hook = Webhook::start(200).unwrap();
    let body =
        "[[downtime-monitor.target]]\nname = \"backup\"\nkind = \"heartbeat\"\nperiod = \"1d\"\ngrace = \"1h\"\n\n\
                [[downtime-monitor.target]]\nname = \"fast\"\nkind = \"heartbeat\"\nperiod = \"1s\"\ngrace = \"0s\"\n\n\
                [[downtime-monitor.target]]\nname = \"other\"\nkind = \"command\"\ncommand = [\"true\"]\n";
    let env = Env::new(body, Some(&hook));
    assert_eq!(env.code(&["ping", "nope"]), 2, "no such target");
    assert_eq!(env.code(&["ping", "other"]), 2, "not a heartbeat target");

    let round = env.json(&["check", "--json"]);
    assert_eq!(line(&round, "backup")["health"], "up", "never pinged: one period + grace from the first check");
    assert_eq!(line(&round, "fast")["health"], "up");
    // `fast` is never pinged: once its second passes, it is DOWN (waiting on that event).
    wait_for("fast DOWN without pings", || line(&env.json(&["check", "--json"]), "fast")["health"] == "down");
    let fast = env.status_of("fast").unwrap();
    assert!(fast["last_error"].as_str().unwrap().contains("no ping received yet"), "{fast}");

    assert_eq!(env.code(&["ping", "backup"]), 0);
    assert_eq!(line(&env.json(&["check", "--json"]), "backup")["health"], "up");
    let out = env.run(&["ping", "backup", "--fail", "-m", "restic: disk full\r\n"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let round = env.json(&["check", "--json"]);
    assert_eq!(line(&round, "backup")["health"], "down", "a --fail ping fails the next check: {round}");
    let alerts = hook.received();
    let down = alerts.iter().map(|a| a.json()).find(|a| a["subject"] == "backup").unwrap();
    assert_eq!(down["kind"], "down");
    assert!(down["message"].as_str().unwrap().contains("restic: disk full"), "{down}");

    // The daemon takes pings over HTTP beside /metrics.
    let port = standby_e2e::ports::free_port();
    let _watch = env.watch(&["--metrics-listen", &format!("127.0.0.1:{port}")]);
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    wait_for("the listener", || standby_e2e::http_client::get(&url("/metrics")).is_ok_and(|r| r.status == 200));
    let post = |path: &str| standby_e2e::http_client::request("POST", &url(path), &[], Some(b"")).unwrap().status;
    assert_eq!(post("/ping/nope"), 404);
    assert_eq!(post("/ping/backup"), 200);
    wait_for("backup RECOVERED after POST /ping", || env.status_of("backup").is_some_and(|t| t["health"] == "up"));
    assert_eq!(post("/ping/backup/fail"), 200);
    wait_for("backup DOWN after POST /ping/NAME/fail", || {
        env.status_of("backup").is_some_and(|t| t["health"] == "down")
    });
    wait_for("the recovered alert", || {
        hook.received().iter().any(|a| a.json()["subject"] == "backup" && a.json()["kind"] == "recovered")
    });
}

#[test]
fn cert_valid_days_fails_an_https_target_whose_certificate_expires_soon() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = standby_e2e::tls::self_signed(dir.path(), "localhost", 5).unwrap();
    let nginx =
        standby_e2e::Nginx::start(standby_e2e::NginxOptions { tls: Some((cert.clone(), key)), ..Default::default() })
            .unwrap();
    let target = |name: &str, days: u32| {
        format!(
            "[[downtime-monitor.target]]\nname = \"{name}\"\nkind = \"https\"\naddress = \"https://localhost:{}/\"\nresolve = \"127.0.0.1\"\ncacert = \"{}\"\nfailure-threshold = 1\ncert-valid-days = {days}\n\n",
            nginx.port,
            cert.display()
        )
    };
    let env = Env::new(&(target("soon", 14) + &target("fine", 3)), None);
    let round = env.json(&["check", "--json"]);
    assert_eq!(line(&round, "fine")["health"], "up", "{round}");
    let soon = line(&round, "soon");
    assert_eq!(soon["health"], "down", "{round}");
    let error = soon["error"].as_str().unwrap();
    assert!(error.contains("certificate expires in 4 day(s)") && error.contains("cert-valid-days = 14"), "{error}");

    let bad = Env::new(
        "[[downtime-monitor.target]]\nname = \"plain\"\nkind = \"http\"\naddress = \"http://127.0.0.1:1/\"\ncert-valid-days = 3\n",
        None,
    );
    let out = bad.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "cert-valid-days on http is a config error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("standby.toml:"), "{out:?}");
}

#[test]
fn dns_targets_ask_powerdns_and_compare_the_answers() {
    let pdns = standby_e2e::PowerDns::start().unwrap();
    pdns.create_zone(
        "example.test",
        &[
            ("app", "A", "127.0.0.10", 60),
            ("app", "A", "127.0.0.11", 60),
            ("www", "CNAME", "app.example.test.", 60),
            ("note", "TXT", "\"switched to backup\"", 60),
            ("v6", "AAAA", "2001:db8::1", 60),
        ],
    )
    .unwrap();
    let server = format!("127.0.0.1:{}", pdns.dns_port);
    let target = |name: &str, query: &str, rtype: &str, expect: &str| {
        format!(
            "[[downtime-monitor.target]]\nname = \"{name}\"\nkind = \"dns\"\naddress = \"{server}\"\nquery = \"{query}\"\nrecord-type = \"{rtype}\"\n{expect}failure-threshold = 1\n\n"
        )
    };
    let body = [
        target("a", "app.example.test", "A", "expect = [\"127.0.0.11\", \"127.0.0.10\"]\n"),
        target("a-any", "app.example.test", "A", ""),
        target("cname", "www.example.test", "CNAME", "expect = [\"app.example.test.\"]\n"),
        target("txt", "note.example.test", "TXT", "expect = [\"switched to backup\"]\n"),
        target("aaaa", "v6.example.test", "AAAA", "expect = [\"2001:db8:0::1\"]\n"),
        target("wrong", "app.example.test", "A", "expect = [\"127.0.0.99\"]\nrecovery-threshold = 1\n"),
        target("nx", "missing.example.test", "A", ""),
    ]
    .concat();
    let env = Env::new(&body, None);
    let round = env.json(&["check", "--json"]);
    for up in ["a", "a-any", "cname", "txt", "aaaa"] {
        assert_eq!(line(&round, up)["health"], "up", "{up}: {round}");
    }
    let wrong = line(&round, "wrong");
    assert_eq!(wrong["health"], "down");
    assert!(wrong["error"].as_str().unwrap().contains("expected 127.0.0.99, got 127.0.0.10, 127.0.0.11"), "{wrong}");
    assert!(line(&round, "nx")["error"].as_str().unwrap().contains("NXDOMAIN"), "{round}");

    // After a switch the record changes: the check sees it.
    pdns.replace_rrset("example.test", "app", "A", &["127.0.0.99"], 60).unwrap();
    let round = env.json(&["check", "--json"]);
    assert_eq!(line(&round, "wrong")["health"], "up", "{round}");
    assert_eq!(line(&round, "a")["health"], "down");

    let bad = Env::new(&target("bad", "x.test", "MX", ""), None);
    assert_eq!(bad.code(&["check"]), 2, "an unsupported record type is a config error");
}

#[test]
fn a_status_page_with_badges_is_written_atomically_and_replaced() {
    let up = AppBackend::start("page-up").unwrap();
    let down = AppBackend::start("page-down").unwrap();
    down.set_healthy(false);
    let body = format!(
        "[[downtime-monitor.target]]\nname = \"web app\"\nkind = \"http\"\naddress = \"{}\"\nfailure-threshold = 1\n\n\
         [[downtime-monitor.target]]\nname = \"api\"\nkind = \"http\"\naddress = \"{}\"\nfailure-threshold = 1\n",
        up.url("/health"),
        down.url("/health")
    );
    let env = Env::new(&body, None);
    env.run(&["check"]);
    env.run(&["check"]);
    let site = env.dir.path().join("site");
    assert_eq!(env.code(&["report", "--format", "status-page"]), 2, "-o DIR is required");
    let out = env.run(&["report", "--since", "1h", "--format", "status-page", "-o", site.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(index.contains("web app") && index.contains("badges/web_app.svg"), "{index}");
    assert!(index.contains("class=\"down\">DOWN") && index.contains("class=\"up\">UP"), "{index}");
    for badge in ["web_app.svg", "api.svg"] {
        let svg = std::fs::read_to_string(site.join("badges").join(badge)).unwrap();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }
    assert!(std::fs::read_to_string(site.join("badges/api.svg")).unwrap().contains("0.00%"));

    // Written again: the link switches to the new version and the old one is gone.
    let first = std::fs::read_link(&site).unwrap();
    let out = env.run(&["report", "--since", "1h", "--format", "status-page", "-o", site.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_ne!(std::fs::read_link(&site).unwrap(), first);
    let versions = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".site-"))
        .count();
    assert_eq!(versions, 1, "only the current version is kept");
    assert!(site.join("index.html").is_file());

    // A real directory of someone else's is never overwritten.
    let other = env.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    assert_eq!(env.code(&["report", "--format", "status-page", "-o", other.to_str().unwrap()]), 2);
}
