//! Mutation fuzzing of everything that reads a file without running an
//! agent: `validate`, `graph`, `agents` and `schema` on workflow files, and
//! `trace` on trace files.
//!
//! The real example and fixture files are mutated (lines deleted, duplicated
//! by the thousand, swapped, truncated; values replaced by huge, negative or
//! non-numbers, very long strings, nesting 10,000 deep, regexes that
//! backtrack, `${` and `{{` edge cases; CRLF, a BOM, NUL and invalid bytes)
//! and each case is run through the real binary. The rule checked: bad input
//! gets a clear error, so the process exits 0 or 2 — never a panic, a signal,
//! exit 101 — within a guard of [`GUARD`] (a hang is a bug; speed is not
//! asserted), with output bounded by its input.
//!
//! What the fuzzing, and the probing it led to, found is kept below as named
//! tests, each on about the least input that showed it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config;
use serde_json::{json, Value};

/// How long one case may take before it counts as a hang: a guard against a
/// process that never ends, far above what any case needs — also on a
/// machine loaded many times over (the slowest case, a 59 KB file of 5,349
/// problems, takes 7 s in the debug binary on a quiet 2-core machine, and
/// over 20 s at a load average of 10). The regressions it guards against
/// took minutes.
const GUARD: Duration = Duration::from_secs(60);

/// How much of each output stream is kept for the messages (all of it is read
/// and counted).
const KEPT: usize = 64 * 1024;

/// How a run of the binary ended.
#[derive(Debug)]
struct Outcome {
    /// The exit code; `None` when a signal ended it.
    code: Option<i32>,
    /// The first [`KEPT`] bytes of standard output and of standard error.
    stdout: String,
    stderr: String,
    /// How many bytes it printed, both streams together.
    printed: usize,
    /// Whether [`GUARD`] ran out and the process was killed.
    hung: bool,
}

/// Reads `pipe` to its end on a thread of its own: what it kept, and how many
/// bytes came.
fn drain(
    mut pipe: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<(Vec<u8>, usize)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0;
        let mut buffer = [0u8; 64 * 1024];
        while let Ok(read @ 1..) = pipe.read(&mut buffer) {
            total += read;
            let room = KEPT.saturating_sub(kept.len()).min(read);
            kept.extend_from_slice(&buffer[..room]);
        }
        (kept, total)
    })
}

/// A scratch home for every run: nothing reads or writes the user's.
fn home() -> &'static Path {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")))
        .path()
}

/// Runs `orchestra ARGS`, killed after [`GUARD`].
fn orchestra(args: &[&std::ffi::OsStr]) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env("NO_COLOR", "1")
        .env("HOME", home())
        .env("XDG_STATE_HOME", home())
        .env("XDG_CACHE_HOME", home())
        .env("ORCHESTRA_STORE", home().join("runs.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start orchestra: {e}"));
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + GUARD;
    let mut hung = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                hung = true;
                let _ = child.kill();
                break child.wait().ok();
            }
            Err(error) => panic!("waiting for orchestra: {error}"),
        }
    };
    let joined = |handle: Option<std::thread::JoinHandle<(Vec<u8>, usize)>>| {
        handle
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    };
    let (stdout, out_bytes) = joined(stdout);
    let (stderr, err_bytes) = joined(stderr);
    Outcome {
        code: status.and_then(|status| status.code()),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        printed: out_bytes + err_bytes,
        hung,
    }
}

/// The rule, for a run on an input of `input_len` bytes: exit 0 or 2 in
/// time, no panic, output bounded by the input.
fn check(ran: &Outcome, input_len: usize) -> Result<(), TestCaseError> {
    let shown = || {
        format!(
            "code {:?}, {} bytes printed\n--- stderr ---\n{}\n--- stdout ---\n{}",
            ran.code,
            ran.printed,
            ran.stderr,
            ran.stdout.chars().take(2000).collect::<String>()
        )
    };
    prop_assert!(!ran.hung, "still running after {GUARD:?}: {}", shown());
    prop_assert!(
        !ran.stderr.contains("panicked at") && !ran.stdout.contains("panicked at"),
        "panicked: {}",
        shown()
    );
    prop_assert!(matches!(ran.code, Some(0 | 2)), "{}", shown());
    let bound = (1 << 20) + 64 * input_len;
    prop_assert!(
        ran.printed <= bound,
        "printed more than {bound} bytes: {}",
        shown()
    );
    Ok(())
}

/// The seeds: every example workflow and every fixture, as `(name, text)`.
fn seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dirs = [
            root.join("../../examples/workflows"),
            root.join("tests/fixtures"),
            root.join("tests/fixtures/invalid"),
        ];
        let mut seeds = Vec::new();
        for dir in dirs {
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                let workflow = path
                    .extension()
                    .is_some_and(|ext| ext == "toml" || ext == "yaml" || ext == "yml");
                if workflow {
                    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    seeds.push((name.unwrap_or_default(), text));
                }
            }
        }
        assert!(seeds.len() >= 15, "found only {} seed files", seeds.len());
        seeds
    })
}

