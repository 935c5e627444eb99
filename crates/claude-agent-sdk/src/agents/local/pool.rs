//! The generation threads: a fixed pool, sized to the machine's cores, that
//! runs model work off the async runtime — whole generations ([`run`]), and
//! the pieces of one matrix product ([`share`]) when a thread is free.
//!
//! A forward pass holds a core for milliseconds to seconds; on a tokio worker
//! it would stall timers, I/O and the orchestration's own bookkeeping (and a
//! cancelled attempt could not even be noticed). Jobs queue here instead, and
//! the async side awaits a channel. The threads start on first use and live
//! for the process. One per core by default; `CLAUDE_AGENT_SDK_LOCAL_THREADS`
//! sets another count.
//!
//! **Sharing a product.** A generation splits each matrix product into items
//! (ranges of weight rows) and calls [`share`]: it works through the items
//! itself, and any pool thread with no generation of its own takes items
//! too. So one generation alone uses every core, while eight generations at
//! once each compute their own products with no hand-over and no waiting
//! (no thread is idle to help). An idle thread spins for a moment before it
//! sleeps, because a generation's products follow each other within
//! microseconds and waking a sleeping thread takes longer than that.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle thread watches for work before it sleeps.
const SPIN: Duration = Duration::from_millis(2);

/// The environment variable that sets the number of generation threads.
const THREADS_ENV: &str = "CLAUDE_AGENT_SDK_LOCAL_THREADS";

/// The items of one shared product, type-erased.
struct Shared {
    /// Runs item `i` of `context`.
    run: unsafe fn(*const (), usize),
    /// The caller's [`Items`], on its stack.
    context: *const (),
    count: usize,
    /// The next item to claim; claims at or past `count` get nothing.
    next: AtomicUsize,
    /// Items finished (or panicked).
    done: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `context` points to an `Items<T, F>` with `T: Send` and
// `F: Sync`, and is only used through `run` for a claimed item while the
// caller of `share` waits (see `share`).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Claims and runs items until none are left; returns whether it ran any.
    fn work(&self) -> bool {
        let mut ran = false;
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count {
                return ran;
            }
            ran = true;
            // SAFETY: item `i` is claimed by this thread alone, and the caller
            // of `share` keeps `context` alive until `done` reaches `count`,
            // which it cannot before this item's increment below.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (self.run)(self.context, i) }));
            if let Err(payload) = result {
                if let Ok(mut slot) = self.panic.lock() {
                    slot.get_or_insert(payload);
                }
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    fn has_items(&self) -> bool {
        self.next.load(Ordering::Relaxed) < self.count
    }
}

/// What [`Shared::context`] points to.
struct Items<'a, T, F> {
    items: *mut T,
    work: &'a F,
}

/// # Safety
/// `context` points to a live `Items<T, F>`, and no other call has item `i`.
unsafe fn run_item<T, F: Fn(&mut T)>(context: *const (), i: usize) {
    let items = &*context.cast::<Items<'_, T, F>>();
    (items.work)(&mut *items.items.add(i));
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    shared: Vec<Arc<Shared>>,
    /// Threads waiting on the condition variable.
    sleeping: usize,
}

struct Pool {
    state: Mutex<State>,
    wake: Condvar,
    /// Bumped whenever a job or a shared product is posted.
    posted: AtomicUsize,
    /// Threads running no job (spinning or sleeping).
    idle: AtomicUsize,
    /// Threads started.
    threads: AtomicUsize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn post(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        f(&mut state);
        self.posted.fetch_add(1, Ordering::Release);
        if state.sleeping > 0 {
            self.wake.notify_all();
        }
    }

