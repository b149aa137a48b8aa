//! What a Hurl user expects, against real servers: the harness's app backend (`/echo` shows
//! what it received, `/cookie/set` and `/redirect/{n}` set cookies and redirect) and nginx
//! (static files for byte-exact asserts). Cookie jar, forms, multipart, query encoding,
//! basic auth, the newer asserts, `-vv`, and errors at the key's own line.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use smoke_test::{run_blocking, Report, RunOptions, Suite};
use standby_common::config::ConfigFile;
use standby_common::exit::{code_of, Code};
use standby_common::probe::Failure;
use standby_e2e::app::AppBackend;
use standby_e2e::nginx::{Nginx, NginxOptions};

fn suite(text: &str) -> Suite {
    Suite::parse(&ConfigFile::from_str("suite.toml", text), &BTreeMap::new()).expect("suite is valid")
}

fn run(suites: &[Suite], base: &str) -> Report {
    let opts = RunOptions { base_url: Some(base.into()), timeout: Duration::from_secs(10), ..Default::default() };
    run_blocking(suites, &opts).expect("run")
}

fn check<'r>(report: &'r Report, name: &str) -> &'r smoke_test::report::CheckResult {
    report.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}"))
}

fn assert_pass(report: &Report, name: &str) {
    let c = check(report, name);
    assert!(c.ok, "{name} should pass: {:?} {:?}", c.failures, c.body_excerpt);
}

fn assert_fail(report: &Report, name: &str, message_part: &str) {
    let c = check(report, name);
    assert!(!c.ok, "{name} should fail");
    assert!(
        c.failures.iter().any(|f| f.contains(message_part)),
        "{name}: expected a failure containing {message_part:?}, got {:?}",
        c.failures
    );
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn smoke_bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smoke-test"));
    cmd.env_remove("STANDBY_CONFIG").env("NO_COLOR", "1");
    cmd
}

#[test]
fn cookies_are_kept_per_suite_across_checks_and_redirects_unless_turned_off() {
    let app = AppBackend::start("cookies").unwrap();
    let with_jar = suite(
        r#"
[[check]]
name = "login"
method = "POST"
path = "/cookie/set?name=session&value=abc"
expect = { cookies = { session = "abc" } }

[[check]]
name = "me"
path = "/echo"
expect = { json = [{ pointer = "/headers/cookie", equals = "session=abc" }] }

[[check]]
name = "via redirect"
path = "/cookie/set?name=hop&value=1&to=/echo"
follow-redirects = true
expect = { redirects = 1, cookies = { hop = "1" }, json = [{ pointer = "/headers/cookie", matches = "(^|; )hop=1(;|$)" }] }

[[check]]
name = "logout"
method = "POST"
path = "/cookie/clear?name=session"
after = ["via redirect"]

[[check]]
name = "after logout"
path = "/echo"
expect = { json = [{ pointer = "/headers/cookie", equals = "hop=1" }] }

[[check]]
name = "wrong cookie"
path = "/cookie/set?name=session&value=other"
expect = { cookies = { session = "abc", missing = "x" } }
"#,
    );
    let without = suite(
        r#"
[defaults]
cookies = false

[[check]]
name = "login (no jar)"
method = "POST"
path = "/cookie/set?name=session&value=abc"

[[check]]
name = "me (no jar)"
path = "/echo"
expect = { json = [{ pointer = "/headers/cookie", exists = false }] }
"#,
    );
    let report = run(&[with_jar, without], &app.url(""));
    for name in ["login", "me", "via redirect", "logout", "after logout", "login (no jar)", "me (no jar)"] {
        assert_pass(&report, name);
    }
    assert_fail(&report, "wrong cookie", "expected cookie session = \"abc\", got \"other\"");
    assert_fail(&report, "wrong cookie", "expected the answer to set cookie missing");
}

/// After a deploy, the session cookie is still Secure, HttpOnly and SameSite (Hurl's
/// `cookie "session[HttpOnly]" exists`); each unmet attribute is named with what came.
#[test]
fn a_cookies_attributes_are_checked_and_each_miss_is_named() {
    let app = AppBackend::start("cookie-attrs").unwrap();
    let report = run(
        &[suite(
            r#"
[[check]]
name = "hardened"
path = "/cookie/set?name=session&value=abc&attrs=Secure%3B%20HttpOnly%3B%20SameSite%3DLax%3B%20Max-Age%3D3600"
expect = { cookies = { session = { value = "abc", secure = true, http-only = true, same-site = "lax", path = "/", max-age = 3600 } } }

[[check]]
name = "plain"
path = "/cookie/set?name=session&value=abc"
expect = { cookies = { session = { secure = true, http-only = true, same-site = "Strict" } } }

[[check]]
name = "not wanted"
path = "/cookie/set?name=tracker&value=1&attrs=SameSite%3DNone"
expect = { cookies = { tracker = { http-only = false, secure = false, same-site = "None" } } }
"#,
        )],
        &app.url(""),
    );
    assert_pass(&report, "hardened");
    assert_pass(&report, "not wanted");
    assert_fail(&report, "plain", "expected cookie session to be Secure, it is not");
    assert_fail(&report, "plain", "expected cookie session to be HttpOnly, it is not");
    assert_fail(&report, "plain", "expected cookie session SameSite=Strict, got no SameSite");
}

