//! A round of checks: probe targets (bounded concurrency), run each sample through the state
//! machine, write samples, states and incidents in one transaction, then alert on the
//! transitions. If the database cannot be written, the samples go to the spool and are
//! replayed, in time order, before the next round's.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use standby_common::exit::{self, Code};
use standby_common::notify::{Event, EventKind, Notifiers};
use standby_common::probe::lean::LeanClient;
use tokio::sync::Semaphore;

use crate::clock;
use crate::machine::{self, Health, TargetState, Transition};
use crate::maintenance::Maintenance;
use crate::store::{IncidentChange, Spool, Store, Stored};
use crate::target::{Sample, Target};

/// The time a round spends delivering alerts at most; the rest waits in the outbox.
pub const DELIVERY_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// An alert not delivered within this long (24 h) is given up, with an error in the log.
pub const OUTBOX_MAX_AGE_MS: i64 = 24 * clock::HOUR_MS;

/// The client shared by a round's (or the daemon's) HTTP probes; None if it cannot be built
/// (each probe then builds its own and reports why).
pub fn lean_client() -> Option<LeanClient> {
    let defaults = standby_common::probe::http::ClientOptions::default();
    LeanClient::new(&defaults.tls, defaults.timeout).ok()
}

/// Probe every target once, at most `concurrency` at a time.
pub async fn probe_all(targets: &[Target], concurrency: usize) -> Vec<Sample> {
    let client = lean_client();
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

/// Probe with panics caught, so that a bug in one probe becomes a failed sample of that
/// target instead of taking the round (or the daemon's loop) down with it. The probe's future
/// is boxed: the daemon keeps one loop per target, and only the few probes running at a time
/// need the room a request takes.
pub async fn probe_guarded(t: &Target, client: Option<&LeanClient>) -> Sample {
    use futures_util::FutureExt;
    let at = clock::now_ms();
    match std::panic::AssertUnwindSafe(Box::pin(t.probe(client))).catch_unwind().await {
        Ok(sample) => sample,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Sample {
                target: t.name.clone(),
                at,
                ok: false,
                latency_ms: 0.0,
                error: Some(format!("the probe failed inside the monitor: panicked: {what}")),
                interval_ms: standby_common::duration::millis(t.interval),
                power: None,
            }
        }
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
    /// `kind = "ups"`: mains, on-battery or battery-low, and the last reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power: Option<crate::power::Power>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reading: Option<standby_common::nut::Reading>,
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
    /// `-q`: print only the failing targets and a summary.
    #[serde(skip)]
    pub quiet: bool,
    /// The round could not be recorded: the results are the probes' alone (health unknown).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unrecorded: bool,
}

impl Round {
    /// The probes' results when the history could not be written: each target's answer,
    /// its health unknown (the state lives in the history).
    pub fn unrecorded(samples: &[Sample], vantage: &str) -> Round {
        let targets = samples
            .iter()
            .map(|s| TargetLine {
                target: s.target.clone(),
                ok: s.ok,
                latency_ms: s.latency_ms,
                health: Health::Unknown,
                since: clock::fmt(s.at),
                error: s.error.clone(),
                transition: None,
                maintenance: false,
                clock_step: false,
                power: None,
                reading: s.power.clone(),
            })
            .collect();
        Round {
            at: clock::fmt(clock::now_ms()),
            vantage: vantage.to_string(),
            targets,
            down: 0,
            replayed: 0,
            quiet: false,
            unrecorded: true,
        }
    }
}

/// Everything a round needs besides the samples.
pub struct Monitor {
    pub tool: &'static str,
    pub targets: std::sync::Arc<Vec<Target>>,
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
    /// An outbox delivery is running (the daemon starts one per batch).
    pub delivering: std::sync::atomic::AtomicBool,
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
        // The states of the round's targets, as remembered (kept between the daemon's rounds).
        let mut states: BTreeMap<String, TargetState> = BTreeMap::new();
        for s in samples {
            if !states.contains_key(&s.target) {
                let state = store.state(&s.target)?.unwrap_or_else(|| TargetState::new(&s.target));
                states.insert(s.target.clone(), state);
            }
        }
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
            // A heartbeat is judged here, from the pings in the history.
            let judged;
            let s = match &target.how {
                crate::target::How::Heartbeat(hb) => {
                    judged = hb.judge(s, store.last_ping(&s.target, s.at)?.as_ref(), state);
                    &judged
                }
                _ => s,
            };
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
            // Power events are alerted in maintenance windows too: a cut is never planned.
            let power_events = crate::power::apply(state, s, target);
            transitions.extend(power_events.iter().map(|t| (s.target.clone(), t.clone())));
            let tr = tr.or_else(|| power_events.last().cloned());
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
                    power: state.power.map(|p| p.power),
                    reading: s.power.clone(),
                },
            );
        }
        let touched: Vec<TargetState> = states.values().filter(|s| lines.contains_key(&s.target)).cloned().collect();
        // Alerts go into the outbox with the state change (none without a notifier).
        let alerts: &[(String, Transition)] = if self.notifiers.is_empty() { &[] } else { &transitions };
        store.save_round_with_alerts(&stored, &touched, &changes, alerts, now)?;
        if let Err(e) = store.roll_up(now - self.retention_ms) {
            tracing::warn!("roll-up of old samples failed (will retry next run): {e:#}");
        }
        let targets: Vec<TargetLine> = self.targets.iter().filter_map(|t| lines.remove(&t.name)).collect();
        let down = targets.iter().filter(|l| l.health == Health::Down).count();
        let round = Round {
            at: clock::fmt(now),
            vantage: self.vantage.clone(),
            targets,
            down,
            replayed: 0,
            quiet: false,
            unrecorded: false,
        };
        Ok((round, transitions))
    }

    /// Deliver the outbox: every alert not yet delivered (this round's and earlier rounds'
    /// that failed), oldest first, one try each, all within [`DELIVERY_BUDGET`], so a hanging
    /// webhook never holds the run for long; what is not delivered is tried again next round,
    /// until it is older than [`OUTBOX_MAX_AGE_MS`]. An alert is delivered once a notifier
    /// took it. Returns how many were delivered. Errors are logged: alerts never fail a round.
    pub async fn deliver(&self) -> usize {
        if self.notifiers.is_empty() {
            return 0;
        }
        if self.delivering.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return 0; // the daemon's previous delivery is still running; it takes these too
        }
        let delivered = self.deliver_outbox().await;
        self.delivering.store(false, std::sync::atomic::Ordering::SeqCst);
        delivered
    }

    async fn deliver_outbox(&self) -> usize {
        let now = clock::now_ms();
        let pending = match self.with_store(|store| store.pending_alerts(now - OUTBOX_MAX_AGE_MS, now)) {
            Ok((pending, gave_up)) => {
                if gave_up > 0 {
                    tracing::error!(
                        "{gave_up} alert(s) could not be delivered within {} and were given up",
                        clock::fmt_duration(OUTBOX_MAX_AGE_MS)
                    );
                }
                pending
            }
            Err(e) => {
                tracing::warn!("cannot read the alert outbox (tried again next round): {e:#}");
                return 0;
            }
        };
        let notifiers = self.notifiers.clone().with_backoff(standby_common::retry::Backoff::none());
        let mut results: Vec<(i64, bool)> = Vec::new();
        let sends = async {
            for p in &pending {
                let mut event = self.event(&p.target, &p.transition);
                if p.attempts > 0 {
                    event.message = format!("{} (alert from {}, delayed)", event.message, clock::fmt(p.created));
                }
                let ok = notifiers.send(&event).await > 0;
                results.push((p.id, ok));
            }
        };
        if tokio::time::timeout(DELIVERY_BUDGET, sends).await.is_err() {
            tracing::warn!("alerts still unsent after {DELIVERY_BUDGET:?} are tried again next round");
        }
        let now = clock::now_ms();
        let delivered = results.iter().filter(|(_, ok)| *ok).count();
        if let Err(e) =
            self.with_store(|store| results.iter().try_for_each(|(id, ok)| store.alert_attempted(*id, *ok, now)))
        {
            tracing::warn!("cannot record alert deliveries (they may be sent again): {e:#}");
        }
        delivered
    }

    /// Record a heartbeat ping for `target` (a configured `kind = "heartbeat"` target) now;
    /// the next round judges it.
    pub fn ping(&self, target: &str, ok: bool, message: Option<String>) -> anyhow::Result<crate::heartbeat::Ping> {
        let ping = crate::heartbeat::Ping { target: target.to_string(), at: clock::now_ms(), ok, message };
        self.with_store(|store| store.add_ping(&ping))?;
        Ok(ping)
    }

    /// Run `f` on the open history (opening it if needed).
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut guard = self.store.lock().map_err(|_| anyhow::anyhow!("the history connection was poisoned"))?;
        let mut store = match guard.take() {
            Some(store) => store,
            None => Store::connect(&self.location, &self.vantage)?,
        };
        let result = f(&mut store);
        if result.is_ok() {
            *guard = Some(store);
        }
        result
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
            // Whole seconds, rounded as the message's duration is.
            .with_details(serde_json::json!({ "duration_s": ((ended - started).max(0) + 500) / 1000 })),
            Transition::OnBattery { started, reading } => Event::new(
                self.tool,
                EventKind::OnBattery,
                target,
                format!("{target} is ON BATTERY since {}: {}", clock::fmt(*started), crate::power::describe(reading)),
            )
            .with_details(power_details(*started, None, reading)),
            Transition::BatteryLow { started, reading } => Event::new(
                self.tool,
                EventKind::BatteryLow,
                target,
                format!(
                    "{target} BATTERY LOW (on battery since {}): {}",
                    clock::fmt(*started),
                    crate::power::describe(reading)
                ),
            )
            .with_details(power_details(*started, None, reading)),
            Transition::PowerRestored { started, ended, reading } => Event::new(
                self.tool,
                EventKind::PowerRestored,
                target,
                format!(
                    "{target} POWER RESTORED after {} on battery (since {}): {}",
                    clock::fmt_duration(ended - started),
                    clock::fmt(*started),
                    crate::power::describe(reading)
                ),
            )
            .with_details(power_details(*started, Some(*ended), reading)),
        }
    }
}

