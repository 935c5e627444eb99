//! Live progress on a terminal: the run is started under a pseudo-terminal
//! (`script` from util-linux), so stderr is a TTY and the lines are redrawn in
//! place.

mod common;

use std::process::Command;

use common::fixture;

#[test]
fn on_a_terminal_each_agent_has_a_line_redrawn_in_place() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let command = format!(
        "{} run {} --input hi",
        env!("CARGO_BIN_EXE_orchestra"),
        fixture("pipeline.toml").display()
    );
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    // Cursor movements: the lines are redrawn, not appended.
    assert!(
        screen.contains("\u{1b}[1A") || screen.contains("\u{1b}[2K"),
        "{screen}"
    );
    // Waiting, then done with a check mark, for agents and groups alike.
    assert!(screen.contains("waiting"), "{screen}");
    for name in [
        "upper", "fanout", "count", "inner", "quote", "wrap", "final",
    ] {
        assert!(
            screen
                .lines()
                .any(|l| l.contains(name) && l.contains('✓') && l.contains("done")),
            "no done line for {name}:\n{screen}"
        );
    }
    // No plain log lines on a terminal.
    assert!(!screen.contains("upper: running (attempt"), "{screen}");
    assert!(screen.contains("upper=HI count=2 inner=[> HI] input-was=pipeline"));
}
