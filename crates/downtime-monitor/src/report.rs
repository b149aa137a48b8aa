//! Uptime reports: per target, over a period — uptime %, downtime, incidents, the longest,
//! MTTR, MTBF, a timeline (up / down / unknown / maintenance) and the decision the uptime
//! points to. Time the monitor was not running is *unknown*, not down, and is left out of
//! the uptime ratio; maintenance is left out too. `--monthly` adds one row per calendar month.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::clock::{self, HOUR_MS};
use crate::config::DecisionThresholds;
use crate::intervals::Spans;
use crate::maintenance::Maintenance;
use crate::store::{Incident, Store};

/// A decision is withheld while more than this share (%) of the period is unknown: the
/// figures describe too little of it to act on.
pub const MAX_UNKNOWN_PCT: f64 = 50.0;

/// What a stretch of time was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentKind {
    Up,
    Down,
    Unknown,
    Maintenance,
    /// A UPS carrying the load (the power band of a `kind = "ups"` target).
    OnBattery,
}

/// A stretch of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub kind: SegmentKind,
}

/// One incident in the report.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentRow {
    pub started: String,
    pub ended: Option<String>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub duration_ms: i64,
    pub cause: Option<String>,
}

/// Figures for one period.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub from: i64,
    pub to: i64,
    /// None when nothing was observed.
    pub uptime_pct: Option<f64>,
    pub downtime_ms: i64,
    pub unknown_ms: i64,
    pub maintenance_ms: i64,
    pub observed_ms: i64,
    pub incidents: usize,
    pub longest_ms: i64,
    pub mttr_ms: Option<i64>,
    pub mtbf_ms: Option<i64>,
    pub decision: Option<&'static str>,
    /// Why there is no decision although there is an uptime (too much unknown time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_withheld: Option<String>,
}

/// One calendar month of a target (`--monthly`).
#[derive(Debug, Clone, Serialize)]
pub struct MonthRow {
    pub month: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The report for one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub incident_list: Vec<IncidentRow>,
    pub timeline: Vec<Segment>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<MonthRow>,
    /// Samples in the period taken while the clock had stepped back (kept; their time is
    /// left out of the figures).
    pub clock_steps: usize,
    /// What a reader must know to trust the figures (clock steps, a provisional decision).
    pub notes: Vec<String>,
    /// `kind = "ups"` targets: the power cuts and what the battery carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<crate::report_power::PowerFigures>,
    /// `kind = "ups"` targets: the on-battery spans, drawn as a band of their own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub power_timeline: Vec<Segment>,
    /// Response times per day (p50/p95 of successful checks), when asked for (HTML).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latency: Vec<crate::report_latency::LatencyDay>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub vantage: String,
    pub thresholds: DecisionThresholds,
    /// The time zone of the monthly rows.
    pub timezone: String,
    pub targets: Vec<TargetReport>,
}

/// What one target's history looks like, as interval sets.
struct History {
    known: Spans,
    maintenance: Spans,
    down: Spans,
    incidents: Vec<Incident>,
    /// Samples taken while the clock had stepped back (kept, their time left out).
    clock_steps: usize,
}

fn history(
    store: &mut Store,
    maint: &Maintenance,
    target: &str,
    from: i64,
    to: i64,
    quorum: Option<usize>,
) -> anyhow::Result<History> {
    if let Some(q) = quorum {
        return quorum_history(store, maint, target, from, to, q);
    }
    let mut known: Vec<(i64, i64)> = Vec::new();
    // Rolled-up hours: an hour with (nearly) full coverage counts whole.
    let raw_from = store.first_raw(target)?.unwrap_or(i64::MAX).max(from);
    if raw_from > from {
        for (hour, known_ms) in store.known_hours(target, from, raw_from.min(to))? {
            let len = if known_ms >= HOUR_MS * 9 / 10 { HOUR_MS } else { known_ms };
            known.push((hour, hour + len));
        }
    }
    // Raw samples' coverage is kept as they are written: the samples themselves are not read.
    let steps = store.clock_steps(target, from, to)?;
    known.extend(store.covered(target, raw_from.min(to), to)?);
    let incidents = store.incidents(target, from, to, false)?;
    // Where only hourly rows are left, an incident is itself proof the monitor was watching:
    // this keeps downtime exact after the roll-up.
    let rolled_end = raw_from.min(to);
    known.extend(incidents.iter().map(|i| (i.started.max(from), i.ended.unwrap_or(to).min(rolled_end))));
    let known = Spans::new(known).clip(from, to.min(clock::now_ms().max(from)));
    let down = Spans::new(incidents.iter().map(|i| (i.started, i.ended.unwrap_or(to))).collect());
    let maintenance = maint.spans(target, from, to).intersect(&known);
    let down = down.intersect(&known).subtract(&maintenance);
    Ok(History { known, maintenance, down, incidents, clock_steps: steps })
}