/// The details of a power event for webhooks and `command` notifiers (in STANDBY_EVENT_JSON).
fn power_details(started: i64, ended: Option<i64>, r: &standby_common::nut::Reading) -> serde_json::Value {
    serde_json::json!({
        "status": r.status.to_string(),
        "charge": r.charge,
        "runtime_s": r.runtime_s,
        "on_battery_since": clock::fmt(started),
        "duration_s": ended.map(|e| ((e - started).max(0) + 500) / 1000),
    })
}

impl std::fmt::Display for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failing = |l: &&TargetLine| !l.ok || l.health == Health::Down || l.transition.is_some();
        for l in self.targets.iter().filter(|l| !self.quiet || failing(l)) {
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
                    Transition::OnBattery { .. } => "ON BATTERY",
                    Transition::BatteryLow { .. } => "BATTERY LOW",
                    Transition::PowerRestored { .. } => "POWER RESTORED",
                };
                write!(f, "  <- {what}")?;
            }
            if let Some(r) = &l.reading {
                let power = l.power.map(|p| p.as_str().to_uppercase()).unwrap_or_default();
                write!(f, "  {power} ({})", crate::power::describe(r))?;
            }
            if l.clock_step {
                write!(f, "  (clock stepped back: time left out of reports)")?;
            }
            if let (false, Some(e)) = (l.ok, &l.error) {
                write!(f, "\n{:<24} {}", "", crate::target::one_line(e))?;
            }
            writeln!(f)?;
        }
        if self.replayed > 0 {
            writeln!(f, "({} spooled sample(s) from earlier runs written)", self.replayed)?;
        }
        if self.quiet {
            let failed = self.targets.iter().filter(|l| !l.ok && !l.maintenance).count();
            writeln!(f, "{failed} of {} target(s) failed this round, {} DOWN", self.targets.len(), self.down)?;
        }
        if self.unrecorded {
            writeln!(f, "(not recorded: the history could not be written, see below)")?;
        }
        Ok(())
    }
}
