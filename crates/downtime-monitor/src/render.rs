//! HTML and SVG reports: a timeline per target (up / down / unknown / maintenance) drawn with
//! plotters, and for HTML the figures, monthly rows and incident tables around it. Outages and
//! maintenance are drawn at least [`MIN_PX`] wide, on top of the rest, so a 5-minute outage
//! stays visible on a 30-day timeline; axis ticks fall on round times (see [`ticks`]).

use std::fmt::Write;

use plotters::prelude::*;

use standby_common::markup::escape as esc;

use crate::clock;
use crate::report::{opt_dur, pct, Report, Segment, SegmentKind};

const WIDTH: u32 = 1000;
const ROW: u32 = 110;
/// The narrowest an outage or a maintenance window is drawn, in pixels.
pub const MIN_PX: i64 = 3;
/// Axis labels' font size as given to plotters, whose SVG writes it 1/1.24 as large: 14
/// comes out as 11.3 px, readable.
const LABEL_PX: u32 = 14;
/// At most this many ticks on an axis.
const MAX_TICKS: i64 = 10;

/// Ticks on round times in `[from, to]` (UTC): the smallest step from one minute to a month
/// that gives at most [`MAX_TICKS`]; days start at midnight, weeks on Monday, months on the 1st.
pub fn ticks(from: i64, to: i64) -> Vec<i64> {
    const MIN: i64 = 60_000;
    let steps = [
        MIN,
        2 * MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        clock::HOUR_MS,
        2 * clock::HOUR_MS,
        3 * clock::HOUR_MS,
        6 * clock::HOUR_MS,
        12 * clock::HOUR_MS,
        clock::DAY_MS,
        2 * clock::DAY_MS,
        7 * clock::DAY_MS,
    ];
    let span = (to - from).max(1);
    match steps.iter().find(|&&step| span / step < MAX_TICKS) {
        Some(&step) => {
            // Weeks start on Monday: 1970-01-05 was one.
            let origin = if step == 7 * clock::DAY_MS { 4 * clock::DAY_MS } else { 0 };
            let first = origin + (from - origin + step - 1).div_euclid(step) * step;
            (0..).map(|i| first + i * step).take_while(|t| *t <= to).collect()
        }
        None => {
            // Months, every n-th so that there are at most MAX_TICKS.
            let months = span / (30 * clock::DAY_MS);
            let every = (months / MAX_TICKS + 1) as usize;
            let mut m = clock::month_start(from);
            if m < from {
                m = clock::next_month(m);
            }
            let mut out = Vec::new();
            while m <= to {
                out.push(m);
                m = clock::next_month(m);
            }
            out.into_iter().step_by(every).collect()
        }
    }
}

/// A tick's label: `HH:MM` within a day (the date `MM-DD` at midnight), `MM-DD` for days and
/// weeks, `YYYY-MM` for months; in UTC, like every time in the reports.
pub fn tick_label(ms: i64, step: i64) -> String {
    let text = clock::fmt(ms); // 2026-11-30T15:30:00Z
    if step >= 28 * clock::DAY_MS {
        text[..7].to_string()
    } else if step >= clock::DAY_MS || ms.rem_euclid(clock::DAY_MS) == 0 {
        text[5..10].to_string()
    } else {
        text[11..16].to_string()
    }
}

/// Segments as drawn: outages and maintenance at least `min_ms` wide (within `[from, to]`),
/// listed after the rest so they are drawn on top.
fn drawn(segments: &[Segment], from: i64, to: i64, min_ms: i64) -> Vec<Segment> {
    let widen = |s: &Segment| {
        if s.end - s.start >= min_ms {
            return s.clone();
        }
        let start = ((s.start + s.end) / 2 - min_ms / 2).clamp(from, (to - min_ms).max(from));
        Segment { start, end: (start + min_ms).min(to), kind: s.kind }
    };
    let background = segments.iter().filter(|s| matches!(s.kind, SegmentKind::Up | SegmentKind::Unknown)).cloned();
    let on_top = [SegmentKind::Maintenance, SegmentKind::Down]
        .into_iter()
        .flat_map(|k| segments.iter().filter(move |s| s.kind == k).map(widen));
    background.chain(on_top).collect()
}

