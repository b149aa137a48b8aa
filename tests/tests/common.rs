//! standby-common against real servers on loopback: HTTP probes on an app backend, HTTPS on
//! nginx with a self-signed certificate, TCP, PostgreSQL, notifiers received by a local
//! webhook server, and the run lock held by another process.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::time::{Duration, Instant};

use standby_common::config::ConfigFile;
use standby_common::exit::{code_of, Code};
use standby_common::notify::{Event, EventKind, Notifiers};
use standby_common::probe::http::{ClientOptions, HttpCheck, TlsOptions};
use standby_common::probe::{self, Failure, StatusSet};
use standby_common::retry::Backoff;
use standby_common::secret::Secret;
use standby_common::state::StateDir;
use standby_e2e::webhook::Webhook;
use standby_e2e::{AppBackend, Nginx, NginxOptions};

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn http_probe_expectations_against_a_real_backend() {
    let app = AppBackend::start("probe").unwrap();
    let check = |path: &str| HttpCheck::new(app.url(path));

    let ok = block(check("/health").run());
    assert!(ok.ok && ok.status == Some(200), "{ok:?}");

    app.set_healthy(false);
    let down = block(check("/health").run());
    assert_eq!((down.ok, down.failure, down.status), (false, Some(Failure::Unexpected), Some(503)));
    assert!(down.error.as_deref().unwrap().contains("expected status 2xx, got 503"), "{down:?}");
    let accepted = block(HttpCheck { expect_status: "503".parse().unwrap(), ..check("/health") }.run());
    assert!(accepted.ok, "an expected status set decides: {accepted:?}");

    let body = block(HttpCheck { body_contains: Some("hello from probe".into()), ..check("/") }.run());
    assert!(body.ok, "{body:?}");
    let wrong = block(HttpCheck { body_regex: Some(regex::Regex::new("^bye").unwrap()), ..check("/") }.run());
    assert!(!wrong.ok && wrong.error.unwrap().contains("expected body to match /^bye/"));

    let slow = block(HttpCheck { max_latency: Some(Duration::from_millis(50)), ..check("/slow?ms=200") }.run());
    assert!(!slow.ok && slow.error.unwrap().contains("expected latency"));

    let timeout = HttpCheck {
        client: ClientOptions { timeout: Duration::from_millis(200), ..Default::default() },
        ..check("/slow?ms=120000")
    };
    let start = Instant::now();
    let timed_out = block(timeout.run());
    assert_eq!(timed_out.failure, Some(Failure::Timeout), "{timed_out:?}");
    // A hang would last the 120 s the app sleeps; the bound is generous for a loaded machine.
    assert!(start.elapsed() < Duration::from_secs(60), "never hangs past the timeout");

    let port = standby_e2e::ports::free_port();
    let refused = block(HttpCheck::new(format!("http://127.0.0.1:{port}/")).run());
    assert_eq!(refused.failure, Some(Failure::Unreachable), "{refused:?}");
}

#[test]
fn http_probe_pins_a_host_name_to_an_origin_ip() {
    let app = AppBackend::start("origin").unwrap();
    // A name that resolves nowhere, pinned to the origin: the request reaches the backend.
    let url = format!("http://origin.example.invalid:{}/health", app.port);
    let pinned = HttpCheck {
        client: ClientOptions {
            resolve: vec![("origin.example.invalid".into(), "127.0.0.1".parse().unwrap())],
            ..Default::default()
        },
        ..HttpCheck::new(url.clone())
    };
    assert!(block(pinned.run()).ok);
    assert_eq!(app.hits(), 1);
}

#[test]
fn https_probe_verifies_certificates_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = standby_e2e::tls::self_signed(dir.path(), "localhost", 30).unwrap();
    let nginx = Nginx::start(NginxOptions { tls: Some((cert.clone(), key)), ..Default::default() }).unwrap();
    let url = format!("https://localhost:{}/", nginx.port);
    let with = |tls: TlsOptions| HttpCheck {
        client: ClientOptions {
            tls,
            resolve: vec![("localhost".into(), "127.0.0.1".parse().unwrap())],
            ..Default::default()
        },
        ..HttpCheck::new(url.clone())
    };
    let untrusted = block(with(TlsOptions::default()).run());
    assert_eq!(untrusted.failure, Some(Failure::Tls), "verified by default: {untrusted:?}");
    let trusted = block(with(TlsOptions { ca_file: Some(cert), insecure: false }).run());
    assert!(trusted.ok, "{trusted:?}");
    let insecure = block(with(TlsOptions { ca_file: None, insecure: true }).run());
    assert!(insecure.ok, "{insecure:?}");
    assert!(StatusSet::success().contains(trusted.status.unwrap()));
}

