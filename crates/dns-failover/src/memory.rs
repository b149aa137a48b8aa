//! What dns-failover remembers between cron runs, in its state dir (atomic JSON writes):
//! per record the current streak of the primary's checks, whether this monitor was isolated,
//! the values last read from the provider and the last switch; and the API calls made in
//! the last hour (Cloudflare allows 1,200 per 5 minutes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use standby_common::state::StateDir;
use standby_common::threshold::Streak;

use crate::record::Side;

const RECORDS: &str = "records.json";
const CALLS: &str = "api-calls.json";

/// One record's memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordMemory {
    pub streak: Streak,
    /// The last round could reach no control target.
    #[serde(default)]
    pub isolated: bool,
    /// Values last read from the provider, and when (ms since the epoch).
    pub known: Option<Known>,
    pub last_switch: Option<SwitchNote>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Known {
    pub values: Vec<String>,
    pub read_at_ms: i64,
}

/// A switch made or tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwitchNote {
    /// RFC 3339, UTC.
    pub at: String,
    pub to: Side,
    pub why: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every record's memory, by record name and type (`app.example.com A`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Memory {
    pub records: BTreeMap<String, RecordMemory>,
}

impl Memory {
    pub fn load(state: &StateDir) -> anyhow::Result<Memory> {
        Ok(state.read_json(RECORDS)?.unwrap_or_default())
    }

    pub fn save(&self, state: &StateDir) -> anyhow::Result<()> {
        state.write_json(RECORDS, self)
    }
}

/// API calls made, as (second, count) pairs from the last hour.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallLog {
    pub calls: Vec<(i64, u64)>,
}

impl CallLog {
    /// Add `count` calls made now and forget what is older than an hour.
    pub fn record(state: &StateDir, now_s: i64, count: u64) -> anyhow::Result<CallLog> {
        let mut log: CallLog = state.read_json(CALLS)?.unwrap_or_default();
        log.calls.retain(|(at, _)| now_s - at < 3600);
        if count > 0 {
            log.calls.push((now_s, count));
            state.write_json(CALLS, &log)?;
        }
        Ok(log)
    }

    pub fn last_hour(&self) -> u64 {
        self.calls.iter().map(|(_, n)| n).sum()
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Now as RFC 3339 UTC (seconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
