//! Bounded retries for network calls: at most `attempts` tries, exponential backoff from
//! `base` doubling up to `max`, with jitter (each delay is drawn from its upper half) so that
//! several cron jobs that failed together do not retry in lockstep.
//!
//! A server may say how long to wait (Cloudflare answers 429 with `Retry-After`): an operation
//! returns a [`Throttled`] error (or the caller's verdict says [`Verdict::RetryAfter`]), and
//! [`Backoff::run_within`] waits that long, capped, instead of its backoff. A [`Budget`] caps
//! the whole retry: no attempt starts after its deadline, and a wait is cut to it.

use std::future::Future;
use std::time::{Duration, SystemTime};

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

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Give up: return this error.
    Stop,
    /// Retry after the backoff delay.
    Retry,
    /// Retry after the delay the server asked for (capped by [`Budget::max_retry_after`]).
    RetryAfter(Duration),
}

impl Verdict {
    /// The usual verdict for an `anyhow` error: the server's delay when a [`Throttled`] is in
    /// its chain, else `Retry` if `retryable`, else `Stop`.
    pub fn of(err: &anyhow::Error, retryable: bool) -> Verdict {
        match requested_delay(err) {
            Some(delay) => Verdict::RetryAfter(delay),
            None if retryable => Verdict::Retry,
            None => Verdict::Stop,
        }
    }
}

/// Limits on a whole retry, on top of the [`Backoff`]'s attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// No attempt starts later than this after the first one; a wait is cut to this deadline.
    pub total: Duration,
    /// The longest server-requested wait obeyed (a `Retry-After: 3600` is not waited out).
    pub max_retry_after: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { total: Duration::from_secs(60), max_retry_after: Duration::from_secs(30) }
    }
}

/// An error that carries the delay a server asked for (HTTP 429/503 with `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// What was refused, for the message (`Cloudflare API`).
    pub what: String,
    pub retry_after: Duration,
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: rate limited; the server asks to retry after {:.1}s", self.what, self.retry_after.as_secs_f64())
    }
}

impl std::error::Error for Throttled {}

/// The delay of the first [`Throttled`] in an error's chain.
pub fn requested_delay(err: &anyhow::Error) -> Option<Duration> {
    err.chain().find_map(|e| e.downcast_ref::<Throttled>()).map(|t| t.retry_after)
}

/// The `Retry-After` of a response, if it has a valid one.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    retry_after_header(response.headers(), SystemTime::now())
}

/// The `Retry-After` header of `headers`, relative to `now`.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// Parse a `Retry-After` value: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, a date already past means now). `None` when invalid.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

impl Backoff {
    /// How long to wait before the next attempt after attempt number `attempt` (0 = the first)
    /// failed `elapsed` after the first one started, or `None` to give up: the verdict says
    /// stop, the attempts are used up, or the budget's deadline has come.
    pub fn next_wait(&self, attempt: u32, verdict: Verdict, elapsed: Duration, budget: &Budget) -> Option<Duration> {
        if attempt + 1 >= self.attempts.max(1) || elapsed >= budget.total {
            return None;
        }
        let wait = match verdict {
            Verdict::Stop => return None,
            Verdict::Retry => self.delay(attempt),
            Verdict::RetryAfter(asked) => asked.min(budget.max_retry_after),
        };
        Some(wait.min(budget.total - elapsed))
    }