#[test]
fn tcp_probe() {
    let app = AppBackend::start("tcp").unwrap();
    assert!(block(probe::tcp::check(&format!("127.0.0.1:{}", app.port), Duration::from_secs(2))).ok);
    let port = standby_e2e::ports::free_port();
    let r = block(probe::tcp::check(&format!("127.0.0.1:{port}"), Duration::from_secs(2)));
    assert_eq!(r.failure, Some(Failure::Unreachable));
}

#[test]
fn postgres_probe_against_a_real_server() {
    let mut pg = standby_e2e::start_primary().unwrap();
    let ok = block(probe::postgres::check(&pg.conninfo(), None, Duration::from_secs(5)));
    assert!(ok.ok, "{ok:?}");
    let no_db = format!("host=127.0.0.1 port={} user=postgres dbname=nosuchdb", pg.port);
    let bad = block(probe::postgres::check(&no_db, Some(&Secret::new("pw")), Duration::from_secs(5)));
    assert_eq!(bad.failure, Some(Failure::Unexpected), "the server answered with an error: {bad:?}");
    assert!(bad.error.unwrap().contains("nosuchdb"));
    pg.stop_immediate();
    let down = block(probe::postgres::check(&pg.conninfo(), None, Duration::from_secs(5)));
    assert_eq!(down.failure, Some(Failure::Unreachable), "{down:?}");
}

#[test]
fn notifiers_deliver_each_kind_to_a_real_http_server() {
    let r = Webhook::start(200).unwrap();
    let base = r.url("");
    std::env::set_var("STANDBY_TEST_NTFY_TOKEN", "tok-secret");
    let cfg = ConfigFile::from_str(
        "n.toml",
        format!(
            r#"
[[notify]]
kind = "webhook"
url = "{base}/hook"
[[notify]]
kind = "slack"
url = "{base}/slack"
[[notify]]
kind = "ntfy"
url = "{base}/alerts"
token-env = "STANDBY_TEST_NTFY_TOKEN"
[[notify]]
kind = "healthchecks"
url = "{base}/ping/abc"
"#
        ),
    );
    let n = Notifiers::from_config(&cfg).unwrap();
    let down = Event::new("downtime-monitor", EventKind::Down, "app", "connection refused");
    assert_eq!(block(n.send(&down)), 4);
    block(n.send(&Event::new("backup-sync", EventKind::Start, "nightly", "starting")));
    let got = r.received();
    let find =
        |path: &str| got.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("no request to {path}: {got:?}"));
    let hook = find("/hook").json();
    assert_eq!((hook["kind"].as_str(), hook["subject"].as_str()), (Some("down"), Some("app")));
    let slack = find("/slack").json();
    assert!(slack["text"].as_str().unwrap().contains("app DOWN: connection refused"));
    let ntfy = find("/alerts");
    assert_eq!(ntfy.body, "connection refused");
    assert_eq!(ntfy.header("priority"), Some("high"));
    assert_eq!(ntfy.header("authorization"), Some("Bearer tok-secret"));
    assert!(got.iter().any(|r| r.path == "/ping/abc/fail"), "DOWN pings /fail");
    assert!(got.iter().any(|r| r.path == "/ping/abc/start"), "a start pings /start");
}

#[test]
fn a_failing_notifier_is_retried_a_bounded_number_of_times_and_never_fatal() {
    let r = Webhook::start(500).unwrap();
    let cfg = ConfigFile::from_str(
        "n.toml",
        format!("[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{}/x\"\n", r.port),
    );
    let quick = Backoff { attempts: 3, base: Duration::from_millis(1), max: Duration::from_millis(5) };
    let n = Notifiers::from_config(&cfg).unwrap().with_backoff(quick);
    assert_eq!(block(n.send(&Event::new("t", EventKind::Failure, "s", "m"))), 0);
    assert_eq!(r.received().len(), 3, "exactly the bounded number of attempts");
}

#[test]
fn the_run_lock_held_by_another_process_exits_3_and_a_killed_holder_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open("t", Some(dir.path())).unwrap();
    let lock_path = dir.path().join("run.lock");
    // One process that takes the lock with flock(1) and then holds it as `sleep`, until it is
    // killed: by the test, or on drop when the test fails (ServerProcess is the guard).
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "exec 9>\"$0\" && flock 9 && exec sleep 600"]).arg(&lock_path);
    let mut holder = standby_e2e::ServerProcess::spawn(cmd, "flock holder", dir.path().join("holder.log")).unwrap();
    assert!(standby_e2e::process::wait_until(Duration::from_secs(60), || {
        std::fs::metadata(&lock_path).is_ok() && state.lock("run").is_err()
    }));
    let err = state.lock("run").unwrap_err();
    assert_eq!(code_of(&err), Code::Locked);
    holder.kill(); // SIGKILL: the holder never unlocks
    assert!(standby_e2e::process::wait_until(Duration::from_secs(60), || state.lock("run").is_ok()));
}

