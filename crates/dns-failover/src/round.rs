//! One evaluation of every record: probe the control targets, the primary and the backup;
//! count the primary's consecutive failures and successes (not while this monitor is
//! isolated); read the record at the provider; decide ([`decide`], pure) and act. A switch
//! is re-read before it is written (no write when the provider already holds the wanted
//! values), read back after, noted in the state dir, and announced.

use std::time::Duration;

use serde::Serialize;
use standby_common::notify::{Event, EventKind, Notifiers};
use standby_common::probe::ProbeResult;
use standby_common::switching;
use standby_common::threshold::Streak;

use crate::config::Failback;
use crate::health::{self, Probe};
use crate::memory::{now_ms, now_rfc3339, Known, Memory, RecordMemory, SwitchNote};
use crate::provider::Providers;
use crate::record::{Record, Side};
use crate::vantage::SharedViews;
use crate::TOOL;

/// What the health checks said this round.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub primary: ProbeResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<ProbeResult>,
}

impl Health {
    /// The backup is fit to take over (no check configured counts as fit).
    pub fn backup_ok(&self) -> bool {
        self.backup.as_ref().is_none_or(|b| b.ok)
    }
}

/// What a round decides for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Decision {
    /// Nothing to do; `note` says why when it matters.
    Stay { note: Option<String> },
    /// Point the record at `to`.
    Switch { to: Side, why: String },
    /// A switch is needed but unsafe (the backup fails its own check).
    Refuse { why: String },
}

/// The decision for a record on `side` after this round's checks. `isolated`: no control
/// target answered, so the primary's failure may be ours.
pub fn decide(record: &Record, side: Side, streak: &Streak, health: &Health, isolated: bool, force: bool) -> Decision {
    if isolated {
        return Decision::Stay {
            note: Some("monitor isolated: no control target answers, so failed checks do not count".into()),
        };
    }
    let t = record.thresholds;
    match side {
        Side::Primary if streak.fails >= t.failures => {
            let why = format!(
                "the primary failed {} checks in a row: {}",
                streak.fails,
                health.primary.error.as_deref().unwrap_or("failed")
            );
            if health.backup_ok() || force {
                Decision::Switch { to: Side::Backup, why }
            } else {
                let backup = health.backup.as_ref().and_then(|b| b.error.clone()).unwrap_or_default();
                Decision::Refuse {
                    why: format!("{why}; but the backup fails its own check too ({backup}): not switching"),
                }
            }
        }
        Side::Backup if streak.oks >= t.successes => match record.failback {
            Failback::Auto => Decision::Switch {
                to: Side::Primary,
                why: format!("the primary passed {} checks in a row", streak.oks),
            },
            Failback::Manual => Decision::Stay {
                note: Some(
                    "the primary is healthy again; failback is manual: `dns-failover switch --to primary`".into(),
                ),
            },
        },
        Side::Backup if !health.primary.ok && !health.backup_ok() => {
            Decision::Refuse { why: "on the backup, and both the primary and the backup fail their checks".into() }
        }
        Side::Other => Decision::Stay {
            note: Some(
                "the provider holds neither the primary's nor the backup's values: changed by hand? not touching it"
                    .into(),
            ),
        },
        _ => Decision::Stay { note: None },
    }
}

/// One record's line in a round's report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub record: String,
    #[serde(rename = "type")]
    pub rtype: &'static str,
    /// Values at the provider (after a switch: the new ones).
    pub values: Vec<String>,
    pub side: Side,
    pub health: Health,
    pub streak: Streak,
    pub isolated: bool,
    pub decision: Decision,
    /// A switch was written (and read back).
    pub switched: bool,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    /// A line for `record` with nothing read or decided yet.
    pub fn blank(record: &Record, health: Health, streak: Streak, dry_run: bool) -> Outcome {
        Outcome {
            record: record.name.clone(),
            rtype: record.rtype.as_str(),
            values: Vec::new(),
            side: Side::Other,
            health,
            streak,
            isolated: false,
            decision: Decision::Stay { note: None },
            switched: false,
            dry_run,
            error: None,
        }
    }

    /// The switch was needed and did not happen.
    pub fn failed(&self) -> bool {
        self.error.is_some() || matches!(self.decision, Decision::Refuse { .. })
    }
}

