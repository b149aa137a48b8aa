//! `watch`: the daemon. Each target is probed on its own interval (with jitter, so targets do
//! not fire together), at most `concurrency` probes at once; samples are recorded in batches
//! once a second. SIGTERM or SIGINT stops the probes, writes what was collected and exits 0.
//! `--metrics-listen` serves Prometheus metrics on `/metrics` and takes heartbeat pings on
//! `POST /ping/NAME` (`/ping/NAME/fail` for a failure; the body, if any, is the message).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use standby_common::daemon;
use standby_common::duration::HumanDuration;
use standby_common::exit::Code;
use tokio::sync::{mpsc, Semaphore};

use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::setup::Setup;
use crate::target::Sample;

const BATCH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Serve Prometheus metrics on this address (GET /metrics) and take heartbeat pings
    /// (POST /ping/NAME, POST /ping/NAME/fail)
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Stop after this long (tests, benchmarks)
    #[arg(long, value_name = "DUR", hide = true)]
    pub stop_after: Option<HumanDuration>,
}

pub fn run(setup: &Setup, args: &Args) -> anyhow::Result<Code> {
    setup.require_targets()?;
    let _lock = setup.ctx.state()?.lock("check")?;
    let stop_after = args.stop_after.map(HumanDuration::get);
    // One thread runs every probe: thousands of targets cost less CPU than on a pool whose
    // threads wake each other; the history is written on a thread of its own (see `flush`).
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(daemon(
        setup,
        args.metrics_listen,
        stop_after,
    ))
}

async fn daemon(
    setup: &Setup,
    metrics_listen: Option<SocketAddr>,
    stop_after: Option<Duration>,
) -> anyhow::Result<Code> {
    let monitor = Arc::new(setup.monitor());
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let (tx, mut rx) = mpsc::channel::<Sample>(4096);
    if let Some(addr) = metrics_listen {
        let listener = daemon::bind_metrics(addr).await?;
        let metrics = metrics.clone();
        let render = move || metrics.lock().map(|m| m.render()).unwrap_or_default();
        tokio::spawn(daemon::serve(listener, Arc::new(render), Some(ping_routes(setup, &monitor, tx.clone()))));
    }
    let limit = Arc::new(Semaphore::new(setup.concurrency().max(1)));
    let client = crate::monitor::lean_client();
    let mut probes = tokio::task::JoinSet::new();
    let epoch = tokio::time::Instant::now();
    for i in 0..setup.targets.len() {
        let (tx, limit, client, targets) = (tx.clone(), limit.clone(), client.clone(), setup.targets.clone());
        probes.spawn(async move {
            let t = &targets[i];
            let interval = t.interval;
            // Spread the first probes over one interval.
            tokio::time::sleep_until(slot(epoch, interval.mul_f64(fastrand::f64()))).await;
            loop {
                let sample = {
                    let _permit = limit.acquire().await;
                    crate::monitor::probe_guarded(t, client.as_ref()).await
                };
                if tx.send(sample).await.is_err() {
                    return;
                }
                tokio::time::sleep_until(slot(epoch, interval.mul_f64(0.9 + 0.2 * fastrand::f64()))).await;
            }
        });
    }
    drop(tx);
    let stop = daemon::shutdown(stop_after);
    tokio::pin!(stop);
    let mut batch = Vec::new();
    let mut tick = tokio::time::interval(BATCH_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(s) = rx.recv() => batch.push(s),
            _ = tick.tick() => {
                if !batch.is_empty() {
                    flush(&monitor, &metrics, std::mem::take(&mut batch), setup).await;
                }
            }
        }
    }
    // Clean stop: no new probes, record what was collected.
    probes.abort_all();
    while let Ok(s) = rx.try_recv() {
        batch.push(s);
    }
    if !batch.is_empty() {
        flush(&monitor, &metrics, batch, setup).await;
    }
    tracing::info!("stopped");
    Ok(Code::Ok)
}

/// Probes start on a grid of this step: the probes due in one step are sent on one wake-up of
/// the daemon instead of one each (thousands of targets cost far less CPU), and a probe is
/// late by less than a step.
const SLOT: Duration = Duration::from_millis(50);

/// The first grid point (see [`SLOT`]) at least `after` from now.
fn slot(epoch: tokio::time::Instant, after: Duration) -> tokio::time::Instant {
    let due = (tokio::time::Instant::now() + after).saturating_duration_since(epoch);
    let step = SLOT.as_nanos();
    let slots = due.as_nanos().div_ceil(step);
    epoch + Duration::from_nanos(u64::try_from(slots * step).unwrap_or(u64::MAX))
}

