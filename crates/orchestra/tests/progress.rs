//! Live progress on a terminal: the run is started under a pseudo-terminal
//! (`script` from util-linux), so stderr is a TTY and the lines are redrawn in
//! place.

mod common;

use common::fixture;

#[test]
fn on_a_terminal_each_agent_has_a_line_redrawn_in_place() {
    let command = format!(
        "'{}' run '{}' --input hi",
        env!("CARGO_BIN_EXE_orchestra"),
        fixture("pipeline.toml").display()
    );
    let (code, screen) = common::on_terminal(24, 80, &command, true);
    assert_eq!(code, Some(0), "{screen}");
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

#[test]
fn on_a_short_terminal_a_thousand_agents_show_a_window_and_a_counter() {
    let dir = common::scratch();
    let text = common::parallel_of(
        1000,
        "parallel_limit = 50",
        "kind = \"command\"\ncommand = [\"sleep\", \"0.01\"]\nstdin = \"none\"",
    );
    let file = common::write(dir.path(), "many.toml", &text);
    let command = format!(
        "'{}' run '{}' > /dev/null",
        env!("CARGO_BIN_EXE_orchestra"),
        file.display()
    );
    let (code, screen) = common::on_terminal(24, 80, &command, false);
    assert_eq!(
        code,
        Some(0),
        "{}",
        screen
            .char_indices()
            .rev()
            .nth(2000)
            .map_or(screen.as_str(), |(at, _)| &screen[at..])
    );
    assert!(screen.contains("/1000 done"), "no counter");
    assert!(screen.contains("more not shown"), "no hidden-rows note");
    assert!(screen.contains("1000/1000 done"), "no final count");
    // Never more rows redrawn than the terminal has lines.
    let most_up = screen
        .split("\u{1b}[")
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            rest[digits.len()..]
                .starts_with('A')
                .then(|| digits.parse::<usize>().unwrap_or(1))
        })
        .max()
        .unwrap_or(0);
    assert!(
        most_up < 24,
        "moved up {most_up} lines on a 24-line terminal"
    );
}
