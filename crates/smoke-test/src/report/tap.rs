//! TAP version 13: one test point per check, a YAML block with the details of a failure.

use std::fmt::Write;

use super::{one_line, Report};

pub fn render(report: &Report) -> String {
    let mut out = format!("TAP version 13\n1..{}\n", report.total);
    for (i, c) in report.checks.iter().enumerate() {
        // A description is one line; `#` would start a directive (`# SKIP`).
        let name = one_line(&c.name.replace('\\', "\\\\")).replace('#', "\\#");
        if c.ok {
            let _ = writeln!(out, "ok {} - {name}", i + 1);
            continue;
        }
        if c.skipped {
            let why = c.failures.first().map(|f| one_line(f)).unwrap_or_default();
            let _ = writeln!(out, "ok {} - {name} # SKIP {why}", i + 1);
            continue;
        }
        let _ = writeln!(out, "not ok {} - {name}", i + 1);
        out.push_str("  ---\n");
        let _ = writeln!(out, "  url: {}", yaml(&format!("{} {}", c.method, c.url)));
        if c.line > 0 {
            let _ = writeln!(out, "  at: {}", yaml(&format!("{}:{}", c.suite, c.line)));
        }
        if let Some(s) = c.status {
            let _ = writeln!(out, "  status: {s}");
        }
        out.push_str("  failures:\n");
        for f in &c.failures {
            let _ = writeln!(out, "    - {}", yaml(f));
        }
        if let Some(b) = &c.body_excerpt {
            let _ = writeln!(out, "  body: {}", yaml(b));
        }
        out.push_str("  ...\n");
    }
    out
}

/// A YAML double-quoted scalar.
fn yaml(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}
