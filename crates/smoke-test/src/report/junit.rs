//! JUnit XML, as GitLab, Jenkins and GitHub test reporters read it: one `<testsuite>` per
//! suite file, one `<testcase>` per check, a `<failure>` with a one-line message and the
//! details (every unmet expectation, the URL, a body excerpt) as its text.

use std::fmt::Write;

use standby_common::markup::escape;

use super::{one_line, CheckResult, Report};

pub fn render(report: &Report) -> String {
    let mut suites: Vec<(&str, Vec<&CheckResult>)> = Vec::new();
    for c in &report.checks {
        match suites.iter_mut().find(|(name, _)| *name == c.suite) {
            Some((_, list)) => list.push(c),
            None => suites.push((&c.suite, vec![c])),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"smoke-test\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{:.3}\">",
        report.total,
        report.failed,
        report.duration_ms / 1000.0
    );
    for (name, checks) in suites {
        let failures = checks.iter().filter(|c| !c.ok && !c.skipped).count();
        let skipped = checks.iter().filter(|c| c.skipped).count();
        let time: f64 = checks.iter().map(|c| c.latency_ms).sum::<f64>() / 1000.0;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
            escape(&one_line(name)),
            checks.len()
        );
        for c in checks {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                escape(&one_line(&c.name)),
                escape(&one_line(name)),
                c.latency_ms / 1000.0
            );
            if c.ok {
                out.push_str("/>\n");
                continue;
            }
            if c.skipped {
                let why = c.failures.first().map(|f| one_line(f)).unwrap_or_default();
                let _ = write!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", escape(&why));
                continue;
            }
            let message = c.failures.first().map(|f| one_line(f)).unwrap_or_else(|| "failed".into());
            let mut details = format!("{} {}\n", c.method, one_line(&c.url));
            if c.line > 0 {
                let _ = writeln!(details, "at {}:{}", c.suite, c.line);
            }
            for f in &c.failures {
                let _ = writeln!(details, "- {}", one_line(f));
            }
            if let Some(b) = &c.body_excerpt {
                let _ = writeln!(details, "body: {}", one_line(b));
            }
            let kind = c.failure.map(|f| f.to_string()).unwrap_or_else(|| "failed".into());
            let _ = write!(
                out,
                ">\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>\n",
                escape(&message),
                escape(&details)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