fn color(kind: SegmentKind) -> RGBColor {
    match kind {
        SegmentKind::Up => RGBColor(46, 160, 67),
        SegmentKind::Down => RGBColor(207, 34, 46),
        SegmentKind::Unknown => RGBColor(175, 184, 193),
        SegmentKind::Maintenance => RGBColor(84, 174, 255),
        SegmentKind::OnBattery => RGBColor(191, 135, 0),
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
            ("on battery (UPS)", SegmentKind::OnBattery),
        ] {
            legend.draw(&Rectangle::new([(x, 10), (x + 14, 24)], color(kind).filled())).map_err(plot_err)?;
            legend.draw(&Text::new(label, (x + 20, 10), ("sans-serif", 14))).map_err(plot_err)?;
            x += 40 + 8 * label.len() as i32;
        }
        let areas = body.split_evenly((rows, 1));
        let (from, to) = (report.from_ms, report.to_ms.max(report.from_ms + 1));
        let ticks = ticks(from, to);
        let step = match ticks[..] {
            [a, b, ..] => b - a,
            _ => to - from,
        };
        let min_ms = ((to - from) * MIN_PX / i64::from(WIDTH - 16)).max(1);
        for (area, t) in areas.iter().zip(&report.targets) {
            let uptime = pct(t.figures.uptime_pct);
            let caption = format!("{} — uptime {uptime}, {} incident(s)", t.name, t.figures.incidents);
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(24)
                .build_cartesian_2d((from..to).with_key_points(ticks.clone()), 0f64..1f64)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .disable_y_axis()
                .x_label_style(("sans-serif", LABEL_PX))
                .x_label_formatter(&|ms| tick_label(*ms, step))
                .draw()
                .map_err(plot_err)?;
            chart
                .draw_series(
                    drawn(&t.timeline, from, to, min_ms)
                        .into_iter()
                        .map(|s| Rectangle::new([(s.start, 0.1), (s.end, 0.9)], color(s.kind).filled())),
                )
                .map_err(plot_err)?;
            // A UPS's on-battery spans: a band of their own above the health bar, at least
            // the minimum width so that a short cut is visible.
            let band: Vec<Segment> = t
                .power_timeline
                .iter()
                .map(|s| {
                    let start = s.start.clamp(from, (to - min_ms).max(from));
                    Segment { start, end: s.end.max(start + min_ms).min(to), kind: s.kind }
                })
                .collect();
            chart
                .draw_series(
                    band.into_iter().map(|s| Rectangle::new([(s.start, 0.92), (s.end, 1.0)], color(s.kind).filled())),
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
            esc(f.decision.or(f.decision_withheld.as_ref().map(|_| "withheld: too much unknown time")).unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
    power_table(&mut h, report);
    latency_table(&mut h, report);
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
                    esc(m
                        .figures
                        .decision
                        .or(m.figures.decision_withheld.as_ref().map(|_| "(withheld)"))
                        .unwrap_or(""))
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

/// Response times: p50/p95 per target per day (successful checks).
fn latency_table(h: &mut String, report: &Report) {
    for t in report.targets.iter().filter(|t| !t.latency.is_empty()) {
        let _ = writeln!(
            h,
            "<h2>{} response times</h2>\n<p>successful checks, per day (UTC)</p>\n<table><tr><th>day</th><th>checks</th><th>p50</th><th>p95</th></tr>",
            esc(&t.name)
        );
        for d in &t.latency {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1} ms</td><td>{:.1} ms</td></tr>",
                esc(&d.day),
                d.samples,
                d.p50_ms,
                d.p95_ms
            );
        }
        h.push_str("</table>\n");
    }
}

/// The UPS targets' power figures (hours on battery, cuts, the longest, the lowest runtime,
/// cuts that outlasted the battery) and their cuts.
fn power_table(h: &mut String, report: &Report) {
    let ups: Vec<_> = report.targets.iter().filter_map(|t| t.power.as_ref().map(|p| (t, p))).collect();
    if ups.is_empty() {
        return;
    }
    h.push_str("<h2>Power (UPS)</h2>\n<table><tr><th>target</th><th>on battery</th><th>hours</th><th>cuts</th><th>longest cut</th><th>lowest runtime left</th><th>cuts that outlasted the battery</th></tr>\n");
    for (t, p) in &ups {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"down\">{}</td></tr>",
            esc(&t.name),
            clock::fmt_duration(p.on_battery_ms),
            p.on_battery_hours,
            p.cuts,
            clock::fmt_duration(p.longest_cut_ms),
            p.lowest_runtime_s.map(|s| clock::fmt_duration((s * 1000.0) as i64)).unwrap_or_else(|| "-".into()),
            p.cuts_outlasted_battery
        );
    }
    h.push_str("</table>\n");
    for (t, p) in &ups {
        if p.cut_list.is_empty() {
            continue;
        }
        let _ = writeln!(
            h,
            "<h2>{} power cuts</h2>\n<table><tr><th>started</th><th>duration</th><th>carried</th><th>lowest runtime</th><th>outlasted the battery</th></tr>",
            esc(&t.name)
        );
        for c in &p.cut_list {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.started),
                clock::fmt_duration(c.duration_ms),
                if c.ended_ms.is_none() { " (ongoing)" } else { "" },
                clock::fmt_duration(c.carried_ms),
                c.lowest_runtime_s.map(|s| clock::fmt_duration((s * 1000.0) as i64)).unwrap_or_else(|| "-".into()),
                c.outlasted_battery.map(|w| format!("yes ({w})")).unwrap_or_else(|| "no".into())
            );
        }
        h.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{days_from_civil, DAY_MS, HOUR_MS};

    #[test]
    fn ticks_fall_on_round_times() {
        let day = days_from_civil(2026, 11, 30) * DAY_MS;
        // 15:31:40 .. 17:31:40: every 15 minutes from 15:45.
        let t = ticks(day + 15 * HOUR_MS + 31 * 60_000 + 40_000, day + 17 * HOUR_MS + 31 * 60_000 + 40_000);
        assert_eq!(t[0], day + 15 * HOUR_MS + 45 * 60_000);
        assert_eq!(tick_label(t[0], t[1] - t[0]), "15:45");
        assert!(t.len() <= 10 && t.windows(2).all(|w| w[1] - w[0] == 15 * 60_000), "{t:?}");
        // 30 days: Mondays at midnight (2026-11-02 was a Monday).
        let t = ticks(day - 30 * DAY_MS, day);
        assert_eq!(t[0], days_from_civil(2026, 11, 2) * DAY_MS);
        assert_eq!(tick_label(t[0], 7 * DAY_MS), "11-02");
        assert!(t.iter().all(|ms| clock::weekday(*ms) == 0 && ms % DAY_MS == 0), "{t:?}");
        // A year: months.
        let t = ticks(day - 365 * DAY_MS, day);
        assert!(t.len() <= 10 && t.iter().all(|ms| clock::month_start(*ms) == *ms), "{t:?}");
        assert_eq!(tick_label(t[0], t[1] - t[0]).len(), 7);
    }

    #[test]
    fn short_outages_are_drawn_at_least_the_minimum_width_on_top() {
        let seg = |start, end, kind| Segment { start, end, kind };
        let out = drawn(
            &[seg(0, 500, SegmentKind::Up), seg(500, 501, SegmentKind::Down), seg(501, 1000, SegmentKind::Up)],
            0,
            1000,
            10,
        );
        let last = out.last().unwrap();
        assert_eq!((last.kind, last.end - last.start), (SegmentKind::Down, 10));
        let edge = drawn(&[seg(999, 1000, SegmentKind::Down)], 0, 1000, 10);
        assert_eq!((edge[0].start, edge[0].end), (990, 1000), "kept inside the period");
    }
}
