//! House rules that keep the documentation true: every TOML example — README.md,
//! `examples/*.toml` and the `//!` docs of every module — parses, each tool's section with
//! that tool's own `config::Config` (and downtime-monitor's targets and windows validated
//! further), the `[[notify]]` list too, and smoke-test suites as suites. Examples never rot.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::path::{Path, PathBuf};

use standby_common::config::{ConfigFile, SECTIONS};
use standby_common::notify::Notifiers;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The ```toml blocks of a Markdown file, or of a Rust file's `//!` docs.
fn toml_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let rust = path.extension().is_some_and(|e| e == "rs");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        let line = match line.strip_prefix("//!") {
            Some(doc) => doc.strip_prefix(' ').unwrap_or(doc),
            None if rust => continue,
            None => line,
        };
        match (&mut current, line.trim()) {
            (None, "```toml") => current = Some(Vec::new()),
            (Some(lines), "```") => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), _) => lines.push(line.to_string()),
            _ => {}
        }
    }
    blocks
}

/// Parse one tool's section with its own type; an absent section is fine.
fn section<T: serde::de::DeserializeOwned>(file: &ConfigFile, name: &'static str) -> anyhow::Result<()> {
    file.section::<T>(name).map(drop)
}

fn downtime_monitor_section(file: &ConfigFile) -> anyhow::Result<()> {
    let monitor = file.section::<downtime_monitor::config::Config>("downtime-monitor")?.unwrap_or_default();
    downtime_monitor::target::targets(file, &monitor)?;
    downtime_monitor::maintenance::recurring(file, &monitor)?;
    Ok(())
}

type Check = fn(&ConfigFile) -> anyhow::Result<()>;

/// Every section of the config file and how to check it.
const CHECKS: &[(&str, Check)] = &[
    ("backup-sync", |f| section::<backup_sync::config::Config>(f, "backup-sync")),
    ("dns-failover", |f| section::<dns_failover::config::Config>(f, "dns-failover")),
    ("replica-promote", |f| section::<replica_promote::config::Config>(f, "replica-promote")),
    ("blue-green-deploy", |f| section::<blue_green_deploy::config::Config>(f, "blue-green-deploy")),
    ("smoke-test", |f| section::<smoke_test::config::Config>(f, "smoke-test")),
    ("downtime-monitor", downtime_monitor_section),
    ("notify", |f| Notifiers::from_config(f).map(drop)),
];

/// Values the examples name in the environment or in files.
fn example_secrets() -> PathBuf {
    std::env::set_var("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook");
    std::env::set_var("HC_PING_URL", "http://127.0.0.1:9/ping");
    std::env::set_var("NTFY_TOKEN", "t");
    std::env::set_var("APP_PASSWORD", "x");
    std::env::set_var("SMOKE_PASSWORD", "x");
    for var in ["SMTP_PASSWORD", "PD_ROUTING_KEY", "TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN", "TWILIO_BASIC_AUTH"] {
        std::env::set_var(var, "x");
    }
    std::env::set_var("DISCORD_WEBHOOK_URL", "http://127.0.0.1:9/hook");
    std::env::set_var("TEAMS_WEBHOOK_URL", "http://127.0.0.1:9/hook");
    // One file per call: tests in threads of one process must not remove each other's.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let file = std::env::temp_dir().join(format!("standby-tidy-{}-{n}", std::process::id()));
    std::fs::write(&file, "http://127.0.0.1:9/hook").unwrap();
    file
}

/// Check a config-file example: every section it may have, each with its own schema.
fn check_config(name: &str, text: &str) {
    let secret_file = example_secrets();
    let text = text.replace("/etc/standby/webhook.url", secret_file.to_str().unwrap());
    let file = ConfigFile::from_str(name, text);
    for (section, check) in CHECKS {
        check(&file).unwrap_or_else(|e| panic!("{name}: [{section}]: {e:#}"));
    }
    let _ = std::fs::remove_file(&secret_file);
}

/// A smoke-test suite example.
fn check_suite(name: &str, text: &str) {
    let _ = std::fs::remove_file(example_secrets());
    let suite = smoke_test::Suite::parse(&ConfigFile::from_str(name, text), &Default::default());
    suite.unwrap_or_else(|e| panic!("{name}: {e:#}"));
}

/// A smoke-test suite rather than a config file: its own sections (`[[check]]`, `[vars]`).
fn is_suite(text: &str) -> bool {
    text.lines().any(|l| matches!(l.trim(), "[[check]]" | "[vars]" | "[defaults]"))
}

fn check_example(name: &str, text: &str) {
    if is_suite(text) {
        check_suite(name, text);
    } else {
        check_config(name, text);
    }
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_config_section_is_checked() {
    let checked: Vec<&str> = CHECKS.iter().map(|(s, _)| *s).collect();
    for section in SECTIONS {
        assert!(checked.contains(section), "tidy checks no [{section}] section: add it to CHECKS");
    }
}

#[test]
fn readme_config_examples_parse() {
    let blocks = toml_blocks(&root().join("README.md"));
    assert!(!blocks.is_empty(), "README.md has no toml example");
    for block in blocks {
        check_example("README.md", &block);
    }
}

#[test]
fn example_files_parse() {
    let mut seen = 0;
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.strip_prefix(root()).unwrap().display().to_string();
            check_example(&name, &std::fs::read_to_string(&path).unwrap());
            seen += 1;
        }
    }
    assert!(seen >= 2, "examples/ should hold the config and the suite example");
}

#[test]
fn module_doc_examples_parse() {
    let mut files = Vec::new();
    for dir in ["crates", "tests/src", "xtask/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    files.sort();
    let mut seen = 0;
    for path in files {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        for block in toml_blocks(&path) {
            check_example(&name, &block);
            seen += 1;
        }
    }
    // notify.rs, downtime-monitor's config.rs and smoke-test's suite.rs at least.
    assert!(seen >= 3, "only {seen} toml examples in the module docs");
}

#[test]
fn readme_keeps_the_exit_code_table() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for line in [
        "| 0 | done / healthy |",
        "| 2 | usage or configuration error",
        "| 3 | another run holds the lock",
        "| 4 | a required external program or server is missing",
    ] {
        assert!(readme.contains(line), "README's exit-code table lacks {line:?}");
    }
}
