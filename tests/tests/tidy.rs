//! House rules that keep the documentation true: every TOML example in README.md and in the
//! module docs parses with the schema of the tool it is for, so examples never rot.

#![allow(clippy::unwrap_used)] // a panic is a failed test

use std::path::{Path, PathBuf};

use standby_common::config::ConfigFile;
use standby_common::notify::Notifiers;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The ```toml blocks of a Markdown file, or of a Rust file's `//!` docs.
fn toml_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        let line = line.strip_prefix("//! ").or_else(|| line.strip_prefix("//!")).unwrap_or(line);
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
    assert!(!blocks.is_empty(), "{} has no toml example", path.display());
    blocks
}

/// Check a config-file example: every tool section it has, and its [[notify]] list.
fn check_config(name: &str, text: &str) {
    let file = ConfigFile::from_str(name, text);
    file.section::<smoke_test::config::Config>("smoke-test").unwrap_or_else(|e| panic!("{e:#}"));
    let monitor = file
        .section::<downtime_monitor::config::Config>("downtime-monitor")
        .unwrap_or_else(|e| panic!("{e:#}"))
        .unwrap_or_default();
    downtime_monitor::target::targets(&file, &monitor).unwrap_or_else(|e| panic!("{e:#}"));
    downtime_monitor::maintenance::recurring(&file, &monitor).unwrap_or_else(|e| panic!("{e:#}"));
    Notifiers::from_config(&file).unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn readme_config_examples_parse() {
    std::env::set_var("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook");
    for block in toml_blocks(&root().join("README.md")) {
        check_config("README.md", &block);
    }
}

#[test]
fn module_doc_examples_parse() {
    for block in toml_blocks(&root().join("crates/common/src/notify.rs")) {
        std::env::set_var("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook");
        std::env::set_var("HC_PING_URL", "http://127.0.0.1:9/ping");
        std::env::set_var("NTFY_TOKEN", "t");
        let file = std::env::temp_dir().join(format!("standby-tidy-{}", std::process::id()));
        std::fs::write(&file, "http://127.0.0.1:9/hook").unwrap();
        let block = block.replace("/etc/standby/webhook.url", file.to_str().unwrap());
        check_config("notify.rs", &block);
        let _ = std::fs::remove_file(&file);
    }
    for block in toml_blocks(&root().join("crates/downtime-monitor/src/config.rs")) {
        check_config("downtime-monitor/config.rs", &block);
    }
    for block in toml_blocks(&root().join("crates/smoke-test/src/suite.rs")) {
        std::env::set_var("APP_PASSWORD", "x");
        let suite = smoke_test::Suite::parse(&ConfigFile::from_str("suite.rs", block), &Default::default());
        suite.unwrap_or_else(|e| panic!("{e:#}"));
    }
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
