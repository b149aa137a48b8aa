//! smoke-test against real servers: nginx from the harness (static files, a JSON endpoint,
//! headers, redirects, a large and a binary body, TLS with a short-lived self-signed
//! certificate) and an app backend that counts requests. In-process through the library
//! and through the binary for exit codes and report files.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use smoke_test::{run_blocking, Report, RunOptions, Suite};
use standby_common::config::ConfigFile;
use standby_common::exit::{code_of, Code};
use standby_common::probe::Failure;
use standby_e2e::app::AppBackend;
use standby_e2e::nginx::{Nginx, NginxOptions};

const SITE_CONFIG: &str = r#"
    add_header X-Version "42" always;
    location = /old { return 301 /index.html; }
    location = /loop { return 302 /loop; }
    location = /api/status.json { default_type application/json; }
"#;

/// nginx with the files the suites below expect.
fn site() -> Nginx {
    let nginx = Nginx::start(NginxOptions { extra_server_config: SITE_CONFIG.into(), ..Default::default() })
        .expect("nginx starts");
    nginx
        .write_file(
            "api/status.json",
            br#"{"status":"ok","version":"1.4.2","workers":3,"db":{"primary":true},"token":"t0k3n"}"#,
        )
        .unwrap();
    nginx.write_file("items/t0k3n.json", br#"{"id":7}"#).unwrap();
    let big: Vec<u8> = b"a".repeat(5 * 1024 * 1024).into_iter().chain(*b"zzz-end").collect();
    nginx.write_file("big.txt", &big).unwrap();
    nginx.write_file("blob.bin", &[0xff, 0xfe, 0x00, 0x81, 0x80]).unwrap();
    nginx
}

fn suite(text: &str) -> Suite {
    suite_vars(text, &BTreeMap::new()).expect("suite is valid")
}

fn suite_vars(text: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<Suite> {
    Suite::parse(&ConfigFile::from_str("suite.toml", text), vars)
}

fn run(suite: &Suite, base: &str) -> Report {
    let opts = RunOptions { base_url: Some(base.into()), timeout: Duration::from_secs(5), ..Default::default() };
    run_blocking(std::slice::from_ref(suite), &opts).expect("run")
}

fn by_name<'r>(report: &'r Report, name: &str) -> &'r smoke_test::report::CheckResult {
    report.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}"))
}

fn assert_pass(report: &Report, name: &str) {
    let c = by_name(report, name);
    assert!(c.ok, "{name} should pass: {:?}", c.failures);
}

fn assert_fail(report: &Report, name: &str, message_part: &str) {
    let c = by_name(report, name);
    assert!(!c.ok, "{name} should fail");
    assert!(
        c.failures.iter().any(|f| f.contains(message_part)),
        "{name}: expected a failure containing {message_part:?}, got {:?}",
        c.failures
    );
}

#[test]
fn every_expectation_kind_passes_and_fails_against_nginx() {
    let nginx = site();
    let report = run(
        &suite(
            r#"
[[check]]
name = "status ok"
path = "/"
expect = { status = 200 }
[[check]]
name = "status list and range"
path = "/missing"
expect = { status = ["200", "400-404"] }
[[check]]
name = "status wrong"
path = "/missing"
expect = { status = "2xx" }
[[check]]
name = "body contains"
path = "/"
expect = { body-contains = ["hello from nginx", "<title>"], body-not-contains = "error" }
[[check]]
name = "body contains wrong"
path = "/"
expect = { body-contains = "goodbye" }
[[check]]
name = "body regex"
path = "/"
expect = { body-regex = "hello from \\w+" }
[[check]]
name = "body regex wrong"
path = "/"
expect = { body-regex = "^version \\d+$" }
[[check]]
name = "header equals and regex"
path = "/"
expect = { headers = { X-Version = "42" }, header-regex = { content-type = "^text/html" } }
[[check]]
name = "header wrong"
path = "/"
expect = { headers = { x-version = "41" } }
[[check]]
name = "header missing"
path = "/"
expect = { header-regex = { x-nothing = "." } }
[[check]]
name = "json"
path = "/api/status.json"
expect = { json = [
  { pointer = "/status", equals = "ok" },
  { pointer = "/db/primary", equals = true },
  { pointer = "/workers", gte = 2 },
  { pointer = "/workers", lt = 10 },
  { pointer = "/version", exists = true },
  { pointer = "/error", exists = false },
] }
[[check]]
name = "json wrong value"
path = "/api/status.json"
expect = { json = [{ pointer = "/workers", gt = 5 }] }
[[check]]
name = "json missing pointer"
path = "/api/status.json"
expect = { json = [{ pointer = "/replicas/0", equals = 1 }] }
[[check]]
name = "json not json"
path = "/"
expect = { json = [{ pointer = "/status", exists = true }] }
[[check]]
name = "redirect not followed"
path = "/old"
expect = { status = 301, headers = { location = "http://127.0.0.1:PORT/index.html" } }
[[check]]
name = "redirect followed"
path = "/old"
follow-redirects = true
expect = { status = 200, body-contains = "hello from nginx" }
[[check]]
name = "latency ok"
path = "/"
expect = { max-latency = "5s" }
"#
            .replace("PORT", &nginx.port.to_string())
            .as_str(),
        ),
        &nginx.url(""),
    );
    for name in [
        "status ok",
        "status list and range",
        "body contains",
        "body regex",
        "header equals and regex",
        "json",
        "redirect not followed",
        "redirect followed",
        "latency ok",
    ] {
        assert_pass(&report, name);
    }
    assert_fail(&report, "status wrong", "expected status 2xx, got 404");
    assert_fail(&report, "body contains wrong", "expected body to contain \"goodbye\"");
    assert_fail(&report, "body regex wrong", "expected body to match");
    assert_fail(&report, "header wrong", "expected header x-version: \"41\", got \"42\"");
    assert_fail(&report, "header missing", "got no such header");
    assert_fail(&report, "json wrong value", "expected /workers > 5, got 3");
    assert_fail(&report, "json missing pointer", "expected /replicas/0 to exist");
    assert_fail(&report, "json not json", "invalid JSON");
    let wrong = by_name(&report, "status wrong");
    assert_eq!(wrong.status, Some(404));
    assert!(wrong.body_excerpt.as_deref().unwrap_or("").contains("404"), "body excerpt shows what came back");
    assert_eq!((report.passed, report.failed), (9, 8));
    assert_eq!(smoke_test::exit_code(&report), Code::Failed);
}

