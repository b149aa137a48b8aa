//! The history: SQLite (bundled) in WAL mode, so a `check` from cron and a `report` can run
//! at the same time. Raw samples older than the retention are rolled up into per-hour rows;
//! incidents are kept exactly, so reports stay exact about outages. When the database cannot
//! be written (locked, corrupt, disk full), a round's samples go to a spool file next to it
//! and are written first on the next run: nothing is lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::HOUR_MS;
use crate::machine::TargetState;
use crate::target::Sample;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS samples (
    target TEXT NOT NULL, vantage TEXT NOT NULL, at INTEGER NOT NULL, ok INTEGER NOT NULL,
    latency_ms REAL NOT NULL, error TEXT, interval_ms INTEGER NOT NULL,
    maintenance INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS samples_by_target ON samples (target, at);
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (at);
CREATE TABLE IF NOT EXISTS hourly (
    target TEXT NOT NULL, vantage TEXT NOT NULL, hour INTEGER NOT NULL,
    samples INTEGER NOT NULL, failures INTEGER NOT NULL, known_ms INTEGER NOT NULL,
    latency_sum REAL NOT NULL, PRIMARY KEY (target, vantage, hour));
CREATE TABLE IF NOT EXISTS states (
    target TEXT NOT NULL, vantage TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (target, vantage));
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, vantage TEXT NOT NULL,
    started INTEGER NOT NULL, ended INTEGER, cause TEXT);
CREATE INDEX IF NOT EXISTS incidents_by_target ON incidents (target, started);
CREATE TABLE IF NOT EXISTS maintenance (
    id INTEGER PRIMARY KEY, target TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,
    reason TEXT NOT NULL);
";

/// A sample as stored, with whether it fell in a maintenance window.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    pub target: String,
    pub at: i64,
    pub ok: bool,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub interval_ms: i64,
    pub maintenance: bool,
}

impl Stored {
    pub fn new(s: &Sample, maintenance: bool) -> Stored {
        Stored {
            target: s.target.clone(),
            at: s.at,
            ok: s.ok,
            latency_ms: s.latency_ms,
            error: s.error.clone(),
            interval_ms: s.interval_ms,
            maintenance,
        }
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
}

/// The monitor's database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    vantage: String,
}

