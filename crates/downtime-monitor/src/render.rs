//! HTML and SVG reports: a timeline per target (up / down / unknown / maintenance) drawn with
//! plotters, and for HTML the figures, monthly rows and incident tables around it.

use std::fmt::Write;

use plotters::prelude::*;

use standby_common::markup::escape as esc;

use crate::clock;
use crate::report::{opt_dur, pct, Report, SegmentKind};

const WIDTH: u32 = 1000;
const ROW: u32 = 110;

fn color(kind: SegmentKind) -> RGBColor {
    match kind {
        SegmentKind::Up => RGBColor(46, 160, 67),
        SegmentKind::Down => RGBColor(207, 34, 46),
        SegmentKind::Unknown => RGBColor(175, 184, 193),
        SegmentKind::Maintenance => RGBColor(84, 174, 255),
    }
}

/// The timelines as one SVG document.
pub fn svg(report: &Report) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let rows = report.targets.len().max(1);
        let root = SVGBackend::with_string(&mut out, (WIDTH, ROW * rows as u32 + 30)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (legend, body) = root.split_vertically(30);
        let mut x = 10;
        for (label, kind) in [
            ("up", SegmentKind::Up),
            ("down", SegmentKind::Down),
            ("unknown (monitor not running)", SegmentKind::Unknown),
            ("maintenance", SegmentKind::Maintenance),
        ] {
            legend.draw(&Rectangle::new([(x, 10), (x + 14, 24)], color(kind).filled())).map_err(plot_err)?;
            legend.draw(&Text::new(label, (x + 20, 10), ("sans-serif", 14))).map_err(plot_err)?;
            x += 40 + 8 * label.len() as i32;
        }
        let areas = body.split_evenly((rows, 1));
        let (from, to) = (report.from_ms, report.to_ms.max(report.from_ms + 1));
        for (area, t) in areas.iter().zip(&report.targets) {
            let uptime = pct(t.figures.uptime_pct);
            let caption = format!("{} — uptime {uptime}, {} incident(s)", t.name, t.figures.incidents);
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(24)
                .build_cartesian_2d(from..to, 0f64..1f64)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .disable_y_axis()
                .x_labels(6)
                .x_label_style(("sans-serif", 12))
                .x_label_formatter(&|ms| clock::fmt(*ms).chars().take(16).collect::<String>().replace('T', " "))
                .draw()
                .map_err(plot_err)?;
            chart
                .draw_series(
                    t.timeline.iter().map(|s| Rectangle::new([(s.start, 0.1), (s.end, 0.9)], color(s.kind).filled())),
                )
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(out)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the timeline failed: {e:?}")
}

/// A self-contained HTML page.
pub fn html(report: &Report) -> anyhow::Result<String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Uptime report</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#1f2328}} table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
         td,th{{border:1px solid #d0d7de;padding:.3em .6em;text-align:right}} th{{background:#f6f8fa}}\
         td:first-child,th:first-child{{text-align:left}} .down{{color:#cf222e}}</style></head><body>\n\
         <h1>Uptime report</h1>\n<p>{} .. {} &middot; vantage {}</p>\n",
        esc(&report.from),
        esc(&report.to),
        esc(&report.vantage)
    );
    h.push_str(&svg(report)?);
    h.push_str("\n<h2>Summary</h2>\n<table><tr><th>target</th><th>uptime</th><th>downtime</th><th>incidents</th><th>longest</th><th>MTTR</th><th>MTBF</th><th>unknown</th><th>maintenance</th><th>decision</th></tr>\n");
    for t in &report.targets {
        let f = &t.figures;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.name),
            pct(f.uptime_pct),
            clock::fmt_duration(f.downtime_ms),
            f.incidents,
            clock::fmt_duration(f.longest_ms),
            opt_dur(f.mttr_ms),
            opt_dur(f.mtbf_ms),
            clock::fmt_duration(f.unknown_ms),
            clock::fmt_duration(f.maintenance_ms),
            esc(f.decision.unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
    for t in &report.targets {
        if !t.months.is_empty() {
            let _ = writeln!(h, "<h2>{} by month</h2>\n<table><tr><th>month</th><th>uptime</th><th>downtime</th><th>incidents</th><th>unknown</th><th>decision</th></tr>", esc(&t.name));
            for m in &t.months {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&m.month),
                    pct(m.figures.uptime_pct),
                    clock::fmt_duration(m.figures.downtime_ms),
                    m.figures.incidents,
                    clock::fmt_duration(m.figures.unknown_ms),
                    esc(m.figures.decision.unwrap_or(""))
                );
            }
            h.push_str("</table>\n");
        }
        if !t.incident_list.is_empty() {
            let _ = writeln!(
                h,
                "<h2>{} incidents</h2>\n<table><tr><th>started</th><th>ended</th><th>duration</th><th>cause</th></tr>",
                esc(&t.name)
            );
            for i in &t.incident_list {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td class=\"down\">{}</td><td>{}</td></tr>",
                    esc(&i.started),
                    esc(i.ended.as_deref().unwrap_or("ongoing")),
                    clock::fmt_duration(i.duration_ms),
                    esc(i.cause.as_deref().unwrap_or(""))
                );
            }
            h.push_str("</table>\n");
        }
    }
    h.push_str("</body></html>\n");
    Ok(h)
}