#[test]
fn latency_limit_fails_a_slow_answer() {
    let app = AppBackend::start("slow").unwrap();
    let report = run(
        &suite("[[check]]\nname = \"slow\"\npath = \"/slow?ms=400\"\nexpect = { max-latency = \"100ms\" }\n"),
        &app.url(""),
    );
    assert_fail(&report, "slow", "expected latency <= 100 ms");
}

#[test]
fn captures_flow_into_later_checks_in_order() {
    let nginx = site();
    let report = run(
        &suite(
            r#"
[vars]
kind = "items"

[[check]]
name = "get token"
path = "/api/status.json"
capture = { token = { json = "/token" }, version = { header = "x-version" }, release = { regex = "\"version\":\"([0-9.]+)\"" } }

[[check]]
name = "use token"
path = "/{{kind}}/{{token}}.json"
headers = { X-Client-Version = "{{version}}", X-Release = "{{release}}" }
expect = { json = [{ pointer = "/id", equals = 7 }] }

[[check]]
name = "expectations use captures"
path = "/api/status.json"
expect = { body-contains = "{{release}}", json = [{ pointer = "/token", equals = "{{token}}" }] }

[[check]]
name = "expectation with capture fails"
path = "/items/{{token}}.json"
expect = { body-contains = "{{token}}" }

[[check]]
name = "regex capture missing"
path = "/"
capture = { nothing = { regex = "nomatch-(\\d+)" } }

[[check]]
name = "depends on failed capture"
path = "/{{nothing}}"
"#,
        ),
        &nginx.url(""),
    );
    assert_pass(&report, "get token");
    assert_pass(&report, "use token");
    assert!(by_name(&report, "use token").url.ends_with("/items/t0k3n.json"));
    assert_fail(&report, "regex capture missing", "capture nothing: nothing found");
    assert_fail(&report, "depends on failed capture", "skipped");
    assert!(by_name(&report, "depends on failed capture").skipped);
    assert_eq!((report.failed, report.skipped), (2, 1));
}

#[test]
fn independent_checks_run_concurrently_up_to_jobs() {
    let app = AppBackend::start("conc").unwrap();
    let checks = |path: &str| -> String {
        (0..6).map(|i| format!("[[check]]\nname = \"check {i}\"\npath = \"{path}\"\n")).collect()
    };
    let run_with = |text: &str, jobs| {
        // A deadline for a loaded machine, above the gate's own 30 s.
        let timeout = Duration::from_secs(60);
        let opts = RunOptions { base_url: Some(app.url("")), jobs, timeout, ..Default::default() };
        run_blocking(std::slice::from_ref(&suite(text)), &opts).unwrap()
    };
    // One at a time: never two requests at once (the app counts them).
    app.take_max_in_flight();
    assert!(run_with(&checks("/slow?ms=50"), 1).ok);
    assert_eq!(app.take_max_in_flight(), 1);
    // Six at a time: the app's gate answers only once all six are in flight together.
    let report = run_with(&checks("/gate?n=6"), 6);
    assert!(report.ok, "{:?}", report.checks.iter().map(|c| &c.failures).collect::<Vec<_>>());
    assert_eq!(app.take_max_in_flight(), 6);
    assert_eq!(app.hits(), 12);
}

