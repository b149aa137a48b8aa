//! `report --format status-page -o DIR`: a static status page for nginx to serve — an
//! `index.html` (each target's state now, uptime over the period, recent incidents) and one
//! SVG uptime badge per target in `badges/NAME.svg`. The page is written whole into a fresh
//! sibling directory and `DIR` is then a symlink switched to it with one rename, so a reader
//! sees the old page or the new one, never a mix; the previous version is removed after.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use standby_common::exit::{self, Code};
use standby_common::markup::escape as esc;

use crate::clock;
use crate::config::DecisionThresholds;
use crate::machine::{Health, TargetState};
use crate::report::Report;

/// The file name of a target's badge: its name with anything but `[A-Za-z0-9._-]` as `_`.
pub fn badge_file(name: &str) -> String {
    let stem: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    format!("{}.svg", stem.trim_start_matches('.'))
}

/// The badge's colour for an uptime (the decision thresholds: green above do-nothing, yellow
/// above watch, orange above UPS, red below; grey without data).
fn badge_color(uptime: Option<f64>, t: &DecisionThresholds) -> &'static str {
    match uptime {
        None => "#9f9f9f",
        Some(u) if u > t.do_nothing_above => "#2da44e",
        Some(u) if u >= t.watch_above => "#bf8700",
        Some(u) if u >= t.ups_above => "#fb8500",
        Some(_) => "#cf222e",
    }
}

/// A shields-style badge: "uptime | 99.95%".
pub fn badge(uptime: Option<f64>, thresholds: &DecisionThresholds) -> String {
    let value = uptime.map(|u| format!("{u:.2}%")).unwrap_or_else(|| "no data".into());
    let (label, lw) = ("uptime", 50);
    let vw = 10 + 7 * value.chars().count() as u32;
    let w = lw + vw;
    let color = badge_color(uptime, thresholds);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" aria-label=\"{label}: {value}\">\
<title>{label}: {value}</title><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/>\
<rect x=\"{lw}\" width=\"{vw}\" height=\"20\" fill=\"{color}\"/>\
<g fill=\"#fff\" font-family=\"Verdana,DejaVu Sans,sans-serif\" font-size=\"11\">\
<text x=\"6\" y=\"14\">{label}</text><text x=\"{vx}\" y=\"14\">{value}</text></g></svg>\n",
        vx = lw + 5,
    )
}

/// The page's files: `index.html` and `badges/*.svg`, as (relative path, content).
pub fn files(report: &Report, states: &[TargetState]) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Status</title>\n<style>\
body{{font-family:sans-serif;margin:2em auto;max-width:52em;color:#1f2328}} table{{border-collapse:collapse;width:100%}}\
td,th{{border-bottom:1px solid #d0d7de;padding:.5em;text-align:left}} .up{{color:#2da44e}} .down{{color:#cf222e}}\
.unknown{{color:#6e7781}} li{{margin:.2em 0}}</style></head><body>\n<h1>Status</h1>\n\
<p>Uptime from {} to {} (vantage {}); updated {}.</p>\n<table><tr><th>service</th><th>now</th><th>since</th><th>uptime</th><th>incidents</th></tr>\n",
        esc(&report.from),
        esc(&report.to),
        esc(&report.vantage),
        esc(&clock::fmt(clock::now_ms())),
    );
    for t in &report.targets {
        let state = states.iter().find(|s| s.target == t.name);
        let health = state.map(|s| s.health).unwrap_or(Health::Unknown);
        let since = state.filter(|s| s.since > 0).map(|s| clock::fmt(s.since)).unwrap_or_default();
        let file = badge_file(&t.name);
        out.push((Path::new("badges").join(&file), badge(t.figures.uptime_pct, &report.thresholds)));
        let _ = writeln!(
            h,
            "<tr><td>{name}</td><td class=\"{class}\">{state}</td><td>{since}</td>\
<td><img src=\"badges/{file}\" alt=\"uptime {pct}\"></td><td>{incidents}</td></tr>",
            name = esc(&t.name),
            class = health.as_str(),
            state = health.as_str().to_uppercase(),
            since = esc(&since),
            file = esc(&file),
            pct = t.figures.uptime_pct.map(|u| format!("{u:.2}%")).unwrap_or_else(|| "unknown".into()),
            incidents = t.figures.incidents,
        );
    }
    h.push_str("</table>\n<h2>Recent incidents</h2>\n<ul>\n");
    let mut incidents: Vec<(&str, &crate::report::IncidentRow)> =
        report.targets.iter().flat_map(|t| t.incident_list.iter().map(move |i| (t.name.as_str(), i))).collect();
    incidents.sort_by_key(|(_, i)| std::cmp::Reverse(i.started_ms));
    if incidents.is_empty() {
        h.push_str("<li>none in this period</li>\n");
    }
    for (name, i) in incidents.iter().take(20) {
        let until = i.ended.as_deref().map(|e| format!("to {}", esc(e))).unwrap_or_else(|| "ongoing".into());
        let _ = writeln!(
            h,
            "<li><b>{}</b> down from {} {until} ({})</li>",
            esc(name),
            esc(&i.started),
            clock::fmt_duration(i.duration_ms)
        );
    }
    h.push_str("</ul>\n</body></html>\n");
    out.push((PathBuf::from("index.html"), h));
    out
}

/// Write `files` as the directory `dir`: into a fresh sibling `.NAME-<stamp>`, then `dir`
/// becomes (or is switched, by one rename, to be) a symlink to it; the old version is removed.
/// A `dir` that exists as a real directory or a file is refused (exit 2), never overwritten.
pub fn write(dir: &Path, files: &[(PathBuf, String)]) -> anyhow::Result<()> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| exit::error(Code::Usage, format!("-o {}: not a directory name", dir.display())))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let previous = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => std::fs::read_link(dir).ok(),
        Ok(_) => {
            return Err(exit::error(
                Code::Usage,
                format!(
                    "-o {}: exists and is not a status page written by downtime-monitor (a symlink); remove it or choose another path",
                    dir.display()
                ),
            ))
        }
        Err(_) => None,
    };
    let stamp = format!("{}-{}", clock::now_ms(), std::process::id());
    let version = format!(".{name}-{stamp}");
    let fresh = parent.join(&version);
    let written = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(fresh.join("badges"))?;
        for (path, content) in files {
            standby_common::state::write_atomic(&fresh.join(path), content.as_bytes())?;
        }
        let link = parent.join(format!(".{name}-{stamp}.link"));
        std::os::unix::fs::symlink(&version, &link)?;
        std::fs::rename(&link, dir)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(e.context(format!("cannot write the status page {}", dir.display())));
    }
    if let Some(old) = previous {
        let old = if old.is_absolute() { old } else { parent.join(old) };
        let ours = old.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!(".{name}-")));
        if ours && old != fresh {
            std::fs::remove_dir_all(&old).with_context(|| format!("cannot remove the old page {}", old.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badge_files_are_safe_names_and_badges_are_coloured_by_the_thresholds() {
        assert_eq!(badge_file("vf server/../x"), "vf_server_.._x.svg");
        assert_eq!(badge_file("..hidden"), "hidden.svg");
        let t = DecisionThresholds { do_nothing_above: 95.0, watch_above: 85.0, ups_above: 80.0 };
        assert!(badge(Some(99.5), &t).contains("#2da44e") && badge(Some(99.5), &t).contains("99.50%"));
        assert!(badge(Some(50.0), &t).contains("#cf222e"));
        assert!(badge(None, &t).contains("no data"));
    }
}
