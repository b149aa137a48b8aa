//! A round of checks: probe targets (bounded concurrency), run each sample through the state
//! machine, write samples, states and incidents in one transaction, then alert on the
//! transitions. If the database cannot be written, the samples go to the spool and are
//! replayed, in time order, before the next round's.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use standby_common::exit::{self, Code};
use standby_common::notify::{Event, EventKind, Notifiers};
use tokio::sync::Semaphore;

use crate::clock;
use crate::machine::{self, Health, TargetState, Transition};
use crate::maintenance::Maintenance;
use crate::store::{IncidentChange, Spool, Store, Stored};
use crate::target::{Sample, Target};

/// Probe every target once, at most `concurrency` at a time.
pub async fn probe_all(targets: &[Target], concurrency: usize) -> Vec<Sample> {
    let client = standby_common::probe::http::client(&Default::default()).ok();
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let (t, limit, client) = (t.clone(), limit.clone(), client.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            (i, probe_guarded(&t, client.as_ref()).await)
        });
    }
    let mut out: Vec<(usize, Sample)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            out.push(r);
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, s)| s).collect()
}

/// Probe in a task of its own, so that a bug in one probe becomes a failed sample of that
/// target instead of taking the round (or the daemon's loop) down with it.
pub async fn probe_guarded(t: &Target, client: Option<&reqwest::Client>) -> Sample {
    let (target, client) = (t.clone(), client.cloned());
    let at = clock::now_ms();
    match tokio::spawn(async move { target.probe(client.as_ref()).await }).await {
        Ok(sample) => sample,
        Err(e) => Sample {
            target: t.name.clone(),
            at,
            ok: false,
            latency_ms: 0.0,
            error: Some(format!("the probe failed inside the monitor: {e}")),
            interval_ms: standby_common::duration::millis(t.interval),
        },
    }
}

/// One target's line in a round's report.
#[derive(Debug, Clone, Serialize)]
pub struct TargetLine {
    pub target: String,
    pub ok: bool,
    pub latency_ms: f64,
    pub health: Health,
    pub since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    pub maintenance: bool,
    /// The clock was behind this target's last sample (see [`machine::clock_stepped`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clock_step: bool,
}

/// What a round did.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub at: String,
    pub vantage: String,
    pub targets: Vec<TargetLine>,
    pub down: usize,
    /// Samples replayed from the spool into the database this round.
    pub replayed: usize,
}

/// Everything a round needs besides the samples.
pub struct Monitor {
    pub tool: &'static str,
    pub targets: Vec<Target>,
    pub location: crate::store::Location,
    pub vantage: String,
    pub spool: Spool,
    pub notifiers: Notifiers,
    pub recurring: Vec<crate::maintenance::Recurring>,
    pub reminder_ms: Option<i64>,
    pub retention_ms: i64,
    /// The open history, kept between rounds of the daemon (dropped after an error, so the
    /// next round reconnects).
    pub store: std::sync::Mutex<Option<Store>>,
}

