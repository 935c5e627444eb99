//! The signals that stop a run: SIGINT (Ctrl-C), SIGTERM (`docker stop`, CI
//! cancellation, `timeout`, `kill`) and SIGHUP (a closed terminal or a dropped
//! SSH session).
//!
//! All three are handled alike — the run is cancelled through its execution
//! context, which kills every program the agents started, and the partial
//! trace is written — so that however `orchestra` is stopped, it leaves no
//! orphaned process behind. It then exits with the shell's convention for a
//! process ended by the signal: 128 + its number (130, 143, 129). The note
//! the first signal prints says so, and that a second exits at once.
//!
//! A second signal (any of the three, at any time after the first: while
//! the run stops, at a prompt, while the summary and traces are written or
//! the programs being stopped get their grace period) is for when stopping
//! takes too long — a store that stopped answering, a program slow to stop:
//! every program the agents still have running or stopping, and what they
//! started, is killed at once (`SIGKILL`,
//! [`kill_running_programs`](claude_agent_sdk::agents::kill_running_programs)),
//! a note says so, and `orchestra` exits with the first signal's code,
//! writing no summary, trace or result. The store may then lack the run's
//! end: `orchestra runs` lists such a run as crashed, and `orchestra resume`
//! continues it. The signals are watched on a thread of their own, with a
//! runtime of its own, so that a second one is acted on whatever the run's
//! runtime is doing, and after it is shut down.
//!
//! Once the run is over ([`Signals::run_over`]: while the result, the
//! summary and the traces are written, or an OTLP export waits for its
//! collector), there is no run left to cancel: the first signal then exits
//! at once, as a second one would. So does one that came as the run ended,
//! too late for the run to take it.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

/// The signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP.
    HangUp,
}

impl Stop {
    /// The exit code: 128 + the signal's number.
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
            Self::HangUp => 129,
        }
    }

    /// How the signal is known to users.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "Ctrl-C",
            Self::Terminate => "SIGTERM",
            Self::HangUp => "SIGHUP",
        }
    }
}

/// The headline of the note printed by a signal that exits at once: `again`,
/// a second signal after `first` had the run cancelled (`Ctrl-C again:
/// exiting now`), or the first itself when the run was over.
#[must_use]
pub fn exiting_now(first: Stop, again: Option<Stop>) -> String {
    match again {
        Some(again) if again == first => format!("{} again: exiting now", again.name()),
        Some(again) => format!("{}: exiting now", again.name()),
        None => format!("{}: exiting now", first.name()),
    }
}

/// What a signal that exits at once prints before the process exits: the
/// note, given its headline ([`exiting_now`]).
type Tell = Box<dyn FnOnce(&str) + Send>;

/// Listens for the signals that stop a run, from its creation on: hands the
/// first to the run ([`next`](Self::next)) and exits on the second, or on the
/// first once the run is over (see the module docs).
pub struct Signals {
    first: mpsc::UnboundedReceiver<Stop>,
    exit: Arc<ExitNow>,
}

impl Signals {
    /// Starts listening, inside the tokio runtime, on a thread of its own
    /// (so that a second signal is acted on whatever the run's runtime is
    /// doing, and after it is shut down); `tell(headline)` prints the note of
    /// a signal that exits the process. A signal whose handler cannot be
    /// installed keeps its default action.
    #[must_use]
    pub fn listen(tell: impl FnOnce(&str) + Send + 'static) -> Self {
        let (sender, first) = mpsc::unbounded_channel();
        let exit = Arc::new(ExitNow {
            tell: Mutex::new(Some(Box::new(tell))),
        });
        let watch = Arc::new(Mutex::new(Some(Watch {
            sender,
            exit: Arc::clone(&exit),
        })));
        let taken = Arc::clone(&watch);
        let (installed_tx, installed) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                let Some(watch) = take(&taken) else {
                    return;
                };
                runtime.block_on(async move {
                    let listeners = Listeners::install();
                    let _ = installed_tx.send(());
                    watch.run(listeners).await;
                });
            });
        // Listening before the run starts: the thread says when it is (or
        // ends without, leaving the watch for this runtime).
        if spawned.is_err() || installed.recv().is_err() {
            if let Some(watch) = take(&watch) {
                let listeners = Listeners::install();
                tokio::spawn(watch.run(listeners));
            }
        }
        Self { first, exit }
    }

    /// The first signal; pending forever when none can be received.
    pub async fn next(&mut self) -> Stop {
        match self.first.recv().await {
            Some(stop) => stop,
            None => std::future::pending().await,
        }
    }

    /// The run is over, and takes no signal any more: the first one now
    /// exits at once — and so does one that came as the run ended, which it
    /// did not take.
    pub fn run_over(mut self) {
        // Closed, the channel refuses the watch's next signal (which then
        // exits) but still holds one sent before.
        self.first.close();
        if let Ok(untaken) = self.first.try_recv() {
            self.exit.now(untaken, &exiting_now(untaken, None));
        }
    }
}

/// What watches the signals: where the first goes, and how to exit.
struct Watch {
    sender: mpsc::UnboundedSender<Stop>,
    exit: Arc<ExitNow>,
}

impl Watch {
    /// Hands the first signal to the run — or, the run over, exits on it —
    /// and exits on the second.
    async fn run(self, mut listeners: Listeners) {
        let first = listeners.next().await;
        if self.sender.send(first).is_err() {
            self.exit.now(first, &exiting_now(first, None));
        }
        let again = listeners.next().await;
        self.exit.now(first, &exiting_now(first, Some(again)));
    }
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// How a signal exits the process at once, from whichever thread sees it.
struct ExitNow {
    /// Prints the note; taken by the first to exit.
    tell: Mutex<Option<Tell>>,
}

impl ExitNow {
    /// Kills every program the run's agents still have running or
    /// stopping, prints the note under `headline`, and exits with the first
    /// signal's code — writing nothing else, waiting for nothing.
    fn now(&self, first: Stop, headline: &str) -> ! {
        #[cfg(unix)]
        claude_agent_sdk::agents::kill_running_programs();
        if let Some(tell) = take(&self.tell) {
            tell(headline);
        }
        std::process::exit(i32::from(first.exit_code()))
    }
}

/// The signals' listeners, on the runtime that installed them.
struct Listeners {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hang_up: Option<tokio::signal::unix::Signal>,
}

impl Listeners {
    /// Installs the handlers (inside a tokio runtime).
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
                hang_up: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next signal; pending forever when none can be received.
    async fn next(&mut self) -> Stop {
        #[cfg(unix)]
        {
            async fn received(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
                match signal {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                Some(()) = received(&mut self.interrupt) => Stop::Interrupt,
                Some(()) = received(&mut self.terminate) => Stop::Terminate,
                Some(()) = received(&mut self.hang_up) => Stop::HangUp,
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => Stop::Interrupt,
                Err(_) => std::future::pending().await,
            }
        }
    }
}
