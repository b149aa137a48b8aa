//! The history: SQLite (bundled) in WAL mode, so a `check` from cron and a `report` can run
//! at the same time. Raw samples older than the retention are rolled up into per-hour rows;
//! incidents are kept exactly, so reports stay exact about outages. When the database cannot
//! be written (locked, corrupt, disk full), a round's samples go to a spool file next to it
//! and are written first on the next run: nothing is lost.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::clock::HOUR_MS;
use crate::machine::{TargetState, Transition};
use crate::target::Sample;

mod db;

pub use db::{Db, Dialect, Val};

/// The tables, in SQLite's types ([`schema`] derives PostgreSQL's).
const SCHEMA_SQLITE: &str = "
CREATE TABLE IF NOT EXISTS samples (
    target TEXT NOT NULL, vantage TEXT NOT NULL, at INTEGER NOT NULL, ok INTEGER NOT NULL,
    latency_ms REAL NOT NULL, error TEXT, interval_ms INTEGER NOT NULL,
    maintenance INTEGER NOT NULL DEFAULT 0, clock_step INTEGER NOT NULL DEFAULT 0, power TEXT);
CREATE INDEX IF NOT EXISTS samples_by_target ON samples (target, at);
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (at);
CREATE INDEX IF NOT EXISTS samples_clock_steps ON samples (target, at) WHERE clock_step = 1;
CREATE TABLE IF NOT EXISTS covered (
    target TEXT NOT NULL, vantage TEXT NOT NULL, start INTEGER NOT NULL, end_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL, last_interval INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS covered_by_target ON covered (target, vantage, end_at);
CREATE TABLE IF NOT EXISTS hourly (
    target TEXT NOT NULL, vantage TEXT NOT NULL, hour INTEGER NOT NULL,
    samples INTEGER NOT NULL, failures INTEGER NOT NULL, known_ms INTEGER NOT NULL,
    latency_sum REAL NOT NULL, PRIMARY KEY (target, vantage, hour));
CREATE INDEX IF NOT EXISTS hourly_known ON hourly (target, vantage, hour, known_ms);
CREATE TABLE IF NOT EXISTS states (
    target TEXT NOT NULL, vantage TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (target, vantage));
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, vantage TEXT NOT NULL,
    started INTEGER NOT NULL, ended INTEGER, cause TEXT);
CREATE INDEX IF NOT EXISTS incidents_by_target ON incidents (target, started);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, vantage TEXT NOT NULL, created INTEGER NOT NULL,
    transition TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, delivered INTEGER, gave_up INTEGER);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (vantage, delivered, gave_up);
CREATE TABLE IF NOT EXISTS pings (
    target TEXT NOT NULL, at INTEGER NOT NULL, ok INTEGER NOT NULL, message TEXT);
CREATE INDEX IF NOT EXISTS pings_by_target ON pings (target, at);
CREATE TABLE IF NOT EXISTS maintenance (
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, start INTEGER NOT NULL, end_at INTEGER NOT NULL,
    reason TEXT NOT NULL);
";

/// The same schema in PostgreSQL's types.
fn schema(dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => SCHEMA_SQLITE.to_string(),
        Dialect::Postgres => SCHEMA_SQLITE
            .replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
            .replace("INTEGER", "BIGINT")
            .replace("REAL", "DOUBLE PRECISION"),
    }
}

/// Columns added after the first release, for databases created before them: (table,
/// column, definition in SQLite's types).
const ADDED_COLUMNS: &[(&str, &str, &str)] =
    &[("samples", "clock_step", "INTEGER NOT NULL DEFAULT 0"), ("samples", "power", "TEXT")];

/// Where the history is kept.
#[derive(Debug, Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres {
        conninfo: String,
        password: Option<standby_common::secret::Secret>,
        /// An extra CA to trust for the server's certificate (TLS is verified).
        ca_file: Option<PathBuf>,
    },
}

impl Location {
    /// For messages: the file, or the PostgreSQL host/db without credentials.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres { conninfo, .. } => match standby_common::pg::ConnectOptions::parse(conninfo) {
                Ok(c) => format!("PostgreSQL {}/{}", c.server(), c.dbname()),
                Err(_) => "PostgreSQL".into(),
            },
        }
    }
}

/// A sample as stored, with whether it fell in a maintenance window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stored {
    #[serde(flatten)]
    pub sample: Sample,
    pub maintenance: bool,
    /// Taken while the clock was behind an earlier sample of the target (it stepped back):
    /// kept, but its time is not trusted, so reports leave it out.
    pub clock_step: bool,
    /// The monitor that took it (filled in when read back).
    pub vantage: String,
}

impl Stored {
    pub fn new(s: &Sample, maintenance: bool) -> Stored {
        Stored { sample: s.clone(), maintenance, clock_step: false, vantage: String::new() }
    }
}

/// An incident as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Incident {
    pub id: i64,
    pub target: String,
    pub started: i64,
    pub ended: Option<i64>,
    pub cause: Option<String>,
    pub vantage: String,
}

/// An alert in the outbox, not yet delivered.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub target: String,
    pub created: i64,
    pub transition: Transition,
    pub attempts: i64,
}

/// A maintenance window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Window {
    pub id: i64,
    pub target: String,
    pub start: i64,
    pub end: i64,
    pub reason: String,
}