#[test]
fn forms_multipart_query_and_basic_auth_are_sent_encoded() {
    let app = AppBackend::start("forms").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "data.txt", b"hello file");
    std::env::set_var("SMOKE_REQ_TEST_PASSWORD", "pa:ss w0rd!");
    let token = smoke_test::suite::base64(b"ann:pa:ss w0rd!");
    let elsewhere = AppBackend::start("elsewhere").unwrap();
    let text = format!(
        r#"
[vars]
tricky = "a&b=c#d"

[[check]]
name = "form"
method = "POST"
path = "/echo"
form = {{ q = "{{{{tricky}}}}", name = "é" }}
expect = {{ json = [
  {{ pointer = "/body", equals = "name=%C3%A9&q=a%26b%3Dc%23d" }},
  {{ pointer = "/headers/content-type", equals = "application/x-www-form-urlencoded" }},
] }}

[[check]]
name = "multipart"
method = "POST"
path = "/echo"
multipart = {{ note = "hi {{{{tricky}}}}", upload = {{ file = "data.txt", content-type = "text/plain" }} }}
expect = {{ json = [
  {{ pointer = "/headers/content-type", matches = "^multipart/form-data; boundary=" }},
  {{ pointer = "/body", matches = 'name="note"\r\n\r\nhi a&b=c#d\r\n' }},
  {{ pointer = "/body", matches = 'name="upload"; filename="data.txt"\r\nContent-Type: text/plain\r\n\r\nhello file\r\n--' }},
] }}

[[check]]
name = "query"
path = "/echo?x={{{{tricky}}}}"
query = {{ q = "{{{{tricky}}}}", s = "a b/é" }}
expect = {{ json = [{{ pointer = "/query", equals = "x=a%26b%3Dc%23d&q=a%26b%3Dc%23d&s=a+b%2F%C3%A9" }}] }}

[[check]]
name = "basic auth"
path = "/echo"
basic-auth = {{ user = "ann", password-env = "SMOKE_REQ_TEST_PASSWORD" }}
headers = {{ user-agent = "mine/1" }}
expect = {{ json = [
  {{ pointer = "/headers/authorization", equals = "Basic {token}" }},
  {{ pointer = "/headers/user-agent", equals = "mine/1" }},
] }}

[[check]]
name = "auth stays at its origin"
path = "/cookie/set"
query = {{ name = "x", value = "1", to = "{other}" }}
basic-auth = {{ user = "ann", password-env = "SMOKE_REQ_TEST_PASSWORD" }}
follow-redirects = true
expect = {{ redirects = 1, url = "{other}", json = [{{ pointer = "/headers/authorization", exists = false }}] }}

[[check]]
name = "auth shown nowhere"
path = "/echo"
basic-auth = {{ user = "ann", password-env = "SMOKE_REQ_TEST_PASSWORD" }}
expect = {{ body-contains = "not there" }}
"#,
        other = elsewhere.url("/echo"),
    );
    let path = write(dir.path(), "suite.toml", text.as_bytes());
    let loaded = Suite::load(&path, &BTreeMap::new()).unwrap();
    let report = run(std::slice::from_ref(&loaded), &app.url(""));
    for name in ["form", "multipart", "query", "basic auth", "auth stays at its origin"] {
        assert_pass(&report, name);
    }
    assert_fail(&report, "auth shown nowhere", "expected body to contain");
    // The password and its Basic token reach no output, at any verbosity, in any format.
    for args in [&["-vv"][..], &["--json"], &["--format", "junit"], &["--format", "tap"]] {
        let out = smoke_bin().arg(&path).args(["--base-url", &app.url("")]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("pa:ss w0rd!") && !all.contains(&token), "{args:?} leaked the password:\n{all}");
        if args == ["-vv"] {
            // Each request and answer, as hurl --verbose shows them.
            assert!(all.contains("> POST http://127.0.0.1:"), "{all}");
            assert!(all.contains("> authorization: Basic ***"), "{all}");
            assert!(all.contains("> user-agent: standby/") && all.contains("> user-agent: mine/1"), "{all}");
            assert!(all.contains("< 200"), "{all}");
            assert!(all.contains("< content-type: application/json"), "{all}");
        }
    }
}

