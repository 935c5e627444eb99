//! Edges of the live progress display: long and wide agent names on narrow
//! terminals, output closed early. The run is started under a
//! pseudo-terminal (`script` from util-linux) so stderr is a TTY.

mod common;

/// The rows the live display drew, as the terminal shows them: indicatif
/// writes each row padded with spaces to the terminal's width (no line
/// breaks between rows), so the text between two cursor movements is cut
/// into rows of `cols` characters. Only for text whose characters each take
/// one column.
fn drawn_rows(screen: &str, cols: usize) -> Vec<String> {
    let mut rows = Vec::new();
    for (index, segment) in screen.split('\u{1b}').enumerate() {
        // After an escape: the rest of its sequence (`[2K`, `[1A`, `[?25l`) goes.
        let text = if index == 0 {
            segment
        } else if let Some(rest) = segment.strip_prefix('[') {
            let rest = rest.trim_start_matches(|c: char| ('\x20'..='\x3f').contains(&c));
            rest.get(1..).unwrap_or("")
        } else {
            segment.get(1..).unwrap_or("")
        };
        for piece in text.split(['\r', '\n']) {
            let chars: Vec<char> = piece.chars().collect();
            for row in chars.chunks(cols) {
                rows.push(row.iter().collect::<String>().trim_end().to_owned());
            }
        }
    }
    rows
}

#[test]
fn a_long_agent_name_on_a_narrow_terminal_leaves_every_rows_state_visible() {
    let dir = common::scratch();
    let long = "summarize_the_quarterly_results_for_the_board";
    let text = format!(
        "[flow]\nsequential = [\"{long}\", \"b\"]\n\n\
         [[agents]]\nid = \"{long}\"\nkind = \"command\"\n\
         command = [\"sleep\", \"0.3\"]\nstdin = \"none\"\n\n\
         [[agents]]\nid = \"b\"\nkind = \"command\"\n\
         command = [\"sleep\", \"0.3\"]\nstdin = \"none\"\n"
    );
    let file = common::write(dir.path(), "long.toml", &text);
    let cols = 50;
    let (code, screen) = common::on_terminal(
        24,
        cols,
        &format!(
            "'{}' run '{}' > /dev/null",
            env!("CARGO_BIN_EXE_orchestra"),
            file.display()
        ),
        false,
    );
    assert_eq!(code, Some(0), "{screen}");
    let rows = drawn_rows(&screen, cols);
    // While the run goes, the short agent's row says it is running, and
    // when it is over, that it is done — the long name does not push the
    // state off the screen.
    for state in ["running", "done"] {
        assert!(
            rows.iter()
                .any(|row| row.starts_with(|c: char| !c.is_ascii())
                    && row.contains(" b ")
                    && row.contains(state)),
            "no row shows b {state}:\n{}",
            rows.join("\n")
        );
    }
    // The long name's own row shows its state too (its name cut short).
    assert!(
        rows.iter()
            .any(|row| row.contains("summarize_") && row.contains("done")),
        "{}",
        rows.join("\n")
    );
}

#[test]
fn closing_stdout_early_with_the_live_display_on_ends_quietly() {
    let dir = common::scratch();
    let text = common::parallel_of(
        40,
        "parallel_limit = 8",
        "kind = \"command\"\nshell = \"seq 1 2000\"\nstdin = \"none\"",
    );
    let file = common::write(dir.path(), "many.toml", &text);
    let status = dir.path().join("status");
    let (code, screen) = common::on_terminal(
        12,
        60,
        &format!(
            // POSIX sh has no PIPESTATUS: the run's own exit code goes
            // through a file.
            "{{ '{}' run '{}'; echo $? > '{}'; }} | head -1; exit $(cat '{}')",
            env!("CARGO_BIN_EXE_orchestra"),
            file.display(),
            status.display(),
            status.display()
        ),
        false,
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains("panicked"), "{screen}");
    assert!(screen.contains("40/40 done"), "{screen}");
}