/// Values to put where a file has one: numbers out of range, non-numbers,
/// `${` and `{{` edge cases, regexes, durations, sizes, YAML oddities.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "99999999999999999999999999999999999999",
    "1e308",
    "1e999",
    "-1e308",
    "nan",
    "-nan",
    "inf",
    "-inf",
    ".nan",
    ".inf",
    "-.inf",
    "0.0000000000000000000001",
    "true",
    "no",
    "null",
    "~",
    "\"\"",
    "''",
    "[]",
    "{}",
    "[[]]",
    "[{}]",
    "{ a = 1 }",
    "{ a: 1 }",
    "[\"a\", 5]",
    "\"${\"",
    "\"${}\"",
    "\"${A\"",
    "\"${:-x}\"",
    "\"${A:-\"",
    "\"${A:-}\"",
    "\"$${A}\"",
    "\"${A:-${B}}\"",
    "\"${PATH}\"",
    "\"${UNSET_ORCHESTRA_FUZZ}\"",
    "\"${HOME}${HOME}$\"",
    "\"$\"",
    "\"${日本}\"",
    "\"{{\"",
    "\"}}\"",
    "\"{{}}\"",
    "\"{{input\"",
    "\"{{output.}}\"",
    "\"{{output.a}}{{output.a}}{{outptu.a}}\"",
    "\"\\\\{{input}}\"",
    "\"{{metadata.x}}{{metadata.workflow}}\"",
    "\"{{ {{ }} }}\"",
    "\"(a+)+$\"",
    "\"(a|a)*b\"",
    "\"(a*)*b\"",
    "\"a{1000}{1000}\"",
    "\"\\\\w{1000}{1000}\"",
    "\"\\\\p{L}{100000}\"",
    "\"x{4294967295}\"",
    "\"(\"",
    "\"[\"",
    "\"(?<n>a)\\\\k<n>\"",
    "\"(?i)\"",
    "\"0s\"",
    "\"-5s\"",
    "\"1e400s\"",
    "\"99999999999999999999h\"",
    "\"18446744073709551615\"",
    "\"184467440737095516150000000000000000000000000000000000000000000ms\"",
    "\".s\"",
    "\"...\"",
    "\"NaN s\"",
    "\"1.5.5m\"",
    "\"5 parsecs\"",
    "\"99999999GiB\"",
    "\"99999999999999999999999GiB\"",
    "\"0.4B\"",
    "\"-1KiB\"",
    "\"start -> end\"",
    "\"start -> start\"",
    "\"end -> start\"",
    "\"a -> -> b\"",
    "\"->\"",
    "\"start\"",
    "\"end\"",
    "\"all\"",
    "\"any\"",
    "{ at_least = 0 }",
    "{ at_least = 18446744073709551615 }",
    "{ at_least: 18446744073709551615 }",
    "\"\\u0000\"",
    "\"\u{202e}\u{200b}日本🎉\u{feff}\"",
    "\"\u{0301}\u{0301}\"",
    "&a [*a, *a]",
    "*a",
    "*undefined",
    "!!binary aGk=",
    "!tag x",
    "|",
    ">-",
    "'''",
    "\"\"\"",
    "#",
    "---",
    "...",
    "? x",
    "\\",
    "@",
];

/// Keys and table headers to insert.
const KEYS: &[&str] = &[
    "id",
    "kind",
    "template",
    "description",
    "sequential",
    "parallel",
    "nodes",
    "edges",
    "flow",
    "agents",
    "groups",
    "routes",
    "loops",
    "maps",
    "joins",
    "asks",
    "when",
    "router",
    "choices",
    "default",
    "body",
    "until",
    "max_iterations",
    "over",
    "policy",
    "question",
    "timeout",
    "agent_timeout",
    "retries",
    "parallel_limit",
    "join",
    "fail_fast",
    "budget",
    "max_cost_usd",
    "max_tokens",
    "max_steps",
    "secrets",
    "env",
    "version",
    "name",
    "input",
    "matches",
    "contains",
    "equals",
    "field",
    "trace_text_limit",
    "working_dir",
    "command",
    "shell",
    "stdin",
    "backoff",
    "initial",
    "max",
    "jitter",
    "model",
    "api_key",
    "base_url",
    "x-defaults",
    "<<",
    "\"quoted key\"",
    "日本",
];