    /// A generation thread's life: take a job, or help with a product, or
    /// watch for either, then sleep.
    fn serve(&self) {
        loop {
            let seen = self.posted.load(Ordering::Acquire);
            let (job, shared) = {
                let mut state = self.lock();
                match state.jobs.pop_front() {
                    Some(job) => (Some(job), None),
                    None => (None, state.shared.iter().find(|s| s.has_items()).cloned()),
                }
            };
            if let Some(job) = job {
                self.idle.fetch_sub(1, Ordering::Relaxed);
                // A panicking job must not take the thread with it.
                let _ = catch_unwind(AssertUnwindSafe(job));
                self.idle.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Some(shared) = shared {
                shared.work();
                continue;
            }
            // Watch for work for a moment; past the first microseconds,
            // yield between looks, so that on a busy machine the watching
            // does not take the core from a thread with work to do.
            let spin_started = Instant::now();
            let mut looks = 0u32;
            while self.posted.load(Ordering::Acquire) == seen && spin_started.elapsed() < SPIN {
                looks += 1;
                if looks < 256 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            let mut state = self.lock();
            while self.posted.load(Ordering::Acquire) == seen {
                state.sleeping += 1;
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state.sleeping -= 1;
            }
        }
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        // Leaked: the threads live for the process and borrow it for good.
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            state: Mutex::default(),
            wake: Condvar::new(),
            posted: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            threads: AtomicUsize::new(0),
        }));
        for i in 0..threads() {
            pool.idle.fetch_add(1, Ordering::Relaxed);
            let spawned = std::thread::Builder::new()
                .name(format!("local-model-{i}"))
                .spawn(move || pool.serve());
            if spawned.is_err() {
                pool.idle.fetch_sub(1, Ordering::Relaxed);
                break;
            }
            pool.threads.fetch_add(1, Ordering::Relaxed);
        }
        pool
    })
}

/// The number of generation threads: `$CLAUDE_AGENT_SDK_LOCAL_THREADS`, else
/// the available cores.
pub(crate) fn threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
}

/// Runs `job` on a generation thread; its result arrives on the returned
/// channel (which closes without a value if the job panicked).
pub(crate) fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    let pool = pool();
    if pool.threads.load(Ordering::Relaxed) == 0 {
        // No thread could be started: run it here rather than never.
        job();
    } else {
        pool.post(|state| state.jobs.push_back(job));
    }
    rx
}

/// Runs `work` on every item, on this thread and on any generation thread
/// that has nothing else to do; returns when every item is done. A panic in
/// `work` is raised here, after every item has finished.
pub(crate) fn share<T: Send, F: Fn(&mut T) + Sync>(items: &mut [T], work: &F) {
    let pool = pool();
    if items.len() < 2 || pool.idle.load(Ordering::Relaxed) == 0 {
        items.iter_mut().for_each(work);
        return;
    }
    let context = Items {
        items: items.as_mut_ptr(),
        work,
    };
    let shared = Arc::new(Shared {
        run: run_item::<T, F>,
        context: std::ptr::from_ref(&context).cast::<()>(),
        count: items.len(),
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panic: Mutex::new(None),
    });
    pool.post(|state| state.shared.push(Arc::clone(&shared)));
    shared.work();
    pool.lock().shared.retain(|s| !Arc::ptr_eq(s, &shared));
    // Every item is claimed; wait for those other threads are still running.
    // `context` (and the items it lends) must outlive them: this wait is what
    // makes the lending in `run_item` sound, so it cannot be skipped, even
    // when an item panicked.
    // A thread with an item may have lost its core to another process:
    // after a short spin, yield ours, so that it can run here.
    let mut looks = 0u32;
    while shared.done.load(Ordering::Acquire) < shared.count {
        looks += 1;
        if looks < 256 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    let panic = shared.panic.lock().ok().and_then(|mut p| p.take());
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_once_whoever_runs_it() {
        for n in [0usize, 1, 2, 7, 1000] {
            let mut items: Vec<usize> = vec![0; n];
            share(&mut items, &|x: &mut usize| *x += 1);
            assert!(items.iter().all(|&x| x == 1), "{n} items");
        }
    }

    #[test]
    fn a_panicking_item_panics_the_caller() {
        let finished = AtomicUsize::new(0);
        let mut items: Vec<usize> = (0..64).collect();
        let result = catch_unwind(AssertUnwindSafe(|| {
            share(&mut items, &|x: &mut usize| {
                assert!(*x != 13, "item 13");
                finished.fetch_add(1, Ordering::Relaxed);
            });
        }));
        assert!(result.is_err());
        assert!(finished.load(Ordering::Relaxed) <= 63);
    }

    #[tokio::test]
    async fn jobs_run_and_return_their_result() {
        let answers: Vec<_> = (0..8).map(|i| run(move || i * 2)).collect();
        for (i, rx) in answers.into_iter().enumerate() {
            assert_eq!(rx.await.ok(), Some(i * 2));
        }
    }
}