/// Raw samples (of one vantage, oldest first): each covers until the next one if that came
/// within 1.5 intervals (jitter), else one interval; beyond is time the monitor did not see.
/// Samples taken while the clock had stepped back cover nothing: their time is not trusted.
pub(crate) fn coverage(samples: &[crate::store::Stored]) -> Vec<(i64, i64)> {
    let trusted: Vec<&crate::store::Stored> = samples.iter().filter(|s| !s.clock_step).collect();
    trusted
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let end = match trusted.get(i + 1) {
                Some(n) if n.sample.at - s.sample.at <= s.sample.interval_ms + s.sample.interval_ms / 2 => n.sample.at,
                _ => s.sample.at + s.sample.interval_ms,
            };
            (s.sample.at, end.max(s.sample.at))
        })
        .collect()
}

/// How many of `samples` in `[from, to)` were taken with the clock stepped back.
fn clock_steps(samples: &[crate::store::Stored], from: i64, to: i64) -> usize {
    samples.iter().filter(|s| s.clock_step && (from..to).contains(&s.sample.at)).count()
}

/// Where at least `quorum` of the span sets overlap.
fn at_least(sets: &[Spans], quorum: usize) -> Spans {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for set in sets {
        for &(s, e) in set.iter() {
            events.push((s, 1));
            events.push((e, -1));
        }
    }
    // At equal times the ends come first (-1 < 1): touching spans do not overlap.
    events.sort();
    let (mut count, mut open, mut spans) = (0i32, None, Vec::new());
    for (t, d) in events {
        count += d;
        match open {
            None if count >= quorum as i32 => open = Some(t),
            Some(s) if count < quorum as i32 => {
                spans.push((s, t));
                open = None;
            }
            _ => {}
        }
    }
    Spans::new(spans)
}

/// Several monitors share the history: a target is down only while at least `quorum`
/// vantages saw it down, so one monitor whose own network failed does not create an outage.
/// Time is known only while at least `quorum` vantages were watching: with fewer, neither up
/// nor down can be told, and it is *unknown* (never up). (Raw samples only: hourly roll-ups
/// are per vantage and not used here.)
fn quorum_history(
    store: &mut Store,
    maint: &Maintenance,
    target: &str,
    from: i64,
    to: i64,
    quorum: usize,
) -> anyhow::Result<History> {
    let end = to.min(clock::now_ms().max(from));
    let mut by_vantage: BTreeMap<String, Vec<crate::store::Stored>> = BTreeMap::new();
    let samples = store.samples(target, from, to, true)?;
    let steps = clock_steps(&samples, from, to);
    for s in samples {
        by_vantage.entry(s.vantage.clone()).or_default().push(s);
    }
    let seen: BTreeMap<String, Spans> =
        by_vantage.iter().map(|(v, list)| (v.clone(), Spans::new(coverage(list)).clip(from, end))).collect();
    let watched: Vec<Spans> = seen.values().cloned().collect();
    let known = at_least(&watched, quorum);
    if known.iter().next().is_none_or(|(first, _)| *first > from + HOUR_MS) {
        tracing::warn!(
            "{target}: a quorum report uses raw samples, kept for `retention`; earlier time shows as unknown"
        );
    }
    let all = store.incidents(target, from, to, true)?;
    let downs: Vec<Spans> = seen
        .iter()
        .map(|(v, watched)| {
            let mine = all.iter().filter(|i| &i.vantage == v).map(|i| (i.started, i.ended.unwrap_or(to)));
            Spans::new(mine.collect()).intersect(watched)
        })
        .collect();
    let down = at_least(&downs, quorum);
    let incidents = down
        .iter()
        .map(|&(s, e)| {
            let mut saw: Vec<&str> = all
                .iter()
                .filter(|i| i.started < e && i.ended.is_none_or(|x| x > s))
                .map(|i| i.vantage.as_str())
                .collect();
            saw.sort_unstable();
            saw.dedup();
            Incident {
                id: 0,
                target: target.to_string(),
                started: s,
                ended: (e < end).then_some(e),
                cause: Some(format!("seen down from {}", saw.join(", "))),
                vantage: String::new(),
            }
        })
        .collect();
    let maintenance = maint.spans(target, from, to).intersect(&known);
    let down = down.subtract(&maintenance);
    Ok(History { known, maintenance, down, incidents, clock_steps: steps })
}

/// How incidents are counted in a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Every incident that overlaps the period (the report as a whole).
    Overlapping,
    /// Incidents that started in the period (monthly rows, so that they add up).
    StartedIn,
}