#[test]
fn newer_asserts_pass_and_fail_with_a_reason() {
    let app = AppBackend::start("asserts").unwrap();
    let nginx = Nginx::start(NginxOptions::default()).unwrap();
    let list = br#"{"items":[1,2,3],"name":"asserts-7","n":5}"#;
    nginx.write_file("list.json", list).unwrap();
    let sha = smoke_test::expect::sha256_hex(list);
    let text = format!(
        r#"
[[check]]
name = "json"
url = "{list_url}"
expect = {{ bytes = {len}, sha256 = "{sha}", json = [
  {{ pointer = "/items", count = 3 }},
  {{ pointer = "/name", matches = "^asserts-\\d+$" }},
  {{ pointer = "/n", not-equals = 4 }},
  {{ pointer = "/n", matches = "^5$" }},
] }}

[[check]]
name = "json bad"
url = "{list_url}"
expect = {{ bytes = 1, sha256 = "{zero}", json = [
  {{ pointer = "/items", count = 2 }},
  {{ pointer = "/name", matches = "^x" }},
  {{ pointer = "/n", not-equals = 5 }},
  {{ pointer = "/name", count = 1 }},
] }}

[[check]]
name = "redirects"
path = "/redirect/3"
follow-redirects = true
expect = {{ redirects = 3, url = "{final_url}", body-contains = "arrived" }}

[[check]]
name = "redirects bad"
path = "/redirect/2"
follow-redirects = true
expect = {{ redirects = 3, url = "http://elsewhere.invalid/" }}

[[check]]
name = "not followed"
path = "/redirect/2"
expect = {{ status = 302, redirects = 0 }}

[[check]]
name = "too many"
path = "/redirect/11"
follow-redirects = true
"#,
        list_url = nginx.url("/list.json"),
        len = list.len(),
        zero = "0".repeat(64),
        final_url = app.url("/redirect/0"),
    );
    let report = run(&[suite(&text)], &app.url(""));
    for name in ["json", "redirects", "not followed"] {
        assert_pass(&report, name);
    }
    assert_fail(&report, "json bad", &format!("expected a body of 1 bytes, got {} bytes", list.len()));
    assert_fail(&report, "json bad", &format!("expected body sha256 {}, got {sha}", "0".repeat(64)));
    assert_fail(&report, "json bad", "expected /items to have 2 items, got 3");
    assert_fail(&report, "json bad", "expected /name to match /^x/, got \"asserts-7\"");
    assert_fail(&report, "json bad", "expected /n != 5, got 5");
    assert_fail(&report, "json bad", "expected /name to be an array of 1 items");
    assert_fail(&report, "redirects bad", "expected 3 redirects, got 2");
    assert_fail(&report, "redirects bad", "expected final URL \"http://elsewhere.invalid/\"");
    let too_many = check(&report, "too many");
    assert_eq!(too_many.failure, Some(Failure::Protocol), "{:?}", too_many.failures);
    assert!(too_many.failures[0].contains("too many redirects: more than 10"), "{:?}", too_many.failures);
}

#[test]
fn errors_point_at_the_keys_own_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\nexpect = { status = 200, json = [\n  { pointer = \"/ok\", exists = true },\n  { pointer = \"/a~2b\", exists = true },\n] }\n",
            "s.toml:6:16: check \"a\": invalid JSON pointer \"/a~2b\"",
        ),
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\nmultipart = { f = { file = \"missing.bin\" } }\n",
            "s.toml:4:15: check \"a\": multipart.f: cannot read",
        ),
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\nbasic-auth = { user = \"u\", password-env = \"STANDBY_SURELY_UNSET_PW\" }\n",
            "s.toml:4:28: check \"a\": basic-auth: environment variable STANDBY_SURELY_UNSET_PW is not set",
        ),
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\n\n[[check]]\nname = \"b\"\npath = \"/\"\nafter = [\"zz\"]\n",
            "s.toml:8:11: check \"b\": after: no earlier check is named \"zz\"",
        ),
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\nform = { a = \"1\" }\nbody = \"x\"\n",
            "has more than one of `body`, `json`, `form`, `multipart`",
        ),
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\nexpect = { sha256 = \"abc\" }\n",
            "s.toml:4:12: check \"a\": expect.sha256 \"abc\": expected 64 hex digits",
        ),
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\nexpect = { cookies = { s = { httponly = true } } }\n",
            "s.toml:4:30: unknown key `httponly`: did you mean `http-only`?",
        ),
        (
            "[[check]]\nname = \"a\"\npath = \"/\"\nexpect = { cookies = { s = 1 } }\n",
            "s.toml:4:28: invalid type: integer `1`, expected a cookie value (a string) or a table of value, secure",
        ),
    ];
    for (text, expected) in cases {
        let path = write(dir.path(), "s.toml", text.as_bytes());
        let err = Suite::load(&path, &BTreeMap::new()).unwrap_err();
        assert_eq!(code_of(&err), Code::Usage, "{text}");
        let msg = format!("{err:#}");
        assert!(msg.contains(expected), "for suite\n{text}\nexpected {expected:?} in {msg:?}");
    }
}
