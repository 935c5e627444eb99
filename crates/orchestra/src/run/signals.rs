//! The signals that stop a run: SIGINT (Ctrl-C), SIGTERM (`docker stop`, CI
//! cancellation, `timeout`, `kill`) and SIGHUP (a closed terminal or a dropped
//! SSH session).
//!
//! All three are handled alike — the run is cancelled through its execution
//! context, which kills every program the agents started, and the partial
//! trace is written — so that however `orchestra` is stopped, it leaves no
//! orphaned process behind. It then exits with the shell's convention for a
//! process ended by the signal: 128 + its number (130, 143, 129).

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

/// Listens for the signals that stop a run, from its creation on.
pub struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hang_up: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Starts listening (inside the tokio runtime). A signal whose handler
    /// cannot be installed keeps its default action.
    #[must_use]
    pub fn listen() -> Self {
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
    pub async fn next(&mut self) -> Stop {
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