fn figures(h: &History, from: i64, to: i64, thresholds: &DecisionThresholds, count: Count) -> Figures {
    let known = h.known.clip(from, to);
    let maintenance = h.maintenance.clip(from, to).total();
    let down = h.down.clip(from, to).total();
    let observed = known.total() - maintenance;
    let unknown = (to - from) - known.total();
    let unknown_pct = if to > from { unknown as f64 / (to - from) as f64 * 100.0 } else { 0.0 };
    let uptime_pct =
        (observed > 0).then(|| ((observed - down) as f64 / observed as f64 * 100.0 * 1000.0).round() / 1000.0);
    let in_period: Vec<&Incident> = h
        .incidents
        .iter()
        .filter(|i| match count {
            Count::Overlapping => i.started < to && i.ended.is_none_or(|e| e > from),
            Count::StartedIn => (from..to).contains(&i.started),
        })
        .collect();
    // Repair time is the whole incident; "longest" is the downtime it caused in this period.
    let repairs: Vec<i64> = in_period.iter().filter_map(|i| i.ended.map(|e| (e - i.started).max(0))).collect();
    let longest = in_period
        .iter()
        .map(|i| h.down.intersect(&Spans::new(vec![(i.started, i.ended.unwrap_or(to))])).clip(from, to).total())
        .max()
        .unwrap_or(0);
    Figures {
        from,
        to,
        uptime_pct,
        downtime_ms: down,
        unknown_ms: unknown,
        maintenance_ms: maintenance,
        observed_ms: observed,
        incidents: in_period.len(),
        longest_ms: longest,
        mttr_ms: (!repairs.is_empty()).then(|| repairs.iter().sum::<i64>() / repairs.len() as i64),
        mtbf_ms: (!in_period.is_empty()).then(|| (observed - down) / in_period.len() as i64),
        decision: uptime_pct.filter(|_| unknown_pct <= MAX_UNKNOWN_PCT).map(|u| thresholds.decide(u)),
        decision_withheld: (uptime_pct.is_some() && unknown_pct > MAX_UNKNOWN_PCT).then(|| {
            format!(
                "decision withheld: {unknown_pct:.2}% of the period is unknown (more than {MAX_UNKNOWN_PCT}%); \
                 the uptime describes only the time the monitor saw"
            )
        }),
    }
}

fn timeline(h: &History, from: i64, to: i64) -> Vec<Segment> {
    let window = Spans::new(vec![(from, to)]);
    let unknown = window.subtract(&h.known);
    let up = h.known.subtract(&h.maintenance).subtract(&h.down);
    let mut segs: Vec<Segment> = [
        (unknown, SegmentKind::Unknown),
        (h.maintenance.clone(), SegmentKind::Maintenance),
        (h.down.clone(), SegmentKind::Down),
        (up, SegmentKind::Up),
    ]
    .into_iter()
    .flat_map(|(spans, kind)| spans.iter().map(|&(start, end)| Segment { start, end, kind }).collect::<Vec<_>>())
    .collect();
    segs.sort_by_key(|s| s.start);
    segs
}

/// What a report is asked for.
#[derive(Debug, Clone)]
pub struct Scope {
    pub targets: Vec<String>,
    pub from: i64,
    pub to: i64,
    pub thresholds: DecisionThresholds,
    /// One row per calendar month too.
    pub monthly: bool,
    /// Count a target down only while this many vantages saw it down.
    pub quorum: Option<usize>,
    /// The zone of the monthly rows' calendar.
    pub zone: clock::Zone,
    /// The targets of `kind = "ups"`: their reports gain the power figures.
    pub ups: Vec<String>,
    /// Add response times per day (read from the raw samples: only the HTML report asks).
    pub latency: bool,
}

