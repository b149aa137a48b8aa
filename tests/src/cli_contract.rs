//! The contract every standby binary keeps, checked against the real binary: `--help` with
//! examples, `--version`, a config with a syntax error exits 2 naming file:line:col, an
//! unknown key exits 2 naming the key, the repository's example config is accepted,
//! `--check-config` works as a user runs it (also with `-q`), and [`settings`]: every key of
//! the tool's section is a flag and an env var with the documented precedence.

use std::path::Path;
use std::process::{Command, Output};

use standby_common::config::ConfigFile;
use standby_common::settings::{self, Section};

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

    // What a user runs: the human form, and -q (silent, but never hiding an error).
    let out = run(bin, &["--check-config", "--config", &example.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{tool}: --check-config: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("[{tool}]")), "{tool}: prints its section");
    let out = run(bin, &["--check-config", "-q", "--config", &example.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0), "{tool}: --check-config -q: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "{tool}: -q prints nothing when all is well");
    let out = run(bin, &["--check-config", "-q", "--config", &unknown]);
    assert_eq!(out.status.code(), Some(2), "{tool}: -q keeps the exit code of a bad config");
    assert!(text(&out.stderr).contains("no-such-key-here"), "{tool}: -q still prints the error");
}

/// Values tried for a key, as (flag/env text, TOML literal); the first two that both clap and
/// the section's serde accept are used. A tool passes its own for keys of other shapes.
const CANDIDATES: &[(&str, &str)] = &[
    ("2", "2"),
    ("3", "3"),
    ("7s", "\"7s\""),
    ("9s", "\"9s\""),
    ("0.25", "0.25"),
    ("0.75", "0.75"),
    ("tcp://127.0.0.1:9", "[\"tcp://127.0.0.1:9\"]"),
    ("tcp://127.0.0.1:10", "[\"tcp://127.0.0.1:10\"]"),
];

fn toml_literal(text: &str) -> String {
    match text {
        "true" | "false" => text.to_string(),
        _ => format!("{text:?}"),
    }
}

/// Two distinct accepted values of a key, as (flag text, TOML literal).
fn two_values<S: Section>(tool: &'static str, arg: &clap::Arg, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let key = settings::key_of(arg.get_id().as_str());
    let possible: Vec<(String, String)> =
        arg.get_possible_values().iter().map(|v| (v.get_name().to_string(), toml_literal(v.get_name()))).collect();
    let all = possible.into_iter().chain(extra.iter().chain(CANDIDATES).map(|(f, t)| (f.to_string(), t.to_string())));
    let accepted = |(flag, literal): &(String, String)| {
        let clap_ok = clap::Command::new("probe")
            .no_binary_name(true)
            .arg(arg.clone().required(false))
            .try_get_matches_from([format!("--{}={flag}", arg.get_long().unwrap_or_default())])
            .is_ok();
        let file = ConfigFile::from_str("probe.toml", format!("[{tool}]\n{key} = {literal}\n"));
        clap_ok && file.section::<S>(tool).is_ok()
    };
    let mut picked: Vec<(String, String)> = Vec::new();
    for candidate in all.filter(accepted) {
        if !picked.iter().any(|p| p.0 == candidate.0) {
            picked.push(candidate);
        }
        if picked.len() == 2 {
            break;
        }
    }
    assert_eq!(picked.len(), 2, "{tool}: no two sample values for key `{key}`: pass some in `extra`");
    picked
}

