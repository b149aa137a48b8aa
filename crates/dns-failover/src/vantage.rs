//! Several vantages: each dns-failover instance records its view of every record's primary
//! (its streak, whether it is isolated) in a shared PostgreSQL database — the same one
//! downtime-monitor's `--store` uses — and a switch needs `quorum` vantages that see the same
//! thing within the last `interval × failure-threshold`. One monitor whose own link died can
//! no longer move DNS. Exactly one instance writes: a switch holds a PostgreSQL advisory lock
//! per record, and the others find the record already switched when they get to it.

use std::time::Duration;

use standby_common::pg::{Client, ConnectOptions};
use standby_common::secret;
use standby_common::threshold::Streak;

use crate::config::Config;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dns_failover_views (
    record   text        NOT NULL,
    vantage  text        NOT NULL,
    at       timestamptz NOT NULL,
    fails    integer     NOT NULL,
    oks      integer     NOT NULL,
    isolated boolean     NOT NULL,
    PRIMARY KEY (record, vantage)
)";

/// The shared views, when `store` is set.
pub struct SharedViews {
    client: Client,
    pub vantage: String,
    pub quorum: usize,
    /// Views older than this do not count.
    pub window: Duration,
}

impl SharedViews {
    /// Connect when the section names a store (exit 4 when it cannot be reached).
    pub async fn connect(config: &Config) -> anyhow::Result<Option<SharedViews>> {
        let Some(store) = &config.store else {
            return Ok(None);
        };
        let password = secret::resolve(
            "store password",
            config.store_password_env.as_deref(),
            config.store_password_file.as_deref(),
            "PGPASSWORD",
        )?;
        let options = ConnectOptions::parse(store)?
            .password(password)
            .ca_file(config.store_cacert.clone())
            .timeout(Duration::from_secs(10));
        let client = options.connect().await?;
        // Two instances starting together must not race on CREATE TABLE.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtext('standby dns-failover schema')); {SCHEMA}; COMMIT;"
            ))
            .await?;
        let vantage = config.vantage.clone().unwrap_or_else(standby_common::hostname);
        let window = config.interval.get().saturating_mul(config.failure_threshold.max(1));
        Ok(Some(SharedViews { client, vantage, quorum: config.quorum.max(1), window }))
    }

    /// Record this vantage's view of `key`, then the streak at least `quorum` fresh,
    /// non-isolated vantages agree on: the `quorum`-th largest count of failures (and of
    /// successes). With fewer vantages than the quorum, nothing is agreed (zeros).
    pub async fn agree(&self, key: &str, mine: &Streak, isolated: bool) -> anyhow::Result<Streak> {
        let fails = i32::try_from(mine.fails).unwrap_or(i32::MAX);
        let oks = i32::try_from(mine.oks).unwrap_or(i32::MAX);
        self.client
            .execute(
                "INSERT INTO dns_failover_views (record, vantage, at, fails, oks, isolated) VALUES ($1, $2, now(), $3, $4, $5)
                 ON CONFLICT (record, vantage) DO UPDATE SET at = now(), fails = $3, oks = $4, isolated = $5",
                &[&key, &self.vantage, &fails, &oks, &isolated],
            )
            .await?;
        let window = self.window.as_secs_f64();
        let rows = self
            .client
            .query(
                "SELECT fails, oks FROM dns_failover_views
                 WHERE record = $1 AND NOT isolated AND at > now() - ($2::float8 * interval '1 second')",
                &[&key, &window],
            )
            .await?;
        let mut fails: Vec<u32> = rows.iter().map(|r| r.get::<_, i32>(0).max(0) as u32).collect();
        let mut oks: Vec<u32> = rows.iter().map(|r| r.get::<_, i32>(1).max(0) as u32).collect();
        Ok(Streak { fails: nth_largest(&mut fails, self.quorum), oks: nth_largest(&mut oks, self.quorum) })
    }

    /// Take the switch lock of `key` without waiting: false when another vantage holds it.
    pub async fn try_lock(&self, key: &str) -> anyhow::Result<bool> {
        self.client.query_value("SELECT pg_try_advisory_lock(hashtext($1))", &[&lock_name(key)]).await
    }

    pub async fn unlock(&self, key: &str) {
        let result: anyhow::Result<bool> =
            self.client.query_value("SELECT pg_advisory_unlock(hashtext($1))", &[&lock_name(key)]).await;
        if let Err(e) = result {
            tracing::warn!("releasing the switch lock of {key}: {e:#}");
        }
    }
}

fn lock_name(key: &str) -> String {
    format!("standby dns-failover switch {key}")
}

/// The `n`-th largest value (1-based), or 0 when there are fewer than `n`.
fn nth_largest(values: &mut [u32], n: usize) -> u32 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.get(n.saturating_sub(1)).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::nth_largest;

    #[test]
    fn the_quorum_agrees_on_the_nth_largest_streak() {
        assert_eq!(nth_largest(&mut [5, 1, 3], 1), 5);
        assert_eq!(nth_largest(&mut [5, 1, 3], 2), 3, "two vantages saw at least 3 failures");
        assert_eq!(nth_largest(&mut [5], 2), 0, "one vantage cannot make a quorum of two");
        assert_eq!(nth_largest(&mut [], 1), 0);
    }
}