/// `POST /ping/NAME[/fail]` (GET too, as curl-from-cron pings of healthchecks.io do) for
/// heartbeat targets: 200 once the ping is in the history, 404 for another name, 503 when the
/// history cannot be written. The target is judged at once (in the next batch), so a failure
/// ping alerts without waiting for the target's interval.
fn ping_routes(setup: &Setup, monitor: &Arc<Monitor>, judge: mpsc::Sender<Sample>) -> daemon::Handler {
    let heartbeats: Arc<Vec<crate::target::Target>> =
        Arc::new(setup.targets.iter().filter(|t| t.kind == crate::config::Kind::Heartbeat).cloned().collect());
    let monitor = monitor.clone();
    Arc::new(move |req: daemon::Request| {
        let (heartbeats, monitor, judge) = (heartbeats.clone(), monitor.clone(), judge.clone());
        Box::pin(async move {
            let rest = req.path.strip_prefix("/ping/")?;
            let (name, ok) = match rest.strip_suffix("/fail") {
                Some(name) => (name.to_string(), false),
                None => (rest.to_string(), true),
            };
            let Some(target) = heartbeats.iter().find(|t| t.name == name).cloned() else {
                return Some(("404 Not Found", format!("no heartbeat target {name:?}\n")));
            };
            if req.method != "POST" && req.method != "GET" {
                return Some(("405 Method Not Allowed", "use POST\n".to_string()));
            }
            let message = crate::heartbeat::message(&String::from_utf8_lossy(&req.body));
            let done = tokio::task::spawn_blocking(move || monitor.ping(&name, ok, message)).await;
            Some(match done {
                Ok(Ok(p)) => {
                    let _ = judge.send(crate::monitor::probe_guarded(&target, None).await).await;
                    ("200 OK", format!("pinged {} ({})\n", p.target, if p.ok { "ok" } else { "fail" }))
                }
                Ok(Err(e)) => {
                    tracing::error!("a ping could not be recorded: {e:#}");
                    ("503 Service Unavailable", "the ping could not be recorded\n".to_string())
                }
                Err(_) => ("500 Internal Server Error", "the ping failed\n".to_string()),
            })
        })
    })
}

async fn flush(monitor: &Arc<Monitor>, metrics: &Arc<Mutex<Metrics>>, batch: Vec<Sample>, setup: &Setup) {
    // A plain thread, not `spawn_blocking`: outside any runtime, the PostgreSQL store's
    // blocking client runs each query on the calling thread.
    let m = monitor.clone();
    let (done, recorded) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("record".into()).spawn(move || {
        let _ = done.send(m.record(batch));
    });
    if let Err(e) = spawned {
        tracing::error!("recording failed: cannot start a thread: {e}");
        return;
    }
    match recorded.await {
        Ok(Ok((round, _transitions))) => {
            // Delivery runs beside the probes and the next batches (the outbox keeps the rest).
            let m = monitor.clone();
            tokio::spawn(async move { m.deliver().await });
            if let Ok(mut guard) = metrics.lock() {
                guard.update(&round);
            }
            if setup.ctx.output.json {
                let _ = setup.ctx.output.line(&round);
            } else {
                for l in round.targets.iter().filter(|l| l.transition.is_some()) {
                    tracing::warn!("{}: {:?}", l.target, l.transition);
                }
            }
        }
        Ok(Err(e)) => tracing::error!("{e:#}"),
        Err(_) => tracing::error!("recording failed: the thread writing the history stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_start_on_the_grid_no_earlier_than_asked_and_less_than_a_step_late() {
        let epoch = tokio::time::Instant::now() - Duration::from_millis(7);
        for ms in [0, 1, 49, 50, 51, 9_999, 10_013] {
            let after = Duration::from_millis(ms);
            let before = tokio::time::Instant::now();
            let at = slot(epoch, after);
            let then = tokio::time::Instant::now();
            assert!(at >= before + after, "{ms} ms: not earlier than asked");
            assert!(at < then + after + SLOT, "{ms} ms: less than a step late");
            assert_eq!((at - epoch).as_nanos() % SLOT.as_nanos(), 0, "{ms} ms: on the grid");
        }
    }
}