/// How a round runs.
#[derive(Debug, Clone, Copy)]
pub struct RoundOptions {
    pub timeout: Duration,
    pub dry_run: bool,
    pub force: bool,
    /// Values read from the provider within this age are reused (watch); zero = always read.
    pub reread_after: Duration,
}

/// The key of a record in the memory.
pub fn key(record: &Record) -> String {
    format!("{} {}", record.name, record.rtype.as_str())
}

/// Probe both sides of a record concurrently.
pub async fn probe(record: &Record, timeout: Duration) -> Health {
    let backup = async {
        match &record.backup_check {
            Some(p) => Some(p.run(timeout).await),
            None => None,
        }
    };
    let (primary, backup) = tokio::join!(record.check.run(timeout), backup);
    Health { primary, backup }
}

/// What a round acts through.
pub struct World<'a> {
    pub control: &'a [Probe],
    pub providers: &'a Providers,
    pub notifiers: &'a Notifiers,
    /// Several vantages sharing their views (`store`), if configured.
    pub views: Option<&'a SharedViews>,
}

/// One round over all records.
pub async fn run(records: &[Record], world: &World<'_>, memory: &mut Memory, opts: RoundOptions) -> Vec<Outcome> {
    let (reached, _) = health::reaches_the_world(world.control, opts.timeout).await;
    let healths = futures_util::future::join_all(records.iter().map(|r| probe(r, opts.timeout))).await;
    let mut out = Vec::new();
    for (record, health) in records.iter().zip(healths) {
        let mem = memory.records.entry(key(record)).or_default();
        let outcome = evaluate(record, health, !reached, mem, world, opts).await;
        out.push(outcome);
    }
    out
}

async fn evaluate(
    record: &Record,
    health: Health,
    isolated: bool,
    mem: &mut RecordMemory,
    world: &World<'_>,
    opts: RoundOptions,
) -> Outcome {
    let (providers, notifiers) = (world.providers, world.notifiers);
    if isolated != mem.isolated {
        mem.isolated = isolated;
        if isolated {
            let event = Event::new(
                TOOL,
                EventKind::Failure,
                &record.name,
                "monitor isolated: no control target answers; not switching",
            );
            notifiers.send(&event).await;
        }
    }
    if !isolated {
        mem.streak.observe(health.primary.ok, false, record.thresholds);
    }
    let mut outcome = Outcome::blank(record, health, mem.streak, opts.dry_run);
    outcome.isolated = isolated;
    let values = match known_values(record, mem, providers, opts.reread_after).await {
        Ok(v) => v,
        Err(e) => {
            outcome.error = Some(format!("{e:#}"));
            return outcome;
        }
    };
    outcome.side = record.side_of(&values);
    outcome.values = values;
    // With several vantages, the streak that counts is the one a quorum agrees on.
    let streak = match world.views {
        None => mem.streak,
        Some(views) => match views.agree(&key(record), &mem.streak, isolated).await {
            Ok(agreed) => agreed,
            Err(e) => {
                outcome.error = Some(format!("shared views: {e:#}"));
                return outcome;
            }
        },
    };
    outcome.decision = decide(record, outcome.side, &streak, &outcome.health, isolated, opts.force);
    match outcome.decision.clone() {
        Decision::Switch { to, why } => {
            let locked = match world.views {
                None => true,
                Some(views) => views.try_lock(&key(record)).await.unwrap_or(false),
            };
            if locked {
                switch(record, to, &why, mem, providers, notifiers, opts.dry_run, &mut outcome).await;
                if let Some(views) = world.views {
                    views.unlock(&key(record)).await;
                }
            } else {
                outcome.decision = Decision::Stay { note: Some("another vantage is switching this record".into()) };
            }
        }
        Decision::Refuse { why } => {
            let event = Event::new(TOOL, EventKind::Failure, &record.name, why);
            notifiers.send(&event).await;
        }
        Decision::Stay { .. } => {}
    }
    outcome
}