const HEADERS: &[&str] = &[
    "[flow]",
    "[[agents]]",
    "[[groups]]",
    "[[flow.routes]]",
    "[[flow.loops]]",
    "[[flow.maps]]",
    "[[flow.joins]]",
    "[[flow.asks]]",
    "[budget]",
    "[flow.budget]",
    "[flow.backoff]",
    "[[agents.env]]",
    "[agents]",
    "[[flow]]",
    "[",
    "[[",
    "flow:",
    "agents:",
    "  - id: x",
    "- - - -",
];

/// A value worth putting in a file: one of [`VALUES`], or one built large —
/// a long string or identifier, nesting thousands deep, a placeholder or a
/// reference repeated thousands of times.
fn value() -> impl Strategy<Value = String> {
    let repeated = |piece: &'static str, quote: bool| {
        (1usize..20_000).prop_map(move |n| {
            let body = piece.repeat(n);
            if quote {
                format!("\"{body}\"")
            } else {
                body
            }
        })
    };
    prop_oneof![
        6 => select(VALUES).prop_map(str::to_owned),
        1 => (1usize..200_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        1 => (1usize..40_000).prop_map(|n| format!("\"{}\"", "ab-".repeat(n))),
        1 => (1usize..12_000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
        1 => (1usize..12_000).prop_map(|n| format!("{}1{}", "{ a = ".repeat(n), " }".repeat(n))),
        1 => (1usize..12_000).prop_map(|n| format!("{}1{}", "{a: ".repeat(n), "}".repeat(n))),
        1 => (1usize..12_000).prop_map(|n| "[".repeat(n)),
        1 => repeated("{{x}}", true),
        1 => repeated("{{output.nope}}", true),
        1 => repeated("${UNSET_ORCHESTRA_FUZZ}", true),
        1 => repeated("${", true),
        1 => repeated("a -> ", false).prop_map(|chain| format!("\"{chain}b\"")),
        1 => repeated("(a+)+", true),
        1 => repeated("\\\\", true),
        1 => repeated("&a [*a, *a] ", false),
    ]
}

/// One change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Index),
    /// The line, `count` times over.
    DuplicateLine(Index, usize),
    /// The lines from the first to the second, `count` times over (a whole
    /// agent or group, many times).
    DuplicateBlock(Index, Index, usize),
    SwapLines(Index, Index),
    Truncate(Index),
    InsertBytes(Index, Vec<u8>),
    InsertText(Index, String),
    /// What follows the line's first `=` or `:`, replaced.
    ReplaceValue(Index, String),
    /// A new line `key = value` (`key: value` in YAML), indented.
    InsertEntry(Index, &'static str, String, usize),
    InsertHeader(Index, &'static str),
    CrLf,
    CrOnly,
    Bom,
    Tabs,
    /// The text read as the other format.
    OtherFormat,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let index = any::<Index>;
    prop_oneof![
        3 => index().prop_map(Mutation::DeleteLine),
        2 => (index(), 1usize..6000).prop_map(|(at, n)| Mutation::DuplicateLine(at, n)),
        1 => (index(), index(), 1usize..3000).prop_map(|(a, b, n)| Mutation::DuplicateBlock(a, b, n)),
        2 => (index(), index()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => index().prop_map(Mutation::Truncate),
        2 => (index(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::InsertBytes(at, b)),
        2 => (index(), prop_oneof![
            select(&["\0", "\r", "\u{feff}", "\u{2028}", "\t", "\"", "'", "[", "]", "{", "}", "=", ":", "\n", "- ", "#", "\\", "$", "${", "{{", "}}", "&", "*", "!", "|", "%"][..]).prop_map(str::to_owned),
            any::<String>(),
        ]).prop_map(|(at, text)| Mutation::InsertText(at, text)),
        6 => (index(), value()).prop_map(|(at, v)| Mutation::ReplaceValue(at, v)),
        4 => (index(), select(KEYS), value(), 0usize..7).prop_map(|(at, k, v, indent)| Mutation::InsertEntry(at, k, v, indent)),
        1 => (index(), select(HEADERS)).prop_map(|(at, h)| Mutation::InsertHeader(at, h)),
        1 => Just(Mutation::CrLf),
        1 => Just(Mutation::CrOnly),
        1 => Just(Mutation::Bom),
        1 => Just(Mutation::Tabs),
        1 => Just(Mutation::OtherFormat),
    ]
}

/// The most bytes a mutation makes by repeating: enough for thousands of
/// agents or edges, little enough for hundreds of cases to run in seconds.
const GROWTH: usize = 1 << 20;

/// How many copies of `piece` fit in [`GROWTH`], at most `wanted`.
fn copies(piece: usize, wanted: usize) -> usize {
    wanted.min(GROWTH / piece.max(1)).max(1)
}

/// The text split into lines, each with its line break.
fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Applies `mutation` to `text` (whose format is YAML when `yaml`).
fn apply(mutation: &Mutation, text: &mut Vec<u8>, yaml: &mut bool) {
    let mut all = lines(text);
    let line_at = |at: &Index, all: &Vec<Vec<u8>>| at.index(all.len().max(1));
    match mutation {
        Mutation::DeleteLine(at) if !all.is_empty() => {
            all.remove(line_at(at, &all));
        }
        Mutation::DuplicateLine(at, count) if !all.is_empty() => {
            let at = line_at(at, &all);
            let mut line = all[at].clone();
            if !line.ends_with(b"\n") {
                line.push(b'\n');
            }
            let count = copies(line.len(), *count);
            all.splice(at..at, std::iter::repeat_n(line, count));
        }
        Mutation::DuplicateBlock(a, b, count) if !all.is_empty() => {
            let (a, b) = (line_at(a, &all), line_at(b, &all));
            let (from, to) = (a.min(b), a.max(b).min(a.min(b) + 40));
            let mut block: Vec<u8> = all[from..=to].concat();
            if !block.ends_with(b"\n") {
                block.push(b'\n');
            }
            let count = copies(block.len(), *count);
            all.insert(to + 1, block.repeat(count));
        }
        Mutation::SwapLines(a, b) if !all.is_empty() => {
            let (a, b) = (line_at(a, &all), line_at(b, &all));
            all.swap(a, b);
        }
        Mutation::Truncate(at) => {
            text.truncate(at.index(text.len() + 1));
            return;
        }
        Mutation::InsertBytes(at, bytes) => {
            let at = at.index(text.len() + 1);
            text.splice(at..at, bytes.iter().copied());
            return;
        }
        Mutation::InsertText(at, inserted) => {
            let at = at.index(text.len() + 1);
            text.splice(at..at, inserted.bytes());
            return;
        }
        Mutation::ReplaceValue(at, value) if !all.is_empty() => {
            let at = line_at(at, &all);
            let line = &mut all[at];
            let split = line.iter().position(|&b| b == b'=' || b == b':');
            if let Some(split) = split {
                let newline = line.ends_with(b"\n");
                line.truncate(split + 1);
                line.push(b' ');
                line.extend_from_slice(value.as_bytes());
                if newline {
                    line.push(b'\n');
                }
            }
        }
        Mutation::InsertEntry(at, key, value, indent) => {
            let at = line_at(at, &all).min(all.len());
            let separator = if *yaml { ":" } else { " =" };
            let line = format!("{}{key}{separator} {value}\n", " ".repeat(*indent));
            all.insert(at, line.into_bytes());
        }
        Mutation::InsertHeader(at, header) => {
            let at = line_at(at, &all).min(all.len());
            all.insert(at, format!("{header}\n").into_bytes());
        }
        Mutation::CrLf => {
            *text = text
                .iter()
                .flat_map(|&b| {
                    if b == b'\n' {
                        vec![b'\r', b'\n']
                    } else {
                        vec![b]
                    }
                })
                .collect();
            return;
        }
        Mutation::CrOnly => {
            for byte in text.iter_mut().filter(|b| **b == b'\n') {
                *byte = b'\r';
            }
            return;
        }
        Mutation::Bom => {
            text.splice(0..0, "\u{feff}".bytes());
            return;
        }
        Mutation::Tabs => {
            *text = String::from_utf8_lossy(text)
                .replace("  ", "\t")
                .into_bytes();
            return;
        }
        Mutation::OtherFormat => {
            *yaml = !*yaml;
            return;
        }
        _ => return,
    }
    *text = all.concat();
}

/// A mutated file: what it was made from, and its text.
#[derive(Clone)]
struct Case {
    seed: String,
    mutations: Vec<Mutation>,
    text: Vec<u8>,
    yaml: bool,
}

/// A case as a failure shows it: the file itself is kept on disk (see
/// [`run_on`]), not printed.
impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mutations: Vec<String> = self
            .mutations
            .iter()
            .map(|m| format!("{m:?}").chars().take(120).collect())
            .collect();
        write!(
            f,
            "{} ({} bytes, {}) after {mutations:?}",
            self.seed,
            self.text.len(),
            if self.yaml { "YAML" } else { "TOML" }
        )
    }
}

/// A seed and the changes made to it.
fn mutated() -> impl Strategy<Value = Case> {
    (any::<Index>(), prop::collection::vec(mutation(), 1..5)).prop_map(|(seed, mutations)| {
        let (name, text) = seed.get(seeds());
        let mut text = text.clone();
        let mut yaml = !name.ends_with(".toml");
        for mutation in &mutations {
            apply(mutation, &mut text, &mut yaml);
        }
        Case {
            seed: name.clone(),
            mutations,
            text,
            yaml,
        }
    })
}

/// Where a failing case is kept: the last one, which after shrinking is the
/// least.
fn kept_failure(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-failure-{name}"))
}

/// Writes a case to a scratch file of its format and runs `orchestra ARGS FILE`.
fn run_on(args: &[&str], case: &Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let name = if case.yaml { "case.yaml" } else { "case.toml" };
    let file = dir.path().join(name);
    std::fs::write(&file, &case.text).unwrap_or_else(|e| panic!("{e}"));
    let mut argv: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    argv.push(file.as_os_str());
    let verdict = check(&orchestra(&argv), case.text.len());
    if verdict.is_err() {
        let kept = kept_failure(name);
        let _ = std::fs::write(&kept, &case.text);
        eprintln!(
            "`orchestra {}` failed on the case kept in {}",
            args.join(" "),
            kept.display()
        );
    }
    verdict
}

/// The fuzzing's settings: no regression files written into the source
/// tree, and shrinking bounded (a case that hangs takes [`GUARD`] a try).
fn fuzz_config() -> Config {
    Config {
        failure_persistence: None,
        max_shrink_iters: 200,
        max_shrink_time: 120_000,
        ..Config::default()
    }
}

/// The commands that read a workflow and run nothing.
const READERS: &[&[&str]] = &[
    &["validate"],
    &["validate", "--require-env"],
    &["graph", "--format", "mermaid"],
    &["graph", "--format", "dot"],
    &["agents"],
    &["agents", "--enabled", "--tag", "x"],
];

proptest! {
    #![proptest_config(Config { cases: 300, ..fuzz_config() })]

    #[test]
    fn validate_answers_any_mutated_workflow_with_a_verdict(case in mutated()) {
        run_on(&["validate"], &case)?;
    }

    #[test]
    fn every_reader_answers_any_mutated_workflow_with_a_verdict(
        case in mutated(),
        reader in select(READERS),
    ) {
        run_on(reader, &case)?;
    }
}

// ---------------------------------------------------------------------------
// Traces.

/// Real traces, written by runs of example workflows that run offline: a
/// graph with routes, a map (nested runs), a failing agent, a budget.
fn traces() -> &'static [Value] {
    static TRACES: OnceLock<Vec<Value>> = OnceLock::new();
    TRACES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let workflows = [
            "../../examples/workflows/graph-route.toml",
            "../../examples/workflows/graph-map.toml",
            "../../examples/workflows/graph-budget.toml",
            "tests/fixtures/failing.toml",
            "tests/fixtures/pipeline.toml",
        ];
        let mut traces = Vec::new();
        for (index, workflow) in workflows.iter().enumerate() {
            let trace = dir.path().join(format!("{index}.json"));
            let workflow = root.join(workflow);
            let args: Vec<&std::ffi::OsStr> = vec![
                "run".as_ref(),
                workflow.as_os_str(),
                "--no-store".as_ref(),
                "--quiet".as_ref(),
                "--input".as_ref(),
                "a bug\nsecond line".as_ref(),
                "--trace".as_ref(),
                trace.as_os_str(),
            ];
            let ran = orchestra(&args);
            let text = std::fs::read_to_string(&trace).unwrap_or_else(|e| {
                panic!("no trace from {}: {e}\n{}", workflow.display(), ran.stderr)
            });
            traces.push(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}")));
        }
        traces
    })
}

