//! Writing to standard output and standard error without panicking.
//!
//! `println!` and `eprintln!` panic when the stream is closed — `orchestra graph
//! FILE | head -1` closes standard output after one line, and a CI log
//! collector may close standard error — which turned a finished run into exit
//! 101 and a panic message. Everything `orchestra` prints goes through these
//! macros instead: a failed write is dropped, so a closed stream ends the
//! output quietly and the command still finishes its work (a run still writes
//! its trace) and exits with its own code.

use std::fmt;
use std::io::Write as _;

/// Writes to standard output; a closed or failing stream is ignored.
pub fn stdout(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (EPIPE) is the reader's choice, not an error of the run.
    let _ = out.write_fmt(args).and_then(|()| out.flush());
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