/// Every key of the tool's section is a flag (`--key`) and an env var
/// (`STANDBY_<TOOL>_<KEY>`), with the documented precedence: flag, then env, then file, then
/// default — proven through the real binary's `--check-config --json`. Keys that are neither
/// must be lists of tables, named as file-only in `--help`.
pub fn settings<C: clap::CommandFactory, S: Section>(bin: &str, tool: &'static str, extra: &[(&str, &str)]) {
    let cmd = settings::command::<C, S>(tool);
    let flags = settings::flag_fields::<S>();
    let defaults = serde_json::to_value(S::default()).expect("serializes");
    let keys: Vec<String> = defaults.as_object().expect("a table").keys().cloned().collect();
    let help = text(&run(bin, &["--help"]).stdout);
    for key in &keys {
        if flags.iter().any(|f| settings::key_of(f) == *key) {
            continue;
        }
        let named = match &defaults[key] {
            serde_json::Value::Array(_) => format!("[[{tool}.{key}]]"),
            serde_json::Value::Object(_) => format!("[{tool}.{key}]"),
            _ => {
                panic!("{tool}: key `{key}` has no flag and env var (only tables and lists of tables may be file-only)")
            }
        };
        assert!(help.contains(&named), "{tool}: --help names `{named}` as file only");
    }

    let mut a = Vec::new(); // (key, flag text, toml literal) for value A
    let mut b = Vec::new();
    for field in &flags {
        let arg = cmd.get_arguments().find(|x| x.get_id() == field.as_str()).expect("arg");
        let key = settings::key_of(field);
        assert_eq!(arg.get_long(), Some(key.as_str()), "{tool}: the flag of `{key}` is --{key}");
        let env = settings::env_var(tool, &key);
        assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env.as_str()), "{tool}: env var of `{key}`");
        let values = two_values::<S>(tool, arg, extra);
        a.push((key.clone(), values[0].0.clone(), values[0].1.clone()));
        b.push((key, values[1].0.clone(), values[1].1.clone()));
    }
    if a.is_empty() {
        return;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let file_of = |name: &str, vals: &[(String, String, String)]| {
        let body: String = vals.iter().map(|(k, _, lit)| format!("{k} = {lit}\n")).collect();
        let p = dir.path().join(name);
        std::fs::write(&p, format!("[{tool}]\n{body}")).expect("write");
        p.to_string_lossy().into_owned()
    };
    let file_a = file_of("a.toml", &a);
    let file_b = file_of("b.toml", &b);
    let empty = file_of("empty.toml", &[]);
    let envs = |vals: &[(String, String, String)]| -> Vec<(String, String)> {
        vals.iter().map(|(k, f, _)| (settings::env_var(tool, k), f.clone())).collect()
    };
    let flags_of = |vals: &[(String, String, String)]| -> Vec<String> {
        vals.iter().map(|(k, f, _)| format!("--{k}={f}")).collect()
    };
    let effective = |config: &str, env: Vec<(String, String)>, flags: Vec<String>| -> serde_json::Value {
        let mut command = Command::new(bin);
        command.args(["--check-config", "--json", "--config", config]).args(&flags).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("STANDBY_") {
                command.env_remove(k);
            }
        }
        command.envs(env);
        let out = command.output().expect("runs");
        assert_eq!(out.status.code(), Some(0), "{tool} {flags:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("--json prints JSON")
    };
    let from_a = effective(&file_a, vec![], vec![]);
    let from_b = effective(&file_b, vec![], vec![]);
    let defaults_run = effective(&empty, vec![], vec![]);
    let env_over_file = effective(&file_a, envs(&b), vec![]);
    let flag_over_env = effective(&file_b, envs(&b), flags_of(&a));
    let env_only = effective(&empty, envs(&b), vec![]);
    let flag_only = effective(&empty, vec![], flags_of(&b));
    for (key, _, _) in &a {
        let value = |doc: &serde_json::Value| doc["settings"][key].clone();
        let origin = |doc: &serde_json::Value| doc["origins"][key]["from"].as_str().unwrap_or_default().to_string();
        assert_ne!(value(&from_a), value(&from_b), "{tool}: `{key}` read from the file");
        assert_eq!(origin(&from_a), "file", "{tool}: `{key}` origin in the file");
        assert_eq!(origin(&defaults_run), "default", "{tool}: `{key}` origin when unset");
        assert_eq!(value(&env_over_file), value(&from_b), "{tool}: env beats the file for `{key}`");
        assert_eq!(origin(&env_over_file), "env", "{tool}: `{key}`");
        assert_eq!(value(&flag_over_env), value(&from_a), "{tool}: the flag beats env for `{key}`");
        assert_eq!(origin(&flag_over_env), "flag", "{tool}: `{key}`");
        assert_eq!(value(&env_only), value(&from_b), "{tool}: env alone sets `{key}`");
        assert_eq!(value(&flag_only), value(&from_b), "{tool}: the flag alone sets `{key}`");
    }
}