/// A covered span as kept: where it starts and ends, and its last sample (when and at what
/// interval), which the next sample continues if it comes within 1.5 intervals.
#[derive(Debug, Clone, Copy)]
struct Covered {
    start: i64,
    end: i64,
    last_at: i64,
    last_interval: i64,
}

impl Covered {
    fn first(at: i64, interval: i64) -> Covered {
        Covered { start: at, end: at + interval.max(0), last_at: at, last_interval: interval }
    }

    /// This span continued by a sample at `at`, or None if that sample starts a new one.
    fn follow(self, at: i64, interval: i64) -> Option<Covered> {
        (at - self.last_at <= self.last_interval + self.last_interval / 2).then(|| Covered {
            start: self.start,
            // The previous sample now covers until this one; this one, one interval.
            end: at + interval.max(0),
            last_at: at,
            last_interval: interval,
        })
    }
}

/// An hourly roll-up row.
#[derive(Debug, Clone)]
pub struct Hour {
    pub hour: i64,
    pub samples: i64,
    pub failures: i64,
    pub known_ms: i64,
}

/// Incident changes made during a round.
#[derive(Debug, Clone)]
pub enum IncidentChange {
    Open {
        target: String,
        started: i64,
        cause: String,
    },
    Close {
        target: String,
        ended: i64,
    },
    /// A finished incident from imported history.
    Imported {
        target: String,
        started: i64,
        ended: i64,
    },
}

impl IncidentChange {
    /// What a state-machine transition of `target` changes in the incident table: DOWN opens
    /// an incident, RECOVERED closes it, a reminder changes nothing.
    pub fn from_transition(target: &str, transition: &Transition) -> Option<IncidentChange> {
        match transition {
            Transition::Down { started, error } => {
                Some(IncidentChange::Open { target: target.to_string(), started: *started, cause: error.clone() })
            }
            Transition::Recovered { ended, .. } => {
                Some(IncidentChange::Close { target: target.to_string(), ended: *ended })
            }
            Transition::Reminder { .. }
            | Transition::OnBattery { .. }
            | Transition::BatteryLow { .. }
            | Transition::PowerRestored { .. } => None,
        }
    }
}

/// The monitor's database.
pub struct Store {
    db: Db,
    vantage: String,
    cache: Cache,
}

/// What a long-lived store (the daemon's) remembers between rounds, so that a round reads
/// neither every target's state nor each target's last covered span back from the database:
/// filled as they are read, changed only by a committed transaction. This process is the
/// only writer of its vantage's states (the run lock); a covered row changed behind its back
/// (an `import`) is noticed by an update that finds nothing, and read again.
#[derive(Default)]
struct Cache {
    /// Every state of this vantage, once read.
    states: Option<std::collections::HashMap<String, TargetState>>,
    /// The last covered span of a target (None: it has none).
    covered: std::collections::HashMap<String, Option<Covered>>,
    /// Written in the open transaction: applied to the above at COMMIT, dropped at ROLLBACK.
    pending_states: Vec<TargetState>,
    pending_covered: Vec<(String, Covered)>,
    /// The roll-up cutoff (a whole hour) last done: nothing new to roll before the next hour.
    rolled_up_to: Option<i64>,
}

/// How long pings are kept (the last one is all a judgement needs; the rest is for people).
pub const PING_KEEP_MS: i64 = 90 * crate::clock::DAY_MS;

const SAMPLE_COLUMNS: &str = "at, ok, latency_ms, error, interval_ms, maintenance, vantage, clock_step, power";

impl Store {
    /// Open (and create) a SQLite database.
    pub fn open(path: &Path, vantage: &str) -> anyhow::Result<Store> {
        Self::connect(&Location::Sqlite(path.to_path_buf()), vantage)
    }

    /// Open (and create the schema of) the history at `location`.
    pub fn connect(location: &Location, vantage: &str) -> anyhow::Result<Store> {
        let mut db = match location {
            Location::Sqlite(path) => Db::sqlite(path)?,
            Location::Postgres { conninfo, password, ca_file } => {
                Db::postgres(conninfo, password.as_ref(), ca_file.as_deref())?
            }
        };
        db.batch(&schema(db.dialect()))
            .and_then(|_| add_columns(&mut db))
            .with_context(|| format!("the history in {} is unusable", location.describe()))?;
        let mut store = Store { db, vantage: vantage.to_string(), cache: Cache::default() };
        store.backfill_covered().with_context(|| format!("the history in {} is unusable", location.describe()))?;
        Ok(store)
    }

    pub fn vantage(&self) -> &str {
        &self.vantage
    }

    /// The remembered state of every target seen from this vantage.
    pub fn states(&mut self) -> anyhow::Result<Vec<TargetState>> {
        let rows =
            self.db.rows("SELECT json FROM states WHERE vantage = ? ORDER BY target", &[(&self.vantage).into()])?;
        rows.iter().map(|r| serde_json::from_str(&r[0].text()).context("corrupt state row")).collect()
    }

    /// The remembered state of `target` from this vantage (all states are read once, then
    /// kept: see [`Cache`]).
    pub fn state(&mut self, target: &str) -> anyhow::Result<Option<TargetState>> {
        if self.cache.states.is_none() {
            let all = self.states()?;
            self.cache.states = Some(all.into_iter().map(|s| (s.target.clone(), s)).collect());
        }
        Ok(self.cache.states.as_ref().and_then(|m| m.get(target).cloned()))
    }