/// Build the report for the scope's targets over `[from, to)`.
pub fn build(store: &mut Store, maint: &Maintenance, scope: &Scope) -> anyhow::Result<Report> {
    let Scope { targets, from, to, thresholds, monthly, quorum, zone, ups, latency } = scope.clone();
    let mut out = Vec::new();
    let zone = &zone;
    for name in &targets {
        let h = history(store, maint, name, from, to, quorum)?;
        let months = if monthly {
            let mut rows = Vec::new();
            let mut m = zone.month_start(from);
            while m < to {
                let next = zone.next_month(m);
                rows.push(MonthRow {
                    month: zone.month_label(m),
                    figures: figures(&h, m.max(from), next.min(to), &thresholds, Count::StartedIn),
                });
                m = next;
            }
            rows
        } else {
            Vec::new()
        };
        let mut notes = Vec::new();
        if h.clock_steps > 0 {
            notes.push(format!(
                "the clock stepped back: {} sample(s) were taken with a time not after an earlier one; they are kept, their time counts as unknown",
                h.clock_steps
            ));
        }
        let power = if ups.contains(name) {
            let samples = store.samples(name, from, to, false)?;
            Some(crate::report_power::figures(&samples, from, to.min(clock::now_ms().max(from))))
        } else {
            None
        };
        let power_timeline = power
            .as_ref()
            .map(|p| {
                crate::report_power::spans(p, to)
                    .into_iter()
                    .map(|(start, end)| Segment { start, end, kind: SegmentKind::OnBattery })
                    .collect()
            })
            .unwrap_or_default();
        let latency =
            if latency { crate::report_latency::per_day(&store.latencies(name, from, to)?) } else { Vec::new() };
        out.push(TargetReport {
            latency,
            power,
            power_timeline,
            clock_steps: h.clock_steps,
            notes,
            name: name.clone(),
            figures: figures(&h, from, to, &thresholds, Count::Overlapping),
            incident_list: h
                .incidents
                .iter()
                .map(|i| IncidentRow {
                    started: clock::fmt(i.started),
                    ended: i.ended.map(clock::fmt),
                    started_ms: i.started,
                    ended_ms: i.ended,
                    duration_ms: (i.ended.unwrap_or(to.min(clock::now_ms())) - i.started).max(0),
                    cause: i.cause.clone(),
                })
                .collect(),
            timeline: timeline(&h, from, to),
            months,
        });
    }
    Ok(Report {
        from: clock::fmt(from),
        to: clock::fmt(to),
        from_ms: from,
        to_ms: to,
        vantage: match quorum {
            Some(q) => format!("quorum of {q} vantages"),
            None => store.vantage().to_string(),
        },
        thresholds,
        timezone: zone.name(),
        targets: out,
    })
}

/// An uptime ratio as the reports print it (text, HTML, SVG): `99.95%`, or `n/a` when
/// nothing was known.
pub(crate) fn pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.2}%")).unwrap_or_else(|| "n/a".into())
}

/// A duration as the reports print it, or `-` when there is none (MTTR without incidents,
/// say).
pub(crate) fn opt_dur(ms: Option<i64>) -> String {
    ms.map(clock::fmt_duration).unwrap_or_else(|| "-".into())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Uptime report {} .. {} (vantage {})", self.from, self.to, self.vantage)?;
        for t in &self.targets {
            let x = &t.figures;
            writeln!(f, "\n{}", t.name)?;
            writeln!(
                f,
                "  uptime {}  downtime {}  incidents {}  longest {}  MTTR {}  MTBF {}",
                pct(x.uptime_pct),
                clock::fmt_duration(x.downtime_ms),
                x.incidents,
                clock::fmt_duration(x.longest_ms),
                opt_dur(x.mttr_ms),
                opt_dur(x.mtbf_ms)
            )?;
            writeln!(
                f,
                "  observed {}  unknown (monitor not running) {}  maintenance {}",
                clock::fmt_duration(x.observed_ms),
                clock::fmt_duration(x.unknown_ms),
                clock::fmt_duration(x.maintenance_ms)
            )?;
            if let Some(d) = x.decision {
                writeln!(f, "  decision: {d}")?;
            }
            if let Some(w) = &x.decision_withheld {
                writeln!(f, "  {w}")?;
            }
            for n in &t.notes {
                writeln!(f, "  note: {n}")?;
            }
            if let Some(p) = &t.power {
                writeln!(f, "  {}", crate::report_power::summary(p))?;
                for c in &p.cut_list {
                    writeln!(
                        f,
                        "    cut {}  {}{}  carried {}  lowest runtime {}{}",
                        c.started,
                        clock::fmt_duration(c.duration_ms),
                        if c.ended_ms.is_none() { " (ongoing)" } else { "" },
                        clock::fmt_duration(c.carried_ms),
                        c.lowest_runtime_s
                            .map(|s| clock::fmt_duration((s * 1000.0) as i64))
                            .unwrap_or_else(|| "-".into()),
                        c.outlasted_battery.map(|w| format!("  outlasted the battery ({w})")).unwrap_or_default()
                    )?;
                }
            }
            for m in &t.months {
                writeln!(
                    f,
                    "  {}  uptime {:>8}  downtime {:>8}  incidents {:>3}  unknown {:>8}  {}",
                    m.month,
                    pct(m.figures.uptime_pct),
                    clock::fmt_duration(m.figures.downtime_ms),
                    m.figures.incidents,
                    clock::fmt_duration(m.figures.unknown_ms),
                    m.figures.decision.unwrap_or(if m.figures.decision_withheld.is_some() { "(withheld)" } else { "" })
                )?;
            }
            if !t.incident_list.is_empty() {
                writeln!(f, "  incidents:")?;
                for i in &t.incident_list {
                    writeln!(
                        f,
                        "    {} .. {}  {}  {}",
                        i.started,
                        i.ended.as_deref().unwrap_or("(ongoing)"),
                        clock::fmt_duration(i.duration_ms),
                        i.cause.as_deref().unwrap_or("")
                    )?;
                }
            }
        }
        Ok(())
    }
}