impl Store {
    /// Open (and create) the database.
    pub fn open(path: &Path, vantage: &str) -> anyhow::Result<Store> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| conn.execute_batch(SCHEMA))
            .with_context(|| format!("database {} is unusable", path.display()))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            vantage: vantage.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn vantage(&self) -> &str {
        &self.vantage
    }

    /// The remembered state of every target seen from this vantage.
    pub fn states(&self) -> anyhow::Result<Vec<TargetState>> {
        let mut stmt = self
            .conn
            .prepare("SELECT json FROM states WHERE vantage = ?1 ORDER BY target")?;
        let rows = stmt.query_map([&self.vantage], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for json in rows {
            out.push(serde_json::from_str(&json?).context("corrupt state row")?);
        }
        Ok(out)
    }

    /// Write a round in one transaction: samples, new states, incident changes.
    pub fn save_round(
        &mut self,
        samples: &[Stored],
        states: &[TargetState],
        incidents: &[IncidentChange],
    ) -> anyhow::Result<()> {
        let v = self.vantage.clone();
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO samples (target, vantage, at, ok, latency_ms, error, interval_ms, maintenance) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for s in samples {
                ins.execute(params![
                    s.target,
                    v,
                    s.at,
                    s.ok,
                    s.latency_ms,
                    s.error,
                    s.interval_ms,
                    s.maintenance
                ])?;
            }
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO states (target, vantage, json) VALUES (?1, ?2, ?3)",
            )?;
            for s in states {
                st.execute(params![s.target, v, serde_json::to_string(s)?])?;
            }
            for change in incidents {
                match change {
                    IncidentChange::Open {
                        target,
                        started,
                        cause,
                    } => {
                        tx.execute(
                            "INSERT INTO incidents (target, vantage, started, ended, cause) VALUES (?1, ?2, ?3, NULL, ?4)",
                            params![target, v, started, cause],
                        )?;
                    }
                    IncidentChange::Close { target, ended } => {
                        tx.execute(
                            "UPDATE incidents SET ended = ?3 WHERE target = ?1 AND vantage = ?2 AND ended IS NULL",
                            params![target, v, ended],
                        )?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Raw samples of a target in `[from, to)`, oldest first, plus the last one before `from`.
    pub fn samples(&self, target: &str, from: i64, to: i64) -> anyhow::Result<Vec<Stored>> {
        let mut out = Vec::new();
        let before: Option<Stored> = self
            .conn
            .query_row(
                "SELECT at, ok, latency_ms, error, interval_ms, maintenance FROM samples WHERE target = ?1 AND vantage = ?2 AND at < ?3 ORDER BY at DESC LIMIT 1",
                params![target, self.vantage, from],
                |r| row_to_stored(target, r),
            )
            .optional()?;
        out.extend(before);
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, ok, latency_ms, error, interval_ms, maintenance FROM samples WHERE target = ?1 AND vantage = ?2 AND at >= ?3 AND at < ?4 ORDER BY at",
        )?;
        for row in stmt.query_map(params![target, self.vantage, from, to], |r| {
            row_to_stored(target, r)
        })? {
            out.push(row?);
        }
        Ok(out)
    }

    /// Hourly roll-ups of a target in `[from, to)`.
    pub fn hours(&self, target: &str, from: i64, to: i64) -> anyhow::Result<Vec<Hour>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT hour, samples, failures, known_ms FROM hourly WHERE target = ?1 AND vantage = ?2 AND hour >= ?3 AND hour < ?4 ORDER BY hour",
        )?;
        let rows = stmt.query_map(params![target, self.vantage, from - HOUR_MS, to], |r| {
            Ok(Hour {
                hour: r.get(0)?,
                samples: r.get(1)?,
                failures: r.get(2)?,
                known_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Incidents of a target that overlap `[from, to)`.
    pub fn incidents(&self, target: &str, from: i64, to: i64) -> anyhow::Result<Vec<Incident>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, started, ended, cause FROM incidents WHERE target = ?1 AND vantage = ?2 AND started < ?4 AND (ended IS NULL OR ended > ?3) ORDER BY started",
        )?;
        let rows = stmt.query_map(params![target, self.vantage, from, to], |r| {
            Ok(Incident {
                id: r.get(0)?,
                target: target.to_string(),
                started: r.get(1)?,
                ended: r.get(2)?,
                cause: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every target name with history from this vantage.
    pub fn known_targets(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT target FROM samples WHERE vantage = ?1 UNION SELECT DISTINCT target FROM hourly WHERE vantage = ?1 UNION SELECT DISTINCT target FROM incidents WHERE vantage = ?1 ORDER BY 1",
        )?;
        let rows = stmt.query_map([&self.vantage], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Add a maintenance window; returns its id.
    pub fn add_window(
        &self,
        target: &str,
        start: i64,
        end: i64,
        reason: &str,
    ) -> anyhow::Result<i64> {
        self.conn.execute(
            "INSERT INTO maintenance (target, start, end, reason) VALUES (?1, ?2, ?3, ?4)",
            params![target, start, end, reason],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Windows that end after `after`.
    pub fn windows(&self, after: i64) -> anyhow::Result<Vec<Window>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, target, start, end, reason FROM maintenance WHERE end > ?1 ORDER BY start",
        )?;
        let rows = stmt.query_map([after], |r| {
            Ok(Window {
                id: r.get(0)?,
                target: r.get(1)?,
                start: r.get(2)?,
                end: r.get(3)?,
                reason: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// End a window now (it stays in the history up to `now`). False if there is no such open window.
    pub fn end_window(&self, id: i64, now: i64) -> anyhow::Result<bool> {
        let n = self.conn.execute(
            "UPDATE maintenance SET end = ?2 WHERE id = ?1 AND end > ?2",
            params![id, now],
        )?;
        Ok(n > 0)
    }

    /// Roll samples older than `cutoff` into hourly rows and delete them. Returns rows rolled.
    pub fn roll_up(&mut self, cutoff: i64) -> anyhow::Result<usize> {
        let cutoff = cutoff.div_euclid(HOUR_MS) * HOUR_MS;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO hourly (target, vantage, hour, samples, failures, known_ms, latency_sum)
             SELECT target, vantage, (at / 3600000) * 3600000 AS h, count(*), sum(1 - ok),
                    min(3600000, sum(interval_ms)), sum(latency_ms)
             FROM samples WHERE at < ?1 GROUP BY target, vantage, h
             ON CONFLICT (target, vantage, hour) DO UPDATE SET
                samples = samples + excluded.samples, failures = failures + excluded.failures,
                known_ms = min(3600000, known_ms + excluded.known_ms),
                latency_sum = latency_sum + excluded.latency_sum",
            [cutoff],
        )?;
        let n = tx.execute("DELETE FROM samples WHERE at < ?1", [cutoff])?;
        tx.commit()?;
        Ok(n)
    }

    /// The earliest raw sample of a target (older history is hourly).
    pub fn first_raw(&self, target: &str) -> anyhow::Result<Option<i64>> {
        Ok(self.conn.query_row(
            "SELECT min(at) FROM samples WHERE target = ?1 AND vantage = ?2",
            params![target, self.vantage],
            |r| r.get(0),
        )?)
    }

    /// Insert history in bulk (import): samples and closed incidents, no state changes.
    pub fn import(
        &mut self,
        samples: &[Stored],
        incidents: &[(i64, i64)],
        target: &str,
    ) -> anyhow::Result<()> {
        let changes: Vec<IncidentChange> = Vec::new();
        self.save_round(samples, &[], &changes)?;
        let tx = self.conn.transaction()?;
        for (start, end) in incidents {
            tx.execute(
                "INSERT INTO incidents (target, vantage, started, ended, cause) VALUES (?1, ?2, ?3, ?4, 'imported')",
                params![target, self.vantage, start, end],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn row_to_stored(target: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        target: target.to_string(),
        at: r.get(0)?,
        ok: r.get(1)?,
        latency_ms: r.get(2)?,
        error: r.get(3)?,
        interval_ms: r.get(4)?,
        maintenance: r.get(5)?,
    })
}

/// The spool: samples that could not be written, one JSON object a line.
pub struct Spool {
    path: PathBuf,
}

impl Spool {
    pub fn new(path: PathBuf) -> Spool {
        Spool { path }
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
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context("cannot read spool"),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<SpooledSample>(l).ok())
            .map(Into::into)
            .collect())
    }

    /// Forget the spool once its samples are in the database.
    pub fn clear(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[derive(serde::Deserialize)]
struct SpooledSample {
    target: String,
    at: i64,
    ok: bool,
    latency_ms: f64,
    error: Option<String>,
    interval_ms: i64,
}

impl From<SpooledSample> for Sample {
    fn from(s: SpooledSample) -> Sample {
        Sample {
            target: s.target,
            at: s.at,
            ok: s.ok,
            latency_ms: s.latency_ms,
            error: s.error,
            interval_ms: s.interval_ms,
        }
    }
}