#[test]
fn retries_until_the_app_is_healthy() {
    let app = AppBackend::start("warming").unwrap();
    app.set_healthy(false);
    let s = suite("[[check]]\nname = \"health\"\npath = \"/health\"\nretries = 20\nretry-delay = \"50ms\"\n");
    let base = app.url("");
    // Healthy only once a retry started (so the first attempt was surely answered 503).
    let flip = std::thread::spawn(move || {
        while app.hits() < 2 {
            std::thread::sleep(Duration::from_millis(10));
        }
        app.set_healthy(true);
        app
    });
    let report = run(&s, &base);
    let _app = flip.join().unwrap();
    let c = by_name(&report, "health");
    assert!(c.ok, "{:?}", c.failures);
    assert!(c.attempts > 1, "it needed retries: {}", c.attempts);
}

#[test]
fn bad_answers_are_failed_checks_with_a_reason_never_a_hang() {
    let nginx = site();
    // A server that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let text = format!(
        r#"
[[check]]
name = "huge body"
path = "/big.txt"
expect = {{ body-contains = "zzz-end" }}
[[check]]
name = "binary body"
path = "/blob.bin"
expect = {{ body-contains = "x" }}
[[check]]
name = "redirect loop"
path = "/loop"
follow-redirects = true
[[check]]
name = "never answers"
url = "{silent_url}"
timeout = "500ms"
"#
    );
    let start = Instant::now();
    let report = run(&suite(&text), &nginx.url(""));
    // A hang would never end; the bound is generous for a loaded machine.
    assert!(start.elapsed() < Duration::from_secs(60), "bounded by the timeouts");
    // 5 MiB is read whole by default; a smaller max-body cuts it and says so.
    assert_pass(&report, "huge body");
    let small = RunOptions {
        base_url: Some(nginx.url("")),
        max_body: 1024 * 1024,
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let cut = run_blocking(std::slice::from_ref(&suite(&text)), &small).unwrap();
    assert_fail(&cut, "huge body", "cut at max-body, 1048576 bytes");
    let binary = by_name(&report, "binary body");
    assert_eq!(binary.body_excerpt.as_deref(), Some("(5 bytes, not UTF-8)"));
    let looped = by_name(&report, "redirect loop");
    assert_eq!(looped.failure, Some(Failure::Protocol), "{:?}", looped.failures);
    assert!(looped.failures[0].contains("redirect"), "{:?}", looped.failures);
    let silent_check = by_name(&report, "never answers");
    assert_eq!(silent_check.failure, Some(Failure::Timeout));
    drop(silent);
}

#[test]
fn tls_certificate_validity_and_verification() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = standby_e2e::tls::self_signed(dir.path(), "localhost", 3).unwrap();
    let nginx = Nginx::start(NginxOptions { tls: Some((cert.clone(), key)), ..Default::default() }).unwrap();
    let base = format!("https://localhost:{}", nginx.port);
    let s = suite(
        r#"
[[check]]
name = "valid for 2 days"
path = "/"
expect = { cert-valid-days = 2 }
[[check]]
name = "valid for 30 days"
path = "/"
expect = { cert-valid-days = 30 }
"#,
    );
    let opts = |ca: Option<PathBuf>, insecure| RunOptions {
        base_url: Some(base.clone()),
        tls: standby_common::probe::TlsOptions { ca_file: ca, insecure },
        resolve: vec![("localhost".into(), "127.0.0.1".parse().unwrap())],
        ..Default::default()
    };
    // Verified by default: a self-signed certificate fails as a TLS failure.
    let untrusted = run_blocking(std::slice::from_ref(&s), &opts(None, false)).unwrap();
    assert!(untrusted.checks.iter().all(|c| c.failure == Some(Failure::Tls)), "{:?}", untrusted.checks);
    // Trusted through --cacert: the validity expectation decides.
    let trusted = run_blocking(std::slice::from_ref(&s), &opts(Some(cert), false)).unwrap();
    assert_pass(&trusted, "valid for 2 days");
    assert_fail(&trusted, "valid for 30 days", "expected certificate valid for >= 30 days, it expires in");
    // --insecure skips verification but the certificate is still read.
    let insecure = run_blocking(std::slice::from_ref(&s), &opts(None, true)).unwrap();
    assert_pass(&insecure, "valid for 2 days");
}

