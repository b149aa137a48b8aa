//! Bounded retries for network calls: at most `attempts` tries, exponential backoff from
//! `base` doubling up to `max`, with jitter (each delay is drawn from its upper half) so that
//! several cron jobs that failed together do not retry in lockstep.

use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Total tries, including the first (1 = no retry).
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { attempts: 3, base: Duration::from_millis(200), max: Duration::from_secs(5) }
    }
}

impl Backoff {
    pub fn none() -> Self {
        Backoff { attempts: 1, ..Self::default() }
    }

    /// The delay before retry number `retry` (0 = the first retry): the capped exponential
    /// `base * 2^retry`, jittered into its upper half.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self.base.saturating_mul(2u32.saturating_pow(retry.min(20)));
        let cap = exp.min(self.max);
        let half = cap / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Run `op` until it succeeds, `retryable` says no, or the attempts are used up; the last
    /// error is returned.
    pub async fn run<T, E, F, Fut>(&self, mut op: F, retryable: impl Fn(&E) -> bool) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if attempt + 1 < self.attempts.max(1) && retryable(&e) => {
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The same for blocking code (a process, a file).
    pub fn run_blocking<T, E>(
        &self,
        mut op: impl FnMut(u32) -> Result<T, E>,
        retryable: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            match op(attempt) {
                Ok(v) => return Ok(v),
                Err(e) if attempt + 1 < self.attempts.max(1) && retryable(&e) => {
                    std::thread::sleep(self.delay(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(attempts: u32) -> Backoff {
        Backoff { attempts, base: Duration::from_millis(1), max: Duration::from_millis(4) }
    }

    #[test]
    fn delays_grow_stay_capped_and_jittered() {
        let b = Backoff { attempts: 10, base: Duration::from_millis(100), max: Duration::from_secs(1) };
        for retry in 0..8 {
            let cap = Duration::from_millis(100 * 2u64.pow(retry)).min(Duration::from_secs(1));
            let d = b.delay(retry);
            assert!(d >= cap / 2 && d <= cap, "retry {retry}: {d:?} not in [{:?}, {cap:?}]", cap / 2);
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| b.delay(3)).collect();
        assert!(spread.len() > 1, "jitter varies the delay");
    }

    #[test]
    fn stops_after_the_bound_and_returns_the_last_error() {
        let mut calls = 0;
        let r: Result<(), u32> = quick(3).run_blocking(
            |n| {
                calls += 1;
                Err(n)
            },
            |_| true,
        );
        assert_eq!((r, calls), (Err(2), 3));
    }

    #[test]
    fn does_not_retry_what_is_not_retryable() {
        let mut calls = 0;
        let r: Result<(), &str> = quick(5).run_blocking(
            |_| {
                calls += 1;
                Err("400")
            },
            |e| *e != "400",
        );
        assert_eq!((r, calls), (Err("400"), 1));
    }

    #[tokio::test]
    async fn async_retry_succeeds_after_failures() {
        let r: Result<u32, &str> = quick(4)
            .run(
                |n| async move {
                    if n < 2 {
                        Err("flaky")
                    } else {
                        Ok(n)
                    }
                },
                |_| true,
            )
            .await;
        assert_eq!(r, Ok(2));
    }
}