/// The provider's values: from memory when read within `reread_after`, else read now.
async fn known_values(
    record: &Record,
    mem: &mut RecordMemory,
    providers: &Providers,
    reread_after: Duration,
) -> anyhow::Result<Vec<String>> {
    if let Some(known) = &mem.known {
        if now_ms() - known.read_at_ms < reread_after.as_millis() as i64 {
            return Ok(known.values.clone());
        }
    }
    let set = providers.read(record).await?;
    mem.known = Some(Known { values: set.values.clone(), read_at_ms: now_ms() });
    Ok(set.values)
}

/// Point `record` at `to`: re-read first (no write when already there), write, read back,
/// note and announce. The outcome says what happened.
#[allow(clippy::too_many_arguments)]
pub async fn switch(
    record: &Record,
    to: Side,
    why: &str,
    mem: &mut RecordMemory,
    providers: &Providers,
    notifiers: &Notifiers,
    dry_run: bool,
    outcome: &mut Outcome,
) {
    let wanted = record.values(to).to_vec();
    let fresh = match providers.read(record).await {
        Ok(set) => set.values,
        Err(e) => {
            fail(record, to, why, mem, notifiers, format!("{e:#}"), outcome).await;
            return;
        }
    };
    mem.known = Some(Known { values: fresh.clone(), read_at_ms: now_ms() });
    outcome.side = record.side_of(&fresh);
    outcome.values = fresh.clone();
    if fresh == wanted {
        outcome.decision = Decision::Stay { note: Some(format!("already on the {}", to.as_str())) };
        return;
    }
    if dry_run {
        return;
    }
    // Host-wide: no deploy or prune starts while DNS is being switched.
    let action = format!("switching DNS record {} {} to the {}", record.name, record.rtype.as_str(), to.as_str());
    let _switching = match switching::hold(TOOL, &action) {
        Ok(lock) => lock,
        Err(e) => {
            fail(record, to, why, mem, notifiers, format!("{e:#}"), outcome).await;
            return;
        }
    };
    match providers.replace(record, &wanted).await {
        Ok(set) => {
            mem.known = Some(Known { values: set.values.clone(), read_at_ms: now_ms() });
            mem.last_switch = Some(SwitchNote { at: now_rfc3339(), to, why: why.to_string(), ok: true, error: None });
            outcome.values = set.values;
            outcome.side = to;
            outcome.switched = true;
            let message = format!(
                "{} {} now points at the {} ({}): {why}",
                record.name,
                record.rtype.as_str(),
                to.as_str(),
                wanted.join(", ")
            );
            tracing::warn!("{message}");
            notifiers.send(&Event::new(TOOL, EventKind::Changed, &record.name, message)).await;
        }
        Err(e) => {
            mem.known = None;
            fail(record, to, why, mem, notifiers, format!("{e:#}"), outcome).await;
        }
    }
}

async fn fail(
    record: &Record,
    to: Side,
    why: &str,
    mem: &mut RecordMemory,
    notifiers: &Notifiers,
    error: String,
    outcome: &mut Outcome,
) {
    let error = standby_common::secret::redact(&error);
    mem.last_switch =
        Some(SwitchNote { at: now_rfc3339(), to, why: why.to_string(), ok: false, error: Some(error.clone()) });
    let message = format!("switching {} to the {} failed: {error}", record.name, to.as_str());
    tracing::error!("{message}");
    notifiers.send(&Event::new(TOOL, EventKind::Failure, &record.name, message)).await;
    outcome.error = Some(error);
}