#[test]
fn invalid_suites_are_rejected_with_file_line_before_anything_is_sent() {
    let app = AppBackend::start("untouched").unwrap();
    let base = app.url("");
    let cases: &[(&str, &str)] = &[
        ("[[check]]\nname = \"a\"\npath = \"/\"\nexpect = { status = 200 \n", "suite.toml:4:"),
        ("[[check]]\nname = \"a\"\npath = \"/\"\n\n[[check]]\nname = \"b\"\npath = \"/\"\nexpct = {}\n", "suite.toml:8:1: unknown key `expct`: did you mean `expect`?"),
        ("[[check]]\nname = \"a\"\npath = \"/\"\nexpect = { body-regex = \"((\" }\n", "suite.toml:4:12: check \"a\": invalid regex in expect.body-regex"),
        ("[[check]]\nname = \"a\"\npath = \"/\"\nexpect = { json = [{ pointer = \"status\", exists = true }] }\n", "invalid JSON pointer \"status\""),
        ("[[check]]\nname = \"a\"\npath = \"/{{token}}\"\n\n[[check]]\nname = \"b\"\npath = \"/\"\ncapture = { token = { json = \"/t\" } }\n", "suite.toml:3:10: check \"a\": unknown variable {{token}} (it is captured by a later check"),
        ("[[check]]\nname = \"a\"\npath = \"/\"\n\n[[check]]\nname = \"b\"\npath = \"/{{usr}}\"\n\n[vars]\nuser = \"x\"\n", "suite.toml:7:10: check \"b\": unknown variable {{usr}}; did you mean {{user}}?"),
        ("[[check]]\nname = \"a\"\npath = \"/{{env.STANDBY_SURELY_UNSET_VAR}}\"\n", "environment variable STANDBY_SURELY_UNSET_VAR is not set"),
        ("[[check]]\nname = \"a\"\n", "needs exactly one of `url` (absolute) or `path`"),
        ("[vars]\nx = \"1\"\n", "no [[check]] in this suite"),
    ];
    for (text, expected) in cases {
        let err = suite_vars(text, &BTreeMap::new()).map(|s| run(&s, &base)).unwrap_err();
        assert_eq!(code_of(&err), Code::Usage, "{text}");
        let msg = format!("{err:#}");
        assert!(msg.contains(expected), "for suite\n{text}\nexpected {expected:?} in {msg:?}");
    }
    assert_eq!(app.hits(), 0, "no request was sent for an invalid suite");
}

fn smoke_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smoke-test"));
    cmd.env_remove("STANDBY_CONFIG").env("NO_COLOR", "1");
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const TWO_CHECKS: &str = "[[check]]\nname = \"home\"\npath = \"/\"\nexpect = { body-contains = \"hello\" }\n\n[[check]]\nname = \"gone\"\npath = \"/gone\"\n";

