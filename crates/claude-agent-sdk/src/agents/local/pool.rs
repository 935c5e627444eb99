//! The generation threads: a fixed pool, sized to the machine's cores, that
//! runs model work off the async runtime.
//!
//! A forward pass holds a core for milliseconds to seconds; on a tokio worker
//! it would stall timers, I/O and the orchestration's own bookkeeping (and a
//! cancelled attempt could not even be noticed). Jobs queue here instead, and
//! the async side awaits a channel. The threads start on first use and live
//! for the process.
//!
//! How many: one per core by default. candle's matrix kernels also spread
//! each product over the cores (its own pool), so the two overlap: one
//! generation's attention and sampling run while another's product runs.
//! On the main job (four agents at once) this beat a single generation
//! thread clearly (8.6 s against 15–29 s on a busy 2-core machine), though
//! on an eight-agent benchmark under heavy load one thread did better
//! (BENCHMARKS.md). `CLAUDE_AGENT_SDK_LOCAL_THREADS` sets another count.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send + 'static>;

fn queue() -> &'static Mutex<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = std::sync::Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("local-model-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        // A panicking job must not take the thread with it.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        Err(_) => break,
                    }
                });
            // Without threads the jobs would wait forever: run them inline instead.
            if spawned.is_err() {
                break;
            }
        }
        Mutex::new(tx)
    })
}

/// The environment variable that sets the number of generation threads.
const THREADS_ENV: &str = "CLAUDE_AGENT_SDK_LOCAL_THREADS";

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
    let sender = match queue().lock() {
        Ok(q) => q.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    if let Err(returned) = sender.send(job) {
        (returned.0)();
    }
    rx
}