impl Monitor {
    /// Record `fresh` samples (plus any spooled ones), update states, alert. If the database
    /// cannot be written, the samples are spooled and the error says so (exit 4 when the
    /// store's server is unreachable, else 1).
    pub fn record(&self, fresh: Vec<Sample>) -> anyhow::Result<(Round, Vec<(String, Transition)>)> {
        let spooled = match self.spool.read() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("{e:#}; it is left in place and this round is spooled after it");
                return self.spool_round(&fresh, e);
            }
        };
        let replayed = spooled.len();
        let mut all: Vec<Sample> = spooled.into_iter().chain(fresh.iter().cloned()).collect();
        all.sort_by_key(|s| s.at);
        let result = self.write(&all);
        let (round, transitions) = match result {
            Ok(r) => r,
            Err(e) => return self.spool_round(&fresh, e),
        };
        self.spool.clear()?;
        Ok((Round { replayed, ..round }, transitions))
    }

    /// The history could not be written: keep this round's samples in the spool.
    fn spool_round(&self, fresh: &[Sample], e: anyhow::Error) -> anyhow::Result<(Round, Vec<(String, Transition)>)> {
        if let Err(se) = self.spool.append(fresh) {
            return Err(e.context(format!("and the spool failed too ({se:#}): this round's samples are lost")));
        }
        // An unreachable PostgreSQL store keeps its exit code 4; anything else is a failed run.
        let code = if exit::code_of(&e) == Code::Unavailable { Code::Unavailable } else { Code::Failed };
        Err(exit::with_code(
            code,
            e.context(format!(
                "cannot write the history; {} sample(s) kept in {} and written next run",
                fresh.len(),
                self.spool.path().display()
            )),
        ))
    }

    fn write(&self, samples: &[Sample]) -> anyhow::Result<(Round, Vec<(String, Transition)>)> {
        let mut guard = self.store.lock().map_err(|_| anyhow::anyhow!("the history connection was poisoned"))?;
        let mut store = match guard.take() {
            Some(store) => store,
            None => Store::connect(&self.location, &self.vantage)?,
        };
        let result = self.write_with(&mut store, samples);
        if result.is_ok() {
            *guard = Some(store);
        }
        result
    }

    fn write_with(&self, store: &mut Store, samples: &[Sample]) -> anyhow::Result<(Round, Vec<(String, Transition)>)> {
        let now = clock::now_ms();
        let maint = Maintenance { recurring: self.recurring.clone(), windows: store.windows(now - 7 * clock::DAY_MS)? };
        let mut states: BTreeMap<String, TargetState> =
            store.states()?.into_iter().map(|s| (s.target.clone(), s)).collect();
        let by_name: BTreeMap<&str, &Target> = self.targets.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut stored = Vec::new();
        let mut changes = Vec::new();
        let mut transitions = Vec::new();
        let mut lines: BTreeMap<String, TargetLine> = BTreeMap::new();
        for s in samples {
            let Some(target) = by_name.get(s.target.as_str()) else {
                continue;
            };
            let in_maint = maint.active(&s.target, s.at);
            let state = states.entry(s.target.clone()).or_insert_with(|| TargetState::new(&s.target));
            let clock_step = machine::clock_stepped(state, s);
            if clock_step {
                tracing::warn!(
                    "{}: the clock stepped back ({} is not after the last check at {}): the sample is kept, its time is left out of reports",
                    s.target,
                    clock::fmt(s.at),
                    clock::fmt(state.last_at)
                );
            }
            let tr = machine::apply(state, s, target, in_maint, self.reminder_ms);
            changes.extend(tr.as_ref().and_then(|t| IncidentChange::from_transition(&s.target, t)));
            stored.push(Stored { clock_step, ..Stored::new(s, in_maint) });
            if let Some(t) = &tr {
                transitions.push((s.target.clone(), t.clone()));
            }
            lines.insert(
                s.target.clone(),
                TargetLine {
                    target: s.target.clone(),
                    ok: s.ok,
                    latency_ms: s.latency_ms,
                    health: state.health,
                    since: clock::fmt(state.since),
                    error: s.error.clone(),
                    transition: tr.or_else(|| lines.get(&s.target).and_then(|l| l.transition.clone())),
                    maintenance: in_maint,
                    clock_step,
                },
            );
        }
        let touched: Vec<TargetState> = states.values().filter(|s| lines.contains_key(&s.target)).cloned().collect();
        store.save_round(&stored, &touched, &changes)?;
        if let Err(e) = store.roll_up(now - self.retention_ms) {
            tracing::warn!("roll-up of old samples failed (will retry next run): {e:#}");
        }
        let targets: Vec<TargetLine> = self.targets.iter().filter_map(|t| lines.remove(&t.name)).collect();
        let down = targets.iter().filter(|l| l.health == Health::Down).count();
        Ok((Round { at: clock::fmt(now), vantage: self.vantage.clone(), targets, down, replayed: 0 }, transitions))
    }

    /// Alert on the transitions, all at once and within a minute in all (failures are logged
    /// inside notify, never fatal), so slow webhooks cannot make a cron round overrun.
    pub async fn alert(&self, transitions: &[(String, Transition)]) -> usize {
        let mut sends = tokio::task::JoinSet::new();
        for event in transitions.iter().map(|(target, tr)| self.event(target, tr)) {
            let notifiers = self.notifiers.clone();
            sends.spawn(async move { notifiers.send(&event).await });
        }
        let mut sent = 0;
        let all = async {
            while let Some(n) = sends.join_next().await {
                sent += n.unwrap_or(0);
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(60), all).await.is_err() {
            tracing::warn!("alerts still unsent after 60s were given up");
        }
        sent
    }

    fn event(&self, target: &str, tr: &Transition) -> Event {
        match tr {
            Transition::Down { started, error } => Event::new(
                self.tool,
                EventKind::Down,
                target,
                format!("{target} is DOWN since {} (seen from {}): {error}", clock::fmt(*started), self.vantage),
            ),
            Transition::Reminder { started, error } => Event::new(
                self.tool,
                EventKind::Down,
                target,
                format!("{target} is still DOWN since {}: {error}", clock::fmt(*started)),
            ),
            Transition::Recovered { started, ended } => Event::new(
                self.tool,
                EventKind::Recovered,
                target,
                format!(
                    "{target} RECOVERED after {} (down since {})",
                    clock::fmt_duration(ended - started),
                    clock::fmt(*started)
                ),
            )
            .with_details(serde_json::json!({ "duration_s": (ended - started) / 1000 })),
        }
    }
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.targets {
            let mark = match (l.maintenance, l.ok) {
                (true, _) => "MAINT",
                (false, true) => "ok",
                (false, false) => "FAIL",
            };
            write!(
                f,
                "{:<24} {:<5} {:>8.1} ms  {} since {}",
                l.target,
                mark,
                l.latency_ms,
                l.health.as_str().to_uppercase(),
                l.since
            )?;
            if let Some(t) = &l.transition {
                let what = match t {
                    Transition::Down { .. } => "went DOWN",
                    Transition::Recovered { .. } => "RECOVERED",
                    Transition::Reminder { .. } => "still DOWN (reminder)",
                };
                write!(f, "  <- {what}")?;
            }
            if l.clock_step {
                write!(f, "  (clock stepped back: time left out of reports)")?;
            }
            if let (false, Some(e)) = (l.ok, &l.error) {
                write!(f, "\n{:<24} {e}", "")?;
            }
            writeln!(f)?;
        }
        if self.replayed > 0 {
            writeln!(f, "({} spooled sample(s) from earlier runs written)", self.replayed)?;
        }
        Ok(())
    }
}
