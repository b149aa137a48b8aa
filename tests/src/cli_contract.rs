//! The contract every standby binary keeps, checked against the real binary: `--help` with
//! examples, `--version`, a config with a syntax error exits 2 naming file:line:col, an
//! unknown key exits 2 naming the key, the repository's example config is accepted.

use std::path::Path;
use std::process::{Command, Output};

/// Run `bin` with `args` and no inherited config.
pub fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("STANDBY_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// Check the shared contract for the binary `bin` of tool `tool`.
pub fn check(bin: &str, tool: &str) {
    let help = run(bin, &["--help"]);
    assert_eq!(help.status.code(), Some(0), "{tool} --help");
    let help = text(&help.stdout);
    assert!(
        help.contains("Examples:") && help.contains(&format!("  {tool} ")),
        "{tool} --help shows examples:\n{help}"
    );
    for flag in ["--config", "--json", "--verbose", "--quiet", "--state-dir", "--check-config"] {
        assert!(help.contains(flag), "{tool} --help lists {flag}");
    }

    let version = run(bin, &["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(text(&version.stdout).starts_with(&format!("{tool} ")), "{tool} --version");

    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, body: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).expect("write config");
        p.to_string_lossy().into_owned()
    };
    let syntax = write("syntax.toml", format!("[{tool}]\n\n[{tool}.x\n"));
    let out = run(bin, &["--check-config", "--config", &syntax]);
    assert_eq!(out.status.code(), Some(2), "{tool}: syntax error exits 2");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{syntax}:3:")), "{tool}: names file:line:col: {err}");
    assert_eq!(text(&out.stdout), "", "{tool}: nothing on stdout for a bad config");

    let unknown = write("unknown.toml", format!("[{tool}]\nno-such-key-here = 1\n"));
    let out = run(bin, &["--check-config", "--config", &unknown]);
    assert_eq!(out.status.code(), Some(2), "{tool}: unknown key exits 2");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{unknown}:2:1")) && err.contains("`no-such-key-here`"), "{tool}: {err}");

    let missing = dir.path().join("absent.toml");
    let out = run(bin, &["--check-config", "--config", &missing.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2), "{tool}: a missing --config file exits 2");

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/standby.toml");
    let out = run(bin, &["--check-config", "--json", "--config", &example.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{tool}: examples/standby.toml is valid: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(json["tool"], tool);
}