#[test]
fn binary_exit_codes_and_report_formats() {
    let nginx = site();
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.toml", "[[check]]\nname = \"home\"\npath = \"/\"\n");
    let mixed = write(dir.path(), "mixed.toml", TWO_CHECKS);
    let bad = write(dir.path(), "bad.toml", "[[check]]\nname = \"x\"\npath = \"/\"\ntimeout = \"soon\"\n");
    let base = nginx.url("");
    let status = |args: &[&str]| smoke_bin().args(args).output().unwrap();

    let ok = status(&[good.to_str().unwrap(), "--base-url", &base]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 passed, 0 failed"));
    let quiet = status(&[good.to_str().unwrap(), "--base-url", &base, "-q"]);
    assert_eq!((quiet.status.code(), quiet.stdout.len()), (Some(0), 0), "silent on success with -q");

    let failed = status(&[mixed.to_str().unwrap(), "--base-url", &base]);
    assert_eq!(failed.status.code(), Some(1));
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(out.contains("FAIL gone") && out.contains("expected status 2xx, got 404"), "{out}");

    let invalid = status(&[bad.to_str().unwrap(), "--base-url", &base]);
    assert_eq!(invalid.status.code(), Some(2));
    let err = String::from_utf8_lossy(&invalid.stderr);
    assert!(err.contains("bad.toml:4:") && err.contains("expected e.g. 500ms"), "{err}");

    let port = standby_e2e::ports::free_port();
    let refused = status(&[mixed.to_str().unwrap(), "--base-url", &format!("http://127.0.0.1:{port}"), "--json"]);
    assert_eq!(refused.status.code(), Some(4));
    let json: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(json["unreachable"], true);
    assert_eq!(json["checks"][0]["failure"], "unreachable");

    // JUnit written to a file, parsed back as XML with the right counts.
    let junit = dir.path().join("junit.xml");
    let r = status(&[
        mixed.to_str().unwrap(),
        good.to_str().unwrap(),
        "--base-url",
        &base,
        "--format",
        "junit",
        "-o",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let root = doc.root_element();
    assert_eq!(
        (root.tag_name().name(), root.attribute("tests"), root.attribute("failures")),
        ("testsuites", Some("3"), Some("1"))
    );
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 2);
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 3);
    let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(failure.parent().unwrap().attribute("name"), Some("gone"));
    assert!(failure.attribute("message").unwrap().contains("got 404"));

    // TAP
    let tap = status(&[mixed.to_str().unwrap(), "--base-url", &base, "--format", "tap"]);
    let tap = String::from_utf8_lossy(&tap.stdout).to_string();
    assert!(tap.starts_with("TAP version 13\n1..2\nok 1 - home\nnot ok 2 - gone\n"), "{tap}");

    // JSON through the global --json flag
    let j = status(&[mixed.to_str().unwrap(), "--base-url", &base, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!((v["passed"].as_u64(), v["failed"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn ad_hoc_form_checks_one_url() {
    let app = AppBackend::start("adhoc").unwrap();
    let run = |args: &[&str]| smoke_bin().args(args).output().unwrap();
    let url = app.url("/health");
    let ok = run(&["--url", &url, "--expect-status", "200", "--expect-body", "ok", "--max-latency", "5s"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    let wrong = run(&["--url", &url, "--expect-body", "everything is fine"]);
    assert_eq!(wrong.status.code(), Some(1));
    let bad_flag = run(&["--url", &url, "--expect-status", "20x"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    assert_eq!(app.hits(), 2, "the bad flag sent nothing");
}

#[test]
fn the_example_suite_in_the_repository_is_valid() {
    std::env::set_var("SMOKE_PASSWORD", "example");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/smoke.toml");
    let suite = Suite::load(&path, &BTreeMap::new()).expect("examples/smoke.toml is valid");
    assert_eq!(suite.checks.len(), 5);
    let profile = suite.checks.iter().find(|c| c.name == "profile with token").unwrap();
    assert_eq!(profile.depends_on.len(), 2, "waits for login (token) and version");
}

#[test]
fn more_bad_input_exits_2_before_anything_is_sent() {
    let app = AppBackend::start("strict").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = app.url("");
    let run = |args: &[&str]| smoke_bin().args(args).output().unwrap();
    let no_scheme = write(dir.path(), "a.toml", "[[check]]\nname = \"a\"\nurl = \"example.com/health\"\n");
    let out = run(&[no_scheme.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.toml:3:1: check \"a\": invalid URL"));
    let newline = write(
        dir.path(),
        "b.toml",
        "[[check]]\nname = \"b\"\npath = \"/\"\nheaders = { X-A = \"1\\r\\nX-Injected: 2\" }\n",
    );
    let out = run(&[newline.to_str().unwrap(), "--base-url", &base]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value for header X-A"));
    let good = write(dir.path(), "c.toml", "[[check]]\nname = \"c\"\npath = \"/\"\n");
    let out = run(&[good.to_str().unwrap(), "--base-url", "127.0.0.1:80"]);
    assert_eq!(out.status.code(), Some(2), "a base URL without a scheme");
    let out =
        run(&[good.to_str().unwrap(), "--base-url", &base, "-o", "/nonexistent-dir/junit.xml", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(2), "an output file that cannot be written");
    let out = run(&["--url", &app.url("/"), "--timeout", "18446744073709551615s"]);
    assert_eq!(out.status.code(), Some(2));
    let bad_status =
        write(dir.path(), "d.toml", "[[check]]\nname = \"d\"\npath = \"/\"\nexpect = { status = 99999 }\n");
    let out = run(&[bad_status.to_str().unwrap(), "--base-url", &base]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid status \"99999\""), "{out:?}");
    assert_eq!(app.hits(), 0, "nothing was sent");
    // Huge retry counts do not overflow; a refused URL whose path says "tls" is still exit 4.
    let port = standby_e2e::ports::free_port();
    let out = run(&["--url", &format!("http://127.0.0.1:{port}/tls-certificate"), "--retries", "0"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn credentials_in_urls_do_not_reach_reports() {
    let app = AppBackend::start("creds").unwrap();
    let url = format!("http://user:hunter2@127.0.0.1:{}/health", app.port);
    let out = smoke_bin().args(["--url", &url, "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2") && text.contains("user:***@"), "{text}");
}

/// blue-green-deploy runs suites in-process with the options of a `[smoke-test]` section,
/// from inside its own tokio runtime.
#[test]
fn a_section_runs_in_process_also_from_inside_a_runtime() {
    let app = AppBackend::start("green").unwrap();
    let file = ConfigFile::from_str(
        "standby.toml",
        format!("[smoke-test]\nbase-url = \"{}\"\njobs = 2\ntimeout = \"3s\"\n", app.url("")),
    );
    let config: smoke_test::config::Config = file.section_or_default("smoke-test").unwrap();
    let opts = RunOptions::from_config(&config).unwrap();
    assert_eq!((opts.jobs, opts.timeout), (2, Duration::from_secs(3)));
    let s =
        suite("[[check]]\nname = \"health\"\npath = \"/health\"\nexpect = { status = 200, body-contains = \"ok\" }\n");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = runtime.block_on(async { run_blocking(std::slice::from_ref(&s), &opts) }).unwrap();
    assert!(report.ok, "{report}");
    assert_eq!(app.hits(), 1);

    let bad = ConfigFile::from_str("standby.toml", "[smoke-test]\njobs = 0\n");
    let config: smoke_test::config::Config = bad.section_or_default("smoke-test").unwrap();
    let err = RunOptions::from_config(&config).unwrap_err();
    assert_eq!(code_of(&err), Code::Usage);
}

#[test]
fn secrets_in_the_url_of_a_refused_request_reach_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let port = standby_e2e::ports::free_port();
    let suite = write(
        dir.path(),
        "s.toml",
        "[[check]]\nname = \"health\"\npath = \"/health?api_key=key-s3cr3t&page=1\"\n\n\
         [[check]]\nname = \"direct\"\nurl = \"http://ops:pw-hunter2@127.0.0.1:{{port}}/x?Token=tok-s3cr3t\"\n",
    );
    let base = format!("http://deploy:pw-hunter2@127.0.0.1:{port}");
    let junit = dir.path().join("junit.xml");
    let port_var = format!("port={port}");
    let run = |extra: &[&str]| {
        let mut args = vec![suite.to_str().unwrap(), "--base-url", &base, "--var", &port_var];
        args.extend_from_slice(extra);
        let out = smoke_bin().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(4), "refused: exit 4 {}", String::from_utf8_lossy(&out.stderr));
        format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let outputs = [
        ("human", run(&[])),
        ("human -v", run(&["-v"])),
        ("json", run(&["--json"])),
        ("tap", run(&["--format", "tap"])),
        ("junit", {
            run(&["--format", "junit", "-o", junit.to_str().unwrap()]);
            std::fs::read_to_string(&junit).unwrap()
        }),
    ];
    for (format, text) in &outputs {
        for secret in ["pw-hunter2", "key-s3cr3t", "tok-s3cr3t"] {
            assert!(!text.contains(secret), "{format} output shows {secret}:\n{text}");
        }
        assert!(text.contains("deploy:***@") && text.contains("api_key=***"), "{format} still names the URL:\n{text}");
    }
}

#[test]
fn env_values_and_configured_query_keys_reach_no_output() {
    let site = site();
    let dir = tempfile::tempdir().unwrap();
    let refused = standby_e2e::ports::free_port();
    let suite = write(
        dir.path(),
        "s.toml",
        &format!(
            "[[check]]\nname = \"answered\"\npath = \"/?sessionid=sess-s3cr3t&q={{{{env.SMOKE_T_TOKEN}}}}\"\n\
             headers = {{ Authorization = \"Bearer {{{{env.SMOKE_T_TOKEN}}}}\" }}\n\
             expect = {{ body-contains = \"{{{{env.SMOKE_T_TOKEN}}}}\", headers = {{ server = \"{{{{env.SMOKE_T_TOKEN}}}}\" }} }}\n\n\
             [[check]]\nname = \"refused\"\nurl = \"http://127.0.0.1:{refused}/{{{{env.SMOKE_T_TOKEN}}}}?sessionid=sess-s3cr3t\"\n"
        ),
    );
    let junit = dir.path().join("junit.xml");
    let base = site.url("");
    let run = |extra: &[&str]| {
        let mut args = vec![suite.to_str().unwrap(), "--base-url", &base, "--redact-query", "SessionId", "-vv"];
        args.extend_from_slice(extra);
        let out = smoke_bin().env("SMOKE_T_TOKEN", "env-t0ken-value").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let outputs = [
        ("human", run(&[])),
        ("json", run(&["--json"])),
        ("tap", run(&["--format", "tap"])),
        ("junit", {
            run(&["--format", "junit", "-o", junit.to_str().unwrap()]);
            std::fs::read_to_string(&junit).unwrap()
        }),
    ];
    for (format, text) in &outputs {
        for secret in ["env-t0ken-value", "sess-s3cr3t"] {
            assert!(!text.contains(secret), "{format} output shows {secret}:\n{text}");
        }
        assert!(text.contains("sessionid=***") && text.contains("expected body to contain"), "{format}:\n{text}");
    }
}

/// nginx answering with each content encoding: gzip made by nginx itself (`gzip on`, when the
/// check sends `Accept-Encoding`), and files precompressed by the zstd CLI and the brotli and
/// zlib encoders, served with their `Content-Encoding`.
#[test]
fn compressed_answers_are_decoded_before_they_are_judged() {
    const CONFIG: &str = r#"
    gzip on; gzip_min_length 1; gzip_types application/json text/plain;
    location = /enc/data.br { gzip off; default_type application/json; add_header Content-Encoding br; }
    location = /enc/bad.br { gzip off; default_type application/json; add_header Content-Encoding br; }
    location = /enc/data.zst { gzip off; default_type application/json; add_header Content-Encoding zstd; }
    location = /enc/data.zz { gzip off; default_type application/json; add_header Content-Encoding deflate; }
    "#;
    let nginx = Nginx::start(NginxOptions { extra_server_config: CONFIG.into(), ..Default::default() }).unwrap();
    let doc = format!(r#"{{"name":"standby","pad":"{}","end":true}}"#, "x".repeat(4000));
    nginx.write_file("enc/data.json", doc.as_bytes()).unwrap();
    let big: Vec<u8> = b"a".repeat(3 * 1024 * 1024);
    nginx.write_file("enc/big.txt", &big).unwrap();
    let mut br = Vec::new();
    {
        use std::io::Write;
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 9, 22);
        w.write_all(doc.as_bytes()).unwrap();
    }
    nginx.write_file("enc/data.br", &br).unwrap();
    nginx.write_file("enc/bad.br", b"this is not brotli at all").unwrap();
    let mut zz = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut zz, doc.as_bytes()).unwrap();
    nginx.write_file("enc/data.zz", &zz.finish().unwrap()).unwrap();
    let raw = nginx.root.join("enc/data.json");
    let zst = nginx.root.join("enc/data.zst");
    let out = Command::new("zstd").arg("-q").arg("-f").arg(&raw).arg("-o").arg(&zst).output().expect("zstd CLI");
    assert!(out.status.success(), "zstd: {}", String::from_utf8_lossy(&out.stderr));
    let check = |name: &str, path: &str, encoding: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\npath = \"{path}\"\nheaders = {{ Accept-Encoding = \"gzip, br, zstd, deflate\" }}\n\
             expect = {{ headers = {{ content-encoding = \"{encoding}\" }}, body-contains = \"standby\", \
             json = [{{ pointer = \"/end\", equals = true }}] }}\n\n"
        )
    };
    let text = [
        check("gzip by nginx", "/enc/data.json", "gzip"),
        check("brotli", "/enc/data.br", "br"),
        check("zstd", "/enc/data.zst", "zstd"),
        check("deflate", "/enc/data.zz", "deflate"),
        check("corrupt brotli", "/enc/bad.br", "br"),
        "[[check]]\nname = \"gzip bomb\"\npath = \"/enc/big.txt\"\nheaders = { Accept-Encoding = \"gzip\" }\n".into(),
    ]
    .concat();
    let opts = RunOptions {
        base_url: Some(nginx.url("")),
        max_body: 1024 * 1024,
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let report = run_blocking(std::slice::from_ref(&suite(&text)), &opts).unwrap();
    for name in ["gzip by nginx", "brotli", "zstd", "deflate"] {
        assert_pass(&report, name);
    }
    assert_fail(&report, "corrupt brotli", "cannot decode the br body");
    assert_fail(&report, "gzip bomb", "decodes to more than max-body");
    // Without Accept-Encoding nginx sends plain JSON, which is judged as it is.
    let plain = suite(
        "[[check]]\nname = \"plain\"\npath = \"/enc/data.json\"\nexpect = { json = [{ pointer = \"/end\", equals = true }] }\n",
    );
    assert_pass(&run(&plain, &nginx.url("")), "plain");
}

/// A certificate made by a plain `openssl req -x509` (marked as a CA, as openssl's default
/// config does), valid for `localhost` and 127.0.0.1.
fn openssl_req_x509(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let text = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"), "openssl req -x509 makes a CA certificate");
    (cert, key)
}

#[test]
fn cacert_pins_the_servers_own_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_req_x509(dir.path(), "origin");
    let (other, _) = openssl_req_x509(dir.path(), "other");
    let nginx = Nginx::start(NginxOptions { tls: Some((cert.clone(), key)), ..Default::default() }).unwrap();
    let (expired, expired_key) = standby_e2e::tls::self_signed(dir.path(), "localhost", 0).unwrap();
    let stale = Nginx::start(NginxOptions { tls: Some((expired.clone(), expired_key)), ..Default::default() }).unwrap();
    let s = suite("[[check]]\nname = \"home\"\npath = \"/\"\nexpect = { body-contains = \"hello\" }\n");
    let run_with = |base: String, ca: Option<&Path>| {
        let opts = RunOptions {
            base_url: Some(base),
            tls: standby_common::probe::TlsOptions { ca_file: ca.map(Path::to_path_buf), insecure: false },
            timeout: Duration::from_secs(5),
            ..Default::default()
        };
        run_blocking(std::slice::from_ref(&s), &opts).unwrap()
    };
    for base in [nginx.url(""), format!("https://localhost:{}", nginx.port)] {
        assert_pass(&run_with(base, Some(&cert)), "home");
    }
    for ca in [None, Some(other.as_path())] {
        let report = run_with(nginx.url(""), ca);
        let c = by_name(&report, "home");
        assert_eq!(c.failure, Some(Failure::Tls), "{:?}", c.failures);
        assert!(c.failures[0].contains("self-signed certificate, not trusted: pass --cacert"), "{:?}", c.failures);
    }
    // Pinned, yet expired: refused all the same.
    let report = run_with(stale.url(""), Some(&expired));
    let c = by_name(&report, "home");
    assert_eq!(c.failure, Some(Failure::Tls), "{:?}", c.failures);
    assert!(c.failures[0].to_lowercase().contains("expired"), "{:?}", c.failures);
}

#[test]
fn invalid_pointers_and_urls_from_vars_exit_2_and_https_to_http_is_a_protocol_failure() {
    let app = AppBackend::start("strict2").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = app.url("");
    let run = |args: &[&str]| smoke_bin().args(args).output().unwrap();
    let pointer = write(
        dir.path(),
        "p.toml",
        "[[check]]\nname = \"p\"\npath = \"/json\"\nexpect = { json = [{ pointer = \"/a~2b\", exists = true }] }\n",
    );
    let out = run(&[pointer.to_str().unwrap(), "--base-url", &base]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid JSON pointer \"/a~2b\""), "{out:?}");
    let from_vars = write(
        dir.path(),
        "v.toml",
        "[vars]\nhost = \"exa mple.com\"\n\n[[check]]\nname = \"v\"\nurl = \"http://{{host}}/x\"\n",
    );
    let out = run(&[from_vars.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("check \"v\": url: invalid URL"), "{out:?}");
    assert_eq!(app.hits(), 0, "nothing was sent");
    // https:// to a plain HTTP port: something answered, in the wrong protocol.
    let out = run(&["--url", &format!("https://127.0.0.1:{}/health", app.port)]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is it plain http://?"), "{out:?}");
}

#[test]
fn names_cannot_inject_report_lines_and_quiet_prints_only_failures() {
    const CONFIG: &str = r#"location = /echo { default_type text/plain; return 200 "x=[$http_x_env]\n"; }"#;
    let nginx = Nginx::start(NginxOptions { extra_server_config: CONFIG.into(), ..Default::default() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let suite = write(
        dir.path(),
        "s.toml",
        "[defaults]\nheaders = { X-Env = \"default\" }\n\n\
         [[check]]\nname = \"header\"\npath = \"/echo\"\nheaders = { x-env = \"check\" }\nexpect = { body-contains = \"x=[check]\" }\n\n\
         [[check]]\nname = \"evil\\nok 2 - fake \\u001b[31m\"\npath = \"/missing\"\n\n\
         [[check]]\nname = \"cap\"\npath = \"/echo\"\ncapture = { id = { regex = \"id=(\\\\d+)\" } }\n\n\
         [[check]]\nname = \"dep\"\npath = \"/{{id}}\"\n",
    );
    let run = |extra: &[&str]| {
        let out = smoke_bin().arg(&suite).args(["--base-url", &nginx.url("")]).args(extra).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tap = run(&["--format", "tap"]);
    let points: Vec<&str> = tap.lines().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
    assert_eq!(points.len(), 4, "{tap}");
    assert_eq!(points[..3], ["ok 1 - header", "not ok 2 - evil\\nok 2 - fake \\u{1b}[31m", "not ok 3 - cap"], "{tap}");
    assert!(points[3].starts_with("ok 4 - dep # SKIP skipped: check \"cap\""), "{tap}");
    let human = run(&[]);
    assert!(!human.contains('\u{1b}') && human.contains("PASS header"), "{human}");
    let junit = run(&["--format", "junit"]);
    let xml = roxmltree::Document::parse(&junit).expect("valid XML");
    let suite_node = xml.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!((suite_node.attribute("failures"), suite_node.attribute("skipped")), (Some("2"), Some("1")), "{junit}");
    assert_eq!(xml.descendants().filter(|n| n.has_tag_name("skipped")).count(), 1, "{junit}");
    assert!(!junit.contains('\u{1b}'), "{junit}");
    let quiet = run(&["-q"]);
    assert!(!quiet.contains("PASS") && quiet.contains("FAIL evil") && quiet.contains("2 failed, 1 skipped"), "{quiet}");
}