    /// Run `f` in a transaction: COMMIT if it succeeds (and keep what it wrote in the cache),
    /// else ROLLBACK and return its error.
    fn transaction<T>(&mut self, f: impl FnOnce(&mut Store) -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.db.batch("BEGIN")?;
        let result = f(self).and_then(|v| self.db.batch("COMMIT").map(|_| v));
        let (states, covered) =
            (std::mem::take(&mut self.cache.pending_states), std::mem::take(&mut self.cache.pending_covered));
        match result {
            Ok(v) => {
                if let Some(known) = self.cache.states.as_mut() {
                    known.extend(states.into_iter().map(|s| (s.target.clone(), s)));
                }
                self.cache.covered.extend(covered.into_iter().map(|(t, c)| (t, Some(c))));
                Ok(v)
            }
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                // What the covered rows are now is not known for sure: read them again.
                self.cache.covered.clear();
                Err(e)
            }
        }
    }

    /// Write a round in one transaction: samples, new states, incident changes.
    pub fn save_round(
        &mut self,
        samples: &[Stored],
        states: &[TargetState],
        incidents: &[IncidentChange],
    ) -> anyhow::Result<()> {
        self.save_round_with_alerts(samples, states, incidents, &[], 0)
    }

    /// [`Store::save_round`], and the round's alerts into the outbox (created at `now`) in
    /// the same transaction: a state change is never recorded without its alert.
    pub fn save_round_with_alerts(
        &mut self,
        samples: &[Stored],
        states: &[TargetState],
        incidents: &[IncidentChange],
        alerts: &[(String, Transition)],
        now: i64,
    ) -> anyhow::Result<()> {
        self.transaction(|store| {
            store.write_round(samples, states, incidents)?;
            for (target, tr) in alerts {
                store.db.exec(
                    "INSERT INTO outbox (target, vantage, created, transition) VALUES (?, ?, ?, ?)",
                    &[target.into(), (&store.vantage).into(), now.into(), Val::Text(serde_json::to_string(tr)?)],
                )?;
            }
            Ok(())
        })
    }

    fn write_round(
        &mut self,
        samples: &[Stored],
        states: &[TargetState],
        incidents: &[IncidentChange],
    ) -> anyhow::Result<()> {
        let v: Val = (&self.vantage).into();
        for Stored { sample: s, maintenance, clock_step, .. } in samples {
            self.db.exec(
                "INSERT INTO samples (target, vantage, at, ok, latency_ms, error, interval_ms, maintenance, clock_step, power) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[(&s.target).into(), v.clone(), s.at.into(), s.ok.into(), s.latency_ms.into(), s.error.as_ref().into(), s.interval_ms.into(), (*maintenance).into(), (*clock_step).into(), power_json(s.power.as_ref())?.as_ref().into()],
            )?;
        }
        self.extend_covered(samples)?;
        for s in states {
            self.db.exec(
                "INSERT INTO states (target, vantage, json) VALUES (?, ?, ?) ON CONFLICT (target, vantage) DO UPDATE SET json = excluded.json",
                &[(&s.target).into(), v.clone(), Val::Text(serde_json::to_string(s)?)],
            )?;
        }
        self.cache.pending_states.extend(states.iter().cloned());
        for change in incidents {
            match change {
                IncidentChange::Open { target, started, cause } => {
                    self.db.exec(
                        "INSERT INTO incidents (target, vantage, started, ended, cause) VALUES (?, ?, ?, NULL, ?)",
                        &[target.into(), v.clone(), (*started).into(), cause.into()],
                    )?;
                }
                IncidentChange::Close { target, ended } => {
                    self.db.exec(
                        "UPDATE incidents SET ended = ? WHERE target = ? AND vantage = ? AND ended IS NULL",
                        &[(*ended).into(), target.into(), v.clone()],
                    )?;
                }
                IncidentChange::Imported { target, started, ended } => {
                    self.db.exec(
                        "INSERT INTO incidents (target, vantage, started, ended, cause) VALUES (?, ?, ?, ?, 'imported')",
                        &[target.into(), v.clone(), (*started).into(), (*ended).into()],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Extend the covered spans of this vantage with a round's samples (see [`Store::covered`]).
    fn extend_covered(&mut self, samples: &[Stored]) -> anyhow::Result<()> {
        let mut by_target: std::collections::HashMap<&str, Vec<(i64, i64)>> = std::collections::HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        for s in samples.iter().filter(|s| !s.clock_step) {
            let list = by_target.entry(&s.sample.target).or_insert_with(|| {
                order.push(&s.sample.target);
                Vec::new()
            });
            list.push((s.sample.at, s.sample.interval_ms));
        }
        for target in order {
            let list = &by_target[target];
            if !self.extend_covered_of(target, list)? {
                // Older than what is covered already (a late import), or changed by another
                // process: count it again from the samples.
                self.rebuild_covered(target)?;
            }
        }
        Ok(())
    }

    /// The last covered span of `target`: from the cache, else read.
    fn last_covered(&mut self, target: &str) -> anyhow::Result<Option<Covered>> {
        if let Some(known) = self.cache.covered.get(target) {
            return Ok(*known);
        }
        let last = self.db.rows(
            "SELECT start, end_at, last_at, last_interval FROM covered WHERE target = ? AND vantage = ? ORDER BY last_at DESC LIMIT 1",
            &[target.into(), (&self.vantage).into()],
        )?;
        let row = last.first().map(|r| Covered {
            start: r[0].int(),
            end: r[1].int(),
            last_at: r[2].int(),
            last_interval: r[3].int(),
        });
        self.cache.covered.insert(target.to_string(), row);
        Ok(row)
    }

    /// Continue `target`'s covered spans with `list` (its samples in time order); false when
    /// they cannot simply be continued (see [`Store::extend_covered`]), with nothing written.
    fn extend_covered_of(&mut self, target: &str, list: &[(i64, i64)]) -> anyhow::Result<bool> {
        let v: Val = (&self.vantage).into();
        let old = self.last_covered(target)?;
        if old.is_some_and(|r| list.iter().any(|(at, _)| *at <= r.last_at)) {
            return Ok(false);
        }
        let mut row = old;
        let mut new_rows = Vec::new();
        for &(at, interval) in list {
            row = Some(match row {
                Some(r) => match r.follow(at, interval) {
                    Some(r) => r,
                    None => {
                        new_rows.push(r);
                        Covered::first(at, interval)
                    }
                },
                None => Covered::first(at, interval),
            });
        }
        let Some(last) = row else { return Ok(true) };
        new_rows.push(last);
        for (i, r) in new_rows.iter().enumerate() {
            match old.filter(|_| i == 0) {
                Some(o) => {
                    let n = self.db.exec(
                        "UPDATE covered SET end_at = ?, last_at = ?, last_interval = ? WHERE target = ? AND vantage = ? AND last_at = ?",
                        &[r.end.into(), r.last_at.into(), r.last_interval.into(), target.into(), v.clone(), o.last_at.into()],
                    )?;
                    if n == 0 {
                        self.cache.covered.remove(target);
                        return Ok(false);
                    }
                }
                None => {
                    self.db.exec(
                        "INSERT INTO covered (target, vantage, start, end_at, last_at, last_interval) VALUES (?, ?, ?, ?, ?, ?)",
                        &[target.into(), v.clone(), r.start.into(), r.end.into(), r.last_at.into(), r.last_interval.into()],
                    )?;
                }
            }
        }
        self.cache.pending_covered.push((target.to_string(), last));
        Ok(true)
    }

    /// Recount the covered spans of `target` (this vantage) from its raw samples.
    fn rebuild_covered(&mut self, target: &str) -> anyhow::Result<()> {
        self.cache.covered.remove(target);
        self.cache.pending_covered.retain(|(t, _)| t != target);
        let v: Val = (&self.vantage).into();
        self.db.exec("DELETE FROM covered WHERE target = ? AND vantage = ?", &[target.into(), v.clone()])?;
        let rows = self.db.rows(
            "SELECT at, interval_ms FROM samples WHERE target = ? AND vantage = ? AND clock_step = 0 ORDER BY at",
            &[target.into(), v.clone()],
        )?;
        let mut spans: Vec<Covered> = Vec::new();
        for r in rows {
            let (at, interval) = (r[0].int(), r[1].int());
            match spans.last_mut() {
                Some(last) => match last.follow(at, interval) {
                    Some(c) => *last = c,
                    None => spans.push(Covered::first(at, interval)),
                },
                None => spans.push(Covered::first(at, interval)),
            }
        }
        for r in spans {
            self.db.exec(
                "INSERT INTO covered (target, vantage, start, end_at, last_at, last_interval) VALUES (?, ?, ?, ?, ?, ?)",
                &[target.into(), v.clone(), r.start.into(), r.end.into(), r.last_at.into(), r.last_interval.into()],
            )?;
        }
        Ok(())
    }

    /// The time this vantage's raw samples of `target` cover in `[from, to)`, as merged spans
    /// (each sample covers until the next if that came within 1.5 intervals, else one
    /// interval; samples taken with the clock stepped back cover nothing). Kept as the
    /// samples are written, so that a report need not read them.
    pub fn covered(&mut self, target: &str, from: i64, to: i64) -> anyhow::Result<Vec<(i64, i64)>> {
        let rows = self.db.rows(
            "SELECT start, end_at FROM covered WHERE target = ? AND vantage = ? AND end_at > ? AND start < ? ORDER BY start",
            &[target.into(), (&self.vantage).into(), from.into(), to.into()],
        )?;
        Ok(rows.iter().map(|r| (r[0].int().max(from), r[1].int())).collect())
    }

    /// How many samples of `target` (this vantage) in `[from, to)` were taken with the clock
    /// stepped back.
    pub fn clock_steps(&mut self, target: &str, from: i64, to: i64) -> anyhow::Result<usize> {
        let rows = self.db.rows(
            "SELECT count(*) FROM samples WHERE target = ? AND vantage = ? AND at >= ? AND at < ? AND clock_step = 1",
            &[target.into(), (&self.vantage).into(), from.into(), to.into()],
        )?;
        Ok(rows.first().map(|r| r[0].int() as usize).unwrap_or(0))
    }

    /// Count the covered spans of every target from the samples, for a database written
    /// before they were kept.
    fn backfill_covered(&mut self) -> anyhow::Result<()> {
        let has = |db: &mut Db, sql: &str| -> anyhow::Result<bool> { Ok(!db.rows(sql, &[])?.is_empty()) };
        if has(&mut self.db, "SELECT 1 FROM covered LIMIT 1")?
            || !has(&mut self.db, "SELECT 1 FROM samples WHERE clock_step = 0 LIMIT 1")?
        {
            return Ok(());
        }
        let pairs = self.db.rows("SELECT DISTINCT target, vantage FROM samples WHERE clock_step = 0", &[])?;
        let mine = self.vantage.clone();
        let result = self.transaction(|store| {
            pairs.iter().try_for_each(|r| {
                store.vantage = r[1].text();
                store.rebuild_covered(&r[0].text())
            })
        });
        self.vantage = mine;
        result
    }

    /// Alerts of this vantage not yet delivered, oldest first; those created before
    /// `oldest` are given up first (marked, and counted in the result's second part).
    pub fn pending_alerts(&mut self, oldest: i64, now: i64) -> anyhow::Result<(Vec<Pending>, u64)> {
        let v: Val = (&self.vantage).into();
        let gave_up = self.db.exec(
            "UPDATE outbox SET gave_up = ? WHERE vantage = ? AND delivered IS NULL AND gave_up IS NULL AND created < ?",
            &[now.into(), v.clone(), oldest.into()],
        )?;
        let rows = self.db.rows(
            "SELECT id, target, created, transition, attempts FROM outbox WHERE vantage = ? AND delivered IS NULL AND gave_up IS NULL ORDER BY id",
            &[v],
        )?;
        let pending = rows
            .iter()
            .filter_map(|r| {
                let transition = serde_json::from_str(&r[3].text()).ok()?;
                Some(Pending {
                    id: r[0].int(),
                    target: r[1].text(),
                    created: r[2].int(),
                    transition,
                    attempts: r[4].int(),
                })
            })
            .collect();
        Ok((pending, gave_up))
    }

    /// Record a delivery attempt of an outbox alert: delivered at `now`, or one more failure.
    pub fn alert_attempted(&mut self, id: i64, delivered: bool, now: i64) -> anyhow::Result<()> {
        let delivered: Val = if delivered { now.into() } else { Val::NullInt };
        self.db
            .exec("UPDATE outbox SET attempts = attempts + 1, delivered = ? WHERE id = ?", &[delivered, id.into()])?;
        Ok(())
    }

    /// Replace this vantage's history of `target` in `[from, to)` (samples, and incidents
    /// that started there) with imported samples and incidents, in one transaction.
    pub fn replace_history(
        &mut self,
        target: &str,
        from: i64,
        to: i64,
        samples: &[Stored],
        incidents: &[IncidentChange],
    ) -> anyhow::Result<()> {
        let v: Val = (&self.vantage).into();
        self.transaction(|store| {
            store.db.exec(
                "DELETE FROM samples WHERE target = ? AND vantage = ? AND at >= ? AND at < ?",
                &[target.into(), v.clone(), from.into(), to.into()],
            )?;
            store.db.exec(
                "DELETE FROM incidents WHERE target = ? AND vantage = ? AND started >= ? AND started < ?",
                &[target.into(), v, from.into(), to.into()],
            )?;
            store.write_round(samples, &[], incidents)?;
            store.rebuild_covered(target)
        })
    }

    /// `AND vantage = ?` with its parameter, or nothing for every vantage.
    fn vantage_filter(&self, all: bool) -> (&'static str, Vec<Val>) {
        if all {
            ("", Vec::new())
        } else {
            (" AND vantage = ?", vec![(&self.vantage).into()])
        }
    }

    /// Raw samples of a target in `[from, to)`, oldest first, plus the last one before `from`
    /// (per vantage: with `all_vantages`, every monitor's samples).
    pub fn samples(&mut self, target: &str, from: i64, to: i64, all_vantages: bool) -> anyhow::Result<Vec<Stored>> {
        let (vf, vp) = self.vantage_filter(all_vantages);
        let mut out = Vec::new();
        let before =
            format!("SELECT {SAMPLE_COLUMNS} FROM samples WHERE target = ?{vf} AND at < ? AND clock_step = 0 ORDER BY at DESC LIMIT 1");
        let params: Vec<Val> = [vec![target.into()], vp.clone(), vec![from.into()]].concat();
        out.extend(self.db.rows(&before, &params)?.iter().map(|r| row_to_stored(target, r)));
        let within =
            format!("SELECT {SAMPLE_COLUMNS} FROM samples WHERE target = ?{vf} AND at >= ? AND at < ? ORDER BY at");
        let params: Vec<Val> = [vec![target.into()], vp, vec![from.into(), to.into()]].concat();
        out.extend(self.db.rows(&within, &params)?.iter().map(|r| row_to_stored(target, r)));
        Ok(out)
    }

    /// Hourly roll-ups of a target in `[from, to)`.
    pub fn hours(&mut self, target: &str, from: i64, to: i64) -> anyhow::Result<Vec<Hour>> {
        let rows = self.db.rows(
            "SELECT hour, samples, failures, known_ms FROM hourly WHERE target = ? AND vantage = ? AND hour >= ? AND hour < ? ORDER BY hour",
            &[target.into(), (&self.vantage).into(), (from - HOUR_MS).into(), to.into()],
        )?;
        Ok(rows
            .iter()
            .map(|r| Hour { hour: r[0].int(), samples: r[1].int(), failures: r[2].int(), known_ms: r[3].int() })
            .collect())
    }

    /// The time each hourly roll-up of a target in `[from, to)` knew: (hour, known ms), from
    /// a covering index (what a report reads for its rolled-up months).
    pub fn known_hours(&mut self, target: &str, from: i64, to: i64) -> anyhow::Result<Vec<(i64, i64)>> {
        let rows = self.db.rows(
            "SELECT hour, known_ms FROM hourly WHERE target = ? AND vantage = ? AND hour >= ? AND hour < ? ORDER BY hour",
            &[target.into(), (&self.vantage).into(), (from - HOUR_MS).into(), to.into()],
        )?;
        Ok(rows.iter().map(|r| (r[0].int(), r[1].int())).collect())
    }

    /// (time, latency ms) of this vantage's successful checks of `target` in `[from, to)`
    /// (clock steps left out, and samples with no measured response time: imported history
    /// and heartbeats store 0), oldest first.
    pub fn latencies(&mut self, target: &str, from: i64, to: i64) -> anyhow::Result<Vec<(i64, f64)>> {
        let rows = self.db.rows(
            "SELECT at, latency_ms FROM samples WHERE target = ? AND vantage = ? AND at >= ? AND at < ? AND ok = 1 AND clock_step = 0 AND latency_ms > 0 ORDER BY at",
            &[target.into(), (&self.vantage).into(), from.into(), to.into()],
        )?;
        Ok(rows.iter().map(|r| (r[0].int(), r[1].real())).collect())
    }

    /// Incidents of a target that overlap `[from, to)` (every vantage's with `all_vantages`).
    pub fn incidents(&mut self, target: &str, from: i64, to: i64, all_vantages: bool) -> anyhow::Result<Vec<Incident>> {
        let (vf, vp) = self.vantage_filter(all_vantages);
        let sql = format!(
            "SELECT id, started, ended, cause, vantage FROM incidents WHERE target = ?{vf} AND started < ? AND (ended IS NULL OR ended > ?) ORDER BY started"
        );
        let params: Vec<Val> = [vec![target.into()], vp, vec![to.into(), from.into()]].concat();
        Ok(self
            .db
            .rows(&sql, &params)?
            .iter()
            .map(|r| Incident {
                id: r[0].int(),
                target: target.to_string(),
                started: r[1].int(),
                ended: r[2].opt_int(),
                cause: r[3].opt_text(),
                vantage: r[4].text(),
            })
            .collect())
    }

    /// When the history of `target` begins (its first sample, hourly row or incident; every
    /// vantage's with `all_vantages`), if there is any.
    pub fn first_at(&mut self, target: &str, all_vantages: bool) -> anyhow::Result<Option<i64>> {
        let (vf, vp) = self.vantage_filter(all_vantages);
        let mut first: Option<i64> = None;
        for (table, column) in [("samples", "at"), ("hourly", "hour"), ("incidents", "started")] {
            let sql = format!("SELECT min({column}) FROM {table} WHERE target = ?{vf}");
            let params: Vec<Val> = [vec![target.into()], vp.clone()].concat();
            if let Some(t) = self.db.rows(&sql, &params)?.first().and_then(|r| r[0].opt_int()) {
                first = Some(first.map_or(t, |f| f.min(t)));
            }
        }
        Ok(first)
    }

    /// The vantages with raw samples in `[from, to)`, sorted.
    pub fn vantages(&mut self, from: i64, to: i64) -> anyhow::Result<Vec<String>> {
        let rows = self.db.rows(
            "SELECT DISTINCT vantage FROM samples WHERE at >= ? AND at < ? AND clock_step = 0 ORDER BY 1",
            &[from.into(), to.into()],
        )?;
        Ok(rows.iter().map(|r| r[0].text()).collect())
    }

    /// Every target name with history from this vantage.
    pub fn known_targets(&mut self) -> anyhow::Result<Vec<String>> {
        let v: Val = (&self.vantage).into();
        let rows = self.db.rows(
            // Samples through the covered spans (and the few taken with the clock stepped back,
            // by their partial index): the samples table itself is not scanned.
            "SELECT DISTINCT target FROM covered WHERE vantage = ? UNION SELECT DISTINCT target FROM samples WHERE vantage = ? AND clock_step = 1 UNION SELECT DISTINCT target FROM hourly WHERE vantage = ? UNION SELECT DISTINCT target FROM incidents WHERE vantage = ? ORDER BY 1",
            &[v.clone(), v.clone(), v.clone(), v],
        )?;
        Ok(rows.iter().map(|r| r[0].text()).collect())
    }

    /// Record a heartbeat ping (any vantage sharing the history sees it); pings older than
    /// [`PING_KEEP_MS`] before it are dropped.
    pub fn add_ping(&mut self, ping: &crate::heartbeat::Ping) -> anyhow::Result<()> {
        self.db.batch("BEGIN")?;
        let result = self
            .db
            .exec(
                "INSERT INTO pings (target, at, ok, message) VALUES (?, ?, ?, ?)",
                &[(&ping.target).into(), ping.at.into(), ping.ok.into(), ping.message.as_ref().into()],
            )
            .and_then(|_| {
                self.db.exec(
                    "DELETE FROM pings WHERE target = ? AND at < ?",
                    &[(&ping.target).into(), (ping.at - PING_KEEP_MS).into()],
                )
            });
        match result {
            Ok(_) => self.db.batch("COMMIT"),
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// The last ping of `target` at or before `at`.
    pub fn last_ping(&mut self, target: &str, at: i64) -> anyhow::Result<Option<crate::heartbeat::Ping>> {
        let rows = self.db.rows(
            "SELECT at, ok, message FROM pings WHERE target = ? AND at <= ? ORDER BY at DESC LIMIT 1",
            &[target.into(), at.into()],
        )?;
        Ok(rows.first().map(|r| crate::heartbeat::Ping {
            target: target.to_string(),
            at: r[0].int(),
            ok: r[1].int() != 0,
            message: r[2].opt_text(),
        }))
    }

    /// Add a maintenance window; returns its id.
    pub fn add_window(&mut self, target: &str, start: i64, end: i64, reason: &str) -> anyhow::Result<i64> {
        let rows = self.db.rows(
            "INSERT INTO maintenance (target, start, end_at, reason) VALUES (?, ?, ?, ?) RETURNING id",
            &[target.into(), start.into(), end.into(), reason.into()],
        )?;
        Ok(rows.first().map(|r| r[0].int()).unwrap_or(0))
    }

    /// Windows that end after `after`.
    pub fn windows(&mut self, after: i64) -> anyhow::Result<Vec<Window>> {
        let rows = self.db.rows(
            "SELECT id, target, start, end_at, reason FROM maintenance WHERE end_at > ? ORDER BY start",
            &[after.into()],
        )?;
        Ok(rows
            .iter()
            .map(|r| Window {
                id: r[0].int(),
                target: r[1].text(),
                start: r[2].int(),
                end: r[3].int(),
                reason: r[4].text(),
            })
            .collect())
    }

    /// End a window now (it stays in the history up to `now`). False if there is no such open window.
    pub fn end_window(&mut self, id: i64, now: i64) -> anyhow::Result<bool> {
        let n = self.db.exec(
            "UPDATE maintenance SET end_at = ? WHERE id = ? AND end_at > ?",
            &[now.into(), id.into(), now.into()],
        )?;
        Ok(n > 0)
    }

    /// Roll samples older than `cutoff` into hourly rows and delete them. Returns rows rolled.
    /// A store kept open rolls up once an hour: the cutoff is a whole hour, and samples that
    /// arrive late for an hour already rolled wait for the next hour's roll-up.
    pub fn roll_up(&mut self, cutoff: i64) -> anyhow::Result<u64> {
        let cutoff = cutoff.div_euclid(HOUR_MS) * HOUR_MS;
        if self.cache.rolled_up_to == Some(cutoff) {
            return Ok(0);
        }
        let (least, sum) = match self.db.dialect() {
            Dialect::Sqlite => ("min", "sum"),
            Dialect::Postgres => ("least", "sum"),
        };
        let cast = |e: &str| match self.db.dialect() {
            Dialect::Sqlite => e.to_string(),
            Dialect::Postgres => format!("CAST({e} AS BIGINT)"),
        };
        let sql = format!(
            "INSERT INTO hourly (target, vantage, hour, samples, failures, known_ms, latency_sum)
             SELECT target, vantage, (at / 3600000) * 3600000 AS h, count(*), {}, {least}(3600000, {}), {sum}(latency_ms)
             FROM samples WHERE at < ? AND clock_step = 0 GROUP BY target, vantage, h
             ON CONFLICT (target, vantage, hour) DO UPDATE SET
                samples = hourly.samples + excluded.samples, failures = hourly.failures + excluded.failures,
                known_ms = {least}(3600000, hourly.known_ms + excluded.known_ms),
                latency_sum = hourly.latency_sum + excluded.latency_sum",
            cast(&format!("{sum}(1 - ok)")),
            cast(&format!("{sum}(interval_ms)")),
        );
        let rolled = self.transaction(|store| {
            store.db.exec(&sql, &[cutoff.into()])?;
            let n = store.db.exec("DELETE FROM samples WHERE at < ?", &[cutoff.into()])?;
            if store.db.exec("DELETE FROM covered WHERE end_at < ?", &[cutoff.into()])? > 0 {
                store.cache.covered.clear();
            }
            Ok(n)
        })?;
        self.cache.rolled_up_to = Some(cutoff);
        Ok(rolled)
    }

    /// The earliest raw sample of a target (older history is hourly).
    pub fn first_raw(&mut self, target: &str) -> anyhow::Result<Option<i64>> {
        let rows = self.db.rows(
            "SELECT min(at) FROM samples WHERE target = ? AND vantage = ?",
            &[target.into(), (&self.vantage).into()],
        )?;
        Ok(rows.first().and_then(|r| r[0].opt_int()))
    }
}

fn row_to_stored(target: &str, r: &[Val]) -> Stored {
    Stored {
        sample: Sample {
            target: target.to_string(),
            at: r[0].int(),
            ok: r[1].int() != 0,
            latency_ms: r[2].real(),
            error: r[3].opt_text(),
            interval_ms: r[4].int(),
            // A reading that no longer parses is left out rather than failing the report.
            power: r.get(8).and_then(Val::opt_text).and_then(|j| serde_json::from_str(&j).ok()),
        },
        maintenance: r[5].int() != 0,
        vantage: r[6].text(),
        clock_step: r[7].int() != 0,
    }
}

/// A UPS reading as the samples table keeps it (JSON text).
fn power_json(power: Option<&standby_common::nut::Reading>) -> anyhow::Result<Option<String>> {
    Ok(power.map(serde_json::to_string).transpose()?)
}

/// Add the columns of [`ADDED_COLUMNS`] that an older database lacks.
fn add_columns(db: &mut Db) -> anyhow::Result<()> {
    for (table, column, def) in ADDED_COLUMNS {
        let missing = match db.dialect() {
            Dialect::Sqlite => db
                .rows(&format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?"), &[(*column).into()])?
                .first()
                .is_none_or(|r| r[0].int() == 0),
            Dialect::Postgres => db
                .rows(
                    "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?",
                    &[(*table).into(), (*column).into()],
                )?
                .first()
                .is_none_or(|r| r[0].int() == 0),
        };
        if missing {
            let def =
                if db.dialect() == Dialect::Postgres { def.replace("INTEGER", "BIGINT") } else { def.to_string() };
            db.batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {def}"))?;
        }
    }
    Ok(())
}

/// The spool: samples that could not be written, one JSON object a line.
pub struct Spool {
    path: PathBuf,
}

impl Spool {
    pub fn new(path: PathBuf) -> Spool {
        Spool { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append samples (fsynced: they are the only copy).
    pub fn append(&self, samples: &[Sample]) -> anyhow::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open spool {}", self.path.display()))?;
        for s in samples {
            writeln!(f, "{}", serde_json::to_string(s)?)?;
        }
        f.sync_all()?;
        Ok(())
    }

    /// The spooled samples (a torn last line from a crash is skipped).
    pub fn read(&self) -> anyhow::Result<Vec<Sample>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context("cannot read spool"),
        };
        // Line by line as bytes: a line torn by a crash (even mid-character) is skipped.
        Ok(bytes.split(|b| *b == b'\n').filter_map(|l| serde_json::from_slice::<Sample>(l).ok()).collect())
    }

    /// Forget the spool once its samples are in the database.
    pub fn clear(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intervals::Spans;

    fn stored(target: &str, at: i64, interval_ms: i64, clock_step: bool) -> Stored {
        let s = Sample { target: target.into(), at, ok: true, latency_ms: 1.0, error: None, interval_ms, power: None };
        Stored { clock_step, ..Stored::new(&s, false) }
    }

    /// Response times come from measured checks only: an imported or heartbeat sample (latency
    /// 0, nothing was measured) is no 0 ms answer, and a failure's latency is its timeout.
    #[test]
    fn latencies_leave_out_samples_with_nothing_measured() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut store = Store::open(&dir.path().join("h.db"), "v").unwrap_or_else(|e| panic!("{e}"));
        let sample = |at: i64, ok: bool, latency_ms: f64| {
            let s = Sample { target: "a".into(), at, ok, latency_ms, error: None, interval_ms: 10, power: None };
            Stored::new(&s, false)
        };
        let round = [sample(0, true, 0.0), sample(10, true, 12.5), sample(20, false, 3000.0), sample(30, true, 7.0)];
        store.save_round(&round, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.latencies("a", 0, 100).unwrap_or_else(|e| panic!("{e}")), vec![(10, 12.5), (30, 7.0)]);
    }

    /// The covered spans kept round by round are the coverage the report would compute from
    /// the raw samples: jitter, gaps, an interval change, a clock step, two targets, a late
    /// sample, and a database from before the table (backfilled on open).
    #[test]
    fn covered_spans_kept_as_written_equal_the_samples_coverage() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("h.db");
        let mut store = Store::open(&path, "v").unwrap_or_else(|e| panic!("{e}"));
        let ats: &[(i64, i64, bool)] = &[
            (0, 10, false),
            (12, 10, false),
            (27, 10, false), // 15 after: still continues (1.5 intervals)
            (43, 10, false), // 16 after: a gap
            (50, 4, false),
            (55, 4, false),
            (54, 4, true), // clock stepped back: covers nothing
            (70, 4, false),
            (72, 30, false),
        ];
        for chunk in ats.chunks(2) {
            let round: Vec<Stored> =
                chunk.iter().flat_map(|&(at, i, c)| [stored("a", at, i, c), stored("b", at * 2, i, c)]).collect();
            store.save_round(&round, &[], &[]).unwrap_or_else(|e| panic!("{e}"));
        }
        let check = |store: &mut Store| {
            for t in ["a", "b"] {
                let samples = store.samples(t, 0, 1000, false).unwrap_or_else(|e| panic!("{e}"));
                let want = Spans::new(crate::report::coverage(&samples));
                let got = Spans::new(store.covered(t, 0, 1000).unwrap_or_else(|e| panic!("{e}")));
                assert_eq!(got.iter().collect::<Vec<_>>(), want.iter().collect::<Vec<_>>(), "{t}");
            }
        };
        check(&mut store);
        assert_eq!(store.clock_steps("a", 0, 1000).unwrap_or(0), 1);
        // A late sample (before the last one) is counted again from the samples.
        store.save_round(&[stored("a", 35, 10, false)], &[], &[]).unwrap_or_else(|e| panic!("{e}"));
        check(&mut store);
        // A database written before the table: counted on open.
        store.db.batch("DELETE FROM covered").unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let mut store = Store::open(&path, "v").unwrap_or_else(|e| panic!("{e}"));
        check(&mut store);
    }
}
