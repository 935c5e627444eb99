//! Writing to standard output and standard error without panicking.
//!
//! `println!` and `eprintln!` panic when the stream is closed — `orchestra graph
//! FILE | head -1` closes standard output after one line, and a CI log
//! collector may close standard error — which turned a finished run into exit
//! 101 and a panic message. Everything `orchestra` prints goes through these
//! macros instead, which never panic. A reader that closed the pipe early
//! ends the output quietly: the command still finishes its work (a run still
//! writes its trace) and exits with its own code. Any other failure to write
//! standard output (a full disk, a device error) means the result did not
//! reach its reader: it is kept here, and `main` reports it and fails.

use std::fmt;
use std::io::Write as _;
use std::sync::OnceLock;

/// The first failure to write standard output other than a closed pipe.
static STDOUT_FAILURE: OnceLock<String> = OnceLock::new();

/// Writes to standard output; a closed pipe is ignored, any other failure
/// is kept for [`stdout_failure`].
pub fn stdout(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.flush()) {
        // A closed pipe (EPIPE) is the reader's choice, not an error of the run.
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_FAILURE.set(error.to_string());
        }
    }
}

/// Why writing standard output failed, if it did (not a closed pipe).
pub fn stdout_failure() -> Option<&'static str> {
    STDOUT_FAILURE.get().map(String::as_str)
}

/// Writes to standard error; a closed or failing stream is ignored.
pub fn stderr(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that never panics.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(format_args!($($arg)*)) };
}

/// `println!` that never panics.
macro_rules! outln {
    () => { $crate::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => { $crate::output::stderr(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    () => { $crate::output::stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}