/// Every place in `value`, as a JSON pointer.
fn places(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                places(
                    inner,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                places(inner, format!("{at}/{index}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Values worth putting in a trace: times at the ends of the calendar,
/// numbers out of range, usage that overflows, wrong types.
fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(i64::MAX)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(0.5)),
        Just(json!("")),
        Just(json!({})),
        Just(json!([])),
        Just(json!("+262142-12-31T23:59:59.999999999Z")),
        Just(json!("-262143-01-01T00:00:00Z")),
        Just(json!("1970-01-01T00:00:00Z")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("2026-01-01T00:00:00+23:59")),
        Just(json!("00000000000000000000000000000000")),
        Just(json!("\u{202e}日本🎉\n\r\t\u{0}")),
        Just(
            json!({"usage": {"input_tokens": u64::MAX, "output_tokens": u64::MAX, "cost_usd": 1e308}})
        ),
        Just(json!({"usage": {"input_tokens": -1}})),
        Just(json!({"usage": {"cost_usd": -1e308}})),
        (1usize..200_000).prop_map(|n| json!("x".repeat(n))),
        (1usize..200).prop_map(|n| { (0..n).fold(json!(1), |inner, _| json!([inner])) }),
    ]
}

/// One change to a trace.
#[derive(Debug, Clone)]
enum TraceMutation {
    /// The value at a place replaced.
    Replace(Index, Value),
    /// The key or item at a place removed.
    Remove(Index),
    /// A record put inside itself as its nested run, `depth` times over.
    Nest(Index, usize),
    /// The records, `count` times over.
    Repeat(usize),
    /// The text, cut.
    Truncate(Index),
}

fn trace_mutation() -> impl Strategy<Value = TraceMutation> {
    prop_oneof![
        6 => (any::<Index>(), json_value()).prop_map(|(at, v)| TraceMutation::Replace(at, v)),
        2 => any::<Index>().prop_map(TraceMutation::Remove),
        1 => (any::<Index>(), 1usize..40).prop_map(|(at, d)| TraceMutation::Nest(at, d)),
        1 => (1usize..3000).prop_map(TraceMutation::Repeat),
        1 => any::<Index>().prop_map(TraceMutation::Truncate),
    ]
}

/// The trace, changed; `None` for a change made to its text (see `Truncate`).
fn apply_to_trace(mutation: &TraceMutation, trace: &mut Value) -> Option<Index> {
    match mutation {
        TraceMutation::Replace(at, value) => {
            let mut all = Vec::new();
            places(trace, String::new(), &mut all);
            let place = at.get(&all).clone();
            if let Some(slot) = trace.pointer_mut(&place) {
                *slot = value.clone();
            }
        }
        TraceMutation::Remove(at) => {
            let mut all = Vec::new();
            places(trace, String::new(), &mut all);
            let place = at.get(&all);
            if let Some((parent, last)) = place.rsplit_once('/') {
                match trace.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(last);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(index) = last.parse::<usize>() {
                            if index < items.len() {
                                items.remove(index);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        TraceMutation::Nest(at, depth) => {
            if let Some(Value::Array(records)) = trace.get_mut("agent_executions") {
                if !records.is_empty() {
                    let index = at.index(records.len());
                    let start = trace["start_time"].clone();
                    let mut record = trace["agent_executions"][index].clone();
                    // An earlier mutation may have made the record something
                    // other than an object: nothing to nest into then.
                    for _ in 0..*depth {
                        let inner = record.clone();
                        let Value::Object(fields) = &mut record else {
                            break;
                        };
                        fields.insert(
                            "nested".to_owned(),
                            json!({"start_time": start, "agent_executions": [inner]}),
                        );
                    }
                    trace["agent_executions"][index] = record;
                }
            }
        }
        TraceMutation::Repeat(count) => {
            if let Some(Value::Array(records)) = trace.get_mut("agent_executions") {
                let size = serde_json::to_vec(&records).map_or(1, |text| text.len());
                let count = copies(size, *count);
                *records = records
                    .iter()
                    .cloned()
                    .cycle()
                    .take(records.len() * count)
                    .collect();
            }
        }
        TraceMutation::Truncate(at) => return Some(*at),
    }
    None
}

proptest! {
    #![proptest_config(Config { cases: 300, ..fuzz_config() })]

    #[test]
    fn trace_answers_any_mutated_trace_with_a_verdict(
        seed in any::<Index>(),
        mutations in prop::collection::vec(trace_mutation(), 1..4),
        as_printed in any::<bool>(),
    ) {
        let mut trace = seed.get(traces()).clone();
        let mut cut = None;
        for mutation in &mutations {
            cut = apply_to_trace(mutation, &mut trace).or(cut);
        }
        if as_printed {
            // What `run --json` prints holds the trace.
            trace = json!({ "execution_trace": trace });
        }
        let mut text = serde_json::to_vec_pretty(&trace).unwrap_or_default();
        if let Some(cut) = cut {
            text.truncate(cut.index(text.len() + 1));
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("trace.json");
        std::fs::write(&file, &text).unwrap_or_else(|e| panic!("{e}"));
        check(&orchestra(&["trace".as_ref(), file.as_os_str()]), text.len())?;
    }
}

// ---------------------------------------------------------------------------
// What the fuzzing found, and cases written by hand for what it hinted at.

/// Runs `orchestra ARGS FILE` on `text` written as `name`, and checks the rule.
fn holds(args: &[&str], name: &str, text: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    let mut argv: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    argv.push(file.as_os_str());
    let ran = orchestra(&argv);
    if let Err(failure) = check(&ran, text.len()) {
        panic!("{name}: {failure}");
    }
    ran
}

#[test]
fn schema_is_printed() {
    let ran = orchestra(&["schema".as_ref()]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.contains("\"$schema\""), "{}", ran.stdout);
}

#[test]
fn the_seeds_are_read_as_they_are() {
    for (name, text) in seeds() {
        let text = String::from_utf8_lossy(text);
        holds(&["validate"], name, &text);
    }
}

#[test]
fn a_trace_whose_unended_attempt_lasts_past_the_calendar_is_shown() {
    let mut trace = traces()[0].clone();
    trace["agent_executions"][0]["end_time"] = Value::Null;
    trace["agent_executions"][0]["duration_ms"] = json!(u64::MAX);
    let ran = holds(&["trace"], "trace.json", &trace.to_string());
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}

#[test]
fn a_trace_of_an_agent_with_a_name_wider_than_a_format_allows_is_shown() {
    let mut trace = traces()[0].clone();
    trace["agent_executions"][0]["agent_name"] = json!("x".repeat(70_000));
    let ran = holds(&["trace"], "trace.json", &trace.to_string());
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}

#[test]
fn a_typo_of_a_very_long_id_is_reported_without_comparing_it_letter_by_letter() {
    let declared = "a".repeat(60_000);
    let written = format!("{}b", "a".repeat(59_999));
    let text = format!(
        "[flow]\nsequential = [\"{written}\"]\n\n[[agents]]\nid = \"{declared}\"\nkind = \"template\"\ntemplate = \"x\"\n"
    );
    let ran = holds(&["validate"], "long.toml", &text);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("unknown agent"), "{}", ran.stderr);
}

#[test]
fn every_reader_holds_on_hand_made_extremes() {
    let mut cases: Vec<(&str, String)> = Vec::new();
    let agent = "[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"x\"\n";
    cases.push((
        "deep-array.toml",
        format!(
            "[flow]\nsequential = {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ),
    ));
    cases.push((
        "deep-table.toml",
        format!(
            "[flow]\nsequential = [{}\"a\"{}]\n{agent}",
            "{ sequential = [".repeat(10_000),
            "] }".repeat(10_000)
        ),
    ));
    cases.push((
        "deep-flow.yaml",
        format!("flow: {}1{}\n", "{a: ".repeat(10_000), "}".repeat(10_000)),
    ));
    cases.push((
        "deep-seq.yaml",
        format!("flow:\n  sequential: {}\n", "[".repeat(10_000)),
    ));
    let mut block = String::from("flow:\n  sequential:\n");
    for depth in 0..3_000 {
        let _ = writeln!(block, "{}-", " ".repeat(depth + 2));
    }
    cases.push(("deep-block.yaml", block));
    // A billion laughs: aliases of aliases.
    let mut laughs = String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for level in 1..12 {
        let previous = format!("*a{}", level - 1);
        let _ = writeln!(
            laughs,
            "a{level}: &a{level} [{}]",
            vec![previous; 9].join(", ")
        );
    }
    laughs.push_str("flow:\n  sequential: *a11\n");
    cases.push(("laughs.yaml", laughs));
    // Catastrophic backtracking, and regexes too large to build.
    for pattern in [
        "(a+)+$",
        "(a|aa)*b",
        "\\\\w{1000}{1000}",
        "(((a{100}){100}){100})",
        "\\\\p{L}{65535}",
    ] {
        cases.push((
            "regex.toml",
            format!("[flow]\nnodes = [\"a\"]\nedges = [\"start -> a\"]\n[[flow.routes]]\nfrom = \"a\"\nwhen = [{{ matches = \"{pattern}\", to = \"end\" }}]\ndefault = \"end\"\n{agent}"),
        ));
    }
    // Durations and sizes out of range.
    for value in [
        "\"99999999999999999999h\"",
        "18446744073709551615",
        "1e308",
        "-1",
        "\"1e400s\"",
        "nan",
    ] {
        cases.push((
            "durations.toml",
            format!("trace_text_limit = {value}\n[flow]\nsequential = [\"a\"]\ntimeout = {value}\nagent_timeout = {value}\n[flow.backoff]\ninitial = {value}\nmax = {value}\n[budget]\ntimeout = {value}\nmax_cost_usd = {value}\n{agent}timeout = {value}\n"),
        ));
    }
    for (name, text) in &cases {
        for reader in READERS {
            holds(reader, name, text);
        }
    }
}

/// A workflow whose one agent `a` is a template of `template`, written as
/// it is between TOML's double quotes.
fn one_template(template: &str) -> String {
    format!("[flow]\nsequential = [\"a\"]\n\n[[agents]]\nid = \"a\"\nkind = \"template\"\ntemplate = \"{template}\"\n")
}

/// `count` template agents `{prefix}0`, `{prefix}1`, ….
fn agents(prefix: &str, count: usize) -> String {
    let mut text = String::new();
    for i in 0..count {
        let _ = write!(
            text,
            "\n[[agents]]\nid = \"{prefix}{i}\"\nkind = \"template\"\ntemplate = \"x\"\n"
        );
    }
    text
}

/// Each of these took longer than [`GUARD`] (most of them minutes): every
/// problem was shown by counting the characters of its whole line.
#[test]
fn thousands_of_problems_on_one_line_are_reported_in_time() {
    let unknown: Vec<String> = (0..20_000).map(|i| format!("\"x{i}\"")).collect();
    let text = format!(
        "[flow]\nsequential = [{}]\n{}",
        unknown.join(", "),
        agents("a", 1)
    );
    let ran = holds(&["validate"], "unknown.toml", &text);
    assert!(
        ran.stderr.contains("20000 problems found"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("note: 19900 more problems not shown"),
        "{}",
        ran.stderr
    );

    let ran = holds(
        &["validate"],
        "placeholders.toml",
        &one_template(&"{{x}}".repeat(20_000)),
    );
    assert!(
        ran.stderr.contains("20000 problems found"),
        "{}",
        ran.stderr
    );
    let ran = holds(
        &["validate"],
        "outputs.toml",
        &one_template(&"{{output.nope}}".repeat(20_000)),
    );
    assert!(
        ran.stderr
            .contains("unknown agent `nope` in template of `a`"),
        "{}",
        ran.stderr
    );
}

#[test]
fn thousands_of_unset_variables_in_one_value_are_reported_in_time() {
    let references: String = (0..100_000)
        .map(|i| format!("${{UNSET_ORCHESTRA_{i}}}"))
        .collect();
    let text = one_template(&references);
    let ran = holds(&["validate", "--require-env"], "env.toml", &text);
    assert!(
        ran.stderr.contains("100000 problems found"),
        "{}",
        ran.stderr
    );
    // Each is placed at its own reference.
    assert!(
        ran.stderr.contains("UNSET_ORCHESTRA_99` is not set\n --> "),
        "{}",
        ran.stderr
    );
    let ran = holds(&["validate"], "env.toml", &text);
    assert!(
        ran.stderr.contains("99900 more warnings not shown"),
        "{}",
        ran.stderr
    );
}

#[test]
fn thousands_of_unknown_names_among_thousands_of_agents_are_reported_in_time() {
    let unknown: Vec<String> = (0..5_000).map(|i| format!("\"agnet{i}\"")).collect();
    let text = format!(
        "[flow]\nsequential = [{}]\n{}",
        unknown.join(", "),
        agents("agent", 5_000)
    );
    let ran = holds(&["validate"], "typos.toml", &text);
    assert!(ran.stderr.contains("5000 problems found"), "{}", ran.stderr);
    // The first ones still get their suggestion.
    assert!(
        ran.stderr.contains("did you mean `agent0`?"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_graph_with_a_hundred_thousand_edges_is_checked_in_time() {
    let count = 450;
    let nodes: Vec<String> = (0..count).map(|i| format!("\"n{i}\"")).collect();
    let mut edges = vec![
        "\"start -> n0\"".to_owned(),
        format!("\"n{} -> end\"", count - 1),
    ];
    for from in 0..count {
        for to in from + 1..count {
            edges.push(format!("\"n{from} -> n{to}\""));
        }
    }
    let text = format!(
        "[flow]\nnodes = [{}]\nedges = [{}]\n{}",
        nodes.join(", "),
        edges.join(", "),
        agents("n", count)
    );
    let ran = holds(&["validate"], "dense.toml", &text);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}

/// Reading past shape errors reads the whole file again for each: a file
/// of a megabyte with a hundred errors took a minute, and one whose
/// unknown entries span many lines read it again for each of their lines.
/// What the fuzzer found: a line of an entry duplicated thousands of times
/// (every copy a problem), with CRLF line ends — each round of reading past
/// a problem read the file again, at half a second a round unoptimised.
#[test]
fn thousands_of_entries_each_a_problem_are_read_past_in_time() {
    let mut yaml = String::from("name: typo\r\nagents:\r\n");
    yaml.push_str(&"  - id: a\r\n".repeat(5_349));
    let ran = holds(&["validate"], "copies.yaml", &yaml);
    assert!(
        ran.stderr.contains("missing field `kind`"),
        "{}",
        ran.stderr
    );
}

#[test]
fn large_files_with_many_shape_errors_are_read_past_in_time() {
    let mut yaml = String::from("flow:\n  sequential: [a0]\nagents:\n");
    for i in 0..20_000 {
        let _ = write!(yaml, "  - id: a{i}\n    kind: template\n    template: x\n");
        if i % 100 == 0 {
            let _ = writeln!(yaml, "    colour{i}: red");
        }
    }
    let ran = holds(&["validate"], "many-errors.yaml", &yaml);
    assert!(
        ran.stderr.contains("unknown field `colour0`"),
        "{}",
        ran.stderr
    );

    let mut toml = String::from("[flow]\nsequential = [\"a0\"]\n");
    for i in 0..2_000 {
        let _ = write!(
            toml,
            "[[agents]]\nid = \"a{i}\"\nkind = \"template\"\ntemplate = \"x\"\n"
        );
        if i % 100 == 0 {
            let _ = writeln!(toml, "colour{i} = [\n{}]", "  1,\n".repeat(150));
        }
    }
    let ran = holds(&["validate"], "long-entries.toml", &toml);
    assert!(ran.stderr.contains("20 problems found"), "{}", ran.stderr);
}
