//! Reading files on worker threads while everything else stays on the calling thread, in
//! order.
//!
//! Vendored change (see vendor/README.md in standby). Upstream sent every item of a backup,
//! changed or not, through `pariter`'s parallel map: two channel hand-offs and a thread
//! wake-up per item. For a re-run where almost every file matches its parent, that hand-off
//! was the backup: on two cores about 0.6 s of CPU for 20,000 unchanged files, spinning and
//! switching threads, while the walk itself took 0.2 s. Here only the items whose content
//! must be read (new or changed regular files) go to the workers; the others are processed
//! in place. Results still reach the tree archiver in walk order: a queue holds each item's
//! slot, and its front is taken as soon as it is ready.

use std::collections::VecDeque;

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded};

use crate::error::{ErrorKind, RusticError, RusticResult};

/// At most this many items wait in the queue behind one that is still being read.
const QUEUE_LIMIT: usize = 1024;

enum Slot<T> {
    Ready(RusticResult<T>),
    Pending(Receiver<RusticResult<T>>),
}

/// Runs `work` on `threads` scoped worker threads for the items `heavy` picks, `work` in place
/// for the others, and hands every result to `sink` in the order of `items`.
pub(crate) fn process_in_order<'scope, 'env, In, Out>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    threads: usize,
    items: impl Iterator<Item = In>,
    heavy: impl Fn(&In) -> bool,
    work: &'env (impl Fn(In) -> RusticResult<Out> + Sync),
    mut sink: impl FnMut(RusticResult<Out>) -> RusticResult<()>,
) -> RusticResult<()>
where
    In: Send + 'env,
    Out: Send + 'env,
{
    let threads = threads.max(1);
    let (work_tx, work_rx) = bounded::<(In, Sender<RusticResult<Out>>)>(threads);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let rx = work_rx.clone();
            scope.spawn(move || {
                for (item, done) in rx {
                    // The receiver is gone only when the caller stopped early.
                    let _ = done.send(work(item));
                }
            })
        })
        .collect();
    drop(work_rx);

    let mut queue: VecDeque<Slot<Out>> = VecDeque::new();
    let result = (|| -> RusticResult<()> {
        for item in items {
            if heavy(&item) {
                let (tx, rx) = bounded(1);
                work_tx.send((item, tx)).map_err(|_| workers_gone())?;
                queue.push_back(Slot::Pending(rx));
            } else {
                queue.push_back(Slot::Ready(work(item)));
            }
            drain(&mut queue, &mut sink, QUEUE_LIMIT)?;
        }
        drain(&mut queue, &mut sink, 0)
    })();
    drop(work_tx);
    drop(queue);
    // Every worker is joined; a worker's panic goes on to the caller, as with pariter.
    let mut panicked = None;
    for worker in workers {
        if let (Err(payload), None) = (worker.join(), &panicked) {
            panicked = Some(payload);
        }
    }
    if let Some(payload) = panicked {
        std::panic::resume_unwind(payload);
    }
    result
}

/// Hands the ready front of `queue` to `sink`; waits for the front while more than `keep`
/// items are queued.
fn drain<T>(
    queue: &mut VecDeque<Slot<T>>,
    sink: &mut impl FnMut(RusticResult<T>) -> RusticResult<()>,
    keep: usize,
) -> RusticResult<()> {
    while let Some(slot) = queue.pop_front() {
        let result = match slot {
            Slot::Ready(result) => result,
            // `queue.len() + 1` items were queued with this one.
            Slot::Pending(rx) if queue.len() >= keep => rx.recv().map_err(|_| workers_gone())?,
            Slot::Pending(rx) => match rx.try_recv() {
                Ok(result) => result,
                Err(TryRecvError::Empty) => {
                    queue.push_front(Slot::Pending(rx));
                    return Ok(());
                }
                Err(TryRecvError::Disconnected) => return Err(workers_gone()),
            },
        };
        sink(result)?;
    }
    Ok(())
}

fn workers_gone() -> Box<RusticError> {
    RusticError::new(ErrorKind::Internal, "A backup worker thread stopped unexpectedly.").ask_report()
}