    /// Run `op` until it succeeds, `verdict` says stop, the attempts are used up or the budget's
    /// deadline has come; waits honour a server-requested delay. The last error is returned.
    pub async fn run_within<T, E, F, Fut>(
        &self,
        budget: Budget,
        mut op: F,
        verdict: impl Fn(&E) -> Verdict,
    ) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let start = tokio::time::Instant::now();
        let mut attempt = 0;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) => match self.next_wait(attempt, verdict(&e), start.elapsed(), &budget) {
                    Some(wait) => {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }

    /// The same for blocking code.
    pub fn run_blocking_within<T, E>(
        &self,
        budget: Budget,
        mut op: impl FnMut(u32) -> Result<T, E>,
        verdict: impl Fn(&E) -> Verdict,
    ) -> Result<T, E> {
        let start = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            match op(attempt) {
                Ok(v) => return Ok(v),
                Err(e) => match self.next_wait(attempt, verdict(&e), start.elapsed(), &budget) {
                    Some(wait) => {
                        std::thread::sleep(wait);
                        attempt += 1;
                    }
                    None => return Err(e),
                },
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

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(secs(0)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(secs(0)), "past date: now");
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after_header(&headers, now), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after_header(&headers, now), Some(secs(7)));
    }

    #[test]
    fn throttled_in_the_chain_gives_the_servers_delay() {
        use anyhow::Context;
        let err = Err::<(), _>(Throttled { what: "Cloudflare API".into(), retry_after: secs(3) })
            .context("cannot update record db")
            .unwrap_err();
        assert_eq!(Verdict::of(&err, false), Verdict::RetryAfter(secs(3)));
        assert!(format!("{err:#}").contains("Cloudflare API: rate limited; the server asks to retry after 3.0s"));
        let plain = anyhow::anyhow!("connection refused");
        assert_eq!(Verdict::of(&plain, true), Verdict::Retry);
        assert_eq!(Verdict::of(&plain, false), Verdict::Stop);
    }

    #[test]
    fn next_wait_prefers_the_server_delay_capped_and_cut_to_the_deadline() {
        let b = Backoff { attempts: 10, base: Duration::from_millis(100), max: secs(1) };
        let budget = Budget { total: secs(60), max_retry_after: secs(20) };
        assert_eq!(b.next_wait(0, Verdict::RetryAfter(secs(5)), secs(0), &budget), Some(secs(5)));
        assert_eq!(b.next_wait(0, Verdict::RetryAfter(secs(3600)), secs(0), &budget), Some(secs(20)), "capped");
        assert_eq!(b.next_wait(0, Verdict::RetryAfter(secs(20)), secs(50), &budget), Some(secs(10)), "cut");
        assert_eq!(b.next_wait(0, Verdict::Retry, secs(60), &budget), None, "deadline reached");
        assert_eq!(b.next_wait(0, Verdict::Stop, secs(0), &budget), None);
        assert_eq!(b.next_wait(9, Verdict::Retry, secs(0), &budget), None, "attempts used up");
        let d = b.next_wait(1, Verdict::Retry, secs(0), &budget).unwrap();
        assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200), "backoff: {d:?}");
    }

    /// Runs `run_within` on paused tokio time; returns the (virtual) start offset of each attempt.
    async fn attempts_at(b: Backoff, budget: Budget, verdicts: Vec<Verdict>) -> (Result<u32, Verdict>, Vec<Duration>) {
        let start = tokio::time::Instant::now();
        let starts = std::cell::RefCell::new(Vec::new());
        let r = b
            .run_within(
                budget,
                |n| {
                    starts.borrow_mut().push(start.elapsed());
                    let v = verdicts.get(n as usize).copied();
                    async move {
                        match v {
                            Some(v) => Err(v),
                            None => Ok(n),
                        }
                    }
                },
                |v| *v,
            )
            .await;
        (r, starts.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn waits_what_the_server_asks_instead_of_the_backoff() {
        let b = Backoff { attempts: 5, base: Duration::from_millis(10), max: Duration::from_millis(20) };
        let budget = Budget { total: secs(120), max_retry_after: secs(30) };
        let (r, starts) =
            attempts_at(b, budget, vec![Verdict::RetryAfter(secs(7)), Verdict::RetryAfter(secs(100))]).await;
        assert_eq!(r, Ok(2));
        assert_eq!(starts, vec![secs(0), secs(7), secs(37)], "7 s as asked, then capped at 30 s");
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_after_the_total_deadline() {
        let b = Backoff { attempts: 100, base: secs(4), max: secs(4) };
        let budget = Budget { total: secs(10), max_retry_after: secs(30) };
        let (r, starts) = attempts_at(b, budget, vec![Verdict::RetryAfter(secs(6)); 100]).await;
        assert_eq!(r, Err(Verdict::RetryAfter(secs(6))));
        assert_eq!(starts, vec![secs(0), secs(6), secs(10)], "the second wait is cut to the deadline");
        let (_, starts) = attempts_at(b, budget, vec![Verdict::Retry; 100]).await;
        assert!(starts.iter().all(|s| *s <= secs(10)) && starts.last() == Some(&secs(10)), "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_verdict_returns_at_once() {
        let (r, starts) = attempts_at(Backoff::default(), Budget::default(), vec![Verdict::Stop]).await;
        assert_eq!((r, starts), (Err(Verdict::Stop), vec![secs(0)]));
    }

    #[test]
    fn blocking_form_honours_the_verdict() {
        let b = Backoff { attempts: 3, base: Duration::from_millis(1), max: Duration::from_millis(1) };
        let mut calls = 0;
        let r: Result<(), Verdict> = b.run_blocking_within(
            Budget::default(),
            |_| {
                calls += 1;
                Err(if calls == 1 { Verdict::RetryAfter(Duration::ZERO) } else { Verdict::Stop })
            },
            |v| *v,
        );
        assert_eq!((r, calls), (Err(Verdict::Stop), 2));
    }
}
