//! `synchronous_standby_names` across role changes, like Patroni's (non-strict) synchronous
//! mode: a node promoted with the setting from its old life (a switchover, or a config that
//! came from the old primary through pg_basebackup) and no standby would make every commit
//! wait forever, so [`relax`] clears it (`ALTER SYSTEM` + `pg_reload_conf()`) when no
//! standby is synchronous; [`restore`] turns synchronous mode back on once the old primary
//! streams again as a standby and its own config says it was on (the rejoined node keeps its
//! config files), and gives up (clears it again) unless that standby becomes `sync` in time.

use std::time::{Duration, Instant};

use standby_common::pg::BlockingClient;

/// What [`restore`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Restored {
    /// The value set on the primary.
    pub names: String,
    /// The rejoined standby became `sync`/`quorum`; false: the value was cleared again.
    pub synchronous: bool,
    pub detail: String,
}

const SETTING: &str = "SELECT current_setting('synchronous_standby_names')";

/// Standbys of this (primary) node in `sync` or `quorum` state.
fn sync_standbys(c: &BlockingClient) -> anyhow::Result<i64> {
    c.query_value("SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')", &[])
}

/// `ALTER SYSTEM SET synchronous_standby_names = <names>`, reload, and wait (bounded) until
/// this session sees it (the reload reaches every backend and the waiting commits).
fn set(c: &BlockingClient, names: &str) -> anyhow::Result<()> {
    let sql: String =
        c.query_value("SELECT format('ALTER SYSTEM SET synchronous_standby_names = %L', $1::text)", &[&names])?;
    c.batch_execute(&sql)?;
    c.batch_execute("SELECT pg_reload_conf()")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: String = c.query_value(SETTING, &[])?;
        if now == names {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{}: synchronous_standby_names is still {now:?} 10 s after pg_reload_conf() (is it set on the command line?)",
                c.server()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// On a freshly promoted primary: when `synchronous_standby_names` is set and no standby is
/// synchronous, clear it. Returns the value cleared.
pub fn relax(c: &BlockingClient) -> anyhow::Result<Option<String>> {
    let names: String = c.query_value(SETTING, &[])?;
    if names.trim().is_empty() || sync_standbys(c)? > 0 {
        return Ok(None);
    }
    set(c, "")?;
    tracing::warn!(
        "{}: cleared synchronous_standby_names ({names:?}): no standby is synchronous and every commit would wait",
        c.server()
    );
    Ok(Some(names))
}

/// After a rejoin: when the rejoined standby (`standby`) has `synchronous_standby_names` set
/// in its own config (it was a synchronous primary) and the primary has none, set the same
/// value on the primary and wait until a standby is synchronous; if none is within `timeout`,
/// clear it again so that commits never hang. `None`: nothing to do.
pub fn restore(
    primary: &BlockingClient,
    standby: &BlockingClient,
    timeout: Duration,
) -> anyhow::Result<Option<Restored>> {
    let wanted: String = standby.query_value(SETTING, &[])?;
    let have: String = primary.query_value(SETTING, &[])?;
    if wanted.trim().is_empty() || !have.trim().is_empty() {
        return Ok(None);
    }
    set(primary, &wanted)?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if sync_standbys(primary)? > 0 {
            return Ok(Some(Restored {
                names: wanted,
                synchronous: true,
                detail: format!("synchronous_standby_names restored on {}", primary.server()),
            }));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    set(primary, "")?;
    let detail = format!(
        "no standby became synchronous within {} s with synchronous_standby_names = {wanted:?} on {}: cleared again \
         (asynchronous replication; set it by hand to match the standby's application_name)",
        timeout.as_secs(),
        primary.server()
    );
    tracing::warn!("{detail}");
    Ok(Some(Restored { names: wanted, synchronous: false, detail }))
}