#[test]
fn postgres_probe_uses_tls_and_verifies_the_certificate() {
    use std::os::unix::fs::PermissionsExt;
    let pg = standby_e2e::start_primary().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = standby_e2e::tls::self_signed(dir.path(), "localhost", 30).unwrap();
    for (from, name) in [(&cert, "server.crt"), (&key, "server.key")] {
        let to = pg.data_dir.join(name);
        std::fs::copy(from, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some((uid, gid)) = standby_e2e::postgres::server_user().unwrap() {
            std::os::unix::fs::chown(&to, Some(uid), Some(gid)).unwrap();
        }
    }
    pg.psql("ALTER SYSTEM SET ssl = on").unwrap();
    pg.psql("SELECT pg_reload_conf()").unwrap();
    let conninfo = |mode: &str| format!("host=localhost port={} user=postgres dbname=postgres sslmode={mode}", pg.port);
    let on = standby_e2e::process::wait_until(Duration::from_secs(5), || pg.psql("SHOW ssl").is_ok_and(|v| v == "on"));
    assert!(on, "the server turned TLS on");
    let t = Duration::from_secs(5);
    let untrusted = block(probe::postgres::check(&conninfo("require"), None, t));
    assert_eq!(untrusted.failure, Some(Failure::Tls), "a self-signed certificate is refused: {untrusted:?}");
    let trusted = block(probe::postgres::check_with_ca(&conninfo("require"), None, Some(&cert), t));
    assert!(trusted.ok, "{trusted:?}");
    let plain = block(probe::postgres::check(&conninfo("disable"), None, t));
    assert!(plain.ok, "sslmode=disable connects without TLS: {plain:?}");
}

/// The monitor's lean client (hyper without reqwest's layers) judges a check as reqwest does:
/// the same verdicts and failure kinds, keep-alive reuse, and TLS verified by default.
#[test]
fn the_lean_client_judges_as_reqwest_does_and_verifies_tls() {
    use standby_common::probe::lean::LeanClient;
    let app = AppBackend::start("lean").unwrap();
    let client = LeanClient::new(&TlsOptions::default(), Duration::from_secs(5)).unwrap();
    let check = |path: &str| HttpCheck::new(app.url(path));
    let both = |c: &HttpCheck| (block(c.run()), block(c.run_lean(&client)));

    let before = app.hits();
    for _ in 0..3 {
        let (theirs, ours) = both(&check("/health"));
        assert!(theirs.ok && ours.ok && ours.status == Some(200), "{theirs:?} {ours:?}");
    }
    assert_eq!(app.hits() - before, 6, "every check is a request");
    app.set_healthy(false);
    let (theirs, ours) = both(&check("/health"));
    assert_eq!((ours.ok, ours.failure, ours.status), (theirs.ok, theirs.failure, theirs.status));
    assert_eq!(ours.error, theirs.error, "the same words");
    let wrong = HttpCheck { body_regex: Some(regex::Regex::new("^bye").unwrap()), ..check("/") };
    let (theirs, ours) = both(&wrong);
    assert_eq!((ours.ok, ours.error), (theirs.ok, theirs.error));

    let slow = HttpCheck {
        client: ClientOptions { timeout: Duration::from_millis(200), ..Default::default() },
        ..check("/slow?ms=120000")
    };
    assert!(slow.lean(), "default options go the lean way");
    assert_eq!(block(slow.run_lean(&client)).failure, Some(Failure::Timeout));
    let port = standby_e2e::ports::free_port();
    let refused = block(HttpCheck::new(format!("http://127.0.0.1:{port}/")).run_lean(&client));
    assert_eq!(refused.failure, Some(Failure::Unreachable), "{refused:?}");

    // A URL with credentials, a CA file or a pin is left to reqwest.
    assert!(!HttpCheck::new(format!("http://user:pw@127.0.0.1:{port}/")).lean());
    let pinned = HttpCheck {
        client: ClientOptions { resolve: vec![("a".into(), "127.0.0.1".parse().unwrap())], ..Default::default() },
        ..check("/")
    };
    assert!(!pinned.lean());

    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = standby_e2e::tls::self_signed(dir.path(), "127.0.0.1", 30).unwrap();
    let nginx = Nginx::start(NginxOptions { tls: Some((cert.clone(), key)), ..Default::default() }).unwrap();
    let https = HttpCheck::new(format!("https://127.0.0.1:{}/", nginx.port));
    let untrusted = block(https.run_lean(&client));
    assert_eq!(untrusted.failure, Some(Failure::Tls), "verified by default: {untrusted:?}");
    let trusting =
        LeanClient::new(&TlsOptions { ca_file: Some(cert), insecure: false }, Duration::from_secs(5)).unwrap();
    let trusted = block(https.run_lean(&trusting));
    assert!(trusted.ok, "{trusted:?}");
}
